/* A target process pinned for the length of one request: pidfd, /proc/PID directory, maps fd, identity. */

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "number.h"
#include "process.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static int pidfd_open_cloexec(pid_t pid) {
        /* pidfds are always close-on-exec. */
        long fd = syscall(SYS_pidfd_open, pid, 0);

        return fd < 0 ? -errno : (int) fd;
}

/* Field "field" (>= 3) of /proc/PID/stat as an unsigned decimal number. */
static int parse_stat_field(const char *stat, size_t len, unsigned want, uint64_t *ret) {
        const char *p, *end = stat + len;
        uint64_t v = 0;
        unsigned field;

        /* comm is field 2 in parentheses and may contain anything: the last ')' closes it. */
        p = memrchr(stat, ')', len);
        if (!p)
                return -EBADMSG;
        p++;
        /* After ')' come field 3 (state) onwards, each preceded by one space. */
        for (field = 2; field < want; field++) {
                if (p >= end || *p != ' ')
                        return -EBADMSG;
                p++;
                if (field + 1 == want)
                        break;
                while (p < end && *p != ' ')
                        p++;
        }
        if (p >= end || *p < '0' || *p > '9')
                return -EBADMSG;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
                if (v > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (*p - '0');
        }
        if (p < end && *p != ' ' && *p != '\n')
                return -EBADMSG;
        *ret = v;
        return 0;
}

int proc_parse_start_time(const char *stat, size_t len, uint64_t *ret) {
        return parse_stat_field(stat, len, 22, ret);
}

/* include/linux/sched.h: the task is a kernel thread (it has no mm of its own). */
#define PF_KTHREAD 0x00200000u

int proc_parse_kernel_thread(const char *stat, size_t len) {
        uint64_t flags;
        int r;

        r = parse_stat_field(stat, len, 9, &flags);
        if (r < 0)
                return r;
        return !!(flags & PF_KTHREAD);
}

/* Reads /proc/PID/NAME (stat, status) through an open /proc/PID directory fd into buf
 * (NUL-terminated), in one read: its length, or -errno (-ESRCH when the task is gone). */
static ssize_t read_proc_text(int proc_fd, const char *name, char *buf, size_t size) {
        _cleanup_close_ int fd = -1;
        ssize_t n;

        fd = openat(proc_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : -errno;
        n = RETRY_EINTR(read(fd, buf, size - 1));
        if (n < 0)
                return -errno;
        if (n == 0)
                return -ESRCH;
        buf[n] = 0;
        return n;
}

int proc_read_start_time(int proc_fd, uint64_t *ret) {
        char buf[4096];
        ssize_t n;

        n = read_proc_text(proc_fd, "stat", buf, sizeof(buf));
        if (n < 0)
                return (int) n;
        return proc_parse_start_time(buf, (size_t) n, ret);
}

/* The first number after key ("Tgid:") at the start of a line of status text, up to the end of
 * the line or a tab: 0 with *ret, or -EBADMSG. The Name line before it is escaped by the kernel
 * (no raw newline in it). */
static int status_number(const char *status, size_t len, const char *key, uint64_t max, uint64_t *ret) {
        const char *p = status, *end = status + len;
        size_t key_len = strlen(key);

        while (p < end) {
                const char *eol = memchr(p, '\n', (size_t) (end - p));
                size_t l = eol ? (size_t) (eol - p) : (size_t) (end - p);

                if (l > key_len && memcmp(p, key, key_len) == 0) {
                        const char *q = p + key_len;
                        uint64_t v = 0;

                        while (q < p + l && (*q == '\t' || *q == ' '))
                                q++;
                        if (q == p + l)
                                return -EBADMSG;
                        for (; q < p + l && *q != '\t'; q++) {
                                if (*q < '0' || *q > '9' || v > max / 10)
                                        return -EBADMSG;
                                v = v * 10 + (uint64_t) (*q - '0');
                        }
                        if (v > max)
                                return -EBADMSG;
                        *ret = v;
                        return 0;
                }
                p += l + 1;
        }
        return -EBADMSG;
}

int proc_parse_tgid(const char *status, size_t len, pid_t *ret) {
        uint64_t v;

        if (status_number(status, len, "Tgid:", INT32_MAX, &v) < 0 || v == 0)
                return -EBADMSG;
        *ret = (pid_t) v;
        return 0;
}

int proc_parse_uid(const char *status, size_t len, uid_t *ret) {
        uint64_t v;

        /* "Uid:\t<real>\t<effective>\t<saved>\t<fs>"; (uid_t) -1 is no one's. */
        if (status_number(status, len, "Uid:", UINT32_MAX - 1, &v) < 0)
                return -EBADMSG;
        *ret = (uid_t) v;
        return 0;
}

/* The thread group id of the task whose /proc directory is proc_fd. */
static int read_tgid(int proc_fd, pid_t *ret) {
        char buf[4096];
        ssize_t n;

        /* Tgid is the fourth line: the first read holds it. */
        n = read_proc_text(proc_fd, "status", buf, sizeof(buf));
        /* A -errno always fits: the bound only tells the compiler that the int is negative
         * too (built without -fPIC, gcc otherwise warns that *ret may be left unset). */
        if (n < 0)
                return n >= INT_MIN ? (int) n : -EIO;
        return proc_parse_tgid(buf, (size_t) n, ret);
}

int process_read_uid(const struct process *p, uid_t *ret) {
        char buf[4096];
        ssize_t n;

        /* Uid is the ninth line: the first read holds it. */
        n = read_proc_text(p->proc_fd, "status", buf, sizeof(buf));
        if (n < 0)
                return (int) n;
        return proc_parse_uid(buf, (size_t) n, ret);
}

int process_check_alive(const struct process *p) {
        struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };

        if (p->pidfd < 0)
                /* Without pidfds the start time is the identity we can check. */
                return faccessat(p->proc_fd, "stat", F_OK, 0) < 0 ? -ESRCH : 0;

        /* A pidfd turns readable when the process exits. */
        if (RETRY_EINTR(poll(&pfd, 1, 0)) < 0)
                return -errno;
        return pfd.revents & (POLLIN | POLLHUP) ? -ESRCH : 0;
}

int process_same(pid_t pid, uint64_t start_time) {
        _cleanup_close_ int fd = -1;
        char path[32];
        uint64_t t;
        int r;

        snprintf(path, sizeof(path), "/proc/%d", (int) pid);
        fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        r = proc_read_start_time(fd, &t);
        if (r == -ESRCH)
                return 0;
        if (r < 0)
                return r;
        return t == start_time;
}

/* include/linux/sched.h: the task is exiting (set before it lets go of its mm). */
#define PF_EXITING 0x00000004u

/* Whether the task exits (or is gone): 1, 0, or -errno. */
static int process_exiting(const struct process *p) {
        char buf[4096];
        uint64_t flags;
        ssize_t n = read_proc_text(p->proc_fd, "stat", buf, sizeof(buf));
        int r;

        if (n == -ESRCH)
                return 1;
        if (n < 0)
                return (int) n;
        r = parse_stat_field(buf, (size_t) n, 9, &flags);
        if (r < 0)
                return r;
        return !!(flags & PF_EXITING);
}

int process_maps_stale(const struct process *p) {
        _cleanup_close_ int fd = -1;
        char c;

        if (RETRY_EINTR(pread(p->maps_fd, &c, 1, 0)) != 0)
                return 0;
        fd = openat(p->proc_fd, "maps", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                /* Refused now where it was allowed before: not the mm that was opened either. */
                return errno == ENOENT || errno == ESRCH ? 0 : 1;
        if (RETRY_EINTR(read(fd, &c, 1)) > 0)
                return 1;
        /* Empty again: the process let go of its mm (it exits), or this open too named the mm an
         * exec was replacing (opened before the exec swapped it, read after it died). Only an
         * exit leaves a live process without one. */
        return process_exiting(p) == 0;
}

struct process *process_ref(struct process *p) {
        p->refs++;
        return p;
}

struct process *process_free(struct process *p) {
        if (!p || --p->refs > 0)
                return NULL;
        closep(&p->pidfd);
        closep(&p->proc_fd);
        closep(&p->maps_fd);
        free(p);
        return NULL;
}

static int open_one(pid_t pid, bool follow_tgid, struct process **ret) {
        _cleanup_(process_freep) struct process *p = NULL;
        char path[32], stat[4096];
        bool leader = false;
        ssize_t n;
        int r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        *p = (struct process) { .pid = pid, .pidfd = -1, .proc_fd = -1, .maps_fd = -1, .refs = 1 };

        /* ENOSYS: an old kernel; EINVAL (ENOENT since Linux 6.x): pid is a thread, not a
         * thread-group leader. The start time then remains the identity check. A pid that
         * names nothing is ESRCH. */
        r = pidfd_open_cloexec(pid);
        if (r == -ENOSYS || r == -EINVAL || r == -ENOENT)
                r = -1;
        else if (r < 0)
                return r;
        else
                leader = true;
        p->pidfd = r;

        snprintf(path, sizeof(path), "/proc/%d", (int) pid);
        p->proc_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (p->proc_fd < 0)
                return errno == ENOENT ? -ESRCH : -errno;

        /* A thread id (perf samples carry them; /proc/TID exists though no listing shows it)
         * stands for its thread group: what is opened, reported and access-checked is the
         * process. Leaders need no look. */
        if (!leader && follow_tgid) {
                pid_t tgid;

                r = read_tgid(p->proc_fd, &tgid);
                if (r < 0)
                        return r;
                if (tgid != pid) {
                        _cleanup_(process_freep) struct process *group = NULL;
                        char task[32];

                        r = open_one(tgid, false, &group);
                        if (r < 0)
                                return r;
                        /* The thread group opened (and pinned) must still hold the thread:
                         * else the group exited and its id was reused in between. */
                        snprintf(task, sizeof(task), "task/%d", (int) pid);
                        if (faccessat(group->proc_fd, task, F_OK, 0) < 0)
                                return -ESRCH;
                        *ret = TAKE_PTR(group);
                        return 0;
                }
        }

        n = read_proc_text(p->proc_fd, "stat", stat, sizeof(stat));
        if (n < 0)
                return (int) n;
        r = proc_parse_start_time(stat, (size_t) n, &p->start_time);
        if (r < 0)
                return r;
        r = proc_parse_kernel_thread(stat, (size_t) n);
        if (r < 0)
                return r;
        p->kernel_thread = r;

        p->maps_fd = openat(p->proc_fd, "maps", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (p->maps_fd < 0)
                return errno == ENOENT ? -ESRCH : -errno;

        /* The pid cannot be reused while the pinned process exists (even as a zombie): if it
         * is still alive now, /proc/PID and the maps fd belong to it. */
        r = process_check_alive(p);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(p);
        return 0;
}

int process_open(pid_t pid, struct process **ret) {
        if (pid <= 0)
                return -ESRCH;
        return open_one(pid, true, ret);
}
