/* libmemctl's system-wide question: FindMappings, the processes that map a file (memctl_find_mappings()). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "libmemctl-internal.h"

struct memctl_found {
        memctl_mappings **items;
        size_t n;
};

/* The daemon scans at most this many processes. */
#define FOUND_MAX 65536u

memctl_found *memctl_found_free(memctl_found *f) {
        if (!f)
                return NULL;
        for (size_t i = 0; i < f->n; i++)
                memctl_mappings_free(f->items[i]);
        free(f->items);
        free(f);
        return NULL;
}

static int found_parse(struct json_object *params, memctl_found *f) {
        struct json_object *a = memmapd_json_member(params, "matches");
        size_t n;

        if (!a || !json_object_is_type(a, json_type_array))
                return -EPROTO;
        n = json_object_array_length(a);
        if (n > FOUND_MAX)
                return -EPROTO;
        f->items = calloc(n ? n : 1, sizeof(*f->items));
        if (!f->items)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *match = json_object_array_get_idx(a, i);
                memctl_mappings *m;
                int r;

                if (!match || !json_object_is_type(match, json_type_object))
                        return -EPROTO;
                m = calloc(1, sizeof(*m));
                if (!m)
                        return -ENOMEM;
                f->items[f->n++] = m;
                /* The table takes a reference of its match: its strings live there. */
                r = mapping_table_parse(json_object_get(match), 0, 0, &m->table);
                if (r < 0)
                        return r;
        }
        return 0;
}

int memctl_find_mappings(memctl *c, const char *path, const char *build_id_hex, uint64_t flags, memctl_found **ret) {
        _cleanup_(json_object_putp) struct json_object *params = NULL;
        struct json_writer w;
        memctl_found *f;
        int r;

        if (c)
                error_clear(c);
        if (!c || !ret || !path == !build_id_hex || (flags & ~MEMCTL_DELETED_ONLY))
                return -EINVAL;

        json_writer_init(&w, REQUEST_SIZE_MAX);
        varlink_call_begin(&w, "io.memmapd.FindMappings", false, false);
        json_writer_key(&w, path ? "path" : "build_id");
        json_writer_string(&w, path ? path : build_id_hex);
        if (flags & MEMCTL_DELETED_ONLY) {
                json_writer_key(&w, "deleted_only");
                json_writer_bool(&w, true);
        }
        r = call_writer(c, &w, NULL, &params);
        json_writer_done(&w);
        if (r < 0)
                return r;

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        r = found_parse(params, f);
        if (r < 0)
                return memctl_found_free(f), r;
        *ret = f;
        return 0;
}

size_t memctl_found_count(const memctl_found *f) {
        return f ? f->n : 0;
}

const memctl_mappings *memctl_found_get(const memctl_found *f, size_t index) {
        return f && index < f->n ? f->items[index] : NULL;
}
