/* The history of processes' executable file mappings (each with the interval it was valid), kept after exit for a while within a memory bound: answers after exit and as of a time. */
#pragma once

/* Design. Records come from the BPF capture (exec-maps.h), converted by the caller: a FULL record
 * states every executable file mapping of the process at a time (after exec, at exit), a RANGE
 * record every one overlapping [lo, hi) (after mmap, munmap, mprotect, mremap). Applying one
 * closes the intervals of what is no longer there (trimmed to the part outside the range: the
 * rest of a split mapping stays as it was) and opens intervals for what is new.
 *
 * A process's history is complete from known_since on: its exec, its fork (the parent's set is
 * copied), a seed (a complete read of a live process by the daemon), or its first full record
 * (a range record over everything, [0, UINT64_MAX), is one: the capture tells the first change
 * of a process never told whole so, and the next change after a record that could not be read:
 * until then, answers in that record's range may miss its change).
 * A question about an earlier time is answered with -ERANGE. The times are CLOCK_MONOTONIC
 * microseconds, as bpf_ktime_get_ns() / 1000 and perf samples give them.
 *
 * Processes are keyed by (pid, start_time): a reused pid is another process. An exited process is
 * kept for retain_usec after its exit; past max_bytes (all processes) or max_bytes_per_uid
 * (the exited processes of one owner) the oldest exits go first. Live processes count toward
 * max_bytes but are never dropped for it (only their exit or lost records end them): each is
 * bounded instead, a history growing past EXEC_HISTORY_INTERVALS_MAX forgetting its oldest
 * closed intervals (known_since moves).
 *
 * File facts (build ID, PT_LOADs) come with a record's mappings where the capture could read
 * them. An interval keeps the facts it was opened with; one opened without gets them from a later
 * record of the process that states the same file (dev, inode and file_id): the exec's capture
 * finds no page of a new program present, its exit's does. Facts are never replaced once set.
 *
 * Thread-safe: records are applied on the server's loop, questions asked from workers. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define EXEC_HISTORY_INTERVALS_MAX 4096
#define EXEC_HISTORY_RETAIN_SEC_DEFAULT 60
#define EXEC_HISTORY_MAX_BYTES_DEFAULT (64u << 20)

#define EXEC_HISTORY_BUILD_ID_MAX 64
#define EXEC_HISTORY_LOADS_MAX 8

/* A mapped file's facts as the capture read them with the mapping (exec-maps.h): kept so that a
 * file deleted or replaced after the process exited still answers with the build ID it had and
 * the elf_vaddr of its own PT_LOADs. Many mappings of many processes map one file: the history
 * keeps each distinct facts once (counted in max_bytes, not in any process's or owner's share),
 * referenced by every interval that has them. */
struct exec_history_facts {
        uint8_t build_id_len;           /* 1..EXEC_HISTORY_BUILD_ID_MAX */
        bool has_loads;                 /* loads[] is the file's whole PT_LOAD table */
        uint8_t n_loads;
        uint8_t build_id[EXEC_HISTORY_BUILD_ID_MAX];
        struct exec_history_load {
                uint64_t offset, vaddr, filesz;
        } loads[EXEC_HISTORY_LOADS_MAX];
};

struct exec_history_mapping {
        uint64_t start, end;            /* [start, end) */
        uint64_t offset;
        uint64_t inode;
        uint32_t dev_major, dev_minor;
        uint8_t flags;                  /* PERM_* of basic/perms.h */
        char *path;                     /* NULL: unknown (cut) */
        uint64_t from_usec, to_usec;    /* valid in [from, to); to UINT64_MAX: still valid */
        /* The file's content beyond (dev, inode) (change time, size, generation mixed): a later
         * record's facts of the same file_id stand for an interval captured without them (read
         * at exit when the exec could not). 0: unknown, nothing adopted. */
        uint64_t file_id;
        /* NULL: none captured. In a record, the caller's; in a view, the view's copy; in a diff,
         * always NULL. */
        const struct exec_history_facts *facts;
};

enum exec_history_record_kind {
        EXEC_HISTORY_EXEC,              /* full: a new program, everything before ends */
        EXEC_HISTORY_RANGE,             /* the set overlapping [lo, hi) */
        EXEC_HISTORY_EXIT,              /* full, and the process ended */
};

struct exec_history_record {
        enum exec_history_record_kind kind;
        pid_t pid;
        uint64_t start_time;            /* clock ticks since boot, as /proc/PID/stat */
        uint64_t time_usec;
        uint64_t lo, hi;                /* RANGE only */
        uid_t uid, euid, suid;
        unsigned dumpable;
        char comm[16];
        const struct exec_history_mapping *mappings;    /* from/to ignored; path may be NULL */
        size_t n;
        /* The capture could not read the address space: nothing is stated. A RANGE or EXEC
         * record is then ignored (an EXEC leaves the process's history incomplete); an EXIT
         * ends the process with the set it had. */
        bool unread;
};

/* What a record changed: copies, the caller's (exec_history_diff_done()). */
struct exec_history_diff {
        struct exec_history_mapping *added, *removed;
        size_t n_added, n_removed;
        /* A range record of a process whose whole set was not known (never seen from its exec
         * or fork, or forgotten after lost records): what went there is not known, so added is
         * every mapping the record states, all of those overlapping [lo, hi), and whoever keeps
         * a copy clears that range (keeping the parts of a mapping outside it) before adding. */
        bool whole_range;
        /* A range record that could not be read: [lo, hi) changed, how is not known until the
         * process's next record (the capture then states its whole set): whoever keeps a copy
         * must read it again. */
        bool unknown;
        uint64_t lo, hi;                /* whole_range, unknown */
};
void exec_history_diff_done(struct exec_history_diff *d);

struct exec_history_config {
        uint64_t retain_usec;           /* 0: EXEC_HISTORY_RETAIN_SEC_DEFAULT s */
        size_t max_bytes;               /* 0: EXEC_HISTORY_MAX_BYTES_DEFAULT */
        size_t max_bytes_per_uid;       /* 0: max_bytes / 4 */
};

struct exec_history;

int exec_history_new(const struct exec_history_config *cfg, struct exec_history **ret);
/* Accepts NULL; returns NULL. */
struct exec_history *exec_history_free(struct exec_history *h);

/* Applies r (see the design). ret_diff (may be NULL) receives what came and went. -ENOMEM, -EINVAL. */
int exec_history_apply(struct exec_history *h, const struct exec_history_record *r, struct exec_history_diff *ret_diff);

/* child (a new process at time_usec) starts with the set parent had then, when parent (the
 * process under that pid alive then, exited since or not) is known then. Range records of the
 * child applied before (its changes drained ahead of its fork event: two ring buffers) are
 * applied again over that set, in their order. 0, or -ENOENT when parent is not known then or
 * the child needs no base (its exec or exit stated its whole set, or more records came first
 * than are kept: its exit will state it). A fork whose parent is not known yet is kept (the
 * last 64) and made when a record makes the parent known then (its exec record, drained after
 * the fork event). */
int exec_history_fork(struct exec_history *h, pid_t parent, pid_t child, uint64_t child_start_time,
                      uint64_t time_usec);

/* The process's set as the daemon read it complete between read_from and read_to (a live
 * process first seen by a query): its history starts there, unless records already made it
 * complete. A change stamped within the read may or may not be in it: records of those, applied
 * after, make the set right, so times are known from read_to on (before, the read could show a
 * change still to come). Records stamped before read_from are in the read and are ignored.
 * Ignored when a record of the process was applied since generation was taken
 * (exec_history_generation()). */
int exec_history_seed(struct exec_history *h, pid_t pid, uint64_t start_time, uint64_t read_from, uint64_t read_to,
                      uint64_t generation, const struct exec_history_mapping *m, size_t n, uid_t uid);
/* Counts every record applied: a seed read after this is older than none of them. */
uint64_t exec_history_generation(const struct exec_history *h);

/* Whether the set of (pid, start_time) is known whole now (its exec, its fork, a seed or a whole
 * record made it so, and no change since went unread), or it exited. */
bool exec_history_complete(struct exec_history *h, pid_t pid, uint64_t start_time);

/* Forgets the process (pid, start_time): some of its records were lost. 0, or -ENOENT. */
int exec_history_forget(struct exec_history *h, pid_t pid, uint64_t start_time);

/* Forgets every process (events were lost: what is kept may lack changes). */
void exec_history_clear(struct exec_history *h);

/* Drops what is past retention at now_usec. */
void exec_history_expire(struct exec_history *h, uint64_t now_usec);

/* What a question gets: a copy (exec_history_view_done()). */
struct exec_history_view {
        pid_t pid;
        uint64_t start_time;
        bool exited;
        uint64_t exit_usec;
        uint64_t known_since_usec;
        /* Since when it runs the program it ran last (its last exec, or known_since): the
         * credentials below are that program's, and only its times may be shown to whoever
         * they let see the process (an earlier program may have been another user's). */
        uint64_t program_since_usec;
        uid_t uid, euid, suid;          /* at exit (else the latest record's) */
        unsigned dumpable;
        char comm[16];
        struct exec_history_mapping *mappings;  /* valid at the time asked, sorted by start */
        size_t n;
};
void exec_history_view_done(struct exec_history_view *v);

enum {
        EXEC_HISTORY_EXITED_ONLY = 1u << 0,     /* only a process that exited */
        EXEC_HISTORY_AT_TIME = 1u << 1,         /* as of time_usec, else the latest set */
};

/* The process pid (start_time 0: the latest process under pid, which must have exited when
 * EXITED_ONLY asks for one: a pid reused by a live process names that one) and its mappings
 * valid at time_usec (or the latest: at its exit). -ENOENT: not known; -ERANGE: time_usec is
 * before what is known of it (*ret still filled, without mappings: who it is, since when);
 * -ENOMEM. */
int exec_history_get(struct exec_history *h, pid_t pid, uint64_t start_time, uint64_t time_usec, unsigned flags,
                     struct exec_history_view *ret);

struct exec_history_stats {
        size_t processes;               /* kept, live or exited */
        size_t exited;
        size_t bytes;
        uint64_t evicted;               /* exited processes dropped before their time (memory) */
        uint64_t records;               /* applied */
};
void exec_history_get_stats(struct exec_history *h, struct exec_history_stats *ret);
