/* The access decision: may this client see this process now? Asked once per request before any layout is read or served. */
#pragma once

/* The rule. A layout of a process (or anything read from it) is served to a client only after
 * access_decide() said yes for that client and that process. The kernel answers, as it would
 * for the client itself:
 *
 *   - the question asked is opening /proc/PID/maps (O_RDONLY) on a thread that acts as the
 *     client (impersonate_begin(): its euid/egid/fsuid/fsgid and supplementary groups, no
 *     capabilities), which makes the kernel run its ptrace access check
 *     (PTRACE_MODE_READ_FSCREDS: same uids and a dumpable target, or CAP_SYS_PTRACE in the
 *     target's user namespace, and the LSMs' say) against the target's mm. Privileged clients
 *     (root, allowed groups) are asked on the daemon's own credentials;
 *   - two parts the kernel cannot see from our thread are asked here: the daemon's own thread
 *     group is refused to unprivileged clients (the kernel skips its check when a process reads
 *     its own maps), and a client inside a user namespace sees only processes in or below it
 *     (the serving thread stays in the daemon's namespace).
 *
 * A yes is a struct access_decision: who asked (uid, gid, user namespace), about which process
 * (pid, start time), and when. It stands for ACCESS_DECISION_USEC after it was made, for the
 * same client identity and the same process: a connection's cached target is served within
 * that window without asking again (a client keeps what it could read when the target was
 * opened, as it would by keeping its own fd open, but for no longer than this after the kernel
 * would begin to refuse it: the target became undumpable or changed credentials without exec).
 *
 * Retained layouts of exited processes (issue 15, not implemented) cannot be asked of the
 * kernel any more. The rule they will follow: a layout kept after the exit of (pid, start
 * time) is served to a privileged client, or to a client with the same identity (uid, gid,
 * user namespace) as one whose decision said yes for that process while it lived and was made
 * at most ACCESS_RETAINED_USEC before the exit; nobody else. access_decision_stands() is that
 * test, given the decision recorded while the process lived and the time of its exit. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "access.h"
#include "process.h"

/* How long a yes stands for a live process. */
#define ACCESS_DECISION_USEC 1000000u
/* How long before a process's exit a yes must have been made to let its retained layout be
 * served (issue 15). */
#define ACCESS_RETAINED_USEC 60000000u

struct access_decision {
        pid_t pid;
        uint64_t start_time;            /* the process's, from /proc/PID/stat */
        uid_t uid;                      /* the client's identity when it was asked */
        gid_t gid;
        ino_t userns;
        bool privileged;
        uint64_t decided_usec;          /* CLOCK_MONOTONIC */
        /* With change tracking: the process's exec epoch when the kernel was asked, known when it
         * was the same before and after (tracking.h). A stored layout is served on this
         * decision only when it was read under the same epoch: never across an exec. */
        bool epoch_known;
        uint64_t epoch;
};

/* May client c see process pid now? Asks the kernel with the calling thread's credentials
 * (which must be the client's, see impersonate_begin(), unless c is privileged). Yes: 0, with
 * the opened process in *ret_process (its maps fd is the kernel's yes: reads through it need
 * no second check) and the decision in *ret. No: -EPERM or -EACCES. -ESRCH (or -ENOENT) when
 * there is no such process, other -errno. Nothing is returned on failure. */
int access_decide(const struct client *c, pid_t pid, struct process **ret_process, struct access_decision *ret);

/* Whether decision d lets client c be served a layout of (pid, start_time) at now_usec: the
 * same process and client identity, and d at most ACCESS_DECISION_USEC old. When the process
 * has exited (exited_usec nonzero, the time of its exit), the rule for retained layouts
 * above: c privileged, or d made for the same identity at most ACCESS_RETAINED_USEC before
 * the exit. */
bool access_decision_stands(const struct access_decision *d, const struct client *c, pid_t pid, uint64_t start_time,
                            uint64_t now_usec, uint64_t exited_usec);
