/* A thread-safe LRU cache of symbol tables, keyed by build ID (else by file identity) and by the owner of the file read, bounded in bytes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "elf-cache.h"
#include "mapping.h"
#include "symtab.h"

/* Whose file a table was read from is part of its key: anyone may write a file that carries
 * libc's build ID over a table of made-up names, and a table read from it must not answer for
 * another owner's libc. The owner is the file's (stx_uid), which only root and the owner
 * can set, so root's files (the system's libraries) share one entry across every process. */
struct symbol_key {
        uint8_t build_id_len;                   /* 0: by file */
        uint8_t build_id[MAPPING_BUILD_ID_MAX];
        struct elf_cache_key file;              /* zero with a build ID */
        uint32_t owner;
};

/* The key of a file's table: by build ID when it has one, else by identity. */
void symbol_key_init(struct symbol_key *ret, const uint8_t *build_id, size_t build_id_len,
                     const struct elf_cache_key *file, uid_t owner);

struct symbol_cache;

/* max_bytes bounds what the tables kept hold (symtab_memory()); 0 keeps none. 0, -ENOMEM. */
int symbol_cache_new(size_t max_bytes, struct symbol_cache **ret);
/* Another holder (returns c). Thread-safe. */
struct symbol_cache *symbol_cache_ref(struct symbol_cache *c);
/* Drops a holder; the last one frees the cache. Accepts NULL; returns NULL. */
struct symbol_cache *symbol_cache_free(struct symbol_cache *c);

/* The table kept under key (a new reference; most recently used now), or NULL. Counts a hit or
 * a miss. */
struct symtab *symbol_cache_get(struct symbol_cache *c, const struct symbol_key *key);
/* Keeps t under key (a reference is taken), replacing what was there, evicting the least
 * recently used tables until it fits; a table larger than the whole bound is not kept. 0 or
 * -ENOMEM. */
int symbol_cache_put(struct symbol_cache *c, const struct symbol_key *key, struct symtab *t);

struct symbol_cache_stats {
        uint64_t hits;
        uint64_t misses;
        size_t entries;
        size_t bytes;
        size_t max_bytes;
};

void symbol_cache_get_stats(struct symbol_cache *c, struct symbol_cache_stats *ret);
