/* Hex digits: the one decoding table, and hex strings of byte arrays both ways. */

#include <errno.h>

#include "hex.h"

const uint8_t hex_value1[256] = {
        ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9,
        ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
        ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

static const char hex_digits[16] = "0123456789abcdef";

char *format_hex_bytes(const uint8_t *data, size_t len, char *buf) {
        for (size_t i = 0; i < len; i++) {
                buf[2 * i] = hex_digits[data[i] >> 4];
                buf[2 * i + 1] = hex_digits[data[i] & 0xf];
        }
        buf[2 * len] = '\0';
        return buf;
}

static int lower_digit(char c, bool lowercase_only) {
        if (lowercase_only && c >= 'A' && c <= 'F')
                return -1;
        return unhexchar(c);
}

int unhex_bytes(const char *hex, size_t len, bool lowercase_only, uint8_t *ret) {
        if (len % 2 != 0)
                return -EINVAL;
        for (size_t i = 0; i < len; i += 2) {
                int hi = lower_digit(hex[i], lowercase_only), lo = lower_digit(hex[i + 1], lowercase_only);

                if (hi < 0 || lo < 0)
                        return -EINVAL;
                ret[i / 2] = (uint8_t) (hi << 4 | lo);
        }
        return 0;
}
