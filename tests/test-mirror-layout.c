/* Tests for client/mirror-layout.c: a mapping put over others replaces them; a range cleared
 * keeps the parts of mappings reaching out of it, with their offsets; removal is whole; nothing
 * changes when memory runs out. Checked against a page-by-page model of the same edits. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mirror-layout.h"

#define PAGE 4096u

static struct mirror_slot slot(uint64_t start, uint64_t end, uint64_t offset, uintptr_t file) {
        return (struct mirror_slot) {
                .start = start, .end = end, .offset = offset, .page_size = PAGE,
                .file = (const struct mirror_file *) file, .perms = "r-xp",
        };
}

/* The layout is sorted, its slots non-empty and apart. */
static void check_sorted(const struct mirror_layout *l) {
        for (size_t i = 0; i < l->n; i++) {
                assert_true(l->slots[i].start < l->slots[i].end);
                if (i > 0)
                        assert_true(l->slots[i - 1].end <= l->slots[i].start);
        }
}

static void test_put_replaces(void **state) {
        struct mirror_layout l = {};
        struct mirror_slot a = slot(0x10000, 0x20000, 0, 1), b = slot(0x18000, 0x30000, 0x5000, 2);

        (void) state;
        assert_int_equal(mirror_layout_put(&l, &a), 1);
        assert_int_equal(mirror_layout_put(&l, &b), 1);
        /* b overlaps a: a goes whole (the daemon states what stays as mappings of its own). */
        assert_int_equal(l.n, 1);
        assert_int_equal(l.slots[0].start, 0x18000);
        assert_int_equal(mirror_layout_put(&l, &(struct mirror_slot) { .start = 5, .end = 5 }), 0);
        mirror_layout_done(&l);
        mirror_layout_done(NULL);
}

static void test_clear_range_splits(void **state) {
        struct mirror_layout l = {};
        struct mirror_slot a = slot(0x10000, 0x20000, 0x1000, 1), b = slot(0x30000, 0x40000, 0, 2),
                           c = slot(0x50000, 0x60000, 0, 3);

        (void) state;
        assert_int_equal(mirror_layout_put(&l, &a), 1);
        assert_int_equal(mirror_layout_put(&l, &b), 1);
        assert_int_equal(mirror_layout_put(&l, &c), 1);
        /* The middle of a: both ends stay, the upper one with its offset moved on. */
        assert_int_equal(mirror_layout_clear_range(&l, 0x14000, 0x18000), 1);
        check_sorted(&l);
        assert_int_equal(l.n, 4);
        assert_int_equal(l.slots[0].start, 0x10000);
        assert_int_equal(l.slots[0].end, 0x14000);
        assert_int_equal(l.slots[0].offset, 0x1000);
        assert_int_equal(l.slots[1].start, 0x18000);
        assert_int_equal(l.slots[1].end, 0x20000);
        assert_int_equal(l.slots[1].offset, 0x9000);
        assert_true(l.slots[1].file == (const struct mirror_file *) 1);
        /* From inside the upper part of a to inside c: b goes, c's tail stays. */
        assert_int_equal(mirror_layout_clear_range(&l, 0x1c000, 0x58000), 1);
        check_sorted(&l);
        assert_int_equal(l.n, 3);
        assert_int_equal(l.slots[1].end, 0x1c000);
        assert_int_equal(l.slots[2].start, 0x58000);
        assert_int_equal(l.slots[2].offset, 0x8000);
        /* Nothing there. */
        assert_int_equal(mirror_layout_clear_range(&l, 0x70000, 0x80000), 0);
        assert_int_equal(mirror_layout_clear_range(&l, 0x80000, 0x70000), 0);
        /* Everything (what the daemon states for a process told whole). */
        assert_int_equal(mirror_layout_clear_range(&l, 0, INT64_MAX), 1);
        assert_int_equal(l.n, 0);
        mirror_layout_done(&l);
}

static void test_remove_whole(void **state) {
        struct mirror_layout l = {};
        struct mirror_slot a = slot(0x10000, 0x20000, 0, 1), b = slot(0x20000, 0x30000, 0, 2);

        (void) state;
        assert_int_equal(mirror_layout_put(&l, &a), 1);
        assert_int_equal(mirror_layout_put(&l, &b), 1);
        assert_true(mirror_layout_remove(&l, 0x1f000, 0x20000));
        assert_int_equal(l.n, 1);
        assert_int_equal(l.slots[0].start, 0x20000);
        assert_false(mirror_layout_remove(&l, 0x1f000, 0x20000));
        mirror_layout_done(&l);
}

/* What each page of [0, PAGES) holds: the file and its offset, or file 0. */
#define PAGES 64
struct page {
        uintptr_t file;
        uint64_t offset;
};

static void model_of(const struct mirror_layout *l, struct page *ret) {
        memset(ret, 0, PAGES * sizeof(*ret));
        for (size_t i = 0; i < l->n; i++)
                for (uint64_t a = l->slots[i].start; a < l->slots[i].end; a += PAGE)
                        ret[a / PAGE] = (struct page) {
                                (uintptr_t) l->slots[i].file, l->slots[i].offset + (a - l->slots[i].start),
                        };
}

/* Random puts and clears against the page model: a put replaces its whole overlap (what it
 * overlapped goes whole), a clear empties exactly its pages. */
static void test_against_pages(void **state) {
        struct mirror_layout l = {};
        struct page want[PAGES], got[PAGES];
        uint64_t x = 0x9e3779b97f4a7c15u;

        (void) state;
        memset(want, 0, sizeof(want));
        for (int step = 0; step < 20000; step++) {
                uint64_t lo, hi;

                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                lo = x % PAGES;
                hi = lo + 1 + (x >> 8) % 8;
                if (hi > PAGES)
                        hi = PAGES;
                if ((x >> 20) % 2) {
                        struct mirror_slot s = slot(lo * PAGE, hi * PAGE, (x >> 24) % 16 * PAGE, 1 + (x >> 30) % 5);

                        /* Every page of a mapping the put overlaps goes. */
                        for (size_t i = 0; i < l.n; i++)
                                if (l.slots[i].start < s.end && l.slots[i].end > s.start)
                                        for (uint64_t a = l.slots[i].start; a < l.slots[i].end; a += PAGE)
                                                want[a / PAGE] = (struct page) {};
                        for (uint64_t p = lo; p < hi; p++)
                                want[p] = (struct page) { (uintptr_t) s.file, s.offset + (p - lo) * PAGE };
                        assert_int_equal(mirror_layout_put(&l, &s), 1);
                } else {
                        for (uint64_t p = lo; p < hi; p++)
                                want[p] = (struct page) {};
                        assert_true(mirror_layout_clear_range(&l, lo * PAGE, hi * PAGE) >= 0);
                }
                check_sorted(&l);
                model_of(&l, got);
                assert_memory_equal(got, want, sizeof(want));
        }
        mirror_layout_done(&l);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_put_replaces),
                cmocka_unit_test(test_clear_range_splits),
                cmocka_unit_test(test_remove_whole),
                cmocka_unit_test(test_against_pages),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
