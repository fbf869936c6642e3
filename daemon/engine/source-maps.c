/* The source that reads the text of /proc/PID/maps alone: for kernels without PROCMAP_QUERY. */

#include <errno.h>

#include "maps-parse.h"
#include "source.h"

struct counter {
        mapping_visit_t visit;
        void *userdata;
        size_t n;
};

static int count_visit(struct mapping *m, void *userdata) {
        struct counter *c = userdata;

        c->n++;
        return c->visit(m, c->userdata);
}

/* Lines in the order read (a changing process can make a text read in several chunks go back
 * or overlap): the caller sorts. Filters are the caller's: the text has every line anyway. */
static int maps_read_each_mapping(const struct source_context *ctx, const struct process *p, unsigned flags,
                                  mapping_visit_t visit, void *userdata) {
        struct counter c = { .visit = visit, .userdata = userdata };
        int r;

        (void) ctx;
        (void) flags;
        r = maps_read_each(p->maps_fd, count_visit, &c);
        if (r < 0)
                return r;
        /* The text of an mm that is gone reads as empty, not as an error: a maps fd opened
         * just before an exec names the old mm. Then this says -ESRCH, as the ioctl does, and
         * the caller may open the process afresh. */
        if (c.n == 0 && process_maps_stale(p) > 0)
                return -ESRCH;
        return 0;
}

static int maps_read_addresses(const struct source_context *ctx, const struct process *p, const uint64_t *addrs,
                               const size_t *order, size_t n, struct layout *l) {
        (void) addrs;
        (void) order;
        (void) n;
        return source_read_addresses_all(ctx, &source_maps, p, l);
}

const struct source source_maps = {
        .name = "maps",
        .names_from_text = true,
        .kernel_build_ids = false,
        .read_each = maps_read_each_mapping,
        .ordered = false,
        .read_addresses = maps_read_addresses,
};
