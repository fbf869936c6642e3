/* A small, fast, bounded JSON emitter: appends straight into one growing buffer. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json-writer.h"
#include "number.h"
#include "utf8.h"

#define JSON_WRITER_INITIAL_SIZE 256
#define JSON_WRITER_DOUBLE_MAX (1024 * 1024)

/* 1 for the bytes a JSON string carries as they are: printable ASCII except '"' and '\\'. */
static const uint8_t plain_ascii[256] = {
        [0x20] = 1, [0x21] = 1, /* 0x22 '"' */ [0x23 ... 0x5b] = 1, /* 0x5c '\\' */ [0x5d ... 0x7f] = 1,
};

static bool fail(struct json_writer *w, int err) {
        if (w->error == 0)
                w->error = err;
        return false;
}

/* Makes the buffer hold at least need bytes, growing geometrically. */
static bool grow(struct json_writer *w, size_t need) {
        size_t a;
        char *p;

        if (need <= w->allocated)
                return true;

        a = w->allocated ? w->allocated : JSON_WRITER_INITIAL_SIZE;
        while (a < need) {
                if (a > SIZE_MAX / 2) {
                        a = need;
                        break;
                }
                /* Large buffers grow by half: doubling left up to half of a reply of many MiB
                 * allocated and unused. */
                a += a < JSON_WRITER_DOUBLE_MAX ? a : a / 2;
        }
        /* Never allocate far beyond what max_size allows: the JSON, one terminator, the NUL. */
        if (w->max_size <= SIZE_MAX - 2 && a > w->max_size + 2)
                a = need > w->max_size + 2 ? need : w->max_size + 2;

        p = realloc(w->buf, a);
        if (!p)
                return fail(w, -ENOMEM);
        w->buf = p;
        w->allocated = a;
        return true;
}

/* Appends n bytes, keeping room for the NUL json_writer_finish() adds. */
static bool append(struct json_writer *w, const void *data, size_t n) {
        if (w->error)
                return false;
        if (n > w->max_size || w->len > w->max_size - n)
                return fail(w, -E2BIG);
        if (n >= SIZE_MAX - w->len)
                return fail(w, -ENOMEM);
        if (w->allocated - w->len <= n && !grow(w, w->len + n + 1))
                return false;
        memcpy(w->buf + w->len, data, n);
        w->len += n;
        return true;
}

static inline bool put_char(struct json_writer *w, char c) {
        if (w->error == 0 && w->len < w->max_size && w->allocated - w->len >= 2) {
                w->buf[w->len++] = c;
                return true;
        }
        return append(w, &c, 1);
}

static bool put_escape(struct json_writer *w, uint8_t c) {
        static const char hex[16] = "0123456789abcdef";
        char e[6] = { '\\', 0, 0, 0, 0, 0 };

        switch (c) {
        case '"':  e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        default:
                e[1] = 'u';
                e[2] = '0';
                e[3] = '0';
                e[4] = hex[c >> 4];
                e[5] = hex[c & 0xf];
                return append(w, e, 6);
        }
        return append(w, e, 2);
}

size_t json_plain_length(const char *s, size_t len) {
        const uint8_t *p = (const uint8_t *) s;
        size_t plain = 0;

        while (plain < len && plain_ascii[p[plain]])
                plain++;
        return plain;
}

/* Writes s as a quoted JSON string. *valid becomes false when a byte had to be replaced. */
static bool put_string(struct json_writer *w, const char *s, size_t len, bool *valid) {
        const uint8_t *p = (const uint8_t *) s, *end = p + len, *run;

        /* Keys, addresses and most names are plain ASCII: quote and copy them in one go (the
         * byte-wise path below was the largest cost of writing a listing). */
        if (json_plain_length(s, len) == len && len <= SIZE_MAX - 2) {
                char *d;

                if (w->error)
                        return false;
                if (len + 2 > w->max_size || w->len > w->max_size - (len + 2))
                        return fail(w, -E2BIG);
                if (w->allocated - w->len <= len + 2 && !grow(w, w->len + len + 3))
                        return false;
                d = w->buf + w->len;
                d[0] = '"';
                memcpy(d + 1, s, len);
                d[len + 1] = '"';
                w->len += len + 2;
                return true;
        }

        if (!put_char(w, '"'))
                return false;

        run = p;
        while (p < end) {
                size_t n;

                /* Fast path: plain ASCII runs are copied in one go. */
                if (plain_ascii[*p]) {
                        p++;
                        continue;
                }
                if (*p >= 0x80) {
                        n = utf8_sequence_length(p, (size_t) (end - p));
                        if (n > 0) {
                                p += n;
                                continue;
                        }
                }

                if (p > run && !append(w, run, (size_t) (p - run)))
                        return false;
                if (*p >= 0x80) {
                        /* Each byte that is not part of a well-formed sequence: U+FFFD. */
                        *valid = false;
                        if (!append(w, "\xef\xbf\xbd", 3))
                                return false;
                } else if (!put_escape(w, *p))
                        return false;
                run = ++p;
        }
        if (p > run && !append(w, run, (size_t) (p - run)))
                return false;

        return put_char(w, '"');
}

/* Bookkeeping before any value: the comma, "a value needs a key in an object", and one
 * top-level value per message. */
static bool value_prologue(struct json_writer *w) {
        unsigned d = w->depth;

        if (w->error)
                return false;

        if (w->in_object[d]) {
                if (!w->after_key)
                        return fail(w, -EINVAL);
                w->after_key = false;
                return true;
        }

        if (d == 0) {
                if (!w->first[0])
                        return fail(w, -EINVAL); /* a second top-level value without terminator */
                w->first[0] = false;
                return true;
        }

        if (!w->first[d] && !put_char(w, ','))
                return false;
        w->first[d] = false;
        return true;
}

static void container_begin(struct json_writer *w, bool object) {
        if (!value_prologue(w))
                return;
        if (w->depth >= JSON_WRITER_DEPTH_MAX) {
                fail(w, -E2BIG);
                return;
        }
        if (!put_char(w, object ? '{' : '['))
                return;
        w->depth++;
        w->first[w->depth] = true;
        w->in_object[w->depth] = object;
}

static void container_end(struct json_writer *w, bool object) {
        if (w->error)
                return;
        if (w->depth == 0 || w->in_object[w->depth] != object || w->after_key) {
                fail(w, -EINVAL);
                return;
        }
        if (!put_char(w, object ? '}' : ']'))
                return;
        w->depth--;
}

static void clear_state(struct json_writer *w) {
        w->len = 0;
        w->reserved = 0;
        w->error = 0;
        w->depth = 0;
        w->after_key = false;
        w->first[0] = true;
        w->in_object[0] = false;
}

void json_writer_init(struct json_writer *w, size_t max_size) {
        *w = (struct json_writer) {
                .max_size = max_size == 0 ? SIZE_MAX : max_size,
        };
        clear_state(w);
}

bool json_writer_reserve(struct json_writer *w, size_t n) {
        size_t need;
        char *p;

        if (w->error || n >= SIZE_MAX - 2 - w->len)
                return false;
        need = w->len + n + 2; /* with the NUL and a terminator */
        if (w->max_size <= SIZE_MAX - 2 && need > w->max_size + 2)
                need = w->max_size + 2;
        if (need <= w->allocated)
                return true;
        p = realloc(w->buf, need);
        if (!p)
                return false;
        w->buf = p;
        w->allocated = need;
        return true;
}

void json_writer_done(struct json_writer *w) {
        if (!w)
                return;
        free(w->buf);
        w->buf = NULL;
        w->allocated = 0;
        clear_state(w);
}

void json_writer_reset(struct json_writer *w) {
        clear_state(w);
}

void json_writer_object_begin(struct json_writer *w) {
        container_begin(w, true);
}

void json_writer_object_end(struct json_writer *w) {
        container_end(w, true);
}

void json_writer_array_begin(struct json_writer *w) {
        container_begin(w, false);
}

void json_writer_array_end(struct json_writer *w) {
        container_end(w, false);
}

void json_writer_key(struct json_writer *w, const char *key) {
        bool valid = true;

        if (w->error)
                return;
        if (!key || w->depth == 0 || !w->in_object[w->depth] || w->after_key) {
                fail(w, -EINVAL);
                return;
        }
        if (!w->first[w->depth] && !put_char(w, ','))
                return;
        w->first[w->depth] = false;
        if (!put_string(w, key, strlen(key), &valid) || !put_char(w, ':'))
                return;
        w->after_key = true;
}

bool json_writer_string_len(struct json_writer *w, const char *s, size_t len) {
        bool valid = true;

        if (!s) {
                json_writer_null(w);
                return true;
        }
        if (!value_prologue(w))
                return true;
        put_string(w, s, len, &valid);
        return valid;
}

bool json_writer_string(struct json_writer *w, const char *s) {
        return json_writer_string_len(w, s, s ? strlen(s) : 0);
}

/* Two digits at a time: number formatting was a tenth of a large Lookup's user time. */
static const char decimal_pairs[201] =
        "0001020304050607080910111213141516171819202122232425262728293031"
        "3233343536373839404142434445464748495051525354555657585960616263"
        "6465666768697071727374757677787980818283848586878889909192939495"
        "96979899";

static const char hex_pairs[513] =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
        "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
        "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
        "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
        "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

size_t json_format_uint(uint64_t v, char *buf) {
        static const uint64_t pow10[20] = {
                1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u, 1000000000u,
                10000000000u, 100000000000u, 1000000000000u, 10000000000000u, 100000000000000u,
                1000000000000000u, 10000000000000000u, 100000000000000000u, 1000000000000000000u,
                10000000000000000000u,
        };
        /* The number of digits from the highest set bit (1233 / 4096 ~ log10(2)), then exact;
         * written in place from the end, so no copy of a variable length follows. */
        size_t n = ((size_t) (64 - __builtin_clzll(v | 1)) * 1233 >> 12) + 1;
        char *p;

        if (n > 1 && v < pow10[n - 1])
                n--;
        p = buf + n;
        while (v >= 100) {
                p -= 2;
                memcpy(p, decimal_pairs + 2 * (v % 100), 2);
                v /= 100;
        }
        if (v >= 10)
                memcpy(p - 2, decimal_pairs + 2 * v, 2);
        else
                p[-1] = (char) ('0' + v);
        return n;
}

size_t json_format_hex(uint64_t v, char *buf) {
        /* The number of hex digits: 1 for 0, else from the highest set bit. */
        size_t n = v ? (size_t) (67 - __builtin_clzll(v)) / 4 : 1;
        char *p = buf + 2 + n;

        buf[0] = '0';
        buf[1] = 'x';
        for (size_t left = n; left >= 2; left -= 2) {
                p -= 2;
                memcpy(p, hex_pairs + 2 * (v & 0xff), 2);
                v >>= 8;
        }
        if (n & 1)
                p[-1] = hex_pairs[2 * (v & 0xf) + 1];
        return n + 2;
}

static void put_u64_digits(struct json_writer *w, uint64_t v, bool negative) {
        char tmp[21];
        size_t n = 0;

        if (negative)
                tmp[n++] = '-';
        n += json_format_uint(v, tmp + n);
        append(w, tmp, n);
}

void json_writer_int(struct json_writer *w, int64_t v) {
        if (!value_prologue(w))
                return;
        if (v < 0)
                put_u64_digits(w, (uint64_t) -(v + 1) + 1, true);
        else
                put_u64_digits(w, (uint64_t) v, false);
}

void json_writer_uint(struct json_writer *w, uint64_t v) {
        if (!value_prologue(w))
                return;
        put_u64_digits(w, v, false);
}

void json_writer_bool(struct json_writer *w, bool v) {
        if (!value_prologue(w))
                return;
        if (v)
                append(w, "true", 4);
        else
                append(w, "false", 5);
}

void json_writer_null(struct json_writer *w) {
        if (!value_prologue(w))
                return;
        append(w, "null", 4);
}

void json_writer_hex(struct json_writer *w, uint64_t v) {
        char buf[20];
        size_t n;

        if (!value_prologue(w))
                return;
        buf[0] = '"';
        n = 1 + json_format_hex(v, buf + 1);
        buf[n++] = '"';
        append(w, buf, n);
}

void json_writer_raw(struct json_writer *w, const char *json, size_t len) {
        if (!value_prologue(w))
                return;
        if (!json || len == 0) {
                fail(w, -EINVAL);
                return;
        }
        append(w, json, len);
}

char *json_writer_raw_reserve(struct json_writer *w, size_t max) {
        if (!value_prologue(w))
                return NULL;
        if (max == 0 || max >= SIZE_MAX - 1 - w->len) {
                fail(w, max == 0 ? -EINVAL : -ENOMEM);
                return NULL;
        }
        if (w->allocated - w->len <= max && !grow(w, w->len + max + 1))
                return NULL;
        w->reserved = max;
        return w->buf + w->len;
}

void json_writer_raw_commit(struct json_writer *w, size_t len) {
        size_t max = w->reserved;

        w->reserved = 0;
        if (w->error)
                return;
        if (len == 0 || len > max) {
                fail(w, -EINVAL);
                return;
        }
        if (len > w->max_size || w->len > w->max_size - len) {
                fail(w, -E2BIG);
                return;
        }
        w->len += len;
}

void json_writer_terminate(struct json_writer *w) {
        if (w->error)
                return;
        /* Only a complete top-level value can be terminated. */
        if (w->depth != 0 || w->after_key || w->first[0]) {
                fail(w, -EINVAL);
                return;
        }
        /* The terminator is not counted against max_size: a message of max_size bytes fits. */
        if (w->len >= SIZE_MAX - 2) {
                fail(w, -ENOMEM);
                return;
        }
        if (w->allocated - w->len < 2 && !grow(w, w->len + 2))
                return;
        w->buf[w->len++] = '\0';
        w->first[0] = true;
}

int json_writer_finish(struct json_writer *w, char **ret, size_t *ret_len) {
        int r = w->error;

        if (r == 0 && (w->depth != 0 || w->after_key))
                r = -EINVAL; /* unclosed object or array, or a key without its value */
        if (r == 0 && !w->buf && !grow(w, 1))
                r = w->error;
        if (r < 0) {
                clear_state(w);
                return r;
        }

        w->buf[w->len] = '\0';
        *ret = w->buf;
        if (ret_len)
                *ret_len = w->len;

        w->buf = NULL;
        w->allocated = 0;
        clear_state(w);
        return 0;
}
