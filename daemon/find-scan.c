/* Where FindMappings finds its candidates: one pass of the BPF task_vma iterator where it loads (FindIterator=), else nothing and the method scans /proc. */
#include <errno.h>
#include <stdlib.h>

#include "cleanup.h"
#include "find-scan.h"

#if HAVE_BPF
#include "vma-finder.h"
#endif

struct find_scan {
#if HAVE_BPF
        struct vma_finder *finder;
#else
        int unused;
#endif
};

struct find_scan *find_scan_free(struct find_scan *f) {
        if (!f)
                return NULL;
#if HAVE_BPF
        vma_finder_free(f->finder);
#endif
        free(f);
        return NULL;
}

int find_scan_new(enum tracking_mode mode, struct find_scan **ret, const char **ret_why) {
        struct find_scan *f = calloc(1, sizeof(*f));
        const char *why = NULL;
        int r = 0;

        if (!f)
                return -ENOMEM;
        if (mode == TRACKING_NONE)
                why = "FindIterator=none";
        else {
#if HAVE_BPF
                r = vma_finder_new(&f->finder);
                if (r < 0)
                        why = r == -EPERM ? "BPF is denied" : "the iterator did not load";
#else
                r = -EOPNOTSUPP;
                why = "built without BPF";
#endif
                if (r < 0 && mode == TRACKING_BPF) {
                        find_scan_free(f);
                        return r;
                }
        }
        *ret = f;
        if (ret_why)
                *ret_why = why;
        return 0;
}

bool find_scan_active(const struct find_scan *f) {
#if HAVE_BPF
        return f && f->finder;
#else
        return false;
#endif
}

int find_scan_run(struct find_scan *f, const struct find_inode *files, size_t n, unsigned flags,
                  const char *unlinked_name, size_t max, struct find_hit **ret, size_t *ret_n) {
#if HAVE_BPF
        _cleanup_free_ struct find_vma_key *keys = NULL;
        _cleanup_free_ struct find_vma_rec *recs = NULL;
        struct find_hit *hits;
        size_t n_recs = 0;
        int r;

        if (!find_scan_active(f))
                return -EOPNOTSUPP;
        if (n > FIND_VMA_MAX_TARGETS)
                return -E2BIG;
        keys = calloc(n ? n : 1, sizeof(*keys));
        if (!keys)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                keys[i] = (struct find_vma_key) { .dev = files[i].dev, .ino = files[i].ino };
        /* A pass that met a task changing under it fails with EAGAIN: a few more tries. */
        for (unsigned attempt = 0;; attempt++) {
                r = vma_finder_run(f->finder, keys, n,
                                   ((flags & FIND_SCAN_ALL_FILES) ? FIND_VMA_ALL_FILES : 0) |
                                           ((flags & FIND_SCAN_UNLINKED) ? FIND_VMA_UNLINKED : 0),
                                   unlinked_name, max, &recs, &n_recs);
                if (r != -EAGAIN || attempt >= 4)
                        break;
        }
        if (r < 0)
                return r;
        hits = calloc(n_recs ? n_recs : 1, sizeof(*hits));
        if (!hits)
                return -ENOMEM;
        for (size_t i = 0; i < n_recs; i++)
                hits[i] = (struct find_hit) {
                        .tgid = (pid_t) recs[i].tgid,
                        .dev = recs[i].dev,
                        .ino = recs[i].ino,
                        .start = recs[i].start,
                        .unlinked = recs[i].flags & FIND_VMA_REC_UNLINKED,
                };
        *ret = hits;
        *ret_n = n_recs;
        return 0;
#else
        return -EOPNOTSUPP;
#endif
}
