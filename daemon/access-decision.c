/* The access decision: the kernel's check under the client's credentials, plus what the kernel cannot see from the serving thread. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "access-decision.h"
#include "cleanup.h"
#include "time-util.h"

/* Whether the thread group of the /proc directory dir (relative to dir_fd) has a live thread
 * tid. */
static bool has_thread(int dir_fd, const char *dir, pid_t tid) {
        char path[64];

        snprintf(path, sizeof(path), "%stask/%d", dir, (int) tid);
        return faccessat(dir_fd, path, F_OK, 0) >= 0;
}

/* Opens pid as the calling thread may. The kernel skips its access check when a process reads
 * its own maps, so the daemon's own thread group (its pid, any of its thread ids) would be
 * shown to anyone: it is refused to unprivileged clients here, before anything is opened,
 * with the error any refused process gets. */
static int open_as_client(const struct client *c, pid_t pid, struct process **ret) {
        _cleanup_(process_freep) struct process *p = NULL;
        int r;

        if (c->privileged)
                return process_open(pid, ret);
        if (pid == getpid() || has_thread(AT_FDCWD, "/proc/self/", pid))
                return -EPERM;
        r = process_open(pid, &p);
        if (r < 0)
                return r;
        /* A thread the daemon started after the check (a read-ahead thread takes whatever tid
         * is free) would have been let in too: what was opened is asked again while its /proc
         * directory pins it (is the daemon's main thread in its thread group?), and then
         * whether it still lives, so that a thread of ours that ended in between is not taken
         * for another process. */
        if (has_thread(p->proc_fd, "", getpid()))
                return -EPERM;
        /* A client inside a user namespace reads nothing outside it through the kernel (the
         * capability check runs in the client's namespace), but the serving thread stays in
         * ours: ask that part of the question here. */
        if (c->userns != 0) {
                r = process_userns_within(p->proc_fd, c->userns);
                if (r <= 0)
                        return r == 0 ? -EPERM : r == -ENOENT ? -ESRCH : r;
        }
        r = process_check_alive(p);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

int access_decide(const struct client *c, pid_t pid, struct process **ret_process, struct access_decision *ret) {
        struct process *p = NULL;
        int r;

        r = open_as_client(c, pid, &p);
        if (r < 0)
                return r;
        *ret = (struct access_decision) {
                .pid = p->pid,
                .start_time = p->start_time,
                .uid = c->uid,
                .gid = c->gid,
                .userns = c->userns,
                .privileged = c->privileged,
                .decided_usec = now_usec(),
        };
        *ret_process = p;
        return 0;
}

static bool same_identity(const struct access_decision *d, const struct client *c) {
        return d->uid == c->uid && d->gid == c->gid && d->userns == c->userns && d->privileged == c->privileged;
}

bool access_decision_stands(const struct access_decision *d, const struct client *c, pid_t pid, uint64_t start_time,
                            uint64_t now_usec, uint64_t exited_usec) {
        if (d->pid != pid || d->start_time != start_time)
                return false;
        if (exited_usec != 0 && c->privileged)
                return true;
        if (!same_identity(d, c))
                return false;
        if (exited_usec != 0)
                return d->decided_usec <= exited_usec && exited_usec - d->decided_usec <= ACCESS_RETAINED_USEC;
        return now_usec >= d->decided_usec && now_usec - d->decided_usec < ACCESS_DECISION_USEC;
}
