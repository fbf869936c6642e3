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

/* io.memmapd.Watch (daemon/methods-watch.c) */
const char *method_watch(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w);
/* The reply's pieces (daemon/methods.c). */
struct mapping;
struct layout_result;
struct process;
void write_mapping(struct json_writer *w, const struct mapping *m);
struct symbol_answer;
void write_result(struct json_writer *w, uint64_t address, const struct layout_result *res, bool no_mm,
                  const struct symbol_answer *sym);

/* Lookup and ListMappings answered from what retention kept (daemon/methods-retained.c): for a
 * process that is gone (live NULL; pid and start_time as asked) or as of time_usec (live: the
 * process the call opened). *ret_handled false: nothing kept may answer, w is untouched and the
 * caller's reply stands; else the reply (or error) is written and the error returned. */
const char *retained_lookup(const struct method_context *ctx, struct json_writer *w, pid_t pid, uint64_t start_time,
                            const struct process *live, bool at_time, uint64_t time_usec, const uint64_t *addrs,
                            size_t n, bool build_ids, bool symbols, bool *ret_handled);
const char *retained_list(const struct method_context *ctx, struct json_writer *w, pid_t pid, uint64_t start_time,
                          unsigned engine_flags, bool *ret_handled);
/* Makes what retention keeps of the live process p complete from now on where it is not (a
 * process older than the daemon, or forked by one): what waits in the ring buffers first (its exec
 * or fork), else a read of it. Its mappings events then say what each change did, not its whole
 * set. 0 (also when retention is off), -EAGAIN (it changed during every read), -errno. */
int retained_complete_live(const struct method_context *ctx, const struct process *p);
struct client;
struct exec_history_view;
/* Whether c may see what was kept of a process that is gone (memmapd(8)). */
bool retained_access_allowed(const struct client *c, const struct exec_history_view *v);

/* org.varlink.service (daemon/methods-service.c) */
const char *get_info(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w);
const char *get_interface_description(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w);

/* Shared by the method modules (daemon/methods.c). */
struct mapping;
struct process;
void write_mapping(struct json_writer *w, const struct mapping *m);
void write_process(struct json_writer *w, const struct process *p);
/* Ends the part of a streamed reply being written (its innermost array, its parameters) with
 * "continues" and hands it to ctx->stream; the caller begins the next part. 0 or -errno (-E2BIG:
 * the peer left too much unread). */
int stream_part_emit(const struct method_context *ctx, struct json_writer *w);

struct access_decision;
struct layout;
struct layout_result;
struct mapping_list;
struct symbol_answer;
/* A Lookup's answer (process, mappings, results) into the object being written; syms: each
 * result's symbol (NULL: none asked). */
void write_lookup_answer(struct json_writer *w, const struct process *p, const struct layout *l, const uint64_t *addrs,
                         const struct layout_result *results, size_t n, const struct symbol_answer *syms);
/* Reads pid and start_time of params, decides and opens the process (the connection's cached
 * one where its decision stands); on failure writes the error reply and returns its name. */
const char *open_target(const struct method_context *ctx, struct json_object *params, struct json_writer *w,
                        struct process **ret, struct access_decision *ret_decision);
/* The error reply for a read of p that failed with r. */
const char *engine_error(struct json_writer *w, const struct process *p, int r);
struct tracking_stamp;
/* Takes what waits in the ring buffers (the capture's records first, as the loop does) until
 * every event the tracker had emitted when st was taken is handled (within a bound: 8 drains of
 * each), then the capture's records a fork among them waits for. How many records and events
 * were handled. */
int catch_up(const struct method_context *ctx, const struct tracking_stamp *st);
/* The kept layout to answer p from: 1 and *ret, 0 to read without the store, -errno. */
int shared_layout(const struct method_context *ctx, const struct process *p, const struct access_decision *decision,
                  struct layout **ret);

/* LookupMany (daemon/methods-many.c). */
const char *lookup_many(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w);

/* FindMappings (daemon/methods-find.c). */
const char *find_mappings(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w);
