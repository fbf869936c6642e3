/* Tests for proto/json-reader.c: what the strict pull reader accepts and how it decodes it,
 * checked against json-c's reading of the same text. Links proto/ and basic/ only. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "json-reader.h"

static struct json_reader reader(const char *text) {
        return (struct json_reader) { .p = text, .end = text + strlen(text) };
}

/* Each string as json-c decodes it: the reader's copy has the same bytes. */
static void test_strings(void **state) {
        static const char *const good[] = {
                "\"\"", "\"plain /path\"", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
                "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u00e9\\u20ac\"", "\"\\ud83d\\ude00 pair\"", "\"a\\u0000b\"",
        };
        static const char *const bad[] = {
                "\"unterminated", "\"ctl\x01\"", "\"\\x\"", "\"\\u12\"", "\"\\ude00 lone low\"",
                "\"\\ud83d lone high\"", "\"\xff\"", "\"\xc0\xaf overlong\"", "\"\xed\xa0\x80 surrogate\"", "x",
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_json_ struct json_object *o = json_tokener_parse(good[i]);
                struct json_reader j = reader(good[i]);
                const char *raw;
                size_t len;
                bool escaped;
                char out[256];

                assert_non_null(o);
                assert_int_equal(json_reader_string(&j, &raw, &len, &escaped), 0);
                assert_ptr_equal(j.p, j.end);
                len = json_reader_copy_string(raw, len, escaped, out);
                assert_int_equal(len, (size_t) json_object_get_string_len(o));
                assert_memory_equal(out, json_object_get_string(o), len);
                assert_int_equal(j.nul, memchr(out, 0, len) != NULL);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct json_reader j = reader(bad[i]);
                const char *raw;
                size_t len;
                bool escaped;

                if (json_reader_string(&j, &raw, &len, &escaped) != -EPROTO)
                        fail_msg("accepted %s", bad[i]);
        }
}

static void test_numbers(void **state) {
        static const struct {
                const char *text;
                int r;
                bool negative;
                uint64_t value;
        } cases[] = {
                { "0", 0, false, 0 },
                { "18446744073709551615", 0, false, UINT64_MAX },
                { "-9223372036854775808", 0, true, UINT64_C(9223372036854775808) },
                { "18446744073709551616", -EPROTO, false, 0 },
                { "-9223372036854775809", -EPROTO, false, 0 },
                { "01", -EPROTO, false, 0 },
                { "1.5", -EPROTO, false, 0 },
                { "1e3", -EPROTO, false, 0 },
                { "-", -EPROTO, false, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct json_reader j = reader(cases[i].text);
                bool negative = false;
                uint64_t v = 0;

                assert_int_equal(json_reader_number(&j, &negative, &v), cases[i].r);
                if (cases[i].r == 0) {
                        assert_int_equal(negative, cases[i].negative);
                        assert_true(v == cases[i].value);
                        assert_ptr_equal(j.p, j.end);
                }
        }
}

static void test_hex(void **state) {
        uint64_t v = 0;
        struct json_reader j = reader("\"0x7f00aBc\"");

        assert_int_equal(json_reader_hex_plain(&j, &v), 1);
        assert_true(v == 0x7f00abc);
        j = reader("\"0\\u0078ff\"");
        assert_int_equal(json_reader_hex_plain(&j, &v), 0); /* escaped: not the plain form */
        assert_int_equal(json_reader_get_hex(&j, &v), 1);
        assert_true(v == 0xff);
        j = reader("\"0X1\"");
        assert_int_equal(json_reader_get_hex(&j, &v), -EPROTO);
        j = reader("\"0xffffffffffffffff\"");
        assert_int_equal(json_reader_hex_plain(&j, &v), 1);
        assert_true(v == UINT64_MAX);
        j = reader("\"0x10000000000000000\"");
        assert_int_equal(json_reader_hex_plain(&j, &v), 0);
        assert_int_equal(json_reader_get_hex(&j, &v), -EPROTO);
        j = reader("\"0x000000000000000000001\"");
        assert_int_equal(json_reader_get_hex(&j, &v), 1);
        assert_true(v == 1);
        j = reader("null");
        assert_int_equal(json_reader_get_hex(&j, &v), 0);
        assert_int_equal(json_reader_parse_hex("0x", &v), -EPROTO);
        assert_int_equal(json_reader_parse_hex("12", &v), -EPROTO);
}

/* Members and elements of a nested document, with skipping, against json-c's tree. */
static void test_walk(void **state) {
        static const char text[] =
                " { \"a\" : [ 1 , { \"x\" : [ true , false , null ] } , \"s\" ] , \"b\\u0063\" : 7 ,"
                " \"n\" : null , \"o\" : { } , \"e\" : [ ] } ";
        _cleanup_json_ struct json_object *o = json_tokener_parse(text);
        struct json_reader j = reader(text);
        bool first = true;
        const char *key;
        size_t len, n = 0;
        int r;

        assert_non_null(o);
        while ((r = json_reader_member(&j, &first, &key, &len)) > 0) {
                char k[16];

                assert_true(len < sizeof(k));
                memcpy(k, key, len);
                k[len] = 0;
                assert_true(json_object_object_get_ex(o, k, NULL));
                if (json_key_is(key, len, "bc")) {
                        uint64_t v = 0;

                        assert_int_equal(json_reader_get_uint(&j, &v), 1);
                        assert_true(v == 7);
                } else if (json_key_is(key, len, "e")) {
                        bool efirst = true;

                        assert_int_equal(json_reader_element(&j, &efirst), 0);
                } else
                        assert_int_equal(json_reader_skip(&j, 1), 0);
                n++;
        }
        assert_int_equal(r, 0);
        assert_int_equal(n, (size_t) json_object_object_length(o));
        json_reader_ws(&j);
        assert_ptr_equal(j.p, j.end);
}

/* Nesting beyond JSON_READER_DEPTH_MAX and malformed containers are refused. */
/* The unchecked skip steps over what json-c takes and the strict reader refuses, escapes whole,
 * and never past the end it is given. */
static void test_skip_unchecked(void **state) {
        static const struct {
                const char *text;
                size_t end;             /* where the string ends; 0: refused */
        } cases[] = {
                { "\"plain\",1", 7 },
                { "\"\x01\\ud800\xc0\x80\",1", 11 },
                { "\"a\\\"b\\\\\",1", 8 },
                { "\"\\\\\\\"\"x", 6 },
                { "\"open", 0 },
                { "\"ends in a backslash\\", 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *t = cases[i].text;
                struct json_reader strict = { .p = t, .end = t + strlen(t) }, j = strict;
                const char *raw;
                size_t len;
                bool escaped;

                if (cases[i].end == 0) {
                        assert_int_equal(json_reader_skip_string_unchecked(&j), -EPROTO);
                        assert_ptr_equal(j.p, t);
                        continue;
                }
                assert_int_equal(json_reader_skip_string_unchecked(&j), 0);
                assert_int_equal(j.p - t, cases[i].end);
                /* Where the strict reader takes the string, it ends at the same place. */
                if (json_reader_string(&strict, &raw, &len, &escaped) == 0)
                        assert_ptr_equal(strict.p, j.p);
        }
        /* An end before the NUL bounds it. */
        {
                static const char t[] = "\"abc\"";
                struct json_reader j = { .p = t, .end = t + 3 };

                assert_int_equal(json_reader_skip_string_unchecked(&j), -EPROTO);
        }
}

static void test_skip_limits(void **state) {
        char deep[2 * JSON_READER_DEPTH_MAX + 8];
        struct json_reader j;
        size_t n = 0;

        for (unsigned i = 0; i <= JSON_READER_DEPTH_MAX; i++)
                deep[n++] = '[';
        for (unsigned i = 0; i <= JSON_READER_DEPTH_MAX; i++)
                deep[n++] = ']';
        deep[n] = 0;
        j = reader(deep);
        assert_int_equal(json_reader_skip(&j, 0), -EPROTO);
        j = reader(deep + 2);
        assert_int_equal(json_reader_skip(&j, 0), 0);

        static const char *const bad[] = { "[1,]", "{\"a\"}", "{\"a\":1,}", "[1 2]", "tru", "nul", "{1:2}" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                j = reader(bad[i]);
                if (json_reader_skip(&j, 0) == 0 && j.p == j.end)
                        fail_msg("accepted %s", bad[i]);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_strings),
                cmocka_unit_test(test_numbers),
                cmocka_unit_test(test_hex),
                cmocka_unit_test(test_walk),
                cmocka_unit_test(test_skip_limits),
                cmocka_unit_test(test_skip_unchecked),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
