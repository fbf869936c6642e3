/* Tests for basic/hex.c: the hex decoding table and hex strings of byte arrays. */

#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hex.h"

/* Every byte against libc's idea of a hex digit and strtol's value for it. */
static void test_unhexchar_all_bytes(void **state) {
        (void) state;
        for (unsigned c = 0; c < 256; c++) {
                char s[2] = { (char) c, 0 };
                int expected = c != 0 && isxdigit((int) c) ? (int) strtol(s, NULL, 16) : -1;

                if (unhexchar((char) c) != expected)
                        fail_msg("unhexchar(0x%02x) = %d, expected %d", c, unhexchar((char) c), expected);
        }
}

static void test_round_trip(void **state) {
        uint8_t bytes[256], back[256];
        char hex[2 * sizeof(bytes) + 1];

        (void) state;
        for (unsigned i = 0; i < sizeof(bytes); i++)
                bytes[i] = (uint8_t) (i * 37 + 11);
        format_hex_bytes(bytes, sizeof(bytes), hex);
        assert_int_equal(strlen(hex), 2 * sizeof(bytes));
        for (size_t i = 0; hex[i]; i++)
                assert_true((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
        assert_int_equal(unhex_bytes(hex, strlen(hex), true, back), 0);
        assert_memory_equal(bytes, back, sizeof(bytes));
        /* Empty in, empty out. */
        assert_int_equal(unhex_bytes("", 0, true, back), 0);
        assert_string_equal(format_hex_bytes(bytes, 0, hex), "");
}

static void test_unhex_refusals(void **state) {
        uint8_t out[4] = { 0 };

        (void) state;
        assert_int_equal(unhex_bytes("abc", 3, false, out), -EINVAL);      /* odd length */
        assert_int_equal(unhex_bytes("0g", 2, false, out), -EINVAL);
        assert_int_equal(unhex_bytes("g0", 2, false, out), -EINVAL);
        assert_int_equal(unhex_bytes("0 ", 2, false, out), -EINVAL);
        assert_int_equal(unhex_bytes("AB", 2, true, out), -EINVAL);        /* uppercase where lowercase only */
        assert_int_equal(unhex_bytes("aB", 2, true, out), -EINVAL);
        assert_int_equal(unhex_bytes("AbCd", 4, false, out), 0);
        assert_int_equal(out[0], 0xab);
        assert_int_equal(out[1], 0xcd);
        /* The length bounds what is read: a NUL inside it is refused, not a terminator. */
        assert_int_equal(unhex_bytes("ab\0d", 4, false, out), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_unhexchar_all_bytes),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_unhex_refusals),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
