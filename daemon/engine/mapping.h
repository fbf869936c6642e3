/* The one model of a memory mapping (VMA) that both backends produce, and its name classification. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "perms.h"

/* basic/perms.h's bits: perms_format() and perms_parse() read and write them. */
enum {
        MAPPING_READ = PERM_READ,
        MAPPING_WRITE = PERM_WRITE,
        MAPPING_EXEC = PERM_EXEC,
        MAPPING_SHARED = PERM_SHARED,
};

enum mapping_kind {
        MAPPING_KIND_ANONYMOUS,   /* no name at all, or "/anon_hugepage (deleted)" (MAP_HUGETLB) */
        MAPPING_KIND_FILE,        /* a path; see mapping.deleted */
        MAPPING_KIND_HEAP,        /* [heap] */
        MAPPING_KIND_STACK,       /* [stack], [stack:TID] */
        MAPPING_KIND_VDSO,        /* [vdso] */
        MAPPING_KIND_VVAR,        /* [vvar], [vvar_vclock] */
        MAPPING_KIND_VSYSCALL,    /* [vsyscall]: the gate area, not a VMA of the mm */
        MAPPING_KIND_MEMFD,       /* /memfd:NAME (deleted) */
        MAPPING_KIND_ANON_NAMED,  /* [anon:NAME] from prctl(PR_SET_VMA_ANON_NAME) */
        MAPPING_KIND_SHMEM_NAMED, /* [anon_shmem:NAME] */
        MAPPING_KIND_SPECIAL,     /* anon_inode:..., /dev/zero (deleted), /SYSV..., [uprobes], ... */
        _MAPPING_KIND_MAX,
};

/* GNU build IDs are usually 20 bytes; linkers accept longer custom ones. */
#define MAPPING_BUILD_ID_MAX 64

/* 64 bytes: a listing or a lookup holds tens of thousands of these. */
struct mapping {
        uint64_t start;
        uint64_t end;
        uint64_t offset;
        uint64_t inode;
        uint32_t dev_major;
        uint32_t dev_minor;
        uint32_t page_size;       /* 0 where the backend does not know it */
        uint8_t flags;            /* MAPPING_READ | ... */
        uint8_t kind;             /* enum mapping_kind */
        bool deleted;             /* file kind only: the kernel appended " (deleted)" */
        uint8_t build_id_len;     /* 0: none known (or not asked for) */
        char *name;               /* the kernel's name, unescaped; NULL for anonymous */
        uint8_t *build_id;        /* build_id_len bytes, owned; NULL when there are none */
};

struct mapping_list {
        struct mapping *items;
        size_t n;
        size_t allocated;
};

/* Frees what a mapping owns and leaves it empty; accepts an empty mapping. */
void mapping_done(struct mapping *m);

/* Replaces m's build ID with a copy of id (len 0: none). -EINVAL above MAPPING_BUILD_ID_MAX
 * bytes, -ENOMEM; m is untouched on failure. */
int mapping_set_build_id(struct mapping *m, const uint8_t *id, size_t len);

/* Classifies a kernel VMA name (NULL or "" is anonymous). Sets *ret_deleted for file names
 * that end in " (deleted)". Pure text: a file literally named "x (deleted)" is reported as
 * deleted here; the engine resolves that by looking at the file. */
enum mapping_kind mapping_classify(const char *name, bool *ret_deleted);

/* Sets m->kind and m->deleted from m->name (and, for "/anon_hugepage (deleted)", which is
 * anonymous memory where no device backs it, m->dev_major). */
void mapping_classify_name(struct mapping *m);

/* The length of the path of a file-backed mapping: the name without " (deleted)". */
size_t mapping_path_len(const struct mapping *m);

/* True for kinds that are backed by a file on some filesystem (file and memfd). */
bool mapping_is_file_backed(const struct mapping *m);

const char *mapping_kind_to_string(enum mapping_kind k);


void mapping_list_done(struct mapping_list *l);

/* Called for each mapping of a listing, in address order. m is lent for the call only: its
 * name may live in the caller's buffers, so the callee copies what it keeps and never frees
 * m->name (it may change other fields). A negative return stops the listing and is passed on. */
typedef int (*mapping_visit_t)(struct mapping *m, void *userdata);

/* Far above vm.max_map_count's default (65530): a bound on what one listing may cost. */
#define MAPPING_LIST_MAX (1u << 20)

/* Appends *m, taking ownership of what it owns (m is left empty). -E2BIG beyond
 * MAPPING_LIST_MAX entries, -ENOMEM; m is untouched on failure. */
int mapping_list_push(struct mapping_list *l, struct mapping *m);

/* Appends a copy of *m (its name and build ID duplicated). -E2BIG, -ENOMEM; l is untouched on failure. */
int mapping_list_push_copy(struct mapping_list *l, const struct mapping *m);

/* A mapping_visit_t that appends a copy of m to the struct mapping_list at list. */
int mapping_list_push_visit(struct mapping *m, void *list);

/* Sorts by start and drops entries that overlap an earlier one or have end <= start:
 * what a racy read of a changing process may produce. */
void mapping_list_normalize(struct mapping_list *l);
/* The same for a list whose mappings own nothing (their names live elsewhere): the entries
 * dropped are not freed. */
void mapping_list_normalize_lent(struct mapping_list *l);

/* Index of the mapping containing addr, or -1. The list must be normalized. */
ssize_t mapping_list_find(const struct mapping_list *l, uint64_t addr);

#define DELETED_SUFFIX " (deleted)"
