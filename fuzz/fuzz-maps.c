/* Fuzz target: the /proc/PID/maps parser, line by line (maps_parse_line), as a whole text
 * (maps_parse_buffer) and read from a file (maps_read_fd), which must all agree. A line that
 * parses must print back, in the kernel's format, to a line that parses to the same mapping; a
 * parsed list must be sorted and non-overlapping and may drop a mapping only for an empty range
 * or an overlap. The input is the maps text itself. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h> /* ssize_t, which mapping.h uses without including it */
#include <unistd.h>

#include "fuzz.h"
#include "mapping.h"
#include "maps-parse.h"

struct range {
        uint64_t start, end;
};

static bool mapping_equal(const struct mapping *a, const struct mapping *b) {
        if (a->start != b->start || a->end != b->end || a->offset != b->offset || a->inode != b->inode ||
            a->dev_major != b->dev_major || a->dev_minor != b->dev_minor || a->flags != b->flags ||
            a->page_size != b->page_size || a->kind != b->kind || a->deleted != b->deleted ||
            a->build_id_len != b->build_id_len)
                return false;
        if (!a->name || !b->name)
                return !a->name && !b->name;
        return strcmp(a->name, b->name) == 0;
}

/* Prints m as the kernel would (minimal digits, one space of padding, '\n' as "\012"). */
static char *format_line(const struct mapping *m, size_t *ret_len) {
        size_t name_len = m->name ? strlen(m->name) : 0, cap = 128 + 4 * name_len, len;
        char perms[5], *buf = malloc(cap);

        FUZZ_CHECK(buf);
        len = (size_t) snprintf(buf, cap, "%" PRIx64 "-%" PRIx64 " %s %" PRIx64 " %x:%x %" PRIu64, m->start, m->end,
                                perms_format(m->flags, perms), m->offset, m->dev_major, m->dev_minor,
                                m->inode);
        FUZZ_CHECK(len < 128);
        if (m->name) {
                buf[len++] = ' ';
                for (size_t i = 0; i < name_len; i++) {
                        if (m->name[i] == '\n') {
                                memcpy(buf + len, "\\012", 4);
                                len += 4;
                        } else
                                buf[len++] = m->name[i];
                }
        }
        *ret_len = len;
        return buf;
}

/* Parses one line and checks what came out. Returns 1 (parsed, *ret set), 0 (malformed), or
 * -ENOMEM. */
static int check_line(const char *line, size_t len, struct range *ret) {
        struct mapping m, saved, again;
        char *text;
        size_t text_len;
        bool deleted, hugepage;
        int r;

        memset(&m, 0xa5, sizeof(m));
        saved = m;
        r = maps_parse_line(line, len, &m);
        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
        if (r < 0) {
                FUZZ_CHECK(memcmp(&m, &saved, sizeof(m)) == 0);
                return r == -ENOMEM ? r : 0;
        }

        FUZZ_CHECK(len > 0 && len <= MAPS_LINE_MAX);
        FUZZ_CHECK(m.start <= m.end);
        FUZZ_CHECK((m.flags & ~(uint32_t) (MAPPING_READ | MAPPING_WRITE | MAPPING_EXEC | MAPPING_SHARED)) == 0);
        FUZZ_CHECK(m.page_size == 0 && m.build_id_len == 0);
        if (m.name) {
                size_t n = strlen(m.name);

                FUZZ_CHECK(n > 0 && n <= len && m.name[0] != ' ');
                FUZZ_CHECK(mapping_path_len(&m) <= n);
        }
        /* The kernel's name for anonymous MAP_HUGETLB memory, on its internal mount (device
         * major 0), is anonymous memory; the same name on a real device is a file. */
        hugepage = m.name && m.dev_major == 0 && strcmp(m.name, "/anon_hugepage (deleted)") == 0;
        if (hugepage)
                FUZZ_CHECK(m.kind == MAPPING_KIND_ANONYMOUS && !m.deleted);
        else
                FUZZ_CHECK(m.kind == mapping_classify(m.name, &deleted) && m.deleted == deleted);
        FUZZ_CHECK(mapping_kind_to_string(m.kind));
        FUZZ_CHECK((m.kind == MAPPING_KIND_ANONYMOUS) == (!m.name || hugepage));

        /* Printed back, it reads the same; the text is never longer than the line it came from. */
        text = format_line(&m, &text_len);
        FUZZ_CHECK(text_len <= len);
        r = maps_parse_line(text, text_len, &again);
        FUZZ_CHECK(r == 0 || r == -ENOMEM);
        if (r == 0) {
                FUZZ_CHECK(mapping_equal(&m, &again));
                mapping_done(&again);
        }
        free(text);

        *ret = (struct range) { m.start, m.end };
        mapping_done(&m);
        return r < 0 ? r : 1;
}

static void check_list(const struct mapping_list *l) {
        for (size_t i = 0; i < l->n; i++) {
                const struct mapping *m = &l->items[i];

                FUZZ_CHECK(m->start < m->end);
                if (i > 0)
                        FUZZ_CHECK(l->items[i - 1].end <= m->start);
                FUZZ_CHECK(mapping_list_find(l, m->start) == (ssize_t) i);
                FUZZ_CHECK(mapping_list_find(l, m->end - 1) == (ssize_t) i);
                if (m->start > 0 && (i == 0 || l->items[i - 1].end < m->start))
                        FUZZ_CHECK(mapping_list_find(l, m->start - 1) == -1);
        }
        FUZZ_CHECK(l->n <= l->allocated || l->allocated == 0);
}

static bool lists_equal(const struct mapping_list *a, const struct mapping_list *b) {
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (!mapping_equal(&a->items[i], &b->items[i]))
                        return false;
        return true;
}

/* The text as a stream of small reads: each packet of a SOCK_SEQPACKET pair is one read(), so
 * lines split across reads (and carried over) are reachable with small inputs. Chunk sizes come
 * from a generator seeded by the input. Returns -1 when the socket cannot queue it all. */
static int read_packets(const uint8_t *data, size_t size, struct mapping_list *ret) {
        uint32_t state = (uint32_t) size * 0x9e3779b1u ^ (size > 0 ? data[size / 2] : 0);
        size_t pos = 0, max_chunk = size / 32 + 1;
        int sv[2], r = -1;

        FUZZ_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
        /* Room for every packet (root may exceed wmem_max); harmless where it fails. */
        (void) setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &(int) { 16 << 20 }, sizeof(int));
        while (pos < size) {
                size_t chunk = 1 + fuzz_rand(&state) % max_chunk;

                if (chunk > size - pos)
                        chunk = size - pos;
                if (send(sv[0], data + pos, chunk, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t) chunk)
                        goto out;
                pos += chunk;
        }
        close(sv[0]);
        sv[0] = -1;
        r = maps_read_fd(sv[1], ret);
out:
        if (sv[0] >= 0)
                close(sv[0]);
        close(sv[1]);
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *text = (const char *) data;
        struct mapping_list l = {}, from_fd = {};
        struct range *ranges;
        size_t pos = 0, n_lines = 0, n_ok = 0;
        bool all_ok = true;
        int r;

        ranges = malloc((size + 1) * sizeof(*ranges));
        FUZZ_CHECK(ranges);

        /* Lines as maps_parse_buffer() splits them: a trailing '\n' starts no further line. */
        while (pos < size) {
                const char *nl = memchr(text + pos, '\n', size - pos);
                size_t len = nl ? (size_t) (nl - (text + pos)) : size - pos;

                r = check_line(text + pos, len, &ranges[n_ok]);
                if (r == -ENOMEM)
                        goto out;
                if (r > 0)
                        n_ok++;
                else
                        all_ok = false;
                n_lines++;
                pos += len + (nl ? 1 : 0);
        }
        FUZZ_CHECK(maps_parse_line(NULL, 0, &(struct mapping) {}) == -EINVAL);

        r = maps_parse_buffer(text, size, &l);
        if (r == -ENOMEM)
                goto out;
        FUZZ_CHECK(r == 0 || r == -EBADMSG);
        FUZZ_CHECK((r == 0) == all_ok);
        if (r < 0) {
                FUZZ_CHECK(l.n == 0 && !l.items);
                goto out;
        }

        check_list(&l);
        FUZZ_CHECK(l.n <= n_lines);
        /* Nothing dropped without a reason: each non-empty line's range meets a kept mapping. */
        for (size_t i = 0; i < n_ok; i++) {
                bool met = ranges[i].end <= ranges[i].start;

                for (size_t j = 0; j < l.n && !met; j++)
                        met = l.items[j].start < ranges[i].end && ranges[i].start < l.items[j].end;
                FUZZ_CHECK(met);
        }

        /* Read from a file in chunks, the same text makes the same list. */
        r = maps_read_fd(fuzz_memfd(data, size), &from_fd);
        if (r == -ENOMEM)
                goto out;
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(lists_equal(&l, &from_fd));

        /* Read in small pieces, the same again. */
        {
                struct mapping_list packets = {};

                r = read_packets(data, size, &packets);
                FUZZ_CHECK(r == 0 || r == -1 || r == -ENOMEM);
                if (r == 0)
                        FUZZ_CHECK(lists_equal(&l, &packets));
                mapping_list_done(&packets);
        }

        /* Appending the same lines again keeps the list normalized and covering the same ranges. */
        r = maps_parse_buffer(text, size, &from_fd);
        if (r == -ENOMEM)
                goto out;
        FUZZ_CHECK(r == 0);
        check_list(&from_fd);
        FUZZ_CHECK(from_fd.n == l.n);
        for (size_t i = 0; i < l.n; i++)
                FUZZ_CHECK(from_fd.items[i].start == l.items[i].start && from_fd.items[i].end == l.items[i].end);

out:
        mapping_list_done(&l);
        mapping_list_done(&from_fd);
        free(ranges);
        return 0;
}
