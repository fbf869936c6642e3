/* Who a client is (from the socket, never the request), and running its queries with its own credentials so the kernel decides what it may read. */

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <grp.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "access.h"
#include "cleanup.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

bool client_is_privileged(const struct client *c, const gid_t *allowed, size_t n_allowed) {
        if (c->uid == 0)
                return true;
        for (size_t i = 0; i < n_allowed; i++) {
                if (c->gid == allowed[i])
                        return true;
                for (size_t j = 0; j < c->n_groups; j++)
                        if (c->groups[j] == allowed[i])
                                return true;
        }
        return false;
}

void client_done(struct client *c) {
        if (!c)
                return;
        free(c->groups);
        c->groups = NULL;
        c->n_groups = 0;
}

int client_copy(const struct client *c, struct client *ret) {
        struct client x = *c;

        x.groups = NULL;
        if (c->n_groups > 0) {
                x.groups = malloc(c->n_groups * sizeof(gid_t));
                if (!x.groups)
                        return -ENOMEM;
                memcpy(x.groups, c->groups, c->n_groups * sizeof(gid_t));
        }
        *ret = x;
        return 0;
}

/* Every supplementary group of the peer. The kernel copies nothing when the buffer is too
 * small (ERANGE) but says how much it needs: ask again with that much. */
static int peer_groups(int fd, gid_t **ret, size_t *ret_n) {
        _cleanup_free_ gid_t *groups = NULL;
        socklen_t len = 64 * sizeof(gid_t);

        for (unsigned attempt = 0; attempt < 4; attempt++) {
                socklen_t want = len;
                gid_t *g;

                if (want < sizeof(gid_t) || want > CLIENT_GROUPS_MAX * sizeof(gid_t))
                        return -E2BIG;
                g = realloc(groups, want);
                if (!g)
                        return -ENOMEM;
                groups = g;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) >= 0) {
                        if (len % sizeof(gid_t) != 0 || len > want)
                                return -EIO;
                        *ret_n = len / sizeof(gid_t);
                        *ret = len > 0 ? TAKE_PTR(groups) : NULL;
                        return 0;
                }
                if (errno == ENOPROTOOPT) {
                        /* Kernels before 4.13: no supplementary groups known. Unknown groups
                         * only ever grant access, so an empty list errs on the safe side. */
                        *ret_n = 0;
                        *ret = NULL;
                        return 0;
                }
                if (errno != ERANGE)
                        return -errno;
                /* The group list may grow between the calls: ask once more at most. */
                if (len <= want)
                        len = want * 2;
        }
        return -EAGAIN;
}

static int ns_ino(int fd, ino_t *ret) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        *ret = st.st_ino;
        return 0;
}

static int self_userns(ino_t *ret) {
        _cleanup_close_ int s = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);

        if (s < 0)
                return -errno;
        return ns_ino(s, ret);
}

int process_userns_within(int proc_fd, ino_t userns) {
        _cleanup_close_ int cur = openat(proc_fd, "ns/user", O_RDONLY | O_CLOEXEC);

        if (cur < 0)
                return -errno;
        for (unsigned depth = 0; depth < 40; depth++) {
                _cleanup_close_ int parent = -1;
                ino_t ino = 0;
                int r;

                r = ns_ino(cur, &ino);
                if (r < 0)
                        return r;
                if (ino == userns)
                        return 1;
                parent = ioctl(cur, NS_GET_PARENT);
                if (parent < 0)
                        /* EPERM: above the daemon's namespace, the top of what we see. */
                        return errno == EPERM ? 0 : -errno;
                closep(&cur);
                cur = TAKE_FD(parent);
        }
        return -ELOOP;
}

int userns_owner(int userns_fd, uid_t *ret) {
        _cleanup_close_ int cur = -1;
        ino_t self = 0, ino = 0;
        int r;

        r = self_userns(&self);
        if (r < 0)
                return r;
        cur = fcntl(userns_fd, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return -errno;
        /* The kernel nests user namespaces 32 deep at most. */
        for (unsigned depth = 0; depth < 40; depth++) {
                _cleanup_close_ int parent = -1;
                ino_t pino = 0;

                r = ns_ino(cur, &ino);
                if (r < 0)
                        return r;
                if (ino == self)
                        return -ENOENT;
                parent = ioctl(cur, NS_GET_PARENT);
                if (parent < 0)
                        /* EPERM: the parent is outside the daemon's view (the client is not
                         * below us): charge the client's own uid. */
                        return -errno;
                r = ns_ino(parent, &pino);
                if (r < 0)
                        return r;
                if (pino == self) {
                        uid_t owner;

                        /* The owner as the daemon's namespace sees it. */
                        if (ioctl(cur, NS_GET_OWNER_UID, &owner) < 0)
                                return -errno;
                        *ret = owner;
                        return 0;
                }
                closep(&cur);
                cur = TAKE_FD(parent);
        }
        return -ELOOP;
}

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef PIDFD_GET_USER_NAMESPACE
#define PIDFD_GET_USER_NAMESPACE _IO(0xFF, 9)
#endif

/* The user namespace of the peer: through a pidfd of it where the kernel gives one (the pid
 * cannot have been reused then), else through /proc/PID. */
static int peer_userns(int fd, pid_t pid) {
        _cleanup_close_ int pidfd = -1;
        socklen_t len = sizeof(pidfd);
        char path[64];
        int ns;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) >= 0 && len == sizeof(pidfd) && pidfd >= 0) {
                ns = ioctl(pidfd, PIDFD_GET_USER_NAMESPACE, 0);
                if (ns >= 0)
                        return ns;
                if (errno == ESRCH)
                        return -ESRCH;
        }
        if (pid <= 0)
                return -ESRCH;
        snprintf(path, sizeof(path), "/proc/%d/ns/user", (int) pid);
        ns = open(path, O_RDONLY | O_CLOEXEC);
        return ns < 0 ? -errno : ns;
}

int client_from_socket(int fd, const gid_t *allowed, size_t n_allowed, struct client *ret) {
        _cleanup_(client_done) struct client c = {};
        _cleanup_close_ int ns = -1;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        int r;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        if (len != sizeof(cred))
                return -EIO;
        c.pid = cred.pid;
        c.uid = cred.uid;
        c.gid = cred.gid;
        c.owner = cred.uid;

        r = peer_groups(fd, &c.groups, &c.n_groups);
        if (r < 0)
                return r;

        /* A peer that is gone or not below us is charged to its own uid. */
        ns = peer_userns(fd, c.pid);
        if (ns >= 0) {
                uid_t owner;
                ino_t self = 0, ino = 0;

                r = userns_owner(ns, &owner);
                if (r >= 0)
                        c.owner = owner;
                if (r != -ENOENT)
                        /* Not the daemon's namespace (or not known to be). */
                        c.userns = self_userns(&self) >= 0 && ns_ino(ns, &ino) >= 0 && ino != self ? ino
                                                                                                : USERNS_UNKNOWN;
        } else
                c.userns = USERNS_UNKNOWN;
        c.privileged = client_is_privileged(&c, allowed, n_allowed);
        *ret = c;
        c = (struct client) {};
        return 0;
}

/* glibc's setgroups(), setresuid() and setresgid() change every thread of the process (it
 * has each thread make the syscall); the raw syscalls change only the calling thread, which
 * is what per-thread impersonation needs. -1 leaves an id as it is. */
static int thread_setgroups(size_t n, const gid_t *groups) {
        return syscall(SYS_setgroups, n, groups) < 0 ? -errno : 0;
}

static int thread_seteuid(uid_t uid) {
        return syscall(SYS_setresuid, (long) (uid_t) -1, (long) uid, (long) (uid_t) -1) < 0 ? -errno : 0;
}

static int thread_setegid(gid_t gid) {
        return syscall(SYS_setresgid, (long) (gid_t) -1, (long) gid, (long) (gid_t) -1) < 0 ? -errno : 0;
}

static int thread_caps_get(uint32_t effective[2], uint32_t permitted[2]) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct d[2] = {};

        if (syscall(SYS_capget, &h, d) < 0)
                return -errno;
        effective[0] = d[0].effective;
        effective[1] = d[1].effective;
        if (permitted) {
                permitted[0] = d[0].permitted;
                permitted[1] = d[1].permitted;
        }
        return 0;
}

/* Sets the effective set only, where it differs (each change of credentials costs about
 * 2 us): the permitted and inheritable sets are written back as they are. capset() with
 * pid 0 changes the calling thread. */
static int thread_caps_set(const uint32_t effective[2]) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct d[2] = {};

        if (syscall(SYS_capget, &h, d) < 0)
                return -errno;
        if (d[0].effective == effective[0] && d[1].effective == effective[1])
                return 0;
        d[0].effective = effective[0];
        d[1].effective = effective[1];
        return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

/* Whether the calling thread now has exactly these ids and effective capabilities, read
 * back: setfs*id() report no errors, and the kernel turns effective capabilities on or off
 * as euid and fsuid cross 0. */
static bool thread_creds_are(uid_t euid, gid_t egid, uid_t fsuid, gid_t fsgid, const uint32_t effective[2]) {
        uid_t ru, eu, su;
        gid_t rg, eg, sg;
        uint32_t eff[2] = { 0, 0 };

        if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
                return false;
        if (eu != euid || eg != egid)
                return false;
        if ((uid_t) setfsuid((uid_t) -1) != fsuid || (gid_t) setfsgid((gid_t) -1) != fsgid)
                return false;
        if (thread_caps_get(eff, NULL) < 0)
                return false;
        return eff[0] == effective[0] && eff[1] == effective[1];
}

int impersonate_begin(const struct client *c, struct impersonation *ret) {
        static const uint32_t none[2] = { 0, 0 };
        struct impersonation s = {};
        uint32_t permitted[2] = { 0, 0 };
        uid_t ruid, suid;
        gid_t rgid, sgid;
        int n, r;

        r = thread_caps_get(s.effective, permitted);
        if (r < 0)
                return r;
        /* A daemon without capabilities, running as the client's own user (a per-user
         * instance), can do nothing the client could not: there is nothing to give up. */
        if (permitted[0] == 0 && permitted[1] == 0 && c->uid == geteuid()) {
                *ret = s;
                return 0;
        }
        n = getgroups(DAEMON_GROUPS_MAX, s.groups);
        if (n < 0)
                return -errno;
        s.n_groups = (size_t) n;
        if (getresuid(&ruid, &s.euid, &suid) < 0 || getresgid(&rgid, &s.egid, &sgid) < 0)
                return -errno;
        s.fsuid = (uid_t) setfsuid((uid_t) -1);
        s.fsgid = (gid_t) setfsgid((gid_t) -1);
        s.active = true;

        /* Groups and gid while CAP_SETGID is effective, the uid last (leaving euid 0 clears
         * the effective set of a daemon running as root), then whatever capabilities are
         * left (a daemon running as another user keeps them across the switch). Setting
         * the euid and egid sets fsuid and fsgid along. The real and saved ids stay. */
        r = thread_setgroups(c->n_groups, c->groups);
        if (r >= 0)
                r = thread_setegid(c->gid);
        if (r >= 0)
                r = thread_seteuid(c->uid);
        if (r >= 0)
                r = thread_caps_set(none);
        if (r >= 0 && !thread_creds_are(c->uid, c->gid, c->uid, c->gid, none))
                r = -EPERM;
        if (r < 0) {
                int k = impersonate_end(&s);

                return k < 0 ? k : r;
        }
        *ret = s;
        return 0;
}

/* Whether the calling thread's supplementary groups are exactly these (as getgroups()
 * returns them: the kernel keeps them sorted, and they were read that way). */
static bool thread_groups_are(size_t n, const gid_t *groups) {
        gid_t now[DAEMON_GROUPS_MAX];
        int k = getgroups(DAEMON_GROUPS_MAX, now);

        return k >= 0 && (size_t) k == n && memcmp(now, groups, n * sizeof(gid_t)) == 0;
}

int impersonate_end(struct impersonation *s) {
        bool ok = true;

        if (!s || !s->active)
                return 0;
        /* The euid first: going back to the real or saved uid needs no privilege, and going
         * back to euid 0 makes the effective set the permitted one again. A daemon running as
         * another user gets its capabilities back only by capset(), which comes next: the
         * gid and groups need CAP_SETGID. Every step is tried even after one failed. */
        if (thread_seteuid(s->euid) < 0) {
                ok &= thread_caps_set(s->effective) >= 0;
                ok &= thread_seteuid(s->euid) >= 0;
        }
        ok &= thread_caps_set(s->effective) >= 0;
        ok &= thread_setegid(s->egid) >= 0;
        /* setgroups() needs CAP_SETGID even to set the list a thread has: a daemon without
         * it (a per-user one) whose switch failed at the groups must not take its own
         * unchanged groups for a lost state. */
        if (!thread_groups_are(s->n_groups, s->groups))
                ok &= thread_setgroups(s->n_groups, s->groups) >= 0;
        /* Setting the euid and egid set these along; the daemon's may have differed. */
        if ((uid_t) setfsuid((uid_t) -1) != s->fsuid)
                setfsuid(s->fsuid);
        if ((gid_t) setfsgid((gid_t) -1) != s->fsgid)
                setfsgid(s->fsgid);
        /* An fsuid crossing 0 changes the effective set too. */
        ok &= thread_caps_set(s->effective) >= 0;
        ok &= thread_creds_are(s->euid, s->egid, s->fsuid, s->fsgid, s->effective);
        ok &= thread_groups_are(s->n_groups, s->groups);
        s->active = false;
        return ok ? 0 : -ENOTRECOVERABLE;
}

int resolve_groups(char *const *names, size_t n, gid_t *ret_gids, size_t *ret_n, size_t *ret_unknown) {
        size_t k = 0, unknown = 0;

        for (size_t i = 0; i < n; i++) {
                struct group g, *res = NULL;
                char buf[4096];

                if (getgrnam_r(names[i], &g, buf, sizeof(buf), &res) != 0 || !res) {
                        unknown++;
                        continue;
                }
                ret_gids[k++] = res->gr_gid;
        }
        *ret_n = k;
        if (ret_unknown)
                *ret_unknown = unknown;
        return 0;
}
