/* Test support: a forked process that maps pages of a file, optionally as nobody, and lives until its control pipe closes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct mapper {
        pid_t pid;
        int control_fd;         /* closing it ends the process */
};

/* Forks a process that maps the first pages of lib (each its own mapping: page 0 read-only,
 * the others read and execute; lib NULL or pages 0: none), then becomes uid (and gid) with no
 * supplementary groups and dumpable again when uid is not -1, and waits. No exec follows the
 * fork: the control fds of earlier mappers (close_fds) are closed in the child. Waits until it
 * is ready. 0 or -errno. */
int mapper_start(const char *lib, size_t pages, uid_t uid, const int *close_fds, size_t n_close, struct mapper *ret);

/* Closes its control pipe and reaps it. */
void mapper_stop(struct mapper *m);
