/* The libmemctl mirror against the real daemon: a target changing which file is mapped executable where, step by step (the mirror equals the daemon's Lookup and the kernel's maps text after each step) and without pause (a million lookups equal to the daemon's history at the time the mirror says it is current as of); threads looking up while the pump applies events; more processes than the mirror once held, and the bound the caller sets. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "fixture.h"
#include "libmemctl.h"

#define WAIT_USEC (60 * UINT64_C(1000000))
#define STEPS 20
#define BATCH 10000
#define SLOT_PAGES 4
#define SLOTS 4

static const char *const files[] = { "/bin/true", "/bin/cat", "/bin/sleep", "/bin/ls", "/bin/echo" };
#define N_FILES (sizeof(files) / sizeof(files[0]))
#define ELEMENTS_MAX_CHURN 8

static struct test_daemon daemon_tracked;
static bool tracked;

static uint64_t mono_nsec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int setup(void **state) {
        int r;

        (void) state;
        signal(SIGPIPE, SIG_IGN);
        /* Retention on: the mappings events are the kernel's capture, with its times, and
         * Lookup answers as of a time. */
        static const char *const args[] = { "--set=RetainExitedSec=60", NULL };

        if (test_daemon_start(args, &daemon_tracked) < 0)
                return -1;
        r = test_daemon_tracking_bpf(daemon_tracked.socket);
        tracked = r > 0;
        return r < 0 ? -1 : 0;
}

static int teardown(void **state) {
        (void) state;
        return test_daemon_stop(&daemon_tracked) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ the target */

/* Slots of SLOT_PAGES pages in one reservation; command "s f" (two bytes) maps file f
 * executable into slot s (replacing what was there), "s 255" leaves slot s unmapped, "s 254"
 * unmaps the slot's second page. Answers the slot's address. */
static void target_main(int in, int out) {
        uint8_t *base = mmap(NULL, SLOTS * SLOT_PAGES * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        uint8_t cmd[2];

        if (base == MAP_FAILED)
                _exit(1);
        while (read(in, cmd, 2) == 2) {
                uint8_t *at = base + (size_t) (cmd[0] % SLOTS) * SLOT_PAGES * 4096;
                uint64_t v = (uint64_t) (uintptr_t) at;

                if (cmd[1] == 254) {
                        /* The second page of what the slot maps goes: the kernel splits it. */
                        if (munmap(at + 4096, 4096) < 0)
                                v = 0;
                } else if (cmd[1] < N_FILES) {
                        int fd = open(files[cmd[1]], O_RDONLY | O_CLOEXEC);

                        if (fd < 0 || mmap(at, 2 * 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED)
                                v = 0;
                        if (fd >= 0)
                                close(fd);
                } else if (mmap(at, SLOT_PAGES * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
                        v = 0;
                if (write(out, &v, sizeof(v)) != sizeof(v))
                        break;
        }
        _exit(0);
}

struct target {
        pid_t pid;
        int to, from;
        uint64_t start_time;
};

static void target_start(struct target *t) {
        int a[2], b[2];

        assert_int_equal(pipe2(a, O_CLOEXEC), 0);
        assert_int_equal(pipe2(b, O_CLOEXEC), 0);
        t->pid = fork();
        assert_true(t->pid >= 0);
        if (t->pid == 0) {
                close(a[1]);
                close(b[0]);
                target_main(a[0], b[1]);
        }
        close(a[0]);
        close(b[1]);
        t->to = a[1];
        t->from = b[0];
        assert_int_equal(test_proc_stat_field(t->pid, 22, &t->start_time), 0);
}

static uint64_t target_do(struct target *t, unsigned slot, unsigned file) {
        uint8_t cmd[2] = { (uint8_t) slot, (uint8_t) file };
        uint64_t v;

        assert_int_equal(write(t->to, cmd, 2), 2);
        assert_int_equal(read(t->from, &v, sizeof(v)), (ssize_t) sizeof(v));
        assert_true(v != 0);
        return v;
}

static void target_stop(struct target *t) {
        close(t->to);
        close(t->from);
        assert_int_equal(waitpid(t->pid, NULL, 0), t->pid);
}

/* ------------------------------------------------------------------ the truth */

/* /proc/PID/maps as the kernel writes it, read here. */
static size_t read_maps(pid_t pid, struct test_vma *v, size_t max) {
        ssize_t n = test_read_maps(pid, v, max);

        assert_true(n >= 0);
        return (size_t) n;
}

/* The name /proc/PID/maps gives the mapping at start, or "" (into buf). */
static const char *maps_name_at(pid_t pid, uint64_t start, char *buf, size_t size) {
        char path[64], line[4096];
        FILE *f;

        buf[0] = 0;
        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        f = fopen(path, "re");
        assert_non_null(f);
        while (fgets(line, sizeof(line), f)) {
                char *slash = strchr(line, '/');

                if (strtoull(line, NULL, 16) != start || !slash)
                        continue;
                slash[strcspn(slash, "\n")] = 0;
                snprintf(buf, size, "%s", slash);
                break;
        }
        fclose(f);
        return buf;
}

/* ------------------------------------------------------------------ the test */

static uint64_t rnd_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void) {
        rnd_state ^= rnd_state << 13;
        rnd_state ^= rnd_state >> 7;
        rnd_state ^= rnd_state << 17;
        return rnd_state;
}

/* Addresses around the target's mappings: inside executable ones, inside others, their edges,
 * and between them. */
static void make_addresses(const struct test_vma *v, size_t n, uint64_t *a, size_t count) {
        for (size_t i = 0; i < count; i++) {
                const struct test_vma *m = &v[rnd() % n];
                uint64_t len = m->end - m->start;

                switch (rnd() % 4) {
                case 0:
                        a[i] = m->start;
                        break;
                case 1:
                        a[i] = m->end - 1 + rnd() % 2;
                        break;
                default:
                        a[i] = m->start + rnd() % len;
                        break;
                }
        }
}

/* Waits (updating the mirror) until its lookup at address answers inode; bounded. */
static void mirror_wait_for(memctl_mirror *m, pid_t pid, uint64_t address, uint64_t inode) {
        uint64_t deadline = mono_nsec() + WAIT_USEC * 1000;

        for (;;) {
                struct memctl_mapping x = MEMCTL_MAPPING_INIT;
                int r = memctl_mirror_lookup(m, pid, address, &x);

                assert_true(r >= 0);
                if (r > 0 && x.inode == inode && x.start == address)
                        return;
                if (mono_nsec() > deadline)
                        fail_msg("the mirror did not see the change at 0x%" PRIx64 " within the wait", address);
                assert_true(memctl_mirror_update(m, 100000) >= 0);
        }
}

static void test_mirror_equals_daemon(void **state) {
        static struct test_vma vmas[65536];
        uint64_t *addrs = calloc(BATCH, sizeof(uint64_t));
        char real[N_FILES][4096];
        uint64_t inodes[N_FILES], lookups = 0, mirror_ns = 0, daemon_ns = 0, mapped = 0;
        memctl_mirror *m = NULL;
        memctl *c = NULL;
        struct target t;

        (void) state;
        if (!tracked) {
                printf("[  SKIPPED ] the daemon runs without BPF tracking here: no Watch to keep a mirror\n");
                skip();
        }
        assert_non_null(addrs);
        for (size_t i = 0; i < N_FILES; i++) {
                struct stat st;

                assert_int_equal(stat(files[i], &st), 0);
                inodes[i] = st.st_ino;
                /* What the kernel names it (/bin may be a link to /usr/bin). */
                assert_non_null(realpath(files[i], real[i]));
        }
        target_start(&t);
        assert_int_equal(memctl_connect(daemon_tracked.socket, &c), 0);
        assert_int_equal(memctl_mirror_new(daemon_tracked.socket, &m), 0);
        assert_int_equal(memctl_mirror_add(m, t.pid, t.start_time), 0);
        assert_int_equal(memctl_mirror_add(m, t.pid, 0), -EEXIST);

        for (unsigned step = 0; step < STEPS; step++) {
                unsigned slot = step % SLOTS, file = (step * 7 + 3) % N_FILES;
                memctl_lookup_reply *reply = NULL;
                uint64_t at, t0;
                size_t n;
                char name[4096];

                /* A change: every third step one slot emptied, then another file in the slot.
                 * Events come in order: once the mirror shows the last, it has the first. */
                if (step % 3 == 2)
                        (void) target_do(&t, (slot + 1) % SLOTS, 255);
                at = target_do(&t, slot, file);
                assert_string_equal(maps_name_at(t.pid, at, name, sizeof(name)), real[file]);
                mirror_wait_for(m, t.pid, at, inodes[file]);

                n = read_maps(t.pid, vmas, 65536);
                assert_true(n > 0);
                make_addresses(vmas, n, addrs, BATCH);
                t0 = mono_nsec();
                assert_int_equal(memctl_lookup(c, t.pid, t.start_time, addrs, BATCH, 0, &reply), 0);
                daemon_ns += mono_nsec() - t0;
                assert_int_equal(memctl_lookup_reply_count(reply), BATCH);
                for (size_t i = 0; i < BATCH; i++) {
                        struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;
                        struct memctl_mapping dm = MEMCTL_MAPPING_INIT, x = MEMCTL_MAPPING_INIT;
                        bool want;
                        int r;

                        assert_int_equal(memctl_lookup_reply_get(reply, i, &res), 0);
                        want = res.mapping != MEMCTL_NO_MAPPING &&
                               memctl_lookup_reply_get_mapping(reply, res.mapping, &dm) == 0 &&
                               (dm.flags & MEMCTL_MAPPING_EXEC) && dm.kind == MEMCTL_KIND_FILE;
                        r = memctl_mirror_lookup(m, t.pid, addrs[i], &x);
                        assert_int_equal(r, want ? 1 : 0);
                        if (!want)
                                continue;
                        mapped++;
                        assert_int_equal(x.start, dm.start);
                        assert_int_equal(x.end, dm.end);
                        assert_int_equal(x.offset, dm.offset);
                        assert_int_equal(x.inode, dm.inode);
                        assert_int_equal(x.dev_major, dm.dev_major);
                        assert_int_equal(x.dev_minor, dm.dev_minor);
                        assert_string_equal(x.path, dm.path);
                        assert_int_equal(addrs[i] - x.start + x.offset, res.file_offset);
                }
                memctl_lookup_reply_free(reply);
                lookups += BATCH;

                /* The cost of a lookup in local memory, on the same addresses. */
                t0 = mono_nsec();
                for (size_t i = 0; i < BATCH; i++) {
                        struct memctl_mapping x = MEMCTL_MAPPING_INIT;

                        if (memctl_mirror_lookup(m, t.pid, addrs[i], &x) > 0)
                                __asm__ volatile("" : : "r"(&x) : "memory");
                }
                mirror_ns += mono_nsec() - t0;
        }
        assert_true(lookups >= (uint64_t) STEPS * BATCH);
        printf("# %" PRIu64 " lookups equal to the daemon's (%" PRIu64 " in executable file mappings) over %d changes\n",
               lookups, mapped, STEPS);
        printf("# mirror lookup: %.1f ns per address; the daemon's Lookup: %.1f ns per address (batches of %d)\n",
               (double) mirror_ns / (double) lookups, (double) daemon_ns / (double) lookups, BATCH);

        /* The target's exit: the mirror stops answering for it. */
        target_stop(&t);
        for (uint64_t deadline = mono_nsec() + WAIT_USEC * 1000;;) {
                struct memctl_mapping x = MEMCTL_MAPPING_INIT;

                if (memctl_mirror_lookup(m, t.pid, addrs[0], &x) == -ESRCH)
                        break;
                if (mono_nsec() > deadline)
                        fail_msg("the mirror kept answering for an exited process");
                assert_true(memctl_mirror_update(m, 100000) >= 0);
        }
        assert_int_equal(memctl_mirror_remove(m, t.pid), 0);
        assert_int_equal(memctl_mirror_remove(m, t.pid), -ESRCH);
        memctl_mirror_free(m);
        memctl_free(c);
        free(addrs);
}

/* ------------------------------------------------------------------ a target that never pauses */

#define CHURN_SLOTS 8
#define CHURN_SLOT_PAGES 8
#define CHURN_GAP_USEC 100
#define LIVE_LOOKUPS 1000000
#define LIVE_BATCH 2000
#define LIVE_USEC (600 * UINT64_C(1000000))

static const char *const churn_candidates[] = {
        "/bin/true", "/bin/cat", "/bin/sleep", "/bin/ls", "/bin/echo",
        "/lib/x86_64-linux-gnu/libm.so.6", "/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1",
};

struct churn_files {
        const char *path[ELEMENTS_MAX_CHURN];
        char real[ELEMENTS_MAX_CHURN][4096];
        uint64_t inode[ELEMENTS_MAX_CHURN];
        size_t n;
};

/* The files the target maps: those here at least 4 pages long, each once. */
static void churn_files_find(struct churn_files *f) {
        f->n = 0;
        for (size_t i = 0; i < sizeof(churn_candidates) / sizeof(churn_candidates[0]); i++) {
                struct stat st;
                bool seen = false;

                if (stat(churn_candidates[i], &st) < 0 || st.st_size < 4 * 4096)
                        continue;
                for (size_t j = 0; j < f->n; j++)
                        seen |= f->inode[j] == st.st_ino;
                if (seen || !realpath(churn_candidates[i], f->real[f->n]))
                        continue;
                f->path[f->n] = churn_candidates[i];
                f->inode[f->n++] = st.st_ino;
        }
}

static uint64_t mono_usec(void) {
        return mono_nsec() / 1000;
}

/* After each change: the kernel stamps changes in microseconds, so the next one comes in a
 * later microsecond (no two share a stamp: a time tells them apart); and at a pace the daemon's
 * capture keeps up with on a loaded machine (its ring buffer full, it forgets every history).
 * The target waits for no one: not for the mirror, not for the daemon. */
static void churn_tick(void) {
        uint64_t u = mono_usec();
        struct timespec gap = { .tv_nsec = CHURN_GAP_USEC * 1000 };

        nanosleep(&gap, NULL);
        while (mono_usec() == u)
                ;
}

/* Empties a random slot, then (three times in four) maps 1 to 3 pages of a random file at a
 * random page of it and a random file offset; forever, waiting for no one. Tells the region's
 * address first. */
static _Noreturn void churn_main(const struct churn_files *f, int out) {
        size_t size = (size_t) CHURN_SLOTS * CHURN_SLOT_PAGES * 4096;
        uint8_t *base = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        uint64_t v = (uint64_t) (uintptr_t) base, x = (uint64_t) getpid() * 0x9e3779b97f4a7c15u | 1;
        int fds[ELEMENTS_MAX_CHURN];

        for (size_t i = 0; i < f->n; i++)
                fds[i] = open(f->path[i], O_RDONLY | O_CLOEXEC);
        if (base == MAP_FAILED || write(out, &v, sizeof(v)) != sizeof(v))
                _exit(1);
        close(out);
        for (;;) {
                uint8_t *at;
                size_t len, pos;

                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                at = base + (size_t) (x % CHURN_SLOTS) * CHURN_SLOT_PAGES * 4096;
                if (mmap(at, CHURN_SLOT_PAGES * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
                    MAP_FAILED)
                        _exit(2);
                churn_tick();
                if ((x >> 8) % 4 == 0)
                        continue;
                len = 1 + (x >> 12) % 3;
                pos = (x >> 16) % (CHURN_SLOT_PAGES - len + 1);
                if (mmap(at + pos * 4096, len * 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED,
                         fds[(x >> 24) % f->n], (off_t) ((x >> 32) % 2) * 4096) == MAP_FAILED)
                        _exit(3);
                churn_tick();
        }
}

/* Targets still running: a failed test leaves through cmocka's jump, and the next test's
 * teardown ends them. */
static pid_t churning[4];

static int churn_teardown(void **state) {
        (void) state;
        for (size_t i = 0; i < 4; i++)
                if (churning[i] > 0) {
                        kill(churning[i], SIGKILL);
                        waitpid(churning[i], NULL, 0);
                        churning[i] = 0;
                }
        return 0;
}

static pid_t churn_start(uint64_t *ret_base) {
        int p[2];
        pid_t pid;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char fd[16];

                /* A program of its own: the daemon's history of the target is complete from its
                 * exec (of a process older than that, a history is only known from a read of
                 * it, which a target that never pauses may keep from being taken). */
                snprintf(fd, sizeof(fd), "%d", p[1]);
                if (fcntl(p[1], F_SETFD, 0) == 0)
                        execl("/proc/self/exe", "test-mirror", "churn", fd, (char *) NULL);
                _exit(127);
        }
        close(p[1]);
        for (size_t i = 0; i < 4; i++)
                if (churning[i] == 0) {
                        churning[i] = pid;
                        break;
                }
        assert_int_equal(read(p[0], ret_base, sizeof(*ret_base)), (ssize_t) sizeof(*ret_base));
        close(p[0]);
        return pid;
}

static void churn_stop(pid_t pid) {
        int status;

        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        for (size_t i = 0; i < 4; i++)
                if (churning[i] == pid)
                        churning[i] = 0;
        /* Killed, not ended by a failed mmap. */
        assert_true(WIFSIGNALED(status));
}

/* Whether the daemon keeps histories (Lookup with time_usec): its GetStatus says. */
static bool daemon_retains(const char *socket) {
        memctl *c = NULL;
        char *reply = NULL;
        bool yes;

        assert_int_equal(memctl_connect(socket, &c), 0);
        assert_int_equal(memctl_call_json(c, "io.memmapd.GetStatus", NULL, &reply), 0);
        yes = strstr(reply, "\"retention\":\"bpf\"") != NULL;
        free(reply);
        memctl_free(c);
        return yes;
}

/* One address as the daemon's history answers it at a time: mapped or not, and what. */
struct answer {
        bool mapped;
        uint64_t start, end, offset, inode, file_offset;
        unsigned dev_major, dev_minor;
        char path[4096];
};

static uint64_t json_hex(struct json_object *o, const char *key) {
        struct json_object *v;

        assert_true(json_object_object_get_ex(o, key, &v));
        return strtoull(json_object_get_string(v), NULL, 16);
}

/* Lookup with time_usec, asked and read as raw JSON (not through the library's decoder):
 * 0 with answers filled, or -ERANGE for TimeNotKnown. */
static int daemon_lookup_at(memctl *c, pid_t pid, uint64_t start_time, uint64_t t, const uint64_t *addrs, size_t n,
                            struct answer *ans) {
        size_t size = 128 + n * 24;
        char *req = malloc(size), *reply = NULL;
        struct json_object *o, *maps, *results;
        size_t k;
        int r;

        assert_non_null(req);
        k = (size_t) snprintf(req, size, "{\"pid\":%d,\"start_time\":%" PRIu64 ",\"time_usec\":%" PRIu64 ",\"addresses\":[",
                              (int) pid, start_time, t);
        for (size_t i = 0; i < n; i++)
                k += (size_t) snprintf(req + k, size - k, "%s\"0x%" PRIx64 "\"", i ? "," : "", addrs[i]);
        snprintf(req + k, size - k, "]}");
        r = memctl_call_json(c, "io.memmapd.Lookup", req, &reply);
        free(req);
        if (r < 0) {
                const char *name = memctl_last_error_name(c);

                if (name && strcmp(name, "io.memmapd.TimeNotKnown") == 0)
                        return -ERANGE;
                fail_msg("Lookup at %" PRIu64 ": %s (%s)", t, strerror(-r), name ?: "-");
        }
        o = json_tokener_parse(reply);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "mappings", &maps));
        assert_true(json_object_object_get_ex(o, "results", &results));
        assert_int_equal(json_object_array_length(results), n);
        for (size_t i = 0; i < n; i++) {
                struct json_object *res = json_object_array_get_idx(results, i), *v, *mp;

                memset(&ans[i], 0, sizeof(ans[i]));
                if (!json_object_object_get_ex(res, "mapping", &v) || !v)
                        continue;
                mp = json_object_array_get_idx(maps, (size_t) json_object_get_int(v));
                assert_non_null(mp);
                ans[i].mapped = true;
                ans[i].start = json_hex(mp, "start");
                ans[i].end = json_hex(mp, "end");
                ans[i].offset = json_hex(mp, "offset");
                ans[i].file_offset = json_hex(res, "file_offset");
                assert_true(json_object_object_get_ex(mp, "inode", &v));
                ans[i].inode = (uint64_t) json_object_get_int64(v);
                assert_true(json_object_object_get_ex(mp, "dev", &v));
                assert_int_equal(sscanf(json_object_get_string(v), "%x:%x", &ans[i].dev_major, &ans[i].dev_minor), 2);
                if (json_object_object_get_ex(mp, "path", &v) && v)
                        snprintf(ans[i].path, sizeof(ans[i].path), "%s", json_object_get_string(v));
        }
        json_object_put(o);
        free(reply);
        return 0;
}

/* Addresses in the churned region (page starts, page ends, anywhere) and, one in ten, in the
 * target's other executable mappings, which stay. */
static void churn_addresses(uint64_t base, const struct test_vma *v, size_t n, uint64_t *a, size_t count) {
        size_t pages = (size_t) CHURN_SLOTS * CHURN_SLOT_PAGES;

        for (size_t i = 0; i < count; i++) {
                uint64_t page = base + (rnd() % pages) * 4096;

                if (rnd() % 10 == 0 && n > 0) {
                        const struct test_vma *m = &v[rnd() % n];

                        a[i] = m->start + rnd() % (m->end - m->start);
                        continue;
                }
                switch (rnd() % 3) {
                case 0:
                        a[i] = page;
                        break;
                case 1:
                        a[i] = page + 4095;
                        break;
                default:
                        a[i] = page + rnd() % 4096;
                        break;
                }
        }
}

/* The mirror while its target maps and unmaps files without pause: after each update, the
 * time the mirror says it is exact as of (memctl_mirror_get_as_of()) is asked of the daemon's
 * history (Lookup with time_usec) for a batch of addresses: every answer must be the same.
 * That time never goes back. A million lookups in all. */
static void test_mirror_while_target_changes(void **state) {
        static struct test_vma vmas[65536], execs[4096];
        uint64_t *addrs = calloc(LIVE_BATCH, sizeof(uint64_t));
        struct answer *ans = calloc(LIVE_BATCH, sizeof(struct answer));
        struct churn_files f;
        uint64_t base, start_time, compared = 0, mapped = 0, samples = 0, bounds = 0, unknown = 0, events = 0;
        uint64_t last_as_of = 0, t_end;
        size_t n, n_execs = 0;
        memctl_mirror *m = NULL;
        memctl *c = NULL;
        pid_t pid;

        (void) state;
        if (!tracked || !daemon_retains(daemon_tracked.socket)) {
                printf("[  SKIPPED ] the daemon keeps no history here (no BPF capture): no Lookup with time_usec to "
                       "compare with\n");
                skip();
        }
        assert_non_null(addrs);
        assert_non_null(ans);
        churn_files_find(&f);
        assert_true(f.n >= 3);
        pid = churn_start(&base);
        assert_int_equal(test_proc_stat_field(pid, 22, &start_time), 0);
        n = read_maps(pid, vmas, 65536);
        for (size_t i = 0; i < n; i++)
                if (vmas[i].exec && (vmas[i].end <= base || vmas[i].start >= base + CHURN_SLOTS * CHURN_SLOT_PAGES * 4096))
                        execs[n_execs++] = vmas[i];
        assert_int_equal(memctl_connect(daemon_tracked.socket, &c), 0);
        assert_int_equal(memctl_mirror_new(daemon_tracked.socket, &m), 0);
        assert_int_equal(memctl_mirror_add(m, pid, start_time), 0);

        t_end = mono_usec() + LIVE_USEC;
        while (compared < LIVE_LOOKUPS) {
                struct memctl_mapping x[LIVE_BATCH];
                int got[LIVE_BATCH];
                uint64_t as_of;
                int k, exact;

                if (mono_usec() > t_end)
                        fail_msg("only %" PRIu64 " lookups compared within the time allowed", compared);
                k = memctl_mirror_update(m, 100000);
                assert_true(k >= 0);
                events += (uint64_t) k;
                exact = memctl_mirror_get_as_of(m, pid, &as_of);
                assert_true(exact >= 0);
                /* Never a layout older than one the mirror had. */
                assert_true(as_of >= last_as_of);
                last_as_of = as_of;
                samples++;
                if (!exact) {
                        bounds++;
                        continue;
                }
                churn_addresses(base, execs, n_execs, addrs, LIVE_BATCH);
                for (size_t i = 0; i < LIVE_BATCH; i++) {
                        x[i] = (struct memctl_mapping) MEMCTL_MAPPING_INIT;
                        got[i] = memctl_mirror_lookup(m, pid, addrs[i], &x[i]);
                }
                if (daemon_lookup_at(c, pid, start_time, as_of, addrs, LIVE_BATCH, ans) == -ERANGE) {
                        /* The daemon's history of a live process holds its 4096 latest
                         * intervals: a time behind them is not known any more. */
                        unknown++;
                        continue;
                }
                for (size_t i = 0; i < LIVE_BATCH; i++) {
                        const struct answer *a = &ans[i];

                        if (got[i] != (a->mapped ? 1 : 0))
                                fail_msg("at %" PRIu64 " (as of %" PRIu64 " us, after %" PRIu64 " events), 0x%" PRIx64
                                         ": the mirror says %d, the daemon's history %s", compared + i, as_of, events,
                                         addrs[i], got[i], a->mapped ? "mapped" : "unmapped");
                        if (!a->mapped)
                                continue;
                        mapped++;
                        if (x[i].start != a->start || x[i].end != a->end || x[i].offset != a->offset ||
                            x[i].inode != a->inode || x[i].dev_major != a->dev_major || x[i].dev_minor != a->dev_minor ||
                            strcmp(x[i].path ?: "", a->path) != 0 || addrs[i] - x[i].start + x[i].offset != a->file_offset)
                                fail_msg("as of %" PRIu64 " us, 0x%" PRIx64 ": the mirror has %" PRIx64 "-%" PRIx64
                                         " +%" PRIx64 " %s, the daemon's history %" PRIx64 "-%" PRIx64 " +%" PRIx64 " %s",
                                         as_of, addrs[i], x[i].start, x[i].end, x[i].offset, x[i].path ?: "-", a->start,
                                         a->end, a->offset, a->path);
                }
                compared += LIVE_BATCH;
        }
        /* The mirror kept up with a target that never waited, most of the time exactly. */
        assert_true(events > 1000);
        assert_true(mapped > compared / 10);
        assert_true(unknown < samples / 10 + 1);
        printf("# %" PRIu64 " lookups equal to the daemon's history at the mirror's time (%" PRIu64 " mapped) over %"
               PRIu64 " updates: %" PRIu64 " events applied, %" PRIu64 " updates only bounded (after a listing), %"
               PRIu64 " times no longer known\n", compared, mapped, samples, events, bounds, unknown);
        test_print_loadavg("");
        churn_stop(pid);
        memctl_mirror_free(m);
        memctl_free(c);
        free(addrs);
        free(ans);
}

/* ------------------------------------------------------------------ threads */

#define READERS 4

struct reader {
        pthread_t thread;
        memctl_mirror *m;
        pid_t pid, other;
        uint64_t base;
        const struct churn_files *f;
        atomic_bool *stop;
        uint64_t lookups, found, others;
        const char *paths[64];          /* pointers a lookup handed out, read again at the end */
        size_t n_paths;
        const char *error;
        char detail[512];               /* what the failing lookup answered */
};

static void *reader_main(void *arg) {
        struct reader *r = arg;
        uint64_t x = (uint64_t) (uintptr_t) r | 1, last = 0, region = (uint64_t) CHURN_SLOTS * CHURN_SLOT_PAGES * 4096;

        while (!atomic_load(r->stop) && !r->error) {
                struct memctl_mapping mp = MEMCTL_MAPPING_INIT;
                uint64_t a, as_of;
                int k;

                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                a = r->base + x % region;
                k = memctl_mirror_get_as_of(r->m, r->pid, &as_of);
                if (k < 0 || as_of < last)
                        r->error = "the time went back";
                last = as_of;
                k = memctl_mirror_lookup(r->m, r->pid, a, &mp);
                r->lookups++;
                if (k < 0)
                        r->error = "the target is not mirrored";
                if (k > 0) {
                        bool known = false;

                        /* What the target maps: 1 to 3 pages of one of the files, at offset 0 or
                         * one page; the kernel merges a one-page mapping at offset 0 with one at
                         * offset 4096 right after it (in the next slot): 4 pages at most. */
                        for (size_t i = 0; i < r->f->n; i++)
                                known |= mp.inode == r->f->inode[i] && mp.path && strcmp(mp.path, r->f->real[i]) == 0;
                        if (!known || a < mp.start || a >= mp.end || mp.end - mp.start > 4 * 4096 ||
                            (mp.offset != 0 && mp.offset != 4096) || mp.start < r->base || mp.end > r->base + region)
                                r->error = "a lookup answered a mapping the target never made";
                        r->found++;
                        if (r->n_paths < 64)
                                r->paths[r->n_paths++] = mp.path;
                }
                /* Another process, added and removed meanwhile: mirrored or not, never torn. */
                k = memctl_mirror_lookup(r->m, r->other, a, &mp);
                if (k != -ESRCH && k != 0) {
                        snprintf(r->detail, sizeof(r->detail),
                                 "lookup of 0x%" PRIx64 " (region 0x%" PRIx64 "+0x%" PRIx64 "): %d, %" PRIx64 "-%" PRIx64
                                 " +%" PRIx64 " %s", a, r->base, region, k, k > 0 ? mp.start : 0, k > 0 ? mp.end : 0,
                                 k > 0 ? mp.offset : 0, k > 0 && mp.path ? mp.path : "-");
                        r->error = "the other process has a mapping in the churned region";
                }
                r->others += k == 0;
        }
        return NULL;
}

/* READERS threads look up while the pump applies the events of a target that never pauses,
 * and adds and removes another process meanwhile. */
static void test_mirror_threads(void **state) {
        struct reader readers[READERS];
        struct churn_files f;
        atomic_bool stop = false;
        uint64_t base, start_time, events = 0, rounds = 0, t_end;
        memctl_mirror *m = NULL;
        struct target other;
        pid_t pid;

        (void) state;
        if (!tracked) {
                printf("[  SKIPPED ] the daemon runs without BPF tracking here: no Watch to keep a mirror\n");
                skip();
        }
        churn_files_find(&f);
        assert_true(f.n >= 3);
        pid = churn_start(&base);
        assert_int_equal(test_proc_stat_field(pid, 22, &start_time), 0);
        target_start(&other);
        assert_int_equal(memctl_mirror_new(daemon_tracked.socket, &m), 0);
        assert_int_equal(memctl_mirror_add(m, pid, start_time), 0);
        for (size_t i = 0; i < READERS; i++) {
                readers[i] = (struct reader) {
                        .m = m, .pid = pid, .other = other.pid, .base = base, .f = &f, .stop = &stop,
                };
                assert_int_equal(pthread_create(&readers[i].thread, NULL, reader_main, &readers[i]), 0);
        }
        /* Bounded by work done, not by time: enough updates that many snapshots were replaced
         * under the readers. */
        t_end = mono_usec() + WAIT_USEC;
        while (events < 20000 || rounds < 200) {
                int k = memctl_mirror_update(m, 10000);

                assert_true(k >= 0);
                events += (uint64_t) k;
                if (rounds++ % 2 == 0)
                        assert_int_equal(memctl_mirror_add(m, other.pid, other.start_time), 0);
                else
                        assert_int_equal(memctl_mirror_remove(m, other.pid), 0);
                if (mono_usec() > t_end)
                        break;
        }
        atomic_store(&stop, true);
        for (size_t i = 0; i < READERS; i++) {
                assert_int_equal(pthread_join(readers[i].thread, NULL), 0);
                if (readers[i].error)
                        fail_msg("reader %zu: %s (%s)", i, readers[i].error, readers[i].detail);
                assert_true(readers[i].lookups > 0);
                /* The strings handed out stay the mirror's until it is freed. */
                for (size_t j = 0; j < readers[i].n_paths; j++)
                        assert_true(strlen(readers[i].paths[j]) > 0);
        }
        assert_true(events >= 1000);
        {
                uint64_t lookups = 0, found = 0;

                for (size_t i = 0; i < READERS; i++) {
                        lookups += readers[i].lookups;
                        found += readers[i].found;
                }
                assert_true(found > 0);
                printf("# %d threads: %" PRIu64 " lookups (%" PRIu64 " mapped) while the pump applied %" PRIu64
                       " events and added or removed a process %" PRIu64 " times\n", READERS, lookups, found, events,
                       rounds);
        }
        churn_stop(pid);
        target_stop(&other);
        memctl_mirror_free(m);
}

/* ------------------------------------------------------------------ limits */

#define MANY 100

/* More processes than the mirror once held (64), then a bound set by the caller. */
static void test_mirror_many(void **state) {
        static struct test_vma vmas[4096];
        struct target t[MANY];
        memctl_mirror *m = NULL;

        (void) state;
        if (!tracked) {
                printf("[  SKIPPED ] the daemon runs without BPF tracking here: no Watch to keep a mirror\n");
                skip();
        }
        assert_int_equal(memctl_mirror_new(daemon_tracked.socket, &m), 0);
        for (size_t i = 0; i < MANY; i++) {
                target_start(&t[i]);
                assert_int_equal(memctl_mirror_add(m, t[i].pid, t[i].start_time), 0);
        }
        /* Each answers for its own executable mappings, as /proc shows them. */
        for (size_t i = 0; i < MANY; i++) {
                size_t n = read_maps(t[i].pid, vmas, 4096), checked = 0;
                uint64_t st;

                assert_int_equal(memctl_mirror_get_start_time(m, t[i].pid, &st), 0);
                assert_int_equal(st, t[i].start_time);
                for (size_t j = 0; j < n; j++) {
                        struct memctl_mapping x = MEMCTL_MAPPING_INIT;
                        int r = memctl_mirror_lookup(m, t[i].pid, vmas[j].start, &x);

                        if (!vmas[j].exec) {
                                assert_int_equal(r, 0);
                                continue;
                        }
                        /* The vdso is executable and no file. */
                        if (r == 0)
                                continue;
                        assert_int_equal(r, 1);
                        assert_int_equal(x.start, vmas[j].start);
                        assert_int_equal(x.end, vmas[j].end);
                        checked++;
                }
                assert_true(checked > 0);
        }
        for (size_t i = 0; i < MANY; i += 2)
                assert_int_equal(memctl_mirror_remove(m, t[i].pid), 0);
        /* A bound below what it holds: no more adds, and says so. */
        assert_int_equal(memctl_mirror_set_limits(m, MANY / 2, 0), 0);
        assert_int_equal(memctl_mirror_add(m, t[0].pid, t[0].start_time), -ENOSPC);
        assert_int_equal(memctl_mirror_set_limits(m, MANY / 2 + 1, 0), 0);
        assert_int_equal(memctl_mirror_add(m, t[0].pid, t[0].start_time), 0);
        assert_int_equal(memctl_mirror_add(m, t[2].pid, t[2].start_time), -ENOSPC);
        for (size_t i = 1; i < MANY; i += 2) {
                struct memctl_mapping x = MEMCTL_MAPPING_INIT;

                assert_true(memctl_mirror_lookup(m, t[i].pid, 0, &x) == 0);
        }
        memctl_mirror_free(m);
        /* Each child holds the pipes of those forked before it: ended, not told to end. */
        for (size_t i = 0; i < MANY; i++) {
                assert_int_equal(kill(t[i].pid, SIGKILL), 0);
                assert_int_equal(waitpid(t[i].pid, NULL, 0), t[i].pid);
                close(t[i].to);
                close(t[i].from);
        }
}

/* One thread looking up in more mirrors than its cache names (4): counters are given back and
 * taken again, also after some of the mirrors were freed. */
static void test_mirror_many_mirrors(void **state) {
        struct target t;
        memctl_mirror *m[7] = {};
        uint64_t libc_exec = 0;
        static struct test_vma vmas[4096];
        size_t n;

        (void) state;
        if (!tracked) {
                printf("[  SKIPPED ] the daemon runs without BPF tracking here: no Watch to keep a mirror\n");
                skip();
        }
        target_start(&t);
        n = read_maps(t.pid, vmas, 4096);
        for (size_t i = 0; i < n && !libc_exec; i++)
                if (vmas[i].exec) {
                        char name[4096];

                        if (maps_name_at(t.pid, vmas[i].start, name, sizeof(name))[0] == '/')
                                libc_exec = vmas[i].start;
                }
        assert_true(libc_exec != 0);
        for (size_t i = 0; i < 7; i++) {
                assert_int_equal(memctl_mirror_new(daemon_tracked.socket, &m[i]), 0);
                assert_int_equal(memctl_mirror_add(m[i], t.pid, t.start_time), 0);
        }
        for (size_t round = 0; round < 3; round++) {
                for (size_t k = 0; k < 1000; k++) {
                        size_t i = (k * 5 + round) % 7;
                        struct memctl_mapping x = MEMCTL_MAPPING_INIT;

                        if (!m[i])
                                continue;
                        assert_int_equal(memctl_mirror_lookup(m[i], t.pid, libc_exec, &x), 1);
                        assert_int_equal(x.start, libc_exec);
                }
                /* Some go while this thread's cache still names them. */
                m[round * 2] = memctl_mirror_free(m[round * 2]);
        }
        for (size_t i = 0; i < 7; i++)
                memctl_mirror_free(m[i]);
        target_stop(&t);
}

/* What the mirror has at address: the inode and range of its mapping, or inode 0. */
static uint64_t mirror_at(memctl_mirror *m, pid_t pid, uint64_t address, uint64_t *ret_start, uint64_t *ret_end) {
        struct memctl_mapping x = MEMCTL_MAPPING_INIT;
        int r = memctl_mirror_lookup(m, pid, address, &x);

        assert_true(r >= 0);
        *ret_start = r > 0 ? x.start : 0;
        *ret_end = r > 0 ? x.end : 0;
        return r > 0 ? x.inode : 0;
}

/* A process older than the daemon, never seen whole by it: the mirror's Watch starts what the
 * daemon keeps of it (a read), so each change comes as what it did. Unmapping a library, and a
 * part of one, must leave the mirror as the kernel's maps say, and the daemon's answers as of
 * each time right. (A change told whole, as a process the daemon does not know tells it, is
 * test-watch's test_watch_all_older_process_told_whole.) */
static void test_mirror_process_older_than_daemon(void **state) {
        static const char *const args[] = { "--set=RetainExitedSec=60", NULL };
        struct test_daemon d;
        struct target t;
        memctl_mirror *m = NULL;
        uint64_t at[SLOTS], ino[N_FILES], s, e, t0, before, t1, t2, t3;
        struct test_vma v[4096];
        size_t n;

        (void) state;
        if (!tracked || !daemon_retains(daemon_tracked.socket)) {
                printf("# skipped: the daemon has no BPF change tracking or capture here\n");
                skip();
        }
        for (size_t i = 0; i < N_FILES; i++) {
                struct stat st;

                assert_int_equal(stat(files[i], &st), 0);
                ino[i] = st.st_ino;
        }
        target_start(&t);
        for (unsigned i = 0; i < 3; i++)
                at[i] = target_do(&t, i, i);
        at[3] = at[2] + SLOT_PAGES * 4096;
        assert_int_equal(test_daemon_start(args, &d), 0);
        assert_int_equal(memctl_mirror_new(d.socket, &m), 0);
        t0 = mono_usec();
        assert_int_equal(memctl_mirror_add(m, t.pid, t.start_time), 0);
        for (unsigned i = 0; i < 3; i++)
                assert_int_equal(mirror_at(m, t.pid, at[i], &s, &e), ino[i]);

        before = mono_usec();
        assert_int_equal(target_do(&t, 0, 255), at[0]);
        t1 = mono_usec();
        assert_int_equal(target_do(&t, 1, 254), at[1]);
        t2 = mono_usec();
        /* The last change, waited for: the stream is in order, so the two before are in. */
        assert_int_equal(target_do(&t, 3, 3), at[3]);
        t3 = mono_usec();
        mirror_wait_for(m, t.pid, at[3], ino[3]);

        /* The kernel's word on each slot, then the mirror's. */
        n = read_maps(t.pid, v, 4096);
        for (size_t i = 0; i < n; i++) {
                if (v[i].start >= at[0] && v[i].start < at[3] + SLOT_PAGES * 4096 && v[i].exec)
                        printf("# maps: %" PRIx64 "-%" PRIx64 " (slot %" PRIu64 ")\n", v[i].start, v[i].end,
                               (v[i].start - at[0]) / (SLOT_PAGES * 4096));
        }
        assert_int_equal(mirror_at(m, t.pid, at[0], &s, &e), 0);
        assert_int_equal(mirror_at(m, t.pid, at[1], &s, &e), ino[1]);
        assert_int_equal(s, at[1]);
        assert_int_equal(e, at[1] + 4096);
        assert_int_equal(mirror_at(m, t.pid, at[1] + 4096, &s, &e), 0);
        assert_int_equal(mirror_at(m, t.pid, at[2], &s, &e), ino[2]);
        assert_int_equal(e, at[2] + 2 * 4096);
        for (size_t i = 0; i < n; i++) {
                uint64_t a = v[i].start;

                if (a < at[0] || a >= at[3] + SLOT_PAGES * 4096)
                        continue;
                /* Every executable mapping the kernel shows there, the mirror has as it is; and
                 * nothing where the kernel shows none. */
                if (v[i].exec) {
                        assert_true(mirror_at(m, t.pid, a, &s, &e) != 0);
                        assert_int_equal(s, v[i].start);
                        assert_int_equal(e, v[i].end);
                } else
                        assert_int_equal(mirror_at(m, t.pid, a, &s, &e), 0);
        }

        /* The daemon's history of it starts at the Watch's read (nothing before it is known),
         * not at a later question's: as of each time between the changes, what was mapped then. */
        {
                uint64_t a[5] = { at[0], at[1], at[1] + 4096, at[2], at[3] };
                struct answer ans[5];
                memctl *c = NULL;

                assert_int_equal(memctl_connect(d.socket, &c), 0);
                assert_int_equal(daemon_lookup_at(c, t.pid, t.start_time, t0, a, 5, ans), -ERANGE);
                assert_int_equal(daemon_lookup_at(c, t.pid, t.start_time, before, a, 5, ans), 0);
                assert_true(ans[0].mapped && ans[0].inode == ino[0]);
                assert_true(ans[1].mapped && ans[1].inode == ino[1] && ans[1].end == at[1] + 2 * 4096);
                assert_true(ans[3].mapped && ans[3].inode == ino[2]);
                assert_false(ans[4].mapped);
                assert_int_equal(daemon_lookup_at(c, t.pid, t.start_time, t1, a, 5, ans), 0);
                assert_false(ans[0].mapped);
                assert_true(ans[1].mapped && ans[1].inode == ino[1] && ans[1].end == at[1] + 2 * 4096);
                assert_true(ans[3].mapped && ans[3].inode == ino[2]);
                assert_false(ans[4].mapped);
                assert_int_equal(daemon_lookup_at(c, t.pid, t.start_time, t2, a, 5, ans), 0);
                assert_true(ans[1].mapped && ans[1].inode == ino[1] && ans[1].end == at[1] + 4096);
                assert_false(ans[2].mapped);
                assert_false(ans[4].mapped);
                assert_int_equal(daemon_lookup_at(c, t.pid, t.start_time, t3, a, 5, ans), 0);
                assert_true(ans[4].mapped && ans[4].inode == ino[3]);
                memctl_free(c);
        }
        memctl_mirror_free(m);
        target_stop(&t);
        assert_int_equal(test_daemon_stop(&d), 0);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_mirror_equals_daemon),
                cmocka_unit_test_teardown(test_mirror_while_target_changes, churn_teardown),
                cmocka_unit_test_teardown(test_mirror_threads, churn_teardown),
                cmocka_unit_test(test_mirror_many),
                cmocka_unit_test(test_mirror_many_mirrors),
                cmocka_unit_test(test_mirror_process_older_than_daemon),
        };

        if (argc == 3 && strcmp(argv[1], "churn") == 0) {
                static struct churn_files f;

                churn_files_find(&f);
                churn_main(&f, atoi(argv[2]));
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        /* MEMMAPD_TEST_FILTER=test_mirror_many*: only those (for working on one). */
        if (getenv("MEMMAPD_TEST_FILTER"))
                cmocka_set_test_filter(getenv("MEMMAPD_TEST_FILTER"));
        return cmocka_run_group_tests(tests, setup, teardown);
}
