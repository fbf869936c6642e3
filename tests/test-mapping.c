/* The mapping model: list growth, normalization of racy listings, search, formatting. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mapping.h"

static void push(struct mapping_list *l, uint64_t start, uint64_t end, const char *name) {
        struct mapping m = { .start = start, .end = end, .name = name ? strdup(name) : NULL };

        mapping_classify_name(&m);
        assert_int_equal(mapping_list_push(l, &m), 0);
        assert_null(m.name);
}

static void test_normalize(void **state) {
        struct mapping_list l = {};

        push(&l, 0x5000, 0x6000, "/b");
        push(&l, 0x1000, 0x2000, "/a");
        push(&l, 0x1800, 0x3000, "/overlaps-a");    /* starts inside the previous one */
        push(&l, 0x7000, 0x7000, NULL);             /* empty */
        push(&l, 0x9000, 0x8000, NULL);             /* inverted */
        push(&l, 0x5000, 0x5800, "/same-start");    /* same start, shorter: dropped */
        push(&l, 0x6000, 0x7000, "[heap]");         /* adjacent: kept */
        mapping_list_normalize(&l);

        assert_int_equal(l.n, 3);
        assert_string_equal(l.items[0].name, "/a");
        assert_string_equal(l.items[1].name, "/b");
        assert_string_equal(l.items[2].name, "[heap]");
        assert_int_equal(l.items[2].kind, MAPPING_KIND_HEAP);
        mapping_list_done(&l);
        assert_null(l.items);
        assert_int_equal(l.n, 0);
        mapping_list_done(&l);
}

static void test_find(void **state) {
        struct mapping_list l = {};

        for (uint64_t i = 0; i < 1000; i++)
                push(&l, 0x10000 + i * 0x2000, 0x11000 + i * 0x2000, NULL);
        mapping_list_normalize(&l);
        assert_int_equal(mapping_list_find(&l, 0), -1);
        assert_int_equal(mapping_list_find(&l, 0x10000), 0);
        assert_int_equal(mapping_list_find(&l, 0x10fff), 0);
        assert_int_equal(mapping_list_find(&l, 0x11000), -1);
        assert_int_equal(mapping_list_find(&l, 0x12000), 1);
        assert_int_equal(mapping_list_find(&l, 0x10000 + 999 * 0x2000 + 5), 999);
        assert_int_equal(mapping_list_find(&l, UINT64_MAX), -1);
        mapping_list_done(&l);

        assert_int_equal(mapping_list_find(&l, 0x10000), -1);
}

static void test_perms_and_kinds(void **state) {
        char buf[5];

        assert_string_equal(perms_format(0, buf), "---p");
        assert_string_equal(perms_format(MAPPING_READ | MAPPING_EXEC, buf), "r-xp");
        assert_string_equal(perms_format(MAPPING_READ | MAPPING_WRITE | MAPPING_SHARED, buf), "rw-s");
        for (int k = 0; k < _MAPPING_KIND_MAX; k++) {
                const char *s = mapping_kind_to_string(k);

                assert_non_null(s);
                /* Varlink enum values are identifiers. */
                assert_int_equal(strspn(s, "abcdefghijklmnopqrstuvwxyz_"), strlen(s));
        }
        assert_null(mapping_kind_to_string(_MAPPING_KIND_MAX));
        assert_null(mapping_kind_to_string(-1));
}

static void test_path_len(void **state) {
        struct mapping m = { .name = strdup("/usr/lib/x.so (deleted)") };

        mapping_classify_name(&m);
        assert_true(m.deleted);
        assert_int_equal(mapping_path_len(&m), strlen("/usr/lib/x.so"));
        assert_true(mapping_is_file_backed(&m));
        mapping_done(&m);
        assert_null(m.name);

        m = (struct mapping) { .name = strdup("/memfd:jit (deleted)") };
        mapping_classify_name(&m);
        assert_int_equal(m.kind, MAPPING_KIND_MEMFD);
        assert_false(m.deleted);
        assert_int_equal(mapping_path_len(&m), strlen("/memfd:jit"));
        mapping_done(&m);

        m = (struct mapping) {};
        mapping_classify_name(&m);
        assert_int_equal(m.kind, MAPPING_KIND_ANONYMOUS);
        assert_int_equal(mapping_path_len(&m), 0);
        assert_false(mapping_is_file_backed(&m));
        mapping_done(&m);
        mapping_done(NULL);
}

/* Build IDs are owned copies: set, replaced, dropped, copied with the mapping, freed with it. */
static void test_build_id(void **state) {
        uint8_t id[MAPPING_BUILD_ID_MAX + 1];
        struct mapping m = { .start = 1, .end = 2, .name = strdup("/x") }, *c;
        struct mapping_list l = {};

        for (size_t i = 0; i < sizeof(id); i++)
                id[i] = (uint8_t) (i * 7 + 1);
        assert_int_equal(sizeof(struct mapping), 8 * sizeof(uint64_t));
        assert_int_equal(mapping_set_build_id(&m, id, 20), 0);
        assert_int_equal(m.build_id_len, 20);
        assert_memory_equal(m.build_id, id, 20);
        assert_true(m.build_id != id);
        /* Too long: refused, the old one kept. */
        assert_int_equal(mapping_set_build_id(&m, id, MAPPING_BUILD_ID_MAX + 1), -EINVAL);
        assert_int_equal(m.build_id_len, 20);
        assert_int_equal(mapping_set_build_id(&m, id + 1, MAPPING_BUILD_ID_MAX), 0);
        assert_int_equal(m.build_id_len, MAPPING_BUILD_ID_MAX);
        assert_memory_equal(m.build_id, id + 1, MAPPING_BUILD_ID_MAX);

        assert_int_equal(mapping_list_push_copy(&l, &m), 0);
        assert_int_equal(mapping_list_push_visit(&m, &l), 0);
        for (size_t i = 0; i < 2; i++) {
                c = &l.items[i];
                assert_true(c->name != m.name && c->build_id != m.build_id);
                assert_string_equal(c->name, "/x");
                assert_int_equal(c->build_id_len, MAPPING_BUILD_ID_MAX);
                assert_memory_equal(c->build_id, id + 1, MAPPING_BUILD_ID_MAX);
        }

        assert_int_equal(mapping_set_build_id(&m, NULL, 0), 0);
        assert_null(m.build_id);
        assert_int_equal(m.build_id_len, 0);
        assert_int_equal(mapping_list_push_copy(&l, &m), 0);
        assert_null(l.items[2].build_id);
        assert_int_equal(mapping_set_build_id(&m, id, 3), 0);
        mapping_done(&m);
        assert_null(m.name);
        assert_null(m.build_id);
        assert_int_equal(m.build_id_len, 0);
        mapping_list_done(&l);
}

static void test_bounded(void **state) {
        struct mapping_list l = {};
        struct mapping m = { .start = 1, .end = 2 };

        for (size_t i = 0; i < MAPPING_LIST_MAX; i++) {
                m.start = i * 2;
                m.end = i * 2 + 1;
                assert_int_equal(mapping_list_push(&l, &m), 0);
        }
        m.name = strdup("/x");
        assert_int_equal(mapping_list_push(&l, &m), -E2BIG);
        /* Untouched on failure: the caller still owns the name. */
        assert_non_null(m.name);
        mapping_done(&m);
        assert_int_equal(l.n, MAPPING_LIST_MAX);
        mapping_list_done(&l);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_normalize),
                cmocka_unit_test(test_find),
                cmocka_unit_test(test_perms_and_kinds),
                cmocka_unit_test(test_path_len),
                cmocka_unit_test(test_build_id),
                cmocka_unit_test(test_bounded),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
