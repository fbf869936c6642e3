/* UTF-8 validation by Unicode's table of well-formed byte sequences. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Length (2-4) of the well-formed multi-byte UTF-8 sequence (Unicode table 3-7) at p, of
 * which avail bytes may be read, or 0 when p[0] does not start one: ASCII, overlong forms,
 * surrogates, code points above U+10FFFF, stray continuation bytes and truncated sequences. */
size_t utf8_sequence_length(const uint8_t *p, size_t avail);
