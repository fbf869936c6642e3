/* Denial-of-service attacks on the real daemon (issue 11 items 6, 7, 8, 9, and partial requests),
 * each run as an unprivileged user while a probe of another user asks GetStatus and a
 * one-address Lookup every 200 ms: every probe must be answered while the attack is still
 * in force, and the daemon's peak RSS must stay under the unit's MemoryMax=512M.
 *
 * No time bound is asserted (the machine may be loaded): the worst probe latency is printed,
 * and asserted to be at most 1 s only with MEMMAPD_ATTACKS_STRICT=1 (`make attacks`).
 *
 * Adding an attack: write its start() (fork the attackers, as their uids) and in_force() (is
 * it still pressing), optionally after() (checks once it is in force), and add a row to
 * attacks[] below, with stop() if it holds something the kill of its processes does not end. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cleanup.h"
#include "fixture.h"
#include "stall-fuse.h"

#define UID_ATTACKER 61100      /* and the next ones, for attack 7 */
#define UID_PROBE 61200
#define UID_NS_OWNER 61300      /* owns a user namespace, as with a /etc/subuid range */
#define NS_OUTSIDE 1300000      /* where the namespace's ids are mapped */
#define NS_UIDS 8
#define ATTACKERS_MAX 64
#define BIG_VMAS 60000
#define PROBE_ROUNDS 10
#define PROBE_INTERVAL_USEC 200000
#define RSS_MAX_KIB (512 * 1024)
/* Only catches hangs: the daemon answers long before on any machine. */
#define GUARD_USEC (60 * 1000000ull)
#define PROBE_GUARD_SEC 30

/* Shared with the attackers and the probe (MAP_SHARED). */
struct shared {
        _Atomic long sent;              /* attack messages (or batches) fully sent */
        _Atomic long answered;          /* attack calls whose reply began (or connections answered) */
        _Atomic long ready;             /* attackers done setting up */
        _Atomic long accepted_plain, accepted_ns;
        _Atomic long probe_answered;
        _Atomic uint64_t probe_worst_usec;
        _Atomic int probe_failed_round;
        _Atomic uint64_t addr;          /* where the attacker's process mapped its stalled file */
};

struct attack;

struct attack_run {
        const struct attack *attack;
        struct test_daemon d;
        struct fixture big;             /* the attacker's own process with many VMAs */
        bool has_big;
        pid_t kids[ATTACKERS_MAX];
        size_t n_kids;
        struct shared *sh;
        long requests_before_probe;     /* calls the daemon had taken when the probe began */
        gid_t allowed_gid;              /* AllowGroups=adm, (gid_t) -1 when there is none */
};

struct attack {
        const char *name;
        long big_vmas;                  /* > 0: start the attacker's own process first */
        int (*start)(struct attack_run *r);
        bool (*in_force)(struct attack_run *r);
        void (*after)(struct attack_run *r);    /* optional, once the probes are done */
        void (*stop)(struct attack_run *r);     /* optional, once its processes are killed */
        bool probe_privileged;          /* the probe is an AllowGroups member, not a plain uid */
};

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* Dies with parent. Set after any change of ids: changing them clears the parent-death
 * signal, which left the holders of other uids pausing forever after the test. */
static void die_with(pid_t parent) {
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(0);
}

/* Forks fn(arg) as uid/gid with the one supplementary group (-1: none), without waiting; the
 * child dies with the test. */
static pid_t spawn_as(uid_t uid, gid_t gid, gid_t group, int (*fn)(void *), void *arg) {
        pid_t parent = getpid(), pid = fork();

        if (pid != 0)
                return pid;
        if (setgroups(group == (gid_t) -1 ? 0 : 1, &group) < 0 || setresgid(gid, gid, gid) < 0 ||
            setresuid(uid, uid, uid) < 0)
                _exit(126);
        die_with(parent);
        /* The uid change left it non-dumpable: its own maps would be closed to its uid. */
        (void) prctl(PR_SET_DUMPABLE, 1);
        _exit(fn(arg));
}

static bool alive(pid_t pid) {
        return waitpid(pid, NULL, WNOHANG) == 0;
}

static bool kids_alive(struct attack_run *r) {
        for (size_t i = 0; i < r->n_kids; i++)
                if (!alive(r->kids[i]))
                        return false;
        return r->n_kids > 0;
}

/* A blocking connection whose reads give up after the guard (a hang, not a slow reply). */
static int connect_guarded(const char *socket_path) {
        struct timeval tv = { .tv_sec = PROBE_GUARD_SEC };
        int fd = test_connect(socket_path);

        if (fd >= 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return fd;
}

/* A reply that is one, and no error. */
static bool answered_ok(const char *reply) {
        return reply && strstr(reply, "\"parameters\"") && !strstr(reply, "\"error\"");
}

/* ------------------------------------------------------------------ the probe */

static int probe_main(void *arg) {
        struct attack_run *r = arg;
        struct shared *sh = r->sh;
        char lookup[256];

        snprintf(lookup, sizeof(lookup),
                 "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"addresses\":[\"0x%" PRIxPTR "\"]}}",
                 (int) getpid(), (uintptr_t) &probe_main);
        for (int i = 0; i < PROBE_ROUNDS; i++) {
                uint64_t t0 = now_usec(), dt;
                _cleanup_free_ char *status = NULL, *found = NULL;
                int fd = connect_guarded(r->d.socket);

                if (fd < 0) {
                        sh->probe_failed_round = i + 1;
                        return 1;
                }
                status = test_call(fd, "{\"method\":\"io.memmapd.GetStatus\"}");
                if (answered_ok(status))
                        found = test_call(fd, lookup);
                close(fd);
                if (!answered_ok(status) || !answered_ok(found)) {
                        sh->probe_failed_round = i + 1;
                        return 2;
                }
                dt = now_usec() - t0;
                if (dt > sh->probe_worst_usec)
                        sh->probe_worst_usec = dt;
                sh->probe_answered++;
                usleep(PROBE_INTERVAL_USEC);
        }
        return 0;
}

/* ------------------------------------------------------------------ 6: pipelined oneway calls */

#define ONEWAY_CONNS 4
#define ONEWAY_BATCH 1500

static int oneway_attacker(void *arg) {
        struct attack_run *r = arg;
        _cleanup_free_ char *batch = NULL;
        char one[160];
        size_t len, n = 0;
        int fd = test_connect(r->d.socket);

        if (fd < 0)
                return 1;
        len = (size_t) snprintf(one, sizeof(one),
                                "{\"method\":\"io.memmapd.ListMappings\",\"oneway\":true,\"parameters\":{\"pid\":%d}}",
                                (int) r->big.pid) + 1;
        batch = malloc(len * ONEWAY_BATCH);
        if (!batch)
                return 1;
        for (int i = 0; i < ONEWAY_BATCH; i++, n += len)
                memcpy(batch + n, one, len);
        /* Pipelines without end: a batch, then one call that is answered, and again. */
        for (;;) {
                _cleanup_free_ char *reply = NULL;

                for (size_t off = 0; off < n;) {
                        ssize_t k = write(fd, batch + off, n - off);

                        if (k <= 0)
                                return 2;
                        off += (size_t) k;
                }
                r->sh->sent++;
                reply = test_call(fd, "{\"method\":\"io.memmapd.GetStatus\"}");
                if (!reply)
                        return 3;
                r->sh->answered++;
        }
}

static int oneway_start(struct attack_run *r) {
        for (int i = 0; i < ONEWAY_CONNS; i++)
                r->kids[r->n_kids++] = spawn_as(UID_ATTACKER, UID_ATTACKER, (gid_t) -1, oneway_attacker, r);
        return 0;
}

/* Every connection has sent a pipeline, and they go on sending. */
static bool oneway_in_force(struct attack_run *r) {
        return kids_alive(r) && r->sh->sent >= ONEWAY_CONNS;
}

/* A counter of GetStatus, asked as root (served whatever others do). */
static long daemon_status(struct attack_run *r, const char *name) {
        _cleanup_free_ char *reply = NULL, *key = NULL;
        const char *p;
        int fd = connect_guarded(r->d.socket);

        assert_true(fd >= 0);
        reply = test_call(fd, "{\"method\":\"io.memmapd.GetStatus\"}");
        close(fd);
        assert_non_null(reply);
        assert_true(asprintf(&key, "\"%s\":", name) > 0);
        assert_non_null(p = strstr(reply, key));
        return strtol(p + strlen(key), NULL, 10);
}

/* The daemon's count of calls taken. */
static long daemon_requests(struct attack_run *r) {
        return daemon_status(r, "requests");
}

static void oneway_after(struct attack_run *r) {
        /* The daemon went on taking their calls (beyond the probe's two a round) while the
         * probes were answered. */
        assert_true(daemon_requests(r) - r->requests_before_probe > 2 * PROBE_ROUNDS);
}

/* ------------------------------------------------------------------ 7: connection slots */

#define SLOTS_PER_UID 128       /* the default MaxConnectionsPerUser */
#define SLOTS_UIDS 8

struct slots_arg {
        struct attack_run *r;
        bool in_ns;
        int up[2], down[2];             /* the namespace is made / its ids are mapped */
};

/* Opens as many connections as this uid may, checks which are served, holds them. */
static int slots_holder(void *arg) {
        struct slots_arg *a = arg;
        int fds[SLOTS_PER_UID];
        long served = 0;

        for (int i = 0; i < SLOTS_PER_UID; i++)
                fds[i] = connect_guarded(a->r->d.socket);
        for (int i = 0; i < SLOTS_PER_UID; i++) {
                _cleanup_free_ char *reply = fds[i] >= 0 ? test_call(fds[i], "{\"method\":\"io.memmapd.GetStatus\"}")
                                                         : NULL;

                if (answered_ok(reply))
                        served++;
        }
        if (a->in_ns)
                a->r->sh->accepted_ns += served;
        else
                a->r->sh->accepted_plain += served;
        a->r->sh->ready++;
        for (;;)
                pause();
        return 0;
}

/* In a user namespace that UID_NS_OWNER created (ids mapped by root, as newuidmap does for a
 * /etc/subuid range): one holder per uid of it. */
static int slots_ns_owner(void *arg) {
        struct slots_arg *a = arg;
        char b;

        close(a->up[0]);
        close(a->down[1]);
        if (unshare(CLONE_NEWUSER) < 0 || write(a->up[1], "n", 1) != 1)
                return 1;
        if (read(a->down[0], &b, 1) != 1)
                return 2;
        for (uid_t u = 0; u < NS_UIDS; u++) {
                pid_t parent = getpid(), pid = fork();

                if (pid == 0) {
                        if (setresgid(u, u, u) < 0 || setresuid(u, u, u) < 0)
                                _exit(126);
                        die_with(parent);
                        _exit(slots_holder(a));
                }
        }
        for (;;)
                pause();
        return 0;
}

static int write_file(pid_t pid, const char *name, const char *text) {
        char path[64];
        _cleanup_close_ int fd = -1;

        snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, name);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t) strlen(text))
                return -errno;
        return 0;
}

static void wait_ready(struct attack_run *r, long n) {
        uint64_t deadline = now_usec() + GUARD_USEC;

        while (r->sh->ready < n) {
                if (now_usec() > deadline)
                        fail_msg("attackers not set up after 60 s (%ld of %ld)", (long) r->sh->ready, n);
                usleep(10000);
        }
}

static int slots_start(struct attack_run *r) {
        static struct slots_arg ns, plain;
        char map[64], b;

        ns = (struct slots_arg) { .r = r, .in_ns = true };
        plain = (struct slots_arg) { .r = r, .in_ns = false };
        if (pipe2(ns.up, O_CLOEXEC) < 0 || pipe2(ns.down, O_CLOEXEC) < 0)
                return -errno;
        /* The namespace first, so that it meets its per-user limit, not the global one. */
        r->kids[r->n_kids++] = spawn_as(UID_NS_OWNER, UID_NS_OWNER, (gid_t) -1, slots_ns_owner, &ns);
        close(ns.up[1]);
        close(ns.down[0]);
        if (read(ns.up[0], &b, 1) != 1)
                return -EIO;
        /* Root maps the ids, as newuidmap does for a /etc/subuid range. */
        snprintf(map, sizeof(map), "0 %u %u\n", NS_OUTSIDE, NS_UIDS);
        if (write_file(r->kids[0], "uid_map", map) < 0 || write_file(r->kids[0], "gid_map", map) < 0 ||
            write(ns.down[1], "g", 1) != 1)
                return -EPERM;
        close(ns.up[0]);
        close(ns.down[1]);
        wait_ready(r, NS_UIDS);
        for (uid_t i = 0; i < SLOTS_UIDS; i++)
                r->kids[r->n_kids++] = spawn_as(UID_ATTACKER + i, UID_ATTACKER + i, (gid_t) -1, slots_holder, &plain);
        wait_ready(r, NS_UIDS + SLOTS_UIDS);
        return 0;
}

static bool slots_in_force(struct attack_run *r) {
        return kids_alive(r) && r->sh->ready == NS_UIDS + SLOTS_UIDS;
}

static void slots_after(struct attack_run *r) {
        _cleanup_free_ char *reply = NULL;
        int fd;

        printf("# attack slots: %ld connections served in the namespace, %ld for %d plain uids\n",
               (long) r->sh->accepted_ns, (long) r->sh->accepted_plain, SLOTS_UIDS);
        /* The namespace's uids count as their owner: 128 together, not 128 each. */
        assert_int_equal(r->sh->accepted_ns, SLOTS_PER_UID);
        /* Others stop where the reserved slots begin (1,024 less 64). */
        assert_int_equal(r->sh->accepted_ns + r->sh->accepted_plain, 1024 - 64);
        /* root still connects and is served. */
        assert_true((fd = connect_guarded(r->d.socket)) >= 0);
        reply = test_call(fd, "{\"method\":\"io.memmapd.GetStatus\"}");
        close(fd);
        assert_true(answered_ok(reply));
}

/* ------------------------------------------------------------------ 9: unread replies */

#define UNREAD_CONNS 64
#define UNREAD_ADDRESSES 100000

static int unread_attacker(void *arg) {
        struct attack_run *r = arg;
        uint64_t many = fixture_get(&r->big, "many");
        struct pollfd p[UNREAD_CONNS];
        size_t len = 0, cap = (size_t) UNREAD_ADDRESSES * 24 + 256, off[UNREAD_CONNS] = {};
        _cleanup_free_ char *msg = malloc(cap);
        long sent = 0;

        if (!msg || many == 0)
                return 1;
        /* A refused connection is closed: EPIPE, not death. */
        signal(SIGPIPE, SIG_IGN);
        len = (size_t) snprintf(msg, cap, "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"addresses\":[",
                                (int) r->big.pid);
        for (long i = 0; i < UNREAD_ADDRESSES; i++)
                len += (size_t) snprintf(msg + len, cap - len, "%s\"0x%" PRIx64 "\"", i ? "," : "",
                                         many + (uint64_t) (i % BIG_VMAS) * 4096);
        len += (size_t) snprintf(msg + len, cap - len, "]}}") + 1;

        for (int i = 0; i < UNREAD_CONNS; i++) {
                p[i].fd = test_connect(r->d.socket);
                if (p[i].fd < 0)
                        return 2;
                fcntl(p[i].fd, F_SETFL, O_NONBLOCK);
                p[i].events = POLLOUT;
        }
        /* All at once, so the daemon has them all to answer. */
        while (sent < UNREAD_CONNS) {
                if (poll(p, UNREAD_CONNS, -1) < 0)
                        return 3;
                for (int i = 0; i < UNREAD_CONNS; i++) {
                        ssize_t k;

                        if (!(p[i].revents & (POLLOUT | POLLERR | POLLHUP)) || off[i] == len)
                                continue;
                        k = write(p[i].fd, msg + off[i], len - off[i]);
                        if (k < 0 && errno != EAGAIN && errno != EPIPE && errno != ECONNRESET)
                                return 4;
                        /* Refused while still being sent (the budget was spent by the
                         * replies not read): answered, LimitExceeded, and closed. */
                        if (k < 0 && errno != EAGAIN)
                                off[i] = len;
                        if ((k > 0 && (off[i] += (size_t) k) == len) || off[i] == len) {
                                p[i].events = 0;
                                r->sh->sent = ++sent;
                        }
                }
        }
        /* Never read: only see whether a reply has begun to come. */
        for (;;) {
                long n = 0;

                for (int i = 0; i < UNREAD_CONNS; i++)
                        p[i].events = POLLIN;
                if (poll(p, UNREAD_CONNS, 0) < 0)
                        return 5;
                for (int i = 0; i < UNREAD_CONNS; i++)
                        n += !!(p[i].revents & POLLIN);
                r->sh->answered = n;
                usleep(20000);
        }
}

static int unread_start(struct attack_run *r) {
        r->kids[r->n_kids++] = spawn_as(UID_ATTACKER, UID_ATTACKER, (gid_t) -1, unread_attacker, r);
        return 0;
}

/* Huge requests are in (more are coming), and none of the replies is read. */
static bool unread_in_force(struct attack_run *r) {
        return kids_alive(r) && r->sh->sent >= UNREAD_CONNS / 4;
}

static long sample_rss(struct attack_run *r, long *peak);

/* Lets the attack run until every connection's call is answered (its reply queued, or
 * refused) with none read, sampling the daemon's RSS: on the old daemon it passes 512 MiB on
 * the way. A machine too loaded to get there within the guard only shortens the check. */
static void unread_after(struct attack_run *r) {
        uint64_t t0 = now_usec(), deadline = t0 + 30 * 1000000ull;
        long peak = 0;

        while (r->sh->answered < UNREAD_CONNS) {
                if (now_usec() > deadline) {
                        printf("# attack %s: %ld of %d calls answered after 30 s, RSS checked until then\n",
                               r->attack->name, (long) r->sh->answered, UNREAD_CONNS);
                        return;
                }
                assert_true(kids_alive(r));
                sample_rss(r, &peak);
                usleep(10000);
        }
        printf("# attack %s: all %d calls answered %" PRIu64 " ms after the probes\n", r->attack->name, UNREAD_CONNS,
               (now_usec() - t0) / 1000);
}

/* ------------------------------------------------------------------ 8: blocking file reads */

#define BLOCKING_CALLS 8        /* twice the default workers */

static struct stall_fuse blocking_fuse;
static bool blocking_mounted;

/* The attacker's own process: maps f of its stalled mount (never touching a page: nothing is
 * read yet) and waits. */
static int blocking_mapper(void *arg) {
        struct attack_run *r = arg;
        int fd = open(blocking_fuse.file, O_RDONLY | O_CLOEXEC);
        void *p;

        if (fd < 0)
                return 1;
        p = mmap(NULL, STALL_FUSE_FILE_SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return 2;
        r->sh->addr = (uint64_t) (uintptr_t) p;
        r->sh->ready++;
        for (;;)
                pause();
        return 0;
}

/* BLOCKING_CALLS connections each asking the build ID of that mapping, again as soon as
 * one is answered (after the time bound, without it): the reads pile up on the mount. */
static int blocking_attacker(void *arg) {
        struct attack_run *r = arg;
        struct pollfd p[BLOCKING_CALLS];
        char msg[256];

        snprintf(msg, sizeof(msg),
                 "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"addresses\":[\"0x%" PRIx64
                 "\"],\"build_ids\":true}}",
                 (int) r->kids[0], (uint64_t) r->sh->addr);
        for (int i = 0; i < BLOCKING_CALLS; i++) {
                p[i] = (struct pollfd) { .fd = test_connect(r->d.socket), .events = POLLIN };
                if (p[i].fd < 0 || test_send(p[i].fd, msg) < 0)
                        return 1;
                r->sh->sent++;
        }
        for (;;) {
                if (poll(p, BLOCKING_CALLS, -1) < 0)
                        return 2;
                for (int i = 0; i < BLOCKING_CALLS; i++) {
                        _cleanup_free_ char *reply = NULL;

                        if (!p[i].revents)
                                continue;
                        reply = test_recv(p[i].fd);
                        if (!reply)
                                return 3;
                        r->sh->answered++;
                        if (test_send(p[i].fd, msg) < 0)
                                return 4;
                        r->sh->sent++;
                }
        }
}

static int blocking_start(struct attack_run *r) {
        const char *why;
        int k = stall_fuse_start(UID_ATTACKER, UID_ATTACKER, &blocking_fuse, &why);

        if (k == -EOPNOTSUPP)
                printf("[  SKIPPED ] blocking reads (item 8): %s\n", why);
        if (k < 0)
                return k;
        blocking_mounted = true;
        /* kids[0] is the mapper: the attacker's calls name it. */
        r->kids[r->n_kids++] = spawn_as(UID_ATTACKER, UID_ATTACKER, (gid_t) -1, blocking_mapper, r);
        wait_ready(r, 1);
        r->kids[r->n_kids++] = spawn_as(UID_ATTACKER, UID_ATTACKER, (gid_t) -1, blocking_attacker, r);
        return 0;
}

/* All its calls are in and the daemon's reads of the file wait on the mount. */
static bool blocking_in_force(struct attack_run *r) {
        return kids_alive(r) && r->sh->sent >= BLOCKING_CALLS && blocking_fuse.counts->reads_pending > 0;
}

static void blocking_after(struct attack_run *r) {
        uint64_t deadline = now_usec() + GUARD_USEC;
        long stuck, busy;

        /* GetStatus shows the readers the mount holds, charged to the attacker, once a call's
         * wait ran out (FileReadTimeoutMSec, 2 s) and left its reader behind. */
        while ((stuck = daemon_status(r, "file_readers_stuck")) < 1 && now_usec() < deadline)
                usleep(10000);
        busy = daemon_status(r, "file_readers_busy");
        printf("# attack %s: GetStatus: %ld file readers busy, %ld stuck, %ld timeouts, %ld refused\n",
               r->attack->name, busy, stuck, daemon_status(r, "file_read_timeouts"),
               daemon_status(r, "file_reads_refused"));
        assert_true(stuck >= 1 && busy >= stuck);
        printf("# attack %s: %u reads stalled on the mount, %ld of %ld attack calls answered (after the time bound)\n",
               r->attack->name, (unsigned) blocking_fuse.counts->reads_pending, (long) r->sh->answered,
               (long) r->sh->sent);
}

static void blocking_stop(struct attack_run *r) {
        (void) r;
        if (blocking_mounted)
                stall_fuse_stop(&blocking_fuse);
        blocking_mounted = false;
}

/* ------------------------------------------------------------------ 4: partial requests */

#define PARTIAL_CONNS 32
#define PARTIAL_SIZE (4 * 1024 * 1024 - 4096)  /* just under the default MaxMessageSize */

/* PARTIAL_CONNS connections each sending a request just under MaxMessageSize and never its
 * end: the daemon must hold it all to parse it. Counts those fully sent (sent), refused with
 * LimitExceeded (answered) and ended otherwise (ready). */
static int partial_attacker(void *arg) {
        struct attack_run *r = arg;
        static const char head[] = "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":1,\"addresses\":[";
        _cleanup_free_ char *msg = malloc(PARTIAL_SIZE);
        struct pollfd p[PARTIAL_CONNS];
        size_t off[PARTIAL_CONNS] = {};
        long done = 0;

        if (!msg)
                return 1;
        /* A refused connection is closed: EPIPE, not death. */
        signal(SIGPIPE, SIG_IGN);
        memset(msg, ' ', PARTIAL_SIZE);
        memcpy(msg, head, strlen(head));
        for (int i = 0; i < PARTIAL_CONNS; i++) {
                p[i] = (struct pollfd) { .fd = test_connect(r->d.socket), .events = POLLIN | POLLOUT };
                if (p[i].fd < 0)
                        return 2;
                fcntl(p[i].fd, F_SETFL, O_NONBLOCK);
        }
        while (done < PARTIAL_CONNS) {
                if (poll(p, PARTIAL_CONNS, -1) < 0)
                        return 3;
                for (int i = 0; i < PARTIAL_CONNS; i++) {
                        char reply[512];
                        ssize_t k;

                        if (p[i].fd < 0 || !p[i].revents)
                                continue;
                        if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                                k = read(p[i].fd, reply, sizeof(reply) - 1);
                                reply[MAX(k, 0)] = 0;
                                if (k > 0 && strstr(reply, "io.memmapd.LimitExceeded"))
                                        r->sh->answered++;
                                else
                                        r->sh->ready++;
                                p[i].fd = -p[i].fd - 1;  /* poll() skips it; kept open */
                                if (off[i] < PARTIAL_SIZE)
                                        done++;
                                continue;
                        }
                        k = write(p[i].fd, msg + off[i], PARTIAL_SIZE - off[i]);
                        if (k < 0 && errno != EAGAIN)
                                continue;       /* the hang-up comes next */
                        if (k > 0 && (off[i] += (size_t) k) == PARTIAL_SIZE) {
                                p[i].events = POLLIN;
                                r->sh->sent++;
                                done++;
                        }
                }
        }
        for (;;)
                pause();
}

static int partial_start(struct attack_run *r) {
        r->kids[r->n_kids++] = spawn_as(UID_ATTACKER, UID_ATTACKER, (gid_t) -1, partial_attacker, r);
        return 0;
}

/* Every connection sent its part, or was refused. */
static bool partial_in_force(struct attack_run *r) {
        return kids_alive(r) && r->sh->sent + r->sh->answered + r->sh->ready >= PARTIAL_CONNS;
}

static void partial_after(struct attack_run *r) {
        long held = daemon_status(r, "output_held"), budget = daemon_status(r, "output_budget_per_uid");
        long max_message = daemon_status(r, "max_message_size");

        printf("# attack %s: %ld of %d partial requests held (%ld MiB in all), %ld refused with LimitExceeded, %ld ended\n",
               r->attack->name, (long) r->sh->sent, PARTIAL_CONNS, held >> 20, (long) r->sh->answered,
               (long) r->sh->ready);
        /* The user's budget, past by at most the one request that crossed it (and the 64 KiB
         * any request may take): 32 x 4 MiB held before. */
        assert_true(held <= budget + 2 * max_message);
        assert_true(r->sh->answered >= 1);
        assert_int_equal(r->sh->ready, 0);
}

/* ------------------------------------------------------------------ running one */

static const struct attack attacks[] = {
        { "oneway pipelines (item 6)", BIG_VMAS, oneway_start, oneway_in_force, oneway_after, NULL, false },
        { "connection slots (item 7)", 0, slots_start, slots_in_force, slots_after, NULL, true },
        { "unread replies (item 9)", BIG_VMAS, unread_start, unread_in_force, unread_after, NULL, false },
        { "blocking reads (item 8)", 0, blocking_start, blocking_in_force, blocking_after, blocking_stop, false },
        { "partial requests (leftovers 4)", 0, partial_start, partial_in_force, partial_after, NULL, false },
};

/* The daemon's peak RSS so far, and fails as soon as it passes the bound. */
static long sample_rss(struct attack_run *r, long *peak) {
        long hwm = test_proc_status_kib(r->d.pid, "VmHWM");

        if (hwm > *peak)
                *peak = hwm;
        if (*peak >= RSS_MAX_KIB)
                fail_msg("attack %s: daemon RSS %ld MiB, above 512 MiB", r->attack->name, *peak / 1024);
        return *peak;
}

static void run_attack(const struct attack *a) {
        static const char *const args[] = { "--set=AllowGroups=adm", NULL };
        struct attack_run r = { .attack = a, .allowed_gid = (gid_t) -1 };
        struct group *adm = getgrnam("adm");
        uid_t probe_uid = UID_PROBE;
        uint64_t deadline;
        long peak = 0;
        pid_t probe;
        int status, k;

        if (adm)
                r.allowed_gid = adm->gr_gid;
        if (a->probe_privileged && !adm) {
                printf("[  SKIPPED ] %s: no group adm here for an AllowGroups member probe, root probes\n", a->name);
                probe_uid = 0;
        }
        /* Under ASan, freed memory sits in a quarantine of 256 MiB: that is not the daemon's. */
        if (getenv("ASAN_OPTIONS") && !strstr(getenv("ASAN_OPTIONS"), "quarantine")) {
                _cleanup_free_ char *o = NULL;

                assert_true(asprintf(&o, "%s:quarantine_size_mb=16", getenv("ASAN_OPTIONS")) > 0);
                setenv("ASAN_OPTIONS", o, 1);
        }
        r.sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(r.sh != MAP_FAILED);
        assert_int_equal(test_daemon_start(args, &r.d), 0);
        if (a->big_vmas > 0) {
                assert_int_equal(fixture_start_as(a->big_vmas, 0, UID_ATTACKER, UID_ATTACKER, 0, &r.big), 0);
                r.has_big = true;
        }
        k = a->start(&r);
        if (k == -EOPNOTSUPP) {
                /* start() said why. */
                assert_int_equal(test_daemon_stop(&r.d), 0);
                munmap(r.sh, 4096);
                skip();
        }
        assert_int_equal(k, 0);

        deadline = now_usec() + GUARD_USEC;
        while (!a->in_force(&r)) {
                if (now_usec() > deadline)
                        fail_msg("attack %s never came in force (%ld sent, %ld answered, %ld ready)", a->name,
                                 (long) r.sh->sent, (long) r.sh->answered, (long) r.sh->ready);
                sample_rss(&r, &peak);
                usleep(10000);
        }
        r.requests_before_probe = daemon_requests(&r);

        probe = spawn_as(probe_uid, probe_uid, a->probe_privileged ? r.allowed_gid : (gid_t) -1, probe_main, &r);
        assert_true(probe > 0);
        deadline = now_usec() + GUARD_USEC + PROBE_ROUNDS * PROBE_GUARD_SEC * 1000000ull;
        while (waitpid(probe, &status, WNOHANG) == 0) {
                if (now_usec() > deadline)
                        fail_msg("attack %s: the probe hung", a->name);
                sample_rss(&r, &peak);
                usleep(10000);
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("attack %s: probe %d of %d was not answered (status %d)", a->name, r.sh->probe_failed_round,
                         PROBE_ROUNDS, status);
        assert_int_equal(r.sh->probe_answered, PROBE_ROUNDS);
        /* Ordering, not time: every probe was answered while the attack still pressed. */
        if (!a->in_force(&r))
                fail_msg("attack %s: it was over before the probes were answered", a->name);
        if (a->after)
                a->after(&r);

        printf("# attack %s: worst probe %" PRIu64 " ms, peak RSS %ld MiB\n", a->name,
               (uint64_t) r.sh->probe_worst_usec / 1000, sample_rss(&r, &peak) / 1024);
        fflush(stdout);
        if (getenv("MEMMAPD_ATTACKS_STRICT") && strcmp(getenv("MEMMAPD_ATTACKS_STRICT"), "1") == 0)
                assert_true(r.sh->probe_worst_usec <= 1000000);

        for (size_t i = 0; i < r.n_kids; i++)
                kill(r.kids[i], SIGKILL);
        for (size_t i = 0; i < r.n_kids; i++)
                waitpid(r.kids[i], NULL, 0);
        if (a->stop)
                a->stop(&r);
        if (r.has_big)
                fixture_stop(&r.big);
        assert_int_equal(test_daemon_stop(&r.d), 0);
        munmap(r.sh, 4096);
}

static void test_oneway_pipelines(void **state) {
        run_attack(&attacks[0]);
}

static void test_connection_slots(void **state) {
        run_attack(&attacks[1]);
}

static void test_unread_replies(void **state) {
        run_attack(&attacks[2]);
}

static void test_blocking_reads(void **state) {
        run_attack(&attacks[3]);
}

static void test_partial_requests(void **state) {
        run_attack(&attacks[4]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_oneway_pipelines),
                cmocka_unit_test(test_connection_slots),
                cmocka_unit_test(test_unread_replies),
                cmocka_unit_test(test_blocking_reads),
                cmocka_unit_test(test_partial_requests),
        };
        struct rlimit rl = { 8192, 8192 };

        if (geteuid() != 0) {
                printf("[  SKIPPED ] attacks: need root to run attackers and probes as other uids\n");
                return 77;
        }
        /* The daemon (which inherits it) holds over 1,024 connections in attack 7. */
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
