/* Tests for basic/number.c: strict u64 parsing and hex formatting. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "number.h"

#define SENTINEL UINT64_C(0x5a5a5a5a5a5a5a5a)

static void check_ok(const char *s, uint64_t expected) {
        uint64_t v = SENTINEL;

        if (parse_u64(s, &v) != 0 || v != expected)
                fail_msg("parse_u64(\"%s\") -> %llx, expected %llx", s, (unsigned long long) v,
                         (unsigned long long) expected);
}

static void check_err(const char *s, int expected) {
        uint64_t v = SENTINEL;
        int r = parse_u64(s, &v);

        if (r != expected)
                fail_msg("parse_u64(\"%s\") = %d, expected %d", s ? s : "(null)", r, expected);
        assert_int_equal(v, SENTINEL); /* untouched on failure */
}

static void test_parse_decimal(void **state) {
        check_ok("0", 0);
        check_ok("1", 1);
        check_ok("42", 42);
        check_ok("4294967296", UINT64_C(4294967296));
        check_ok("9223372036854775808", UINT64_C(9223372036854775808));
        check_ok("18446744073709551615", UINT64_MAX);
        check_ok("18446744073709551614", UINT64_MAX - 1);
        /* leading zeros: accepted as long as the value fits, even beyond 20 digits */
        check_ok("007", 7);
        check_ok("000000000000000000000000000001", 1);
        check_ok("0000018446744073709551615", UINT64_MAX);
}

static void test_parse_hex(void **state) {
        check_ok("0x0", 0);
        check_ok("0X0", 0);
        check_ok("0x1", 1);
        check_ok("0xa", 10);
        check_ok("0xABCdef", 0xabcdef);
        check_ok("0x7fffffffffffffff", INT64_MAX);
        check_ok("0xffffffffffffffff", UINT64_MAX);
        check_ok("0XFFFFFFFFFFFFFFFF", UINT64_MAX);
        check_ok("0xffffffffff600000", UINT64_C(0xffffffffff600000));
        check_ok("0x00000000000000000000001", 1);
        check_ok("0x0000ffffffffffffffff", UINT64_MAX);
}

static void test_parse_overflow(void **state) {
        check_err("18446744073709551616", -ERANGE);
        check_err("18446744073709551620", -ERANGE);
        check_err("99999999999999999999", -ERANGE);
        check_err("100000000000000000000", -ERANGE);
        check_err("0x10000000000000000", -ERANGE);
        check_err("0x1ffffffffffffffff", -ERANGE);
        check_err("0x100000000000000000000", -ERANGE); /* "0x1" + 20 zeros */
        check_err("0x123456789012345678901", -ERANGE);
}

static void test_parse_garbage(void **state) {
        uint64_t v = SENTINEL;

        check_err("", -EINVAL);
        check_err("0x", -EINVAL);
        check_err("0X", -EINVAL);
        check_err("x1", -EINVAL);
        check_err(" 1", -EINVAL);
        check_err("1 ", -EINVAL);
        check_err("\t1", -EINVAL);
        check_err("+1", -EINVAL);
        check_err("-1", -EINVAL);
        check_err("-0", -EINVAL);
        check_err("0x-1", -EINVAL);
        check_err("0x+1", -EINVAL);
        check_err("0x 1", -EINVAL);
        check_err("0xx1", -EINVAL);
        check_err("0x1g", -EINVAL);
        check_err("0xg", -EINVAL);
        check_err("1a", -EINVAL);
        check_err("1.0", -EINVAL);
        check_err("1e3", -EINVAL);
        check_err("0b101", -EINVAL);
        check_err("0o17", -EINVAL);
        check_err("00x1", -EINVAL);
        check_err("\xd9\xa1", -EINVAL); /* ARABIC-INDIC DIGIT ONE */
        /* garbage wins over overflow */
        check_err("18446744073709551616x", -EINVAL);
        check_err("0x1ffffffffffffffffz", -EINVAL);

        check_err(NULL, -EINVAL);
        assert_int_equal(parse_u64("1", NULL), -EINVAL);
        assert_int_equal(v, SENTINEL);
}

static void check_format(uint64_t v, const char *expected) {
        char buf[HEX_U64_MAX];

        memset(buf, 'X', sizeof(buf));
        assert_ptr_equal(format_hex_u64(v, buf), buf);
        assert_string_equal(buf, expected);
}

static void test_format_hex(void **state) {
        check_format(0, "0x0");
        check_format(1, "0x1");
        check_format(0xf, "0xf");
        check_format(0x10, "0x10");
        check_format(0xdeadbeef, "0xdeadbeef");
        check_format(UINT64_C(0xffffffffff600000), "0xffffffffff600000");
        check_format(UINT64_C(0x8000000000000000), "0x8000000000000000");
        check_format(UINT64_MAX, "0xffffffffffffffff");
        assert_int_equal(strlen("0xffffffffffffffff") + 1, HEX_U64_MAX);
}

static void round_trip(uint64_t v) {
        char buf[HEX_U64_MAX];
        uint64_t back = ~v;

        format_hex_u64(v, buf);
        assert_true(strlen(buf) < HEX_U64_MAX);
        assert_int_equal(parse_u64(buf, &back), 0);
        assert_int_equal(back, v);
        /* no leading zeros */
        assert_true(v == 0 ? strcmp(buf, "0x0") == 0 : buf[2] != '0');
}

static void test_round_trip(void **state) {
        uint64_t x = UINT64_C(0x9e3779b97f4a7c15);

        round_trip(0);
        round_trip(UINT64_MAX);
        round_trip(UINT64_C(0xffffffffff600000));
        round_trip(UINT64_C(0x7fffffffffffffff));

        for (unsigned i = 0; i < 64; i++) {
                uint64_t p = UINT64_C(1) << i;

                round_trip(p);
                round_trip(p - 1);
                round_trip(p + 1);
                round_trip(~p);
        }

        /* xorshift64 pseudo-random values, masked to every width */
        for (unsigned i = 0; i < 20000; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                round_trip(x);
                round_trip(x >> (i % 64));
        }
}

static void test_format_hex_bytes(void **state) {
        const uint8_t data[] = { 0x00, 0x01, 0xab, 0xcd, 0xef, 0xff, 0x10 };
        char buf[2 * sizeof(data) + 1];

        assert_ptr_equal(format_hex_bytes(data, sizeof(data), buf), buf);
        assert_string_equal(buf, "0001abcdefff10");

        memset(buf, 'X', sizeof(buf));
        assert_string_equal(format_hex_bytes(data, 0, buf), "");
        assert_string_equal(format_hex_bytes(data + 5, 1, buf), "ff");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_decimal),
                cmocka_unit_test(test_parse_hex),
                cmocka_unit_test(test_parse_overflow),
                cmocka_unit_test(test_parse_garbage),
                cmocka_unit_test(test_format_hex),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_format_hex_bytes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
