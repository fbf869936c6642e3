/* A memory mapping's permissions as /proc/PID/maps writes them ("r-xp"): the bits and the text, both ways. */

#include <errno.h>

#include "perms.h"

/* The character of each bit set and cleared, in the order of the text and of the bits. */
static const char perm_chars[4][2] = { { 'r', '-' }, { 'w', '-' }, { 'x', '-' }, { 's', 'p' } };

const char *perms_format(unsigned flags, char buf[static 5]) {
        /* Spelled out: a loop over perm_chars cost three times the instructions, on every
         * mapping a listing decodes. */
        buf[0] = flags & PERM_READ ? 'r' : '-';
        buf[1] = flags & PERM_WRITE ? 'w' : '-';
        buf[2] = flags & PERM_EXEC ? 'x' : '-';
        buf[3] = flags & PERM_SHARED ? 's' : 'p';
        buf[4] = 0;
        return buf;
}

int perms_parse(const char *p, unsigned *ret_flags) {
        unsigned flags = 0;

        for (unsigned i = 0; i < 4; i++) {
                if (p[i] == perm_chars[i][0])
                        flags |= 1u << i;
                else if (p[i] != perm_chars[i][1])
                        return -EINVAL;
        }
        *ret_flags = flags;
        return 0;
}
