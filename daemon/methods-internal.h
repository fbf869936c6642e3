/* What the method modules share: the io.memmapd error names they answer, error replies, and the org.varlink.service methods. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "memmapd-codec.h"
#include "methods.h"

/* Error replies: each writes a whole reply and returns the error's name. */
const char *reply_error_simple(struct json_writer *w, const char *error, const char *key, const char *value);
const char *reply_invalid_parameter(struct json_writer *w, const char *name);
const char *reply_pid_error(struct json_writer *w, const char *error, int64_t pid);
const char *reply_limit(struct json_writer *w, const char *limit, uint64_t max);
const char *reply_internal(struct json_writer *w, int error);
bool known_params_only(struct json_object *params, const char *const *known, const char **ret_bad);

/* methods.c: reads pid and start_time, opens the process and checks its identity (the error
 * reply written and returned on failure); an engine error's reply. */
struct process;
struct access_decision;
const char *open_target(const struct method_context *ctx, struct json_object *params, struct json_writer *w,
                        struct process **ret, struct access_decision *ret_decision);
const char *method_engine_error(struct json_writer *w, const struct process *p, int r);

/* io.memmapd.Watch (daemon/methods-watch.c) */
const char *method_watch(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w);

/* org.varlink.service (daemon/methods-service.c) */
const char *get_info(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w);
const char *get_interface_description(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w);
