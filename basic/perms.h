/* A memory mapping's permissions as /proc/PID/maps writes them ("r-xp"): the bits and the text, both ways. */
#pragma once

enum {
        PERM_READ = 1u << 0,
        PERM_WRITE = 1u << 1,
        PERM_EXEC = 1u << 2,
        PERM_SHARED = 1u << 3,
};

/* The 4 characters of flags (PERM_*) and a NUL into buf. Returns buf. */
const char *perms_format(unsigned flags, char buf[static 5]);

/* The 4 characters at p: 0 and their PERM_* flags, or -EINVAL (p need not be NUL-terminated,
 * but must have 4 bytes). */
int perms_parse(const char *p, unsigned *ret_flags);
