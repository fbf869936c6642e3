/* Executable-mapping capture: loads the exec-maps BPF programs and hands on their records (a process's executable file mappings after exec, after changes, at exit). */
#pragma once

#include <stdbool.h>

#include <stdint.h>

#include "cleanup.h"
#include "exec-maps.h"

struct exec_maps_capture;

/* Called for each record (checked: its size matches its n); a negative return stops the drain and
 * is returned by it. The record lives only during the call. */
typedef int (*exec_maps_record_fn)(const struct exec_maps_record *r, void *userdata);

/* Loads and attaches the programs: sched_process_exec, sched_process_exit and sys_exit (tp_btf),
 * with the open-coded VMA iterator (6.7+). Needs what mm_tracker_new() needs; -errno otherwise
 * (-EPERM when BPF is denied), changing nothing. Silences libbpf's messages while it runs. */
int exec_maps_capture_new(struct exec_maps_capture **ret);
/* Detaches and unloads; accepts NULL; returns NULL. */
struct exec_maps_capture *exec_maps_capture_free(struct exec_maps_capture *c);
DEFINE_CLEANUP_FUNC(struct exec_maps_capture *, exec_maps_capture_free);
#define _cleanup_exec_maps_capture_ _cleanup_(exec_maps_capture_freep)

/* An fd that polls readable while records wait. */
int exec_maps_capture_fd(const struct exec_maps_capture *c);
/* Hands each waiting record to fn, at most 1024 (the fd stays readable while more wait); never
 * blocks. The number handed on, -errno, or fn's return. */
int exec_maps_capture_drain(struct exec_maps_capture *c, exec_maps_record_fn fn, void *userdata);
/* As mm_tracker_set_wake_delay(), for the records. */
void exec_maps_capture_set_wake_delay(struct exec_maps_capture *c, uint64_t delay_ns);

struct exec_maps_capture_stats {
        uint64_t emitted;       /* records sent */
        uint64_t lost;          /* records the ring buffer had no room for */
        uint64_t unread;        /* captures that found the address space locked */
        uint64_t skipped;       /* changes not captured: they could change nothing told */
};
void exec_maps_capture_get_stats(const struct exec_maps_capture *c, struct exec_maps_capture_stats *ret);
/* Records taken out of the ring buffer so far, by every drain. Once it reaches what
 * exec_maps_capture_get_stats() said was emitted at some moment, the records sent before that
 * moment were handed on (a send is counted after its record is in the ring buffer; the ring's
 * order is that of reservations, so a record reserved earlier and still being written by another
 * CPU could stand in for one of them: rare, and never more than the ring's writers). */
uint64_t exec_maps_capture_consumed(const struct exec_maps_capture *c);

/* A process some of whose records were lost. */
struct exec_maps_lost_process {
        uint32_t tgid;
        uint64_t start_boottime;
};

/* Takes out the processes whose records were lost since the last call (each told once): *ret
 * (malloc'd, *ret_n of them), and *ret_all whether they are every one (false: a loss could not
 * be told by process, and the caller must forget everything). Call it after seeing the lost
 * count move: every loss counted was noted before. 0 or -errno. */
int exec_maps_capture_take_lost(struct exec_maps_capture *c, struct exec_maps_lost_process **ret, size_t *ret_n,
                                bool *ret_all);
