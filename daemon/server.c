/* The memmapd server: listening sockets, client connections answered by a pool of threads sharing one epoll loop, signals and systemd notification. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <linux/sockios.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "cleanup.h"
#include "log.h"
#include "memmapd-codec.h"
#include "methods.h"
#include "server.h"
#include "time-util.h"
#include "varlink-frame.h"
#include "varlink.h"

#define LISTEN_FDS_MAX 16
/* Reads per wake-up of one connection, so one busy client cannot starve the rest. */
#define READS_PER_WAKEUP 8
/* Connections taken off a listener's backlog per wake-up. */
#define ACCEPTS_PER_WAKEUP 16
/* Stop taking a client's next call while this much output waits for it to read. */
#define OUTPUT_HIGH_WATER (256 * 1024)
/* A turn: what one connection gets before the others ready are served. A pipeline of calls
 * from one client would otherwise hold a worker until it ended (four connections pipelining
 * big listings stopped everyone for a minute). */
#define CALLS_PER_TURN 4
#define TURN_OUTPUT_MAX (1024 * 1024)
/* Oneway calls are answered into the void, so no output bound ever pauses their pipeline:
 * each connection and each user gets a bucket of them (burst, then a rate per second).
 * Calls past it are parsed, counted (oneway_skipped) and not run: nobody waits for them. */
#define ONEWAY_BURST_CONN 2
#define ONEWAY_RATE_CONN 1
#define ONEWAY_BURST_USER 4
#define ONEWAY_RATE_USER 1
/* Every call may make a reply this large whatever the budgets say, so small calls (a status,
 * a lookup) are always answered; workers x this is all it may add beyond the budgets. A
 * request larger than this while its budget is spent is refused without being run: its reply
 * (a Lookup's is larger than its request) could not be queued anyway. */
#define REPLY_ROOM_MIN (64 * 1024)
/* A reader keeps this much room between messages; a larger buffer is given back. */
#define READER_KEEP (64 * 1024)
/* Fds passed on one connection and perhaps not received yet: a client that pipelines
 * OpenMappingFile without reading would keep files in flight without bound, and the kernel
 * counts them against the daemon's user (past RLIMIT_NOFILE, every client's passing fails). */
#define FDS_IN_FLIGHT_MAX 16
#define SHUTDOWN_TIMEOUT_USEC (10 * 1000000ull)
#define TICK_USEC 1000000ull

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
};

/* Hands a source back to epoll after its event was handled. */
static int source_arm(struct server *s, struct source *src, uint32_t events) {
        struct epoll_event ev = { .events = events | EPOLLONESHOT, .data.ptr = src };

        return epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, src->fd, &ev) < 0 ? -errno : 0;
}

/* Makes every thread leave its loop. The stop eventfd stays readable and each leaving thread
 * writes it once more, so the wake-ups chain through all threads sleeping in epoll_wait(). */
static void request_stop(struct server *s) {
        uint64_t one = 1;

        atomic_store(&s->stopping, true);
        (void) !write(s->stop_src.fd, &one, sizeof(one));
}

/* ------------------------------------------------------------------ accounts and budgets */

/* Under lock. The account of owner, made (with no connection) when it has none. */
static struct account *account_get(struct server *s, uid_t owner) {
        struct account *a;

        for (a = s->accounts; a; a = a->next)
                if (a->owner == owner)
                        return a;
        a = calloc(1, sizeof(*a));
        if (!a)
                return NULL;
        a->owner = owner;
        a->oneway_tokens = ONEWAY_BURST_USER;
        a->oneway_refill_usec = now_usec();
        a->next = s->accounts;
        s->accounts = a;
        return a;
}

/* Under lock. Frees an account that has no connection left. */
static void account_put(struct server *s, struct account *a) {
        if (!a || a->n_conns > 0 || a->running > 0)
                return;
        for (struct account **p = &s->accounts; *p; p = &(*p)->next)
                if (*p == a) {
                        *p = a->next;
                        break;
                }
        free(a);
}

/* Takes one call from a bucket of burst calls refilled at rate a second: whether there was one. */
static bool bucket_take(double *tokens, uint64_t *refill_usec, unsigned burst, unsigned rate) {
        uint64_t now = now_usec();

        if (now > *refill_usec)
                *tokens = MIN((double) burst, *tokens + (double) (now - *refill_usec) * rate / 1e6);
        *refill_usec = now;
        if (*tokens < 1.0)
                return false;
        *tokens -= 1.0;
        return true;
}

/* Called by the connection's owner: whether this oneway call may run (the connection's and
 * its user's buckets both have one). */
static bool conn_oneway_allowed(struct conn *c) {
        struct server *s = c->server;
        bool ok;

        if (!bucket_take(&c->oneway_tokens, &c->oneway_refill_usec, ONEWAY_BURST_CONN, ONEWAY_RATE_CONN))
                return false;
        pthread_mutex_lock(&s->lock);
        ok = bucket_take(&c->account->oneway_tokens, &c->account->oneway_refill_usec, ONEWAY_BURST_USER,
                         ONEWAY_RATE_USER);
        pthread_mutex_unlock(&s->lock);
        return ok;
}

/* Under lock. Sets what c is charged with to held bytes. */
static void conn_charge_locked(struct conn *c, size_t held) {
        struct server *s = c->server;

        s->held_total = s->held_total - c->held + held;
        if (!c->client.privileged) {
                s->held_unprivileged = s->held_unprivileged - c->held + held;
                c->account->held = c->account->held - c->held + held;
        }
        c->held = held;
        atomic_store(&s->stats.output_held, s->held_total);
}

/* Called by the connection's owner after its output or input buffer changed: charges what
 * it holds now (queued output, buffered request bytes) to the daemon's and its user's
 * budgets. */
static void conn_charge(struct conn *c) {
        size_t held = c->out.pending + c->in.allocated;

        if (held == c->held)
                return;
        pthread_mutex_lock(&c->server->lock);
        conn_charge_locked(c, held);
        pthread_mutex_unlock(&c->server->lock);
}

/* How large a reply c's next call may make: max_output_queue, or less when what the daemon
 * (unprivileged clients: 3/4 of OutputBudget) or this user (OutputBudgetPerUser) holds leaves
 * less room (0 when spent); then *ret_limit names the budget and *ret_value is its size. */
static size_t conn_reply_room(struct conn *c, const char **ret_limit, uint64_t *ret_value) {
        struct server *s = c->server;
        const struct limits *l = &s->cfg->limits;
        size_t room = l->max_output_queue, cap, used;

        *ret_limit = NULL;
        *ret_value = 0;
        pthread_mutex_lock(&s->lock);
        cap = c->client.privileged ? l->output_budget : l->output_budget / 4 * 3;
        used = c->client.privileged ? s->held_total : s->held_unprivileged;
        if (cap - MIN(cap, used) < room) {
                room = cap - MIN(cap, used);
                *ret_limit = "output_budget";
                *ret_value = l->output_budget;
        }
        if (!c->client.privileged) {
                cap = l->output_budget_per_uid;
                used = c->account->held;
                if (cap - MIN(cap, used) < room) {
                        room = cap - MIN(cap, used);
                        *ret_limit = "output_budget_per_uid";
                        *ret_value = l->output_budget_per_uid;
                }
        }
        pthread_mutex_unlock(&s->lock);
        return room;
}

/* ------------------------------------------------------------------ turns */

/* Under lock. Hands c (owned by the caller, not armed) to the next thread that looks. */
static void ready_push_locked(struct server *s, struct conn *c, uint32_t events) {
        uint64_t one = 1;

        c->resume_events = events;
        c->queue_next = NULL;
        if (s->ready_tail)
                s->ready_tail->queue_next = c;
        else
                s->ready_head = c;
        s->ready_tail = c;
        (void) !write(s->ready_src.fd, &one, sizeof(one));
}

/* Under lock. Puts a user with parked connections at the back of the round. */
static void round_append_locked(struct server *s, struct account *a) {
        a->turn_next = NULL;
        if (s->round_tail)
                s->round_tail->turn_next = a;
        else
                s->round_head = a;
        s->round_tail = a;
        a->in_round = true;
}

/* Under lock. Puts c (owned by the caller, not armed) behind its user's parked connections;
 * it is served when a thread of the unprivileged share comes free and its user's turn comes. */
static void park_locked(struct server *s, struct conn *c, uint32_t events) {
        struct account *a = c->account;

        c->resume_events = events;
        c->queue_next = NULL;
        if (a->parked_tail)
                a->parked_tail->queue_next = c;
        else
                a->parked_head = c;
        a->parked_tail = c;
        if (!a->in_round) {
                round_append_locked(s, a);
        }
        s->n_parked++;
        atomic_store(&s->stats.parked, s->n_parked);
}

/* Under lock. The next parked connection that may run: the first of the first user in the
 * round below its share of threads; that user goes to the back of the round. NULL when there
 * is none. */
static struct conn *unpark_locked(struct server *s) {
        struct account *a, *prev = NULL;
        struct conn *c;

        for (a = s->round_head; a && a->running >= s->user_slots; a = a->turn_next)
                prev = a;
        if (!a)
                return NULL;
        c = a->parked_head;
        a->parked_head = c->queue_next;
        if (!a->parked_head)
                a->parked_tail = NULL;
        if (prev)
                prev->turn_next = a->turn_next;
        else
                s->round_head = a->turn_next;
        if (s->round_tail == a)
                s->round_tail = prev;
        a->in_round = false;
        if (a->parked_head)
                round_append_locked(s, a);
        s->n_parked--;
        atomic_store(&s->stats.parked, s->n_parked);
        return c;
}

/* An unprivileged client of account a ended its turn: the threads of the unprivileged share
 * go to the next parked connections that may run (each thread's slot passes on with its
 * connection). */
static void slot_release(struct server *s, struct account *a) {
        struct conn *next;

        pthread_mutex_lock(&s->lock);
        a->running--;
        s->unprivileged_running--;
        while (s->unprivileged_running < s->unprivileged_slots && (next = unpark_locked(s))) {
                next->account->running++;
                s->unprivileged_running++;
                ready_push_locked(s, next, next->resume_events);
        }
        account_put(s, a);
        pthread_mutex_unlock(&s->lock);
}

/* Whether an unprivileged client may be served now: takes a slot of the unprivileged share
 * (and of its user's), or parks c (owned by the caller) with the events it was woken for. */
static bool slot_take(struct conn *c, uint32_t events) {
        struct server *s = c->server;
        bool ok;

        pthread_mutex_lock(&s->lock);
        ok = s->unprivileged_running < s->unprivileged_slots && c->account->running < s->user_slots;
        if (ok) {
                s->unprivileged_running++;
                c->account->running++;
        } else
                park_locked(s, c, events);
        pthread_mutex_unlock(&s->lock);
        return ok;
}

/* ------------------------------------------------------------------ connections */

static void conn_free(struct conn *c) {
        target_cache_clear(&c->target);
        client_done(&c->client);
        varlink_reader_done(&c->in);
        varlink_writer_done(&c->out);
        free(c);
}

/* Called by the connection's owner (or once no thread runs). */
static void conn_close(struct conn *c) {
        struct server *s = c->server;

        pthread_mutex_lock(&s->lock);
        epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->src.fd, NULL);
        close(c->src.fd);
        c->src.fd = -1;
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_conns--;
        if (!c->client.privileged)
                s->n_unprivileged--;
        conn_charge_locked(c, 0);
        c->account->n_conns--;
        account_put(s, c->account);
        c->account = NULL;
        atomic_store(&s->stats.connections, s->n_conns);
        if (s->shutting_down && s->n_conns == 0)
                request_stop(s);
        pthread_mutex_unlock(&s->lock);
        conn_free(c);
}

/* Ends this thread's ownership of c: closes it when it is finished, else re-arms it for
 * what it waits for. c must not be touched afterwards. */
static void conn_release(struct conn *c) {
        uint32_t want = 0;

        if (!c->closing && !c->eof && c->out.pending < OUTPUT_HIGH_WATER)
                want |= EPOLLIN | EPOLLRDHUP;
        if (c->out.pending > 0)
                want |= EPOLLOUT;
        if (want == 0) {
                conn_close(c);
                return;
        }
        /* A large request's buffer is not kept (nor charged) while the client thinks. */
        if (!varlink_reader_has_partial(&c->in))
                varlink_reader_trim(&c->in, READER_KEEP);
        conn_charge(c);
        /* Everything read from c comes before the release: once armed, another thread may
         * own it. */
        struct epoll_event ev = { .events = want | EPOLLONESHOT, .data.ptr = &c->src };
        int fd = c->src.fd, epfd = c->server->epoll_fd;

        atomic_store(&c->busy, false);
        if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
                /* Not armed: still ours. */
                conn_close(c);
}

static void conn_queue(struct conn *c, char *reply, size_t len, int fd) {
        int r = varlink_writer_queue_fd(&c->out, reply, len, fd);

        if (r < 0) {
                log_warning_errno(r, "Dropping client pid %d: cannot queue reply", (int) c->client.pid);
                c->closing = true;
        }
}

static void count_reply(struct server *s, const char *error) {
        if (error)
                atomic_fetch_add(&s->stats.errors, 1);
}

/* Writes a reply that needs no method: errors about the message itself. */
static void conn_reply_now(struct conn *c, const char *error, const char *key, const char *svalue, int64_t ivalue,
                           bool has_ivalue) {
        _cleanup_(json_writer_done) struct json_writer w;
        char *buf;
        size_t len;

        json_writer_init(&w, 0);
        varlink_reply_begin(&w, error, false);
        if (key) {
                json_writer_key(&w, key);
                json_writer_string(&w, svalue);
        }
        if (has_ivalue) {
                json_writer_key(&w, "max");
                json_writer_int(&w, ivalue);
        }
        varlink_message_end(&w);
        if (json_writer_finish(&w, &buf, &len) < 0) {
                c->closing = true;
                return;
        }
        count_reply(c->server, error);
        conn_queue(c, buf, len, -1);
}

/* An upper bound of the number of JSON values in msg: one more than the commas and opening
 * brackets outside strings. One linear pass, with no allocation. */
static size_t json_values_bound(const char *msg, size_t len) {
        size_t n = 1;
        bool in_string = false;

        for (size_t i = 0; i < len; i++) {
                char ch = msg[i];

                if (in_string) {
                        if (ch == '\\')
                                i++;
                        else if (ch == '"')
                                in_string = false;
                } else if (ch == '"')
                        in_string = true;
                else if (ch == ',' || ch == '[' || ch == '{')
                        n++;
        }
        return n;
}

/* Values a call may need beside its addresses: method, flags, pid, start_time... */
#define CALL_VALUES_SLACK 64

/* A part of a streamed reply: queued behind what is pending and written as far as the
 * socket takes it now, so the client decodes it while the rest is being read. A client that
 * does not read holds up at most max_output_queue bytes (and one part) before the call ends
 * in LimitExceeded. Never waits for the socket: the thread serves others meanwhile. */
static int conn_emit(void *userdata, char *msg, size_t len) {
        struct conn *c = userdata;
        int r;

        const char *limit;
        uint64_t value;
        size_t before;

        /* Budgets as for a whole reply: the parts held count against them. */
        if (c->out.pending >= MAX(conn_reply_room(c, &limit, &value), (size_t) REPLY_ROOM_MIN)) {
                free(msg);
                return -E2BIG;
        }
        c->turn_bytes += len;
        r = varlink_writer_queue(&c->out, msg, len);
        if (r < 0)
                return r;
        before = c->out.pending;
        r = varlink_writer_flush(&c->out, c->src.fd);
        conn_charge(c);
        if (r < 0)
                return r;
        if (c->out.pending < before)
                atomic_store(&c->last_activity, now_usec());
        return 0;
}

/* Whether a reply of c may pass another fd: below the bound, or the peer has read all that
 * was sent (the socket's unread bytes, SIOCOUTQ, are none), and with it every fd. */
static bool conn_fd_room(struct conn *c) {
        int unread;

        if (c->fds_in_flight >= FDS_IN_FLIGHT_MAX && c->out.pending == 0 &&
            ioctl(c->src.fd, SIOCOUTQ, &unread) == 0 && unread == 0)
                c->fds_in_flight = 0;
        return c->fds_in_flight < FDS_IN_FLIGHT_MAX;
}

/* Parses and answers one call, on this thread. */
static void conn_handle_message(struct conn *c, const char *msg, size_t len) {
        struct server *s = c->server;
        struct reply_stream stream = { .emit = conn_emit, .userdata = c };
        struct method_context ctx = {
                .engine = s->engine, .file_pool = s->file_pool, .limits = &s->cfg->limits, .stats = &s->stats,
                .client = &c->client, .cache = &c->target, .stream = &stream,
        };
        struct varlink_call call = {};
        _cleanup_close_ int fd = -1;
        const char *bad = NULL, *error;
        char *reply;
        size_t rlen;
        int r;

        atomic_fetch_add(&s->stats.requests, 1);
        /* json-c spends some 80 bytes and real time on every value: a message of MaxMessageSize
         * made of "1," would cost a thread most of a second and the daemon over a hundred
         * MiB, per client. No call needs more values than MaxAddresses and a few: refuse the
         * rest before parsing. */
        if (json_values_bound(msg, len) > s->cfg->limits.max_addresses + CALL_VALUES_SLACK) {
                conn_reply_now(c, MEMMAPD_ERROR_LIMIT_EXCEEDED, "limit", "max_addresses",
                               (int64_t) s->cfg->limits.max_addresses, true);
                return;
        }
        /* Before parsing, which costs more than the check (even a oneway call is answered:
         * the client sent more than it may have answered). */
        ctx.output_max = conn_reply_room(c, &ctx.output_limit, &ctx.output_limit_value);
        if (ctx.output_max < REPLY_ROOM_MIN && len > REPLY_ROOM_MIN) {
                conn_reply_now(c, MEMMAPD_ERROR_LIMIT_EXCEEDED, "limit", ctx.output_limit,
                               (int64_t) ctx.output_limit_value, true);
                atomic_store(&c->last_activity, now_usec());
                return;
        }
        r = memmapd_call_parse(msg, len, s->cfg->limits.max_json_depth, &call, &bad);
        if (r == -EINVAL) {
                conn_reply_now(c, VARLINK_ERROR_INVALID_PARAMETER, "parameter", bad ? bad : "", 0, false);
                return;
        }
        if (r < 0) {
                /* Not a Varlink message at all: there is no call to answer, so hang up. */
                log_debug("Closing connection of pid %d: malformed message", (int) c->client.pid);
                atomic_fetch_add(&s->stats.errors, 1);
                c->closing = true;
                return;
        }

        /* Only a reply someone reads may carry an fd. */
        ctx.reply_fd = call.oneway ? NULL : &fd;
        if (!call.oneway && !conn_fd_room(c))
                ctx.reply_fd_limit = FDS_IN_FLIGHT_MAX;
        if (call.oneway) {
                ctx.stream = NULL;
                if (!conn_oneway_allowed(c)) {
                        atomic_fetch_add(&s->stats.oneway_skipped, 1);
                        atomic_store(&c->last_activity, now_usec());
                        varlink_call_done(&call);
                        return;
                }
        }
        ctx.output_max = MAX(ctx.output_max, (size_t) REPLY_ROOM_MIN);
        r = method_dispatch(&ctx, &call, &reply, &rlen, &error);
        if (r < 0) {
                log_warning_errno(r, "Cannot answer %s for pid %d", call.method, (int) c->client.pid);
                c->closing = true;
        } else {
                count_reply(s, error);
                if (error)
                        log_debug("%s from pid %d: %s", call.method, (int) c->client.pid, error);
                c->turn_bytes += rlen;
                if (call.oneway)
                        free(reply);
                else {
                        c->fds_in_flight += fd >= 0;
                        conn_queue(c, reply, rlen, TAKE_FD(fd));
                }
                conn_charge(c);
        }
        atomic_store(&c->last_activity, now_usec());
        varlink_call_done(&call);
}

/* Ends c's turn with calls still buffered: c goes behind the others that are ready (an
 * unprivileged client behind its user's parked connections, its user behind the other users)
 * and is served again without waiting for its socket. c must not be touched afterwards. */
static void conn_yield(struct conn *c) {
        struct server *s = c->server;

        conn_charge(c);
        pthread_mutex_lock(&s->lock);
        if (c->client.privileged)
                ready_push_locked(s, c, 0);
        else
                park_locked(s, c, 0);
        pthread_mutex_unlock(&s->lock);
}

/* Called by the connection's owner once its complete calls are answered: whether the request
 * it is still reading has outgrown what its budget leaves. A request being read is held like
 * output (conn_charge()); reading on past the budget would let MaxConnectionsPerUser x
 * MaxMessageSize (128 x 4 MiB) in for one user. Small ones always may grow to REPLY_ROOM_MIN. */
static bool conn_partial_over_budget(struct conn *c, const char **ret_limit, uint64_t *ret_value) {
        if (!varlink_reader_has_partial(&c->in) || c->in.allocated <= REPLY_ROOM_MIN)
                return false;
        conn_charge(c);
        return conn_reply_room(c, ret_limit, ret_value) < REPLY_ROOM_MIN;
}

/* Answers the calls a connection has buffered, in order, writes what is queued, and then
 * closes or re-arms it. */
static void conn_dispatch(struct conn *c) {
        struct server *s = c->server;
        bool turn_over = false;
        int r;

again:
        while (!c->closing && c->out.pending < OUTPUT_HIGH_WATER) {
                if (c->turn_calls >= CALLS_PER_TURN || c->turn_bytes >= TURN_OUTPUT_MAX) {
                        turn_over = true;
                        break;
                }
                const char *msg;
                size_t len;

                r = varlink_reader_next(&c->in, &msg, &len);
                if (r == 0)
                        break;
                if (r == -EMSGSIZE) {
                        conn_reply_now(c, MEMMAPD_ERROR_LIMIT_EXCEEDED, "limit", "max_message_size",
                                       (int64_t) s->cfg->limits.max_message_size, true);
                        c->closing = true;
                        break;
                }
                if (r < 0) {
                        c->closing = true;
                        break;
                }
                c->turn_calls++;
                conn_handle_message(c, msg, len);
        }

        if (c->eof && !c->closing && !turn_over && c->out.pending < OUTPUT_HIGH_WATER) {
                const char *msg;
                size_t len;

                /* Half-closed: everything complete has been answered above; what remains is
                 * at most a message that will never be finished. */
                if (varlink_reader_next(&c->in, &msg, &len) == 0)
                        c->closing = true;
        }

        if (!c->closing && !turn_over && c->out.pending < OUTPUT_HIGH_WATER) {
                const char *limit;
                uint64_t value;

                /* Refused, not paused: nothing would wake it when the budget frees, and the
                 * client learns which limit it met. */
                if (conn_partial_over_budget(c, &limit, &value)) {
                        conn_reply_now(c, MEMMAPD_ERROR_LIMIT_EXCEEDED, "limit", limit ?: "output_budget",
                                       (int64_t) value, true);
                        c->closing = true;
                }
        }

        if (c->out.pending > 0) {
                bool was_blocked = c->out.pending >= OUTPUT_HIGH_WATER;
                size_t before = c->out.pending;

                r = varlink_writer_flush(&c->out, c->src.fd);
                if (r < 0) {
                        log_debug_errno(r, "Closing connection of pid %d", (int) c->client.pid);
                        conn_close(c);
                        return;
                }
                /* Only output taken (or a call completed) shows the client is alive: bytes
                 * that complete no call do not (a byte every few seconds kept connections
                 * past IdleTimeoutSec). */
                if (c->out.pending < before)
                        atomic_store(&c->last_activity, now_usec());
                /* Output held back the calls buffered behind it: take them now. */
                if (was_blocked && !turn_over && c->out.pending < OUTPUT_HIGH_WATER)
                        goto again;
        }
        if (turn_over && !c->closing && c->out.pending < OUTPUT_HIGH_WATER) {
                conn_yield(c);
                return;
        }
        conn_release(c);
}

static void conn_on_io(struct conn *c, uint32_t events) {
        /* Pairs with the store in conn_release(): whatever the previous owner did to the
         * connection happened before (epoll hands it over, but the C memory model and
         * ThreadSanitizer only know about atomics). */
        (void) atomic_exchange(&c->busy, true);
        if (events & EPOLLIN) {
                for (int i = 0; i < READS_PER_WAKEUP; i++) {
                        ssize_t n = varlink_reader_read_fd(&c->in, c->src.fd);

                        if (n > 0)
                                continue;
                        if (n == 0)
                                c->eof = true;
                        else if (n == -EMSGSIZE) {
                                /* Answer what came complete before the oversize one, then it. */
                                break;
                        } else if (n != -EAGAIN) {
                                conn_close(c);
                                return;
                        }
                        break;
                }
        } else if (events & (EPOLLHUP | EPOLLERR)) {
                if (c->out.pending == 0) {
                        conn_close(c);
                        return;
                }
                c->eof = true;
        }
        if (events & EPOLLRDHUP && !(events & EPOLLIN))
                c->eof = true;
        conn_dispatch(c);
}

/* Serves one turn of c, which this thread owns: woken by epoll for events, or taken off the
 * ready list. slot_held: an unprivileged client's slot was passed on with it. */
static void conn_turn(struct conn *c, uint32_t events, bool slot_held) {
        struct server *s = c->server;
        bool unprivileged = !c->client.privileged;
        struct account *a = c->account;

        /* Parked or ready, it waits for the daemon, not idle. */
        (void) atomic_exchange(&c->busy, true);
        if (unprivileged && !slot_held && !slot_take(c, events))
                return;
        c->turn_calls = 0;
        c->turn_bytes = 0;
        conn_on_io(c, events);
        /* c may be gone, or another thread's. */
        if (unprivileged)
                slot_release(s, a);
}

/* A connection was put on the ready list: one count of the eventfd each. */
static void on_ready(struct server *s) {
        struct conn *c;
        uint64_t v;

        if (read(s->ready_src.fd, &v, sizeof(v)) != sizeof(v))
                return;         /* another thread took it */
        pthread_mutex_lock(&s->lock);
        c = s->ready_head;
        if (c) {
                s->ready_head = c->queue_next;
                if (!s->ready_head)
                        s->ready_tail = NULL;
        }
        pthread_mutex_unlock(&s->lock);
        if (c)
                conn_turn(c, c->resume_events, !c->client.privileged);
}

/* ------------------------------------------------------------------ listening (under lock) */

/* Refused connections come as fast as a client can connect: log the first of each second
 * and how many went unlogged, so no local user can flood the journal. */
static bool refusal_log_allowed(struct server *s) {
        uint64_t now = now_usec();

        if (now - s->last_refusal_log < 1000000u) {
                s->refusals_unlogged++;
                return false;
        }
        if (s->refusals_unlogged > 0)
                log_warning("%" PRIu64 " more connection(s) were refused in the last second", s->refusals_unlogged);
        s->last_refusal_log = now;
        s->refusals_unlogged = 0;
        return true;
}

/* Takes one connection off the backlog. Returns true when the listener may have more. */
static bool accept_one(struct server *s, int listen_fd) {
        _cleanup_close_ int fd = -1;
        _cleanup_(client_done) struct client peer = {};
        struct account *a;
        struct conn *c;
        int r;

        fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE) {
                        /* Out of fds: free the reserve to take the connection off the backlog
                         * and close it, rather than spinning on a listener that stays ready. */
                        closep(&s->reserve_fd);
                        s->reserve_fd = -1;
                        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                        closep(&fd);
                        fd = -1;
                        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                        if (refusal_log_allowed(s))
                                log_warning("Out of file descriptors: refused a connection");
                        /* Another thread took the freed fd first: without a reserve the
                         * listener would stay ready and spin. Look again at the next tick. */
                        if (s->reserve_fd < 0)
                                s->listen_paused = true;
                } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        log_warning_errno(errno, "accept() failed");
                return false;
        }
        r = client_from_socket(fd, s->allowed_gids, s->n_allowed_gids, &peer);
        if (r < 0) {
                log_warning_errno(r, "Cannot identify a client (SO_PEERCRED)");
                return true;
        }
        if (s->n_conns >= s->cfg->limits.max_connections) {
                if (refusal_log_allowed(s))
                        log_warning("Refusing a connection of pid %d: %zu connections (MaxConnections)", (int) peer.pid,
                                    s->n_conns);
                return true;
        }
        /* The last ReservedConnections (at most half of MaxConnections, so that a small
         * MaxConnections leaves others some) are for root and AllowGroups members: however
         * many uids others own, those still connect. */
        if (!peer.privileged &&
            s->n_unprivileged + MIN(s->cfg->limits.reserved_connections, s->cfg->limits.max_connections / 2) >=
                    s->cfg->limits.max_connections) {
                if (refusal_log_allowed(s))
                        log_warning("Refusing a connection of uid %u: %zu unprivileged connections "
                                    "(MaxConnections less ReservedConnections)", (unsigned) peer.uid, s->n_unprivileged);
                return true;
        }
        /* Counted per user namespace owner: the uids of one /etc/subuid range are one user. */
        a = account_get(s, peer.owner);
        if (!a)
                return false;
        if (a->n_conns >= s->cfg->limits.max_connections_per_uid) {
                if (refusal_log_allowed(s))
                        log_notice("Refusing a connection of uid %u (user %u): MaxConnectionsPerUser reached",
                                   (unsigned) peer.uid, (unsigned) peer.owner);
                return true;
        }

        c = calloc(1, sizeof(*c));
        if (!c) {
                account_put(s, a);
                return false;
        }
        c->src = (struct source) { .type = SOURCE_CONN, .fd = fd };
        c->server = s;
        c->client = peer;
        peer = (struct client) {};
        c->account = a;
        a->n_conns++;
        if (!c->client.privileged)
                s->n_unprivileged++;
        c->oneway_tokens = ONEWAY_BURST_CONN;
        c->oneway_refill_usec = now_usec();
        atomic_init(&c->busy, false);
        atomic_init(&c->last_activity, now_usec());
        varlink_reader_init(&c->in, s->cfg->limits.max_message_size);
        varlink_writer_init(&c->out);

        /* Listed and counted before it is armed: once armed, another thread may answer it
         * (GetStatus counts it) or close it, which takes the lock we hold. */
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        atomic_store(&s->stats.connections, s->n_conns);
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = &c->src };
        if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                log_warning_errno(errno, "epoll_ctl() failed");
                s->conns = c->next;
                if (s->conns)
                        s->conns->prev = NULL;
                s->n_conns--;
                if (!c->client.privileged)
                        s->n_unprivileged--;
                a->n_conns--;
                account_put(s, a);
                atomic_store(&s->stats.connections, s->n_conns);
                conn_free(c);
                return false;
        }
        TAKE_FD(fd);
        return true;
}

static void on_listener(struct server *s, struct source *src) {
        pthread_mutex_lock(&s->lock);
        /* Closed by a shutdown while this event waited for the lock. */
        if (!s->shutting_down && src->fd >= 0) {
                for (unsigned i = 0; i < ACCEPTS_PER_WAKEUP; i++)
                        if (!accept_one(s, src->fd))
                                break;
                if (!s->listen_paused)
                        (void) source_arm(s, src, EPOLLIN);
        }
        pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------------ lifecycle */

static void stop_listening(struct server *s) {
        for (size_t i = 0; i < s->n_listen; i++) {
                epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, s->listen[i].fd, NULL);
                closep(&s->listen[i].fd);
                s->listen[i].fd = -1;
        }
        if (s->owned_socket_path) {
                unlink(s->owned_socket_path);
                free(s->owned_socket_path);
                s->owned_socket_path = NULL;
        }
}

/* Under lock. */
static void begin_shutdown(struct server *s) {
        if (s->shutting_down)
                return;
        s->shutting_down = true;
        s->shutdown_deadline = now_usec() + SHUTDOWN_TIMEOUT_USEC;
        sd_notify(0, "STOPPING=1\nSTATUS=Finishing replies in flight");
        log_info("Shutting down: finishing %zu connection(s)", s->n_conns);
        stop_listening(s);
        if (s->n_conns == 0) {
                request_stop(s);
                return;
        }
        /* No new calls: each connection's owner answers what was already sent, sees the end
         * of its input and closes it. */
        for (struct conn *c = s->conns; c; c = c->next)
                (void) shutdown(c->src.fd, SHUT_RD);
}

static void on_signal(struct server *s) {
        struct signalfd_siginfo si;

        while (read(s->signal_src.fd, &si, sizeof(si)) == sizeof(si))
                log_info("Received signal %u", si.ssi_signo);
        pthread_mutex_lock(&s->lock);
        begin_shutdown(s);
        pthread_mutex_unlock(&s->lock);
        (void) source_arm(s, &s->signal_src, EPOLLIN);
}

static void on_tick(struct server *s) {
        uint64_t v, now = now_usec();
        uint64_t idle = (uint64_t) s->cfg->limits.idle_timeout_sec * 1000000u;
        bool trim = false;

        (void) !read(s->timer_src.fd, &v, sizeof(v));
        pthread_mutex_lock(&s->lock);
        if (s->watchdog_usec > 0 && now - s->last_watchdog >= s->watchdog_usec / 2) {
                sd_notify(0, "WATCHDOG=1");
                s->last_watchdog = now;
        }
        if (s->shutting_down && now >= s->shutdown_deadline)
                request_stop(s);
        {
                uint64_t requests = atomic_load(&s->stats.requests);

                /* The allocator keeps freed replies for the next call (see memmapd.c); a
                 * second without a new call gives them back. */
                if (requests != s->requests_at_tick) {
                        s->requests_at_tick = requests;
                        s->trim_pending = true;
                } else if (s->trim_pending) {
                        trim = true;
                        s->trim_pending = false;
                }
        }
        if (s->listen_paused && !s->shutting_down) {
                if (s->reserve_fd < 0)
                        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (s->reserve_fd >= 0) {
                        s->listen_paused = false;
                        for (size_t i = 0; i < s->n_listen; i++)
                                (void) source_arm(s, &s->listen[i], EPOLLIN);
                }
        }
        /* An idle connection is ended by its owner: shutting it down wakes it with a hang-up,
         * and a client that does not read its replies fails the next write. */
        for (struct conn *c = s->conns; c; c = c->next) {
                /* Owners stamp last_activity without the lock: it may be later than now. */
                uint64_t last = atomic_load(&c->last_activity);

                if (!atomic_load(&c->busy) && last < now && now - last > idle) {
                        log_debug("Closing idle connection of pid %d", (int) c->client.pid);
                        (void) shutdown(c->src.fd, SHUT_RDWR);
                }
        }
        pthread_mutex_unlock(&s->lock);
        /* Not under the lock: walking the heap takes a while. */
        if (trim)
                (void) malloc_trim(0);
        (void) source_arm(s, &s->timer_src, EPOLLIN);
}


static void *loop_main(void *userdata) {
        struct server *s = userdata;

        for (;;) {
                struct epoll_event ev;
                struct source *src;
                int n;

                n = epoll_wait(s->epoll_fd, &ev, 1, -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error_errno(errno, "epoll_wait()");
                        pthread_mutex_lock(&s->lock);
                        request_stop(s);
                        pthread_mutex_unlock(&s->lock);
                        break;
                }
                if (n == 0)
                        continue;
                src = ev.data.ptr;
                switch (src->type) {
                case SOURCE_LISTEN:
                        on_listener(s, src);
                        break;
                case SOURCE_SIGNAL:
                        on_signal(s);
                        break;
                case SOURCE_TIMER:
                        on_tick(s);
                        break;
                case SOURCE_STOP:
                        break;
                case SOURCE_READY:
                        on_ready(s);
                        break;
                case SOURCE_CONN:
                        conn_turn((struct conn *) src, ev.events, false);
                        break;
                }
                if (atomic_load(&s->stopping)) {
                        request_stop(s);
                        break;
                }
        }
        return NULL;
}

static void *thread_main(void *userdata) {
        sigset_t all;

        /* Signals belong to the signalfd. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);
        return loop_main(userdata);
}

static int add_source(struct server *s, struct source *src, bool oneshot) {
        struct epoll_event ev = { .events = EPOLLIN | (oneshot ? EPOLLONESHOT : 0), .data.ptr = src };

        return epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, src->fd, &ev) < 0 ? -errno : 0;
}

static int bind_socket(struct server *s, const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        char *slash;
        struct stat st;
        mode_t old;
        int r;

        if (!dir)
                return -ENOMEM;
        if (strlen(path) >= sizeof(sa.sun_path))
                return log_error_errno(ENAMETOOLONG, "Socket path %s", path);
        strcpy(sa.sun_path, path);

        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = 0;
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return log_error_errno(errno, "Cannot create %s", dir);
        }

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "socket()");

        /* A socket file left by a dead daemon refuses connections: replace it. A live one
         * answers: do not steal its path. */
        if (lstat(path, &st) >= 0) {
                _cleanup_close_ int probe = -1;

                if (!S_ISSOCK(st.st_mode))
                        return log_error_errno(EEXIST, "%s exists and is not a socket", path);
                probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe >= 0 && connect(probe, (struct sockaddr *) &sa, sizeof(sa)) >= 0)
                        return log_error_errno(EADDRINUSE, "Another memmapd listens on %s", path);
                unlink(path);
        }

        /* Access is decided per client, so anyone may connect. */
        old = umask(0111);
        r = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
        umask(old);
        if (r < 0)
                return log_error_errno(errno, "Cannot bind %s", path);
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "listen()");

        s->owned_socket_path = strdup(path);
        if (!s->owned_socket_path)
                return -ENOMEM;
        s->listen[0] = (struct source) { .type = SOURCE_LISTEN, .fd = TAKE_FD(fd) };
        s->n_listen = 1;
        log_info("Listening on %s", path);
        return 0;
}

/* The sockets the service manager passed (LISTEN_FDS), each checked: a listening Unix stream
 * socket. Returns their number (0: none passed), or -errno after logging what is wrong with
 * which fd: the daemon cannot serve, and the log is all the operator gets. */
static int take_activated_sockets(struct server *s) {
        /* sd_listen_fds() unsets the variable even when it fails: kept to say what was asked. */
        char listen_fds[24];
        snprintf(listen_fds, sizeof(listen_fds), "%s", getenv("LISTEN_FDS") ?: "");
        int n = sd_listen_fds(true);

        if (n < 0) {
                /* A malformed count, or an fd that is not open: sd_listen_fds() sets FD_CLOEXEC on
                 * each and stops at the first that fails, without saying which. Find it (a count
                 * beyond what is taken gets the general message). */
                char *end;
                unsigned long count = strtoul(listen_fds, &end, 10);

                if (*listen_fds >= '0' && *listen_fds <= '9' && *end == 0 && count <= LISTEN_FDS_MAX)
                        for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + (int) count; fd++)
                                if (fcntl(fd, F_GETFD) < 0)
                                        return log_error_errno(errno, "Passed fd %d (LISTEN_FDS=%s) is not open",
                                                               fd, listen_fds);
                return log_error_errno(n, "Cannot take the sockets passed by the service manager (LISTEN_FDS=%s)",
                                       listen_fds);
        }
        if (n == 0)
                return 0;
        if (n > LISTEN_FDS_MAX) {
                log_error("Too many sockets passed: %d, at most %d", n, LISTEN_FDS_MAX);
                return -EINVAL;
        }
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i, flags, r;

                r = sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0);
                if (r < 0)
                        return log_error_errno(r, "Cannot check passed fd %d", fd);
                if (r == 0) {
                        /* Say what it is instead, so that a wrong unit file can be told apart from a
                         * socket that lost its listen(). */
                        int domain = 0, type = 0;
                        socklen_t len = sizeof(int);
                        struct stat st;
                        char what[96];

                        if (fstat(fd, &st) < 0)
                                return log_error_errno(errno, "Cannot check passed fd %d", fd);
                        if (!S_ISSOCK(st.st_mode))
                                snprintf(what, sizeof(what), "not a socket but %s",
                                         S_ISREG(st.st_mode) ? "a regular file" : S_ISDIR(st.st_mode) ? "a directory" :
                                         S_ISCHR(st.st_mode) ? "a character device" :
                                         S_ISBLK(st.st_mode) ? "a block device" :
                                         S_ISFIFO(st.st_mode) ? "a pipe" : "another kind of file");
                        else if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX)
                                snprintf(what, sizeof(what), "a socket of address family %d, not AF_UNIX", domain);
                        else if ((len = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len)) < 0 ||
                                 type != SOCK_STREAM)
                                snprintf(what, sizeof(what), "a Unix socket of type %d (%s), not SOCK_STREAM", type,
                                         type == SOCK_DGRAM ? "SOCK_DGRAM" :
                                         type == SOCK_SEQPACKET ? "SOCK_SEQPACKET" : "other");
                        else
                                snprintf(what, sizeof(what), "a Unix stream socket that is not listening");
                        log_error("Passed fd %d (LISTEN_FDS=%s) is not a listening Unix stream socket: it is %s",
                                  fd, listen_fds, what);
                        return -EINVAL;
                }
                if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || (flags = fcntl(fd, F_GETFL)) < 0 ||
                    fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                        return log_error_errno(errno, "fcntl() on passed fd %d", fd);
                s->listen[s->n_listen++] = (struct source) { .type = SOURCE_LISTEN, .fd = fd };
        }
        log_info("Using %d socket(s) passed by the service manager", n);
        return n;
}

int server_new(const struct config *cfg, struct engine *engine, struct file_pool *file_pool, struct server **ret) {
        struct server *s;
        sigset_t mask;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (struct server) {
                .cfg = cfg,
                .engine = engine,
                .file_pool = file_pool,
                .epoll_fd = -1,
                .reserve_fd = -1,
                .signal_src = { SOURCE_SIGNAL, -1 },
                .timer_src = { SOURCE_TIMER, -1 },
                .stop_src = { SOURCE_STOP, -1 },
                .ready_src = { SOURCE_READY, -1 },
                /* Half the threads, so that root and AllowGroups members always find one. */
                .unprivileged_slots = MAX(cfg->workers / 2, 1u),
                .user_slots = MAX(cfg->workers / 4, 1u),
        };
        pthread_mutex_init(&s->lock, NULL);
        atomic_init(&s->stopping, false);
        s->stats.start_usec = now_usec();

        if (cfg->allow_groups_set) {
                size_t unknown;

                resolve_groups(cfg->allow_groups, cfg->n_allow_groups, s->allowed_gids, &s->n_allowed_gids, &unknown);
                if (unknown > 0)
                        log_warning("%zu group(s) of AllowGroups= do not exist and grant nothing", unknown);
        } else {
                /* By default the group "memmapd", where the system has one. */
                char *def[] = { (char *) "memmapd" };

                resolve_groups(def, 1, s->allowed_gids, &s->n_allowed_gids, NULL);
        }

        r = take_activated_sockets(s);
        if (r == 0) {
                _cleanup_free_ char *def = NULL;
                const char *path = cfg->socket_path;

                if (!path) {
                        r = config_default_socket_path(&def);
                        if (r < 0) {
                                log_error_errno(r, "No socket given and no default (XDG_RUNTIME_DIR unset)");
                                goto fail;
                        }
                        path = def;
                }
                r = bind_socket(s, path);
        }
        if (r < 0)
                goto fail;

        s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        s->stop_src.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        s->ready_src.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
        s->timer_src.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        s->signal_src.fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (s->epoll_fd < 0 || s->stop_src.fd < 0 || s->ready_src.fd < 0 || s->timer_src.fd < 0 || s->signal_src.fd < 0) {
                r = log_error_errno(errno, "Cannot set up the event loop");
                goto fail;
        }

        for (size_t i = 0; i < s->n_listen; i++)
                if ((r = add_source(s, &s->listen[i], true)) < 0)
                        goto fail;
        if ((r = add_source(s, &s->signal_src, true)) < 0 || (r = add_source(s, &s->timer_src, true)) < 0 ||
            (r = add_source(s, &s->stop_src, false)) < 0 || (r = add_source(s, &s->ready_src, false)) < 0) {
                log_error_errno(r, "epoll_ctl()");
                goto fail;
        }

        if (sd_watchdog_enabled(false, &s->watchdog_usec) <= 0)
                s->watchdog_usec = 0;
        uint64_t tick = TICK_USEC;
        if (s->watchdog_usec > 0 && s->watchdog_usec / 4 < tick)
                tick = MAX(s->watchdog_usec / 4, (uint64_t) 1000);
        struct itimerspec its = {
                .it_interval = { .tv_sec = (time_t) (tick / 1000000u), .tv_nsec = (long) (tick % 1000000u) * 1000 },
        };
        its.it_value = its.it_interval;
        if (timerfd_settime(s->timer_src.fd, 0, &its, NULL) < 0) {
                r = log_error_errno(errno, "timerfd_settime()");
                goto fail;
        }

        *ret = s;
        return 0;
fail:
        server_free(s);
        return r;
}

int server_run(struct server *s) {
        unsigned extra = s->cfg->workers > 0 ? s->cfg->workers - 1 : 0;
        int r = 0;

        s->threads = calloc(MAX(extra, 1u), sizeof(pthread_t));
        if (!s->threads)
                return log_error_errno(ENOMEM, "Cannot start threads");
        for (unsigned i = 0; i < extra; i++) {
                int k = pthread_create(&s->threads[i], NULL, thread_main, s);

                if (k != 0) {
                        r = log_error_errno(k, "Cannot start threads");
                        break;
                }
                s->n_threads++;
        }

        if (r >= 0) {
                sd_notifyf(0, "READY=1\nSTATUS=Serving with backend %s",
                           engine_backend_to_string(engine_get_backend(s->engine)));
                pthread_mutex_lock(&s->lock);
                if (s->watchdog_usec > 0) {
                        sd_notify(0, "WATCHDOG=1");
                        s->last_watchdog = now_usec();
                }
                pthread_mutex_unlock(&s->lock);
                /* This thread serves too. */
                loop_main(s);
        } else
                request_stop(s);

        for (unsigned i = 0; i < s->n_threads; i++)
                pthread_join(s->threads[i], NULL);
        s->n_threads = 0;
        return r;
}

struct server *server_free(struct server *s) {
        if (!s)
                return NULL;
        /* No thread runs any more (server_run() joined them): whatever is left is closed here. */
        while (s->conns)
                conn_close(s->conns);
        pthread_mutex_lock(&s->lock);
        stop_listening(s);
        pthread_mutex_unlock(&s->lock);
        free(s->threads);
        closep(&s->epoll_fd);
        closep(&s->reserve_fd);
        closep(&s->signal_src.fd);
        closep(&s->stop_src.fd);
        closep(&s->ready_src.fd);
        closep(&s->timer_src.fd);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}
