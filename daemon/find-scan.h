/* Where FindMappings finds its candidates: one pass of the BPF task_vma iterator where it loads (FindIterator=), else nothing and the method scans /proc. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tracking.h"

/* A file as the kernel names it: dev in its encoding (major << 20 | minor). */
struct find_inode {
        uint32_t dev;
        uint64_t ino;
};

/* A mapping the pass found: a candidate only, read with the daemon's privileges. */
struct find_hit {
        pid_t tgid;
        uint32_t dev;
        uint64_t ino;
        uint64_t start;
        bool unlinked;          /* the file may be deleted or replaced: names must be compared */
};

enum {
        FIND_SCAN_ALL_FILES = 1u << 0,  /* every file mapping */
        FIND_SCAN_UNLINKED = 1u << 1,   /* and those of unlinked files */
};

struct find_scan;

/* mode: TRACKING_AUTO loads the iterator where it can (why not: in *ret_why, static text),
 * TRACKING_BPF fails with -errno without it, TRACKING_NONE never loads it. */
int find_scan_new(enum tracking_mode mode, struct find_scan **ret, const char **ret_why);
/* Accepts NULL; returns NULL. */
struct find_scan *find_scan_free(struct find_scan *f);

/* Whether passes run in the kernel. NULL: false. */
bool find_scan_active(const struct find_scan *f);

/* One pass: the mappings of the n files, with flags more (FIND_SCAN_UNLINKED: only unlinked
 * files named unlinked_name, the last component of a path, when not NULL). At most max hits (-E2BIG beyond),
 * malloc'd into *ret. -EOPNOTSUPP when not active. */
int find_scan_run(struct find_scan *f, const struct find_inode *files, size_t n, unsigned flags,
                  const char *unlinked_name, size_t max, struct find_hit **ret, size_t *ret_n);

/* The kernel's encoding of a device number. */
static inline uint32_t find_kernel_dev(unsigned major, unsigned minor) {
        return (uint32_t) major << 20 | (minor & 0xfffff);
}
