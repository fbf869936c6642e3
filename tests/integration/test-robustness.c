/* memmapd under load and against hostile clients: the real daemon on a private socket, slow and
 * never-reading clients, connection limits, fd exhaustion, malformed input of every kind, a
 * soak that watches the daemon's memory, a checked load run, and SIGKILL of a socket-activated
 * daemon in the middle of load.
 *
 * ROBUSTNESS_SOAK_REQUESTS scales the soak (default 100000); ROBUSTNESS_TESTS=GLOB runs some of
 * the tests; ROBUSTNESS_DEBUG=1 prints what each malformed message got. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
#include "libmemctl.h"

#define UID_A 41011
#define GID_A 41011
#define UID_B 41012
#define GID_B 41012

/* Only catches a hang: an answer a well-behaved client waits for behind an attack that never
 * ends on its own (each attack below lasts until the test has its answers) never comes, so
 * starvation fails on this bound whatever the machine's load. Latencies are printed; numeric
 * bounds belong to `make bench`. */
#define ANSWER_BOUND_USEC (30 * 1000000ull)

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
        va_list ap;
        char *s;

        va_start(ap, f);
        assert_true(vasprintf(&s, f, ap) >= 0);
        va_end(ap);
        return s;
}

/* ------------------------------------------------------------------ cleanup after a failure */

/* Processes a test started: a failing assertion leaves the test by longjmp, and the teardown
 * kills what is left, so no daemon or fixture outlives a failed run (nor holds its output). */
static pid_t tracked[64];

static void track(pid_t pid) {
        for (size_t i = 0; i < ELEMENTSOF(tracked); i++)
                if (tracked[i] <= 0) {
                        tracked[i] = pid;
                        return;
                }
}

static void untrack(pid_t pid) {
        for (size_t i = 0; i < ELEMENTSOF(tracked); i++)
                if (tracked[i] == pid)
                        tracked[i] = 0;
}

static int kill_leftovers(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(tracked); i++)
                if (tracked[i] > 0) {
                        kill(tracked[i], SIGKILL);
                        waitpid(tracked[i], NULL, 0);
                        tracked[i] = 0;
                }
        return 0;
}

static int daemon_start(const char *const *args, struct test_daemon *ret) {
        int r = test_daemon_start(args, ret);

        if (r >= 0)
                track(ret->pid);
        return r;
}

/* A daemon whose RSS a test watches. Under ASan, freed memory waits in a quarantine of up to
 * 256 MiB before reuse, which would swamp any bound: keep it small for this daemon (ASan
 * still finds leaks and errors; only the window for use-after-free shrinks). Plain builds
 * ignore ASAN_OPTIONS. */
static int daemon_start_measured(const char *const *args, struct test_daemon *ret) {
        const char *old = getenv("ASAN_OPTIONS");
        _cleanup_free_ char *saved = old ? strdup(old) : NULL;
        _cleanup_free_ char *opts = NULL;
        int r;

        assert_true(asprintf(&opts, "%s%squarantine_size_mb=1:thread_local_quarantine_size_kb=64", old ? old : "",
                             old && *old ? ":" : "") >= 0);
        setenv("ASAN_OPTIONS", opts, 1);
        r = daemon_start(args, ret);
        if (saved)
                setenv("ASAN_OPTIONS", saved, 1);
        else
                unsetenv("ASAN_OPTIONS");
        return r;
}

static int daemon_stop(struct test_daemon *d) {
        untrack(d->pid);
        return test_daemon_stop(d);
}

static int fx_start(long n_vmas, int with_files, struct fixture *ret) {
        int r = fixture_start(n_vmas, with_files, ret);

        if (r >= 0)
                track(ret->pid);
        return r;
}

static void fx_stop(struct fixture *f) {
        untrack(f->pid);
        fixture_stop(f);
}

/* ------------------------------------------------------------------ raw connections */

/* A blocking connection with a receive timeout, and its own input buffer, so that many can be
 * open at once and nothing waits forever. */
struct rconn {
        int fd;
        char *buf;
        size_t len, cap;
        bool eof;
};

static int rconn_open_timeout(const char *path, struct rconn *ret, unsigned timeout_ms) {
        struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
        int fd = test_connect(path);

        if (fd < 0)
                return fd;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
                close(fd);
                return -errno;
        }
        *ret = (struct rconn) { .fd = fd };
        return 0;
}

static int rconn_open(const char *path, struct rconn *ret) {
        return rconn_open_timeout(path, ret, (unsigned) (ANSWER_BOUND_USEC / 1000));
}

static void rconn_close(struct rconn *c) {
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        free(c->buf);
        c->buf = NULL;
        c->len = c->cap = 0;
}

static int send_all(int fd, const void *data, size_t len) {
        size_t off = 0;

        while (off < len) {
                ssize_t k = send(fd, (const char *) data + off, len - off, MSG_NOSIGNAL);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                off += (size_t) k;
        }
        return 0;
}

static int rconn_send(struct rconn *c, const char *msg) {
        return send_all(c->fd, msg, strlen(msg) + 1);
}

/* The next message (malloc'd), or NULL: c->eof set on EOF, errno EAGAIN on timeout. */
static char *rconn_recv(struct rconn *c) {
        for (;;) {
                char *nul = c->len ? memchr(c->buf, 0, c->len) : NULL;
                ssize_t k;

                if (nul) {
                        size_t used = (size_t) (nul - c->buf) + 1;
                        char *m = malloc(used);

                        assert_non_null(m);
                        memcpy(m, c->buf, used);
                        memmove(c->buf, c->buf + used, c->len - used);
                        c->len -= used;
                        return m;
                }
                if (c->cap - c->len < 65536) {
                        c->cap = c->cap ? c->cap * 2 : 262144;
                        assert_non_null(c->buf = realloc(c->buf, c->cap));
                }
                k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k == 0 || (k < 0 && errno == ECONNRESET)) {
                        c->eof = true;
                        return NULL;
                }
                if (k < 0)
                        return NULL;
                c->len += (size_t) k;
        }
}

static struct json_object *parse(const char *s) {
        struct json_object *o;

        assert_non_null(s);
        o = json_tokener_parse(s);
        if (!o)
                fail_msg("not JSON: %.200s", s);
        return o;
}

static struct json_object *get(struct json_object *o, const char *key) {
        struct json_object *v = NULL;

        if (!json_object_object_get_ex(o, key, &v))
                fail_msg("no \"%s\" in %.300s", key, json_object_to_json_string(o));
        return v;
}

static const char *error_of(struct json_object *reply) {
        struct json_object *e;

        return json_object_object_get_ex(reply, "error", &e) ? json_object_get_string(e) : NULL;
}

/* One call on a fresh connection, answered within ANSWER_BOUND_USEC; the parsed reply. */
static struct json_object *timed_call(const char *socket, const char *msg) {
        struct rconn c;
        _cleanup_free_ char *reply = NULL;
        uint64_t t0 = now_usec(), dt;

        assert_int_equal(rconn_open(socket, &c), 0);
        assert_int_equal(rconn_send(&c, msg), 0);
        reply = rconn_recv(&c);
        dt = now_usec() - t0;
        rconn_close(&c);
        if (!reply)
                fail_msg("no reply to %s", msg);
        if (dt > ANSWER_BOUND_USEC)
                fail_msg("%s took %" PRIu64 " ms", msg, dt / 1000);
        return parse(reply);
}

static uint64_t status_connections(const char *socket) {
        _cleanup_json_ struct json_object *r = timed_call(socket, "{\"method\":\"io.memmapd.GetStatus\"}");

        assert_null(error_of(r));
        return (uint64_t) json_object_get_int64(get(get(r, "parameters"), "connections"));
}

/* Lookup of one address of f's that the test knows from /proc/PID/maps: checks the answer. */
static void check_lookup(const char *socket, pid_t pid, uint64_t addr, uint64_t want_start, uint64_t want_end) {
        _cleanup_free_ char *msg =
                fmt("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"addresses\":[\"0x%" PRIx64 "\"]}}",
                    (int) pid, addr);
        _cleanup_json_ struct json_object *r = timed_call(socket, msg);
        struct json_object *p, *res, *m;
        _cleanup_free_ char *s = fmt("0x%" PRIx64, want_start), *e = fmt("0x%" PRIx64, want_end);

        if (error_of(r))
                fail_msg("Lookup: %s", json_object_to_json_string(r));
        p = get(r, "parameters");
        res = json_object_array_get_idx(get(p, "results"), 0);
        assert_non_null(res);
        m = json_object_array_get_idx(get(p, "mappings"), (size_t) json_object_get_int(get(res, "mapping")));
        assert_non_null(m);
        assert_string_equal(json_object_get_string(get(m, "start")), s);
        assert_string_equal(json_object_get_string(get(m, "end")), e);
}

/* The mapping of pid that holds addr, from /proc/PID/maps. */
static void proc_mapping_of(pid_t pid, uint64_t addr, uint64_t *ret_start, uint64_t *ret_end) {
        _cleanup_free_ char *path = fmt("/proc/%d/maps", (int) pid);
        char line[4096];
        FILE *f = fopen(path, "re");

        assert_non_null(f);
        while (fgets(line, sizeof(line), f)) {
                uint64_t s, e;

                if (sscanf(line, "%" SCNx64 "-%" SCNx64, &s, &e) == 2 && s <= addr && addr < e) {
                        fclose(f);
                        *ret_start = s;
                        *ret_end = e;
                        return;
                }
        }
        fclose(f);
        fail_msg("0x%" PRIx64 " is not mapped in %d", addr, (int) pid);
}

/* ------------------------------------------------------------------ /proc of the daemon */

static long vm_rss_kib(pid_t pid) {
        _cleanup_free_ char *path = fmt("/proc/%d/status", (int) pid);
        char line[256];
        long kib = -1;
        FILE *f = fopen(path, "re");

        assert_non_null(f);
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
                        break;
        fclose(f);
        assert_true(kib > 0);
        return kib;
}

/* utime + stime of pid, in clock ticks. */
static unsigned long long cpu_ticks(pid_t pid) {
        uint64_t ut = 0, st = 0;

        /* Fields 14 and 15: user and system time. */
        assert_int_equal(test_proc_stat_field(pid, 14, &ut), 0);
        assert_int_equal(test_proc_stat_field(pid, 15, &st), 0);
        return ut + st;
}

/* Raising hard limits and switching users need root (as the suite runs: see README). */
static void require_root(const char *why) {
        if (geteuid() != 0) {
                printf("# skipped: needs root to %s\n", why);
                skip();
        }
}

static void raise_nofile(rlim_t want) {
        struct rlimit rl;

        assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
        if (rl.rlim_cur >= want)
                return;
        if (rl.rlim_max < want)
                rl.rlim_max = want; /* root may raise the hard limit */
        rl.rlim_cur = want;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* ------------------------------------------------------------------ 1. slow and hostile clients */

#define LU_HEAD "{\"method\":\"io.memmapd.Lookup\",\"parameters\":"

struct trickler {
        const char *socket;
        atomic_bool stop;
        atomic_int answered;
        pthread_t thread;
};

/* Sends GetStatus one byte every 50 ms, over and over, reading each answer. */
static void *trickle_main(void *arg) {
        struct trickler *t = arg;
        static const char msg[] = "{\"method\":\"io.memmapd.GetStatus\"}";
        struct rconn c;

        if (rconn_open(t->socket, &c) < 0)
                return NULL;
        while (!atomic_load(&t->stop)) {
                char *reply;

                for (size_t i = 0; i < sizeof(msg) && !atomic_load(&t->stop); i++) {
                        if (send(c.fd, msg + i, 1, MSG_NOSIGNAL) != 1)
                                goto out;
                        usleep(50 * 1000);
                }
                if (atomic_load(&t->stop))
                        break;
                reply = rconn_recv(&c);
                if (!reply)
                        break;
                if (strstr(reply, "\"uptime_usec\""))
                        atomic_fetch_add(&t->answered, 1);
                free(reply);
        }
out:
        rconn_close(&c);
        return NULL;
}

/* Pipelines n ListMappings of pid and never reads. */
static int open_never_reader(const char *socket, pid_t pid, int n) {
        _cleanup_free_ char *msg =
                fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,\"build_ids\":true}}", (int) pid);
        int fd = test_connect(socket);
        int rcvbuf = 4096;

        assert_true(fd >= 0);
        /* A small receive buffer, so the daemon's side fills up soon. */
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
        for (int i = 0; i < n; i++)
                assert_int_equal(send_all(fd, msg, strlen(msg) + 1), 0);
        return fd;
}

static void test_slow_clients(void **state) {
        static const char *const args[] = { "--set", "MaxConnections=2000", "--set", "MaxConnectionsPerUser=2000", NULL };
        const size_t n_idle = 1000;
        struct test_daemon d;
        struct fixture big, small;
        struct trickler t = {};
        int *idle, never, half_partial, half_unread;
        uint64_t code = 0, code_start, code_end, stack_start, stack_end;
        long rss_before, rss_after;
        uint64_t worst = 0;

        require_root("raise RLIMIT_NOFILE for 1000 connections");
        raise_nofile(n_idle + 256);
        assert_int_equal(fx_start(20000, 0, &big), 0);
        assert_int_equal(fx_start(10, 1, &small), 0);
        assert_int_equal(daemon_start_measured(args, &d), 0);
        t.socket = d.socket;

        code = fixture_get(&small, "marker");
        proc_mapping_of(small.pid, fixture_get(&small, "space"), &stack_start, &stack_end);
        /* Warm the daemon up so the RSS baseline includes its steady state. */
        for (int i = 0; i < 3; i++) {
                _cleanup_free_ char *m = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,"
                                             "\"build_ids\":true}}", (int) big.pid);
                _cleanup_json_ struct json_object *r = timed_call(d.socket, m);
                assert_null(error_of(r));
        }
        rss_before = vm_rss_kib(d.pid);

        /* (a) a byte every 50 ms */
        assert_int_equal(pthread_create(&t.thread, NULL, trickle_main, &t), 0);
        /* (b) large listings pipelined, never read */
        never = open_never_reader(d.socket, big.pid, 50);
        /* (c) half-closed: one with a partial message, one with a call it never reads */
        half_partial = test_connect(d.socket);
        assert_true(half_partial >= 0);
        assert_int_equal(send_all(half_partial, "{\"method\":\"io.memm", 18), 0);
        assert_int_equal(shutdown(half_partial, SHUT_WR), 0);
        half_unread = test_connect(d.socket);
        assert_true(half_unread >= 0);
        assert_int_equal(test_send(half_unread, "{\"method\":\"io.memmapd.GetStatus\"}"), 0);
        assert_int_equal(shutdown(half_unread, SHUT_WR), 0);
        /* (d) many idle connections */
        assert_non_null(idle = calloc(n_idle, sizeof(int)));
        for (size_t i = 0; i < n_idle; i++) {
                idle[i] = test_connect(d.socket);
                if (idle[i] < 0)
                        fail_msg("idle connection %zu: %s", i, strerror(-idle[i]));
        }

        /* Everyone else is answered, correctly and in time. */
        /* Until the trickler has finished two calls (35 bytes at 50 ms each): every round is
         * answered while the slow clients are in force. */
        for (uint64_t start = now_usec(); atomic_load(&t.answered) < 2;) {
                assert_true(now_usec() - start < 2 * ANSWER_BOUND_USEC);
                uint64_t t0 = now_usec(), dt;

                {
                        _cleanup_json_ struct json_object *r = timed_call(d.socket, "{\"method\":\"io.memmapd.GetStatus\"}");
                        assert_null(error_of(r));
                }
                proc_mapping_of(small.pid, code, &code_start, &code_end);
                check_lookup(d.socket, small.pid, code, code_start, code_end);
                check_lookup(d.socket, small.pid, fixture_get(&small, "space"), stack_start, stack_end);
                dt = now_usec() - t0;
                if (dt > worst)
                        worst = dt;
                usleep(50 * 1000);
        }
        {
                /* All of them are connected, the idle ones included. */
                uint64_t n = status_connections(d.socket);
                if (n < n_idle + 3)
                        fail_msg("only %" PRIu64 " connections counted", n);
        }
        rss_after = vm_rss_kib(d.pid);
        atomic_store(&t.stop, true);
        pthread_join(t.thread, NULL);
        printf("# slow clients: worst round of 3 calls %" PRIu64 " ms; trickled GetStatus answered %d; "
               "daemon RSS %ld -> %ld KiB with a never-reading client of 50 listings\n",
               worst / 1000, atomic_load(&t.answered), rss_before, rss_after);
        assert_true(atomic_load(&t.answered) >= 2);
        /* 50 listings of 20000 mappings would be far above 100 MiB if buffered; the daemon
         * holds at most one reply beyond its 256 KiB high-water mark. */
        assert_true(rss_after - rss_before < 48 * 1024);

        /* The half-closed one with a complete call got its answer, then EOF. */
        {
                struct rconn c = { .fd = half_unread };
                _cleanup_free_ char *reply = rconn_recv(&c);
                assert_non_null(reply);
                assert_non_null(strstr(reply, "\"uptime_usec\""));
                assert_null(rconn_recv(&c));
                assert_true(c.eof);
                rconn_close(&c);
        }
        {
                struct rconn c = { .fd = half_partial };
                assert_null(rconn_recv(&c));
                assert_true(c.eof);
                rconn_close(&c);
        }
        for (size_t i = 0; i < n_idle; i++)
                close(idle[i]);
        free(idle);
        close(never);
        assert_int_equal(daemon_stop(&d), 0);
        fx_stop(&small);
        fx_stop(&big);
}

/* With IdleTimeoutSec=1 a never-reading client and idle ones are dropped: the count falls. */
static void test_idle_timeout_drops_never_reader(void **state) {
        static const char *const args[] = { "--set", "IdleTimeoutSec=1", NULL };
        struct test_daemon d;
        struct fixture big;
        int never, idle[10];
        uint64_t n = 0, t0;
        long rss_before, rss_peak = 0;
        size_t got = 0;

        assert_int_equal(fx_start(20000, 0, &big), 0);
        assert_int_equal(daemon_start_measured(args, &d), 0);
        rss_before = vm_rss_kib(d.pid);
        never = open_never_reader(d.socket, big.pid, 20);
        for (size_t i = 0; i < ELEMENTSOF(idle); i++)
                assert_true((idle[i] = test_connect(d.socket)) >= 0);
        assert_true(status_connections(d.socket) >= 12);

        t0 = now_usec();
        while (now_usec() - t0 < ANSWER_BOUND_USEC) {
                long rss = vm_rss_kib(d.pid);

                if (rss > rss_peak)
                        rss_peak = rss;
                n = status_connections(d.socket);
                if (n <= 1)
                        break;
                usleep(100 * 1000);
        }
        printf("# idle timeout: connections %" PRIu64 " after %" PRIu64 " ms; RSS %ld KiB, peak %ld KiB\n", n,
               (now_usec() - t0) / 1000, rss_before, rss_peak);
        /* Only our own GetStatus connection is left. */
        assert_int_equal(n, 1);
        assert_true(rss_peak - rss_before < 48 * 1024);

        /* The never-reader finds some of its output, then EOF: not all 20 replies. */
        {
                struct rconn c = { .fd = never };
                char *m;

                while ((m = rconn_recv(&c))) {
                        got++;
                        free(m);
                }
                assert_true(c.eof);
                rconn_close(&c);
        }
        printf("# idle timeout: the never-reading client got %zu of 20 replies before EOF\n", got);
        assert_true(got < 20);
        for (size_t i = 0; i < ELEMENTSOF(idle); i++) {
                char b;
                /* Closed by the daemon: EOF at once. */
                assert_int_equal(recv(idle[i], &b, 1, MSG_DONTWAIT), 0);
                close(idle[i]);
        }
        assert_int_equal(daemon_stop(&d), 0);
        fx_stop(&big);
}

/* Messages of MaxMessageSize that are nothing but tiny JSON values ("1,1,1,..."): each would
 * cost the parser some 80 bytes per value and the event loop most of a second. Refused before
 * parsing, they neither hold up others nor blow up the daemon's memory. */
struct flooder {
        pthread_t thread;
        const char *socket;
        const char *msg;
        size_t len;
        atomic_bool *stop;
        unsigned limited;       /* floods refused with LimitExceeded */
        unsigned other;         /* floods that ended otherwise */
};

/* Floods again and again until told to stop, so that the probes always meet it. */
static void *flood_main(void *arg) {
        struct flooder *f = arg;

        while (!atomic_load(f->stop)) {
                struct rconn c;
                _cleanup_free_ char *reply = NULL;

                if (rconn_open_timeout(f->socket, &c, 30000) < 0) {
                        f->other++;
                        break;
                }
                if (send_all(c.fd, f->msg, f->len) == 0 && (reply = rconn_recv(&c)) &&
                    strstr(reply, "io.memmapd.LimitExceeded") && strstr(reply, "\"max_addresses\""))
                        f->limited++;
                else
                        f->other++;
                rconn_close(&c);
        }
        return NULL;
}

static void test_value_flood(void **state) {
        enum { N = 8 };
        static const char head[] = "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":1,\"addresses\":[";
        const size_t size = 4u * 1024 * 1024; /* the default MaxMessageSize */
        struct flooder fl[N] = {};
        atomic_bool stop = false;
        unsigned probes = 0, limited = 0;
        struct test_daemon d;
        _cleanup_free_ char *msg = malloc(size);
        size_t len = 0;
        long rss0, peak = 0;
        uint64_t worst = 0, t0;

        assert_non_null(msg);
        memcpy(msg, head, strlen(head));
        len = strlen(head);
        while (len + 2 + 3 < size - 1) {
                memcpy(msg + len, "1,", 2);
                len += 2;
        }
        memcpy(msg + len - 1, "]}}", 4); /* replaces the last comma; the NUL ends it */
        len += 3;
        assert_true(len < size);

        assert_int_equal(daemon_start_measured(NULL, &d), 0);
        rss0 = vm_rss_kib(d.pid);
        for (size_t i = 0; i < N; i++) {
                fl[i] = (struct flooder) { .socket = d.socket, .msg = msg, .len = len, .stop = &stop };
                assert_int_equal(pthread_create(&fl[i].thread, NULL, flood_main, &fl[i]), 0);
        }
        /* 20 probes while the floods go on: a daemon they starve never answers one. */
        t0 = now_usec();
        for (; probes < 20; probes++) {
                uint64_t a = now_usec(), dt;
                _cleanup_json_ struct json_object *r = timed_call(d.socket, "{\"method\":\"io.memmapd.GetStatus\"}");
                long rss = vm_rss_kib(d.pid);

                assert_null(error_of(r));
                dt = now_usec() - a;
                if (dt > worst)
                        worst = dt;
                if (rss > peak)
                        peak = rss;
                usleep(20 * 1000);
        }
        atomic_store(&stop, true);
        for (size_t i = 0; i < N; i++) {
                pthread_join(fl[i].thread, NULL);
                assert_int_equal(fl[i].other, 0);
                assert_true(fl[i].limited > 0);
                limited += fl[i].limited;
        }
        printf("# value flood: %d clients x %zu KiB of \"1,\", %u floods refused: %u GetStatus in %" PRIu64
               " ms, worst %" PRIu64 " ms, daemon RSS %ld -> peak %ld KiB\n",
               N, len / 1024, limited, probes, (now_usec() - t0) / 1000, worst / 1000, rss0, peak);
        /* Each client's message is buffered whole (4 MiB); parsed, each would be ~160 MiB. */
        assert_true(peak - rss0 < 96 * 1024);
        assert_int_equal(daemon_stop(&d), 0);
}

/* The refusal before parsing does not cut into what MaxAddresses allows. */
static void test_max_addresses_boundary(void **state) {
        static const char *const args[] = { "--set", "MaxAddresses=1000", NULL };
        struct test_daemon d;

        assert_int_equal(daemon_start(args, &d), 0);
        for (size_t n = 999; n <= 3000; n += n < 1001 ? 1 : 1999) {
                size_t len = 0;
                _cleanup_free_ char *msg = malloc(n * 6 + 128);

                assert_non_null(msg);
                len += (size_t) sprintf(msg, LU_HEAD "{\"pid\":%d,\"addresses\":[", (int) getpid());
                for (size_t i = 0; i < n; i++)
                        len += (size_t) sprintf(msg + len, "%s\"0x1\"", i ? "," : "");
                strcpy(msg + len, "]}}");
                _cleanup_json_ struct json_object *r = timed_call(d.socket, msg);
                if (n <= 1000) {
                        if (error_of(r))
                                fail_msg("%zu addresses: %s", n, error_of(r));
                        assert_int_equal(json_object_array_length(get(get(r, "parameters"), "results")), n);
                } else {
                        assert_string_equal(error_of(r), "io.memmapd.LimitExceeded");
                        assert_string_equal(json_object_get_string(get(get(r, "parameters"), "limit")), "max_addresses");
                }
        }
        assert_int_equal(daemon_stop(&d), 0);
}

/* ------------------------------------------------------------------ 2. connection limits */

/* An accepted connection answers; a refused one is closed at once. */
static bool conn_answers(int fd) {
        struct rconn c = { .fd = fd };
        _cleanup_free_ char *reply = NULL;
        bool ok;

        if (rconn_send(&c, "{\"method\":\"io.memmapd.GetStatus\"}") < 0)
                return false;
        reply = rconn_recv(&c);
        ok = reply && strstr(reply, "\"uptime_usec\"");
        free(c.buf);
        return ok;
}

/* The daemon's count of open connections, asked on a connection it already accepted (a new
 * one could be refused at the limits under test). */
static long conn_status_connections(int fd) {
        struct rconn c = { .fd = fd };
        _cleanup_free_ char *reply = NULL;
        long n = -1;

        if (rconn_send(&c, "{\"method\":\"io.memmapd.GetStatus\"}") >= 0 && (reply = rconn_recv(&c))) {
                _cleanup_json_ struct json_object *r = parse(reply);
                struct json_object *v;

                if (json_object_object_get_ex(get(r, "parameters"), "connections", &v))
                        n = (long) json_object_get_int64(v);
        }
        free(c.buf);
        return n;
}

/* Closed connections are counted down when a serving thread sees the EOF: on a loaded
 * machine that can take a while, so wait for it rather than for a fixed time. */
static bool wait_connections(int fd, long want) {
        uint64_t deadline = now_usec() + ANSWER_BOUND_USEC;
        long n;

        while ((n = conn_status_connections(fd)) != want) {
                if (n < 0 || now_usec() > deadline) {
                        printf("# connections: %ld, waited for %ld\n", n, want);
                        return false;
                }
                usleep(5 * 1000);
        }
        printf("# connections: %ld after %llu us\n", n, (unsigned long long) (now_usec() + ANSWER_BOUND_USEC - deadline));
        return true;
}

static int refused_at_once(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        char b;

        /* The daemon closes without a word: EOF (or a reset) well within the bound. */
        if (poll(&p, 1, (int) (ANSWER_BOUND_USEC / 1000)) != 1)
                return 0;
        ssize_t k = recv(fd, &b, 1, MSG_DONTWAIT);
        return k == 0 || (k < 0 && errno == ECONNRESET);
}

static const char *limits_socket;

/* As another user: two connections fit in MaxConnections=5 beside root's three; a third does not. */
static int other_user_connects(void *arg) {
        int a = test_connect(limits_socket), b = test_connect(limits_socket), c;

        if (a < 0 || b < 0)
                return 10;
        if (!conn_answers(a))
                return 11;
        if (!conn_answers(b))
                return 12;
        c = test_connect(limits_socket);
        if (c < 0)
                return 13;
        if (!refused_at_once(c))
                return 14;
        close(a);
        close(b);
        close(c);
        return 0;
}

static void test_connection_limits(void **state) {
        static const char *const args[] = { "--set", "MaxConnections=5", "--set", "MaxConnectionsPerUser=3", NULL };
        struct test_daemon d;
        int mine[3], extra;

        require_root("connect as another user");
        assert_int_equal(daemon_start(args, &d), 0);
        limits_socket = d.socket;
        for (size_t i = 0; i < ELEMENTSOF(mine); i++) {
                assert_true((mine[i] = test_connect(d.socket)) >= 0);
                /* Accepted before the next one comes. */
                assert_true(conn_answers(mine[i]));
                /* daemon_start() connected to see the daemon up: until the daemon has seen
                 * that one close, it counts against root's three too. */
                if (i == 0)
                        assert_true(wait_connections(mine[0], 1));
        }
        /* A fourth of root's: over MaxConnectionsPerUser. */
        assert_true((extra = test_connect(d.socket)) >= 0);
        assert_true(refused_at_once(extra));
        close(extra);
        /* Another user still gets in, up to MaxConnections in all. */
        assert_int_equal(run_as(UID_A, GID_A, other_user_connects, NULL), 0);
        /* Root's connections still work. */
        for (size_t i = 0; i < ELEMENTSOF(mine); i++)
                assert_true(conn_answers(mine[i]));
        assert_true(wait_connections(mine[1], 3));
        /* Closing one makes room for another. */
        close(mine[0]);
        assert_true(wait_connections(mine[1], 2));
        assert_true((mine[0] = test_connect(d.socket)) >= 0);
        assert_true(conn_answers(mine[0]));
        for (size_t i = 0; i < ELEMENTSOF(mine); i++)
                close(mine[i]);
        assert_int_equal(daemon_stop(&d), 0);
}

/* ------------------------------------------------------------------ 3. fd exhaustion */

static void test_fd_exhaustion(void **state) {
        static const char *const args[] = { "--set", "IdleTimeoutSec=3", NULL };
        const struct rlimit low = { 64, 64 };
        const size_t n = 150;
        struct test_daemon d;
        struct fixture f;
        int fds[150];
        size_t answered = 0, refused = 0;
        unsigned long long c0, c1;
        long hz = sysconf(_SC_CLK_TCK);

        require_root("raise RLIMIT_NOFILE");
        raise_nofile(n + 64);
        assert_int_equal(fx_start(10, 0, &f), 0);
        assert_int_equal(daemon_start(args, &d), 0);
        /* Root may lower another process's limits: the daemon now has 64 fds at most. */
        assert_int_equal(prlimit(d.pid, RLIMIT_NOFILE, &low, NULL), 0);

        for (size_t i = 0; i < n; i++)
                assert_true((fds[i] = test_connect(d.socket)) >= 0);
        /* The daemon takes the backlog in order, closing what it has no fd for: once the
         * last connection is closed, it has seen them all. */
        for (uint64_t deadline = now_usec() + ANSWER_BOUND_USEC;;) {
                struct pollfd p = { .fd = fds[n - 1], .events = POLLIN };

                if (poll(&p, 1, 100) == 1)
                        break;
                assert_true(now_usec() < deadline);
        }
        /* No busy loop while it cannot take more: the CPU time it used over a second. Load
         * only lowers that (a busy loop still gets a good part of a core). */
        c0 = cpu_ticks(d.pid);
        usleep(1000 * 1000);
        c1 = cpu_ticks(d.pid);
        for (size_t i = 0; i < n; i++) {
                struct pollfd p = { .fd = fds[i], .events = POLLIN };
                char b;

                if (poll(&p, 1, 0) == 1 && recv(fds[i], &b, 1, MSG_DONTWAIT) == 0) {
                        refused++;
                        close(fds[i]);
                        fds[i] = -1;
                }
        }
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0 && answered < 3 && conn_answers(fds[i]))
                        answered++;
        printf("# fd exhaustion: %zu of %zu connections refused; daemon CPU %llu ticks in 1 s (HZ %ld)\n", refused, n,
               c1 - c0, hz);
        assert_true(refused > 0);
        assert_true(answered == 3);
        assert_true((c1 - c0) * 10 < (unsigned long long) hz * 2); /* < 0.2 s of 1 s */

        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        /* Takes connections again once it has seen the closes (a loaded machine may take a
         * while), then serves a call that needs fds of its own (the target's pidfd and /proc
         * files). */
        for (uint64_t deadline = now_usec() + ANSWER_BOUND_USEC;;) {
                int fd = test_connect(d.socket);
                bool ok = fd >= 0 && conn_answers(fd);

                if (fd >= 0)
                        close(fd);
                if (ok)
                        break;
                assert_true(now_usec() < deadline);
                usleep(20 * 1000);
        }
        {
                uint64_t s, e;
                proc_mapping_of(f.pid, fixture_get(&f, "marker"), &s, &e);
                check_lookup(d.socket, f.pid, fixture_get(&f, "marker"), s, e);
        }
        assert_int_equal(kill(d.pid, 0), 0);
        assert_int_equal(daemon_stop(&d), 0);
        fx_stop(&f);
}

/* ------------------------------------------------------------------ 4. malformed input */

#define CLOSE NULL
#define IP "org.varlink.service.InvalidParameter"

struct bad_case {
        const char *msg;
        size_t len;             /* 0: strlen(msg); the NUL terminator is always added */
        const char *error;      /* CLOSE: no reply, the connection closes */
        const char *parameter;  /* of InvalidParameter, or another error's first string parameter */
};

/* Strict UTF-8 (Unicode table 3-7): no overlongs, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const char *str) {
        const unsigned char *p = (const unsigned char *) str;

        while (*p) {
                unsigned char c = *p;
                size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
                unsigned char lo = 0x80, hi = 0xbf;

                if (n == 0)
                        return false;
                if (c == 0xe0)
                        lo = 0xa0;
                else if (c == 0xed)
                        hi = 0x9f;
                else if (c == 0xf0)
                        lo = 0x90;
                else if (c == 0xf4)
                        hi = 0x8f;
                for (size_t i = 1; i < n; i++) {
                        if (p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xbf))
                                return false;
                }
                p += n;
        }
        return true;
}

static void check_bad(const char *socket, const struct bad_case *b) {
        size_t len = b->len ? b->len : strlen(b->msg);
        _cleanup_free_ char *buf = malloc(len + 1);
        _cleanup_free_ char *reply = NULL;
        struct rconn c;

        assert_non_null(buf);
        memcpy(buf, b->msg, len);
        buf[len] = 0;
        assert_int_equal(rconn_open_timeout(socket, &c, (unsigned) (ANSWER_BOUND_USEC / 1000)), 0);
        assert_int_equal(send_all(c.fd, buf, len + 1), 0);
        reply = rconn_recv(&c);
        if (getenv("ROBUSTNESS_DEBUG"))
                fprintf(stderr, "case '%.80s' -> %s\n", b->msg, reply ? reply : c.eof ? "(close)" : "(timeout)");
        if (!b->error) {
                if (reply || !c.eof)
                        fail_msg("'%.80s': expected a close, got %s", b->msg, reply ? reply : "a timeout");
        } else {
                if (!reply)
                        fail_msg("'%.80s': expected %s, got %s", b->msg, b->error, c.eof ? "a close" : "a timeout");
                if (!utf8_valid(reply))
                        fail_msg("'%.80s': the reply is not valid UTF-8", b->msg);
                _cleanup_json_ struct json_object *r = parse(reply);
                const char *e = error_of(r);

                if (!e || strcmp(e, b->error) != 0)
                        fail_msg("'%.80s': expected %s, got %s", b->msg, b->error, reply);
                if (b->parameter) {
                        struct json_object *p = get(r, "parameters"), *v = NULL;
                        const char *key = strcmp(b->error, IP) == 0 ? "parameter" :
                                          strstr(b->error, "MethodNotFound") ? "method" :
                                          strstr(b->error, "InterfaceNotFound") ? "interface" : "limit";

                        json_object_object_get_ex(p, key, &v);
                        if (!v || strcmp(json_object_get_string(v), b->parameter) != 0)
                                fail_msg("'%.80s': expected %s %s, got %s", b->msg, key, b->parameter, reply);
                }
                /* The connection survives an error reply. */
                assert_int_equal(rconn_send(&c, "{\"method\":\"io.memmapd.GetStatus\"}"), 0);
                _cleanup_free_ char *again = rconn_recv(&c);
                if (!again || !strstr(again, "\"uptime_usec\""))
                        fail_msg("'%.80s': the connection did not answer after the error", b->msg);
        }
        rconn_close(&c);
}

#define LM "{\"method\":\"io.memmapd.ListMappings\",\"parameters\":"
#define LU "{\"method\":\"io.memmapd.Lookup\",\"parameters\":"

static void test_malformed(void **state) {
        static const struct bad_case cases[] = {
                /* not a Varlink message at all */
                { "", 0, CLOSE, NULL },
                { "not json", 0, CLOSE, NULL },
                { "[1,2]", 0, CLOSE, NULL },
                { "\"str\"", 0, CLOSE, NULL },
                { "42", 0, CLOSE, NULL },
                { "1e400", 0, CLOSE, NULL },
                { "null", 0, CLOSE, NULL },
                { "true", 0, CLOSE, NULL },
                { "{}", 0, CLOSE, NULL },
                { "{\"method\":7}", 0, CLOSE, NULL },
                { "{\"method\":null}", 0, CLOSE, NULL },
                { "{\"method\":[\"io.memmapd.GetStatus\"]}", 0, CLOSE, NULL },
                { "{\"method\":\"\"}", 0, CLOSE, NULL },
                { "{\"method\":\"io.memmapd.GetStatus\"", 0, CLOSE, NULL },
                { "{\"method\":\"io.memmapd.GetStatus\"}}", 0, CLOSE, NULL },
                /* a raw NUL ends the message: what comes before it is incomplete */
                { "{\"method\":\"io.memmapd.Get\0Status\"}", 33, CLOSE, NULL },
                /* invalid UTF-8 */
                { "{\"method\":\"io.memmapd.GetStatus\xff\"}", 0, CLOSE, NULL },
                { "{\"method\":\"io.memmapd.GetStatus\",\"parameters\":{\"\xc3\x28\":1}}", 0, CLOSE, NULL },
                /* json-c's UTF-8 check lets an encoded surrogate through: it is still no address,
                 * and a name that the reply echoes goes out as valid UTF-8 */
                { LU "{\"pid\":1,\"addresses\":[\"0x1\xed\xa0\x80\"]}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":[],\"\xed\xa0\x80\":1}}", 0, IP, NULL },
                { "{\"method\":\"io.memmapd.\xed\xa0\x80\"}", 0, CLOSE, NULL }, /* not a method name */
                /* unknown methods and interfaces */
                { "{\"method\":\"io.memmapd.Nope\"}", 0, "org.varlink.service.MethodNotFound", "io.memmapd.Nope" },
                { "{\"method\":\"org.varlink.service.Nope\"}", 0, "org.varlink.service.MethodNotFound",
                  "org.varlink.service.Nope" },
                { "{\"method\":\"com.example.Thing.Do\"}", 0, "org.varlink.service.InterfaceNotFound", "com.example.Thing" },
                /* \u0000 inside the method name is not GetStatus */
                { "{\"method\":\"io.memmapd.GetStatus\\u0000x\"}", 0, CLOSE, NULL },
                /* wrong types and values for every field */
                { "{\"method\":\"io.memmapd.GetStatus\",\"parameters\":[]}", 0, IP, "parameters" },
                { "{\"method\":\"io.memmapd.GetStatus\",\"parameters\":\"x\"}", 0, IP, "parameters" },
                { "{\"method\":\"io.memmapd.GetStatus\",\"parameters\":{\"x\":1}}", 0, IP, "x" },
                { "{\"method\":\"io.memmapd.GetStatus\",\"oneway\":\"yes\"}", 0, IP, "oneway" },
                { "{\"method\":\"io.memmapd.GetStatus\",\"more\":1}", 0, IP, "more" },
                { LM "{}}", 0, IP, "pid" },
                { LM "{\"pid\":null}}", 0, IP, "pid" },
                { LM "{\"pid\":true}}", 0, IP, "pid" },
                { LM "{\"pid\":\"1\"}}", 0, IP, "pid" },
                { LM "{\"pid\":[1]}}", 0, IP, "pid" },
                { LM "{\"pid\":{}}}", 0, IP, "pid" },
                { LM "{\"pid\":1.5}}", 0, IP, "pid" },
                { LM "{\"pid\":-1}}", 0, IP, "pid" },
                { LM "{\"pid\":0}}", 0, IP, "pid" },
                { LM "{\"pid\":1e400}}", 0, IP, "pid" },
                { LM "{\"pid\":-1e400}}", 0, IP, "pid" },
                /* integers that no 64-bit type holds (json-c would clamp them): the parameter
                 * is invalid, the connection goes on */
                { LM "{\"pid\":18446744073709551616}}", 0, IP, "pid" },
                { LM "{\"pid\":18446744073709551615}}", 0, IP, "pid" },
                { LM "{\"pid\":-9223372036854775809}}", 0, IP, "pid" },
                /* positive pids that name no process: NoSuchProcess, beyond pid_t too */
                { LM "{\"pid\":9223372036854775807}}", 0, "io.memmapd.NoSuchProcess", NULL },
                { LM "{\"pid\":2147483648}}", 0, "io.memmapd.NoSuchProcess", NULL },
                { LM "{\"pid\":4294967297}}", 0, "io.memmapd.NoSuchProcess", NULL },
                { LM "{\"pid\":1,\"start_time\":\"x\"}}", 0, IP, "start_time" },
                { LM "{\"pid\":1,\"start_time\":-1}}", 0, IP, "start_time" },
                { LM "{\"pid\":1,\"start_time\":1.5}}", 0, IP, "start_time" },
                { LM "{\"pid\":1,\"start_time\":1e400}}", 0, IP, "start_time" },
                { LM "{\"pid\":1,\"start_time\":18446744073709551616}}", 0, IP, "start_time" },
                { LM "{\"pid\":1,\"executable_only\":1}}", 0, IP, "executable_only" },
                { LM "{\"pid\":1,\"executable_only\":\"true\"}}", 0, IP, "executable_only" },
                { LM "{\"pid\":1,\"file_backed_only\":[]}}", 0, IP, "file_backed_only" },
                { LM "{\"pid\":1,\"build_ids\":1}}", 0, IP, "build_ids" },
                { LM "{\"pid\":1,\"uid\":0}}", 0, IP, "uid" },
                { LM "{\"pid\":1,\"\":0}}", 0, IP, "" },
                { LU "{\"pid\":1}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":null}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":\"0x1\"}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":{}}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":[true]}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":[null]}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":[[]]}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":[1.5]}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":[-1]}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":[1e400]}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":[18446744073709551616]}}", 0, IP, "addresses" },
                { LU "{\"pid\":99999999999999999999999,\"addresses\":[\"0x1\"]}}", 0, IP, "pid" },
                { LU "{\"pid\":-99999999999999999999999,\"addresses\":[\"0x1\"]}}", 0, IP, "pid" },
                { LU "{\"pid\":1,\"addresses\":[\"0x1\",99999999999999999999999]}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":[-99999999999999999999999]}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":[\"0x1\"],\"start_time\":99999999999999999999999}}", 0, IP,
                  "start_time" },
                { LU "{\"pid\":1,\"addresses\":[\"0x1\"],\"start_time\":-99999999999999999999999}}", 0, IP,
                  "start_time" },
                { LU "{\"pid\":1,\"addresses\":[\"\"]}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":[\"0x\"]}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":[\"0x10000000000000000\"]}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":[\"18446744073709551616\"]}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":[\" 0x1\"]}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":[\"0x1\\u0000\"]}}", 0, IP, "addresses" },
                { LU "{\"pid\":1,\"addresses\":[\"-1\"]}}", 0, IP, "addresses" },
                { LU "{\"pid\":-1,\"addresses\":[\"0x1\"]}}", 0, IP, "pid" },
                { LU "{\"pid\":2147483648,\"addresses\":[\"0x1\"]}}", 0, "io.memmapd.NoSuchProcess", NULL },
                { LU "{\"pid\":1,\"addresses\":[],\"build_ids\":\"no\"}}", 0, IP, "build_ids" },
                { LU "{\"pid\":1,\"addresses\":[],\"x\":1}}", 0, IP, "x" },
                { "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{}}", 0, IP, "interface" },
                { "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":1}}", 0, IP,
                  "interface" },
                { "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"a\\u0000\"}}",
                  0, IP, "interface" },
        };
        struct test_daemon d;
        struct rconn c;

        assert_int_equal(daemon_start(NULL, &d), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                check_bad(d.socket, &cases[i]);

        /* A pid that cannot exist (above PID_MAX_LIMIT) is no process; nor is 2^31 - 1. */
        {
                _cleanup_json_ struct json_object *r = timed_call(d.socket, LM "{\"pid\":2147483647}}");
                const char *e = error_of(r);
                assert_non_null(e);
                if (strcmp(e, "io.memmapd.NoSuchProcess") != 0 && strcmp(e, IP) != 0)
                        fail_msg("pid 2^31-1: %s", json_object_to_json_string(r));
        }

        /* Deep nesting: within MaxJsonDepth it is only an unknown parameter; beyond, a close. */
        for (size_t depth = 10; depth <= 100000; depth *= 10) {
                size_t n = 0;
                _cleanup_free_ char *deep = malloc(2 * depth + 100);

                assert_non_null(deep);
                n += (size_t) sprintf(deep, "{\"method\":\"io.memmapd.GetStatus\",\"parameters\":{\"x\":");
                memset(deep + n, '[', depth);
                n += depth;
                memset(deep + n, ']', depth);
                n += depth;
                strcpy(deep + n, "}}");
                struct bad_case b = { deep, 0, depth < 32 ? IP : CLOSE, depth < 32 ? "x" : NULL };
                check_bad(d.socket, &b);
        }

        /* Thousands of tiny messages in one write: all answered, in order. */
        {
                const size_t n = 3000;
                static const char one[] = "{\"method\":\"io.memmapd.GetStatus\"}";
                _cleanup_free_ char *batch = malloc(n * sizeof(one));
                size_t got = 0;

                assert_non_null(batch);
                for (size_t i = 0; i < n; i++)
                        memcpy(batch + i * sizeof(one), one, sizeof(one));
                assert_int_equal(rconn_open(d.socket, &c), 0);
                assert_int_equal(send_all(c.fd, batch, n * sizeof(one)), 0);
                for (; got < n; got++) {
                        _cleanup_free_ char *m = rconn_recv(&c);
                        if (!m || !strstr(m, "\"uptime_usec\""))
                                break;
                }
                rconn_close(&c);
                assert_int_equal(got, n);
        }
        /* Thousands of empty messages in one write: the first closes the connection. */
        {
                _cleanup_free_ char *zeros = calloc(1, 5000);

                assert_int_equal(rconn_open(d.socket, &c), 0);
                assert_int_equal(send_all(c.fd, zeros, 5000), 0);
                assert_null(rconn_recv(&c));
                assert_true(c.eof);
                rconn_close(&c);
        }
        /* A message above MaxMessageSize is refused with LimitExceeded, then the close. */
        {
                _cleanup_free_ char *big = malloc(17u * 1024 * 1024);
                _cleanup_free_ char *reply = NULL;

                assert_non_null(big);
                memset(big, ' ', 17u * 1024 * 1024);
                assert_int_equal(rconn_open(d.socket, &c), 0);
                /* The daemon stops reading after the limit: the send may break, that is fine. */
                (void) send_all(c.fd, big, 17u * 1024 * 1024);
                reply = rconn_recv(&c);
                assert_non_null(reply);
                assert_non_null(strstr(reply, "max_message_size"));
                rconn_close(&c);
        }

        /* After all of it: still answering, still counting connections right. */
        assert_int_equal(status_connections(d.socket), 1);
        /* Exit status 0: a clean shutdown, and under ASan no leak and no error. */
        assert_int_equal(daemon_stop(&d), 0);
}

/* ------------------------------------------------------------------ 5. soak */

/* The i-th request of the mix. */
static const char *soak_msg(char *const *msgs, size_t n_msgs, size_t i) {
        return msgs[i % n_msgs];
}

/* Runs n requests of the mix over `conns` pipelining connections, batch at a time each, with a
 * short-lived connection every so often. Returns the count of answers that were wrong. */
static size_t soak_run(const char *socket, char *const *msgs, const char *const *expect, size_t n_msgs, size_t n) {
        enum { CONNS = 4, BATCH = 64 };
        struct rconn c[CONNS];
        size_t done = 0, bad = 0, i = 0;
        _cleanup_free_ char *batch = NULL;
        size_t cap = 0;

        for (size_t k = 0; k < CONNS; k++)
                assert_int_equal(rconn_open(socket, &c[k]), 0);
        while (done < n) {
                for (size_t k = 0; k < CONNS && done < n; k++) {
                        size_t len = 0, m = n - done < BATCH ? n - done : BATCH;
                        size_t first = i;

                        for (size_t j = 0; j < m; j++) {
                                const char *s = soak_msg(msgs, n_msgs, i + j);
                                size_t l = strlen(s) + 1;

                                if (len + l > cap)
                                        assert_non_null(batch = realloc(batch, cap = (len + l) * 2));
                                memcpy(batch + len, s, l);
                                len += l;
                        }
                        i += m;
                        assert_int_equal(send_all(c[k].fd, batch, len), 0);
                        for (size_t j = 0; j < m; j++) {
                                _cleanup_free_ char *r = rconn_recv(&c[k]);
                                const char *want = expect[(first + j) % n_msgs];

                                if (!r)
                                        fail_msg("soak: no reply after %zu requests", done + j);
                                if (!strstr(r, want)) {
                                        if (bad++ < 3)
                                                fprintf(stderr, "soak: expected %s in %.200s\n", want, r);
                                }
                        }
                        done += m;
                }
                /* A short-lived connection now and then. */
                if (done % 1024 < CONNS * BATCH && done < n) {
                        _cleanup_json_ struct json_object *r = timed_call(socket, "{\"method\":\"org.varlink.service.GetInfo\"}");
                        assert_null(error_of(r));
                        done++;
                }
        }
        for (size_t k = 0; k < CONNS; k++)
                rconn_close(&c[k]);
        return bad;
}

static void test_soak(void **state) {
        struct test_daemon d;
        struct fixture f;
        const char *env = getenv("ROBUSTNESS_SOAK_REQUESTS");
        size_t n = env && *env ? strtoul(env, NULL, 10) : 100000;
        char *msgs[8];
        const char *expect[8];
        long rss0, rss1, rss2;
        uint64_t t0, dt;
        _cleanup_free_ char *addrs = NULL;

        assert_int_equal(fx_start(50, 1, &f), 0);
        /* A pid no process can have (pid_max is at most 2^22), where the pid of an exited
         * fixture could be reused by whatever else runs on the machine meanwhile. */
        pid_t dead = 4194304;
        assert_int_equal(daemon_start_measured(NULL, &d), 0);

        {
                uint64_t stack = fixture_get(&f, "many");
                addrs = fmt("\"0x%" PRIx64 "\",\"0x%" PRIx64 "\",\"0x1\",\"0x%" PRIx64 "\",\"0x%" PRIx64 "\"", stack,
                            stack + 8, (uint64_t) 0xffffffffff600000ull, stack - 4096);
        }
        msgs[0] = fmt(LM "{\"pid\":%d}}", (int) f.pid);
        expect[0] = "\"mappings\"";
        msgs[1] = fmt(LM "{\"pid\":%d,\"build_ids\":true}}", (int) f.pid);
        expect[1] = "\"build_id\"";
        msgs[2] = fmt(LU "{\"pid\":%d,\"addresses\":[%s]}}", (int) f.pid, addrs);
        expect[2] = "\"results\"";
        msgs[3] = fmt(LU "{\"pid\":%d,\"addresses\":[%s],\"build_ids\":true}}", (int) f.pid, addrs);
        expect[3] = "\"results\"";
        msgs[4] = fmt("{\"method\":\"io.memmapd.GetStatus\"}");
        expect[4] = "\"uptime_usec\"";
        msgs[5] = fmt(LM "{\"pid\":%d}}", (int) dead);
        expect[5] = "io.memmapd.NoSuchProcess";
        msgs[6] = fmt(LU "{\"pid\":%d,\"addresses\":[\"zz\"]}}", (int) f.pid);
        expect[6] = "InvalidParameter";
        msgs[7] = fmt(LM "{\"pid\":%d,\"executable_only\":true,\"file_backed_only\":true}}", (int) f.pid);
        expect[7] = "\"mappings\"";

        rss0 = vm_rss_kib(d.pid);
        assert_int_equal(soak_run(d.socket, msgs, expect, ELEMENTSOF(msgs), 5000), 0);
        rss1 = vm_rss_kib(d.pid);
        t0 = now_usec();
        assert_int_equal(soak_run(d.socket, msgs, expect, ELEMENTSOF(msgs), n), 0);
        dt = now_usec() - t0;
        rss2 = vm_rss_kib(d.pid);
        printf("# soak: %zu requests in %.2f s (%.0f/s); daemon RSS %ld KiB at start, %ld after warm-up, %ld after "
               "(growth %ld KiB)\n",
               n, (double) dt / 1e6, (double) n * 1e6 / (double) dt, rss0, rss1, rss2, rss2 - rss1);
#ifdef __SANITIZE_ADDRESS__
        /* ASan's allocator keeps a quarantine and per-thread caches that fill over hundreds of
         * thousands of requests (1.2 MiB after 100,000, 2.2 after 400,000 here, while the
         * plain build stays at 0.2-0.3): growth says nothing of the daemon under ASan, and
         * LeakSanitizer checks for leaks when the daemon exits. */
        printf("# soak: ASan build: RSS growth not judged; LeakSanitizer checks the daemon at exit\n");
#else
        /* Flat: a leak of even 24 bytes a request would show as 2.3 MiB over 100000 requests. */
        assert_true(rss2 - rss1 < 2048);
#endif
        for (size_t i = 0; i < ELEMENTSOF(msgs); i++)
                free(msgs[i]);
        assert_int_equal(daemon_stop(&d), 0);
        fx_stop(&f);
}

/* ------------------------------------------------------------------ 6. load */

static char *load_program(void) {
        const char *p = getenv("MEMMAPD_LOAD");
        const char *daemon = test_program("MEMMAPD", "daemon/memmapd");
        const char *slash = strrchr(daemon, '/');

        if (p && *p)
                return strdup(p);
        /* Beside the daemon's directory: BUILD/daemon/memmapd -> BUILD/tests/memmapd-load. */
        if (!slash)
                return strdup("tests/memmapd-load");
        return fmt("%.*s/../tests/memmapd-load", (int) (slash - daemon), daemon);
}

static void test_load(void **state) {
        struct test_daemon d;
        struct fixture a, b;
        _cleanup_free_ char *prog = load_program();
        _cleanup_free_ char *cmd = NULL, *out = NULL;

        if (access(prog, X_OK) < 0) {
                fail_msg("%s is not built", prog);
        }
        assert_int_equal(fx_start(200, 1, &a), 0);
        assert_int_equal(fx_start(2000, 0, &b), 0);
        assert_int_equal(daemon_start(NULL, &d), 0);
        cmd = fmt("%s --socket %s --clients 8 --requests 1500 --seconds 20 --list-every 10 %d %d", prog, d.socket,
                  (int) a.pid, (int) b.pid);
        out = test_run_capture(cmd);
        if (!out)
                fail_msg("%s failed", cmd);
        printf("# %s", out);
        assert_non_null(strstr(out, "failed=0 wrong=0"));
        assert_int_equal(daemon_stop(&d), 0);
        fx_stop(&b);
        fx_stop(&a);
}

/* ------------------------------------------------------------------ 7. kill under load */

/* A service manager in miniature: holds the listening socket and starts the daemon on it with
 * LISTEN_FDS, so that the socket and its backlog survive the daemon. */
struct holder {
        int listen_fd;
        char dir[64], socket[128], config[128];
        pid_t pid;
};

static void holder_init(struct holder *h) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int cfd;

        strcpy(h->dir, "/tmp/memmapd-kill-XXXXXX");
        assert_non_null(mkdtemp(h->dir));
        snprintf(h->socket, sizeof(h->socket), "%s/io.memmapd", h->dir);
        snprintf(h->config, sizeof(h->config), "%s/memmapd.conf", h->dir);
        assert_true((cfd = open(h->config, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) >= 0);
        close(cfd);
        strcpy(sa.sun_path, h->socket);
        assert_true((h->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
        assert_int_equal(bind(h->listen_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(h->listen_fd, SOMAXCONN), 0);
        h->pid = 0;
}

static void holder_start(struct holder *h) {
        _cleanup_free_ char *config = fmt("--config=%s", h->config);

        h->pid = fork();
        assert_true(h->pid >= 0);
        if (h->pid == 0) {
                char pid[32];

                if (dup2(h->listen_fd, 3) < 0)
                        _exit(126);
                /* dup2 clears FD_CLOEXEC on 3 (when listen_fd is 3 already, do it by hand). */
                fcntl(3, F_SETFD, 0);
                snprintf(pid, sizeof(pid), "%d", (int) getpid());
                setenv("LISTEN_PID", pid, 1);
                setenv("LISTEN_FDS", "1", 1);
                unsetenv("LISTEN_FDNAMES");
                execl(test_program("MEMMAPD", "daemon/memmapd"), "memmapd", config, (char *) NULL);
                _exit(127);
        }
        track(h->pid);
}

static int holder_kill(struct holder *h, int sig) {
        int status;

        if (h->pid <= 0)
                return -ESRCH;
        untrack(h->pid);
        kill(h->pid, sig);
        assert_int_equal(waitpid(h->pid, &status, 0), h->pid);
        h->pid = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void holder_done(struct holder *h) {
        close(h->listen_fd);
        unlink(h->socket);
        unlink(h->config);
        rmdir(h->dir);
}

struct kclient {
        pthread_t thread;
        const char *socket;
        pid_t pid;
        uint64_t addr, start, end;
        atomic_bool *stop;
        size_t done, failed, wrong;
        int first_error;
};

static void *kclient_main(void *arg) {
        struct kclient *k = arg;
        memctl *c = NULL;

        if (memctl_connect(k->socket, &c) < 0) {
                k->failed++;
                return NULL;
        }
        memctl_set_timeout(c, ANSWER_BOUND_USEC);
        for (size_t i = 0; i < 1000000 && !atomic_load(k->stop); i++) {
                memctl_lookup_reply *l = NULL;
                struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;
                struct memctl_mapping m = MEMCTL_MAPPING_INIT;
                int r = memctl_lookup(c, k->pid, 0, &k->addr, 1, 0, &l);

                if (r < 0) {
                        if (!k->failed++)
                                k->first_error = r;
                        continue;
                }
                if (memctl_lookup_reply_get(l, 0, &res) < 0 || res.mapping == MEMCTL_NO_MAPPING ||
                    memctl_lookup_reply_get_mapping(l, res.mapping, &m) < 0 || m.start != k->start || m.end != k->end)
                        k->wrong++;
                memctl_lookup_reply_free(l);
                __atomic_fetch_add(&k->done, 1, __ATOMIC_RELAXED);
        }
        memctl_free(c);
        return NULL;
}

/* Waits until each client has had 20 more answers (a guard only catches hangs). */
static void wait_kclients_progress(struct kclient *k, size_t n) {
        size_t base[8];
        uint64_t deadline = now_usec() + 2 * ANSWER_BOUND_USEC;

        assert_true(n <= ELEMENTSOF(base));
        for (size_t i = 0; i < n; i++)
                base[i] = __atomic_load_n(&k[i].done, __ATOMIC_RELAXED);
        for (size_t i = 0; i < n; i++)
                while (__atomic_load_n(&k[i].done, __ATOMIC_RELAXED) < base[i] + 20) {
                        assert_true(now_usec() < deadline);
                        usleep(10 * 1000);
                }
}

static void test_kill_under_load(void **state) {
        enum { N = 4 };
        struct holder h;
        struct fixture f;
        struct kclient k[N] = {};
        atomic_bool stop = false;
        size_t done = 0, failed = 0, wrong = 0, before_kill = 0;

        assert_int_equal(fx_start(100, 0, &f), 0);
        holder_init(&h);
        holder_start(&h);
        for (size_t i = 0; i < N; i++) {
                k[i] = (struct kclient) { .socket = h.socket, .pid = f.pid, .stop = &stop };
                k[i].addr = fixture_get(&f, "marker");
                proc_mapping_of(f.pid, k[i].addr, &k[i].start, &k[i].end);
                assert_int_equal(pthread_create(&k[i].thread, NULL, kclient_main, &k[i]), 0);
        }
        for (int round = 0; round < 3; round++) {
                /* Mid-load: every client has had answers from this daemon. */
                wait_kclients_progress(k, N);
                for (size_t i = 0; i < N; i++)
                        before_kill += __atomic_load_n(&k[i].done, __ATOMIC_RELAXED);
                /* Mid-load, without warning. */
                assert_int_equal(holder_kill(&h, SIGKILL), 128 + SIGKILL);
                /* Down for a while: new connections wait in the backlog meanwhile, and a
                 * call sent then is answered by the next daemon. */
                {
                        struct rconn c;
                        _cleanup_free_ char *reply = NULL;

                        assert_int_equal(rconn_open(h.socket, &c), 0);
                        assert_int_equal(rconn_send(&c, "{\"method\":\"io.memmapd.GetStatus\"}"), 0);
                        holder_start(&h);
                        reply = rconn_recv(&c);
                        rconn_close(&c);
                        assert_non_null(reply);
                        assert_non_null(strstr(reply, "\"uptime_usec\""));
                }
        }
        /* Every client is answered by the last daemon too. */
        wait_kclients_progress(k, N);
        atomic_store(&stop, true);
        for (size_t i = 0; i < N; i++) {
                pthread_join(k[i].thread, NULL);
                done += k[i].done;
                failed += k[i].failed;
                wrong += k[i].wrong;
                if (k[i].failed)
                        fprintf(stderr, "client %zu: first error %s\n", i, strerror(-k[i].first_error));
        }
        printf("# kill under load: %zu lookups answered across 3 SIGKILLs and restarts, %zu failed, %zu wrong\n", done,
               failed, wrong);
        assert_int_equal(failed, 0);
        assert_int_equal(wrong, 0);
        assert_true(done > before_kill / 3);
        /* The last one answers and stops cleanly on SIGTERM. */
        {
                _cleanup_json_ struct json_object *r = timed_call(h.socket, "{\"method\":\"io.memmapd.GetStatus\"}");
                assert_null(error_of(r));
        }
        assert_int_equal(holder_kill(&h, SIGTERM), 0);
        holder_done(&h);
        fx_stop(&f);
}

/* systemd-socket-activate (Debian 12: systemd 252) with the default --accept=no waits for the
 * first connection, then execs the daemon in its own process with LISTEN_FDS=1: the daemon
 * serves on the passed socket. It does not outlive the daemon: there is no relaunch, which is
 * why the kill test above holds the socket itself. */
static void test_socket_activate(void **state) {
        _cleanup_free_ char *dir = strdup("/tmp/memmapd-sa-XXXXXX");
        _cleanup_free_ char *sock = NULL, *conf = NULL, *confarg = NULL;
        const char *sa = "/usr/bin/systemd-socket-activate";
        pid_t pid;
        int cfd, status;

        if (access(sa, X_OK) < 0) {
                printf("# skipped: %s is not installed (Debian package systemd)\n", sa);
                skip();
        }
        assert_non_null(mkdtemp(dir));
        sock = fmt("%s/io.memmapd", dir);
        conf = fmt("%s/memmapd.conf", dir);
        confarg = fmt("--config=%s", conf);
        assert_true((cfd = open(conf, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) >= 0);
        close(cfd);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY);
                dup2(null, 2); /* its "Listening on" chatter */
                execl(sa, "systemd-socket-activate", "-l", sock, test_program("MEMMAPD", "daemon/memmapd"), confarg,
                      (char *) NULL);
                _exit(127);
        }
        track(pid);
        /* Wait until the socket accepts: it exists from bind() on but refuses connections
         * until listen(), so its name alone is no sign (ECONNREFUSED was seen under load). The
         * first call then starts the daemon. */
        for (int i = 0; i < 3000; i++) {
                int fd = test_connect(sock);

                if (fd >= 0) {
                        close(fd);
                        break;
                }
                if (fd != -ENOENT && fd != -ECONNREFUSED)
                        fail_msg("connecting to %s: %s", sock, strerror(-fd));
                usleep(10 * 1000);
        }
        {
                _cleanup_json_ struct json_object *r = timed_call(sock, "{\"method\":\"io.memmapd.GetStatus\"}");
                assert_null(error_of(r));
        }
        {
                /* It is the daemon now, in the same process. */
                _cleanup_free_ char *comm_path = fmt("/proc/%d/comm", (int) pid);
                char comm[64] = "";
                FILE *fp = fopen(comm_path, "re");
                assert_non_null(fp);
                assert_non_null(fgets(comm, sizeof(comm), fp));
                fclose(fp);
                assert_non_null(strstr(comm, "memmapd"));
        }
        untrack(pid);
        kill(pid, SIGTERM);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        unlink(sock);
        unlink(conf);
        rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_malformed, kill_leftovers),
                cmocka_unit_test_teardown(test_connection_limits, kill_leftovers),
                cmocka_unit_test_teardown(test_fd_exhaustion, kill_leftovers),
                cmocka_unit_test_teardown(test_slow_clients, kill_leftovers),
                cmocka_unit_test_teardown(test_idle_timeout_drops_never_reader, kill_leftovers),
                cmocka_unit_test_teardown(test_value_flood, kill_leftovers),
                cmocka_unit_test_teardown(test_max_addresses_boundary, kill_leftovers),
                cmocka_unit_test_teardown(test_load, kill_leftovers),
                cmocka_unit_test_teardown(test_socket_activate, kill_leftovers),
                cmocka_unit_test_teardown(test_kill_under_load, kill_leftovers),
                cmocka_unit_test_teardown(test_soak, kill_leftovers),
        };

        signal(SIGPIPE, SIG_IGN);
        /* ROBUSTNESS_TESTS=test_soak runs one (a cmocka glob). */
        if (getenv("ROBUSTNESS_TESTS"))
                cmocka_set_test_filter(getenv("ROBUSTNESS_TESTS"));
        return cmocka_run_group_tests(tests, NULL, NULL);
}
