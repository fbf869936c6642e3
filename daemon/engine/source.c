/* What every source shares: the kernel's gate area, reading a whole layout, and the gate added after a listing. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "maps-parse.h"
#include "source.h"

void source_context_init(struct source_context *ctx, int self_maps_fd) {
        _cleanup_(mapping_list_done) struct mapping_list l = {};

        *ctx = (struct source_context) {};
        if (maps_read_fd(self_maps_fd, &l) < 0)
                return;
        for (size_t i = 0; i < l.n; i++)
                if (l.items[i].kind == MAPPING_KIND_VSYSCALL) {
                        ctx->have_gate = true;
                        ctx->gate_start = l.items[i].start;
                        ctx->gate_end = l.items[i].end;
                        ctx->gate_flags = l.items[i].flags;
                }
}

int source_gate_mapping(const struct source_context *ctx, struct mapping *ret) {
        char *name = strdup("[vsyscall]");

        if (!name)
                return -ENOMEM;
        *ret = (struct mapping) {
                .start = ctx->gate_start,
                .end = ctx->gate_end,
                .flags = ctx->gate_flags,
                .name = name,
        };
        mapping_classify_name(ret);
        return 0;
}

bool source_gate_follows(const struct source_context *ctx, uint64_t last_end) {
        return ctx->have_gate && last_end > (UINT64_C(1) << 32) && last_end <= ctx->gate_start;
}

struct adder {
        struct layout *layout;
        unsigned filters;
};

static int add_visit(struct mapping *m, void *userdata) {
        struct adder *a = userdata;

        return layout_filter_matches(m, a->filters) ? layout_add(a->layout, m) : 0;
}

static int read_into(const struct source *s, const struct source_context *ctx, const struct process *p,
                     unsigned flags, struct layout *l) {
        int r;

        /* No address space: the ioctl would say ESRCH, the text nothing. Both say nothing. */
        l->kernel_thread = p->kernel_thread;
        if (!p->kernel_thread) {
                struct adder a = { .layout = l, .filters = flags & (LAYOUT_EXECUTABLE_ONLY | LAYOUT_FILE_BACKED_ONLY) };

                r = s->read_each(ctx, p, flags, add_visit, &a);
                if (r < 0)
                        return r;
        }
        layout_normalize(l);
        layout_set_complete(l);
        return 0;
}

int source_read_layout(const struct source *s, const struct source_context *ctx, const struct process *p,
                       unsigned flags, struct layout **ret) {
        struct layout *l = NULL;
        int r;

        r = layout_new(p->pid, p->start_time, &l);
        if (r < 0)
                return r;
        r = read_into(s, ctx, p, flags, l);
        if (r < 0) {
                layout_unref(l);
                return r;
        }
        *ret = l;
        return 0;
}

int source_read_addresses_all(const struct source_context *ctx, const struct source *s, const struct process *p,
                              struct layout *l) {
        return read_into(s, ctx, p, 0, l);
}

/* Passes each mapping on, remembering where the last one ended. */
struct gate_tracker {
        mapping_visit_t visit;
        void *userdata;
        uint64_t last_end;
};

static int track_visit(struct mapping *m, void *userdata) {
        struct gate_tracker *t = userdata;

        t->last_end = m->end;
        return t->visit(m, t->userdata);
}

int source_read_then_gate(const struct source_context *ctx, int (*read)(int maps_fd, unsigned q, mapping_visit_t visit,
                                                                        void *userdata),
                          int maps_fd, unsigned q, mapping_visit_t visit, void *userdata) {
        struct gate_tracker t = { .visit = visit, .userdata = userdata };
        struct mapping g;
        int r;

        r = read(maps_fd, q, track_visit, &t);
        if (r < 0 || !source_gate_follows(ctx, t.last_end))
                return r;
        r = source_gate_mapping(ctx, &g);
        if (r < 0)
                return r;
        r = visit(&g, userdata);
        mapping_done(&g);
        return r;
}
