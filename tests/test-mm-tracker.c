/* The BPF change tracker against the real kernel: a process's generation moves exactly when its
 * layout (the raw /proc/PID/maps text) changes, its exec epoch only when it runs another program
 * (exec, exit, fork), exec, exit and fork are reported for the right processes, the count of
 * emitted events matches what is drained, and a denied load fails cleanly. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <grp.h>
#include <limits.h>

#include <cmocka.h>

#include "cleanup.h"
#include "mm-tracker.h"

#ifndef MM_FIXTURE_PATH
#define MM_FIXTURE_PATH "tests/mm-fixture"
#endif

#define ROUNDS 6000
#define STACK_STEPS_MAX 800     /* 3.2 MiB of stack at most, well below the usual 8 MiB limit */

static struct mm_tracker *tracker;
static int tracker_error;

/* A running mm-fixture: its pid and the pipes of its steps. */
struct target {
        pid_t pid;
        int to;
        int from;
};

static int target_start(const char *exec_path, struct target *ret) {
        int in[2], out[2];
        pid_t pid;
        char c;

        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                char *argv[] = { (char *) MM_FIXTURE_PATH, (char *) exec_path, NULL };

                if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
                        _exit(127);
                execv(MM_FIXTURE_PATH, argv);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        if (read(out[0], &c, 1) != 1 || c != 'r') {
                close(in[1]);
                close(out[0]);
                waitpid(pid, NULL, 0);
                return -EIO;
        }
        *ret = (struct target) { .pid = pid, .to = in[1], .from = out[0] };
        return 0;
}

/* One step; the fixture answers after the system call returned. */
static char target_step(const struct target *t, char c) {
        char reply = 0;

        if (write(t->to, &c, 1) != 1 || read(t->from, &reply, 1) != 1)
                return 0;
        return reply;
}

/* Closes the target's input (it exits at its end) and waits for its exit without reaping it:
 * its pid cannot be given to another process meanwhile (tests elsewhere steer pid reuse). */
static void target_exited(struct target *t) {
        siginfo_t info;

        close(TAKE_FD(t->to));
        assert_int_equal(waitid(P_PID, (id_t) t->pid, &info, WEXITED | WNOWAIT), 0);
}

static int target_stop(struct target *t) {
        int status = -1;

        if (t->to >= 0)
                close(t->to);
        close(t->from);
        if (waitpid(t->pid, &status, 0) != t->pid)
                return -errno;
        return status;
}

/* The whole /proc/PID/maps text, as the kernel wrote it. The target waits in read() meanwhile,
 * so the reads that make it up see one layout. */
static char *read_maps(pid_t pid) {
        char path[64];
        _cleanup_close_ int fd = -1;
        size_t size = 1 << 16, len = 0;
        char *buf = malloc(size);
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_non_null(buf);
        while ((n = read(fd, buf + len, size - len - 1)) > 0) {
                len += (size_t) n;
                if (size - len < 4096) {
                        size *= 2;
                        buf = realloc(buf, size);
                        assert_non_null(buf);
                }
        }
        assert_true(n == 0);
        buf[len] = 0;
        return buf;
}

static unsigned slots_for_pid_max(void) {
        _cleanup_fclose_ FILE *f = fopen("/proc/sys/kernel/pid_max", "re");
        unsigned long pid_max = 0;
        unsigned slots = 512;

        if (!f || fscanf(f, "%lu", &pid_max) != 1)
                return MM_TRACK_MAX_SLOTS;
        while (slots < pid_max && slots < MM_TRACK_MAX_SLOTS)
                slots *= 2;
        return slots;
}

#define SKIP_IF_NO_TRACKER()                                                                      \
        do {                                                                                      \
                if (!tracker) {                                                                   \
                        printf("# skipped: BPF is denied here (%s): the tracker needs CAP_BPF and " \
                               "CAP_PERFMON and the kernel's BTF\n", strerror(-tracker_error));   \
                        skip();                                                                   \
                }                                                                                 \
        } while (0)

/* The generation moves exactly when the layout changed: after every step of thousands, of
 * every kind, compared with the raw maps text before and after. The steps that must change
 * the layout did (else the check proves nothing), faults and MADV_DONTNEED never did. */
static void test_generation_exact(void **state) {
        static const char steps[] = "mupprbBfFsttdmu";
        static const char *const must_change = "muprbBfFs";
        unsigned changed[128] = { 0 }, count[128] = { 0 }, stack_steps = 0;
        struct target t;
        _cleanup_free_ char *before = NULL;
        uint32_t seed = 14;

        SKIP_IF_NO_TRACKER();
        assert_int_equal(target_start(NULL, &t), 0);
        /* Enough slots for every pid (the test asks for them), so no neighbour shares one. */
        before = read_maps(t.pid);

        for (unsigned round = 0; round < ROUNDS; round++) {
                _cleanup_free_ char *after = NULL;
                uint64_t g0, g1;
                bool layout_changed, generation_changed;
                char c;

                seed = seed * 1103515245u + 12345u;
                c = steps[(seed >> 16) % (sizeof(steps) - 1)];
                if (c == 's' && ++stack_steps > STACK_STEPS_MAX)
                        c = 't';

                g0 = mm_tracker_generation(tracker, t.pid);
                assert_int_equal(target_step(&t, c), 'k');
                after = read_maps(t.pid);
                g1 = mm_tracker_generation(tracker, t.pid);

                layout_changed = strcmp(before, after) != 0;
                generation_changed = g1 != g0;
                if (layout_changed != generation_changed)
                        fail_msg("round %u, step '%c': layout %s but generation %" PRIu64 " -> %" PRIu64 "\nbefore:\n%s\nafter:\n%s",
                                 round, c, layout_changed ? "changed" : "unchanged", g0, g1, before, after);
                count[(unsigned char) c]++;
                changed[(unsigned char) c] += layout_changed;
                free(before);
                before = TAKE_PTR(after);
        }

        for (const char *s = "muprbBfFstd"; *s; s++) {
                unsigned char c = (unsigned char) *s;
                bool must = strchr(must_change, *s) != NULL;

                printf("# step '%c': %u times, layout changed %u\n", *s, count[c], changed[c]);
                assert_true(count[c] > 0);
                assert_int_equal(changed[c], must ? count[c] : 0);
        }
        assert_int_equal(target_stop(&t), 0);
}

struct seen {
        pid_t pid, parent, thread;
        unsigned n, thread_events;
        char order[8];                  /* f(ork), x (exec), e(xit), in the order they came */
        uint64_t start_boottime[8];
        uint64_t time_ns[8];
        pid_t fork_parent;
        char exec_comm[MM_TRACK_COMM_LEN];
};

/* Pids are reused, even at once where a test steers it (ns_last_pid): an event of s->pid
 * counts from its fork (a stale exit of the pid's previous holder comes first) to its exit (the
 * next holder's come after). */
static int on_event(const struct mm_track_event *e, void *userdata) {
        struct seen *s = userdata;

        /* A thread's start or end, reported as a process's, would carry this process's tgid:
         * nothing else here does, and this pid, unlike the thread's, is not reused meanwhile. */
        if (s->thread != 0 && (pid_t) e->tgid == s->parent)
                s->thread_events++;
        if ((pid_t) e->tgid != s->pid || s->n >= sizeof(s->order) - 1 || strchr(s->order, 'e'))
                return 0;
        if (s->n == 0 && e->type != MM_TRACK_FORK)
                return 0;
        s->start_boottime[s->n] = e->start_boottime;
        s->time_ns[s->n] = e->time_ns;
        switch (e->type) {
        case MM_TRACK_FORK:
                s->order[s->n++] = 'f';
                s->fork_parent = (pid_t) e->parent_tgid;
                break;
        case MM_TRACK_EXEC:
                s->order[s->n++] = 'x';
                memcpy(s->exec_comm, e->comm, sizeof(s->exec_comm));
                s->exec_comm[MM_TRACK_COMM_LEN - 1] = 0;
                break;
        case MM_TRACK_EXIT:
                s->order[s->n++] = 'e';
                break;
        default:
                s->order[s->n++] = '?';
        }
        return 0;
}

/* Drains until the exit came, waiting on the event fd between drains: at most 120 s. */
static void drain_until_exit(struct seen *s) {
        struct pollfd p = { .fd = mm_tracker_event_fd(tracker), .events = POLLIN };

        for (int i = 0; i < 120 && !strchr(s->order, 'e'); i++) {
                assert_true(mm_tracker_drain(tracker, on_event, s) >= 0);
                if (!strchr(s->order, 'e'))
                        (void) poll(&p, 1, 1000);
        }
}

/* The process's start in clock ticks since boot, field 22 of /proc/PID/stat. */
static uint64_t proc_start_ticks(pid_t pid) {
        char path[64], buf[1024];
        _cleanup_close_ int fd = -1;
        unsigned long long v = 0;
        ssize_t n;
        char *p;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        n = read(fd, buf, sizeof(buf) - 1);
        assert_true(n > 0);
        buf[n] = 0;
        p = strrchr(buf, ')');
        assert_non_null(p);
        /* After the comm: state is field 3, the start time field 22. */
        assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &v), 1);
        return v;
}

static uint64_t monotonic_ns(void) {
        struct timespec ts;

        assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void *thread_main(void *arg) {
        *(pid_t *) arg = (pid_t) syscall(SYS_gettid);
        return NULL;
}

/* A process that forks, execs the fixture, which execs /bin/true, and exits is reported in that order with its pid, its
 * parent and its start time (as /proc/PID/stat gives it, in ticks); its generation moved at
 * exec and exit. A thread's start and end report nothing. */
static void test_process_events(void **state) {
        uint64_t tick_ns = 1000000000ull / (uint64_t) sysconf(_SC_CLK_TCK);
        struct seen s;

        SKIP_IF_NO_TRACKER();
        /* A machine that forks faster than we drain can overflow the ring buffer meanwhile
         * (lost events are counted): then that attempt says nothing, and another is made. */
        for (int attempt = 0;; attempt++) {
                uint64_t g0, start_ticks, lost0, before_ns, after_ns;
                struct target t;
                pthread_t th;

                assert_true(attempt < 10);
                s = (struct seen) { .parent = getpid() };
                assert_true(mm_tracker_drain(tracker, NULL, NULL) >= 0);
                lost0 = mm_tracker_lost_events(tracker);

                assert_int_equal(pthread_create(&th, NULL, thread_main, &s.thread), 0);
                assert_int_equal(pthread_join(th, NULL), 0);

                before_ns = monotonic_ns();
                assert_int_equal(target_start("/bin/true", &t), 0);
                s.pid = t.pid;
                start_ticks = proc_start_ticks(t.pid);
                g0 = mm_tracker_generation(tracker, t.pid);
                assert_int_equal(target_step(&t, 'x'), 0);      /* exec'd: no answer, the pipe closed */
                assert_int_equal(target_stop(&t), 0);           /* /bin/true's exit status */
                assert_true(mm_tracker_generation(tracker, t.pid) >= g0 + 2);
                after_ns = monotonic_ns();      /* target_stop() reaped it: its exit came before */

                drain_until_exit(&s);
                printf("# pid %d: events \"%s\", exec'd %s\n", (int) s.pid, s.order, s.exec_comm);
                if (mm_tracker_lost_events(tracker) != lost0) {
                        printf("# events were lost meanwhile, again\n");
                        continue;
                }
                assert_string_equal(s.order, "fxxe");        /* exec'd the fixture, then /bin/true */
                assert_int_equal(s.fork_parent, s.parent);
                assert_string_equal(s.exec_comm, "true");
                for (unsigned i = 0; i < s.n; i++) {
                        assert_int_equal(s.start_boottime[i] / tick_ns, start_ticks);
                        /* Stamped by the kernel on CLOCK_MONOTONIC, the clock of perf samples,
                         * in the order they happened. */
                        assert_true(s.time_ns[i] >= before_ns && s.time_ns[i] <= after_ns);
                        assert_true(i == 0 || s.time_ns[i] >= s.time_ns[i - 1]);
                }
                assert_int_equal(s.thread_events, 0);
                break;
        }
}

#define FDS_MAX 4096

/* Which fds are open (the directory's own excepted); their number. */
static unsigned list_fds(bool open_fds[FDS_MAX]) {
        _cleanup_closedir_ DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        unsigned n = 0;

        assert_non_null(d);
        memset(open_fds, 0, FDS_MAX * sizeof(bool));
        while ((de = readdir(d))) {
                int fd = atoi(de->d_name);

                if (de->d_name[0] == '.' || fd == dirfd(d))
                        continue;
                n++;
                if (fd >= 0 && fd < FDS_MAX)
                        open_fds[fd] = true;
        }
        return n;
}

static int load_unprivileged(void) {
        static bool fds[FDS_MAX];
        struct mm_tracker *t = NULL;
        unsigned before;
        int r;

        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
                return 10;
        before = list_fds(fds);
        r = mm_tracker_new(0, &t);
        if (r != -EPERM)
                return 11;
        if (t)
                return 12;
        return list_fds(fds) == before ? 0 : 13;
}

/* Without CAP_BPF and CAP_PERFMON the load fails with -EPERM, leaves nothing open and no
 * tracker behind: the daemon can go on without tracking. A tracker's own fds are O_CLOEXEC,
 * and sizes that are not a power of two in range are refused. */
static void test_clean_failure(void **state) {
        struct mm_tracker *t = NULL;
        int status;
        pid_t pid;

        if (geteuid() != 0) {
                printf("# skipped: dropping privileges needs root\n");
                skip();
        }
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(load_unprivileged());
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);

        assert_int_equal(mm_tracker_new(256, &t), -EINVAL);
        assert_int_equal(mm_tracker_new(1000, &t), -EINVAL);
        assert_int_equal(mm_tracker_new(MM_TRACK_MAX_SLOTS * 2, &t), -EINVAL);
        assert_null(t);

        SKIP_IF_NO_TRACKER();
        {
                static bool before[FDS_MAX], after[FDS_MAX];
                unsigned n_before = list_fds(before), n_new = 0;

                assert_int_equal(mm_tracker_new(512, &t), 0);
                assert_int_equal(mm_tracker_slots(t), 512);
                assert_true(list_fds(after) > n_before);
                for (int fd = 0; fd < FDS_MAX; fd++)
                        if (after[fd] && !before[fd]) {
                                n_new++;
                                assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
                        }
                assert_true(n_new > 0);
                t = mm_tracker_free(t);
                assert_int_equal(list_fds(after), n_before);
        }
}

/* n processes that fork and exit at once, one after another: two events each. */
static void forks_that_exit(int n) {
        for (int i = 0; i < n; i++) {
                int status;
                pid_t pid = fork();

                assert_true(pid >= 0);
                if (pid == 0)
                        _exit(0);
                assert_int_equal(waitpid(pid, &status, 0), pid);
        }
}

/* A full ring buffer drops events and counts them, and the next ones arrive again once it is
 * drained: 3,000 processes that fork and exit, undrained, make 6,000 events for its ~4,600
 * places. */
static void test_lost_events(void **state) {
        struct seen s = { .parent = getpid() };
        uint64_t lost0;
        int status;

        SKIP_IF_NO_TRACKER();
        assert_true(mm_tracker_drain(tracker, NULL, NULL) >= 0);
        lost0 = mm_tracker_lost_events(tracker);
        forks_that_exit(3000);
        printf("# events lost: %" PRIu64 "\n", mm_tracker_lost_events(tracker) - lost0);
        assert_true(mm_tracker_lost_events(tracker) > lost0);
        assert_true(mm_tracker_drain(tracker, NULL, NULL) > 0);

        /* Again, if the machine overflows it meanwhile, as in test_process_events. */
        for (int attempt = 0;; attempt++) {
                assert_true(attempt < 10);
                s = (struct seen) { .parent = getpid() };
                assert_true(mm_tracker_drain(tracker, NULL, NULL) >= 0);
                lost0 = mm_tracker_lost_events(tracker);
                s.pid = fork();
                assert_true(s.pid >= 0);
                if (s.pid == 0)
                        _exit(0);
                assert_int_equal(waitpid(s.pid, &status, 0), s.pid);
                drain_until_exit(&s);
                if (mm_tracker_lost_events(tracker) == lost0)
                        break;
        }
        assert_string_equal(s.order, "fe");
        assert_int_equal(s.fork_parent, s.parent);
}

static int on_count(const struct mm_track_event *e, void *userdata) {
        (void) e;
        (*(unsigned *) userdata)++;
        return 0;
}

/* One drain hands on at most 1,024 events, and the fd still polls readable for the rest: a flood
 * of events never keeps a drain (and its thread) for good. */
static void test_drain_bounded(void **state) {
        struct pollfd p = { .events = POLLIN };
        unsigned counted = 0;
        int n;

        SKIP_IF_NO_TRACKER();
        p.fd = mm_tracker_event_fd(tracker);
        assert_true(mm_tracker_drain(tracker, NULL, NULL) >= 0);
        /* 1,400 events made, more than 1,024 wait (a full ring too, if the machine's other
         * processes overflowed it meanwhile). */
        forks_that_exit(700);
        n = mm_tracker_drain(tracker, on_count, &counted);
        assert_int_equal(n, 1024);
        assert_int_equal(counted, 1024);
        assert_int_equal(poll(&p, 1, 0), 1);
        n = mm_tracker_drain(tracker, on_count, &counted);
        assert_true(n > 0);
        assert_int_equal(counted, 1024 + (unsigned) n);
}

/* Where /proc/PID/exe points: the program the kernel says the process runs. */
static void read_exe(pid_t pid, char buf[PATH_MAX]) {
        char path[64];
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/exe", (int) pid);
        n = readlink(path, buf, PATH_MAX - 1);
        assert_true(n > 0);
        buf[n] = 0;
}

/* Each counter is read twice around one interval: the generation moves at least as often as
 * the epoch, since every place that moves an epoch moves the generation too. */
struct counters {
        uint64_t epoch, generation, mm;
};

static struct counters counters_of(pid_t tgid) {
        return (struct counters) {
                .epoch = mm_tracker_epoch(tracker, tgid),
                .generation = mm_tracker_generation(tracker, tgid),
                .mm = mm_tracker_mm(tracker, tgid),
        };
}

static uint64_t epoch_moved(struct counters before, struct counters after) {
        assert_true(after.epoch >= before.epoch);
        assert_true(after.generation - before.generation >= after.epoch - before.epoch);
        return after.epoch - before.epoch;
}

/* A program's epoch stays put through a thousand layout changes of every kind, while its
 * generation follows each one (the raw maps text says which rounds changed it); then it moves
 * when the process execs another program (/proc/PID/exe says it did), at least twice (the new
 * address space is built under its id, then the exec ends), and once at its exit. */
static void test_epoch(void **state) {
        static const char steps[] = "muprbBfFtd";
        char fixture[PATH_MAX], cat[PATH_MAX], exe[PATH_MAX];
        unsigned changes = 0, moves = 0;
        _cleanup_free_ char *before = NULL;
        struct counters c0, c1, c2;
        uint32_t seed = 1400;
        struct target t;

        SKIP_IF_NO_TRACKER();
        assert_non_null(realpath(MM_FIXTURE_PATH, fixture));
        assert_non_null(realpath("/bin/cat", cat));
        assert_int_equal(target_start("/bin/cat", &t), 0);
        read_exe(t.pid, exe);
        assert_string_equal(exe, fixture);
        before = read_maps(t.pid);
        c0 = counters_of(t.pid);

        for (unsigned round = 0; round < 1000; round++) {
                _cleanup_free_ char *after = NULL;
                struct counters r0, r1;
                char c;

                seed = seed * 1103515245u + 12345u;
                c = steps[(seed >> 16) % (sizeof(steps) - 1)];
                r0 = counters_of(t.pid);
                assert_int_equal(target_step(&t, c), 'k');
                after = read_maps(t.pid);
                r1 = counters_of(t.pid);
                if (r1.epoch != r0.epoch)
                        fail_msg("round %u, step '%c': epoch %" PRIu64 " -> %" PRIu64, round, c, r0.epoch, r1.epoch);
                /* The process's own address space, written again and again: the same one. */
                if (r1.mm != c0.mm)
                        fail_msg("round %u, step '%c': the mm's identity changed", round, c);
                if (strcmp(before, after) != 0) {
                        changes++;
                        assert_true(r1.generation > r0.generation);
                }
                moves += r1.generation != r0.generation;
                free(before);
                before = TAKE_PTR(after);
        }
        c1 = counters_of(t.pid);
        printf("# 1000 steps: layout changed %u times, generation moved %u times (+%" PRIu64 "), epoch +%" PRIu64 "\n",
               changes, moves, c1.generation - c0.generation, c1.epoch - c0.epoch);
        assert_true(changes >= 700);
        assert_int_equal(c1.epoch, c0.epoch);
        assert_true(c0.mm != 0);
        assert_true(c1.generation - c0.generation >= changes);

        /* The fixture execs cat, which echoes: the echo says the exec is over. */
        assert_int_equal(write(t.to, "x", 1), 1);
        assert_int_equal(target_step(&t, 'q'), 'q');
        read_exe(t.pid, exe);
        assert_string_equal(exe, cat);
        c2 = counters_of(t.pid);
        printf("# exec: epoch +%" PRIu64 ", generation +%" PRIu64 "\n", c2.epoch - c1.epoch, c2.generation - c1.generation);
        assert_true(epoch_moved(c1, c2) >= 2);
        /* cat's address space was written before cat ran (setup_arg_pages): another one. */
        assert_true(c2.mm != 0 && c2.mm != c1.mm);

        /* cat exits at the end of its input. */
        c1 = c2;
        target_exited(&t);
        c2 = counters_of(t.pid);
        assert_int_equal(epoch_moved(c1, c2), 1);
        assert_int_equal(target_stop(&t), 0);
}

static void *thread_idle(void *arg) {
        return arg;
}

/* A fork moves the child's epoch (its pid is a new process) once, not the parent's (it still runs
 * its program: a decision about it stands), the child's exit once more, and a thread's start and
 * end move neither. */
static void test_epoch_fork(void **state) {
        _cleanup_free_ uint64_t *snapshot = NULL;
        pid_t self = getpid();
        struct counters p0, p1;
        unsigned slots;
        pthread_t th;

        SKIP_IF_NO_TRACKER();
        p0 = counters_of(self);
        assert_int_equal(pthread_create(&th, NULL, thread_idle, NULL), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        p1 = counters_of(self);
        assert_int_equal(epoch_moved(p0, p1), 0);

        slots = mm_tracker_slots(tracker);
        snapshot = malloc(slots * sizeof(uint64_t));
        assert_non_null(snapshot);
        /* The child's slot moves once at the fork, unless the pid's previous holder exited
         * after the snapshot (it was then reaped and its pid given to the child at once, as a
         * test that steers pid reuse can make happen): that attempt says nothing. */
        for (int attempt = 0;; attempt++) {
                struct counters k1, k2;
                uint64_t child_moved;
                siginfo_t info;
                int go[2], status;
                pid_t pid;

                assert_true(attempt < 10);
                /* The child's pid is unknown before the fork: every slot's epoch is kept. */
                for (unsigned i = 0; i < slots; i++)
                        snapshot[i] = mm_tracker_epoch(tracker, (pid_t) i);
                assert_int_equal(pipe2(go, O_CLOEXEC), 0);
                p0 = counters_of(self);
                pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        char c;

                        close(go[1]);
                        _exit(read(go[0], &c, 1) == 0 ? 0 : 1);
                }
                close(go[0]);
                p1 = counters_of(self);
                k1 = counters_of(pid);
                child_moved = k1.epoch - snapshot[(unsigned) pid & (slots - 1)];
                printf("# fork: the parent's epoch +%" PRIu64 ", the child's +%" PRIu64 "\n", p1.epoch - p0.epoch, child_moved);
                assert_int_equal(epoch_moved(p0, p1), 0);
                assert_true(child_moved >= 1);

                /* The exit, seen before the child is reaped, while its pid is still its own. */
                close(go[1]);
                assert_int_equal(waitid(P_PID, (id_t) pid, &info, WEXITED | WNOWAIT), 0);
                k2 = counters_of(pid);
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                assert_int_equal(epoch_moved(k1, k2), 1);
                if (child_moved == 1)
                        break;
        }
}

#define EMITTED_CHILDREN 40

/* The children are known by their fork events (parent this process, pid one fork() returned)
 * and then by (pid, start): a pid given to another process meanwhile is not theirs. */
struct tally {
        pid_t parent;
        const pid_t *children;
        unsigned n_children;
        uint64_t drained;               /* every event this tracker handed over */
        struct { pid_t tgid; uint64_t start_boottime; } forks[EMITTED_CHILDREN];
        unsigned n_forks, child_events, child_exits;
};

static int on_tally(const struct mm_track_event *e, void *userdata) {
        struct tally *y = userdata;

        y->drained++;
        if (e->type == MM_TRACK_FORK && (pid_t) e->parent_tgid == y->parent) {
                for (unsigned i = 0; i < y->n_children; i++)
                        if ((pid_t) e->tgid == y->children[i] && y->n_forks < EMITTED_CHILDREN) {
                                y->forks[y->n_forks].tgid = (pid_t) e->tgid;
                                y->forks[y->n_forks++].start_boottime = e->start_boottime;
                                y->child_events++;
                                break;
                        }
                return 0;
        }
        for (unsigned i = 0; i < y->n_forks; i++)
                if ((pid_t) e->tgid == y->forks[i].tgid && e->start_boottime == y->forks[i].start_boottime) {
                        y->child_events++;
                        y->child_exits += e->type == MM_TRACK_EXIT;
                        break;
                }
        return 0;
}

/* The emitted count grows by at least the events drained for forty children that fork, exec
 * and exit (three each when none was lost), and everything drained since the load is never
 * more than the count read after it, and equals it once the buffer is empty (lost events are
 * not emitted: they were never reserved). A tracker of its own, so the drains since the load
 * are all ours. */
static void test_events_emitted(void **state) {
        _cleanup_mm_tracker_ struct mm_tracker *t = NULL;
        pid_t children[EMITTED_CHILDREN];
        struct tally y = { .parent = getpid(), .children = children };
        struct pollfd p;
        uint64_t emitted0, emitted;
        bool equal = false;

        SKIP_IF_NO_TRACKER();
        assert_int_equal(mm_tracker_new(512, &t), 0);
        p = (struct pollfd) { .fd = mm_tracker_event_fd(t), .events = POLLIN };

        for (int attempt = 0;; attempt++) {
                uint64_t lost0 = mm_tracker_lost_events(t);

                assert_true(attempt < 10);
                assert_true(mm_tracker_drain(t, on_tally, &y) >= 0);
                y.n_children = y.n_forks = 0;
                y.child_events = y.child_exits = 0;
                emitted0 = mm_tracker_events_emitted(t);
                for (unsigned i = 0; i < EMITTED_CHILDREN; i++) {
                        int status;
                        pid_t pid = fork();

                        assert_true(pid >= 0);
                        if (pid == 0) {
                                execl("/bin/true", "true", (char *) NULL);
                                _exit(127);
                        }
                        children[y.n_children++] = pid;
                        assert_int_equal(waitpid(pid, &status, 0), pid);
                        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                }
                for (int i = 0; i < 120 && y.child_exits < EMITTED_CHILDREN; i++) {
                        assert_true(mm_tracker_drain(t, on_tally, &y) >= 0);
                        if (y.child_exits < EMITTED_CHILDREN)
                                (void) poll(&p, 1, 1000);
                }
                emitted = mm_tracker_events_emitted(t);
                printf("# emitted +%" PRIu64 " over %u children, %u of their events drained\n",
                       emitted - emitted0, EMITTED_CHILDREN, y.child_events);
                assert_true(emitted - emitted0 >= y.child_events);
                assert_true(y.drained <= emitted);
                if (mm_tracker_lost_events(t) == lost0) {
                        assert_int_equal(y.n_forks, EMITTED_CHILDREN);
                        for (unsigned i = 0; i < EMITTED_CHILDREN; i++)
                                assert_int_equal(y.forks[i].tgid, children[i]);
                        assert_int_equal(y.child_exits, EMITTED_CHILDREN);
                        assert_int_equal(y.child_events, 3 * EMITTED_CHILDREN);
                        break;
                }
                printf("# events were lost meanwhile, again\n");
        }

        /* Events reserved but not yet submitted are counted already: wait for them. Other
         * processes' events may keep coming: the two agree at a quiet moment. */
        for (int i = 0; i < 1200 && !equal; i++) {
                assert_true(mm_tracker_drain(t, on_tally, &y) >= 0);
                emitted = mm_tracker_events_emitted(t);
                assert_true(y.drained <= emitted);
                equal = y.drained == emitted;
                if (!equal)
                        (void) poll(&p, 1, 100);
        }
        printf("# drained %" PRIu64 " of %" PRIu64 " emitted, %" PRIu64 " lost\n", y.drained, emitted,
               mm_tracker_lost_events(t));
        assert_true(equal);
}

static int setup(void **state) {
        tracker_error = mm_tracker_new(slots_for_pid_max(), &tracker);
        if (tracker_error < 0 && tracker_error != -EPERM && tracker_error != -EACCES) {
                fprintf(stderr, "mm_tracker_new: %s\n", strerror(-tracker_error));
                return -1;
        }
        return 0;
}

static int teardown(void **state) {
        tracker = mm_tracker_free(tracker);
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_generation_exact),
                cmocka_unit_test(test_process_events),
                cmocka_unit_test(test_epoch),
                cmocka_unit_test(test_epoch_fork),
                cmocka_unit_test(test_events_emitted),
                cmocka_unit_test(test_clean_failure),
                cmocka_unit_test(test_lost_events),
                cmocka_unit_test(test_drain_bounded),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
