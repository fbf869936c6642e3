#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cleanup.h"
#include "procmap-ioctl.h"
#include "procmap-uapi.h"

/* The kernel's d_path() output never exceeds PATH_MAX; leave room for " (deleted)". */
#define PROCMAP_NAME_INITIAL 4224
#define PROCMAP_NAME_MAX (64 * 1024)

void procmap_buf_done(struct procmap_buf *b) {
        if (!b)
                return;
        free(b->name);
        *b = (struct procmap_buf) {};
}

static int buf_grow(struct procmap_buf *b) {
        size_t n = b->size ? b->size * 2 : PROCMAP_NAME_INITIAL;
        char *p;

        if (n > PROCMAP_NAME_MAX)
                return -ENAMETOOLONG;
        p = realloc(b->name, n);
        if (!p)
                return -ENOMEM;
        b->name = p;
        b->size = n;
        return 0;
}

int procmap_query(int maps_fd, uint64_t addr, unsigned flags, struct procmap_buf *buf, struct mapping *ret) {
        uint8_t build_id[MAPPING_BUILD_ID_MAX];
        struct procmap_query q;
        int r;

        if (!buf->name) {
                r = buf_grow(buf);
                if (r < 0)
                        return r;
        }

        for (;;) {
                q = (struct procmap_query) {
                        .size = sizeof(q),
                        .query_addr = addr,
                        .vma_name_addr = (uintptr_t) buf->name,
                        .vma_name_size = (uint32_t) buf->size,
                };
                if (flags & PROCMAP_COVERING_OR_NEXT)
                        q.query_flags |= PROCMAP_QUERY_COVERING_OR_NEXT_VMA;
                if (flags & PROCMAP_FILE_BACKED)
                        q.query_flags |= PROCMAP_QUERY_FILE_BACKED_VMA;
                if (flags & PROCMAP_EXECUTABLE)
                        q.query_flags |= PROCMAP_QUERY_VMA_EXECUTABLE;
                if (flags & PROCMAP_BUILD_ID) {
                        q.build_id_addr = (uintptr_t) build_id;
                        q.build_id_size = sizeof(build_id);
                }

                if (ioctl(maps_fd, PROCMAP_QUERY, &q) >= 0)
                        break;
                if (errno == EINTR)
                        continue;
                /* The kernel says ENAMETOOLONG where its header promises E2BIG: take both. */
                if (errno == ENAMETOOLONG || errno == E2BIG) {
                        r = buf_grow(buf);
                        if (r < 0)
                                return r;
                        continue;
                }
                return -errno;
        }

        /* The kernel fills these; a confused answer must not send us past our buffers. */
        if (q.vma_name_size > buf->size || q.build_id_size > sizeof(build_id) || q.vma_end < q.vma_start)
                return -EIO;

        struct mapping m = {
                .start = q.vma_start,
                .end = q.vma_end,
                .offset = q.vma_offset,
                .inode = q.inode,
                .dev_major = q.dev_major,
                .dev_minor = q.dev_minor,
                .page_size = q.vma_page_size <= UINT32_MAX ? (uint32_t) q.vma_page_size : 0,
        };
        if (q.vma_flags & PROCMAP_QUERY_VMA_READABLE)
                m.flags |= MAPPING_READ;
        if (q.vma_flags & PROCMAP_QUERY_VMA_WRITABLE)
                m.flags |= MAPPING_WRITE;
        if (q.vma_flags & PROCMAP_QUERY_VMA_EXECUTABLE)
                m.flags |= MAPPING_EXEC;
        if (q.vma_flags & PROCMAP_QUERY_VMA_SHARED)
                m.flags |= MAPPING_SHARED;

        /* vma_name_size counts the terminating NUL; 0 means the VMA has no name. */
        if (q.vma_name_size > 1) {
                m.name = strndup(buf->name, q.vma_name_size - 1);
                if (!m.name)
                        return -ENOMEM;
        }
        if ((flags & PROCMAP_BUILD_ID) && q.build_id_size > 0) {
                memcpy(m.build_id, build_id, q.build_id_size);
                m.build_id_len = (uint8_t) q.build_id_size;
        }
        mapping_classify_name(&m);

        *ret = m;
        return 0;
}

int procmap_list(int maps_fd, unsigned flags, struct mapping_list *ret) {
        _cleanup_(procmap_buf_done) struct procmap_buf buf = {};
        _cleanup_(mapping_list_done) struct mapping_list l = {};
        uint64_t addr = 0;
        int r;

        for (;;) {
                struct mapping m;

                r = procmap_query(maps_fd, addr, flags | PROCMAP_COVERING_OR_NEXT, &buf, &m);
                if (r == -ENOENT)
                        break;
                if (r < 0)
                        return r;

                addr = m.end;
                r = mapping_list_push(&l, &m);
                if (r < 0) {
                        mapping_done(&m);
                        return r;
                }
                /* end == 0 would mean the VMA ends at the top of the address space. */
                if (addr == 0)
                        break;
        }

        mapping_list_normalize(&l);
        *ret = l;
        l = (struct mapping_list) {};
        return 0;
}

bool procmap_supported(int maps_fd) {
        struct procmap_query q = { .size = sizeof(q), .query_flags = PROCMAP_QUERY_COVERING_OR_NEXT_VMA };

        if (ioctl(maps_fd, PROCMAP_QUERY, &q) >= 0)
                return true;
        /* ENOENT (an empty mm) and ESRCH still prove the kernel knows the ioctl. */
        return errno != ENOTTY && errno != EINVAL;
}
