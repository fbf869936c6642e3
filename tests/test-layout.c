/* Layouts without a process: building, normalizing, partial coverage, queries, shared facts and reference counts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "layout.h"

static struct mapping mk(uint64_t start, uint64_t end, unsigned flags, const char *name) {
        struct mapping m = { .start = start, .end = end, .flags = (uint8_t) flags, .name = (char *) name };

        if (name && name[0] == '/') {
                m.dev_major = 8;
                m.inode = start;        /* a file per mapping unless set otherwise */
        }
        mapping_classify_name(&m);
        return m;
}

static struct layout *new_layout(void) {
        struct layout *l = NULL;

        assert_int_equal(layout_new(42, 1234, &l), 0);
        assert_non_null(l);
        assert_int_equal(l->pid, 42);
        assert_int_equal(l->start_time, 1234);
        assert_int_equal(l->generation, 0);
        assert_false(l->complete);
        return l;
}

static void add(struct layout *l, struct mapping m) {
        assert_int_equal(layout_add(l, &m), 0);
}

/* Mappings come in any order; empty and overlapping ones go, as mapping_list_normalize()
 * drops them; names are the layout's own copies. */
static void test_build_and_normalize(void **state) {
        struct layout *l = new_layout();
        char name[] = "/usr/lib/libx.so";
        size_t i;

        add(l, mk(0x3000, 0x4000, MAPPING_READ, "[heap]"));
        add(l, mk(0x1000, 0x2000, MAPPING_READ | MAPPING_EXEC, name));
        add(l, mk(0x1800, 0x2800, MAPPING_READ, "/overlaps"));    /* overlaps the one above */
        add(l, mk(0x5000, 0x5000, MAPPING_READ, NULL));           /* empty */
        add(l, mk(0x6000, 0x7000, MAPPING_READ | MAPPING_WRITE, NULL));
        name[1] = 'X';          /* the caller's buffer is the caller's */
        layout_normalize(l);
        layout_set_complete(l);

        assert_int_equal(l->mappings.n, 3);
        assert_int_equal(l->mappings.items[0].start, 0x1000);
        assert_string_equal(l->mappings.items[0].name, "/usr/lib/libx.so");
        assert_int_equal(l->mappings.items[0].kind, MAPPING_KIND_FILE);
        assert_int_equal(l->mappings.items[1].kind, MAPPING_KIND_HEAP);
        assert_null(l->mappings.items[2].name);
        for (i = 1; i < l->mappings.n; i++)
                assert_true(l->mappings.items[i - 1].end <= l->mappings.items[i].start);

        /* Complete: what no mapping covers is unmapped, everywhere. */
        assert_int_equal(layout_find(l, 0x1fff, &i), 1);
        assert_int_equal(i, 0);
        assert_int_equal(layout_find(l, 0x2000, &i), 0);
        assert_int_equal(layout_find(l, 0, &i), 0);
        assert_int_equal(layout_find(l, UINT64_MAX, &i), 0);
        assert_null(layout_unref(l));
}

/* A partial layout answers only inside its known ranges. */
static void test_partial_coverage(void **state) {
        struct layout *l = new_layout();
        struct layout_result res[4];
        uint64_t addrs[] = { 0x10800, 0x12000, 0x30000, 0x8000 };
        size_t i;

        add(l, mk(0x10000, 0x11000, MAPPING_READ, NULL));
        /* Known out of order, overlapping, adjacent: merged by normalizing. */
        assert_int_equal(layout_add_known(l, 0x11000, 0x13000), 0);
        assert_int_equal(layout_add_known(l, 0x40000, LAYOUT_TOP), 0);
        assert_int_equal(layout_add_known(l, 0x10000, 0x11800), 0);
        assert_int_equal(layout_add_known(l, 0x20000, 0x20000), -EINVAL);
        layout_normalize(l);
        assert_int_equal(l->n_known, 2);
        assert_int_equal(l->known[0].start, 0x10000);
        assert_int_equal(l->known[0].end, 0x13000);

        assert_int_equal(layout_find(l, 0x10800, &i), 1);
        assert_int_equal(layout_find(l, 0x12fff, &i), 0);          /* a known gap */
        assert_int_equal(layout_find(l, 0x13000, &i), -ENODATA);   /* never read */
        assert_int_equal(layout_find(l, 0xffff, &i), -ENODATA);
        assert_int_equal(layout_find(l, UINT64_MAX, &i), 0);       /* LAYOUT_TOP reaches the top */

        /* One unknown address fails the lookup: nobody may answer "unmapped" for it. */
        assert_int_equal(layout_lookup(l, addrs, NULL, 4, res), -ENODATA);
        assert_int_equal(layout_lookup(l, addrs, NULL, 2, res), 0);
        assert_int_equal(res[0].mapping, 0);
        assert_int_equal(res[1].mapping, -1);
        assert_int_equal(layout_lookup_one(l, 0x30000, &res[2]), -ENODATA);
        layout_unref(l);
}

static struct layout_file *elf_file(uint32_t major, uint64_t inode, uint64_t offset, uint64_t vaddr) {
        struct layout_file *f = NULL;

        assert_int_equal(layout_file_new(major, 0, inode, &f), 0);
        assert_int_equal(f->result, -ENODATA);
        f->result = 0;
        f->info.elf_class = 2;
        f->info.n_loads = 1;
        f->info.loads[0] = (struct elf_load) { .offset = offset, .vaddr = vaddr, .filesz = 0x100000, .memsz = 0x100000 };
        f->info.build_id_len = 3;
        memcpy(f->info.build_id, "\x01\x02\x03", 3);
        return f;
}

/* File offsets and ELF addresses come from the mapping and its shared facts; sorted and
 * unsorted queries agree. */
static void test_lookup_with_facts(void **state) {
        struct layout *l = new_layout();
        struct layout_file *lib = elf_file(8, 77, 0, 0x400000), *vdso = elf_file(0, 0, 0, 0xffffffffff700000);
        struct mapping m1 = mk(0x10000, 0x12000, MAPPING_READ | MAPPING_EXEC, "/lib/a.so");
        struct mapping m2 = mk(0x20000, 0x21000, MAPPING_READ, "/lib/a.so");
        uint64_t addrs[] = { 0x30010, 0x10010, 0x20020, 0x40000, 0x11000 };
        size_t order[] = { 1, 4, 2, 0, 3 };
        struct layout_result a[5], b[5];
        size_t id_len;

        m1.inode = m2.inode = 77;
        m1.offset = 0x1000;
        m2.offset = 0x5000;
        add(l, m1);
        add(l, m2);
        add(l, mk(0x30000, 0x32000, MAPPING_READ | MAPPING_EXEC, "[vdso]"));
        add(l, mk(0x40000, 0x41000, MAPPING_READ, NULL));
        layout_normalize(l);
        layout_set_complete(l);
        assert_int_equal(layout_set_file(l, 0, lib), 0);
        assert_int_equal(layout_set_file(l, 1, lib), 0);
        assert_int_equal(layout_set_file(l, 2, vdso), 0);
        assert_int_equal(lib->refs, 3);
        assert_true(layout_file_matches(lib, &l->mappings.items[1]));
        assert_ptr_equal(layout_file_build_id(lib, &id_len), lib->info.build_id);
        assert_int_equal(id_len, 3);
        /* The kernel's build ID, where there is one, wins. */
        lib->kernel_build_id_len = 1;
        lib->kernel_build_id[0] = 9;
        assert_ptr_equal(layout_file_build_id(lib, &id_len), lib->kernel_build_id);
        layout_file_unref(lib);
        layout_file_unref(vdso);
        /* No new mappings once facts are set: files[] is sized by them. */
        assert_int_equal(layout_add(l, &m1), -EBUSY);

        assert_int_equal(layout_lookup(l, addrs, NULL, 5, a), 0);
        assert_int_equal(layout_lookup(l, addrs, order, 5, b), 0);
        assert_memory_equal(a, b, sizeof(a));

        assert_int_equal(a[1].mapping, 0);
        assert_true(a[1].has_file_offset);
        assert_int_equal(a[1].file_offset, 0x1010);
        assert_true(a[1].has_elf_vaddr);
        assert_int_equal(a[1].elf_vaddr, 0x401010);
        assert_int_equal(a[2].file_offset, 0x5020);
        assert_int_equal(a[2].elf_vaddr, 0x405020);
        /* The vdso: an ELF address at the offset into the mapping, no file offset. */
        assert_int_equal(a[0].mapping, 2);
        assert_false(a[0].has_file_offset);
        assert_true(a[0].has_elf_vaddr);
        assert_int_equal(a[0].elf_vaddr, 0xffffffffff700010);
        /* Anonymous memory: the mapping only. */
        assert_int_equal(a[3].mapping, 3);
        assert_false(a[3].has_file_offset);
        assert_false(a[3].has_elf_vaddr);
        layout_unref(l);
}

struct count {
        size_t n;
        uint64_t last_start;
};

static int count_visit(struct mapping *m, void *userdata) {
        struct count *c = userdata;

        c->n++;
        c->last_start = m->start;
        m->flags = 0;   /* a copy: the layout is not changed */
        return c->n == 100 ? -ECANCELED : 0;
}

static void test_list_filters(void **state) {
        struct layout *l = new_layout();
        struct count c = {};

        add(l, mk(0x1000, 0x2000, MAPPING_READ | MAPPING_EXEC, "/bin/x"));
        add(l, mk(0x2000, 0x3000, MAPPING_READ, "/bin/x"));
        add(l, mk(0x3000, 0x4000, MAPPING_READ | MAPPING_EXEC, NULL));
        add(l, mk(0x5000, 0x6000, MAPPING_READ | MAPPING_EXEC, "[vdso]"));
        layout_normalize(l);

        assert_int_equal(layout_list(l, 0, count_visit, &c), 0);
        assert_int_equal(c.n, 4);
        assert_int_equal(l->mappings.items[0].flags, MAPPING_READ | MAPPING_EXEC);
        c = (struct count) {};
        assert_int_equal(layout_list(l, LAYOUT_EXECUTABLE_ONLY, count_visit, &c), 0);
        assert_int_equal(c.n, 3);
        c = (struct count) {};
        assert_int_equal(layout_list(l, LAYOUT_FILE_BACKED_ONLY, count_visit, &c), 0);
        assert_int_equal(c.n, 2);
        c = (struct count) {};
        assert_int_equal(layout_list(l, LAYOUT_FILE_BACKED_ONLY | LAYOUT_EXECUTABLE_ONLY, count_visit, &c), 0);
        assert_int_equal(c.n, 1);
        assert_int_equal(c.last_start, 0x1000);
        layout_unref(l);
}

/* The touched subset shares facts and keeps what the original knew. */
static void test_touched(void **state) {
        struct layout *l = new_layout(), *t = NULL, *same = NULL;
        struct layout_file *f = elf_file(8, 5, 0, 0);
        uint64_t addrs[] = { 0x2100, 0x9000, 0x2200 };
        uint64_t all[] = { 0x1000, 0x2000, 0x3000 };
        struct layout_result res[3];

        for (unsigned i = 1; i <= 3; i++)
                add(l, mk(0x1000 * i, 0x1000 * i + 0x800, MAPPING_READ, "/f"));
        assert_int_equal(layout_add_known(l, 0x1000, 0xa000), 0);
        layout_normalize(l);
        assert_int_equal(layout_set_file(l, 1, f), 0);
        layout_file_unref(f);

        assert_int_equal(layout_touched(l, addrs, NULL, 3, &t), 0);
        assert_ptr_not_equal(t, l);
        assert_int_equal(t->mappings.n, 1);
        assert_int_equal(t->mappings.items[0].start, 0x2000);
        assert_string_equal(t->mappings.items[0].name, "/f");
        assert_ptr_not_equal(t->mappings.items[0].name, l->mappings.items[1].name);
        assert_ptr_equal(layout_file_of(t, 0), f);
        assert_int_equal(f->refs, 2);
        assert_int_equal(layout_lookup(t, addrs, NULL, 3, res), 0);
        assert_int_equal(res[0].mapping, 0);
        assert_int_equal(res[1].mapping, -1);   /* known in the original: unmapped */

        /* Every mapping touched: the layout itself. */
        assert_int_equal(layout_touched(l, all, NULL, 3, &same), 0);
        assert_ptr_equal(same, l);
        assert_int_equal(l->refs, 2);
        layout_unref(same);
        layout_unref(l);
        /* The subset outlives the original; so do the facts. */
        assert_int_equal(f->refs, 1);
        assert_string_equal(t->mappings.items[0].name, "/f");
        layout_unref(t);
}

/* Names from a few bytes to beyond a chunk; build IDs and renames live in the chunks too. */
static void test_storage(void **state) {
        struct layout *l = new_layout();
        size_t big = 300 * 1024;
        char *name = malloc(big + 1);
        uint8_t id[MAPPING_BUILD_ID_MAX + 1] = { 1, 2, 3 };
        char small[32];

        assert_non_null(name);
        memset(name, 'a', big);
        name[0] = '/';
        name[big] = 0;
        for (unsigned i = 0; i < 5000; i++) {
                snprintf(small, sizeof(small), "/lib/%u.so", i);
                add(l, mk(0x1000 * (i + 1), 0x1000 * (i + 1) + 0x1000, MAPPING_READ, i == 2500 ? name : small));
        }
        free(name);
        layout_normalize(l);
        assert_int_equal(l->mappings.n, 5000);
        assert_string_equal(l->mappings.items[4999].name, "/lib/4999.so");
        assert_int_equal(strlen(l->mappings.items[2500].name), big);
        assert_int_equal(l->mappings.items[2500].name[big - 1], 'a');

        assert_int_equal(layout_set_build_id(l, 3, id, 3), 0);
        assert_int_equal(l->mappings.items[3].build_id_len, 3);
        assert_memory_equal(l->mappings.items[3].build_id, id, 3);
        assert_int_equal(layout_set_build_id(l, 3, id, MAPPING_BUILD_ID_MAX + 1), -EINVAL);
        assert_int_equal(layout_set_name(l, 4, "/renamed\\012"), 0);
        assert_string_equal(l->mappings.items[4].name, "/renamed\\012");
        assert_int_equal(layout_set_name(l, 4, NULL), 0);
        assert_null(l->mappings.items[4].name);
        layout_unref(l);
}

/* References from several threads' worth of holders: the last one frees (ASan checks). */
static void test_refcounts(void **state) {
        struct layout *l = new_layout();

        add(l, mk(0x1000, 0x2000, MAPPING_READ, "/x"));
        layout_normalize(l);
        for (int i = 0; i < 10; i++)
                assert_ptr_equal(layout_ref(l), l);
        assert_int_equal(l->refs, 11);
        for (int i = 0; i < 10; i++)
                assert_null(layout_unref(l));
        assert_int_equal(l->refs, 1);
        assert_string_equal(l->mappings.items[0].name, "/x");
        assert_null(layout_unref(l));
        assert_null(layout_unref(NULL));
        assert_null(layout_ref(NULL));
        assert_null(layout_file_unref(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_build_and_normalize),
                cmocka_unit_test(test_partial_coverage),
                cmocka_unit_test(test_lookup_with_facts),
                cmocka_unit_test(test_list_filters),
                cmocka_unit_test(test_touched),
                cmocka_unit_test(test_storage),
                cmocka_unit_test(test_refcounts),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
