/* Watch against the real daemon and real processes: exec, fork, exit and mappings events of processes started here, in order, under a load of 100 processes a second; overflow for a client that does not read while others are served; another uid hears only of its own processes. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fixture.h"
#include "libmemctl.h"

#define UID_A 41005
#define GID_A 41005
/* Every wait for an event is bounded by this: generous, for a loaded machine. */
#define WAIT_USEC (60 * UINT64_C(1000000))
#define ROUNDS 20
#define RING (1 << 18)

static struct test_daemon daemon_tracked, daemon_untracked, daemon_captured;
static bool tracked, captured;

static uint64_t mono_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int setup(void **state) {
        const char *none[] = { "--tracking=none", NULL };
        /* With retention, the kernel's capture publishes mapping changes: Watch sends those. */
        const char *capture[] = { "--set=RetainExitedSec=60", NULL };
        int r;

        (void) state;
        signal(SIGPIPE, SIG_IGN);
        if (test_daemon_start(NULL, &daemon_tracked) < 0 || test_daemon_start(none, &daemon_untracked) < 0 ||
            test_daemon_start(capture, &daemon_captured) < 0)
                return -1;
        r = test_daemon_tracking_bpf(daemon_tracked.socket);
        tracked = r > 0;
        if (r > 0) {
                int fd = test_connect(daemon_captured.socket);
                char *reply = fd >= 0 ? test_call(fd, "{\"method\":\"io.memmapd.GetStatus\",\"parameters\":{}}") : NULL;

                captured = reply && strstr(reply, "\"retention\":\"bpf\"");
                free(reply);
                if (fd >= 0)
                        close(fd);
        }
        return r < 0 ? -1 : 0;
}

static int teardown(void **state) {
        /* A failed test may have left it stopped. */
        (void) kill(daemon_captured.pid, SIGCONT);
        int a = test_daemon_stop(&daemon_tracked), b = test_daemon_stop(&daemon_untracked);
        int c = test_daemon_stop(&daemon_captured);

        (void) state;
        return a == 0 && b == 0 && c == 0 ? 0 : -1;
}

static void require_tracking(void) {
        if (!tracked) {
                printf("[  SKIPPED ] the daemon runs without BPF tracking here (BPF denied or not built): Watch "
                       "has no events\n");
                skip();
        }
}

static void require_capture(void) {
        require_tracking();
        if (!captured) {
                printf("[  SKIPPED ] the daemon's capture of executable mappings did not load here (see its log): "
                       "no mappings events of the kernel's\n");
                skip();
        }
}

static memctl_watch *watch_start_on(const char *socket, memctl **c, pid_t pid, uint64_t start_time) {
        memctl_watch *w = NULL;

        assert_int_equal(memctl_connect(socket, c), 0);
        assert_int_equal(memctl_watch_start(*c, pid, start_time, &w), 0);
        return w;
}

static memctl_watch *watch_start(memctl **c, pid_t pid, uint64_t start_time) {
        memctl_watch *w = NULL;

        assert_int_equal(memctl_connect(daemon_tracked.socket, c), 0);
        assert_int_equal(memctl_watch_start(*c, pid, start_time, &w), 0);
        return w;
}

/* ------------------------------------------------------------------ processes started here */

/* A child that waits for a byte, then execs /bin/true (which exits). */
struct child {
        pid_t pid;
        int go;
        uint64_t start_time;    /* from /proc/PID/stat, read while it waits */
};

/* as_a: it becomes UID_A before its exec. */
static void child_start_as(struct child *ret, bool as_a) {
        int p[2];
        pid_t pid;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char b;

                close(p[1]);
                if (read(p[0], &b, 1) != 1)
                        _exit(127);
                if (as_a && (setgroups(0, NULL) < 0 || setresgid(GID_A, GID_A, GID_A) < 0 ||
                             setresuid(UID_A, UID_A, UID_A) < 0))
                        _exit(126);
                execl("/bin/true", "true", (char *) NULL);
                _exit(127);
        }
        close(p[0]);
        ret->pid = pid;
        ret->go = p[1];
        assert_int_equal(test_proc_stat_field(pid, 22, &ret->start_time), 0);
}

static void child_start(struct child *ret) {
        child_start_as(ret, false);
}

static void child_go_and_reap(struct child *c) {
        int status;

        assert_int_equal(write(c->go, "g", 1), 1);
        close(c->go);
        assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* 100 processes a second (fork + exec /bin/true), until killed. */
static pid_t load_start(void) {
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                struct timespec tick = { .tv_nsec = 10 * 1000 * 1000 };

                /* It never ends by itself: a failed assertion must not leave it running. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
                        _exit(1);
                for (;;) {
                        pid_t k = fork();

                        if (k == 0) {
                                execl("/bin/true", "true", (char *) NULL);
                                _exit(127);
                        }
                        while (waitpid(-1, NULL, WNOHANG) > 0)
                                ;
                        /* Pacing the load, not waiting for a state. */
                        nanosleep(&tick, NULL);
                }
        }
        return pid;
}

static void load_stop(pid_t pid) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

/* ------------------------------------------------------------------ events */

struct seen {
        int type;
        uint64_t time_usec, recv_usec;
        pid_t parent;
        uint64_t start_time;
        char comm[16];
};

/* Reads events until the exit of (pid, start_time), keeping its events (a pid reused by
 * another process is another: pid_max may be 32768). Returns how many were kept. */
static size_t read_until_exit(memctl_watch *w, pid_t pid, uint64_t start_time, struct seen *out, size_t max) {
        uint64_t deadline = mono_usec() + WAIT_USEC;
        size_t n = 0;

        while (mono_usec() < deadline) {
                struct memctl_event e = MEMCTL_EVENT_INIT;
                int r = memctl_watch_next(w, 1000000, &e);

                assert_true(r >= 0);
                if (r == 0 || e.pid != pid || e.start_time != start_time)
                        continue;
                if (n < max) {
                        out[n] = (struct seen) {
                                .type = e.type, .time_usec = e.time_usec, .recv_usec = mono_usec(),
                                .parent = e.parent, .start_time = e.start_time,
                        };
                        snprintf(out[n].comm, sizeof(out[n].comm), "%s", e.comm);
                        n++;
                }
                if (e.type == MEMCTL_EVENT_EXIT)
                        return n;
        }
        fail_msg("no exit event of pid %d within %" PRIu64 " s", (int) pid, WAIT_USEC / 1000000);
        return n;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *v, size_t n) {
        size_t over = 0;

        qsort(v, n, sizeof(*v), cmp_u64);
        for (size_t i = 0; i < n; i++)
                over += v[i] > 100000;
        printf("# %s delivery latency (read - kernel time), %zu events: median %" PRIu64 " us, p90 %" PRIu64
               " us, max %" PRIu64 " us, %zu over 100 ms\n",
               what, n, v[n / 2], v[n * 9 / 10], v[n - 1], over);
}

/* A thread that reads a watch all the time and keeps the events of the pids asked for, with
 * when each was read: the latency is the daemon's, not the test's. */
struct reader {
        pthread_t thread;
        memctl_watch *w;
        pthread_mutex_t lock;
        pthread_cond_t kept;            /* signalled with each event kept */
        /* Every event read, latest RING of them: a fork is read before its pid is known. */
        struct {
                pid_t pid;
                struct seen s;
        } got[RING];
        size_t n_got;
        bool stop;
        int error;
};

static void *reader_main(void *arg) {
        struct reader *rd = arg;

        for (;;) {
                struct memctl_event e = MEMCTL_EVENT_INIT;
                int r = memctl_watch_next(rd->w, 100000, &e);
                uint64_t now = mono_usec();

                pthread_mutex_lock(&rd->lock);
                if (r < 0)
                        rd->error = r;
                if (r < 0 || rd->stop) {
                        pthread_mutex_unlock(&rd->lock);
                        return NULL;
                }
                if (r > 0) {
                        size_t at = rd->n_got++ % RING;

                        rd->got[at].pid = e.pid;
                        rd->got[at].s = (struct seen) {
                                .type = e.type, .time_usec = e.time_usec, .recv_usec = now,
                                .parent = e.parent, .start_time = e.start_time,
                        };
                        snprintf(rd->got[at].s.comm, 16, "%s", e.comm);
                        pthread_cond_broadcast(&rd->kept);
                }
                pthread_mutex_unlock(&rd->lock);
        }
}

/* The events the reader kept for (pid, start_time), once its exit came (bounded wait): a
 * pid used again by another process is another. */
static size_t reader_collect(struct reader *rd, pid_t pid, uint64_t start_time, struct seen *out, size_t max) {
        uint64_t deadline = mono_usec() + WAIT_USEC;

        for (;;) {
                size_t n = 0;
                bool exited = false;

                pthread_mutex_lock(&rd->lock);
                assert_int_equal(rd->error, 0);
                assert_true(rd->n_got < RING);        /* nothing of this round overwritten */
                for (size_t i = 0; i < rd->n_got; i++)
                        if (rd->got[i].pid == pid && rd->got[i].s.start_time == start_time) {
                                if (n < max)
                                        out[n++] = rd->got[i].s;
                                exited |= rd->got[i].s.type == MEMCTL_EVENT_EXIT;
                        }
                if (!exited && mono_usec() <= deadline) {
                        struct timespec until;

                        clock_gettime(CLOCK_REALTIME, &until);
                        until.tv_sec += 1;
                        pthread_cond_timedwait(&rd->kept, &rd->lock, &until);
                }
                pthread_mutex_unlock(&rd->lock);
                if (exited)
                        return n;
                if (mono_usec() > deadline)
                        fail_msg("no exit event of pid %d within %" PRIu64 " s", (int) pid, WAIT_USEC / 1000000);
        }
}

/* Fork, exec and exit of processes started here, each in that order, with the kernel's start
 * time, the parent and the new program's name, while 100 other processes start every second. */
static void test_fork_exec_exit_under_load(void **state) {
        static struct reader rd;
        uint64_t lat[3][ROUNDS];
        memctl *c = NULL;
        pid_t load;

        (void) state;
        require_tracking();
        rd = (struct reader) { .w = watch_start(&c, 0, 0) };
        pthread_mutex_init(&rd.lock, NULL);
        pthread_cond_init(&rd.kept, NULL);
        assert_int_equal(pthread_create(&rd.thread, NULL, reader_main, &rd), 0);
        load = load_start();
        for (int round = 0; round < ROUNDS; round++) {
                struct seen s[8];
                struct child ch;
                size_t n;

                child_start(&ch);
                child_go_and_reap(&ch);
                n = reader_collect(&rd, ch.pid, ch.start_time, s, 8);
                if (n != 3)
                        for (size_t i = 0; i < n; i++)
                                printf("# event %zu of pid %d: type %d, comm %s, parent %d, time_usec %" PRIu64
                                       ", read at %" PRIu64 "\n", i, (int) ch.pid, (int) s[i].type, s[i].comm,
                                       (int) s[i].parent, s[i].time_usec, s[i].recv_usec);
                /* fork (as the test forked it), exec of true, exit: in that order, nothing else. */
                assert_int_equal(n, 3);
                assert_int_equal(s[0].type, MEMCTL_EVENT_FORK);
                assert_int_equal(s[0].parent, getpid());
                assert_int_equal(s[1].type, MEMCTL_EVENT_EXEC);
                assert_string_equal(s[1].comm, "true");
                assert_int_equal(s[2].type, MEMCTL_EVENT_EXIT);
                for (size_t i = 0; i < n; i++) {
                        assert_int_equal(s[i].start_time, ch.start_time);
                        if (i > 0)
                                assert_true(s[i].time_usec >= s[i - 1].time_usec);
                        lat[i][round] = s[i].recv_usec > s[i].time_usec ? s[i].recv_usec - s[i].time_usec : 0;
                }
        }
        load_stop(load);
        pthread_mutex_lock(&rd.lock);
        rd.stop = true;
        pthread_mutex_unlock(&rd.lock);
        pthread_join(rd.thread, NULL);
        test_print_loadavg("# ");
        report("fork", lat[0], ROUNDS);
        report("exec", lat[1], ROUNDS);
        report("exit", lat[2], ROUNDS);
        memctl_watch_free(rd.w);
        memctl_free(c);
}

/* ------------------------------------------------------------------ one pid: forks and mappings */

/* A child of the test that maps and unmaps a file executable on command. */
static void mapper_main(int in, int out, const char *path) {
        char cmd;
        void *at = NULL;

        while (read(in, &cmd, 1) == 1) {
                uint64_t v = 0;

                if (cmd == 'm' || cmd == 'w' || cmd == 's') {
                        int fd = open(path, O_RDONLY | O_CLOEXEC);
                        /* m: as a loader maps code; w: writable too (rwxp); s: shared (r-xs). */
                        int prot = PROT_READ | PROT_EXEC | (cmd == 'w' ? PROT_WRITE : 0);

                        at = fd < 0 ? MAP_FAILED : mmap(NULL, 4096, prot, cmd == 's' ? MAP_SHARED : MAP_PRIVATE, fd, 0);
                        if (fd >= 0)
                                close(fd);
                        v = at == MAP_FAILED ? 0 : (uint64_t) (uintptr_t) at;
                } else if (cmd == 'u') {
                        v = munmap(at, 4096) == 0;
                } else if (cmd == 'd' || cmd == 'D') {
                        /* Not dumpable: the kernel shows its maps to root only. */
                        v = prctl(PR_SET_DUMPABLE, cmd == 'D' ? 1 : 0, 0, 0, 0) == 0;
                } else if (cmd == 'f') {
                        pid_t k = fork();

                        if (k == 0)
                                _exit(0);
                        v = (uint64_t) k;
                        waitpid(k, NULL, 0);
                }
                if (write(out, &v, sizeof(v)) != sizeof(v))
                        break;
        }
        _exit(0);
}

struct mapper {
        pid_t pid;
        int to, from;
};

static void mapper_start(const char *path, struct mapper *ret) {
        int a[2], b[2];

        assert_int_equal(pipe2(a, O_CLOEXEC), 0);
        assert_int_equal(pipe2(b, O_CLOEXEC), 0);
        ret->pid = fork();
        assert_true(ret->pid >= 0);
        if (ret->pid == 0) {
                close(a[1]);
                close(b[0]);
                mapper_main(a[0], b[1], path);
        }
        close(a[0]);
        close(b[1]);
        ret->to = a[1];
        ret->from = b[0];
}

static uint64_t mapper_do(struct mapper *m, char cmd) {
        uint64_t v;

        assert_int_equal(write(m->to, &cmd, 1), 1);
        assert_int_equal(read(m->from, &v, sizeof(v)), (ssize_t) sizeof(v));
        return v;
}

/* Whether /proc/PID/maps (the kernel's text, read here) has a mapping starting at start. */
static bool maps_has(pid_t pid, uint64_t start, char *ret_line, size_t size) {
        char path[64], line[1024];
        FILE *f;
        bool found = false;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        f = fopen(path, "re");
        assert_non_null(f);
        while (!found && fgets(line, sizeof(line), f))
                if (strtoull(line, NULL, 16) == start) {
                        found = true;
                        snprintf(ret_line, size, "%s", line);
                }
        fclose(f);
        return found;
}

/* The next event of w of type t, within the bounded wait. */
static void next_of_type(memctl_watch *w, int type, struct memctl_event *ret) {
        uint64_t deadline = mono_usec() + WAIT_USEC;

        while (mono_usec() < deadline) {
                int r;

                *ret = (struct memctl_event) MEMCTL_EVENT_INIT;
                r = memctl_watch_next(w, 1000000, ret);
                assert_true(r >= 0);
                if (r > 0 && ret->type == type)
                        return;
        }
        fail_msg("no %d event within the wait", type);
}

/* The mapper maps (cmd): the mappings event has the permissions /proc/PID/maps shows, which
 * are want; unmapped, the removal has them too. */
static void check_perms(struct mapper *m, memctl_watch *w, char cmd, const char *want) {
        struct memctl_event e;
        char line[1024], perms[5];
        uint64_t at = mapper_do(m, cmd);

        assert_true(at != 0);
        assert_true(maps_has(m->pid, at, line, sizeof(line)));
        assert_int_equal(sscanf(line, "%*x-%*x %4s", perms), 1);
        assert_string_equal(perms, want);
        next_of_type(w, MEMCTL_EVENT_MAPPINGS, &e);
        assert_int_equal(e.n_added, 1);
        assert_int_equal(e.n_removed, 0);
        assert_int_equal(e.added[0].start, at);
        assert_string_equal(e.added[0].perms, perms);
        assert_int_equal(mapper_do(m, 'u'), 1);
        next_of_type(w, MEMCTL_EVENT_MAPPINGS, &e);
        assert_int_equal(e.n_removed, 1);
        assert_int_equal(e.removed[0].start, at);
        assert_string_equal(e.removed[0].perms, perms);
}

/* A watched pid's mappings: from the daemon's poll of the change generation (listing the pid on
 * a change), or, with retention (by_capture), from the kernel's capture of each change; then its
 * fork and exit. */
static void check_pid_watch_mappings_and_forks(const char *socket, bool by_capture) {
        const char *file = "/bin/true";
        struct memctl_event e;
        struct mapper m;
        struct stat st;
        uint64_t at, t0, t1, start_time;
        char line[1024];
        memctl *c = NULL;
        memctl_watch *w;
        pid_t grandchild;

        assert_int_equal(stat(file, &st), 0);
        mapper_start(file, &m);
        assert_int_equal(test_proc_stat_field(m.pid, 22, &start_time), 0);
        w = watch_start_on(socket, &c, m.pid, start_time);

        /* Mapped: the event names the file the kernel shows there. */
        t0 = mono_usec();
        at = mapper_do(&m, 'm');
        t1 = mono_usec();
        assert_true(at != 0);
        assert_true(maps_has(m.pid, at, line, sizeof(line)));
        next_of_type(w, MEMCTL_EVENT_MAPPINGS, &e);
        printf("# mappings event (%s) %" PRIu64 " us after the mmap was asked\n",
               by_capture ? "the kernel's capture" : "the daemon's poll", mono_usec() - t0);
        /* The capture stamps the change when the kernel made it: within the call, not when the
         * daemon looked (the poll stamps its listing, after the mapper's answer). */
        if (by_capture)
                assert_true(e.time_usec >= t0 && e.time_usec <= t1);
        assert_int_equal(e.pid, m.pid);
        assert_int_equal(e.start_time, start_time);
        /* The change itself, not the whole set of a process the daemon did not know whole. */
        assert_int_equal(e.range_end, 0);
        assert_int_equal(e.n_added, 1);
        assert_int_equal(e.added[0].start, at);
        assert_int_equal(e.added[0].end, at + 4096);
        assert_int_equal(e.added[0].offset, 0);
        assert_int_equal(e.added[0].inode, (uint64_t) st.st_ino);
        assert_non_null(e.added[0].path);
        assert_non_null(strstr(line, e.added[0].path));

        /* Unmapped: the next mappings event says so (none sent the same change twice). */
        assert_int_equal(mapper_do(&m, 'u'), 1);
        assert_false(maps_has(m.pid, at, line, sizeof(line)));
        next_of_type(w, MEMCTL_EVENT_MAPPINGS, &e);
        assert_int_equal(e.n_added, 0);
        assert_int_equal(e.n_removed, 1);
        assert_int_equal(e.removed[0].start, at);

        /* The permissions are the mapping's own, as /proc/PID/maps shows them: a writable
         * private one and a shared one. */
        check_perms(&m, w, 'w', "rwxp");
        check_perms(&m, w, 's', "r-xs");

        /* Its fork is heard (the child is another pid), then its exit. */
        grandchild = (pid_t) mapper_do(&m, 'f');
        next_of_type(w, MEMCTL_EVENT_FORK, &e);
        assert_int_equal(e.pid, grandchild);
        assert_int_equal(e.parent, m.pid);
        close(m.to);
        close(m.from);
        assert_int_equal(waitpid(m.pid, NULL, 0), m.pid);
        next_of_type(w, MEMCTL_EVENT_EXIT, &e);
        assert_int_equal(e.pid, m.pid);
        memctl_watch_free(w);
        memctl_free(c);
}

static void test_pid_watch_mappings_and_forks(void **state) {
        (void) state;
        require_tracking();
        check_pid_watch_mappings_and_forks(daemon_tracked.socket, false);
}

static void test_pid_watch_mappings_captured(void **state) {
        (void) state;
        require_capture();
        check_pid_watch_mappings_and_forks(daemon_captured.socket, true);
}

/* Records and events the kernel could not hand the daemon at socket (its ring buffers were
 * full: a neighbour's flood), as its GetStatus counts them. */
static uint64_t losses(const char *socket) {
        static const char *const keys[] = { "\"retention_records_lost\":", "\"tracking_events_lost\":" };
        int fd = test_connect(socket);
        char *reply = fd >= 0 ? test_call(fd, "{\"method\":\"io.memmapd.GetStatus\",\"parameters\":{}}") : NULL;
        uint64_t n = 0;

        assert_non_null(reply);
        for (size_t i = 0; i < 2; i++) {
                const char *at = strstr(reply, keys[i]);

                assert_non_null(at);
                n += strtoull(at + strlen(keys[i]), NULL, 10);
        }
        free(reply);
        close(fd);
        return n;
}

/* Reads w until the mappings event of pid that adds a mapping at want (other events and
 * processes are passed over): true, in *ret. False when an overflow came first: records or
 * events were lost, the daemon rightly forgot what it knew of the processes they were about,
 * and what comes next is not the case under test. */
static bool mapping_or_overflow(memctl_watch *w, pid_t pid, uint64_t want, struct memctl_event *ret) {
        uint64_t deadline = mono_usec() + WAIT_USEC;

        while (mono_usec() < deadline) {
                int r;

                *ret = (struct memctl_event) MEMCTL_EVENT_INIT;
                r = memctl_watch_next(w, 1000000, ret);
                assert_true(r >= 0);
                if (r > 0 && ret->type == MEMCTL_EVENT_OVERFLOW)
                        return false;
                if (r == 0 || ret->type != MEMCTL_EVENT_MAPPINGS || ret->pid != pid)
                        continue;
                for (size_t i = 0; i < ret->n_added; i++)
                        if (ret->added[i].start == want)
                                return true;
        }
        fail_msg("no mappings event of %d adding %#" PRIx64 " within the wait", (int) pid, want);
        return false;
}

/* The cases below judge what one change told; a loss meanwhile (the overflow, or the counter
 * that moved: a record can be told before the overflow of a loss ahead of it is) makes another
 * case of it. Such an attempt is made again, within the wait; none judged is a skip, saying so. */
struct attempts {
        uint64_t deadline;
        unsigned judged, lost;
};

static struct attempts attempts_begin(void) {
        return (struct attempts) { .deadline = mono_usec() + WAIT_USEC };
}

static bool attempts_more(const struct attempts *a, unsigned want) {
        return a->judged < want && mono_usec() < a->deadline;
}

static void attempts_end(const struct attempts *a) {
        if (a->lost > 0)
                printf("# %u attempt(s) not judged: records or events were lost meanwhile, or (the capture's ring "
                       "more than half full) a parent was not told whole (%u judged)\n",
                       a->lost, a->judged);
        if (a->judged == 0) {
                printf("[  SKIPPED ] records or events were lost during every attempt within %" PRIu64 " s\n",
                       WAIT_USEC / 1000000);
                skip();
        }
}

/* The mappings event of pid adding want, in *ret, read after losses(socket) was l0: whether
 * no loss came before it. */
static bool quiet_mapping(memctl_watch *w, const char *socket, uint64_t l0, pid_t pid, uint64_t want,
                          struct memctl_event *ret) {
        return mapping_or_overflow(w, pid, want, ret) && losses(socket) == l0;
}

/* Counts an attempt: judged, or made again. Returns judged. */
static bool attempt_judged(struct attempts *a, bool judged) {
        if (judged)
                a->judged++;
        else
                a->lost++;
        return judged;
}

/* A mapper running its loop, then a daemon with the capture started after it: the daemon
 * never saw the mapper's exec or fork. */
static void older_than_daemon_start(struct mapper *m, struct test_daemon *d) {
        static const char *const capture[] = { "--set=RetainExitedSec=60", NULL };

        mapper_start("/bin/true", m);
        assert_int_equal(mapper_do(m, 'D'), 1);
        assert_int_equal(test_daemon_start(capture, d), 0);
}

static void older_than_daemon_end(struct mapper *m, struct test_daemon *d) {
        close(m->to);
        close(m->from);
        assert_int_equal(waitpid(m->pid, NULL, 0), m->pid);
        assert_int_equal(test_daemon_stop(d), 0);
}

/* A process older than the daemon tells its first change as its whole set (the daemon never
 * knew it): a Watch of its pid starts what is kept of it, so that change is told as the one
 * mapping that came. */
static void test_pid_watch_older_than_daemon(void **state) {
        struct attempts a = attempts_begin();

        (void) state;
        require_capture();
        while (attempts_more(&a, 1)) {
                struct test_daemon d;
                struct memctl_event e;
                struct mapper m;
                uint64_t start_time, at, l0;
                memctl *c = NULL;
                memctl_watch *w;

                older_than_daemon_start(&m, &d);
                assert_int_equal(test_proc_stat_field(m.pid, 22, &start_time), 0);
                l0 = losses(d.socket);
                w = watch_start_on(d.socket, &c, m.pid, start_time);
                at = mapper_do(&m, 'm');
                if (attempt_judged(&a, quiet_mapping(w, d.socket, l0, m.pid, at, &e))) {
                        assert_int_equal(e.range_end, 0);
                        assert_int_equal(e.n_added, 1);
                        assert_int_equal(e.n_removed, 0);
                }
                memctl_watch_free(w);
                memctl_free(c);
                older_than_daemon_end(&m, &d);
        }
        attempts_end(&a);
}

/* A process with more executable file mappings than an event carries (1024): a watch of its pid
 * that would list them at the call (without the capture: for the poll) is refused; with the
 * capture nothing is listed, and its changes come, each as what it did. */
static void test_pid_watch_many_mappings(void **state) {
        struct attempts a = attempts_begin();
        struct mapper m;
        uint64_t start_time;
        memctl *c = NULL;
        memctl_watch *w = NULL;

        (void) state;
        require_capture();
        mapper_start("/bin/true", &m);
        for (int i = 0; i < 1100; i++)
                assert_true(mapper_do(&m, 'm') != 0);
        assert_int_equal(test_proc_stat_field(m.pid, 22, &start_time), 0);
        assert_int_equal(memctl_connect(daemon_tracked.socket, &c), 0);
        assert_int_equal(memctl_watch_start(c, m.pid, start_time, &w), -E2BIG);
        memctl_free(c);
        while (attempts_more(&a, 1)) {
                uint64_t l0 = losses(daemon_captured.socket), at;
                struct memctl_event e;

                c = NULL;
                w = watch_start_on(daemon_captured.socket, &c, m.pid, start_time);
                at = mapper_do(&m, 'm');
                if (attempt_judged(&a, quiet_mapping(w, daemon_captured.socket, l0, m.pid, at, &e))) {
                        assert_int_equal(e.range_end, 0);
                        assert_int_equal(e.n_added, 1);
                }
                assert_int_equal(mapper_do(&m, 'u'), 1);
                memctl_watch_free(w);
                memctl_free(c);
        }
        close(m.to);
        close(m.from);
        assert_int_equal(waitpid(m.pid, NULL, 0), m.pid);
        attempts_end(&a);
}

/* Watching every process (no read of any at the start), a process older than the daemon tells
 * its first change as its whole set: the event covers every address and adds every executable
 * file mapping the kernel shows, so that a copy kept replaces what it had there. */
static void test_watch_all_older_process_told_whole(void **state) {
        static struct test_vma v[4096];
        struct attempts a = attempts_begin();

        (void) state;
        require_capture();
        while (attempts_more(&a, 1)) {
                struct test_vma *files[64];
                struct test_daemon d;
                struct memctl_event e;
                struct mapper m;
                uint64_t at, l0;
                memctl *c = NULL;
                memctl_watch *w;
                ssize_t n;
                size_t k = 0;

                older_than_daemon_start(&m, &d);
                l0 = losses(d.socket);
                assert_int_equal(memctl_connect(d.socket, &c), 0);
                assert_int_equal(memctl_watch_start(c, 0, 0, &w), 0);
                at = mapper_do(&m, 'm');
                /* Executable and file-backed (the vdso has no inode), in the kernel's order. */
                n = test_read_maps(m.pid, v, 4096);
                assert_true(n > 0);
                for (ssize_t i = 0; i < n; i++)
                        if (v[i].exec && v[i].inode != 0 && k < 64)
                                files[k++] = &v[i];
                if (attempt_judged(&a, quiet_mapping(w, d.socket, l0, m.pid, at, &e))) {
                        assert_int_equal(e.range_start, 0);
                        assert_true(e.range_end >= (uint64_t) INT64_MAX);
                        assert_int_equal(e.n_added, k);
                        for (size_t i = 0; i < k; i++) {
                                assert_int_equal(e.added[i].start, files[i]->start);
                                assert_int_equal(e.added[i].end, files[i]->end);
                                assert_int_equal(e.added[i].inode, files[i]->inode);
                        }
                }
                memctl_watch_free(w);
                memctl_free(c);
                older_than_daemon_end(&m, &d);
        }
        attempts_end(&a);
}

/* A child forked by a process the daemon knows whole, that maps a file at once (within the time
 * the daemon's wake-ups are held back, so the child's record and its fork event wait in two ring
 * buffers together): its event says the one mapping that came, from the parent's set the fork
 * gave it, not the whole set. */
static void test_child_first_change_from_fork(void **state) {
        const char *socket = daemon_captured.socket;
        struct attempts a = attempts_begin();
        memctl *c = NULL;
        memctl_watch *w;

        (void) state;
        require_capture();
        assert_int_equal(memctl_connect(socket, &c), 0);
        assert_int_equal(memctl_watch_start(c, 0, 0, &w), 0);
        while (attempts_more(&a, 5)) {
                uint64_t l0 = losses(socket), at;
                struct memctl_event e;
                struct mapper m;
                int fd = open("/bin/true", O_RDONLY | O_CLOEXEC);
                void *own;
                bool known;

                /* This process's own change: the daemon knows its set whole from it (told as
                 * what it did, or whole), unless it was told as a range only (the capture tells a
                 * process's whole set only while its ring buffer is at most half full): then
                 * the attempt is made again, as after a loss. */
                assert_true(fd >= 0);
                own = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
                close(fd);
                assert_true(own != MAP_FAILED);
                known = quiet_mapping(w, socket, l0, getpid(), (uint64_t) (uintptr_t) own, &e) &&
                        (e.range_end == 0 || (e.range_start == 0 && e.range_end >= (uint64_t) INT64_MAX));
                assert_int_equal(munmap(own, 4096), 0);
                if (!known) {
                        a.lost++;
                        continue;
                }
                mapper_start("/bin/true", &m);
                at = mapper_do(&m, 'm');
                if (attempt_judged(&a, quiet_mapping(w, socket, l0, m.pid, at, &e)) &&
                    (e.range_end != 0 || e.n_added != 1))
                        fail_msg("child %d's first change told %zu mapping(s) added over [%#" PRIx64 ", %#" PRIx64
                                 ")", (int) m.pid, e.n_added, e.range_start, e.range_end);
                close(m.to);
                close(m.from);
                assert_int_equal(waitpid(m.pid, NULL, 0), m.pid);
        }
        memctl_watch_free(w);
        memctl_free(c);
        attempts_end(&a);
}

/* A mapper started by a process that is not the test (it returns errors, never asserts). */
static int mapper_start_plain(struct mapper *m) {
        int a[2], b[2];

        if (pipe2(a, O_CLOEXEC) < 0 || pipe2(b, O_CLOEXEC) < 0)
                return -1;
        m->pid = fork();
        if (m->pid < 0)
                return -1;
        if (m->pid == 0) {
                close(a[1]);
                close(b[0]);
                mapper_main(a[0], b[1], "/bin/true");
        }
        close(a[0]);
        close(b[1]);
        m->to = a[1];
        m->from = b[0];
        return 0;
}

static void mapper_end(struct mapper *m) {
        close(m->to);
        close(m->from);
        waitpid(m->pid, NULL, 0);
}

/* Reads w until a mappings event of pid adds a mapping at want: 1; 0 when an overflow came first
 * (records were lost: the one awaited may be among them); -1 when nothing came within the wait.
 * *saw_y tells whether one of hidden_pid at hidden came meanwhile. */
static int wait_mapping(memctl_watch *w, pid_t pid, uint64_t want, pid_t hidden_pid, uint64_t hidden, bool *saw_y) {
        for (uint64_t deadline = mono_usec() + WAIT_USEC; mono_usec() < deadline;) {
                struct memctl_event e = MEMCTL_EVENT_INIT;
                bool found = false;

                if (memctl_watch_next(w, 1000000, &e) < 0)
                        return -1;
                if (e.type == MEMCTL_EVENT_OVERFLOW)
                        return 0;
                for (size_t i = 0; e.type == MEMCTL_EVENT_MAPPINGS && i < e.n_added; i++) {
                        *saw_y |= e.pid == hidden_pid && e.added[i].start == hidden;
                        found |= e.pid == pid && e.added[i].start == want;
                }
                if (found)
                        return 1;
        }
        return -1;
}

/* watch_dumpable_as_other(): records were lost during every attempt (a neighbour's flood). */
#define DUMPABLE_NOT_JUDGED 77

/* As UID_A, watching every process it may see: mappings of X by its process P while P is
 * dumpable are heard; Y, mapped right after P made itself not dumpable (the kernel then shows its
 * maps to root only), must not be, though the client was allowed to see P a moment before; a
 * mapping of another process of its own, R, made after Y (the capture's records come in order),
 * is. Returns 0, DUMPABLE_NOT_JUDGED, or which step failed. */
static int dumpable_attempt(const char *socket) {
        struct mapper p, r;
        memctl *c = NULL;
        memctl_watch *w = NULL;
        uint64_t x, y, z;
        bool saw_y = false;
        int k, ret = 0;

        if (mapper_start_plain(&p) < 0 || mapper_start_plain(&r) < 0)
                return 20;
        if (memctl_connect(socket, &c) < 0 || memctl_watch_start(c, 0, 0, &w) < 0)
                return 22;
        x = mapper_do(&p, 'm');
        k = wait_mapping(w, p.pid, x, 0, 0, &saw_y);
        if (k <= 0)
                ret = k == 0 ? DUMPABLE_NOT_JUDGED : 24;
        /* At once: the decision that let X through is a moment old. */
        else if (mapper_do(&p, 'd') != 1)
                ret = 25;
        else {
                y = mapper_do(&p, 'm');
                z = mapper_do(&r, 'm');
                k = wait_mapping(w, r.pid, z, p.pid, y, &saw_y);
                /* Y is never to be seen, lost records or not; Z's may have been lost. */
                ret = saw_y ? 28 : k == 0 ? DUMPABLE_NOT_JUDGED : k < 0 ? 29 : 0;
        }
        /* R first: forked after P, it holds P's pipes too. */
        mapper_end(&r);
        mapper_end(&p);
        memctl_watch_free(w);
        memctl_free(c);
        return ret;
}

static int watch_dumpable_as_other(void *arg) {
        uint64_t deadline = mono_usec() + WAIT_USEC;
        int r;

        /* The uid change made this process not dumpable: its children would be hidden from the start. */
        if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
                return 20;
        do
                r = dumpable_attempt(arg);
        while (r == DUMPABLE_NOT_JUDGED && mono_usec() < deadline);
        return r;
}

static void test_not_dumpable_hides_mappings(void **state) {
        pid_t pid;
        int status;

        (void) state;
        require_capture();
        if (geteuid() != 0) {
                printf("[  SKIPPED ] another uid needs root to switch to\n");
                skip();
        }
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (setgroups(0, NULL) < 0 || setresgid(GID_A, GID_A, GID_A) < 0 || setresuid(UID_A, UID_A, UID_A) < 0)
                        test_child_exit(126);
                test_child_exit(watch_dumpable_as_other((void *) daemon_captured.socket));
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == DUMPABLE_NOT_JUDGED) {
                printf("[  SKIPPED ] records were lost during every attempt within %" PRIu64 " s\n",
                       WAIT_USEC / 1000000);
                skip();
        }
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* ------------------------------------------------------------------ overflow */

/* A watcher that does not read gets an overflow with the count of what it lost, then the
 * events after; meanwhile another client is answered. */
static void test_overflow(void **state) {
        memctl *c = NULL, *other = NULL;
        memctl_watch *w;
        struct child ch;
        struct memctl_event e;
        uint64_t worst = 0, dropped = 0;
        bool overflowed = false;

        (void) state;
        require_tracking();
        w = watch_start(&c, 0, 0);
        assert_int_equal(memctl_connect(daemon_tracked.socket, &other), 0);
        /* 2 events each: far beyond what a watcher and its socket may hold. */
        for (int i = 0; i < 6000; i++) {
                pid_t k = fork();

                assert_true(k >= 0);
                if (k == 0)
                        _exit(0);
                assert_int_equal(waitpid(k, NULL, 0), k);
                if (i % 500 == 0) {
                        memctl_status *s = NULL;
                        uint64_t t = mono_usec();

                        assert_int_equal(memctl_get_status(other, &s), 0);
                        worst = t < mono_usec() ? (mono_usec() - t > worst ? mono_usec() - t : worst) : worst;
                        memctl_status_free(s);
                }
        }
        printf("# another client's GetStatus during the flood: slowest %" PRIu64 " us\n", worst);

        /* Now read: an overflow comes with what was dropped... */
        for (uint64_t deadline = mono_usec() + WAIT_USEC; !overflowed;) {
                int r;

                if (mono_usec() > deadline)
                        fail_msg("no overflow for a watcher that read nothing during 12000 events");
                e = (struct memctl_event) MEMCTL_EVENT_INIT;
                r = memctl_watch_next(w, 1000000, &e);
                assert_true(r >= 0);
                if (r > 0 && e.type == MEMCTL_EVENT_OVERFLOW) {
                        assert_true(e.dropped > 0);
                        dropped += e.dropped;
                        overflowed = true;
                }
        }
        /* ...and the events after it still come, in order. */
        child_start(&ch);
        child_go_and_reap(&ch);
        {
                struct seen s[8];
                size_t n = read_until_exit(w, ch.pid, ch.start_time, s, 8);

                assert_int_equal(n, 3);
                assert_int_equal(s[0].type, MEMCTL_EVENT_FORK);
                assert_int_equal(s[1].type, MEMCTL_EVENT_EXEC);
                assert_int_equal(s[2].type, MEMCTL_EVENT_EXIT);
        }
        printf("# overflow: %" PRIu64 " events dropped for the client that did not read\n", dropped);
        memctl_watch_free(w);
        memctl_free(c);
        memctl_free(other);
}

/* ------------------------------------------------------------------ another uid */

struct shared {
        /* pid_max may be 32768: a pid is told apart from its reuse by its start time. */
        pid_t root_pids[32];
        uint64_t root_start_times[32];
        int n_root;
        pid_t own;              /* the process of UID_A started by the test (the latest try) */
        int ready;
        pid_t own_exec_seen;    /* the own process whose exec the watcher heard */
        int overflows;          /* events the watcher's queue dropped (a busy machine) */
        int done;               /* the own process ended and was reaped */
        /* What the watcher heard, for a failure's message. */
        int heard, heard_own, errors;
        pid_t last_pid;
        int last_type;
};

static int watch_as_other(void *arg) {
        struct shared *sh = arg;
        memctl *c = NULL, *c2 = NULL;
        memctl_watch *w = NULL, *w2 = NULL;
        pid_t seen[4096];
        uint64_t seen_start[4096];
        size_t n = 0;
        bool own_exec = false, dropped_after_exec = false;
        pid_t own_exit = 0;             /* the own process whose exit was heard */

        if (memctl_connect(daemon_tracked.socket, &c) < 0 || memctl_watch_start(c, 0, 0, &w) < 0)
                return 10;
        /* A root process by pid: refused as for any query. */
        if (memctl_connect(daemon_tracked.socket, &c2) < 0 || memctl_watch_start(c2, getppid(), 0, &w2) != -EACCES)
                return 11;
        __atomic_store_n(&sh->ready, 1, __ATOMIC_RELEASE);
        /* Its own process's exit may be among what an overflow dropped after its exec: then
         * only until the test is done with it. */
        for (uint64_t deadline = mono_usec() + WAIT_USEC; mono_usec() < deadline;) {
                struct memctl_event e = MEMCTL_EVENT_INIT;
                int r = memctl_watch_next(w, 1000000, &e);
                pid_t own = __atomic_load_n(&sh->own, __ATOMIC_ACQUIRE);

                if (r < 0) {
                        __atomic_store_n(&sh->errors, -r, __ATOMIC_RELEASE);
                        return 12;
                }
                if (r > 0) {
                        __atomic_add_fetch(&sh->heard, 1, __ATOMIC_RELEASE);
                        __atomic_store_n(&sh->last_pid, e.pid, __ATOMIC_RELEASE);
                        __atomic_store_n(&sh->last_type, e.type, __ATOMIC_RELEASE);
                        if (own > 0 && e.pid == own)
                                __atomic_add_fetch(&sh->heard_own, 1, __ATOMIC_RELEASE);
                }
                if (r > 0 && e.type == MEMCTL_EVENT_OVERFLOW) {
                        __atomic_add_fetch(&sh->overflows, 1, __ATOMIC_RELEASE);
                        dropped_after_exec |= own_exec;
                }
                /* Done: the last own process was reaped (sh->own names it for good). */
                if (__atomic_load_n(&sh->done, __ATOMIC_ACQUIRE) && (own_exit == own || dropped_after_exec))
                        break;
                if (r == 0 || e.type == MEMCTL_EVENT_OVERFLOW)
                        continue;
                if (n < 4096) {
                        seen[n] = e.pid;
                        seen_start[n++] = e.start_time;
                }
                if (own > 0 && e.pid == own) {
                        if (e.type == MEMCTL_EVENT_EXEC) {
                                own_exec = true;
                                __atomic_store_n(&sh->own_exec_seen, own, __ATOMIC_RELEASE);
                        }
                        if (e.type == MEMCTL_EVENT_EXIT && __atomic_load_n(&sh->own_exec_seen, __ATOMIC_ACQUIRE) == own)
                                own_exit = own;
                }
        }
        if (!own_exec || (own_exit != __atomic_load_n(&sh->own, __ATOMIC_ACQUIRE) && !dropped_after_exec))
                return 13;
        for (size_t i = 0; i < n; i++)
                for (int k = 0; k < __atomic_load_n(&sh->n_root, __ATOMIC_ACQUIRE); k++)
                        if (seen[i] == sh->root_pids[k] && seen_start[i] == sh->root_start_times[k])
                                return 14;
        memctl_watch_free(w);
        memctl_watch_free(w2);
        memctl_free(c);
        memctl_free(c2);
        return 0;
}

/* Runs fn(arg) as UID_A in a child and waits until it sets *ready (in shared memory). */
static pid_t watcher_start_as_a(int (*fn)(void *), void *arg, int *ready) {
        pid_t watcher;
        int status;

        if (geteuid() != 0) {
                printf("[  SKIPPED ] another uid needs root to switch to\n");
                skip();
        }
        watcher = fork();
        assert_true(watcher >= 0);
        if (watcher == 0) {
                /* Ends with the test; set after the uid change, which clears it. */
                if (setgroups(0, NULL) < 0 || setresgid(GID_A, GID_A, GID_A) < 0 ||
                    setresuid(UID_A, UID_A, UID_A) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                        test_child_exit(126);
                test_child_exit(fn(arg));
        }
        for (uint64_t deadline = mono_usec() + WAIT_USEC; !__atomic_load_n(ready, __ATOMIC_ACQUIRE);) {
                if (mono_usec() > deadline || waitpid(watcher, &status, WNOHANG) == watcher)
                        fail_msg("the watcher of uid %d did not start", UID_A);
                sched_yield();
        }
        return watcher;
}

static void test_other_uid_sees_only_its_own(void **state) {
        struct shared *sh;
        pid_t watcher, own;
        int status, p[2], go[2];

        (void) state;
        require_tracking();
        sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(sh != MAP_FAILED);
        memset(sh, 0, sizeof(*sh));
        watcher = watcher_start_as_a(watch_as_other, sh, &sh->ready);
        /* Root's processes, which it must not hear of... */
        for (int i = 0; i < 32; i++) {
                struct child ch;

                child_start(&ch);
                sh->root_pids[i] = ch.pid;
                sh->root_start_times[i] = ch.start_time;
                __atomic_store_n(&sh->n_root, i + 1, __ATOMIC_RELEASE);
                child_go_and_reap(&ch);
        }
        /* ...and one of its own, which it must: cat, alive until the watcher saw its exec (again
         * with another when the watcher's queue overflowed first: the exec may be what it
         * dropped). */
        for (uint64_t give_up = mono_usec() + 2 * WAIT_USEC;;) {
                int overflows = __atomic_load_n(&sh->overflows, __ATOMIC_ACQUIRE);

                /* Another test's flood (every daemon captures the whole machine) may overflow
                 * ring buffers for seconds: attempts go on for a while, not a count. */
                if (mono_usec() > give_up)
                        fail_msg("overflows at every attempt for %" PRIu64 " s", 2 * WAIT_USEC / 1000000);
                assert_int_equal(pipe2(p, O_CLOEXEC), 0);
                assert_int_equal(pipe2(go, O_CLOEXEC), 0);
                own = fork();
                assert_true(own >= 0);
                if (own == 0) {
                        char b;

                        /* Not before the watcher knows its pid: it would not know the exec for its
                         * own (the test's thread may run after the child's exec on a busy machine). */
                        close(go[1]);
                        if (read(go[0], &b, 1) != 1 || setgroups(0, NULL) < 0 || setresgid(GID_A, GID_A, GID_A) < 0 ||
                            setresuid(UID_A, UID_A, UID_A) < 0 || dup2(p[0], 0) < 0)
                                _exit(126);
                        execl("/bin/cat", "cat", (char *) NULL);
                        _exit(127);
                }
                close(p[0]);
                close(go[0]);
                __atomic_store_n(&sh->own, own, __ATOMIC_RELEASE);
                assert_int_equal(write(go[1], "g", 1), 1);
                close(go[1]);
                for (uint64_t deadline = mono_usec() + WAIT_USEC;
                     __atomic_load_n(&sh->own_exec_seen, __ATOMIC_ACQUIRE) != own &&
                     __atomic_load_n(&sh->overflows, __ATOMIC_ACQUIRE) == overflows;) {
                        if (waitpid(watcher, &status, WNOHANG) == watcher)
                                fail_msg("the watcher of uid %d ended (status 0x%x) before it heard of its own "
                                         "process's exec", UID_A, (unsigned) status);
                        if (mono_usec() > deadline)
                                fail_msg("the watcher of uid %d did not hear of its own process %d's exec (it heard %d "
                                         "events, %d of that process; the last of pid %d, type %d)",
                                         UID_A, (int) own, sh->heard, sh->heard_own, (int) sh->last_pid,
                                         sh->last_type);
                        sched_yield();
                }
                if (__atomic_load_n(&sh->own_exec_seen, __ATOMIC_ACQUIRE) == own)
                        break;
                printf("# the watcher's queue overflowed before it heard of its own process: again\n");
                close(p[1]);
                assert_int_equal(waitpid(own, &status, 0), own);
        }
        close(p[1]);
        assert_int_equal(waitpid(own, &status, 0), own);
        __atomic_store_n(&sh->done, 1, __ATOMIC_RELEASE);
        assert_int_equal(waitpid(watcher, &status, 0), watcher);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        munmap(sh, sizeof(*sh));
}

/* ------------------------------------------------------------------ its own short-lived processes */

#define SHORT_LIVED 20

struct short_lived {
        pid_t pids[SHORT_LIVED];        /* 0 while a slot is being replaced */
        uint64_t start_times[SHORT_LIVED];
        int n;                          /* published so far */
        int ready;
        int done;                       /* the test is over: the watcher leaves */
        int overflows;                  /* overflow events the watcher got */
        int exec_seen[SHORT_LIVED], exit_seen[SHORT_LIVED];
};

/* Watches every process as UID_A, marking the exec and exit of each short-lived process of its
 * own, and counting overflows, until the test is done. */
static int watch_own_short_lived(void *arg) {
        struct short_lived *sl = arg;
        memctl *c = NULL;
        memctl_watch *w = NULL;

        if (memctl_connect(daemon_captured.socket, &c) < 0 || memctl_watch_start(c, 0, 0, &w) < 0)
                return 10;
        __atomic_store_n(&sl->ready, 1, __ATOMIC_RELEASE);
        while (!__atomic_load_n(&sl->done, __ATOMIC_ACQUIRE)) {
                struct memctl_event e = MEMCTL_EVENT_INIT;
                int r = memctl_watch_next(w, 100000, &e);

                if (r < 0)
                        return 12;
                if (r == 0)
                        continue;
                if (e.type == MEMCTL_EVENT_OVERFLOW) {
                        __atomic_fetch_add(&sl->overflows, 1, __ATOMIC_RELEASE);
                        continue;
                }
                for (int i = 0; i < __atomic_load_n(&sl->n, __ATOMIC_ACQUIRE); i++) {
                        if (e.pid != __atomic_load_n(&sl->pids[i], __ATOMIC_ACQUIRE) ||
                            e.start_time != sl->start_times[i])
                                continue;
                        if (e.type == MEMCTL_EVENT_EXEC)
                                __atomic_store_n(&sl->exec_seen[i], 1, __ATOMIC_RELEASE);
                        if (e.type == MEMCTL_EVENT_EXIT)
                                __atomic_store_n(&sl->exit_seen[i], 1, __ATOMIC_RELEASE);
                }
        }
        memctl_watch_free(w);
        memctl_free(c);
        return 0;
}

/* A process of its own that ends before the writer asks the kernel about it is still heard of:
 * what was kept at its exit decides. */
static void test_own_short_lived_heard(void **state) {
        struct short_lived *sl;
        pid_t watcher;
        int status, again = 0;

        (void) state;
        require_capture();
        sl = mmap(NULL, sizeof(*sl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(sl != MAP_FAILED);
        memset(sl, 0, sizeof(*sl));
        watcher = watcher_start_as_a(watch_own_short_lived, sl, &sl->ready);
        for (int i = 0; i < SHORT_LIVED; i++) {
                for (uint64_t give_up = mono_usec() + 2 * WAIT_USEC;;) {
                        int overflows = __atomic_load_n(&sl->overflows, __ATOMIC_ACQUIRE);
                        bool heard = false;
                        struct child ch;

                        __atomic_store_n(&sl->pids[i], 0, __ATOMIC_RELEASE);
                        sl->exec_seen[i] = sl->exit_seen[i] = 0;
                        /* The daemon stopped (as a busy machine may leave it unscheduled) while
                         * the process runs and ends: its events are judged after it is gone. */
                        assert_int_equal(kill(daemon_captured.pid, SIGSTOP), 0);
                        child_start_as(&ch, true);
                        sl->start_times[i] = ch.start_time;
                        __atomic_store_n(&sl->pids[i], ch.pid, __ATOMIC_RELEASE);
                        __atomic_store_n(&sl->n, i + 1, __ATOMIC_RELEASE);
                        child_go_and_reap(&ch);
                        assert_int_equal(kill(daemon_captured.pid, SIGCONT), 0);
                        for (uint64_t deadline = mono_usec() + WAIT_USEC; mono_usec() < deadline;) {
                                heard = __atomic_load_n(&sl->exec_seen[i], __ATOMIC_ACQUIRE) &&
                                        __atomic_load_n(&sl->exit_seen[i], __ATOMIC_ACQUIRE);
                                if (heard || __atomic_load_n(&sl->overflows, __ATOMIC_ACQUIRE) != overflows)
                                        break;
                                usleep(1000);
                        }
                        if (heard)
                                break;
                        /* Events were dropped meanwhile (the machine's other processes filled a
                         * ring buffer or the watcher's queue while the daemon was stopped): this
                         * process tells nothing; another takes its place. */
                        if (__atomic_load_n(&sl->overflows, __ATOMIC_ACQUIRE) == overflows || mono_usec() > give_up)
                                fail_msg("process %d of %d: exec %s, exit %s (%d overflows)", i + 1, SHORT_LIVED,
                                         sl->exec_seen[i] ? "heard" : "missed", sl->exit_seen[i] ? "heard" : "missed",
                                         __atomic_load_n(&sl->overflows, __ATOMIC_ACQUIRE) - overflows);
                        again++;
                }
        }
        printf("# %d processes of uid A heard after they ended (%d started again after an overflow)\n", SHORT_LIVED,
               again);
        __atomic_store_n(&sl->done, 1, __ATOMIC_RELEASE);
        assert_int_equal(waitpid(watcher, &status, 0), watcher);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        munmap(sl, sizeof(*sl));
}

/* ------------------------------------------------------------------ without tracking */

static void test_without_tracking(void **state) {
        memctl *c = NULL;
        memctl_watch *w = NULL;

        (void) state;
        assert_int_equal(memctl_connect(daemon_untracked.socket, &c), 0);
        assert_int_equal(memctl_watch_start(c, 0, 0, &w), -ENOSYS);
        assert_null(w);
        assert_string_equal(memctl_last_error_name(c), "io.memmapd.TrackingUnavailable");
        memctl_free(c);
}

/* Without "more", Watch is refused: a single reply would say nothing. */
static void test_needs_more(void **state) {
        memctl *c = NULL;
        char *reply = NULL;

        (void) state;
        assert_int_equal(memctl_connect(daemon_tracked.socket, &c), 0);
        assert_int_equal(memctl_call_json(c, "io.memmapd.Watch", "{}", &reply), -EINVAL);
        assert_string_equal(memctl_last_error_name(c), "org.varlink.service.InvalidParameter");
        memctl_free(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_without_tracking),
                cmocka_unit_test(test_needs_more),
                cmocka_unit_test(test_fork_exec_exit_under_load),
                cmocka_unit_test(test_pid_watch_mappings_and_forks),
                cmocka_unit_test(test_pid_watch_mappings_captured),
                cmocka_unit_test(test_pid_watch_older_than_daemon),
                cmocka_unit_test(test_child_first_change_from_fork),
                cmocka_unit_test(test_watch_all_older_process_told_whole),
                cmocka_unit_test(test_pid_watch_many_mappings),
                cmocka_unit_test(test_not_dumpable_hides_mappings),
                cmocka_unit_test(test_overflow),
                cmocka_unit_test(test_other_uid_sees_only_its_own),
                cmocka_unit_test(test_own_short_lived_heard),
        };

        setvbuf(stdout, NULL, _IOLBF, 0);
        /* MEMMAPD_TEST_FILTER=test_overflow*: only those (for working on one). */
        if (getenv("MEMMAPD_TEST_FILTER"))
                cmocka_set_test_filter(getenv("MEMMAPD_TEST_FILTER"));
        return cmocka_run_group_tests(tests, setup, teardown);
}
