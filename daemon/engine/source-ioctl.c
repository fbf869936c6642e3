/* The source that asks PROCMAP_QUERY alone: listings VMA by VMA with the kernel's filters, lookups reading only the VMAs their addresses touch. */

#include <errno.h>

#include "cleanup.h"
#include "procmap-ioctl.h"
#include "source.h"

static int ioctl_read_each(const struct source_context *ctx, const struct process *p, unsigned flags,
                           mapping_visit_t visit, void *userdata) {
        unsigned q = 0;

        if (flags & SOURCE_EXECUTABLE_ONLY)
                q |= PROCMAP_EXECUTABLE;
        if (flags & SOURCE_FILE_BACKED_ONLY)
                q |= PROCMAP_FILE_BACKED;
        /* Build IDs are the engine's to read, per file and off the serving thread: the
         * kernel's read of a file's first page can block for as long as its filesystem likes. */
        return source_read_then_gate(ctx, procmap_list_each, p->maps_fd, q, visit, userdata);
}

/* Only 64-bit processes have the x86-64 gate area; they always have mappings above 4 GiB,
 * which 32-bit ones never do. */
static int process_is_64bit(const struct process *p) {
        _cleanup_(procmap_buf_done) struct procmap_buf buf = {};
        struct mapping m;
        int r;

        r = procmap_query(p->maps_fd, UINT64_C(1) << 32, PROCMAP_COVERING_OR_NEXT, &buf, &m);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        mapping_done(&m);
        return 1;
}

/* Where a lookup's walk over ascending addresses stands: the VMA the last query returned, and
 * since which address nothing is mapped below it. */
struct cursor {
        struct procmap_buf buf;
        bool have_cur, cur_added;
        struct mapping cur;
        uint64_t gap_from;
        bool none_above;            /* no VMA at or above none_from */
        uint64_t none_from;
        bool gate_done;
};

static void cursor_done(struct cursor *c) {
        /* cur's name is lent from buf. */
        procmap_buf_done(&c->buf);
}

/* The gate area is no VMA: a 64-bit process has it, a 32-bit one has nothing there. */
static int cursor_gate(const struct source_context *ctx, const struct process *p, struct cursor *c,
                       struct layout *l) {
        struct mapping g;
        int r;

        if (c->gate_done)
                return 0;
        c->gate_done = true;
        r = layout_add_known(l, ctx->gate_start, ctx->gate_end);
        if (r < 0)
                return r;
        r = process_is_64bit(p);
        if (r <= 0)
                return r;
        r = source_gate_mapping(ctx, &g);
        if (r < 0)
                return r;
        r = layout_add(l, &g);
        mapping_done(&g);
        return r;
}

/* Reads what addr needs into l; addresses come in ascending order. */
static int cursor_step(const struct source_context *ctx, const struct process *p, struct cursor *c, uint64_t addr,
                       struct layout *l) {
        struct mapping m;
        int r;

        if (ctx->have_gate && addr >= ctx->gate_start && addr < ctx->gate_end)
                return cursor_gate(ctx, p, c, l);
        if (c->have_cur && addr >= c->cur.start && addr < c->cur.end)
                goto hit;
        if (c->have_cur && addr >= c->gap_from && addr < c->cur.start)
                return 0;
        if (c->none_above && addr >= c->none_from)
                return 0;

        /* The name is lent until the next query, which replaces cur: it is copied into the
         * layout before that, or not needed. */
        r = procmap_query(p->maps_fd, addr, PROCMAP_COVERING_OR_NEXT | PROCMAP_NAME_LENT, &c->buf, &m);
        if (r == -ENOENT) {
                c->none_above = true;
                c->none_from = addr;
                return layout_add_known(l, addr, LAYOUT_TOP);
        }
        if (r < 0)
                return r;
        c->cur = m;
        c->have_cur = true;
        c->cur_added = false;
        c->gap_from = addr;
        if (addr < c->cur.start)
                return layout_add_known(l, addr, c->cur.start);
hit:
        if (c->cur_added)
                return 0;
        c->cur_added = true;
        r = layout_add(l, &c->cur);
        if (r >= 0)
                r = layout_add_known(l, c->gap_from, c->cur.end);
        return r;
}

static int ioctl_read_addresses(const struct source_context *ctx, const struct process *p, const uint64_t *addrs,
                                const size_t *order, size_t n, struct layout *l) {
        _cleanup_(cursor_done) struct cursor c = {};
        int r;

        for (size_t k = 0; k < n; k++) {
                r = cursor_step(ctx, p, &c, addrs[order[k]], l);
                if (r < 0)
                        return r;
        }
        return 0;
}

const struct source source_ioctl = {
        .name = "ioctl",
        .names_from_text = false,
        .kernel_build_ids = true,
        .read_each = ioctl_read_each,
        .ordered = true,
        .read_addresses = ioctl_read_addresses,
};

static int text_each(int maps_fd, unsigned q, mapping_visit_t visit, void *userdata) {
        (void) q;
        return procmap_list_text_each(maps_fd, visit, userdata);
}

/* The composition: unfiltered listings without build IDs from the text, the rest as above. */
static int text_ioctl_read_each(const struct source_context *ctx, const struct process *p, unsigned flags,
                                mapping_visit_t visit, void *userdata) {
        /* Unfiltered without build IDs, the text gives the same list at a fraction of the cost
         * of one ioctl per VMA (60,000 VMAs: 12 ms of reading against 30 ms); the ioctl then
         * only adds what the text lacks. Filters run in the kernel, and build IDs need a query
         * per file VMA anyway: those stay with the ioctl. */
        if (flags != 0)
                return ioctl_read_each(ctx, p, flags, visit, userdata);
        return source_read_then_gate(ctx, text_each, p->maps_fd, 0, visit, userdata);
}

const struct source source_text_ioctl = {
        .name = "maps text completed by ioctl",
        .names_from_text = false,
        .kernel_build_ids = true,
        .read_each = text_ioctl_read_each,
        .ordered = true,
        .read_addresses = ioctl_read_addresses,
};
