/* Parser for the text of /proc/PID/maps.
 *
 * The kernel prints each VMA as
 *
 *     "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu "
 *
 * then, when the VMA has a name, pads with spaces to a fixed column and prints the name, then
 * '\n'. Everything read here is treated as hostile: each column is checked exactly (one space
 * between columns, digit counts bounded so nothing can overflow), lines are bounded by
 * MAPS_LINE_MAX, and a NUL byte anywhere in a line makes it malformed.
 *
 * Choices the text format forces on us:
 *  - The name is the rest of the line after the padding spaces, verbatim (spaces, tabs, CRs,
 *    trailing spaces and all). Leading spaces of a name cannot be told from the padding, so
 *    they are lost; a line whose remainder after the inode is only spaces is anonymous.
 *  - The kernel escapes only '\n', as the four characters "\012". Exactly that sequence is
 *    turned back into '\n'; every other backslash is kept. A name that literally contains
 *    "\012" cannot be told from one that contains a newline.
 *  - Hex digits may be upper or lower case (the kernel prints lower case); addresses and the
 *    offset take 1..16 digits, device numbers 1..8, the inode 1..20 decimal digits without
 *    overflow. The kernel's minimum widths (%08lx, %02x) are not required.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "cleanup.h"
#include "mapping.h"
#include "maps-parse.h"
#include "number.h"

/* Each read asks for this much; the buffer also holds a carried partial line. */
#define MAPS_READ_CHUNK (128 * 1024)

/* Parses 1..max_digits (<= 16) hex digits at s[*i], stopping at the first non-hex byte. */
static int parse_hex(const char *s, size_t len, size_t *i, unsigned max_digits, uint64_t *ret) {
        uint64_t v = 0;
        unsigned n = 0;

        while (*i < len) {
                int d = unhexchar(s[*i]);

                if (d < 0)
                        break;
                if (n >= max_digits)
                        return -EINVAL;
                v = (v << 4) | (uint64_t) d;
                n++;
                (*i)++;
        }
        if (n == 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* Parses 1..20 decimal digits at s[*i] into a uint64_t, refusing overflow. */
static int parse_dec(const char *s, size_t len, size_t *i, uint64_t *ret) {
        uint64_t v = 0;
        unsigned n = 0;

        while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
                unsigned d = (unsigned) (s[*i] - '0');

                if (n >= 20 || v > (UINT64_MAX - d) / 10)
                        return -EINVAL;
                v = v * 10 + d;
                n++;
                (*i)++;
        }
        if (n == 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

static bool skip_char(const char *s, size_t len, size_t *i, char c) {
        if (*i >= len || s[*i] != c)
                return false;
        (*i)++;
        return true;
}

static int parse_perms(const char *s, size_t len, size_t *i, uint32_t *ret) {
        uint32_t f = 0;

        if (len - *i < 4)
                return -EINVAL;
        s += *i;

        if (s[0] == 'r')
                f |= MAPPING_READ;
        else if (s[0] != '-')
                return -EINVAL;
        if (s[1] == 'w')
                f |= MAPPING_WRITE;
        else if (s[1] != '-')
                return -EINVAL;
        if (s[2] == 'x')
                f |= MAPPING_EXEC;
        else if (s[2] != '-')
                return -EINVAL;
        if (s[3] == 's')
                f |= MAPPING_SHARED;
        else if (s[3] != 'p')
                return -EINVAL;

        *i += 4;
        *ret = f;
        return 0;
}

/* Copies the name, turning each "\012" into '\n'. The result is never longer than the input. */
static char *unescape_name(const char *s, size_t len) {
        char *r, *w;

        r = malloc(len + 1);
        if (!r)
                return NULL;
        w = r;
        for (size_t i = 0; i < len;) {
                if (s[i] == '\\' && len - i >= 4 && memcmp(s + i, "\\012", 4) == 0) {
                        *w++ = '\n';
                        i += 4;
                } else
                        *w++ = s[i++];
        }
        *w = 0;
        return r;
}

int maps_parse_line(const char *line, size_t len, struct mapping *ret) {
        struct mapping m = {};
        uint64_t major, minor;
        size_t i = 0;
        int r;

        if (!ret || (!line && len > 0))
                return -EINVAL;
        if (len == 0 || len > MAPS_LINE_MAX)
                return -EINVAL;
        if (memchr(line, 0, len))
                return -EINVAL;

        r = parse_hex(line, len, &i, 16, &m.start);
        if (r < 0 || !skip_char(line, len, &i, '-'))
                return -EINVAL;
        r = parse_hex(line, len, &i, 16, &m.end);
        if (r < 0 || !skip_char(line, len, &i, ' '))
                return -EINVAL;
        if (m.end < m.start)
                return -EINVAL;

        r = parse_perms(line, len, &i, &m.flags);
        if (r < 0 || !skip_char(line, len, &i, ' '))
                return -EINVAL;

        r = parse_hex(line, len, &i, 16, &m.offset);
        if (r < 0 || !skip_char(line, len, &i, ' '))
                return -EINVAL;

        r = parse_hex(line, len, &i, 8, &major);
        if (r < 0 || !skip_char(line, len, &i, ':'))
                return -EINVAL;
        r = parse_hex(line, len, &i, 8, &minor);
        if (r < 0 || !skip_char(line, len, &i, ' '))
                return -EINVAL;
        m.dev_major = (uint32_t) major;
        m.dev_minor = (uint32_t) minor;

        r = parse_dec(line, len, &i, &m.inode);
        if (r < 0)
                return -EINVAL;

        /* Anonymous lines may end right after the inode; otherwise a space must follow it, then
         * the padding, then the name (nothing but padding is anonymous too). */
        if (i < len) {
                if (!skip_char(line, len, &i, ' '))
                        return -EINVAL;
                while (i < len && line[i] == ' ')
                        i++;
        }
        if (i < len) {
                m.name = unescape_name(line + i, len - i);
                if (!m.name)
                        return -ENOMEM;
        }

        m.page_size = 0;
        m.build_id_len = 0;
        mapping_classify_name(&m);

        *ret = m;
        return 0;
}

/* Parses every '\n'-terminated line in buf into l; with final, also a last unterminated one.
 * *ret_consumed says how many bytes were used up (the start of an incomplete line otherwise). */
static int parse_lines(const char *buf, size_t len, bool final, struct mapping_list *l, size_t *ret_consumed) {
        size_t pos = 0;

        while (pos < len) {
                const char *nl = memchr(buf + pos, '\n', len - pos);
                size_t line_len;
                struct mapping m;
                int r;

                if (!nl && !final)
                        break;
                line_len = nl ? (size_t) (nl - (buf + pos)) : len - pos;
                if (line_len > MAPS_LINE_MAX)
                        return -EBADMSG;

                r = maps_parse_line(buf + pos, line_len, &m);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return -EBADMSG;

                r = mapping_list_push(l, &m);
                if (r < 0) {
                        mapping_done(&m);
                        return r;
                }

                pos += line_len + (nl ? 1 : 0);
        }

        *ret_consumed = pos;
        return 0;
}

/* Moves all of src to the end of dst and normalizes dst. Only the allocation can fail, and it
 * happens before dst is touched. */
static int list_append_normalize(struct mapping_list *dst, struct mapping_list *src) {
        if (dst->n == 0) {
                free(dst->items);
                *dst = *src;
                *src = (struct mapping_list) {};
        } else if (src->n > 0) {
                size_t need;

                if (src->n > SIZE_MAX / sizeof(struct mapping) - dst->n)
                        return -ENOMEM;
                need = dst->n + src->n;
                if (need > dst->allocated) {
                        struct mapping *p = realloc(dst->items, need * sizeof(struct mapping));

                        if (!p)
                                return -ENOMEM;
                        dst->items = p;
                        dst->allocated = need;
                }
                memcpy(dst->items + dst->n, src->items, src->n * sizeof(struct mapping));
                dst->n = need;
                /* The names now belong to dst: free only the array. */
                free(src->items);
                *src = (struct mapping_list) {};
        }

        mapping_list_normalize(dst);
        return 0;
}

int maps_parse_buffer(const char *text, size_t len, struct mapping_list *ret) {
        _cleanup_(mapping_list_done) struct mapping_list l = {};
        size_t consumed;
        int r;

        if (!ret || (!text && len > 0))
                return -EINVAL;

        r = parse_lines(text, len, true, &l, &consumed);
        if (r < 0)
                return r;

        return list_append_normalize(ret, &l);
}

int maps_read_fd(int fd, struct mapping_list *ret) {
        _cleanup_(mapping_list_done) struct mapping_list l = {};
        _cleanup_free_ char *buf = NULL;
        size_t used = 0, consumed;
        bool use_read = false;
        off_t off = 0;
        int r;

        if (fd < 0)
                return -EBADF;
        if (!ret)
                return -EINVAL;

        /* Room for a whole chunk after the longest partial line that can be carried over. */
        buf = malloc(MAPS_READ_CHUNK + MAPS_LINE_MAX);
        if (!buf)
                return -ENOMEM;

        for (;;) {
                ssize_t n;

                if (use_read)
                        n = RETRY_EINTR(read(fd, buf + used, MAPS_READ_CHUNK));
                else {
                        n = RETRY_EINTR(pread(fd, buf + used, MAPS_READ_CHUNK, off));
                        /* Not seekable (a pipe): nothing was consumed yet, read it as a stream. */
                        if (n < 0 && errno == ESPIPE && off == 0) {
                                use_read = true;
                                continue;
                        }
                }
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                if ((size_t) n > MAPS_READ_CHUNK)
                        return -EIO;

                off += n;
                used += (size_t) n;

                r = parse_lines(buf, used, false, &l, &consumed);
                if (r < 0)
                        return r;
                used -= consumed;
                if (used > MAPS_LINE_MAX)
                        return -EBADMSG;
                memmove(buf, buf + consumed, used);
        }

        r = parse_lines(buf, used, true, &l, &consumed);
        if (r < 0)
                return r;

        return list_append_normalize(ret, &l);
}
