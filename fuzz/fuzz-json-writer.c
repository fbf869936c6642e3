/* Fuzz target: json_writer_string() on arbitrary bytes. What it writes must parse back with
 * json-c (strictly, as UTF-8) to the same bytes when they were valid UTF-8, and otherwise to
 * them with each offending byte replaced by U+FFFD, as an independent decoder finds them.
 *
 * Input: [0] picks a max_size (bit 7 clear: unbounded; else [0] & 0x7f bytes) and whether the
 * string is also written as a key; the rest is the string. */
#include <errno.h>
#include <string.h>
#include <json-c/json.h>

#include "fuzz.h"
#include "json-writer.h"

/* One code point at p, decoded bit by bit: its length, or 0 if p does not start a well-formed
 * UTF-8 sequence (overlong, surrogate, above U+10FFFF, bad or missing continuation bytes). */
static size_t ref_utf8(const uint8_t *p, size_t avail) {
        uint32_t cp;
        size_t n;

        if (p[0] < 0x80)
                return 1;
        if ((p[0] & 0xe0) == 0xc0) {
                n = 2;
                cp = p[0] & 0x1f;
        } else if ((p[0] & 0xf0) == 0xe0) {
                n = 3;
                cp = p[0] & 0x0f;
        } else if ((p[0] & 0xf8) == 0xf0) {
                n = 4;
                cp = p[0] & 0x07;
        } else
                return 0;
        if (avail < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000))
                return 0; /* overlong */
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                return 0;
        return n;
}

/* The expected decoded string; *ret_valid is false when something was replaced. */
static uint8_t *expected(const uint8_t *s, size_t len, size_t *ret_len, bool *ret_valid) {
        uint8_t *out = malloc(3 * len + 1);
        size_t o = 0;

        FUZZ_CHECK(out);
        *ret_valid = true;
        for (size_t i = 0; i < len;) {
                size_t n = ref_utf8(s + i, len - i);

                if (n == 0) {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                        *ret_valid = false;
                        i++;
                } else {
                        memcpy(out + o, s + i, n);
                        o += n;
                        i += n;
                }
        }
        *ret_len = o;
        return out;
}

static struct json_object *parse_strict(const char *text, size_t len) {
        struct json_tokener *tok = json_tokener_new();
        struct json_object *o;

        FUZZ_CHECK(tok);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, text, (int) len);
        FUZZ_CHECK(o && json_tokener_get_error(tok) == json_tokener_success);
        FUZZ_CHECK(json_tokener_get_parse_end(tok) == len);
        json_tokener_free(tok);
        return o;
}

/* Writes s (len bytes; with nul_terminated, the C string form) and checks what comes back. */
static void check_string(const uint8_t *s, size_t len, size_t max_size, bool as_key) {
        struct json_writer w;
        struct json_object *o, *v;
        uint8_t *want;
        size_t want_len, out_len = 0;
        char *out = NULL;
        bool valid, ret;
        int r;

        want = expected(s, len, &want_len, &valid);

        json_writer_init(&w, max_size);
        if (as_key) {
                json_writer_object_begin(&w);
                json_writer_key(&w, (const char *) s);
                ret = json_writer_string_len(&w, (const char *) s, len);
                json_writer_object_end(&w);
        } else
                ret = json_writer_string_len(&w, (const char *) s, len);
        r = json_writer_finish(&w, &out, &out_len);

        if (r == -E2BIG) {
                /* Only a bound can make it fail, and then nothing is handed out. */
                FUZZ_CHECK(max_size > 0);
                FUZZ_CHECK(!out);
                goto done;
        }
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(out && out[out_len] == 0 && strlen(out) == out_len);
        FUZZ_CHECK(max_size == 0 || out_len <= max_size);
        FUZZ_CHECK(ret == valid);

        o = parse_strict(out, out_len);
        if (as_key) {
                size_t key_len = strlen((const char *) s), key_want_len;
                bool key_valid;
                uint8_t *key_want = expected(s, key_len, &key_want_len, &key_valid);
                int count = 0;

                FUZZ_CHECK(json_object_is_type(o, json_type_object));
                json_object_object_foreach(o, key, val) {
                        FUZZ_CHECK(strlen(key) == key_want_len && memcmp(key, key_want, key_want_len) == 0);
                        v = val;
                        count++;
                }
                FUZZ_CHECK(count == 1);
                free(key_want);
        } else
                v = o;
        FUZZ_CHECK(json_object_is_type(v, json_type_string));
        FUZZ_CHECK((size_t) json_object_get_string_len(v) == want_len);
        FUZZ_CHECK(memcmp(json_object_get_string(v), want, want_len) == 0);
        json_object_put(o);

done:
        free(out);
        free(want);
        json_writer_done(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t *s;
        size_t max_size;

        if (size < 1)
                return 0;
        max_size = data[0] & 0x80 ? (size_t) (data[0] & 0x7f) : 0;

        /* A NUL-terminated copy, so the C string form (keys) has its terminator. */
        s = malloc(size);
        FUZZ_CHECK(s);
        memcpy(s, data + 1, size - 1);
        s[size - 1] = 0;

        check_string(s, size - 1, max_size, false);
        check_string(s, size - 1, 0, true);
        check_string(s, size - 1, max_size, true);
        free(s);
        return 0;
}
