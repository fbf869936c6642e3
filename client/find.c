/* libmemctl's system-wide questions: FindMappings, the processes that map a file (memctl_find_mappings()), and LookupMany, lookups in many processes in one call (memctl_lookup_many()). */
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

static void found_clear(memctl_found *f);

memctl_found *memctl_found_free(memctl_found *f) {
        if (!f)
                return NULL;
        found_clear(f);
        free(f);
        return NULL;
}

static void found_clear(memctl_found *f) {
        for (size_t i = 0; i < f->n; i++)
                memctl_mappings_free(f->items[i]);
        free(f->items);
        f->items = NULL;
        f->n = 0;
}

/* Appends the matches of one message (a part of the reply, or its last). */
static int found_parse(struct json_object *params, memctl_found *f) {
        struct json_object *a = memmapd_json_member(params, "matches");
        memctl_mappings **items;
        size_t n;

        if (!a || !json_object_is_type(a, json_type_array))
                return -EPROTO;
        n = json_object_array_length(a);
        if (n > FOUND_MAX - f->n)
                return -EPROTO;
        items = reallocarray(f->items, f->n + n + 1, sizeof(*items));
        if (!items)
                return -ENOMEM;
        f->items = items;
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

/* A part of the streamed reply; NULL: the call starts over. */
static int found_part(struct json_object *params, void *userdata) {
        memctl_found *f = userdata;

        if (!params) {
                found_clear(f);
                return 0;
        }
        return found_parse(params, f);
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

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        json_writer_init(&w, REQUEST_SIZE_MAX);
        /* Streamed: a large answer comes in parts, within no single message's bound. */
        varlink_call_begin(&w, "io.memmapd.FindMappings", true, false);
        json_writer_key(&w, path ? "path" : "build_id");
        json_writer_string(&w, path ? path : build_id_hex);
        if (flags & MEMCTL_DELETED_ONLY) {
                json_writer_key(&w, "deleted_only");
                json_writer_bool(&w, true);
        }
        c->on_part = found_part;
        c->part_userdata = f;
        r = call_writer(c, &w, NULL, &params);
        c->on_part = NULL;
        c->part_userdata = NULL;
        json_writer_done(&w);
        if (r >= 0)
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

struct memctl_lookup_many_reply {
        memctl_lookup_reply **replies;  /* NULL for a group that failed */
        char **errors;                  /* its error's name */
        size_t n;
};

memctl_lookup_many_reply *memctl_lookup_many_free(memctl_lookup_many_reply *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n; i++) {
                memctl_lookup_reply_free(r->replies[i]);
                free(r->errors[i]);
        }
        free(r->replies);
        free(r->errors);
        free(r);
        return NULL;
}

static int many_parse(struct json_object *params, const struct memctl_lookup_group *groups, size_t n,
                      memctl_lookup_many_reply *r) {
        struct json_object *a = memmapd_json_member(params, "groups");

        if (!a || !json_object_is_type(a, json_type_array) || json_object_array_length(a) != n)
                return -EPROTO;
        r->replies = calloc(n ? n : 1, sizeof(*r->replies));
        r->errors = calloc(n ? n : 1, sizeof(*r->errors));
        if (!r->replies || !r->errors)
                return -ENOMEM;
        r->n = n;
        for (size_t i = 0; i < n; i++) {
                struct json_object *g = json_object_array_get_idx(a, i), *err;
                int k;

                if (!g || !json_object_is_type(g, json_type_object))
                        return -EPROTO;
                err = memmapd_json_member(g, "error");
                if (err) {
                        if (!json_object_is_type(err, json_type_string))
                                return -EPROTO;
                        r->errors[i] = strdup(json_object_get_string(err));
                        if (!r->errors[i])
                                return -ENOMEM;
                        continue;
                }
                r->replies[i] = calloc(1, sizeof(*r->replies[i]));
                if (!r->replies[i])
                        return -ENOMEM;
                /* The reply takes a reference of its group: its strings live there. */
                k = lookup_reply_parse(json_object_get(g), groups[i].pid, groups[i].start_time, groups[i].addresses,
                                       groups[i].n_addresses, r->replies[i]);
                if (k < 0)
                        return k;
        }
        return 0;
}

int memctl_lookup_many(memctl *c, const struct memctl_lookup_group *groups, size_t n_groups, uint64_t flags,
                       memctl_lookup_many_reply **ret) {
        _cleanup_(json_object_putp) struct json_object *params = NULL;
        memctl_lookup_many_reply *reply;
        struct json_writer w;
        char hex[32];
        int r;

        if (c)
                error_clear(c);
        if (!c || !ret || (!groups && n_groups > 0) || (flags & ~MEMCTL_BUILD_IDS))
                return -EINVAL;
        for (size_t i = 0; i < n_groups; i++)
                if (groups[i].size < sizeof(struct memctl_lookup_group) || groups[i].pid <= 0 ||
                    groups[i].start_time > INT64_MAX || (!groups[i].addresses && groups[i].n_addresses > 0))
                        return -EINVAL;

        json_writer_init(&w, REQUEST_SIZE_MAX);
        varlink_call_begin(&w, "io.memmapd.LookupMany", false, false);
        json_writer_key(&w, "groups");
        json_writer_array_begin(&w);
        for (size_t i = 0; i < n_groups; i++) {
                json_writer_object_begin(&w);
                json_writer_key(&w, "pid");
                json_writer_int(&w, groups[i].pid);
                if (groups[i].start_time > 0) {
                        json_writer_key(&w, "start_time");
                        json_writer_uint(&w, groups[i].start_time);
                }
                json_writer_key(&w, "addresses");
                json_writer_array_begin(&w);
                for (size_t k = 0; k < groups[i].n_addresses; k++) {
                        hex[json_format_hex(groups[i].addresses[k], hex)] = '\0';
                        json_writer_string(&w, hex);
                }
                json_writer_array_end(&w);
                json_writer_object_end(&w);
        }
        json_writer_array_end(&w);
        if (flags & MEMCTL_BUILD_IDS) {
                json_writer_key(&w, "build_ids");
                json_writer_bool(&w, true);
        }
        r = call_writer(c, &w, NULL, &params);
        json_writer_done(&w);
        if (r < 0)
                return r;

        reply = calloc(1, sizeof(*reply));
        if (!reply)
                return -ENOMEM;
        r = many_parse(params, groups, n_groups, reply);
        if (r < 0)
                return memctl_lookup_many_free(reply), r;
        *ret = reply;
        return 0;
}

size_t memctl_lookup_many_count(const memctl_lookup_many_reply *r) {
        return r ? r->n : 0;
}

const memctl_lookup_reply *memctl_lookup_many_get(const memctl_lookup_many_reply *r, size_t index,
                                                  const char **ret_error) {
        if (!r || index >= r->n) {
                if (ret_error)
                        *ret_error = NULL;
                return NULL;
        }
        if (ret_error)
                *ret_error = r->errors[index];
        return r->replies[index];
}
