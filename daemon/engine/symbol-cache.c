/* A thread-safe LRU cache of symbol tables bounded in bytes. */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "symbol-cache.h"

/* Tables are few (one per distinct library in use) and large: a fixed bucket array and one
 * mutex, held only for pointer work (no table is read under it). */
#define SYMBOL_CACHE_BUCKETS 1024u

struct entry {
        struct symbol_key key;
        struct symtab *table;
        size_t bytes;
        struct entry *chain;
        struct entry *newer, *older;
};

struct symbol_cache {
        pthread_mutex_t lock;
        unsigned refs;
        struct entry *buckets[SYMBOL_CACHE_BUCKETS];
        struct entry *newest, *oldest;
        size_t entries, bytes, max_bytes;
        uint64_t hits, misses;
};

void symbol_key_init(struct symbol_key *ret, const uint8_t *build_id, size_t build_id_len,
                     const struct elf_cache_key *file, uid_t owner) {
        /* Compared and hashed as bytes: padding must be zero too. */
        memset(ret, 0, sizeof(*ret));
        ret->owner = (uint32_t) owner;
        if (build_id_len > 0 && build_id_len <= MAPPING_BUILD_ID_MAX) {
                ret->build_id_len = (uint8_t) build_id_len;
                memcpy(ret->build_id, build_id, build_id_len);
        } else if (file)
                ret->file = *file;
}

static size_t bucket_of(const struct symbol_key *k) {
        const uint8_t *p = (const uint8_t *) k;
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        for (size_t i = 0; i < sizeof(*k); i++)
                h = (h ^ p[i]) * UINT64_C(0x100000001b3);
        return (size_t) (h ^ h >> 32) % SYMBOL_CACHE_BUCKETS;
}

int symbol_cache_new(size_t max_bytes, struct symbol_cache **ret) {
        struct symbol_cache *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        pthread_mutex_init(&c->lock, NULL);
        c->refs = 1;
        c->max_bytes = max_bytes;
        *ret = c;
        return 0;
}

struct symbol_cache *symbol_cache_ref(struct symbol_cache *c) {
        pthread_mutex_lock(&c->lock);
        c->refs++;
        pthread_mutex_unlock(&c->lock);
        return c;
}

struct symbol_cache *symbol_cache_free(struct symbol_cache *c) {
        unsigned refs;

        if (!c)
                return NULL;
        /* A reader stuck in the kernel holds the cache until its read returns. */
        pthread_mutex_lock(&c->lock);
        refs = --c->refs;
        pthread_mutex_unlock(&c->lock);
        if (refs > 0)
                return NULL;
        for (struct entry *e = c->newest, *next; e; e = next) {
                next = e->older;
                symtab_unref(e->table);
                free(e);
        }
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
}

static void lru_unlink(struct symbol_cache *c, struct entry *e) {
        if (e->newer)
                e->newer->older = e->older;
        else
                c->newest = e->older;
        if (e->older)
                e->older->newer = e->newer;
        else
                c->oldest = e->newer;
        e->newer = e->older = NULL;
}

static void lru_push(struct symbol_cache *c, struct entry *e) {
        e->newer = NULL;
        e->older = c->newest;
        if (c->newest)
                c->newest->newer = e;
        else
                c->oldest = e;
        c->newest = e;
}

static struct entry **find(struct symbol_cache *c, const struct symbol_key *key) {
        struct entry **p = &c->buckets[bucket_of(key)];

        while (*p && memcmp(&(*p)->key, key, sizeof(*key)) != 0)
                p = &(*p)->chain;
        return p;
}

/* Unlinks e everywhere and frees it (its table reference dropped); under the lock. */
static void drop(struct symbol_cache *c, struct entry *e) {
        struct entry **p = find(c, &e->key);

        *p = e->chain;
        lru_unlink(c, e);
        c->entries--;
        c->bytes -= e->bytes;
        symtab_unref(e->table);
        free(e);
}

struct symtab *symbol_cache_get(struct symbol_cache *c, const struct symbol_key *key) {
        struct symtab *t = NULL;
        struct entry *e;

        pthread_mutex_lock(&c->lock);
        e = *find(c, key);
        if (e) {
                c->hits++;
                lru_unlink(c, e);
                lru_push(c, e);
                t = symtab_ref(e->table);
        } else
                c->misses++;
        pthread_mutex_unlock(&c->lock);
        return t;
}

int symbol_cache_put(struct symbol_cache *c, const struct symbol_key *key, struct symtab *t) {
        size_t bytes = symtab_memory(t) + sizeof(struct entry);
        struct entry *e, *old;

        if (bytes > c->max_bytes)
                return 0;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->key = *key;
        e->table = symtab_ref(t);
        e->bytes = bytes;

        pthread_mutex_lock(&c->lock);
        old = *find(c, key);
        if (old)
                drop(c, old);
        while (c->oldest && c->bytes + bytes > c->max_bytes)
                drop(c, c->oldest);
        struct entry **slot = find(c, key);
        *slot = e;
        lru_push(c, e);
        c->entries++;
        c->bytes += bytes;
        pthread_mutex_unlock(&c->lock);
        return 0;
}

void symbol_cache_get_stats(struct symbol_cache *c, struct symbol_cache_stats *ret) {
        pthread_mutex_lock(&c->lock);
        *ret = (struct symbol_cache_stats) {
                .hits = c->hits,
                .misses = c->misses,
                .entries = c->entries,
                .bytes = c->bytes,
                .max_bytes = c->max_bytes,
        };
        pthread_mutex_unlock(&c->lock);
}
