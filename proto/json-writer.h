/* A small, fast, bounded JSON emitter for replies: no intermediate object tree. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_WRITER_DEPTH_MAX 32

/* Emits commas and nesting by itself. Errors are sticky: after the first failure every call
 * is a no-op and json_writer_finish() reports it:
 *   -ENOMEM  out of memory;
 *   -E2BIG   output above max_size, or more than JSON_WRITER_DEPTH_MAX nested objects/arrays;
 *   -EINVAL  misuse: a key outside an object or twice in a row, a value without its key in an
 *            object, an end that does not match its begin, a second top-level value without
 *            json_writer_terminate() in between, terminating an incomplete value, a NULL key,
 *            an empty or NULL raw value. */
struct json_writer {
        char *buf;
        size_t len;
        size_t allocated;
        size_t max_size;
        int error;                              /* 0 or -errno */
        unsigned depth;
        bool first[JSON_WRITER_DEPTH_MAX + 1];  /* no element written yet at this level */
        bool in_object[JSON_WRITER_DEPTH_MAX + 1];
        bool after_key;
        size_t reserved;                        /* json_writer_raw_reserve()'s max, until committed */
};

/* max_size bounds the output (bytes, without the NUL finish() adds and without the Varlink
 * terminators json_writer_terminate() adds, so a message of exactly max_size bytes of JSON can
 * still be terminated); 0 means SIZE_MAX. The buffer grows geometrically. */
void json_writer_init(struct json_writer *w, size_t max_size);
/* Makes room for n more bytes at once (as far as max_size allows), where the caller knows
 * roughly how much is coming: growing step by step copies the buffer each time. A hint only:
 * false when it could not, without entering the error state. */
bool json_writer_reserve(struct json_writer *w, size_t n);
/* Frees the buffer; accepts NULL and a writer that was finished or never used. The writer
 * may be used again afterwards (same max_size). */
void json_writer_done(struct json_writer *w);
/* Drops what was written and clears the error; keeps the buffer. */
void json_writer_reset(struct json_writer *w);

void json_writer_object_begin(struct json_writer *w);
void json_writer_object_end(struct json_writer *w);
void json_writer_array_begin(struct json_writer *w);
void json_writer_array_end(struct json_writer *w);
void json_writer_key(struct json_writer *w, const char *key);

/* Writes s as a JSON string. Bytes that are not valid UTF-8 become U+FFFD; returns false
 * when that happened (the caller may add a lossless form). NUL-terminated / explicit length.
 * Invalid UTF-8 is strict (overlong forms, surrogates, code points above U+10FFFF, stray
 * continuation bytes, truncated sequences): each offending byte becomes one U+FFFD, written
 * raw (EF BF BD). Control characters are escaped, DEL and valid multibyte characters are
 * written as they are. The explicit-length form may contain NUL bytes (written as \u0000).
 * s == NULL writes null. In the error state nothing is written and true is returned.
 * Keys are escaped the same way (invalid bytes replaced silently). */
bool json_writer_string(struct json_writer *w, const char *s);
bool json_writer_string_len(struct json_writer *w, const char *s, size_t len);
void json_writer_int(struct json_writer *w, int64_t v);
void json_writer_uint(struct json_writer *w, uint64_t v);
void json_writer_bool(struct json_writer *w, bool v);
void json_writer_null(struct json_writer *w);
/* v as the string "0x..." (see format_hex_u64). */
void json_writer_hex(struct json_writer *w, uint64_t v);
/* Pre-serialized JSON value, inserted as is (the caller vouches for it). */
void json_writer_raw(struct json_writer *w, const char *json, size_t len);
/* json_writer_raw() without the copy, for a value formatted in place: returns where at most max
 * bytes may be written, or NULL in the error state (which it may enter: -ENOMEM, -EINVAL as a
 * value in the wrong place). json_writer_raw_commit() then inserts the first len of them
 * (0 < len <= max, else -EINVAL; -E2BIG above max_size); nothing else may come in between. */
char *json_writer_raw_reserve(struct json_writer *w, size_t max);
void json_writer_raw_commit(struct json_writer *w, size_t len);

/* For callers that pre-serialize hot values for json_writer_raw() byte-for-byte as the
 * writer would: the number of leading bytes of s that a JSON string carries as they are
 * (len when s needs no escaping and no replacement); v in decimal, and as 0x-prefixed
 * lowercase hex, at buf without quotes or NUL (buf holds 20 bytes), returning the length. */
size_t json_plain_length(const char *s, size_t len);
size_t json_format_uint(uint64_t v, char *buf);
size_t json_format_hex(uint64_t v, char *buf);

/* Appends a NUL byte that is not part of the JSON: the Varlink message terminator. Needs a
 * complete top-level value (else -EINVAL); another top-level value (the next message) may
 * follow it in the same buffer. */
void json_writer_terminate(struct json_writer *w);

/* Returns 0 and hands over the buffer (NUL-terminated; *ret_len excludes that NUL unless
 * json_writer_terminate() added one of its own), or the sticky -errno (-EINVAL as well when
 * an object or array is still open). Either way the writer is left empty, without error, and
 * reusable. *ret and *ret_len are untouched on failure; ret_len may be NULL. Nothing written
 * gives "" and length 0. */
int json_writer_finish(struct json_writer *w, char **ret, size_t *ret_len);
