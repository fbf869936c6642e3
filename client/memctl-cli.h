/* What the modules of memctl share: the options given, exit statuses, messages. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define _printf_(a, b) __attribute__((format(printf, a, b)))

enum {
        EXIT_OK = 0,
        EXIT_FAIL = 1,
        EXIT_USAGE = 2,
        EXIT_UNREACHABLE = 3,
        EXIT_NO_PROCESS = 4,
        EXIT_PERMISSION = 5,
        EXIT_CHANGED = 6,
};

/* Addresses per Lookup call (and per object printed by --json); libmemctl splits further where
 * the daemon takes fewer. */
#define LOOKUP_BATCH 10000
/* Build IDs in tables are shortened to this many hex digits unless --full. */
#define BUILD_ID_SHORT 12

enum json_mode {
        JSON_OFF,
        JSON_PRETTY,
        JSON_SHORT,
};

struct memctl_options {
        enum json_mode json;
        const char *socket;
        bool legend;
        bool full;
        bool exec_only;
        bool files_only;
        int build_ids; /* -1: not given */
        bool symbols;
        bool start_time_set;
        uint64_t start_time;
        const char *build_id;   /* who --build-id */
        bool deleted_only;
};

/* Set once by parse_argv() in memctl.c, read by every module. */
extern struct memctl_options arg;

/* Inline: a global error() would clash with glibc's error(3). */
_printf_(1, 2) static inline void error(const char *fmt, ...) {
        va_list ap;

        fputs("memctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static inline int oom(void) {
        error("out of memory");
        return EXIT_FAIL;
}
