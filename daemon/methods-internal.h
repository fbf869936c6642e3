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

/* The reply's pieces (daemon/methods.c). */
struct mapping;
struct layout_result;
struct process;
void write_mapping(struct json_writer *w, const struct mapping *m);
void write_result(struct json_writer *w, uint64_t address, const struct layout_result *res, bool no_mm);

/* Lookup and ListMappings answered from what retention kept (daemon/methods-retained.c): for a
 * process that is gone (live NULL; pid and start_time as asked) or as of time_usec (live: the
 * process the call opened). *ret_handled false: nothing kept may answer, w is untouched and the
 * caller's reply stands; else the reply (or error) is written and the error returned. */
const char *retained_lookup(const struct method_context *ctx, struct json_writer *w, pid_t pid, uint64_t start_time,
                            const struct process *live, bool at_time, uint64_t time_usec, const uint64_t *addrs,
                            size_t n, bool build_ids, bool *ret_handled);
const char *retained_list(const struct method_context *ctx, struct json_writer *w, pid_t pid, uint64_t start_time,
                          unsigned engine_flags, bool *ret_handled);
struct client;
struct exec_history_view;
/* Whether c may see what was kept of a process that is gone (memmapd(8)). */
bool retained_access_allowed(const struct client *c, const struct exec_history_view *v);

/* org.varlink.service (daemon/methods-service.c) */
const char *get_info(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w);
const char *get_interface_description(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w);
