/* The methods memmapd serves (io.memmapd and org.varlink.service): a decoded call in, a complete reply out. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "access.h"
#include "config.h"
#include "engine.h"
#include "json-writer.h"
#include "varlink.h"

/* Counters shared by the serving threads. */
struct service_stats {
        atomic_uint_fast64_t requests;
        atomic_uint_fast64_t errors;
        atomic_uint_fast64_t connections;
        uint64_t start_usec;            /* CLOCK_MONOTONIC */
};

struct method_context {
        struct engine *engine;
        const struct limits *limits;
        struct service_stats *stats;
        const struct client *client;    /* from the socket, never from the request */
};

/* Cheap methods that need no process access are answered on the event loop. */
bool method_is_inline(const char *method);

/* Answers one call: *ret_reply receives the whole reply message, NUL terminator included
 * in *ret_len. *ret_error names the Varlink error replied, or NULL on success. A reply
 * above max_output_queue is replaced by LimitExceeded. Returns 0, or -ENOMEM. */
int method_dispatch(const struct method_context *ctx, const struct varlink_call *call, char **ret_reply,
                    size_t *ret_len, const char **ret_error);

/* The org.varlink.service interface description. */
extern const char varlink_service_interface_description[];
