/* Tests for basic/utf8.c against an independent rule: decode the bits, then check range,
 * shortest form and surrogates (the code under test compares byte ranges instead). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "utf8.h"

/* The oracle: the length of the well-formed sequence of exactly n bytes at p, or 0. */
static size_t oracle(const uint8_t *p, size_t n) {
        static const uint32_t min_for_len[5] = { 0, 0, 0x80, 0x800, 0x10000 };
        uint32_t cp;

        if (n == 2 && (p[0] & 0xe0) == 0xc0)
                cp = p[0] & 0x1f;
        else if (n == 3 && (p[0] & 0xf0) == 0xe0)
                cp = p[0] & 0x0f;
        else if (n == 4 && (p[0] & 0xf8) == 0xf0)
                cp = p[0] & 0x07;
        else
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if (cp < min_for_len[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n;
}

/* What the oracle says for the bytes at p (any length 1-4 that is well-formed). */
static size_t oracle_any(const uint8_t *p, size_t avail) {
        for (size_t n = 2; n <= 4 && n <= avail; n++)
                if (oracle(p, n))
                        return n;
        return 0;
}

static void check(const uint8_t *p, size_t avail) {
        size_t got = utf8_sequence_length(p, avail), want = oracle_any(p, avail);

        if (got != want)
                fail_msg("utf8_sequence_length(%02x %02x %02x %02x, %zu) = %zu, expected %zu", p[0], p[1], p[2], p[3],
                         avail, got, want);
}

/* Every one- and two-byte input, every three-byte input, and four-byte inputs over every lead
 * byte with the second byte exhaustive (the rest walked over their boundary values). */
static void test_exhaustive(void **state) {
        static const uint8_t edges[] = { 0x00, 0x3f, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff };
        uint8_t b[4] = { 0 };

        (void) state;
        for (unsigned a = 0; a < 256; a++)
                for (unsigned c = 0; c < 256; c++) {
                        b[0] = (uint8_t) a, b[1] = (uint8_t) c, b[2] = b[3] = 0;
                        check(b, 1);
                        check(b, 2);
                        for (unsigned d = 0; d < 256; d++) {
                                b[2] = (uint8_t) d;
                                check(b, 3);
                        }
                        if (a >= 0xf0)
                                for (unsigned i = 0; i < sizeof(edges); i++)
                                        for (unsigned k = 0; k < sizeof(edges); k++) {
                                                b[2] = edges[i], b[3] = edges[k];
                                                check(b, 4);
                                                check(b, 3); /* truncated */
                                        }
                }
}

static void test_examples(void **state) {
        (void) state;
        assert_int_equal(utf8_sequence_length((const uint8_t *) "\xc3\xa9", 2), 2);          /* é */
        assert_int_equal(utf8_sequence_length((const uint8_t *) "\xe2\x82\xac", 3), 3);      /* € */
        assert_int_equal(utf8_sequence_length((const uint8_t *) "\xf0\x9f\x98\x80", 4), 4);  /* U+1F600 */
        assert_int_equal(utf8_sequence_length((const uint8_t *) "\xed\xa0\x80", 3), 0);      /* surrogate */
        assert_int_equal(utf8_sequence_length((const uint8_t *) "\xc0\xaf", 2), 0);          /* overlong '/' */
        assert_int_equal(utf8_sequence_length((const uint8_t *) "\xf4\x90\x80\x80", 4), 0);  /* > U+10FFFF */
        assert_int_equal(utf8_sequence_length((const uint8_t *) "a", 1), 0);                 /* ASCII: no sequence */
        assert_int_equal(utf8_sequence_length((const uint8_t *) "\xe2\x82", 2), 0);          /* truncated */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_exhaustive),
                cmocka_unit_test(test_examples),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
