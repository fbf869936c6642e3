/* Test support: a FUSE filesystem served without libfuse, with one file that can be mmap()ed and whose reads are never answered (a stalled mount). */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* What the server saw, in memory shared with it. */
struct stall_fuse_counts {
        volatile uint32_t requests;
        volatile uint32_t reads_pending;        /* READ requests received, never answered */
        volatile uint32_t opens;
        volatile uint32_t lookups_pending;      /* LOOKUPs of "g..." after g's unlink, never answered */
};

struct stall_fuse {
        pid_t server;
        char dir[64];                           /* temporary directory; the mount is DIR/mnt */
        char mnt[80];
        char file[96];                          /* DIR/mnt/f, FILE_SIZE bytes, mode 0444 */
        char file2[96];                         /* DIR/mnt/g, the same; once unlinked, its
                                                 * name's lookups are never answered */
        struct stall_fuse_counts *counts;
};

#define STALL_FUSE_FILE_SIZE 8192

/* Mounts the filesystem for uid/gid and serves it from
 * a forked process, allow_other (as /etc/fuse.conf may let users mount): LOOKUP, GETATTR, OPEN,
 * RELEASE, FLUSH and UNLINK of g are answered, READ
 * never, nor LOOKUP of g or "g (deleted)" once g was unlinked.
 * -EOPNOTSUPP with *ret_why set when FUSE is unavailable here (no /dev/fuse, no mount), or
 * -errno. */
int stall_fuse_start(uid_t uid, gid_t gid, struct stall_fuse *ret, const char **ret_why);

/* Ends the server (the kernel then fails every request waiting on it), unmounts and removes
 * the directory. */
void stall_fuse_stop(struct stall_fuse *f);
