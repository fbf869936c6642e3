/* The layout store: complete layouts of live processes, kept while the change tracker says they are unchanged, bounded in count and bytes (LRU, with a share per user). */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "cleanup.h"
#include "layout-store.h"

struct owner {
        struct owner *next;
        uid_t uid;
        size_t bytes;
        size_t entries;
};

struct entry {
        struct entry *hash_next;
        struct entry *newer, *older;    /* the LRU list */
        struct layout *layout;          /* NULL: a marker of a process that changes (see the header) */
        uint64_t hits;
        pid_t pid;
        uint64_t start_time, epoch, generation;
        size_t bytes;
        struct owner *owner;
};

struct layout_store {
        pthread_mutex_t lock;
        struct layout_store_config cfg;
        struct entry **buckets;
        size_t n_buckets;               /* a power of two */
        struct entry *newest, *oldest;
        struct owner *owners;
        size_t entries, bytes;          /* entries: layouts and markers */
        size_t layouts;
        struct layout_store_stats stats;
};

int layout_store_new(const struct layout_store_config *cfg, struct layout_store **ret) {
        struct layout_store *s;
        size_t n = 64;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->cfg = *cfg;
        if (s->cfg.max_bytes_per_owner == 0 || s->cfg.max_bytes_per_owner > s->cfg.max_bytes)
                s->cfg.max_bytes_per_owner = s->cfg.max_bytes / 4;
        /* About one entry per bucket when full. */
        while (n < s->cfg.max_entries && n < ((size_t) 1 << 20))
                n <<= 1;
        s->buckets = calloc(n, sizeof(*s->buckets));
        if (!s->buckets) {
                free(s);
                return -ENOMEM;
        }
        s->n_buckets = n;
        pthread_mutex_init(&s->lock, NULL);
        *ret = s;
        return 0;
}

static struct entry **bucket_of(struct layout_store *s, pid_t pid) {
        /* Pids are dense and sequential: their low bits spread well. */
        return &s->buckets[(uint32_t) pid & (s->n_buckets - 1)];
}

static void lru_unlink(struct layout_store *s, struct entry *e) {
        if (e->newer)
                e->newer->older = e->older;
        else
                s->newest = e->older;
        if (e->older)
                e->older->newer = e->newer;
        else
                s->oldest = e->newer;
        e->newer = e->older = NULL;
}

static void lru_push_newest(struct layout_store *s, struct entry *e) {
        e->older = s->newest;
        e->newer = NULL;
        if (s->newest)
                s->newest->newer = e;
        s->newest = e;
        if (!s->oldest)
                s->oldest = e;
}

/* Unlinks e from the table, the LRU list and its owner, and chains it on *dead for freeing
 * outside the lock (a layout of 60,000 mappings takes a while to free). */
static void entry_remove(struct layout_store *s, struct entry *e, struct entry **dead) {
        struct entry **pp = bucket_of(s, e->pid);

        while (*pp && *pp != e)
                pp = &(*pp)->hash_next;
        if (*pp)
                *pp = e->hash_next;
        lru_unlink(s, e);
        s->entries--;
        s->layouts -= e->layout != NULL;
        s->bytes -= e->bytes;
        e->owner->bytes -= e->bytes;
        e->owner->entries--;
        e->hash_next = *dead;
        *dead = e;
}

static void free_dead(struct entry *dead) {
        while (dead) {
                struct entry *next = dead->hash_next;

                layout_unref(dead->layout);
                free(dead);
                dead = next;
        }
}

/* Under lock. Owners without entries are freed. */
static void owners_prune(struct layout_store *s) {
        for (struct owner **pp = &s->owners; *pp;) {
                struct owner *o = *pp;

                if (o->entries == 0) {
                        *pp = o->next;
                        free(o);
                } else
                        pp = &o->next;
        }
}

static struct entry *find(struct layout_store *s, pid_t pid) {
        for (struct entry *e = *bucket_of(s, pid); e; e = e->hash_next)
                if (e->pid == pid)
                        return e;
        return NULL;
}

struct layout_store *layout_store_free(struct layout_store *s) {
        if (!s)
                return NULL;
        layout_store_clear(s);
        pthread_mutex_destroy(&s->lock);
        free(s->buckets);
        free(s);
        return NULL;
}

/* Under lock. Turns e into a marker: its layout goes on *dead (in a stand-in entry). */
static int entry_mark_changing(struct layout_store *s, struct entry *e, uint64_t generation, struct entry **dead) {
        struct entry *shell = calloc(1, sizeof(*shell));
        size_t bytes = sizeof(struct entry);

        if (!shell)
                return -ENOMEM;
        shell->layout = TAKE_PTR(e->layout);
        shell->hash_next = *dead;
        *dead = shell;
        s->layouts--;
        s->bytes -= e->bytes - bytes;
        e->owner->bytes -= e->bytes - bytes;
        e->bytes = bytes;
        e->generation = generation;
        e->hits = 0;
        return 0;
}

int layout_store_get(struct layout_store *s, pid_t pid, uint64_t start_time, uint64_t epoch, uint64_t generation,
                     struct layout **ret) {
        struct entry *dead = NULL, *e;
        int r = 0;

        pthread_mutex_lock(&s->lock);
        e = find(s, pid);
        if (e && e->start_time == start_time && e->epoch == epoch) {
                if (e->layout && e->generation == generation) {
                        lru_unlink(s, e);
                        lru_push_newest(s, e);
                        e->hits++;
                        *ret = layout_ref(e->layout);
                        s->stats.hits++;
                        pthread_mutex_unlock(&s->lock);
                        return 1;
                }
                if (e->layout && e->hits == 0 && entry_mark_changing(s, e, generation, &dead) >= 0) {
                        /* Stale before it served once. */
                        s->stats.forgotten++;
                        r = LAYOUT_STORE_CHANGING;
                } else if (!e->layout && e->generation != generation) {
                        /* Changed again since the call before. */
                        e->generation = generation;
                        r = LAYOUT_STORE_CHANGING;
                } else {
                        /* A stale layout that served, or a marker unchanged since the call
                         * before: read it whole again. */
                        s->stats.forgotten += e->layout != NULL;
                        entry_remove(s, e, &dead);
                }
                if (r == LAYOUT_STORE_CHANGING) {
                        lru_unlink(s, e);
                        lru_push_newest(s, e);
                }
        } else if (e) {
                /* Counters only move forward: an entry read under others never answers again. */
                s->stats.forgotten += e->layout != NULL;
                entry_remove(s, e, &dead);
        }
        owners_prune(s);
        s->stats.misses++;
        pthread_mutex_unlock(&s->lock);
        free_dead(dead);
        return r;
}

static struct owner *owner_get(struct layout_store *s, uid_t uid) {
        struct owner *o;

        for (o = s->owners; o; o = o->next)
                if (o->uid == uid)
                        return o;
        o = calloc(1, sizeof(*o));
        if (!o)
                return NULL;
        o->uid = uid;
        o->next = s->owners;
        s->owners = o;
        return o;
}

int layout_store_put(struct layout_store *s, struct layout *l, uid_t owner, uint64_t epoch, uint64_t generation) {
        size_t bytes = layout_memory(l);
        size_t share = owner == 0 ? s->cfg.max_bytes : s->cfg.max_bytes_per_owner;
        struct entry *dead = NULL, *e, *old;
        struct owner *o;
        int r = 1;

        if (s->cfg.max_entries == 0 || bytes > share)
                return 0;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        *e = (struct entry) {
                .layout = layout_ref(l),
                .pid = l->pid,
                .start_time = l->start_time,
                .epoch = epoch,
                .generation = generation,
                .bytes = bytes,
        };

        pthread_mutex_lock(&s->lock);
        o = owner_get(s, owner);
        if (!o) {
                r = -ENOMEM;
                e->hash_next = dead;
                dead = e;
                goto out;
        }
        old = find(s, l->pid);
        if (old)
                entry_remove(s, old, &dead);
        /* The owner's own oldest entries first, so one user cannot push everyone else out. */
        for (struct entry *x = s->oldest, *newer; x && o->bytes + bytes > share; x = newer) {
                newer = x->newer;
                if (x->owner == o) {
                        entry_remove(s, x, &dead);
                        s->stats.evictions++;
                }
        }
        while (s->oldest && (s->entries + 1 > s->cfg.max_entries || s->bytes + bytes > s->cfg.max_bytes)) {
                entry_remove(s, s->oldest, &dead);
                s->stats.evictions++;
        }
        e->owner = o;
        o->bytes += bytes;
        o->entries++;
        e->hash_next = *bucket_of(s, e->pid);
        *bucket_of(s, e->pid) = e;
        lru_push_newest(s, e);
        s->entries++;
        s->layouts++;
        s->bytes += bytes;
        owners_prune(s);
out:
        pthread_mutex_unlock(&s->lock);
        free_dead(dead);
        return r;
}

void layout_store_forget(struct layout_store *s, pid_t pid) {
        struct entry *dead = NULL, *e;

        pthread_mutex_lock(&s->lock);
        e = find(s, pid);
        if (e) {
                s->stats.forgotten += e->layout != NULL;
                entry_remove(s, e, &dead);
                owners_prune(s);
        }
        pthread_mutex_unlock(&s->lock);
        free_dead(dead);
}

void layout_store_clear(struct layout_store *s) {
        struct entry *dead = NULL;

        pthread_mutex_lock(&s->lock);
        while (s->oldest) {
                s->stats.forgotten += s->oldest->layout != NULL;
                entry_remove(s, s->oldest, &dead);
        }
        owners_prune(s);
        pthread_mutex_unlock(&s->lock);
        free_dead(dead);
}

void layout_store_get_stats(struct layout_store *s, struct layout_store_stats *ret) {
        pthread_mutex_lock(&s->lock);
        *ret = s->stats;
        ret->entries = s->layouts;
        /* The layouts' bytes: a marker is exactly one entry's. */
        ret->bytes = s->bytes - (s->entries - s->layouts) * sizeof(struct entry);
        pthread_mutex_unlock(&s->lock);
}
