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

/* The mapped file's facts, captured with the mapping so that a file deleted or replaced later
 * still answers (build ID, elf_vaddr). They are read from the ELF header, program headers and
 * PT_NOTEs of the same file's offset-0 mapping in the same process, only where that mapping was
 * never written (read-only, no anonymous pages: what it shows is the file's page cache, not
 * something the process wrote), and kept in a cache keyed by the file's identity (device, inode,
 * change time, size, generation) that later captures reuse: a forked child that never exec'd has
 * no page-table entries for its files, and a range capture sees no offset-0 mapping. A mapping
 * whose facts were not read (the page was not present, no such mapping, the file changed
 * meanwhile, not a 64-bit little-endian ELF file) has flags 0: nothing is claimed. */
#define EXEC_MAPS_BUILD_ID_MAX 64
#define EXEC_MAPS_LOADS_MAX 8
#define EXEC_MAPS_FACTS_LOADS 0x1u      /* loads[] is the file's whole PT_LOAD table, in table order */
#define EXEC_MAPS_FACTS_BUILD_ID 0x2u   /* build_id is its GNU build ID, from a PT_NOTE segment */

struct exec_maps_load {
        __u64 offset, vaddr, filesz;    /* p_offset, p_vaddr, p_filesz */
};

struct exec_maps_facts {
        __u32 flags;                    /* EXEC_MAPS_FACTS_* */
        __u8 build_id_len;
        __u8 n_loads;
        __u16 reserved;
        __u8 build_id[EXEC_MAPS_BUILD_ID_MAX];
        struct exec_maps_load loads[EXEC_MAPS_LOADS_MAX];
};

struct exec_maps_mapping {
        __u64 start, end;       /* [start, end) */
        __u64 offset;           /* in the file, bytes */
        __u64 inode;
        __u32 dev;              /* the kernel's encoding: major << 20 | minor */
        __u32 flags;            /* EXEC_MAPS_M_* */
        __u32 path_len;         /* without the NUL */
        __u32 reserved;
        /* The file's identity beyond (dev, inode): a rewrite changes the change time, a reuse of
         * the inode the generation (where the filesystem keeps one) and the change time. */
        __u64 ctime_ns, size;
        __u32 generation;
        __u32 reserved2;
        struct exec_maps_facts facts;
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
