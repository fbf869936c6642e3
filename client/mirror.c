/* libmemctl's mirror: the executable file mappings of some processes kept in local memory, filled by a listing and kept current by Watch, looked up from any thread. */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <linux/membarrier.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "libmemctl-internal.h"
#include "mirror-layout.h"

/* Design. One thread (the pump) changes the mirror: add, remove, update, set_limits. Lookups
 * run on any thread, concurrently with each other and with the pump, without a lock:
 *
 *  - What a lookup reads is immutable once published: a table of the mirrored processes
 *    (sorted by pid), and per process a snapshot of its layout (sorted by start). The pump
 *    builds a new one aside and publishes it with one atomic store; the one it replaced is
 *    retired.
 *  - A lookup runs inside a read section: its thread's counter in the mirror (a cache line of
 *    its own, found through a thread-local cache) goes odd, then even when done. Retired memory
 *    is freed once every counter that was odd when it was retired has moved: each lookup that
 *    could still see it has ended. The pump checks that at its next calls, never waiting.
 *  - The counter's store must be seen before the lookup's loads (or the pump's publication by
 *    them): the pump pays for that with membarrier(2), a barrier on every CPU running a thread
 *    of ours, so that a lookup pays none; where membarrier is refused, each lookup fences.
 *  - What a lookup hands out must outlive the section: the mapping is copied into the
 *    caller's struct, and its strings point to the mirror's files, each distinct file kept
 *    once and until the mirror is freed (bounded: max_files).
 *
 * A rwlock would make every lookup write one shared cache line; a counter is written by its
 * thread only. */

/* Processes one mirror keeps unless the caller says (each is a connection to the daemon, which
 * itself allows 16 watching connections per user and 256 in all). */
#define MIRROR_PROCESSES_DEFAULT 1024
/* Distinct files one mirror keeps unless the caller says. */
#define MIRROR_FILES_DEFAULT 65536
/* Events applied per process per update: a process changing without pause does not keep the
 * update from returning (what is left is applied at the next one). */
#define MIRROR_BATCH 4096

/* A file as mappings name it, immutable and kept until the mirror is freed. */
struct mirror_file {
        struct mirror_file *next;       /* in its hash chain (the pump's) */
        uint64_t hash;
        uint64_t inode;
        uint32_t dev_major, dev_minor;
        bool deleted;
        size_t build_id_size;
        const char *path;               /* into data, or NULL */
        const char *build_id_hex;
        const uint8_t *build_id;
        char data[];
};


/* A process's layout as published: immutable. */
struct snapshot {
        uint64_t as_of_usec;
        bool exact, exited;
        size_t n;
        /* The slots' ends, packed apart (in the same block, after the slots): a lookup's
         * search touches only them, without a branch to mispredict. */
        const uint64_t *ends;
        struct mirror_slot slots[];
};

/* What lookups see of a process: its identity and its layout's latest snapshot. */
struct cell {
        pid_t pid;
        uint64_t start_time;
        _Atomic(struct snapshot *) snap;
};

/* The mirrored processes as published: immutable, sorted by pid. */
struct table {
        size_t n;
        struct cell *cells[];
};

/* A process as the pump keeps it. */
struct mirrored {
        struct cell *cell;
        memctl *conn;                   /* carries the Watch */
        memctl_watch *watch;
        struct mirror_layout layout;    /* being changed */
        bool exited, dirty, pending;    /* pending: events may wait in its reader */
        uint64_t listed_from, listed_to; /* the latest listing was made in [from, to] */
        uint64_t event_usec;            /* the last event applied: 0 none since that listing */
};

/* A reading thread's counter: owned by one thread at a time, kept until the mirror is freed. */
struct reader {
        _Atomic uint64_t seq;           /* odd: its thread is in a read section */
        _Atomic bool owned;
        struct reader *next;            /* in the mirror's list: set before it is pushed */
} __attribute__((aligned(64)));         /* a cache line of its own (its size too: aligned_alloc) */

/* Retired memory freed together once its lookups ended. */
struct grace {
        struct grace *next;
        struct reader **readers;        /* those odd when it was retired, with their seq then */
        uint64_t *seqs;
        size_t n_readers;
        size_t n;
        void *ptrs[];
};

struct memctl_mirror {
        uint64_t id;                    /* unique: what threads' caches name the mirror by */
        bool membarrier;                /* the pump's barrier works: lookups need none */
        _Atomic(struct reader *) readers;
        _Atomic(struct table *) table;

        /* The pump's. */
        char *path;
        memctl *conn;                   /* listings */
        int epoll_fd;
        struct mirrored **procs;        /* in no order */
        size_t n, allocated;
        size_t max_processes, max_files;
        struct mirror_file **files;     /* hash buckets */
        size_t n_files, n_buckets;
        void **retiring;                /* retired by the current call */
        size_t n_retiring, allocated_retiring;
        struct grace *graces;
};

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void mappings_freep(memctl_mappings **l) {
        memctl_mappings_free(*l);
}

/* ------------------------------------------------------------------ reading */

#define THREAD_CACHE 4

/* The thread's counters in the mirrors it looked up in last (the first the latest). */
static _Thread_local struct {
        uint64_t id;
        struct reader *reader;
} thread_cache[THREAD_CACHE] __attribute__((tls_model("initial-exec")));

static _Atomic uint64_t mirror_ids = 1;

/* The mirrors not freed yet, by id: a counter pushed out of a thread's cache is given back only
 * when its mirror still exists. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *live_ids;
static size_t n_live, allocated_live;

static int live_add(uint64_t id) {
        int r = 0;

        pthread_mutex_lock(&live_lock);
        if (n_live == allocated_live) {
                size_t k = allocated_live ? allocated_live * 2 : 8;
                uint64_t *x = reallocarray(live_ids, k, sizeof(*x));

                if (x) {
                        live_ids = x;
                        allocated_live = k;
                } else
                        r = -ENOMEM;
        }
        if (r == 0)
                live_ids[n_live++] = id;
        pthread_mutex_unlock(&live_lock);
        return r;
}

static void live_remove(uint64_t id) {
        pthread_mutex_lock(&live_lock);
        for (size_t i = 0; i < n_live; i++)
                if (live_ids[i] == id) {
                        live_ids[i] = live_ids[--n_live];
                        break;
                }
        pthread_mutex_unlock(&live_lock);
}

static void give_back(uint64_t id, struct reader *r) {
        pthread_mutex_lock(&live_lock);
        for (size_t i = 0; i < n_live; i++)
                if (live_ids[i] == id) {
                        atomic_store(&r->owned, false);
                        break;
                }
        pthread_mutex_unlock(&live_lock);
}

/* The calling thread's counter in m: a free one taken, or a new one; NULL without memory. */
static struct reader *reader_take(const memctl_mirror *mc) {
        memctl_mirror *m = (memctl_mirror *) mc;
        struct reader *r, *head;

        for (size_t i = 1; i < THREAD_CACHE; i++)
                if (thread_cache[i].id == m->id) {
                        r = thread_cache[i].reader;
                        thread_cache[i] = thread_cache[0];
                        goto cached;
                }
        for (r = atomic_load(&m->readers); r; r = r->next) {
                bool no = false;

                if (atomic_compare_exchange_strong(&r->owned, &no, true))
                        break;
        }
        if (!r) {
                r = aligned_alloc(64, sizeof(*r));
                if (!r)
                        return NULL;
                memset(r, 0, sizeof(*r));
                r->owned = true;
                head = atomic_load(&m->readers);
                do
                        r->next = head;
                while (!atomic_compare_exchange_weak(&m->readers, &head, r));
        }
        /* The counter pushed out of the cache is given back (even: not in a section). */
        if (thread_cache[THREAD_CACHE - 1].reader)
                give_back(thread_cache[THREAD_CACHE - 1].id, thread_cache[THREAD_CACHE - 1].reader);
        memmove(&thread_cache[1], &thread_cache[0], (THREAD_CACHE - 1) * sizeof(thread_cache[0]));
cached:
        thread_cache[0].id = m->id;
        thread_cache[0].reader = r;
        return r;
}

/* Opens a read section: NULL when the thread has no counter (no memory). A section opened
 * inside another (a signal handler's lookup) is covered by it: the counter is left alone. */
static inline struct reader *read_begin(const memctl_mirror *m, uint64_t *ret_before) {
        struct reader *r = thread_cache[0].id == m->id ? thread_cache[0].reader : reader_take(m);
        uint64_t v;

        if (!r)
                return NULL;
        v = *ret_before = atomic_load_explicit(&r->seq, memory_order_relaxed);
        if (v & 1)
                return r;
        atomic_store_explicit(&r->seq, v + 1, memory_order_relaxed);
        /* The store before the loads: the pump's membarrier() orders them, or this fence. */
        if (m->membarrier)
                atomic_signal_fence(memory_order_seq_cst);
        else
                atomic_thread_fence(memory_order_seq_cst);
        return r;
}

static inline void read_end(struct reader *r, uint64_t seq_before) {
        if (!(seq_before & 1))
                atomic_store_explicit(&r->seq, seq_before + 2, memory_order_release);
}

static inline const struct cell *table_find(const struct table *t, pid_t pid) {
        size_t lo = 0, hi = t ? t->n : 0;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (t->cells[mid]->pid < pid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < (t ? t->n : 0) && t->cells[lo]->pid == pid ? t->cells[lo] : NULL;
}

/* mirror_slots_bound() over the packed ends: the index of the first end above address. */
static inline size_t ends_bound(const uint64_t *ends, size_t n, uint64_t address) {
        const uint64_t *base = ends;

        if (n == 0)
                return 0;
        while (n > 1) {
                size_t half = n / 2;

                base = base[half] <= address ? base + half : base;
                n -= half;
        }
        return (size_t) (base - ends) + (*base <= address);
}

static void slot_to_mapping(const struct mirror_slot *s, struct memctl_mapping *x) {
        const struct mirror_file *f = s->file;

        *x = (struct memctl_mapping) {
                .size = sizeof(struct memctl_mapping),
                .start = s->start, .end = s->end, .offset = s->offset, .inode = f->inode,
                .dev_major = f->dev_major, .dev_minor = f->dev_minor, .page_size = s->page_size,
                .flags = s->flags, .deleted = f->deleted, .kind = MEMCTL_KIND_FILE, .kind_name = "file",
                .name = f->path, .path = f->path, .name_exact = f->path, .path_exact = f->path,
                .build_id_hex = f->build_id_hex, .build_id = f->build_id, .build_id_size = f->build_id_size,
        };
        memcpy(x->perms, s->perms, sizeof(x->perms));
}

int memctl_mirror_lookup(const memctl_mirror *m, pid_t pid, uint64_t address, struct memctl_mapping *ret) {
        struct memctl_mapping x;
        const struct cell *c;
        struct reader *s;
        uint64_t seq;
        int r = 0;

        if (!m || !ret || ret->size < MAPPING_SIZE_0_1)
                return -EINVAL;
        s = read_begin(m, &seq);
        if (!s)
                return -ENOMEM;
        c = table_find(atomic_load(&m->table), pid);
        if (c) {
                const struct snapshot *snap = atomic_load(&c->snap);

                if (snap->exited)
                        r = -ESRCH;
                else {
                        size_t i = ends_bound(snap->ends, snap->n, address);

                        if (i < snap->n && snap->slots[i].start <= address) {
                                slot_to_mapping(&snap->slots[i], &x);
                                r = 1;
                        }
                }
        } else
                r = -ESRCH;
        read_end(s, seq);
        if (r > 0)
                (void) copy_sized(ret, &x, sizeof(x), MAPPING_SIZE_0_1);
        return r;
}

/* What a process's cell and snapshot say (each pointer may be NULL; all untouched on failure):
 * its start time, and how far it is current (exact or a lower bound). -ESRCH when pid is not
 * mirrored. */
static int cell_read(const memctl_mirror *m, pid_t pid, uint64_t *ret_start_time, uint64_t *ret_as_of, bool *ret_exact) {
        const struct cell *c;
        struct reader *s;
        uint64_t seq;

        s = read_begin(m, &seq);
        if (!s)
                return -ENOMEM;
        c = table_find(atomic_load(&m->table), pid);
        if (c) {
                const struct snapshot *snap = atomic_load(&c->snap);

                if (ret_start_time)
                        *ret_start_time = c->start_time;
                if (ret_as_of)
                        *ret_as_of = snap->as_of_usec;
                if (ret_exact)
                        *ret_exact = snap->exact;
        }
        read_end(s, seq);
        return c ? 0 : -ESRCH;
}

int memctl_mirror_get_as_of(const memctl_mirror *m, pid_t pid, uint64_t *ret_time_usec) {
        bool exact = false;
        int r = m && ret_time_usec ? cell_read(m, pid, NULL, ret_time_usec, &exact) : -EINVAL;

        return r < 0 ? r : exact;
}

int memctl_mirror_get_start_time(const memctl_mirror *m, pid_t pid, uint64_t *ret_start_time) {
        return m && ret_start_time ? cell_read(m, pid, ret_start_time, NULL, NULL) : -EINVAL;
}

/* ------------------------------------------------------------------ retiring */

/* p is freed once no lookup can see it any more; -ENOMEM leaves it to the caller. */
static int retire(memctl_mirror *m, void *p) {
        if (!p)
                return 0;
        if (m->n_retiring == m->allocated_retiring) {
                size_t k = m->allocated_retiring ? m->allocated_retiring * 2 : 16;
                void **x = reallocarray(m->retiring, k, sizeof(*x));

                if (!x)
                        return -ENOMEM;
                m->retiring = x;
                m->allocated_retiring = k;
        }
        m->retiring[m->n_retiring++] = p;
        return 0;
}

static bool grace_over(const struct grace *g) {
        for (size_t i = 0; i < g->n_readers; i++)
                if (atomic_load_explicit(&g->readers[i]->seq, memory_order_acquire) == g->seqs[i])
                        return false;
        return true;
}

static void grace_free(struct grace *g) {
        for (size_t i = 0; i < g->n; i++)
                free(g->ptrs[i]);
        free(g->readers);
        free(g->seqs);
        free(g);
}

/* The counters in a section now, after a barrier on every thread. */
static int grace_sample(memctl_mirror *m, struct grace *g) {
        struct reader *head;
        size_t k = 0;

        if (m->membarrier)
                (void) syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
        else
                atomic_thread_fence(memory_order_seq_cst);
        /* Counters pushed after this load belong to threads that entered after the publication:
         * they see it. Those before it are all walked (the list only grows at its head). */
        head = atomic_load(&m->readers);
        for (struct reader *r = head; r; r = r->next)
                k++;
        g->readers = calloc(MAX(k, (size_t) 1), sizeof(*g->readers));
        g->seqs = calloc(MAX(k, (size_t) 1), sizeof(*g->seqs));
        if (!g->readers || !g->seqs)
                return -ENOMEM;
        g->n_readers = 0;
        for (struct reader *r = head; r; r = r->next) {
                uint64_t v = atomic_load(&r->seq);

                if (v & 1) {
                        g->readers[g->n_readers] = r;
                        g->seqs[g->n_readers++] = v;
                }
        }
        return 0;
}

/* At the end of each call of the pump, after its publications: what it retired waits for the
 * lookups under way now, and what waited before is freed where they ended. */
static void reclaim(memctl_mirror *m) {
        if (m->n_retiring > 0) {
                struct grace *g = calloc(1, sizeof(*g) + m->n_retiring * sizeof(void *));

                if (g && grace_sample(m, g) < 0) {
                        g->n = 0;
                        grace_free(g);
                        g = NULL;
                }
                if (g) {
                        memcpy(g->ptrs, m->retiring, m->n_retiring * sizeof(void *));
                        g->n = m->n_retiring;
                        g->next = m->graces;
                        m->graces = g;
                        m->n_retiring = 0;
                }
                /* Else kept for the next call: leaked never, freed late at worst. */
        }
        for (struct grace **gp = &m->graces; *gp;) {
                struct grace *g = *gp;

                if (grace_over(g)) {
                        *gp = g->next;
                        grace_free(g);
                } else
                        gp = &g->next;
        }
}

/* ------------------------------------------------------------------ files */

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
        const unsigned char *b = p;

        for (size_t i = 0; i < n; i++)
                h = (h ^ b[i]) * UINT64_C(0x100000001b3);
        return h;
}

static bool same_str(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The mirror's file for m's: found, or made. -ENOSPC past max_files. */
static int file_get(memctl_mirror *m, const struct memctl_mapping *x, const struct mirror_file **ret) {
        size_t plen = x->path ? strlen(x->path) + 1 : 0, hlen = x->build_id_hex ? strlen(x->build_id_hex) + 1 : 0;
        size_t blen = x->build_id ? x->build_id_size : 0;
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        struct mirror_file *f;
        char *p;

        h = hash_bytes(h, &x->inode, sizeof(x->inode));
        h = hash_bytes(h, &x->dev_major, sizeof(x->dev_major));
        h = hash_bytes(h, &x->dev_minor, sizeof(x->dev_minor));
        h = hash_bytes(h, x->path ?: "", plen);
        if (m->n_buckets > 0)
                for (f = m->files[h % m->n_buckets]; f; f = f->next)
                        if (f->hash == h && f->inode == x->inode && f->dev_major == x->dev_major &&
                            f->dev_minor == x->dev_minor && f->deleted == x->deleted && same_str(f->path, x->path) &&
                            same_str(f->build_id_hex, x->build_id_hex) && f->build_id_size == blen &&
                            (blen == 0 || memcmp(f->build_id, x->build_id, blen) == 0)) {
                                *ret = f;
                                return 0;
                        }
        if (m->n_files >= m->max_files)
                return -ENOSPC;
        if (m->n_files >= m->n_buckets) {
                size_t k = m->n_buckets ? m->n_buckets * 2 : 64;
                struct mirror_file **b = calloc(k, sizeof(*b));

                if (!b)
                        return -ENOMEM;
                for (size_t i = 0; i < m->n_buckets; i++)
                        while (m->files[i]) {
                                struct mirror_file *g = m->files[i];

                                m->files[i] = g->next;
                                g->next = b[g->hash % k];
                                b[g->hash % k] = g;
                        }
                free(m->files);
                m->files = b;
                m->n_buckets = k;
        }
        f = malloc(sizeof(*f) + plen + hlen + blen);
        if (!f)
                return -ENOMEM;
        *f = (struct mirror_file) {
                .hash = h, .inode = x->inode, .dev_major = x->dev_major, .dev_minor = x->dev_minor,
                .deleted = x->deleted, .build_id_size = blen,
        };
        p = f->data;
        if (plen) {
                f->path = memcpy(p, x->path, plen);
                p += plen;
        }
        if (hlen) {
                f->build_id_hex = memcpy(p, x->build_id_hex, hlen);
                p += hlen;
        }
        if (blen)
                f->build_id = memcpy(p, x->build_id, blen);
        f->next = m->files[h % m->n_buckets];
        m->files[h % m->n_buckets] = f;
        m->n_files++;
        *ret = f;
        return 0;
}

/* ------------------------------------------------------------------ a layout being changed */

/* Puts x in, replacing what it overlaps (the kernel's mapping replaced theirs). */
static int slots_put(memctl_mirror *m, struct mirrored *p, const struct memctl_mapping *x) {
        struct mirror_slot slot;
        const struct mirror_file *f;
        int r;

        if (x->end <= x->start)
                return 0;
        r = file_get(m, x, &f);
        if (r < 0)
                return r;
        slot = (struct mirror_slot) {
                .start = x->start, .end = x->end, .offset = x->offset, .page_size = x->page_size,
                .file = f, .flags = x->flags,
        };
        memcpy(slot.perms, x->perms, sizeof(slot.perms));
        r = mirror_layout_put(&p->layout, &slot);
        if (r > 0)
                p->dirty = true;
        return MIN(r, 0);
}

static bool mirrored_kind(const struct memctl_mapping *x) {
        return (x->flags & MEMCTL_MAPPING_EXEC) && x->kind == MEMCTL_KIND_FILE;
}

/* Lists p again: its layout now replaces what was kept. */
static int relist(memctl_mirror *m, struct mirrored *p) {
        _cleanup_(mappings_freep) memctl_mappings *l = NULL;
        uint64_t from = now_usec();
        int r;

        r = memctl_list_mappings(m->conn, p->cell->pid, p->cell->start_time,
                                 MEMCTL_EXECUTABLE_ONLY | MEMCTL_FILE_BACKED_ONLY, &l);
        p->dirty = true;
        p->layout.n = 0;
        p->event_usec = 0;
        if (r == -ESRCH || r == -ESTALE) {
                p->exited = true;
                return 0;
        }
        if (r < 0)
                return r;
        /* Changes stamped before `from` are in the listing; after `to` they are not; between,
         * it cannot tell (a replay of those is right once all of them were applied). */
        p->listed_from = from;
        p->listed_to = now_usec();
        /* Added without a start time (not yet in the table, so still its to change): the
         * listing names the process. */
        if (p->cell->start_time == 0 && memctl_mappings_get_process(l, NULL, &p->cell->start_time) < 0)
                return -EPROTO;
        for (size_t i = 0; i < memctl_mappings_count(l); i++) {
                struct memctl_mapping x = MEMCTL_MAPPING_INIT;

                if (memctl_mappings_get(l, i, &x) < 0 || !mirrored_kind(&x))
                        continue;
                r = slots_put(m, p, &x);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Publishes p's layout when it changed (the old snapshot retired). */
static int publish(memctl_mirror *m, struct mirrored *p) {
        struct snapshot *s, *old;
        bool exact = p->event_usec > p->listed_to;

        if (!p->dirty)
                return 0;
        size_t n = p->exited ? 0 : p->layout.n;
        uint64_t *ends;

        s = malloc(sizeof(*s) + n * (sizeof(struct mirror_slot) + sizeof(uint64_t)));
        if (!s)
                return -ENOMEM;
        ends = (uint64_t *) &s->slots[n];
        *s = (struct snapshot) {
                .as_of_usec = p->exited || exact ? MAX(p->event_usec, p->listed_from) : p->listed_from,
                .exact = p->exited || exact, .exited = p->exited, .n = n, .ends = ends,
        };
        if (n > 0)
                memcpy(s->slots, p->layout.slots, n * sizeof(struct mirror_slot));
        for (size_t i = 0; i < n; i++)
                ends[i] = p->layout.slots[i].end;
        old = atomic_exchange(&p->cell->snap, s);
        if (retire(m, old) < 0) {
                /* It stays in place: published again at the next change. */
                atomic_store(&p->cell->snap, old);
                free(s);
                return -ENOMEM;
        }
        p->dirty = false;
        return 0;
}

/* ------------------------------------------------------------------ the table */

/* Publishes the table with c added (or, when c is NULL, without the cell of pid). */
static int table_replace(memctl_mirror *m, struct cell *c, pid_t pid) {
        struct table *old = atomic_load(&m->table), *t;
        size_t n = old ? old->n : 0, k = 0;

        t = malloc(sizeof(*t) + (n + 1) * sizeof(struct cell *));
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (c && k == i && old->cells[i]->pid > c->pid)
                        t->cells[k++] = c;
                if (!c && old->cells[i]->pid == pid)
                        continue;
                t->cells[k++] = old->cells[i];
        }
        if (c && k == n)
                t->cells[k++] = c;
        t->n = k;
        if (retire(m, old) < 0) {
                free(t);
                return -ENOMEM;
        }
        atomic_store(&m->table, t);
        return 0;
}

/* ------------------------------------------------------------------ the pump's calls */

static void mirrored_close(memctl_mirror *m, struct mirrored *p) {
        if (p->conn && m->epoll_fd >= 0)
                epoll_ctl(m->epoll_fd, EPOLL_CTL_DEL, p->conn->fd, NULL);
        memctl_watch_free(p->watch);
        memctl_free(p->conn);
        mirror_layout_done(&p->layout);
        free(p);
}

int memctl_mirror_new(const char *socket_path, memctl_mirror **ret) {
        memctl_mirror *m;
        int r;

        if (!ret)
                return -EINVAL;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->max_processes = MIRROR_PROCESSES_DEFAULT;
        m->max_files = MIRROR_FILES_DEFAULT;
        m->epoll_fd = -1;
        m->id = atomic_fetch_add(&mirror_ids, 1);
        r = live_add(m->id);
        if (r < 0) {
                m->id = 0;
                goto fail;
        }
        /* Registered once per process; refused (an old kernel, a seccomp filter): lookups fence. */
        m->membarrier = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
        m->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (m->epoll_fd < 0) {
                r = -errno;
                goto fail;
        }
        if (socket_path) {
                m->path = strdup(socket_path);
                r = m->path ? 0 : -ENOMEM;
        } else
                r = memctl_default_socket_path(&m->path);
        if (r >= 0)
                r = memctl_connect(m->path, &m->conn);
        if (r < 0)
                goto fail;
        *ret = m;
        return 0;
fail:
        memctl_mirror_free(m);
        return r;
}

memctl_mirror *memctl_mirror_free(memctl_mirror *m) {
        struct table *t;

        if (!m)
                return NULL;
        if (m->id)
                live_remove(m->id);
        /* No lookup runs any more (the caller's promise): everything goes now. */
        t = atomic_load(&m->table);
        for (size_t i = 0; t && i < t->n; i++) {
                free(atomic_load(&t->cells[i]->snap));
                free(t->cells[i]);
        }
        free(t);
        for (size_t i = 0; i < m->n; i++)
                mirrored_close(m, m->procs[i]);
        free(m->procs);
        for (size_t i = 0; i < m->n_retiring; i++)
                free(m->retiring[i]);
        free(m->retiring);
        while (m->graces) {
                struct grace *g = m->graces;

                m->graces = g->next;
                grace_free(g);
        }
        for (size_t i = 0; i < m->n_buckets; i++)
                while (m->files[i]) {
                        struct mirror_file *f = m->files[i];

                        m->files[i] = f->next;
                        free(f);
                }
        free(m->files);
        if (m->epoll_fd >= 0)
                close(m->epoll_fd);
        memctl_free(m->conn);
        free(m->path);
        for (struct reader *r = atomic_load(&m->readers); r;) {
                struct reader *next = r->next;

                free(r);
                r = next;
        }
        free(m);
        return NULL;
}

int memctl_mirror_set_limits(memctl_mirror *m, size_t max_processes, size_t max_files) {
        if (!m)
                return -EINVAL;
        m->max_processes = max_processes ?: MIRROR_PROCESSES_DEFAULT;
        m->max_files = max_files ?: MIRROR_FILES_DEFAULT;
        return 0;
}

static struct mirrored *find(const memctl_mirror *m, pid_t pid, size_t *ret_index) {
        for (size_t i = 0; i < m->n; i++)
                if (m->procs[i]->cell->pid == pid) {
                        if (ret_index)
                                *ret_index = i;
                        return m->procs[i];
                }
        return NULL;
}

/* Ends the mirroring of procs[i]: gone from the table, its memory retired. */
static int drop(memctl_mirror *m, size_t i) {
        struct mirrored *p = m->procs[i];
        int r;

        r = table_replace(m, NULL, p->cell->pid);
        if (r < 0)
                return r;
        /* The table no longer names them: after the grace, no lookup holds them. */
        if (retire(m, atomic_load(&p->cell->snap)) < 0 || retire(m, p->cell) < 0) {
                /* Not retired: not freed either (leaked rather than freed under a lookup). */
        }
        mirrored_close(m, p);
        m->procs[i] = m->procs[--m->n];
        return 0;
}

int memctl_mirror_add(memctl_mirror *m, pid_t pid, uint64_t start_time) {
        struct mirrored *p;
        int r;

        if (!m || pid <= 0)
                return -EINVAL;
        if (find(m, pid, NULL))
                return -EEXIST;
        if (m->n >= m->max_processes)
                return -ENOSPC;
        if (m->n == m->allocated) {
                size_t k = m->allocated ? m->allocated * 2 : 16;
                struct mirrored **x = reallocarray(m->procs, k, sizeof(*x));

                if (!x)
                        return -ENOMEM;
                m->procs = x;
                m->allocated = k;
        }
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->cell = calloc(1, sizeof(*p->cell));
        if (!p->cell) {
                free(p);
                return -ENOMEM;
        }
        p->cell->pid = pid;
        p->cell->start_time = start_time;
        r = memctl_connect(m->path, &p->conn);
        if (r >= 0)
                r = memctl_watch_start(p->conn, pid, start_time, &p->watch);
        if (r < 0)
                goto fail;
        /* The Watch runs: the listing is as new as its first event or newer, and every change
         * after it comes as an event. */
        r = relist(m, p);
        if (r >= 0 && p->exited)
                r = -ESRCH;
        if (r < 0)
                goto fail;
        r = publish(m, p);
        if (r < 0)
                goto fail;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };
        if (epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, p->conn->fd, &ev) < 0) {
                r = -errno;
                goto fail_published;
        }
        r = table_replace(m, p->cell, 0);
        if (r < 0) {
                epoll_ctl(m->epoll_fd, EPOLL_CTL_DEL, p->conn->fd, NULL);
                goto fail_published;
        }
        m->procs[m->n++] = p;
        reclaim(m);
        return 0;
fail_published:
        /* Never in a table: no lookup saw it. */
        free(atomic_load(&p->cell->snap));
fail:
        memctl_watch_free(p->watch);
        memctl_free(p->conn);
        mirror_layout_done(&p->layout);
        free(p->cell);
        free(p);
        reclaim(m);
        return r;
}

int memctl_mirror_remove(memctl_mirror *m, pid_t pid) {
        size_t i;
        int r;

        if (!m)
                return -EINVAL;
        if (!find(m, pid, &i))
                return -ESRCH;
        r = drop(m, i);
        reclaim(m);
        return r;
}

int memctl_mirror_fd(const memctl_mirror *m) {
        return m ? m->epoll_fd : -EINVAL;
}

static bool is_ours(const struct mirrored *p, const struct memctl_event *e) {
        return e->pid == p->cell->pid && e->start_time == p->cell->start_time;
}

static int apply(memctl_mirror *m, struct mirrored *p, const struct memctl_event *e) {
        int r;

        switch (e->type) {
        case MEMCTL_EVENT_OVERFLOW:
                /* One process's change not read: only its copy is in doubt. */
                return e->pid == 0 || is_ours(p, e) ? relist(m, p) : 0;
        case MEMCTL_EVENT_EXEC:
                return is_ours(p, e) ? relist(m, p) : 0;
        case MEMCTL_EVENT_EXIT:
                if (!is_ours(p, e))
                        return 0;
                p->layout.n = 0;
                p->exited = p->dirty = true;
                p->event_usec = MAX(e->time_usec, p->listed_to + 1);
                return 0;
        case MEMCTL_EVENT_MAPPINGS:
                /* Before the listing began: the listing has it already, and applying it again
                 * would show an older layout for a moment. */
                if (!is_ours(p, e) || p->exited || e->time_usec < p->listed_from)
                        return 0;
                /* Stated whole: what is kept there and not in added went. */
                if (e->range_end > e->range_start) {
                        r = mirror_layout_clear_range(&p->layout, e->range_start, e->range_end);
                        if (r < 0)
                                return r;
                }
                for (size_t i = 0; i < e->n_removed; i++)
                        (void) mirror_layout_remove(&p->layout, e->removed[i].start, e->removed[i].end);
                for (size_t i = 0; i < e->n_added; i++) {
                        if (!mirrored_kind(&e->added[i]))
                                continue;
                        r = slots_put(m, p, &e->added[i]);
                        if (r < 0)
                                return r;
                }
                p->event_usec = e->time_usec;
                p->dirty = true;
                return 0;
        default:
                return 0;       /* forks of its children, events newer than the library */
        }
}

/* Applies what p's stream has now (at most MIRROR_BATCH events): how many, or -errno. */
static int pump_one(memctl_mirror *m, struct mirrored *p) {
        int applied = 0;

        p->pending = false;
        for (;;) {
                struct memctl_event e = MEMCTL_EVENT_INIT;
                int r;

                if (applied >= MIRROR_BATCH) {
                        p->pending = true;
                        break;
                }
                r = memctl_watch_next(p->watch, 0, &e);
                if (r == 0)
                        break;
                if (r > 0)
                        r = apply(m, p, &e);
                if (r < 0)
                        return r;
                applied++;
        }
        return applied;
}

int memctl_mirror_update(memctl_mirror *m, uint64_t timeout_usec) {
        struct epoll_event evs[64];
        int applied = 0, r = 0, k, timeout_ms;
        bool pending = false;

        if (!m)
                return -EINVAL;
        for (size_t i = 0; i < m->n; i++)
                pending |= m->procs[i]->pending;
        timeout_ms = pending ? 0
                     : timeout_usec == MEMCTL_TIMEOUT_INFINITY ? -1
                                                              : (int) MIN(timeout_usec / 1000, (uint64_t) INT32_MAX);
        k = epoll_wait(m->epoll_fd, evs, ELEMENTSOF(evs), timeout_ms);
        if (k < 0 && errno != EINTR)
                return -errno;
        /* Those epoll named, and those with events left in their reader from the last call. */
        for (int j = 0; j < k; j++)
                ((struct mirrored *) evs[j].data.ptr)->pending = true;
        for (size_t i = 0; i < m->n;) {
                struct mirrored *p = m->procs[i];
                int n;

                if (!p->pending) {
                        i++;
                        continue;
                }
                n = pump_one(m, p);
                if (n >= 0)
                        n = publish(m, p) < 0 ? -ENOMEM : n;
                if (n < 0) {
                        /* Its stream failed: a layout no longer kept current is not served. */
                        if (r == 0)
                                r = n;
                        if (drop(m, i) < 0)
                                i++;
                        continue;
                }
                applied += n;
                i++;
        }
        reclaim(m);
        return r < 0 ? r : applied;
}
