/* Parsing and formatting of the numbers the protocol carries: addresses as "0x..." strings. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Parses an unsigned 64-bit number: "0x" or "0X" followed by 1-16 hex digits, or 1-20
 * decimal digits. No sign, no spaces, no trailing garbage, no overflow: -EINVAL or -ERANGE. */
int parse_u64(const char *s, uint64_t *ret);

/* Formats v as "0x" plus lowercase hex without leading zeros ("0x0" for 0). buf must hold
 * HEX_U64_MAX bytes. Returns buf. */
#define HEX_U64_MAX 19
char *format_hex_u64(uint64_t v, char buf[static HEX_U64_MAX]);

/* Lowercase hex of len bytes into buf (2*len+1 bytes). Returns buf. */
char *format_hex_bytes(const uint8_t *data, size_t len, char *buf);
