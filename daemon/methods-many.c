/* LookupMany: Lookup for many processes in one call, each group answered or failed on its own. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "methods-internal.h"
#include "process.h"

/* A group whose read meets an exec is read again (as method_dispatch() does for Lookup). */
#define GROUP_EXEC_RETRIES 16

/* One group: written whole into w, or its error's name returned (nothing written). */
static const char *lookup_group(const struct method_context *ctx, struct json_object *g, const uint64_t *addrs,
                                size_t n, unsigned flags, struct json_writer *w) {
        for (unsigned attempt = 0;; attempt++) {
                _cleanup_(json_writer_done) struct json_writer scratch;
                _cleanup_(layout_unrefp) struct layout *l = NULL, *shared = NULL;
                _cleanup_(process_freep) struct process *p = NULL;
                _cleanup_free_ struct layout_result *results = NULL;
                struct access_decision decision;
                const char *err;
                int r;

                /* Error replies go to a scratch writer: only their names are kept. */
                json_writer_init(&scratch, 4096);
                err = open_target(ctx, g, &scratch, &p, &decision);
                if (err)
                        return err;
                r = shared_layout(ctx, p, &decision, &shared);
                if (r > 0)
                        r = engine_lookup_shared(ctx->engine, p, shared, addrs, n, flags, &l, &results);
                else if (r == 0)
                        r = engine_lookup_layout(ctx->engine, p, addrs, n, flags, &l, &results);
                if (r == -ESRCH && attempt < GROUP_EXEC_RETRIES && process_same(p->pid, p->start_time) > 0) {
                        /* An exec: the maps fd names the old mm; open it afresh. */
                        if (ctx->cache)
                                target_cache_clear(ctx->cache);
                        continue;
                }
                if (r < 0)
                        return engine_error(&scratch, p, r);

                json_writer_object_begin(w);
                write_lookup_answer(w, p, l, addrs, results, n, NULL);
                json_writer_object_end(w);
                return NULL;
        }
}

/* The addresses of group g into a[*used...]: -EINVAL when malformed, -E2BIG past max in all. */
static int group_addresses(struct json_object *g, uint64_t *a, size_t max, size_t *used, size_t *ret_n) {
        static const char *const known[] = { "pid", "start_time", "addresses", NULL };
        struct json_object *arr;
        const char *bad;
        size_t n;

        if (!json_object_is_type(g, json_type_object) || !known_params_only(g, known, &bad) ||
            !json_object_object_get_ex(g, "addresses", &arr) || !json_object_is_type(arr, json_type_array))
                return -EINVAL;
        n = json_object_array_length(arr);
        if (n > max - *used)
                return -E2BIG;
        for (size_t i = 0; i < n; i++)
                if (varlink_json_u64(json_object_array_get_idx(arr, i), &a[*used + i]) < 0)
                        return -EINVAL;
        *ret_n = n;
        *used += n;
        return 0;
}

const char *lookup_many(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w) {
        static const char *const known[] = { "groups", "build_ids", NULL };
        size_t max = ctx->limits->max_addresses;
        _cleanup_free_ uint64_t *addrs = NULL;
        _cleanup_free_ size_t *counts = NULL;
        struct json_object *groups;
        const char *bad;
        size_t n_groups, used = 0;
        bool build_ids;

        if (!known_params_only(call->parameters, known, &bad))
                return reply_invalid_parameter(w, bad);
        if (varlink_param_bool(call->parameters, "build_ids", false, false, &build_ids) < 0)
                return reply_invalid_parameter(w, "build_ids");
        if (!json_object_object_get_ex(call->parameters, "groups", &groups) ||
            !json_object_is_type(groups, json_type_array))
                return reply_invalid_parameter(w, "groups");
        n_groups = json_object_array_length(groups);
        /* Every group costs an open of a process even without addresses: they count too. */
        if (n_groups > max)
                return reply_limit(w, "max_addresses", max);
        for (size_t i = 0; i < n_groups; i++) {
                struct json_object *arr;

                if (json_object_object_get_ex(json_object_array_get_idx(groups, i), "addresses", &arr) &&
                    json_object_is_type(arr, json_type_array)) {
                        used += json_object_array_length(arr);
                        if (used > max)
                                return reply_limit(w, "max_addresses", max);
                }
        }
        /* As many as asked (at most max), not max: MaxAddresses may be millions. */
        addrs = malloc((used ? used : 1) * sizeof(*addrs));
        max = used;
        used = 0;
        counts = calloc(n_groups ? n_groups : 1, sizeof(*counts));
        if (!addrs || !counts)
                return reply_internal(w, -ENOMEM);
        /* All of the request is checked before any process is read. */
        for (size_t i = 0; i < n_groups; i++) {
                int r = group_addresses(json_object_array_get_idx(groups, i), addrs, max, &used, &counts[i]);

                if (r == -E2BIG)
                        return reply_limit(w, "max_addresses", max);
                if (r < 0)
                        return reply_invalid_parameter(w, "groups");
        }

        varlink_reply_begin(w, NULL, false);
        json_writer_key(w, "groups");
        json_writer_array_begin(w);
        used = 0;
        for (size_t i = 0; i < n_groups; i++) {
                struct json_object *g = json_object_array_get_idx(groups, i), *pid;
                const char *err = lookup_group(ctx, g, addrs + used, counts[i], build_ids ? ENGINE_BUILD_IDS : 0, w);

                used += counts[i];
                if (!err)
                        continue;
                json_writer_object_begin(w);
                if (json_object_object_get_ex(g, "pid", &pid) && json_object_is_type(pid, json_type_int)) {
                        json_writer_key(w, "pid");
                        json_writer_int(w, json_object_get_int64(pid));
                }
                json_writer_key(w, "error");
                json_writer_string(w, err);
                json_writer_object_end(w);
        }
        json_writer_array_end(w);
        varlink_message_end(w);
        return NULL;
}
