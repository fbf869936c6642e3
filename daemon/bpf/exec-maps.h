/* Plain types shared by the exec-maps BPF programs (executable file mappings captured at exec, change and exit) and the user space that drains them. */
#pragma once

/* Included by both sides: the BPF object sees vmlinux.h's __u32/__u64, user space linux/types.h. */
#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* A path longer than this is cut (EXEC_MAPS_M_PATH_CUT): user space keeps no path for it. */
#define EXEC_MAPS_PATH_MAX 256
/* Mappings per record: a range with more is told in several records, each stating a part of it. */
#define EXEC_MAPS_PER_RECORD 32
#define EXEC_MAPS_COMM_LEN 16

enum exec_maps_kind {
        EXEC_MAPS_EXEC = 1,     /* after an exec: the whole new set (the program and its interpreter) */
        EXEC_MAPS_CHANGE = 2,   /* after mmap, munmap, mprotect, mremap: the set in [range_start, range_end) */
        EXEC_MAPS_EXIT = 3,     /* the last thread exits (group_dead): the whole set, with the creds */
};

/* The record could not read the address space (its lock was contended: the iterator only tries):
 * what it states is unknown, not empty. */
#define EXEC_MAPS_F_UNREAD 0x1u
/* More records of the same event follow (a range with more than EXEC_MAPS_PER_RECORD mappings). */
#define EXEC_MAPS_F_MORE 0x2u

/* Mapping flags: the VMA's permissions as PERM_* of basic/perms.h name them, and the path's state. */
#define EXEC_MAPS_M_READ 0x1u
#define EXEC_MAPS_M_WRITE 0x2u
#define EXEC_MAPS_M_EXEC 0x4u
#define EXEC_MAPS_M_SHARED 0x8u
#define EXEC_MAPS_M_PATH_CUT 0x100u     /* longer than EXEC_MAPS_PATH_MAX or deeper than the walk */

struct exec_maps_mapping {
        __u64 start, end;       /* [start, end) */
        __u64 offset;           /* in the file, bytes */
        __u64 inode;
        __u32 dev;              /* the kernel's encoding: major << 20 | minor */
        __u32 flags;            /* EXEC_MAPS_M_* */
        __u32 path_len;         /* without the NUL */
        __u32 reserved;
        char path[EXEC_MAPS_PATH_MAX]; /* NUL-terminated, as the process's root saw it */
};

struct exec_maps_record {
        __u32 kind;             /* enum exec_maps_kind */
        __u32 tgid;
        __u64 start_boottime;   /* the process's start, ns since boot (keys it with tgid) */
        __u64 time_ns;          /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
        __u64 range_start, range_end; /* the record states every executable file mapping overlapping this */
        __u32 uid, euid, suid;  /* the process's credentials then (the leader's) */
        __u32 dumpable;         /* the mm's dumpable mode (0: not, 1: yes, 2: root only) */
        __u32 flags;            /* EXEC_MAPS_F_* */
        __u32 n;                /* mappings that follow */
        char comm[EXEC_MAPS_COMM_LEN];
        struct exec_maps_mapping m[EXEC_MAPS_PER_RECORD];
};

/* Processes whose records the ring buffer had no room for, kept by tgid until the daemon takes
 * them: only their histories are then in doubt, not everyone's. Past this many at once (or a
 * pid reused meanwhile) lost_unknown counts what could not be told, and the daemon forgets all. */
#define EXEC_MAPS_LOST_MAX 4096

struct exec_maps_lost {
        __u64 start_boottime;   /* the process's start, as in its records */
};

/* The header's size: a record is sent with its n mappings only. */
#define EXEC_MAPS_RECORD_HEADER ((unsigned long) &((struct exec_maps_record *) 0)->m)
