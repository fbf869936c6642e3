/* System-wide mapping search: loads the find-vma task_vma iterator and runs one pass over every process for a set of inodes. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "vma-finder.h"
#include "find-vma.skel.h"

struct vma_finder {
        struct find_vma *skel;
        pthread_mutex_t lock;           /* one pass at a time: the targets map is shared */
};

static int silent_print(enum libbpf_print_level level, const char *format, va_list args) {
        return 0;
}

struct vma_finder *vma_finder_free(struct vma_finder *f) {
        if (!f)
                return NULL;
        find_vma__destroy(f->skel);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return NULL;
}

int vma_finder_new(struct vma_finder **ret) {
        _cleanup_(vma_finder_freep) struct vma_finder *f = NULL;
        libbpf_print_fn_t old_print;
        int r;

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        pthread_mutex_init(&f->lock, NULL);

        /* Library code never logs: the -errno says what failed. */
        old_print = libbpf_set_print(silent_print);
        f->skel = find_vma__open();
        r = f->skel ? 0 : -errno;
        if (r >= 0)
                r = find_vma__load(f->skel);
        if (r >= 0 && !f->skel->bss)
                r = -EOPNOTSUPP;
        if (r >= 0)
                r = find_vma__attach(f->skel);
        libbpf_set_print(old_print);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(f);
        return 0;
}

static void targets_clear(struct vma_finder *f, const struct find_vma_key *keys, size_t n) {
        int fd = bpf_map__fd(f->skel->maps.targets);

        for (size_t i = 0; i < n; i++)
                (void) bpf_map_delete_elem(fd, &keys[i]);
}

/* Reads the iterator's whole output: records only, each written whole by the program. */
static int pass_read(struct vma_finder *f, size_t max_records, struct find_vma_rec **ret, size_t *ret_n) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ struct find_vma_rec *recs = NULL;
        size_t n = 0, cap = 0, bytes = 0;

        fd = bpf_iter_create(bpf_link__fd(f->skel->links.find_vma));
        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t k;

                if (bytes == cap * sizeof(*recs)) {
                        size_t ncap = cap ? cap * 2 : 256;
                        struct find_vma_rec *nr;

                        if (cap >= max_records + 1)
                                return -E2BIG;
                        if (ncap > max_records + 1)
                                ncap = max_records + 1;
                        nr = realloc(recs, ncap * sizeof(*recs));
                        if (!nr)
                                return -ENOMEM;
                        recs = nr;
                        cap = ncap;
                }
                k = read(fd, (char *) recs + bytes, cap * sizeof(*recs) - bytes);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        /* EAGAIN: the kernel restarts a pass that met a changing task; ours is
                         * one read: the caller may try again. */
                        return -errno;
                }
                if (k == 0)
                        break;
                bytes += (size_t) k;
        }
        if (bytes % sizeof(*recs) != 0)
                return -EBADMSG;
        n = bytes / sizeof(*recs);
        if (n > max_records)
                return -E2BIG;
        *ret = TAKE_PTR(recs);
        *ret_n = n;
        return 0;
}

int vma_finder_run(struct vma_finder *f, const struct find_vma_key *keys, size_t n, unsigned flags,
                   const char *unlinked_name, size_t max_records, struct find_vma_rec **ret, size_t *ret_n) {
        int map_fd = bpf_map__fd(f->skel->maps.targets);
        size_t added = 0, name_len = unlinked_name ? strlen(unlinked_name) : 0;
        uint8_t one = 1;
        int r = 0;

        if (n > FIND_VMA_MAX_TARGETS)
                return -E2BIG;
        if (name_len >= FIND_VMA_NAME_MAX)
                return -ENAMETOOLONG;

        pthread_mutex_lock(&f->lock);
        memcpy(f->skel->bss->unlinked_name, unlinked_name ? unlinked_name : "", name_len + 1);
        f->skel->bss->unlinked_name_len = (__u32) name_len;
        for (; added < n; added++)
                if (bpf_map_update_elem(map_fd, &keys[added], &one, BPF_ANY) < 0) {
                        r = -errno;
                        break;
                }
        if (r >= 0) {
                __atomic_store_n(&f->skel->bss->pass_flags, flags, __ATOMIC_RELEASE);
                r = pass_read(f, max_records, ret, ret_n);
                __atomic_store_n(&f->skel->bss->pass_flags, 0, __ATOMIC_RELEASE);
        }
        targets_clear(f, keys, added);
        pthread_mutex_unlock(&f->lock);
        return r;
}
