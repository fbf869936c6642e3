/* Change tracking: loads the mm-track BPF programs and tells, with one load, whether a process's address space changed. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "cleanup.h"
#include "mm-track.h"

struct mm_tracker;

/* Called for each process event; a negative return stops the drain and is returned by it. */
typedef int (*mm_tracker_event_fn)(const struct mm_track_event *event, void *userdata);

/* Loads and attaches the programs. slots: the generation and epoch arrays' size, a power of
 * two between 512 and MM_TRACK_MAX_SLOTS (0: MM_TRACK_DEFAULT_SLOTS). Needs CAP_BPF and
 * CAP_PERFMON (or CAP_SYS_ADMIN), the kernel's BTF and the mmap_lock and sched tracepoints;
 * without them it fails with -errno (-EPERM when BPF is denied) and changes nothing, so the
 * caller can run without tracking. Meant for start-up: it silences libbpf's global message hook
 * while it runs. */
int mm_tracker_new(unsigned slots, struct mm_tracker **ret);

/* Detaches and unloads; accepts NULL. */
struct mm_tracker *mm_tracker_free(struct mm_tracker *t);
DEFINE_CLEANUP_FUNC(struct mm_tracker *, mm_tracker_free);
#define _cleanup_mm_tracker_ _cleanup_(mm_tracker_freep)

/* tgid's generation: it moves at the end of every write section of the mmap lock of tgid's
 * address space (every change of its layout), at its exec and exit, and when a process with the
 * same slot changes. Read like a seqlock: generation, layout, generation; equal values mean the
 * layout read is one the process had and still has. No syscall: an acquire load. */
uint64_t mm_tracker_generation(const struct mm_tracker *t, pid_t tgid);

/* tgid's exec epoch (a second counter per slot): it moves at tgid's exec (first when the new
 * address space is built, before it is installed, and again at the exec's end), at its exit,
 * when tgid is given to a new process (fork), and when a process with the same slot does one of
 * those; never on mmap, munmap, mprotect and the like, nor when tgid forks. An access decision made between two equal reads saw
 * one program of the process. No syscall: an acquire load. */
uint64_t mm_tracker_epoch(const struct mm_tracker *t, pid_t tgid);

/* The address space tgid last wrote as its own (an opaque identity: compare it, never show it):
 * it changes when an exec's new address space, once installed, is first written (before the new
 * program runs), and when a process with the same slot writes its own. 0 before any write. No
 * syscall: an acquire load. */
uint64_t mm_tracker_mm(const struct mm_tracker *t, pid_t tgid);

/* The events emitted into the ring buffer since loading (counted when reserved, before they can
 * be drained): a reader that drained this many has seen every event emitted before it read the
 * count. */
uint64_t mm_tracker_events_emitted(const struct mm_tracker *t);

unsigned mm_tracker_slots(const struct mm_tracker *t);

/* An fd that polls readable while process events wait to be drained. */
int mm_tracker_event_fd(const struct mm_tracker *t);

/* Hands each waiting event to fn (events of a wrong size are skipped), at most 1024 (the fd
 * stays readable while more wait). The number handed on, or -errno, or fn's negative return.
 * Never blocks. */
int mm_tracker_drain(struct mm_tracker *t, mm_tracker_event_fn fn, void *userdata);

/* Events dropped because the ring buffer was full since loading: when it moves, the caller
 * missed exits and execs and must forget what it keeps. */
uint64_t mm_tracker_lost_events(const struct mm_tracker *t);

/* From now on an event sent within delay_ns of the last one that woke the event fd's poller
 * does not wake it (ring-wake.bpf.h): the caller then drains within delay_ns after every drain
 * too, as long as drains find events. 0 (the default): every event may wake it. */
void mm_tracker_set_wake_delay(struct mm_tracker *t, uint64_t delay_ns);

/* The processes whose address space counts under another process's slot (see
 * MM_TRACK_F_SHARED_MM): shared there now, read in one pass over every task. At most max; 0 and
 * *ret (malloc'd, ret_n entries), -E2BIG past max, or -errno. */
int mm_tracker_shared_processes(struct mm_tracker *t, size_t max, pid_t **ret, size_t *ret_n);
