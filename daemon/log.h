/* Daemon logging to stderr with syslog priority prefixes that journald understands. */
#pragma once

#include <syslog.h>

void log_set_max_level(int level);
int log_get_max_level(void);
/* "emerg".."debug" or 0-7; -EINVAL otherwise. */
int log_level_from_string(const char *s);

/* Logs if level <= max level; returns -error (when error > 0) so callers can
 * `return log_error_errno(r, ...)`. Keeps errno. */
int log_full_errno(int level, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)
