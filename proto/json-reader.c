/* A strict pull reader of JSON text (RFC 8259, UTF-8, integers only) that reads in place and copies only what the caller keeps. */

#include <errno.h>
#include <string.h>

#include "hex.h"
#include "json-reader.h"
#include "utf8.h"

const uint8_t json_reader_plain[256] = {
        [0x20] = 1, [0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7f] = 1,
};

/* Stops at the first byte that is no hex digit, so never runs past the text's NUL. */
static int hex4(const char *p, uint32_t *ret) {
        uint32_t v = 0;

        for (unsigned i = 0; i < 4; i++) {
                int d = unhexchar(p[i]);

                if (d < 0)
                        return -EPROTO;
                v = v << 4 | (uint32_t) d;
        }
        *ret = v;
        return 0;
}

/* Checks the string at j->p and steps over it: *ret_raw points to its text between the
 * quotes, *ret_len bytes of it, and *ret_escaped tells whether it holds escapes (without
 * any, the text is the string). */
int json_reader_string(struct json_reader *j, const char **ret_raw, size_t *ret_len, bool *ret_escaped) {
        const char *in, *start;
        bool escaped = false;

        json_reader_ws(j);
        if (*j->p != '"')
                return -EPROTO;
        j->nul = false;
        start = in = j->p + 1;
        for (;;) {
                uint8_t c;

                while (json_reader_plain[(uint8_t) *in])
                        in++;
                c = (uint8_t) *in;
                if (c == '"')
                        break;
                if (c < 0x20)
                        return -EPROTO; /* control characters, and the end of the text */
                if (c >= 0x80) {
                        /* The text ends in a NUL, which is no continuation byte: the
                         * check stops there before reading further. */
                        size_t n = utf8_sequence_length((const uint8_t *) in, 4);

                        if (n == 0)
                                return -EPROTO;
                        in += n;
                        continue;
                }

                /* An escape */
                escaped = true;
                in++;
                switch (*in) {
                case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                        in++;
                        break;
                case 'u': {
                        uint32_t cp, lo;

                        if (hex4(in + 1, &cp) < 0)
                                return -EPROTO;
                        in += 5;
                        if (cp >= 0xdc00 && cp <= 0xdfff)
                                return -EPROTO;
                        if (cp >= 0xd800 && cp <= 0xdbff) {
                                if (in[0] != '\\' || in[1] != 'u' || hex4(in + 2, &lo) < 0 || lo < 0xdc00 ||
                                    lo > 0xdfff)
                                        return -EPROTO;
                                in += 6;
                        }
                        if (cp == 0)
                                j->nul = true;
                        break;
                }
                default:
                        return -EPROTO;
                }
        }
        j->p = in + 1;
        *ret_raw = start;
        *ret_len = (size_t) (in - start);
        *ret_escaped = escaped;
        return 0;
}

int json_reader_skip_string_unchecked(struct json_reader *j) {
        for (const char *p = j->p + 1; p < j->end; p++) {
                if (*p == '\\')
                        p++;
                else if (*p == '"') {
                        j->p = p + 1;
                        return 0;
                }
        }
        return -EPROTO;
}

/* Decodes the len bytes of string text at in, which json_reader_string() accepted, to out: never more
 * bytes than len (UTF-8 is never longer than the escape it came from). Returns the length. */
size_t json_reader_unescape(const char *in, size_t len, char *out) {
        const char *end = in + len;
        char *o = out;

        while (in < end) {
                uint32_t cp = 0, lo = 0xdc00; /* hex4() cannot fail: json_reader_string() checked the digits */

                if (*in != '\\') {
                        *o++ = *in++;
                        continue;
                }
                in += 2;
                switch (in[-1]) {
                case 'b': *o++ = '\b'; break;
                case 'f': *o++ = '\f'; break;
                case 'n': *o++ = '\n'; break;
                case 'r': *o++ = '\r'; break;
                case 't': *o++ = '\t'; break;
                case 'u':
                        (void) hex4(in, &cp);
                        in += 4;
                        if (cp >= 0xd800 && cp <= 0xdbff) {
                                (void) hex4(in + 2, &lo);
                                in += 6;
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        }
                        if (cp < 0x80)
                                *o++ = (char) cp;
                        else if (cp < 0x800) {
                                *o++ = (char) (0xc0 | cp >> 6);
                                *o++ = (char) (0x80 | (cp & 0x3f));
                        } else if (cp < 0x10000) {
                                *o++ = (char) (0xe0 | cp >> 12);
                                *o++ = (char) (0x80 | ((cp >> 6) & 0x3f));
                                *o++ = (char) (0x80 | (cp & 0x3f));
                        } else {
                                *o++ = (char) (0xf0 | cp >> 18);
                                *o++ = (char) (0x80 | ((cp >> 12) & 0x3f));
                                *o++ = (char) (0x80 | ((cp >> 6) & 0x3f));
                                *o++ = (char) (0x80 | (cp & 0x3f));
                        }
                        break;
                default: /* '"', '\\', '/' */
                        *o++ = in[-1];
                        break;
                }
        }
        return (size_t) (o - out);
}

/* The string's text into dst (len + 1 bytes), unescaped where it has escapes, NUL-terminated;
 * returns its length. */
size_t json_reader_copy_string(const char *raw, size_t len, bool escaped, char *dst) {
        if (escaped)
                len = json_reader_unescape(raw, len, dst);
        else
                memcpy(dst, raw, len);
        dst[len] = 0;
        return len;
}

/* Checks and skips any value; depth is the nesting level a container here would have. */
int json_reader_skip(struct json_reader *j, unsigned depth) {
        const char *s;
        size_t l;
        bool escaped, negative;
        uint64_t v;
        int r;

        json_reader_ws(j);
        switch (*j->p) {
        case '"':
                return json_reader_string(j, &s, &l, &escaped);
        case '{':
        case '[': {
                bool object = *j->p == '{';
                char close = object ? '}' : ']';

                if (depth >= JSON_READER_DEPTH_MAX)
                        return -EPROTO;
                j->p++;
                if (json_reader_take(j, close))
                        return 0;
                do {
                        if (object && ((r = json_reader_string(j, &s, &l, &escaped)) < 0 || !json_reader_take(j, ':')))
                                return -EPROTO;
                        r = json_reader_skip(j, depth + 1);
                        if (r < 0)
                                return r;
                } while (json_reader_take(j, ','));
                return json_reader_take(j, close) ? 0 : -EPROTO;
        }
        case 't':
                return JSON_READER_LITERAL(j, "true") ? 0 : -EPROTO;
        case 'f':
                return JSON_READER_LITERAL(j, "false") ? 0 : -EPROTO;
        case 'n':
                return JSON_READER_LITERAL(j, "null") ? 0 : -EPROTO;
        default:
                return json_reader_number(j, &negative, &v);
        }
}

/* Iterates the members of an object: call with *first true; returns 1 with *ret_key (and
 * its length, not NUL-terminated; valid until the next key) for each member, with the reader
 * at its value, 0 after the closing brace. A key is compared as it stands in the text unless
 * it holds escapes; one too long to be a known key is returned empty, which no known key is. */
int json_reader_member(struct json_reader *j, bool *first, const char **ret_key, size_t *ret_len) {
        const char *key;
        size_t len;
        bool escaped;

        if (*first) {
                *first = false;
                if (!json_reader_take(j, '{'))
                        return -EPROTO;
                if (json_reader_take(j, '}'))
                        return 0;
        } else {
                if (json_reader_take(j, '}'))
                        return 0;
                if (!json_reader_take(j, ','))
                        return -EPROTO;
        }
        if (json_reader_string(j, &key, &len, &escaped) < 0 || j->nul || !json_reader_take(j, ':'))
                return -EPROTO;
        if (escaped) {
                if (len <= sizeof(j->key)) {
                        len = json_reader_unescape(key, len, j->key);
                        key = j->key;
                } else
                        len = 0;
        }
        *ret_key = key;
        *ret_len = len;
        return 1;
}

/* Iterates the elements of an array likewise: 1 with the reader at the next element. */
int json_reader_element(struct json_reader *j, bool *first) {
        if (*first) {
                *first = false;
                if (!json_reader_take(j, '['))
                        return -EPROTO;
                return json_reader_take(j, ']') ? 0 : 1;
        }
        if (json_reader_take(j, ']'))
                return 0;
        return json_reader_take(j, ',') ? 1 : -EPROTO;
}

/* A short string decoded into buf (JSON_READER_SHORT_MAX bytes), NUL-terminated: 1, 0 for null. A
 * longer one is left to the general decoder. */
int json_reader_get_short(struct json_reader *j, char *buf, size_t *ret_len) {
        const char *raw;
        size_t len;
        bool escaped;
        int r;

        r = json_reader_get_raw(j, &raw, &len, &escaped);
        if (r <= 0)
                return r;
        if (len >= JSON_READER_SHORT_MAX)
                return -EPROTO;
        len = json_reader_copy_string(raw, len, escaped, buf);
        if (ret_len)
                *ret_len = len;
        return 1;
}

int json_reader_get_uint(struct json_reader *j, uint64_t *ret) {
        bool negative;
        uint64_t v;

        if (json_reader_null(j))
                return 0;
        json_reader_ws(j);
        if (json_reader_number(j, &negative, &v) < 0 || negative)
                return -EPROTO;
        *ret = v;
        return 1;
}

/* parse_u64() of a "0x..." string, with a table instead of branches: it was a sixth of the
 * client's time on a large Lookup. Same rules: at least one digit, leading zeros allowed,
 * nothing above UINT64_MAX. */
int json_reader_parse_hex(const char *s, uint64_t *ret) {
        const uint8_t *p = (const uint8_t *) s + 2;
        uint64_t v = 0;

        if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || *p == 0)
                return -EPROTO;
        for (; *p; p++) {
                uint8_t d = hex_value1[*p];

                if (d == 0 || v > (UINT64_MAX >> 4))
                        return -EPROTO;
                v = v << 4 | (uint64_t) (d - 1);
        }
        *ret = v;
        return 0;
}

int json_reader_get_hex(struct json_reader *j, uint64_t *ret) {
        char s[JSON_READER_SHORT_MAX];
        int r;

        /* Anything but the plain form (escapes, 17 digits, ...) takes the path below, which
         * decides the same. */
        r = json_reader_hex_plain(j, ret);
        if (r != 0)
                return r;
        r = json_reader_get_short(j, s, NULL);
        if (r <= 0)
                return r;
        if (s[1] != 'x' || json_reader_parse_hex(s, ret) < 0)
                return -EPROTO;
        return 1;
}

int json_reader_get_bool(struct json_reader *j, bool *ret) {
        json_reader_ws(j);
        if (JSON_READER_LITERAL(j, "null"))
                return 0;
        if (JSON_READER_LITERAL(j, "true"))
                *ret = true;
        else if (JSON_READER_LITERAL(j, "false"))
                *ret = false;
        else
                return -EPROTO;
        return 1;
}

