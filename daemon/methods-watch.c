/* io.memmapd.Watch: the call that makes its connection a watcher (server-watch.c streams the events). */

#include <errno.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "methods-internal.h"
#include "process.h"
#include "retention.h"
#include "tracking.h"
#include "time-util.h"
#include "watch.h"

const char *method_watch(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w) {
        static const char *const known[] = { "pid", "start_time", NULL };
        _cleanup_(process_freep) struct process *p = NULL;
        struct watch_request req = {};
        struct json_object *v;
        const char *bad, *err;
        int r;

        if (!known_params_only(call->parameters, known, &bad))
                return reply_invalid_parameter(w, bad);
        /* A stream or nothing: one reply would say nothing. */
        if (!call->more || !ctx->watch || !ctx->stream)
                return reply_invalid_parameter(w, "more");
        if (!ctx->events || !tracking_active(ctx->tracking))
                return reply_error_simple(w, MEMMAPD_ERROR_TRACKING_UNAVAILABLE, "tracking",
                                          tracking_name(ctx->tracking));

        if (json_object_object_get_ex(call->parameters, "pid", &v) && v) {
                struct tracking_stamp stamp;

                err = open_target(ctx, call->parameters, w, &p, &req.decision);
                if (err)
                        return err;
                req.pid = p->pid;
                req.start_time = p->start_time;
                if (retention_active(ctx->retention))
                        /* The kernel's capture tells its changes (there is no poll), each against
                         * what is kept of it: that starts now where it has not (a process older
                         * than the daemon, or forked by one, would tell each as its whole set). */
                        (void) retained_complete_live(ctx, p);
                else {
                        /* What the events that follow change: read after the stamp, so a change
                         * during the read moves the generation the poll compares with. */
                        tracking_stamp(ctx->tracking, p->pid, &stamp);
                        req.generation = stamp.generation;
                        r = watch_list_exec_mappings(ctx->engine, p, &req.known, &req.n_known);
                        if (r == -E2BIG)
                                return reply_limit(w, "max_mappings", WATCH_EVENT_MAPPINGS_MAX);
                        if (r < 0)
                                return engine_error(w, p, r);
                }
        } else if (json_object_object_get_ex(call->parameters, "start_time", &v) && v)
                return reply_invalid_parameter(w, "start_time");

        req.requested = true;
        *ctx->watch = req;
        watch_write_watching(w);
        return NULL;
}
