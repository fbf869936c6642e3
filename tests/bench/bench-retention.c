/* Benchmarks of retention (issue 15 part A, `make bench`, as root): the memory one retained process
 * takes, and what the capture adds to the exit (and exec) path of every process on the machine:
 * fork+exit and fork+exec+exit loops without memmapd, with memmapd tracking but not retaining
 * (RetainExitedSec=0), and with retention; the median of several alternating runs. */

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define RUNS 3
#define FORK_LOOPS 3000
#define EXEC_LOOPS 500
#define RETAINED 2000

static const char *memmapd_path;

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
        qsort(v, n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct daemon {
        pid_t pid;
        char dir[64], socket[128];
};

static struct json_object *call(const struct daemon *d, const char *msg) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char buf[65536];
        size_t len = 0;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (strlen(d->socket) >= sizeof(sa.sun_path)) {
                if (fd >= 0)
                        close(fd);
                return NULL;
        }
        memcpy(sa.sun_path, d->socket, strlen(d->socket) + 1);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            send(fd, msg, strlen(msg) + 1, MSG_NOSIGNAL) < 0) {
                if (fd >= 0)
                        close(fd);
                return NULL;
        }
        while (len < sizeof(buf) - 1) {
                ssize_t k = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);

                if (k <= 0)
                        break;
                len += (size_t) k;
                if (memchr(buf + len - k, 0, (size_t) k))
                        break;
        }
        close(fd);
        buf[len] = 0;
        return json_tokener_parse(buf);
}

static int64_t status_int(const struct daemon *d, const char *key) {
        struct json_object *o = call(d, "{\"method\":\"io.memmapd.GetStatus\"}"), *p, *v;
        int64_t r = -1;

        if (o && json_object_object_get_ex(o, "parameters", &p) && json_object_object_get_ex(p, key, &v))
                r = json_object_get_int64(v);
        json_object_put(o);
        return r;
}

static bool retention_on(const struct daemon *d) {
        struct json_object *o = call(d, "{\"method\":\"io.memmapd.GetStatus\"}"), *p, *v;
        bool r = o && json_object_object_get_ex(o, "parameters", &p) && json_object_object_get_ex(p, "retention", &v) &&
                 strcmp(json_object_get_string(v), "bpf") == 0;

        json_object_put(o);
        return r;
}

static int daemon_start(const char *retain, struct daemon *ret) {
        char sock_arg[160], conf_arg[160], set_arg[64], conf[128];
        const char *argv[] = { memmapd_path, sock_arg, conf_arg, set_arg, NULL };
        posix_spawn_file_actions_t fa;
        struct daemon d = {};
        int r;

        strcpy(d.dir, "/tmp/memmapd-bench-XXXXXX");
        if (!mkdtemp(d.dir))
                return -errno;
        snprintf(d.socket, sizeof(d.socket), "%s/io.memmapd", d.dir);
        snprintf(conf, sizeof(conf), "%s/memmapd.conf", d.dir);
        close(open(conf, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
        snprintf(sock_arg, sizeof(sock_arg), "--socket=%s", d.socket);
        snprintf(conf_arg, sizeof(conf_arg), "--config=%s", conf);
        snprintf(set_arg, sizeof(set_arg), "--set=RetainExitedSec=%s", retain);
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        r = posix_spawn(&d.pid, memmapd_path, &fa, NULL, (char *const *) argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -r;
        /* Up (GetStatus answers) and done loading its programs (tracking reported). */
        for (int i = 0; i < 3000; i++) {
                struct json_object *o = call(&d, "{\"method\":\"io.memmapd.GetStatus\"}");

                if (o) {
                        json_object_put(o);
                        if (strcmp(retain, "0") != 0 ? retention_on(&d) : true) {
                                *ret = d;
                                return 0;
                        }
                }
                usleep(10000);
        }
        kill(d.pid, SIGKILL);
        waitpid(d.pid, NULL, 0);
        return -ETIMEDOUT;
}

static void daemon_stop(struct daemon *d) {
        char path[160];

        if (d->pid <= 0)
                return;
        kill(d->pid, SIGTERM);
        waitpid(d->pid, NULL, 0);
        snprintf(path, sizeof(path), "%s/memmapd.conf", d->dir);
        unlink(path);
        rmdir(d->dir);
        d->pid = 0;
}

/* utime + stime of pid, in clock ticks. */
static uint64_t cpu_ticks(pid_t pid) {
        char path[64], buf[2048], *p;
        unsigned long long ut = 0, st = 0;
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
                return 0;
        return ut + st;
}

struct loop_result {
        double wall_ns, cpu_ns, daemon_cpu_ns;  /* per iteration */
};

/* n forks whose child exits at once (exec: after exec'ing /bin/true). */
static struct loop_result run_loop(unsigned n, bool exec, pid_t daemon_pid) {
        static char *const true_argv[] = { (char *) "/bin/true", NULL };
        struct rusage self0, kids0, self1, kids1;
        uint64_t d0 = daemon_pid > 0 ? cpu_ticks(daemon_pid) : 0, t0, t1;
        long hz = sysconf(_SC_CLK_TCK);
        struct loop_result r;

        getrusage(RUSAGE_SELF, &self0);
        getrusage(RUSAGE_CHILDREN, &kids0);
        t0 = now_ns();
        for (unsigned i = 0; i < n; i++) {
                pid_t pid = fork();

                if (pid == 0) {
                        if (exec)
                                execv(true_argv[0], true_argv);
                        _exit(0);
                }
                if (pid < 0 || waitpid(pid, NULL, 0) < 0)
                        abort();
        }
        t1 = now_ns();
        getrusage(RUSAGE_SELF, &self1);
        getrusage(RUSAGE_CHILDREN, &kids1);
#define TV_NS(tv) ((double) (tv).tv_sec * 1e9 + (double) (tv).tv_usec * 1e3)
        r.wall_ns = (double) (t1 - t0) / n;
        r.cpu_ns = (TV_NS(self1.ru_utime) + TV_NS(self1.ru_stime) + TV_NS(kids1.ru_utime) + TV_NS(kids1.ru_stime) -
                    TV_NS(self0.ru_utime) - TV_NS(self0.ru_stime) - TV_NS(kids0.ru_utime) - TV_NS(kids0.ru_stime)) /
                   n;
        r.daemon_cpu_ns = daemon_pid > 0 ? (double) (cpu_ticks(daemon_pid) - d0) * 1e9 / (double) hz / n : 0;
        return r;
}

static void loadavg(char *buf, size_t size) {
        FILE *f = fopen("/proc/loadavg", "re");

        if (!f || !fgets(buf, (int) size, f))
                snprintf(buf, size, "?");
        if (f)
                fclose(f);
        buf[strcspn(buf, "\n")] = 0;
}

static void bench_exit_path(bool exec) {
        static const char *const modes[] = { "none", "tracking", "retention" };
        double wall[3][RUNS], cpu[3][RUNS], dcpu[3][RUNS], recs[RUNS], skips[RUNS];
        int64_t rec0 = 0, skip0 = 0;
        unsigned n = exec ? EXEC_LOOPS : FORK_LOOPS;
        char load[128];

        for (int run = 0; run < RUNS; run++)
                for (int m = 0; m < 3; m++) {
                        struct daemon d = {};
                        struct loop_result r;

                        if (m > 0 && daemon_start(m == 1 ? "0" : "60", &d) < 0) {
                                fprintf(stderr, "cannot start memmapd\n");
                                exit(1);
                        }
                        if (m == 2) {
                                rec0 = status_int(&d, "retention_records");
                                skip0 = status_int(&d, "retention_records_skipped");
                        }
                        r = run_loop(n, exec, d.pid);
                        if (m == 2) {
                                /* The whole machine's: other processes' records count too. */
                                recs[run] = (double) (status_int(&d, "retention_records") - rec0) / n;
                                skips[run] = (double) (status_int(&d, "retention_records_skipped") - skip0) / n;
                        }
                        wall[m][run] = r.wall_ns;
                        cpu[m][run] = r.cpu_ns;
                        dcpu[m][run] = r.daemon_cpu_ns;
                        daemon_stop(&d);
                }
        loadavg(load, sizeof(load));
        printf("%s loop, %u iterations, median of %d alternating runs (load %s):\n",
               exec ? "fork+exec(/bin/true)+exit" : "fork+exit", n, RUNS, load);
        for (int m = 0; m < 3; m++) {
                double w = median(wall[m], RUNS), c = median(cpu[m], RUNS), dc = median(dcpu[m], RUNS);

                printf("  %-9s  %8.1f us wall  %8.1f us CPU (loop)  %6.1f us CPU (memmapd)  per iteration\n", modes[m],
                       w / 1e3, c / 1e3, dc / 1e3);
        }
        printf("  capture: %.1f records sent, %.1f changes skipped per iteration (machine-wide)\n", median(recs, RUNS),
               median(skips, RUNS));
        printf("  ratio retention/none %.3f, retention/tracking %.3f (wall)\n",
               median(wall[2], RUNS) / median(wall[0], RUNS), median(wall[2], RUNS) / median(wall[1], RUNS));
}

#define FIRST_CHILDREN 300
#define FIRST_MAPPINGS 200

/* One child of a process with FIRST_MAPPINGS more executable file mappings: how long its first
 * munmap takes (a child never told whole: its whole set is told) and its second (a range). */
static void first_change_child(void *a, void *b, int out) {
        uint64_t t0 = now_ns(), t1, t2;

        munmap(a, 4096);
        t1 = now_ns();
        munmap(b, 4096);
        t2 = now_ns();
        {
                uint64_t v[2] = { t1 - t0, t2 - t1 };

                if (write(out, v, sizeof(v)) != (ssize_t) sizeof(v))
                        _exit(1);
        }
        _exit(0);
}

static void first_change_run(double *ret_first, double *ret_second) {
        double first[FIRST_CHILDREN], second[FIRST_CHILDREN];
        int p[2];

        if (pipe2(p, O_CLOEXEC) < 0)
                abort();
        for (unsigned i = 0; i < FIRST_CHILDREN; i++) {
                void *a = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                void *b = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                pid_t pid;
                uint64_t v[2];

                if (a == MAP_FAILED || b == MAP_FAILED)
                        abort();
                pid = fork();
                if (pid == 0)
                        first_change_child(a, b, p[1]);
                if (pid < 0 || read(p[0], v, sizeof(v)) != (ssize_t) sizeof(v) || waitpid(pid, NULL, 0) < 0)
                        abort();
                first[i] = (double) v[0];
                second[i] = (double) v[1];
                munmap(a, 4096);
                munmap(b, 4096);
        }
        close(p[0]);
        close(p[1]);
        *ret_first = median(first, FIRST_CHILDREN);
        *ret_second = median(second, FIRST_CHILDREN);
}

/* What telling a process's whole set at its first change costs it: forked children of a process
 * with 200 more executable file mappings (never told whole: the capture walks all its mappings
 * at their first change), without memmapd and with retention. */
static void bench_first_change(void) {
        double f[2][RUNS], s[2][RUNS];
        void *maps[FIRST_MAPPINGS];
        int fd = open("/bin/true", O_RDONLY | O_CLOEXEC);
        char load[128];

        if (fd < 0)
                abort();
        for (unsigned i = 0; i < FIRST_MAPPINGS; i++)
                if ((maps[i] = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0)) == MAP_FAILED)
                        abort();
        close(fd);
        for (int run = 0; run < RUNS; run++)
                for (int m = 0; m < 2; m++) {
                        struct daemon d = {};

                        if (m > 0 && daemon_start("60", &d) < 0) {
                                fprintf(stderr, "cannot start memmapd\n");
                                exit(1);
                        }
                        first_change_run(&f[m][run], &s[m][run]);
                        daemon_stop(&d);
                }
        for (unsigned i = 0; i < FIRST_MAPPINGS; i++)
                munmap(maps[i], 4096);
        loadavg(load, sizeof(load));
        printf("first change of a forked child (%u more executable mappings), median of %d children x %d runs "
               "(load %s):\n", FIRST_MAPPINGS, FIRST_CHILDREN, RUNS, load);
        printf("  none       first munmap %7.1f us, second %7.1f us\n", median(f[0], RUNS) / 1e3,
               median(s[0], RUNS) / 1e3);
        printf("  retention  first munmap %7.1f us (its whole set told), second %7.1f us\n", median(f[1], RUNS) / 1e3,
               median(s[1], RUNS) / 1e3);
}

static void bench_memory(void) {
        struct daemon d;
        int64_t bytes0, exited0, bytes1 = -1, exited1 = -1;
        char load[128];

        if (daemon_start("600", &d) < 0) {
                fprintf(stderr, "cannot start memmapd\n");
                exit(1);
        }
        bytes0 = status_int(&d, "retained_bytes");
        exited0 = status_int(&d, "retained_exited");
        (void) run_loop(RETAINED, true, 0);
        /* Until the daemon drained the exits (bounded). */
        for (int i = 0; i < 3000; i++) {
                exited1 = status_int(&d, "retained_exited");
                if (exited1 - exited0 >= RETAINED)
                        break;
                usleep(10000);
        }
        bytes1 = status_int(&d, "retained_bytes");
        loadavg(load, sizeof(load));
        printf("memory: %lld exited processes (/bin/true: %s) kept in %lld bytes more: %.0f bytes each "
               "(load %s)\n",
               (long long) (exited1 - exited0), "its program, ld.so, libc", (long long) (bytes1 - bytes0),
               exited1 > exited0 ? (double) (bytes1 - bytes0) / (double) (exited1 - exited0) : 0.0, load);
        daemon_stop(&d);
}

int main(int argc, char **argv) {
        memmapd_path = getenv("MEMMAPD");
        if (!memmapd_path || geteuid() != 0) {
                fprintf(stderr, "bench-retention: needs root and MEMMAPD=path of memmapd\n");
                return 1;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        bench_memory();
        bench_exit_path(false);
        bench_exit_path(true);
        bench_first_change();
        return 0;
}
