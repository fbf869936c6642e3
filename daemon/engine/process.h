/* A target process pinned for the length of one request: pidfd, /proc/PID directory, maps fd, identity. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct process {
        pid_t pid;
        int pidfd;        /* -1 where the kernel has no pidfd_open() */
        int proc_fd;      /* O_PATH|O_DIRECTORY fd of /proc/PID */
        int maps_fd;      /* /proc/PID/maps, bound to the mm it was opened against */
        uint64_t start_time;
        bool kernel_thread; /* PF_KTHREAD: no user address space, nothing mapped */
        unsigned refs;    /* holders: a request, a connection's cache; one thread at a time */
};

/* Opens everything for pid (a thread id stands for its thread group: p->pid is then the
 * thread group id), and checks afterwards that the pid still names the process the
 * pidfd pins, so every fd refers to one process even if the pid is being reused.
 * -ESRCH when there is no such process (or it exited meanwhile), -EACCES/-EPERM when the
 * maps cannot be opened, other -errno. */
int process_open(pid_t pid, struct process **ret);

/* Another holder of p (returns p). Holders of one process must not use it concurrently. */
struct process *process_ref(struct process *p);

/* Drops a holder: the last one closes everything. Accepts NULL; returns NULL. */
struct process *process_free(struct process *p);

/* Checks that the process has not exited since process_open(): 0, or -ESRCH. */
int process_check_alive(const struct process *p);

/* Whether pid still names the process that started at start_time (an exec keeps both): 1; 0
 * when it exited or the pid names another process now; or -errno. */
int process_same(pid_t pid, uint64_t start_time);

/* Whether p's maps fd lost its mm: 1 when it reads no text while /proc/PID/maps opened now has
 * some (or is refused); after an exec, the fd opened before it names the old mm, whose text
 * reads as empty. 0 when p's fd has text, when both are empty (a kernel thread) or when the
 * process is gone. */
int process_maps_stale(const struct process *p);

/* Reads field 22 of /proc/PID/stat through an open /proc/PID directory fd. */
int proc_read_start_time(int proc_fd, uint64_t *ret);

/* Parses the text of /proc/PID/stat (hostile: comm may hold spaces and parentheses). */
int proc_parse_start_time(const char *stat, size_t len, uint64_t *ret);

/* Whether the stat text's flags (field 9) mark a kernel thread: 1, 0, or -EBADMSG. */
int proc_parse_kernel_thread(const char *stat, size_t len);

/* The Tgid of the text of /proc/PID/status. -EBADMSG when there is none or it is malformed. */
int proc_parse_tgid(const char *status, size_t len, pid_t *ret);

/* The real uid (the first of the Uid: line) of the text of /proc/PID/status; -EBADMSG. */
int proc_parse_uid(const char *status, size_t len, uid_t *ret);

/* The real uid of p: who runs it, also when it is non-dumpable (its /proc files show root
 * then). 0, -ESRCH, other -errno. */
int process_read_uid(const struct process *p, uid_t *ret);
