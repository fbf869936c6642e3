/* Parsing and formatting of the numbers the protocol carries: addresses as "0x..." strings. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "hex.h"

/* Parses an unsigned 64-bit number: "0x" or "0X" followed by hex digits (either case), or
 * decimal digits. At least one digit; leading zeros are accepted as long as the value fits
 * (so more than 16 hex / 20 decimal digits only with leading zeros). No sign, no spaces, no
 * trailing garbage: -EINVAL (also for NULL); a well-formed value above UINT64_MAX: -ERANGE.
 * *ret is untouched on failure. */
int parse_u64(const char *s, uint64_t *ret);

/* Formats v as "0x" plus lowercase hex without leading zeros ("0x0" for 0). buf must hold
 * HEX_U64_MAX bytes. Returns buf. */
#define HEX_U64_MAX 19
char *format_hex_u64(uint64_t v, char buf[static HEX_U64_MAX]);
