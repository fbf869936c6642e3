/* The mapping engine: reads a process's layout through PROCMAP_QUERY or /proc/PID/maps, adds build IDs and ELF virtual addresses, and answers listings and lookups from it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "elf-cache.h"
#include "layout.h"
#include "mapping.h"
#include "process.h"
#include "symbol-cache.h"
#include "symbolize.h"
#include "vdso-cache.h"

enum engine_backend {
        ENGINE_BACKEND_AUTO,
        ENGINE_BACKEND_IOCTL,
        ENGINE_BACKEND_MAPS,
        _ENGINE_BACKEND_MAX,
};

const char *engine_backend_to_string(enum engine_backend b);
int engine_backend_from_string(const char *s, enum engine_backend *ret);

struct engine_config {
        enum engine_backend backend;
        size_t elf_cache_size;    /* entries; 0: the default */
        /* Runs a read that can block on the file (the kernel's build ID read, opening and
         * reading the ELF file) and waits at most *budget_ms for it, lowering it by the time
         * waited: 0 when fn(data) ran (data is the caller's again), else -errno with data
         * freed by the runner with free_data (at once or when fn returns). NULL: fn runs on
         * the calling thread. See file-pool.h. */
        int (*run_blocking)(void *userdata, int (*fn)(void *data), void *data, void (*free_data)(void *data),
                            unsigned *budget_ms);
        void *run_blocking_userdata;
        unsigned blocking_budget_ms;    /* per call; 0: the default */
        size_t max_symbol_memory;       /* bytes of symbol tables kept; 0: the default */
        const char *debug_dir;          /* debug files' root; NULL: the default */
};

#define ENGINE_SYMBOL_MEMORY_DEFAULT (256u * 1024u * 1024u)
#define ENGINE_DEBUG_DIR_DEFAULT "/usr/lib/debug"

#define ENGINE_BLOCKING_BUDGET_MS_DEFAULT 2000

#define ENGINE_ELF_CACHE_DEFAULT 1024

struct engine;

/* Resolves AUTO by probing the kernel: IOCTL where PROCMAP_QUERY works, else MAPS.
 * -EOPNOTSUPP when IOCTL is asked for and the kernel lacks it. */
int engine_new(const struct engine_config *cfg, struct engine **ret);
/* Accepts NULL; returns NULL. Safe only once no thread uses the engine. */
struct engine *engine_free(struct engine *e);

/* The backend in use: never AUTO. */
enum engine_backend engine_get_backend(const struct engine *e);
void engine_get_elf_cache_stats(struct engine *e, struct elf_cache_stats *ret);
/* The vdso images kept by build ID (GetVdso, and the vdso's build ID and elf_vaddr). */
void engine_get_vdso_cache_stats(struct engine *e, struct vdso_cache_stats *ret);

enum {
        ENGINE_EXECUTABLE_ONLY = LAYOUT_EXECUTABLE_ONLY,
        ENGINE_FILE_BACKED_ONLY = LAYOUT_FILE_BACKED_ONLY,
        ENGINE_BUILD_IDS = 1u << 2,
};

/* The layout of p: every mapping passing the filters of flags, with build IDs when asked (and
 * the files' facts behind them), complete. Sorted and non-overlapping; the gate area
 * ([vsyscall]) is included for 64-bit processes with both backends. -ESRCH when the process
 * exited or exec'd meanwhile. Thread-safe; the layout is the caller's (layout_unref()). */
int engine_read_layout(struct engine *e, const struct process *p, unsigned flags, struct layout **ret);

/* All mappings of p (filtered by flags), sorted and non-overlapping. The gate area
 * ([vsyscall]) is included for 64-bit processes with both backends. -ESRCH when the
 * process exited or exec'd meanwhile. Thread-safe. */
int engine_list(struct engine *e, const struct process *p, unsigned flags, struct mapping_list *ret);

/* engine_list() without the list where the source allows (no filters, no build IDs, a source
 * that reads in address order): visits each mapping in address order as it is read (see
 * mapping_visit_t); else visits engine_read_layout()'s. On an error, some mappings may have been visited already: the
 * caller drops what it made of them. Thread-safe. */
int engine_list_each(struct engine *e, const struct process *p, unsigned flags, mapping_visit_t visit,
                     void *userdata);

/* Looks up n addresses (any order, duplicates allowed). *ret_layout receives a layout holding
 * each distinct mapping touched once, in address order, with the facts of their files (a
 * partial one where the source read only what the addresses need); *ret_results one result
 * per address, in the order given (n entries, malloc()ed), indexing the layout's mappings.
 * flags: ENGINE_BUILD_IDS. Thread-safe. */
int engine_lookup_layout(struct engine *e, const struct process *p, const uint64_t *addrs, size_t n, unsigned flags,
                         struct layout **ret_layout, struct layout_result **ret_results);

/* engine_lookup_layout() with the touched mappings copied into *ret_mappings. */
int engine_lookup(struct engine *e, const struct process *p, const uint64_t *addrs, size_t n, unsigned flags,
                  struct mapping_list *ret_mappings, struct layout_result **ret_results);

/* ---- Shared layouts (the layout store, see layout-store.h). */

/* The layout a store keeps of p: complete, every mapping, names checked against the files, no
 * build IDs, facts slots ready to be filled in by the requests that read them. 1 when it may be
 * kept, 0 when a read it needed did not run for a passing reason (serve it, do not keep it),
 * -errno as engine_read_layout(). */
int engine_read_shared(struct engine *e, const struct process *p, struct layout **ret);

/* engine_lookup_layout() answered from l, a shared layout of p: the touched mappings' facts are
 * read where l lacks them (and filled into l where they hold for any reader); p is read only
 * for those facts. */
int engine_lookup_shared(struct engine *e, const struct process *p, struct layout *l, const uint64_t *addrs,
                         size_t n, unsigned flags, struct layout **ret_layout, struct layout_result **ret_results);

/* engine_list_each() answered from l, a shared layout of p: each mapping passing the filters of
 * flags, in address order, with its build ID with ENGINE_BUILD_IDS (facts read where l lacks
 * them), lent for the call. */
int engine_list_shared(struct engine *e, const struct process *p, struct layout *l, unsigned flags,
                       mapping_visit_t visit, void *userdata);

/* The vdso of p: its mapping (with its build ID when it has one) and its image
 * (ret_mapping->end - ret_mapping->start bytes, malloc'd), read from the process's memory with
 * the calling thread's credentials; where the cache holds the image of the build ID its first
 * page carries, only that page is read and the image is the cached one. -ENOENT when p has no
 * vdso, -EACCES/-EPERM when the caller may not read p's memory, -ESRCH when p is gone.
 * Thread-safe. */
int engine_vdso(struct engine *e, const struct process *p, struct mapping *ret_mapping, uint8_t **ret_image);

/* The file of m (a mapping of p, from a listing or lookup), opened O_RDONLY|O_CLOEXEC as
 * the process sees it (through map_files/, else its path inside the process's root) with the
 * calling thread's credentials (on the runner: see engine_config.run_blocking), and checked to
 * be m's file by device and inode. *ret_fd receives the fd (the caller owns it).
 * -EMEDIUMTYPE: m has no file (anonymous memory, stack, vdso...); -ESTALE: what the name or
 * range now holds is another file (a device, too); -ETIMEDOUT/-EBUSY: the open did not
 * finish within the budget; -EACCES/-EPERM, -ENOENT, -errno. Thread-safe. */
int engine_open_mapping_file(struct engine *e, const struct process *p, const struct mapping *m, int *ret_fd);

/* ---- Symbols (issue 16). */

/* The symbol tables kept by build ID (Lookup's symbols). */
void engine_get_symbol_cache_stats(struct engine *e, struct symbol_cache_stats *ret);

/* The symbol at each of results[n] (a lookup's answers from l, p's layout): see symbolize().
 * 0 and *ret (symbols_done()), or -ENOMEM. Thread-safe. */
int engine_symbolize(struct engine *e, const struct process *p, const struct layout *l,
                     const struct layout_result *results, size_t n, struct symbols *ret);
