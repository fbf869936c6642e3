/* Change tracking for the layout store: the BPF tracker where it loads (Tracking=auto|bpf), else none, and the process events that drop stored layouts. */

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "layout-store.h"
#include "log.h"
#include "proc-events.h"
#include "tracking.h"

#if HAVE_BPF
#include "mm-tracker.h"
#endif

/* Processes sharing their address space with another (vfork children until they exec, and the
 * rare clone(CLONE_VM) without threads) are remembered until their exec or exit. Past this many
 * at once, none is kept at all until some leave. */
#define SHARED_MAX 4096

struct tracking {
        struct layout_store *store;
        struct proc_events *events;     /* NULL: nobody listens */
#if HAVE_BPF
        struct mm_tracker *tracker;
#endif
        _Atomic uint64_t drained;       /* events handled, published after each one's effects */
        _Atomic uint64_t lost_seen;     /* lost events the drain acted on */
        _Atomic uint64_t rebuilds;      /* the shared set read again after lost events */
        _Atomic uint64_t distrust_before; /* clock ticks since boot: see tracking_unchanged() */

        /* One drain at a time: the loop's threads (the fd's readiness, the drain timer) may
         * each start one. */
        pthread_mutex_t drain_lock;
        void (*drained_hook)(void *userdata);   /* see tracking_set_wake_delay() */
        void *drained_userdata;
        pthread_mutex_t lock;           /* shared[] */
        pid_t *shared;
        size_t n_shared;
        bool shared_overflow;
};

static struct tracking *tracking_alloc(struct layout_store *store) {
        struct tracking *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        t->store = store;
        pthread_mutex_init(&t->lock, NULL);
        pthread_mutex_init(&t->drain_lock, NULL);
        return t;
}

/* The BPF programs key processes by their pid in the machine's (initial) PID namespace; a daemon
 * in another namespace names processes by other numbers, whose slots would never move. */
static bool in_initial_pid_namespace(void) {
        struct stat st;

        /* PROC_PID_INIT_INO: the initial namespace's fixed inode number in nsfs. */
        return stat("/proc/self/ns/pid", &st) >= 0 && st.st_ino == 0xEFFFFFFCu;
}

int tracking_new(enum tracking_mode mode, struct layout_store *store, struct tracking **ret) {
        _cleanup_free_ struct tracking *t = NULL;

        if ((unsigned) mode >= _TRACKING_MODE_MAX || (mode != TRACKING_NONE && !store))
                return -EINVAL;
        t = tracking_alloc(store);
        if (!t)
                return -ENOMEM;
        if (mode == TRACKING_NONE) {
                log_info("Change tracking off (Tracking=none): every query reads the kernel");
                *ret = TAKE_PTR(t);
                return 0;
        }
#if HAVE_BPF
        if (!in_initial_pid_namespace()) {
                if (mode == TRACKING_BPF)
                        return log_error_errno(EOPNOTSUPP, "Tracking=bpf, but memmapd runs in a PID namespace of "
                                                           "its own: the tracker counts the machine's pids");
                log_notice("Change tracking off: memmapd runs in a PID namespace of its own (the tracker counts "
                           "the machine's pids); every query reads the kernel");
                *ret = TAKE_PTR(t);
                return 0;
        }
        {
                int r = mm_tracker_new(0, &t->tracker);

                if (r < 0) {
                        if (mode == TRACKING_BPF)
                                return log_error_errno(r, "Cannot load the BPF change tracker (Tracking=bpf)");
                        log_notice("Change tracking off: cannot load the BPF change tracker (%s); every query "
                                   "reads the kernel", strerror(-r));
                } else {
                        t->shared = calloc(SHARED_MAX, sizeof(*t->shared));
                        if (!t->shared) {
                                mm_tracker_free(t->tracker);
                                return -ENOMEM;
                        }
                        t->lost_seen = mm_tracker_lost_events(t->tracker);
                        /* Loading parsed the kernel's BTF (some MiB, freed again): give the heap
                         * back now, not at the first idle second after a call. */
                        (void) malloc_trim(0);
                        log_info("Change tracking on (BPF): layouts of unchanged processes are kept");
                }
        }
#else
        if (mode == TRACKING_BPF)
                return log_error_errno(EOPNOTSUPP, "Tracking=bpf, but memmapd was built without BPF support");
        log_notice("Change tracking off: memmapd was built without BPF support; every query reads the kernel");
#endif
        *ret = TAKE_PTR(t);
        return 0;
}

struct tracking *tracking_free(struct tracking *t) {
        if (!t)
                return NULL;
#if HAVE_BPF
        mm_tracker_free(t->tracker);
#endif
        pthread_mutex_destroy(&t->lock);
        pthread_mutex_destroy(&t->drain_lock);
        free(t->shared);
        free(t);
        return NULL;
}

bool tracking_active(const struct tracking *t) {
#if HAVE_BPF
        return t && t->tracker;
#else
        (void) t;
        return false;
#endif
}

const char *tracking_name(const struct tracking *t) {
        return tracking_active(t) ? "bpf" : "none";
}

#if HAVE_BPF
/* The epoch as the daemon uses it: the tracker's exec epoch and the address space the process last
 * wrote as its own, mixed (splitmix64's finalizer) into one value, so that a decision or a kept
 * layout names both; two different pairs meet with a chance of 2^-64. */
static uint64_t epoch_of(const struct mm_tracker *tr, pid_t pid) {
        uint64_t x = mm_tracker_epoch(tr, pid) * 0x9e3779b97f4a7c15u ^ mm_tracker_mm(tr, pid);

        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9u;
        x ^= x >> 27;
        x *= 0x94d049bb133111ebu;
        return x ^ (x >> 31);
}
#endif

void tracking_stamp(const struct tracking *t, pid_t pid, struct tracking_stamp *ret) {
#if HAVE_BPF
        /* Events first: an event emitted after this count may have moved the counters read
         * next, never the other way round. */
        ret->emitted = mm_tracker_events_emitted(t->tracker);
        ret->lost = mm_tracker_lost_events(t->tracker);
        ret->epoch = epoch_of(t->tracker, pid);
        ret->generation = mm_tracker_generation(t->tracker, pid);
#else
        (void) t;
        (void) pid;
        *ret = (struct tracking_stamp) {};
#endif
}

void tracking_stamp_events(const struct tracking *t, struct tracking_stamp *ret) {
        *ret = (struct tracking_stamp) {};
#if HAVE_BPF
        ret->emitted = mm_tracker_events_emitted(t->tracker);
        ret->lost = mm_tracker_lost_events(t->tracker);
#else
        (void) t;
#endif
}

uint64_t tracking_epoch(const struct tracking *t, pid_t pid) {
#if HAVE_BPF
        return epoch_of(t->tracker, pid);
#else
        (void) t;
        (void) pid;
        return 0;
#endif
}

/* Under lock. */
static ssize_t shared_find(const struct tracking *t, pid_t pid) {
        for (size_t i = 0; i < t->n_shared; i++)
                if (t->shared[i] == pid)
                        return (ssize_t) i;
        return -1;
}

static bool is_shared(struct tracking *t, pid_t pid) {
        bool r;

        pthread_mutex_lock(&t->lock);
        r = t->shared_overflow || (t->n_shared > 0 && shared_find(t, pid) >= 0);
        pthread_mutex_unlock(&t->lock);
        return r;
}

bool tracking_caught_up(const struct tracking *t, const struct tracking_stamp *before) {
        return atomic_load_explicit(&((struct tracking *) t)->drained, memory_order_acquire) >= before->emitted;
}

bool tracking_unchanged(const struct tracking *t, pid_t pid, uint64_t start_time, const struct tracking_stamp *before) {
        struct tracking_stamp now;

        if (!tracking_active(t))
                return false;
        /* The counters in the reverse order of tracking_stamp(). */
#if HAVE_BPF
        now.generation = mm_tracker_generation(t->tracker, pid);
        now.epoch = epoch_of(t->tracker, pid);
        now.lost = mm_tracker_lost_events(t->tracker);
#endif
        if (now.generation != before->generation || now.epoch != before->epoch || now.lost != before->lost)
                return false;
        /* Events lost that the drain has not acted on yet may hide a fork that made pid share
         * its address space. */
        if (now.lost != atomic_load(&((struct tracking *) t)->lost_seen))
                return false;
        /* Every event emitted before the read was handled, so a fork that made pid share an
         * address space is known by now. */
        if (!tracking_caught_up(t, before))
                return false;
        if (start_time <= atomic_load(&((struct tracking *) t)->distrust_before))
                return false;
        return !is_shared((struct tracking *) t, pid);
}

void tracking_set_wake_delay(struct tracking *t, uint64_t delay_usec, void (*drained)(void *userdata),
                             void *userdata) {
#if HAVE_BPF
        if (!tracking_active(t))
                return;
        t->drained_hook = drained;
        t->drained_userdata = userdata;
        mm_tracker_set_wake_delay(t->tracker, delay_usec * 1000);
#else
        (void) t;
        (void) delay_usec;
        (void) drained;
        (void) userdata;
#endif
}

int tracking_event_fd(const struct tracking *t) {
#if HAVE_BPF
        if (tracking_active(t))
                return mm_tracker_event_fd(t->tracker);
#else
        (void) t;
#endif
        return -1;
}

#if HAVE_BPF
static void shared_forget(struct tracking *t, pid_t pid) {
        ssize_t i;

        pthread_mutex_lock(&t->lock);
        i = shared_find(t, pid);
        if (i >= 0)
                t->shared[i] = t->shared[--t->n_shared];
        if (t->n_shared < SHARED_MAX)
                t->shared_overflow = false;
        pthread_mutex_unlock(&t->lock);
}

static void shared_add(struct tracking *t, pid_t pid) {
        pthread_mutex_lock(&t->lock);
        if (shared_find(t, pid) < 0) {
                if (t->n_shared < SHARED_MAX)
                        t->shared[t->n_shared++] = pid;
                else
                        t->shared_overflow = true;
        }
        pthread_mutex_unlock(&t->lock);
}

/* After lost events: the processes that share an address space now, read from the kernel,
 * replace what the events said (a fork that made one may be among those lost; an exit that
 * ended one too). Runs on the drain, so no event is applied meanwhile: one emitted during the
 * pass is applied after it, in order. */
static int shared_rebuild(struct tracking *t) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        int r = mm_tracker_shared_processes(t->tracker, SHARED_MAX, &pids, &n);

        if (r < 0 && r != -E2BIG)
                return r;
        pthread_mutex_lock(&t->lock);
        t->shared_overflow = r == -E2BIG;
        t->n_shared = 0;
        for (size_t i = 0; i < n && r >= 0; i++)
                t->shared[t->n_shared++] = pids[i];
        pthread_mutex_unlock(&t->lock);
        return 0;
}

/* Now, in the unit of /proc/PID/stat's start time. */
static uint64_t boot_ticks_now(void) {
        struct timespec ts;
        long hz = sysconf(_SC_CLK_TCK);

        if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0 || hz <= 0)
                return UINT64_MAX;
        return (uint64_t) ts.tv_sec * (uint64_t) hz + (uint64_t) ts.tv_nsec / (1000000000u / (uint64_t) hz);
}

static void publish(struct tracking *t, const struct mm_track_event *e) {
        static const enum proc_event_type types[] = {
                [MM_TRACK_EXEC] = PROC_EVENT_EXEC,
                [MM_TRACK_EXIT] = PROC_EVENT_EXIT,
                [MM_TRACK_FORK] = PROC_EVENT_FORK,
        };
        uint64_t tick_ns = 1000000000u / (uint64_t) sysconf(_SC_CLK_TCK);
        struct proc_event pe;

        if (!t->events || e->type >= sizeof(types) / sizeof(types[0]) || types[e->type] == 0)
                return;
        pe = (struct proc_event) {
                .type = types[e->type],
                .pid = (pid_t) e->tgid,
                /* As the kernel makes field 22 of /proc/PID/stat from it. */
                .start_time = e->start_boottime / tick_ns,
                .parent = e->type == MM_TRACK_FORK ? (pid_t) e->parent_tgid : 0,
                .time_usec = e->time_ns / 1000,
        };
        memcpy(pe.comm, e->comm, sizeof(pe.comm) - 1);
        proc_events_publish(t->events, &pe);
}

static int on_event(const struct mm_track_event *e, void *userdata) {
        struct tracking *t = userdata;
        pid_t pid = (pid_t) e->tgid;

        switch (e->type) {
        case MM_TRACK_EXEC:
        case MM_TRACK_EXIT:
                shared_forget(t, pid);
                layout_store_forget(t->store, pid);
                break;
        case MM_TRACK_FORK:
                /* A new process under a pid: whatever was kept under it is another's. */
                layout_store_forget(t->store, pid);
                if (e->flags & MM_TRACK_F_SHARED_MM)
                        shared_add(t, pid);
                break;
        default:
                break;
        }
        publish(t, e);
        atomic_fetch_add_explicit(&t->drained, 1, memory_order_release);
        return 0;
}
#endif

void tracking_set_events(struct tracking *t, struct proc_events *events) {
        if (t)
                t->events = events;
}

int tracking_drain(struct tracking *t) {
#if HAVE_BPF
        uint64_t lost;
        int r;

        if (!tracking_active(t))
                return 0;
        pthread_mutex_lock(&t->drain_lock);
        r = mm_tracker_drain(t->tracker, on_event, t);
        lost = mm_tracker_lost_events(t->tracker);
        if (lost != t->lost_seen) {
                /* Exits and execs went unseen: nothing kept can be trusted to be dropped in time
                 * (the counters still guard every answer; this gives the memory back). */
                log_warning("Change tracking lost %llu event(s): dropping every kept layout",
                            (unsigned long long) (lost - t->lost_seen));
                proc_events_publish_lost(t->events, lost - t->lost_seen);
                atomic_store(&t->distrust_before, boot_ticks_now());
                atomic_store(&t->lost_seen, lost);
                layout_store_clear(t->store);
                /* Which processes share an address space, asked of the kernel, makes the older
                 * processes' layouts worth keeping again; else they never are. */
                if (shared_rebuild(t) >= 0) {
                        atomic_store(&t->distrust_before, 0);
                        atomic_fetch_add(&t->rebuilds, 1);
                } else
                        log_warning("Cannot read which processes share an address space after lost events: "
                                    "processes started before are served without the layout store");
        }
        pthread_mutex_unlock(&t->drain_lock);
        if (r > 0 && t->drained_hook)
                t->drained_hook(t->drained_userdata);
        return r;
#else
        (void) t;
        return 0;
#endif
}

void tracking_get_stats(const struct tracking *t, struct tracking_stats *ret) {
        *ret = (struct tracking_stats) {};
#if HAVE_BPF
        if (tracking_active(t)) {
                ret->events = atomic_load(&((struct tracking *) t)->drained);
                ret->lost_events = mm_tracker_lost_events(t->tracker);
                ret->shared_rebuilds = atomic_load(&((struct tracking *) t)->rebuilds);
        }
#endif
}
