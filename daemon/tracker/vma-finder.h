/* System-wide mapping search: loads the find-vma task_vma iterator and runs one pass over every process for a set of inodes. */
#pragma once

#include <stddef.h>

#include "cleanup.h"
#include "find-vma.h"

struct vma_finder;

/* Loads the iterator and attaches it. Needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) and the
 * kernel's BTF; -errno otherwise (-EPERM when BPF is denied), and the caller scans /proc. */
int vma_finder_new(struct vma_finder **ret);

/* Accepts NULL; returns NULL. */
struct vma_finder *vma_finder_free(struct vma_finder *f);
DEFINE_CLEANUP_FUNC(struct vma_finder *, vma_finder_free);

/* One pass over every process: the mappings of the n inodes of keys (pad zero), and with flags
 * (FIND_VMA_*) those of every file or of unlinked files too (named unlinked_name, when not NULL:
 * a file name, no '/', -ENAMETOOLONG from FIND_VMA_NAME_MAX bytes). The records, in the kernel's
 * order, are malloc'd into *ret (*ret_n of them). At most max_records: -E2BIG beyond. Passes
 * run one at a time (the inode set is the iterator's). The iterator runs with the daemon's
 * privileges: the caller decides what a client may see of it. */
int vma_finder_run(struct vma_finder *f, const struct find_vma_key *keys, size_t n, unsigned flags,
                   const char *unlinked_name, size_t max_records, struct find_vma_rec **ret, size_t *ret_n);
