/* Plain types shared by the mm-track BPF programs and the user-space tracker that loads them. */
#pragma once

/* Included by both sides: the BPF object sees vmlinux.h's __u32/__u64, user space linux/types.h. */
#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* The generation and epoch arrays' default size: one u64 per slot, slot = tgid & (slots - 1). A power of two. */
#define MM_TRACK_DEFAULT_SLOTS (1u << 16)
#define MM_TRACK_MAX_SLOTS (1u << 22)

/* What a process event reports. */
enum mm_track_event_type {
        MM_TRACK_EXEC = 1,      /* tgid replaced its address space */
        MM_TRACK_EXIT = 2,      /* the last thread of tgid exited: its layout is gone */
        MM_TRACK_FORK = 3,      /* tgid is a new process, a child of parent_tgid */
};

/* fork: the child shares its parent's address space (CLONE_VM without CLONE_THREAD, as vfork
 * and posix_spawn do). Its changes count under the mm's owner, the parent, not under its own
 * tgid, until it execs: a layout store must not keep such a child's layout. */
#define MM_TRACK_F_SHARED_MM 0x1u

#define MM_TRACK_COMM_LEN 16

struct mm_track_event {
        __u32 type;             /* enum mm_track_event_type */
        __u32 tgid;
        __u32 pid;              /* exec: the thread that called execve (old_pid); else tgid's leader */
        __u32 parent_tgid;      /* fork: the parent; else 0 */
        __u32 flags;            /* MM_TRACK_F_* */
        __u32 reserved;
        __u64 start_boottime;   /* the process's start, ns since boot (task->start_boottime), keys (pid, start) */
        char comm[MM_TRACK_COMM_LEN];
        __u64 time_ns;          /* when it happened: bpf_ktime_get_ns(), CLOCK_MONOTONIC */
};
