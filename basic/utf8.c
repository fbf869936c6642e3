/* UTF-8 validation by Unicode's table of well-formed byte sequences. */

#include "utf8.h"

size_t utf8_sequence_length(const uint8_t *p, size_t avail) {
        uint8_t c = p[0], lo = 0x80, hi = 0xbf;

        if (c < 0xc2)
                return 0;
        if (c < 0xe0)
                return avail >= 2 && p[1] >= 0x80 && p[1] <= 0xbf ? 2 : 0;
        if (c < 0xf0) {
                if (c == 0xe0)
                        lo = 0xa0;
                else if (c == 0xed)
                        hi = 0x9f;
                return avail >= 3 && p[1] >= lo && p[1] <= hi && p[2] >= 0x80 && p[2] <= 0xbf ? 3 : 0;
        }
        if (c < 0xf5) {
                if (c == 0xf0)
                        lo = 0x90;
                else if (c == 0xf4)
                        hi = 0x8f;
                return avail >= 4 && p[1] >= lo && p[1] <= hi && p[2] >= 0x80 && p[2] <= 0xbf &&
                                       p[3] >= 0x80 && p[3] <= 0xbf
                               ? 4
                               : 0;
        }
        return 0;
}
