/* Benchmark of the system-wide questions (issue 17, `make bench-find`, as root): FindMappings over a machine of 1,000 extra processes against a /proc scan, and LookupMany of 100 processes x 50 addresses against 100 Lookups. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fixture.h"
#include "mapper.h"

#define N_PROCS 1000
#define N_MAPPERS 100           /* of them, those that map the library */
#define ROUNDS 15
#define LOOKUP_PROCS 100
#define LOOKUP_ADDRS 50

static pid_t pids[N_PROCS];
static int controls[N_PROCS];

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

static double median_ms(uint64_t *v, size_t n) {
        qsort(v, n, sizeof(*v), cmp_u64);
        return v[n / 2] / 1e6;
}

/* A process that maps lib (when given) and waits for its control pipe to close. */
static int start_proc(size_t i, const char *lib) {
        struct mapper m;
        int r = mapper_start(lib, lib ? 1 : 0, (uid_t) -1, controls, i, &m);

        if (r < 0)
                return r;
        pids[i] = m.pid;
        controls[i] = m.control_fd;
        return 0;
}

/* What a client does without memmapd: every /proc/PID/maps read, lines of (dev, ino) kept. */
static size_t proc_scan(const struct stat *st) {
        _cleanup_closedir_ DIR *d = opendir("/proc");
        char want[64];
        struct dirent *de;
        size_t found = 0;

        snprintf(want, sizeof(want), " %02x:%02x %" PRIu64 " ", major(st->st_dev), minor(st->st_dev),
                 (uint64_t) st->st_ino);
        while (d && (de = readdir(d))) {
                char path[300], line[4096];
                _cleanup_fclose_ FILE *f = NULL;

                if (de->d_name[0] < '0' || de->d_name[0] > '9')
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/maps", de->d_name);
                f = fopen(path, "re");
                while (f && fgets(line, sizeof(line), f))
                        if (strstr(line, want))
                                found++;
        }
        return found;
}

/* A streamed call's parts, to the last; the number of "start" members seen (mappings). */
static size_t call_all(int fd, const char *msg) {
        size_t n = 0;
        bool more;

        if (test_send(fd, msg) < 0)
                return 0;
        do {
                _cleanup_free_ char *reply = test_recv(fd);

                if (!reply || strstr(reply, "\"error\""))
                        return 0;
                for (const char *p = reply; (p = strstr(p, "\"start\":\"")); p++)
                        n++;
                more = strstr(reply, "\"continues\":true") != NULL;
        } while (more);
        return n;
}

static void bench_find(const char *lib, const char *unmapped, const struct stat *st, double loadavg) {
        static const char *const modes[] = { "bpf", "none" };
        char msg[512], msg_none[512];

        snprintf(msg, sizeof(msg), "{\"method\":\"io.memmapd.FindMappings\",\"parameters\":{\"path\":\"%s\"},\"more\":true}",
                 lib);
        /* The pass alone: a file no process maps, so no process is read again. */
        snprintf(msg_none, sizeof(msg_none),
                 "{\"method\":\"io.memmapd.FindMappings\",\"parameters\":{\"path\":\"%s\"},\"more\":true}", unmapped);
        for (size_t m = 0; m < 2; m++) {
                char set[64];
                const char *args[] = { "--set", set, NULL };
                struct test_daemon d;
                uint64_t t[ROUNDS];
                size_t found = 0;
                int fd;

                snprintf(set, sizeof(set), "FindIterator=%s", modes[m]);
                if (test_daemon_start(args, &d) < 0) {
                        printf("FindMappings, FindIterator=%s: the daemon does not start (BPF denied?)\n", modes[m]);
                        continue;
                }
                fd = test_connect(d.socket);
                for (size_t r = 0; r < ROUNDS; r++) {
                        uint64_t t0 = now_ns();

                        found = call_all(fd, msg);
                        t[r] = now_ns() - t0;
                }
                printf("FindMappings (FindIterator=%s): %zu mappings, median %.2f ms\n", modes[m], found,
                       median_ms(t, ROUNDS));
                for (size_t r = 0; r < ROUNDS; r++) {
                        uint64_t t0 = now_ns();

                        found = call_all(fd, msg_none);
                        t[r] = now_ns() - t0;
                }
                printf("FindMappings (FindIterator=%s) of a file no process maps: %zu mappings, median %.2f ms\n",
                       modes[m], found, median_ms(t, ROUNDS));
                close(fd);
                test_daemon_stop(&d);
        }
        {
                uint64_t t[ROUNDS];
                size_t found = 0;

                for (size_t r = 0; r < ROUNDS; r++) {
                        uint64_t t0 = now_ns();

                        found = proc_scan(st);
                        t[r] = now_ns() - t0;
                }
                printf("/proc/*/maps scan in the client: %zu mappings, median %.2f ms\n", found, median_ms(t, ROUNDS));
        }
        printf("(load average at start %.2f)\n", loadavg);
}

/* Up to LOOKUP_ADDRS addresses of pid: starts of its mappings, then points inside them. */
static size_t sample_addresses(pid_t pid, uint64_t *a) {
        char path[64], line[4096];
        _cleanup_fclose_ FILE *f = NULL;
        size_t n = 0;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        f = fopen(path, "re");
        while (f && n < LOOKUP_ADDRS && fgets(line, sizeof(line), f)) {
                uint64_t s, e;

                if (sscanf(line, "%" SCNx64 "-%" SCNx64, &s, &e) == 2 && s < 0xffffffffff600000ull) {
                        a[n++] = s;
                        if (n < LOOKUP_ADDRS)
                                a[n++] = s + (e - s) / 2;
                }
        }
        return n;
}

static void bench_lookup_many(double loadavg) {
        static uint64_t addrs[LOOKUP_PROCS][LOOKUP_ADDRS];
        static size_t counts[LOOKUP_PROCS];
        _cleanup_free_ char *many = malloc(1 << 20);
        char *p;
        uint64_t t_many[ROUNDS], t_single[ROUNDS];
        struct test_daemon d;
        int fd;

        if (!many || test_daemon_start(NULL, &d) < 0)
                return;
        p = many + sprintf(many, "{\"method\":\"io.memmapd.LookupMany\",\"parameters\":{\"groups\":[");
        for (size_t i = 0; i < LOOKUP_PROCS; i++) {
                counts[i] = sample_addresses(pids[i * (N_PROCS / LOOKUP_PROCS)], addrs[i]);
                p += sprintf(p, "%s{\"pid\":%d,\"addresses\":[", i ? "," : "", pids[i * (N_PROCS / LOOKUP_PROCS)]);
                for (size_t k = 0; k < counts[i]; k++)
                        p += sprintf(p, "%s\"0x%" PRIx64 "\"", k ? "," : "", addrs[i][k]);
                p += sprintf(p, "]}");
        }
        sprintf(p, "]}}");

        fd = test_connect(d.socket);
        for (size_t r = 0; r < ROUNDS; r++) {
                uint64_t t0 = now_ns();

                free(test_call(fd, many));
                t_many[r] = now_ns() - t0;

                t0 = now_ns();
                for (size_t i = 0; i < LOOKUP_PROCS; i++) {
                        char msg[4096], *q = msg;

                        q += sprintf(q, "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"addresses\":[",
                                     pids[i * (N_PROCS / LOOKUP_PROCS)]);
                        for (size_t k = 0; k < counts[i]; k++)
                                q += sprintf(q, "%s\"0x%" PRIx64 "\"", k ? "," : "", addrs[i][k]);
                        sprintf(q, "]}}");
                        free(test_call(fd, msg));
                }
                t_single[r] = now_ns() - t0;
        }
        printf("LookupMany %d processes x %d addresses: median %.2f ms; %d Lookups: median %.2f ms\n", LOOKUP_PROCS,
               LOOKUP_ADDRS, median_ms(t_many, ROUNDS), LOOKUP_PROCS, median_ms(t_single, ROUNDS));
        printf("(load average at start %.2f)\n", loadavg);
        close(fd);
        test_daemon_stop(&d);
}

static double loadavg(void) {
        double l = 0;
        _cleanup_fclose_ FILE *f = fopen("/proc/loadavg", "re");

        if (!f || fscanf(f, "%lf", &l) != 1)
                return -1;
        return l;
}

int main(void) {
        char dir[] = "/tmp/memmapd-bench-find-XXXXXX", lib[128];
        struct stat st;
        int fd;

        if (geteuid() != 0) {
                fprintf(stderr, "bench-find: needs root (the BPF iterator, every process's maps)\n");
                return 77;
        }
        if (!mkdtemp(dir))
                return 1;
        snprintf(lib, sizeof(lib), "%s/libbench.so", dir);
        fd = open(lib, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 || ftruncate(fd, 4096) < 0 || close(fd) < 0 || stat(lib, &st) < 0)
                return 1;
        for (size_t i = 0; i < N_PROCS; i++)
                if (start_proc(i, i % (N_PROCS / N_MAPPERS) == 0 ? lib : NULL) < 0) {
                        fprintf(stderr, "bench-find: cannot start process %zu\n", i);
                        return 1;
                }
        printf("%d extra processes, %d of them map %s\n", N_PROCS, N_MAPPERS, lib);
        bench_find(lib, "/etc/hostname", &st, loadavg());
        bench_lookup_many(loadavg());

        for (size_t i = 0; i < N_PROCS; i++) {
                close(controls[i]);
                waitpid(pids[i], NULL, 0);
        }
        unlink(lib);
        rmdir(dir);
        return 0;
}
