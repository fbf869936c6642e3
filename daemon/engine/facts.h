/* Per-file facts a source cannot know (build IDs, PT_LOAD tables, whether a name still names its file), read through the files with bounded blocking, and added to layouts. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "elf-cache.h"
#include "layout.h"
#include "mapping.h"
#include "process.h"
#include "vdso-cache.h"

/* What the engine lends the reads: see engine_config. */
struct statx;
struct symbol_cache;

struct facts_config {
        struct elf_cache *cache;
        struct vdso_cache *vdso_cache;
        int (*run_blocking)(void *userdata, int (*fn)(void *data), void *data, void (*free_data)(void *data),
                            unsigned *budget_ms);
        void *run_blocking_userdata;
        unsigned budget_ms;             /* per request */
        struct symbol_cache *symbol_cache;
        const char *debug_dir;          /* where .build-id/xx/rest.debug files are looked for */
};

#define FACTS_MEMO_SLOTS 32

/* The facts read for one request, remembered across its mappings: a library's mappings are
 * adjacent, so the current file saves most open() calls and cache lookups; the table catches
 * a file met again further on (the same library mapped twice, or many libraries
 * interleaved), where each miss cost an open() of map_files/ and an fstat(). */
struct facts {
        const struct facts_config *cfg;
        const struct process *p;
        /* What the request reads of each file: the kernel's build ID (listings with build IDs
         * from a source that can ask the kernel) and the ELF facts (lookups; listings the
         * kernel gave none). */
        bool kernel_build_id, need_elf;
        struct layout_file *cur;        /* a reference */
        struct layout_file **table;     /* FACTS_MEMO_SLOTS references, allocated on demand */
        struct layout_file *vdso;       /* the process's [vdso], read from its memory */
        /* How long the request may still wait for blocking reads; set at the first one. */
        bool budget_set;
        unsigned budget_ms;
        /* A read did not run for a passing reason (the budget ran out, the runner was at its
         * quota): what was made without it must not be kept beyond this request. */
        bool transient;
};

/* Drops what f holds; f may be used again. */
void facts_done(struct facts *f);

/* Everything the engine adds to mapping i of l (being built): a name from the text alone
 * checked against the file where it held a newline (names_from_text), " (deleted)" checked
 * likewise, the build ID (build_ids) and, with f->need_elf, the file's (or vdso's) facts for
 * elf_vaddr. A file that cannot be read just leaves its facts out. -ENOMEM only. */
int facts_finish(struct facts *f, struct layout *l, size_t i, bool build_ids, bool names_from_text);

/* The facts of m's file (or, for the [vdso], of its image), read as facts_finish() reads them:
 * borrowed, valid until facts_done(); NULL for mappings without a file. A result < 0 says why
 * there are none (see facts_result_stands()). */
struct layout_file *facts_file_of(struct facts *f, const struct mapping *m);

/* Whether facts with this result hold for any reader of the file and may be kept for others: read
 * (>= 0), or the file is no ELF file (-ENOEXEC). A read that timed out, was refused for this
 * client's credentials or could not find the file in this client's view is only this
 * request's answer. */
bool facts_result_stands(int result);

/* For a mapping lent by a streamed listing without build IDs: only " (deleted)" checked. */
void facts_finish_lent(struct facts *f, struct mapping *m);

/* The ELF facts of the process's [vdso] m (elf_class 0 when its image is no ELF file), and with
 * ret_image its image (malloc'd, m->end - m->start bytes): the cached ones where the cache
 * holds the build ID its first page carries, for this process's owner. 0 or -errno. */
int facts_read_vdso(const struct facts_config *cfg, const struct process *p, const struct mapping *m,
                    struct elf_info *ret_info, uint8_t **ret_image);

/* Seeds the vdso cache with m when it is the daemon's own vdso: the kernel's image for the
 * daemon's ABI, which no client can have written to, so it may answer for any process that
 * carries its build ID. Without it (no vdso, no build ID) every image is learned from
 * processes. */
void facts_learn_own_vdso(const struct facts_config *cfg, const struct mapping *m);

/* See engine_open_mapping_file(). */
int facts_open_mapping_file(const struct facts_config *cfg, const struct process *p, const struct mapping *m,
                            int *ret_fd);

/* Opens the file behind m as p sees it (map_files/, else its path in p's root), checked to be
 * m's regular file: the fd (O_RDONLY|O_NONBLOCK) and its statx in *ret_stx, or -errno. Blocks on
 * the file's filesystem: for jobs on the runner. */
int facts_open_mapped_file(const struct process *p, const struct mapping *m, struct statx *ret_stx);

/* What a job on the runner needs of its target, owned by the job (a reader whose caller
 * stopped waiting outlives the caller's process and mapping): m's range and file, with its
 * name, and p's /proc directory. -ENOMEM, -errno. */
int facts_job_copy_target(const struct process *p, const struct mapping *m, struct mapping *ret_m, int *ret_proc_fd);
