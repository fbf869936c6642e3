/* Watch streams: process events queued per watching connection on the loop, checked against the client's access and written by whichever thread the socket wakes, never holding one while the client is slow. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <fcntl.h>
#include <unistd.h>

#include "access-decision.h"
#include "cleanup.h"
#include "exec-history.h"
#include "log.h"
#include "methods-internal.h"
#include "process.h"
#include "retention.h"
#include "server-internal.h"
#include "time-util.h"
#include "tracking.h"
#include "watch.h"

/* Design. A watching connection keeps its own source for its hang-up (server-conn.c); the
 * watch writes through a second registration of the same socket (a dup), SOURCE_WATCH, armed
 * for EPOLLOUT only while it has something to write. Its state, under the watch's lock:
 *   IDLE    nothing to write: not armed. The loop's listener queues an event and arms it.
 *   ARMED   armed: the thread that takes the event moves it to WRITING.
 *   WRITING a thread writes: it arms it again (ARMED) or leaves it IDLE.
 * Only the IDLE -> ARMED step arms, so the source never has two owners. The watch is
 * referenced by its connection and by the state ARMED/WRITING; the last reference frees it.
 * A closing connection shuts the socket down, so an armed source always fires (EPOLLHUP). */
enum watch_state { WATCH_IDLE, WATCH_ARMED, WATCH_WRITING };

/* Watching connections: per user (unprivileged), and in all. */
#define WATCHERS_PER_USER 16
#define WATCHERS_MAX 256
/* How often the mappings of a watched pid are compared with the tracker's change generation
 * while the kernel's capture of mappings is not there to send them (issue 15, part A). */
#define WATCH_POLL_USEC 10000
/* A watched pid's yes is asked again this often, so that its exit, when the process cannot be
 * asked any more, always finds one made within ACCESS_RETAINED_USEC (unprivileged clients). */
#define WATCH_REFRESH_USEC (ACCESS_RETAINED_USEC / 4)
/* Access decisions a watch keeps (processes it was asked about recently). */
#define WATCH_DECISIONS 256

struct watch_decision {
        pid_t pid;                      /* 0: free */
        uint64_t start_time;
        bool allowed;
        struct access_decision d;       /* allowed: the kernel's yes */
        uint64_t decided_usec;
};

struct watch {
        struct source src;              /* first: epoll data points here */
        struct server *server;
        struct watch *prev, *next;      /* in server->watches, under watch_lock */
        struct client client;           /* a copy: the watch may outlive its connection a little */
        pid_t pid;                      /* 0: every process */
        uint64_t start_time;

        pthread_mutex_t lock;
        /* Under lock. */
        enum watch_state state;
        unsigned refs;
        bool closed;
        struct watch_queue queue;
        bool changed;                   /* pid's change generation moved (the poll) */
        uint64_t generation;            /* as last seen by the poll */
        bool refresh;                   /* pid's access decision is to be made again */
        uint64_t refreshed_usec;        /* when the poll last asked for that */

        /* Owned by the writing thread. */
        struct varlink_writer out;
        struct watch_decision decisions[WATCH_DECISIONS];
        size_t next_decision;
        struct watch_mapping *known;    /* pid: its executable file mappings as last sent */
        size_t n_known;
        bool broken;                    /* the socket failed: write nothing more */
};

static void watch_free(struct watch *w) {
        struct server *s = w->server;

        if (w->src.fd >= 0) {
                epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, w->src.fd, NULL);
                close(w->src.fd);
        }
        watch_queue_clear(&w->queue);
        watch_mappings_free(w->known, w->n_known);
        varlink_writer_done(&w->out);
        client_done(&w->client);
        pthread_mutex_destroy(&w->lock);
        free(w);
}

/* Under watch_lock: takes w off the list *head (s->watches or s->ending). */
static void watch_unlink(struct watch **head, struct watch *w) {
        if (w->prev)
                w->prev->next = w->next;
        else if (*head == w)
                *head = w->next;
        if (w->next)
                w->next->prev = w->prev;
        w->prev = w->next = NULL;
}

/* Under watch_lock: puts w first on the list *head. */
static void watch_link(struct watch **head, struct watch *w) {
        w->prev = NULL;
        w->next = *head;
        if (*head)
                (*head)->prev = w;
        *head = w;
}

/* Frees w, whose connection ended (it is on the ending list): its last reference went. */
static void watch_release(struct watch *w) {
        struct server *s = w->server;

        pthread_mutex_lock(&s->watch_lock);
        watch_unlink(&s->ending, w);
        pthread_mutex_unlock(&s->watch_lock);
        watch_free(w);
}

/* Under w->lock: drops a reference; whether it was the last (the caller frees w, unlocked). */
static bool watch_unref_locked(struct watch *w) {
        return --w->refs == 0;
}

/* Under w->lock: something waits to be written; arms the source unless a thread has it. */
static void watch_wake_locked(struct watch *w) {
        struct epoll_event ev = { .events = EPOLLOUT | EPOLLONESHOT, .data.ptr = &w->src };

        if (w->state != WATCH_IDLE || w->closed)
                return;
        if (epoll_ctl(w->server->epoll_fd, EPOLL_CTL_MOD, w->src.fd, &ev) < 0)
                return;         /* cannot happen for a registered fd; the next event tries again */
        w->state = WATCH_ARMED;
        w->refs++;
}

static bool watch_wants(const struct watch *w, const struct proc_event *e) {
        if (w->pid == 0)
                return true;
        if (e->type == PROC_EVENT_FORK && e->parent == w->pid)
                return true;
        return e->pid == w->pid && e->start_time == w->start_time;
}

/* The listener, on the loop under the events hub's lock: copies, never blocks. */
static void on_proc_event(const struct proc_event *e, void *userdata) {
        struct server *s = userdata;

        pthread_mutex_lock(&s->watch_lock);
        for (struct watch *w = s->watches; w; w = w->next) {
                if (!watch_wants(w, e))
                        continue;
                pthread_mutex_lock(&w->lock);
                (void) watch_queue_push(&w->queue, watch_record_new(e));
                watch_wake_locked(w);
                pthread_mutex_unlock(&w->lock);
        }
        pthread_mutex_unlock(&s->watch_lock);
}

static void on_proc_events_lost(uint64_t n, void *userdata) {
        struct server *s = userdata;

        pthread_mutex_lock(&s->watch_lock);
        for (struct watch *w = s->watches; w; w = w->next) {
                pthread_mutex_lock(&w->lock);
                watch_queue_lost(&w->queue, n);
                watch_wake_locked(w);
                pthread_mutex_unlock(&w->lock);
        }
        pthread_mutex_unlock(&s->watch_lock);
}

int server_watch_setup(struct server *s) {
        int r;

        s->watch_poll_src = (struct source) { SOURCE_WATCH_POLL, -1 };
        if (!s->events)
                return 0;
        s->watch_poll_src.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (s->watch_poll_src.fd < 0)
                return -errno;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = &s->watch_poll_src };
        if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->watch_poll_src.fd, &ev) < 0)
                return -errno;
        r = proc_events_listen(s->events, on_proc_event, on_proc_events_lost, s);
        if (r < 0)
                return r;
        s->events_listener = r;
        return 0;
}

/* Under watch_lock: runs the poll while a pid is watched. */
static void watch_poll_set_locked(struct server *s) {
        struct itimerspec its = {};

        if (s->watch_poll_src.fd < 0 || !tracking_active(s->tracking))
                return;
        if (s->n_pid_watches > 0)
                its.it_interval.tv_nsec = its.it_value.tv_nsec = WATCH_POLL_USEC * 1000;
        (void) timerfd_settime(s->watch_poll_src.fd, 0, &its, NULL);
}

int server_watch_begin(struct conn *c, const struct watch_request *req, char *reply, size_t len) {
        struct server *s = c->server;
        _cleanup_free_ char *msg = reply;
        struct watch *w;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w) {
                watch_mappings_free(req->known, req->n_known);
                return -ENOMEM;
        }
        *w = (struct watch) {
                .src = { SOURCE_WATCH, -1 },
                .server = s,
                .pid = req->pid,
                .start_time = req->start_time,
                .state = WATCH_ARMED,
                .refs = 2,      /* the connection's, and ARMED's */
                .generation = req->generation,
                .refreshed_usec = now_usec(),
                .known = req->known,
                .n_known = req->n_known,
        };
        pthread_mutex_init(&w->lock, NULL);
        varlink_writer_init(&w->out);
        if (req->pid > 0)
                w->decisions[0] = (struct watch_decision) {
                        .pid = req->pid, .start_time = req->start_time, .allowed = true,
                        .d = req->decision, .decided_usec = req->decision.decided_usec,
                };
        r = client_copy(&c->client, &w->client);
        if (r < 0)
                goto fail;

        /* Bounds and budgets, before anything is registered. */
        pthread_mutex_lock(&s->lock);
        {
                const struct limits *l = &s->cfg->limits;
                size_t cap = c->client.privileged ? l->output_budget : l->output_budget / 4 * 3;
                size_t used = c->client.privileged ? s->held_total : s->held_unprivileged;

                if (s->n_watches >= WATCHERS_MAX ||
                    (!c->client.privileged && c->account->n_watches >= WATCHERS_PER_USER))
                        r = -EUSERS;
                else if (used + WATCH_HELD_BYTES > cap ||
                         (!c->client.privileged && c->account->held + WATCH_HELD_BYTES > l->output_budget_per_uid))
                        r = -ENOBUFS;
                else {
                        s->n_watches++;
                        c->account->n_watches++;
                }
        }
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
                goto fail;

        w->src.fd = fcntl(c->src.fd, F_DUPFD_CLOEXEC, 3);
        if (w->src.fd < 0) {
                r = -errno;
                goto fail_counted;
        }
        r = varlink_writer_queue(&w->out, TAKE_PTR(msg), len);
        if (r < 0)
                goto fail_counted;
        c->watch = w;
        atomic_store(&c->watching, true);
        c->watch_held = WATCH_HELD_BYTES;
        conn_charge(c);

        /* Registered last: from here on the listener may queue, and the first reply is the
         * first thing written. */
        pthread_mutex_lock(&s->watch_lock);
        watch_link(&s->watches, w);
        if (w->pid > 0 && s->n_pid_watches++ == 0)
                watch_poll_set_locked(s);
        pthread_mutex_unlock(&s->watch_lock);
        struct epoll_event ev = { .events = EPOLLOUT | EPOLLONESHOT, .data.ptr = &w->src };
        if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, w->src.fd, &ev) < 0) {
                /* Not armed: the connection's end frees it. */
                pthread_mutex_lock(&w->lock);
                w->state = WATCH_IDLE;
                w->refs--;
                w->closed = true;
                pthread_mutex_unlock(&w->lock);
                return -errno;
        }
        return 0;

fail_counted:
        pthread_mutex_lock(&s->lock);
        s->n_watches--;
        c->account->n_watches--;
        pthread_mutex_unlock(&s->lock);
fail:
        if (w->src.fd >= 0)
                close(w->src.fd);
        w->src.fd = -1;
        watch_free(w);
        return r;
}

void server_watch_end(struct conn *c) {
        struct server *s = c->server;
        struct watch *w = c->watch;
        bool last;

        if (!w)
                return;
        c->watch = NULL;
        pthread_mutex_lock(&s->watch_lock);
        watch_unlink(&s->watches, w);
        /* Until its last reference goes (a thread may still have to take the hang-up). */
        watch_link(&s->ending, w);
        if (w->pid > 0 && --s->n_pid_watches == 0)
                watch_poll_set_locked(s);
        pthread_mutex_unlock(&s->watch_lock);

        pthread_mutex_lock(&s->lock);
        s->n_watches--;
        c->account->n_watches--;
        pthread_mutex_unlock(&s->lock);
        c->watch_held = 0;

        pthread_mutex_lock(&w->lock);
        w->closed = true;
        /* An armed source fires on the hang-up, and its thread drops ARMED's reference. */
        if (w->state == WATCH_ARMED)
                (void) shutdown(w->src.fd, SHUT_RDWR);
        last = watch_unref_locked(w);
        if (s->freeing && w->state == WATCH_ARMED)
                /* No thread runs to take the hang-up. */
                last = watch_unref_locked(w);
        pthread_mutex_unlock(&w->lock);
        if (last)
                watch_release(w);
}

/* ------------------------------------------------------------------ the writer */

static struct watch_decision *decision_find(struct watch *w, pid_t pid, uint64_t start_time) {
        for (size_t i = 0; i < WATCH_DECISIONS; i++)
                if (w->decisions[i].pid == pid && w->decisions[i].start_time == start_time)
                        return &w->decisions[i];
        return NULL;
}

static void decision_forget(struct watch *w, pid_t pid, uint64_t start_time) {
        struct watch_decision *d = decision_find(w, pid, start_time);

        if (d && !(w->pid == pid && w->start_time == start_time))
                *d = (struct watch_decision) {};
}

/* Acts as the client for the kernel's checks (once per pass). */
static int writer_impersonate(struct watch *w, struct impersonation *imp) {
        int r;

        if (w->client.privileged || imp->active)
                return 0;
        r = impersonate_begin(&w->client, imp);
        if (r == -ENOTRECOVERABLE) {
                log_full_errno(LOG_CRIT, r, "Cannot restore worker credentials");
                abort();
        }
        return r;
}

/* Two BPF programs stamp one exec (the tracker's event, the capture's record) at the same
 * tracepoint, microseconds apart, in either order; another exec of the process takes a whole
 * execve() longer. */
#define EXEC_STAMPS_SKEW_USEC 1000

/* Whether the client may hear of r's process when the kernel can no longer be asked (it is
 * gone) and no yes was made while it lived: a short-lived process often ends before the writer
 * gets to it. With retention, what was kept of it at its exit is judged as for any retained
 * answer (retained_access_allowed()), and only for events of the program it ran last (an
 * earlier one may have been another user's, setuid say): its exec, its mappings, its exit.
 * A fork before that program's exec is decided on the parent, as the child was then a copy of
 * it. Without retention it is not heard of. */
static bool writer_gone_allowed(struct watch *w, const struct watch_record *r, struct impersonation *imp) {
        _cleanup_(exec_history_view_done) struct exec_history_view v = {};
        struct exec_history *h = retention_history(w->server->retention);
        uint64_t t = r->time_usec;

        if (!h)
                return false;
        /* Gone, the process had its exit record written (the exit tracepoint runs before the
         * kernel lets go of its address space), though perhaps not yet drained. */
        if (exec_history_get(h, r->pid, r->start_time, 0, EXEC_HISTORY_EXITED_ONLY, &v) < 0 &&
            (retention_drain(w->server->retention) < 0 ||
             exec_history_get(h, r->pid, r->start_time, 0, EXEC_HISTORY_EXITED_ONLY, &v) < 0))
                return false;
        if (r->type == PROC_EVENT_EXEC || r->type == PROC_EVENT_FORK)
                t += EXEC_STAMPS_SKEW_USEC;
        if (t >= v.program_since_usec)
                return retained_access_allowed(&w->client, &v);
        if (r->type == PROC_EVENT_FORK && r->parent > 0) {
                _cleanup_(process_freep) struct process *p = NULL;
                struct access_decision ad;

                return writer_impersonate(w, imp) >= 0 && access_decide(&w->client, r->parent, &p, &ad) >= 0 &&
                       p->start_time <= r->start_time;
        }
        return false;
}

/* Whether the client may hear of r's process: as for any query, the kernel decides with the
 * client's credentials while the process lives; a decision stands ACCESS_DECISION_USEC, and
 * for an exit, as for retained layouts, when it was made at most ACCESS_RETAINED_USEC before.
 * An exec and mappings are always decided afresh (the new program may be another user's). */
static bool writer_allowed(struct watch *w, const struct watch_record *r, struct impersonation *imp) {
        struct watch_decision *d;
        struct access_decision ad;
        uint64_t now = now_usec();
        int k;

        if (w->client.privileged)
                return true;
        d = decision_find(w, r->pid, r->start_time);
        if (r->type == PROC_EVENT_EXIT) {
                bool ok = d && d->allowed && access_decision_stands(&d->d, &w->client, r->pid, r->start_time, now,
                                                                     MAX(r->time_usec, (uint64_t) 1));
                return ok || writer_gone_allowed(w, r, imp);
        }
        /* A layout (mappings) is shown only on a decision made for it: the process may have made
         * itself not dumpable, or exec'd a setuid program (whose mappings can come before its
         * exec event: another ring buffer), since the last yes. */
        if (d && r->type != PROC_EVENT_EXEC && r->type != PROC_EVENT_MAPPINGS && now >= d->decided_usec &&
            now - d->decided_usec < ACCESS_DECISION_USEC)
                return d->allowed;
        if (writer_impersonate(w, imp) < 0)
                return false;
        {
                _cleanup_(process_freep) struct process *p = NULL;

                char c;

                k = access_decide(&w->client, r->pid, &p, &ad);
                if (k >= 0 && p->start_time != r->start_time)
                        k = -ESRCH;     /* the pid names another process now */
                /* Between releasing its address space and becoming a zombie, an exiting process's
                 * maps open for anyone (the kernel shows no mm to everybody, empty): that is no
                 * yes to hear of it; it is gone. */
                else if (k >= 0 && !p->kernel_thread && RETRY_EINTR(pread(p->maps_fd, &c, 1, 0)) == 0)
                        k = -ESRCH;
        }
        if (k == -ESRCH || k == -ENOENT)
                /* Gone: a yes made before still stands as it would for its exit. */
                return (d && d->allowed &&
                        access_decision_stands(&d->d, &w->client, r->pid, r->start_time, now, now)) ||
                       writer_gone_allowed(w, r, imp);
        if (!d) {
                d = &w->decisions[w->next_decision];
                if (d->pid == w->pid && w->pid > 0 && d->start_time == w->start_time)
                        d = &w->decisions[w->next_decision = (w->next_decision + 1) % WATCH_DECISIONS];
                w->next_decision = (w->next_decision + 1) % WATCH_DECISIONS;
        }
        *d = (struct watch_decision) {
                .pid = r->pid, .start_time = r->start_time, .allowed = k >= 0, .decided_usec = now,
        };
        if (k >= 0)
                d->d = ad;
        return k >= 0;
}

/* Asks the kernel again about the watched pid, while it lives: its yes stays recent. */
static void writer_refresh(struct watch *w, struct impersonation *imp) {
        _cleanup_(process_freep) struct process *p = NULL;
        struct watch_decision *d = decision_find(w, w->pid, w->start_time);
        struct access_decision ad;
        int k;

        if (!d || writer_impersonate(w, imp) < 0)
                return;
        k = access_decide(&w->client, w->pid, &p, &ad);
        if (k == -ESRCH || k == -ENOENT || (k >= 0 && p->start_time != w->start_time))
                return;         /* gone: the yes it had stands for its exit */
        *d = (struct watch_decision) {
                .pid = w->pid, .start_time = w->start_time, .allowed = k >= 0, .decided_usec = now_usec(),
        };
        if (k >= 0)
                d->d = ad;
}

/* The watched pid's mappings changed: what came and went since the last sent, as a record.
 * NULL when nothing (or it is gone: its exit event tells). */
static struct watch_record *writer_diff(struct watch *w, struct impersonation *imp) {
        _cleanup_(process_freep) struct process *p = NULL;
        struct watch_mapping *now_maps = NULL;
        struct access_decision ad;
        struct watch_record *r;
        size_t n = 0;
        bool oom;

        if (writer_impersonate(w, imp) < 0)
                return NULL;
        if (access_decide(&w->client, w->pid, &p, &ad) < 0 || p->start_time != w->start_time)
                return NULL;
        if (watch_list_exec_mappings(w->server->engine, p, &now_maps, &n) < 0)
                return NULL;
        r = watch_record_diff(w->pid, w->start_time, now_usec(), w->known, w->n_known, now_maps, n, &oom);
        if (r) {
                _cleanup_close_ int fd = openat(p->proc_fd, "comm", O_RDONLY | O_CLOEXEC);
                ssize_t k = fd >= 0 ? read(fd, r->comm, sizeof(r->comm) - 1) : -1;

                /* The name then, as the kernel's events carry it (without its newline). */
                if (k > 0 && r->comm[k - 1] == '\n')
                        k--;
                r->comm[MAX(k, (ssize_t) 0)] = 0;
        }
        watch_mappings_free(w->known, w->n_known);
        w->known = now_maps;
        w->n_known = n;
        return r;
}

/* Formats r (when the client may see it) into the output. */
static void writer_emit(struct watch *w, struct watch_record *r, struct impersonation *imp) {
        _cleanup_(json_writer_done) struct json_writer j;
        char *buf;
        size_t len;

        json_writer_init(&j, 0);
        if (r->dropped_before > 0) {
                watch_write_overflow(&j, r->dropped_before);
                if (json_writer_finish(&j, &buf, &len) >= 0 && varlink_writer_queue(&w->out, buf, len) < 0)
                        w->broken = true;
                json_writer_reset(&j);
        }
        if (w->pid > 0 && r->pid == w->pid && r->type == PROC_EVENT_EXEC) {
                /* All its mappings are new: the next poll sends them against none. */
                watch_mappings_free(w->known, w->n_known);
                w->known = NULL;
                w->n_known = 0;
        }
        if (!writer_allowed(w, r, imp))
                return;
        if (r->type == PROC_EVENT_EXIT)
                decision_forget(w, r->pid, r->start_time);
        watch_write_event(&j, r);
        if (json_writer_finish(&j, &buf, &len) >= 0 && varlink_writer_queue(&w->out, buf, len) < 0)
                w->broken = true;
}

void server_watch_on_io(struct server *s, struct source *src, uint32_t events) {
        struct watch *w = (struct watch *) src;
        struct impersonation imp = {};
        bool last = false, more;

        (void) s;
        pthread_mutex_lock(&w->lock);
        w->state = WATCH_WRITING;
        if (w->closed || (events & EPOLLERR))
                w->broken = true;
        pthread_mutex_unlock(&w->lock);

        while (!w->broken) {
                struct watch_record *batch[64];
                size_t n = 0;
                uint64_t dropped = 0;
                bool changed, refresh;

                if (varlink_writer_flush(&w->out, w->src.fd) < 0) {
                        w->broken = true;
                        break;
                }
                if (w->out.pending >= WATCH_OUTPUT_CHUNK)
                        break;
                pthread_mutex_lock(&w->lock);
                while (n < 64 && (batch[n] = watch_queue_pop(&w->queue)))
                        n++;
                if (n == 0) {
                        dropped = w->queue.dropped;
                        w->queue.dropped = 0;
                }
                changed = w->changed;
                w->changed = false;
                refresh = w->refresh;
                w->refresh = false;
                pthread_mutex_unlock(&w->lock);
                if (refresh)
                        writer_refresh(w, &imp);
                if (n == 0 && dropped == 0 && !changed)
                        break;
                for (size_t i = 0; i < n; i++) {
                        writer_emit(w, batch[i], &imp);
                        watch_record_free(batch[i]);
                }
                if (dropped > 0) {
                        _cleanup_(json_writer_done) struct json_writer j;
                        char *buf;
                        size_t len;

                        json_writer_init(&j, 0);
                        watch_write_overflow(&j, dropped);
                        if (json_writer_finish(&j, &buf, &len) >= 0 && varlink_writer_queue(&w->out, buf, len) < 0)
                                w->broken = true;
                }
                if (changed && n == 0) {
                        struct watch_record *r = writer_diff(w, &imp);

                        if (r) {
                                writer_emit(w, r, &imp);
                                watch_record_free(r);
                        }
                } else if (changed) {
                        /* Events first, in order: the change after them. */
                        pthread_mutex_lock(&w->lock);
                        w->changed = true;
                        pthread_mutex_unlock(&w->lock);
                }
        }
        if (imp.active && impersonate_end(&imp) < 0) {
                log_full_errno(LOG_CRIT, EPERM, "Cannot restore worker credentials");
                abort();
        }

        pthread_mutex_lock(&w->lock);
        more = !w->broken && !w->closed && (w->out.pending > 0 || !watch_queue_empty(&w->queue) || w->changed);
        if (more) {
                struct epoll_event ev = { .events = EPOLLOUT | EPOLLONESHOT, .data.ptr = &w->src };

                if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, w->src.fd, &ev) == 0)
                        w->state = WATCH_ARMED;
                else
                        more = false;
        }
        if (!more) {
                w->state = WATCH_IDLE;
                if (w->broken && !w->closed)
                        /* The connection's owner sees the hang-up and ends it. */
                        (void) shutdown(w->src.fd, SHUT_RDWR);
                last = watch_unref_locked(w);
        }
        pthread_mutex_unlock(&w->lock);
        if (last)
                watch_release(w);
}

/* Compares each watched pid's change generation with the last seen (plain loads). */
void server_watch_on_poll(struct server *s) {
        uint64_t v, now = now_usec();

        /* Where the kernel's capture publishes mapping changes (retention), they come as events
         * with the kernel's time: listing a pid on a change would only send them twice. */
        bool captured = retention_active(s->retention);

        (void) !read(s->watch_poll_src.fd, &v, sizeof(v));
        pthread_mutex_lock(&s->watch_lock);
        for (struct watch *w = s->watches; w; w = w->next) {
                struct tracking_stamp st;

                if (w->pid == 0)
                        continue;
                tracking_stamp(s->tracking, w->pid, &st);
                pthread_mutex_lock(&w->lock);
                if (!captured && st.generation != w->generation) {
                        w->generation = st.generation;
                        w->changed = true;
                        watch_wake_locked(w);
                }
                if (!w->client.privileged && now - w->refreshed_usec >= WATCH_REFRESH_USEC) {
                        w->refreshed_usec = now;
                        w->refresh = true;
                        watch_wake_locked(w);
                }
                pthread_mutex_unlock(&w->lock);
        }
        pthread_mutex_unlock(&s->watch_lock);
        struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = &s->watch_poll_src };
        (void) epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, s->watch_poll_src.fd, &ev);
}

/* No thread runs any more; before the connections are closed (which frees their watches). */
void server_watch_free_all(struct server *s) {
        s->freeing = true;
        /* Ended while armed, and the stop came before a thread took the hang-up. */
        while (s->ending)
                watch_release(s->ending);
        if (s->events_listener > 0)
                proc_events_unlisten(s->events, s->events_listener);
        s->events_listener = 0;
        if (s->watch_poll_src.fd >= 0)
                close(s->watch_poll_src.fd);
        s->watch_poll_src.fd = -1;
}
