/* memmapd's main() as the operator meets it: the real binary run with bad options, bad
 * configuration, unusable sockets (given or passed by a service manager), as a per-user daemon,
 * and the exit status and message of each; and what a per-user daemon serves whom. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "fixture.h"

#define UID_A 41001
#define GID_A 41001
#define UID_B 41002
#define GID_B 41002

static char dir[] = "/tmp/memmapd-main-XXXXXX";
static char config[96];         /* an empty configuration: /etc must not change the tests */

static int setup(void **state) {
        int fd;

        signal(SIGPIPE, SIG_IGN);
        if (!mkdtemp(dir) || chmod(dir, 0755) < 0)
                return -1;
        snprintf(config, sizeof(config), "--config=%s/empty.conf", dir);
        fd = open(config + strlen("--config="), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return -1;
        close(fd);
        return 0;
}

static int teardown(void **state) {
        char *cmd;

        if (asprintf(&cmd, "rm -rf '%s'", dir) < 0)
                return -1;
        (void) !system(cmd);
        free(cmd);
        return 0;
}

struct launch {
        uid_t uid;                      /* -1: as the test runs (root); else no capabilities */
        const char *const *env;         /* "KEY=VALUE" to set, "KEY" to unset; NULL-terminated */
        const int *fds;                 /* placed at 3, 4, ... with LISTEN_PID set to the daemon */
        size_t n_fds;
        rlim_t nofile;                  /* a soft RLIMIT_NOFILE to start with; 0: as is */
        bool pid_ns;                    /* in a PID namespace of its own (as in a container) */
};

/* Starts memmapd with args (NULL-terminated) as l says; its stdout and stderr go to
 * *ret_out_fd. Returns its pid. */
static pid_t launch(const struct launch *l, const char *const *args, int *ret_out_fd) {
        const char *argv[128] = { "memmapd" };
        int out[2];
        size_t n = 1;
        pid_t pid;

        for (size_t i = 0; args[i]; i++) {
                assert_true(n < ELEMENTSOF(argv) - 1);
                argv[n++] = args[i];
        }
        argv[n] = NULL;
        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int high[32];
                char lpid[24];

                dup2(out[1], STDOUT_FILENO);
                dup2(out[1], STDERR_FILENO);
                /* First out of the way, then in place: 3.. may hold the fds themselves. */
                for (size_t i = 0; i < l->n_fds && i < ELEMENTSOF(high); i++)
                        high[i] = fcntl(l->fds[i], F_DUPFD_CLOEXEC, 100);
                for (size_t i = 0; i < l->n_fds && i < ELEMENTSOF(high); i++)
                        if (dup2(high[i], 3 + (int) i) < 0)
                                _exit(125);
                if (l->n_fds > 0) {
                        snprintf(lpid, sizeof(lpid), "%d", (int) getpid());
                        setenv("LISTEN_PID", lpid, 1);
                }
                for (size_t i = 0; l->env && l->env[i]; i++) {
                        const char *eq = strchr(l->env[i], '=');

                        if (eq) {
                                char key[64];

                                snprintf(key, sizeof(key), "%.*s", (int) (eq - l->env[i]), l->env[i]);
                                setenv(key, eq + 1, 1);
                        } else
                                unsetenv(l->env[i]);
                }
                if (l->nofile > 0) {
                        struct rlimit rl;

                        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max <= l->nofile)
                                _exit(124);
                        rl.rlim_cur = l->nofile;
                        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                                _exit(124);
                }
                /* All three ids: no capabilities are left, as for a daemon a user starts. */
                if (l->uid != (uid_t) -1 && (setgroups(0, NULL) < 0 || setresgid(l->uid, l->uid, l->uid) < 0 ||
                                             setresuid(l->uid, l->uid, l->uid) < 0))
                        _exit(126);
                if (l->pid_ns) {
                        int status;
                        pid_t inner;

                        /* The daemon is the namespace's first process; this one hands on its
                         * exit status. */
                        if (unshare(CLONE_NEWPID) < 0)
                                _exit(123);
                        inner = fork();
                        if (inner < 0)
                                _exit(123);
                        if (inner > 0) {
                                /* Only a guard against a daemon that never ends (it dies with
                                 * this process): the tests that use this expect an exit. */
                                alarm(120);
                                if (waitpid(inner, &status, 0) != inner)
                                        _exit(123);
                                _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
                        }
                        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                }
                execv(test_program("MEMMAPD", "daemon/memmapd"), (char *const *) argv);
                _exit(127);
        }
        close(out[1]);
        *ret_out_fd = out[0];
        return pid;
}

/* Everything left to read on fd (malloc'd), then fd closed. */
static char *slurp(int fd) {
        size_t len = 0, size = 4096;
        char *buf = malloc(size);
        ssize_t n;

        assert_non_null(buf);
        while ((n = read(fd, buf + len, size - len - 1)) > 0) {
                len += (size_t) n;
                if (size - len < 2) {
                        assert_non_null(buf = realloc(buf, size *= 2));
                }
        }
        buf[len] = 0;
        close(fd);
        return buf;
}

/* Runs memmapd to its end (it must end by itself: these are the failures at start-up and the
 * options that print and exit); its exit status, with what it printed in *ret_out. */
static int run(const struct launch *l, const char *const *args, char **ret_out) {
        int fd, status;
        pid_t pid = launch(l, args, &fd);

        *ret_out = slurp(fd);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* Waits until the daemon launched as pid (printing to out) answers on socket, with a guard
 * that only catches a hang; fails with what it printed if it ended. */
static void wait_listening(pid_t pid, int out, const char *socket) {
        for (int i = 0;; i++) {
                int c = test_connect(socket);

                if (c >= 0) {
                        close(c);
                        return;
                }
                if (waitpid(pid, NULL, WNOHANG) == pid)
                        fail_msg("memmapd ended: %s", slurp(out));
                assert_true(i < 3000);
                usleep(10000);
        }
}

/* Stops it with sig: a clean exit (0), having said where it listened, and want. */
static void stop_cleanly(pid_t pid, int out, int sig, const char *want) {
        _cleanup_free_ char *text = NULL;
        int status;

        assert_int_equal(kill(pid, sig), 0);
        text = slurp(out);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status))
                fail_msg("memmapd ended by signal %d; printed \"%s\"", WTERMSIG(status), text);
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_non_null(strstr(text, "Listening on"));
        assert_non_null(strstr(text, want));
}

static const struct launch plain = { .uid = (uid_t) -1 };

/* memmapd ARGS exits with status and prints a text holding want. */
static void expect_exit(const struct launch *l, const char *const *args, int status, const char *want) {
        _cleanup_free_ char *out = NULL;
        int r = run(l, args, &out);

        if (r != status || !strstr(out, want))
                fail_msg("memmapd %s...: exit %d, want %d; printed \"%s\", want \"%s\" in it", args[0] ? args[0] : "",
                         r, status, out, want);
}

static void test_options(void **state) {
        char *many[70];

        expect_exit(&plain, (const char *const[]) { "--help", NULL }, 0, "Usage: memmapd [OPTIONS]");
        expect_exit(&plain, (const char *const[]) { "-h", NULL }, 0, "--set=KEY=VALUE");
        expect_exit(&plain, (const char *const[]) { "--version", NULL }, 0, "memmapd " MEMMAPD_VERSION "\n");
        expect_exit(&plain, (const char *const[]) { "--no-such-option", NULL }, 2, "no-such-option");
        expect_exit(&plain, (const char *const[]) { "--socket", NULL }, 2, "requires an argument");
        expect_exit(&plain, (const char *const[]) { config, "--set=Workers", NULL }, 2,
                    "--set expects KEY=VALUE, got 'Workers'");
        expect_exit(&plain, (const char *const[]) { config, "surplus", NULL }, 2, "Unexpected argument 'surplus'");
        /* The command line is checked against the settings after the file is read. */
        expect_exit(&plain, (const char *const[]) { config, "--set=NoSuchKey=1", NULL }, 2,
                    "Invalid setting NoSuchKey=1");
        expect_exit(&plain, (const char *const[]) { config, "--workers=0", NULL }, 2, "Invalid setting Workers=0");
        expect_exit(&plain, (const char *const[]) { config, "--backend=fast", NULL }, 2,
                    "Invalid setting Backend=fast");
        expect_exit(&plain, (const char *const[]) { config, "--tracking=ebpf", NULL }, 2,
                    "Invalid setting Tracking=ebpf");
        expect_exit(&plain, (const char *const[]) { config, "--set=MaxCacheMemory=1000", NULL }, 2,
                    "Invalid setting MaxCacheMemory=1000");
        expect_exit(&plain, (const char *const[]) { "--help", NULL }, 0, "--tracking=auto|bpf|none");

        /* At most 64 settings on the command line. */
        many[0] = config;
        for (size_t i = 1; i <= 65; i++)
                many[i] = (char *) "--set=Workers=2";
        many[66] = NULL;
        expect_exit(&plain, (const char *const *) many, 2, "Too many options");
}

/* The tracker counts the machine's pids: a daemon in a PID namespace of its own (a container)
 * names processes otherwise and must not keep layouts on its counters. Tracking=bpf refuses to
 * start there; auto serves without (the store stays empty, see test-service). */
static void test_tracking_in_pid_namespace(void **state) {
        _cleanup_free_ char *sock = NULL, *sock_arg = NULL;
        struct launch in_ns = { .uid = (uid_t) -1, .pid_ns = true };

        if (geteuid() != 0) {
                printf("[  SKIPPED ] a PID namespace needs root here\n");
                skip();
        }
        assert_true(asprintf(&sock, "%s/ns.sock", dir) > 0);
        assert_true(asprintf(&sock_arg, "--socket=%s", sock) > 0);
        expect_exit(&in_ns, (const char *const[]) { config, sock_arg, "--tracking=bpf", NULL }, 1,
                    "runs in a PID namespace of its own");
        /* The control: the same daemon outside the namespace tracks. */
        {
                int out;
                pid_t pid;

                (void) unlink(sock);
                pid = launch(&plain, (const char *const[]) { config, sock_arg, "--tracking=bpf", NULL }, &out);
                wait_listening(pid, out, sock);
                stop_cleanly(pid, out, SIGTERM, "Change tracking on (BPF)");
        }
        (void) unlink(sock);
}

static void test_config_errors(void **state) {
        _cleanup_free_ char *missing = NULL, *bad = NULL, *bad_file = NULL, *want = NULL;
        FILE *f;

        /* A configuration file named on the command line must exist (the default may not). */
        assert_true(asprintf(&missing, "--config=%s/missing.conf", dir) > 0);
        assert_true(asprintf(&want, "Cannot read configuration %s/missing.conf", dir) > 0);
        expect_exit(&plain, (const char *const[]) { missing, NULL }, 1, want);

        assert_true(asprintf(&bad_file, "%s/bad.conf", dir) > 0);
        assert_non_null(f = fopen(bad_file, "we"));
        fputs("# comment\nWorkers=2\nMaxAddresses=many\n", f);
        fclose(f);
        assert_true(asprintf(&bad, "--config=%s", bad_file) > 0);
        free(want);
        assert_true(asprintf(&want, "Bad configuration %s, line 3", bad_file) > 0);
        expect_exit(&plain, (const char *const[]) { bad, NULL }, 1, want);
}

static void test_socket_errors(void **state) {
        _cleanup_free_ char *file = NULL, *arg = NULL, *want = NULL, *under = NULL, *stale = NULL;
        char longpath[200];
        struct test_daemon d;
        int fd;

        memset(longpath, 'x', sizeof(longpath) - 1);
        longpath[0] = '/';
        longpath[sizeof(longpath) - 1] = 0;
        /* Longer than a socket address holds: refused as a setting. */
        assert_true(asprintf(&arg, "--socket=%s", longpath) > 0);
        expect_exit(&plain, (const char *const[]) { config, arg, NULL }, 2, "Invalid setting Socket=/xxx");

        /* Never replaces what is not a socket. */
        assert_true(asprintf(&file, "%s/regular", dir) > 0);
        assert_true((fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) >= 0);
        close(fd);
        free(arg);
        assert_true(asprintf(&arg, "--socket=%s", file) > 0);
        assert_true(asprintf(&want, "%s exists and is not a socket", file) > 0);
        expect_exit(&plain, (const char *const[]) { config, arg, NULL }, 1, want);

        /* Its folder is made where it can be, and said when it cannot. */
        free(arg);
        assert_true(asprintf(&arg, "--socket=%s/sub/io.memmapd", file) > 0);
        free(want);
        assert_true(asprintf(&want, "Cannot create %s/sub", file) > 0);
        expect_exit(&plain, (const char *const[]) { config, arg, NULL }, 1, want);

        /* Never steals the socket of a daemon that answers. */
        assert_int_equal(test_daemon_start(NULL, &d), 0);
        free(arg);
        assert_true(asprintf(&arg, "--socket=%s", d.socket) > 0);
        free(want);
        assert_true(asprintf(&want, "Another memmapd listens on %s", d.socket) > 0);
        expect_exit(&plain, (const char *const[]) { config, arg, NULL }, 1, want);
        {
                /* ...which still serves. */
                _cleanup_close_ int c = test_connect(d.socket);
                _cleanup_free_ char *reply = NULL;

                assert_true(c >= 0);
                assert_non_null(reply = test_call(c, "{\"method\":\"io.memmapd.GetStatus\"}"));
                assert_non_null(strstr(reply, "\"backend\""));
        }
        assert_int_equal(test_daemon_stop(&d), 0);

        /* A socket left by a dead daemon refuses connections: it is replaced. */
        assert_true(asprintf(&stale, "%s/stale.sock", dir) > 0);
        {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                const char *stop_text;
                int out;
                pid_t pid;

                snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", stale);
                assert_int_equal(bind(s, (struct sockaddr *) &sa, sizeof(sa)), 0);
                close(s);
                free(arg);
                assert_true(asprintf(&arg, "--socket=%s", stale) > 0);
                /* Started with a low soft limit on fds, it takes what the hard one allows. */
                pid = launch(&(struct launch) { .uid = (uid_t) -1, .nofile = 64 },
                             (const char *const[]) { config, arg, "--allow-groups=memmapd-no-such-group", NULL },
                             &out);
                wait_listening(pid, out, stale);
                /* A group that does not exist grants nothing, and it says so. */
                stop_text = "1 group(s) of AllowGroups= do not exist and grant nothing";
                {
                        struct rlimit mine, its;

                        assert_int_equal(getrlimit(RLIMIT_NOFILE, &mine), 0);
                        assert_int_equal(prlimit(pid, RLIMIT_NOFILE, NULL, &its), 0);
                        assert_int_equal(its.rlim_cur, mine.rlim_max);
                        assert_int_equal(its.rlim_max, mine.rlim_max);
                }
                stop_cleanly(pid, out, SIGINT, stop_text);
        }
}

/* memmapd started by a service manager with fds: each must be a listening Unix stream socket. */
static void expect_activation_error(const int *fds, size_t n_fds, const char *listen_fds, const char *want) {
        char env[32];
        const char *const envs[] = { env, NULL };
        struct launch l = { .uid = (uid_t) -1, .env = envs, .fds = fds, .n_fds = n_fds };

        snprintf(env, sizeof(env), "LISTEN_FDS=%s", listen_fds);
        expect_exit(&l, (const char *const[]) { config, NULL }, 1, want);
}

static int listening_socket(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        /* An abstract address: nothing to clean up. */
        assert_true(fd >= 0);
        snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "memmapd-main-%d-%d", (int) getpid(), fd);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 4), 0);
        return fd;
}

static void test_activation_errors(void **state) {
        static const struct {
                int type;
                const char *want;
        } pairs[] = {
                { SOCK_SEQPACKET, "it is a Unix socket of type 5 (SOCK_SEQPACKET), not SOCK_STREAM" },
                { SOCK_DGRAM, "it is a Unix socket of type 2 (SOCK_DGRAM), not SOCK_STREAM" },
                { SOCK_STREAM, "it is a Unix stream socket that is not listening" },
        };
        int p[2], s[2], fds[17], fd;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        expect_activation_error(&p[0], 1, "1", "Passed fd 3 (LISTEN_FDS=1) is not a listening Unix stream socket: "
                                               "it is not a socket but a pipe");
        close(p[0]);
        close(p[1]);

        for (size_t i = 0; i < ELEMENTSOF(pairs); i++) {
                assert_int_equal(socketpair(AF_UNIX, pairs[i].type | SOCK_CLOEXEC, 0, s), 0);
                expect_activation_error(&s[0], 1, "1", pairs[i].want);
                close(s[0]);
                close(s[1]);
        }
        assert_true((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
        expect_activation_error(&fd, 1, "1", "it is a socket of address family 2, not AF_UNIX");
        close(fd);

        /* A count that is no number, and one beyond the fds given. */
        fds[0] = listening_socket();
        expect_activation_error(fds, 1, "one", "Cannot take the sockets passed by the service manager (LISTEN_FDS=one)");
        expect_activation_error(fds, 1, "2", "Passed fd 4 (LISTEN_FDS=2) is not open");
        /* At most 16 sockets. */
        for (size_t i = 1; i < ELEMENTSOF(fds); i++)
                fds[i] = listening_socket();
        expect_activation_error(fds, ELEMENTSOF(fds), "17", "Too many sockets passed: 17, at most 16");
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
}

/* One call on a fresh connection to socket: the error name of the reply, or "ok". */
static const char *call_error(const char *socket, const char *method, pid_t pid) {
        static char err[128];
        _cleanup_close_ int fd = test_connect(socket);
        _cleanup_free_ char *msg = NULL, *reply = NULL;
        struct json_object *r, *e;

        if (fd < 0)
                return "no connection";
        if ((pid > 0 ? asprintf(&msg, "{\"method\":\"io.memmapd.%s\",\"parameters\":{\"pid\":%d}}", method, (int) pid)
                     : asprintf(&msg, "{\"method\":\"io.memmapd.%s\"}", method)) < 0)
                return "no memory";
        reply = test_call(fd, msg);
        if (!reply || !(r = json_tokener_parse(reply)))
                return "no reply";
        snprintf(err, sizeof(err), "%s", json_object_object_get_ex(r, "error", &e) ? json_object_get_string(e) : "ok");
        json_object_put(r);
        return err;
}

struct per_user_case {
        const char *socket;
        pid_t own, other;               /* a process of the daemon's user, and one of another */
        const char *want_own, *want_other;
};

static int per_user_client(void *arg) {
        const struct per_user_case *c = arg;
        const char *r;

        /* As a client the user starts is (the uid change of the fork made this one
         * non-dumpable: a daemon without capabilities could not see its user namespace). */
        if (prctl(PR_SET_DUMPABLE, 1) < 0)
                return 4;

        r = call_error(c->socket, "ListMappings", c->own);
        if (strcmp(r, c->want_own) != 0) {
                fprintf(stderr, "ListMappings of %d: %s, want %s\n", (int) c->own, r, c->want_own);
                return 1;
        }
        r = call_error(c->socket, "ListMappings", c->other);
        if (strcmp(r, c->want_other) != 0) {
                fprintf(stderr, "ListMappings of %d: %s, want %s\n", (int) c->other, r, c->want_other);
                return 2;
        }
        /* Methods that read no process answer everyone. */
        r = call_error(c->socket, "GetStatus", 0);
        if (strcmp(r, "ok") != 0) {
                fprintf(stderr, "GetStatus: %s\n", r);
                return 3;
        }
        return 0;
}

/* A daemon a user starts for themselves: no capabilities, its socket in $XDG_RUNTIME_DIR.
 * It serves its own user as that user (nothing to give up); another user's client cannot be
 * impersonated (no CAP_SETUID/CAP_SETGID), so it is refused, even for that user's own
 * processes, rather than served with the daemon's rights; root's calls run with the daemon's
 * rights, so the kernel refuses it root's processes. Without $XDG_RUNTIME_DIR there is no
 * default socket. */
static void test_per_user_daemon(void **state) {
        _cleanup_free_ char *rt = NULL, *rt_env = NULL, *socket = NULL;
        struct fixture mine, other;
        int out;
        pid_t pid;

        if (geteuid() != 0) {
                printf("[  SKIPPED ] the per-user daemon runs as another uid: needs root\n");
                skip();
        }
        expect_exit(&(struct launch) { .uid = UID_A, .env = (const char *const[]) { "XDG_RUNTIME_DIR", NULL } },
                    (const char *const[]) { config, NULL }, 1, "No socket given and no default (XDG_RUNTIME_DIR unset)");

        assert_true(asprintf(&rt, "%s/run-a", dir) > 0);
        /* Searchable by others, as the socket itself is connectable by anyone: what another
         * user's client gets is the daemon's decision, not the folder's. */
        assert_int_equal(mkdir(rt, 0711), 0);
        assert_int_equal(chown(rt, UID_A, GID_A), 0);
        assert_true(asprintf(&rt_env, "XDG_RUNTIME_DIR=%s", rt) > 0);
        assert_true(asprintf(&socket, "%s/memmapd/io.memmapd", rt) > 0);
        pid = launch(&(struct launch) { .uid = UID_A, .env = (const char *const[]) { rt_env, NULL } },
                     (const char *const[]) { config, NULL }, &out);
        wait_listening(pid, out, socket);
        {
                struct stat st;

                /* The folder it made is the user's. */
                assert_int_equal(stat(socket, &st), 0);
                assert_true(S_ISSOCK(st.st_mode));
                assert_int_equal(st.st_uid, UID_A);
        }

        assert_int_equal(fixture_start_as(0, 0, UID_A, GID_A, 0, &mine), 0);
        assert_int_equal(fixture_start_as(0, 0, UID_B, GID_B, 0, &other), 0);
        {
                struct per_user_case a = { socket, mine.pid, other.pid, "ok", "io.memmapd.PermissionDenied" };
                struct per_user_case b = { socket, other.pid, mine.pid, "org.varlink.service.PermissionDenied",
                                           "org.varlink.service.PermissionDenied" };

                /* Its user: its own processes, not another's (the kernel says so); another
                 * user: refused outright, even for their own process. */
                if (run_as(UID_A, GID_A, per_user_client, &a) != 0 || run_as(UID_B, GID_B, per_user_client, &b) != 0) {
                        kill(pid, SIGTERM);
                        fail_msg("the per-user daemon said: %s", slurp(out));
                }
        }
        /* Root: served with the daemon's rights, so the user's processes and not root's. */
        assert_string_equal(call_error(socket, "ListMappings", mine.pid), "ok");
        assert_string_equal(call_error(socket, "ListMappings", getpid()), "io.memmapd.PermissionDenied");
        fixture_stop(&mine);
        fixture_stop(&other);

        stop_cleanly(pid, out, SIGTERM, "Listening on");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_options),
                cmocka_unit_test(test_tracking_in_pid_namespace),
                cmocka_unit_test(test_config_errors),
                cmocka_unit_test(test_socket_errors),
                cmocka_unit_test(test_activation_errors),
                cmocka_unit_test(test_per_user_daemon),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
