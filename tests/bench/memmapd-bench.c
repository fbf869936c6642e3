/* The memmapd benchmark: batch lookups against the raw PROCMAP_QUERY ioctl and against parsing
 * /proc/PID/maps, listings against cat and pmap, concurrent clients, and the daemon's memory.
 * Starts its own target processes and daemons; prints a table and each target as MET or
 * MISSED, and writes results.json (and plot data, and PNGs where gnuplot is installed).
 *
 *   memmapd-bench [--out=DIR] [--sections=batch,sweep,list,conc,mem,store,watchdog,symbols] [--plot-script=FILE]
 *
 * Environment: MEMMAPD (the daemon), BENCH_TARGET (tests/bench/bench-target). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "engine.h"
#include "json-writer.h"
#include "mapping.h"
#include "maps-parse.h"
#include "libmemctl.h"
#include "procmap-ioctl.h"
#include "procmap-uapi.h"
#include "process.h"

extern char **environ;

#define N_ADDRS 4435
#define SEED 0x5eed1234u
#define LIBS_MAX 8
#define METRICS_MAX 256
#define TARGETS_MAX 32
#define NSEC_PER_USEC 1000ull
#define NSEC_PER_SEC 1000000000ull
/* Every wait for a child or a socket is bounded. */
#define STARTUP_TIMEOUT_MS 20000

static const char *opt_out = ".";
static const char *opt_sections = "batch,sweep,list,conc,mem,store,watchdog,symbols";
static const char *opt_plot_script;
static const char *memmapd_path;
static const char *target_path;

/* ------------------------------------------------------------------ time and numbers */

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * NSEC_PER_SEC + (uint64_t) ts.tv_nsec;
}

static void sleep_until_ns(uint64_t t) {
        struct timespec ts = { .tv_sec = (time_t) (t / NSEC_PER_SEC), .tv_nsec = (long) (t % NSEC_PER_SEC) };

        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}

static void sleep_ms(unsigned ms) {
        sleep_until_ns(now_ns() + ms * 1000000ull);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/* The p-quantile (0 < p <= 1) of a sorted array: the smallest value with at least p of
 * the samples at or below it. */
static uint64_t quantile(const uint64_t *sorted, size_t n, double p) {
        size_t i;

        if (n == 0)
                return 0;
        i = (size_t) (p * (double) n + 0.999999);
        if (i == 0)
                i = 1;
        if (i > n)
                i = n;
        return sorted[i - 1];
}

static uint64_t median(uint64_t *v, size_t n) {
        qsort(v, n, sizeof(*v), cmp_u64);
        return quantile(v, n, 0.5);
}

static uint32_t rng_next(uint32_t *s) {
        uint32_t x = *s;

        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return (*s = x);
}

static uint64_t rng_u64(uint32_t *s) {
        return (uint64_t) rng_next(s) << 32 | rng_next(s);
}

/* ------------------------------------------------------------------ results */

struct metric {
        char section[16];
        char name[96];
        double value;
        char unit[12];
};

struct target_check {
        char name[112];
        double measured;
        double limit;
        char unit[12];
        bool at_most;           /* measured <= limit; else measured >= limit */
        bool met;
        char note[160];
};

static struct metric metrics[METRICS_MAX];
static size_t n_metrics;
static struct target_check checks[TARGETS_MAX];
static size_t n_checks;
static bool had_error;

static void metric(const char *section, const char *unit, double value, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void metric(const char *section, const char *unit, double value, const char *fmt, ...) {
        struct metric *m;
        va_list ap;

        if (n_metrics >= METRICS_MAX)
                return;
        m = &metrics[n_metrics++];
        snprintf(m->section, sizeof(m->section), "%s", section);
        snprintf(m->unit, sizeof(m->unit), "%s", unit);
        va_start(ap, fmt);
        vsnprintf(m->name, sizeof(m->name), fmt, ap);
        va_end(ap);
        m->value = value;
}

static void check(const char *name, double measured, double limit, const char *unit, bool at_most, const char *note) {
        struct target_check *c;

        if (n_checks >= TARGETS_MAX)
                return;
        c = &checks[n_checks++];
        snprintf(c->name, sizeof(c->name), "%s", name);
        snprintf(c->unit, sizeof(c->unit), "%s", unit);
        snprintf(c->note, sizeof(c->note), "%s", note ? note : "");
        c->measured = measured;
        c->limit = limit;
        c->at_most = at_most;
        c->met = at_most ? measured <= limit : measured >= limit;
}

static void fail(const char *what, int r) {
        fprintf(stderr, "memmapd-bench: %s: %s\n", what, strerror(r < 0 ? -r : r));
        had_error = true;
}

static bool section_enabled(const char *name) {
        size_t l = strlen(name);

        for (const char *p = opt_sections; (p = strstr(p, name)); p += l)
                if ((p == opt_sections || p[-1] == ',') && (p[l] == ',' || p[l] == 0))
                        return true;
        return false;
}

/* ------------------------------------------------------------------ child processes */

struct target {
        const char *label;
        pid_t pid;
        int stdin_fd;
        long vmas;
        struct mapping_list maps;       /* as parsed when it was ready, for picking addresses */
};

/* Reads lines from fd until "ready" (or EOF/timeout), remembering vmas=. */
static int read_until_ready(int fd, long *ret_vmas) {
        char buf[4096];
        size_t len = 0;
        uint64_t deadline = now_ns() + STARTUP_TIMEOUT_MS * 1000000ull;

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                char *nl;
                ssize_t n;

                while ((nl = memchr(buf, '\n', len))) {
                        *nl = 0;
                        if (strncmp(buf, "vmas=", 5) == 0)
                                *ret_vmas = strtol(buf + 5, NULL, 10);
                        if (strcmp(buf, "ready") == 0)
                                return 0;
                        len -= (size_t) (nl + 1 - buf);
                        memmove(buf, nl + 1, len);
                }
                if (len == sizeof(buf))
                        return -EPROTO;
                if (now_ns() >= deadline)
                        return -ETIMEDOUT;
                if (poll(&p, 1, 1000) < 0 && errno != EINTR)
                        return -errno;
                n = read(fd, buf + len, sizeof(buf) - len);
                if (n == 0)
                        return -EPIPE;
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return -errno;
                }
                len += (size_t) n;
        }
}

static int target_start(const char *label, long total, long files, char **libs, size_t n_libs, struct target *ret) {
        posix_spawn_file_actions_t fa;
        char total_s[32], files_s[32];
        char *argv[4 + LIBS_MAX] = { (char *) target_path, total_s, files_s };
        int in[2], out[2], r;
        struct target t = { .label = label, .stdin_fd = -1 };

        snprintf(total_s, sizeof(total_s), "%ld", total);
        snprintf(files_s, sizeof(files_s), "%ld", files);
        for (size_t i = 0; i < n_libs && i < LIBS_MAX; i++)
                argv[3 + i] = libs[i];

        if (pipe2(in, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(out, O_CLOEXEC) < 0) {
                close(in[0]);
                close(in[1]);
                return -errno;
        }
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        r = posix_spawn(&t.pid, target_path, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(in[0]);
        close(out[1]);
        if (r != 0) {
                close(in[1]);
                close(out[0]);
                return -r;
        }
        t.stdin_fd = in[1];
        r = read_until_ready(out[0], &t.vmas);
        close(out[0]);
        if (r < 0) {
                close(t.stdin_fd);
                kill(t.pid, SIGKILL);
                waitpid(t.pid, NULL, 0);
                return r;
        }
        *ret = t;
        return 0;
}

static void target_stop(struct target *t) {
        if (t->pid <= 0)
                return;
        close(t->stdin_fd);
        waitpid(t->pid, NULL, 0);
        mapping_list_done(&t->maps);
        t->pid = 0;
}

struct daemon {
        pid_t pid;
        char dir[64];
        char socket[128];
};

static int try_connect(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

        if (fd < 0)
                return -errno;
        if (strlen(path) >= sizeof(sa.sun_path)) {
                close(fd);
                return -ENAMETOOLONG;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        r = connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ? -errno : 0;
        close(fd);
        return r;
}

/* Starts memmapd on a private socket with an empty configuration file and the extra
 * arguments, logging to OUT/memmapd.log, and waits until it accepts connections. */
static int daemon_start(const char *const *extra, struct daemon *ret) {
        posix_spawn_file_actions_t fa;
        struct daemon d = {};
        char conf[96], sock_arg[160], conf_arg[128], log_path[4096];
        const char *argv[24];
        size_t n = 0;
        int fd, r;

        snprintf(d.dir, sizeof(d.dir), "/tmp/memmapd-bench-XXXXXX");
        if (!mkdtemp(d.dir))
                return -errno;
        snprintf(d.socket, sizeof(d.socket), "%s/io.memmapd", d.dir);
        snprintf(conf, sizeof(conf), "%s/empty.conf", d.dir);
        fd = open(conf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        close(fd);
        snprintf(sock_arg, sizeof(sock_arg), "--socket=%s", d.socket);
        snprintf(conf_arg, sizeof(conf_arg), "--config=%s", conf);
        argv[n++] = memmapd_path;
        argv[n++] = sock_arg;
        argv[n++] = conf_arg;
        for (size_t i = 0; extra && extra[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;

        snprintf(log_path, sizeof(log_path), "%s/memmapd.log", opt_out);
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        r = posix_spawn(&d.pid, memmapd_path, &fa, NULL, (char *const *) argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -r;

        for (unsigned i = 0; i < STARTUP_TIMEOUT_MS / 5; i++) {
                int status;

                if (try_connect(d.socket) >= 0) {
                        *ret = d;
                        return 0;
                }
                if (waitpid(d.pid, &status, WNOHANG) == d.pid)
                        return -ECHILD;
                sleep_ms(5);
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
        d->pid = 0;
        snprintf(path, sizeof(path), "%s/empty.conf", d->dir);
        unlink(path);
        unlink(d->socket);
        rmdir(d->dir);
}

/* ------------------------------------------------------------------ watchdog */

#define WATCHDOG_BENCH_USEC 200000

/* The service manager kills a service whose WATCHDOG=1 pings are WATCHDOG_USEC apart: on an
 * idle machine the longest gap must stay well below it. (tests/integration/test-systemd only checks
 * the interval the daemon pings at, which load cannot make look shorter.) */
static void bench_watchdog(void) {
        char dir[] = "/tmp/memmapd-bench-wd-XXXXXX", path[96], msg[256];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        uint64_t t0, last = 0, max_gap = 0;
        unsigned pings = 0;
        struct daemon d;
        int fd, one = 1, r;

        if (!mkdtemp(dir)) {
                fail("watchdog: mkdtemp", -errno);
                return;
        }
        snprintf(path, sizeof(path), "%s/notify", dir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
                fail("watchdog: notify socket", -errno);
                if (fd >= 0)
                        close(fd);
                rmdir(dir);
                return;
        }
        setenv("NOTIFY_SOCKET", path, 1);
        setenv("WATCHDOG_USEC", "200000", 1);
        unsetenv("WATCHDOG_PID");
        r = daemon_start(NULL, &d);
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
        if (r < 0) {
                fail("watchdog: starting memmapd", r);
                close(fd);
                unlink(path);
                rmdir(dir);
                return;
        }
        t0 = now_ns();
        while (now_ns() - t0 < 2000000000ull) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t n;

                if (poll(&p, 1, 100) != 1)
                        continue;
                n = recv(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT);
                if (n <= 0)
                        continue;
                msg[n] = 0;
                if (strstr(msg, "WATCHDOG=1")) {
                        uint64_t now = now_ns();

                        if (pings++ > 0 && now - last > max_gap)
                                max_gap = now - last;
                        last = now;
                }
        }
        daemon_stop(&d);
        close(fd);
        unlink(path);
        rmdir(dir);
        printf("watchdog: %u pings in 2 s with WATCHDOG_USEC=%d, longest gap %.1f ms\n", pings, WATCHDOG_BENCH_USEC,
               max_gap / 1e6);
        metric("watchdog", "ms", max_gap / 1e6, "longest gap between WATCHDOG=1 pings, WATCHDOG_USEC=200000");
        check("watchdog: longest gap between pings (WATCHDOG_USEC 200 ms)", max_gap / 1e6, WATCHDOG_BENCH_USEC / 1e3,
              "ms", true, "the service manager kills the service at 200 ms");
}

/* VmRSS / VmHWM of a process, in KiB. */
static long status_kib(pid_t pid, const char *field) {
        char path[64], line[256];
        size_t l = strlen(field);
        long v = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, field, l) == 0 && line[l] == ':') {
                        v = strtol(line + l + 1, NULL, 10);
                        break;
                }
        fclose(f);
        return v;
}

/* Runs argv with stdout and stderr on /dev/null; the wall time in ns, or 0 on failure. */
static uint64_t time_command(char *const *argv) {
        posix_spawn_file_actions_t fa;
        uint64_t t0 = now_ns(), t1;
        int status, r;
        pid_t pid;

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return 0;
        if (waitpid(pid, &status, 0) < 0)
                return 0;
        t1 = now_ns();
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? t1 - t0 : 0;
}

/* ------------------------------------------------------------------ the ways to look up */

/* (a) the floor: one PROCMAP_QUERY per address, name included, from this process. */
static int lookup_raw_ioctl(pid_t pid, const uint64_t *addrs, size_t n, bool build_ids, size_t *ret_found) {
        static char name[4224];
        uint8_t build_id[64];
        char path[64];
        size_t found = 0;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (size_t i = 0; i < n; i++) {
                struct procmap_query q = {
                        .size = sizeof(q),
                        .query_addr = addrs[i],
                        .vma_name_addr = (uintptr_t) name,
                        .vma_name_size = sizeof(name),
                };

                if (build_ids) {
                        q.build_id_addr = (uintptr_t) build_id;
                        q.build_id_size = sizeof(build_id);
                }
                if (ioctl(fd, PROCMAP_QUERY, &q) >= 0)
                        found++;
                else if (errno != ENOENT) {
                        int r = -errno;

                        close(fd);
                        return r;
                }
        }
        close(fd);
        *ret_found = found;
        return 0;
}

/* (b) what profilers do without the ioctl: read /proc/PID/maps with stdio, sscanf every
 * line into an array (names copied), then a binary search per address. */
struct text_vma {
        uint64_t start, end, offset, inode;
        unsigned dev_major, dev_minor;
        char perms[5];
        char *name;
};

static ssize_t text_find(const struct text_vma *v, size_t n, uint64_t a) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (a < v[mid].start)
                        hi = mid;
                else if (a >= v[mid].end)
                        lo = mid + 1;
                else
                        return (ssize_t) mid;
        }
        return -1;
}

static int lookup_sscanf(pid_t pid, const uint64_t *addrs, size_t n, size_t *ret_found) {
        _cleanup_free_ char *line = NULL;
        struct text_vma *v = NULL;
        size_t cap = 0, nv = 0, alloc = 0, found = 0;
        char path[64];
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (getline(&line, &cap, f) > 0) {
                struct text_vma t = {};
                int pos = 0;
                char *name;

                if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64 " %n", &t.start, &t.end,
                           t.perms, &t.offset, &t.dev_major, &t.dev_minor, &t.inode, &pos) < 7)
                        continue;
                name = line + pos;
                name[strcspn(name, "\n")] = 0;
                if (*name && !(t.name = strdup(name)))
                        break;
                if (nv == alloc) {
                        struct text_vma *nvp;

                        alloc = alloc ? alloc * 2 : 256;
                        nvp = realloc(v, alloc * sizeof(*v));
                        if (!nvp) {
                                free(t.name);
                                break;
                        }
                        v = nvp;
                }
                v[nv++] = t;
        }
        fclose(f);
        for (size_t i = 0; i < n; i++)
                if (text_find(v, nv, addrs[i]) >= 0)
                        found++;
        for (size_t i = 0; i < nv; i++)
                free(v[i].name);
        free(v);
        *ret_found = found;
        return 0;
}

/* (b') our own parser of the text, for reference. */
static int lookup_maps_read_fd(pid_t pid, const uint64_t *addrs, size_t n, size_t *ret_found) {
        _cleanup_(mapping_list_done) struct mapping_list l = {};
        size_t found = 0;
        char path[64];
        int fd, r;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = maps_read_fd(fd, &l);
        close(fd);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (mapping_list_find(&l, addrs[i]) >= 0)
                        found++;
        *ret_found = found;
        return 0;
}

/* (c) memmapd through libmemctl: one Lookup, every result and mapping read back. */
static int lookup_memctl(memctl *c, pid_t pid, const uint64_t *addrs, size_t n, uint64_t flags, size_t *ret_found) {
        memctl_lookup_reply *reply = NULL;
        size_t found = 0;
        int r;

        r = memctl_lookup(c, pid, 0, addrs, n, flags, &reply);
        if (r < 0)
                return r;
        for (size_t i = 0; i < memctl_lookup_reply_count(reply); i++) {
                struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;
                struct memctl_mapping m = MEMCTL_MAPPING_INIT;

                r = memctl_lookup_reply_get(reply, i, &res);
                if (r >= 0 && res.mapping != MEMCTL_NO_MAPPING)
                        r = memctl_lookup_reply_get_mapping(reply, res.mapping, &m);
                if (r < 0)
                        break;
                if (res.mapping != MEMCTL_NO_MAPPING)
                        found++;
        }
        memctl_lookup_reply_free(reply);
        if (r < 0)
                return r;
        *ret_found = found;
        return 0;
}

enum way { WAY_RAW, WAY_RAW_BID, WAY_SSCANF, WAY_MAPS_READ_FD, WAY_MEMCTL, WAY_MEMCTL_BID, WAY_MEMCTL_SYM };

/* One timed run; the elapsed ns, or 0 after reporting an error. */
static uint64_t timed_lookup(enum way w, memctl *c, const struct target *t, const uint64_t *addrs, size_t n) {
        size_t found = 0;
        uint64_t t0 = now_ns(), t1;
        int r;

        switch (w) {
        case WAY_RAW:
        case WAY_RAW_BID:
                r = lookup_raw_ioctl(t->pid, addrs, n, w == WAY_RAW_BID, &found);
                break;
        case WAY_SSCANF:
                r = lookup_sscanf(t->pid, addrs, n, &found);
                break;
        case WAY_MAPS_READ_FD:
                r = lookup_maps_read_fd(t->pid, addrs, n, &found);
                break;
        default:
                r = lookup_memctl(c, t->pid, addrs, n,
                                  w == WAY_MEMCTL_BID ? MEMCTL_BUILD_IDS : w == WAY_MEMCTL_SYM ? MEMCTL_SYMBOLS : 0,
                                  &found);
                break;
        }
        t1 = now_ns();
        if (r < 0) {
                fail("lookup", r);
                return 0;
        }
        if (found != n) {
                fprintf(stderr, "memmapd-bench: way %d found %zu of %zu addresses in %s\n", (int) w, found, n,
                        t->label);
                had_error = true;
        }
        return t1 - t0;
}

#define REPS_MAX 64

/* Runs the ways round-robin, reps rounds after one untimed warm-up round, so that whatever
 * else the machine does falls on all of them alike; the median and the minimum of each. */
static void measure_ways(const enum way *ways, size_t n_ways, memctl *c, const struct target *t,
                         const uint64_t *addrs, size_t n, unsigned reps, uint64_t *ret_median, uint64_t *ret_min) {
        uint64_t v[8][REPS_MAX];

        reps = MIN(reps, (unsigned) REPS_MAX);
        n_ways = MIN(n_ways, (size_t) 8);
        for (size_t w = 0; w < n_ways; w++)
                (void) timed_lookup(ways[w], c, t, addrs, n);
        for (unsigned i = 0; i < reps; i++)
                for (size_t w = 0; w < n_ways; w++)
                        v[w][i] = timed_lookup(ways[w], c, t, addrs, n);
        for (size_t w = 0; w < n_ways; w++) {
                ret_median[w] = median(v[w], reps);
                if (ret_min)
                        ret_min[w] = v[w][0];
        }
}

/* Random mapped addresses: a VMA chosen uniformly, then a byte in it. */
static void pick_addresses(const struct target *t, uint64_t *addrs, size_t n) {
        uint32_t s = SEED ^ (uint32_t) t->maps.n;
        size_t usable = t->maps.n;

        /* The gate area is last where present, and is no VMA. */
        if (usable > 0 && t->maps.items[usable - 1].kind == MAPPING_KIND_VSYSCALL)
                usable--;
        for (size_t i = 0; i < n; i++) {
                const struct mapping *m = &t->maps.items[rng_next(&s) % usable];

                addrs[i] = m->start + rng_u64(&s) % (m->end - m->start);
        }
}

static int read_target_maps(struct target *t) {
        char path[64];
        int fd, r;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) t->pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = maps_read_fd(fd, &t->maps);
        close(fd);
        return r;
}

/* ------------------------------------------------------------------ 1. batch lookups */

static double per_addr_us(uint64_t ns, size_t n) {
        return (double) ns / 1000.0 / (double) n;
}

/* The first Lookup of a fresh daemon: the median over 3 daemons. */
static uint64_t cold_lookup(const struct target *t, const uint64_t *addrs, size_t n, bool build_ids) {
        uint64_t v[3];

        for (unsigned i = 0; i < ELEMENTSOF(v); i++) {
                struct daemon d;
                memctl *c = NULL;
                int r;

                v[i] = 0;
                r = daemon_start(NULL, &d);
                if (r < 0) {
                        fail("starting memmapd", r);
                        return 0;
                }
                r = memctl_connect(d.socket, &c);
                if (r < 0)
                        fail("connecting", r);
                else
                        v[i] = timed_lookup(build_ids ? WAY_MEMCTL_BID : WAY_MEMCTL, c, t, addrs, n);
                memctl_free(c);
                daemon_stop(&d);
        }
        return median(v, ELEMENTSOF(v));
}

static void bench_batch(struct target *t, const char *daemon_socket) {
        uint64_t *addrs = calloc(N_ADDRS, sizeof(uint64_t));
        static const enum way ways[] = { WAY_RAW, WAY_RAW_BID, WAY_SSCANF, WAY_MAPS_READ_FD, WAY_MEMCTL,
                                         WAY_MEMCTL_BID };
        uint64_t med[ELEMENTSOF(ways)], min[ELEMENTSOF(ways)];
        uint64_t raw, raw_bid, text, ours, cold, cold_bid, warm, warm_bid;
        unsigned reps = t->vmas > 5000 ? 15 : 31;
        memctl *c = NULL;
        char name[112], note[160];
        int r;

        if (!addrs)
                return fail("calloc", -ENOMEM);
        pick_addresses(t, addrs, N_ADDRS);

        r = memctl_connect(daemon_socket, &c);
        if (r < 0) {
                free(addrs);
                return fail("connecting", r);
        }
        measure_ways(ways, ELEMENTSOF(ways), c, t, addrs, N_ADDRS, reps, med, min);
        raw = med[0];
        raw_bid = med[1];
        text = med[2];
        ours = med[3];
        warm = med[4];
        warm_bid = med[5];
        cold = cold_lookup(t, addrs, N_ADDRS, false);
        cold_bid = cold_lookup(t, addrs, N_ADDRS, true);
        memctl_free(c);

        printf("\n1. Batch lookup: %d random addresses, %s (%ld VMAs); per address, median of %u interleaved "
               "runs (and the fastest)\n", N_ADDRS, t->label, t->vmas, reps);
        printf("   %-52s %10s %10s %10s\n", "", "us/addr", "ms/batch", "min us/a");
#define ROW(what, ns, mn)                                                                                   \
        do {                                                                                                \
                printf("   %-52s %10.3f %10.3f %10.3f\n", what, per_addr_us(ns, N_ADDRS), (double) (ns) / 1e6, \
                       per_addr_us(mn, N_ADDRS));                                                           \
                metric("batch", "us/addr", per_addr_us(ns, N_ADDRS), "%s: %s", t->label, what);             \
                metric("batch", "us/addr", per_addr_us(mn, N_ADDRS), "%s: %s, fastest run", t->label, what);\
        } while (0)
        ROW("(a) raw PROCMAP_QUERY, one per address", raw, min[0]);
        ROW("(a) raw PROCMAP_QUERY + build ID", raw_bid, min[1]);
        ROW("(b) read /proc/PID/maps, sscanf, bsearch", text, min[2]);
        ROW("(b') read /proc/PID/maps with maps_read_fd, bsearch", ours, min[3]);
        ROW("(c) memmapd Lookup cold (median of 3 daemons)", cold, cold);
        ROW("(c) memmapd Lookup cold, build IDs", cold_bid, cold_bid);
        ROW("(c) memmapd Lookup warm", warm, min[4]);
        ROW("(c) memmapd Lookup warm, build IDs", warm_bid, min[5]);
#undef ROW
        printf("   ratios of medians: c/a %.2f (build IDs %.2f), b/c %.1f, b'/c %.1f\n", (double) warm / (double) raw,
               (double) warm_bid / (double) raw_bid, (double) text / (double) warm, (double) ours / (double) warm);
        printf("   ratios of fastest: c/a %.2f (build IDs %.2f), b/c %.1f, b'/c %.1f\n", (double) min[4] / (double) min[0],
               (double) min[5] / (double) min[1], (double) min[2] / (double) min[4], (double) min[3] / (double) min[4]);
        metric("batch", "ratio", (double) warm / (double) raw, "%s: c/a", t->label);
        metric("batch", "ratio", (double) warm_bid / (double) raw_bid, "%s: c/a build IDs", t->label);
        metric("batch", "ratio", (double) text / (double) warm, "%s: b/c", t->label);
        metric("batch", "ratio", (double) min[4] / (double) min[0], "%s: c/a, fastest runs", t->label);
        metric("batch", "ratio", (double) min[5] / (double) min[1], "%s: c/a build IDs, fastest runs", t->label);
        metric("batch", "ratio", (double) min[2] / (double) min[4], "%s: b/c, fastest runs", t->label);

        /* Judged on the fastest of the interleaved runs: other work on a shared machine only
         * ever adds time, and the medians are printed beside them. */
        snprintf(name, sizeof(name), "warm Lookup per address <= 2x raw ioctl, %ld VMAs", t->vmas);
        snprintf(note, sizeof(note), "fastest runs; medians: %.2fx", (double) warm / (double) raw);
        check(name, (double) min[4] / (double) min[0], 2.0, "x", true, note);
        snprintf(name, sizeof(name), "warm Lookup per address <= 2x raw ioctl, %ld VMAs, build IDs", t->vmas);
        snprintf(note, sizeof(note), "fastest runs; medians: %.2fx", (double) warm_bid / (double) raw_bid);
        check(name, (double) min[5] / (double) min[1], 2.0, "x", true, note);
        if (t->vmas >= 20000) {
                snprintf(name, sizeof(name), "Lookup >= 20x faster than parsing maps, %d addrs, %ld VMAs", N_ADDRS,
                         t->vmas);
                /* No way through PROCMAP_QUERY beats (b) by more than (b) / (a). */
                snprintf(note, sizeof(note), "(b) sscanf / (c) warm, fastest; medians %.1fx; the raw ioctl is %.1fx",
                         (double) text / (double) warm, (double) min[2] / (double) min[0]);
                check(name, (double) min[2] / (double) min[4], 20.0, "x", false, note);
        }
        free(addrs);
}

/* Per-address cost against batch size (700-VMA target): plot data. */
static void bench_sweep(struct target *t, const char *daemon_socket) {
        static const size_t sizes[] = { 1, 10, 100, 1000, N_ADDRS };
        uint64_t *addrs = calloc(N_ADDRS, sizeof(uint64_t));
        char path[4096];
        memctl *c = NULL;
        FILE *f;
        int r;

        if (!addrs)
                return fail("calloc", -ENOMEM);
        pick_addresses(t, addrs, N_ADDRS);
        r = memctl_connect(daemon_socket, &c);
        if (r < 0) {
                free(addrs);
                return fail("connecting", r);
        }
        snprintf(path, sizeof(path), "%s/batch-cost.dat", opt_out);
        f = fopen(path, "we");
        if (!f) {
                memctl_free(c);
                free(addrs);
                return fail(path, -errno);
        }
        fprintf(f, "# batch raw_ioctl_us sscanf_us memmapd_warm_us memmapd_warm_build_ids_us (per address, %s)\n",
                t->label);
        printf("\n   Per-address cost against batch size, %s (us/addr):\n", t->label);
        printf("   %8s %12s %12s %12s %12s\n", "batch", "(a) raw", "(b) sscanf", "(c) warm", "(c) +bid");
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                size_t n = sizes[i];
                static const enum way ways[] = { WAY_RAW, WAY_SSCANF, WAY_MEMCTL, WAY_MEMCTL_BID };
                unsigned reps = n < 100 ? 41 : 15;
                uint64_t med[ELEMENTSOF(ways)];
                double a, b, cw, cb;

                measure_ways(ways, ELEMENTSOF(ways), c, t, addrs, n, reps, med, NULL);
                a = per_addr_us(med[0], n);
                b = per_addr_us(med[1], n);
                cw = per_addr_us(med[2], n);
                cb = per_addr_us(med[3], n);

                printf("   %8zu %12.3f %12.3f %12.3f %12.3f\n", n, a, b, cw, cb);
                fprintf(f, "%zu %.4f %.4f %.4f %.4f\n", n, a, b, cw, cb);
                metric("sweep", "us/addr", cw, "%s: memmapd warm, batch %zu", t->label, n);
                metric("sweep", "us/addr", a, "%s: raw ioctl, batch %zu", t->label, n);
        }
        fclose(f);
        memctl_free(c);
        free(addrs);
}

/* ------------------------------------------------------------------ 2. listings */

static uint64_t timed_list(memctl *c, pid_t pid, uint64_t flags, size_t *ret_n) {
        memctl_mappings *m = NULL;
        uint64_t t0 = now_ns(), t1;
        size_t n;
        int r;

        r = memctl_list_mappings(c, pid, 0, flags, &m);
        if (r < 0) {
                fail("ListMappings", r);
                return 0;
        }
        n = memctl_mappings_count(m);
        for (size_t i = 0; i < n; i++) {
                struct memctl_mapping mm = MEMCTL_MAPPING_INIT;

                if (memctl_mappings_get(m, i, &mm) < 0)
                        break;
        }
        memctl_mappings_free(m);
        t1 = now_ns();
        *ret_n = n;
        return t1 - t0;
}

static uint64_t timed_read_eof(pid_t pid) {
        static char buf[128 * 1024];
        char path[64];
        uint64_t t0 = now_ns();
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                ;
        close(fd);
        return now_ns() - t0;
}

/* The engine's two backends listing the whole process, in this process. */
static uint64_t timed_engine_list(enum engine_backend b, pid_t pid) {
        _cleanup_(layout_unrefp) struct layout *l = NULL;
        struct engine_config cfg = { .backend = b };
        struct engine *e = NULL;
        struct process *p = NULL;
        uint64_t t0, t1;
        int r;

        r = engine_new(&cfg, &e);
        if (r < 0)
                return fail("engine_new", r), 0;
        r = process_open(pid, &p);
        if (r < 0) {
                engine_free(e);
                return fail("process_open", r), 0;
        }
        t0 = now_ns();
        /* The engine's whole listing is a layout: engine_list() copies it out. */
        r = engine_read_layout(e, p, 0, &l);
        t1 = now_ns();
        process_free(p);
        engine_free(e);
        if (r < 0)
                return fail("engine_read_layout", r), 0;
        return t1 - t0;
}

static void bench_list(struct target *const *ts, size_t n_ts, const char *daemon_socket, const char *maps_socket) {
        memctl *c = NULL, *cm = NULL;
        int r;

        r = memctl_connect(daemon_socket, &c);
        if (r >= 0)
                r = memctl_connect(maps_socket, &cm);
        if (r < 0) {
                memctl_free(c);
                return fail("connecting", r);
        }
        printf("\n2. Listing all mappings (medians, ms)\n");
        printf("   %-12s %10s %10s %10s %10s %10s %10s %10s %10s\n", "target", "memmapd", "memmapd-m", "read EOF",
               "cat", "pmap -x", "eng ioctl", "eng maps", "ratio/cat");
        for (size_t k = 0; k < n_ts; k++) {
                const struct target *t = ts[k];
                char pid_s[16], path[64], name[112];
                char *cat_argv[] = { (char *) "cat", path, NULL };
                char *pmap_argv[] = { (char *) "pmap", (char *) "-x", pid_s, NULL };
                uint64_t vl[7], vm[7], vr[7], vc[7], vp[5], vi[5], vx[5];
                uint64_t list, list_m, rd, cat, pmap, eio, emaps;
                size_t n = 0;

                snprintf(pid_s, sizeof(pid_s), "%d", (int) t->pid);
                snprintf(path, sizeof(path), "/proc/%d/maps", (int) t->pid);
                (void) timed_list(c, t->pid, 0, &n);
                (void) timed_list(cm, t->pid, 0, &n);
                for (unsigned i = 0; i < 7; i++) {
                        vl[i] = timed_list(c, t->pid, 0, &n);
                        vm[i] = timed_list(cm, t->pid, 0, &n);
                        vr[i] = timed_read_eof(t->pid);
                        vc[i] = time_command(cat_argv);
                }
                for (unsigned i = 0; i < 5; i++) {
                        vp[i] = time_command(pmap_argv);
                        vi[i] = timed_engine_list(ENGINE_BACKEND_IOCTL, t->pid);
                        vx[i] = timed_engine_list(ENGINE_BACKEND_MAPS, t->pid);
                }
                list = median(vl, 7);
                list_m = median(vm, 7);
                rd = median(vr, 7);
                cat = median(vc, 7);
                /* median() sorted them: [0] is the fastest. */
                metric("list", "ms", vl[0] / 1e6, "%s: memmapd ListMappings, fastest", t->label);
                metric("list", "ms", vc[0] / 1e6, "%s: cat /proc/PID/maps, fastest", t->label);
                pmap = median(vp, 5);
                eio = median(vi, 5);
                emaps = median(vx, 5);
                printf("   %-12s %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f\n", t->label, list / 1e6,
                       list_m / 1e6, rd / 1e6, cat / 1e6, pmap ? pmap / 1e6 : -1.0, eio / 1e6, emaps / 1e6,
                       (double) list / (double) cat);
                metric("list", "ms", list / 1e6, "%s: memmapd ListMappings (%zu mappings)", t->label, n);
                metric("list", "ms", list_m / 1e6, "%s: memmapd ListMappings, --backend=maps", t->label);
                metric("list", "ms", rd / 1e6, "%s: read /proc/PID/maps to EOF in-process", t->label);
                metric("list", "ms", cat / 1e6, "%s: cat /proc/PID/maps", t->label);
                metric("list", "ms", pmap / 1e6, "%s: pmap -x PID", t->label);
                metric("list", "ms", eio / 1e6, "%s: engine_read_layout, ioctl backend, in-process", t->label);
                metric("list", "ms", emaps / 1e6, "%s: engine_read_layout, maps backend, in-process", t->label);
                snprintf(name, sizeof(name), "ListMappings <= 2x cat, %ld VMAs", t->vmas);
                {
                        char note[160];

                        snprintf(note, sizeof(note), "fastest runs; medians %.2fx; vs reading the file in-process %.2fx",
                                 (double) list / (double) cat, (double) vl[0] / (double) vr[0]);
                        check(name, (double) vl[0] / (double) vc[0], 2.0, "x", true, note);
                }
        }
        printf("   memmapd-m: the daemon with --backend=maps; eng: engine_read_layout() in this process\n");
        memctl_free(c);
        memctl_free(cm);
}

/* ------------------------------------------------------------------ 3. concurrency */

struct client {
        pthread_t thread;
        const char *socket;
        const struct target *target;
        const uint64_t *addrs;
        size_t n_addrs;
        bool list;                      /* ListMappings in a loop instead of lookups */
        uint64_t start, end;            /* CLOCK_MONOTONIC ns */
        uint64_t interval;              /* 0: closed loop; else paced, measured from the schedule */
        uint64_t phase;
        uint64_t *lat;          /* from when the call was due (paced) or sent */
        uint64_t *svc;          /* from when it was sent */
        size_t cap, n;
        uint64_t calls;
        uint32_t seed;
        int error;
        pthread_barrier_t *ready;
};

static void *client_main(void *userdata) {
        struct client *cl = userdata;
        memctl *c = NULL;
        uint64_t next;
        int r;

        r = memctl_connect(cl->socket, &c);
        if (r >= 0) {
                memctl_lookup_reply *reply = NULL;

                /* One call before the clock starts: the connection is accepted and warm. */
                r = memctl_lookup(c, cl->target->pid, 0, cl->addrs, 1, 0, &reply);
                memctl_lookup_reply_free(reply);
        }
        pthread_barrier_wait(cl->ready);
        if (r < 0) {
                cl->error = r;
                memctl_free(c);
                return NULL;
        }
        /* The default 50 us of timer slack would make every paced client wake late, and that
         * lateness counts as latency below: it is the client's, not memmapd's. */
        if (cl->interval)
                (void) prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
        next = cl->start + cl->phase;
        if (cl->interval || cl->phase)
                sleep_until_ns(next);
        else
                sleep_until_ns(cl->start);
        for (;;) {
                uint64_t t0 = now_ns(), t1, from;

                if (t0 >= cl->end)
                        break;
                if (cl->list) {
                        memctl_mappings *m = NULL;

                        r = memctl_list_mappings(c, cl->target->pid, 0, 0, &m);
                        memctl_mappings_free(m);
                } else {
                        memctl_lookup_reply *reply = NULL;
                        uint64_t a = cl->addrs[rng_next(&cl->seed) % cl->n_addrs];

                        r = memctl_lookup(c, cl->target->pid, 0, &a, 1, 0, &reply);
                        memctl_lookup_reply_free(reply);
                }
                t1 = now_ns();
                if (r < 0) {
                        cl->error = r;
                        break;
                }
                cl->calls++;
                /* Paced: latency counts from when the call was due, so a stall that delays
                 * later calls is charged to them too. */
                from = cl->interval ? MIN(next, t0) : t0;
                if (cl->n < cl->cap) {
                        cl->svc[cl->n] = t1 - t0;
                        cl->lat[cl->n++] = t1 - from;
                }
                if (cl->interval) {
                        next += cl->interval;
                        sleep_until_ns(next);
                }
        }
        memctl_free(c);
        return NULL;
}

struct conc_result {
        double throughput;
        uint64_t p50, p99, p999, max;
        uint64_t svc_p50, svc_p99, svc_p999;    /* from the send */
        size_t samples;
};

/* n_lookup clients of single-address lookups (closed loop when rate == 0, else paced at
 * rate lookups/s in all), plus a ListMappings loop on list_target when given. */
static int run_clients(const char *socket, const struct target *t, const uint64_t *addrs, size_t n_addrs,
                       unsigned n_lookup, double rate, const struct target *list_target, double seconds,
                       struct conc_result *ret) {
        unsigned n = n_lookup + (list_target ? 1 : 0);
        struct client *cls = calloc(n, sizeof(*cls));
        size_t cap = (size_t) (600000.0 * seconds) / n_lookup + 1000, total = 0, k = 0;
        uint64_t *all = NULL, *svc = NULL, calls = 0, start;
        pthread_barrier_t ready;
        int r = 0;

        if (!cls)
                return -ENOMEM;
        pthread_barrier_init(&ready, NULL, n + 1);
        for (unsigned i = 0; i < n; i++) {
                struct client *cl = &cls[i];

                cl->socket = socket;
                cl->target = i < n_lookup ? t : list_target;
                cl->list = i >= n_lookup;
                cl->addrs = addrs;
                cl->n_addrs = n_addrs;
                cl->seed = SEED + i * 7919u;
                cl->ready = &ready;
                cl->cap = cl->list ? 10000 : cap;
                cl->lat = malloc(cl->cap * sizeof(uint64_t));
                cl->svc = malloc(cl->cap * sizeof(uint64_t));
                if (!cl->lat || !cl->svc) {
                        r = -ENOMEM;
                        n = i;
                        goto finish;
                }
                if (rate > 0 && !cl->list) {
                        cl->interval = (uint64_t) ((double) NSEC_PER_SEC * n_lookup / rate);
                        cl->phase = cl->interval * i / n_lookup;
                }
        }
        for (unsigned i = 0; i < n; i++)
                if ((r = -pthread_create(&cls[i].thread, NULL, client_main, &cls[i])) < 0) {
                        fail("pthread_create", r);
                        abort(); /* the barrier would never open */
                }
        /* Everyone connected: start together 50 ms from now. */
        start = now_ns() + 50 * 1000000ull;
        for (unsigned i = 0; i < n; i++) {
                cls[i].start = start;
                cls[i].end = start + (uint64_t) (seconds * (double) NSEC_PER_SEC);
        }
        pthread_barrier_wait(&ready);
        for (unsigned i = 0; i < n; i++)
                pthread_join(cls[i].thread, NULL);

        for (unsigned i = 0; i < n_lookup; i++)
                total += cls[i].n;
        all = malloc(MAX(total, (size_t) 1) * sizeof(uint64_t));
        svc = malloc(MAX(total, (size_t) 1) * sizeof(uint64_t));
        if (!all || !svc) {
                r = -ENOMEM;
                goto finish;
        }
        for (unsigned i = 0; i < n; i++) {
                if (cls[i].error < 0)
                        r = cls[i].error;
                if (cls[i].list)
                        continue;
                memcpy(all + k, cls[i].lat, cls[i].n * sizeof(uint64_t));
                memcpy(svc + k, cls[i].svc, cls[i].n * sizeof(uint64_t));
                k += cls[i].n;
                calls += cls[i].calls;
        }
        qsort(all, total, sizeof(uint64_t), cmp_u64);
        qsort(svc, total, sizeof(uint64_t), cmp_u64);
        *ret = (struct conc_result) {
                .throughput = (double) calls / seconds,
                .p50 = quantile(all, total, 0.50),
                .p99 = quantile(all, total, 0.99),
                .p999 = quantile(all, total, 0.999),
                .max = total ? all[total - 1] : 0,
                .svc_p50 = quantile(svc, total, 0.50),
                .svc_p99 = quantile(svc, total, 0.99),
                .svc_p999 = quantile(svc, total, 0.999),
                .samples = total,
        };
        if (list_target) {
                metric("conc", "calls", (double) cls[n - 1].calls, "ListMappings calls of %s during the run",
                       list_target->label);
        }
finish:
        for (unsigned i = 0; i < n; i++) {
                free(cls[i].lat);
                free(cls[i].svc);
        }
        free(cls);
        free(all);
        free(svc);
        pthread_barrier_destroy(&ready);
        return r;
}

static void print_conc(const char *label, const struct conc_result *c) {
        printf("   %-44s %10.0f %9.1f %9.1f %9.1f %9.1f\n", label, c->throughput, c->p50 / 1e3, c->p99 / 1e3,
               c->p999 / 1e3, c->max / 1e3);
        metric("conc", "1/s", c->throughput, "%s: throughput", label);
        metric("conc", "us", c->p50 / 1e3, "%s: p50", label);
        metric("conc", "us", c->p99 / 1e3, "%s: p99", label);
        metric("conc", "us", c->p999 / 1e3, "%s: p99.9", label);
}

/* The platform's floor for the paced runs: the same 64 paced threads, each doing a 100-byte
 * round trip over a socketpair to an echo thread of its own, which does no work at all. */
struct echo_client {
        pthread_t thread;
        uint64_t start, end, interval, phase;
        uint64_t *lat;
        size_t cap, n;
};

static void *echo_main(void *userdata) {
        int fd = (int) (intptr_t) userdata;
        char buf[256];
        ssize_t n;

        while ((n = read(fd, buf, sizeof(buf))) > 0)
                if (write(fd, buf, (size_t) n) != n)
                        break;
        return NULL;
}

static void *echo_client_main(void *userdata) {
        struct echo_client *cl = userdata;
        char buf[256] = {};
        pthread_t echo;
        uint64_t next;
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return NULL;
        if (pthread_create(&echo, NULL, echo_main, (void *) (intptr_t) sv[1]) != 0) {
                close(sv[0]);
                close(sv[1]);
                return NULL;
        }
        (void) prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
        for (next = cl->start + cl->phase;; next += cl->interval) {
                uint64_t t0;

                sleep_until_ns(next);
                t0 = now_ns();
                if (t0 >= cl->end)
                        break;
                if (write(sv[0], buf, 100) != 100 || read(sv[0], buf, sizeof(buf)) <= 0)
                        break;
                if (cl->n < cl->cap)
                        cl->lat[cl->n++] = now_ns() - t0;
        }
        close(sv[0]);
        pthread_join(echo, NULL);
        close(sv[1]);
        return NULL;
}

static int run_echo_floor(unsigned n_clients, double rate, double seconds, struct conc_result *ret) {
        struct echo_client *cls = calloc(n_clients, sizeof(*cls));
        uint64_t start = now_ns() + 100 * 1000000ull, *all = NULL;
        size_t total = 0, k = 0;
        unsigned started = 0;
        int r = 0;

        if (!cls)
                return -ENOMEM;
        for (; started < n_clients; started++) {
                struct echo_client *cl = &cls[started];

                cl->interval = (uint64_t) ((double) NSEC_PER_SEC * n_clients / rate);
                cl->phase = cl->interval * started / n_clients;
                cl->start = start;
                cl->end = start + (uint64_t) (seconds * (double) NSEC_PER_SEC);
                cl->cap = (size_t) (seconds * rate / n_clients) + 1000;
                cl->lat = malloc(cl->cap * sizeof(uint64_t));
                if (!cl->lat || pthread_create(&cl->thread, NULL, echo_client_main, cl) != 0) {
                        free(cl->lat);
                        r = -ENOMEM;
                        break;
                }
        }
        for (unsigned i = 0; i < started; i++)
                pthread_join(cls[i].thread, NULL);
        for (unsigned i = 0; i < started; i++)
                total += cls[i].n;
        if (r >= 0 && (all = malloc(MAX(total, (size_t) 1) * sizeof(uint64_t)))) {
                for (unsigned i = 0; i < started; i++) {
                        memcpy(all + k, cls[i].lat, cls[i].n * sizeof(uint64_t));
                        k += cls[i].n;
                }
                qsort(all, total, sizeof(uint64_t), cmp_u64);
                *ret = (struct conc_result) {
                        .svc_p50 = quantile(all, total, 0.50),
                        .svc_p99 = quantile(all, total, 0.99),
                        .svc_p999 = quantile(all, total, 0.999),
                        .samples = total,
                };
        } else if (r >= 0)
                r = -ENOMEM;
        for (unsigned i = 0; i < started; i++)
                free(cls[i].lat);
        free(all);
        free(cls);
        return r;
}

static void print_svc(const char *label, const struct conc_result *c) {
        printf("   %-44s %10s %9.1f %9.1f %9.1f\n", label, "", c->svc_p50 / 1e3, c->svc_p99 / 1e3, c->svc_p999 / 1e3);
        metric("conc", "us", c->svc_p50 / 1e3, "%s: p50", label);
        metric("conc", "us", c->svc_p99 / 1e3, "%s: p99", label);
        metric("conc", "us", c->svc_p999 / 1e3, "%s: p99.9", label);
}

static void bench_conc(const char *socket, struct target *t, struct target *big) {
        static const unsigned clients[] = { 1, 16, 64 };
        uint64_t *addrs = calloc(N_ADDRS, sizeof(uint64_t));
        struct conc_result res[ELEMENTSOF(clients)], paced[2], base, loaded, echo;
        uint64_t echo_p99 = 0;
        double sat64 = 0;
        char path[4096], label[96];
        FILE *f;
        int r;

        if (!addrs)
                return fail("calloc", -ENOMEM);
        pick_addresses(t, addrs, N_ADDRS);
        printf("\n3. Concurrency: single-address Lookups on %s (%ld VMAs), %ld CPUs\n", t->label, t->vmas,
               sysconf(_SC_NPROCESSORS_ONLN));
        printf("   %-44s %10s %9s %9s %9s %9s\n", "", "calls/s", "p50 us", "p99 us", "p99.9 us", "max us");
        snprintf(path, sizeof(path), "%s/latency-clients.dat", opt_out);
        f = fopen(path, "we");
        if (f)
                fprintf(f, "# clients throughput p50_us p99_us p999_us (closed loop)\n");
        for (size_t i = 0; i < ELEMENTSOF(clients); i++) {
                r = run_clients(socket, t, addrs, N_ADDRS, clients[i], 0, NULL, 2.0, &res[i]);
                if (r < 0) {
                        fail("clients", r);
                        continue;
                }
                snprintf(label, sizeof(label), "%u client(s), closed loop", clients[i]);
                print_conc(label, &res[i]);
                if (f)
                        fprintf(f, "%u %.0f %.1f %.1f %.1f\n", clients[i], res[i].throughput, res[i].p50 / 1e3,
                                res[i].p99 / 1e3, res[i].p999 / 1e3);
                if (clients[i] == 64)
                        sat64 = res[i].throughput;
        }
        if (f)
                fclose(f);

        /* The latency a client sees at a given load: paced at a share of saturation. */
        snprintf(path, sizeof(path), "%s/latency-load.dat", opt_out);
        f = fopen(path, "we");
        if (f)
                fprintf(f, "# offered_per_s share_of_saturation p50_us p99_us p999_us (64 clients, paced)\n");
        for (unsigned i = 0; i < ELEMENTSOF(paced) && sat64 > 0; i++) {
                static const double share[] = { 0.10, 0.25 };
                double rate = sat64 * share[i];

                r = run_clients(socket, t, addrs, N_ADDRS, 64, rate, NULL, 2.0, &paced[i]);
                if (r < 0) {
                        fail("clients", r);
                        continue;
                }
                snprintf(label, sizeof(label), "64 clients paced, %.0f/s (%.0f%% of sat.)", rate, share[i] * 100);
                print_conc(label, &paced[i]);
                snprintf(label, sizeof(label), "  the same, from the send (%.0f%%)", share[i] * 100);
                print_svc(label, &paced[i]);
                if (run_echo_floor(64, rate, 2.0, &echo) >= 0) {
                        snprintf(label, sizeof(label), "  floor: socketpair echo, same pacing (%.0f%%)", share[i] * 100);
                        print_svc(label, &echo);
                        if (i == 1)
                                echo_p99 = echo.svc_p99;
                }
                if (f)
                        fprintf(f, "%.0f %.2f %.1f %.1f %.1f\n", rate, share[i], paced[i].p50 / 1e3,
                                paced[i].p99 / 1e3, paced[i].p999 / 1e3);
        }
        if (f)
                fclose(f);
        if (sat64 > 0) {
                check("single Lookup p99 <= 100 us, 64 clients at 25% of saturation", paced[1].p99 / 1e3, 100.0,
                      "us", true, "paced, latency from the scheduled send time");
                char note[160];

                /* Beside it, what a server doing nothing gets on this machine at the same pacing. */
                snprintf(note, sizeof(note), "paced; without the client's own wake-up delay; a do-nothing echo: %.0f us",
                         echo_p99 / 1e3);
                check("single Lookup p99 <= 100 us, 64 clients at 25% of saturation, from the send",
                      paced[1].svc_p99 / 1e3, 100.0, "us", true, note);
                check("single Lookup p99 <= 100 us, 64 clients closed loop", res[2].p99 / 1e3, 100.0, "us", true,
                      "saturation: latency = 64 / throughput (Little's law)");
        }

        /* Small lookups while another client lists a huge process in a loop. */
        r = run_clients(socket, t, addrs, N_ADDRS, 4, 2000, NULL, 3.0, &base);
        if (r >= 0)
                r = run_clients(socket, t, addrs, N_ADDRS, 4, 2000, big, 3.0, &loaded);
        if (r < 0)
                fail("clients", r);
        else {
                print_conc("4 clients paced 2000/s, alone", &base);
                snprintf(label, sizeof(label), "4 clients paced 2000/s, %s listed in a loop", big->label);
                print_conc(label, &loaded);
        }
        free(addrs);
}

/* ------------------------------------------------------------------ 4. memory */

static void bench_mem_idle(pid_t daemon_pid, const char *socket) {
        memctl **conns = calloc(1000, sizeof(memctl *));
        long idle, with_conns, after_close;
        size_t opened = 0;
        int r = 0;

        if (!conns)
                return fail("calloc", -ENOMEM);
        sleep_ms(100);
        idle = status_kib(daemon_pid, "VmRSS");
        for (; opened < 1000; opened++) {
                memctl_status *s = NULL;

                r = memctl_connect(socket, &conns[opened]);
                if (r >= 0)
                        r = memctl_get_status(conns[opened], &s);
                memctl_status_free(s);
                if (r < 0) {
                        fail("1000 connections", r);
                        memctl_free(conns[opened]);
                        break;
                }
        }
        sleep_ms(100);
        with_conns = status_kib(daemon_pid, "VmRSS");
        for (size_t i = 0; i < opened; i++)
                memctl_free(conns[i]);
        free(conns);
        sleep_ms(200);
        after_close = status_kib(daemon_pid, "VmRSS");

        printf("\n4. Daemon memory (VmRSS, MiB)\n");
        printf("   %-44s %10.2f\n", "idle, just started", idle / 1024.0);
        printf("   %-44s %10.2f\n", "with 1000 idle connections", with_conns / 1024.0);
        printf("   %-44s %10.2f\n", "after they closed", after_close / 1024.0);
        metric("mem", "MiB", idle / 1024.0, "RSS idle");
        metric("mem", "MiB", with_conns / 1024.0, "RSS with %zu idle connections", opened);
        metric("mem", "MiB", after_close / 1024.0, "RSS after the connections closed");
        check("daemon RSS idle <= 8 MiB", idle / 1024.0, 8.0, "MiB", true, NULL);
}

static void bench_mem_after(pid_t daemon_pid) {
        long rss, hwm;

        /* The daemon gives memory kept for the next call back at the first tick (1 s) that
         * saw no new call: wait for two. */
        sleep_ms(2200);
        rss = status_kib(daemon_pid, "VmRSS");
        hwm = status_kib(daemon_pid, "VmHWM");
        printf("   %-44s %10.2f\n", "after the load (lookups, listings)", rss / 1024.0);
        printf("   %-44s %10.2f\n", "peak (VmHWM)", hwm / 1024.0);
        metric("mem", "MiB", rss / 1024.0, "RSS after the load");
        metric("mem", "MiB", hwm / 1024.0, "RSS peak (VmHWM)");
}

/* ------------------------------------------------------------------ 5. the layout store (issue 14) */

/* A counter of the daemon's GetStatus ("layout_cache_entries"...), or -1 when the daemon has
 * none; its tracking ("bpf", "none") into ret_tracking when asked ("" when it has none). */
static int64_t status_field(const char *socket, const char *key, char *ret_tracking, size_t size) {
        _cleanup_free_ char *json = NULL;
        memctl *c = NULL;
        char pat[64];
        const char *p;
        int64_t v = -1;

        if (ret_tracking)
                ret_tracking[0] = 0;
        if (memctl_connect(socket, &c) < 0 || memctl_call_json(c, "io.memmapd.GetStatus", NULL, &json) < 0) {
                memctl_free(c);
                return -1;
        }
        memctl_free(c);
        snprintf(pat, sizeof(pat), "\"%s\":", key);
        p = strstr(json, pat);
        if (p)
                v = strtoll(p + strlen(pat), NULL, 10);
        if (ret_tracking && (p = strstr(json, "\"tracking\":\""))) {
                p += strlen("\"tracking\":\"");
                snprintf(ret_tracking, size, "%.*s", (int) strcspn(p, "\""), p);
        }
        return v;
}

/* Warm batch Lookups with the store (the daemon as configured: Tracking=auto) and without
 * (Tracking=none), against the raw ioctl loop and against parsing /proc/PID/maps. */
static void store_batch(const struct target *t, const char *with, const char *without, bool tracked) {
        static const enum way ways[] = { WAY_RAW, WAY_SSCANF, WAY_MEMCTL };
        static const enum way memctl_only[] = { WAY_MEMCTL };
        uint64_t *addrs = calloc(N_ADDRS, sizeof(uint64_t)), med[3], min[3], med_n[1], min_n[1];
        unsigned reps = t->vmas > 5000 ? 15 : 31;
        memctl *c = NULL, *cn = NULL;
        char name[112], note[160];
        int r;

        if (!addrs)
                return fail("calloc", -ENOMEM);
        pick_addresses(t, addrs, N_ADDRS);
        r = memctl_connect(with, &c);
        if (r >= 0)
                r = memctl_connect(without, &cn);
        if (r < 0) {
                memctl_free(c);
                free(addrs);
                return fail("connecting", r);
        }
        measure_ways(ways, ELEMENTSOF(ways), c, t, addrs, N_ADDRS, reps, med, min);
        measure_ways(memctl_only, 1, cn, t, addrs, N_ADDRS, reps, med_n, min_n);
        memctl_free(c);
        memctl_free(cn);
        printf("   %-8s warm Lookup us/addr: store %.3f (fastest %.3f), no store %.3f (%.3f), raw ioctl %.3f (%.3f), "
               "sscanf %.3f (%.3f)\n", t->label, per_addr_us(med[2], N_ADDRS), per_addr_us(min[2], N_ADDRS),
               per_addr_us(med_n[0], N_ADDRS), per_addr_us(min_n[0], N_ADDRS), per_addr_us(med[0], N_ADDRS),
               per_addr_us(min[0], N_ADDRS), per_addr_us(med[1], N_ADDRS), per_addr_us(min[1], N_ADDRS));
        printf("   %-8s ratios of fastest: store/raw %.2f, no store/raw %.2f, sscanf/store %.1f\n", t->label,
               (double) min[2] / (double) min[0], (double) min_n[0] / (double) min[0], (double) min[1] / (double) min[2]);
        metric("store", "us/addr", per_addr_us(min[2], N_ADDRS), "%s: warm Lookup, store, fastest run", t->label);
        metric("store", "us/addr", per_addr_us(min_n[0], N_ADDRS), "%s: warm Lookup, Tracking=none, fastest run",
               t->label);
        metric("store", "ratio", (double) min[2] / (double) min[0], "%s: store / raw ioctl, fastest runs", t->label);
        metric("store", "ratio", (double) min_n[0] / (double) min[0], "%s: Tracking=none / raw ioctl, fastest runs",
               t->label);
        if (tracked) {
                snprintf(name, sizeof(name), "warm Lookup per address <= 0.3x raw ioctl, %ld VMAs, store", t->vmas);
                snprintf(note, sizeof(note), "fastest runs; medians %.2fx", (double) med[2] / (double) med[0]);
                check(name, (double) min[2] / (double) min[0], 0.3, "x", true, note);
                if (t->vmas >= 20000) {
                        snprintf(name, sizeof(name), "Lookup >= 20x faster than parsing maps, %ld VMAs, store", t->vmas);
                        snprintf(note, sizeof(note), "(b) sscanf / (c) warm, fastest; medians %.1fx",
                                 (double) med[1] / (double) med[2]);
                        check(name, (double) min[1] / (double) min[2], 20.0, "x", false, note);
                }
        }
        free(addrs);
}

#define CACHED_PROCESSES 1000

/* The daemon's VmRSS with CACHED_PROCESSES small processes looked up once each (so stored where
 * a store is): children of this process, each waiting on a pipe. */
static void store_rss(pid_t daemon_pid, const char *socket, const char *label) {
        static int probe;
        pid_t *kids = calloc(CACHED_PROCESSES, sizeof(pid_t));
        uint64_t addr = (uint64_t) (uintptr_t) &probe;
        long before, after;
        int64_t entries, bytes;
        size_t n = 0;
        memctl *c = NULL;
        int p[2], r;

        if (!kids || pipe2(p, O_CLOEXEC) < 0) {
                free(kids);
                return fail("store RSS", -errno);
        }
        /* Memory kept for the next call goes back at the first idle tick (1 s): wait for two. */
        sleep_ms(2200);
        before = status_kib(daemon_pid, "VmRSS");
        for (; n < CACHED_PROCESSES; n++) {
                char b;

                kids[n] = fork();
                if (kids[n] < 0)
                        break;
                if (kids[n] == 0) {
                        close(p[1]);
                        (void) !read(p[0], &b, 1);
                        _exit(0);
                }
        }
        r = memctl_connect(socket, &c);
        for (size_t i = 0; i < n && r >= 0; i++) {
                memctl_lookup_reply *l = NULL;

                r = memctl_lookup(c, kids[i], 0, &addr, 1, 0, &l);
                memctl_lookup_reply_free(l);
        }
        memctl_free(c);
        if (r < 0)
                fail("looking up the small processes", r);
        sleep_ms(2200);
        after = status_kib(daemon_pid, "VmRSS");
        entries = status_field(socket, "layout_cache_entries", NULL, 0);
        bytes = status_field(socket, "layout_cache_bytes", NULL, 0);
        close(p[0]);
        close(p[1]);
        for (size_t i = 0; i < n; i++)
                waitpid(kids[i], NULL, 0);
        free(kids);
        printf("   %-44s %.2f -> %.2f MiB VmRSS, %zu processes looked up; store: %" PRId64 " entries, %.2f MiB\n",
               label, before / 1024.0, after / 1024.0, n, entries, bytes < 0 ? -1.0 : bytes / 1048576.0);
        metric("store", "MiB", after / 1024.0, "%s: RSS with %zu processes looked up", label, n);
        metric("store", "MiB", (after - before) / 1024.0, "%s: RSS growth for %zu processes", label, n);
}

static void bench_store(const struct daemon *d, struct target *t700, struct target *t20k) {
        static const char *const untracked[] = { "--tracking=none", NULL };
        static const unsigned clients[] = { 1, 64 };
        uint64_t *addrs = calloc(N_ADDRS, sizeof(uint64_t));
        struct conc_result with[2], without[2];
        char tracking[16];
        struct daemon dn = {};
        int r;

        printf("\n5. The layout store: the daemon (Tracking=auto) against one with Tracking=none\n");
        if (!addrs)
                return fail("calloc", -ENOMEM);
        r = daemon_start(untracked, &dn);
        if (r < 0) {
                /* A daemon older than the store does not know the setting. */
                printf("   skipped: the daemon does not start with Tracking=none (%s)\n", strerror(-r));
                free(addrs);
                return;
        }
        (void) status_field(d->socket, "layout_cache_hits", tracking, sizeof(tracking));
        printf("   tracking: \"%s\"\n", tracking);
        store_batch(t700, d->socket, dn.socket, strcmp(tracking, "bpf") == 0);
        store_batch(t20k, d->socket, dn.socket, strcmp(tracking, "bpf") == 0);

        pick_addresses(t700, addrs, N_ADDRS);
        printf("   %-44s %10s %9s %9s %9s %9s\n", "single-address Lookup, closed loop", "calls/s", "p50 us", "p99 us",
               "p99.9 us", "max us");
        for (size_t i = 0; i < ELEMENTSOF(clients); i++) {
                char label[96];

                if ((r = run_clients(d->socket, t700, addrs, N_ADDRS, clients[i], 0, NULL, 2.0, &with[i])) < 0 ||
                    (r = run_clients(dn.socket, t700, addrs, N_ADDRS, clients[i], 0, NULL, 2.0, &without[i])) < 0) {
                        fail("clients", r);
                        continue;
                }
                snprintf(label, sizeof(label), "%u client(s), store", clients[i]);
                print_conc(label, &with[i]);
                snprintf(label, sizeof(label), "%u client(s), Tracking=none", clients[i]);
                print_conc(label, &without[i]);
                metric("store", "us", with[i].p50 / 1e3, "single Lookup p50, %u client(s), store", clients[i]);
                metric("store", "us", with[i].p99 / 1e3, "single Lookup p99, %u client(s), store", clients[i]);
                metric("store", "us", without[i].p50 / 1e3, "single Lookup p50, %u client(s), Tracking=none", clients[i]);
                metric("store", "us", without[i].p99 / 1e3, "single Lookup p99, %u client(s), Tracking=none", clients[i]);
        }
        free(addrs);

        store_rss(d->pid, d->socket, "store (Tracking=auto)");
        store_rss(dn.pid, dn.socket, "Tracking=none");
        daemon_stop(&dn);
}

/* ------------------------------------------------------------------ output */

/* The 1-minute load average: the benchmark shares the machine with whatever else runs. */
static double loadavg(void) {
        double v = -1;
        FILE *f = fopen("/proc/loadavg", "re");

        if (f) {
                if (fscanf(f, "%lf", &v) != 1)
                        v = -1;
                fclose(f);
        }
        return v;
}

static void machine_info(char *model, size_t model_size, char *kernel, size_t kernel_size) {
        char line[512];
        struct utsname u;
        FILE *f = fopen("/proc/cpuinfo", "re");

        snprintf(model, model_size, "unknown");
        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, "model name", 10) == 0) {
                        char *c = strchr(line, ':');

                        if (c) {
                                c += 1 + strspn(c + 1, " \t");
                                c[strcspn(c, "\n")] = 0;
                                snprintf(model, model_size, "%s", c);
                        }
                        break;
                }
        if (f)
                fclose(f);
        snprintf(kernel, kernel_size, "%s", uname(&u) >= 0 ? u.release : "unknown");
}

static int write_json(const char *model, const char *kernel, double seconds) {
        struct json_writer w;
        char path[4096], *buf = NULL;
        size_t len;
        FILE *f;
        int r;

        json_writer_init(&w, 0);
        json_writer_object_begin(&w);
        json_writer_key(&w, "machine");
        json_writer_object_begin(&w);
        json_writer_key(&w, "cpus");
        json_writer_int(&w, sysconf(_SC_NPROCESSORS_ONLN));
        json_writer_key(&w, "model");
        json_writer_string(&w, model);
        json_writer_key(&w, "kernel");
        json_writer_string(&w, kernel);
        json_writer_object_end(&w);
        json_writer_key(&w, "time");
        json_writer_int(&w, (int64_t) time(NULL));
        json_writer_key(&w, "run_seconds");
        json_writer_raw(&w, path, (size_t) snprintf(path, sizeof(path), "%.1f", seconds));
        json_writer_key(&w, "metrics");
        json_writer_array_begin(&w);
        for (size_t i = 0; i < n_metrics; i++) {
                char num[64];

                json_writer_object_begin(&w);
                json_writer_key(&w, "section");
                json_writer_string(&w, metrics[i].section);
                json_writer_key(&w, "name");
                json_writer_string(&w, metrics[i].name);
                json_writer_key(&w, "value");
                json_writer_raw(&w, num, (size_t) snprintf(num, sizeof(num), "%.6g", metrics[i].value));
                json_writer_key(&w, "unit");
                json_writer_string(&w, metrics[i].unit);
                json_writer_object_end(&w);
        }
        json_writer_array_end(&w);
        json_writer_key(&w, "targets");
        json_writer_array_begin(&w);
        for (size_t i = 0; i < n_checks; i++) {
                char num[64];

                json_writer_object_begin(&w);
                json_writer_key(&w, "name");
                json_writer_string(&w, checks[i].name);
                json_writer_key(&w, "measured");
                json_writer_raw(&w, num, (size_t) snprintf(num, sizeof(num), "%.6g", checks[i].measured));
                json_writer_key(&w, "limit");
                json_writer_raw(&w, num, (size_t) snprintf(num, sizeof(num), "%.6g", checks[i].limit));
                json_writer_key(&w, "unit");
                json_writer_string(&w, checks[i].unit);
                json_writer_key(&w, "met");
                json_writer_bool(&w, checks[i].met);
                json_writer_key(&w, "note");
                json_writer_string(&w, checks[i].note);
                json_writer_object_end(&w);
        }
        json_writer_array_end(&w);
        json_writer_key(&w, "errors");
        json_writer_bool(&w, had_error);
        json_writer_object_end(&w);
        r = json_writer_finish(&w, &buf, &len);
        json_writer_done(&w);
        if (r < 0)
                return r;

        snprintf(path, sizeof(path), "%s/results.json", opt_out);
        f = fopen(path, "we");
        if (!f) {
                free(buf);
                return -errno;
        }
        fwrite(buf, 1, len, f);
        fputc('\n', f);
        r = fclose(f) == 0 ? 0 : -errno;
        free(buf);
        if (r >= 0)
                printf("\nWrote %s\n", path);
        return r;
}

static void plot(void) {
        char cmd[8192];

        if (!opt_plot_script)
                return;
        if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
                printf("gnuplot not installed: no plots\n");
                return;
        }
        snprintf(cmd, sizeof(cmd), "cd '%s' && gnuplot '%s'", opt_out, opt_plot_script);
        if (system(cmd) == 0)
                printf("Wrote %s/latency-clients.png and %s/batch-cost.png\n", opt_out, opt_out);
        else
                printf("gnuplot failed: no plots\n");
}

/* ------------------------------------------------------------------ main */

/* Shared libraries this process has loaded, as pages for the targets' file VMAs. */
struct libs {
        char *paths[LIBS_MAX];
        size_t n;
};

static int collect_lib(struct dl_phdr_info *info, size_t size, void *userdata) {
        struct libs *l = userdata;
        struct stat st;

        (void) size;
        if (l->n >= LIBS_MAX || !info->dlpi_name || info->dlpi_name[0] != '/')
                return 0;
        if (stat(info->dlpi_name, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 64 * 1024)
                return 0;
        l->paths[l->n] = realpath(info->dlpi_name, NULL);
        if (l->paths[l->n])
                l->n++;
        return 0;
}

static void raise_nofile(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

/* ------------------------------------------------------------------ symbols (issue 16) */

/* Addresses in the target's executable file mappings (its libraries' code), spread evenly
 * over them; the distinct files in *ret_files (paths into t->maps). */
static size_t pick_code_addresses(const struct target *t, uint64_t *addrs, size_t n, const char **files,
                                  size_t max_files, size_t *ret_n_files) {
        size_t code[1024], n_code = 0, n_files = 0;
        uint32_t s = SEED;

        for (size_t i = 0; i < t->maps.n && n_code < ELEMENTSOF(code); i++) {
                const struct mapping *m = &t->maps.items[i];

                if (m->kind != MAPPING_KIND_FILE || !(m->flags & MAPPING_EXEC) || !m->name)
                        continue;
                code[n_code++] = i;
                bool seen = false;
                for (size_t k = 0; k < n_files; k++)
                        seen |= strcmp(files[k], m->name) == 0;
                if (!seen && n_files < max_files)
                        files[n_files++] = m->name;
        }
        *ret_n_files = n_files;
        if (n_code == 0)
                return 0;
        for (size_t i = 0; i < n; i++) {
                const struct mapping *m = &t->maps.items[code[rng_next(&s) % n_code]];

                addrs[i] = m->start + rng_u64(&s) % (m->end - m->start);
        }
        return n;
}

/* eu-addr2line --pid on the same addresses, the way a profiler symbolizes today; 0 when it is
 * not installed or failed. */
static uint64_t time_addr2line(pid_t pid, const uint64_t *addrs, size_t n) {
        char **argv = calloc(n + 4, sizeof(char *)), pid_arg[32];
        uint64_t ns = 0;

        if (!argv)
                return 0;
        snprintf(pid_arg, sizeof(pid_arg), "--pid=%d", (int) pid);
        argv[0] = (char *) "eu-addr2line";
        argv[1] = pid_arg;
        argv[2] = (char *) "-S";
        for (size_t i = 0; i < n; i++)
                if (asprintf(&argv[3 + i], "0x%" PRIx64, addrs[i]) < 0)
                        goto done;
        ns = time_command(argv);
done:
        for (size_t i = 0; i < n; i++)
                free(argv[3 + i]);
        free(argv);
        return ns;
}

static void bench_symbols(struct target *t, const char *daemon_socket) {
        static const enum way ways[] = { WAY_MEMCTL, WAY_MEMCTL_SYM };
        uint64_t *addrs = calloc(N_ADDRS, sizeof(uint64_t)), med[2], min[2], eu;
        const char *files[LIBS_MAX * 2];
        size_t n_files = 0;
        char name[112], note[160];
        memctl *c = NULL;
        struct daemon fresh;
        int r;

        if (!addrs)
                return fail("calloc", -ENOMEM);
        if (pick_code_addresses(t, addrs, N_ADDRS, files, ELEMENTSOF(files), &n_files) == 0) {
                free(addrs);
                return fail("finding code mappings", -ENOENT);
        }
        r = memctl_connect(daemon_socket, &c);
        if (r < 0) {
                free(addrs);
                return fail("connecting", r);
        }
        measure_ways(ways, ELEMENTSOF(ways), c, t, addrs, N_ADDRS, 31, med, min);
        memctl_free(c);

        printf("\n8. Symbols: %d addresses in the code of %zu files of %s; per address, median of 31 interleaved "
               "runs (and the fastest)\n", N_ADDRS, n_files, t->label);
        printf("   %-52s %10s %10s %10s\n", "", "us/addr", "ms/batch", "min us/a");
        printf("   %-52s %10.3f %10.3f %10.3f\n", "Lookup warm", per_addr_us(med[0], N_ADDRS), (double) med[0] / 1e6,
               per_addr_us(min[0], N_ADDRS));
        printf("   %-52s %10.3f %10.3f %10.3f\n", "Lookup warm, symbols", per_addr_us(med[1], N_ADDRS),
               (double) med[1] / 1e6, per_addr_us(min[1], N_ADDRS));
        metric("symbols", "us/addr", per_addr_us(med[0], N_ADDRS), "%s: Lookup warm, code addresses", t->label);
        metric("symbols", "us/addr", per_addr_us(med[1], N_ADDRS), "%s: Lookup warm with symbols", t->label);
        snprintf(name, sizeof(name), "warm Lookup with symbols <= 2x without, %d addresses", N_ADDRS);
        snprintf(note, sizeof(note), "fastest runs; medians: %.2fx", (double) med[1] / (double) med[0]);
        check(name, (double) min[1] / (double) min[0], 2.0, "x", true, note);

        /* Cold: a fresh daemon, its layout and ELF facts read first (a Lookup without symbols),
         * then each file's addresses with symbols: the first time its table is read. */
        r = daemon_start(NULL, &fresh);
        if (r < 0) {
                free(addrs);
                return fail("starting memmapd", r);
        }
        r = memctl_connect(fresh.socket, &c);
        if (r >= 0) {
                size_t found;

                (void) lookup_memctl(c, t->pid, addrs, N_ADDRS, 0, &found);
                printf("   cold (first Lookup with symbols naming each file, fresh daemon; its ELF facts known):\n");
                for (size_t f = 0; f < n_files; f++) {
                        uint64_t one[1] = { 0 }, cold_ns, warm_ns;

                        for (size_t i = 0; i < t->maps.n && !one[0]; i++) {
                                const struct mapping *m = &t->maps.items[i];

                                if (m->name && strcmp(m->name, files[f]) == 0 && (m->flags & MAPPING_EXEC))
                                        one[0] = m->start;
                        }
                        uint64_t t0 = now_ns();
                        r = lookup_memctl(c, t->pid, one, 1, MEMCTL_SYMBOLS, &found);
                        cold_ns = now_ns() - t0;
                        t0 = now_ns();
                        r = r < 0 ? r : lookup_memctl(c, t->pid, one, 1, MEMCTL_SYMBOLS, &found);
                        warm_ns = now_ns() - t0;
                        if (r < 0)
                                break;
                        printf("   %-60s cold %8.3f ms, then %6.3f ms\n", files[f], (double) cold_ns / 1e6,
                               (double) warm_ns / 1e6);
                        metric("symbols", "ms", (double) cold_ns / 1e6, "cold Lookup with symbols: %s", files[f]);
                }
        }
        if (r < 0)
                fail("cold lookups", r);
        memctl_free(c);
        daemon_stop(&fresh);

        eu = time_addr2line(t->pid, addrs, N_ADDRS);
        if (eu == 0) {
                printf("   eu-addr2line --pid: not installed or failed (elfutils)\n");
        } else {
                printf("   eu-addr2line --pid -S, same addresses: %.1f ms, %.1fx the warm Lookup with symbols "
                       "(fastest %.1fx)\n", (double) eu / 1e6, (double) eu / (double) med[1], (double) eu / (double) min[1]);
                metric("symbols", "ms", (double) eu / 1e6, "eu-addr2line --pid, %d addresses", N_ADDRS);
                snprintf(name, sizeof(name), "warm Lookup with symbols >= 100x faster than eu-addr2line --pid");
                snprintf(note, sizeof(note), "one eu-addr2line run against the fastest Lookup; medians %.1fx",
                         (double) eu / (double) med[1]);
                check(name, (double) eu / (double) min[1], 100.0, "x", false, note);
        }
        free(addrs);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "out", required_argument, NULL, 'o' },
                { "sections", required_argument, NULL, 's' },
                { "plot-script", required_argument, NULL, 'p' },
                {}
        };
        struct target t700 = {}, t20k = {}, t60k = {};
        struct daemon d = {}, dm = {};
        struct libs libs = {};
        char model[256], kernel[128];
        uint64_t t_start = now_ns();
        size_t met = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'o':
                        opt_out = optarg;
                        break;
                case 's':
                        opt_sections = optarg;
                        break;
                case 'p':
                        opt_plot_script = optarg;
                        break;
                default:
                        return 2;
                }
        memmapd_path = getenv("MEMMAPD") ?: "daemon/memmapd";
        target_path = getenv("BENCH_TARGET") ?: "tests/bench/bench-target";
        signal(SIGPIPE, SIG_IGN);
        raise_nofile();
        mkdir(opt_out, 0755);
        machine_info(model, sizeof(model), kernel, sizeof(kernel));
        printf("memmapd benchmark: %ld CPUs, %s, kernel %s, load average %.2f\n", sysconf(_SC_NPROCESSORS_ONLN),
               model, kernel, loadavg());
        metric("machine", "", loadavg(), "load average (1 min) at the start");

        dl_iterate_phdr(collect_lib, &libs);
        printf("File VMAs map pages of:");
        for (size_t i = 0; i < libs.n; i++)
                printf(" %s", libs.paths[i]);
        printf("\n");

        if ((r = target_start("700-VMA", 700, 280, libs.paths, libs.n, &t700)) < 0 ||
            (r = target_start("20k-VMA", 20000, 2000, libs.paths, libs.n, &t20k)) < 0 ||
            (r = target_start("60k-VMA", 60000, 1000, libs.paths, libs.n, &t60k)) < 0) {
                fail("starting the targets", r);
                goto finish;
        }
        if ((r = read_target_maps(&t700)) < 0 || (r = read_target_maps(&t20k)) < 0 ||
            (r = read_target_maps(&t60k)) < 0) {
                fail("reading the targets' maps", r);
                goto finish;
        }
        {
                static const char *const big_limits[] = {
                        "--set=MaxConnections=1100", "--set=MaxConnectionsPerUser=1100", NULL
                };
                static const char *const maps_backend[] = { "--backend=maps", NULL };

                r = daemon_start(big_limits, &d);
                if (r >= 0)
                        r = daemon_start(maps_backend, &dm);
                if (r < 0) {
                        fail("starting memmapd", r);
                        goto finish;
                }
        }
        printf("memmapd pid %d (--backend=maps: pid %d); targets: %ld, %ld, %ld VMAs\n", (int) d.pid, (int) dm.pid,
               t700.vmas, t20k.vmas, t60k.vmas);

        if (section_enabled("mem"))
                bench_mem_idle(d.pid, d.socket);
        if (section_enabled("batch")) {
                bench_batch(&t700, d.socket);
                bench_batch(&t20k, d.socket);
        }
        if (section_enabled("sweep"))
                bench_sweep(&t700, d.socket);
        if (section_enabled("list")) {
                struct target *ts[] = { &t20k, &t60k };

                bench_list(ts, ELEMENTSOF(ts), d.socket, dm.socket);
        }
        if (section_enabled("conc"))
                bench_conc(d.socket, &t700, &t60k);
        if (section_enabled("mem"))
                bench_mem_after(d.pid);
        if (section_enabled("store"))
                bench_store(&d, &t700, &t20k);
        if (section_enabled("watchdog"))
                bench_watchdog();
        if (section_enabled("symbols"))
                bench_symbols(&t700, d.socket);

finish:
        daemon_stop(&d);
        daemon_stop(&dm);
        target_stop(&t700);
        target_stop(&t20k);
        target_stop(&t60k);
        for (size_t i = 0; i < libs.n; i++)
                free(libs.paths[i]);

        printf("\nTargets\n");
        for (size_t i = 0; i < n_checks; i++) {
                printf("   %-6s %-72s %8.2f %-3s (limit %s %.4g)%s%s\n", checks[i].met ? "MET" : "MISSED",
                       checks[i].name, checks[i].measured, checks[i].unit, checks[i].at_most ? "<=" : ">=",
                       checks[i].limit, checks[i].note[0] ? "; " : "", checks[i].note);
                met += checks[i].met;
        }
        printf("   %zu of %zu met\n", met, n_checks);
        printf("Load average (1 min) at the end: %.2f (other work on the machine adds noise)\n", loadavg());
        metric("machine", "", loadavg(), "load average (1 min) at the end");
        r = write_json(model, kernel, (double) (now_ns() - t_start) / 1e9);
        if (r < 0)
                fail("writing results.json", r);
        plot();
        printf("Took %.1f s\n", (double) (now_ns() - t_start) / 1e9);
        return had_error ? 1 : 0;
}
