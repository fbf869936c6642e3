/* A strict pull reader of JSON text (RFC 8259, UTF-8, integers only) that reads in place and copies only what the caller keeps. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hex.h"

/* It never decides alone that a message is bad: its users hand whatever it does not accept
 * (anything outside the narrow, strict subset it reads: nesting below JSON_READER_DEPTH_MAX,
 * no lone UTF-16 surrogates, no fractions or exponents) to a general decoder (json-c), which
 * then answers from the untouched text. Every function returns -EPROTO for what it does not
 * accept; the text must end in a NUL, which no function steps over. */

/* The daemon nests 5 levels; deeper members go to the general decoder. */
#define JSON_READER_DEPTH_MAX 16
/* Known keys are short and a decoded byte takes at most 6 bytes of text: an escaped key
 * longer than this is returned empty by json_reader_member(). */
#define JSON_READER_KEY_MAX 72
/* Room for any short value (permissions, devices, kinds, addresses), escaped. */
#define JSON_READER_SHORT_MAX 128

struct json_reader {
        const char *p;                  /* the next byte; the text ends in a NUL */
        const char *end;                /* that NUL */
        bool nul;                       /* the last string read held a \u0000 */
        char key[JSON_READER_KEY_MAX];  /* an escaped key, decoded */
};

/* 1 for the bytes a JSON string carries as they are: printable ASCII but '"' and '\\'. */
extern const uint8_t json_reader_plain[256];

static inline void json_reader_ws(struct json_reader *j) {
        while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
                j->p++;
}

/* After whitespace, the byte ch: true and consumed. */
static inline bool json_reader_take(struct json_reader *j, char ch) {
        json_reader_ws(j);
        if (*j->p != ch)
                return false;
        j->p++;
        return true;
}

/* The text at j->p starts with the n bytes at s (no whitespace skipped): true, and they are
 * consumed. Reads no further than the text, so a constant n compiles to a few word compares. */
static inline __attribute__((always_inline)) bool json_reader_lit(struct json_reader *j, const char *s, size_t n) {
        if ((size_t) (j->end - j->p) < n || memcmp(j->p, s, n) != 0)
                return false;
        j->p += n;
        return true;
}
#define JSON_READER_LIT(j, s) json_reader_lit(j, s, sizeof(s) - 1)

#define json_key_is(key, len, name) ((len) == sizeof(name) - 1 && memcmp(key, name, sizeof(name) - 1) == 0)

/* A known member may appear once: *seen collects the bits; -EPROTO for a repeated one. */
static inline int json_reader_seen(unsigned *seen, unsigned bit) {
        if (*seen & bit)
                return -EPROTO;
        *seen |= bit;
        return 0;
}

/* Checks the string at j->p and steps over it: its text between the quotes in *ret_raw
 * (*ret_len bytes), *ret_escaped when it holds escapes (else the text is the string). */
int json_reader_string(struct json_reader *j, const char **ret_raw, size_t *ret_len, bool *ret_escaped);
/* Steps over the string at j->p ('"') of text a JSON parser already accepted, unchecked, its
 * escapes whole: json-c accepts strings this reader refuses (control characters, lone
 * surrogates, overlong UTF-8), which a scan of json-c's input must step over all the same.
 * -EPROTO when the string does not end before j->end. */
int json_reader_skip_string_unchecked(struct json_reader *j);
/* Decodes len bytes of text json_reader_string() accepted into out (at most len bytes). */
size_t json_reader_unescape(const char *in, size_t len, char *out);
/* The text into dst (len + 1 bytes), unescaped when escaped, NUL-terminated; its length. */
size_t json_reader_copy_string(const char *raw, size_t len, bool escaped, char *dst);
/* Checks and skips any value; depth is the nesting level a container here would have. */
int json_reader_skip(struct json_reader *j, unsigned depth);
/* The members of an object: call with *first true; 1 with the key (not NUL-terminated,
 * valid until the next key) and the reader at its value, 0 after the closing brace. */
int json_reader_member(struct json_reader *j, bool *first, const char **ret_key, size_t *ret_len);
/* The elements of an array likewise: 1 with the reader at the next element, 0 at the end. */
int json_reader_element(struct json_reader *j, bool *first);

/* Typed values: 1 and the value, 0 for null. */
/* Decoded into buf (JSON_READER_SHORT_MAX bytes), NUL-terminated; longer ones are -EPROTO. */
int json_reader_get_short(struct json_reader *j, char *buf, size_t *ret_len);
int json_reader_get_uint(struct json_reader *j, uint64_t *ret);
/* A "0x..." string: at least one digit, leading zeros allowed, nothing above UINT64_MAX. */
int json_reader_parse_hex(const char *s, uint64_t *ret);
/* An address string in any form json_reader_parse_hex() takes. */
int json_reader_get_hex(struct json_reader *j, uint64_t *ret);
int json_reader_get_bool(struct json_reader *j, bool *ret);

/* The small readers every value goes through, inline: a call each was a measurable part of
 * decoding a large listing. */

static inline bool json_reader_is_digit(char ch) {
        return ch >= '0' && ch <= '9';
}

/* An integer literal: its magnitude and sign. Integers outside [INT64_MIN, UINT64_MAX] are
 * refused, as the general decoder refuses them. */
static inline int json_reader_number(struct json_reader *j, bool *ret_negative, uint64_t *ret_value) {
        const char *p = j->p;
        bool negative = false, overflow = false;
        uint64_t v = 0;

        if (*p == '-') {
                negative = true;
                p++;
        }
        if (!json_reader_is_digit(*p))
                return -EPROTO;
        if (*p == '0' && json_reader_is_digit(p[1]))
                return -EPROTO; /* leading zeros */
        for (; json_reader_is_digit(*p); p++) {
                unsigned d = (unsigned) (*p - '0');

                if (v > (UINT64_MAX - d) / 10)
                        overflow = true;
                else
                        v = v * 10 + d;
        }
        /* Fractions and exponents: the daemon sends none; the general decoder takes them. */
        if (*p == '.' || *p == 'e' || *p == 'E')
                return -EPROTO;
        if (overflow || (negative && v > (uint64_t) INT64_MAX + 1))
                return -EPROTO;
        j->p = p;
        *ret_negative = negative;
        *ret_value = v;
        return 0;
}
#define JSON_READER_LITERAL(j, lit) json_reader_literal_len(j, lit, sizeof(lit) - 1)

static inline bool json_reader_literal_len(struct json_reader *j, const char *lit, size_t l) {
        /* The text ends in a NUL that no literal holds: the loop stops there at the latest. */
        for (size_t i = 0; i < l; i++)
                if (j->p[i] != lit[i])
                        return false;
        j->p += l;
        return true;
}

/* True (and consumed) when the next value is null. */
static inline bool json_reader_null(struct json_reader *j) {
        json_reader_ws(j);
        return JSON_READER_LITERAL(j, "null");
}

/* A string without NUL: 1 with its text (escaped when *ret_escaped), 0 for null. */
static inline int json_reader_get_raw(struct json_reader *j, const char **ret_raw, size_t *ret_len, bool *ret_escaped) {
        if (json_reader_null(j))
                return 0;
        if (json_reader_string(j, ret_raw, ret_len, ret_escaped) < 0 || j->nul)
                return -EPROTO;
        return 1;
}

/* What the daemon sends for an address, "0x" and 1 to 16 hex digits, read straight from the
 * text: 1 and *ret, or 0 (nothing consumed) for any other form. */
static inline int json_reader_hex_plain(struct json_reader *j, uint64_t *ret) {
        const uint8_t *p;
        uint64_t v = 0;
        unsigned n = 0;

        json_reader_ws(j);
        p = (const uint8_t *) j->p;
        if (p[0] != '"' || p[1] != '0' || p[2] != 'x' || hex_value1[p[3]] == 0)
                return 0;
        for (p += 3; hex_value1[*p] != 0 && n < 16; p++, n++)
                v = v << 4 | (uint64_t) (hex_value1[*p] - 1);
        if (*p != '"')
                return 0;
        j->p = (const char *) p + 1;
        *ret = v;
        return 1;
}
