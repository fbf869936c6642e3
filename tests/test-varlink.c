/* Tests for proto/varlink.c: decoding calls and replies from hostile input, writing them,
 * and typed parameter access. */

#include <errno.h>
#include <inttypes.h>
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
#include "json-writer.h"
#include "varlink.h"

static int parse_call(const char *msg, struct varlink_call *c, const char **bad) {
        return varlink_call_parse(msg, strlen(msg), 0, c, bad);
}

static void expect_call_error(const char *msg, int expected, const char *expected_field) {
        struct varlink_call c = { .method = (char *) 0x1 };
        const char *bad = NULL;
        int r = parse_call(msg, &c, &bad);

        if (r != expected)
                fail_msg("varlink_call_parse(%s) = %d, expected %d", msg, r, expected);
        assert_ptr_equal(c.method, (char *) 0x1); /* untouched */
        assert_null(c.parameters);
        if (expected_field) {
                assert_non_null(bad);
                assert_string_equal(bad, expected_field);
        } else
                assert_null(bad);
}

static void test_call_valid(void **state) {
        struct varlink_call c;
        const char *bad = NULL;

        assert_int_equal(parse_call("{\"method\":\"io.memmapd.GetMaps\",\"parameters\":{\"pid\":1}}", &c, &bad), 0);
        assert_string_equal(c.method, "io.memmapd.GetMaps");
        assert_true(json_object_is_type(c.parameters, json_type_object));
        assert_int_equal(json_object_get_int(json_object_object_get(c.parameters, "pid")), 1);
        assert_false(c.more);
        assert_false(c.oneway);
        assert_false(c.upgrade);
        varlink_call_done(&c);
        assert_null(c.method);
        assert_null(c.parameters);
        varlink_call_done(&c);
        varlink_call_done(NULL);

        /* no parameters, null parameters: an empty object */
        assert_int_equal(parse_call("{\"method\":\"org.varlink.service.GetInfo\"}", &c, &bad), 0);
        assert_string_equal(c.method, "org.varlink.service.GetInfo");
        assert_true(json_object_is_type(c.parameters, json_type_object));
        assert_int_equal(json_object_object_length(c.parameters), 0);
        varlink_call_done(&c);

        assert_int_equal(parse_call("{\"parameters\":null,\"method\":\"io.memmapd.List\"}", &c, &bad), 0);
        assert_true(json_object_is_type(c.parameters, json_type_object));
        assert_int_equal(json_object_object_length(c.parameters), 0);
        varlink_call_done(&c);

        /* the flags */
        assert_int_equal(parse_call("{\"method\":\"io.memmapd.List\",\"more\":true,\"parameters\":{}}", &c, &bad), 0);
        assert_true(c.more);
        assert_false(c.oneway);
        varlink_call_done(&c);
        assert_int_equal(parse_call("{\"method\":\"io.memmapd.List\",\"oneway\":true,\"more\":false}", &c, &bad), 0);
        assert_false(c.more);
        assert_true(c.oneway);
        varlink_call_done(&c);
        assert_int_equal(parse_call("{\"method\":\"io.memmapd.List\",\"upgrade\":true,\"more\":null,\"oneway\":null}", &c, &bad), 0);
        assert_true(c.upgrade);
        assert_false(c.more);
        assert_false(c.oneway);
        varlink_call_done(&c);

        /* unknown fields ignored, whitespace allowed around and inside */
        assert_int_equal(parse_call(" \n{ \"method\" : \"io.memmapd.List\" , \"future\" : [1, {\"x\":null}] }\t\r\n ", &c, &bad), 0);
        assert_string_equal(c.method, "io.memmapd.List");
        varlink_call_done(&c);

        /* the parameters outlive nothing else: they are referenced, not borrowed */
        assert_int_equal(parse_call("{\"method\":\"a.b.C\",\"parameters\":{\"s\":\"text\"}}", &c, &bad), 0);
        assert_string_equal(json_object_get_string(json_object_object_get(c.parameters, "s")), "text");
        varlink_call_done(&c);
        assert_null(bad);
}

static void test_call_invalid_json(void **state) {
        static const char *const bad[] = {
                "",
                " ",
                "{",
                "{\"method\":\"a.b.C\"",
                "{\"method\":}",
                "{\"method\" \"a.b.C\"}",
                "nope",
                "{'method':'a.b.C'}",
                "{\"method\":\"a.b.C\",}",
                "{\"method\":\"a.b.C\",\"parameters\":{\"a\":[1,]}}",
                "/* c */ {\"method\":\"a.b.C\"}",
                "{\"method\":\"a.b.C\"} // c",
                "{\"method\":\"a.b.C\",\"parameters\":{\"a\":01}}",
                "{\"method\":\"a.b.C\",\"parameters\":{\"a\":True}}",
                "{\"method\":\"a.b.C\",\"parameters\":{\"a\":\"\xff\"}}", /* not UTF-8 */
                "{method:\"a.b.C\"}",
                /* trailing garbage */
                "{\"method\":\"a.b.C\"}x",
                "{\"method\":\"a.b.C\"}{}",
                "{\"method\":\"a.b.C\"} {\"method\":\"a.b.C\"}",
                "{\"method\":\"a.b.C\"} 1",
                "{\"method\":\"a.b.C\"}]",
                /* not an object */
                "[]",
                "[{\"method\":\"a.b.C\"}]",
                "\"a.b.C\"",
                "123",
                "-1",
                "1.5",
                "true",
                "null",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                expect_call_error(bad[i], -EBADMSG, NULL);
}

static void test_call_bad_method(void **state) {
        static const char *const bad[] = {
                "{}",
                "{\"parameters\":{}}",
                "{\"method\":null}",
                "{\"method\":1}",
                "{\"method\":true}",
                "{\"method\":[\"a.b.C\"]}",
                "{\"method\":{\"a\":\"b\"}}",
                "{\"method\":\"\"}",
                "{\"method\":\"GetMaps\"}",
                "{\"method\":\"io.GetMaps\"}",          /* one interface segment */
                "{\"method\":\"io.memmapd.\"}",
                "{\"method\":\".memmapd.GetMaps\"}",
                "{\"method\":\"io..memmapd.GetMaps\"}",
                "{\"method\":\"io.memmapd.getMaps\"}",
                "{\"method\":\"io.memmapd.Get_Maps\"}",
                "{\"method\":\"io.memmapd.Get-Maps\"}",
                "{\"method\":\"io.memmapd.Get Maps\"}",
                "{\"method\":\"io.memmapd-.GetMaps\"}",
                "{\"method\":\"io.-memmapd.GetMaps\"}",
                "{\"method\":\"1io.memmapd.GetMaps\"}",
                "{\"method\":\"io.memmapd.GetMaps.\"}",
                "{\"method\":\"io.memmapd.GetMaps\\u0000\"}",
                "{\"method\":\"io.memmapd.Get\\u0000Maps\"}",
                "{\"method\":\"io.memmapd\\u0000.GetMaps\"}",
                "{\"method\":\"io.memmapd.G\xc3\xa9tMaps\"}",
                "{\"method\":\"io.memmapd.GetMaps\\n\"}",
                "{\"method\":\"io.mem mapd.GetMaps\"}",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                expect_call_error(bad[i], -EBADMSG, NULL);

        /* a last-one-wins duplicate is still checked */
        expect_call_error("{\"method\":\"a.b.C\",\"method\":\"nope\"}", -EBADMSG, NULL);
}

static void test_call_wrong_types(void **state) {
        static const char *const values[] = { "1", "0", "\"x\"", "[]", "[true]", "{}", "1.5", "\"true\"" };
        static const char *const fields[] = { "more", "oneway", "upgrade" };

        for (size_t v = 0; v < ELEMENTSOF(values); v++) {
                _cleanup_free_ char *msg = NULL;

                /* parameters: only an object (or null) */
                if (strcmp(values[v], "{}") != 0) {
                        assert_true(asprintf(&msg, "{\"method\":\"a.b.C\",\"parameters\":%s}", values[v]) > 0);
                        expect_call_error(msg, -EINVAL, "parameters");
                        free(TAKE_PTR(msg));
                }
                for (size_t f = 0; f < ELEMENTSOF(fields); f++) {
                        assert_true(asprintf(&msg, "{\"method\":\"a.b.C\",\"%s\":%s}", fields[f], values[v]) > 0);
                        expect_call_error(msg, -EINVAL, fields[f]);
                        free(TAKE_PTR(msg));
                }
        }
        expect_call_error("{\"method\":\"a.b.C\",\"parameters\":true}", -EINVAL, "parameters");

        /* ret_bad_field may be NULL */
        {
                struct varlink_call c = {};
                const char *msg = "{\"method\":\"a.b.C\",\"more\":1}";

                assert_int_equal(varlink_call_parse(msg, strlen(msg), 0, &c, NULL), -EINVAL);
        }
}

static void test_call_embedded_nul(void **state) {
        static const char msg[] = "{\"method\":\"a.b.C\"}\0junk";
        static const char msg2[] = "{\"method\":\"a.b.C\"\0}";
        static const char msg3[] = "{\"method\":\"a.b.C\",\"parameters\":{\"s\":\"a\0b\"}}";
        struct varlink_call c = {};
        const char *bad = NULL;

        /* len claims the bytes after the NUL belong to the message */
        assert_int_equal(varlink_call_parse(msg, sizeof(msg) - 1, 0, &c, &bad), -EBADMSG);
        assert_int_equal(varlink_call_parse(msg2, sizeof(msg2) - 1, 0, &c, &bad), -EBADMSG);
        /* a raw NUL inside a string */
        assert_int_equal(varlink_call_parse(msg3, sizeof(msg3) - 1, 0, &c, &bad), -EBADMSG);
        /* and without the junk it is fine */
        assert_int_equal(varlink_call_parse(msg, strlen(msg), 0, &c, &bad), 0);
        varlink_call_done(&c);
        assert_int_equal(varlink_call_parse(NULL, 0, 0, &c, &bad), -EBADMSG);
}

static char *nested(unsigned levels) {
        /* {"method":"a.b.C","parameters":{"a":[[[...[1]...]]]}} */
        char *s = malloc(64 + 2 * levels);
        size_t n;

        assert_non_null(s);
        n = (size_t) sprintf(s, "{\"method\":\"a.b.C\",\"parameters\":{\"a\":");
        for (unsigned i = 0; i < levels; i++)
                s[n++] = '[';
        s[n++] = '1';
        for (unsigned i = 0; i < levels; i++)
                s[n++] = ']';
        strcpy(s + n, "}}");
        return s;
}

static void test_call_depth(void **state) {
        struct varlink_call c;
        const char *bad = NULL;

        /* levels as json-c counts them: message 1, parameters 2, their members 3 */
        {
                _cleanup_free_ char *s = nested(0);

                assert_int_equal(varlink_call_parse(s, strlen(s), 3, &c, &bad), 0);
                varlink_call_done(&c);
                assert_int_equal(varlink_call_parse(s, strlen(s), 2, &c, &bad), -EBADMSG);
        }
        {
                _cleanup_free_ char *s = nested(1);

                assert_int_equal(varlink_call_parse(s, strlen(s), 3, &c, &bad), -EBADMSG);
                assert_int_equal(varlink_call_parse(s, strlen(s), 4, &c, &bad), 0);
                varlink_call_done(&c);
        }
        {
                /* the default depth */
                _cleanup_free_ char *ok = nested(VARLINK_JSON_DEPTH_DEFAULT - 3);
                _cleanup_free_ char *deep = nested(VARLINK_JSON_DEPTH_DEFAULT - 2);

                assert_int_equal(varlink_call_parse(ok, strlen(ok), 0, &c, &bad), 0);
                varlink_call_done(&c);
                assert_int_equal(varlink_call_parse(ok, strlen(ok), VARLINK_JSON_DEPTH_DEFAULT, &c, &bad), 0);
                varlink_call_done(&c);
                assert_int_equal(varlink_call_parse(deep, strlen(deep), 0, &c, &bad), -EBADMSG);
                assert_int_equal(varlink_call_parse(deep, strlen(deep), VARLINK_JSON_DEPTH_DEFAULT, &c, &bad), -EBADMSG);
        }
        {
                /* absurd depths are bounded, and still parse what they should */
                _cleanup_free_ char *s = nested(5000);

                assert_int_equal(varlink_call_parse(s, strlen(s), UINT32_MAX, &c, &bad), -EBADMSG);
                free(s);
                s = nested(500);
                assert_int_equal(varlink_call_parse(s, strlen(s), UINT32_MAX, &c, &bad), 0);
                varlink_call_done(&c);
        }
        assert_null(bad);
}

static void test_huge_numbers(void **state) {
        static const char *const unrepresentable[] = {
                "18446744073709551616",
                "18446744073709551617",
                "99999999999999999999",
                "99999999999999999999999",
                "100000000000000000000000000000",
                "-9223372036854775809",
                "-18446744073709551616",
                "-99999999999999999999999",
        };
        static const char *const accepted[] = {
                "18446744073709551615", "-9223372036854775808", "1e400", "-1e400", "1.8446744073709551616e19",
                "\"18446744073709551616\"", "\"0x10000000000000000000000\"", "123456789012345678901234567890.5",
        };
        struct varlink_call c;
        struct varlink_reply reply;
        const char *bad = NULL;

        /* json-c would clamp these silently (18446744073709551616 would read as UINT64_MAX): in a
         * call they are doubles, which no integer parameter takes, so the daemon can answer
         * InvalidParameter naming the parameter; anywhere else in the message they are harmless.
         * A reply holding one is refused whole. */
        for (size_t i = 0; i < ELEMENTSOF(unrepresentable); i++) {
                _cleanup_free_ char *msg = NULL;
                struct json_object *v, *arr;
                uint64_t u = 7;
                int64_t n = 7;

                assert_true(asprintf(&msg,
                                     "{\"method\":\"a.b.C\",\"parameters\":{\"n\":%s,\"s\":\"%s\",\"a\":[\"0x1\",%s],"
                                     "\"ok\":18446744073709551615}}",
                                     unrepresentable[i], unrepresentable[i], unrepresentable[i]) > 0);
                if (parse_call(msg, &c, &bad) != 0)
                        fail_msg("%s refused", msg);
                assert_int_equal(varlink_param_u64(c.parameters, "n", true, 0, &u), -EINVAL);
                assert_int_equal(varlink_param_int(c.parameters, "n", true, INT64_MIN, INT64_MAX, 0, &n), -EINVAL);
                assert_int_equal(u, 7);
                assert_int_equal(n, 7);
                assert_true(json_object_object_get_ex(c.parameters, "n", &v));
                assert_true(json_object_is_type(v, json_type_double));
                /* The same digits in a string stay a string (and too big for parse_u64()). */
                assert_int_equal(varlink_param_u64(c.parameters, "s", true, 0, &u), -EINVAL);
                assert_true(json_object_object_get_ex(c.parameters, "a", &arr));
                assert_int_equal(json_object_array_length(arr), 2);
                assert_int_equal(varlink_json_u64(json_object_array_get_idx(arr, 0), &u), 0);
                assert_int_equal(u, 1);
                assert_int_equal(varlink_json_u64(json_object_array_get_idx(arr, 1), &u), -EINVAL);
                /* Its neighbours keep their values. */
                assert_int_equal(varlink_param_u64(c.parameters, "ok", true, 0, &u), 0);
                assert_true(u == UINT64_MAX);
                varlink_call_done(&c);

                assert_int_equal(varlink_reply_parse(msg, strlen(msg), 0, &reply), -EBADMSG);

                free(TAKE_PTR(msg));
                assert_true(asprintf(&msg, "{\"method\":\"a.b.C\",\"x\":[0,\"]\\\"\",%s]}", unrepresentable[i]) > 0);
                if (parse_call(msg, &c, &bad) != 0)
                        fail_msg("%s refused", msg);
                varlink_call_done(&c);

                /* A flag holding one is a wrong type. */
                free(TAKE_PTR(msg));
                assert_true(asprintf(&msg, "{\"method\":\"a.b.C\",\"more\":%s}", unrepresentable[i]) > 0);
                expect_call_error(msg, -EINVAL, "more");

        }
        for (size_t i = 0; i < ELEMENTSOF(accepted); i++) {
                _cleanup_free_ char *msg = NULL;

                assert_true(asprintf(&msg, "{\"method\":\"a.b.C\",\"parameters\":{\"n\":%s}}", accepted[i]) > 0);
                if (parse_call(msg, &c, &bad) != 0)
                        fail_msg("%s refused", msg);
                varlink_call_done(&c);
                assert_int_equal(varlink_reply_parse(msg, strlen(msg), 0, &reply), 0);
                varlink_reply_done(&reply);
        }
        /* Strings json-c takes and the strict pull reader would not (a control character, a
         * lone surrogate, overlong UTF-8) are stepped over whole by the scan for such literals:
         * the digits inside stay a string, the literal after them is found. */
        {
                static const char msg[] = "{\"method\":\"a.b.C\",\"parameters\":{\"s\":\"\x01 \\ud800 \xc0\x80 \\\" "
                                          "18446744073709551616\",\"n\":18446744073709551616}}";
                struct json_object *v;
                uint64_t u = 7;

                if (parse_call(msg, &c, &bad) != 0)
                        fail_msg("%s refused", msg);
                assert_true(json_object_object_get_ex(c.parameters, "s", &v));
                assert_true(json_object_is_type(v, json_type_string));
                /* Its end, unchanged (not "...616e0"). */
                assert_true(json_object_get_string_len(v) > 22);
                assert_string_equal(json_object_get_string(v) + json_object_get_string_len(v) - 22,
                                    "\" 18446744073709551616");
                assert_int_equal(varlink_param_u64(c.parameters, "n", true, 0, &u), -EINVAL);
                assert_true(json_object_object_get_ex(c.parameters, "n", &v));
                assert_true(json_object_is_type(v, json_type_double));
                varlink_call_done(&c);
        }
        /* Still strict around them: a leading zero, trailing garbage. */
        expect_call_error("{\"method\":\"a.b.C\",\"parameters\":{\"n\":099999999999999999999}}", -EBADMSG, NULL);
        expect_call_error("{\"method\":\"a.b.C\",\"parameters\":{\"n\":99999999999999999999}}x", -EBADMSG, NULL);
}

static void test_name_validity(void **state) {
        static const char *const good_interfaces[] = {
                "org.varlink.service", "io.memmapd", "a.b", "com.example.foo-bar", "org.example.Foo",
                "x1.2y", "a.b.c.d.e.f", "a--b.c",
        };
        static const char *const bad_interfaces[] = {
                "", "io", "io.", ".io", "io..memmapd", "1io.memmapd", "-io.memmapd", "io-.memmapd",
                "io.memmapd-", "io.-memmapd", "io.mem_mapd", "io.mem mapd", "io.memmapd.", "io/memmapd",
                "io.m\xc3\xa9mmapd",
        };
        static const char *const good_methods[] = { "GetMaps", "X", "A1", "GetInfo2Go", "ABC" };
        static const char *const bad_methods[] = { "", "getMaps", "1Get", "Get_Maps", "Get-Maps", "Get.Maps", "Get Maps", "_Get" };
        char long_name[300];

        for (size_t i = 0; i < ELEMENTSOF(good_interfaces); i++)
                if (!varlink_interface_name_valid(good_interfaces[i]))
                        fail_msg("%s refused", good_interfaces[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad_interfaces); i++)
                if (varlink_interface_name_valid(bad_interfaces[i]))
                        fail_msg("%s accepted", bad_interfaces[i]);
        for (size_t i = 0; i < ELEMENTSOF(good_methods); i++)
                if (!varlink_method_name_valid(good_methods[i]))
                        fail_msg("%s refused", good_methods[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad_methods); i++)
                if (varlink_method_name_valid(bad_methods[i]))
                        fail_msg("%s accepted", bad_methods[i]);
        assert_false(varlink_interface_name_valid(NULL));
        assert_false(varlink_method_name_valid(NULL));

        /* length bound: 255 */
        memset(long_name, 'A', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = '\0';
        long_name[255] = '\0';
        assert_true(varlink_method_name_valid(long_name));
        long_name[255] = 'A';
        assert_false(varlink_method_name_valid(long_name));
        memset(long_name, 'a', sizeof(long_name) - 1);
        long_name[1] = '.';
        long_name[255] = '\0';
        assert_true(varlink_interface_name_valid(long_name));
        long_name[255] = 'a';
        assert_false(varlink_interface_name_valid(long_name));
}

static void test_reply_parse(void **state) {
        static const char *const bad_msg[] = {
                "", "[]", "\"x\"", "{\"parameters\":{}}x", "{\"error\":\"nope\"}", "{\"error\":\"\"}",
                "{\"error\":\"a.b.c\"}", "{\"error\":\"org.varlink.service.Bad\\u0000\"}",
        };
        static const char *const bad_type[] = {
                "{\"error\":1}", "{\"error\":true}", "{\"error\":[]}", "{\"error\":{}}",
                "{\"parameters\":[]}", "{\"parameters\":\"x\"}", "{\"parameters\":1}",
                "{\"continues\":1}", "{\"continues\":\"true\"}", "{\"continues\":{}}",
        };
        struct varlink_reply r;
        const char *msg;

        msg = "{\"parameters\":{\"x\":1}}";
        assert_int_equal(varlink_reply_parse(msg, strlen(msg), 0, &r), 0);
        assert_null(r.error);
        assert_false(r.continues);
        assert_int_equal(json_object_get_int(json_object_object_get(r.parameters, "x")), 1);
        varlink_reply_done(&r);
        varlink_reply_done(&r);
        varlink_reply_done(NULL);

        msg = "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"pid\"}}";
        assert_int_equal(varlink_reply_parse(msg, strlen(msg), 0, &r), 0);
        assert_string_equal(r.error, VARLINK_ERROR_INVALID_PARAMETER);
        assert_string_equal(json_object_get_string(json_object_object_get(r.parameters, "parameter")), "pid");
        varlink_reply_done(&r);

        msg = "{\"continues\":true,\"parameters\":{}}";
        assert_int_equal(varlink_reply_parse(msg, strlen(msg), 0, &r), 0);
        assert_true(r.continues);
        varlink_reply_done(&r);

        msg = "{\"error\":null,\"parameters\":null,\"continues\":null,\"other\":5}";
        assert_int_equal(varlink_reply_parse(msg, strlen(msg), 0, &r), 0);
        assert_null(r.error);
        assert_false(r.continues);
        assert_true(json_object_is_type(r.parameters, json_type_object));
        varlink_reply_done(&r);

        msg = "{}";
        assert_int_equal(varlink_reply_parse(msg, strlen(msg), 0, &r), 0);
        assert_int_equal(json_object_object_length(r.parameters), 0);
        varlink_reply_done(&r);

        for (size_t i = 0; i < ELEMENTSOF(bad_msg); i++) {
                r = (struct varlink_reply) { .error = (char *) 0x1 };
                if (varlink_reply_parse(bad_msg[i], strlen(bad_msg[i]), 0, &r) != -EBADMSG)
                        fail_msg("%s not -EBADMSG", bad_msg[i]);
                assert_ptr_equal(r.error, (char *) 0x1);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad_type); i++) {
                r = (struct varlink_reply) { .error = (char *) 0x1 };
                if (varlink_reply_parse(bad_type[i], strlen(bad_type[i]), 0, &r) != -EINVAL)
                        fail_msg("%s not -EINVAL", bad_type[i]);
                assert_ptr_equal(r.error, (char *) 0x1);
        }
}

/* Parameters for the getter tests, through the real decoder. */
static const char params_msg[] =
        "{\"method\":\"a.b.C\",\"parameters\":{"
        "\"t\":true,\"f\":false,\"i\":5,\"zero\":0,\"neg\":-5,"
        "\"big\":18446744073709551615,\"i64max\":9223372036854775807,\"over\":9223372036854775808,"
        "\"i64min\":-9223372036854775808,"
        "\"s\":\"str\",\"empty\":\"\",\"hex\":\"0xff\",\"dec\":\"123\",\"hexmax\":\"0xffffffffffffffff\","
        "\"d\":1.0,\"e\":1e400,\"ne\":-1e400,\"frac\":5.5,\"n\":null,\"arr\":[1],\"obj\":{\"a\":1},"
        "\"nul\":\"a\\u0000b\",\"hexbig\":\"0x100000000000000000000\",\"decbig\":\"18446744073709551616\","
        "\"sneg\":\"-1\",\"sspace\":\" 1\",\"s0x\":\"0x\",\"sfloat\":\"1.5\""
        "}}";

static struct json_object *get_params(void) {
        struct varlink_call c;
        const char *bad = NULL;
        struct json_object *p;

        assert_int_equal(varlink_call_parse(params_msg, sizeof(params_msg) - 1, 0, &c, &bad), 0);
        p = json_object_get(c.parameters);
        varlink_call_done(&c);
        return p;
}

static void test_param_bool(void **state) {
        _cleanup_json_ struct json_object *p = get_params();
        static const char *const wrong[] = { "i", "zero", "s", "empty", "d", "arr", "obj", "hex" };
        bool b;

        assert_int_equal(varlink_param_bool(p, "t", true, false, &b), 0);
        assert_true(b);
        assert_int_equal(varlink_param_bool(p, "f", true, true, &b), 0);
        assert_false(b);

        /* absent or null */
        b = false;
        assert_int_equal(varlink_param_bool(p, "missing", false, true, &b), 0);
        assert_true(b);
        assert_int_equal(varlink_param_bool(p, "n", false, false, &b), 0);
        assert_false(b);
        b = true;
        assert_int_equal(varlink_param_bool(p, "missing", true, false, &b), -EINVAL);
        assert_int_equal(varlink_param_bool(p, "n", true, false, &b), -EINVAL);
        assert_true(b);

        for (size_t i = 0; i < ELEMENTSOF(wrong); i++) {
                b = true;
                if (varlink_param_bool(p, wrong[i], false, false, &b) != -EINVAL)
                        fail_msg("bool %s accepted", wrong[i]);
                assert_true(b);
        }
        assert_int_equal(varlink_param_bool(NULL, "t", false, false, &b), -EINVAL);
        assert_int_equal(varlink_param_bool(json_object_object_get(p, "arr"), "t", false, false, &b), -EINVAL);
}

static void test_param_u64(void **state) {
        _cleanup_json_ struct json_object *p = get_params();
        static const struct {
                const char *name;
                uint64_t value;
        } good[] = {
                { "i", 5 }, { "zero", 0 }, { "big", UINT64_MAX }, { "i64max", INT64_MAX },
                { "over", UINT64_C(9223372036854775808) }, { "hex", 0xff }, { "dec", 123 },
                { "hexmax", UINT64_MAX },
        };
        static const char *const wrong[] = {
                "neg", "i64min", "t", "f", "s", "empty", "d", "e", "ne", "frac", "arr", "obj", "nul",
                "hexbig", "decbig", "sneg", "sspace", "s0x", "sfloat",
        };
        uint64_t v;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                v = 42;
                if (varlink_param_u64(p, good[i].name, true, 7, &v) != 0 || v != good[i].value)
                        fail_msg("u64 %s", good[i].name);
        }
        for (size_t i = 0; i < ELEMENTSOF(wrong); i++) {
                v = 42;
                if (varlink_param_u64(p, wrong[i], false, 7, &v) != -EINVAL)
                        fail_msg("u64 %s accepted", wrong[i]);
                assert_int_equal(v, 42);
        }

        assert_int_equal(varlink_param_u64(p, "missing", false, 7, &v), 0);
        assert_int_equal(v, 7);
        assert_int_equal(varlink_param_u64(p, "n", false, 8, &v), 0);
        assert_int_equal(v, 8);
        v = 42;
        assert_int_equal(varlink_param_u64(p, "missing", true, 7, &v), -EINVAL);
        assert_int_equal(varlink_param_u64(p, "n", true, 7, &v), -EINVAL);
        assert_int_equal(v, 42);
        assert_int_equal(varlink_param_u64(NULL, "i", false, 7, &v), -EINVAL);
        assert_int_equal(v, 42);
}

static void test_param_int(void **state) {
        _cleanup_json_ struct json_object *p = get_params();
        static const char *const wrong_type[] = {
                "t", "s", "hex", "dec", "d", "e", "ne", "frac", "arr", "obj", "nul", "empty",
        };
        int64_t v;

        assert_int_equal(varlink_param_int(p, "i", true, 0, 10, 0, &v), 0);
        assert_int_equal(v, 5);
        assert_int_equal(varlink_param_int(p, "i", true, 5, 5, 0, &v), 0);
        assert_int_equal(v, 5);
        assert_int_equal(varlink_param_int(p, "neg", true, -10, 0, 0, &v), 0);
        assert_int_equal(v, -5);
        assert_int_equal(varlink_param_int(p, "i64max", true, INT64_MIN, INT64_MAX, 0, &v), 0);
        assert_int_equal(v, INT64_MAX);
        assert_int_equal(varlink_param_int(p, "i64min", true, INT64_MIN, INT64_MAX, 0, &v), 0);
        assert_int_equal(v, INT64_MIN);

        /* out of range, including values json-c clamps to INT64_MAX */
        v = 42;
        assert_int_equal(varlink_param_int(p, "i", true, 6, 10, 0, &v), -EINVAL);
        assert_int_equal(varlink_param_int(p, "i", true, 0, 4, 0, &v), -EINVAL);
        assert_int_equal(varlink_param_int(p, "neg", true, 0, 10, 0, &v), -EINVAL);
        assert_int_equal(varlink_param_int(p, "neg", true, -4, 10, 0, &v), -EINVAL);
        assert_int_equal(varlink_param_int(p, "over", true, INT64_MIN, INT64_MAX, 0, &v), -EINVAL);
        assert_int_equal(varlink_param_int(p, "big", true, INT64_MIN, INT64_MAX, 0, &v), -EINVAL);
        assert_int_equal(varlink_param_int(p, "i64min", true, INT64_MIN + 1, INT64_MAX, 0, &v), -EINVAL);
        assert_int_equal(varlink_param_int(p, "i64max", true, INT64_MIN, INT64_MAX - 1, 0, &v), -EINVAL);
        assert_int_equal(varlink_param_int(p, "i", true, 10, 0, 0, &v), -EINVAL); /* empty range */
        assert_int_equal(v, 42);

        for (size_t i = 0; i < ELEMENTSOF(wrong_type); i++) {
                v = 42;
                if (varlink_param_int(p, wrong_type[i], false, INT64_MIN, INT64_MAX, 0, &v) != -EINVAL)
                        fail_msg("int %s accepted", wrong_type[i]);
                assert_int_equal(v, 42);
        }

        assert_int_equal(varlink_param_int(p, "missing", false, 0, 10, -3, &v), 0);
        assert_int_equal(v, -3);
        assert_int_equal(varlink_param_int(p, "n", false, 0, 10, 4, &v), 0);
        assert_int_equal(v, 4);
        v = 42;
        assert_int_equal(varlink_param_int(p, "missing", true, 0, 10, 0, &v), -EINVAL);
        assert_int_equal(varlink_param_int(p, "n", true, 0, 10, 0, &v), -EINVAL);
        assert_int_equal(v, 42);
}

static void test_param_string(void **state) {
        _cleanup_json_ struct json_object *p = get_params();
        static const char *const wrong[] = { "t", "i", "zero", "big", "d", "e", "arr", "obj", "nul" };
        const char *s;

        assert_int_equal(varlink_param_string(p, "s", true, &s), 0);
        assert_string_equal(s, "str");
        assert_int_equal(varlink_param_string(p, "empty", true, &s), 0);
        assert_string_equal(s, "");
        assert_int_equal(varlink_param_string(p, "hex", true, &s), 0);
        assert_string_equal(s, "0xff");

        s = "x";
        assert_int_equal(varlink_param_string(p, "missing", false, &s), 0);
        assert_null(s);
        s = "x";
        assert_int_equal(varlink_param_string(p, "n", false, &s), 0);
        assert_null(s);

        for (size_t i = 0; i < ELEMENTSOF(wrong); i++) {
                s = "x";
                if (varlink_param_string(p, wrong[i], false, &s) != -EINVAL)
                        fail_msg("string %s accepted", wrong[i]);
                assert_string_equal(s, "x");
        }
        s = "x";
        assert_int_equal(varlink_param_string(p, "missing", true, &s), -EINVAL);
        assert_int_equal(varlink_param_string(p, "n", true, &s), -EINVAL);
        assert_int_equal(varlink_param_string(NULL, "s", false, &s), -EINVAL);
        assert_string_equal(s, "x");
}

static void test_params_unknown(void **state) {
        static const char *const known[] = { "pid", "flags", NULL };
        struct varlink_call c;
        const char *bad = NULL, *msg;

        msg = "{\"method\":\"a.b.C\",\"parameters\":{\"pid\":1,\"flags\":2}}";
        assert_int_equal(parse_call(msg, &c, &bad), 0);
        assert_null(varlink_params_unknown(c.parameters, known));
        assert_string_equal(varlink_params_unknown(c.parameters, (const char *const[]) { "pid", NULL }), "flags");
        assert_non_null(varlink_params_unknown(c.parameters, NULL));
        varlink_call_done(&c);

        msg = "{\"method\":\"a.b.C\",\"parameters\":{\"pid\":1,\"pidx\":2}}";
        assert_int_equal(parse_call(msg, &c, &bad), 0);
        assert_string_equal(varlink_params_unknown(c.parameters, known), "pidx");
        varlink_call_done(&c);

        msg = "{\"method\":\"a.b.C\"}";
        assert_int_equal(parse_call(msg, &c, &bad), 0);
        assert_null(varlink_params_unknown(c.parameters, known));
        assert_null(varlink_params_unknown(c.parameters, NULL));
        varlink_call_done(&c);

        assert_null(varlink_params_unknown(NULL, known));
}

static char *finish(struct json_writer *w, size_t *len) {
        char *out = NULL;

        assert_int_equal(json_writer_finish(w, &out, len), 0);
        return out;
}

static void test_round_trip_call(void **state) {
        struct json_writer w;
        struct varlink_call c;
        const char *bad = NULL, *s;
        _cleanup_free_ char *out = NULL;
        size_t len;
        uint64_t u;
        int64_t i;
        bool b;

        json_writer_init(&w, 0);
        varlink_call_begin(&w, "io.memmapd.GetMaps", true, false);
        json_writer_key(&w, "pid");
        json_writer_int(&w, 1234);
        json_writer_key(&w, "start");
        json_writer_hex(&w, UINT64_C(0xffffffffff600000));
        json_writer_key(&w, "size");
        json_writer_uint(&w, UINT64_MAX);
        json_writer_key(&w, "path");
        json_writer_string(&w, "/usr/lib/\"x\"\n\xc3\xa9");
        json_writer_key(&w, "verbose");
        json_writer_bool(&w, true);
        json_writer_key(&w, "nested");
        json_writer_object_begin(&w);
        json_writer_key(&w, "list");
        json_writer_array_begin(&w);
        json_writer_null(&w);
        json_writer_array_end(&w);
        json_writer_object_end(&w);
        varlink_message_end(&w);
        out = finish(&w, &len);

        /* one message, NUL-terminated, the terminator counted in len */
        assert_true(len > 0);
        assert_int_equal(out[len - 1], '\0');
        assert_int_equal(strlen(out), len - 1);

        assert_int_equal(varlink_call_parse(out, len - 1, 0, &c, &bad), 0);
        assert_string_equal(c.method, "io.memmapd.GetMaps");
        assert_true(c.more);
        assert_false(c.oneway);
        assert_int_equal(varlink_param_int(c.parameters, "pid", true, 1, INT32_MAX, 0, &i), 0);
        assert_int_equal(i, 1234);
        assert_int_equal(varlink_param_u64(c.parameters, "start", true, 0, &u), 0);
        assert_int_equal(u, UINT64_C(0xffffffffff600000));
        assert_int_equal(varlink_param_u64(c.parameters, "size", true, 0, &u), 0);
        assert_int_equal(u, UINT64_MAX);
        assert_int_equal(varlink_param_string(c.parameters, "path", true, &s), 0);
        assert_string_equal(s, "/usr/lib/\"x\"\n\xc3\xa9");
        assert_int_equal(varlink_param_bool(c.parameters, "verbose", true, false, &b), 0);
        assert_true(b);
        assert_null(varlink_params_unknown(c.parameters,
                                           (const char *const[]) { "pid", "start", "size", "path", "verbose", "nested", NULL }));
        varlink_call_done(&c);
        free(TAKE_PTR(out));

        /* no parameters, oneway */
        varlink_call_begin(&w, "org.varlink.service.GetInfo", false, true);
        varlink_message_end(&w);
        out = finish(&w, &len);
        assert_string_equal(out, "{\"method\":\"org.varlink.service.GetInfo\",\"oneway\":true,\"parameters\":{}}");
        assert_int_equal(len, strlen(out) + 1);
        assert_int_equal(varlink_call_parse(out, len - 1, 0, &c, &bad), 0);
        assert_false(c.more);
        assert_true(c.oneway);
        assert_int_equal(json_object_object_length(c.parameters), 0);
        varlink_call_done(&c);

        /* a malformed method name is refused by the writer */
        varlink_call_begin(&w, "nope", false, false);
        varlink_message_end(&w);
        assert_int_equal(json_writer_finish(&w, &(char *) { NULL }, NULL), -EINVAL);
        varlink_call_begin(&w, NULL, false, false);
        varlink_message_end(&w);
        assert_int_equal(json_writer_finish(&w, &(char *) { NULL }, NULL), -EINVAL);
        json_writer_done(&w);
}

static void test_round_trip_reply(void **state) {
        struct json_writer w;
        struct varlink_reply r;
        _cleanup_free_ char *out = NULL;
        size_t len;

        json_writer_init(&w, 0);
        varlink_reply_begin(&w, NULL, true);
        json_writer_key(&w, "start");
        json_writer_hex(&w, 0x1000);
        varlink_message_end(&w);
        out = finish(&w, &len);
        assert_string_equal(out, "{\"continues\":true,\"parameters\":{\"start\":\"0x1000\"}}");
        assert_int_equal(varlink_reply_parse(out, len - 1, 0, &r), 0);
        assert_null(r.error);
        assert_true(r.continues);
        assert_string_equal(json_object_get_string(json_object_object_get(r.parameters, "start")), "0x1000");
        varlink_reply_done(&r);
        free(TAKE_PTR(out));

        varlink_reply_begin(&w, VARLINK_ERROR_METHOD_NOT_FOUND, false);
        json_writer_key(&w, "method");
        json_writer_string(&w, "io.memmapd.Nope");
        varlink_message_end(&w);
        out = finish(&w, &len);
        assert_int_equal(varlink_reply_parse(out, len - 1, 0, &r), 0);
        assert_string_equal(r.error, VARLINK_ERROR_METHOD_NOT_FOUND);
        assert_false(r.continues);
        assert_string_equal(json_object_get_string(json_object_object_get(r.parameters, "method")), "io.memmapd.Nope");
        varlink_reply_done(&r);
        free(TAKE_PTR(out));

        varlink_reply_invalid_parameter(&w, "pid");
        out = finish(&w, &len);
        assert_string_equal(out, "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"pid\"}}");
        assert_int_equal(len, strlen(out) + 1);
        assert_int_equal(varlink_reply_parse(out, len - 1, 0, &r), 0);
        assert_string_equal(r.error, VARLINK_ERROR_INVALID_PARAMETER);
        assert_string_equal(json_object_get_string(json_object_object_get(r.parameters, "parameter")), "pid");
        varlink_reply_done(&r);
        free(TAKE_PTR(out));

        varlink_reply_invalid_parameter(&w, NULL);
        out = finish(&w, &len);
        assert_string_equal(out, "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{}}");
        free(TAKE_PTR(out));

        /* a malformed error name */
        varlink_reply_begin(&w, "Bad", false);
        varlink_message_end(&w);
        assert_int_equal(json_writer_finish(&w, &(char *) { NULL }, NULL), -EINVAL);
        json_writer_done(&w);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_call_valid),
                cmocka_unit_test(test_call_invalid_json),
                cmocka_unit_test(test_call_bad_method),
                cmocka_unit_test(test_call_wrong_types),
                cmocka_unit_test(test_call_embedded_nul),
                cmocka_unit_test(test_call_depth),
                cmocka_unit_test(test_huge_numbers),
                cmocka_unit_test(test_name_validity),
                cmocka_unit_test(test_reply_parse),
                cmocka_unit_test(test_param_bool),
                cmocka_unit_test(test_param_u64),
                cmocka_unit_test(test_param_int),
                cmocka_unit_test(test_param_string),
                cmocka_unit_test(test_params_unknown),
                cmocka_unit_test(test_round_trip_call),
                cmocka_unit_test(test_round_trip_reply),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
