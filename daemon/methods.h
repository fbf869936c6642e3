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

/* A connection's last target process, kept open for its next calls: a profiler asks about
 * one process again and again, and opening it (pidfd, /proc/PID, stat, maps) cost more than
 * a small lookup itself. Used by one thread at a time, like its connection. */
struct target_cache {
        struct process *process;
        uint64_t opened_usec;           /* CLOCK_MONOTONIC */
        bool used;                      /* the call in progress took its target from here */
};

/* Accepts an empty cache. */
void target_cache_clear(struct target_cache *c);

struct method_context {
        struct engine *engine;
        const struct limits *limits;
        struct service_stats *stats;
        const struct client *client;    /* from the socket, never from the request */
        struct target_cache *cache;     /* the connection's; NULL: open every target afresh */
};

/* Answers one call: *ret_reply receives the whole reply message, NUL terminator included
 * in *ret_len. *ret_error names the Varlink error replied, or NULL on success. A reply
 * above max_output_queue is replaced by LimitExceeded. Returns 0, or -ENOMEM. */
int method_dispatch(const struct method_context *ctx, const struct varlink_call *call, char **ret_reply,
                    size_t *ret_len, const char **ret_error);

/* The org.varlink.service interface description. */
extern const char varlink_service_interface_description[];
