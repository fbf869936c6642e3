/* memctl: the command line client of memmapd, built on libmemctl. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "json-writer.h"
#include "libmemctl.h"
#include "memmapd-codec.h"
#include "number.h"
#include "utf8.h"

#ifndef MEMMAPD_VERSION
#define MEMMAPD_VERSION "unknown"
#endif

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

static struct {
        enum json_mode json;
        const char *socket;
        bool legend;
        bool full;
        bool exec_only;
        bool files_only;
        int build_ids; /* -1: not given */
        bool start_time_set;
        uint64_t start_time;
} arg = {
        .legend = true,
        .build_ids = -1,
};

DEFINE_CLEANUP_FUNC(memctl *, memctl_free)
DEFINE_CLEANUP_FUNC(memctl_mappings *, memctl_mappings_free)
DEFINE_CLEANUP_FUNC(memctl_lookup_reply *, memctl_lookup_reply_free)
DEFINE_CLEANUP_FUNC(memctl_status *, memctl_status_free)

_printf_(1, 2) static void error(const char *fmt, ...) {
        va_list ap;

        fputs("memctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static int oom(void) {
        error("out of memory");
        return EXIT_FAIL;
}

static void help(void) {
        printf("memctl [OPTIONS] COMMAND ...\n"
               "\n"
               "Ask memmapd about the memory maps of processes.\n"
               "\n"
               "Commands:\n"
               "  maps PID              List the mappings of a process, like pmap: range,\n"
               "                        permissions, file offset, size, build ID, name\n"
               "  lookup PID [ADDR...]  Resolve addresses: file offset, ELF virtual address,\n"
               "                        build ID and path of the mapping each falls in.\n"
               "                        Without ADDR, or for \"-\", reads addresses from\n"
               "                        standard input, one per line (blank lines skipped)\n"
               "  modules PID           List the ELF files a process maps, like\n"
               "                        eu-unstrip -n -p PID: load range, build ID, path\n"
               "  vdso PID              Write the image of the process's vdso to standard\n"
               "                        output (no file holds it): memctl vdso PID > vdso.so\n"
               "  cat PID ADDRESS       Write the file mapped at ADDRESS to standard output,\n"
               "                        the file the process sees (its mount namespace,\n"
               "                        deleted files, memfds), opened by memmapd\n"
               "  status                Show the daemon's version, counters and limits\n"
               "\n"
               "Options:\n"
               "  -h --help             Show this help and exit\n"
               "     --version          Show the version and exit\n"
               "     --json[=pretty|short]\n"
               "                        Print the daemon's reply (its parameters object) as\n"
               "                        JSON, indented or on one line; a lookup of more than\n"
               "                        %d addresses prints one object per batch, and\n"
               "                        modules prints {\"process\", \"modules\"} it derived\n"
               "     --socket=PATH      Talk to memmapd at PATH. Default: $MEMMAPD_SOCKET;\n"
               "                        else %s for root; for others\n"
               "                        $XDG_RUNTIME_DIR/memmapd/io.memmapd if it exists,\n"
               "                        else %s\n"
               "     --no-legend        Print tables without header and footer\n"
               "     --start-time=TICKS Fail (exit 6) unless PID is still the process that\n"
               "                        started at TICKS (field 22 of /proc/PID/stat);\n"
               "                        0 does not check\n"
               "     --exec-only        maps: only mappings with execute permission\n"
               "     --files-only       maps: only file-backed mappings\n"
               "     --build-ids        maps, lookup: show build IDs (the default)\n"
               "     --no-build-ids     maps, lookup: do not ask for build IDs (cheaper)\n"
               "  -l --full             Show build IDs whole: tables shorten them to %d\n"
               "                        hex digits (--json and modules never do)\n"
               "\n"
               "PID is a decimal process ID. ADDR is \"0x\" followed by 1-16 hex digits, or a\n"
               "decimal number. Sizes use binary suffixes (K = 1024 bytes).\n"
               "\n"
               "Exit status:\n"
               "  0  success\n"
               "  1  other failure\n"
               "  2  bad usage or bad input\n"
               "  3  memmapd not reachable (not running, socket not accessible, connection lost)\n"
               "  4  no such process\n"
               "  5  permission denied for that process\n"
               "  6  process changed (start time mismatch: the PID was reused)\n",
               LOOKUP_BATCH, MEMCTL_SOCKET_PATH_SYSTEM, MEMCTL_SOCKET_PATH_SYSTEM, BUILD_ID_SHORT);
}

/* ------------------------------------------------------------------ formatting */

/* A table printed with aligned columns. The last column is not padded, so that a long name
 * only overflows at the end of its line. */
struct table {
        size_t n_columns;
        const char *const *header;
        const bool *right;      /* right-aligned columns */
        char **cells;           /* row after row */
        size_t n_cells, allocated;
};

static void table_done(struct table *t) {
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
}

/* Appends a cell: rows fill from left to right. */
_printf_(2, 3) static int table_addf(struct table *t, const char *fmt, ...) {
        va_list ap;
        char *s;
        int r;

        if (t->n_cells == t->allocated) {
                size_t n = t->allocated ? t->allocated * 2 : 64;
                char **p = reallocarray(t->cells, n, sizeof(*p));

                if (!p)
                        return -ENOMEM;
                t->cells = p;
                t->allocated = n;
        }
        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        t->cells[t->n_cells++] = s;
        return 0;
}

static void table_print(const struct table *t) {
        _cleanup_free_ size_t *width = calloc(t->n_columns, sizeof(size_t));
        size_t n_rows = t->n_cells / t->n_columns;

        if (!width)
                return;
        for (size_t c = 0; c < t->n_columns; c++) {
                if (arg.legend)
                        width[c] = strlen(t->header[c]);
                for (size_t r = 0; r < n_rows; r++)
                        width[c] = MAX(width[c], strlen(t->cells[r * t->n_columns + c]));
        }

        for (size_t r = arg.legend ? 0 : 1; r <= n_rows; r++) {
                for (size_t c = 0; c < t->n_columns; c++) {
                        const char *s = r == 0 ? t->header[c] : t->cells[(r - 1) * t->n_columns + c];
                        bool last = c + 1 == t->n_columns;

                        if (t->right[c])
                                printf("%*s", (int) width[c], s);
                        else if (last)
                                fputs(s, stdout);
                        else
                                printf("%-*s", (int) width[c], s);
                        fputc(last ? '\n' : ' ', stdout);
                }
        }
}

/* Copies s with control characters as \ooo, as /proc/PID/maps shows a newline, so that a
 * hostile file name cannot break the table or talk to the terminal; bytes outside well-formed
 * UTF-8 (an exact name may have them) likewise, since some terminals take 0x80-0x9f as controls. */
static char *escape(const char *s) {
        size_t len = strlen(s);
        const uint8_t *in = (const uint8_t *) s, *end = in + len;
        char *buf = malloc(len * 4 + 1), *p = buf;

        if (!buf)
                return NULL;
        while (in < end) {
                unsigned char ch = *in;
                size_t n = ch >= 0x80 ? utf8_sequence_length(in, (size_t) (end - in)) : 1;

                if (ch < 0x20 || ch == 0x7f || n == 0) {
                        p += sprintf(p, "\\%03o", ch);
                        in++;
                } else {
                        p = mempcpy(p, in, n);
                        in += n;
                }
        }
        *p = 0;
        return buf;
}

/* A mapping's name and path byte for byte, where libmemctl has them (names that are not UTF-8). */
static const char *name_of(const struct memctl_mapping *m) {
        return m->name_exact ? m->name_exact : m->name;
}

static const char *path_of(const struct memctl_mapping *m) {
        return m->path_exact ? m->path_exact : m->path;
}

/* What a table shows for a mapping: the path of files, the kernel's name of the rest. */
static char *mapping_display_name(const struct memctl_mapping *m) {
        _cleanup_free_ char *joined = NULL;

        if (m->kind == MEMCTL_KIND_FILE && m->path) {
                if (asprintf(&joined, "%s%s", path_of(m), m->deleted ? " (deleted)" : "") < 0)
                        return NULL;
                return escape(joined);
        }
        if (m->name)
                return escape(name_of(m));
        if (m->path)
                return escape(path_of(m));
        return strdup("[anon]");
}

/* 4K, 132K, 2.0M, 17M, 1.5G: kilobytes as integers, larger units with one decimal below 10. */
static const char *format_size(uint64_t v, char buf[static 32]) {
        static const char units[] = "KMGTPE";
        unsigned u = 0;
        double x;

        if (v < 1024) {
                snprintf(buf, 32, "%" PRIu64 "B", v);
                return buf;
        }
        while (u + 1 < sizeof(units) - 1 && v >> (10 * (u + 2)) > 0)
                u++;
        x = (double) v / (double) (UINT64_C(1) << (10 * (u + 1)));
        if (u == 0)
                snprintf(buf, 32, "%.0fK", x);
        else if (x < 9.95)
                snprintf(buf, 32, "%.1f%c", x, units[u]);
        else
                snprintf(buf, 32, "%.0f%c", x, units[u]);
        return buf;
}

static const char *build_id_display(const struct memctl_mapping *m) {
        static char buf[BUILD_ID_SHORT + 1];

        if (!m->build_id_hex)
                return "-";
        if (arg.full)
                return m->build_id_hex;
        snprintf(buf, sizeof(buf), "%s", m->build_id_hex);
        return buf;
}

/* Prints JSON text (valid, from libmemctl or our own writer) as --json asks: on one line,
 * or indented two spaces a level. Streamed: the text is never parsed into a tree (that, and
 * printing the tree, cost more than the whole table output of a large lookup). */
static int print_json_text(const char *text, size_t len) {
        unsigned depth = 0;

        if (arg.json == JSON_SHORT) {
                fwrite(text, 1, len, stdout);
                putchar('\n');
                return 0;
        }
        for (size_t i = 0; i < len; i++) {
                char ch = text[i];
                size_t j;

                switch (ch) {
                case '"':
                        /* A whole string as it is, escapes included. */
                        for (j = i + 1; j < len && text[j] != '"'; j++)
                                if (text[j] == '\\')
                                        j++;
                        j = MIN(j + 1, len);
                        fwrite(text + i, 1, j - i, stdout);
                        i = j - 1;
                        break;
                case ' ': case '\t': case '\n': case '\r':
                        break;
                case '{': case '[':
                        for (j = i + 1; j < len && strchr(" \t\n\r", text[j]); j++)
                                ;
                        putchar(ch);
                        if (j < len && (text[j] == '}' || text[j] == ']')) {
                                putchar(text[j]);
                                i = j;
                                break;
                        }
                        depth++;
                        printf("\n%*s", (int) (2 * depth), "");
                        break;
                case '}': case ']':
                        depth -= depth > 0;
                        printf("\n%*s%c", (int) (2 * depth), "", ch);
                        break;
                case ',':
                        printf(",\n%*s", (int) (2 * depth), "");
                        break;
                case ':':
                        fputs(": ", stdout);
                        break;
                default:
                        putchar(ch);
                }
        }
        putchar('\n');
        return 0;
}

static int print_json(const char *text) {
        return print_json_text(text, strlen(text));
}

/* One mapping as the daemon's reply has it (io.memmapd's Mapping), from libmemctl's view. */
static void write_mapping_json(struct json_writer *w, const struct memctl_mapping *m) {
        memmapd_write_mapping(w, &(struct memmapd_mapping) {
                .start = m->start,
                .end = m->end,
                .offset = m->offset,
                .inode = m->inode,
                .dev_major = m->dev_major,
                .dev_minor = m->dev_minor,
                .page_size = m->page_size,
                .flags = m->flags,
                .kind = m->kind_name ? m->kind_name : "unknown",
                /* The exact bytes: the codec writes a name that is not UTF-8 as the daemon does
                 * (U+FFFD for the invalid bytes, and name_hex). */
                .name = name_of(m),
                .path = path_of(m),
                .path_len = m->path ? strlen(path_of(m)) : 0,
                .has_deleted = m->kind == MEMCTL_KIND_FILE,
                .deleted = m->deleted,
                .build_id = m->build_id,
                .build_id_len = m->build_id ? m->build_id_size : 0,
        });
}

/* A Lookup reply as JSON ({"process", "mappings", "results"}), written with the streaming
 * writer the daemon uses. */
static int print_lookup_json(const memctl_lookup_reply *l) {
        _cleanup_(json_writer_done) struct json_writer w;
        _cleanup_free_ char *text = NULL;
        struct memctl_process p = MEMCTL_PROCESS_INIT;
        size_t len;

        json_writer_init(&w, SIZE_MAX);
        (void) json_writer_reserve(&w, 200 * memctl_lookup_reply_mapping_count(l) + 100 * memctl_lookup_reply_count(l));
        (void) memctl_lookup_reply_get_process_info(l, &p);
        json_writer_object_begin(&w);
        memmapd_write_process(&w, p.pid, p.start_time, p.kernel_thread);
        json_writer_key(&w, "mappings");
        json_writer_array_begin(&w);
        for (size_t i = 0; i < memctl_lookup_reply_mapping_count(l); i++) {
                struct memctl_mapping m = MEMCTL_MAPPING_INIT;

                if (memctl_lookup_reply_get_mapping(l, i, &m) < 0)
                        return oom();
                write_mapping_json(&w, &m);
        }
        json_writer_array_end(&w);
        json_writer_key(&w, "results");
        json_writer_array_begin(&w);
        for (size_t i = 0; i < memctl_lookup_reply_count(l); i++) {
                struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;

                if (memctl_lookup_reply_get(l, i, &res) < 0)
                        return oom();
                if (res.mapping == MEMCTL_NO_MAPPING && res.reason == MEMCTL_REASON_OTHER && res.reason_name) {
                        /* A newer daemon's reason, which the codec has no name for: passed on. */
                        json_writer_object_begin(&w);
                        json_writer_key(&w, "address");
                        json_writer_hex(&w, res.address);
                        json_writer_key(&w, "reason");
                        json_writer_string(&w, res.reason_name);
                        json_writer_object_end(&w);
                        continue;
                }
                memmapd_write_result(&w, &(struct memmapd_result) {
                        .address = res.address,
                        .mapping = res.mapping == MEMCTL_NO_MAPPING ? -1 : (int64_t) res.mapping,
                        .reason = res.reason == MEMCTL_REASON_NO_ADDRESS_SPACE ? MEMMAPD_REASON_NO_ADDRESS_SPACE
                                                                               : MEMMAPD_REASON_UNMAPPED,
                        .has_file_offset = res.has_file_offset,
                        .has_elf_vaddr = res.has_elf_vaddr,
                        .file_offset = res.file_offset,
                        .elf_vaddr = res.elf_vaddr,
                });
        }
        json_writer_array_end(&w);
        json_writer_object_end(&w);
        if (json_writer_finish(&w, &text, &len) < 0)
                return oom();
        return print_json_text(text, len);
}

/* ------------------------------------------------------------------ argument parsing */

static int parse_pid(const char *s, pid_t *ret) {
        uint64_t v;

        /* Decimal only: parse_u64() alone would take "0x10". */
        if (!s || !*s || strspn(s, "0123456789") != strlen(s) || parse_u64(s, &v) < 0 ||
            v == 0 || v > INT_MAX) {
                error("invalid PID: '%s'", s ? s : "");
                return -EINVAL;
        }
        *ret = (pid_t) v;
        return 0;
}

static int parse_address(const char *s, uint64_t *ret) {
        return parse_u64(s, ret);
}

struct addresses {
        uint64_t *v;
        size_t n, allocated;
};

static int addresses_push(struct addresses *a, uint64_t v) {
        if (a->n == a->allocated) {
                size_t n = a->allocated ? a->allocated * 2 : 256;
                uint64_t *p = reallocarray(a->v, n, sizeof(*p));

                if (!p)
                        return -ENOMEM;
                a->v = p;
                a->allocated = n;
        }
        a->v[a->n++] = v;
        return 0;
}

/* Reads addresses from stdin, one per line; returns an exit status. */
static int read_addresses(FILE *f, struct addresses *a) {
        _cleanup_free_ char *line = NULL;
        size_t size = 0, lineno = 0;
        ssize_t n;

        while ((n = getline(&line, &size, f)) >= 0) {
                char *s = line, *e = line + n;
                uint64_t v;

                lineno++;
                while (s < e && strchr(" \t\r\n\v\f", *s) && *s)
                        s++;
                while (e > s && strchr(" \t\r\n\v\f", e[-1]) && e[-1])
                        e--;
                if (s == e)
                        continue;
                *e = 0;
                if (memchr(s, 0, (size_t) (e - s)) || parse_address(s, &v) < 0) {
                        _cleanup_free_ char *shown = escape(s);

                        error("standard input, line %zu: invalid address '%s' (expected 0x... or decimal)",
                              lineno, shown ? shown : s);
                        return EXIT_USAGE;
                }
                if (addresses_push(a, v) < 0)
                        return oom();
        }
        if (ferror(f)) {
                error("cannot read standard input: %m");
                return EXIT_FAIL;
        }
        return EXIT_OK;
}

/* ------------------------------------------------------------------ errors */

static bool is_transport_error(int r) {
        switch (r) {
        case -ENOENT: case -ECONNREFUSED: case -ECONNRESET: case -ECONNABORTED: case -EPIPE:
        case -ETIMEDOUT: case -EACCES: case -EPERM: case -ENOTCONN: case -ENOTSOCK:
        case -ENAMETOOLONG: case -ENOTDIR: case -ELOOP: case -EAGAIN: case -EPROTOTYPE:
                return true;
        default:
                return false;
        }
}

static int connect_failed(const char *path, int r) {
        error("cannot connect to memmapd at %s: %s%s", path, strerror(-r),
              r == -ENOENT || r == -ECONNREFUSED ? " (is memmapd running?)" : "");
        return EXIT_UNREACHABLE;
}

/* Explains a failed call; returns the exit status. pid is 0 for calls about no process. */
static int call_failed(memctl *c, const char *path, int r, pid_t pid) {
        const char *name = memctl_last_error_name(c);
        const char *s = NULL, *params;
        int64_t max = 0;

        if (!name) {
                /* Not the daemon's answer: transport or local. */
                if (r == -ETIMEDOUT) {
                        error("memmapd at %s did not answer in time", path);
                        return EXIT_UNREACHABLE;
                }
                if (r == -ENOENT || r == -ECONNREFUSED)
                        return connect_failed(path, r);
                if (is_transport_error(r)) {
                        error("connection to memmapd at %s failed: %s", path, strerror(-r));
                        return EXIT_UNREACHABLE;
                }
                if (r == -EPROTO) {
                        error("invalid reply from memmapd at %s", path);
                        return EXIT_FAIL;
                }
                if (r == -ENOMEM)
                        return oom();
                error("call failed: %s", strerror(-r));
                return EXIT_FAIL;
        }

        /* Every answer of the daemon is shown with its name and parameters: what memctl does
         * not know how to say (InternalError's message, a newer daemon's error) is not lost. */
        params = memctl_last_error_parameters(c);
        if (!params)
                params = "{}";
        switch (r) {
        case -ESRCH:
                error("no such process: %d (%s %s)", (int) pid, name, params);
                return EXIT_NO_PROCESS;
        case -EACCES:
                if (pid > 0)
                        error("permission denied for process %d (%s %s)", (int) pid, name, params);
                else
                        error("permission denied (%s %s)", name, params);
                return EXIT_PERMISSION;
        case -ESTALE:
                error("process %d changed (start time mismatch) (%s %s)", (int) pid, name, params);
                return EXIT_CHANGED;
        case -E2BIG:
                if (memctl_last_error_string(c, "limit", &s) >= 0 && memctl_last_error_int(c, "max", &max) >= 0)
                        error("request exceeds memmapd's limit %s (max %" PRIi64 ")", s, max);
                else
                        error("request exceeds a limit of memmapd (%s %s)", name, params);
                return EXIT_FAIL;
        case -EINVAL:
                if (memctl_last_error_string(c, "parameter", &s) >= 0)
                        error("memmapd rejected parameter '%s'", s);
                else
                        error("memmapd rejected the request as invalid (%s %s)", name, params);
                return EXIT_FAIL;
        case -EOPNOTSUPP:
                error("memmapd does not support this request (%s %s)", name, params);
                return EXIT_FAIL;
        case -ENXIO:
                error("nothing is mapped there in process %d (%s %s)", (int) pid, name, params);
                return EXIT_FAIL;
        case -EMEDIUMTYPE:
                error("the mapping there in process %d has no file (%s %s)", (int) pid, name, params);
                return EXIT_FAIL;
        default:
                if (strcmp(name, "io.memmapd.InternalError") == 0 && memctl_last_error_string(c, "message", &s) >= 0)
                        error("memmapd failed: %s (%s %s)", s, name, params);
                else
                        error("memmapd answered with error %s %s", name, params);
                return EXIT_FAIL;
        }
}

/* ------------------------------------------------------------------ commands */

struct context {
        memctl *c;
        const char *path;
};

static int call_json(struct context *ctx, const char *method, struct json_object *params,
                     pid_t pid, char **ret) {
        const char *p = params ? json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN) : NULL;
        int r;

        if (params && !p)
                return oom();
        r = memctl_call_json(ctx->c, method, p, ret);
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, pid);
        return EXIT_OK;
}

/* The parameters every per-process call takes. */
static struct json_object *process_params(pid_t pid, uint64_t start_time) {
        struct json_object *p = json_object_new_object();

        if (!p)
                return NULL;
        if (json_object_object_add(p, "pid", json_object_new_int64(pid)) < 0 ||
            (start_time != 0 && json_object_object_add(p, "start_time", json_object_new_uint64(start_time)) < 0)) {
                json_object_put(p);
                return NULL;
        }
        return p;
}

static int add_true(struct json_object *p, const char *key) {
        return json_object_object_add(p, key, json_object_new_boolean(true));
}

static int cmd_maps(struct context *ctx, pid_t pid) {
        static const char *const header[] = { "START-END", "PERMS", "OFFSET", "SIZE", "BUILD-ID", "NAME" };
        static const char *const header_nobid[] = { "START-END", "PERMS", "OFFSET", "SIZE", "NAME" };
        static const bool right[] = { false, false, true, true, false, false };
        static const bool right_nobid[] = { false, false, true, true, false };
        _cleanup_(memctl_mappings_freep) memctl_mappings *m = NULL;
        bool build_ids = arg.build_ids != 0;
        uint64_t flags = 0, total = 0;
        struct table t = {
                .n_columns = build_ids ? 6 : 5,
                .header = build_ids ? header : header_nobid,
                .right = build_ids ? right : right_nobid,
        };
        size_t n;
        int r;

        if (arg.json != JSON_OFF) {
                _cleanup_json_ struct json_object *p = process_params(pid, arg.start_time);
                _cleanup_free_ char *reply = NULL;

                if (!p || (arg.exec_only && add_true(p, "executable_only") < 0) ||
                    (arg.files_only && add_true(p, "file_backed_only") < 0) ||
                    (build_ids && add_true(p, "build_ids") < 0))
                        return oom();
                r = call_json(ctx, "io.memmapd.ListMappings", p, pid, &reply);
                if (r != EXIT_OK)
                        return r;
                return print_json(reply);
        }

        if (arg.exec_only)
                flags |= MEMCTL_EXECUTABLE_ONLY;
        if (arg.files_only)
                flags |= MEMCTL_FILE_BACKED_ONLY;
        if (build_ids)
                flags |= MEMCTL_BUILD_IDS;
        r = memctl_list_mappings(ctx->c, pid, arg.start_time, flags, &m);
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, pid);

        n = memctl_mappings_count(m);
        for (size_t i = 0; i < n; i++) {
                struct memctl_mapping map = MEMCTL_MAPPING_INIT;
                _cleanup_free_ char *name = NULL;
                char size[32];

                if (memctl_mappings_get(m, i, &map) < 0)
                        continue;
                name = mapping_display_name(&map);
                if (!name)
                        goto nomem;
                total += map.end - map.start;
                if (table_addf(&t, "%012" PRIx64 "-%012" PRIx64, map.start, map.end) < 0 ||
                    table_addf(&t, "%s", map.perms) < 0 ||
                    table_addf(&t, "%08" PRIx64, map.offset) < 0 ||
                    table_addf(&t, "%s", format_size(map.end - map.start, size)) < 0 ||
                    (build_ids && table_addf(&t, "%s", build_id_display(&map)) < 0) ||
                    table_addf(&t, "%s", name) < 0)
                        goto nomem;
        }

        table_print(&t);
        table_done(&t);
        if (arg.legend) {
                struct memctl_process p = MEMCTL_PROCESS_INIT;
                char size[32];

                (void) memctl_mappings_get_process_info(m, &p);
                printf("\n%zu mapping%s, %s total%s\n", n, n == 1 ? "" : "s", format_size(total, size),
                       p.kernel_thread ? " (a kernel thread: no user address space)" : "");
        }
        return EXIT_OK;

nomem:
        table_done(&t);
        return oom();
}

/* Looks up one batch; grows the table (human output) or prints the reply (JSON). Returns an
 * exit status. A batch above the daemon's max_addresses is split by libmemctl. */
static int lookup_batch(struct context *ctx, pid_t pid, uint64_t *start_time, const uint64_t *addresses,
                        size_t n, bool build_ids, struct table *t) {
        _cleanup_(memctl_lookup_reply_freep) memctl_lookup_reply *l = NULL;
        int r;

        r = memctl_lookup(ctx->c, pid, *start_time, addresses, n, build_ids ? MEMCTL_BUILD_IDS : 0, &l);
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, pid);
        (void) memctl_lookup_reply_get_process(l, NULL, start_time);
        if (arg.json != JSON_OFF)
                return print_lookup_json(l);

        for (size_t i = 0; i < memctl_lookup_reply_count(l); i++) {
                struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;
                struct memctl_mapping map = MEMCTL_MAPPING_INIT;
                _cleanup_free_ char *name = NULL;
                bool mapped;

                if (memctl_lookup_reply_get(l, i, &res) < 0)
                        return oom();
                mapped = res.mapping != MEMCTL_NO_MAPPING &&
                         memctl_lookup_reply_get_mapping(l, res.mapping, &map) >= 0;
                /* Unmapped: why, in the daemon's word ("no_address_space" for a kernel thread). */
                name = mapped ? mapping_display_name(&map) : escape(res.reason_name ? res.reason_name : "unmapped");
                if (!name)
                        return oom();
                if (table_addf(t, "0x%" PRIx64, res.address) < 0 ||
                    (res.has_file_offset ? table_addf(t, "0x%" PRIx64, res.file_offset)
                                         : table_addf(t, "-")) < 0 ||
                    (res.has_elf_vaddr ? table_addf(t, "0x%" PRIx64, res.elf_vaddr)
                                       : table_addf(t, "-")) < 0 ||
                    (build_ids && table_addf(t, "%s", mapped ? build_id_display(&map) : "-") < 0) ||
                    table_addf(t, "%s", name) < 0)
                        return oom();
        }
        return EXIT_OK;
}

static int cmd_lookup(struct context *ctx, pid_t pid, const struct addresses *a) {
        static const char *const header[] = { "ADDRESS", "FILE-OFFSET", "ELF-VADDR", "BUILD-ID", "PATH" };
        static const char *const header_nobid[] = { "ADDRESS", "FILE-OFFSET", "ELF-VADDR", "PATH" };
        static const bool right[] = { false, false, false, false, false };
        bool build_ids = arg.build_ids != 0;
        struct table t = {
                .n_columns = build_ids ? 5 : 4,
                .header = build_ids ? header : header_nobid,
                .right = right,
        };
        uint64_t start_time = arg.start_time;
        size_t done = 0;
        int r;

        do {
                size_t n = MIN((size_t) LOOKUP_BATCH, a->n - done);

                r = lookup_batch(ctx, pid, &start_time, a->v + done, n, build_ids, &t);
                if (r != EXIT_OK) {
                        table_done(&t);
                        return r;
                }
                done += n;
        } while (done < a->n);

        if (arg.json == JSON_OFF)
                table_print(&t);
        table_done(&t);
        return EXIT_OK;
}

struct module {
        uint64_t start, end, inode;
        uint32_t dev_major, dev_minor;
        const char *path;       /* points into the reply */
        const char *build_id;   /* likewise */
        bool deleted;
        bool exec;
};

static bool module_matches(const struct module *mod, const struct memctl_mapping *m) {
        return mod->dev_major == m->dev_major && mod->dev_minor == m->dev_minor &&
               mod->inode == m->inode && strcmp(mod->path, m->path) == 0;
}

static int cmd_modules(struct context *ctx, pid_t pid) {
        static const char *const header[] = { "START-END", "BUILD-ID", "PATH" };
        static const bool right[] = { false, false, false };
        _cleanup_(memctl_mappings_freep) memctl_mappings *m = NULL;
        _cleanup_free_ struct module *mods = NULL;
        _cleanup_json_ struct json_object *out = NULL;
        struct json_object *list = NULL;
        struct table t = { .n_columns = 3, .header = header, .right = right };
        size_t n, n_mods = 0;
        uint64_t start_time = 0;
        pid_t reply_pid = pid;
        int r;

        /* Not file-backed only: the vdso is a module too (an ELF image a symbolizer needs). */
        r = memctl_list_mappings(ctx->c, pid, arg.start_time, MEMCTL_BUILD_IDS, &m);
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, pid);
        (void) memctl_mappings_get_process(m, &reply_pid, &start_time);

        /* Group the mappings by file: (device, inode, path). Mappings come sorted by address
         * and a file's usually follow each other, so the last group is tried first. */
        n = memctl_mappings_count(m);
        mods = calloc(n > 0 ? n : 1, sizeof(*mods));
        if (!mods)
                return oom();
        for (size_t i = 0; i < n; i++) {
                struct memctl_mapping map = MEMCTL_MAPPING_INIT;
                struct module *mod = NULL;

                if (memctl_mappings_get(m, i, &map) < 0)
                        continue;
                if (map.kind == MEMCTL_KIND_VDSO && map.name)
                        map.path = map.name;
                if (!map.path)
                        continue;
                if (n_mods > 0 && module_matches(&mods[n_mods - 1], &map))
                        mod = &mods[n_mods - 1];
                for (size_t j = 0; !mod && j < n_mods; j++)
                        if (module_matches(&mods[j], &map))
                                mod = &mods[j];
                if (!mod) {
                        mod = &mods[n_mods++];
                        *mod = (struct module) {
                                .start = map.start, .end = map.end, .inode = map.inode,
                                .dev_major = map.dev_major, .dev_minor = map.dev_minor,
                                .path = map.path,
                        };
                }
                mod->start = MIN(mod->start, map.start);
                mod->end = MAX(mod->end, map.end);
                mod->deleted = mod->deleted || map.deleted;
                mod->exec = mod->exec || (map.flags & MEMCTL_MAPPING_EXEC);
                if (!mod->build_id)
                        mod->build_id = map.build_id_hex;
        }

        if (arg.json != JSON_OFF) {
                out = json_object_new_object();
                list = json_object_new_array();
                if (!out || !list || json_object_object_add(out, "process", process_params(reply_pid, start_time)) < 0 ||
                    json_object_object_add(out, "modules", list) < 0) {
                        json_object_put(list);
                        return oom();
                }
        }

        for (size_t i = 0; i < n_mods; i++) {
                const struct module *mod = &mods[i];

                /* An ELF file has a build ID or is mapped executable; data files (fonts,
                 * locale archives, caches) have neither. */
                if (!mod->build_id && !mod->exec)
                        continue;

                if (list) {
                        struct json_object *o = json_object_new_object();
                        char a[HEX_U64_MAX], b[HEX_U64_MAX];

                        if (!o || json_object_array_add(list, o) < 0) {
                                json_object_put(o);
                                return oom();
                        }
                        if (json_object_object_add(o, "start", json_object_new_string(format_hex_u64(mod->start, a))) < 0 ||
                            json_object_object_add(o, "end", json_object_new_string(format_hex_u64(mod->end, b))) < 0 ||
                            json_object_object_add(o, "build_id", mod->build_id ? json_object_new_string(mod->build_id) : NULL) < 0 ||
                            json_object_object_add(o, "path", json_object_new_string(mod->path)) < 0 ||
                            json_object_object_add(o, "deleted", json_object_new_boolean(mod->deleted)) < 0)
                                return oom();
                } else {
                        _cleanup_free_ char *joined = NULL, *shown = NULL;

                        if (asprintf(&joined, "%s%s", mod->path, mod->deleted ? " (deleted)" : "") < 0)
                                goto nomem;
                        shown = escape(joined);
                        if (!shown ||
                            table_addf(&t, "%012" PRIx64 "-%012" PRIx64, mod->start, mod->end) < 0 ||
                            table_addf(&t, "%s", mod->build_id ? mod->build_id : "-") < 0 ||
                            table_addf(&t, "%s", shown) < 0)
                                goto nomem;
                }
        }

        if (out) {
                const char *text = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN);

                return text ? print_json(text) : oom();
        }
        table_print(&t);
        table_done(&t);
        return EXIT_OK;

nomem:
        table_done(&t);
        return oom();
}

static void format_uptime(uint64_t usec, char buf[static 64]) {
        uint64_t s = usec / 1000000, d = s / 86400, h = s / 3600 % 24, min = s / 60 % 60;

        if (d > 0)
                snprintf(buf, 64, "%" PRIu64 "d %" PRIu64 "h %" PRIu64 "min", d, h, min);
        else if (h > 0)
                snprintf(buf, 64, "%" PRIu64 "h %" PRIu64 "min %" PRIu64 "s", h, min, s % 60);
        else if (min > 0)
                snprintf(buf, 64, "%" PRIu64 "min %" PRIu64 "s", min, s % 60);
        else
                snprintf(buf, 64, "%" PRIu64 ".%03" PRIu64 "s", s, usec / 1000 % 1000);
}

/* The vdso image, raw, to standard output: a file for readelf, eu-unstrip or a symbolizer. */
static int cmd_vdso(struct context *ctx, pid_t pid) {
        _cleanup_free_ uint8_t *image = NULL;
        size_t size = 0;
        int r;

        if (arg.json != JSON_OFF) {
                error("vdso writes the image itself: --json does not apply");
                return EXIT_USAGE;
        }
        r = memctl_get_vdso(ctx->c, pid, arg.start_time, &image, &size);
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, pid);
        if (fwrite(image, 1, size, stdout) != size || fflush(stdout) != 0) {
                error("cannot write the image: %m");
                return EXIT_FAIL;
        }
        return EXIT_OK;
}

/* The file mapped at address, as the process sees it, to standard output. */
static int cmd_cat(struct context *ctx, pid_t pid, uint64_t address) {
        _cleanup_close_ int fd = -1;
        char buf[64 * 1024];
        int r;

        if (arg.json != JSON_OFF) {
                error("cat writes the file itself: --json does not apply");
                return EXIT_USAGE;
        }
        r = memctl_open_mapping_file(ctx->c, pid, arg.start_time, address, &fd, NULL);
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, pid);
        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        error("cannot read the mapped file: %m");
                        return EXIT_FAIL;
                }
                if (n == 0)
                        break;
                if (fwrite(buf, 1, (size_t) n, stdout) != (size_t) n) {
                        error("cannot write output: %m");
                        return EXIT_FAIL;
                }
        }
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

static int cmd_status(struct context *ctx) {
        _cleanup_(memctl_status_freep) memctl_status *s = NULL;
        struct memctl_status_info i = MEMCTL_STATUS_INFO_INIT;
        _cleanup_free_ char *version = NULL, *kernel = NULL, *backend = NULL;
        char uptime[64], size[32], queue[32], held[32], budget[32], budget_uid[32];
        int r;

        if (arg.json != JSON_OFF) {
                _cleanup_free_ char *reply = NULL;

                r = call_json(ctx, "io.memmapd.GetStatus", NULL, 0, &reply);
                if (r != EXIT_OK)
                        return r;
                return print_json(reply);
        }

        r = memctl_get_status(ctx->c, &s);
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, 0);
        r = memctl_status_get_info(s, &i);
        if (r < 0)
                return oom();
        version = escape(i.version);
        kernel = escape(i.kernel);
        backend = escape(i.backend);
        if (!version || !kernel || !backend)
                return oom();
        format_uptime(i.uptime_usec, uptime);

        printf("     Socket: %s\n", ctx->path);
        printf("    Version: %s\n", version);
        printf("     Kernel: %s\n", kernel);
        printf("    Backend: %s\n", backend);
        printf("     Uptime: %s\n", uptime);
        printf("   Requests: %" PRIu64 " (%" PRIu64 " failed)\n", i.requests, i.errors);
        printf("  ELF cache: %" PRIu64 " entries, %" PRIu64 " hits, %" PRIu64 " misses\n",
               i.elf_cache_entries, i.elf_cache_hits, i.elf_cache_misses);
        printf("Connections: %" PRIu64 " (max %" PRIu64 ", %" PRIu64 " per user)\n",
               i.connections, i.max_connections, i.max_connections_per_uid);
        printf("     Limits: messages %s, %" PRIu64 " addresses per lookup, output queue %s,\n"
               "             JSON depth %" PRIu64 ", idle timeout %" PRIu64 "s\n",
               format_size(i.max_message_size, size), i.max_addresses,
               format_size(i.max_output_queue, queue), i.max_json_depth, i.idle_timeout_sec);
        printf("     Output: %s held (budget %s, %s per user)\n", format_size(i.output_held, held),
               format_size(i.output_budget, budget), format_size(i.output_budget_per_uid, budget_uid));
        printf(" Fair share: %" PRIu64 " oneway calls skipped, %" PRIu64 " connections parked, "
               "%" PRIu64 " slots reserved\n", i.oneway_skipped, i.parked, i.reserved_connections);
        printf("  File pool: %" PRIu64 " readers (%" PRIu64 " busy, %" PRIu64 " stuck), %" PRIu64 " timeouts, "
               "%" PRIu64 " refused\n", i.file_readers, i.file_readers_busy, i.file_readers_stuck,
               i.file_read_timeouts, i.file_reads_refused);
        return EXIT_OK;
}

/* ------------------------------------------------------------------ main */

enum {
        ARG_VERSION = 0x100,
        ARG_JSON,
        ARG_SOCKET,
        ARG_NO_LEGEND,
        ARG_START_TIME,
        ARG_EXEC_ONLY,
        ARG_FILES_ONLY,
        ARG_BUILD_IDS,
        ARG_NO_BUILD_IDS,
};

static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "json", optional_argument, NULL, ARG_JSON },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
                { "start-time", required_argument, NULL, ARG_START_TIME },
                { "exec-only", no_argument, NULL, ARG_EXEC_ONLY },
                { "files-only", no_argument, NULL, ARG_FILES_ONLY },
                { "build-ids", no_argument, NULL, ARG_BUILD_IDS },
                { "no-build-ids", no_argument, NULL, ARG_NO_BUILD_IDS },
                { "full", no_argument, NULL, 'l' },
                {}
        };
        int ch;

        opterr = 0;
        while ((ch = getopt_long(argc, argv, ":hl", options, NULL)) >= 0) {
                switch (ch) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        puts("memctl " MEMMAPD_VERSION);
                        return 0;
                case ARG_JSON:
                        if (!optarg || strcmp(optarg, "pretty") == 0)
                                arg.json = JSON_PRETTY;
                        else if (strcmp(optarg, "short") == 0)
                                arg.json = JSON_SHORT;
                        else {
                                error("invalid --json mode '%s' (expected pretty or short)", optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_SOCKET:
                        if (!*optarg) {
                                error("--socket needs a path");
                                return -EINVAL;
                        }
                        arg.socket = optarg;
                        break;
                case ARG_NO_LEGEND:
                        arg.legend = false;
                        break;
                case ARG_START_TIME:
                        if (parse_u64(optarg, &arg.start_time) < 0 || arg.start_time > INT64_MAX) {
                                error("invalid --start-time '%s' (expected clock ticks, decimal or 0x...)", optarg);
                                return -EINVAL;
                        }
                        arg.start_time_set = true;
                        break;
                case ARG_EXEC_ONLY:
                        arg.exec_only = true;
                        break;
                case ARG_FILES_ONLY:
                        arg.files_only = true;
                        break;
                case ARG_BUILD_IDS:
                        arg.build_ids = 1;
                        break;
                case ARG_NO_BUILD_IDS:
                        arg.build_ids = 0;
                        break;
                case 'l':
                        arg.full = true;
                        break;
                case ':':
                        error("option '%s' needs an argument", argv[optind - 1]);
                        return -EINVAL;
                default:
                        if (optopt && optopt < 0x100)
                                error("invalid option '-%c' (see --help)", optopt);
                        else
                                error("unknown option '%s' (see --help)", argv[optind - 1]);
                        return -EINVAL;
                }
        }
        return 1;
}

/* Options that only some commands take are an error elsewhere rather than silently ignored. */
static int check_options(const char *cmd) {
        bool maps = strcmp(cmd, "maps") == 0, lookup = strcmp(cmd, "lookup") == 0;
        bool status = strcmp(cmd, "status") == 0;

        if ((arg.exec_only || arg.files_only) && !maps) {
                error("--exec-only and --files-only apply to maps only");
                return -EINVAL;
        }
        if (arg.build_ids >= 0 && !maps && !lookup) {
                error("--build-ids and --no-build-ids apply to maps and lookup only");
                return -EINVAL;
        }
        if (arg.start_time_set && status) {
                error("--start-time does not apply to status");
                return -EINVAL;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_(memctl_freep) memctl *c = NULL;
        _cleanup_free_ char *default_path = NULL;
        _cleanup_free_ uint64_t *addresses_v = NULL;
        struct addresses addresses = {};
        struct context ctx = {};
        const char *cmd;
        char **args;
        size_t n_args;
        uint64_t cat_address = 0;
        pid_t pid = 0;
        int r;

        r = parse_argv(argc, argv);
        if (r < 0)
                return EXIT_USAGE;
        if (r == 0)
                return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;

        if (optind >= argc) {
                error("missing command (see --help)");
                return EXIT_USAGE;
        }
        cmd = argv[optind];
        args = argv + optind + 1;
        n_args = (size_t) (argc - optind - 1);

        if (strcmp(cmd, "maps") == 0 || strcmp(cmd, "modules") == 0 || strcmp(cmd, "vdso") == 0) {
                if (n_args != 1) {
                        error("%s takes one PID (see --help)", cmd);
                        return EXIT_USAGE;
                }
        } else if (strcmp(cmd, "lookup") == 0) {
                if (n_args < 1) {
                        error("lookup takes a PID and addresses (see --help)");
                        return EXIT_USAGE;
                }
        } else if (strcmp(cmd, "cat") == 0) {
                if (n_args != 2) {
                        error("cat takes a PID and an address (see --help)");
                        return EXIT_USAGE;
                }
        } else if (strcmp(cmd, "status") == 0) {
                if (n_args != 0) {
                        error("status takes no arguments");
                        return EXIT_USAGE;
                }
        } else {
                error("unknown command '%s' (see --help)", cmd);
                return EXIT_USAGE;
        }
        if (check_options(cmd) < 0)
                return EXIT_USAGE;
        if (n_args > 0 && parse_pid(args[0], &pid) < 0)
                return EXIT_USAGE;

        if (strcmp(cmd, "cat") == 0 && parse_address(args[1], &cat_address) < 0) {
                error("invalid address '%s' (expected 0x... or decimal)", args[1]);
                return EXIT_USAGE;
        }

        /* Read all input before connecting: a slow pipe must not hold a connection idle. */
        if (strcmp(cmd, "lookup") == 0) {
                bool from_stdin = n_args == 1;

                for (size_t i = 1; i < n_args; i++) {
                        uint64_t v;

                        if (strcmp(args[i], "-") == 0) {
                                from_stdin = true;
                                continue;
                        }
                        if (parse_address(args[i], &v) < 0) {
                                error("invalid address '%s' (expected 0x... or decimal)", args[i]);
                                r = EXIT_USAGE;
                                goto out;
                        }
                        if (addresses_push(&addresses, v) < 0) {
                                r = oom();
                                goto out;
                        }
                }
                if (from_stdin) {
                        r = read_addresses(stdin, &addresses);
                        if (r != EXIT_OK)
                                goto out;
                }
        }

        if (arg.socket)
                ctx.path = arg.socket;
        else {
                r = memctl_default_socket_path(&default_path);
                if (r < 0) {
                        r = oom();
                        goto out;
                }
                ctx.path = default_path;
        }
        r = memctl_connect(ctx.path, &c);
        if (r < 0) {
                r = connect_failed(ctx.path, r);
                goto out;
        }
        ctx.c = c;

        if (strcmp(cmd, "maps") == 0)
                r = cmd_maps(&ctx, pid);
        else if (strcmp(cmd, "modules") == 0)
                r = cmd_modules(&ctx, pid);
        else if (strcmp(cmd, "vdso") == 0)
                r = cmd_vdso(&ctx, pid);
        else if (strcmp(cmd, "cat") == 0)
                r = cmd_cat(&ctx, pid, cat_address);
        else if (strcmp(cmd, "lookup") == 0)
                r = cmd_lookup(&ctx, pid, &addresses);
        else
                r = cmd_status(&ctx);

out:
        addresses_v = addresses.v;
        if (fflush(stdout) != 0 || ferror(stdout)) {
                error("cannot write output: %m");
                if (r == EXIT_OK)
                        r = EXIT_FAIL;
        }
        return r;
}
