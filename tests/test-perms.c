/* Tests for basic/perms.c: the permission text of every bit combination both ways, and what
 * is refused. Links basic/ only. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "perms.h"

/* Every combination, against text built here character by character, and back. */
static void test_round_trip(void **state) {
        for (unsigned flags = 0; flags < 16; flags++) {
                char want[5], buf[5];
                unsigned back = 99;

                snprintf(want, sizeof(want), "%c%c%c%c", flags & PERM_READ ? 'r' : '-', flags & PERM_WRITE ? 'w' : '-',
                         flags & PERM_EXEC ? 'x' : '-', flags & PERM_SHARED ? 's' : 'p');
                assert_ptr_equal(perms_format(flags, buf), buf);
                assert_string_equal(buf, want);
                assert_int_equal(perms_parse(want, &back), 0);
                assert_int_equal(back, flags);
        }
}

/* Any other character in any place is refused, the result untouched; only 4 bytes are read. */
static void test_refused(void **state) {
        static const char *const bad[] = { "R-xp", "r-xP", "rwx-", "-w-q", "r x p", "xwrp", "r-s-", "\0--p" };
        unsigned flags = 99;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(perms_parse(bad[i], &flags), -EINVAL);
                assert_int_equal(flags, 99);
        }
        assert_int_equal(perms_parse("r-xpGARBAGE", &flags), 0);
        assert_int_equal(flags, PERM_READ | PERM_EXEC);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_refused),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
