/* One client connection: reading calls, answering them on the owning thread, writing replies, turns and closing. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "memmapd-codec.h"
#include "server-internal.h"
#include "time-util.h"
#include "varlink.h"

/* Reads per wake-up of one connection, so one busy client cannot starve the rest. */
#define READS_PER_WAKEUP 8
/* Stop taking a client's next call while this much output waits for it to read. */
#define OUTPUT_HIGH_WATER (256 * 1024)
/* A turn: what one connection gets before the others ready are served. A pipeline of calls
 * from one client would otherwise hold a worker until it ended (four connections pipelining
 * big listings stopped everyone for a minute). */
#define CALLS_PER_TURN 4
#define TURN_OUTPUT_MAX (1024 * 1024)
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

/* ------------------------------------------------------------------ connections */

void conn_free(struct conn *c) {
        target_cache_clear(&c->target);
        client_done(&c->client);
        varlink_reader_done(&c->in);
        varlink_writer_done(&c->out);
        free(c);
}

/* Called by the connection's owner (or once no thread runs). */
void conn_close(struct conn *c) {
        struct server *s = c->server;

        server_watch_end(c);
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
                .tracking = s->tracking, .store = s->store, .events = s->events, .find = s->find,
                .retention = s->retention,
        };
        struct varlink_call call = {};
        struct watch_request watch = {};
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
        ctx.watch = call.oneway ? NULL : &watch;
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
                if (watch.requested && !error) {
                        /* The connection becomes a watcher: its first reply goes first. */
                        r = server_watch_begin(c, &watch, reply, rlen);
                        if (r == -EUSERS)
                                conn_reply_now(c, MEMMAPD_ERROR_LIMIT_EXCEEDED, "limit", "watchers",
                                               c->client.privileged ? 256 : 16, true);
                        else if (r == -ENOBUFS)
                                conn_reply_now(c, MEMMAPD_ERROR_LIMIT_EXCEEDED, "limit", "output_budget",
                                               (int64_t) s->cfg->limits.output_budget, true);
                        else if (r < 0) {
                                log_warning_errno(r, "Cannot start Watch for pid %d", (int) c->client.pid);
                                c->closing = true;
                        }
                } else if (call.oneway)
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
        while (!c->closing && !c->watch && c->out.pending < OUTPUT_HIGH_WATER) {
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

        /* No call may follow Watch on its connection. */
        if (c->watch && varlink_reader_has_partial(&c->in))
                c->closing = true;

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
void conn_turn(struct conn *c, uint32_t events, bool slot_held) {
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
void on_ready(struct server *s) {
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
