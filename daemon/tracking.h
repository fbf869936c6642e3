/* Change tracking for the layout store: the BPF tracker where it loads (Tracking=auto|bpf), else none, and the process events that drop stored layouts. */
#pragma once

/* Design. With tracking, every process has two counters the tracker keeps in kernel memory the
 * daemon reads with plain loads (mm-tracker.h): its exec epoch (moves at exec, at exit and when
 * the pid is given to a new process) and its change generation (moves at the end of every write
 * section of its address space, and with the epoch). A layout read between two equal stamps
 * (tracking_stamp() before the read, tracking_unchanged() after it) is one the process had
 * and still has; the store serves it while a fresh stamp still equals the one it was read under.
 *
 * An access decision remembers the epoch it was made under (read before and after the kernel's
 * check): a stored layout is served on a decision only when the epochs agree, so a decision made
 * before an exec (of a setuid program, say) never serves the layout of what the exec started.
 *
 * A process that shares its address space with its parent (vfork, clone(CLONE_VM)) has its
 * changes counted under the address space's owner, not under its own pid, until it execs: its
 * layout is never kept. The tracker reports such forks as events; a stamp remembers how many
 * events had been emitted, and a layout is kept only when all of them were drained by then
 * (tracking_drain(), by the server's loop, its drain timer, or a call that needs what waits), so
 * the fork that made it such a process is known. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct layout_store;
struct proc_events;

enum tracking_mode {
        TRACKING_AUTO,          /* BPF where it loads, else none (saying why once in the log) */
        TRACKING_BPF,           /* BPF, or the daemon does not start */
        TRACKING_NONE,
        _TRACKING_MODE_MAX,
};

const char *tracking_mode_to_string(enum tracking_mode m);
int tracking_mode_from_string(const char *s, enum tracking_mode *ret);

struct tracking;

/* Starts tracking as mode asks, dropping entries of store on process events (store may be NULL
 * only when mode is TRACKING_NONE). AUTO without a working tracker (not built, BPF denied, no
 * BTF or tracepoints) logs why once and returns a tracking that is off. BPF then fails with
 * -errno instead. */
int tracking_new(enum tracking_mode mode, struct layout_store *store, struct tracking **ret);
/* Accepts NULL; returns NULL. */
struct tracking *tracking_free(struct tracking *t);

/* Whether changes are tracked (a store may be used). NULL: false. */
bool tracking_active(const struct tracking *t);
/* "bpf" or "none" (GetStatus tracking). NULL: "none". */
const char *tracking_name(const struct tracking *t);

struct tracking_stamp {
        uint64_t epoch;
        uint64_t generation;
        uint64_t emitted;               /* events emitted by then */
        uint64_t lost;                  /* events lost by then */
};

/* pid's counters now (pid: a thread group id). Only when tracking_active(). */
void tracking_stamp(const struct tracking *t, pid_t pid, struct tracking_stamp *ret);
/* Whether a layout of pid (started at start_time, in clock ticks since boot as /proc shows it)
 * read since before was taken may be kept: pid's counters did not move, no event was lost, every
 * event emitted before the read was drained, and pid does not share its address space with
 * another process (as far as events tell: a process started before events were last lost is
 * never kept, since the event that made it such a process may be among them). */
bool tracking_unchanged(const struct tracking *t, pid_t pid, uint64_t start_time, const struct tracking_stamp *before);

/* The events emitted by now (no process's counters), for tracking_caught_up(). Only when
 * tracking_active(). */
void tracking_stamp_events(const struct tracking *t, struct tracking_stamp *ret);

/* Whether every event emitted before the stamp was taken has been handled (see
 * tracking_unchanged()). */
bool tracking_caught_up(const struct tracking *t, const struct tracking_stamp *before);

/* pid's exec epoch now. Only when tracking_active(). */
uint64_t tracking_epoch(const struct tracking *t, pid_t pid);

/* The fd that polls readable when events wait (-1 when off), and the drain run on its
 * readiness: exec and exit forget the pid's stored layout, a shared address space marks the pid
 * as one never kept, lost events clear the store. Never blocks. */
int tracking_event_fd(const struct tracking *t);
/* The number of events handled, or -errno. */
int tracking_drain(struct tracking *t);
/* Events within delay_usec of the last one that woke the fd's poller do not wake it: the caller
 * must drain again delay_usec after every drain that handled events, whichever thread ran it:
 * drained(userdata) is called then, on that thread (see mm_tracker_set_wake_delay()). */
void tracking_set_wake_delay(struct tracking *t, uint64_t delay_usec, void (*drained)(void *userdata),
                             void *userdata);

/* Where the drain publishes exec, exit and fork (and lost events): NULL, nowhere. Set before the
 * server runs; events stays the caller's. */
void tracking_set_events(struct tracking *t, struct proc_events *events);

struct tracking_stats {
        uint64_t events;                /* drained */
        uint64_t lost_events;
        uint64_t shared_rebuilds;       /* times the shared set was read again after lost events */
};
void tracking_get_stats(const struct tracking *t, struct tracking_stats *ret);
