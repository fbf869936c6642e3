/* The listening sockets: bound by the daemon or passed by the service manager, and accepting connections. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "server-internal.h"
#include "time-util.h"

/* Connections taken off a listener's backlog per wake-up. */
#define ACCEPTS_PER_WAKEUP 16

/* ------------------------------------------------------------------ listening (under lock) */

/* Refused connections come as fast as a client can connect: log the first of each second
 * and how many went unlogged, so no local user can flood the journal. */
static bool refusal_log_allowed(struct server *s) {
        uint64_t now = now_usec();

        if (now - s->last_refusal_log < 1000000u) {
                s->refusals_unlogged++;
                return false;
        }
        if (s->refusals_unlogged > 0)
                log_warning("%" PRIu64 " more connection(s) were refused in the last second", s->refusals_unlogged);
        s->last_refusal_log = now;
        s->refusals_unlogged = 0;
        return true;
}

/* Takes one connection off the backlog. Returns true when the listener may have more. */
static bool accept_one(struct server *s, int listen_fd) {
        _cleanup_close_ int fd = -1;
        _cleanup_(client_done) struct client peer = {};
        struct account *a;
        struct conn *c;
        int r;

        fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE) {
                        /* Out of fds: free the reserve to take the connection off the backlog
                         * and close it, rather than spinning on a listener that stays ready. */
                        closep(&s->reserve_fd);
                        s->reserve_fd = -1;
                        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                        closep(&fd);
                        fd = -1;
                        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                        if (refusal_log_allowed(s))
                                log_warning("Out of file descriptors: refused a connection");
                        /* Another thread took the freed fd first: without a reserve the
                         * listener would stay ready and spin. Look again at the next tick. */
                        if (s->reserve_fd < 0)
                                s->listen_paused = true;
                } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        log_warning_errno(errno, "accept() failed");
                return false;
        }
        r = client_from_socket(fd, s->allowed_gids, s->n_allowed_gids, &peer);
        if (r < 0) {
                log_warning_errno(r, "Cannot identify a client (SO_PEERCRED)");
                return true;
        }
        if (s->n_conns >= s->cfg->limits.max_connections) {
                if (refusal_log_allowed(s))
                        log_warning("Refusing a connection of pid %d: %zu connections (MaxConnections)", (int) peer.pid,
                                    s->n_conns);
                return true;
        }
        /* The last ReservedConnections (at most half of MaxConnections, so that a small
         * MaxConnections leaves others some) are for root and AllowGroups members: however
         * many uids others own, those still connect. */
        if (!peer.privileged &&
            s->n_unprivileged + MIN(s->cfg->limits.reserved_connections, s->cfg->limits.max_connections / 2) >=
                    s->cfg->limits.max_connections) {
                if (refusal_log_allowed(s))
                        log_warning("Refusing a connection of uid %u: %zu unprivileged connections "
                                    "(MaxConnections less ReservedConnections)", (unsigned) peer.uid, s->n_unprivileged);
                return true;
        }
        /* Counted per user namespace owner: the uids of one /etc/subuid range are one user. */
        a = account_get(s, peer.owner);
        if (!a)
                return false;
        if (a->n_conns >= s->cfg->limits.max_connections_per_uid) {
                if (refusal_log_allowed(s))
                        log_notice("Refusing a connection of uid %u (user %u): MaxConnectionsPerUser reached",
                                   (unsigned) peer.uid, (unsigned) peer.owner);
                return true;
        }

        c = calloc(1, sizeof(*c));
        if (!c) {
                account_put(s, a);
                return false;
        }
        c->src = (struct source) { .type = SOURCE_CONN, .fd = fd };
        c->server = s;
        c->client = peer;
        peer = (struct client) {};
        c->account = a;
        a->n_conns++;
        if (!c->client.privileged)
                s->n_unprivileged++;
        c->oneway_tokens = ONEWAY_BURST_CONN;
        c->oneway_refill_usec = now_usec();
        atomic_init(&c->busy, false);
        atomic_init(&c->last_activity, now_usec());
        varlink_reader_init(&c->in, s->cfg->limits.max_message_size);
        varlink_writer_init(&c->out);

        /* Listed and counted before it is armed: once armed, another thread may answer it
         * (GetStatus counts it) or close it, which takes the lock we hold. */
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        atomic_store(&s->stats.connections, s->n_conns);
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = &c->src };
        if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                log_warning_errno(errno, "epoll_ctl() failed");
                s->conns = c->next;
                if (s->conns)
                        s->conns->prev = NULL;
                s->n_conns--;
                if (!c->client.privileged)
                        s->n_unprivileged--;
                a->n_conns--;
                account_put(s, a);
                atomic_store(&s->stats.connections, s->n_conns);
                conn_free(c);
                return false;
        }
        TAKE_FD(fd);
        return true;
}

void on_listener(struct server *s, struct source *src) {
        pthread_mutex_lock(&s->lock);
        /* Closed by a shutdown while this event waited for the lock. */
        if (!s->shutting_down && src->fd >= 0) {
                for (unsigned i = 0; i < ACCEPTS_PER_WAKEUP; i++)
                        if (!accept_one(s, src->fd))
                                break;
                if (!s->listen_paused)
                        (void) source_arm(s, src, EPOLLIN);
        }
        pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------------ the sockets */

void stop_listening(struct server *s) {
        for (size_t i = 0; i < s->n_listen; i++) {
                epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, s->listen[i].fd, NULL);
                closep(&s->listen[i].fd);
                s->listen[i].fd = -1;
        }
        if (s->owned_socket_path) {
                unlink(s->owned_socket_path);
                free(s->owned_socket_path);
                s->owned_socket_path = NULL;
        }
}

int bind_socket(struct server *s, const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        char *slash;
        struct stat st;
        mode_t old;
        int r;

        if (!dir)
                return -ENOMEM;
        if (strlen(path) >= sizeof(sa.sun_path))
                return log_error_errno(ENAMETOOLONG, "Socket path %s", path);
        strcpy(sa.sun_path, path);

        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = 0;
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return log_error_errno(errno, "Cannot create %s", dir);
        }

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "socket()");

        /* A socket file left by a dead daemon refuses connections: replace it. A live one
         * answers: do not steal its path. */
        if (lstat(path, &st) >= 0) {
                _cleanup_close_ int probe = -1;

                if (!S_ISSOCK(st.st_mode))
                        return log_error_errno(EEXIST, "%s exists and is not a socket", path);
                probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe >= 0 && connect(probe, (struct sockaddr *) &sa, sizeof(sa)) >= 0)
                        return log_error_errno(EADDRINUSE, "Another memmapd listens on %s", path);
                unlink(path);
        }

        /* Access is decided per client, so anyone may connect. */
        old = umask(0111);
        r = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
        umask(old);
        if (r < 0)
                return log_error_errno(errno, "Cannot bind %s", path);
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "listen()");

        s->owned_socket_path = strdup(path);
        if (!s->owned_socket_path)
                return -ENOMEM;
        s->listen[0] = (struct source) { .type = SOURCE_LISTEN, .fd = TAKE_FD(fd) };
        s->n_listen = 1;
        log_info("Listening on %s", path);
        return 0;
}

/* The sockets the service manager passed (LISTEN_FDS), each checked: a listening Unix stream
 * socket. Returns their number (0: none passed), or -errno after logging what is wrong with
 * which fd: the daemon cannot serve, and the log is all the operator gets. */
int take_activated_sockets(struct server *s) {
        /* sd_listen_fds() unsets the variable even when it fails: kept to say what was asked. */
        char listen_fds[24];
        snprintf(listen_fds, sizeof(listen_fds), "%s", getenv("LISTEN_FDS") ?: "");
        int n = sd_listen_fds(true);

        if (n < 0) {
                /* A malformed count, or an fd that is not open: sd_listen_fds() sets FD_CLOEXEC on
                 * each and stops at the first that fails, without saying which. Find it (a count
                 * beyond what is taken gets the general message). */
                char *end;
                unsigned long count = strtoul(listen_fds, &end, 10);

                if (*listen_fds >= '0' && *listen_fds <= '9' && *end == 0 && count <= LISTEN_FDS_MAX)
                        for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + (int) count; fd++)
                                if (fcntl(fd, F_GETFD) < 0)
                                        return log_error_errno(errno, "Passed fd %d (LISTEN_FDS=%s) is not open",
                                                               fd, listen_fds);
                return log_error_errno(n, "Cannot take the sockets passed by the service manager (LISTEN_FDS=%s)",
                                       listen_fds);
        }
        if (n == 0)
                return 0;
        if (n > LISTEN_FDS_MAX) {
                log_error("Too many sockets passed: %d, at most %d", n, LISTEN_FDS_MAX);
                return -EINVAL;
        }
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i, flags, r;

                r = sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0);
                if (r < 0)
                        return log_error_errno(r, "Cannot check passed fd %d", fd);
                if (r == 0) {
                        /* Say what it is instead, so that a wrong unit file can be told apart from a
                         * socket that lost its listen(). */
                        int domain = 0, type = 0;
                        socklen_t len = sizeof(int);
                        struct stat st;
                        char what[96];

                        if (fstat(fd, &st) < 0)
                                return log_error_errno(errno, "Cannot check passed fd %d", fd);
                        if (!S_ISSOCK(st.st_mode))
                                snprintf(what, sizeof(what), "not a socket but %s",
                                         S_ISREG(st.st_mode) ? "a regular file" : S_ISDIR(st.st_mode) ? "a directory" :
                                         S_ISCHR(st.st_mode) ? "a character device" :
                                         S_ISBLK(st.st_mode) ? "a block device" :
                                         S_ISFIFO(st.st_mode) ? "a pipe" : "another kind of file");
                        else if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX)
                                snprintf(what, sizeof(what), "a socket of address family %d, not AF_UNIX", domain);
                        else if ((len = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len)) < 0 ||
                                 type != SOCK_STREAM)
                                snprintf(what, sizeof(what), "a Unix socket of type %d (%s), not SOCK_STREAM", type,
                                         type == SOCK_DGRAM ? "SOCK_DGRAM" :
                                         type == SOCK_SEQPACKET ? "SOCK_SEQPACKET" : "other");
                        else
                                snprintf(what, sizeof(what), "a Unix stream socket that is not listening");
                        log_error("Passed fd %d (LISTEN_FDS=%s) is not a listening Unix stream socket: it is %s",
                                  fd, listen_fds, what);
                        return -EINVAL;
                }
                if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || (flags = fcntl(fd, F_GETFL)) < 0 ||
                    fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                        return log_error_errno(errno, "fcntl() on passed fd %d", fd);
                s->listen[s->n_listen++] = (struct source) { .type = SOURCE_LISTEN, .fd = fd };
        }
        log_info("Using %d socket(s) passed by the service manager", n);
        return n;
}
