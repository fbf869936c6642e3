/* Fuzz target: the daemon's request path. Bytes arrive in chunks as a socket would deliver them,
 * go through the Varlink framing (struct varlink_reader), and every complete message is decoded
 * as a call and read with the parameter getters the methods use.
 *
 * Input: 3 header bytes, then the byte stream.
 *   [0] chunk sizes are 1 .. 2^([0] % 17), drawn from a generator seeded with [1];
 *   [2] below 128: max_message 64 KiB (the daemon's default scale); else ([2] - 128) * 4 bytes,
 *       so that oversized messages are reachable with small inputs. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <json-c/json.h>

#include "fuzz.h"
#include "memmapd-codec.h"
#include "varlink-frame.h"
#include "varlink.h"

#define HEADER_SIZE 3
#define CHUNK_MAX ((size_t) 65536)
/* What the reader promises to add to max_message at most (one read). */
#define READER_SLACK ((size_t) 64 * 1024)
#define CALL_DEPTH 16
#define PID_MAX 4194304

/* The parameter lists of the daemon's methods (daemon/methods.c). */
static const char *const known_none[] = { NULL };
static const char *const known_interface[] = { "interface", NULL };
static const char *const known_list[] = {
        "pid", "start_time", "executable_only", "file_backed_only", "build_ids", NULL
};
static const char *const known_lookup[] = { "pid", "start_time", "addresses", "build_ids", NULL };
static const char *const *const known_lists[] = { known_none, known_interface, known_list, known_lookup };

/* Parameter names the methods read, whether or not the message has them. */
static const char *const daemon_params[] = {
        "pid", "start_time", "executable_only", "file_backed_only", "build_ids", "interface", "addresses",
};

static bool method_name_ok(const char *m) {
        const char *dot = strrchr(m, '.');
        char iface[256];
        size_t n;

        if (!dot)
                return false;
        n = (size_t) (dot - m);
        if (n >= sizeof(iface))
                return false;
        memcpy(iface, m, n);
        iface[n] = 0;
        return varlink_interface_name_valid(iface) && varlink_method_name_valid(dot + 1);
}

/* The value of a JSON integer, from json-c's own text for it (independent of the getters). */
static void int_value(struct json_object *v, bool *ret_negative, uint64_t *ret_magnitude) {
        const char *t = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);

        FUZZ_CHECK(t);
        *ret_negative = t[0] == '-';
        errno = 0;
        *ret_magnitude = strtoull(t + *ret_negative, NULL, 10);
        FUZZ_CHECK(errno == 0);
}

/* A string without embedded NUL, as the getters require, or NULL. */
static const char *clean_string(struct json_object *v) {
        const char *s = json_object_get_string(v);

        if (!s || strlen(s) != (size_t) json_object_get_string_len(v))
                return NULL;
        return s;
}

static int digit_value(char c, unsigned base) {
        int d = -1;

        if (c >= '0' && c <= '9')
                d = c - '0';
        else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
        return d >= 0 && (unsigned) d < base ? d : -1;
}

/* The documented rule for address strings: "0x"/"0X" and hex digits, or decimal digits; at
 * least one digit, nothing else, fits in 64 bits. */
static bool ref_parse_u64(const char *s, uint64_t *ret) {
        unsigned __int128 v = 0;
        unsigned base = 10;
        size_t i = 0;

        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                base = 16;
                i = 2;
        }
        if (!s[i])
                return false;
        for (; s[i]; i++) {
                int d = digit_value(s[i], base);

                if (d < 0)
                        return false;
                v = v * base + (unsigned) d;
                if (v > UINT64_MAX)
                        return false;
        }
        *ret = (uint64_t) v;
        return true;
}

/* What varlink_json_u64() must make of v. */
static bool ref_json_u64(struct json_object *v, uint64_t *ret) {
        bool negative;
        uint64_t mag;

        switch (json_object_get_type(v)) {
        case json_type_int:
                int_value(v, &negative, &mag);
                if (negative && mag != 0)
                        return false;
                *ret = negative ? 0 : mag;
                return true;
        case json_type_string: {
                const char *s = clean_string(v);

                return s && ref_parse_u64(s, ret);
        }
        default:
                return false;
        }
}

static void check_u64_value(struct json_object *v) {
        uint64_t got = 0x5a5a5a5a5a5a5a5aULL, want = 0;
        bool ok = ref_json_u64(v, &want);
        int r = varlink_json_u64(v, &got);

        FUZZ_CHECK(r == 0 || r == -EINVAL);
        FUZZ_CHECK((r == 0) == ok);
        if (ok)
                FUZZ_CHECK(got == want);
        else
                FUZZ_CHECK(got == 0x5a5a5a5a5a5a5a5aULL);
}

static void check_param(struct json_object *params, const char *name) {
        struct json_object *v = NULL;
        bool present = json_object_object_get_ex(params, name, &v) && v;
        enum json_type type = present ? json_object_get_type(v) : json_type_null;
        int r;

        /* bool */
        {
                bool b = true;

                r = varlink_param_bool(params, name, false, true, &b);
                if (!present)
                        FUZZ_CHECK(r == 0 && b);
                else if (type == json_type_boolean)
                        FUZZ_CHECK(r == 0 && b == (bool) json_object_get_boolean(v));
                else
                        FUZZ_CHECK(r == -EINVAL && b);
                b = false;
                r = varlink_param_bool(params, name, true, true, &b);
                FUZZ_CHECK((r == 0) == (present && type == json_type_boolean));
        }

        /* int, in the daemon's pid range and in the full range */
        {
                static const struct {
                        int64_t min, max;
                } ranges[] = { { 1, PID_MAX }, { INT64_MIN, INT64_MAX }, { -5, 5 } };

                for (size_t k = 0; k < sizeof(ranges) / sizeof(ranges[0]); k++) {
                        int64_t i = 42;
                        bool ok = false;
                        int64_t want = 0;

                        if (present && type == json_type_int) {
                                bool negative;
                                uint64_t mag;

                                int_value(v, &negative, &mag);
                                if (negative && mag <= (uint64_t) INT64_MAX + 1) {
                                        want = mag == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) mag;
                                        ok = true;
                                } else if (!negative && mag <= (uint64_t) INT64_MAX) {
                                        want = (int64_t) mag;
                                        ok = true;
                                }
                                ok = ok && want >= ranges[k].min && want <= ranges[k].max;
                        }

                        r = varlink_param_int(params, name, true, ranges[k].min, ranges[k].max, 7, &i);
                        FUZZ_CHECK(r == 0 || r == -EINVAL);
                        FUZZ_CHECK((r == 0) == ok);
                        FUZZ_CHECK(i == (ok ? want : 42));

                        i = 42;
                        r = varlink_param_int(params, name, false, ranges[k].min, ranges[k].max, 7, &i);
                        if (!present)
                                FUZZ_CHECK(r == 0 && i == 7);
                        else
                                FUZZ_CHECK((r == 0) == ok);
                }
        }

        /* u64 */
        {
                uint64_t u = 1;

                r = varlink_param_u64(params, name, false, 5, &u);
                if (!present)
                        FUZZ_CHECK(r == 0 && u == 5);
                else {
                        uint64_t want = 0;
                        bool ok = ref_json_u64(v, &want);

                        FUZZ_CHECK((r == 0) == ok);
                        FUZZ_CHECK(u == (ok ? want : 1));
                        check_u64_value(v);
                }
                r = varlink_param_u64(params, name, true, 5, &u);
                if (!present)
                        FUZZ_CHECK(r == -EINVAL);
        }

        /* string */
        {
                const char *s = "unset";

                r = varlink_param_string(params, name, false, &s);
                if (!present)
                        FUZZ_CHECK(r == 0 && !s);
                else if (type == json_type_string && clean_string(v))
                        FUZZ_CHECK(r == 0 && s == json_object_get_string(v));
                else
                        FUZZ_CHECK(r == -EINVAL && strcmp(s, "unset") == 0);
        }

        /* Lookup's "addresses": every element as the method reads it. */
        if (present && type == json_type_array) {
                size_t n = json_object_array_length(v);

                for (size_t i = 0; i < n; i++)
                        check_u64_value(json_object_array_get_idx(v, i));
        }
}

static bool in_list(const char *key, const char *const *list) {
        for (size_t i = 0; list[i]; i++)
                if (strcmp(key, list[i]) == 0)
                        return true;
        return false;
}

static void check_params(struct json_object *params) {
        FUZZ_CHECK(json_object_is_type(params, json_type_object));

        for (size_t k = 0; k < sizeof(known_lists) / sizeof(known_lists[0]); k++) {
                const char *bad = varlink_params_unknown(params, known_lists[k]);
                bool all_known = true;

                json_object_object_foreach(params, key, val) {
                        (void) val;
                        if (!in_list(key, known_lists[k]))
                                all_known = false;
                }
                FUZZ_CHECK(!bad == all_known);
                if (bad)
                        FUZZ_CHECK(json_object_object_get_ex(params, bad, NULL) && !in_list(bad, known_lists[k]));
        }
        FUZZ_CHECK(!varlink_params_unknown(NULL, known_list));

        json_object_object_foreach(params, key, val) {
                (void) val;
                check_param(params, key);
        }
        for (size_t k = 0; k < sizeof(daemon_params) / sizeof(daemon_params[0]); k++)
                check_param(params, daemon_params[k]);
}

static bool has_double(struct json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_double:
                return true;
        case json_type_object: {
                json_object_object_foreach(o, key, val) {
                        (void) key;
                        if (has_double(val))
                                return true;
                }
                return false;
        }
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        if (has_double(json_object_array_get_idx(o, i)))
                                return true;
                return false;
        default:
                return false;
        }
}

/* A decoded call, written out again with json_writer (parameters as json-c prints them), must
 * decode to the same call. Doubles are left out: their text need not round-trip exactly. */
static void check_round_trip(const struct varlink_call *c) {
        struct varlink_call again;
        struct json_writer w;
        const char *params_text, *bad = NULL;
        char *buf = NULL;
        size_t len = 0;
        int r;

        if (has_double(c->parameters))
                return;
        params_text = json_object_to_json_string_ext(c->parameters, JSON_C_TO_STRING_PLAIN);
        FUZZ_CHECK(params_text);

        json_writer_init(&w, 0);
        json_writer_object_begin(&w);
        json_writer_key(&w, "method");
        json_writer_string(&w, c->method);
        json_writer_key(&w, "more");
        json_writer_bool(&w, c->more);
        json_writer_key(&w, "oneway");
        json_writer_bool(&w, c->oneway);
        json_writer_key(&w, "upgrade");
        json_writer_bool(&w, c->upgrade);
        json_writer_key(&w, "parameters");
        json_writer_raw(&w, params_text, strlen(params_text));
        json_writer_object_end(&w);
        json_writer_terminate(&w);
        r = json_writer_finish(&w, &buf, &len);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(len >= 1 && buf[len - 1] == 0);

        /* Through json-c: a Lookup written out again may be decoded directly, and
         * check_direct_lookup() compares that path with this one. */
        r = varlink_call_parse(buf, len - 1, CALL_DEPTH, &again, &bad);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(strcmp(again.method, c->method) == 0);
        FUZZ_CHECK(again.more == c->more && again.oneway == c->oneway && again.upgrade == c->upgrade);
        FUZZ_CHECK(json_object_equal(again.parameters, c->parameters));
        varlink_call_done(&again);
        free(buf);
        json_writer_done(&w);
}

/* memmapd_call_parse() reads a Lookup's addresses itself; varlink_call_parse() only
 * through json-c. Both must give the same call: the same parameters (printed, so that the
 * order counts too) once the tree's "addresses" is checked against the array and taken out. */
static void check_direct_lookup(const char *msg, size_t len, const struct varlink_call *direct, int r_direct,
                                const char *bad_direct) {
        const struct memmapd_addresses *a;
        struct varlink_call tree;
        struct json_object *arr = NULL;
        const char *bad = NULL;
        int r;

        memset(&tree, 0xa5, sizeof(tree));
        r = varlink_call_parse(msg, len, CALL_DEPTH, &tree, &bad);
        FUZZ_CHECK(r == r_direct);
        FUZZ_CHECK((r == -EINVAL) == !!bad && (!bad || strcmp(bad, bad_direct) == 0));
        if (r < 0)
                return;

        a = memmapd_call_addresses(direct);
        FUZZ_CHECK(!memmapd_call_addresses(&tree) && strcmp(tree.method, direct->method) == 0);
        FUZZ_CHECK(tree.more == direct->more && tree.oneway == direct->oneway && tree.upgrade == direct->upgrade);
        if (a) {
                FUZZ_CHECK(strcmp(direct->method, "io.memmapd.Lookup") == 0 && a->n > 0);
                FUZZ_CHECK(json_object_object_get_ex(tree.parameters, "addresses", &arr));
                FUZZ_CHECK(json_object_is_type(arr, json_type_array));
                FUZZ_CHECK(json_object_array_length(arr) == a->n);
                for (size_t i = 0; i < a->n; i++) {
                        uint64_t v;

                        FUZZ_CHECK(varlink_json_u64(json_object_array_get_idx(arr, i), &v) == 0);
                        FUZZ_CHECK(v == a->values[i]);
                }
                json_object_object_del(tree.parameters, "addresses");
        }
        FUZZ_CHECK(strcmp(json_object_to_json_string_ext(tree.parameters, JSON_C_TO_STRING_PLAIN),
                          json_object_to_json_string_ext(direct->parameters, JSON_C_TO_STRING_PLAIN)) == 0);
        varlink_call_done(&tree);
}

static void handle_message(const char *msg, size_t len) {
        struct varlink_call call;
        struct varlink_reply reply;
        const char *bad = NULL;
        int r;

        memset(&call, 0xa5, sizeof(call));
        r = memmapd_call_parse(msg, len, CALL_DEPTH, &call, &bad);
        FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EINVAL || r == -ENOMEM);
        if (r == -EINVAL)
                FUZZ_CHECK(bad && (strcmp(bad, "parameters") == 0 || strcmp(bad, "more") == 0 ||
                                   strcmp(bad, "oneway") == 0 || strcmp(bad, "upgrade") == 0));
        if (r != -ENOMEM)
                check_direct_lookup(msg, len, &call, r, bad);
        if (r == 0) {
                FUZZ_CHECK(call.method && method_name_ok(call.method));
                check_params(call.parameters);
                check_round_trip(&call);
                varlink_call_done(&call);
        }

        /* The same bytes as a reply, as libmemctl decodes them. */
        r = varlink_reply_parse(msg, len, CALL_DEPTH, &reply);
        FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EINVAL || r == -ENOMEM);
        if (r == 0) {
                FUZZ_CHECK(!reply.error || method_name_ok(reply.error));
                FUZZ_CHECK(json_object_is_type(reply.parameters, json_type_object));
                varlink_reply_done(&reply);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct varlink_reader r;
        const uint8_t *s;
        size_t n, chunk_max, max_message, fed = 0, expect = 0;
        uint32_t state;
        bool broken = false;
        int k;

        if (size < HEADER_SIZE)
                return 0;
        chunk_max = (size_t) 1 << (data[0] % 17);
        state = 0x12345678u ^ ((uint32_t) data[1] * 0x01000193u);
        max_message = data[2] < 128 ? (size_t) 64 * 1024 : (size_t) (data[2] - 128) * 4;
        s = data + HEADER_SIZE;
        n = size - HEADER_SIZE;

        varlink_reader_init(&r, max_message);
        while (fed < n && !broken) {
                size_t chunk = 1 + fuzz_rand(&state) % chunk_max;

                if (chunk > n - fed)
                        chunk = n - fed;
                k = varlink_reader_feed(&r, s + fed, chunk);
                fed += chunk;
                if (k == -EMSGSIZE) {
                        broken = true;
                        break;
                }
                FUZZ_CHECK(k == 0);

                /* Drain, as the daemon does after every read; compare with a plain split. */
                for (;;) {
                        const char *msg = NULL;
                        size_t len = SIZE_MAX;
                        const uint8_t *nul;

                        k = varlink_reader_next(&r, &msg, &len);
                        if (k == 0)
                                break;
                        if (k == -EMSGSIZE) {
                                broken = true;
                                break;
                        }
                        FUZZ_CHECK(k == 1);
                        nul = memchr(s + expect, 0, fed - expect);
                        FUZZ_CHECK(nul);
                        FUZZ_CHECK(len == (size_t) (nul - (s + expect)));
                        FUZZ_CHECK(len <= max_message);
                        FUZZ_CHECK(memcmp(msg, s + expect, len) == 0 && msg[len] == 0);
                        expect += len + 1;
                        handle_message(msg, len);
                }
                if (broken)
                        break;

                /* Drained: what is left is one incomplete message that is not too large yet. */
                FUZZ_CHECK(!memchr(s + expect, 0, fed - expect));
                FUZZ_CHECK(fed - expect <= max_message);
                FUZZ_CHECK(varlink_reader_has_partial(&r) == (fed > expect));
                FUZZ_CHECK(r.allocated <= max_message + 1 + READER_SLACK);
        }

        if (broken) {
                const uint8_t *nul = memchr(s + expect, 0, fed - expect);
                size_t pending = nul ? (size_t) (nul - (s + expect)) : fed - expect;
                const char *msg;

                /* Only the first message not handed out may be the culprit, and it must be. */
                FUZZ_CHECK(pending > max_message);
                FUZZ_CHECK(varlink_reader_next(&r, &msg, NULL) == -EMSGSIZE);
                FUZZ_CHECK(varlink_reader_feed(&r, "{}", 3) == -EMSGSIZE);
        }

        varlink_reader_done(&r);
        return 0;
}
