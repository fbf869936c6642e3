/* memmapd under the service manager's protocols, without systemd as PID 1: socket activation
 * (systemd-socket-activate, and a listening socket handed to a daemon that starts later),
 * sd_notify (READY=1, WATCHDOG=1, STOPPING=1) on a notify socket this test binds, and the
 * shipped units checked with systemd-analyze (verify, and the security exposure score). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "fixture.h"

#ifndef UNIT_SRCDIR
#  define UNIT_SRCDIR "systemd"
#endif
#ifndef UNIT_BUILDDIR
#  define UNIT_BUILDDIR "systemd"
#endif

/* The score the shipped service must reach in systemd-analyze security (0 best, 10 worst):
 * what it scored before CAP_BPF and CAP_PERFMON (issue 14), which must not raise it. */
#define EXPOSURE_MAX 1.4

/* Long enough that a loaded machine's scheduling delays stay small beside it. */
#define WATCHDOG_USEC 1000000
#define WATCHDOG_GAPS 6
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
/* Only catches hangs: every wait polls for the state it wants. */
#define WAIT_USEC (30 * 1000000ull)

/* What a failing test leaves behind, for the teardown to clean up. */
static pid_t running_pid;
static struct env *running_env;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* A private directory holding the sockets and an empty configuration, so that the host's
 * /etc/memmapd.conf does not change what is tested. */
struct env {
        char dir[64];
        char socket[128];
        char notify[128];
        char config[128];
        int notify_fd;
};

static void env_init(struct env *e) {
        int fd, one = 1;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        *e = (struct env) { .notify_fd = -1 };
        running_env = e;
        strcpy(e->dir, "/tmp/memmapd-systemd-XXXXXX");
        assert_non_null(mkdtemp(e->dir));
        snprintf(e->socket, sizeof(e->socket), "%s/io.memmapd", e->dir);
        snprintf(e->notify, sizeof(e->notify), "%s/notify", e->dir);
        snprintf(e->config, sizeof(e->config), "%s/memmapd.conf", e->dir);
        fd = open(e->config, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);

        /* What the service manager listens on: datagrams, with the sender's credentials. */
        e->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(e->notify_fd >= 0);
        assert_int_equal(setsockopt(e->notify_fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
        strcpy(sa.sun_path, e->notify);
        assert_int_equal(bind(e->notify_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
}

static void env_done(struct env *e) {
        char path[160];

        running_env = NULL;
        closep(&e->notify_fd);
        unlink(e->socket);
        unlink(e->notify);
        unlink(e->config);
        snprintf(path, sizeof(path), "%s", e->dir);
        rmdir(path);
}

/* One notification within timeout_usec: its text into buf and its sender into *ret_pid.
 * 1 when one came, 0 on timeout. */
static int recv_notify(int fd, uint64_t timeout_usec, char *buf, size_t size, pid_t *ret_pid) {
        uint64_t deadline = now_usec() + timeout_usec;

        for (;;) {
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(struct ucred))];
                } control;
                struct iovec iov = { buf, size - 1 };
                struct msghdr mh = {
                        .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = &control, .msg_controllen = sizeof(control),
                };
                struct pollfd p = { fd, POLLIN, 0 };
                uint64_t now = now_usec();
                ssize_t n;

                if (now >= deadline)
                        return 0;
                if (poll(&p, 1, (int) ((deadline - now + 999) / 1000)) == 0)
                        return 0;
                n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                assert_true(n >= 0);
                buf[n] = 0;
                *ret_pid = 0;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                                struct ucred uc;

                                memcpy(&uc, CMSG_DATA(c), sizeof(uc));
                                *ret_pid = uc.pid;
                        }
                return 1;
        }
}

/* Whether a notification message carries the line "ASSIGNMENT" (messages are
 * newline-separated assignments). */
static int has_line(const char *msg, const char *line) {
        size_t n = strlen(line);

        for (const char *p = msg; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == 0))
                        return 1;
        return 0;
}

/* Waits for a notification from pid carrying line; counts the WATCHDOG=1 pings seen on
 * the way into *pings (if given). 1 when it came. */
static int wait_notify(struct env *e, pid_t pid, const char *line, uint64_t timeout_usec, unsigned *pings) {
        uint64_t deadline = now_usec() + timeout_usec;
        char msg[4096];
        pid_t sender;

        while (now_usec() < deadline) {
                if (!recv_notify(e->notify_fd, deadline - now_usec(), msg, sizeof(msg), &sender))
                        return 0;
                /* sd_notify() sends from the daemon's main pid, as NotifyAccess=main wants. */
                assert_int_equal(sender, pid);
                if (pings && has_line(msg, "WATCHDOG=1"))
                        (*pings)++;
                if (has_line(msg, line))
                        return 1;
        }
        return 0;
}

static int wait_for_path(const char *path, uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;

        while (now_usec() < deadline) {
                if (access(path, F_OK) == 0)
                        return 1;
                usleep(5000);
        }
        return 0;
}

static int connect_with_timeout(const char *path) {
        struct timeval tv = { .tv_sec = 30 };
        uint64_t deadline = now_usec() + WAIT_USEC;
        int fd;

        /* The path appears at bind(), before the listener calls listen(): refused until then. */
        while ((fd = test_connect(path)) == -ECONNREFUSED && now_usec() < deadline)
                usleep(5000);

        assert_true(fd >= 0);
        /* A daemon that never answers fails the test instead of hanging it. */
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
        return fd;
}

static struct json_object *parameters(const char *reply, struct json_object **ret_root) {
        struct json_object *root, *p;

        assert_non_null(reply);
        root = json_tokener_parse(reply);
        assert_non_null(root);
        if (!json_object_object_get_ex(root, "parameters", &p))
                fail_msg("reply without parameters: %s", reply);
        *ret_root = root;
        return p;
}

static void check_status_reply(const char *reply) {
        struct json_object *root, *p, *v;

        p = parameters(reply, &root);
        assert_true(json_object_object_get_ex(p, "version", &v));
        assert_string_equal(json_object_get_string(v), MEMMAPD_VERSION);
        json_object_put(root);
}

/* A real query through the activated daemon: this process's own mappings, with build IDs. */
static void check_query(const char *socket) {
        _cleanup_close_ int fd = connect_with_timeout(socket);
        _cleanup_free_ char *reply = NULL;
        struct json_object *root, *p, *process, *pid, *mappings;
        char msg[160];
        size_t with_build_id = 0;

        snprintf(msg, sizeof(msg),
                 "{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,\"build_ids\":true}}",
                 (int) getpid());
        reply = test_call(fd, msg);
        p = parameters(reply, &root);
        assert_true(json_object_object_get_ex(p, "process", &process));
        assert_true(json_object_object_get_ex(process, "pid", &pid));
        assert_int_equal(json_object_get_int(pid), getpid());
        assert_true(json_object_object_get_ex(p, "mappings", &mappings));
        assert_true(json_object_array_length(mappings) > 5);
        for (size_t i = 0; i < json_object_array_length(mappings); i++)
                if (json_object_object_get_ex(json_object_array_get_idx(mappings, i), "build_id", NULL))
                        with_build_id++;
        /* This test program, libc and the dynamic loader at least. */
        assert_true(with_build_id >= 3);
        json_object_put(root);
}

/* Sends SIGTERM; expects STOPPING=1 and then a clean exit (0: also no ASan finding). */
static void stop_daemon(struct env *e, pid_t pid) {
        uint64_t deadline = now_usec() + WAIT_USEC;
        int status = 0;
        pid_t r;

        assert_int_equal(kill(pid, SIGTERM), 0);
        assert_true(wait_notify(e, pid, "STOPPING=1", WAIT_USEC, NULL));
        while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now_usec() < deadline)
                usleep(5000);
        if (r == 0) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                fail_msg("memmapd did not exit within 10 s of SIGTERM");
        }
        assert_int_equal(r, pid);
        running_pid = 0;
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static int have_program(const char *name) {
        _cleanup_free_ char *cmd = NULL, *out = NULL;

        assert_true(asprintf(&cmd, "command -v %s 2>/dev/null", name) > 0);
        out = test_run_capture(cmd);
        return out && out[0] == '/';
}

static const char *memmapd_path(void) {
        return test_program("MEMMAPD", "daemon/memmapd");
}

/* systemd-socket-activate listens, and on the first connection execs memmapd in place: the
 * pid it was started as becomes the daemon's. The connection that woke it is answered. */
static void test_socket_activate(void **state) {
        char pidbuf[32], comm[64];
        /* static: the teardown still reaches it after a failed assertion left this frame. */
        static struct env e;
        pid_t pid;
        _cleanup_close_ int early = -1;
        _cleanup_free_ char *reply = NULL;
        FILE *f;

        if (!have_program("systemd-socket-activate")) {
                printf("# SKIP: systemd-socket-activate is not installed (Debian package systemd)\n");
                skip();
        }
        env_init(&e);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char notify[160], wpid[48];

                snprintf(notify, sizeof(notify), "NOTIFY_SOCKET=%s", e.notify);
                snprintf(wpid, sizeof(wpid), "WATCHDOG_PID=%d", (int) getpid());
                /* systemd-socket-activate passes on only what -E names. */
                execlp("systemd-socket-activate", "systemd-socket-activate", "-l", e.socket,
                       "-E", notify, "-E", "WATCHDOG_USEC=" "200000", "-E", wpid,
                       "-E", "ASAN_OPTIONS", "-E", "UBSAN_OPTIONS",
                       memmapd_path(), "--config", e.config, "--log-level=warning", (char *) NULL);
                _exit(127);
        }
        running_pid = pid;

        assert_true(wait_for_path(e.socket, WAIT_USEC));
        /* Nothing is running memmapd yet: the listener is systemd-socket-activate itself. */
        snprintf(pidbuf, sizeof(pidbuf), "/proc/%d/comm", (int) pid);
        f = fopen(pidbuf, "re");
        assert_non_null(f);
        assert_non_null(fgets(comm, sizeof(comm), f));
        fclose(f);
        assert_true(strncmp(comm, "systemd-socket", 14) == 0);

        /* This connection and its request exist before the daemon does. */
        early = connect_with_timeout(e.socket);
        assert_int_equal(test_send(early, "{\"method\":\"io.memmapd.GetStatus\"}"), 0);
        reply = test_recv(early);
        check_status_reply(reply);
        assert_true(wait_notify(&e, pid, "READY=1", WAIT_USEC, NULL));

        check_query(e.socket);
        stop_daemon(&e, pid);
        env_done(&e);
}

/* Starts memmapd with listen_fd passed as fd 3 the way the service manager does
 * (LISTEN_FDS=1, LISTEN_PID), and the notify socket. watchdog_pid_self: WATCHDOG_PID names
 * the daemon; otherwise another process, for which the daemon must not ping. */
static pid_t start_with_socket(struct env *e, int listen_fd, int watchdog_pid_self) {
        pid_t parent = getpid();
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                char buf[32];

                if (listen_fd == 3) {
                        if (fcntl(3, F_SETFD, 0) < 0)
                                _exit(126);
                } else if (dup2(listen_fd, 3) < 0)
                        _exit(126);
                snprintf(buf, sizeof(buf), "%d", (int) getpid());
                setenv("LISTEN_FDS", "1", 1);
                setenv("LISTEN_PID", buf, 1);
                unsetenv("LISTEN_FDNAMES");
                setenv("NOTIFY_SOCKET", e->notify, 1);
                setenv("WATCHDOG_USEC", STRINGIFY(WATCHDOG_USEC), 1);
                if (!watchdog_pid_self)
                        snprintf(buf, sizeof(buf), "%d", (int) parent);
                setenv("WATCHDOG_PID", buf, 1);
                execl(memmapd_path(), "memmapd", "--config", e->config, "--log-level=warning", (char *) NULL);
                _exit(127);
        }
        running_pid = pid;
        return pid;
}

static int listen_on(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        strcpy(sa.sun_path, path);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 16), 0);
        return fd;
}

/* The listening socket exists before the daemon (as with a .socket unit, Accept=no): a
 * client that connected and sent its request before memmapd started is answered. With
 * WATCHDOG_USEC set the daemon pings every half interval. */
static void test_passed_socket_and_watchdog(void **state) {
        _cleanup_close_ int listen_fd = -1, early = -1;
        _cleanup_free_ char *reply = NULL;
        unsigned pings = 0;
        uint64_t last = 0, min_gap = UINT64_MAX, max_gap = 0, deadline;
        char msg[4096];
        pid_t pid, sender;
        /* static: the teardown still reaches it after a failed assertion left this frame. */
        static struct env e;

        env_init(&e);
        listen_fd = listen_on(e.socket);
        early = connect_with_timeout(e.socket);
        assert_int_equal(test_send(early, "{\"method\":\"io.memmapd.GetStatus\"}"), 0);

        pid = start_with_socket(&e, listen_fd, 1);
        /* The daemon has its own copy now: the service manager keeps one too, but this one
         * must not make the listener look alive after the daemon exits. */
        closep(&listen_fd);

        reply = test_recv(early);
        check_status_reply(reply);
        assert_true(wait_notify(&e, pid, "READY=1", WAIT_USEC, &pings));
        check_query(e.socket);

        /* The service manager kills a service whose pings are WATCHDOG_USEC apart, so the
         * daemon pings every half interval (plus its tick, a quarter). Load only delays
         * pings, it never brings them closer: a daemon pinging at the full interval cannot
         * produce a gap well below it, while ours fails this only if every one of the gaps
         * was delayed by more than 150 ms. The longest gap is printed; the strict bound
         * (longest gap under WATCHDOG_USEC) belongs to an idle machine, not to this test. */
        deadline = now_usec() + WAIT_USEC;
        pings = 0;
        while (pings <= WATCHDOG_GAPS && now_usec() < deadline) {
                if (!recv_notify(e.notify_fd, deadline - now_usec(), msg, sizeof(msg), &sender))
                        break;
                assert_int_equal(sender, pid);
                if (has_line(msg, "WATCHDOG=1")) {
                        uint64_t now = now_usec();

                        if (pings > 0) {
                                min_gap = MIN(min_gap, now - last);
                                max_gap = MAX(max_gap, now - last);
                        }
                        last = now;
                        pings++;
                }
        }
        printf("# %u WATCHDOG=1 pings with WATCHDOG_USEC=%d: gaps %" PRIu64 " to %" PRIu64 " ms\n",
               pings, WATCHDOG_USEC, min_gap / 1000, max_gap / 1000);
        assert_int_equal(pings, WATCHDOG_GAPS + 1);
        assert_true(min_gap < WATCHDOG_USEC * 9 / 10);

        stop_daemon(&e, pid);
        env_done(&e);
}

/* WATCHDOG_PID naming another process means the watchdog is not the daemon's business. */
static void test_watchdog_other_pid(void **state) {
        _cleanup_close_ int listen_fd = -1;
        unsigned pings = 0;
        char msg[4096];
        pid_t pid, sender;
        /* static: the teardown still reaches it after a failed assertion left this frame. */
        static struct env e;

        env_init(&e);
        listen_fd = listen_on(e.socket);
        pid = start_with_socket(&e, listen_fd, 0);
        closep(&listen_fd);
        assert_true(wait_notify(&e, pid, "READY=1", WAIT_USEC, &pings));
        while (recv_notify(e.notify_fd, 500000, msg, sizeof(msg), &sender))
                if (has_line(msg, "WATCHDOG=1"))
                        pings++;
        assert_int_equal(pings, 0);
        stop_daemon(&e, pid);
        env_done(&e);
}

/* Runs memmapd with LISTEN_FDS=n and fds 3.. set to fds[0..n) (-1: closed) and returns its exit
 * status; its stderr (the log) into log. It must fail at once: no READY=1, no serving. */
static int run_with_fds(struct env *e, const int *fds, int n, char *log, size_t size) {
        int out[2], status;
        size_t got = 0;
        uint64_t deadline = now_usec() + WAIT_USEC;
        pid_t pid;

        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int high[4];
                char buf[32];

                /* Out of the way first: a source may itself be 3 or 4. */
                for (int i = 0; i < n; i++)
                        if (fds[i] >= 0 && (high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 100)) < 0)
                                _exit(126);
                for (int i = 0; i < n; i++)
                        if (fds[i] < 0 ? close(3 + i) < 0 && errno != EBADF : dup2(high[i], 3 + i) < 0)
                                _exit(126);
                if (dup2(out[1], STDERR_FILENO) < 0)
                        _exit(126);
                snprintf(buf, sizeof(buf), "%d", n);
                setenv("LISTEN_FDS", buf, 1);
                snprintf(buf, sizeof(buf), "%d", (int) getpid());
                setenv("LISTEN_PID", buf, 1);
                unsetenv("LISTEN_FDNAMES");
                setenv("NOTIFY_SOCKET", e->notify, 1);
                execl(memmapd_path(), "memmapd", "--config", e->config, (char *) NULL);
                _exit(127);
        }
        running_pid = pid;
        close(out[1]);
        /* Its log until it exits (the pipe's end); bounded so that a daemon that serves fails. */
        for (;;) {
                struct pollfd p = { out[0], POLLIN, 0 };
                uint64_t now = now_usec();
                ssize_t k;

                if (now >= deadline)
                        fail_msg("memmapd with a bad LISTEN_FDS did not exit; log so far: %.*s", (int) got, log);
                if (poll(&p, 1, (int) ((deadline - now + 999) / 1000)) <= 0)
                        continue;
                k = read(out[0], log + got, size - 1 - got);
                assert_true(k >= 0);
                if (k == 0 || got + (size_t) k == size - 1)
                        break;
                got += (size_t) k;
        }
        close(out[0]);
        log[got] = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        running_pid = 0;
        return status;
}

static int unix_socket(int type, int listening) {
        int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        if (listening) {
                /* An address of the family alone: the kernel picks an abstract one. */
                struct sockaddr_un sa = { .sun_family = AF_UNIX };

                assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa_family_t)), 0);
                assert_int_equal(listen(fd, 1), 0);
        }
        return fd;
}

/* A passed fd that is closed or not a listening Unix stream socket: memmapd exits non-zero and
 * its log says, at error level, which fd and what is wrong with it. */
static void test_bad_listen_fds(void **state) {
        _cleanup_close_ int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int unlistened = unix_socket(SOCK_STREAM, 0), dgram = unix_socket(SOCK_DGRAM, 0);
        _cleanup_close_ int good = unix_socket(SOCK_STREAM, 1);
        _cleanup_close_ int inet = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const struct {
                int fds[2], n;
                const char *says;
        } cases[] = {
                { { -1 }, 1, "<3>Passed fd 3 (LISTEN_FDS=1) is not open" },
                { { good, -1 }, 2, "<3>Passed fd 4 (LISTEN_FDS=2) is not open" },
                { { null_fd }, 1, "<3>Passed fd 3 (LISTEN_FDS=1) is not a listening Unix stream socket: it is not a "
                                  "socket but a character device" },
                { { unlistened }, 1, "<3>Passed fd 3 (LISTEN_FDS=1) is not a listening Unix stream socket: it is a "
                                     "Unix stream socket that is not listening" },
                { { good, dgram }, 2, "<3>Passed fd 4 (LISTEN_FDS=2) is not a listening Unix stream socket: it is a "
                                      "Unix socket of type 2 (SOCK_DGRAM), not SOCK_STREAM" },
                { { inet }, 1, "<3>Passed fd 3 (LISTEN_FDS=1) is not a listening Unix stream socket: it is a socket "
                               "of address family 2, not AF_UNIX" },
        };
        /* static: the teardown still reaches it after a failed assertion left this frame. */
        static struct env e;

        assert_true(null_fd >= 0);
        assert_true(inet >= 0);
        env_init(&e);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char log[8192];
                int status = run_with_fds(&e, cases[i].fds, cases[i].n, log, sizeof(log));

                if (!WIFEXITED(status) || WEXITSTATUS(status) == 0)
                        fail_msg("case %zu: status 0x%x, log: %s", i, (unsigned) status, log);
                if (!strstr(log, cases[i].says))
                        fail_msg("case %zu: the log does not say \"%s\":\n%s", i, cases[i].says, log);
        }
        env_done(&e);
}

/* ------------------------------------------------------------------ the unit files */

static char *read_file(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        char *buf;
        ssize_t n;

        if (fd < 0)
                return NULL;
        buf = malloc(65536);
        assert_non_null(buf);
        n = read(fd, buf, 65535);
        assert_true(n >= 0);
        buf[n] = 0;
        return buf;
}

static void write_file(const char *path, const char *text) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
}

/* Copies the built units into dir, with ExecStart= pointing at the built daemon: verify
 * checks that the binary exists, and the installed one need not. */
static void stage_units(const char *dir) {
        _cleanup_free_ char *service = read_file(UNIT_BUILDDIR "/memmapd.service");
        _cleanup_free_ char *socket = read_file(UNIT_SRCDIR "/memmapd.socket");
        _cleanup_free_ char *staged = NULL;
        char path[256], abs_memmapd[4096];
        const char *exec, *eol;

        if (!service)
                fail_msg("%s/memmapd.service is missing: it is built by make all", UNIT_BUILDDIR);
        assert_non_null(socket);
        assert_non_null(realpath(memmapd_path(), abs_memmapd));
        exec = strstr(service, "\nExecStart=");
        assert_non_null(exec);
        /* The unit as built names the installed binary, sbindir substituted. */
        assert_null(strstr(service, "@sbindir@"));
        exec += strlen("\nExecStart=");
        eol = strchr(exec, '\n');
        assert_non_null(eol);
        assert_true(asprintf(&staged, "%.*s%s%s", (int) (exec - service), service, abs_memmapd, eol) > 0);

        snprintf(path, sizeof(path), "%s/memmapd.service", dir);
        write_file(path, staged);
        snprintf(path, sizeof(path), "%s/memmapd.socket", dir);
        write_file(path, socket);
}

/* The staging directory of the unit tests, removed by their teardown. */
static char units_dir[64];

static int units_teardown(void **state) {
        char cmd[128];

        if (units_dir[0]) {
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", units_dir);
                free(test_run_capture(cmd));
                units_dir[0] = 0;
        }
        return 0;
}

static void test_units_verify(void **state) {
        char *dir = units_dir, cmd[512];
        _cleanup_free_ char *out = NULL;

        if (!have_program("systemd-analyze")) {
                printf("# SKIP: systemd-analyze is not installed (Debian package systemd)\n");
                skip();
        }
        strcpy(units_dir, "/tmp/memmapd-units-XXXXXX");
        assert_non_null(mkdtemp(units_dir));
        stage_units(dir);
        /* --man=no: the man pages are checked by being installed, not by verify. The exit
         * status decides; "OK" marks success for the check below. */
        snprintf(cmd, sizeof(cmd),
                 "cd %s && systemd-analyze verify --man=no ./memmapd.socket ./memmapd.service 2>&1 && echo OK", dir);
        out = test_run_capture(cmd);
        assert_non_null(out);
        printf("# systemd-analyze verify: %s", out);
        assert_non_null(strstr(out, "OK"));
        /* Any warning is a finding: the output must be nothing but the OK. */
        assert_string_equal(out, "OK\n");
}

static void test_units_security(void **state) {
        char *dir = units_dir, cmd[512];
        _cleanup_free_ char *out = NULL;
        const char *p;
        double exposure;

        if (!have_program("systemd-analyze")) {
                printf("# SKIP: systemd-analyze is not installed (Debian package systemd)\n");
                skip();
        }
        strcpy(units_dir, "/tmp/memmapd-units-XXXXXX");
        assert_non_null(mkdtemp(units_dir));
        stage_units(dir);
        /* --offline (systemd 250+) scores the file itself, not a unit loaded in a running
         * service manager, which this test does not need. */
        snprintf(cmd, sizeof(cmd),
                 "cd %s && SYSTEMD_COLORS=0 systemd-analyze security --offline=true --no-pager ./memmapd.service 2>&1",
                 dir);
        out = test_run_capture(cmd);
        assert_non_null(out);
        if (strstr(out, "unrecognized option") || strstr(out, "Unknown option")) {
                printf("# SKIP: this systemd-analyze has no security --offline (systemd < 250)\n");
                skip();
        }
        p = strstr(out, "Overall exposure level for memmapd.service:");
        if (!p)
                fail_msg("no exposure level in:\n%s", out);
        p += strlen("Overall exposure level for memmapd.service:");
        assert_int_equal(sscanf(p, "%lf", &exposure), 1);
        printf("# systemd-analyze security: exposure %.1f (at most %.1f)\n", exposure, EXPOSURE_MAX);
        if (exposure > EXPOSURE_MAX)
                fail_msg("exposure %.1f > %.1f:\n%s", exposure, EXPOSURE_MAX, out);
}

static int teardown(void **state) {
        if (running_pid > 0) {
                kill(running_pid, SIGKILL);
                waitpid(running_pid, NULL, 0);
                running_pid = 0;
        }
        if (running_env)
                env_done(running_env);
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_socket_activate, teardown),
                cmocka_unit_test_teardown(test_passed_socket_and_watchdog, teardown),
                cmocka_unit_test_teardown(test_watchdog_other_pid, teardown),
                cmocka_unit_test_teardown(test_bad_listen_fds, teardown),
                cmocka_unit_test_teardown(test_units_verify, units_teardown),
                cmocka_unit_test_teardown(test_units_security, units_teardown),
        };

        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
