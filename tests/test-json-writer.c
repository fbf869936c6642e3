/* Tests for proto/json-writer.c: structure, escaping, UTF-8 repair, bounds, reuse. */

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "json-writer.h"
#include "number.h"

/* Finishes w and checks the output is exactly expected (len bytes). */
static void finish_expect(struct json_writer *w, const char *expected, size_t expected_len) {
        _cleanup_free_ char *out = NULL;
        size_t len = SIZE_MAX;

        assert_int_equal(json_writer_finish(w, &out, &len), 0);
        assert_non_null(out);
        assert_int_equal(len, expected_len);
        assert_memory_equal(out, expected, expected_len);
        assert_int_equal(out[len], '\0');
}

#define FINISH_EXPECT(w, s) finish_expect((w), (s), sizeof(s) - 1)

static void finish_expect_error(struct json_writer *w, int expected) {
        char *out = (char *) 0x1;
        size_t len = 12345;

        assert_int_equal(json_writer_finish(w, &out, &len), expected);
        assert_ptr_equal(out, (char *) 0x1); /* untouched */
        assert_int_equal(len, 12345);
}

/* Finishes w and parses the output with json-c (strict, UTF-8 validated). */
static struct json_object *finish_parse(struct json_writer *w) {
        _cleanup_free_ char *out = NULL;
        struct json_tokener *tok;
        struct json_object *o;
        size_t len;

        assert_int_equal(json_writer_finish(w, &out, &len), 0);
        assert_int_equal(strlen(out), len);
        tok = json_tokener_new();
        assert_non_null(tok);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, out, (int) len + 1); /* the NUL ends a bare number */
        if (json_tokener_get_error(tok) != json_tokener_success)
                fail_msg("json-c rejects \"%s\": %s", out, json_tokener_error_desc(json_tokener_get_error(tok)));
        json_tokener_free(tok);
        return o;
}

static void test_structure(void **state) {
        struct json_writer w;

        json_writer_init(&w, 0);
        json_writer_object_begin(&w);
        json_writer_key(&w, "a");
        json_writer_array_begin(&w);
        json_writer_int(&w, 1);
        json_writer_int(&w, 2);
        json_writer_object_begin(&w);
        json_writer_key(&w, "b");
        json_writer_array_begin(&w);
        json_writer_array_end(&w);
        json_writer_object_end(&w);
        json_writer_array_begin(&w);
        json_writer_null(&w);
        json_writer_array_end(&w);
        json_writer_array_end(&w);
        json_writer_key(&w, "c");
        json_writer_object_begin(&w);
        json_writer_object_end(&w);
        json_writer_key(&w, "d");
        json_writer_string(&w, "x");
        json_writer_key(&w, "e");
        json_writer_bool(&w, true);
        json_writer_key(&w, "f");
        json_writer_bool(&w, false);
        json_writer_object_end(&w);
        FINISH_EXPECT(&w, "{\"a\":[1,2,{\"b\":[]},[null]],\"c\":{},\"d\":\"x\",\"e\":true,\"f\":false}");

        /* scalars and arrays at the top level */
        json_writer_string(&w, "top");
        FINISH_EXPECT(&w, "\"top\"");
        json_writer_array_begin(&w);
        json_writer_array_end(&w);
        FINISH_EXPECT(&w, "[]");

        /* nothing written */
        FINISH_EXPECT(&w, "");
        json_writer_done(&w);
}

static void test_numbers(void **state) {
        struct json_writer w;
        _cleanup_json_ struct json_object *o = NULL;
        static const int64_t ints[] = { 0, 1, -1, 9, 10, -10, INT64_MAX, INT64_MIN, INT64_MIN + 1, 1234567890123 };
        static const uint64_t uints[] = { 0, 1, 10, UINT64_MAX, (uint64_t) INT64_MAX + 1, 18446744073709551614U };

        json_writer_init(&w, 0);
        json_writer_array_begin(&w);
        json_writer_int(&w, INT64_MIN);
        json_writer_uint(&w, UINT64_MAX);
        json_writer_array_end(&w);
        FINISH_EXPECT(&w, "[-9223372036854775808,18446744073709551615]");

        json_writer_array_begin(&w);
        for (size_t i = 0; i < ELEMENTSOF(ints); i++)
                json_writer_int(&w, ints[i]);
        for (size_t i = 0; i < ELEMENTSOF(uints); i++)
                json_writer_uint(&w, uints[i]);
        json_writer_array_end(&w);
        o = finish_parse(&w);
        assert_int_equal(json_object_array_length(o), ELEMENTSOF(ints) + ELEMENTSOF(uints));
        for (size_t i = 0; i < ELEMENTSOF(ints); i++)
                assert_int_equal(json_object_get_int64(json_object_array_get_idx(o, i)), ints[i]);
        for (size_t i = 0; i < ELEMENTSOF(uints); i++)
                assert_int_equal(json_object_get_uint64(json_object_array_get_idx(o, ELEMENTSOF(ints) + i)), uints[i]);
        json_writer_done(&w);
}

static void test_hex(void **state) {
        struct json_writer w;
        _cleanup_json_ struct json_object *o = NULL;
        static const uint64_t values[] = { 0, 1, 0xabc, UINT64_C(0xffffffffff600000), UINT64_MAX };

        json_writer_init(&w, 0);
        json_writer_object_begin(&w);
        json_writer_key(&w, "start");
        json_writer_hex(&w, UINT64_C(0x7f0000001000));
        json_writer_key(&w, "zero");
        json_writer_hex(&w, 0);
        json_writer_object_end(&w);
        FINISH_EXPECT(&w, "{\"start\":\"0x7f0000001000\",\"zero\":\"0x0\"}");

        json_writer_array_begin(&w);
        for (size_t i = 0; i < ELEMENTSOF(values); i++)
                json_writer_hex(&w, values[i]);
        json_writer_array_end(&w);
        o = finish_parse(&w);
        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                uint64_t v;

                assert_int_equal(parse_u64(json_object_get_string(json_object_array_get_idx(o, i)), &v), 0);
                assert_int_equal(v, values[i]);
        }
        json_writer_done(&w);
}

/* The pre-serializing helpers: the same digits as the writer, every length of hex. */
static void test_format_helpers(void **state) {
        char buf[24], ref[24];
        size_t n;

        for (unsigned bits = 0; bits <= 64; bits++) {
                uint64_t v = bits == 0 ? 0 : bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
                uint64_t vals[2] = { v, v + (bits < 64) };

                for (unsigned k = 0; k < 2; k++) {
                        memset(buf, 'X', sizeof(buf));
                        n = json_format_hex(vals[k], buf);
                        snprintf(ref, sizeof(ref), "0x%" PRIx64, vals[k]);
                        assert_int_equal(n, strlen(ref));
                        assert_memory_equal(buf, ref, n);
                        assert_int_equal(buf[n], 'X'); /* nothing beyond */

                        memset(buf, 'X', sizeof(buf));
                        n = json_format_uint(vals[k], buf);
                        snprintf(ref, sizeof(ref), "%" PRIu64, vals[k]);
                        assert_int_equal(n, strlen(ref));
                        assert_memory_equal(buf, ref, n);
                        assert_int_equal(buf[n], 'X');
                }
        }

        /* Every decimal length (10^k - 1, 10^k) and mixed digits, two at a time or not. */
        uint64_t x = 1, seed = 42;
        for (unsigned k = 0; k < 20 + 4000; k++) {
                uint64_t vals[2] = { x - 1, x };

                if (k < 20)
                        x *= 10;
                else {
                        seed = seed * UINT64_C(6364136223846793005) + 1442695040888963407u;
                        vals[0] = seed >> (k % 64);
                        vals[1] = seed;
                }
                for (unsigned j = 0; j < 2; j++) {
                        n = json_format_uint(vals[j], buf);
                        snprintf(ref, sizeof(ref), "%" PRIu64, vals[j]);
                        assert_int_equal(n, strlen(ref));
                        assert_memory_equal(buf, ref, n);
                        n = json_format_hex(vals[j], buf);
                        snprintf(ref, sizeof(ref), "0x%" PRIx64, vals[j]);
                        assert_int_equal(n, strlen(ref));
                        assert_memory_equal(buf, ref, n);
                }
        }

        assert_int_equal(json_plain_length("", 0), 0);
        assert_int_equal(json_plain_length("/usr/lib/libc.so.6 (deleted)", 28), 28);
        assert_int_equal(json_plain_length("a\"b", 3), 1);
        assert_int_equal(json_plain_length("ab\\c", 4), 2);
        assert_int_equal(json_plain_length("abc\n", 4), 3);
        assert_int_equal(json_plain_length("\x7f\x80", 2), 1);
        assert_int_equal(json_plain_length("ab\0cd", 5), 2);
        /* What it calls plain, the writer writes between quotes as is. */
        struct json_writer w;
        json_writer_init(&w, 0);
        json_writer_string_len(&w, "tab\there", json_plain_length("tab\there", 8));
        FINISH_EXPECT(&w, "\"tab\"");
        json_writer_done(&w);
}

static void test_escaping(void **state) {
        struct json_writer w;
        _cleanup_free_ char *out = NULL;
        char input[0x20 + 4];
        size_t n = 0, len;

        json_writer_init(&w, 0);

        /* every control character, and the two that always need a backslash */
        for (unsigned c = 1; c < 0x20; c++)
                input[n++] = (char) c;
        input[n++] = '"';
        input[n++] = '\\';
        input[n++] = 0x7f;
        input[n] = '\0';

        assert_true(json_writer_string(&w, input));
        assert_int_equal(json_writer_finish(&w, &out, &len), 0);
        assert_string_equal(out,
                            "\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r"
                            "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017"
                            "\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\\\"\\\\\x7f\"");

        /* and json-c reads back exactly the input */
        json_writer_array_begin(&w);
        json_writer_string(&w, input);
        assert_true(json_writer_string_len(&w, "a\0b", 3)); /* embedded NUL */
        json_writer_string(&w, "plain / text");
        json_writer_string(&w, "");
        json_writer_array_end(&w);
        {
                _cleanup_json_ struct json_object *o = finish_parse(&w);
                struct json_object *s = json_object_array_get_idx(o, 0);

                assert_int_equal(json_object_get_string_len(s), n);
                assert_memory_equal(json_object_get_string(s), input, n);
                s = json_object_array_get_idx(o, 1);
                assert_int_equal(json_object_get_string_len(s), 3);
                assert_memory_equal(json_object_get_string(s), "a\0b", 3);
                assert_string_equal(json_object_get_string(json_object_array_get_idx(o, 2)), "plain / text");
                assert_string_equal(json_object_get_string(json_object_array_get_idx(o, 3)), "");
        }

        /* keys are escaped too */
        json_writer_object_begin(&w);
        json_writer_key(&w, "k\"\n");
        json_writer_null(&w);
        json_writer_object_end(&w);
        FINISH_EXPECT(&w, "{\"k\\\"\\n\":null}");

        /* NULL string is null */
        json_writer_array_begin(&w);
        assert_true(json_writer_string(&w, NULL));
        json_writer_array_end(&w);
        FINISH_EXPECT(&w, "[null]");

        json_writer_done(&w);
}

struct utf8_case {
        const char *in;
        const char *out;
        bool valid;
};

#define FFFD "\xef\xbf\xbd"

static void test_utf8(void **state) {
        static const struct utf8_case cases[] = {
                /* valid: kept as is */
                { "caf\xc3\xa9", "caf\xc3\xa9", true },                         /* U+00E9 */
                { "\xc2\x80", "\xc2\x80", true },                               /* U+0080 */
                { "\xdf\xbf", "\xdf\xbf", true },                               /* U+07FF */
                { "\xe0\xa0\x80", "\xe0\xa0\x80", true },                       /* U+0800 */
                { "\xe2\x82\xac", "\xe2\x82\xac", true },                       /* U+20AC */
                { "\xed\x9f\xbf", "\xed\x9f\xbf", true },                       /* U+D7FF */
                { "\xee\x80\x80", "\xee\x80\x80", true },                       /* U+E000 */
                { "\xef\xbf\xbf", "\xef\xbf\xbf", true },                       /* U+FFFF */
                { "\xf0\x90\x80\x80", "\xf0\x90\x80\x80", true },               /* U+10000 */
                { "\xf0\x9d\x84\x9e", "\xf0\x9d\x84\x9e", true },               /* U+1D11E */
                { "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf", true },               /* U+10FFFF */
                { "a\xe2\x80\xa8z", "a\xe2\x80\xa8z", true },                   /* U+2028 */
                /* invalid: one U+FFFD per offending byte */
                { "\x80", FFFD, false },                                        /* stray continuation */
                { "\xbf", FFFD, false },
                { "\xc0\x80", FFFD FFFD, false },                               /* overlong NUL */
                { "\xc1\xbf", FFFD FFFD, false },                               /* overlong */
                { "\xe0\x80\x80", FFFD FFFD FFFD, false },                      /* overlong */
                { "\xe0\x9f\xbf", FFFD FFFD FFFD, false },                      /* overlong U+07FF */
                { "\xf0\x80\x80\x80", FFFD FFFD FFFD FFFD, false },             /* overlong */
                { "\xf0\x8f\xbf\xbf", FFFD FFFD FFFD FFFD, false },             /* overlong U+FFFF */
                { "\xed\xa0\x80", FFFD FFFD FFFD, false },                      /* U+D800 */
                { "\xed\xbf\xbf", FFFD FFFD FFFD, false },                      /* U+DFFF */
                { "\xed\xa0\xbd\xed\xb8\x80", FFFD FFFD FFFD FFFD FFFD FFFD, false }, /* CESU pair */
                { "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD, false },             /* U+110000 */
                { "\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD, false },
                { "\xf8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD, false },
                { "\xfe", FFFD, false },
                { "\xff", FFFD, false },
                { "\xe2\x82", FFFD FFFD, false },                               /* truncated at end */
                { "a\xe2\x82z", "a" FFFD FFFD "z", false },                     /* truncated mid-string */
                { "\xf0\x9d\x84", FFFD FFFD FFFD, false },
                { "\xc3", FFFD, false },
                { "\xc3\"", FFFD "\\\"", false },                               /* quote is not a continuation */
                { "ok\xff\xc3\xa9\n", "ok" FFFD "\xc3\xa9\\n", false },
        };
        struct json_writer w;

        json_writer_init(&w, 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *out = NULL, *expected = NULL;
                size_t len;

                if (json_writer_string(&w, cases[i].in) != cases[i].valid)
                        fail_msg("case %zu: wrong validity", i);
                assert_int_equal(json_writer_finish(&w, &out, &len), 0);
                assert_int_equal(asprintf(&expected, "\"%s\"", cases[i].out), (int) strlen(cases[i].out) + 2);
                if (strcmp(out, expected) != 0)
                        fail_msg("case %zu: got %s", i, out);

                /* whatever came in, json-c's UTF-8 validation accepts what comes out */
                json_writer_array_begin(&w);
                json_writer_string(&w, cases[i].in);
                json_writer_array_end(&w);
                json_object_put(finish_parse(&w));
        }

        /* explicit length cuts a sequence short */
        assert_false(json_writer_string_len(&w, "\xe2\x82\xac", 2));
        FINISH_EXPECT(&w, "\"" FFFD FFFD "\"");
        assert_false(json_writer_string_len(&w, "\xc3\xa9", 1));
        FINISH_EXPECT(&w, "\"" FFFD "\"");
        assert_false(json_writer_string_len(&w, "\xf0\x9d\x84\x9e", 3));
        FINISH_EXPECT(&w, "\"" FFFD FFFD FFFD "\"");
        assert_true(json_writer_string_len(&w, "\xf0\x9d\x84\x9e", 4));
        FINISH_EXPECT(&w, "\"\xf0\x9d\x84\x9e\"");
        json_writer_done(&w);
}

static void test_max_size(void **state) {
        struct json_writer w;
        char *out;
        size_t len;

        /* exactly fits */
        json_writer_init(&w, 7);
        json_writer_object_begin(&w);
        json_writer_key(&w, "a");
        json_writer_int(&w, 1);
        json_writer_object_end(&w);
        FINISH_EXPECT(&w, "{\"a\":1}");
        json_writer_done(&w);

        /* one byte short: the last brace does not fit */
        json_writer_init(&w, 6);
        json_writer_object_begin(&w);
        json_writer_key(&w, "a");
        json_writer_int(&w, 1);
        assert_int_equal(w.error, 0);
        json_writer_object_end(&w);
        assert_int_equal(w.error, -E2BIG);
        finish_expect_error(&w, -E2BIG);
        /* and the writer is reusable */
        json_writer_array_begin(&w);
        json_writer_array_end(&w);
        FINISH_EXPECT(&w, "[]");
        json_writer_done(&w);

        /* a long string, with escapes and replacements, hits the limit in the middle */
        json_writer_init(&w, 100);
        for (unsigned i = 0; i < 3; i++) {
                char big[200];

                memset(big, i == 0 ? 'x' : i == 1 ? '\n' : '\xff', sizeof(big) - 1);
                big[sizeof(big) - 1] = '\0';
                json_writer_string(&w, big);
                assert_int_equal(w.error, -E2BIG);
                assert_true(w.len <= 100);
                finish_expect_error(&w, -E2BIG);
        }

        /* sticky: nothing after the error changes anything */
        json_writer_array_begin(&w);
        json_writer_string(&w, "0123456789012345678901234567890123456789012345678901234567890123456789"
                               "0123456789012345678901234567890123456789");
        len = w.len;
        json_writer_array_end(&w);
        json_writer_int(&w, 1);
        json_writer_key(&w, "x");
        json_writer_terminate(&w);
        assert_int_equal(w.len, len);
        assert_int_equal(w.error, -E2BIG);
        finish_expect_error(&w, -E2BIG);

        /* the Varlink terminator does not count: a max-size message can be terminated */
        json_writer_done(&w);
        json_writer_init(&w, 2);
        json_writer_object_begin(&w);
        json_writer_object_end(&w);
        json_writer_terminate(&w);
        assert_int_equal(json_writer_finish(&w, &out, &len), 0);
        assert_int_equal(len, 3);
        assert_memory_equal(out, "{}\0", 4);
        free(out);

        /* the buffer does not grow far past max_size */
        json_writer_init(&w, 10);
        json_writer_string(&w, "0123456789abcdefghijklmnopqrstuvwxyz");
        assert_int_equal(w.error, -E2BIG);
        assert_true(w.allocated <= 10 + 2);
        json_writer_done(&w);
}

static void test_depth(void **state) {
        struct json_writer w;
        _cleanup_json_ struct json_object *o = NULL;

        json_writer_init(&w, 0);
        for (unsigned i = 0; i < JSON_WRITER_DEPTH_MAX; i++)
                json_writer_array_begin(&w);
        assert_int_equal(w.error, 0);
        for (unsigned i = 0; i < JSON_WRITER_DEPTH_MAX; i++)
                json_writer_array_end(&w);
        o = finish_parse(&w);
        assert_true(json_object_is_type(o, json_type_array));

        for (unsigned i = 0; i < JSON_WRITER_DEPTH_MAX; i++) {
                json_writer_object_begin(&w);
                json_writer_key(&w, "k");
        }
        json_writer_object_begin(&w); /* one too many */
        assert_int_equal(w.error, -E2BIG);
        finish_expect_error(&w, -E2BIG);

        for (unsigned i = 0; i < JSON_WRITER_DEPTH_MAX + 5; i++)
                json_writer_array_begin(&w);
        for (unsigned i = 0; i < JSON_WRITER_DEPTH_MAX + 5; i++)
                json_writer_array_end(&w);
        finish_expect_error(&w, -E2BIG);
        json_writer_done(&w);
}

typedef void (*misuse_fn)(struct json_writer *w);

static void misuse_key_top(struct json_writer *w) {
        json_writer_key(w, "a");
}
static void misuse_key_in_array(struct json_writer *w) {
        json_writer_array_begin(w);
        json_writer_key(w, "a");
}
static void misuse_two_keys(struct json_writer *w) {
        json_writer_object_begin(w);
        json_writer_key(w, "a");
        json_writer_key(w, "b");
}
static void misuse_null_key(struct json_writer *w) {
        json_writer_object_begin(w);
        json_writer_key(w, NULL);
}
static void misuse_value_without_key(struct json_writer *w) {
        json_writer_object_begin(w);
        json_writer_int(w, 1);
}
static void misuse_string_without_key(struct json_writer *w) {
        json_writer_object_begin(w);
        json_writer_string(w, "x");
}
static void misuse_object_end_in_array(struct json_writer *w) {
        json_writer_array_begin(w);
        json_writer_object_end(w);
}
static void misuse_array_end_in_object(struct json_writer *w) {
        json_writer_object_begin(w);
        json_writer_array_end(w);
}
static void misuse_end_at_top(struct json_writer *w) {
        json_writer_object_end(w);
}
static void misuse_end_after_key(struct json_writer *w) {
        json_writer_object_begin(w);
        json_writer_key(w, "a");
        json_writer_object_end(w);
}
static void misuse_two_top_values(struct json_writer *w) {
        json_writer_int(w, 1);
        json_writer_int(w, 2);
}
static void misuse_unclosed(struct json_writer *w) {
        json_writer_object_begin(w);
        json_writer_key(w, "a");
        json_writer_array_begin(w);
}
static void misuse_dangling_key(struct json_writer *w) {
        json_writer_object_begin(w);
        json_writer_key(w, "a");
}
static void misuse_terminate_incomplete(struct json_writer *w) {
        json_writer_array_begin(w);
        json_writer_terminate(w);
        json_writer_array_end(w);
}
static void misuse_terminate_empty(struct json_writer *w) {
        json_writer_terminate(w);
}
static void misuse_empty_raw(struct json_writer *w) {
        json_writer_raw(w, "", 0);
}

static void test_misuse(void **state) {
        static const misuse_fn fns[] = {
                misuse_key_top,           misuse_key_in_array,         misuse_two_keys,
                misuse_null_key,          misuse_value_without_key,    misuse_string_without_key,
                misuse_object_end_in_array, misuse_array_end_in_object, misuse_end_at_top,
                misuse_end_after_key,     misuse_two_top_values,       misuse_unclosed,
                misuse_dangling_key,      misuse_terminate_incomplete, misuse_terminate_empty,
                misuse_empty_raw,
        };
        struct json_writer w;

        json_writer_init(&w, 0);
        for (size_t i = 0; i < ELEMENTSOF(fns); i++) {
                fns[i](&w);
                if (json_writer_finish(&w, &(char *) { NULL }, NULL) != -EINVAL)
                        fail_msg("misuse %zu not reported", i);
                /* reusable afterwards */
                json_writer_object_begin(&w);
                json_writer_object_end(&w);
                FINISH_EXPECT(&w, "{}");
        }
        json_writer_done(&w);
}

static void test_terminate_and_raw(void **state) {
        struct json_writer w;

        json_writer_init(&w, 0);
        json_writer_object_begin(&w);
        json_writer_key(&w, "a");
        json_writer_raw(&w, "[1,2]", 5);
        json_writer_key(&w, "b");
        json_writer_int(&w, 3);
        json_writer_object_end(&w);
        json_writer_terminate(&w);
        /* a second message may follow in the same buffer */
        json_writer_array_begin(&w);
        json_writer_array_end(&w);
        json_writer_terminate(&w);
        FINISH_EXPECT(&w, "{\"a\":[1,2],\"b\":3}\0[]\0");
        json_writer_done(&w);
}

/* Values formatted in place: the same bytes and commas as json_writer_raw(), and its errors. */
static void test_raw_reserve(void **state) {
        struct json_writer w;
        char *p;

        json_writer_init(&w, 0);
        json_writer_array_begin(&w);
        for (int i = 0; i < 3; i++) {
                p = json_writer_raw_reserve(&w, 100);
                assert_non_null(p);
                memcpy(p, "{\"x\":1}", 7);
                json_writer_raw_commit(&w, 7);
        }
        json_writer_int(&w, 4);
        json_writer_array_end(&w);
        FINISH_EXPECT(&w, "[{\"x\":1},{\"x\":1},{\"x\":1},4]");

        /* Nothing written, or more than reserved: misuse. */
        json_writer_array_begin(&w);
        assert_non_null(json_writer_raw_reserve(&w, 10));
        json_writer_raw_commit(&w, 0);
        finish_expect_error(&w, -EINVAL);
        json_writer_array_begin(&w);
        assert_non_null(p = json_writer_raw_reserve(&w, 4));
        json_writer_raw_commit(&w, 5);
        finish_expect_error(&w, -EINVAL);
        assert_null(json_writer_raw_reserve(&w, 0));
        finish_expect_error(&w, -EINVAL);
        /* A value without its key, then the error state: NULL. */
        json_writer_object_begin(&w);
        assert_null(json_writer_raw_reserve(&w, 10));
        assert_null(json_writer_raw_reserve(&w, 10));
        finish_expect_error(&w, -EINVAL);
        json_writer_done(&w);

        /* max_size counts what is committed, not what is reserved. */
        json_writer_init(&w, 8);
        json_writer_array_begin(&w);
        assert_non_null(p = json_writer_raw_reserve(&w, 1000));
        memcpy(p, "123456", 6);
        json_writer_raw_commit(&w, 6);
        json_writer_array_end(&w);
        FINISH_EXPECT(&w, "[123456]");
        json_writer_array_begin(&w);
        assert_non_null(p = json_writer_raw_reserve(&w, 1000));
        memcpy(p, "12345678", 8);
        json_writer_raw_commit(&w, 8);
        finish_expect_error(&w, -E2BIG);
        json_writer_done(&w);
}

/* A capacity hint: room made at once, nothing written, never an error of its own. */
static void test_reserve(void **state) {
        struct json_writer w;

        json_writer_init(&w, 0);
        assert_true(json_writer_reserve(&w, 100000));
        assert_true(w.allocated >= 100000);
        assert_int_equal(w.len, 0);
        json_writer_array_begin(&w);
        json_writer_int(&w, 1);
        json_writer_array_end(&w);
        assert_true(w.allocated >= 100000);
        FINISH_EXPECT(&w, "[1]");
        /* Impossible sizes: refused, the writer unharmed. */
        json_writer_array_begin(&w);
        assert_false(json_writer_reserve(&w, SIZE_MAX));
        assert_false(json_writer_reserve(&w, SIZE_MAX - 3));
        json_writer_array_end(&w);
        FINISH_EXPECT(&w, "[]");
        json_writer_done(&w);

        /* No more than max_size allows. */
        json_writer_init(&w, 10);
        assert_true(json_writer_reserve(&w, 1000000));
        assert_true(w.allocated <= 12);
        json_writer_string(&w, "12345678");
        FINISH_EXPECT(&w, "\"12345678\"");
        /* In the error state: false. */
        json_writer_string(&w, "123456789");
        assert_false(json_writer_reserve(&w, 10));
        finish_expect_error(&w, -E2BIG);
        json_writer_done(&w);
}

static void test_reuse_and_reset(void **state) {
        struct json_writer w;
        char *first = NULL, *second = NULL;
        size_t len;

        json_writer_init(&w, 0);
        json_writer_string(&w, "one");
        assert_int_equal(json_writer_finish(&w, &first, &len), 0);
        assert_null(w.buf);
        assert_int_equal(w.len, 0);
        json_writer_string(&w, "two");
        assert_int_equal(json_writer_finish(&w, &second, &len), 0);
        assert_string_equal(first, "\"one\"");
        assert_string_equal(second, "\"two\"");
        assert_ptr_not_equal(first, second);
        free(first);
        free(second);

        /* reset drops the output and the error, keeps the buffer */
        json_writer_array_begin(&w);
        json_writer_key(&w, "bad");
        assert_int_equal(w.error, -EINVAL);
        json_writer_reset(&w);
        assert_int_equal(w.error, 0);
        assert_non_null(w.buf);
        json_writer_bool(&w, true);
        FINISH_EXPECT(&w, "true");

        /* done on used, unused and NULL writers */
        json_writer_int(&w, 5);
        json_writer_done(&w);
        json_writer_done(&w);
        json_writer_done(NULL);
        json_writer_int(&w, 6);
        FINISH_EXPECT(&w, "6");
        json_writer_done(&w);
}

static void test_large(void **state) {
        struct json_writer w;
        _cleanup_json_ struct json_object *o = NULL;
        _cleanup_free_ char *big = NULL;
        const size_t big_len = 1 << 20;

        /* a big string mixing plain runs, escapes and multibyte characters */
        big = malloc(big_len + 1);
        assert_non_null(big);
        for (size_t i = 0; i < big_len;) {
                if (i % 97 == 0 && i + 2 <= big_len) {
                        memcpy(big + i, "\xc3\xa9", 2);
                        i += 2;
                } else {
                        big[i] = i % 89 == 0 ? '\t' : (char) ('a' + i % 26);
                        i++;
                }
        }
        big[big_len] = '\0';

        json_writer_init(&w, 0);
        json_writer_object_begin(&w);
        json_writer_key(&w, "big");
        assert_true(json_writer_string(&w, big));
        json_writer_key(&w, "list");
        json_writer_array_begin(&w);
        for (unsigned i = 0; i < 100000; i++)
                json_writer_uint(&w, i);
        json_writer_array_end(&w);
        json_writer_object_end(&w);
        assert_true(w.allocated < 2 * w.len + 512);

        o = finish_parse(&w);
        assert_string_equal(json_object_get_string(json_object_object_get(o, "big")), big);
        assert_int_equal(json_object_array_length(json_object_object_get(o, "list")), 100000);
        assert_int_equal(json_object_get_int(json_object_array_get_idx(json_object_object_get(o, "list"), 99999)), 99999);
        json_writer_done(&w);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_structure),
                cmocka_unit_test(test_numbers),
                cmocka_unit_test(test_hex),
                cmocka_unit_test(test_format_helpers),
                cmocka_unit_test(test_escaping),
                cmocka_unit_test(test_utf8),
                cmocka_unit_test(test_max_size),
                cmocka_unit_test(test_depth),
                cmocka_unit_test(test_misuse),
                cmocka_unit_test(test_terminate_and_raw),
                cmocka_unit_test(test_raw_reserve),
                cmocka_unit_test(test_reserve),
                cmocka_unit_test(test_reuse_and_reset),
                cmocka_unit_test(test_large),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
