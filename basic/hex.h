/* Hex digits: the one decoding table, and hex strings of byte arrays both ways. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The value of each hex digit of either case plus one; 0 for every other byte. A table
 * lookup where a chain of range tests was a tenth of a 60,000-mapping listing's time. */
extern const uint8_t hex_value1[256];

/* The value of one hex digit of either case, or -1. */
static inline int unhexchar(char c) {
        return (int) hex_value1[(uint8_t) c] - 1;
}

/* Lowercase hex of len bytes into buf (2*len+1 bytes, NUL-terminated). Returns buf. */
char *format_hex_bytes(const uint8_t *data, size_t len, char *buf);

/* Decodes len hex characters (an even number) into len/2 bytes at ret. lowercase_only:
 * refuse 'A'-'F', for strings that have one canonical form. -EINVAL for an odd length or a
 * byte that is no (accepted) hex digit; ret may be partly written on failure. */
int unhex_bytes(const char *hex, size_t len, bool lowercase_only, uint8_t *ret);
