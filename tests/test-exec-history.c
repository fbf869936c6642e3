/* Tests for daemon/exec-history.c: intervals opened and closed by records (A, nothing, B at one
 * address; a partial munmap keeps the rest), answers as of a time and after exit, pid reuse,
 * fork and seed, retention and the memory bounds. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "exec-history.h"

static const struct exec_history_mapping A = {
        .start = 0x10000, .end = 0x20000, .offset = 0x1000, .inode = 11, .dev_major = 8, .dev_minor = 1,
        .flags = 5, .path = (char *) "/lib/a.so",
};
static const struct exec_history_mapping B = {
        .start = 0x10000, .end = 0x18000, .offset = 0x2000, .inode = 12, .dev_major = 8, .dev_minor = 1,
        .flags = 5, .path = (char *) "/lib/b.so",
};
static const struct exec_history_mapping MAIN = {
        .start = 0x400000, .end = 0x401000, .offset = 0, .inode = 10, .dev_major = 8, .dev_minor = 1,
        .flags = 5, .path = (char *) "/bin/main",
};

static void apply(struct exec_history *h, enum exec_history_record_kind kind, pid_t pid, uint64_t st, uint64_t t,
                  uint64_t lo, uint64_t hi, const struct exec_history_mapping *m, size_t n) {
        struct exec_history_record r = {
                .kind = kind, .pid = pid, .start_time = st, .time_usec = t, .lo = lo, .hi = hi,
                .uid = 1000, .euid = 1000, .suid = 1000, .dumpable = 1, .mappings = m, .n = n,
        };

        strcpy(r.comm, "t");
        assert_int_equal(exec_history_apply(h, &r, NULL), 0);
}

/* The path valid at t in pid's history, or "" for none, or "ERANGE". */
static const char *at(struct exec_history *h, pid_t pid, uint64_t st, uint64_t t, uint64_t addr) {
        static char buf[64];
        struct exec_history_view v;
        int r = exec_history_get(h, pid, st, t, EXEC_HISTORY_AT_TIME, &v);

        if (r == -ERANGE)
                return "ERANGE";
        assert_int_equal(r, 0);
        buf[0] = 0;
        for (size_t i = 0; i < v.n; i++)
                if (v.mappings[i].start <= addr && addr < v.mappings[i].end)
                        snprintf(buf, sizeof(buf), "%s", v.mappings[i].path ? v.mappings[i].path : "?");
        exec_history_view_done(&v);
        return buf;
}

static void test_a_nothing_b(void **state) {
        struct exec_history *h;
        struct exec_history_diff d;
        struct exec_history_record r = {
                .kind = EXEC_HISTORY_RANGE, .pid = 7, .start_time = 100, .time_usec = 3000,
                .lo = 0x10000, .hi = 0x20000,
        };

        assert_int_equal(exec_history_new(NULL, &h), 0);
        apply(h, EXEC_HISTORY_EXEC, 7, 100, 1000, 0, 0, &MAIN, 1);
        apply(h, EXEC_HISTORY_RANGE, 7, 100, 2000, 0x10000, 0x20000, &A, 1);
        /* munmap of A: the diff says what went. */
        assert_int_equal(exec_history_apply(h, &r, &d), 0);
        assert_int_equal(d.n_removed, 1);
        assert_int_equal(d.n_added, 0);
        assert_string_equal(d.removed[0].path, "/lib/a.so");
        exec_history_diff_done(&d);
        apply(h, EXEC_HISTORY_RANGE, 7, 100, 4000, 0x10000, 0x18000, &B, 1);

        assert_string_equal(at(h, 7, 100, 999, 0x10000), "ERANGE");
        assert_string_equal(at(h, 7, 100, 1500, 0x10000), "");
        assert_string_equal(at(h, 7, 100, 2500, 0x10000), "/lib/a.so");
        assert_string_equal(at(h, 7, 100, 3500, 0x10000), "");
        assert_string_equal(at(h, 7, 100, 4500, 0x10000), "/lib/b.so");
        assert_string_equal(at(h, 7, 100, 4500, 0x400000), "/bin/main");
        /* An address in A's old range past B: A is gone, nothing there. */
        assert_string_equal(at(h, 7, 100, 4500, 0x19000), "");
        exec_history_free(h);
}

static void test_partial_unmap(void **state) {
        struct exec_history *h;
        struct exec_history_view v;

        assert_int_equal(exec_history_new(NULL, &h), 0);
        apply(h, EXEC_HISTORY_EXEC, 8, 1, 1000, 0, 0, &A, 1);
        /* munmap of [0x14000, 0x18000) in the middle of A. */
        apply(h, EXEC_HISTORY_RANGE, 8, 1, 2000, 0x14000, 0x18000, NULL, 0);
        assert_int_equal(exec_history_get(h, 8, 1, 0, 0, &v), 0);
        assert_int_equal(v.n, 2);
        assert_int_equal(v.mappings[0].start, 0x10000);
        assert_int_equal(v.mappings[0].end, 0x14000);
        assert_int_equal(v.mappings[0].offset, 0x1000);
        assert_int_equal(v.mappings[0].from_usec, 1000);
        assert_int_equal(v.mappings[1].start, 0x18000);
        assert_int_equal(v.mappings[1].end, 0x20000);
        assert_int_equal(v.mappings[1].offset, 0x9000);
        exec_history_view_done(&v);
        /* Before the munmap the whole of A answers. */
        assert_string_equal(at(h, 8, 1, 1500, 0x15000), "/lib/a.so");
        assert_string_equal(at(h, 8, 1, 2500, 0x15000), "");

        /* The diff of a split: the whole went, and what stays came (a Watch client applying
         * it keeps the part). munmap of [0x10000, 0x12000) of the first part. */
        {
                struct exec_history_record r = {
                        .kind = EXEC_HISTORY_RANGE, .pid = 8, .start_time = 1, .time_usec = 3000,
                        .lo = 0x10000, .hi = 0x12000,
                };
                struct exec_history_diff d;

                assert_int_equal(exec_history_apply(h, &r, &d), 0);
                assert_int_equal(d.n_removed, 1);
                assert_int_equal(d.removed[0].start, 0x10000);
                assert_int_equal(d.removed[0].end, 0x14000);
                assert_int_equal(d.n_added, 1);
                assert_int_equal(d.added[0].start, 0x12000);
                assert_int_equal(d.added[0].end, 0x14000);
                assert_int_equal(d.added[0].offset, 0x3000);
                assert_string_equal(d.added[0].path, "/lib/a.so");
                exec_history_diff_done(&d);
        }
        exec_history_free(h);
}

static void test_exit_and_reuse(void **state) {
        struct exec_history *h;
        struct exec_history_view v;

        assert_int_equal(exec_history_new(NULL, &h), 0);
        /* Seen only at its exit: its set is known there. */
        apply(h, EXEC_HISTORY_EXIT, 9, 50, 5000, 0, 0, &MAIN, 1);
        assert_int_equal(exec_history_get(h, 9, 0, 0, EXEC_HISTORY_EXITED_ONLY, &v), 0);
        assert_true(v.exited);
        assert_int_equal(v.exit_usec, 5000);
        assert_int_equal(v.n, 1);
        assert_string_equal(v.mappings[0].path, "/bin/main");
        assert_int_equal(v.uid, 1000);
        exec_history_view_done(&v);
        assert_string_equal(at(h, 9, 50, 4000, 0x400000), "ERANGE");

        /* pid 9 reused by a live process: pid alone names that one, which has not exited. */
        apply(h, EXEC_HISTORY_EXEC, 9, 60, 6000, 0, 0, &A, 1);
        assert_int_equal(exec_history_get(h, 9, 0, 0, EXEC_HISTORY_EXITED_ONLY, &v), -ENOENT);
        assert_int_equal(exec_history_get(h, 9, 50, 0, EXEC_HISTORY_EXITED_ONLY, &v), 0);
        assert_string_equal(v.mappings[0].path, "/bin/main");
        exec_history_view_done(&v);
        assert_int_equal(exec_history_get(h, 9, 0, 0, 0, &v), 0);
        assert_false(v.exited);
        assert_int_equal(v.start_time, 60);
        exec_history_view_done(&v);

        /* Retention: kept until retain_usec after the exit. */
        exec_history_expire(h, 5000 + 59 * 1000000ull);
        assert_int_equal(exec_history_get(h, 9, 50, 0, 0, &v), 0);
        exec_history_view_done(&v);
        exec_history_expire(h, 5000 + 60 * 1000000ull);
        assert_int_equal(exec_history_get(h, 9, 50, 0, 0, &v), -ENOENT);
        exec_history_free(h);
}

static void test_fork_and_seed(void **state) {
        struct exec_history *h;
        struct exec_history_view v;
        uint64_t g;

        assert_int_equal(exec_history_new(NULL, &h), 0);
        assert_int_equal(exec_history_fork(h, 20, 21, 5, 100), -ENOENT);
        apply(h, EXEC_HISTORY_EXEC, 20, 1, 50, 0, 0, &MAIN, 1);
        assert_int_equal(exec_history_fork(h, 20, 21, 5, 100), 0);
        assert_string_equal(at(h, 21, 5, 150, 0x400000), "/bin/main");
        assert_string_equal(at(h, 21, 5, 99, 0x400000), "ERANGE");

        /* A seed read before a record of the process was applied is older: ignored. */
        g = exec_history_generation(h);
        apply(h, EXEC_HISTORY_RANGE, 30, 1, 200, 0x10000, 0x20000, &A, 1);
        assert_int_equal(exec_history_seed(h, 30, 1, 190, g, &B, 1, 1000), 0);
        assert_int_equal(exec_history_get(h, 30, 1, 0, 0, &v), -ENOENT);   /* not complete */
        g = exec_history_generation(h);
        assert_int_equal(exec_history_seed(h, 30, 1, 300, g, &A, 1, 1000), 0);
        assert_string_equal(at(h, 30, 1, 300, 0x10000), "/lib/a.so");
        assert_string_equal(at(h, 30, 1, 299, 0x10000), "ERANGE");
        exec_history_free(h);
}

static void test_bounds(void **state) {
        struct exec_history_config cfg = { .max_bytes = 64 * 1024, .max_bytes_per_uid = 64 * 1024 };
        struct exec_history_stats st;
        struct exec_history *h;
        struct exec_history_view v;

        assert_int_equal(exec_history_new(&cfg, &h), 0);
        for (pid_t pid = 1; pid <= 2000; pid++)
                apply(h, EXEC_HISTORY_EXIT, pid, 1, (uint64_t) pid, 0, 0, &MAIN, 1);
        exec_history_get_stats(h, &st);
        assert_true(st.bytes <= cfg.max_bytes);
        assert_true(st.evicted > 0);
        assert_int_equal(st.exited + st.evicted, 2000);
        /* The oldest exits went first. */
        assert_int_equal(exec_history_get(h, 1, 0, 0, 0, &v), -ENOENT);
        assert_int_equal(exec_history_get(h, 2000, 0, 0, 0, &v), 0);
        exec_history_view_done(&v);
        printf("# %zu exited processes of one mapping in %zu bytes: %zu bytes each\n", st.exited, st.bytes,
               st.bytes / st.exited);
        exec_history_clear(h);
        exec_history_get_stats(h, &st);
        assert_int_equal(st.bytes, 0);
        exec_history_free(h);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_a_nothing_b),
                cmocka_unit_test(test_partial_unmap),
                cmocka_unit_test(test_exit_and_reuse),
                cmocka_unit_test(test_fork_and_seed),
                cmocka_unit_test(test_bounds),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
