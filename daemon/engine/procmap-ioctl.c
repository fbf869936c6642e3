/* The PROCMAP_QUERY backend: asks the kernel about VMAs through an open /proc/PID/maps fd (Linux 6.11+). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cleanup.h"
#include "maps-parse.h"
#include "procmap-ioctl.h"
#include "procmap-uapi.h"

/* The ioctl's names never exceed PATH_MAX (the kernel's buffer for d_path() is capped
 * there); leave room for " (deleted)". */
#define PROCMAP_NAME_INITIAL 4224
#define PROCMAP_NAME_MAX (64 * 1024)

void procmap_buf_done(struct procmap_buf *b) {
        if (!b)
                return;
        free(b->name);
        free(b->text_name);
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

/* One PROCMAP_QUERY. Without a name buffer (buf NULL) the VMA's name is not asked for. */
static int query_once(int maps_fd, uint64_t addr, unsigned flags, struct procmap_buf *buf, uint8_t *build_id,
                      struct procmap_query *ret) {
        for (;;) {
                struct procmap_query q = {
                        .size = sizeof(q),
                        .query_addr = addr,
                };
                int r;

                if (buf) {
                        q.vma_name_addr = (uintptr_t) buf->name;
                        q.vma_name_size = (uint32_t) buf->size;
                }
                if (flags & PROCMAP_COVERING_OR_NEXT)
                        q.query_flags |= PROCMAP_QUERY_COVERING_OR_NEXT_VMA;
                if (flags & PROCMAP_FILE_BACKED)
                        q.query_flags |= PROCMAP_QUERY_FILE_BACKED_VMA;
                if (flags & PROCMAP_EXECUTABLE)
                        q.query_flags |= PROCMAP_QUERY_VMA_EXECUTABLE;
                if (flags & PROCMAP_BUILD_ID) {
                        q.build_id_addr = (uintptr_t) build_id;
                        q.build_id_size = MAPPING_BUILD_ID_MAX;
                }

                if (ioctl(maps_fd, PROCMAP_QUERY, &q) >= 0) {
                        *ret = q;
                        return 0;
                }
                if (errno == EINTR)
                        continue;
                /* The kernel says ENAMETOOLONG where its header promises E2BIG: take both. */
                if (buf && (errno == ENAMETOOLONG || errno == E2BIG)) {
                        r = buf_grow(buf);
                        if (r < 0)
                                return r;
                        continue;
                }
                return -errno;
        }
}

/* Finding the line of one VMA in the maps text. */
struct text_find {
        uint64_t start;
        char *name;
        bool found;
};

static int text_find_line(struct mapping *m, void *userdata) {
        struct text_find *f = userdata;

        if (m->start != f->start)
                return 0;
        f->found = true;
        if (m->name) {
                f->name = strdup(m->name);
                if (!f->name)
                        return -ENOMEM;
        }
        return -ECANCELED; /* found: stop reading */
}

/* The name of the VMA at start as the maps text shows it, allocated into *ret (NULL for
 * none). The text prints paths of any length where the ioctl stops at PATH_MAX. -ENOENT when
 * the text has no VMA starting there (it changed meanwhile). */
static int text_name_at(int maps_fd, uint64_t start, char **ret) {
        struct text_find f = { .start = start };
        int r;

        r = maps_read_each(maps_fd, text_find_line, &f);
        if (r < 0 && r != -ECANCELED) {
                free(f.name);
                return r;
        }
        if (!f.found)
                return -ENOENT;
        *ret = f.name;
        return 0;
}

int procmap_query(int maps_fd, uint64_t addr, unsigned flags, struct procmap_buf *buf, struct mapping *ret) {
        uint8_t build_id[MAPPING_BUILD_ID_MAX];
        _cleanup_free_ char *long_name = NULL;
        bool name_from_text = false;
        struct procmap_query q;
        int r;

        if ((flags & PROCMAP_NAME_LENT) && (flags & PROCMAP_BUILD_ID))
                return -EINVAL;
        if (!buf->name) {
                r = buf_grow(buf);
                if (r < 0)
                        return r;
        }

        r = query_once(maps_fd, addr, flags, buf, build_id, &q);
        if (r == -ENAMETOOLONG) {
                /* A path longer than PATH_MAX (deep directories): the kernel cannot give it
                 * here, but the text has it. The VMA itself is asked for without its name. */
                r = query_once(maps_fd, addr, flags, NULL, build_id, &q);
                if (r < 0)
                        return r;
                if (q.vma_end < q.vma_start)
                        return -EIO;
                name_from_text = true;
                if (!(flags & PROCMAP_NAME_OPTIONAL)) {
                        r = text_name_at(maps_fd, q.vma_start, &long_name);
                        /* Gone from the text: the process changed under us, as ESRCH says. */
                        if (r == -ENOENT)
                                return -EAGAIN;
                        if (r < 0)
                                return r;
                }
        } else if (r < 0)
                return r;

        /* The kernel fills these; a confused answer must not send us past our buffers. */
        if ((!name_from_text && q.vma_name_size > buf->size) || q.build_id_size > sizeof(build_id) ||
            q.vma_end < q.vma_start)
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
        if (name_from_text && (flags & PROCMAP_NAME_LENT)) {
                free(buf->text_name);
                m.name = buf->text_name = TAKE_PTR(long_name);
        } else if (name_from_text)
                m.name = TAKE_PTR(long_name);
        else if (q.vma_name_size > 1 && (flags & PROCMAP_NAME_LENT)) {
                buf->name[q.vma_name_size - 1] = '\0';
                m.name = buf->name;
        }
        else if (q.vma_name_size > 1) {
                m.name = strndup(buf->name, q.vma_name_size - 1);
                if (!m.name)
                        return -ENOMEM;
        }
        if ((flags & PROCMAP_BUILD_ID) && q.build_id_size > 0) {
                r = mapping_set_build_id(&m, build_id, q.build_id_size);
                if (r < 0) {
                        mapping_done(&m);
                        return r;
                }
        }
        mapping_classify_name(&m);
        /* Without a name (optional and too long), at least not anonymous: the caller has one. */
        if (name_from_text && !m.name)
                m.kind = MAPPING_KIND_FILE;

        *ret = m;
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

/* Where a text listing stands. */
struct text_walk {
        int maps_fd;
        mapping_visit_t visit;
        void *userdata;
        struct procmap_buf buf;
        struct page_size_memo memo[PAGE_SIZE_MEMO_SLOTS];
        bool emitted;
        uint64_t next;          /* the end of the last mapping visited */
        bool have_gate;         /* a gate area line, held back until we know it is the last */
        struct mapping gate;
};

/* Completes one mapping read from the text: its page size, and where the text's name may not
 * be the kernel's, the kernel's name, allocated into *ret_name (to be freed by the caller).
 * -EAGAIN when the kernel's VMA at its start is no longer the one the text showed. */
static int complete_from_query(struct text_walk *t, struct mapping *m, char **ret_name) {
        struct page_size_memo *slot;
        bool exact = text_name_exact(m);
        struct mapping q;
        int r;

        slot = memo_slot(t->memo, m);
        if (exact && slot->valid && slot->inode == m->inode && slot->dev_major == m->dev_major &&
            slot->dev_minor == m->dev_minor) {
                m->page_size = slot->page_size;
                return 0;
        }

        /* An exact name of the text needs no name from the kernel, which may have none to give
         * (a path beyond PATH_MAX). */
        r = procmap_query(t->maps_fd, m->start, exact ? PROCMAP_NAME_OPTIONAL : 0, &t->buf, &q);
        if (r == -ENOENT)
                return -EAGAIN;
        if (r < 0)
                return r;
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
                m->name = q.name;
                m->kind = q.kind;
                m->deleted = q.deleted;
                *ret_name = q.name;
        } else
                mapping_done(&q);
        return 0;
}

/* Visits m unless it is empty or overlaps what was visited (a changing process can make a
 * text read in several chunks do that: mapping_list_normalize() would drop the same). */
static int text_emit(struct text_walk *t, struct mapping *m) {
        _cleanup_free_ char *name = NULL;
        int r;

        if (m->end <= m->start || (t->emitted && m->start < t->next))
                return 0;
        r = complete_from_query(t, m, &name);
        if (r < 0)
                return r;
        r = t->visit(m, t->userdata);
        if (r < 0)
                return r;
        t->next = m->end;
        t->emitted = true;
        return 0;
}

static int text_line(struct mapping *m, void *userdata) {
        struct text_walk *t = userdata;
        int r;

        if (t->have_gate) {
                t->have_gate = false;
                r = text_emit(t, &t->gate);
                if (r < 0)
                        return r;
        }
        /* The gate area is no VMA: procmap_list() does not see it either (its callers add it).
         * The text shows it last, with no file; a line that turns out not to be last is an
         * ordinary mapping. */
        if (m->kind == MAPPING_KIND_VSYSCALL && m->dev_major == 0 && m->dev_minor == 0 && m->inode == 0) {
                t->gate = *m;
                t->gate.name = (char *) "[vsyscall]"; /* what classifies as vsyscall; lent */
                t->have_gate = true;
                return 0;
        }
        return text_emit(t, m);
}

/* The rest of a listing, VMA by VMA from address "from" on, in address order. */
static int list_from(int maps_fd, uint64_t from, unsigned flags, struct procmap_buf *buf, mapping_visit_t visit,
                     void *userdata) {
        uint64_t addr = from;
        int r;

        for (;;) {
                struct mapping m;

                r = procmap_query(maps_fd, addr, flags | PROCMAP_COVERING_OR_NEXT, buf, &m);
                if (r == -ENOENT)
                        return 0;
                if (r < 0)
                        return r;
                /* A VMA that grew down over what was visited already: normalizing drops it. */
                if (m.start >= from)
                        r = visit(&m, userdata);
                addr = m.end;
                if (!(flags & PROCMAP_NAME_LENT))
                        mapping_done(&m);
                if (r < 0)
                        return r;
                /* end == 0 would mean the VMA ends at the top of the address space. */
                if (addr == 0)
                        return 0;
        }
}

int procmap_list_text_each(int maps_fd, mapping_visit_t visit, void *userdata) {
        struct text_walk walk = { .maps_fd = maps_fd, .visit = visit, .userdata = userdata }, *t = &walk;
        int r;

        if (!visit)
                return -EINVAL;

        r = maps_read_each(maps_fd, text_line, t);
        if (r >= 0 || r == -EAGAIN)
                /* When the process changed under us, the kernel is asked VMA by VMA for the rest.
                 * Otherwise this is one query, and a necessary one: the text of an mm that is gone
                 * reads as empty, or ends early, where the ioctl says ESRCH. A query answered
                 * after the whole text was read proves the mm was alive throughout. */
                r = list_from(maps_fd, t->emitted ? t->next : 0, PROCMAP_NAME_LENT, &t->buf, visit, userdata);
        procmap_buf_done(&t->buf);
        return r;
}

int procmap_list_each(int maps_fd, unsigned flags, mapping_visit_t visit, void *userdata) {
        _cleanup_(procmap_buf_done) struct procmap_buf buf = {};

        if (!visit)
                return -EINVAL;
        return list_from(maps_fd, 0, flags | PROCMAP_NAME_LENT, &buf, visit, userdata);
}

/* For list_from() only, whose mappings own their names and build IDs: takes them instead of
 * copies (list_from() frees what is left). */
static int push_move(struct mapping *m, void *userdata) {
        struct mapping c = *m;
        int r;

        r = mapping_list_push(userdata, &c);
        if (r >= 0) {
                m->name = NULL;
                m->build_id = NULL;
                m->build_id_len = 0;
        }
        return r;
}

int procmap_list(int maps_fd, unsigned flags, struct mapping_list *ret) {
        _cleanup_(procmap_buf_done) struct procmap_buf buf = {};
        _cleanup_(mapping_list_done) struct mapping_list l = {};
        int r;

        r = list_from(maps_fd, 0, flags, &buf, push_move, &l);
        if (r < 0)
                return r;
        mapping_list_normalize(&l);
        *ret = l;
        l = (struct mapping_list) {};
        return 0;
}

int procmap_list_text(int maps_fd, struct mapping_list *ret) {
        _cleanup_(mapping_list_done) struct mapping_list l = {};
        int r;

        r = procmap_list_text_each(maps_fd, mapping_list_push_visit, &l);
        if (r < 0)
                return r;
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
