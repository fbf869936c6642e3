/* The history of processes' executable file mappings, kept after exit for a while within a memory bound. */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "exec-history.h"

#define BUCKETS 4096
/* Owners whose exited processes are counted apart (open addressing); past that many at once,
 * the bytes of an owner are summed by a walk. */
#define OWNER_SLOTS 1024
/* Distinct file facts kept (chained): a machine maps some thousands of distinct files. */
#define FACT_BUCKETS 1024

/* One distinct file facts, shared by the intervals that have them. */
struct fact_entry {
        struct fact_entry *next;
        size_t refs;
        uint32_t hash;
        struct exec_history_facts f;    /* what lies past the lengths is zero: compared whole */
};

/* Records kept of a process not yet complete: a child's changes drained before its fork event
 * (two ring buffers) are replayed over the parent's set once that event comes. A process with
 * more waits for a full record. */
#define EARLY_MAX 16
/* Forks kept until their parent is known (its exec record can come after the fork event). */
#define PENDING_FORKS 64

struct proc {
        struct proc *next;              /* in its bucket */
        struct proc *exit_prev, *exit_next; /* exited processes, oldest exit first */
        pid_t pid;
        uint64_t start_time;
        bool exited, complete;
        uint64_t exit_usec, known_since_usec;
        uint64_t exec_usec;             /* its last exec's time; 0: none seen */
        uint64_t seq;                   /* the history's generation at the last record applied */
        uint64_t seeded_usec;           /* when the read of its last seed began; 0: none */
        /* Complete from a change told as its whole set (its first, with no exec seen): a fork
         * made later still gives it the parent's set before that. */
        bool whole_first;
        /* A change not read at gap_from left the history unknown until gap_to (the next whole
         * set told; UINT64_MAX while it has not come, the process incomplete): times in it are
         * not known, times before it still are. 0: none. One is kept: another moves
         * known_since past the one before. */
        uint64_t gap_from, gap_to;
        uid_t uid, euid, suid;
        unsigned dumpable;
        char comm[16];
        struct exec_history_mapping *m; /* every interval, open and closed, in no order */
        size_t n, allocated;
        size_t bytes;
        /* Range records applied while not complete, in order (copies, paths owned); early_lost:
         * more came than were kept. */
        struct exec_history_record *early;
        size_t n_early;
        bool early_lost;
};

struct exec_history {
        pthread_mutex_t lock;
        struct exec_history_config cfg;
        struct proc *buckets[BUCKETS];
        struct proc *exit_head, *exit_tail;
        struct fact_entry *facts[FACT_BUCKETS];
        size_t processes, exited, bytes;
        uint64_t evicted, records;
        /* The bytes each owner's exited processes hold: the per-owner bound is checked at every
         * exit, and a walk of every exited process there made the drain quadratic (600 us of
         * the daemon's CPU per exit with 8,000 kept, measured). */
        struct owner_bytes {
                uid_t uid;
                bool used;
                size_t bytes;
        } owners[OWNER_SLOTS];
        /* Forks heard before their parent was known at the fork time (its exec record drained
         * after the fork event: two ring buffers), oldest first; tried again as records of
         * the parent come. */
        struct pending_fork {
                pid_t parent, child;
                uint64_t child_start_time, time_usec;
        } forks[PENDING_FORKS];
        size_t n_forks;
};

/* uid's slot (made when absent), or NULL when every slot holds another owner. Under lock. */
static struct owner_bytes *owner_slot(struct exec_history *h, uid_t uid) {
        for (size_t i = 0, s = (uid * 2654435761u) % OWNER_SLOTS; i < OWNER_SLOTS; i++, s = (s + 1) % OWNER_SLOTS) {
                if (h->owners[s].used && h->owners[s].uid == uid)
                        return &h->owners[s];
                if (!h->owners[s].used) {
                        h->owners[s] = (struct owner_bytes) { .uid = uid, .used = true };
                        return &h->owners[s];
                }
        }
        return NULL;
}

static void mapping_free_path(struct exec_history_mapping *m) {
        free(m->path);
        m->path = NULL;
}

/* facts with what lies past its lengths zeroed: equal facts are then equal bytes. */
static struct exec_history_facts facts_normalized(const struct exec_history_facts *f) {
        struct exec_history_facts c = {
                .build_id_len = MIN(f->build_id_len, (uint8_t) EXEC_HISTORY_BUILD_ID_MAX),
                .has_loads = f->has_loads,
                .n_loads = f->has_loads ? MIN(f->n_loads, (uint8_t) EXEC_HISTORY_LOADS_MAX) : 0,
        };

        memcpy(c.build_id, f->build_id, c.build_id_len);
        memcpy(c.loads, f->loads, c.n_loads * sizeof(c.loads[0]));
        return c;
}

/* FNV-1a over the normalized bytes. */
static uint32_t facts_hash(const struct exec_history_facts *f) {
        const uint8_t *b = (const uint8_t *) f;
        uint32_t x = 2166136261u;

        for (size_t i = 0; i < sizeof(*f); i++)
                x = (x ^ b[i]) * 16777619u;
        return x;
}

/* The kept copy of f (a new reference), made when absent; NULL: out of memory. Under lock. */
static const struct exec_history_facts *facts_intern(struct exec_history *h, const struct exec_history_facts *f) {
        struct exec_history_facts c = facts_normalized(f);
        uint32_t x = facts_hash(&c);
        struct fact_entry *e;

        for (e = h->facts[x % FACT_BUCKETS]; e; e = e->next)
                if (e->hash == x && memcmp(&e->f, &c, sizeof(c)) == 0) {
                        e->refs++;
                        return &e->f;
                }
        e = malloc(sizeof(*e));
        if (!e)
                return NULL;
        *e = (struct fact_entry) { .next = h->facts[x % FACT_BUCKETS], .refs = 1, .hash = x, .f = c };
        h->facts[x % FACT_BUCKETS] = e;
        h->bytes += sizeof(*e);
        return &e->f;
}

/* Drops a reference taken by facts_intern(); accepts NULL. Under lock. */
static void facts_unref(struct exec_history *h, const struct exec_history_facts *f) {
        struct fact_entry *e, **pp;

        if (!f)
                return;
        e = (struct fact_entry *) ((char *) f - offsetof(struct fact_entry, f));
        if (--e->refs > 0)
                return;
        for (pp = &h->facts[e->hash % FACT_BUCKETS]; *pp && *pp != e; pp = &(*pp)->next)
                ;
        if (*pp)
                *pp = e->next;
        h->bytes -= sizeof(*e);
        free(e);
}

/* What an interval of the history holds, released. Under lock. */
static void interval_release(struct exec_history *h, struct exec_history_mapping *m) {
        mapping_free_path(m);
        facts_unref(h, m->facts);
        m->facts = NULL;
}

void exec_history_diff_done(struct exec_history_diff *d) {
        for (size_t i = 0; i < d->n_added; i++)
                mapping_free_path(&d->added[i]);
        for (size_t i = 0; i < d->n_removed; i++)
                mapping_free_path(&d->removed[i]);
        free(d->added);
        free(d->removed);
        *d = (struct exec_history_diff) {};
}

void exec_history_view_done(struct exec_history_view *v) {
        for (size_t i = 0; i < v->n; i++) {
                mapping_free_path(&v->mappings[i]);
                free((struct exec_history_facts *) v->mappings[i].facts);
        }
        free(v->mappings);
        v->mappings = NULL;
        v->n = 0;
}

int exec_history_new(const struct exec_history_config *cfg, struct exec_history **ret) {
        struct exec_history *h = calloc(1, sizeof(*h));

        if (!h)
                return -ENOMEM;
        if (cfg)
                h->cfg = *cfg;
        if (h->cfg.retain_usec == 0)
                h->cfg.retain_usec = (uint64_t) EXEC_HISTORY_RETAIN_SEC_DEFAULT * 1000000u;
        if (h->cfg.max_bytes == 0)
                h->cfg.max_bytes = EXEC_HISTORY_MAX_BYTES_DEFAULT;
        if (h->cfg.max_bytes_per_uid == 0)
                h->cfg.max_bytes_per_uid = h->cfg.max_bytes / 4;
        pthread_mutex_init(&h->lock, NULL);
        *ret = h;
        return 0;
}

static size_t bucket_of(pid_t pid) {
        return (uint32_t) pid % BUCKETS;
}

static void exit_list_remove(struct exec_history *h, struct proc *p) {
        if (p->exit_prev)
                p->exit_prev->exit_next = p->exit_next;
        else if (h->exit_head == p)
                h->exit_head = p->exit_next;
        if (p->exit_next)
                p->exit_next->exit_prev = p->exit_prev;
        else if (h->exit_tail == p)
                h->exit_tail = p->exit_prev;
        p->exit_prev = p->exit_next = NULL;
}

static void record_free_mappings(struct exec_history_record *r) {
        struct exec_history_mapping *m = (struct exec_history_mapping *) r->mappings;

        for (size_t i = 0; i < r->n; i++)
                mapping_free_path(&m[i]);
        free(m);
        r->mappings = NULL;
        r->n = 0;
}

static size_t record_bytes(const struct exec_history_record *r) {
        size_t b = sizeof(*r) + r->n * sizeof(r->mappings[0]);

        for (size_t i = 0; i < r->n; i++)
                b += r->mappings[i].path ? strlen(r->mappings[i].path) + 1 : 0;
        return b;
}

/* Forgets the early records (the process became complete, or goes). Under lock. */
static void early_clear(struct exec_history *h, struct proc *p) {
        for (size_t i = 0; i < p->n_early; i++) {
                size_t b = record_bytes(&p->early[i]);

                p->bytes -= b;
                h->bytes -= b;
                record_free_mappings(&p->early[i]);
        }
        free(p->early);
        p->early = NULL;
        p->n_early = 0;
}

/* Keeps a copy of r, a range record applied to p while it is not complete. A record not kept
 * (past EARLY_MAX, or no memory) makes the whole lot useless: p waits for a full record. Under
 * lock. */
static void early_keep(struct exec_history *h, struct proc *p, const struct exec_history_record *r) {
        struct exec_history_record c = *r, *na = NULL;
        struct exec_history_mapping *m = NULL;
        size_t b;

        if (p->early_lost || p->n_early >= EARLY_MAX || (r->n > 0 && !(m = calloc(r->n, sizeof(*m)))))
                goto lost;
        c.mappings = m;
        c.n = 0;
        for (; c.n < r->n; c.n++) {
                m[c.n] = r->mappings[c.n];
                m[c.n].path = NULL;
                /* The record's facts live only during the call: a later record (the exit's)
                 * brings them again. */
                m[c.n].facts = NULL;
                if (r->mappings[c.n].path && !(m[c.n].path = strdup(r->mappings[c.n].path)))
                        break;
        }
        if (c.n < r->n || !(na = reallocarray(p->early, p->n_early + 1, sizeof(*na)))) {
                record_free_mappings(&c);
                goto lost;
        }
        p->early = na;
        p->early[p->n_early++] = c;
        b = record_bytes(&c);
        p->bytes += b;
        h->bytes += b;
        return;
lost:
        early_clear(h, p);
        p->early_lost = true;
}

/* Unlinks p from everything and frees it. Under lock. */
static void proc_drop(struct exec_history *h, struct proc *p) {
        struct proc **pp = &h->buckets[bucket_of(p->pid)];

        while (*pp && *pp != p)
                pp = &(*pp)->next;
        if (*pp)
                *pp = p->next;
        if (p->exited) {
                struct owner_bytes *o = owner_slot(h, p->uid);

                if (o)
                        o->bytes -= MIN(o->bytes, p->bytes);
                exit_list_remove(h, p);
                h->exited--;
        }
        h->processes--;
        early_clear(h, p);
        h->bytes -= p->bytes;
        for (size_t i = 0; i < p->n; i++)
                interval_release(h, &p->m[i]);
        free(p->m);
        free(p);
}

struct exec_history *exec_history_free(struct exec_history *h) {
        if (!h)
                return NULL;
        exec_history_clear(h);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return NULL;
}

static void clear_locked(struct exec_history *h) {
        for (size_t b = 0; b < BUCKETS; b++)
                while (h->buckets[b])
                        proc_drop(h, h->buckets[b]);
        h->n_forks = 0;
}

void exec_history_clear(struct exec_history *h) {
        pthread_mutex_lock(&h->lock);
        clear_locked(h);
        pthread_mutex_unlock(&h->lock);
}

/* The latest process under pid (the one started last). Under lock. */
static struct proc *find_latest(struct exec_history *h, pid_t pid) {
        struct proc *best = NULL;

        for (struct proc *p = h->buckets[bucket_of(pid)]; p; p = p->next)
                if (p->pid == pid && (!best || p->start_time > best->start_time))
                        best = p;
        return best;
}

static struct proc *find(struct exec_history *h, pid_t pid, uint64_t start_time) {
        for (struct proc *p = h->buckets[bucket_of(pid)]; p; p = p->next)
                if (p->pid == pid && p->start_time == start_time)
                        return p;
        return NULL;
}

int exec_history_forget(struct exec_history *h, pid_t pid, uint64_t start_time) {
        struct proc *p;

        pthread_mutex_lock(&h->lock);
        p = find(h, pid, start_time);
        if (p)
                proc_drop(h, p);
        pthread_mutex_unlock(&h->lock);
        return p ? 0 : -ENOENT;
}

bool exec_history_complete(struct exec_history *h, pid_t pid, uint64_t start_time) {
        struct proc *p;
        bool r;

        pthread_mutex_lock(&h->lock);
        p = find(h, pid, start_time);
        r = p && (p->complete || p->exited);
        pthread_mutex_unlock(&h->lock);
        return r;
}

static struct proc *proc_add(struct exec_history *h, pid_t pid, uint64_t start_time) {
        struct proc *p = calloc(1, sizeof(*p));
        size_t b = bucket_of(pid);

        if (!p)
                return NULL;
        p->pid = pid;
        p->start_time = start_time;
        p->bytes = sizeof(*p);
        p->next = h->buckets[b];
        h->buckets[b] = p;
        h->processes++;
        h->bytes += p->bytes;
        return p;
}

/* Appends a copy of m valid from `from` (path copied). Under lock. */
static int interval_open(struct exec_history *h, struct proc *p, const struct exec_history_mapping *m,
                         uint64_t from) {
        struct exec_history_mapping c = *m;
        size_t before = p->allocated;

        if (p->n == p->allocated) {
                size_t na = p->allocated ? p->allocated * 2 : 8;
                struct exec_history_mapping *nm = reallocarray(p->m, na, sizeof(*nm));

                if (!nm)
                        return -ENOMEM;
                p->m = nm;
                p->allocated = na;
        }
        c.path = NULL;
        if (m->path && !(c.path = strdup(m->path)))
                return -ENOMEM;
        if (m->facts && !(c.facts = facts_intern(h, m->facts))) {
                free(c.path);
                return -ENOMEM;
        }
        c.from_usec = from;
        c.to_usec = UINT64_MAX;
        p->m[p->n++] = c;
        /* The array's growth and the path: what the process costs. */
        p->bytes += (p->allocated - before) * sizeof(c) + (c.path ? strlen(c.path) + 1 : 0);
        h->bytes += (p->allocated - before) * sizeof(c) + (c.path ? strlen(c.path) + 1 : 0);
        return 0;
}

static bool same_mapping(const struct exec_history_mapping *a, const struct exec_history_mapping *b) {
        return a->start == b->start && a->end == b->end && a->offset == b->offset && a->inode == b->inode &&
               a->dev_major == b->dev_major && a->dev_minor == b->dev_minor && a->flags == b->flags &&
               ((!a->path && !b->path) || (a->path && b->path && strcmp(a->path, b->path) == 0));
}

static int diff_push(struct exec_history_mapping **arr, size_t *n, const struct exec_history_mapping *m) {
        struct exec_history_mapping *na = reallocarray(*arr, *n + 1, sizeof(**arr));
        struct exec_history_mapping c = *m;

        if (!na)
                return -ENOMEM;
        *arr = na;
        c.path = NULL;
        c.facts = NULL;
        if (m->path && !(c.path = strdup(m->path)))
                return -ENOMEM;
        na[(*n)++] = c;
        return 0;
}

static bool reported_overlap(const struct exec_history_record *r, const struct exec_history_mapping *m) {
        for (size_t i = 0; i < r->n; i++)
                if (m->start < r->mappings[i].end && m->end > r->mappings[i].start)
                        return true;
        return false;
}

/* Whether [s, e) overlaps what the record states: its range, or a reported mapping. */
static bool in_authority(const struct exec_history_record *r, bool full, uint64_t s, uint64_t e) {
        const struct exec_history_mapping m = { .start = s, .end = e };

        return full || (s < r->hi && e > r->lo) || reported_overlap(r, &m);
}

/* Drops the oldest closed intervals of a live process past the bound; what is known starts at
 * the latest end dropped. Under lock. */
static void trim_intervals(struct exec_history *h, struct proc *p) {
        while (p->n > EXEC_HISTORY_INTERVALS_MAX) {
                size_t oldest = SIZE_MAX;

                for (size_t i = 0; i < p->n; i++)
                        if (p->m[i].to_usec != UINT64_MAX &&
                            (oldest == SIZE_MAX || p->m[i].to_usec < p->m[oldest].to_usec))
                                oldest = i;
                if (oldest == SIZE_MAX)
                        return;
                if (p->m[oldest].to_usec > p->known_since_usec)
                        p->known_since_usec = p->m[oldest].to_usec;
                h->bytes -= p->m[oldest].path ? strlen(p->m[oldest].path) + 1 : 0;
                p->bytes -= p->m[oldest].path ? strlen(p->m[oldest].path) + 1 : 0;
                interval_release(h, &p->m[oldest]);
                p->m[oldest] = p->m[--p->n];
        }
}

/* The part of a split mapping that stays: still valid since its own start, and in the diff as
 * added, since the whole went as removed (a Watch client would otherwise drop the part too). */
static int reopen_part(struct exec_history *h, struct proc *p, const struct exec_history_mapping *part, uint64_t from,
                       struct exec_history_diff *d) {
        int k = interval_open(h, p, part, from);

        if (k >= 0 && d)
                k = diff_push(&d->added, &d->n_added, part);
        return k;
}

/* Closes at t the open intervals the record has authority over, reopening the parts of each
 * outside the record's range (a mapping split by a partial munmap or mprotect: the rest stays
 * as it was, valid since its own start). Under lock. */
static int close_covered(struct exec_history *h, struct proc *p, const struct exec_history_record *r, bool full,
                         struct exec_history_diff *d) {
        size_t n = p->n;
        int k;

        for (size_t i = 0; i < n; i++) {
                struct exec_history_mapping m = p->m[i];

                if (m.to_usec != UINT64_MAX || !in_authority(r, full, m.start, m.end))
                        continue;
                /* Unchanged by the record: it stays open (the record reports it identically). */
                for (size_t j = 0; j < r->n; j++)
                        if (same_mapping(&m, &r->mappings[j]))
                                goto next;
                /* An exit that does not state it: gone before (a change not known), so not among
                 * what the process had at its exit (those close at the exit's very time). */
                p->m[i].to_usec = r->kind == EXEC_HISTORY_EXIT && r->time_usec > m.from_usec ? r->time_usec - 1
                                                                                           : r->time_usec;
                if (d && (k = diff_push(&d->removed, &d->n_removed, &m)) < 0)
                        return k;
                if (!full) {
                        /* Parts outside the range and outside every reported mapping survive. */
                        struct exec_history_mapping part = m;

                        if (m.start < r->lo) {
                                part.end = r->lo;
                                if (!reported_overlap(r, &part) && (k = reopen_part(h, p, &part, m.from_usec, d)) < 0)
                                        return k;
                        }
                        if (m.end > r->hi) {
                                part = m;
                                part.start = r->hi;
                                part.offset = m.offset + (r->hi - m.start);
                                if (!reported_overlap(r, &part) && (k = reopen_part(h, p, &part, m.from_usec, d)) < 0)
                                        return k;
                        }
                }
        next:;
        }
        return 0;
}

/* m's facts (a record's) for every interval of p of the same file that has none: captured later
 * (at exit, say) they are still the file's the interval mapped. -ENOMEM. Under lock. */
static int adopt_facts(struct exec_history *h, struct proc *p, const struct exec_history_mapping *m) {
        if (!m->facts || m->file_id == 0)
                return 0;
        for (size_t i = 0; i < p->n; i++) {
                struct exec_history_mapping *x = &p->m[i];

                if (x->facts || x->file_id != m->file_id || x->inode != m->inode || x->dev_major != m->dev_major ||
                    x->dev_minor != m->dev_minor)
                        continue;
                x->facts = facts_intern(h, m->facts);
                if (!x->facts)
                        return -ENOMEM;
        }
        return 0;
}

/* Opens intervals for what r reports that is not open already. Under lock. */
static int open_reported(struct exec_history *h, struct proc *p, const struct exec_history_record *r,
                         struct exec_history_diff *d) {
        for (size_t j = 0; j < r->n; j++) {
                bool open = false;
                int k;

                k = adopt_facts(h, p, &r->mappings[j]);
                if (k < 0)
                        return k;
                for (size_t i = 0; i < p->n && !open; i++)
                        open = p->m[i].to_usec == UINT64_MAX && same_mapping(&p->m[i], &r->mappings[j]);
                if (open)
                        continue;
                k = interval_open(h, p, &r->mappings[j], r->time_usec);
                if (k < 0)
                        return k;
                if (d && (k = diff_push(&d->added, &d->n_added, &r->mappings[j])) < 0)
                        return k;
        }
        return 0;
}

static void resolve_forks(struct exec_history *h, pid_t pid);

/* p's history is complete from t on: after a gap, what it knew before it still holds. */
static void become_complete(struct proc *p, uint64_t t) {
        if (p->gap_from && p->gap_to == UINT64_MAX)
                p->gap_to = t;
        else {
                p->gap_from = 0;
                p->known_since_usec = t;
        }
        p->complete = true;
}

static int apply_locked(struct exec_history *h, const struct exec_history_record *r, struct exec_history_diff *d) {
        bool full = r->kind != EXEC_HISTORY_RANGE;
        struct proc *p = find(h, r->pid, r->start_time);
        int k;

        if (!p) {
                p = proc_add(h, r->pid, r->start_time);
                if (!p)
                        return -ENOMEM;
        }
        if (p->exited)
                return 0;       /* nothing follows an exit */
        /* Drained after a read of the process began, about a change made before it: the read
         * (a seed) showed that change and what followed; applied now, it would undo those. */
        if (r->kind != EXEC_HISTORY_EXIT && r->time_usec < p->seeded_usec)
                return 0;
        h->records++;
        p->seq = h->records;
        p->uid = r->uid;
        p->euid = r->euid;
        p->suid = r->suid;
        p->dumpable = r->dumpable;
        memcpy(p->comm, r->comm, sizeof(p->comm));
        p->comm[sizeof(p->comm) - 1] = 0;

        if (r->kind == EXEC_HISTORY_EXEC) {
                p->exec_usec = r->time_usec;
                p->whole_first = false;
        }
        if (r->kind == EXEC_HISTORY_EXEC || r->unread) {
                /* Another program, or a change not known: no fork's set is under what follows. */
                early_clear(h, p);
                p->early_lost = true;
        }
        if (r->unread && r->kind != EXEC_HISTORY_EXIT) {
                if (r->kind == EXEC_HISTORY_EXEC)
                        /* Another program whose set is unknown: nothing before it holds. */
                        for (size_t i = 0; i < p->n; i++)
                                if (p->m[i].to_usec == UINT64_MAX)
                                        p->m[i].to_usec = r->time_usec;
                /* A change not known: from here the history may be wrong, until the capture's
                 * next record of the process, its whole set; what it knew before still holds,
                 * and the watchers must read it again. An exec not read leaves nothing known. */
                if (r->kind == EXEC_HISTORY_EXEC) {
                        p->complete = false;
                        p->gap_from = 0;
                } else if (p->complete) {
                        p->complete = false;
                        if (p->gap_from && p->gap_to != UINT64_MAX && p->gap_to > p->known_since_usec)
                                p->known_since_usec = p->gap_to;
                        p->gap_from = MAX(r->time_usec, p->known_since_usec);
                        p->gap_to = UINT64_MAX;
                }
                if (d && r->kind == EXEC_HISTORY_RANGE)
                        *d = (struct exec_history_diff) { .unknown = true, .lo = r->lo, .hi = r->hi };
                return 0;
        }
        if (r->unread)
                ;       /* an exit: the set it had is closed below */
        else if (r->kind == EXEC_HISTORY_EXEC) {
                /* Another program: nothing of the old one stays, and from here all is known. */
                for (size_t i = 0; i < p->n; i++)
                        if (p->m[i].to_usec == UINT64_MAX) {
                                p->m[i].to_usec = r->time_usec;
                                if (d && (k = diff_push(&d->removed, &d->n_removed, &p->m[i])) < 0)
                                        return k;
                        }
                if (!p->complete)
                        become_complete(p, r->time_usec);
        } else {
                k = close_covered(h, p, r, full, d);
                if (k < 0)
                        return k;
        }
        k = open_reported(h, p, r, d);
        if (k < 0)
                return k;
        if (d && !full && !p->complete) {
                /* The diff is against too little: the record's whole statement instead. */
                for (size_t i = 0; i < d->n_added; i++)
                        mapping_free_path(&d->added[i]);
                d->n_added = 0;
                for (size_t j = 0; j < r->n; j++)
                        if ((k = diff_push(&d->added, &d->n_added, &r->mappings[j])) < 0)
                                return k;
                d->whole_range = true;
                d->lo = r->lo;
                d->hi = r->hi;
        }
        if (!full && r->lo == 0 && r->hi == UINT64_MAX && !p->complete) {
                /* A change told as the whole set (the first of a process never told whole, or
                 * the next after one not read). */
                p->whole_first = p->exec_usec == 0 && p->n_early == 0 && !p->early_lost && !p->gap_from;
                become_complete(p, r->time_usec);
        }
        if (full && !p->complete && !r->unread)
                /* A first full record: what it states held since some time before; known from now. */
                become_complete(p, r->time_usec);
        if (p->complete)
                early_clear(h, p);
        else
                early_keep(h, p, r);
        if (r->kind == EXEC_HISTORY_EXIT) {
                for (size_t i = 0; i < p->n; i++)
                        if (p->m[i].to_usec == UINT64_MAX)
                                p->m[i].to_usec = r->time_usec;
                p->exited = true;
                p->exit_usec = r->time_usec;
                p->exit_prev = h->exit_tail;
                if (h->exit_tail)
                        h->exit_tail->exit_next = p;
                else
                        h->exit_head = p;
                h->exit_tail = p;
                h->exited++;
        }
        trim_intervals(h, p);
        if (p->exited) {
                struct owner_bytes *o = owner_slot(h, p->uid);

                if (o)
                        o->bytes += p->bytes;
        }
        if (h->n_forks > 0 && p->complete)
                resolve_forks(h, p->pid);
        return 0;
}

/* The bytes uid's exited processes hold. Under lock. */
static size_t uid_bytes(struct exec_history *h, uid_t uid) {
        const struct owner_bytes *o = owner_slot(h, uid);
        size_t b = 0;

        if (o)
                return o->bytes;
        for (const struct proc *p = h->exit_head; p; p = p->exit_next)
                if (p->uid == uid)
                        b += p->bytes;
        return b;
}

/* Makes the bounds hold: the oldest exits go first. Under lock. */
static void enforce_bounds(struct exec_history *h, uid_t uid) {
        while (h->bytes > h->cfg.max_bytes && h->exit_head) {
                proc_drop(h, h->exit_head);
                h->evicted++;
        }
        while (uid_bytes(h, uid) > h->cfg.max_bytes_per_uid) {
                struct proc *p = h->exit_head;

                while (p && p->uid != uid)
                        p = p->exit_next;
                if (!p)
                        break;
                proc_drop(h, p);
                h->evicted++;
        }
}

int exec_history_apply(struct exec_history *h, const struct exec_history_record *r, struct exec_history_diff *ret_diff) {
        struct exec_history_diff d = {};
        int k;

        if (!h || !r || r->pid <= 0 || (r->n > 0 && !r->mappings) || (r->kind == EXEC_HISTORY_RANGE && r->hi <= r->lo))
                return -EINVAL;
        pthread_mutex_lock(&h->lock);
        k = apply_locked(h, r, ret_diff ? &d : NULL);
        if (k >= 0 && r->kind == EXEC_HISTORY_EXIT)
                enforce_bounds(h, r->uid);
        pthread_mutex_unlock(&h->lock);
        if (k < 0) {
                exec_history_diff_done(&d);
                return k;
        }
        if (ret_diff)
                *ret_diff = d;
        return 0;
}

/* The process under pid that was alive at t and is known then (the latest such). Under lock. */
static struct proc *find_alive_at(struct exec_history *h, pid_t pid, uint64_t t) {
        struct proc *best = NULL;

        for (struct proc *p = h->buckets[bucket_of(pid)]; p; p = p->next)
                if (p->pid == pid && p->complete && p->known_since_usec <= t && (!p->exited || p->exit_usec >= t) &&
                    !(p->gap_from && p->gap_from <= t && t < p->gap_to) &&
                    (!best || p->start_time > best->start_time))
                        best = p;
        return best;
}

/* Forgets every interval of p. Under lock. */
static void intervals_clear(struct exec_history *h, struct proc *p) {
        for (size_t i = 0; i < p->n; i++) {
                size_t b = p->m[i].path ? strlen(p->m[i].path) + 1 : 0;

                p->bytes -= b;
                h->bytes -= b;
                interval_release(h, &p->m[i]);
        }
        p->bytes -= p->allocated * sizeof(*p->m);
        h->bytes -= p->allocated * sizeof(*p->m);
        free(p->m);
        p->m = NULL;
        p->n = p->allocated = 0;
}

/* c starts at t with src's set valid then, and the range records c had before (its changes
 * drained before its fork event) are applied again over it, in their order. Under lock. */
static int fork_base(struct exec_history *h, struct proc *c, const struct proc *src, uint64_t t) {
        int k;

        intervals_clear(h, c);
        c->complete = true;
        c->gap_from = 0;
        c->known_since_usec = t;
        for (size_t i = 0; i < src->n; i++)
                if (src->m[i].from_usec <= t && t < src->m[i].to_usec &&
                    (k = interval_open(h, c, &src->m[i], t)) < 0)
                        return k;
        for (size_t i = 0; i < c->n_early; i++) {
                k = close_covered(h, c, &c->early[i], false, NULL);
                if (k < 0 || (k = open_reported(h, c, &c->early[i], NULL)) < 0)
                        return k;
        }
        early_clear(h, c);
        trim_intervals(h, c);
        return 0;
}

/* c became complete from its first change, told whole, before its fork came (two ring buffers):
 * from the fork to that change it had src's set at t (it changed nothing the capture tells
 * before; its first change is that record). What that record kept is valid from t; what it
 * did not, until it. Under lock. */
static int fork_backfill(struct exec_history *h, struct proc *c, const struct proc *src, uint64_t t) {
        uint64_t since = c->known_since_usec;
        size_t n = c->n;
        int k;

        for (size_t i = 0; i < src->n; i++) {
                const struct exec_history_mapping *m = &src->m[i];
                bool kept = false;

                if (!(m->from_usec <= t && t < m->to_usec))
                        continue;
                for (size_t j = 0; j < n && !kept; j++)
                        if (c->m[j].from_usec == since && same_mapping(&c->m[j], m)) {
                                c->m[j].from_usec = t;
                                kept = true;
                        }
                if (kept)
                        continue;
                k = interval_open(h, c, m, t);
                if (k < 0)
                        return k;
                c->m[c->n - 1].to_usec = since;
        }
        c->known_since_usec = t;
        c->whole_first = false;
        trim_intervals(h, c);
        return 0;
}

/* -ESRCH: parent not known at time_usec (yet); -ENOENT: the child needs no base. Under lock. */
static int fork_locked(struct exec_history *h, pid_t parent, pid_t child, uint64_t child_start_time,
                       uint64_t time_usec) {
        struct proc *pp = find_alive_at(h, parent, time_usec), *c = find(h, child, child_start_time);

        if (!pp)
                return -ESRCH;
        if (pp != c && c && c->whole_first && !c->exited && time_usec < c->known_since_usec)
                return fork_backfill(h, c, pp, time_usec);
        /* A child already known: its exec or exit stated all, or its changes came first (they
         * lie over the parent's set), or more of them than were kept (its exit will tell). */
        if (pp == c || (c && (c->complete || c->exited || c->early_lost)))
                return -ENOENT;
        if (!c) {
                c = proc_add(h, child, child_start_time);
                if (!c)
                        return -ENOMEM;
                c->uid = pp->uid;
                c->euid = pp->euid;
                c->suid = pp->suid;
                c->dumpable = pp->dumpable;
                memcpy(c->comm, pp->comm, sizeof(c->comm));
        }
        return fork_base(h, c, pp, time_usec);
}

/* The forks waiting for pid, whose record just came. Under lock. */
static void resolve_forks(struct exec_history *h, pid_t pid) {
        for (size_t i = 0; i < h->n_forks;) {
                const struct pending_fork *f = &h->forks[i];

                if (f->parent != pid ||
                    fork_locked(h, f->parent, f->child, f->child_start_time, f->time_usec) == -ESRCH) {
                        i++;
                        continue;
                }
                memmove(&h->forks[i], &h->forks[i + 1], (h->n_forks - i - 1) * sizeof(h->forks[0]));
                h->n_forks--;
        }
}

int exec_history_fork(struct exec_history *h, pid_t parent, pid_t child, uint64_t child_start_time,
                      uint64_t time_usec) {
        int k;

        pthread_mutex_lock(&h->lock);
        k = fork_locked(h, parent, child, child_start_time, time_usec);
        if (k == -ESRCH) {
                if (h->n_forks == PENDING_FORKS) {
                        memmove(&h->forks[0], &h->forks[1], (PENDING_FORKS - 1) * sizeof(h->forks[0]));
                        h->n_forks--;
                }
                h->forks[h->n_forks++] = (struct pending_fork) {
                        .parent = parent, .child = child, .child_start_time = child_start_time, .time_usec = time_usec,
                };
                k = -ENOENT;
        }
        pthread_mutex_unlock(&h->lock);
        return k;
}

uint64_t exec_history_generation(const struct exec_history *h) {
        uint64_t g;

        pthread_mutex_lock(&((struct exec_history *) h)->lock);
        g = h->records;
        pthread_mutex_unlock(&((struct exec_history *) h)->lock);
        return g;
}

int exec_history_seed(struct exec_history *h, pid_t pid, uint64_t start_time, uint64_t read_from, uint64_t read_to,
                      uint64_t generation, const struct exec_history_mapping *m, size_t n, uid_t uid) {
        struct proc *p;
        int k = 0;

        if (read_to < read_from)
                return -EINVAL;
        pthread_mutex_lock(&h->lock);
        p = find(h, pid, start_time);
        if (p && (p->complete || p->exited || p->seq > generation))
                goto out;
        if (!p && !(p = proc_add(h, pid, start_time))) {
                k = -ENOMEM;
                goto out;
        }
        if (p->gap_from && p->gap_to == UINT64_MAX) {
                /* In a gap after a change not read: the read states everything from now, and
                 * what was known before the gap still holds. */
                struct exec_history_record r = {
                        .kind = EXEC_HISTORY_RANGE, .pid = pid, .start_time = start_time, .time_usec = read_from,
                        .lo = 0, .hi = UINT64_MAX, .mappings = m, .n = n,
                };

                k = close_covered(h, p, &r, true, NULL);
                if (k >= 0)
                        k = open_reported(h, p, &r, NULL);
                if (k >= 0) {
                        early_clear(h, p);
                        p->seeded_usec = read_from;
                        become_complete(p, read_to);
                }
                goto out;
        }
        /* What records said before is older than the read: the read states everything. */
        early_clear(h, p);
        intervals_clear(h, p);
        p->uid = p->euid = p->suid = uid;
        p->dumpable = 1;
        p->complete = true;
        p->whole_first = false;
        p->gap_from = 0;
        /* Open from the read's start, so that a record of a change within it closes them in
         * order; known from its end. */
        p->known_since_usec = read_to;
        p->seeded_usec = read_from;
        for (size_t i = 0; i < n && k >= 0; i++)
                k = interval_open(h, p, &m[i], read_from);
out:
        pthread_mutex_unlock(&h->lock);
        return k;
}

void exec_history_expire(struct exec_history *h, uint64_t now_usec) {
        pthread_mutex_lock(&h->lock);
        while (h->exit_head && now_usec - h->exit_head->exit_usec >= h->cfg.retain_usec &&
               now_usec >= h->exit_head->exit_usec)
                proc_drop(h, h->exit_head);
        pthread_mutex_unlock(&h->lock);
}

static struct exec_history_facts *memdup_facts(const struct exec_history_facts *f) {
        struct exec_history_facts *c = malloc(sizeof(*c));

        if (c)
                *c = *f;
        return c;
}

static int cmp_start(const void *a, const void *b) {
        const struct exec_history_mapping *x = a, *y = b;

        return x->start < y->start ? -1 : x->start > y->start;
}

int exec_history_get(struct exec_history *h, pid_t pid, uint64_t start_time, uint64_t time_usec, unsigned flags,
                     struct exec_history_view *ret) {
        struct exec_history_view v = {};
        bool at_time = flags & EXEC_HISTORY_AT_TIME;
        struct proc *p;
        int k = 0;

        pthread_mutex_lock(&h->lock);
        p = start_time ? find(h, pid, start_time) : find_latest(h, pid);
        /* Not complete: nothing known, but for times before a gap that is still open. */
        if (!p || ((flags & EXEC_HISTORY_EXITED_ONLY) && !p->exited) ||
            (!p->complete && !(at_time && p->gap_from && time_usec < p->gap_from))) {
                k = -ENOENT;
                goto out;
        }
        v = (struct exec_history_view) {
                .pid = p->pid, .start_time = p->start_time, .exited = p->exited, .exit_usec = p->exit_usec,
                .known_since_usec = p->known_since_usec,
                .program_since_usec = MAX(p->known_since_usec, p->exec_usec),
                .uid = p->uid, .euid = p->euid, .suid = p->suid,
                .dumpable = p->dumpable,
        };
        memcpy(v.comm, p->comm, sizeof(v.comm));
        if (at_time && time_usec < p->known_since_usec) {
                k = -ERANGE;
                goto out;
        }
        if (at_time && p->gap_from && p->gap_from <= time_usec && time_usec < p->gap_to) {
                /* In a gap that ended (an open one is not complete: refused above). */
                v.known_since_usec = p->gap_to;
                k = -ERANGE;
                goto out;
        }
        v.mappings = calloc(MAX(p->n, (size_t) 1), sizeof(*v.mappings));
        if (!v.mappings) {
                k = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < p->n; i++) {
                const struct exec_history_mapping *m = &p->m[i];
                /* At its exit: every interval still open then was closed at the exit's time
                 * (those the exit record opened too: a process first seen at its exit). */
                bool valid = at_time ? m->from_usec <= time_usec && time_usec < m->to_usec
                                     : (p->exited ? m->to_usec == p->exit_usec : m->to_usec == UINT64_MAX);

                if (!valid)
                        continue;
                v.mappings[v.n] = *m;
                v.mappings[v.n].path = NULL;
                v.mappings[v.n].facts = NULL;
                if ((m->path && !(v.mappings[v.n].path = strdup(m->path))) ||
                    (m->facts && !(v.mappings[v.n].facts = memdup_facts(m->facts)))) {
                        mapping_free_path(&v.mappings[v.n]);
                        k = -ENOMEM;
                        break;
                }
                v.n++;
        }
        qsort(v.mappings, v.n, sizeof(*v.mappings), cmp_start);
out:
        pthread_mutex_unlock(&h->lock);
        if (k < 0 && k != -ERANGE) {
                exec_history_view_done(&v);
                return k;
        }
        *ret = v;
        return k;
}

void exec_history_get_stats(struct exec_history *h, struct exec_history_stats *ret) {
        pthread_mutex_lock(&h->lock);
        *ret = (struct exec_history_stats) {
                .processes = h->processes, .exited = h->exited, .bytes = h->bytes, .evicted = h->evicted,
                .records = h->records,
        };
        pthread_mutex_unlock(&h->lock);
}
