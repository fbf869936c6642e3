/* A small thread-safe cache of vdso images and their ELF facts by build ID: one image serves every process of one kernel and ABI. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "elf-reader.h"

/* A kernel has one vdso per ABI (64-bit, compat 32-bit, x32): a handful of entries serve it.
 * A process may rewrite its own vdso (mprotect() allows it), so entries learned from processes
 * are bounded and evicted least recently used first; the daemon's own entry never is. */
#define VDSO_CACHE_SLOTS 4

/* The vdso is two to four pages; no image beyond this is kept. */
#define VDSO_CACHE_IMAGE_MAX (256u * 1024u)

struct vdso_cache;

int vdso_cache_new(struct vdso_cache **ret);
/* Accepts NULL; returns NULL. */
struct vdso_cache *vdso_cache_free(struct vdso_cache *c);

/* Keeps a copy of image (size bytes) with info, its parse, which must carry a build ID. A
 * trusted image (the daemon's own vdso, which no client can touch) is served for any process
 * with its build ID; one read from a process is served only for processes of the same owner,
 * so that no user can plant an image, under a real build ID, in the answers for another's
 * processes. An entry with the same build ID, size and owner is replaced. 0, -EINVAL (no build
 * ID, size 0 or above VDSO_CACHE_IMAGE_MAX) or -ENOMEM. */
int vdso_cache_put(struct vdso_cache *c, const struct elf_info *info, const uint8_t *image, size_t size,
                   bool trusted, uid_t owner);

/* The entry for a vdso of size bytes with build ID id (id_len bytes) in a process of *owner (a
 * real uid): 1 with its ELF facts in *ret_info and, when ret_image is not NULL, a malloc'd copy
 * of its image in *ret_image; 0 on a miss (outputs untouched); -ENOMEM. Counts a hit or a miss.
 * owner NULL looks at the trusted entry only, and counts only a hit: the caller, which learns
 * the owner only at a cost, asks again with it. */
int vdso_cache_get(struct vdso_cache *c, const uint8_t *id, size_t id_len, size_t size, const uid_t *owner,
                   struct elf_info *ret_info, uint8_t **ret_image);

struct vdso_cache_stats {
        uint64_t hits;
        uint64_t misses;
        size_t entries;
};

void vdso_cache_get_stats(struct vdso_cache *c, struct vdso_cache_stats *ret);
