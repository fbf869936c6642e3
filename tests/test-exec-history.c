/* Tests for daemon/exec-history.c: intervals opened and closed by records (A, nothing, B at one
 * address; a partial munmap keeps the rest), answers as of a time and after exit, pid reuse,
 * fork and seed, retention and the memory bounds, the file facts kept with the mappings. */

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
        /* The fork heard before its parent was known is made when the parent's record comes. */
        apply(h, EXEC_HISTORY_EXEC, 20, 1, 50, 0, 0, &MAIN, 1);
        assert_int_equal(exec_history_fork(h, 20, 21, 5, 100), -ENOENT);
        assert_int_equal(exec_history_fork(h, 20, 22, 5, 100), 0);
        assert_string_equal(at(h, 21, 5, 150, 0x400000), "/bin/main");
        assert_string_equal(at(h, 21, 5, 99, 0x400000), "ERANGE");

        /* A seed read before a record of the process was applied is older: ignored. */
        g = exec_history_generation(h);
        apply(h, EXEC_HISTORY_RANGE, 30, 1, 200, 0x10000, 0x20000, &A, 1);
        assert_int_equal(exec_history_seed(h, 30, 1, 190, 195, g, &B, 1, 1000), 0);
        assert_int_equal(exec_history_get(h, 30, 1, 0, 0, &v), -ENOENT);   /* not complete */
        g = exec_history_generation(h);
        assert_int_equal(exec_history_seed(h, 30, 1, 300, 350, g, &A, 1, 1000), 0);
        /* Known from the read's end: a change stamped while it read may be in it already. */
        assert_string_equal(at(h, 30, 1, 350, 0x10000), "/lib/a.so");
        assert_string_equal(at(h, 30, 1, 349, 0x10000), "ERANGE");
        assert_string_equal(at(h, 30, 1, 299, 0x10000), "ERANGE");

        /* A record drained after the seed about a change made before its read began: the read
         * showed that change and what followed it (A mapped again), so it undoes nothing. */
        apply(h, EXEC_HISTORY_RANGE, 30, 1, 280, 0x10000, 0x20000, NULL, 0);
        assert_string_equal(at(h, 30, 1, 360, 0x10000), "/lib/a.so");
        /* A change stamped while the read ran (the read showed A: it came before the change
         * there, or the change was made after): the process's latest state, and no time before
         * the read's end says either. */
        apply(h, EXEC_HISTORY_RANGE, 30, 1, 320, 0x10000, 0x20000, NULL, 0);
        assert_string_equal(at(h, 30, 1, 310, 0x10000), "ERANGE");
        assert_string_equal(at(h, 30, 1, 340, 0x10000), "ERANGE");
        assert_string_equal(at(h, 30, 1, 360, 0x10000), "");
        assert_int_equal(exec_history_get(h, 30, 1, 0, 0, &v), 0);
        assert_int_equal(v.n, 0);
        exec_history_view_done(&v);
        /* The read showed B mapped where a change within it mapped B (the read came after it):
         * the record opens nothing new, and B holds from the read's end on. */
        g = exec_history_generation(h);
        assert_int_equal(exec_history_seed(h, 31, 1, 500, 600, g, &B, 1, 1000), 0);
        apply(h, EXEC_HISTORY_RANGE, 31, 1, 550, 0x10000, 0x20000, &B, 1);
        assert_string_equal(at(h, 31, 1, 560, 0x10000), "ERANGE");
        assert_string_equal(at(h, 31, 1, 600, 0x10000), "/lib/b.so");
        apply(h, EXEC_HISTORY_RANGE, 31, 1, 700, 0x10000, 0x20000, &A, 1);
        assert_string_equal(at(h, 31, 1, 650, 0x10000), "/lib/b.so");
        assert_string_equal(at(h, 31, 1, 710, 0x10000), "/lib/a.so");
        /* A read that ends before it began is refused. */
        assert_int_equal(exec_history_seed(h, 32, 1, 500, 499, exec_history_generation(h), &B, 1, 1000), -EINVAL);
        exec_history_free(h);
}

static const struct exec_history_facts FA = {
        .build_id_len = 3, .build_id = { 0xaa, 0xbb, 0xcc }, .has_loads = true, .n_loads = 2,
        .loads = { { .offset = 0, .vaddr = 0, .filesz = 0x800 }, { .offset = 0x1000, .vaddr = 0x11000, .filesz = 0x5000 } },
};
static const struct exec_history_facts FM = { .build_id_len = 2, .build_id = { 0x12, 0x34 } };
static const struct exec_history_facts FM_OTHER = { .build_id_len = 2, .build_id = { 0x56, 0x78 } };

/* The facts of the mapping at addr in pid's view (as of t, or the latest when t is 0): a copy, or
 * build_id_len 0 for none. */
static struct exec_history_facts facts_at(struct exec_history *h, pid_t pid, uint64_t st, uint64_t t, uint64_t addr) {
        struct exec_history_facts f = {};
        struct exec_history_view v;

        assert_int_equal(exec_history_get(h, pid, st, t, t ? EXEC_HISTORY_AT_TIME : 0, &v), 0);
        for (size_t i = 0; i < v.n; i++)
                if (v.mappings[i].start <= addr && addr < v.mappings[i].end && v.mappings[i].facts)
                        f = *v.mappings[i].facts;
        exec_history_view_done(&v);
        return f;
}

static void test_facts(void **state) {
        struct exec_history_mapping main_nofacts = MAIN, a = A, main_facts = MAIN, main_other = MAIN, main_rewritten = MAIN;
        struct exec_history_mapping exec_set[2], exit_set[1];
        struct exec_history_stats st0, st1, st2;
        struct exec_history_record r = {
                .kind = EXEC_HISTORY_RANGE, .pid = 7, .start_time = 100, .time_usec = 3000,
                .lo = 0x10000, .hi = 0x20000, .uid = 1000, .euid = 1000, .suid = 1000, .dumpable = 1,
        };
        struct exec_history_diff d;
        struct exec_history *h;
        struct exec_history_facts f;

        main_nofacts.file_id = 5;
        a.file_id = 6;
        a.facts = &FA;
        main_facts.file_id = 5;
        main_facts.facts = &FM;
        main_other.file_id = 5;
        main_other.facts = &FM_OTHER;
        /* The same inode rewritten since: another file_id. */
        main_rewritten.file_id = 9;
        main_rewritten.facts = &FM_OTHER;

        assert_int_equal(exec_history_new(NULL, &h), 0);
        exec_history_get_stats(h, &st0);
        /* The exec's capture read no facts of the program; A's it had (from a cache, say). */
        exec_set[0] = main_nofacts;
        exec_set[1] = a;
        apply(h, EXEC_HISTORY_EXEC, 7, 100, 1000, 0, 0, exec_set, 2);
        f = facts_at(h, 7, 100, 1500, A.start);
        assert_int_equal(f.build_id_len, 3);
        assert_memory_equal(f.build_id, FA.build_id, 3);
        assert_true(f.has_loads);
        assert_int_equal(f.n_loads, 2);
        assert_int_equal(f.loads[1].vaddr, 0x11000);
        assert_int_equal(facts_at(h, 7, 100, 1500, MAIN.start).build_id_len, 0);

        /* munmap of A: the diff carries no facts; the closed interval keeps its own. */
        assert_int_equal(exec_history_apply(h, &r, &d), 0);
        assert_int_equal(d.n_removed, 1);
        assert_null(d.removed[0].facts);
        exec_history_diff_done(&d);
        assert_int_equal(facts_at(h, 7, 100, 2500, A.start).build_id_len, 3);

        /* A range stating the rewritten file's facts: not the program's (another file_id). */
        apply(h, EXEC_HISTORY_RANGE, 7, 100, 3500, 0x600000, 0x601000, &main_rewritten, 0);
        {
                struct exec_history_mapping moved = main_rewritten;

                moved.start = 0x600000;
                moved.end = 0x601000;
                apply(h, EXEC_HISTORY_RANGE, 7, 100, 3600, 0x600000, 0x601000, &moved, 1);
        }
        assert_int_equal(facts_at(h, 7, 100, 3700, MAIN.start).build_id_len, 0);

        /* A forked child (before the program's facts were known) and the exit, whose capture read
         * them: the open interval gets them, so does the one closed before... */
        assert_int_equal(exec_history_fork(h, 7, 8, 200, 3800), 0);
        exit_set[0] = main_facts;
        apply(h, EXEC_HISTORY_EXIT, 7, 100, 4000, 0, 0, exit_set, 1);
        f = facts_at(h, 7, 100, 0, MAIN.start);
        assert_int_equal(f.build_id_len, 2);
        assert_memory_equal(f.build_id, FM.build_id, 2);
        assert_int_equal(facts_at(h, 7, 100, 1500, MAIN.start).build_id_len, 2);
        /* ...and the child keeps A's facts from its parent. */
        assert_int_equal(facts_at(h, 8, 200, 0, A.start).build_id_len, 0);      /* A was gone at the fork */
        assert_int_equal(facts_at(h, 8, 200, 3900, 0x600000).build_id_len, 2);

        /* Facts once set are never replaced: a later record of other facts of the same file. */
        exit_set[0] = main_facts;
        apply(h, EXEC_HISTORY_EXEC, 10, 400, 5000, 0, 0, exit_set, 1);
        exit_set[0] = main_other;
        apply(h, EXEC_HISTORY_EXIT, 10, 400, 5100, 0, 0, exit_set, 1);
        f = facts_at(h, 10, 400, 0, MAIN.start);
        assert_int_equal(f.build_id_len, 2);
        assert_memory_equal(f.build_id, FM.build_id, 2);

        /* Kept once, counted in the bytes: a third process with the same facts adds no copy. */
        exec_history_get_stats(h, &st1);
        assert_true(st1.bytes > st0.bytes);
        exit_set[0] = main_nofacts;
        apply(h, EXEC_HISTORY_EXIT, 9, 300, 6000, 0, 0, exit_set, 1);
        exec_history_get_stats(h, &st2);
        exit_set[0] = main_facts;
        apply(h, EXEC_HISTORY_EXIT, 11, 500, 6100, 0, 0, exit_set, 1);
        exec_history_get_stats(h, &st0);
        assert_int_equal(st0.bytes - st2.bytes, st2.bytes - st1.bytes);
        /* New facts: one copy more. */
        {
                struct exec_history_facts fresh = FM;
                size_t per_process = st0.bytes - st2.bytes;

                fresh.build_id[0] = 0x99;
                exit_set[0].facts = &fresh;
                apply(h, EXEC_HISTORY_EXIT, 12, 600, 6200, 0, 0, exit_set, 1);
                exec_history_get_stats(h, &st1);
                assert_true(st1.bytes - st0.bytes > per_process + sizeof(struct exec_history_facts));
        }
        exec_history_clear(h);
        exec_history_get_stats(h, &st2);
        assert_int_equal(st2.bytes, 0);
        exec_history_free(h);
}

/* The child's changes come before its fork event (two ring buffers): the parent's set at the
 * fork time lies under them, and the parent's own later change is not the child's. */
static void test_fork_after_child_changes(void **state) {
        static const struct exec_history_mapping C = {
                .start = 0x30000, .end = 0x31000, .offset = 0, .inode = 13, .dev_major = 8, .dev_minor = 1,
                .flags = 7, .path = (char *) "/lib/c.so",
        };
        static const struct exec_history_mapping D = {
                .start = 0x50000, .end = 0x51000, .offset = 0, .inode = 14, .dev_major = 8, .dev_minor = 1,
                .flags = 5, .path = (char *) "/lib/d.so",
        };
        const struct exec_history_mapping parent_set[] = { A, MAIN };
        struct exec_history *h;
        struct exec_history_view v;

        assert_int_equal(exec_history_new(NULL, &h), 0);
        apply(h, EXEC_HISTORY_EXEC, 20, 1, 50, 0, 0, parent_set, 2);
        /* Forked at 100. The parent maps D at 150; the child unmaps the upper half of A at 200
         * and maps C at 300: all drained before the fork event. */
        apply(h, EXEC_HISTORY_RANGE, 20, 1, 150, D.start, D.end, &D, 1);
        apply(h, EXEC_HISTORY_RANGE, 21, 5, 200, 0x18000, 0x20000, NULL, 0);
        apply(h, EXEC_HISTORY_RANGE, 21, 5, 300, C.start, C.end, &C, 1);
        assert_int_equal(exec_history_get(h, 21, 5, 0, 0, &v), -ENOENT);    /* not complete yet */
        assert_int_equal(exec_history_fork(h, 20, 21, 5, 100), 0);

        assert_string_equal(at(h, 21, 5, 99, 0x400000), "ERANGE");
        assert_string_equal(at(h, 21, 5, 150, 0x400000), "/bin/main");
        assert_string_equal(at(h, 21, 5, 150, 0x1c000), "/lib/a.so");
        assert_string_equal(at(h, 21, 5, 250, 0x1c000), "");
        assert_string_equal(at(h, 21, 5, 250, 0x10000), "/lib/a.so");
        assert_string_equal(at(h, 21, 5, 250, 0x30000), "");
        assert_string_equal(at(h, 21, 5, 350, 0x30000), "/lib/c.so");
        assert_string_equal(at(h, 21, 5, 350, 0x50000), "");
        /* The latest set: MAIN, the lower half of A, C; not D. */
        assert_int_equal(exec_history_get(h, 21, 5, 0, 0, &v), 0);
        assert_int_equal(v.n, 3);
        assert_int_equal(v.mappings[0].start, 0x10000);
        assert_int_equal(v.mappings[0].end, 0x18000);
        assert_int_equal(v.mappings[1].start, C.start);
        assert_int_equal(v.mappings[2].start, MAIN.start);
        assert_int_equal(v.known_since_usec, 100);
        exec_history_view_done(&v);
        /* The fork event again (or late) changes nothing. */
        assert_int_equal(exec_history_fork(h, 20, 21, 5, 100), -ENOENT);

        /* A parent that exited before its child's fork event was drained still gives its set at
         * the fork time. */
        apply(h, EXEC_HISTORY_EXEC, 40, 1, 1000, 0, 0, &MAIN, 1);
        apply(h, EXEC_HISTORY_EXIT, 40, 1, 1200, 0, 0, &MAIN, 1);
        assert_int_equal(exec_history_fork(h, 40, 41, 6, 1100), 0);
        assert_string_equal(at(h, 41, 6, 1150, 0x400000), "/bin/main");
        /* Not for a fork after its exit. */
        assert_int_equal(exec_history_fork(h, 40, 42, 6, 1300), -ENOENT);

        /* The fork event before the parent's exec record: made when that record comes. */
        assert_int_equal(exec_history_fork(h, 50, 51, 8, 2100), -ENOENT);
        apply(h, EXEC_HISTORY_EXEC, 50, 1, 2000, 0, 0, &MAIN, 1);
        assert_string_equal(at(h, 51, 8, 2150, 0x400000), "/bin/main");
        assert_string_equal(at(h, 51, 8, 2050, 0x400000), "ERANGE");

        /* A child that exec'd before its fork event came: its exec stated everything. */
        apply(h, EXEC_HISTORY_EXEC, 22, 7, 400, 0, 0, &C, 1);
        assert_int_equal(exec_history_fork(h, 20, 22, 7, 350), -ENOENT);
        assert_string_equal(at(h, 22, 7, 450, 0x400000), "");
        exec_history_free(h);
}

/* The capture tells a forked child's first change as its whole set (a range over everything),
 * often drained before the fork event: the child is known from that change at once, and from
 * its fork once the fork comes, with the parent's set until the change. */
static void test_fork_after_child_told_whole(void **state) {
        const struct exec_history_mapping parent_set[] = { A, MAIN }, child_set[] = { MAIN };
        struct exec_history *h;

        assert_int_equal(exec_history_new(NULL, &h), 0);
        apply(h, EXEC_HISTORY_EXEC, 60, 1, 50, 0, 0, parent_set, 2);
        /* Forked at 100; at 200 the child unmaps A, told whole: MAIN alone. */
        apply(h, EXEC_HISTORY_RANGE, 61, 5, 200, 0, UINT64_MAX, child_set, 1);
        /* ...and maps B at 300 (its changes after the first are ranges), all before the fork. */
        apply(h, EXEC_HISTORY_RANGE, 61, 5, 300, B.start, B.end, &B, 1);
        assert_string_equal(at(h, 61, 5, 250, 0x400000), "/bin/main");
        assert_string_equal(at(h, 61, 5, 150, 0x400000), "ERANGE");
        assert_int_equal(exec_history_fork(h, 60, 61, 5, 100), 0);
        assert_string_equal(at(h, 61, 5, 99, 0x400000), "ERANGE");
        assert_string_equal(at(h, 61, 5, 150, 0x400000), "/bin/main");
        assert_string_equal(at(h, 61, 5, 150, 0x10000), "/lib/a.so");
        assert_string_equal(at(h, 61, 5, 250, 0x10000), "");
        assert_string_equal(at(h, 61, 5, 250, 0x400000), "/bin/main");
        assert_string_equal(at(h, 61, 5, 350, 0x10000), "/lib/b.so");
        /* Late again: nothing more. */
        assert_int_equal(exec_history_fork(h, 60, 61, 5, 100), -ENOENT);
        assert_string_equal(at(h, 61, 5, 150, 0x10000), "/lib/a.so");
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

/* Forgetting one process (its records were lost) leaves every other, exited ones included, and
 * a pid reused by another process under another start time. */
static void test_forget(void **state) {
        struct exec_history *h;
        struct exec_history_view v;
        struct exec_history_stats st;

        assert_int_equal(exec_history_new(NULL, &h), 0);
        apply(h, EXEC_HISTORY_EXIT, 40, 1, 100, 0, 0, &MAIN, 1);
        apply(h, EXEC_HISTORY_EXEC, 40, 2, 200, 0, 0, &MAIN, 1);
        apply(h, EXEC_HISTORY_EXEC, 41, 1, 300, 0, 0, &MAIN, 1);
        assert_int_equal(exec_history_forget(h, 40, 2), 0);
        assert_int_equal(exec_history_forget(h, 40, 2), -ENOENT);
        assert_int_equal(exec_history_get(h, 40, 2, 0, 0, &v), -ENOENT);
        assert_int_equal(exec_history_get(h, 40, 1, 0, 0, &v), 0);
        assert_true(v.exited);
        exec_history_view_done(&v);
        assert_string_equal(at(h, 41, 1, 300, 0x400000), "/bin/main");
        exec_history_get_stats(h, &st);
        assert_int_equal(st.processes, 2);
        exec_history_free(h);
}

/* What one record changed. */
static struct exec_history_diff diff_of(struct exec_history *h, enum exec_history_record_kind kind, pid_t pid,
                                       uint64_t st, uint64_t t, uint64_t lo, uint64_t hi,
                                       const struct exec_history_mapping *m, size_t n, bool unread) {
        struct exec_history_record r = {
                .kind = kind, .pid = pid, .start_time = st, .time_usec = t, .lo = lo, .hi = hi,
                .uid = 1000, .euid = 1000, .suid = 1000, .dumpable = 1, .mappings = m, .n = n,
                .unread = unread,
        };
        struct exec_history_diff d;

        assert_int_equal(exec_history_apply(h, &r, &d), 0);
        return d;
}

/* A process whose whole set is not known (forgotten after lost records, or never seen from its
 * exec): a range record's diff states the range whole, since what went there is not known; once
 * complete again (a seed), diffs are diffs. */
static void test_diff_of_unknown_process(void **state) {
        struct exec_history *h;
        struct exec_history_diff d;
        struct exec_history_view v;

        assert_int_equal(exec_history_new(NULL, &h), 0);
        apply(h, EXEC_HISTORY_EXEC, 50, 1, 1000, 0, 0, &MAIN, 1);
        apply(h, EXEC_HISTORY_RANGE, 50, 1, 2000, 0x10000, 0x20000, &A, 1);
        assert_int_equal(exec_history_forget(h, 50, 1), 0);

        /* munmap of A, which the history no longer knows: nothing is known to have gone, so the
         * range is stated whole, empty. */
        d = diff_of(h, EXEC_HISTORY_RANGE, 50, 1, 3000, 0x10000, 0x20000, NULL, 0, false);
        assert_true(d.whole_range);
        assert_false(d.unknown);
        assert_int_equal(d.lo, 0x10000);
        assert_int_equal(d.hi, 0x20000);
        assert_int_equal(d.n_added, 0);
        assert_int_equal(d.n_removed, 0);
        exec_history_diff_done(&d);
        /* B there, then B again with MAIN stated too (an mprotect over both): added is all the
         * record states, even what the history had opened already. */
        d = diff_of(h, EXEC_HISTORY_RANGE, 50, 1, 4000, 0x10000, 0x18000, &B, 1, false);
        assert_true(d.whole_range);
        assert_int_equal(d.n_added, 1);
        assert_string_equal(d.added[0].path, "/lib/b.so");
        exec_history_diff_done(&d);
        d = diff_of(h, EXEC_HISTORY_RANGE, 50, 1, 4500, 0x10000, 0x18000, &B, 1, false);
        assert_true(d.whole_range);
        assert_int_equal(d.n_added, 1);
        exec_history_diff_done(&d);
        /* Not complete: no answer as of a time. */
        assert_int_equal(exec_history_get(h, 50, 1, 4500, EXEC_HISTORY_AT_TIME, &v), -ENOENT);

        /* Seeded (a complete read): diffs again, against the seed. */
        {
                const struct exec_history_mapping set[] = { B, MAIN };

                assert_int_equal(exec_history_seed(h, 50, 1, 5000, 5000, exec_history_generation(h), set, 2, 1000), 0);
        }
        d = diff_of(h, EXEC_HISTORY_RANGE, 50, 1, 6000, 0x10000, 0x18000, NULL, 0, false);
        assert_false(d.whole_range);
        assert_int_equal(d.n_removed, 1);
        assert_string_equal(d.removed[0].path, "/lib/b.so");
        exec_history_diff_done(&d);
        assert_string_equal(at(h, 50, 1, 5500, 0x10000), "/lib/b.so");
        assert_string_equal(at(h, 50, 1, 6500, 0x10000), "");
        exec_history_free(h);
}

/* A range record the capture could not read: how the range changed is not known, so the diff
 * says so (watchers read the process again) and nothing is known from then on until the next
 * whole set (the capture tells it after an unread one); the past stays known, the gap not. */
static void test_unread_range(void **state) {
        struct exec_history *h;
        struct exec_history_diff d;
        struct exec_history_view v;

        assert_int_equal(exec_history_new(NULL, &h), 0);
        apply(h, EXEC_HISTORY_EXEC, 51, 1, 1000, 0, 0, &MAIN, 1);
        apply(h, EXEC_HISTORY_RANGE, 51, 1, 2000, 0x10000, 0x20000, &A, 1);
        /* A unmapped at 3000, not read. */
        d = diff_of(h, EXEC_HISTORY_RANGE, 51, 1, 3000, 0x10000, 0x20000, NULL, 0, true);
        assert_true(d.unknown);
        assert_false(d.whole_range);
        assert_int_equal(d.lo, 0x10000);
        assert_int_equal(d.hi, 0x20000);
        assert_int_equal(d.n_added + d.n_removed, 0);
        exec_history_diff_done(&d);
        assert_string_equal(at(h, 51, 1, 2500, 0x10000), "/lib/a.so");
        assert_int_equal(exec_history_get(h, 51, 1, 3500, EXEC_HISTORY_AT_TIME, &v), -ENOENT);
        assert_int_equal(exec_history_get(h, 51, 1, 0, 0, &v), -ENOENT);
        /* A range meanwhile is stated whole (what went there is not known). */
        d = diff_of(h, EXEC_HISTORY_RANGE, 51, 1, 3600, 0x50000, 0x60000, NULL, 0, false);
        assert_true(d.whole_range);
        exec_history_diff_done(&d);
        /* The whole set at 4000 (B mapped elsewhere): complete again; A went (the diff is the
         * whole statement, everything). */
        const struct exec_history_mapping set[] = { MAIN, { .start = 0x30000, .end = 0x31000, .inode = 12,
                                                            .dev_major = 8, .dev_minor = 1, .flags = 5,
                                                            .path = (char *) "/lib/b.so" } };

        d = diff_of(h, EXEC_HISTORY_RANGE, 51, 1, 4000, 0, UINT64_MAX, set, 2, false);
        assert_true(d.whole_range);
        assert_int_equal(d.n_added, 2);
        exec_history_diff_done(&d);
        assert_string_equal(at(h, 51, 1, 4500, 0x10000), "");
        assert_string_equal(at(h, 51, 1, 4500, 0x30000), "/lib/b.so");
        assert_string_equal(at(h, 51, 1, 1500, 0x400000), "/bin/main");
        assert_string_equal(at(h, 51, 1, 2500, 0x10000), "/lib/a.so");
        /* The gap: not known, and since when known again. */
        assert_int_equal(exec_history_get(h, 51, 1, 3500, EXEC_HISTORY_AT_TIME, &v), -ERANGE);
        assert_int_equal(v.known_since_usec, 4000);
        exec_history_view_done(&v);
        /* Then a second change not read, and its whole set: one gap is kept, the time before
         * the first gap's end is not known any more. */
        d = diff_of(h, EXEC_HISTORY_RANGE, 51, 1, 4600, 0x30000, 0x31000, NULL, 0, true);
        assert_true(d.unknown);
        exec_history_diff_done(&d);
        d = diff_of(h, EXEC_HISTORY_RANGE, 51, 1, 4700, 0, UINT64_MAX, set, 2, false);
        exec_history_diff_done(&d);
        assert_string_equal(at(h, 51, 1, 2500, 0x10000), "ERANGE");
        assert_string_equal(at(h, 51, 1, 4500, 0x30000), "/lib/b.so");
        assert_string_equal(at(h, 51, 1, 4650, 0x30000), "ERANGE");
        assert_string_equal(at(h, 51, 1, 4800, 0x30000), "/lib/b.so");
        /* A third not read, then a seed (a question's read of the live process): complete from
         * the read, the past before the gap kept. */
        d = diff_of(h, EXEC_HISTORY_RANGE, 51, 1, 4850, 0x30000, 0x31000, NULL, 0, true);
        exec_history_diff_done(&d);
        assert_int_equal(exec_history_seed(h, 51, 1, 4900, 4910, exec_history_generation(h), &MAIN, 1, 1000), 0);
        assert_string_equal(at(h, 51, 1, 4800, 0x30000), "/lib/b.so");
        assert_string_equal(at(h, 51, 1, 4870, 0x30000), "ERANGE");
        assert_string_equal(at(h, 51, 1, 4905, 0x30000), "ERANGE");       /* within the read */
        assert_string_equal(at(h, 51, 1, 4950, 0x30000), "");
        assert_string_equal(at(h, 51, 1, 4950, 0x400000), "/bin/main");
        apply(h, EXEC_HISTORY_EXIT, 51, 1, 5000, 0, 0, &MAIN, 1);
        assert_int_equal(exec_history_get(h, 51, 1, 0, EXEC_HISTORY_EXITED_ONLY, &v), 0);
        assert_int_equal(v.n, 1);
        assert_string_equal(v.mappings[0].path, "/bin/main");
        exec_history_view_done(&v);

        /* An exit that does not state a mapping the history has open (a change not known): what
         * the process had at its exit is what the exit states. */
        {
                const struct exec_history_mapping both[] = { A, MAIN };

                apply(h, EXEC_HISTORY_EXEC, 52, 1, 100, 0, 0, both, 2);
        }
        apply(h, EXEC_HISTORY_EXIT, 52, 1, 200, 0, 0, &MAIN, 1);
        assert_int_equal(exec_history_get(h, 52, 1, 0, EXEC_HISTORY_EXITED_ONLY, &v), 0);
        assert_int_equal(v.n, 1);
        assert_string_equal(v.mappings[0].path, "/bin/main");
        exec_history_view_done(&v);
        exec_history_free(h);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_a_nothing_b),
                cmocka_unit_test(test_partial_unmap),
                cmocka_unit_test(test_exit_and_reuse),
                cmocka_unit_test(test_fork_and_seed),
                cmocka_unit_test(test_fork_after_child_changes),
                cmocka_unit_test(test_bounds),
                cmocka_unit_test(test_fork_after_child_told_whole),
                cmocka_unit_test(test_forget),
                cmocka_unit_test(test_diff_of_unknown_process),
                cmocka_unit_test(test_unread_range),
                cmocka_unit_test(test_facts),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
