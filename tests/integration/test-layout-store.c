/* The layout store against the kernel: every answer of the real daemon about real processes that change their layouts, exec, exit and lose their pids equals what PROCMAP_QUERY, called here directly, says the process had. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "fixture.h"
#include "libmemctl.h"
#include "procmap-uapi.h"

#ifndef MM_FIXTURE_PATH
#define MM_FIXTURE_PATH "tests/mm-fixture"
#endif

#define UID_A 41003
#define GID_A 41003

#define VMAS_MAX 1024
#define NAME_MAX_LEN 512
#define ADDRS_MAX 48
#define EXECS_MAX 24            /* execs of one mm-fixture: it consumes one argument each */
#define READERS 3

/* The default daemon (Tracking=auto), and two with tracking forced off, with either backend:
 * started for the whole group, so that a failed test leaves none behind. */
static struct test_daemon daemon_default, daemon_untracked, daemon_untracked_maps;

static int daemon_start_tracking(const char *mode, const char *extra, struct test_daemon *ret);

static int setup(void **state) {
        signal(SIGPIPE, SIG_IGN);
        if (test_daemon_start(NULL, &daemon_default) < 0 || daemon_start_tracking("none", NULL, &daemon_untracked) < 0 ||
            daemon_start_tracking("none", "--backend=maps", &daemon_untracked_maps) < 0)
                return -1;
        return 0;
}

static int teardown(void **state) {
        /* A failed test may have left it stopped. */
        (void) kill(daemon_default.pid, SIGCONT);
        /* Exit status 0: a clean shutdown, and under ASan no leak and no error. */
        int a = test_daemon_stop(&daemon_default), b = test_daemon_stop(&daemon_untracked),
            c = test_daemon_stop(&daemon_untracked_maps);

        return a == 0 && b == 0 && c == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ layouts, the truth and the daemon's */

struct vma {
        uint64_t start, end, offset, inode;
        uint32_t dev_major, dev_minor;
        char perms[5];
        char name[NAME_MAX_LEN];
};

struct layout {
        size_t n;
        struct vma v[VMAS_MAX];
};

/* The whole layout of pid by PROCMAP_QUERY, called here on /proc/PID/maps VMA after VMA
 * (COVERING_OR_NEXT from the end of the last one): the truth, independent of the daemon's
 * parsers. 0, or -errno (-ESRCH: the process is gone). */
static int raw_layout(pid_t pid, struct layout *ret) {
        char path[64];
        _cleanup_close_ int fd = -1;
        uint64_t addr = 0;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ret->n = 0;
        for (;;) {
                struct vma *v;
                struct procmap_query q = {
                        .size = sizeof(q),
                        .query_flags = PROCMAP_QUERY_COVERING_OR_NEXT_VMA,
                        .query_addr = addr,
                };

                if (ret->n == VMAS_MAX)
                        return -E2BIG;
                v = &ret->v[ret->n];
                q.vma_name_addr = (uint64_t) (uintptr_t) v->name;
                q.vma_name_size = sizeof(v->name);
                if (ioctl(fd, PROCMAP_QUERY, &q) < 0)
                        return errno == ENOENT ? 0 : -errno;
                if (q.vma_name_size == 0)
                        v->name[0] = 0;
                v->start = q.vma_start;
                v->end = q.vma_end;
                v->offset = q.vma_offset;
                v->inode = q.inode;
                v->dev_major = q.dev_major;
                v->dev_minor = q.dev_minor;
                v->perms[0] = q.vma_flags & PROCMAP_QUERY_VMA_READABLE ? 'r' : '-';
                v->perms[1] = q.vma_flags & PROCMAP_QUERY_VMA_WRITABLE ? 'w' : '-';
                v->perms[2] = q.vma_flags & PROCMAP_QUERY_VMA_EXECUTABLE ? 'x' : '-';
                v->perms[3] = q.vma_flags & PROCMAP_QUERY_VMA_SHARED ? 's' : 'p';
                v->perms[4] = 0;
                ret->n++;
                addr = q.vma_end;
        }
}

static void vma_from_mapping(const struct memctl_mapping *m, struct vma *ret) {
        *ret = (struct vma) { .start = m->start, .end = m->end, .offset = m->offset, .inode = m->inode,
                              .dev_major = m->dev_major, .dev_minor = m->dev_minor };
        memcpy(ret->perms, m->perms, sizeof(ret->perms));
        ret->perms[4] = 0;
        snprintf(ret->name, sizeof(ret->name), "%s", m->name_exact ?: "");
}

static bool vma_equal(const struct vma *a, const struct vma *b) {
        return a->start == b->start && a->end == b->end && a->offset == b->offset && a->inode == b->inode &&
               a->dev_major == b->dev_major && a->dev_minor == b->dev_minor && strcmp(a->perms, b->perms) == 0 &&
               strcmp(a->name, b->name) == 0;
}

static void vma_format(const struct vma *v, char *buf, size_t size) {
        snprintf(buf, size, "%" PRIx64 "-%" PRIx64 " %s %" PRIx64 " %02x:%02x %" PRIu64 " %s", v->start, v->end,
                 v->perms, v->offset, v->dev_major, v->dev_minor, v->inode, v->name);
}

/* The VMA of l holding addr, or NULL. */
static const struct vma *layout_find(const struct layout *l, uint64_t addr) {
        size_t lo = 0, hi = l->n;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;

                if (addr < l->v[mid].start)
                        hi = mid;
                else if (addr >= l->v[mid].end)
                        lo = mid + 1;
                else
                        return &l->v[mid];
        }
        return NULL;
}

/* The daemon's listing of pid as a layout; [vsyscall], which is no VMA and which the ioctl does
 * not give, left out. 0 or the call's -errno. */
static int daemon_layout(memctl *c, pid_t pid, uint64_t start_time, struct layout *ret) {
        memctl_mappings *m = NULL;
        int r = memctl_list_mappings(c, pid, start_time, 0, &m);

        if (r < 0)
                return r;
        ret->n = 0;
        for (size_t i = 0; i < memctl_mappings_count(m); i++) {
                struct memctl_mapping mm = MEMCTL_MAPPING_INIT;

                if (memctl_mappings_get(m, i, &mm) < 0 || ret->n == VMAS_MAX) {
                        memctl_mappings_free(m);
                        return -EPROTO;
                }
                if (mm.kind == MEMCTL_KIND_VSYSCALL)
                        continue;
                vma_from_mapping(&mm, &ret->v[ret->n++]);
        }
        memctl_mappings_free(m);
        return 0;
}

/* Whether got equals want VMA for VMA; else why, in why. */
static bool layout_same(const struct layout *got, const struct layout *want, char *why, size_t size) {
        for (size_t i = 0; i < got->n || i < want->n; i++) {
                char g[700] = "(none)", w[700] = "(none)";

                if (i < got->n && i < want->n && vma_equal(&got->v[i], &want->v[i]))
                        continue;
                if (i < got->n)
                        vma_format(&got->v[i], g, sizeof(g));
                if (i < want->n)
                        vma_format(&want->v[i], w, sizeof(w));
                snprintf(why, size, "listing of %zu VMAs, the kernel's %zu: VMA %zu is [%s], the kernel's [%s]", got->n,
                         want->n, i, g, w);
                return false;
        }
        return true;
}

/* A Lookup of addrs: each answer must be the VMA of want holding the address, or none when
 * want has none. 0 when all are; -errno of the call; 1 and why in why on a wrong answer. */
static int lookup_check(memctl *c, pid_t pid, const uint64_t *addrs, size_t n, const struct layout *want, char *why,
                        size_t size) {
        memctl_lookup_reply *l = NULL;
        int r = memctl_lookup(c, pid, 0, addrs, n, 0, &l), bad = 0;

        if (r < 0)
                return r;
        for (size_t i = 0; i < n && !bad; i++) {
                struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;
                struct memctl_mapping m = MEMCTL_MAPPING_INIT;
                const struct vma *w = layout_find(want, addrs[i]);
                struct vma got;
                char g[700] = "(none)", ws[700] = "(none)";

                if (memctl_lookup_reply_get(l, i, &res) < 0) {
                        snprintf(why, size, "no result %zu", i);
                        bad = 1;
                        break;
                }
                if (res.mapping == MEMCTL_NO_MAPPING) {
                        if (!w)
                                continue;
                } else {
                        if (memctl_lookup_reply_get_mapping(l, res.mapping, &m) < 0) {
                                snprintf(why, size, "no mapping %zu", res.mapping);
                                bad = 1;
                                break;
                        }
                        vma_from_mapping(&m, &got);
                        if (w && vma_equal(&got, w))
                                continue;
                        vma_format(&got, g, sizeof(g));
                }
                if (w)
                        vma_format(w, ws, sizeof(ws));
                snprintf(why, size, "Lookup of 0x%" PRIx64 ": [%s], the kernel's [%s]", addrs[i], g, ws);
                bad = 1;
        }
        memctl_lookup_reply_free(l);
        return bad;
}

/* ------------------------------------------------------------------ the daemon's status */

struct store_status {
        char tracking[16];      /* "bpf", "none"; "" from a daemon without a store */
        bool has_counters;      /* layout_cache_* are there */
        uint64_t hits, misses, entries, bytes;
};

static uint64_t json_u64(struct json_object *o, const char *key, bool *found) {
        struct json_object *v;

        if (!json_object_object_get_ex(o, key, &v)) {
                *found = false;
                return 0;
        }
        return json_object_get_uint64(v);
}

static int store_status(memctl *c, struct store_status *ret) {
        _cleanup_free_ char *json = NULL;
        _cleanup_json_ struct json_object *o = NULL;
        struct json_object *v;
        bool found = true;
        int r = memctl_call_json(c, "io.memmapd.GetStatus", NULL, &json);

        if (r < 0)
                return r;
        o = json_tokener_parse(json);
        if (!o)
                return -EPROTO;
        *ret = (struct store_status) {};
        if (json_object_object_get_ex(o, "tracking", &v))
                snprintf(ret->tracking, sizeof(ret->tracking), "%s", json_object_get_string(v));
        ret->hits = json_u64(o, "layout_cache_hits", &found);
        ret->misses = json_u64(o, "layout_cache_misses", &found);
        ret->entries = json_u64(o, "layout_cache_entries", &found);
        ret->bytes = json_u64(o, "layout_cache_bytes", &found);
        ret->has_counters = found;
        return 0;
}

static void assert_status(memctl *c, struct store_status *ret) {
        assert_int_equal(store_status(c, ret), 0);
}

/* Whether the daemon serves from a store: tracking "bpf" and the counters there. */
static bool store_active(const struct store_status *s) {
        return s->has_counters && strcmp(s->tracking, "bpf") == 0;
}

/* Starts a daemon with --tracking=mode (and the extra argument, may be NULL). */
static int daemon_start_tracking(const char *mode, const char *extra, struct test_daemon *ret) {
        char set[64];
        const char *args[3] = { set, extra, NULL };

        snprintf(set, sizeof(set), "--tracking=%s", mode);
        return test_daemon_start(args, ret);
}

/* ------------------------------------------------------------------ a target that changes on command */

struct target {
        pid_t pid;
        int to, from;
        unsigned execs_left;
};

/* Starts mm-fixture (one step per byte on stdin, one byte back after the system call returned)
 * as uid/gid (-1: as the caller); exec_path: what its 'x' runs, NULL: itself, up to EXECS_MAX
 * times, each re-entering the step loop. */
static void target_start_as(uid_t uid, gid_t gid, const char *exec_path, struct target *ret) {
        int in[2], out[2];
        pid_t pid;
        char c = 0;

        assert_int_equal(pipe2(in, O_CLOEXEC), 0);
        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                const char *argv[EXECS_MAX + 3];
                size_t n = 0;

                argv[n++] = MM_FIXTURE_PATH;
                if (exec_path)
                        argv[n++] = exec_path;
                else
                        for (int i = 0; i < EXECS_MAX; i++)
                                argv[n++] = MM_FIXTURE_PATH;
                argv[n] = NULL;
                if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
                        _exit(127);
                if (uid != (uid_t) -1 && (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
                                          setresuid(uid, uid, uid) < 0))
                        _exit(126);
                execv(MM_FIXTURE_PATH, (char *const *) argv);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        assert_int_equal(read(out[0], &c, 1), 1);
        assert_int_equal(c, 'r');
        *ret = (struct target) { .pid = pid, .to = in[1], .from = out[0], .execs_left = exec_path ? 1 : EXECS_MAX };
}

/* One step; returns the fixture's answer ('k', 'e'; 'r' after an exec of itself). */
static char target_step(struct target *t, char c) {
        char reply = 0;

        assert_int_equal(write(t->to, &c, 1), 1);
        if (c == 'x')
                t->execs_left--;
        assert_int_equal(read(t->from, &reply, 1), 1);
        return reply;
}

static void target_stop(struct target *t) {
        close(t->to);
        close(t->from);
        kill(t->pid, SIGKILL);
        assert_int_equal(waitpid(t->pid, NULL, 0), t->pid);
}

/* ------------------------------------------------------------------ exactness rounds */

/* What the readers check their answers against: the truth at seq (odd while the target
 * changes; then no answer is checked). */
struct truth {
        pthread_mutex_t lock;
        const char *socket;
        pid_t pid;
        uint64_t seq;
        struct layout *layout;
        uint64_t addrs[ADDRS_MAX];
        size_t n_addrs;
        bool stop;
        /* What the readers found */
        uint64_t checked, unchecked, wrong;
        char first_wrong[1200];
};

static void truth_report(struct truth *t, const char *what) {
        pthread_mutex_lock(&t->lock);
        if (t->wrong++ == 0)
                snprintf(t->first_wrong, sizeof(t->first_wrong), "%s", what);
        pthread_mutex_unlock(&t->lock);
}

/* A client reading the target beside the rounds, on its own connection: an answer given while
 * the target did not change at all (seq the same and even before the call and after it) must
 * be the truth of that seq exactly. */
static void *reader_main(void *arg) {
        struct truth *t = arg;
        /* Zeroed: while the target changes nothing is copied into want, and the call's answer,
         * compared with whatever want holds, is not counted. */
        _cleanup_free_ struct layout *want = calloc(1, sizeof(*want)), *got = calloc(1, sizeof(*got));
        uint64_t addrs[ADDRS_MAX];
        memctl *c = NULL;

        if (!want || !got || memctl_connect(t->socket, &c) < 0) {
                truth_report(t, "reader: cannot start");
                return NULL;
        }
        for (unsigned i = 0;; i++) {
                char why[1024] = "";
                uint64_t s1, s2;
                size_t n_addrs;
                int r;

                pthread_mutex_lock(&t->lock);
                if (t->stop) {
                        pthread_mutex_unlock(&t->lock);
                        break;
                }
                s1 = t->seq;
                if (s1 % 2 == 0)
                        memcpy(want, t->layout, offsetof(struct layout, v) + t->layout->n * sizeof(want->v[0]));
                n_addrs = t->n_addrs;
                memcpy(addrs, t->addrs, sizeof(addrs));
                pthread_mutex_unlock(&t->lock);

                if (i % 2 == 0) {
                        r = daemon_layout(c, t->pid, 0, got);
                        if (r == 0 && !layout_same(got, want, why, sizeof(why)))
                                r = 1;
                } else
                        r = lookup_check(c, t->pid, addrs, n_addrs, want, why, sizeof(why));

                pthread_mutex_lock(&t->lock);
                s2 = t->seq;
                if (s1 != s2 || s1 % 2)
                        t->unchecked++;
                else
                        t->checked++;
                pthread_mutex_unlock(&t->lock);
                if (s1 != s2 || s1 % 2)
                        continue;
                if (r != 0) {
                        char msg[1100];

                        snprintf(msg, sizeof(msg), "reader, seq %" PRIu64 ": %s", s1,
                                 r < 0 ? strerror(-r) : why);
                        truth_report(t, msg);
                }
        }
        memctl_free(c);
        return NULL;
}

/* Addresses that a change from a to b concerns (around each VMA one has and the other has
 * not: before, at, inside and at the end of it, and just past it), then ones of VMAs that stayed. */
static size_t pick_addresses(const struct layout *a, const struct layout *b, unsigned *seed, uint64_t *ret) {
        size_t n = 0, changed = 0;
        const struct layout *sides[2] = { a, b };

        for (int s = 0; s < 2; s++)
                for (size_t i = 0; i < sides[s]->n && changed < 6; i++) {
                        const struct vma *v = &sides[s]->v[i];
                        const struct vma *o = layout_find(sides[!s], v->start);

                        if (o && vma_equal(o, v))
                                continue;
                        changed++;
                        ret[n++] = v->start - 1;
                        ret[n++] = v->start;
                        ret[n++] = v->start + (v->end - v->start) / 2;
                        ret[n++] = v->end - 1;
                        ret[n++] = v->end;
                }
        while (n < ADDRS_MAX - 2 && b->n > 0) {
                const struct vma *v = &b->v[(size_t) rand_r(seed) % b->n];

                ret[n++] = v->start + ((uint64_t) rand_r(seed) % (v->end - v->start));
        }
        ret[n++] = 0x1000;
        return n;
}

/* Whether the step's answer is right: 'k', or 'r' from the fixture after it exec()ed itself. */
static void assert_step(struct target *t, char step) {
        char reply = target_step(t, step);

        if (reply != (step == 'x' ? 'r' : 'k'))
                fail_msg("step %c: fixture answered '%c'", step, reply);
}

/* One check of the daemon against the truth: a listing and a Lookup of addrs on c. */
static void check_against(memctl *c, pid_t pid, const struct layout *truth, const uint64_t *addrs, size_t n_addrs,
                          struct layout *scratch, unsigned round) {
        char why[1024];
        int r;

        assert_int_equal(daemon_layout(c, pid, 0, scratch), 0);
        if (!layout_same(scratch, truth, why, sizeof(why)))
                fail_msg("round %u: stale or wrong answer: %s", round, why);
        r = lookup_check(c, pid, addrs, n_addrs, truth, why, sizeof(why));
        if (r != 0)
                fail_msg("round %u: stale or wrong answer: %s", round, r < 0 ? strerror(-r) : why);
}

/* Checks against the truth until both checks of a pass (a listing and a Lookup) were served
 * from the store (st: the status before): a layout read while events of other processes were
 * still to be drained is not kept, so the pass is repeated, each one checked, for up to 30 s
 * (a guard that only catches a store that never serves). How many passes were repeated. */
static unsigned until_served(memctl *c, pid_t pid, const struct layout *truth, const uint64_t *addrs, size_t n_addrs,
                             struct layout *scratch, unsigned round, struct store_status *st) {
        struct timespec t0, t;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (unsigned k = 0;; k++) {
                struct store_status after;

                check_against(c, pid, truth, addrs, n_addrs, scratch, round);
                assert_status(c, &after);
                if (after.hits >= st->hits + 2) {
                        *st = after;
                        return k;
                }
                *st = after;
                clock_gettime(CLOCK_MONOTONIC, &t);
                if (t.tv_sec - t0.tv_sec > 30)
                        fail_msg("round %u: the unchanged layout was never served from the store", round);
                usleep(1000);
        }
}

/* Rounds of: one change of the target's layout (mm-fixture's steps: anonymous maps, unmaps,
 * protection flips, mremap growing and moving, brk up and down, file maps and unmaps, stack
 * growth, steps that change nothing, and exec of itself), then the daemon's listing and a
 * Lookup, twice each, against the truth read right after the change. With a store, the second
 * pass must be served from it (hits grow) and the first must not (misses grow): the change was
 * seen. Then the same with READERS other clients reading the target all along. */
static void exactness_rounds(const char *socket, unsigned rounds) {
        static const char steps[] = "mmmuuppprrrbbBBfffFFsstd";
        _cleanup_free_ struct layout *prev = calloc(1, sizeof(*prev)), *now = calloc(1, sizeof(*now)),
                                     *scratch = calloc(1, sizeof(*scratch)), *shared = calloc(1, sizeof(*shared));
        struct truth t = { .lock = PTHREAD_MUTEX_INITIALIZER, .socket = socket, .layout = shared };
        unsigned seed = (unsigned) getpid(), stack_steps = 0, hit_retries = 0, execs = 0;
        struct store_status st0, st;
        pthread_t readers[READERS];
        struct timespec t0, t1;
        struct target tg;
        uint64_t addrs[ADDRS_MAX];
        size_t n_addrs;
        memctl *c = NULL;
        bool store;

        assert_non_null(prev);
        assert_non_null(now);
        assert_non_null(scratch);
        assert_non_null(shared);
        assert_int_equal(memctl_connect(socket, &c), 0);
        assert_status(c, &st0);
        store = store_active(&st0);
        printf("# tracking \"%s\", %s; seed %u\n", st0.tracking, store ? "cache hits asserted" : "no store to hit",
               seed);

        clock_gettime(CLOCK_MONOTONIC, &t0);
        target_start_as((uid_t) -1, (gid_t) -1, NULL, &tg);
        t.pid = tg.pid;
        assert_int_equal(raw_layout(tg.pid, prev), 0);
        for (unsigned round = 0; round < 2 * rounds; round++) {
                char step = steps[(size_t) rand_r(&seed) % (sizeof(steps) - 1)];

                if (round == rounds) {
                        /* The second half: other clients read the same process meanwhile. */
                        for (int i = 0; i < READERS; i++)
                                assert_int_equal(pthread_create(&readers[i], NULL, reader_main, &t), 0);
                }
                if (step == 's' && ++stack_steps > 200)
                        step = 'm';
                if (round % 97 == 50 && tg.execs_left > 0)
                        step = 'x';
                execs += step == 'x';

                pthread_mutex_lock(&t.lock);
                t.seq++;
                pthread_mutex_unlock(&t.lock);
                assert_step(&tg, step);
                assert_int_equal(raw_layout(tg.pid, now), 0);
                n_addrs = pick_addresses(prev, now, &seed, addrs);
                pthread_mutex_lock(&t.lock);
                memcpy(shared, now, offsetof(struct layout, v) + now->n * sizeof(now->v[0]));
                memcpy(t.addrs, addrs, sizeof(addrs));
                t.n_addrs = n_addrs;
                t.seq++;
                pthread_mutex_unlock(&t.lock);

                /* The first pass reads the changed process (a miss where a store is); the
                 * second finds it unchanged (a hit where a store is). */
                assert_status(c, &st);
                check_against(c, tg.pid, now, addrs, n_addrs, scratch, round);
                if (store && round < rounds) {
                        struct store_status after;
                        char why[8];

                        assert_status(c, &after);
                        if (!layout_same(prev, now, why, sizeof(why)) && after.misses == st.misses)
                                fail_msg("round %u (step %c): the first read after a change was no miss", round, step);
                        st = after;
                }
                if (store && round < rounds)
                        hit_retries += until_served(c, tg.pid, now, addrs, n_addrs, scratch, round, &st);
                else
                        check_against(c, tg.pid, now, addrs, n_addrs, scratch, round);
                memcpy(prev, now, offsetof(struct layout, v) + now->n * sizeof(now->v[0]));
        }
        pthread_mutex_lock(&t.lock);
        t.stop = true;
        pthread_mutex_unlock(&t.lock);
        for (int i = 0; i < READERS; i++)
                pthread_join(readers[i], NULL);
        if (store) {
                /* Held by the store now (the readers' last reads may have raced a change)... */
                assert_status(c, &st);
                hit_retries += until_served(c, tg.pid, now, addrs, n_addrs, scratch, 2 * rounds, &st);
        }
        assert_status(c, &st);
        target_stop(&tg);
        if (store) {
                /* The target's entry goes with its exit (dropped when the daemon drains the
                 * event: polled, with a guard that only catches hangs). */
                struct store_status gone;

                for (int i = 0;; i++) {
                        assert_status(c, &gone);
                        if (gone.entries < st.entries)
                                break;
                        assert_true(i < 3000);
                        usleep(10000);
                }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_status(c, &st);
        printf("# %u rounds (%u execs) in %.1f s, %u passes repeated for a hit; readers: %" PRIu64
               " answers checked, %" PRIu64 " taken during a change; store: %" PRIu64 " hits, %" PRIu64
               " misses\n", 2 * rounds, execs, (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9,
               hit_retries, t.checked, t.unchecked, st.hits - st0.hits, st.misses - st0.misses);
        if (t.wrong > 0)
                fail_msg("%" PRIu64 " stale or wrong answers to the readers; the first: %s", t.wrong, t.first_wrong);
        /* The readers' check must have happened, or it proves nothing. */
        assert_true(t.checked >= 100);
        /* One exec every 97 rounds (round % 97 == 50). */
        assert_true(execs >= 2 * rounds / 100);
        memctl_free(c);
}

/* Under ASan a round costs about 15 times as much: half as many there keep the suite's time. */
#ifdef __SANITIZE_ADDRESS__
#define ROUNDS 500
#else
#define ROUNDS 1000
#endif

static void test_exactness(void **state) {
        exactness_rounds(daemon_default.socket, ROUNDS);
}

/* Tracking forced off: the same rounds pass, the daemon says "none" and its store stays empty,
 * with either backend. */
static void exactness_untracked(const char *socket) {
        struct store_status st;
        memctl *c = NULL;

        exactness_rounds(socket, ROUNDS / 2);
        assert_int_equal(memctl_connect(socket, &c), 0);
        assert_status(c, &st);
        if (st.tracking[0])
                assert_string_equal(st.tracking, "none");
        assert_int_equal(st.hits, 0);
        assert_int_equal(st.misses, 0);
        assert_int_equal(st.entries, 0);
        assert_int_equal(st.bytes, 0);
        memctl_free(c);
}

static void test_exactness_untracked(void **state) {
        exactness_untracked(daemon_untracked.socket);
}

static void test_exactness_untracked_maps_backend(void **state) {
        exactness_untracked(daemon_untracked_maps.socket);
}

/* ------------------------------------------------------------------ a layout changing from several threads */

#define CHURN_THREADS 4
#define SLOT_PAGES 2
#define SLOT_STRIDE_PAGES 4
#define SLOT_GAP_PAGES 2        /* PROT_NONE between slots, and around them: no VMA ever merges */
#define CHURN_RESERVED ((size_t) (CHURN_THREADS * SLOT_STRIDE_PAGES + SLOT_GAP_PAGES) * (size_t) page_size)

/* Shared with the churning target (MAP_SHARED before the fork): each thread's sequence number,
 * 2k while its slot has had k toggles and 2k+1 during toggle k+1. Toggle k+1 maps a new memfd
 * named "churn-T-K+1" read-write over the slot when k is even (anonymous VMA names need
 * CONFIG_ANON_VMA_NAME, which not every kernel has), puts back the placeholder (anonymous,
 * read-only) when k is odd. Each one system call (MAP_FIXED replaces under one lock). */
struct churn_shared {
        _Atomic uint64_t seq[CHURN_THREADS];
        _Atomic bool stop;
};

static struct churn_shared *churn;
static uint8_t *churn_base;
static long page_size;

static uint8_t *slot_of(unsigned t) {
        return churn_base + ((size_t) t * SLOT_STRIDE_PAGES + SLOT_GAP_PAGES) * (size_t) page_size;
}

static void *churn_thread(void *arg) {
        unsigned t = (unsigned) (uintptr_t) arg;
        uint8_t *slot = slot_of(t);
        size_t len = SLOT_PAGES * (size_t) page_size;

        for (uint64_t k = 0; !atomic_load(&churn->stop); k++) {
                char name[32];

                if (k % 2 == 0) {
                        int fd;

                        snprintf(name, sizeof(name), "churn-%u-%" PRIu64, t, k + 1);
                        fd = memfd_create(name, MFD_CLOEXEC);
                        if (fd < 0 || ftruncate(fd, (off_t) len) < 0)
                                _exit(3);
                        atomic_store(&churn->seq[t], 2 * k + 1);
                        if (mmap(slot, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) != slot)
                                _exit(4);
                        close(fd);
                        /* Contents that identify the region too. */
                        memcpy(slot, name, sizeof(name));
                } else {
                        atomic_store(&churn->seq[t], 2 * k + 1);
                        if (mmap(slot, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != slot)
                                _exit(5);
                }
                atomic_store(&churn->seq[t], 2 * k + 2);
                /* Paced (thread t every t+1 ms), so that many answers fall between two
                 * toggles of a slot, where exactly one state is right, and some between any two
                 * changes of the process, where a store serves what it holds. */
                {
                        struct timespec ts = { 0, (long) (t + 1) * 1000 * 1000 };

                        nanosleep(&ts, NULL);
                }
        }
        return NULL;
}

static pid_t churn_start(void) {
        pid_t pid;

        page_size = sysconf(_SC_PAGESIZE);
        churn = mmap(NULL, sizeof(*churn), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(churn != MAP_FAILED);
        /* The slots within one PROT_NONE reservation: no other mapping lands between them. */
        churn_base = mmap(NULL, CHURN_RESERVED, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        assert_true(churn_base != MAP_FAILED);
        for (unsigned t = 0; t < CHURN_THREADS; t++)
                assert_true(mmap(slot_of(t), SLOT_PAGES * (size_t) page_size, PROT_READ,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == slot_of(t));
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                pthread_t th[CHURN_THREADS];

                for (unsigned t = 0; t < CHURN_THREADS; t++)
                        if (pthread_create(&th[t], NULL, churn_thread, (void *) (uintptr_t) t) != 0)
                                _exit(2);
                for (unsigned t = 0; t < CHURN_THREADS; t++)
                        pthread_join(th[t], NULL);
                _exit(0);
        }
        return pid;
}

/* Whether an answer about slot t is a state the slot had while its sequence number went from
 * before to after: the placeholder with an even toggle count or during a toggle, the memfd
 * churn-T-K for an odd K it had or was toggling to or from. 1 when the window admits exactly one state
 * (the check had teeth), 0 when several, -1 when none. */
static int slot_answer_valid(unsigned t, const struct vma *v, uint64_t before, uint64_t after) {
        uint64_t slot = (uint64_t) (uintptr_t) slot_of(t), end = slot + SLOT_PAGES * (uint64_t) page_size;
        bool exact = before == after && before % 2 == 0;
        const char *name;
        char prefix[32];
        uint64_t k;

        snprintf(prefix, sizeof(prefix), "/memfd:churn-%u-", t);
        if (!v)
                return -1;
        if (v->start != slot || v->end != end)
                return -1;
        if (strcmp(v->perms, "r--p") == 0 && v->name[0] == 0) {
                /* The placeholder: with k toggles, k even; and during any toggle. */
                if (before == after && before % 2 == 0 && (before / 2) % 2 == 1)
                        return -1;
                return exact ? 1 : 0;
        }
        if (strcmp(v->perms, "rw-s") != 0)
                return -1;
        name = strstr(v->name, prefix);
        if (!name)
                return -1;
        k = strtoull(name + strlen(prefix), NULL, 10);
        /* Named K (odd): from seq 2K-1 (named before the bump) to 2K+1 (unmapping). */
        if (k % 2 == 0 || 2 * k + 1 < before || 2 * k - 1 > after)
                return -1;
        return exact ? 1 : 0;
}

struct churn_reader {
        const char *socket;
        pid_t pid;
        unsigned answers;
        uint64_t exact, loose, holes, wrong;
        char first_wrong[1024];
};

static void churn_wrong(struct churn_reader *r, const char *msg) {
        if (r->wrong++ == 0)
                snprintf(r->first_wrong, sizeof(r->first_wrong), "%s", msg);
}

/* Listings and Lookups of the slots, each bracketed by the slots' sequence numbers. */
static void *churn_reader_main(void *arg) {
        struct churn_reader *r = arg;
        _cleanup_free_ struct layout *got = malloc(sizeof(*got));
        memctl *c = NULL;

        if (!got || memctl_connect(r->socket, &c) < 0) {
                churn_wrong(r, "cannot start");
                return NULL;
        }
        for (unsigned i = 0; i < r->answers; i++) {
                uint64_t before[CHURN_THREADS], after[CHURN_THREADS], addrs[CHURN_THREADS * 3];
                memctl_lookup_reply *l = NULL;
                int e;

                for (unsigned t = 0; t < CHURN_THREADS; t++) {
                        uint64_t s = (uint64_t) (uintptr_t) slot_of(t);

                        before[t] = atomic_load(&churn->seq[t]);
                        addrs[3 * t] = s;
                        addrs[3 * t + 1] = s + (uint64_t) page_size;
                        addrs[3 * t + 2] = s + SLOT_PAGES * (uint64_t) page_size - 1;
                }
                if (i % 2 == 0)
                        e = daemon_layout(c, r->pid, 0, got);
                else
                        e = memctl_lookup(c, r->pid, 0, addrs, CHURN_THREADS * 3, 0, &l);
                for (unsigned t = 0; t < CHURN_THREADS; t++)
                        after[t] = atomic_load(&churn->seq[t]);
                if (e < 0) {
                        char msg[64];

                        snprintf(msg, sizeof(msg), "call failed: %s", strerror(-e));
                        churn_wrong(r, msg);
                        break;
                }
                if (l) {
                        /* The Lookup's answers as a layout of the slots' VMAs. */
                        got->n = 0;
                        for (size_t j = 0; j < CHURN_THREADS * 3; j++) {
                                struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;
                                struct memctl_mapping m = MEMCTL_MAPPING_INIT;
                                struct vma v;

                                if (memctl_lookup_reply_get(l, j, &res) < 0 || res.mapping == MEMCTL_NO_MAPPING ||
                                    memctl_lookup_reply_get_mapping(l, res.mapping, &m) < 0) {
                                        churn_wrong(r, "a slot address without a mapping");
                                        continue;
                                }
                                vma_from_mapping(&m, &v);
                                if (!layout_find(got, v.start) && got->n < VMAS_MAX) {
                                        /* Kept sorted: layout_find() searches by halves. */
                                        size_t at = got->n;

                                        while (at > 0 && got->v[at - 1].start > v.start) {
                                                got->v[at] = got->v[at - 1];
                                                at--;
                                        }
                                        got->v[at] = v;
                                        got->n++;
                                }
                        }
                        l = memctl_lookup_reply_free(l);
                }
                for (unsigned t = 0; t < CHURN_THREADS; t++)
                        for (unsigned a = 0; a < 3; a++) {
                                uint64_t addr = (uint64_t) (uintptr_t) slot_of(t) + (a == 2 ? SLOT_PAGES * (uint64_t) page_size - 1 : a * (uint64_t) page_size);
                                const struct vma *v = layout_find(got, addr);
                                int ok = slot_answer_valid(t, v, before[t], after[t]);

                                /* A listing is read VMA after VMA, not at one instant: one taken
                                 * while the slot was replaced may leave it out (but never show a
                                 * VMA the process did not have). A Lookup always answers. */
                                if (!v && i % 2 == 0 && before[t] != after[t]) {
                                        r->holes += a == 0;
                                        continue;
                                }
                                if (ok < 0) {
                                        char msg[1024], vs[700] = "(none)";

                                        if (v)
                                                vma_format(v, vs, sizeof(vs));
                                        snprintf(msg, sizeof(msg), "%s, slot %u at 0x%" PRIx64 ": [%s] while its sequence "
                                                 "went %" PRIu64 " -> %" PRIu64, i % 2 ? "Lookup" : "listing", t, addr, vs,
                                                 before[t], after[t]);
                                        churn_wrong(r, msg);
                                }
                                if (a == 0) {
                                        r->exact += ok == 1;
                                        r->loose += ok == 0;
                                }
                        }
        }
        memctl_free(c);
        return NULL;
}

/* A target whose CHURN_THREADS threads map and unmap their slots all along while three
 * clients list and look them up: every answer about a slot must be a state the slot had during
 * the call (the seqlock property of its sequence number). A store serving a layout after the
 * process changed gives a state from before the call, which fails as soon as the window holds
 * one state only, as most do. */
static void check_churn(const char *socket) {
        struct churn_reader rd[READERS];
        pthread_t th[READERS];
        uint64_t exact = 0, loose = 0, holes = 0, toggles = 0;
        struct store_status st0, st;
        memctl *c = NULL;
        int status;
        pid_t pid;

        assert_int_equal(memctl_connect(socket, &c), 0);
        assert_status(c, &st0);
        pid = churn_start();

        for (int i = 0; i < READERS; i++) {
                rd[i] = (struct churn_reader) { .socket = socket, .pid = pid, .answers = 1500 };
                assert_int_equal(pthread_create(&th[i], NULL, churn_reader_main, &rd[i]), 0);
        }
        for (int i = 0; i < READERS; i++)
                pthread_join(th[i], NULL);
        atomic_store(&churn->stop, true);
        for (unsigned t = 0; t < CHURN_THREADS; t++)
                toggles += atomic_load(&churn->seq[t]) / 2;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        for (int i = 0; i < READERS; i++) {
                if (rd[i].wrong)
                        fail_msg("reader %d: %" PRIu64 " answers no layout the process had; the first: %s", i,
                                 rd[i].wrong, rd[i].first_wrong);
                exact += rd[i].exact;
                loose += rd[i].loose;
                holes += rd[i].holes;
        }
        assert_status(c, &st);
        memctl_free(c);
        printf("# %u answers during %" PRIu64 " toggles: %" PRIu64 " slot states checked exactly, %" PRIu64
               " within a toggle, %" PRIu64 " left out of a listing during a toggle; store: %" PRIu64 " hits, %" PRIu64
               " misses\n", READERS * 1500, toggles, exact, loose, holes, st.hits - st0.hits, st.misses - st0.misses);
        /* Without answers that admit one state only, the check could not fail; where a store
         * is, it must have served some of them, or its staleness was never at stake. */
        assert_true(exact >= 500);
        if (store_active(&st0))
                assert_true(st.hits > st0.hits);
        munmap(churn_base, CHURN_RESERVED);
        munmap(churn, sizeof(*churn));
}

static void test_churn(void **state) {
        check_churn(daemon_default.socket);
}

static void test_churn_untracked(void **state) {
        check_churn(daemon_untracked.socket);
}

/* ------------------------------------------------------------------ pid reuse, exec and exit */

/* In the forked children below cmocka cannot fail a test: they report the line that failed
 * through their exit status and stderr. */
#define CHECK(cond)                                                                                 \
        do {                                                                                        \
                if (!(cond)) {                                                                      \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
                        return __LINE__ % 250 + 1;                                                  \
                }                                                                                   \
        } while (0)

/* A process (at pid next when it can be had; 0: any) that maps two pages of a memfd named
 * name, says where on *ret_addr, and waits: a byte 'x' on its stdin makes it exec /bin/cat
 * (which then reads the same stdin), end of input ends it. */
struct named_proc {
        pid_t pid;
        int to;
        uint64_t addr;
};

static int named_start(const char *name, pid_t next, struct named_proc *ret) {
        int in[2], out[2];
        pid_t pid;

        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        /* Right before the fork: the less in between, the less often another process takes
         * the pid first. */
        if (next > 0 && !test_set_next_pid(next))
                return -EPERM;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                size_t len = 2 * (size_t) sysconf(_SC_PAGESIZE);
                int fd = memfd_create(name, MFD_CLOEXEC);
                void *p = fd < 0 || ftruncate(fd, (off_t) len) < 0
                        ? MAP_FAILED : mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
                uint64_t a = (uint64_t) (uintptr_t) p;
                char c;

                /* Only the parent may hold the write end: its close ends this process. */
                close(in[1]);
                close(out[0]);
                if (p == MAP_FAILED || write(out[1], &a, sizeof(a)) != sizeof(a))
                        _exit(2);
                if (read(in[0], &c, 1) == 1 && c == 'x' && dup2(in[0], 0) == 0)
                        execl("/bin/cat", "cat", (char *) NULL);
                _exit(0);
        }
        close(in[0]);
        close(out[1]);
        *ret = (struct named_proc) { .pid = pid, .to = in[1] };
        if (read(out[0], &ret->addr, sizeof(ret->addr)) != sizeof(ret->addr)) {
                close(out[0]);
                return -EIO;
        }
        close(out[0]);
        return 0;
}

static int named_end(struct named_proc *p) {
        int status;

        close(p->to);
        if (waitpid(p->pid, &status, 0) != p->pid)
                return -errno;
        return status;
}

/* The name of the mapping holding addr in pid, by a Lookup (start_time as the call takes it):
 * 0 and the name ("" when unnamed or unmapped), or the call's -errno. */
static int lookup_name(memctl *c, pid_t pid, uint64_t start_time, uint64_t addr, char *ret, size_t size) {
        struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;
        struct memctl_mapping m = MEMCTL_MAPPING_INIT;
        memctl_lookup_reply *l = NULL;
        int r = memctl_lookup(c, pid, start_time, &addr, 1, 0, &l);

        if (r < 0)
                return r;
        ret[0] = 0;
        if (memctl_lookup_reply_get(l, 0, &res) == 0 && res.mapping != MEMCTL_NO_MAPPING &&
            memctl_lookup_reply_get_mapping(l, res.mapping, &m) == 0 && m.name_exact)
                snprintf(ret, size, "%s", m.name_exact);
        memctl_lookup_reply_free(l);
        return 0;
}

/* Whether a listing of pid names a mapping that contains needle. -errno of the call. */
static int listing_has(memctl *c, pid_t pid, const char *needle) {
        _cleanup_free_ struct layout *l = malloc(sizeof(*l));
        int r;

        if (!l)
                return -ENOMEM;
        r = daemon_layout(c, pid, 0, l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l->n; i++)
                if (strstr(l->v[i].name, needle))
                        return 1;
        return 0;
}

static bool comm_is(pid_t pid, const char *comm) {
        char path[64], buf[64] = "";
        _cleanup_close_ int fd = -1;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/comm", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return false;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        return strcmp(buf, comm) == 0;
}

/* Polls for the state, up to 30 s (a guard that only catches hangs). */
static bool wait_comm(pid_t pid, const char *comm) {
        for (int i = 0; i < 3000; i++) {
                if (comm_is(pid, comm))
                        return true;
                usleep(10000);
        }
        return false;
}

/* Waits (bounded) until the kernel's own text of pid's maps holds needle: comm changes early in
 * an exec, the new program's file is mapped later. */
static bool wait_maps_has(pid_t pid, const char *needle) {
        char path[64];

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        for (int i = 0; i < 3000; i++) {
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                FILE *f = fopen(path, "re");

                if (f) {
                        bool found = getdelim(&text, &len, 0, f) > 0 && strstr(text, needle);

                        fclose(f);
                        if (found)
                                return true;
                }
                usleep(10000);
        }
        return false;
}

static uint64_t start_time_of(pid_t pid) {
        uint64_t v = 0;

        return test_proc_stat_field(pid, 22, &v) == 0 ? v : 0;
}

#define REUSE_PID 1000
#define REUSE_ROUNDS 24

/* One round: A at REUSE_PID, looked up (and so stored); A exits; B gets REUSE_PID (after A's
 * clock tick, or possibly within it: then only the daemon's own knowledge of the exit tells A
 * and B apart); B's layout is answered, not A's; A's start time is refused; B execs cat: cat's
 * layout; B exits: NoSuchProcess. */
static int reuse_round(memctl *c, int round, pid_t want, unsigned *ret_same_tick, unsigned *ret_missed) {
        char name_a[32], name_b[32], got[NAME_MAX_LEN];
        struct named_proc a, b;
        uint64_t ta, tb;
        pid_t pid;
        int r;

        snprintf(name_a, sizeof(name_a), "reuse-A-%d", round);
        snprintf(name_b, sizeof(name_b), "reuse-B-%d", round);
        CHECK(named_start(name_a, want, &a) == 0);
        CHECK(!want || a.pid == want);
        pid = a.pid;
        ta = start_time_of(a.pid);
        CHECK(ta > 0);
        for (int i = 0; i < 2; i++) {
                CHECK(lookup_name(c, a.pid, 0, a.addr, got, sizeof(got)) == 0);
                CHECK(strstr(got, name_a));
                CHECK(listing_has(c, a.pid, name_a) == 1);
        }
        CHECK(named_end(&a) == 0);
        CHECK(lookup_name(c, pid, 0, a.addr, got, sizeof(got)) == -ESRCH);

        /* Half the rounds let B start in A's clock tick if it will. */
        if (round % 2 == 0)
                test_wait_past_tick(ta);
        CHECK(named_start(name_b, pid, &b) == 0);
        if (b.pid != pid) {
                /* Outside a namespace of its own another process may take the pid first. */
                CHECK(!want);
                (*ret_missed)++;
                CHECK(named_end(&b) == 0);
                return 0;
        }
        tb = start_time_of(b.pid);
        *ret_same_tick += tb == ta;
        /* B forked from the same parent as A: its named pages most likely at A's address. */
        for (int i = 0; i < 2; i++) {
                CHECK(lookup_name(c, pid, 0, b.addr, got, sizeof(got)) == 0);
                if (!strstr(got, name_b)) {
                        fprintf(stderr, "round %d: pid %d at 0x%" PRIx64 " is '%s', not B's %s (A's at 0x%" PRIx64 ")\n",
                                round, pid, b.addr, got, name_b, a.addr);
                        return 200;
                }
                CHECK(lookup_name(c, pid, 0, a.addr, got, sizeof(got)) == 0);
                CHECK(strstr(got, name_a) == NULL);
                CHECK(listing_has(c, pid, name_b) == 1);
                CHECK(listing_has(c, pid, name_a) == 0);
                CHECK(lookup_name(c, pid, tb, b.addr, got, sizeof(got)) == 0);
                if (tb != ta) {
                        r = lookup_name(c, pid, ta, b.addr, got, sizeof(got));
                        CHECK(r == -ESTALE || r == -ESRCH);
                }
        }

        /* exec: the new program's layout, nothing of B's. */
        CHECK(write(b.to, "x", 1) == 1);
        CHECK(wait_comm(b.pid, "cat"));
        CHECK(wait_maps_has(b.pid, "/cat"));
        CHECK(lookup_name(c, pid, 0, b.addr, got, sizeof(got)) == 0);
        CHECK(strstr(got, name_b) == NULL);
        CHECK(listing_has(c, pid, name_b) == 0);
        CHECK(listing_has(c, pid, "/cat") == 1);
        CHECK(listing_has(c, pid, "/cat") == 1);

        /* exit: gone. */
        CHECK(named_end(&b) == 0);
        CHECK(lookup_name(c, pid, 0, b.addr, got, sizeof(got)) == -ESRCH);
        CHECK(listing_has(c, pid, "/cat") == -ESRCH);
        return 0;
}

/* pid 1 of a new pid namespace, in a new mount namespace with its own /proc: the daemon runs
 * here too, so that its pids are the namespace's, which ns_last_pid steers exactly (nothing
 * else on the machine takes them). Tracking is off there (the daemon's own decision): the
 * rounds with the store run outside, below. */
static int reuse_init(const char *tracking) {
        struct store_status st0, st;
        struct test_daemon d;
        unsigned same_tick = 0;
        memctl *c = NULL;
        int r = 0;

        CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
        CHECK(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0);
        CHECK(getpid() == 1);
        CHECK(daemon_start_tracking(tracking, NULL, &d) == 0);
        CHECK(memctl_connect(d.socket, &c) == 0);
        CHECK(store_status(c, &st0) == 0);
        /* The tracker counts the machine's pids, not the namespace's: a daemon in a pid
         * namespace of its own runs without it. */
        CHECK(strcmp(st0.tracking, "none") == 0);
        for (int round = 0; round < REUSE_ROUNDS && r == 0; round++)
                r = reuse_round(c, round, REUSE_PID, &same_tick, NULL);
        printf("# %d rounds of pid reuse at pid %d (tracking \"%s\"), %u with B in A's clock tick\n", REUSE_ROUNDS,
               REUSE_PID, st0.tracking, same_tick);
        /* This process ends with _exit(): what it printed must go out now. */
        fflush(stdout);
        if (r == 0 && store_active(&st0)) {
                /* Every process looked up has exited: their entries go (the drain runs on the
                 * daemon's loop, so poll, with a guard that only catches hangs). */
                for (int i = 0;; i++) {
                        CHECK(store_status(c, &st) == 0);
                        if (st.entries == 0)
                                break;
                        CHECK(i < 3000);
                        usleep(10000);
                }
                CHECK(st.hits > st0.hits);
        }
        memctl_free(c);
        CHECK(test_daemon_stop(&d) == 0);
        return r;
}

static int reuse_in_namespace(const char *tracking) {
        int status;
        pid_t init;

        if (unshare(CLONE_NEWPID | CLONE_NEWNS) < 0)
                return 254;
        init = fork();
        if (init < 0)
                return 253;
        if (init == 0)
                test_child_exit(reuse_init(tracking));
        if (waitpid(init, &status, 0) != init)
                return 252;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void check_pid_reuse(const char *tracking) {
        int status;
        pid_t child;

        if (geteuid() != 0) {
                printf("[  SKIPPED ] needs root for pid and mount namespaces and ns_last_pid\n");
                skip();
        }
        fflush(stdout);
        child = fork();
        assert_true(child >= 0);
        if (child == 0)
                test_child_exit(reuse_in_namespace(tracking));
        assert_int_equal(waitpid(child, &status, 0), child);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 254) {
                printf("[  SKIPPED ] cannot create a pid namespace: %s\n", strerror(EPERM));
                skip();
        }
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_pid_reuse_namespace(void **state) {
        check_pid_reuse("auto");
}

/* The same rounds against a daemon outside (the machine's pids, the store where tracking
 * loads): ns_last_pid steers B to A's pid unless another process forks in between, which
 * only costs a round. */
static void pid_reuse_machine(const char *socket) {
        unsigned same_tick = 0, missed = 0, reused = 0;
        struct store_status st0, st;
        memctl *c = NULL;

        /* Probe by writing back what is there. */
        if (geteuid() != 0 || !test_set_next_pid(getpid() + 1)) {
                printf("[  SKIPPED ] cannot steer pid allocation (needs root and ns_last_pid)\n");
                skip();
        }
        assert_int_equal(memctl_connect(socket, &c), 0);
        assert_status(c, &st0);
        for (int round = 0; reused < REUSE_ROUNDS; round++) {
                unsigned before = missed;

                assert_true(round < 30 * REUSE_ROUNDS);
                assert_int_equal(reuse_round(c, round, 0, &same_tick, &missed), 0);
                reused += missed == before;
        }
        assert_status(c, &st);
        printf("# %u rounds of pid reuse (tracking \"%s\"), %u with B in A's clock tick, %u rounds lost the pid to "
               "another process; store: %" PRIu64 " hits\n", reused, st0.tracking, same_tick, missed, st.hits - st0.hits);
        if (store_active(&st0))
                assert_true(st.hits > st0.hits);
        memctl_free(c);
}

static void test_pid_reuse(void **state) {
        pid_reuse_machine(daemon_default.socket);
}

static void test_pid_reuse_untracked(void **state) {
        pid_reuse_machine(daemon_untracked.socket);
}

/* ------------------------------------------------------------------ access after an exec */

struct access_case {
        const char *socket;
        pid_t pid;
        int to;
        const char *comm;
};

/* As UID_A: the target (UID_A's) is read and stored; it execs a setuid-root program; from then
 * on every answer is PermissionDenied, on this connection (whose access decision is recent) and
 * on a new one. */
static int as_uid_a_after_setuid_exec(void *userdata) {
        const struct access_case *a = userdata;
        _cleanup_free_ struct layout *l = malloc(sizeof(*l));
        memctl *c = NULL, *c2 = NULL;
        char name[NAME_MAX_LEN];
        int r;

        CHECK(l);
        CHECK(memctl_connect(a->socket, &c) == 0);
        for (int i = 0; i < 3; i++) {
                CHECK(daemon_layout(c, a->pid, 0, l) == 0);
                CHECK(l->n > 0);
                CHECK(lookup_name(c, a->pid, 0, l->v[0].start, name, sizeof(name)) == 0);
        }
        CHECK(write(a->to, "x", 1) == 1);
        CHECK(wait_comm(a->pid, a->comm));
        r = daemon_layout(c, a->pid, 0, l);
        if (r != -EACCES) {
                fprintf(stderr, "listing after the setuid exec on the same connection: %s (%zu VMAs)\n",
                        r < 0 ? strerror(-r) : "answered", r < 0 ? 0 : l->n);
                return 100;
        }
        r = lookup_name(c, a->pid, 0, l->v[0].start, name, sizeof(name));
        if (r != -EACCES) {
                fprintf(stderr, "Lookup after the setuid exec on the same connection: %s\n", r < 0 ? strerror(-r) : "answered");
                return 101;
        }
        CHECK(memctl_connect(a->socket, &c2) == 0);
        CHECK(daemon_layout(c2, a->pid, 0, l) == -EACCES);
        memctl_free(c2);
        memctl_free(c);
        return 0;
}

static void check_setuid_exec(const char *socket) {
        char dir[] = "/tmp/memmapd-suid-XXXXXX", path[64], cmd[256];
        struct access_case a;
        struct target tg;
        _cleanup_free_ char *out = NULL;
        int r;

        if (geteuid() != 0) {
                printf("[  SKIPPED ] needs root to make a setuid program and switch uids\n");
                skip();
        }
        assert_non_null(mkdtemp(dir));
        assert_int_equal(chmod(dir, 0755), 0);
        snprintf(path, sizeof(path), "%s/suid-cat", dir);
        snprintf(cmd, sizeof(cmd), "cp /bin/cat %s && chown 0:0 %s && chmod 4755 %s && echo ok", path, path, path);
        out = test_run_capture(cmd);
        assert_non_null(out);
        assert_string_equal(out, "ok\n");
        target_start_as(UID_A, GID_A, path, &tg);
        a = (struct access_case) { socket, tg.pid, tg.to, "suid-cat" };
        r = run_as(UID_A, GID_A, as_uid_a_after_setuid_exec, &a);
        target_stop(&tg);
        unlink(path);
        rmdir(dir);
        assert_int_equal(r, 0);
}

static void test_setuid_exec(void **state) {
        check_setuid_exec(daemon_default.socket);
}

static void test_setuid_exec_untracked(void **state) {
        check_setuid_exec(daemon_untracked.socket);
}

/* ------------------------------------------------------------------ after lost events */

static uint64_t mono_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* GetStatus's counter key on c (0 when absent). */
static uint64_t status_counter(memctl *c, const char *key) {
        _cleanup_free_ char *json = NULL;
        _cleanup_json_ struct json_object *o = NULL;
        bool found = true;

        assert_int_equal(memctl_call_json(c, "io.memmapd.GetStatus", NULL, &json), 0);
        o = json_tokener_parse(json);
        assert_non_null(o);
        return json_u64(o, key, &found);
}

/* A process that clones a child sharing its address space on 'c' (answering the child's pid)
 * and maps a new page on 'm' (answering its address); the child waits until it ends. */
struct sharer {
        pid_t pid;
        int to, from;
};

static char sharer_stack[64 * 1024] __attribute__((aligned(16)));

static int sharer_hold[2];

/* Its own fd table: it keeps the read end only, and ends when the parent does. */
static int sharer_child(void *arg) {
        char b;

        (void) arg;
        close(sharer_hold[1]);
        while (read(sharer_hold[0], &b, 1) < 0 && errno == EINTR)
                ;
        return 0;
}

static void sharer_main(int in, int out) {
        int *hold = sharer_hold;

        if (pipe2(hold, O_CLOEXEC) < 0)
                _exit(1);
        for (;;) {
                uint64_t answer = 0;
                char c;

                if (read(in, &c, 1) != 1)
                        _exit(0);
                if (c == 'c')
                        answer = (uint64_t) clone(sharer_child, sharer_stack + sizeof(sharer_stack),
                                                  CLONE_VM | SIGCHLD, NULL);
                else if (c == 'm')
                        answer = (uint64_t) (uintptr_t) mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
                                                             -1, 0);
                if (write(out, &answer, sizeof(answer)) != sizeof(answer))
                        _exit(1);
        }
}

static void sharer_start(struct sharer *ret) {
        ret->pid = test_fork_piped(sharer_main, &ret->to, &ret->from);
        assert_true(ret->pid > 0);
}

static uint64_t sharer_ask(struct sharer *s, char c) {
        uint64_t answer;

        assert_int_equal(write(s->to, &c, 1), 1);
        assert_int_equal(read(s->from, &answer, sizeof(answer)), sizeof(answer));
        return answer;
}

/* The first, middle and last byte of each VMA of l, and one address past them all. */
static size_t layout_addresses(const struct layout *l, uint64_t *ret) {
        size_t n = 0;

        for (size_t i = 0; i < l->n && n + 3 < ADDRS_MAX; i++) {
                ret[n++] = l->v[i].start;
                ret[n++] = l->v[i].start + (l->v[i].end - l->v[i].start) / 2;
                ret[n++] = l->v[i].end - 1;
        }
        ret[n++] = 0x1000;
        return n;
}

/* A connection to the default daemon and its status; the test is skipped where it keeps no
 * layout store. */
static memctl *connect_with_store(struct store_status *st) {
        memctl *c = NULL;

        assert_int_equal(memctl_connect(daemon_default.socket, &c), 0);
        assert_status(c, st);
        if (!store_active(st)) {
                printf("[  SKIPPED ] no layout store here (tracking \"%s\")\n", st->tracking);
                memctl_free(c);
                skip();
        }
        return c;
}

/* The tracker's ring buffer overflows while the daemon is stopped (every kept layout dropped).
 * Then a process that started before is served from the store again, and a child that came to
 * share its parent's address space meanwhile (its fork event among those lost) is never served
 * a stale layout: the daemon asked the kernel which processes share one. */
static void test_store_after_lost_events(void **state) {
        _cleanup_free_ struct layout *truth = calloc(1, sizeof(*truth)), *scratch = calloc(1, sizeof(*scratch));
        uint64_t lost0, rebuilds0, addrs[ADDRS_MAX];
        struct store_status st;
        struct sharer sh;
        struct target tg;
        memctl *c = NULL;
        pid_t child;
        size_t n;

        (void) state;
        assert_non_null(truth);
        assert_non_null(scratch);
        c = connect_with_store(&st);
        lost0 = status_counter(c, "tracking_events_lost");
        rebuilds0 = status_counter(c, "tracking_shared_rebuilds");
        target_start_as((uid_t) -1, (gid_t) -1, NULL, &tg);
        sharer_start(&sh);
        assert_int_equal(raw_layout(tg.pid, truth), 0);
        n = layout_addresses(truth, addrs);
        (void) until_served(c, tg.pid, truth, addrs, n, scratch, 0, &st);

        /* Stopped, the daemon drains nothing: 2 events a vfork()+exit, 4,096 rounds overflow
         * the 256 KiB ring. The clone after them is lost for sure. */
        assert_int_equal(kill(daemon_default.pid, SIGSTOP), 0);
        for (int i = 0; i < 4096; i++) {
                pid_t k = vfork();

                if (k == 0)
                        _exit(0);
                assert_true(k > 0);
                assert_int_equal(waitpid(k, NULL, 0), k);
        }
        child = (pid_t) sharer_ask(&sh, 'c');
        assert_true(child > 0);
        assert_int_equal(kill(daemon_default.pid, SIGCONT), 0);
        for (uint64_t deadline = mono_usec() + 60 * UINT64_C(1000000);
             status_counter(c, "tracking_shared_rebuilds") == rebuilds0;) {
                if (mono_usec() > deadline)
                        fail_msg("the shared set was never read again after the lost events");
                usleep(10000);
        }
        assert_true(status_counter(c, "tracking_events_lost") > lost0);

        /* The process from before the loss: served from the store again. */
        assert_int_equal(raw_layout(tg.pid, truth), 0);
        (void) until_served(c, tg.pid, truth, addrs, n, scratch, 1, &st);

        /* The child sharing its parent's address space: asked twice, then the parent maps a
         * page (only the parent's count moves), then the child's answer has it. */
        assert_int_equal(raw_layout(child, truth), 0);
        n = layout_addresses(truth, addrs);
        check_against(c, child, truth, addrs, n, scratch, 2);
        check_against(c, child, truth, addrs, n, scratch, 3);
        assert_true(sharer_ask(&sh, 'm') != (uint64_t) (uintptr_t) MAP_FAILED);
        assert_int_equal(raw_layout(child, truth), 0);
        n = layout_addresses(truth, addrs);
        check_against(c, child, truth, addrs, n, scratch, 4);

        close(sh.to);
        close(sh.from);
        assert_int_equal(waitpid(sh.pid, NULL, 0), sh.pid);
        target_stop(&tg);
        memctl_free(c);
}

/* Other processes fork and exit all the time (a build, a thousand a second): tracking's events
 * never stop coming, and the daemon takes them in batches. An unchanged process is still served
 * from the store: what waited when its read began is taken before the read is kept. */
static void test_store_while_others_fork(void **state) {
        _cleanup_free_ struct layout *truth = calloc(1, sizeof(*truth)), *scratch = calloc(1, sizeof(*scratch));
        uint64_t addrs[ADDRS_MAX], hits0;
        struct store_status st;
        struct target tg;
        unsigned kept = 0;
        memctl *c = NULL;
        pid_t forker;
        size_t n;

        (void) state;
        assert_non_null(truth);
        assert_non_null(scratch);
        c = connect_with_store(&st);
        target_start_as((uid_t) -1, (gid_t) -1, NULL, &tg);
        assert_int_equal(raw_layout(tg.pid, truth), 0);
        n = layout_addresses(truth, addrs);
        forker = fork();
        assert_true(forker >= 0);
        if (forker == 0) {
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
                        _exit(1);
                /* About a thousand a second (a build's pace), not as fast as it can: the other
                 * tests' daemons beside this one capture them too. */
                for (;;) {
                        struct timespec ms = { .tv_nsec = 1000000 };
                        pid_t k = fork();

                        if (k == 0)
                                _exit(0);
                        if (k > 0)
                                (void) waitpid(k, NULL, 0);
                        nanosleep(&ms, NULL);
                }
        }
        for (unsigned round = 0; round < 100; round++) {
                /* A change: the next read must be kept anew to be served again. */
                assert_step(&tg, 'p');
                assert_int_equal(raw_layout(tg.pid, truth), 0);
                n = layout_addresses(truth, addrs);
                assert_status(c, &st);
                hits0 = st.hits;
                check_against(c, tg.pid, truth, addrs, n, scratch, round);
                check_against(c, tg.pid, truth, addrs, n, scratch, round);
                assert_status(c, &st);
                kept += st.hits > hits0;
        }
        printf("# 100 changes of a process while another forks a thousand a second: the read after %u of them "
               "was kept and served again\n", kept);
        /* But for reads that met a slot neighbour's change (the counters are shared modulo the
         * slots: the forker's children). Without taking what waited: 74 of 100 here. */
        assert_true(kept >= 95);
        kill(forker, SIGKILL);
        assert_int_equal(waitpid(forker, NULL, 0), forker);
        target_stop(&tg);
        memctl_free(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_exactness),
                cmocka_unit_test(test_exactness_untracked),
                cmocka_unit_test(test_exactness_untracked_maps_backend),
                cmocka_unit_test(test_churn),
                cmocka_unit_test(test_churn_untracked),
                cmocka_unit_test(test_pid_reuse_namespace),
                cmocka_unit_test(test_pid_reuse),
                cmocka_unit_test(test_pid_reuse_untracked),
                cmocka_unit_test(test_setuid_exec),
                cmocka_unit_test(test_setuid_exec_untracked),
                cmocka_unit_test(test_store_after_lost_events),
                cmocka_unit_test(test_store_while_others_fork),
        };

        /* Line by line into the log: what was printed before an abrupt end is kept. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        /* MEMMAPD_TEST_FILTER=test_churn*: only those (for working on one). */
        if (getenv("MEMMAPD_TEST_FILTER"))
                cmocka_set_test_filter(getenv("MEMMAPD_TEST_FILTER"));
        return cmocka_run_group_tests(tests, setup, teardown);
}
