/* The mapping engine: reads a process's layout through the source chosen once, adds the per-file facts, and answers listings and lookups from it. */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "engine.h"
#include "facts.h"
#include "maps-parse.h"
#include "procmap-ioctl.h"
#include "source.h"
#include "symbol-cache.h"
#include "symbolize.h"

struct engine {
        enum engine_backend backend;
        const struct source *source;
        struct source_context source_ctx;
        struct facts_config facts;
        char *debug_dir;
};

static const char *const backend_names[_ENGINE_BACKEND_MAX] = {
        [ENGINE_BACKEND_AUTO] = "auto",
        [ENGINE_BACKEND_IOCTL] = "ioctl",
        [ENGINE_BACKEND_MAPS] = "maps",
};

const char *engine_backend_to_string(enum engine_backend b) {
        return (unsigned) b < _ENGINE_BACKEND_MAX ? backend_names[b] : NULL;
}

int engine_backend_from_string(const char *s, enum engine_backend *ret) {
        for (unsigned i = 0; i < _ENGINE_BACKEND_MAX; i++)
                if (s && strcmp(s, backend_names[i]) == 0) {
                        *ret = (enum engine_backend) i;
                        return 0;
                }
        return -EINVAL;
}

static int learn_own_vdso_visit(struct mapping *m, void *userdata) {
        facts_learn_own_vdso(userdata, m);
        return 0;
}

int engine_new(const struct engine_config *cfg, struct engine **ret) {
        _cleanup_close_ int fd = -1;
        struct engine *e;
        bool ioctl_ok;
        int r;

        if ((unsigned) cfg->backend >= _ENGINE_BACKEND_MAX)
                return -EINVAL;

        fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        ioctl_ok = procmap_supported(fd);
        if (cfg->backend == ENGINE_BACKEND_IOCTL && !ioctl_ok)
                return -EOPNOTSUPP;

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->backend = cfg->backend != ENGINE_BACKEND_AUTO ? cfg->backend
                     : ioctl_ok                          ? ENGINE_BACKEND_IOCTL
                                                         : ENGINE_BACKEND_MAPS;
        /* The one place the backend matters: which source reads processes. */
        e->source = e->backend == ENGINE_BACKEND_IOCTL ? &source_text_ioctl : &source_maps;
        r = elf_cache_new(cfg->elf_cache_size ?: ENGINE_ELF_CACHE_DEFAULT, &e->facts.cache);
        if (r < 0) {
                free(e);
                return r;
        }
        r = vdso_cache_new(&e->facts.vdso_cache);
        if (r < 0) {
                elf_cache_free(e->facts.cache);
                free(e);
                return r;
        }
        source_context_init(&e->source_ctx, fd);
        /* The daemon's own maps once more, at start: a failure costs only the seed. */
        (void) maps_read_each(fd, learn_own_vdso_visit, &e->facts);
        e->facts.run_blocking = cfg->run_blocking;
        e->facts.run_blocking_userdata = cfg->run_blocking_userdata;
        e->facts.budget_ms = cfg->blocking_budget_ms ?: ENGINE_BLOCKING_BUDGET_MS_DEFAULT;
        e->debug_dir = strdup(cfg->debug_dir ?: ENGINE_DEBUG_DIR_DEFAULT);
        e->facts.debug_dir = e->debug_dir;
        if (!e->debug_dir ||
            symbol_cache_new(cfg->max_symbol_memory ?: ENGINE_SYMBOL_MEMORY_DEFAULT, &e->facts.symbol_cache) < 0) {
                engine_free(e);
                return -ENOMEM;
        }

        *ret = e;
        return 0;
}

struct engine *engine_free(struct engine *e) {
        if (!e)
                return NULL;
        elf_cache_free(e->facts.cache);
        vdso_cache_free(e->facts.vdso_cache);
        symbol_cache_free(e->facts.symbol_cache);
        free(e->debug_dir);
        free(e);
        return NULL;
}

enum engine_backend engine_get_backend(const struct engine *e) {
        return e->backend;
}

void engine_get_elf_cache_stats(struct engine *e, struct elf_cache_stats *ret) {
        elf_cache_get_stats(e->facts.cache, ret);
}

void engine_get_vdso_cache_stats(struct engine *e, struct vdso_cache_stats *ret) {
        vdso_cache_get_stats(e->facts.vdso_cache, ret);
}

int engine_read_layout(struct engine *e, const struct process *p, unsigned flags, struct layout **ret) {
        struct facts f = {
                .cfg = &e->facts, .p = p,
                .kernel_build_id = e->source->kernel_build_ids && (flags & ENGINE_BUILD_IDS),
        };
        struct layout *l = NULL;
        int r;

        r = source_read_layout(e->source, &e->source_ctx, p, flags, &l);
        for (size_t i = 0; r >= 0 && i < l->mappings.n; i++)
                r = facts_finish(&f, l, i, flags & ENGINE_BUILD_IDS, e->source->names_from_text);
        facts_done(&f);
        /* A process that exited mid-read leaves a truncated listing: never report that. */
        if (r >= 0)
                r = process_check_alive(p);
        if (r < 0) {
                layout_unref(l);
                return r;
        }
        *ret = l;
        return 0;
}

int engine_list(struct engine *e, const struct process *p, unsigned flags, struct mapping_list *ret) {
        _cleanup_(layout_unrefp) struct layout *l = NULL;
        _cleanup_(mapping_list_done) struct mapping_list out = {};
        int r;

        r = engine_read_layout(e, p, flags, &l);
        if (r < 0)
                return r;
        r = layout_list(l, 0, mapping_list_push_visit, &out);
        if (r < 0)
                return r;
        *ret = out;
        out = (struct mapping_list) {};
        return 0;
}

/* A listing streamed from the source as it reads (see engine_list_each()). */
struct streamed {
        struct facts facts;
        mapping_visit_t visit;
        void *userdata;
};

static int streamed_visit(struct mapping *m, void *userdata) {
        struct streamed *s = userdata;

        facts_finish_lent(&s->facts, m);
        return s->visit(m, s->userdata);
}

int engine_list_each(struct engine *e, const struct process *p, unsigned flags, mapping_visit_t visit,
                     void *userdata) {
        _cleanup_(layout_unrefp) struct layout *l = NULL;
        int r;

        if (p->kernel_thread)
                return 0;
        /* Without filters or build IDs, nothing needs the whole layout: each mapping goes on as
         * the source reads it (a 60,000-mapping layout first was 8 MB of fresh pages). */
        if (e->source->ordered && flags == 0) {
                struct streamed s = { .facts = { .cfg = &e->facts, .p = p }, .visit = visit, .userdata = userdata };

                r = e->source->read_each(&e->source_ctx, p, 0, streamed_visit, &s);
                facts_done(&s.facts);
                if (r < 0)
                        return r;
                /* A process that exited mid-read leaves a truncated listing: never report that. */
                return process_check_alive(p);
        }

        r = engine_read_layout(e, p, flags, &l);
        if (r < 0)
                return r;
        return layout_list(l, 0, visit, userdata);
}

struct addr_index {
        uint64_t addr;
        size_t index;
};

/* The indices of addrs in address order (stable). An LSD radix sort of (address, index)
 * pairs by bytes, skipping the bytes no two addresses differ in (user addresses share their
 * top bytes): a merge sort, branching on every comparison of random addresses, was 17% of a
 * 4,435-address lookup's CPU time, and qsort() before it 12%. */
static size_t *sorted_order(const uint64_t *addrs, size_t n) {
        _cleanup_free_ struct addr_index *a = NULL, *b = NULL;
        size_t *idx = malloc(MAX(n, (size_t) 1) * sizeof(size_t));
        uint64_t differ = 0;
        bool sorted = true;

        if (!idx)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                idx[i] = i;
                differ |= addrs[i] ^ addrs[0];
                if (i > 0 && addrs[i - 1] > addrs[i])
                        sorted = false;
        }
        if (sorted)
                return idx;

        a = malloc(n * sizeof(*a));
        b = malloc(n * sizeof(*b));
        if (!a || !b) {
                free(idx);
                return NULL;
        }
        for (size_t i = 0; i < n; i++)
                a[i] = (struct addr_index) { addrs[i], i };
        for (unsigned shift = 0; shift < 64; shift += 8) {
                size_t count[256] = {}, pos = 0;
                struct addr_index *t;

                if (((differ >> shift) & 0xff) == 0)
                        continue;
                for (size_t i = 0; i < n; i++)
                        count[(a[i].addr >> shift) & 0xff]++;
                for (unsigned d = 0; d < 256; d++) {
                        size_t c = count[d];

                        count[d] = pos;
                        pos += c;
                }
                for (size_t i = 0; i < n; i++)
                        b[count[(a[i].addr >> shift) & 0xff]++] = a[i];
                t = a;
                a = b;
                b = t;
        }
        for (size_t i = 0; i < n; i++)
                idx[i] = a[i].index;
        return idx;
}

int engine_lookup_layout(struct engine *e, const struct process *p, const uint64_t *addrs, size_t n, unsigned flags,
                         struct layout **ret_layout, struct layout_result **ret_results) {
        _cleanup_(layout_unrefp) struct layout *read = NULL, *touched = NULL;
        _cleanup_free_ struct layout_result *results = NULL;
        _cleanup_free_ size_t *order = NULL;
        /* The ELF facts give both the addresses and the build ID. */
        struct facts f = { .cfg = &e->facts, .p = p, .need_elf = true };
        int r;

        results = calloc(MAX(n, (size_t) 1), sizeof(*results));
        order = sorted_order(addrs, n);
        if (!results || !order)
                return -ENOMEM;
        r = layout_new(p->pid, p->start_time, &read);
        if (r < 0)
                return r;

        /* A kernel thread maps nothing: every address is unmapped. */
        if (p->kernel_thread) {
                read->kernel_thread = true;
                layout_set_complete(read);
        } else if (n > 0) {
                r = e->source->read_addresses(&e->source_ctx, p, addrs, order, n, read);
                if (r < 0)
                        return r;
        }
        layout_normalize(read);
        /* Only the mappings the addresses fall in are answered with (and have facts read). */
        r = layout_touched(read, addrs, order, n, &touched);
        if (r < 0)
                return r;
        for (size_t i = 0; r >= 0 && i < touched->mappings.n; i++)
                r = facts_finish(&f, touched, i, flags & ENGINE_BUILD_IDS, e->source->names_from_text);
        facts_done(&f);
        if (r < 0)
                return r;
        r = layout_lookup(touched, addrs, order, n, results);
        if (r < 0)
                return r;

        r = process_check_alive(p);
        if (r < 0)
                return r;
        *ret_layout = TAKE_PTR(touched);
        *ret_results = TAKE_PTR(results);
        return 0;
}

int engine_lookup(struct engine *e, const struct process *p, const uint64_t *addrs, size_t n, unsigned flags,
                  struct mapping_list *ret_mappings, struct layout_result **ret_results) {
        _cleanup_(layout_unrefp) struct layout *l = NULL;
        _cleanup_(mapping_list_done) struct mapping_list out = {};
        _cleanup_free_ struct layout_result *results = NULL;
        int r;

        r = engine_lookup_layout(e, p, addrs, n, flags, &l, &results);
        if (r < 0)
                return r;
        r = layout_list(l, 0, mapping_list_push_visit, &out);
        if (r < 0)
                return r;
        *ret_mappings = out;
        out = (struct mapping_list) {};
        *ret_results = TAKE_PTR(results);
        return 0;
}

int engine_read_shared(struct engine *e, const struct process *p, struct layout **ret) {
        struct facts f = { .cfg = &e->facts, .p = p };
        struct layout *l = NULL;
        bool transient;
        int r;

        r = source_read_layout(e->source, &e->source_ctx, p, 0, &l);
        for (size_t i = 0; r >= 0 && i < l->mappings.n; i++)
                r = facts_finish(&f, l, i, false, e->source->names_from_text);
        transient = f.transient;
        facts_done(&f);
        if (r >= 0)
                r = process_check_alive(p);
        if (r >= 0)
                r = layout_prepare_files(l);
        if (r < 0) {
                layout_unref(l);
                return r;
        }
        *ret = l;
        return !transient;
}

static bool needs_facts(const struct mapping *m) {
        return m->kind == MAPPING_KIND_VDSO || mapping_is_file_backed(m);
}

/* The facts of l's mapping i: l's own, else read now (and filled into l where they stand for
 * any reader). Borrowed from l or f. */
static struct layout_file *shared_facts(struct facts *f, struct layout *l, size_t i) {
        struct layout_file *file = layout_file_of(l, i);

        if (file || !needs_facts(&l->mappings.items[i]))
                return file;
        file = facts_file_of(f, &l->mappings.items[i]);
        if (file && facts_result_stands(file->result))
                file = layout_fill_file(l, i, file);
        return file;
}

int engine_lookup_shared(struct engine *e, const struct process *p, struct layout *l, const uint64_t *addrs,
                         size_t n, unsigned flags, struct layout **ret_layout, struct layout_result **ret_results) {
        _cleanup_(layout_unrefp) struct layout *t = NULL;
        _cleanup_free_ struct layout_result *results = NULL;
        _cleanup_free_ size_t *order = NULL, *idx = NULL;
        struct facts f = { .cfg = &e->facts, .p = p, .need_elf = true };
        size_t count;
        int r;

        results = calloc(MAX(n, (size_t) 1), sizeof(*results));
        order = sorted_order(addrs, n);
        if (!results || !order)
                return -ENOMEM;
        r = layout_touched_indices(l, addrs, order, n, &idx, &count);
        if (r < 0)
                return r;
        /* Facts first, into l, so the answer's copy shares them. */
        for (size_t j = 0; j < count; j++)
                (void) shared_facts(&f, l, idx[j]);
        r = layout_select(l, idx, count, &t);
        /* What did not stand for every reader was read for this request: the copy gets it. */
        for (size_t j = 0; r >= 0 && j < t->mappings.n; j++) {
                const struct mapping *m = &t->mappings.items[j];
                struct layout_file *file = layout_file_of(t, j);
                const uint8_t *id;
                size_t id_len;

                if (!file && needs_facts(m)) {
                        file = facts_file_of(&f, m);
                        if (file)
                                r = layout_set_file(t, j, file);
                }
                if (r >= 0 && file && (flags & ENGINE_BUILD_IDS) && m->build_id_len == 0) {
                        id = layout_file_build_id(file, &id_len);
                        if (id_len > 0)
                                r = layout_set_build_id(t, j, id, id_len);
                }
        }
        facts_done(&f);
        if (r < 0)
                return r;
        r = layout_lookup(t, addrs, order, n, results);
        if (r < 0)
                return r;
        *ret_layout = TAKE_PTR(t);
        *ret_results = TAKE_PTR(results);
        return 0;
}

int engine_list_shared(struct engine *e, const struct process *p, struct layout *l, unsigned flags,
                       mapping_visit_t visit, void *userdata) {
        struct facts f = {
                .cfg = &e->facts, .p = p,
                .kernel_build_id = e->source->kernel_build_ids && (flags & ENGINE_BUILD_IDS),
        };
        int r = 0;

        for (size_t i = 0; r >= 0 && i < l->mappings.n; i++) {
                struct mapping m = l->mappings.items[i];

                if (!layout_filter_matches(&m, flags))
                        continue;
                if ((flags & ENGINE_BUILD_IDS) && m.build_id_len == 0 && needs_facts(&m)) {
                        size_t id_len;
                        const uint8_t *id = layout_file_build_id(shared_facts(&f, l, i), &id_len);

                        /* Lent like the name: valid while l and f hold the facts. */
                        m.build_id = (uint8_t *) id;
                        m.build_id_len = (uint8_t) id_len;
                }
                r = visit(&m, userdata);
        }
        facts_done(&f);
        return r;
}

int engine_vdso(struct engine *e, const struct process *p, struct mapping *ret_mapping, uint8_t **ret_image) {
        _cleanup_(layout_unrefp) struct layout *l = NULL;
        _cleanup_free_ uint8_t *image = NULL;
        _cleanup_(mapping_done) struct mapping m = {};
        struct elf_info info;
        int r;

        r = engine_read_layout(e, p, 0, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l->mappings.n; i++) {
                const struct mapping *v = &l->mappings.items[i];

                if (v->kind != MAPPING_KIND_VDSO)
                        continue;
                r = facts_read_vdso(&e->facts, p, v, &info, &image);
                if (r < 0)
                        return r;
                /* The caller owns what it gets: a copy out of the layout's storage. */
                m = *v;
                m.name = NULL;
                m.build_id = NULL;
                m.build_id_len = 0;
                if (v->name && !(m.name = strdup(v->name)))
                        return -ENOMEM;
                if (info.build_id_len > 0) {
                        r = mapping_set_build_id(&m, info.build_id, info.build_id_len);
                        if (r < 0)
                                return r;
                }
                *ret_mapping = m;
                m = (struct mapping) {};
                *ret_image = TAKE_PTR(image);
                return 0;
        }
        return -ENOENT;
}

int engine_open_mapping_file(struct engine *e, const struct process *p, const struct mapping *m, int *ret_fd) {
        return facts_open_mapping_file(&e->facts, p, m, ret_fd);
}

void engine_get_symbol_cache_stats(struct engine *e, struct symbol_cache_stats *ret) {
        symbol_cache_get_stats(e->facts.symbol_cache, ret);
}

int engine_symbolize(struct engine *e, const struct process *p, const struct layout *l,
                     const struct layout_result *results, size_t n, struct symbols *ret) {
        return symbolize(&e->facts, p, l, results, n, ret);
}
