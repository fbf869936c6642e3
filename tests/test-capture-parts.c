/* Tests for daemon/capture-parts.c: sets told in parts are taken only whole; a part lost between two, a whole set whose first part was lost, a set whose last part was lost, and the bounds. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "capture-parts.h"

#define TICK_NS 10000000ull     /* 100 Hz */
#define PAGE 0x1000ull

/* One record as the capture writes it: n mappings of /lib/p<tgid>.so, a page each, from at. */
static struct exec_maps_record *rec(uint32_t kind, uint32_t tgid, uint64_t time_ns, uint64_t lo, uint64_t hi,
                                    uint32_t n, uint64_t at, bool more) {
        static struct exec_maps_record r;

        memset(&r, 0, sizeof(r));
        r.kind = kind;
        r.tgid = tgid;
        r.start_boottime = 7 * TICK_NS + 5;
        r.time_ns = time_ns;
        r.range_start = lo;
        r.range_end = hi;
        r.uid = r.euid = r.suid = 1000;
        r.dumpable = 1;
        r.flags = more ? EXEC_MAPS_F_MORE : 0;
        r.n = n;
        snprintf(r.comm, sizeof(r.comm), "p%u", tgid);
        for (uint32_t i = 0; i < n; i++) {
                struct exec_maps_mapping *m = &r.m[i];

                m->start = at + i * PAGE;
                m->end = m->start + PAGE;
                m->offset = i * PAGE;
                m->inode = 100 + tgid;
                m->dev = 8 << 20 | 1;
                m->flags = EXEC_MAPS_M_READ | EXEC_MAPS_M_EXEC;
                m->path_len = (uint32_t) snprintf(m->path, sizeof(m->path), "/lib/p%u.so", tgid);
        }
        return &r;
}

/* A set of n mappings from at, in parts of EXEC_MAPS_PER_RECORD as the capture splits it (each
 * part ends where the next mapping starts): the parts' records, fed in order except skip (a
 * part lost: -1 for none). Returns the last add's result. */
static int feed_set(struct capture_parts *cp, uint32_t kind, uint32_t tgid, uint64_t time_ns, uint64_t lo, uint64_t hi,
                    uint32_t n, uint64_t at, int skip, struct capture_set *ret) {
        uint32_t parts = n == 0 ? 1 : (n + EXEC_MAPS_PER_RECORD - 1) / EXEC_MAPS_PER_RECORD;
        int k = 0;

        for (uint32_t i = 0; i < parts; i++) {
                uint32_t first = i * EXEC_MAPS_PER_RECORD, count = n - first;
                uint64_t start = i == 0 ? lo : at + first * PAGE;
                uint64_t end = i + 1 < parts ? at + (first + EXEC_MAPS_PER_RECORD) * PAGE : hi;

                if (count > EXEC_MAPS_PER_RECORD)
                        count = EXEC_MAPS_PER_RECORD;
                if ((int) i == skip)
                        continue;
                k = capture_parts_add(cp, rec(kind, tgid, time_ns, start, end, count, at + first * PAGE, i + 1 < parts),
                                      ret);
        }
        return k;
}

static void assert_set(const struct capture_set *s, uint32_t tgid, uint32_t n, uint64_t at) {
        char path[32];

        snprintf(path, sizeof(path), "/lib/p%u.so", tgid);
        assert_int_equal(s->r.pid, tgid);
        assert_int_equal(s->r.start_time, 7);
        assert_int_equal(s->r.n, n);
        assert_ptr_equal(s->r.mappings, s->m);
        for (uint32_t i = 0; i < n; i++) {
                assert_int_equal(s->m[i].start, at + i * PAGE);
                assert_int_equal(s->m[i].end, at + (i + 1) * PAGE);
                assert_string_equal(s->m[i].path, path);
                assert_int_equal(s->m[i].dev_major, 8);
                assert_int_equal(s->m[i].dev_minor, 1);
        }
}

static struct capture_parts *new_parts(void) {
        struct capture_parts *cp = NULL;

        assert_int_equal(capture_parts_new(TICK_NS, &cp), 0);
        return cp;
}

/* One record is a set; parts make one set, whatever comes between them. */
static void test_whole_sets(void **state) {
        struct capture_parts *cp = new_parts();
        struct capture_set s = {}, t = {};

        (void) state;
        assert_int_equal(capture_parts_add(cp, rec(EXEC_MAPS_CHANGE, 10, 5000, 0x10000, 0x20000, 3, 0x10000, false), &s),
                         1);
        assert_set(&s, 10, 3, 0x10000);
        assert_int_equal(s.r.kind, EXEC_HISTORY_RANGE);
        assert_int_equal(s.r.lo, 0x10000);
        assert_int_equal(s.r.hi, 0x20000);
        assert_int_equal(s.r.time_usec, 5);
        assert_string_equal(s.r.comm, "p10");
        capture_set_done(&s);

        /* An exit's set in three parts, another process's record between its first two. */
        assert_int_equal(capture_parts_add(cp, rec(EXEC_MAPS_EXIT, 11, 9000, 0, 0x100000 + 32 * PAGE, 32, 0x100000, true),
                                           &s),
                         0);
        assert_int_equal(capture_parts_add(cp, rec(EXEC_MAPS_CHANGE, 12, 9100, 0x5000, 0x6000, 1, 0x5000, false), &t), 1);
        assert_set(&t, 12, 1, 0x5000);
        capture_set_done(&t);
        assert_int_equal(capture_parts_add(cp,
                                           rec(EXEC_MAPS_EXIT, 11, 9000, 0x100000 + 32 * PAGE, 0x100000 + 64 * PAGE, 32,
                                               0x100000 + 32 * PAGE, true),
                                           &s),
                         0);
        assert_int_equal(capture_parts_add(cp,
                                           rec(EXEC_MAPS_EXIT, 11, 9000, 0x100000 + 64 * PAGE, UINT64_MAX, 5,
                                               0x100000 + 64 * PAGE, false),
                                           &s),
                         1);
        assert_set(&s, 11, 69, 0x100000);
        assert_int_equal(s.r.kind, EXEC_HISTORY_EXIT);
        assert_int_equal(s.r.lo, 0);
        assert_int_equal(s.r.hi, UINT64_MAX);
        capture_set_done(&s);
        capture_parts_free(cp);
}

/* A part lost between two: the set is not taken (it would lack that part's mappings and be taken
 * as whole), and the process's next set is taken as it is, not added to what was gathered. */
static void test_part_lost_between(void **state) {
        struct capture_parts *cp = new_parts();
        struct capture_set s = {};

        (void) state;
        assert_int_equal(feed_set(cp, EXEC_MAPS_EXIT, 20, 1000, 0, UINT64_MAX, 100, 0x200000, 1, &s), 0);
        assert_int_equal(feed_set(cp, EXEC_MAPS_CHANGE, 20, 2000, 0x9000, 0xa000, 1, 0x9000, -1, &s), 1);
        assert_set(&s, 20, 1, 0x9000);
        capture_set_done(&s);
        /* A change's set with its second of four parts lost: the parts after the gap state
         * their own range, and are taken as that. */
        assert_int_equal(feed_set(cp, EXEC_MAPS_CHANGE, 21, 3000, 0x300000, 0x400000, 100, 0x300000, 1, &s), 1);
        assert_int_equal(s.r.lo, 0x300000 + 64 * PAGE);
        assert_int_equal(s.r.hi, 0x400000);
        assert_set(&s, 21, 36, 0x300000 + 64 * PAGE);
        capture_set_done(&s);
        /* The same in full is taken. */
        assert_int_equal(feed_set(cp, EXEC_MAPS_CHANGE, 21, 4000, 0x300000, 0x400000, 100, 0x300000, -1, &s), 1);
        assert_set(&s, 21, 100, 0x300000);
        capture_set_done(&s);
        capture_parts_free(cp);
}

/* The last part lost: found by the process's next set, which is taken alone; even a next set
 * that starts where the lost part would have (another time) is not taken as its part. */
static void test_last_part_lost(void **state) {
        struct capture_parts *cp = new_parts();
        struct capture_set s = {};
        uint64_t cut = 0x200000 + 64 * PAGE;

        (void) state;
        assert_int_equal(feed_set(cp, EXEC_MAPS_EXEC, 30, 1000, 0, UINT64_MAX, 70, 0x200000, 2, &s), 0);
        assert_int_equal(capture_parts_add(cp, rec(EXEC_MAPS_CHANGE, 30, 2000, cut, cut + PAGE, 1, cut, false), &s), 1);
        assert_set(&s, 30, 1, cut);
        assert_int_equal(s.r.kind, EXEC_HISTORY_RANGE);
        assert_int_equal(s.r.lo, cut);
        capture_set_done(&s);
        capture_parts_free(cp);
}

/* The first part lost: an exec's or exit's whole set is not taken at all (the rest is not the
 * whole set); a change's later parts state their own range, and are taken as that range. */
static void test_first_part_lost(void **state) {
        struct capture_parts *cp = new_parts();
        struct capture_set s = {};

        (void) state;
        assert_int_equal(feed_set(cp, EXEC_MAPS_EXIT, 40, 1000, 0, UINT64_MAX, 80, 0x200000, 0, &s), 0);
        assert_int_equal(feed_set(cp, EXEC_MAPS_EXEC, 41, 1000, 0, UINT64_MAX, 80, 0x200000, 0, &s), 0);
        /* Their slots are free again: a new set of each is taken whole. */
        assert_int_equal(feed_set(cp, EXEC_MAPS_EXIT, 40, 2000, 0, UINT64_MAX, 80, 0x200000, -1, &s), 1);
        assert_set(&s, 40, 80, 0x200000);
        capture_set_done(&s);
        assert_int_equal(feed_set(cp, EXEC_MAPS_EXEC, 41, 2000, 0, UINT64_MAX, 2, 0x200000, -1, &s), 1);
        assert_set(&s, 41, 2, 0x200000);
        capture_set_done(&s);

        assert_int_equal(feed_set(cp, EXEC_MAPS_CHANGE, 42, 3000, 0x100000, 0x400000, 80, 0x200000, 0, &s), 1);
        assert_int_equal(s.r.kind, EXEC_HISTORY_RANGE);
        assert_int_equal(s.r.lo, 0x200000 + 32 * PAGE);
        assert_int_equal(s.r.hi, 0x400000);
        assert_set(&s, 42, 48, 0x200000 + 32 * PAGE);
        capture_set_done(&s);
        capture_parts_free(cp);
}

/* What the capture said was lost of a process goes with the set being gathered. */
static void test_forget(void **state) {
        struct capture_parts *cp = new_parts();
        struct capture_set s = {};

        (void) state;
        assert_int_equal(capture_parts_add(cp, rec(EXEC_MAPS_EXIT, 50, 1000, 0, 0x200000 + 32 * PAGE, 32, 0x200000, true),
                                           &s),
                         0);
        capture_parts_forget(cp, 50);
        capture_parts_forget(cp, 51);
        assert_int_equal(capture_parts_add(cp,
                                           rec(EXEC_MAPS_EXIT, 50, 1000, 0x200000 + 32 * PAGE, UINT64_MAX, 3,
                                               0x200000 + 32 * PAGE, false),
                                           &s),
                         0);
        capture_parts_clear(cp);
        capture_parts_free(cp);
        assert_null(capture_parts_free(NULL));
}

/* Bounds: sets of at most CAPTURE_PARTS_PROCESSES processes gathered at once, of at most
 * EXEC_HISTORY_INTERVALS_MAX mappings; past either the record is refused (the caller counts it
 * lost), and the slots stay usable. */
static void test_bounds(void **state) {
        struct capture_parts *cp = new_parts();
        struct capture_set s = {};
        uint64_t at = 0x10000000;

        (void) state;
        for (uint32_t p = 0; p < CAPTURE_PARTS_PROCESSES; p++)
                assert_int_equal(capture_parts_add(cp, rec(EXEC_MAPS_EXIT, 100 + p, 1000, 0, at + 32 * PAGE, 32, at, true),
                                                   &s),
                                 0);
        assert_int_equal(capture_parts_add(cp, rec(EXEC_MAPS_CHANGE, 999, 1000, at, at + PAGE, 1, at, false), &s),
                         -ENOSPC);
        assert_int_equal(capture_parts_add(cp, rec(EXEC_MAPS_EXIT, 100, 1000, at + 32 * PAGE, UINT64_MAX, 1,
                                                   at + 32 * PAGE, false),
                                           &s),
                         1);
        capture_set_done(&s);
        assert_int_equal(capture_parts_add(cp, rec(EXEC_MAPS_CHANGE, 999, 1000, at, at + PAGE, 1, at, false), &s), 1);
        capture_set_done(&s);
        capture_parts_clear(cp);

        /* EXEC_HISTORY_INTERVALS_MAX mappings in parts of 32 fit; one more part does not. */
        for (uint32_t i = 0; i < EXEC_HISTORY_INTERVALS_MAX / EXEC_MAPS_PER_RECORD; i++)
                assert_int_equal(capture_parts_add(cp,
                                                   rec(EXEC_MAPS_EXIT, 7, 1000, i == 0 ? 0 : at + i * 32 * PAGE,
                                                       at + (i + 1) * 32 * PAGE, 32, at + i * 32 * PAGE, true),
                                                   &s),
                                 0);
        {
                uint64_t from = at + (EXEC_HISTORY_INTERVALS_MAX / EXEC_MAPS_PER_RECORD) * 32 * PAGE;

                assert_int_equal(capture_parts_add(cp, rec(EXEC_MAPS_EXIT, 7, 1000, from, UINT64_MAX, 1, from, false), &s),
                                 -E2BIG);
        }
        assert_int_equal(capture_parts_add(cp, rec(EXEC_MAPS_CHANGE, 7, 2000, at, at + PAGE, 1, at, false), &s), 1);
        assert_set(&s, 7, 1, at);
        capture_set_done(&s);
        capture_parts_free(cp);
        assert_int_equal(capture_parts_new(0, &cp), -EINVAL);
}

/* A path the capture cut, or one without its NUL within bounds, is kept as unknown. */
static void test_paths(void **state) {
        struct capture_parts *cp = new_parts();
        struct capture_set s = {};
        struct exec_maps_record *r = rec(EXEC_MAPS_CHANGE, 60, 1000, 0x1000, 0x4000, 3, 0x1000, false);

        (void) state;
        r->m[0].flags |= EXEC_MAPS_M_PATH_CUT;
        r->m[1].path_len = EXEC_MAPS_PATH_MAX;
        r->n = 3;
        assert_int_equal(capture_parts_add(cp, r, &s), 1);
        assert_null(s.m[0].path);
        assert_null(s.m[1].path);
        assert_string_equal(s.m[2].path, "/lib/p60.so");
        capture_set_done(&s);
        capture_parts_free(cp);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_whole_sets),
                cmocka_unit_test(test_part_lost_between),
                cmocka_unit_test(test_last_part_lost),
                cmocka_unit_test(test_first_part_lost),
                cmocka_unit_test(test_forget),
                cmocka_unit_test(test_bounds),
                cmocka_unit_test(test_paths),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
