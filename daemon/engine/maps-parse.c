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

#include <errno.h>
#include <pthread.h>
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
        size_t j = *i, stop = len - j > max_digits ? j + max_digits : len;
        uint64_t v = 0;
        unsigned d;

        for (; j < stop && (d = hex_value1[(uint8_t) s[j]]) != 0; j++)
                v = (v << 4) | (d - 1);
        if (j == *i || (j < len && hex_value1[(uint8_t) s[j]] != 0))
                return -EINVAL; /* no digit, or one digit too many */
        *i = j;
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

static int parse_perms(const char *s, size_t len, size_t *i, uint8_t *ret) {
        unsigned f;

        if (len - *i < 4 || perms_parse(s + *i, &f) < 0)
                return -EINVAL;
        *i += 4;
        *ret = (uint8_t) f;
        return 0;
}

/* Turns each "\012" of s[0..len) into '\n' in place; returns the new length (never longer). */
static size_t unescape_in_place(char *s, size_t len) {
        char *w = memchr(s, '\\', len);
        size_t i;

        if (!w)
                return len;
        for (i = (size_t) (w - s); i < len;) {
                if (s[i] == '\\' && len - i >= 4 && memcmp(s + i, "\\012", 4) == 0) {
                        *w++ = '\n';
                        i += 4;
                } else
                        *w++ = s[i++];
        }
        return (size_t) (w - s);
}

/* Parses the columns of a line into *ret (name NULL, classified anonymous) and sets *ret_name
 * to the offset of the name, len when there is none. Only a name can hold a NUL byte: every
 * column byte is checked against the few it may be. */
static int parse_columns(const char *line, size_t len, struct mapping *ret, size_t *ret_name) {
        struct mapping m = {};
        uint64_t major, minor;
        size_t i = 0;
        int r;

        if (len == 0 || len > MAPS_LINE_MAX)
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
        if (i < len && memchr(line + i, 0, len - i))
                return -EINVAL;

        m.kind = MAPPING_KIND_ANONYMOUS;
        *ret = m;
        *ret_name = i;
        return 0;
}

int maps_parse_line(const char *line, size_t len, struct mapping *ret) {
        struct mapping m;
        size_t name;
        int r;

        if (!ret || (!line && len > 0))
                return -EINVAL;
        r = parse_columns(line, len, &m, &name);
        if (r < 0)
                return r;
        if (name < len) {
                m.name = malloc(len - name + 1);
                if (!m.name)
                        return -ENOMEM;
                memcpy(m.name, line + name, len - name);
                m.name[unescape_in_place(m.name, len - name)] = 0;
                mapping_classify_name(&m);
        }

        *ret = m;
        return 0;
}

/* Parses the line at line[0..len) in place (its name is unescaped and NUL-terminated there:
 * line[len] must be writable) and hands it to visit. */
static int visit_line(char *line, size_t len, mapping_visit_t visit, void *userdata) {
        struct mapping m;
        size_t name;
        int r;

        r = parse_columns(line, len, &m, &name);
        if (r < 0)
                return -EBADMSG;
        if (name < len) {
                m.name = line + name;
                m.name[unescape_in_place(m.name, len - name)] = 0;
                mapping_classify_name(&m);
        }
        return visit(&m, userdata);
}

/* Visits every '\n'-terminated line of buf[0..len); with final, also a last unterminated one
 * (buf[len] must be writable then). *ret_consumed says how many bytes were used up (the start
 * of an incomplete line otherwise). */
static int visit_lines(char *buf, size_t len, bool final, mapping_visit_t visit, void *userdata,
                       size_t *ret_consumed) {
        size_t pos = 0;

        while (pos < len) {
                char *nl = memchr(buf + pos, '\n', len - pos);
                size_t line_len;
                int r;

                if (!nl && !final)
                        break;
                line_len = nl ? (size_t) (nl - (buf + pos)) : len - pos;
                if (line_len > MAPS_LINE_MAX)
                        return -EBADMSG;

                r = visit_line(buf + pos, line_len, visit, userdata);
                if (r < 0)
                        return r;

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
        _cleanup_free_ char *copy = NULL;
        size_t consumed;
        int r;

        if (!ret || (!text && len > 0))
                return -EINVAL;
        if (len == SIZE_MAX)
                return -ENOMEM;

        /* Lines are parsed in place. */
        copy = malloc(len + 1);
        if (!copy)
                return -ENOMEM;
        if (len > 0)
                memcpy(copy, text, len);
        r = visit_lines(copy, len, true, mapping_list_push_visit, &l, &consumed);
        if (r < 0)
                return r;

        return list_append_normalize(ret, &l);
}

/* Read-ahead for large maps texts. The kernel's generation of the text was over half of a
 * 60,000-mapping listing, parsing and writing the reply the rest, one after the other, while
 * the client waiting for the reply left the other CPU idle. Once the text runs past a few
 * pages, a thread keeps reading the next chunks into a small ring while the caller parses:
 * the two halves overlap. The thread only ever pread()s the already open fd (whatever
 * credentials it has, the kernel checked access at open()). */
#define PREFETCH_SLOTS 4
#define PREFETCH_STACK (64 * 1024)
#define PREFETCH_AFTER (16 * 1024)

struct prefetch {
        int fd;
        off_t off;                      /* the reader's next offset */
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;            /* any change of full[] or stop */
        char *slots;                    /* PREFETCH_SLOTS chunks */
        ssize_t len[PREFETCH_SLOTS];    /* bytes read, 0 at the end, -errno */
        bool full[PREFETCH_SLOTS];
        bool stop;
};

static void *prefetch_main(void *userdata) {
        struct prefetch *p = userdata;
        bool end = false;

        for (unsigned i = 0; !end; i = (i + 1) % PREFETCH_SLOTS) {
                pthread_mutex_lock(&p->lock);
                while (p->full[i] && !p->stop)
                        pthread_cond_wait(&p->cond, &p->lock);
                if (p->stop) {
                        pthread_mutex_unlock(&p->lock);
                        break;
                }
                pthread_mutex_unlock(&p->lock);

                /* The kernel hands out the text a page at a time: fill the whole slot, so the
                 * two threads meet once per chunk, not once per page. */
                size_t filled = 0;
                ssize_t n = 0;
                while (filled < MAPS_READ_CHUNK) {
                        n = RETRY_EINTR(pread(p->fd, p->slots + (size_t) i * MAPS_READ_CHUNK + filled,
                                              MAPS_READ_CHUNK - filled, p->off));
                        if (n <= 0)
                                break;
                        filled += (size_t) n;
                        p->off += n;
                }
                /* An error or the end goes in a slot of its own, after the bytes before it. */
                if (n < 0 && filled == 0)
                        n = -errno;
                end = n <= 0 && filled == 0;
                pthread_mutex_lock(&p->lock);
                p->len[i] = filled > 0 ? (ssize_t) filled : n;
                p->full[i] = true;
                pthread_cond_broadcast(&p->cond);
                pthread_mutex_unlock(&p->lock);
        }
        return NULL;
}

/* Starts reading ahead from off; NULL (read on without it) when a thread cannot be had. */
static struct prefetch *prefetch_start(int fd, off_t off) {
        _cleanup_free_ struct prefetch *p = calloc(1, sizeof(*p));
        pthread_attr_t attr;
        int r;

        if (!p)
                return NULL;
        p->slots = malloc((size_t) PREFETCH_SLOTS * MAPS_READ_CHUNK);
        if (!p->slots)
                return NULL;
        p->fd = fd;
        p->off = off;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->cond, NULL);
        r = pthread_attr_init(&attr);
        if (r == 0) {
                (void) pthread_attr_setstacksize(&attr, PREFETCH_STACK);
                r = pthread_create(&p->thread, &attr, prefetch_main, p);
                pthread_attr_destroy(&attr);
        }
        if (r != 0) {
                pthread_mutex_destroy(&p->lock);
                pthread_cond_destroy(&p->cond);
                free(p->slots);
                return NULL;
        }
        return TAKE_PTR(p);
}

/* The next chunk, copied to dst: its length, 0 at the end, or -errno. */
static ssize_t prefetch_next(struct prefetch *p, unsigned *slot, char *dst) {
        unsigned i = *slot;
        ssize_t n;

        pthread_mutex_lock(&p->lock);
        while (!p->full[i])
                pthread_cond_wait(&p->cond, &p->lock);
        n = p->len[i];
        pthread_mutex_unlock(&p->lock);
        if (n <= 0)
                return n;

        memcpy(dst, p->slots + (size_t) i * MAPS_READ_CHUNK, (size_t) n);
        pthread_mutex_lock(&p->lock);
        p->full[i] = false;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        *slot = (i + 1) % PREFETCH_SLOTS;
        return n;
}

static void prefetch_stop(struct prefetch **pp) {
        struct prefetch *p = *pp;

        if (!p)
                return;
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->cond);
        free(p->slots);
        free(p);
        *pp = NULL;
}

int maps_read_each(int fd, mapping_visit_t visit, void *userdata) {
        _cleanup_(prefetch_stop) struct prefetch *ahead = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t used = 0, consumed;
        bool use_read = false;
        unsigned slot = 0;
        off_t off = 0;
        int r;

        if (fd < 0)
                return -EBADF;
        if (!visit)
                return -EINVAL;

        /* Room for a whole chunk after the longest partial line that can be carried over, and
         * for the NUL that ends a last line without '\n'. */
        buf = malloc(MAPS_READ_CHUNK + MAPS_LINE_MAX + 1);
        if (!buf)
                return -ENOMEM;

        for (;;) {
                ssize_t n;

                if (ahead) {
                        n = prefetch_next(ahead, &slot, buf + used);
                        if (n < 0) {
                                errno = (int) -n;
                                n = -1;
                        }
                } else if (use_read)
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
                /* Past a few pages there is likely much more (the kernel gives a page per
                 * read): read it while this is parsed. Small processes never pay for a thread. */
                if (!ahead && !use_read && off >= PREFETCH_AFTER)
                        ahead = prefetch_start(fd, off);

                r = visit_lines(buf, used, false, visit, userdata, &consumed);
                if (r < 0)
                        return r;
                used -= consumed;
                if (used > MAPS_LINE_MAX)
                        return -EBADMSG;
                memmove(buf, buf + consumed, used);
        }

        return visit_lines(buf, used, true, visit, userdata, &consumed);
}

int maps_read_fd(int fd, struct mapping_list *ret) {
        _cleanup_(mapping_list_done) struct mapping_list l = {};
        int r;

        if (fd < 0)
                return -EBADF;
        if (!ret)
                return -EINVAL;

        r = maps_read_each(fd, mapping_list_push_visit, &l);
        if (r < 0)
                return r;

        return list_append_normalize(ret, &l);
}
