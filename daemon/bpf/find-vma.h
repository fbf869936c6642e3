/* The plain types the find-vma BPF iterator shares with user space: the inodes asked for and the records it writes. */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Inodes one pass may look for: more is refused by the loader. */
#define FIND_VMA_MAX_TARGETS 4096

/* The longest file name (a path's last component) the unlinked files are filtered by, NUL included. */
#define FIND_VMA_NAME_MAX 256

/* dev in the kernel's encoding (major << 20 | minor), as the iterator reads it from s_dev. */
struct find_vma_key {
        __u32 dev;
        __u32 pad;      /* zero: keys are compared bytewise */
        __u64 ino;
};

enum {
        /* Every file mapping, whatever its inode (to learn which inodes the machine maps). */
        FIND_VMA_ALL_FILES = 1u << 0,
        /* Also mappings of files unlinked or replaced since they were mapped, those whose name
         * (the dentry's: a replaced file keeps it) is unlinked_name when it is set. */
        FIND_VMA_UNLINKED = 1u << 1,
};

enum {
        FIND_VMA_REC_UNLINKED = 1u << 0,
};

/* One matching mapping, as the iterator writes it to its seq file. */
struct find_vma_rec {
        __u32 tgid;
        __u32 dev;
        __u64 ino;
        __u64 start;
        __u64 end;
        __u32 flags;
        __u32 pad;
};
