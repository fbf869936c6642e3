/* Varlink messages: strict decoding of calls and replies, writing them, typed parameters. */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json_object.h>
#include <json-c/json_tokener.h>
#include <json-c/linkhash.h>

#include "cleanup.h"
#include "json-reader.h"
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
                        struct json_reader j = { .p = s + i, .end = s + len };

                        if (json_reader_skip_string_unchecked(&j) < 0)
                                return false;
                        i = (size_t) (j.p - s);
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

int varlink_call_parse(const char *msg, size_t len, unsigned max_depth,
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
        if (c->decoded_free)
                c->decoded_free(c->decoded);
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
