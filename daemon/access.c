#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "access.h"

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

int client_from_socket(int fd, const gid_t *allowed, size_t n_allowed, struct client *ret) {
        struct client c = {};
        struct ucred cred;
        socklen_t len = sizeof(cred);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        if (len != sizeof(cred))
                return -EIO;
        c.pid = cred.pid;
        c.uid = cred.uid;
        c.gid = cred.gid;

        len = sizeof(c.groups);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, c.groups, &len) < 0) {
                /* ERANGE: more groups than we keep. Unknown groups only ever grant access,
                 * so leaving them out errs on the safe side. */
                if (errno != ERANGE && errno != ENOPROTOOPT)
                        return -errno;
                len = errno == ERANGE ? sizeof(c.groups) : 0;
        }
        c.n_groups = len / sizeof(gid_t);
        c.privileged = client_is_privileged(&c, allowed, n_allowed);
        *ret = c;
        return 0;
}

/* glibc's setgroups() changes every thread; the raw syscall changes only this one, which
 * is what per-thread impersonation needs. */
static int thread_setgroups(size_t n, const gid_t *groups) {
        return syscall(SYS_setgroups, n, groups) < 0 ? -errno : 0;
}

static int thread_caps(bool set, uint32_t effective[2], uint32_t *permitted) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct d[2] = {};

        if (syscall(SYS_capget, &h, d) < 0)
                return -errno;
        if (!set) {
                effective[0] = d[0].effective;
                effective[1] = d[1].effective;
                if (permitted)
                        permitted[0] = d[0].permitted, permitted[1] = d[1].permitted;
                return 0;
        }
        d[0].effective = effective[0];
        d[1].effective = effective[1];
        return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

int impersonate_begin(const struct client *c, struct impersonation *ret) {
        struct impersonation s = {};
        uint32_t none[2] = { 0, 0 }, permitted[2];
        int n, r;

        r = thread_caps(false, s.effective, permitted);
        if (r < 0)
                return r;
        /* A daemon without capabilities, running as the client's own user (a per-user
         * instance), can do nothing the client could not: there is nothing to give up. */
        if (permitted[0] == 0 && permitted[1] == 0 && c->uid == geteuid()) {
                *ret = s;
                return 0;
        }
        n = getgroups(CLIENT_GROUPS_MAX, s.groups);
        if (n < 0)
                return -errno;
        s.n_groups = (size_t) n;
        s.fsuid = (uid_t) setfsuid((uid_t) -1);
        s.fsgid = (gid_t) setfsgid((gid_t) -1);

        r = thread_setgroups(c->n_groups, c->groups);
        if (r < 0)
                return r;
        s.active = true;
        /* setfs*id() report no errors: read the value back to know it took. */
        setfsgid(c->gid);
        setfsuid(c->uid);
        if ((gid_t) setfsgid((gid_t) -1) != c->gid || (uid_t) setfsuid((uid_t) -1) != c->uid) {
                impersonate_end(&s);
                return -EPERM;
        }
        r = thread_caps(true, none, NULL);
        if (r < 0) {
                impersonate_end(&s);
                return r;
        }
        *ret = s;
        return 0;
}

int impersonate_end(struct impersonation *s) {
        int r = 0, k;

        if (!s || !s->active)
                return 0;
        /* Capabilities first: setting the ids back may need them. */
        k = thread_caps(true, s->effective, NULL);
        if (k < 0)
                r = k;
        setfsuid(s->fsuid);
        setfsgid(s->fsgid);
        if ((uid_t) setfsuid((uid_t) -1) != s->fsuid || (gid_t) setfsgid((gid_t) -1) != s->fsgid)
                r = -EPERM;
        k = thread_setgroups(s->n_groups, s->groups);
        if (k < 0 && r == 0)
                r = k;
        s->active = false;
        return r;
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
