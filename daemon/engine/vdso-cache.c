/* A small thread-safe cache of vdso images and their ELF facts by build ID: one image serves every process of one kernel and ABI. */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "vdso-cache.h"

struct vdso_entry {
        uint8_t *image;                 /* NULL: a free slot */
        size_t size;
        struct elf_info info;
        bool trusted;
        uid_t owner;
        uint64_t last_used;             /* the cache's clock at the last hit or put */
};

/* The daemon's own entry (slot 0) plus VDSO_CACHE_SLOTS learned ones; a linear scan of five
 * entries under one mutex costs nothing next to the read of the process's memory that comes
 * before every lookup. */
struct vdso_cache {
        pthread_mutex_t lock;
        struct vdso_entry slots[1 + VDSO_CACHE_SLOTS];
        uint64_t clock, hits, misses;
};

int vdso_cache_new(struct vdso_cache **ret) {
        struct vdso_cache *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        pthread_mutex_init(&c->lock, NULL);
        *ret = c;
        return 0;
}

struct vdso_cache *vdso_cache_free(struct vdso_cache *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(c->slots); i++)
                free(c->slots[i].image);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
}

static bool entry_matches(const struct vdso_entry *s, const uint8_t *id, size_t id_len, size_t size) {
        return s->image && s->size == size && s->info.build_id_len == id_len &&
               memcmp(s->info.build_id, id, id_len) == 0;
}

int vdso_cache_put(struct vdso_cache *c, const struct elf_info *info, const uint8_t *image, size_t size,
                   bool trusted, uid_t owner) {
        struct vdso_entry *slot = NULL;
        uint8_t *copy;

        if (!info || !image || info->build_id_len == 0 || info->build_id_len > MAPPING_BUILD_ID_MAX ||
            size == 0 || size > VDSO_CACHE_IMAGE_MAX)
                return -EINVAL;
        copy = malloc(size);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, image, size);

        pthread_mutex_lock(&c->lock);
        if (trusted)
                slot = &c->slots[0];
        else {
                /* The same image again (two requests missed at once), else a free slot, else
                 * the least recently used. */
                for (size_t i = 1; i < ELEMENTSOF(c->slots) && !slot; i++)
                        if (entry_matches(&c->slots[i], info->build_id, info->build_id_len, size) &&
                            c->slots[i].owner == owner)
                                slot = &c->slots[i];
                for (size_t i = 1; i < ELEMENTSOF(c->slots) && !slot; i++)
                        if (!c->slots[i].image)
                                slot = &c->slots[i];
                if (!slot) {
                        slot = &c->slots[1];
                        for (size_t i = 2; i < ELEMENTSOF(c->slots); i++)
                                if (c->slots[i].last_used < slot->last_used)
                                        slot = &c->slots[i];
                }
        }
        free(slot->image);
        *slot = (struct vdso_entry) {
                .image = copy,
                .size = size,
                .info = *info,
                .trusted = trusted,
                .owner = owner,
                .last_used = ++c->clock,
        };
        pthread_mutex_unlock(&c->lock);
        return 0;
}

int vdso_cache_get(struct vdso_cache *c, const uint8_t *id, size_t id_len, size_t size, const uid_t *owner,
                   struct elf_info *ret_info, uint8_t **ret_image) {
        _cleanup_free_ uint8_t *copy = NULL;
        struct vdso_entry *hit = NULL;

        /* Allocated before taking the lock, so that it is held only for the copy. */
        if (ret_image && size > 0 && size <= VDSO_CACHE_IMAGE_MAX) {
                copy = malloc(size);
                if (!copy)
                        return -ENOMEM;
        }

        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < ELEMENTSOF(c->slots) && !hit; i++)
                if (entry_matches(&c->slots[i], id, id_len, size) &&
                    (c->slots[i].trusted || (owner && c->slots[i].owner == *owner)))
                        hit = &c->slots[i];
        if (!hit) {
                c->misses += owner != NULL;
                pthread_mutex_unlock(&c->lock);
                return 0;
        }
        c->hits++;
        hit->last_used = ++c->clock;
        *ret_info = hit->info;
        if (ret_image)
                memcpy(copy, hit->image, size);
        pthread_mutex_unlock(&c->lock);

        if (ret_image)
                *ret_image = TAKE_PTR(copy);
        return 1;
}

void vdso_cache_get_stats(struct vdso_cache *c, struct vdso_cache_stats *ret) {
        pthread_mutex_lock(&c->lock);
        *ret = (struct vdso_cache_stats) { .hits = c->hits, .misses = c->misses };
        for (size_t i = 0; i < ELEMENTSOF(c->slots); i++)
                ret->entries += c->slots[i].image != NULL;
        pthread_mutex_unlock(&c->lock);
}
