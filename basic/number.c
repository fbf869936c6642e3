/* Strict parsing and formatting of the unsigned 64-bit numbers the protocol carries. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "number.h"

int parse_u64(const char *s, uint64_t *ret) {
        uint64_t v = 0;
        bool overflow = false;

        if (!s || !ret)
                return -EINVAL;

        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                const char *p = s + 2;

                if (*p == '\0')
                        return -EINVAL;         /* "0x" alone */

                for (; *p; p++) {
                        int d = unhexchar(*p);

                        if (d < 0)
                                return -EINVAL;
                        if (v > (UINT64_MAX >> 4))
                                overflow = true;
                        else
                                v = (v << 4) | (uint64_t) d;
                }
        } else {
                const char *p = s;

                if (*p == '\0')
                        return -EINVAL;

                for (; *p; p++) {
                        unsigned d;

                        if (*p < '0' || *p > '9')
                                return -EINVAL;
                        d = (unsigned) (*p - '0');
                        if (v > (UINT64_MAX - d) / 10)
                                overflow = true;
                        else
                                v = v * 10 + d;
                }
        }

        /* Syntax errors win over overflow: garbage is -EINVAL wherever it sits. */
        if (overflow)
                return -ERANGE;

        *ret = v;
        return 0;
}

char *format_hex_u64(uint64_t v, char buf[static HEX_U64_MAX]) {
        char tmp[16];
        size_t n = 0;

        do {
                tmp[n++] = "0123456789abcdef"[v & 0xf];
                v >>= 4;
        } while (v);

        buf[0] = '0';
        buf[1] = 'x';
        for (size_t i = 0; i < n; i++)
                buf[2 + i] = tmp[n - 1 - i];
        buf[2 + n] = '\0';
        return buf;
}
