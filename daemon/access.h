/* Who a client is (from the socket, never the request), and running its queries with its own credentials so the kernel decides what it may read. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The kernel's NGROUPS_MAX: a client may have this many supplementary groups. */
#define CLIENT_GROUPS_MAX 65536
/* The daemon's own supplementary groups, saved while a thread acts as a client. */
#define DAEMON_GROUPS_MAX 256

struct client {
        pid_t pid;
        uid_t uid;
        gid_t gid;
        /* Who is charged for the client's connections, memory and stuck calls: the uid that
         * owns the outermost user namespace the client runs in below the daemon's (one user
         * with a /etc/subuid range owns every uid of it), else uid. */
        uid_t owner;
        /* The client's user namespace when it is not the daemon's (inode number in nsfs), else
         * 0; USERNS_UNKNOWN when it could not be found (the peer is gone). The kernel lets a
         * process in a user namespace read no process outside it, whatever the uids say. */
        ino_t userns;
        size_t n_groups;
        gid_t *groups;                    /* supplementary groups (SO_PEERGROUPS), malloc()ed */
        bool privileged;                  /* root, or a member of an allowed group */
};

/* Identifies the peer of a connected Unix socket with SO_PEERCRED and SO_PEERGROUPS (the
 * credentials it had at connect() time, every supplementary group however many), finds the
 * owner it is charged to and decides whether it is privileged: uid 0, or primary or
 * supplementary group in allowed_gids. */
int client_from_socket(int fd, const gid_t *allowed_gids, size_t n_allowed, struct client *ret);

/* Frees what a client owns; accepts NULL and a zeroed client. */
void client_done(struct client *c);

/* A deep copy (the group list too). 0 or -ENOMEM. */
int client_copy(const struct client *c, struct client *ret);

#define USERNS_UNKNOWN ((ino_t) -1)

/* Whether the user namespace of the process whose /proc/PID directory is proc_fd is the one
 * numbered userns or lies below it: 1, 0, or -errno. */
int process_userns_within(int proc_fd, ino_t userns);

/* The uid that owns the outermost user namespace below the daemon's that userns_fd (an fd of
 * a user namespace) descends from; -ENOENT when it is the daemon's own namespace, -errno. */
int userns_owner(int userns_fd, uid_t *ret);

/* Whether a process with these ids counts as privileged. */
bool client_is_privileged(const struct client *c, const gid_t *allowed_gids, size_t n_allowed);

/* The calling thread's credentials, saved while it acts as a client. */
struct impersonation {
        bool active;
        uid_t euid, fsuid;
        gid_t egid, fsgid;
        size_t n_groups;
        gid_t groups[DAEMON_GROUPS_MAX];
        uint32_t effective[2];            /* capability words */
};

/* Makes the calling thread (only it: raw syscalls, not glibc's process-wide set*id) act as
 * the client in every access check: its euid, egid, fsuid, fsgid and supplementary groups,
 * and no effective capabilities. The real and saved ids stay the daemon's, so the thread can
 * switch back and the client gains no hold over it (signals, ptrace). The kernel then
 * decides as it would for the client itself, the capability rule of user namespaces (the
 * owner, compared by euid, has every capability in them) included. -EPERM or -errno when
 * the switch cannot be made (the client must then not be served), with the thread restored;
 * -ENOTRECOVERABLE when even that failed: the thread must not serve anyone again. */
int impersonate_begin(const struct client *c, struct impersonation *ret);

/* Restores what impersonate_begin() saved, checked by reading it back; accepts an inactive
 * one. -ENOTRECOVERABLE when any of it could not be restored: the thread must not serve
 * anyone again. */
int impersonate_end(struct impersonation *s);

/* Resolves group names to gids; unknown names are skipped and counted in *ret_unknown. */
int resolve_groups(char *const *names, size_t n, gid_t *ret_gids, size_t *ret_n, size_t *ret_unknown);
