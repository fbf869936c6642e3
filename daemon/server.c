/* The memmapd server: a pool of threads sharing one epoll loop, signals, the tick (watchdog, idle connections) and the server's life from setup to shutdown. */

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "server-internal.h"
#include "time-util.h"
#include "tracking.h"
#include "retention.h"

#define SHUTDOWN_TIMEOUT_USEC (10 * 1000000ull)
#define TICK_USEC 1000000ull
/* How long after a wake-up the tracker's events and the capture's records wake nobody (taken by
 * the drain timer instead): a fork+exit loop then costs one wake-up per this time instead of
 * three per iteration; Watch's events come at most this much later. */
#define DRAIN_DELAY_USEC 5000ull

/* Hands a source back to epoll after its event was handled. */
int source_arm(struct server *s, struct source *src, uint32_t events) {
        struct epoll_event ev = { .events = events | EPOLLONESHOT, .data.ptr = src };

        return epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, src->fd, &ev) < 0 ? -errno : 0;
}

/* Makes every thread leave its loop. The stop eventfd stays readable and each leaving thread
 * writes it once more, so the wake-ups chain through all threads sleeping in epoll_wait(). */
void request_stop(struct server *s) {
        uint64_t one = 1;

        atomic_store(&s->stopping, true);
        (void) !write(s->stop_src.fd, &one, sizeof(one));
}

/* ------------------------------------------------------------------ lifecycle */

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

                /* A watcher waits for events, however long. */
                if (atomic_load(&c->watching))
                        continue;
                if (!atomic_load(&c->busy) && last < now && now - last > idle) {
                        log_debug("Closing idle connection of pid %d", (int) c->client.pid);
                        (void) shutdown(c->src.fd, SHUT_RDWR);
                }
        }
        pthread_mutex_unlock(&s->lock);
        /* Not under the lock: walking the heap takes a while. */
        if (trim)
                (void) malloc_trim(0);
        retention_tick(s->retention);
        (void) source_arm(s, &s->timer_src, EPOLLIN);
}


static void drain_timer_arm(struct server *s);
static void on_drain_timer(struct server *s);

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
                case SOURCE_WATCH:
                        server_watch_on_io(s, src, ev.events);
                        break;
                case SOURCE_WATCH_POLL:
                        server_watch_on_poll(s);
                        break;
                case SOURCE_TRACKING:
                        /* The capture's records first: an exit (or exec) event's process is then
                         * already kept when a watch's writer, finding it gone, judges it by what
                         * was kept (both are written at the same tracepoint). */
                        (void) retention_drain(s->retention);
                        (void) tracking_drain(s->tracking);
                        drain_timer_arm(s);
                        (void) source_arm(s, &s->tracking_src, EPOLLIN);
                        break;
                case SOURCE_RETENTION:
                        (void) retention_drain(s->retention);
                        drain_timer_arm(s);
                        (void) source_arm(s, &s->retention_src, EPOLLIN);
                        break;
                case SOURCE_DRAIN:
                        on_drain_timer(s);
                        break;
                }
                if (atomic_load(&s->stopping)) {
                        request_stop(s);
                        break;
                }
        }
        return NULL;
}

/* After a drain woken by an fd: what came after it without waking anyone is taken then. Armed
 * after every such drain (even one that found nothing: a record still being written stops the
 * reader, and its writer may not wake it). */
static void drain_timer_arm_usec(struct server *s, uint64_t usec) {
        struct itimerspec its = { .it_value = { .tv_sec = 0, .tv_nsec = (long) usec * 1000 } };

        if (s->drain_src.fd >= 0)
                (void) timerfd_settime(s->drain_src.fd, 0, &its, NULL);
}

static void drain_timer_arm(struct server *s) {
        drain_timer_arm_usec(s, DRAIN_DELAY_USEC);
}

/* Any drain that handled something, on any thread (a call that needed what waited, a Watch
 * writer): records sent right after those it took may have woken nobody. */
static void on_drained(void *userdata) {
        drain_timer_arm(userdata);
}

/* Whether fd polls readable now. */
static bool fd_readable(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };

        return fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

static void on_drain_timer(struct server *s) {
        uint64_t v;

        (void) !read(s->drain_src.fd, &v, sizeof(v));
        (void) retention_drain(s->retention);
        (void) tracking_drain(s->tracking);
        /* A drain that handled something armed the timer again (on_drained()). What a ring
         * still holds (more than a drain takes, or a record being written, whose writer may
         * wake nobody) is taken at once: a flood drained only every 5 ms would lose records. */
        if (fd_readable(s->retention_src.fd) || fd_readable(s->tracking_src.fd))
                drain_timer_arm_usec(s, 1);
        (void) source_arm(s, &s->drain_src, EPOLLIN);
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
                .tracking_src = { SOURCE_TRACKING, -1 },
                .watch_poll_src = { SOURCE_WATCH_POLL, -1 },
                .retention_src = { SOURCE_RETENTION, -1 },
                .drain_src = { SOURCE_DRAIN, -1 },
                /* Half the threads, so that root and AllowGroups members always find one. */
                .unprivileged_slots = MAX(cfg->workers / 2, 1u),
                .user_slots = MAX(cfg->workers / 4, 1u),
        };
        pthread_mutex_init(&s->lock, NULL);
        pthread_mutex_init(&s->watch_lock, NULL);
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

        /* Blocked before the socket can be connected to: a SIGTERM sent once a client saw the
         * daemon listening waits in the signalfd for a clean shutdown, instead of killing it. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);

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

/* The drains' timer, made once. Without it every record wakes the loop (the wake delay stays 0). */
static int drain_timer_setup(struct server *s) {
        int r;

        if (s->drain_src.fd >= 0)
                return 0;
        s->drain_src.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (s->drain_src.fd < 0)
                return -errno;
        r = add_source(s, &s->drain_src, true);
        if (r < 0) {
                closep(&s->drain_src.fd);
                s->drain_src.fd = -1;
                return r;
        }
        return 0;
}

int server_set_tracking(struct server *s, struct tracking *tracking, struct layout_store *store) {
        int fd = tracking_event_fd(tracking), r;

        s->tracking = tracking;
        s->store = store;
        if (fd < 0)
                return 0;
        /* The fd stays the tracker's: tracking_src only borrows it (server_free() leaves it). */
        s->tracking_src.fd = fd;
        r = add_source(s, &s->tracking_src, true);
        if (r < 0)
                return r;
        if (drain_timer_setup(s) >= 0)
                tracking_set_wake_delay(tracking, DRAIN_DELAY_USEC, on_drained, s);
        return 0;
}

void server_set_events(struct server *s, struct proc_events *events) {
        int r;

        s->events = events;
        r = server_watch_setup(s);
        if (r < 0)
                log_warning_errno(r, "Cannot set up Watch: its calls will find no events");
}

void server_set_find_scan(struct server *s, struct find_scan *find) {
        s->find = find;
}

int server_set_retention(struct server *s, struct retention *retention) {
        int fd = retention_event_fd(retention), r;

        s->retention = retention;
        if (fd < 0)
                return 0;
        /* Borrowed, as tracking_src's. */
        s->retention_src.fd = fd;
        r = add_source(s, &s->retention_src, true);
        if (r < 0)
                return r;
        if (drain_timer_setup(s) >= 0)
                retention_set_wake_delay(retention, DRAIN_DELAY_USEC, on_drained, s);
        return 0;
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
        server_watch_free_all(s);
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
        closep(&s->drain_src.fd);
        pthread_mutex_destroy(&s->lock);
        pthread_mutex_destroy(&s->watch_lock);
        free(s);
        return NULL;
}
