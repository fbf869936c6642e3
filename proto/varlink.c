/* Varlink messages: strict decoding of calls and replies, writing them, typed parameters. */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json_object.h>
#include <json-c/json_tokener.h>
#include <json-c/linkhash.h>

#include "cleanup.h"
#include "interface.h"
#include "number.h"
#include "varlink.h"

/* Longest interface or member name accepted (a DNS name is at most 253 characters). */
#define VARLINK_NAME_MAX 255
/* Whatever the caller asks for, json-c's depth stack stays small and so does the recursion
 * json_object_put() does when freeing. */
#define VARLINK_JSON_DEPTH_LIMIT 1024

static bool is_lower(char c) {
        return c >= 'a' && c <= 'z';
}

static bool is_upper(char c) {
        return c >= 'A' && c <= 'Z';
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool is_alnum(char c) {
        return is_lower(c) || is_upper(c) || is_digit(c);
}

/* Interface names, after the Varlink grammar:
 *   [A-Za-z]([-]*[A-Za-z0-9])* ( '.' [A-Za-z0-9]([-]*[A-Za-z0-9])* )+
 * i.e. at least two dot-separated segments of letters, digits and hyphens, the first starting
 * with a letter, the others with a letter or digit, none ending in a hyphen. */
static bool interface_name_valid_n(const char *s, size_t n) {
        size_t i = 0, segments = 0;

        if (n == 0 || n > VARLINK_NAME_MAX)
                return false;

        for (;;) {
                if (i >= n || !(segments == 0 ? is_lower(s[i]) || is_upper(s[i]) : is_alnum(s[i])))
                        return false;
                for (i++; i < n && (is_alnum(s[i]) || s[i] == '-'); i++)
                        ;
                if (s[i - 1] == '-')
                        return false;
                segments++;
                if (i == n)
                        break;
                if (s[i] != '.')
                        return false;
                i++;
        }
        return segments >= 2;
}

/* Method and error names: [A-Z][A-Za-z0-9]* */
static bool member_name_valid_n(const char *s, size_t n) {
        if (n == 0 || n > VARLINK_NAME_MAX || !is_upper(s[0]))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_alnum(s[i]))
                        return false;
        return true;
}

bool varlink_interface_name_valid(const char *s) {
        return s && interface_name_valid_n(s, strnlen(s, VARLINK_NAME_MAX + 1));
}

bool varlink_method_name_valid(const char *s) {
        return s && member_name_valid_n(s, strnlen(s, VARLINK_NAME_MAX + 1));
}

/* "interface.Member", as a method or an error is named. */
static bool qualified_name_valid(const char *s, size_t n) {
        const char *dot;

        if (n > 2 * VARLINK_NAME_MAX + 1)
                return false;
        dot = memrchr(s, '.', n);
        if (!dot)
                return false;
        return interface_name_valid_n(s, (size_t) (dot - s)) &&
               member_name_valid_n(dot + 1, n - (size_t) (dot - s) - 1);
}

/* Does the decimal integer literal digits[0..n) (sign stripped) fall outside what json-c can
 * represent: above UINT64_MAX, or below INT64_MIN when negative? */
static bool int_literal_out_of_range(const char *digits, size_t n, bool negative) {
        const char *limit = negative ? "9223372036854775808" : "18446744073709551615";
        size_t limit_len = strlen(limit);

        while (n > 1 && digits[0] == '0') {
                digits++;
                n--;
        }
        if (n != limit_len)
                return n > limit_len;
        return memcmp(digits, limit, n) > 0;
}

/* json-c silently clamps integer literals beyond the 64-bit ranges to UINT64_MAX/INT64_MIN,
 * so a peer's 18446744073709551616 would read as 18446744073709551615. Finds the next such
 * literal in the raw text at or after pos, outside strings: true and *ret_end just past its
 * digits, or false. This only has to be right for text json-c accepted. */
static bool json_next_unrepresentable_int(const char *s, size_t len, size_t pos, size_t *ret_end) {
        size_t i = pos;

        while (i < len) {
                char c = s[i];

                if (c == '"') {
                        for (i++; i < len && s[i] != '"'; i++)
                                if (s[i] == '\\')
                                        i++;
                        i++;
                        continue;
                }

                if (c == '-' || is_digit(c)) {
                        bool negative = c == '-';
                        size_t start = i + negative, j = start;

                        while (j < len && is_digit(s[j]))
                                j++;
                        bool fraction = j < len && (s[j] == '.' || s[j] == 'e' || s[j] == 'E');
                        if (!fraction && int_literal_out_of_range(s + start, j - start, negative)) {
                                *ret_end = j;
                                return true;
                        }
                        while (j < len && (is_digit(s[j]) || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
                                           s[j] == '+' || s[j] == '-'))
                                j++;
                        i = MAX(j, i + 1);
                        continue;
                }

                i++;
        }
        return false;
}

/* A copy of msg[0..len) (json-c accepted it) in which every integer literal json-c would clamp
 * carries an exponent ("e0"): json-c then reads it as the double it is, which no integer
 * parameter accepts, so the call is answered InvalidParameter naming it. In *ret (NUL-
 * terminated, its length in *ret_len); -EBADMSG when the copy would exceed INT_MAX. */
static int json_big_ints_as_doubles(const char *msg, size_t len, char **ret, size_t *ret_len) {
        static const char exponent[] = "e0";
        size_t n = 0, pos = 0, end, at = 0;
        char *t;

        while (json_next_unrepresentable_int(msg, len, pos, &end)) {
                n++;
                pos = end;
        }
        /* n < len: no overflow. */
        if (len + n * strlen(exponent) > INT_MAX)
                return -EBADMSG;
        t = malloc(len + n * strlen(exponent) + 1);
        if (!t)
                return -ENOMEM;
        for (pos = 0; json_next_unrepresentable_int(msg, len, pos, &end); pos = end) {
                memcpy(t + at, msg + pos, end - pos);
                at += end - pos;
                memcpy(t + at, exponent, strlen(exponent));
                at += strlen(exponent);
        }
        memcpy(t + at, msg + pos, len - pos);
        at += len - pos;
        t[at] = 0;

        *ret = t;
        *ret_len = at;
        return 0;
}

/* Parses msg[0..len) with json-c, strictly, into a JSON object: 0, -EBADMSG or -ENOMEM. */
static int tokenize(const char *msg, size_t len, unsigned max_depth, struct json_object **ret) {
        _cleanup_json_ struct json_object *o = NULL;
        struct json_tokener *tok;
        enum json_tokener_error err;
        size_t end;

        tok = json_tokener_new_ex((int) max_depth);
        if (!tok)
                return -ENOMEM;
        /* Strict: no comments, single quotes, trailing commas, leading zeros, trailing data;
         * and the input must be UTF-8. */
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, msg, (int) len);
        err = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);

        /* json_tokener_continue: incomplete, or a bare number that might go on; all invalid. */
        if (!o || err != json_tokener_success || end != len || !json_object_is_type(o, json_type_object))
                return -EBADMSG;
        *ret = TAKE_PTR(o);
        return 0;
}

/* Parses msg[0..len) as exactly one JSON object, strictly. An integer literal json-c would
 * clamp is -EBADMSG, or with big_ints_as_doubles a double (see json_big_ints_as_doubles()). */
static int parse_object(const char *msg, size_t len, unsigned max_depth, bool big_ints_as_doubles,
                        struct json_object **ret) {
        _cleanup_json_ struct json_object *o = NULL;
        size_t end;
        int r;

        if (!msg)
                return -EBADMSG;
        /* A NUL inside the message: json-c would stop there and leave the rest unread. */
        if (strnlen(msg, len) != len)
                return -EBADMSG;
        if (len > INT_MAX)
                return -EBADMSG;

        if (max_depth == 0)
                max_depth = VARLINK_JSON_DEPTH_DEFAULT;
        max_depth = MIN(max_depth, (unsigned) VARLINK_JSON_DEPTH_LIMIT);

        r = tokenize(msg, len, max_depth, &o);
        if (r < 0)
                return r;
        if (json_next_unrepresentable_int(msg, len, 0, &end)) {
                _cleanup_free_ char *text = NULL;
                size_t n;

                if (!big_ints_as_doubles)
                        return -EBADMSG;
                r = json_big_ints_as_doubles(msg, len, &text, &n);
                if (r < 0)
                        return r;
                json_object_put(TAKE_PTR(o));
                /* The same nesting, every literal still valid JSON: json-c accepts it too. */
                r = tokenize(text, n, max_depth, &o);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(o);
        return 0;
}

/* 1 and *ret when key is present and not null, 0 when absent or null. */
static int field_get(struct json_object *o, const char *key, struct json_object **ret) {
        struct json_object *v = NULL;

        if (!json_object_object_get_ex(o, key, &v) || !v)
                return 0;
        *ret = v;
        return 1;
}

/* A C string without embedded NUL, or NULL. */
static const char *string_value(struct json_object *v) {
        const char *s = json_object_get_string(v);
        int n = json_object_get_string_len(v);

        if (!s || n < 0 || strlen(s) != (size_t) n)
                return NULL;
        return s;
}

/* "parameters": absent or null gives a new {}, an object gives a reference, else -EINVAL. */
static int parameters_get(struct json_object *root, struct json_object **ret) {
        struct json_object *v;

        if (field_get(root, "parameters", &v) == 0) {
                v = json_object_new_object();
                if (!v)
                        return -ENOMEM;
                *ret = v;
                return 0;
        }
        if (!json_object_is_type(v, json_type_object))
                return -EINVAL;
        *ret = json_object_get(v);
        return 0;
}

/* An optional boolean field: absent or null is false. */
static int flag_get(struct json_object *root, const char *key, bool *ret) {
        struct json_object *v;

        if (field_get(root, key, &v) == 0) {
                *ret = false;
                return 0;
        }
        if (!json_object_is_type(v, json_type_boolean))
                return -EINVAL;
        *ret = json_object_get_boolean(v);
        return 0;
}

int varlink_call_parse_tree(const char *msg, size_t len, unsigned max_depth,
                            struct varlink_call *ret, const char **ret_bad_field) {
        _cleanup_json_ struct json_object *root = NULL, *params = NULL;
        _cleanup_free_ char *method_copy = NULL;
        static const char *const flags[] = { "more", "oneway", "upgrade" };
        bool flag_values[ELEMENTSOF(flags)];
        struct json_object *m;
        const char *method;
        int r;

        r = parse_object(msg, len, max_depth, true, &root);
        if (r < 0)
                return r;

        if (field_get(root, "method", &m) == 0 || !json_object_is_type(m, json_type_string))
                return -EBADMSG;
        method = string_value(m);
        if (!method || !qualified_name_valid(method, strlen(method)))
                return -EBADMSG;

        r = parameters_get(root, &params);
        if (r == -EINVAL) {
                if (ret_bad_field)
                        *ret_bad_field = "parameters";
                return r;
        }
        if (r < 0)
                return r;

        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                r = flag_get(root, flags[i], &flag_values[i]);
                if (r < 0) {
                        if (ret_bad_field)
                                *ret_bad_field = flags[i];
                        return r;
                }
        }

        method_copy = strdup(method);
        if (!method_copy)
                return -ENOMEM;

        *ret = (struct varlink_call) {
                .method = TAKE_PTR(method_copy),
                .parameters = TAKE_PTR(params),
                .more = flag_values[0],
                .oneway = flag_values[1],
                .upgrade = flag_values[2],
        };
        return 0;
}

void varlink_call_done(struct varlink_call *c) {
        if (!c)
                return;
        free(c->method);
        json_object_put(c->parameters);
        free(c->addresses);
        *c = (struct varlink_call) {};
}

int varlink_reply_parse(const char *msg, size_t len, unsigned max_depth, struct varlink_reply *ret) {
        _cleanup_json_ struct json_object *root = NULL, *params = NULL;
        _cleanup_free_ char *error_copy = NULL;
        struct json_object *e;
        bool continues;
        int r;

        r = parse_object(msg, len, max_depth, false, &root);
        if (r < 0)
                return r;

        if (field_get(root, "error", &e) > 0) {
                const char *error;

                if (!json_object_is_type(e, json_type_string))
                        return -EINVAL;
                error = string_value(e);
                if (!error || !qualified_name_valid(error, strlen(error)))
                        return -EBADMSG;
                error_copy = strdup(error);
                if (!error_copy)
                        return -ENOMEM;
        }

        r = parameters_get(root, &params);
        if (r < 0)
                return r;

        r = flag_get(root, "continues", &continues);
        if (r < 0)
                return r;

        *ret = (struct varlink_reply) {
                .error = TAKE_PTR(error_copy),
                .parameters = TAKE_PTR(params),
                .continues = continues,
        };
        return 0;
}

void varlink_reply_done(struct varlink_reply *r) {
        if (!r)
                return;
        free(r->error);
        json_object_put(r->parameters);
        *r = (struct varlink_reply) {};
}

/* ---------------------------------------------------------------- Lookup calls, directly
 *
 * A 4,435-address Lookup spent most of its decoding time building, reading and freeing one
 * json-c node per address. So the addresses array is read here, straight into uint64s, and
 * json-c parses the message with the array replaced by [0]: everything but the addresses
 * keeps the general decoder's rules, errors and depth accounting.
 *
 * Why that is the same as parsing the whole message: the array taken out is checked here to
 * be '[' element (',' element)* ']' with JSON whitespace, each element a string of ASCII
 * letters and digits without escapes or an integer without sign, fraction, exponent or
 * leading zero, and in range. Both it and [0] are then complete values, with scalar elements
 * only (the same depth for json-c, which counts a level per element), ASCII, without NUL and
 * without integers json_next_unrepresentable_int() finds; the text around them is the same
 * bytes. So json-c accepts one message exactly when it accepts the other, with the same tree
 * but for that one value. Where the array sits is found by the loose scanner below; it is
 * right whenever the text before and after the array is valid JSON, which json-c confirms.
 * The scanner declines (and the general decoder takes over) for anything it does not follow:
 * escaped keys at the top two levels, a repeated "method", "parameters" or "addresses", a
 * method other than Lookup, an element it does not read. */

#define LOOKUP_METHOD MEMMAPD_INTERFACE ".Lookup"

/* 1 for the JSON whitespace bytes. */
static const uint8_t json_ws[256] = { [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1 };

struct scanner {
        const char *p, *end;    /* *end is the message's NUL */
};

static void scan_ws(struct scanner *s) {
        while (s->p < s->end && json_ws[(uint8_t) *s->p])
                s->p++;
}

static bool scan_take(struct scanner *s, char c) {
        scan_ws(s);
        if (s->p >= s->end || *s->p != c)
                return false;
        s->p++;
        return true;
}

/* Past a string at s->p ('"'), escapes skipped but not checked. */
static bool scan_skip_string(struct scanner *s) {
        for (const char *p = s->p + 1; p < s->end; p++) {
                if (*p == '\\')
                        p++;
                else if (*p == '"') {
                        s->p = p + 1;
                        return true;
                }
        }
        return false;
}

/* A key without escapes: its bytes in [*ret, *ret + *ret_len), and the reader past the ':'. */
static bool scan_key(struct scanner *s, const char **ret, size_t *ret_len) {
        const char *start;

        scan_ws(s);
        if (s->p >= s->end || *s->p != '"')
                return false;
        start = s->p + 1;
        if (!scan_skip_string(s))
                return false;
        *ret = start;
        *ret_len = (size_t) (s->p - 1 - start);
        if (memchr(start, '\\', *ret_len))
                return false;
        return scan_take(s, ':');
}

/* Past any value, without checking it; containers by counting brackets. */
static bool scan_skip_value(struct scanner *s) {
        size_t depth = 0;

        scan_ws(s);
        do {
                if (s->p >= s->end)
                        return false;
                switch (*s->p) {
                case '"':
                        if (!scan_skip_string(s))
                                return false;
                        break;
                case '{':
                case '[':
                        depth++;
                        s->p++;
                        break;
                case '}':
                case ']':
                        if (depth == 0)
                                return false;
                        depth--;
                        s->p++;
                        break;
                default:
                        if (depth == 0) {
                                /* A number or literal: up to what ends it. */
                                while (s->p < s->end && !json_ws[(uint8_t) *s->p] && *s->p != ',' &&
                                       *s->p != '}' && *s->p != ']')
                                        s->p++;
                                return true;
                        }
                        s->p++;
                }
        } while (depth > 0);
        return true;
}

#define key_is(k, n, name) ((n) == sizeof(name) - 1 && memcmp(k, name, sizeof(name) - 1) == 0)

/* One address: a string parse_u64() takes, or a non-negative integer literal. false for
 * anything else, valid or not: the general decoder decides those. */
static bool scan_address(struct scanner *s, uint64_t *ret) {
        const char *p = s->p;
        uint64_t v = 0;

        if (*p == '"') {
                p++;
                if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
                        p += 2;
                        if (*p == '"')
                                return false;
                        for (; *p != '"'; p++) {
                                unsigned d = hex_value1[(uint8_t) *p];

                                if (d == 0 || v >> 60 != 0)
                                        return false;
                                v = v << 4 | (d - 1);
                        }
                } else {
                        if (*p == '"')
                                return false;
                        for (; *p != '"'; p++) {
                                if (!is_digit(*p) || __builtin_mul_overflow(v, 10, &v) ||
                                    __builtin_add_overflow(v, (uint64_t) (*p - '0'), &v))
                                        return false;
                        }
                }
                p++;
        } else if (is_digit(*p)) {
                if (p[0] == '0' && is_digit(p[1]))
                        return false;
                for (; is_digit(*p); p++)
                        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t) (*p - '0'), &v))
                                return false;
        } else
                return false;

        /* What may follow an element: whitespace, ',' or ']' (a fraction or exponent would
         * make a double; the NUL at the end stops every loop above). */
        if (!json_ws[(uint8_t) *p] && *p != ',' && *p != ']')
                return false;
        s->p = p;
        *ret = v;
        return true;
}

/* The addresses array at s->p ('['): its elements in a malloc()ed *ret (n >= 1). */
static bool scan_addresses(struct scanner *s, uint64_t **ret, size_t *ret_n) {
        _cleanup_free_ uint64_t *a = NULL;
        size_t n = 0, allocated = 0;

        s->p++;
        do {
                scan_ws(s);
                if (n == allocated) {
                        size_t m = allocated ? 2 * allocated : 256;
                        uint64_t *t;

                        /* n is below the message length, so this never overflows. */
                        t = realloc(a, m * sizeof(*a));
                        if (!t)
                                return false;
                        a = t;
                        allocated = m;
                }
                if (s->p >= s->end || !scan_address(s, &a[n]))
                        return false;
                n++;
        } while (scan_take(s, ','));
        if (!scan_take(s, ']'))
                return false;

        *ret = TAKE_PTR(a);
        *ret_n = n;
        return true;
}

/* Finds the Lookup call's addresses array: [*ret_start, *ret_end) of msg, and its values. */
static bool scan_lookup_call(const char *msg, size_t len, size_t *ret_start, size_t *ret_end, uint64_t **ret,
                             size_t *ret_n) {
        _cleanup_free_ uint64_t *a = NULL;
        struct scanner s = { .p = msg, .end = msg + len };
        bool have_method = false, have_params = false;
        size_t n = 0, start = 0, end = 0;
        const char *k;
        size_t kl;

        if (!scan_take(&s, '{'))
                return false;
        do {
                if (!scan_key(&s, &k, &kl))
                        return false;
                if (key_is(k, kl, "method")) {
                        static const char quoted[] = "\"" LOOKUP_METHOD "\"";

                        /* The method, exactly and without escapes: anything else is not ours. */
                        scan_ws(&s);
                        if (have_method || (size_t) (s.end - s.p) < sizeof(quoted) - 1 ||
                            memcmp(s.p, quoted, sizeof(quoted) - 1) != 0)
                                return false;
                        s.p += sizeof(quoted) - 1;
                        have_method = true;
                } else if (key_is(k, kl, "parameters")) {
                        if (have_params || !scan_take(&s, '{'))
                                return false;
                        have_params = true;
                        if (scan_take(&s, '}'))
                                return false;
                        do {
                                if (!scan_key(&s, &k, &kl))
                                        return false;
                                if (key_is(k, kl, "addresses")) {
                                        if (a)
                                                return false;
                                        scan_ws(&s);
                                        if (s.p >= s.end || *s.p != '[')
                                                return false;
                                        start = (size_t) (s.p - msg);
                                        if (!scan_addresses(&s, &a, &n))
                                                return false;
                                        end = (size_t) (s.p - msg);
                                } else if (!scan_skip_value(&s))
                                        return false;
                        } while (scan_take(&s, ','));
                        if (!scan_take(&s, '}'))
                                return false;
                } else if (!scan_skip_value(&s))
                        return false;
        } while (scan_take(&s, ','));
        if (!scan_take(&s, '}'))
                return false;
        scan_ws(&s);
        if (s.p != s.end || !have_method || !a)
                return false;

        *ret_start = start;
        *ret_end = end;
        *ret = TAKE_PTR(a);
        *ret_n = n;
        return true;
}

/* The call with the addresses array of msg[start, end) replaced by [0], through json-c;
 * then [0] taken out of its parameters. false when json-c refuses it or anything is not as
 * the scanner said: the caller then decodes msg as it is. */
static bool lookup_call_rest(const char *msg, size_t len, size_t start, size_t end, unsigned max_depth,
                             struct varlink_call *ret) {
        static const char placeholder[] = "[0]";
        _cleanup_free_ char *text = NULL;
        struct varlink_call c;
        struct json_object *v;
        size_t n;

        n = start + strlen(placeholder) + (len - end);
        text = malloc(n + 1);
        if (!text)
                return false;
        memcpy(text, msg, start);
        memcpy(text + start, placeholder, strlen(placeholder));
        memcpy(text + start + strlen(placeholder), msg + end, len - end);
        text[n] = 0;

        if (varlink_call_parse_tree(text, n, max_depth, &c, NULL) < 0)
                return false;
        if (strcmp(c.method, LOOKUP_METHOD) != 0 || !json_object_object_get_ex(c.parameters, "addresses", &v) ||
            !json_object_is_type(v, json_type_array) || json_object_array_length(v) != 1 ||
            !json_object_is_type(json_object_array_get_idx(v, 0), json_type_int) ||
            json_object_get_int64(json_object_array_get_idx(v, 0)) != 0) {
                varlink_call_done(&c);
                return false;
        }
        json_object_object_del(c.parameters, "addresses");
        *ret = c;
        return true;
}

int varlink_call_parse(const char *msg, size_t len, unsigned max_depth,
                       struct varlink_call *ret, const char **ret_bad_field) {
        _cleanup_free_ uint64_t *addrs = NULL;
        size_t start, end, n;
        struct varlink_call c;

        /* Anything the direct path does not take, or that json-c then refuses, is decoded
         * as it is, so every error is the general decoder's. */
        if (msg && len <= INT_MAX && scan_lookup_call(msg, len, &start, &end, &addrs, &n) &&
            lookup_call_rest(msg, len, start, end, max_depth, &c)) {
                c.addresses = TAKE_PTR(addrs);
                c.n_addresses = n;
                *ret = c;
                return 0;
        }
        return varlink_call_parse_tree(msg, len, max_depth, ret, ret_bad_field);
}

/* ---------------------------------------------------------------- writing */

static void writer_misuse(struct json_writer *w) {
        if (w->error == 0)
                w->error = -EINVAL;
}

void varlink_call_begin(struct json_writer *w, const char *method, bool more, bool oneway) {
        if (!method || !qualified_name_valid(method, strlen(method))) {
                writer_misuse(w);
                return;
        }
        json_writer_object_begin(w);
        json_writer_key(w, "method");
        json_writer_string(w, method);
        if (more) {
                json_writer_key(w, "more");
                json_writer_bool(w, true);
        }
        if (oneway) {
                json_writer_key(w, "oneway");
                json_writer_bool(w, true);
        }
        json_writer_key(w, "parameters");
        json_writer_object_begin(w);
}

void varlink_reply_begin(struct json_writer *w, const char *error, bool continues) {
        if (error && !qualified_name_valid(error, strlen(error))) {
                writer_misuse(w);
                return;
        }
        json_writer_object_begin(w);
        if (error) {
                json_writer_key(w, "error");
                json_writer_string(w, error);
        }
        if (continues) {
                json_writer_key(w, "continues");
                json_writer_bool(w, true);
        }
        json_writer_key(w, "parameters");
        json_writer_object_begin(w);
}

void varlink_message_end(struct json_writer *w) {
        json_writer_object_end(w);
        json_writer_object_end(w);
        json_writer_terminate(w);
}

void varlink_reply_invalid_parameter(struct json_writer *w, const char *name) {
        varlink_reply_begin(w, VARLINK_ERROR_INVALID_PARAMETER, false);
        if (name) {
                json_writer_key(w, "parameter");
                json_writer_string(w, name);
        }
        varlink_message_end(w);
}

/* ---------------------------------------------------------------- parameters */

/* 1 and *ret when present and not null; 0 when absent or null and not required (the caller
 * then uses its default); -EINVAL when required and absent, or on bad arguments. */
static int param_get(struct json_object *params, const char *name, bool required, struct json_object **ret) {
        int r;

        if (!params || !name || !json_object_is_type(params, json_type_object))
                return -EINVAL;
        r = field_get(params, name, ret);
        if (r == 0 && required)
                return -EINVAL;
        return r;
}

int varlink_param_bool(struct json_object *params, const char *name, bool required, bool def, bool *ret) {
        struct json_object *v;
        int r;

        r = param_get(params, name, required, &v);
        if (r <= 0) {
                if (r == 0)
                        *ret = def;
                return r;
        }
        if (!json_object_is_type(v, json_type_boolean))
                return -EINVAL;
        *ret = json_object_get_boolean(v);
        return 0;
}

int varlink_json_u64(struct json_object *v, uint64_t *ret) {
        uint64_t u;

        switch (json_object_get_type(v)) {
        case json_type_int:
                /* json-c keeps values above INT64_MAX as uint64 (get_int64() then clamps to
                 * INT64_MAX), and negative ones as int64 (get_uint64() then says 0). */
                if (json_object_get_int64(v) < 0)
                        return -EINVAL;
                u = json_object_get_uint64(v);
                break;
        case json_type_string: {
                const char *s = string_value(v);

                if (!s || parse_u64(s, &u) < 0)
                        return -EINVAL;
                break;
        }
        default:
                return -EINVAL;
        }

        *ret = u;
        return 0;
}

int varlink_param_u64(struct json_object *params, const char *name, bool required, uint64_t def, uint64_t *ret) {
        struct json_object *v;
        int r;

        r = param_get(params, name, required, &v);
        if (r <= 0) {
                if (r == 0)
                        *ret = def;
                return r;
        }
        return varlink_json_u64(v, ret);
}

int varlink_param_int(struct json_object *params, const char *name, bool required,
                      int64_t min, int64_t max, int64_t def, int64_t *ret) {
        struct json_object *v;
        int64_t i;
        int r;

        r = param_get(params, name, required, &v);
        if (r <= 0) {
                if (r == 0)
                        *ret = def;
                return r;
        }

        if (!json_object_is_type(v, json_type_int))
                return -EINVAL;
        i = json_object_get_int64(v);
        if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t) INT64_MAX)
                return -EINVAL; /* a uint64 beyond INT64_MAX, clamped by get_int64() */
        if (i < min || i > max)
                return -EINVAL;

        *ret = i;
        return 0;
}

int varlink_param_string(struct json_object *params, const char *name, bool required, const char **ret) {
        struct json_object *v;
        const char *s;
        int r;

        r = param_get(params, name, required, &v);
        if (r <= 0) {
                if (r == 0)
                        *ret = NULL;
                return r;
        }

        if (!json_object_is_type(v, json_type_string))
                return -EINVAL;
        s = string_value(v);
        if (!s)
                return -EINVAL; /* an embedded \u0000 would silently cut the string short */
        *ret = s;
        return 0;
}

const char *varlink_params_unknown(struct json_object *params, const char *const *known) {
        if (!params || !json_object_is_type(params, json_type_object))
                return NULL;

        json_object_object_foreach(params, key, val) {
                bool found = false;

                for (size_t i = 0; known && known[i]; i++)
                        if (strcmp(key, known[i]) == 0) {
                                found = true;
                                break;
                        }
                if (!found)
                        return key;
        }
        return NULL;
}
