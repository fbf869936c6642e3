/* How memctl shows answers: aligned tables, escaped names, sizes, JSON as --json asks. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "json-writer.h"
#include "memctl-cli.h"
#include "memctl-output.h"
#include "memmapd-codec.h"
#include "utf8.h"

void table_done(struct table *t) {
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
}

/* Appends a cell: rows fill from left to right. */
_printf_(2, 3) int table_addf(struct table *t, const char *fmt, ...) {
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

void table_print(const struct table *t) {
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
char *escape(const char *s) {
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

const char *mapping_exact_path(const struct memctl_mapping *m) {
        return m->path_exact ? m->path_exact : m->path;
}

/* What a table shows for a mapping: the path of files, the kernel's name of the rest. */
char *mapping_display_name(const struct memctl_mapping *m) {
        _cleanup_free_ char *joined = NULL;

        if (m->kind == MEMCTL_KIND_FILE && m->path) {
                if (asprintf(&joined, "%s%s", mapping_exact_path(m), m->deleted ? " (deleted)" : "") < 0)
                        return NULL;
                return escape(joined);
        }
        if (m->name)
                return escape(name_of(m));
        if (m->path)
                return escape(mapping_exact_path(m));
        return strdup("[anon]");
}

/* 4K, 132K, 2.0M, 17M, 1.5G: kilobytes as integers, larger units with one decimal below 10. */
const char *format_size(uint64_t v, char buf[static 32]) {
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

const char *build_id_display(const struct memctl_mapping *m) {
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

int print_json(const char *text) {
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
                .path = mapping_exact_path(m),
                .path_len = m->path ? strlen(mapping_exact_path(m)) : 0,
                .has_deleted = m->kind == MEMCTL_KIND_FILE,
                .deleted = m->deleted,
                .build_id = m->build_id,
                .build_id_len = m->build_id ? m->build_id_size : 0,
        });
}

/* A Lookup reply as JSON ({"process", "mappings", "results"}), written with the streaming
 * writer the daemon uses. */
int print_lookup_json(const memctl_lookup_reply *l) {
        _cleanup_(json_writer_done) struct json_writer w;
        _cleanup_free_ char *text = NULL;
        struct memctl_process p = MEMCTL_PROCESS_INIT;
        size_t len;

        json_writer_init(&w, SIZE_MAX);
        (void) json_writer_reserve(&w, 200 * memctl_lookup_reply_mapping_count(l) + 100 * memctl_lookup_reply_count(l));
        (void) memctl_lookup_reply_get_process_info(l, &p);
        json_writer_object_begin(&w);
        if (p.exited)
                memmapd_write_process_exited(&w, p.pid, p.start_time);
        else
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
                        .symbol = res.symbol,
                        .symbol_offset = res.symbol_offset,
                        .symbol_size_unknown = res.symbol_size_unknown,
                });
        }
        json_writer_array_end(&w);
        json_writer_object_end(&w);
        if (json_writer_finish(&w, &text, &len) < 0)
                return oom();
        return print_json_text(text, len);
}
