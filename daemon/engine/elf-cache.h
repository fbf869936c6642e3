/* A bounded, thread-safe LRU cache of ELF facts (build ID, PT_LOAD table) keyed by file identity. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "elf-reader.h"

/* A file changed in place keeps dev and inode but not size and mtime; a file deleted and
 * another created in its inode may copy both (any user can set an mtime and a size), but
 * not the ctime (the kernel sets it to the time of every such change) nor the birth time
 * (the creation's), so a key with them names one file's content and nobody can make another
 * file meet it. btime is 0 where the filesystem keeps none. */
struct elf_cache_key {
        uint64_t dev;
        uint64_t ino;
        uint64_t size;
        int64_t mtime_sec;
        int64_t mtime_nsec;
        int64_t ctime_sec;
        int64_t ctime_nsec;
        int64_t btime_sec;
        int64_t btime_nsec;
};

struct elf_cache;

struct statx;

/* The key of a file fstat() described: no birth time (stat has none). */
void elf_cache_key_from_stat(const struct stat *st, struct elf_cache_key *ret);
/* The key of a file statx() described, its birth time included where stx_mask has
 * STATX_BTIME. */
void elf_cache_key_from_statx(const struct statx *stx, struct elf_cache_key *ret);

/* max_entries bounds the cache (at least 1; 0 gives -EINVAL). 0 or -EINVAL/-ENOMEM. */
int elf_cache_new(size_t max_entries, struct elf_cache **ret);
/* Another holder of c (returns c); thread-safe. */
struct elf_cache *elf_cache_ref(struct elf_cache *c);
/* Drops a holder; the last one frees the cache. Accepts NULL. */
void elf_cache_free(struct elf_cache *c);

/* On a hit copies the entry to *ret (elf_class 0 marks a cached "not ELF"), makes it the most
 * recently used and returns true; counts a hit or a miss. *ret is untouched on a miss. */
bool elf_cache_get(struct elf_cache *c, const struct elf_cache_key *key, struct elf_info *ret);

/* Inserts or replaces (either makes the entry the most recently used); evicts the least
 * recently used entry when full, reusing its memory. 0 or -ENOMEM. */
int elf_cache_put(struct elf_cache *c, const struct elf_cache_key *key, const struct elf_info *info);

struct elf_cache_stats {
        uint64_t hits;
        uint64_t misses;
        uint64_t evictions;
        size_t entries;
        size_t max_entries;
};

void elf_cache_get_stats(struct elf_cache *c, struct elf_cache_stats *ret);
