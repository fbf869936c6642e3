/* Retention of exited processes and answers as of a time: the exec-maps capture drained into the exec history. */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec-history.h"
#include "log.h"
#include "perms.h"
#include "proc-events.h"
#include "retention.h"
#include "time-util.h"
#include "tracking.h"

#if HAVE_BPF
#include "capture-parts.h"
#include "exec-maps-capture.h"
#endif

/* Forks heard before the capture's records sent ahead of them were drained (see on_proc_event()).
 * Past this many, the oldest is applied as it is. */
#define QUEUED_FORKS_MAX 256

struct queued_fork {
        pid_t parent, child;
        uint64_t child_start_time, time_usec;
        uint64_t after;                 /* the capture's records emitted when it was heard */
};

struct retention {
        struct exec_history *history;
        struct proc_events *events;
        struct tracking *tracking;      /* the forks' source (its events come through events) */
        int listener;
#if HAVE_BPF
        struct exec_maps_capture *capture;
        struct capture_parts *parts;    /* under drain_lock */
        uint64_t lost_seen;
        /* Records the drain dropped itself (drop_record()), and how many of them were told. */
        _Atomic uint64_t dropped;
        uint64_t dropped_seen;
#endif
        uint64_t tick_ns;
        /* The drain runs on whichever thread the capture's fd or the tracker's wakes (see
         * retention_drain()): one at a time. */
        pthread_mutex_t drain_lock;
        void (*drained_hook)(void *userdata);   /* see retention_set_wake_delay() */
        void *drained_userdata;
        pthread_mutex_t forks_lock;     /* forks[]; taken after drain_lock, never before it */
        struct queued_fork forks[QUEUED_FORKS_MAX];
        size_t n_forks;
};

static void fork_apply(struct retention *r, const struct queued_fork *f) {
        (void) exec_history_fork(r->history, f->parent, f->child, f->child_start_time, f->time_usec);
}

/* Applies the queued forks whose records were all drained, oldest first (a child's fork before
 * its own children's). Under forks_lock. */
static void forks_apply_ready_locked(struct retention *r) {
#if HAVE_BPF
        uint64_t consumed = exec_maps_capture_consumed(r->capture);
        size_t n = 0;

        while (n < r->n_forks && r->forks[n].after <= consumed)
                fork_apply(r, &r->forks[n++]);
        memmove(r->forks, r->forks + n, (r->n_forks - n) * sizeof(r->forks[0]));
        r->n_forks -= n;
#else
        (void) r;
#endif
}

/* A fork copies the parent's set at the fork: the child shares its mappings until it changes
 * them. The fork comes through the tracker's ring buffer, the parent's changes before it through
 * the capture's: a fork taken before those were would copy a set that lacks them (or find no
 * parent yet), so it waits until every record sent before it was heard has been drained. */
static void on_proc_event(const struct proc_event *e, void *userdata) {
        struct retention *r = userdata;
        struct queued_fork f;

        if (e->type != PROC_EVENT_FORK)
                return;
        f = (struct queued_fork) {
                .parent = e->parent, .child = e->pid, .child_start_time = e->start_time, .time_usec = e->time_usec,
        };
#if HAVE_BPF
        {
                struct exec_maps_capture_stats st;

                exec_maps_capture_get_stats(r->capture, &st);
                f.after = st.emitted;
        }
#endif
        pthread_mutex_lock(&r->forks_lock);
        if (r->n_forks == QUEUED_FORKS_MAX) {
                fork_apply(r, &r->forks[0]);
                memmove(r->forks, r->forks + 1, (QUEUED_FORKS_MAX - 1) * sizeof(r->forks[0]));
                r->n_forks--;
        }
        r->forks[r->n_forks++] = f;
        /* Nothing waits in the capture's ring (the common case): applied now. Otherwise the next
         * drain of that ring applies it: its fd's readiness, or the drain timer armed after the
         * tracker's drain that heard the fork (server.c), or a call that takes what waits. */
        forks_apply_ready_locked(r);
        pthread_mutex_unlock(&r->forks_lock);
}

int retention_new(const struct retention_config *cfg, struct proc_events *events, struct tracking *tracking,
                  struct retention **ret) {
        _cleanup_free_ struct retention *r = calloc(1, sizeof(*r));
        long hz = sysconf(_SC_CLK_TCK);
        int k;

        if (!r)
                return -ENOMEM;
        r->listener = -1;
        r->events = events;
        r->tracking = tracking;
        pthread_mutex_init(&r->drain_lock, NULL);
        pthread_mutex_init(&r->forks_lock, NULL);
        r->tick_ns = hz > 0 ? 1000000000u / (uint64_t) hz : 10000000u;
        if (!cfg->enabled) {
                log_info("Retention of exited processes off (RetainExitedSec=0)");
                *ret = TAKE_PTR(r);
                return 0;
        }
#if HAVE_BPF
        k = exec_maps_capture_new(&r->capture);
        if (k < 0) {
                log_notice("Retention of exited processes off: cannot load the BPF capture of executable "
                           "mappings (%s)", strerror(-k));
                *ret = TAKE_PTR(r);
                return 0;
        }
        k = capture_parts_new(r->tick_ns, &r->parts);
        if (k >= 0)
                k = exec_history_new(&(struct exec_history_config) {
                                             .retain_usec = cfg->retain_sec * 1000000u,
                                             .max_bytes = cfg->max_bytes,
                                             .max_bytes_per_uid = cfg->max_bytes_per_user },
                                     &r->history);
        if (k < 0) {
                capture_parts_free(r->parts);
                exec_maps_capture_free(r->capture);
                return k;
        }
        if (events) {
                k = proc_events_listen(events, on_proc_event, NULL, r);
                if (k < 0) {
                        exec_history_free(r->history);
                        capture_parts_free(r->parts);
                        exec_maps_capture_free(r->capture);
                        return k;
                }
                r->listener = k;
        }
        log_info("Retention of exited processes on: executable mappings kept %llu s after exit",
                 (unsigned long long) cfg->retain_sec);
#else
        (void) k;
        log_notice("Retention of exited processes off: memmapd was built without BPF support");
#endif
        *ret = TAKE_PTR(r);
        return 0;
}

struct retention *retention_free(struct retention *r) {
        if (!r)
                return NULL;
        proc_events_unlisten(r->events, r->listener);
#if HAVE_BPF
        exec_maps_capture_free(r->capture);
        capture_parts_free(r->parts);
#endif
        exec_history_free(r->history);
        pthread_mutex_destroy(&r->drain_lock);
        pthread_mutex_destroy(&r->forks_lock);
        free(r);
        return NULL;
}

bool retention_active(const struct retention *r) {
        return r && r->history;
}

struct exec_history *retention_history(const struct retention *r) {
        return r ? r->history : NULL;
}

void retention_set_wake_delay(struct retention *r, uint64_t delay_usec, void (*drained)(void *userdata),
                              void *userdata) {
#if HAVE_BPF
        if (!retention_active(r))
                return;
        r->drained_hook = drained;
        r->drained_userdata = userdata;
        exec_maps_capture_set_wake_delay(r->capture, delay_usec * 1000);
#else
        (void) r;
        (void) delay_usec;
        (void) drained;
        (void) userdata;
#endif
}

int retention_event_fd(const struct retention *r) {
#if HAVE_BPF
        if (retention_active(r))
                return exec_maps_capture_fd(r->capture);
#else
        (void) r;
#endif
        return -1;
}

void retention_tick(struct retention *r) {
        if (retention_active(r))
                exec_history_expire(r->history, now_usec());
}

#if HAVE_BPF
static void publish_diff(struct retention *r, const struct exec_history_record *hr, const struct exec_history_diff *d) {
        _cleanup_free_ struct proc_event_mapping *added = NULL, *removed = NULL;
        struct proc_event e;

        if (!r->events || (d->n_added == 0 && d->n_removed == 0 && !d->whole_range && !d->unknown) ||
            hr->kind == EXEC_HISTORY_EXIT)
                return;
        added = calloc(MAX(d->n_added, (size_t) 1), sizeof(*added));
        removed = calloc(MAX(d->n_removed, (size_t) 1), sizeof(*removed));
        if (!added || !removed)
                return;
        for (int side = 0; side < 2; side++) {
                const struct exec_history_mapping *src = side ? d->removed : d->added;
                struct proc_event_mapping *dst = side ? removed : added;
                size_t n = side ? d->n_removed : d->n_added;

                for (size_t i = 0; i < n; i++)
                        dst[i] = (struct proc_event_mapping) {
                                .start = src[i].start, .end = src[i].end, .offset = src[i].offset,
                                .dev_major = src[i].dev_major, .dev_minor = src[i].dev_minor,
                                .inode = src[i].inode, .flags = src[i].flags, .path = src[i].path,
                        };
        }
        e = (struct proc_event) {
                .type = PROC_EVENT_MAPPINGS, .pid = hr->pid, .start_time = hr->start_time,
                .time_usec = hr->time_usec, .added = added, .removed = removed,
                .n_added = d->n_added, .n_removed = d->n_removed,
                .range_start = d->whole_range || d->unknown ? d->lo : 0,
                /* Everything ends past every user address, within what any JSON reader takes. */
                .range_end = d->whole_range || d->unknown ? MIN(d->hi, (uint64_t) INT64_MAX) : 0,
                .unknown = d->unknown,
        };
        memcpy(e.comm, hr->comm, sizeof(e.comm));
        proc_events_publish(r->events, &e);
}

/* The queued fork of (child, child_start_time), and every fork heard before it, applied now
 * whatever records they wait for: the child's record is being read, and its parent's changes
 * before the fork went into the capture's ring before it, so they were drained. Under
 * drain_lock. Whether it was queued. */
static bool fork_take(struct retention *r, pid_t child, uint64_t child_start_time) {
        size_t i;
        bool found;

        pthread_mutex_lock(&r->forks_lock);
        for (i = 0; i < r->n_forks; i++)
                if (r->forks[i].child == child && r->forks[i].child_start_time == child_start_time)
                        break;
        found = i < r->n_forks;
        if (found) {
                for (size_t j = 0; j <= i; j++)
                        fork_apply(r, &r->forks[j]);
                memmove(r->forks, r->forks + i + 1, (r->n_forks - i - 1) * sizeof(r->forks[0]));
                r->n_forks -= i + 1;
        }
        pthread_mutex_unlock(&r->forks_lock);
        return found;
}

/* A change of a process whose set is not known whole (a forked child's first change, told whole,
 * most often) comes with what it changed only when its fork gave it its parent's set first; else
 * it is published as a whole range (right, but every mapping said to have come). The fork comes
 * through the tracker's ring buffer, and may still wait there: taken first (the tracker's drain
 * takes no drain_lock of ours). Under drain_lock. */
static void fork_first(struct retention *r, const struct exec_history_record *hr) {
        struct tracking_stamp st;

        if (hr->kind != EXEC_HISTORY_RANGE || fork_take(r, hr->pid, hr->start_time) ||
            !tracking_active(r->tracking) || exec_history_complete(r->history, hr->pid, hr->start_time))
                return;
        /* The fork, if any, was emitted before this count. */
        tracking_stamp_events(r->tracking, &st);
        if (tracking_caught_up(r->tracking, &st))
                return;
        (void) tracking_drain(r->tracking);
        (void) fork_take(r, hr->pid, hr->start_time);
}

static void apply(struct retention *r, const struct exec_history_record *hr) {
        struct exec_history_diff d = {};

        fork_first(r, hr);

        if (exec_history_apply(r->history, hr, r->events ? &d : NULL) < 0)
                return;
        publish_diff(r, hr, &d);
        exec_history_diff_done(&d);
}

/* A record the daemon itself could not take (no room to gather it, or more mappings than a
 * history holds): the change it told is missing, as for a lost one, and the capture does not
 * know. Under drain_lock. */
static void drop_record(struct retention *r, const struct exec_maps_record *er) {
        atomic_fetch_add(&r->dropped, 1);
        (void) exec_history_forget(r->history, (pid_t) er->tgid, er->start_boottime / r->tick_ns);
}

static int on_record(const struct exec_maps_record *er, void *userdata) {
        struct retention *r = userdata;
        struct capture_set set;
        int k = capture_parts_add(r->parts, er, &set);

        if (k < 0)
                drop_record(r, er);
        if (k <= 0)
                return 0;
        apply(r, &set.r);
        capture_set_done(&set);
        return 0;
}
#endif

#if HAVE_BPF
/* Records were lost (the ring buffer was full: a machine, or a user, making them faster than
 * the drain takes them): the histories of the processes they were about are in doubt and go;
 * everyone else's stay. When the capture could not tell them all, every history goes. */
static void forget_lost(struct retention *r, uint64_t lost) {
        _cleanup_free_ struct exec_maps_lost_process *procs = NULL;
        size_t n = 0;
        bool all = false;

        if (exec_maps_capture_take_lost(r->capture, &procs, &n, &all) < 0 || !all) {
                log_warning("Capture of executable mappings lost %llu record(s): forgetting every kept history",
                            (unsigned long long) lost);
                exec_history_clear(r->history);
                capture_parts_clear(r->parts);
                return;
        }
        log_warning("Capture of executable mappings lost %llu record(s) of %zu process(es): forgetting their "
                    "histories", (unsigned long long) lost, n);
        for (size_t i = 0; i < n; i++) {
                /* A set in parts whose last part was lost would hold its slot for good. */
                capture_parts_forget(r->parts, procs[i].tgid);
                (void) exec_history_forget(r->history, (pid_t) procs[i].tgid, procs[i].start_boottime / r->tick_ns);
        }
}
#endif

#if HAVE_BPF
static void take_lost(struct retention *r) {
        struct exec_maps_capture_stats st;
        uint64_t dropped = atomic_load(&r->dropped);

        exec_maps_capture_get_stats(r->capture, &st);
        if (st.lost != r->lost_seen) {
                forget_lost(r, st.lost - r->lost_seen);
                proc_events_publish_lost(r->events, st.lost - r->lost_seen);
                r->lost_seen = st.lost;
        }
        if (dropped != r->dropped_seen) {
                log_warning("Dropped %llu record(s) of executable mappings (more than %d processes mid-capture, or "
                            "past %d mappings in one): forgetting their histories",
                            (unsigned long long) (dropped - r->dropped_seen), CAPTURE_PARTS_PROCESSES,
                            EXEC_HISTORY_INTERVALS_MAX);
                proc_events_publish_lost(r->events, dropped - r->dropped_seen);
                r->dropped_seen = dropped;
        }
}
#endif

int retention_drain(struct retention *r) {
#if HAVE_BPF
        int k;

        if (!retention_active(r))
                return 0;
        pthread_mutex_lock(&r->drain_lock);
        /* Losses are taken before the records too: a process whose record was lost tells its
         * whole set at its next change (a record after the loss), which must not be forgotten
         * with what the loss left in doubt. */
        take_lost(r);
        k = exec_maps_capture_drain(r->capture, on_record, r);
        take_lost(r);
        pthread_mutex_lock(&r->forks_lock);
        forks_apply_ready_locked(r);
        pthread_mutex_unlock(&r->forks_lock);
        pthread_mutex_unlock(&r->drain_lock);
        if (k > 0 && r->drained_hook)
                r->drained_hook(r->drained_userdata);
        return k;
#else
        (void) r;
        return 0;
#endif
}

void retention_get_stats(const struct retention *r, struct retention_stats *ret) {
        *ret = (struct retention_stats) {};
#if HAVE_BPF
        if (retention_active(r)) {
                struct exec_maps_capture_stats st;

                exec_maps_capture_get_stats(r->capture, &st);
                /* Dropped by the drain or lost in the ring: the same to whoever reads the count. */
                *ret = (struct retention_stats) { .records = st.emitted,
                                                   .lost = st.lost + atomic_load(&((struct retention *) r)->dropped),
                                                   .unread = st.unread, .skipped = st.skipped };
        }
#endif
}
