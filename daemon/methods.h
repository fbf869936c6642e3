/* The methods memmapd serves (io.memmapd and org.varlink.service): a decoded call in, a complete reply out. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "access-decision.h"
#include "daemon-config.h"
#include "engine.h"
#include "json-writer.h"
#include "varlink.h"

struct file_pool;
struct find_scan;
struct layout_store;
struct proc_events;
struct tracking;
struct retention;

/* Counters shared by the serving threads. */
struct service_stats {
        atomic_uint_fast64_t requests;
        atomic_uint_fast64_t errors;
        atomic_uint_fast64_t connections;
        atomic_uint_fast64_t oneway_skipped;    /* oneway calls past their budget, not run */
        atomic_uint_fast64_t output_held;       /* bytes of queued output and requests held */
        atomic_uint_fast64_t parked;            /* connections waiting for a worker of their share */
        uint64_t start_usec;            /* CLOCK_MONOTONIC */
};

/* A connection's last target process, kept open for its next calls: a profiler asks about
 * one process again and again, and opening it (pidfd, /proc/PID, stat, maps) cost more than
 * a small lookup itself. Used by one thread at a time, like its connection. */
struct target_cache {
        struct process *process;
        struct access_decision decision;        /* what let process be opened */
};

/* Accepts an empty cache. */
void target_cache_clear(struct target_cache *c);

/* Where the parts of a streamed reply go: a call with "more" to a method that streams. */
struct reply_stream {
        /* Takes one complete message (NUL included; ownership passes in every case) and
         * sends what the peer takes now. 0, or -errno to end the call: -E2BIG when the peer
         * left max_output_queue bytes of earlier parts unread, or the connection's error. */
        int (*emit)(void *userdata, char *msg, size_t len);
        void *userdata;
        size_t parts;                   /* emitted by the call in progress */
};

/* What a successful Watch call asks of its connection (server-watch.c): set by the method,
 * which has replied "watching". */
struct watch_mapping;
struct watch_request {
        bool requested;
        pid_t pid;                      /* 0: every process the client may see */
        uint64_t start_time;
        struct access_decision decision;        /* pid: the kernel's yes when the call began */
        /* pid: its executable file mappings then (owned; watch_mappings_free()) and its
         * change generation before they were read. */
        struct watch_mapping *known;
        size_t n_known;
        uint64_t generation;
};

struct method_context {
        struct engine *engine;
        struct file_pool *file_pool;    /* NULL: none (GetStatus reports zeros) */
        const struct limits *limits;
        struct service_stats *stats;
        struct tracking *tracking;      /* NULL: none */
        struct layout_store *store;     /* NULL: none (layouts are read for every call) */
        struct proc_events *events;     /* NULL: none (no process events are learned) */
        struct find_scan *find;         /* FindMappings' BPF pass; NULL: it scans /proc */
        struct retention *retention;    /* NULL: none (exited processes are not answered for) */
        const struct client *client;    /* from the socket, never from the request */
        struct target_cache *cache;     /* the connection's; NULL: open every target afresh */
        struct reply_stream *stream;    /* NULL: every reply in one message, "more" or not */
        /* The largest reply this call may make, when a budget leaves less than
         * max_output_queue, and the limit named in its LimitExceeded (with its value). 0:
         * max_output_queue. */
        size_t output_max;
        const char *output_limit;
        uint64_t output_limit_value;
        /* Where a method that passes a file descriptor with its reply (OpenMappingFile) puts
         * it; -1 before the call. NULL: the call may not pass one (oneway), and such a method
         * answers without. method_dispatch() closes it again when the reply is an error. */
        int *reply_fd;
        /* Nonzero: the connection has this many fds in flight already (its client does not
         * read): a method that would pass one answers LimitExceeded "fds_in_flight". */
        unsigned reply_fd_limit;
        /* Where Watch puts what it asks; NULL: the connection cannot watch (oneway). */
        struct watch_request *watch;
};

/* Answers one call (*ctx->reply_fd, when set, receives the fd to pass, or stays -1): *ret_reply receives the whole reply message (or, for a streamed
 * reply, its last part: the others went to ctx->stream), NUL terminator included in
 * *ret_len. *ret_error names the Varlink error replied, or NULL on success. A reply above
 * max_output_queue (or ctx->output_max) is replaced by LimitExceeded. Returns 0, or -ENOMEM. */
int method_dispatch(const struct method_context *ctx, const struct varlink_call *call, char **ret_reply,
                    size_t *ret_len, const char **ret_error);

/* The org.varlink.service interface description. */
extern const char varlink_service_interface_description[];
