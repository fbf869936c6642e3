#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cleanup.h"
#include "maps-parse.h"
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

/* Page sizes by file. The kernel's page size of a VMA (vma_kernel_pagesize()) is the base
 * page size unless the VMA's file says otherwise: hugetlbfs (one size per mount, SysV
 * SHM_HUGETLB segments included) and device DAX (one alignment per device). So one query per
 * (device, inode) answers for every VMA of that file, and one for all memory without a file
 * (device 0:0, which no superblock has). Direct-mapped: a collision costs a query. */
#define PAGE_SIZE_MEMO_SLOTS 64

struct page_size_memo {
        bool valid;
        uint32_t dev_major, dev_minor;
        uint64_t inode;
        uint32_t page_size;
};

static struct page_size_memo *memo_slot(struct page_size_memo *memo, const struct mapping *m) {
        uint64_t h = m->inode ^ ((uint64_t) m->dev_major << 32) ^ ((uint64_t) m->dev_minor << 12);

        return &memo[(h ^ (h >> 17)) % PAGE_SIZE_MEMO_SLOTS];
}

/* Whether the text's name is the kernel's: paths (d_path() output starts with '/') and
 * bracketed specials are, unless they held a newline, which the text escapes as "\012" and
 * could be a literal "\012" as well. Other names (a filesystem's own d_dname(), e.g.
 * "anon_inode:...") might have lost leading spaces to the padding. */
static bool text_name_exact(const struct mapping *m) {
        if (!m->name)
                return true;
        if (m->name[0] != '/' && m->name[0] != '[')
                return false;
        return !strchr(m->name, '\n');
}

/* Completes one mapping read from the text; -EAGAIN when the kernel's VMA at its start is no
 * longer the one the text showed. */
static int complete_from_query(int maps_fd, struct procmap_buf *buf, struct page_size_memo *memo,
                               struct mapping *m, bool *queried) {
        struct page_size_memo *slot;
        bool exact = text_name_exact(m);
        struct mapping q;
        int r;

        slot = memo_slot(memo, m);
        if (exact && slot->valid && slot->inode == m->inode && slot->dev_major == m->dev_major &&
            slot->dev_minor == m->dev_minor) {
                m->page_size = slot->page_size;
                return 0;
        }

        r = procmap_query(maps_fd, m->start, 0, buf, &q);
        if (r == -ENOENT)
                return -EAGAIN;
        if (r < 0)
                return r;
        *queried = true;
        if (q.start != m->start || q.end != m->end || q.offset != m->offset || q.flags != m->flags ||
            q.inode != m->inode || q.dev_major != m->dev_major || q.dev_minor != m->dev_minor) {
                mapping_done(&q);
                return -EAGAIN;
        }
        *slot = (struct page_size_memo) {
                .valid = true,
                .dev_major = m->dev_major,
                .dev_minor = m->dev_minor,
                .inode = m->inode,
                .page_size = q.page_size,
        };
        m->page_size = q.page_size;
        if (!exact) {
                mapping_done(m);
                *m = q;
        } else
                mapping_done(&q);
        return 0;
}

int procmap_list_text(int maps_fd, struct mapping_list *ret) {
        _cleanup_(procmap_buf_done) struct procmap_buf buf = {};
        _cleanup_(mapping_list_done) struct mapping_list l = {};
        struct page_size_memo memo[PAGE_SIZE_MEMO_SLOTS] = {};
        bool queried = false;
        int r;

        r = maps_read_fd(maps_fd, &l);
        if (r < 0)
                return r;

        for (size_t i = 0; i < l.n; i++) {
                struct mapping *m = &l.items[i];

                /* The gate area is no VMA: procmap_list() does not see it either (its callers
                 * add it). The text shows it last, with no file. */
                if (m->kind == MAPPING_KIND_VSYSCALL && i == l.n - 1 && m->dev_major == 0 && m->dev_minor == 0 &&
                    m->inode == 0) {
                        mapping_done(m);
                        l.n--;
                        break;
                }
                r = complete_from_query(maps_fd, &buf, memo, m, &queried);
                if (r == -EAGAIN)
                        /* The process changed under us: ask the kernel VMA by VMA instead. */
                        return procmap_list(maps_fd, 0, ret);
                if (r < 0)
                        return r;
        }
        /* The text of an mm that is gone reads as empty (or ends early), where the ioctl says
         * ESRCH. A query answered after the whole text was read proves the mm was alive
         * throughout; without one (nothing to ask about), the ioctl decides. */
        if (!queried)
                return procmap_list(maps_fd, 0, ret);

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
