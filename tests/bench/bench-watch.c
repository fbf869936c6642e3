/* Benchmarks of issue 15's Watch and mirror (`make bench-watch`, as root): the events a second one watcher receives while processes fork and exit as fast as they can, and the cost of a mirror lookup against the PROCMAP_QUERY ioctl for the same addresses. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "libmemctl.h"
#include "procmap-uapi.h"

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define FORKERS 4
#define SECONDS 5
#define ADDRESSES 1000000

static uint64_t mono_nsec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

struct counter {
        memctl_watch *w;
        atomic_uint_fast64_t events, dropped;
        atomic_bool stop;
        int error;
};

static void *count_main(void *arg) {
        struct counter *k = arg;

        while (!atomic_load(&k->stop)) {
                struct memctl_event e = MEMCTL_EVENT_INIT;
                int r = memctl_watch_next(k->w, 100000, &e);

                if (r < 0) {
                        k->error = r;
                        break;
                }
                if (r == 0)
                        continue;
                if (e.type == MEMCTL_EVENT_OVERFLOW)
                        atomic_fetch_add(&k->dropped, e.dropped);
                else
                        atomic_fetch_add(&k->events, 1);
        }
        return NULL;
}

/* Forks children that exit at once, as fast as it can, for SECONDS; writes how many to out. */
static void forker(int out) {
        uint64_t end = mono_nsec() + SECONDS * UINT64_C(1000000000), n = 0;

        while (mono_nsec() < end) {
                pid_t k = fork();

                if (k == 0)
                        _exit(0);
                if (k > 0 && waitpid(k, NULL, 0) == k)
                        n++;
        }
        if (write(out, &n, sizeof(n)) != sizeof(n))
                _exit(1);
        _exit(0);
}

/* The daemon's CPU time so far (user + system), in clock ticks. */
static uint64_t cpu_ticks(pid_t pid) {
        uint64_t u = 0, s = 0;

        if (test_proc_stat_field(pid, 14, &u) < 0 || test_proc_stat_field(pid, 15, &s) < 0)
                return 0;
        return u + s;
}

static int bench_events(const char *socket, pid_t daemon) {
        struct counter k = {};
        memctl *c = NULL;
        pthread_t thread;
        uint64_t forks = 0, t0, t1;
        int p[2];

        if (memctl_connect(socket, &c) < 0 || memctl_watch_start(c, 0, 0, &k.w) < 0) {
                fprintf(stderr, "cannot watch (no BPF tracking?)\n");
                return 1;
        }
        if (pipe2(p, O_CLOEXEC) < 0 || pthread_create(&thread, NULL, count_main, &k) != 0)
                return 1;
        uint64_t cpu0 = cpu_ticks(daemon);

        t0 = mono_nsec();
        for (int i = 0; i < FORKERS; i++)
                if (fork() == 0)
                        forker(p[1]);
        for (int i = 0; i < FORKERS; i++) {
                uint64_t n = 0;

                if (read(p[0], &n, sizeof(n)) == sizeof(n))
                        forks += n;
                wait(NULL);
        }
        /* What is still queued comes within a moment (other processes of the machine keep
         * making events: counting for a fixed second more, not until they stop). */
        {
                struct timespec second = { .tv_sec = 1 };

                nanosleep(&second, NULL);
        }
        t1 = mono_nsec();
        atomic_store(&k.stop, true);
        pthread_join(thread, NULL);
        {
                uint64_t cpu = cpu_ticks(daemon) - cpu0, events = atomic_load(&k.events);
                double usec = (double) cpu * 1e6 / (double) sysconf(_SC_CLK_TCK);

                /* Everything the daemon did meanwhile (its drain, the tracker's events, the
                 * writes) over what it delivered: an upper bound of its cost per event. */
                printf("daemon CPU during the run: %.0f ms, %.1f us per event delivered (at most %.0f events/s "
                       "per CPU)\n", usec / 1000, events ? usec / (double) events : 0.0,
                       events && usec > 0 ? 1e6 * (double) events / usec : 0.0);
        }
        test_print_loadavg("after the event run: ");
        printf("watch: %" PRIu64 " forks in %.2f s by %d processes (%.0f fork+exit events/s made), %" PRIu64
               " events received (%.0f/s over the run and a second after), %" PRIu64 " dropped (overflow)\n",
               forks, (double) SECONDS, FORKERS, 2.0 * (double) forks / (double) SECONDS,
               atomic_load(&k.events), (double) atomic_load(&k.events) / ((double) (t1 - t0) / 1e9),
               atomic_load(&k.dropped));
        memctl_watch_free(k.w);
        memctl_free(c);
        return k.error < 0;
}

struct looker {
        pthread_t thread;
        memctl_mirror *m;
        pid_t pid;
        const uint64_t *addrs;
        uint64_t ns;
};

static void *look_main(void *arg) {
        struct looker *k = arg;
        uint64_t t0 = mono_nsec(), found = 0;

        for (int pass = 0; pass < 5; pass++)
                for (size_t i = 0; i < ADDRESSES; i++) {
                        struct memctl_mapping x = MEMCTL_MAPPING_INIT;

                        found += memctl_mirror_lookup(k->m, k->pid, k->addrs[i], &x) > 0;
                }
        k->ns = mono_nsec() - t0;
        __asm__ volatile("" : : "r"(found));
        return NULL;
}

static int bench_mirror(const char *socket) {
        static uint64_t addrs[ADDRESSES];
        memctl_mirror *m = NULL;
        char path[64], line[4096];
        uint64_t ranges[256][2], t0, t1, found = 0;
        size_t n_ranges = 0;
        int in[2], fd;
        pid_t target;
        FILE *f;

        /* A target: a child of ours, still while it is measured. */
        if (pipe2(in, O_CLOEXEC) < 0)
                return 1;
        target = fork();
        if (target == 0) {
                char b;

                close(in[1]);
                (void) !read(in[0], &b, 1);
                _exit(0);
        }
        close(in[0]);
        if (memctl_mirror_new(socket, &m) < 0 || memctl_mirror_add(m, target, 0) < 0)
                return 1;
        snprintf(path, sizeof(path), "/proc/%d/maps", (int) target);
        f = fopen(path, "re");
        if (!f)
                return 1;
        while (fgets(line, sizeof(line), f)) {
                unsigned long long s, e;
                char perms[8];

                if (sscanf(line, "%llx-%llx %7s", &s, &e, perms) == 3 && n_ranges < 256) {
                        ranges[n_ranges][0] = s;
                        ranges[n_ranges++][1] = e;
                }
        }
        fclose(f);
        srand(1);
        if (n_ranges == 0)
                return 1;
        /* Addresses inside the target's mappings, any of them (a profiler's samples fall in
         * code, but also in the heap and stacks of a JIT). */
        for (size_t i = 0; i < ADDRESSES; i++) {
                const uint64_t *r = ranges[(size_t) rand() % n_ranges];

                addrs[i] = r[0] + ((uint64_t) rand() << 16 ^ (uint64_t) rand()) % (r[1] - r[0]);
        }

        t0 = mono_nsec();
        for (int pass = 0; pass < 10; pass++)
                for (size_t i = 0; i < ADDRESSES; i++) {
                        struct memctl_mapping x = MEMCTL_MAPPING_INIT;

                        found += memctl_mirror_lookup(m, target, addrs[i], &x) > 0;
                }
        t1 = mono_nsec();
        printf("mirror: %.1f ns per lookup (%d lookups, %.0f%% in an executable file mapping)\n",
               (double) (t1 - t0) / (10.0 * ADDRESSES), 10 * ADDRESSES, 100.0 * (double) found / (10.0 * ADDRESSES));

        /* Threads looking up at once while the pump updates (the machine's CPUs: more threads
         * than CPUs would measure the scheduler). */
        {
                long cpus = sysconf(_SC_NPROCESSORS_ONLN);
                size_t n = cpus > 1 ? (size_t) MIN(cpus, 8) : 1;
                struct looker lk[8];

                for (size_t i = 0; i < n; i++) {
                        lk[i] = (struct looker) { .m = m, .pid = target, .addrs = addrs };
                        pthread_create(&lk[i].thread, NULL, look_main, &lk[i]);
                }
                for (size_t i = 0; i < n; i++)
                        pthread_join(lk[i].thread, NULL);
                for (size_t i = 0; i < n; i++)
                        printf("mirror, %zu threads at once: thread %zu %.1f ns per lookup\n", n, i,
                               (double) lk[i].ns / (5.0 * ADDRESSES));
        }

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                t0 = mono_nsec();
                for (size_t i = 0; i < ADDRESSES / 10; i++) {
                        struct procmap_query q = { .size = sizeof(q), .query_addr = addrs[i] };

                        (void) ioctl(fd, PROCMAP_QUERY, &q);
                }
                t1 = mono_nsec();
                printf("PROCMAP_QUERY ioctl, same addresses: %.1f ns per lookup\n",
                       (double) (t1 - t0) / (ADDRESSES / 10.0));
                close(fd);
        }
        test_print_loadavg("after the mirror run: ");
        close(in[1]);
        waitpid(target, NULL, 0);
        memctl_mirror_free(m);
        return 0;
}

int main(void) {
        struct test_daemon d;
        int r;

        signal(SIGPIPE, SIG_IGN);
        setvbuf(stdout, NULL, _IOLBF, 0);
        test_print_loadavg("before: ");
        if (test_daemon_start(NULL, &d) < 0) {
                fprintf(stderr, "cannot start memmapd ($MEMMAPD)\n");
                return 1;
        }
        r = bench_events(d.socket, d.pid);
        r |= bench_mirror(d.socket);
        test_daemon_stop(&d);
        return r;
}
