/* The vdso cache's rules: keyed by build ID and size, the daemon's own image for anyone, a
 * learned one only for its owner's processes, a bounded number evicted least recently used. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cleanup.h"
#include "vdso-cache.h"

#define SIZE 8192

/* An image whose bytes and build ID both say tag. */
static void make(uint8_t tag, struct elf_info *info, uint8_t *image) {
        *info = (struct elf_info) { .elf_class = 2, .build_id_len = 20 };
        memset(info->build_id, tag, 20);
        memset(image, tag, SIZE);
}

static int get(struct vdso_cache *c, uint8_t tag, size_t size, const uid_t *owner, uint8_t *ret_first_byte) {
        _cleanup_free_ uint8_t *image = NULL;
        struct elf_info info = {};
        uint8_t id[20];
        int r;

        memset(id, tag, sizeof(id));
        r = vdso_cache_get(c, id, sizeof(id), size, owner, &info, &image);
        if (r > 0) {
                assert_memory_equal(info.build_id, id, sizeof(id));
                *ret_first_byte = image[0];
        }
        return r;
}

static void test_rules(void **state) {
        static uint8_t image[SIZE];
        struct vdso_cache *c = NULL;
        struct vdso_cache_stats st;
        struct elf_info info;
        const uid_t root = 0, alice = 1000, bob = 1001;
        uint8_t b = 0;

        assert_int_equal(vdso_cache_new(&c), 0);
        make(1, &info, image);
        /* Nothing without a build ID, nothing empty or oversized. */
        info.build_id_len = 0;
        assert_int_equal(vdso_cache_put(c, &info, image, SIZE, true, root), -EINVAL);
        info.build_id_len = 20;
        assert_int_equal(vdso_cache_put(c, &info, image, 0, true, root), -EINVAL);
        assert_int_equal(vdso_cache_put(c, &info, image, VDSO_CACHE_IMAGE_MAX + 1, true, root), -EINVAL);

        /* The daemon's own image answers for everyone, without an owner too; only for its size. */
        assert_int_equal(vdso_cache_put(c, &info, image, SIZE, true, root), 0);
        assert_int_equal(get(c, 1, SIZE, NULL, &b), 1);
        assert_int_equal(b, 1);
        assert_int_equal(get(c, 1, SIZE, &bob, &b), 1);
        assert_int_equal(get(c, 1, SIZE / 2, &bob, &b), 0);
        /* Asked without an owner, a miss is the caller's to count when it asks again. */
        assert_int_equal(get(c, 2, SIZE, NULL, &b), 0);
        vdso_cache_get_stats(c, &st);
        assert_int_equal(st.hits, 2);
        assert_int_equal(st.misses, 1);
        assert_int_equal(st.entries, 1);

        /* A learned image is alice's only. */
        make(2, &info, image);
        assert_int_equal(vdso_cache_put(c, &info, image, SIZE, false, alice), 0);
        assert_int_equal(get(c, 2, SIZE, &alice, &b), 1);
        assert_int_equal(b, 2);
        assert_int_equal(get(c, 2, SIZE, &bob, &b), 0);
        assert_int_equal(get(c, 2, SIZE, NULL, &b), 0);

        /* Bob's under the same build ID is another entry; the same again replaces it. */
        image[0] = 0x42;
        assert_int_equal(vdso_cache_put(c, &info, image, SIZE, false, bob), 0);
        image[0] = 0x43;
        assert_int_equal(vdso_cache_put(c, &info, image, SIZE, false, bob), 0);
        assert_int_equal(get(c, 2, SIZE, &bob, &b), 1);
        assert_int_equal(b, 0x43);
        assert_int_equal(get(c, 2, SIZE, &alice, &b), 1);
        assert_int_equal(b, 2);
        vdso_cache_get_stats(c, &st);
        assert_int_equal(st.entries, 3);

        /* Learned images beyond the slots push out the least recently used one (bob's: alice's
         * was asked for last), never the daemon's own. */
        for (uint8_t tag = 3; tag < 3 + VDSO_CACHE_SLOTS - 1; tag++) {
                make(tag, &info, image);
                assert_int_equal(vdso_cache_put(c, &info, image, SIZE, false, alice), 0);
        }
        vdso_cache_get_stats(c, &st);
        assert_int_equal(st.entries, 1 + VDSO_CACHE_SLOTS);
        assert_int_equal(get(c, 2, SIZE, &bob, &b), 0);
        assert_int_equal(get(c, 2, SIZE, &alice, &b), 1);
        assert_int_equal(get(c, 1, SIZE, &bob, &b), 1);
        assert_int_equal(b, 1);
        assert_int_equal(get(c, 3 + VDSO_CACHE_SLOTS - 2, SIZE, &alice, &b), 1);

        c = vdso_cache_free(c);
        assert_null(c);
        assert_null(vdso_cache_free(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rules),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
