/* Daemon logging to stderr with syslog priority prefixes that journald understands. */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int max_level = LOG_INFO;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

int log_level_from_string(const char *s) {
        static const char *const names[] = { "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" };

        if (!s)
                return -EINVAL;
        for (int i = 0; i < 8; i++)
                if (strcmp(s, names[i]) == 0)
                        return i;
        if (strcmp(s, "error") == 0)
                return LOG_ERR;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == 0)
                return s[0] - '0';
        return -EINVAL;
}

int log_full_errno(int level, int error, const char *fmt, ...) {
        int saved = errno;
        char msg[2048];
        va_list ap;

        if (error < 0)
                error = -error;
        if (level <= max_level) {
                va_start(ap, fmt);
                vsnprintf(msg, sizeof(msg), fmt, ap);
                va_end(ap);
                /* One fprintf per line so threads do not interleave inside a line. */
                if (error > 0)
                        fprintf(stderr, "<%d>%s: %s\n", level, msg, strerror(error));
                else
                        fprintf(stderr, "<%d>%s\n", level, msg);
        }
        errno = saved;
        return error > 0 ? -error : 0;
}
