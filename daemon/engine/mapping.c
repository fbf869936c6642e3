/* The one model of a memory mapping (VMA) that both backends produce, and its name classification. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "mapping.h"

_Static_assert(sizeof(struct mapping) == 64 || sizeof(void *) != 8, "struct mapping grew");

void mapping_done(struct mapping *m) {
        if (!m)
                return;
        free(m->name);
        m->name = NULL;
        free(m->build_id);
        m->build_id = NULL;
        m->build_id_len = 0;
}

int mapping_set_build_id(struct mapping *m, const uint8_t *id, size_t len) {
        uint8_t *p = NULL;

        if (len > MAPPING_BUILD_ID_MAX)
                return -EINVAL;
        if (len > 0) {
                p = malloc(len);
                if (!p)
                        return -ENOMEM;
                memcpy(p, id, len);
        }
        free(m->build_id);
        m->build_id = p;
        m->build_id_len = (uint8_t) len;
        return 0;
}

static bool has_prefix(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool has_suffix(const char *s, size_t len, const char *suffix) {
        size_t n = strlen(suffix);
        return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

enum mapping_kind mapping_classify(const char *name, bool *ret_deleted) {
        bool deleted = false;
        enum mapping_kind k;

        if (!name || !*name)
                k = MAPPING_KIND_ANONYMOUS;
        else if (name[0] == '/') {
                size_t len = strlen(name);
                bool suffix = has_suffix(name, len, DELETED_SUFFIX);

                /* shmem-backed specials are always "deleted": the flag says nothing there. */
                if (has_prefix(name, "/memfd:") && suffix)
                        k = MAPPING_KIND_MEMFD;
                else if ((strcmp(name, "/dev/zero" DELETED_SUFFIX) == 0) ||
                         (has_prefix(name, "/SYSV") && suffix))
                        k = MAPPING_KIND_SPECIAL;
                else {
                        k = MAPPING_KIND_FILE;
                        deleted = suffix;
                }
        } else if (strcmp(name, "[heap]") == 0)
                k = MAPPING_KIND_HEAP;
        else if (strcmp(name, "[stack]") == 0 || has_prefix(name, "[stack:"))
                k = MAPPING_KIND_STACK;
        else if (strcmp(name, "[vdso]") == 0)
                k = MAPPING_KIND_VDSO;
        else if (strcmp(name, "[vvar]") == 0 || strcmp(name, "[vvar_vclock]") == 0)
                k = MAPPING_KIND_VVAR;
        else if (strcmp(name, "[vsyscall]") == 0)
                k = MAPPING_KIND_VSYSCALL;
        else if (has_prefix(name, "[anon:") && name[strlen(name) - 1] == ']')
                k = MAPPING_KIND_ANON_NAMED;
        else if (has_prefix(name, "[anon_shmem:") && name[strlen(name) - 1] == ']')
                k = MAPPING_KIND_SHMEM_NAMED;
        else
                k = MAPPING_KIND_SPECIAL;

        if (ret_deleted)
                *ret_deleted = deleted;
        return k;
}

/* The name the kernel gives an anonymous MAP_HUGETLB mapping: a file on its internal
 * hugetlbfs mount, unlinked. */
#define ANON_HUGEPAGE_NAME "/anon_hugepage" DELETED_SUFFIX

void mapping_classify_name(struct mapping *m) {
        m->kind = mapping_classify(m->name, &m->deleted);
        /* Anonymous memory in hugepages, unless the name is borrowed by a real file (on a
         * device, which the internal mount has not: major 0). The name stays. */
        if (m->kind == MAPPING_KIND_FILE && m->deleted && m->dev_major == 0 && strcmp(m->name, ANON_HUGEPAGE_NAME) == 0) {
                m->kind = MAPPING_KIND_ANONYMOUS;
                m->deleted = false;
        }
}

size_t mapping_path_len(const struct mapping *m) {
        size_t len;

        if (!m->name)
                return 0;
        len = strlen(m->name);
        if (m->kind == MAPPING_KIND_MEMFD || m->deleted)
                len -= strlen(DELETED_SUFFIX);
        return len;
}

bool mapping_is_file_backed(const struct mapping *m) {
        return m->kind == MAPPING_KIND_FILE || m->kind == MAPPING_KIND_MEMFD;
}

const char *mapping_kind_to_string(enum mapping_kind k) {
        static const char *const table[_MAPPING_KIND_MAX] = {
                [MAPPING_KIND_ANONYMOUS] = "anonymous",
                [MAPPING_KIND_FILE] = "file",
                [MAPPING_KIND_HEAP] = "heap",
                [MAPPING_KIND_STACK] = "stack",
                [MAPPING_KIND_VDSO] = "vdso",
                [MAPPING_KIND_VVAR] = "vvar",
                [MAPPING_KIND_VSYSCALL] = "vsyscall",
                [MAPPING_KIND_MEMFD] = "memfd",
                [MAPPING_KIND_ANON_NAMED] = "anon_named",
                [MAPPING_KIND_SHMEM_NAMED] = "shmem_named",
                [MAPPING_KIND_SPECIAL] = "special",
        };

        if ((unsigned) k >= _MAPPING_KIND_MAX)
                return NULL;
        return table[k];
}

void mapping_list_done(struct mapping_list *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++)
                mapping_done(&l->items[i]);
        free(l->items);
        *l = (struct mapping_list) {};
}

int mapping_list_push(struct mapping_list *l, struct mapping *m) {
        if (l->n >= MAPPING_LIST_MAX)
                return -E2BIG;
        if (l->n >= l->allocated) {
                size_t a = l->allocated ? l->allocated * 2 : 64;
                struct mapping *p;

                if (a < l->allocated || a > SIZE_MAX / sizeof(*p))
                        return -ENOMEM;
                p = realloc(l->items, a * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                l->items = p;
                l->allocated = a;
        }
        l->items[l->n++] = *m;
        *m = (struct mapping) {};
        return 0;
}

int mapping_list_push_copy(struct mapping_list *l, const struct mapping *m) {
        struct mapping c = *m;
        int r;

        c.name = NULL;
        c.build_id = NULL;
        c.build_id_len = 0;
        if (m->name && !(c.name = strdup(m->name)))
                return -ENOMEM;
        r = mapping_set_build_id(&c, m->build_id, m->build_id_len);
        if (r >= 0)
                r = mapping_list_push(l, &c);
        if (r < 0)
                mapping_done(&c);
        return r;
}

int mapping_list_push_visit(struct mapping *m, void *list) {
        return mapping_list_push_copy(list, m);
}

static int cmp_start(const void *a, const void *b) {
        const struct mapping *x = a, *y = b;

        if (x->start != y->start)
                return x->start < y->start ? -1 : 1;
        /* Equal starts: keep the larger, so the later overlap check drops the other. */
        if (x->end != y->end)
                return x->end > y->end ? -1 : 1;
        return 0;
}

static void normalize(struct mapping_list *l, bool owned) {
        size_t w = 0;
        bool sorted = true;

        for (size_t i = 1; i < l->n; i++)
                if (cmp_start(&l->items[i - 1], &l->items[i]) > 0) {
                        sorted = false;
                        break;
                }
        if (!sorted)
                qsort(l->items, l->n, sizeof(l->items[0]), cmp_start);

        for (size_t i = 0; i < l->n; i++) {
                struct mapping *m = &l->items[i];

                if (m->end <= m->start || (w > 0 && m->start < l->items[w - 1].end)) {
                        if (owned)
                                mapping_done(m);
                        continue;
                }
                if (w != i)
                        l->items[w] = *m;
                w++;
        }
        l->n = w;
}

void mapping_list_normalize(struct mapping_list *l) {
        normalize(l, true);
}

void mapping_list_normalize_lent(struct mapping_list *l) {
        normalize(l, false);
}

ssize_t mapping_list_find(const struct mapping_list *l, uint64_t addr) {
        size_t lo = 0, hi = l->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const struct mapping *m = &l->items[mid];

                if (addr < m->start)
                        hi = mid;
                else if (addr >= m->end)
                        lo = mid + 1;
                else
                        return (ssize_t) mid;
        }
        return -1;
}
