/* Layouts: building a snapshot of a process's mappings once, then answering listings and lookups from it. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "layout.h"

/* Name storage: a layout of 60,000 mappings holds some MiB of names; a lookup of one address,
 * one name. Chunks start small and double up to a bound; a name larger than that gets a chunk
 * of its own size. */
#define CHUNK_MIN 1024
#define CHUNK_MAX (256 * 1024)

struct layout_chunk {
        struct layout_chunk *next;
        size_t used, size;
        char data[];
};

int layout_file_new(uint32_t dev_major, uint32_t dev_minor, uint64_t inode, struct layout_file **ret) {
        struct layout_file *f = malloc(sizeof(*f));

        if (!f)
                return -ENOMEM;
        /* Only the header: elf_info is 1.3 KiB that result < 0 says nothing of. */
        f->refs = 1;
        f->dev_major = dev_major;
        f->dev_minor = dev_minor;
        f->inode = inode;
        f->result = -ENODATA;
        f->info.elf_class = 0;
        f->info.build_id_len = 0;
        f->info.n_loads = 0;
        f->kernel_build_id_len = 0;
        f->has_key = false;
        f->owner = 0;
        f->mode = 0;
        *ret = f;
        return 0;
}

struct layout_file *layout_file_ref(struct layout_file *f) {
        if (f)
                __atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
        return f;
}

struct layout_file *layout_file_unref(struct layout_file *f) {
        if (f && __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0)
                free(f);
        return NULL;
}

const uint8_t *layout_file_build_id(const struct layout_file *f, size_t *ret_len) {
        if (f && f->kernel_build_id_len > 0) {
                *ret_len = f->kernel_build_id_len;
                return f->kernel_build_id;
        }
        if (f && f->result >= 0 && f->info.build_id_len > 0) {
                *ret_len = f->info.build_id_len;
                return f->info.build_id;
        }
        *ret_len = 0;
        return NULL;
}

bool layout_file_matches(const struct layout_file *f, const struct mapping *m) {
        return f->inode == m->inode && f->dev_major == m->dev_major && f->dev_minor == m->dev_minor;
}

int layout_new(pid_t pid, uint64_t start_time, struct layout **ret) {
        struct layout *l = calloc(1, sizeof(*l));

        if (!l)
                return -ENOMEM;
        l->refs = 1;
        l->pid = pid;
        l->start_time = start_time;
        *ret = l;
        return 0;
}

struct layout *layout_ref(struct layout *l) {
        if (l)
                __atomic_add_fetch(&l->refs, 1, __ATOMIC_RELAXED);
        return l;
}

struct layout *layout_unref(struct layout *l) {
        if (!l || __atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) != 0)
                return NULL;
        if (l->files)
                for (size_t i = 0; i < l->mappings.n; i++)
                        layout_file_unref(l->files[i]);
        free(l->files);
        /* The names and build IDs live in the chunks: no mapping_done() here. */
        free(l->mappings.items);
        free(l->known);
        for (struct layout_chunk *c = l->chunks, *next; c; c = next) {
                next = c->next;
                free(c);
        }
        free(l);
        return NULL;
}

/* A copy of len bytes of data in l's chunks, NUL-terminated when nul. NULL: out of memory. */
static void *chunk_copy(struct layout *l, const void *data, size_t len, bool nul) {
        struct layout_chunk *c = l->chunks;
        size_t need = len + nul;
        char *p;

        if (!c || c->size - c->used < need) {
                size_t size = c ? MIN(c->size * 2, (size_t) CHUNK_MAX) : CHUNK_MIN;

                if (size < need)
                        size = need;
                c = malloc(sizeof(*c) + size);
                if (!c)
                        return NULL;
                c->size = size;
                c->used = 0;
                c->next = l->chunks;
                l->chunks = c;
        }
        p = c->data + c->used;
        memcpy(p, data, len);
        if (nul)
                p[len] = '\0';
        c->used += need;
        return p;
}

int layout_add(struct layout *l, const struct mapping *m) {
        struct mapping c = *m;
        int r;

        if (m->build_id_len > MAPPING_BUILD_ID_MAX)
                return -EINVAL;
        /* files[] is sized by the mappings when the first facts are set. */
        if (l->files)
                return -EBUSY;
        if (l->mappings.n >= MAPPING_LIST_MAX)
                return -E2BIG;
        if (m->name && !(c.name = chunk_copy(l, m->name, strlen(m->name), true)))
                return -ENOMEM;
        if (m->build_id_len > 0 && !(c.build_id = chunk_copy(l, m->build_id, m->build_id_len, false)))
                return -ENOMEM;
        if (m->build_id_len == 0)
                c.build_id = NULL;
        /* The chunks keep what a failing push leaves behind until the layout goes. */
        r = mapping_list_push(&l->mappings, &c);
        return r;
}

int layout_add_known(struct layout *l, uint64_t start, uint64_t end) {
        struct layout_range *last = l->n_known > 0 ? &l->known[l->n_known - 1] : NULL;

        if (end <= start)
                return -EINVAL;
        /* Ranges mostly come in ascending order, touching the last one: merged at once. */
        if (last && start >= last->start && start <= last->end) {
                last->end = MAX(last->end, end);
                return 0;
        }
        if (l->n_known >= l->known_allocated) {
                size_t a = l->known_allocated ? l->known_allocated * 2 : 16;
                struct layout_range *k;

                if (a > SIZE_MAX / sizeof(*k))
                        return -ENOMEM;
                k = realloc(l->known, a * sizeof(*k));
                if (!k)
                        return -ENOMEM;
                l->known = k;
                l->known_allocated = a;
        }
        l->known[l->n_known++] = (struct layout_range) { start, end };
        return 0;
}

void layout_set_complete(struct layout *l) {
        l->complete = true;
}

static int cmp_range(const void *a, const void *b) {
        const struct layout_range *x = a, *y = b;

        return x->start < y->start ? -1 : x->start > y->start;
}

/* Sorted, disjoint and not adjacent, so that a binary search finds the one range. */
static void normalize_known(struct layout *l) {
        size_t w = 0;

        bool sorted = true;

        if (l->n_known < 2)
                return;
        /* A lookup's ranges come in ascending order: thousands of them, sorted already. */
        for (size_t i = 1; i < l->n_known && sorted; i++)
                sorted = l->known[i - 1].start <= l->known[i].start;
        if (!sorted)
                qsort(l->known, l->n_known, sizeof(*l->known), cmp_range);
        for (size_t i = 1; i < l->n_known; i++) {
                struct layout_range *k = &l->known[w];

                if (l->known[i].start <= k->end)
                        k->end = MAX(k->end, l->known[i].end);
                else
                        l->known[++w] = l->known[i];
        }
        l->n_known = w + 1;
}

void layout_normalize(struct layout *l) {
        /* Before facts are set: files[] is not reordered. The names stay in the chunks. */
        mapping_list_normalize_lent(&l->mappings);
        normalize_known(l);
}

int layout_set_name(struct layout *l, size_t i, const char *name) {
        struct mapping *m = &l->mappings.items[i];
        char *c = NULL;

        if (name && !(c = chunk_copy(l, name, strlen(name), true)))
                return -ENOMEM;
        m->name = c;
        return 0;
}

int layout_set_build_id(struct layout *l, size_t i, const uint8_t *id, size_t len) {
        struct mapping *m = &l->mappings.items[i];
        uint8_t *c = NULL;

        if (len > MAPPING_BUILD_ID_MAX)
                return -EINVAL;
        if (len > 0 && !(c = chunk_copy(l, id, len, false)))
                return -ENOMEM;
        m->build_id = c;
        m->build_id_len = (uint8_t) len;
        return 0;
}

int layout_set_file(struct layout *l, size_t i, struct layout_file *f) {
        if (!l->files) {
                if (!f)
                        return 0;
                l->files = calloc(MAX(l->mappings.n, (size_t) 1), sizeof(*l->files));
                if (!l->files)
                        return -ENOMEM;
        }
        layout_file_unref(l->files[i]);
        l->files[i] = layout_file_ref(f);
        return 0;
}

static bool layout_knows(const struct layout *l, uint64_t addr) {
        size_t lo = 0, hi = l->n_known;

        if (l->complete)
                return true;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const struct layout_range *k = &l->known[mid];

                /* end LAYOUT_TOP covers the top address too. */
                if (addr < k->start)
                        hi = mid;
                else if (addr >= k->end && k->end != LAYOUT_TOP)
                        lo = mid + 1;
                else
                        return true;
        }
        return false;
}

int layout_find(const struct layout *l, uint64_t addr, size_t *ret_index) {
        ssize_t i = mapping_list_find(&l->mappings, addr);

        if (i >= 0) {
                *ret_index = (size_t) i;
                return 1;
        }
        return layout_knows(l, addr) ? 0 : -ENODATA;
}

bool layout_filter_matches(const struct mapping *m, unsigned flags) {
        if ((flags & LAYOUT_EXECUTABLE_ONLY) && !(m->flags & MAPPING_EXEC))
                return false;
        if ((flags & LAYOUT_FILE_BACKED_ONLY) && !mapping_is_file_backed(m))
                return false;
        return true;
}

int layout_list(const struct layout *l, unsigned flags, mapping_visit_t visit, void *userdata) {
        for (size_t i = 0; i < l->mappings.n; i++) {
                struct mapping lent = l->mappings.items[i];
                int r;

                if (!layout_filter_matches(&lent, flags))
                        continue;
                r = visit(&lent, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The answer for addr, which mapping i covers. */
static void answer(const struct layout *l, size_t i, uint64_t addr, struct layout_result *ret) {
        const struct layout_file *f;
        const struct mapping *m;

        *ret = (struct layout_result) { .mapping = (ssize_t) i };
        m = &l->mappings.items[i];
        f = layout_file_of(l, i);
        /* The vdso's image starts at its start (offset 0): an ELF address, no file. */
        if (m->kind == MAPPING_KIND_VDSO) {
                if (f && f->result >= 0 && elf_info_vaddr(&f->info, addr - m->start, &ret->elf_vaddr) >= 0)
                        ret->has_elf_vaddr = true;
                return;
        }
        if (!mapping_is_file_backed(m))
                return;
        ret->has_file_offset = !__builtin_add_overflow(addr - m->start, m->offset, &ret->file_offset);
        if (ret->has_file_offset && f && f->result >= 0 && elf_info_vaddr(&f->info, ret->file_offset, &ret->elf_vaddr) >= 0)
                ret->has_elf_vaddr = true;
}

int layout_lookup_one(const struct layout *l, uint64_t addr, struct layout_result *ret) {
        size_t i;
        int r;

        r = layout_find(l, addr, &i);
        if (r < 0)
                return r;
        if (r == 0)
                *ret = (struct layout_result) { .mapping = -1 };
        else
                answer(l, i, addr, ret);
        return r;
}

/* Calls step(l, k, i) for each address addrs[order[k]] in ascending order, with i the index of
 * the mapping covering it or -1: one walk over both, instead of a search per address (a
 * search per address of a 4,435-address lookup was a few percent of its time). */
static int walk_sorted(const struct layout *l, const uint64_t *addrs, const size_t *order, size_t n,
                       int (*step)(const struct layout *l, size_t k, ssize_t i, void *userdata), void *userdata) {
        const struct mapping *items = l->mappings.items;
        size_t j = 0;

        for (size_t k = 0; k < n; k++) {
                uint64_t a = addrs[order[k]];
                int r;

                while (j < l->mappings.n && items[j].end <= a)
                        j++;
                r = step(l, order[k], j < l->mappings.n && a >= items[j].start ? (ssize_t) j : -1, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

struct lookup_walk {
        const uint64_t *addrs;
        struct layout_result *ret;
};

static int lookup_step(const struct layout *l, size_t k, ssize_t i, void *userdata) {
        struct lookup_walk *w = userdata;

        if (i >= 0) {
                answer(l, (size_t) i, w->addrs[k], &w->ret[k]);
                return 0;
        }
        w->ret[k] = (struct layout_result) { .mapping = -1 };
        return layout_knows(l, w->addrs[k]) ? 0 : -ENODATA;
}

int layout_lookup(const struct layout *l, const uint64_t *addrs, const size_t *order, size_t n,
                  struct layout_result *ret) {
        struct lookup_walk w = { .addrs = addrs, .ret = ret };

        if (order)
                return walk_sorted(l, addrs, order, n, lookup_step, &w);
        for (size_t k = 0; k < n; k++) {
                int r = layout_lookup_one(l, addrs[k], &ret[k]);

                if (r < 0)
                        return r;
        }
        return 0;
}

struct collect_walk {
        size_t *idx;
        size_t n;
};

static int collect_step(const struct layout *l, size_t k, ssize_t i, void *userdata) {
        struct collect_walk *w = userdata;

        (void) l;
        (void) k;
        if (i >= 0 && (w->n == 0 || w->idx[w->n - 1] != (size_t) i))
                w->idx[w->n++] = (size_t) i;
        return 0;
}

int layout_touched_indices(const struct layout *l, const uint64_t *addrs, const size_t *order, size_t n,
                           size_t **ret, size_t *ret_n) {
        struct collect_walk w = { .idx = malloc((MIN(n, l->mappings.n) + 1) * sizeof(size_t)) };

        if (!w.idx)
                return -ENOMEM;
        if (order)
                /* Ascending addresses meet the mappings in order: each one once, in a row. */
                (void) walk_sorted(l, addrs, order, n, collect_step, &w);
        else {
                _cleanup_free_ bool *touched = calloc(MAX(l->mappings.n, (size_t) 1), sizeof(bool));

                if (!touched) {
                        free(w.idx);
                        return -ENOMEM;
                }
                for (size_t k = 0; k < n; k++) {
                        ssize_t i = mapping_list_find(&l->mappings, addrs[k]);

                        if (i >= 0)
                                touched[i] = true;
                }
                for (size_t i = 0; i < l->mappings.n; i++)
                        if (touched[i])
                                w.idx[w.n++] = i;
        }
        *ret = w.idx;
        *ret_n = w.n;
        return 0;
}

int layout_select(struct layout *l, const size_t *idx, size_t count, struct layout **ret) {
        struct layout *t = NULL;
        int r;

        r = layout_new(l->pid, l->start_time, &t);
        if (r < 0)
                return r;
        t->generation = l->generation;
        t->kernel_thread = l->kernel_thread;
        t->complete = l->complete;
        for (size_t k = 0; k < l->n_known && r >= 0; k++)
                r = layout_add_known(t, l->known[k].start, l->known[k].end);
        for (size_t j = 0; j < count && r >= 0; j++)
                r = layout_add(t, &l->mappings.items[idx[j]]);
        /* Facts once every mapping is in: files[] is sized by the mappings. */
        for (size_t j = 0; j < count && r >= 0; j++)
                r = layout_set_file(t, j, layout_file_of(l, idx[j]));
        if (r < 0) {
                layout_unref(t);
                return r;
        }
        *ret = t;
        return 0;
}

int layout_touched(struct layout *l, const uint64_t *addrs, const size_t *order, size_t n, struct layout **ret) {
        _cleanup_free_ size_t *idx = NULL;
        size_t count;
        int r;

        r = layout_touched_indices(l, addrs, order, n, &idx, &count);
        if (r < 0)
                return r;
        if (count == l->mappings.n) {
                *ret = layout_ref(l);
                return 0;
        }
        return layout_select(l, idx, count, ret);
}

int layout_prepare_files(struct layout *l) {
        if (l->files || l->mappings.n == 0)
                return 0;
        l->files = calloc(l->mappings.n, sizeof(*l->files));
        return l->files ? 0 : -ENOMEM;
}

struct layout_file *layout_fill_file(struct layout *l, size_t i, struct layout_file *f) {
        struct layout_file *expected = NULL;

        if (!l->files || i >= l->mappings.n || !f)
                return layout_file_of(l, i);
        layout_file_ref(f);
        if (__atomic_compare_exchange_n(&l->files[i], &expected, f, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                return f;
        layout_file_unref(f);
        return expected;
}

size_t layout_memory(const struct layout *l) {
        size_t bytes = sizeof(*l) + l->mappings.allocated * sizeof(struct mapping) +
                       l->known_allocated * sizeof(struct layout_range);

        if (l->files)
                bytes += l->mappings.n * sizeof(*l->files);
        /* Facts filled in later are charged up front: one per run of mappings of one file (a
         * library's mappings are adjacent), each a whole layout_file once read. */
        for (size_t i = 0; i < l->mappings.n; i++) {
                const struct mapping *m = &l->mappings.items[i], *prev = i > 0 ? m - 1 : NULL;

                if ((mapping_is_file_backed(m) || m->kind == MAPPING_KIND_VDSO) &&
                    !(prev && prev->inode == m->inode && prev->dev_major == m->dev_major &&
                      prev->dev_minor == m->dev_minor))
                        bytes += sizeof(struct layout_file);
        }
        for (const struct layout_chunk *c = l->chunks; c; c = c->next)
                bytes += sizeof(*c) + c->size;
        return bytes;
}
