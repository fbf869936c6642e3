/* A bounded, thread-safe LRU cache of ELF facts (build ID, PT_LOAD table) keyed by file identity. */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "cleanup.h"
#include "elf-cache.h"

/* Chained hashing over a power-of-two bucket array, plus a doubly-linked LRU list whose head is
 * the most recently used entry. One mutex guards everything, statistics included. */

#define BUCKETS_MIN 16u
#define BUCKETS_MAX (1u << 16)

struct entry {
        struct elf_cache_key key;
        struct entry *chain;               /* next in the same bucket */
        struct entry *lru_prev, *lru_next; /* towards the head (newer) / the tail (older) */
        struct elf_info info;
};

struct elf_cache {
        pthread_mutex_t lock;
        struct entry **buckets;
        size_t n_buckets;                  /* a power of two */
        struct entry *lru_head, *lru_tail;
        size_t n_entries, max_entries;
        uint64_t hits, misses, evictions;
        unsigned refs;                     /* under lock */
};

void elf_cache_key_from_stat(const struct stat *st, struct elf_cache_key *ret) {
        *ret = (struct elf_cache_key) {
                .dev = (uint64_t) st->st_dev,
                .ino = (uint64_t) st->st_ino,
                .size = (uint64_t) st->st_size,
                .mtime_sec = (int64_t) st->st_mtim.tv_sec,
                .mtime_nsec = (int64_t) st->st_mtim.tv_nsec,
                .ctime_sec = (int64_t) st->st_ctim.tv_sec,
                .ctime_nsec = (int64_t) st->st_ctim.tv_nsec,
        };
}

void elf_cache_key_from_statx(const struct statx *stx, struct elf_cache_key *ret) {
        bool btime = stx->stx_mask & STATX_BTIME;

        *ret = (struct elf_cache_key) {
                .dev = (uint64_t) makedev(stx->stx_dev_major, stx->stx_dev_minor),
                .ino = stx->stx_ino,
                .size = stx->stx_size,
                .mtime_sec = stx->stx_mtime.tv_sec,
                .mtime_nsec = stx->stx_mtime.tv_nsec,
                .ctime_sec = stx->stx_ctime.tv_sec,
                .ctime_nsec = stx->stx_ctime.tv_nsec,
                .btime_sec = btime ? stx->stx_btime.tv_sec : 0,
                .btime_nsec = btime ? stx->stx_btime.tv_nsec : 0,
        };
}

static uint64_t mix64(uint64_t h, uint64_t x) {
        /* splitmix64's finalizer over a running combination */
        h ^= x + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2);
        h ^= h >> 30;
        h *= UINT64_C(0xbf58476d1ce4e5b9);
        h ^= h >> 27;
        h *= UINT64_C(0x94d049bb133111eb);
        h ^= h >> 31;
        return h;
}

static size_t bucket_of(const struct elf_cache *c, const struct elf_cache_key *k) {
        uint64_t h = 0;

        h = mix64(h, k->dev);
        h = mix64(h, k->ino);
        h = mix64(h, k->size);
        h = mix64(h, (uint64_t) k->mtime_sec);
        h = mix64(h, (uint64_t) k->mtime_nsec);
        h = mix64(h, (uint64_t) k->ctime_sec);
        h = mix64(h, (uint64_t) k->ctime_nsec);
        h = mix64(h, (uint64_t) k->btime_sec);
        h = mix64(h, (uint64_t) k->btime_nsec);
        return (size_t) (h & (c->n_buckets - 1));
}

static bool key_equal(const struct elf_cache_key *a, const struct elf_cache_key *b) {
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_sec == b->mtime_sec &&
               a->mtime_nsec == b->mtime_nsec && a->ctime_sec == b->ctime_sec && a->ctime_nsec == b->ctime_nsec &&
               a->btime_sec == b->btime_sec && a->btime_nsec == b->btime_nsec;
}

int elf_cache_new(size_t max_entries, struct elf_cache **ret) {
        if (max_entries < 1 || !ret)
                return -EINVAL;

        _cleanup_free_ struct elf_cache *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;

        /* About one entry per bucket when full, within fixed bounds. */
        c->n_buckets = BUCKETS_MIN;
        while (c->n_buckets < max_entries && c->n_buckets < BUCKETS_MAX)
                c->n_buckets <<= 1;
        c->max_entries = max_entries;
        c->refs = 1;

        _cleanup_free_ struct entry **buckets = calloc(c->n_buckets, sizeof(*buckets));
        if (!buckets)
                return -ENOMEM;

        int r = pthread_mutex_init(&c->lock, NULL);
        if (r != 0)
                return -r;

        c->buckets = TAKE_PTR(buckets);
        *ret = TAKE_PTR(c);
        return 0;
}

struct elf_cache *elf_cache_ref(struct elf_cache *c) {
        pthread_mutex_lock(&c->lock);
        c->refs++;
        pthread_mutex_unlock(&c->lock);
        return c;
}

void elf_cache_free(struct elf_cache *c) {
        unsigned refs;

        if (!c)
                return;
        /* A reader stuck in the kernel holds the cache until its read returns. */
        pthread_mutex_lock(&c->lock);
        refs = --c->refs;
        pthread_mutex_unlock(&c->lock);
        if (refs > 0)
                return;

        for (struct entry *e = c->lru_head, *next; e; e = next) {
                next = e->lru_next;
                free(e);
        }
        free(c->buckets);
        pthread_mutex_destroy(&c->lock);
        free(c);
}

static void lru_unlink(struct elf_cache *c, struct entry *e) {
        if (e->lru_prev)
                e->lru_prev->lru_next = e->lru_next;
        else
                c->lru_head = e->lru_next;
        if (e->lru_next)
                e->lru_next->lru_prev = e->lru_prev;
        else
                c->lru_tail = e->lru_prev;
        e->lru_prev = e->lru_next = NULL;
}

static void lru_push_head(struct elf_cache *c, struct entry *e) {
        e->lru_prev = NULL;
        e->lru_next = c->lru_head;
        if (c->lru_head)
                c->lru_head->lru_prev = e;
        else
                c->lru_tail = e;
        c->lru_head = e;
}

static void lru_touch(struct elf_cache *c, struct entry *e) {
        if (c->lru_head == e)
                return;
        lru_unlink(c, e);
        lru_push_head(c, e);
}

static struct entry *lookup(struct elf_cache *c, const struct elf_cache_key *key) {
        for (struct entry *e = c->buckets[bucket_of(c, key)]; e; e = e->chain)
                if (key_equal(&e->key, key))
                        return e;
        return NULL;
}

static void chain_remove(struct elf_cache *c, struct entry *e) {
        for (struct entry **p = &c->buckets[bucket_of(c, &e->key)]; *p; p = &(*p)->chain)
                if (*p == e) {
                        *p = e->chain;
                        e->chain = NULL;
                        return;
                }
}

bool elf_cache_get(struct elf_cache *c, const struct elf_cache_key *key, struct elf_info *ret) {
        bool hit;

        pthread_mutex_lock(&c->lock);
        struct entry *e = lookup(c, key);
        hit = e;
        if (e) {
                c->hits++;
                lru_touch(c, e);
                if (ret)
                        *ret = e->info;
        } else
                c->misses++;
        pthread_mutex_unlock(&c->lock);

        return hit;
}

int elf_cache_put(struct elf_cache *c, const struct elf_cache_key *key, const struct elf_info *info) {
        struct entry *e;

        pthread_mutex_lock(&c->lock);

        e = lookup(c, key);
        if (e) {
                e->info = *info;
                lru_touch(c, e);
                pthread_mutex_unlock(&c->lock);
                return 0;
        }

        if (c->n_entries >= c->max_entries && c->lru_tail) {
                /* Reuse the least recently used entry: a full cache never needs to allocate. */
                e = c->lru_tail;
                lru_unlink(c, e);
                chain_remove(c, e);
                c->n_entries--;
                c->evictions++;
        } else {
                e = malloc(sizeof(*e));
                if (!e) {
                        pthread_mutex_unlock(&c->lock);
                        return -ENOMEM;
                }
        }

        *e = (struct entry) {
                .key = *key,
                .info = *info,
        };
        size_t b = bucket_of(c, key);
        e->chain = c->buckets[b];
        c->buckets[b] = e;
        lru_push_head(c, e);
        c->n_entries++;

        pthread_mutex_unlock(&c->lock);
        return 0;
}

void elf_cache_get_stats(struct elf_cache *c, struct elf_cache_stats *ret) {
        pthread_mutex_lock(&c->lock);
        *ret = (struct elf_cache_stats) {
                .hits = c->hits,
                .misses = c->misses,
                .evictions = c->evictions,
                .entries = c->n_entries,
                .max_entries = c->max_entries,
        };
        pthread_mutex_unlock(&c->lock);
}
