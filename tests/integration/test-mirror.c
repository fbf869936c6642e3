/* The libmemctl mirror against the real daemon: a target that keeps changing which file is mapped executable where; after each change (seen through the mirror's events) a million lookups in all equal the daemon's own Lookup answers, and the kernel's maps text. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
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

#include "fixture.h"
#include "libmemctl.h"

#define WAIT_USEC (60 * UINT64_C(1000000))
#define STEPS 50
#define BATCH 20000
#define SLOT_PAGES 4
#define SLOTS 4

static const char *const files[] = { "/bin/true", "/bin/cat", "/bin/sleep", "/bin/ls", "/bin/echo" };
#define N_FILES (sizeof(files) / sizeof(files[0]))

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
        if (test_daemon_start(NULL, &daemon_tracked) < 0)
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
 * executable into slot s (replacing what was there), "s 255" leaves slot s unmapped. Answers
 * the slot's address. */
static void target_main(int in, int out) {
        uint8_t *base = mmap(NULL, SLOTS * SLOT_PAGES * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        uint8_t cmd[2];

        if (base == MAP_FAILED)
                _exit(1);
        while (read(in, cmd, 2) == 2) {
                uint8_t *at = base + (size_t) (cmd[0] % SLOTS) * SLOT_PAGES * 4096;
                uint64_t v = (uint64_t) (uintptr_t) at;

                if (cmd[1] < N_FILES) {
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

struct vma {
        uint64_t start, end;
        bool exec;
};

/* /proc/PID/maps as the kernel writes it, read here: ranges and whether executable. */
static size_t read_maps(pid_t pid, struct vma *v, size_t max) {
        char path[64], line[4096];
        size_t n = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        f = fopen(path, "re");
        assert_non_null(f);
        while (n < max && fgets(line, sizeof(line), f)) {
                char perms[8];
                unsigned long long s, e;

                if (sscanf(line, "%llx-%llx %7s", &s, &e, perms) != 3)
                        continue;
                v[n++] = (struct vma) { s, e, perms[2] == 'x' };
        }
        fclose(f);
        return n;
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
static void make_addresses(const struct vma *v, size_t n, uint64_t *a, size_t count) {
        for (size_t i = 0; i < count; i++) {
                const struct vma *m = &v[rnd() % n];
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
                const struct memctl_mapping *x = NULL;
                int r = memctl_mirror_lookup(m, pid, address, &x);

                assert_true(r >= 0);
                if (r > 0 && x->inode == inode && x->start == address)
                        return;
                if (mono_nsec() > deadline)
                        fail_msg("the mirror did not see the change at 0x%" PRIx64 " within the wait", address);
                assert_true(memctl_mirror_update(m, 100000) >= 0);
        }
}

static void test_mirror_equals_daemon(void **state) {
        static struct vma vmas[65536];
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
                        struct memctl_mapping dm = MEMCTL_MAPPING_INIT;
                        const struct memctl_mapping *x = NULL;
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
                        assert_int_equal(x->start, dm.start);
                        assert_int_equal(x->end, dm.end);
                        assert_int_equal(x->offset, dm.offset);
                        assert_int_equal(x->inode, dm.inode);
                        assert_int_equal(x->dev_major, dm.dev_major);
                        assert_int_equal(x->dev_minor, dm.dev_minor);
                        assert_string_equal(x->path, dm.path);
                        assert_int_equal(addrs[i] - x->start + x->offset, res.file_offset);
                }
                memctl_lookup_reply_free(reply);
                lookups += BATCH;

                /* The cost of a lookup in local memory, on the same addresses. */
                t0 = mono_nsec();
                for (size_t i = 0; i < BATCH; i++) {
                        const struct memctl_mapping *x = NULL;

                        if (memctl_mirror_lookup(m, t.pid, addrs[i], &x) > 0)
                                __asm__ volatile("" : : "r"(x) : "memory");
                }
                mirror_ns += mono_nsec() - t0;
        }
        assert_true(lookups >= 1000000);
        printf("# %" PRIu64 " lookups equal to the daemon's (%" PRIu64 " in executable file mappings) over %d changes\n",
               lookups, mapped, STEPS);
        printf("# mirror lookup: %.1f ns per address; the daemon's Lookup: %.1f ns per address (batches of %d)\n",
               (double) mirror_ns / (double) lookups, (double) daemon_ns / (double) lookups, BATCH);

        /* The target's exit: the mirror stops answering for it. */
        target_stop(&t);
        for (uint64_t deadline = mono_nsec() + WAIT_USEC * 1000;;) {
                const struct memctl_mapping *x;

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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_mirror_equals_daemon),
        };

        setvbuf(stdout, NULL, _IOLBF, 0);
        return cmocka_run_group_tests(tests, setup, teardown);
}
