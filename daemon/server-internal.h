/* Inside the server: its state, a connection's and a user's, shared by server.c and the server-*.c modules. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "access.h"
#include "methods.h"
#include "server.h"
#include "varlink-frame.h"

/* The limits each module keeps to itself are in its .c; these two are shared. */
#define LISTEN_FDS_MAX 16
/* A new connection's oneway bucket (server-listen.c fills it, server-fairness.c spends it):
 * see ONEWAY_RATE_CONN. */
#define ONEWAY_BURST_CONN 2

/* Every thread runs the same loop on one epoll instance ("leader/followers"): the thread
 * that wakes for a connection reads the call, answers it and writes the reply itself. Each
 * call used to cross threads four times (loop -> worker -> loop -> client), and on a VM
 * those switches were half of the daemon's time for small lookups. Every source is
 * registered EPOLLONESHOT, so exactly one thread owns a ready source until it re-arms it:
 * connection state needs no lock. The lock guards what threads share: the connection list
 * and counts, the listeners, the shutdown state. A connection's fd is only closed under the
 * lock, so other threads may shutdown() it (idle timeout, shutdown) while holding it. */

enum source_type {
        SOURCE_LISTEN,
        SOURCE_SIGNAL,
        SOURCE_TIMER,
        SOURCE_STOP,
        SOURCE_READY,
        SOURCE_CONN,
        SOURCE_TRACKING,
        SOURCE_WATCH,                   /* a watching connection's writing side (server-watch.c) */
        SOURCE_WATCH_POLL,              /* the poll of watched processes' mappings */
        SOURCE_RETENTION,
        SOURCE_DRAIN,                   /* the drains' timer (ring-wake.bpf.h) */
};

struct source {
        enum source_type type;
        int fd;
};

/* What one user is charged with: all uids of one user namespace owner together (a user with
 * a /etc/subuid range is one user). Under the server lock; freed with its last connection. */
struct account {
        struct account *next;
        uid_t owner;
        size_t n_conns;
        unsigned running;               /* its connections being served now */
        size_t held;                    /* bytes its connections hold (output, requests) */
        double oneway_tokens;
        uint64_t oneway_refill_usec;
        struct conn *parked_head, *parked_tail; /* waiting for a worker, in order */
        struct account *turn_next;      /* in the server's round of accounts with parked conns */
        bool in_round;
        size_t n_watches;               /* its connections watching (Watch) */
};

struct conn {
        struct source src;              /* first: epoll data points here */
        struct conn *prev, *next;       /* under the server lock */
        struct server *server;
        struct client client;
        struct account *account;        /* set before the connection is armed, then fixed */
        /* Under the server lock: the parked or ready list it is in, what it was woken for. */
        struct conn *queue_next;
        uint32_t resume_events;
        size_t held;                    /* bytes charged to the budgets, under the lock */
        /* Owned like the reader: the connection's own oneway bucket, this turn's work. */
        double oneway_tokens;
        uint64_t oneway_refill_usec;
        unsigned turn_calls;
        size_t turn_bytes;
        /* Owned by the thread that took the connection's event, until it re-arms it. */
        struct varlink_reader in;
        struct varlink_writer out;
        bool eof;                       /* the peer will send nothing more */
        bool closing;                   /* close once the output is written */
        unsigned fds_in_flight;         /* passed since the peer was last seen to have read all */
        struct target_cache target;
        /* Watching (Watch): its events are written by the watch, c only waits for the hang-up. */
        struct watch *watch;
        size_t watch_held;              /* charged besides its buffers while it watches */
        atomic_bool watching;           /* read by the tick: a watcher waits, it is not idle */
        /* Read by the tick without owning the connection. */
        atomic_bool busy;               /* a thread is answering it: never idle */
        _Atomic uint64_t last_activity;
};

struct server {
        const struct config *cfg;
        struct engine *engine;
        struct file_pool *file_pool;    /* NULL: none */
        struct service_stats stats;

        int epoll_fd;
        struct source listen[LISTEN_FDS_MAX];
        size_t n_listen;
        char *owned_socket_path;        /* a socket file we created and remove at exit */
        struct source signal_src, timer_src, stop_src;
        /* Process events of change tracking (tracking.h): drained by whichever thread wakes. */
        struct source tracking_src;
        struct tracking *tracking;      /* NULL: none */
        struct find_scan *find;         /* NULL: FindMappings scans /proc */
        struct layout_store *store;     /* NULL: none */
        struct proc_events *events;     /* NULL: none (Watch has nothing to stream) */
        /* The capture of executable mappings (retention.h): drained like tracking_src. */
        struct source retention_src;
        struct retention *retention;    /* NULL: none */
        /* A timerfd, armed DRAIN_DELAY_USEC after each drain that found something: records
         * sent that soon after a wake-up wake nobody, it drains them. */
        struct source drain_src;
        /* An eventfd (EFD_SEMAPHORE) counting the connections on the ready list: each is
         * taken by one thread, which then owns it. */
        struct source ready_src;

        pthread_t *threads;
        unsigned n_threads;

        gid_t allowed_gids[CONFIG_GROUPS_MAX];
        size_t n_allowed_gids;

        /* Everything below is under lock. */
        pthread_mutex_t lock;
        struct conn *conns;
        size_t n_conns;
        size_t n_unprivileged;          /* connections of unprivileged clients */
        struct account *accounts;
        /* Connections whose turn was cut short, or unparked, waiting for any thread. */
        struct conn *ready_head, *ready_tail;
        /* Unprivileged clients together run on at most unprivileged_slots threads, so root
         * and AllowGroups members always find one, and one user on at most user_slots, so
         * other users find one too; the others park, served a user at a time in turn
         * (round), each user's connections in order. */
        unsigned unprivileged_slots, unprivileged_running;
        unsigned user_slots;            /* of them, what one user may take: others find one */
        struct account *round_head, *round_tail;
        size_t n_parked;
        size_t held_total, held_unprivileged;
        int reserve_fd;                 /* given up to accept-and-close when out of fds */
        bool shutting_down;
        bool listen_paused;             /* out of fds and no reserve: listeners unarmed until a tick */
        uint64_t last_refusal_log;      /* refusals are logged at most once a second */
        uint64_t refusals_unlogged;
        uint64_t shutdown_deadline;
        uint64_t watchdog_usec, last_watchdog;
        uint64_t requests_at_tick;      /* stats.requests at the last tick */
        bool trim_pending;              /* calls came since memory was last given back */
        atomic_bool stopping;           /* every thread leaves its loop */
        /* Watching connections (server-watch.c), under their own lock: the loop's listener
         * takes it while the server lock may be held elsewhere. */
        pthread_mutex_t watch_lock;
        struct watch *watches;
        /* Watches whose connection ended, still armed: the thread that takes the hang-up
         * frees each; what a stop leaves, server_watch_free_all() does. */
        struct watch *ending;
        size_t n_watches, n_pid_watches;
        int events_listener;            /* its id with events; 0: none */
        struct source watch_poll_src;   /* a timerfd, armed while a pid is watched */
        bool freeing;                   /* server_free(): no thread runs, watches go at once */
};

/* server.c: the loop. */
int source_arm(struct server *s, struct source *src, uint32_t events);
void request_stop(struct server *s);

/* server-fairness.c: accounts, budgets, turns, shares. */
struct account *account_get(struct server *s, uid_t owner);
void account_put(struct server *s, struct account *a);
bool conn_oneway_allowed(struct conn *c);
void conn_charge_locked(struct conn *c, size_t held);
void conn_charge(struct conn *c);
size_t conn_reply_room(struct conn *c, const char **ret_limit, uint64_t *ret_value);
void ready_push_locked(struct server *s, struct conn *c, uint32_t events);
void park_locked(struct server *s, struct conn *c, uint32_t events);
void slot_release(struct server *s, struct account *a);
bool slot_take(struct conn *c, uint32_t events);

/* server-conn.c: connections. */
void conn_free(struct conn *c);
void conn_close(struct conn *c);
void conn_turn(struct conn *c, uint32_t events, bool slot_held);
void on_ready(struct server *s);

/* server-watch.c: Watch streams. */
struct watch_request;
int server_watch_setup(struct server *s);
/* Called by c's owner after a successful Watch call: c becomes a watcher (its first reply
 * taken). 0, or -errno with the reply freed: the caller closes c. */
int server_watch_begin(struct conn *c, const struct watch_request *req, char *reply, size_t len);
/* Called by c's owner as c closes (and by server_free()). */
void server_watch_end(struct conn *c);
void server_watch_on_io(struct server *s, struct source *src, uint32_t events);
void server_watch_on_poll(struct server *s);
void server_watch_free_all(struct server *s);

/* server-listen.c: listening sockets. */
void on_listener(struct server *s, struct source *src);
void stop_listening(struct server *s);
int bind_socket(struct server *s, const char *path);
int take_activated_sockets(struct server *s);
