/* A layout: one immutable, reference-counted snapshot of a process's mappings, and the queries (list, lookup) answered from it alone. */
#pragma once

/* Design. A source (source.h) reads a process into a new layout; the engine then adds what
 * the source cannot know (per-file facts: build IDs, the PT_LOAD table for elf_vaddr; names
 * checked against the files) and hands the layout out. From then on nobody changes it: any
 * number of threads may query it and hold references, so a layout can outlive the request
 * that read it (issue 14 keeps them in a store, issue 15 after the process exited).
 *
 * A layout names its process (pid, start time) and carries a generation (0: unknown; a
 * tracker of the process's changes will number them). It is either complete (every mapping
 * of the process) or partial: a lookup through PROCMAP_QUERY reads only the VMAs its
 * addresses touch. A partial layout records the address ranges it knows (known[]): inside
 * them, an address outside every mapping is unmapped; outside them, the layout cannot say
 * (-ENODATA), and nobody may answer "unmapped" for it.
 *
 * Names and build IDs live in chunks the layout owns (one allocation per many names, not
 * one per name): the mappings' name and build_id pointers point into them, so a layout's
 * mappings are never passed to mapping_done(). Per-file facts (struct layout_file) are
 * reference-counted and shared: every mapping of one file points to the same facts, and
 * several layouts may too. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cleanup.h"
#include "elf-cache.h"
#include "elf-reader.h"
#include "mapping.h"

/* What is known of one mapped file (or of the vdso image), shared by reference. */
struct layout_file {
        unsigned refs;
        uint32_t dev_major, dev_minor;
        uint64_t inode;
        int result;                     /* 0: info holds the file's ELF facts; -errno: none */
        struct elf_info info;
        uint8_t kernel_build_id_len;    /* the kernel's build ID (PROCMAP_QUERY), where asked */
        uint8_t kernel_build_id[MAPPING_BUILD_ID_MAX];
        /* The identity and owner of the file the facts were read from (has_key): what a
         * symbol table read from it is kept under. */
        bool has_key;
        uint32_t owner;
        uint32_t mode;                  /* st_mode */
        struct elf_cache_key key;
};

/* A new, empty entry for the file (dev, inode) with result -ENODATA, one reference. */
int layout_file_new(uint32_t dev_major, uint32_t dev_minor, uint64_t inode, struct layout_file **ret);
/* Another holder of f (returns f; accepts NULL). Thread-safe. */
struct layout_file *layout_file_ref(struct layout_file *f);
/* Drops a holder; the last one frees f. Accepts NULL; returns NULL. Thread-safe. */
struct layout_file *layout_file_unref(struct layout_file *f);
/* The build ID of f: the kernel's where it gave one, else the ELF file's; NULL (and
 * *ret_len 0) when none is known. */
const uint8_t *layout_file_build_id(const struct layout_file *f, size_t *ret_len);
/* Whether f describes m's file (device and inode). */
bool layout_file_matches(const struct layout_file *f, const struct mapping *m);

/* An address range [start, end); end LAYOUT_TOP: up to the top of the address space. */
struct layout_range {
        uint64_t start, end;
};

#define LAYOUT_TOP UINT64_MAX

struct layout_chunk;

struct layout {
        unsigned refs;
        pid_t pid;
        uint64_t start_time;
        uint64_t generation;            /* 0: unknown */
        bool kernel_thread;             /* no address space: complete and empty */
        bool complete;                  /* else only known[] is known */
        struct mapping_list mappings;   /* sorted, non-overlapping; names in chunks */
        struct layout_file **files;     /* per mapping (NULL: no facts), or NULL for none */
        struct layout_range *known;     /* partial layouts: sorted, disjoint, not adjacent */
        size_t n_known, known_allocated;
        struct layout_chunk *chunks;
};

/* A new layout of the process (pid, start_time): empty, partial, knowing nothing, one
 * reference. -ENOMEM. */
int layout_new(pid_t pid, uint64_t start_time, struct layout **ret);
/* Another holder of l (returns l; accepts NULL). Thread-safe. */
struct layout *layout_ref(struct layout *l);
/* Drops a holder; the last one frees l. Accepts NULL; returns NULL. Thread-safe. */
struct layout *layout_unref(struct layout *l);
DEFINE_CLEANUP_FUNC(struct layout *, layout_unref);

/* ---- Building: only by the one thread that made the layout, before it is shared. */

/* Appends a copy of *m (name and build ID copied into the layout's chunks; m stays the
 * caller's). Mappings may come in any order: layout_normalize() sorts them. -E2BIG beyond
 * MAPPING_LIST_MAX, -EINVAL for a build ID above MAPPING_BUILD_ID_MAX, -EBUSY once facts were
 * set (layout_set_file()), -ENOMEM. */
int layout_add(struct layout *l, const struct mapping *m);
/* Records that [start, end) is known: what no mapping covers there is unmapped. Ranges may
 * overlap and come in any order. -EINVAL when end <= start, -ENOMEM. */
int layout_add_known(struct layout *l, uint64_t start, uint64_t end);
/* Marks l complete: every mapping of the process is in it. */
void layout_set_complete(struct layout *l);
/* Sorts the mappings by start and drops those that are empty or overlap an earlier one (a
 * changing process read in several steps can give both), as mapping_list_normalize() does.
 * Must run before the setters below (they address mappings by index) and the queries. */
void layout_normalize(struct layout *l);
/* Replaces mapping i's name with a copy of name (NULL: none); its kind stays. -ENOMEM. */
int layout_set_name(struct layout *l, size_t i, const char *name);
/* Replaces mapping i's build ID with a copy of id (len 0: none). -EINVAL, -ENOMEM. */
int layout_set_build_id(struct layout *l, size_t i, const uint8_t *id, size_t len);
/* Points mapping i at the facts f (a new reference is taken; NULL drops it). -ENOMEM. */
int layout_set_file(struct layout *l, size_t i, struct layout_file *f);

/* ---- Queries: pure functions of the layout. */

/* Where addr is: 1 and *ret_index the mapping covering it, 0 when it is known to be unmapped,
 * -ENODATA when the layout does not know (a partial layout, outside its known ranges). */
int layout_find(const struct layout *l, uint64_t addr, size_t *ret_index);

/* The facts of mapping i, or NULL. An acquire load: facts may be filled in by another thread
 * (layout_fill_file()). */
static inline struct layout_file *layout_file_of(const struct layout *l, size_t i) {
        return l->files ? __atomic_load_n(&l->files[i], __ATOMIC_ACQUIRE) : NULL;
}

/* ---- Shared layouts (the layout store): facts filled in after the layout was handed out. */

/* Makes room for every mapping's facts (after layout_normalize(), before l is shared), so that
 * layout_fill_file() may run on a shared layout. -ENOMEM. */
int layout_prepare_files(struct layout *l);
/* Sets mapping i's facts to f (a new reference is taken) when none are set yet: facts are
 * derived from the mapping's file, so the first one filled in stands. Returns the facts set
 * now (f, or what another thread set first). Thread-safe on a prepared layout. */
struct layout_file *layout_fill_file(struct layout *l, size_t i, struct layout_file *f);

/* The bytes l holds (its mappings, names, ranges, facts slots, and the facts its files will have
 * once filled in): what a store charges for keeping it. */
size_t layout_memory(const struct layout *l);

enum {
        LAYOUT_EXECUTABLE_ONLY = 1u << 0,
        LAYOUT_FILE_BACKED_ONLY = 1u << 1,
};

/* Whether m passes the filters of flags (LAYOUT_EXECUTABLE_ONLY, LAYOUT_FILE_BACKED_ONLY). */
bool layout_filter_matches(const struct mapping *m, unsigned flags);

/* Visits each mapping that passes the filters, in address order, with a copy lent for the
 * call (its name and build ID point into l). The first negative return of visit stops the
 * listing and is returned; else 0. */
int layout_list(const struct layout *l, unsigned flags, mapping_visit_t visit, void *userdata);

struct layout_result {
        ssize_t mapping;        /* index into the layout's mappings; -1: unmapped */
        bool has_file_offset;
        bool has_elf_vaddr;
        uint64_t file_offset;
        uint64_t elf_vaddr;
};

/* The answer for one address: the mapping covering it, its file offset (file-backed
 * mappings), and its ELF virtual address (from the mapping's facts: the file's PT_LOADs at
 * the file offset; for the vdso, its image's at the offset into the mapping). -ENODATA when
 * the layout does not know addr. */
int layout_lookup_one(const struct layout *l, uint64_t addr, struct layout_result *ret);

/* layout_lookup_one() for n addresses (any order) into ret[n]. order, when not NULL, lists
 * the indices of addrs in ascending address order: the answers then come from one walk. -ENODATA
 * when one of them is not known (ret is then partly written). */
int layout_lookup(const struct layout *l, const uint64_t *addrs, const size_t *order, size_t n,
                  struct layout_result *ret);

/* The layout holding only the mappings of l that one of addrs[n] falls in (facts shared), with
 * l's known ranges; l itself (a new reference) when every mapping is touched. order as for
 * layout_lookup(). -ENOMEM. */
int layout_touched(struct layout *l, const uint64_t *addrs, const size_t *order, size_t n, struct layout **ret);
/* The indices of the mappings of l that one of addrs[n] falls in, ascending, each once, in *ret
 * (malloc'd; *ret_n of them). order as for layout_lookup(): one walk. -ENOMEM. */
int layout_touched_indices(const struct layout *l, const uint64_t *addrs, const size_t *order, size_t n,
                           size_t **ret, size_t *ret_n);
/* A new layout of l's mappings idx[count] (ascending), facts shared, with l's known ranges: one
 * the caller may still change (a shared layout's answer, completed with this request's facts).
 * -ENOMEM. */
int layout_select(struct layout *l, const size_t *idx, size_t count, struct layout **ret);
