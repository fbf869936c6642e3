/* Varlink framing: splitting NUL-terminated messages out of a byte stream, and queued output. */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cleanup.h"
#include "varlink-frame.h"

/* One read_fd() asks for at least this much room. */
#define READER_READ_CHUNK ((size_t) 64 * 1024)
#define READER_INITIAL_SIZE ((size_t) 4096)
/* Keeps max_message + 1 + READER_READ_CHUNK and friends far from overflowing. */
#define READER_MAX_MESSAGE_LIMIT (SIZE_MAX / 4)
/* Chunks handed to one sendmsg(). */
#define WRITER_IOV_MAX 16

struct varlink_out_chunk {
        struct varlink_out_chunk *next;
        char *data;
        size_t len;
        int fd;              /* passed with the chunk's first byte; -1: none */
};

static void chunk_free(struct varlink_out_chunk *c) {
        free(c->data);
        closep(&c->fd);
        free(c);
}

/* ---------------------------------------------------------------- reader */

void varlink_reader_init(struct varlink_reader *r, size_t max_message) {
        *r = (struct varlink_reader) {
                .max_message = MIN(max_message, READER_MAX_MESSAGE_LIMIT),
        };
}

void varlink_reader_done(struct varlink_reader *r) {
        if (!r)
                return;
        free(r->buf);
        *r = (struct varlink_reader) {
                .max_message = r->max_message,
        };
}

/* The reader is broken once the message at r->consumed was found to be too large: scanned
 * is then left above max_message, which no healthy state has. */
static bool reader_broken(const struct varlink_reader *r) {
        return r->scanned > r->max_message;
}

/* Looks for the NUL ending the message that starts at r->consumed, continuing where the last
 * search stopped and never looking further than a valid message could reach. Returns 1 with
 * the NUL at r->buf[r->consumed + r->scanned], 0 when it has not arrived yet, -EMSGSIZE. */
static int reader_scan(struct varlink_reader *r) {
        size_t avail, limit;

        if (reader_broken(r))
                return -EMSGSIZE;

        avail = r->len - r->consumed;
        limit = MIN(avail, r->max_message + 1);
        if (r->scanned < limit) {
                const char *start = r->buf + r->consumed;
                const char *nul = memchr(start + r->scanned, 0, limit - r->scanned);

                if (nul) {
                        r->scanned = (size_t) (nul - start);
                        return 1;
                }
                r->scanned = limit;
        }

        /* max_message + 1 bytes and still no NUL: too large, whatever follows. */
        return reader_broken(r) ? -EMSGSIZE : 0;
}

/* Drops everything when all of it was handed out (cheap, no copy). */
static void reader_maybe_rewind(struct varlink_reader *r) {
        if (r->consumed > 0 && r->consumed == r->len) {
                r->consumed = 0;
                r->len = 0;
                r->scanned = 0;
        }
}

/* Makes room for n more bytes at r->buf + r->len. Bytes already handed out are dropped by
 * moving the rest down, lazily: only when room is needed, and only when that copies no more
 * than was consumed or growing would pass the bound. With a caller that drains next() after
 * every read, what is moved is the start of one incomplete message, which is consumed before
 * the next move: every byte is moved at most once, so the copying stays linear. */
static int reader_make_room(struct varlink_reader *r, size_t n) {
        size_t keep, need, a, bound;
        char *p;

        if (r->allocated - r->len >= n)
                return 0;

        keep = r->len - r->consumed;
        bound = r->max_message + 1 + READER_READ_CHUNK;

        if (r->consumed > 0 && (r->consumed >= keep || n > SIZE_MAX - r->len || r->len + n > bound)) {
                memmove(r->buf, r->buf + r->consumed, keep);
                r->len = keep;
                r->consumed = 0;
                if (r->allocated - r->len >= n)
                        return 0;
        }

        if (n > SIZE_MAX - r->len)
                return -ENOMEM;
        need = r->len + n;

        a = MAX(r->allocated, READER_INITIAL_SIZE);
        while (a < need) {
                if (a > SIZE_MAX / 2) {
                        a = need;
                        break;
                }
                a *= 2;
        }
        /* Doubling must not overshoot what a valid message plus one read can need. */
        if (a > bound)
                a = MAX(need, bound);

        p = realloc(r->buf, a);
        if (!p)
                return -ENOMEM;
        r->buf = p;
        r->allocated = a;
        return 0;
}

int varlink_reader_feed(struct varlink_reader *r, const void *data, size_t n) {
        int k;

        if (reader_broken(r))
                return -EMSGSIZE;
        if (n == 0)
                return 0;
        if (!data)
                return -EINVAL;

        reader_maybe_rewind(r);
        k = reader_make_room(r, n);
        if (k < 0)
                return k;
        memcpy(r->buf + r->len, data, n);
        r->len += n;

        k = reader_scan(r);
        return k < 0 ? k : 0;
}

ssize_t varlink_reader_read_fd(struct varlink_reader *r, int fd) {
        ssize_t n;
        int k;

        if (reader_broken(r))
                return -EMSGSIZE;

        reader_maybe_rewind(r);
        k = reader_make_room(r, READER_READ_CHUNK);
        if (k < 0)
                return k;

        n = RETRY_EINTR(read(fd, r->buf + r->len, r->allocated - r->len));
        if (n < 0)
                return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        if (n == 0)
                return 0;
        r->len += (size_t) n;

        k = reader_scan(r);
        return k < 0 ? k : n;
}

int varlink_reader_next(struct varlink_reader *r, const char **ret, size_t *ret_len) {
        const char *msg;
        size_t msg_len;
        int k;

        reader_maybe_rewind(r);
        k = reader_scan(r);
        if (k <= 0)
                return k;

        msg = r->buf + r->consumed;
        msg_len = r->scanned;
        r->consumed += msg_len + 1;
        r->scanned = 0;

        *ret = msg;
        if (ret_len)
                *ret_len = msg_len;
        return 1;
}

void varlink_reader_trim(struct varlink_reader *r, size_t keep) {
        if (r->len == r->consumed && r->allocated > keep)
                varlink_reader_done(r);
}

bool varlink_reader_has_partial(const struct varlink_reader *r) {
        return r->len > r->consumed;
}

/* ---------------------------------------------------------------- writer */

void varlink_writer_init(struct varlink_writer *w) {
        *w = (struct varlink_writer) {};
}

void varlink_writer_done(struct varlink_writer *w) {
        struct varlink_out_chunk *c, *next;

        if (!w)
                return;
        for (c = w->head; c; c = next) {
                next = c->next;
                chunk_free(c);
        }
        varlink_writer_init(w);
}

int varlink_writer_queue_fd(struct varlink_writer *w, char *data, size_t len, int fd) {
        struct varlink_out_chunk *c;

        if (!data) {
                closep(&fd);
                return -EINVAL;
        }
        if (len == 0 || data[len - 1] != '\0' || len > SIZE_MAX - w->pending) {
                free(data);
                closep(&fd);
                return -EINVAL;
        }

        c = malloc(sizeof(*c));
        if (!c) {
                free(data);
                closep(&fd);
                return -ENOMEM;
        }
        *c = (struct varlink_out_chunk) {
                .data = data,
                .len = len,
                .fd = fd < 0 ? -1 : fd,
        };

        if (w->tail)
                w->tail->next = c;
        else
                w->head = c;
        w->tail = c;
        w->pending += len;
        return 0;
}

int varlink_writer_queue(struct varlink_writer *w, char *data, size_t len) {
        return varlink_writer_queue_fd(w, data, len, -1);
}

/* Drops n written bytes from the front of the queue. */
static void writer_advance(struct varlink_writer *w, size_t n) {
        w->pending -= n;
        while (n > 0 && w->head) {
                struct varlink_out_chunk *c = w->head;
                size_t left = c->len - w->head_offset;

                if (n < left) {
                        w->head_offset += n;
                        return;
                }
                n -= left;
                w->head = c->next;
                if (!w->head)
                        w->tail = NULL;
                w->head_offset = 0;
                chunk_free(c);
        }
}

int varlink_writer_flush(struct varlink_writer *w, int fd) {
        while (w->head) {
                struct iovec iov[WRITER_IOV_MAX];
                struct msghdr mh = {};
                size_t n = 0;
                ssize_t k;

                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(int))];
                } control = {};
                bool passing = w->head->fd >= 0 && w->head_offset == 0;

                /* An fd travels with the first byte of its message and no other (the receiver
                 * takes it with the recvmsg() that reads that byte): a later chunk with an fd
                 * starts a sendmsg() of its own. */
                for (struct varlink_out_chunk *c = w->head; c && n < WRITER_IOV_MAX; c = c->next) {
                        size_t off = c == w->head ? w->head_offset : 0;

                        if (c != w->head && c->fd >= 0)
                                break;
                        iov[n].iov_base = c->data + off;
                        iov[n].iov_len = c->len - off;
                        n++;
                }
                mh.msg_iov = iov;
                mh.msg_iovlen = n;
                if (passing) {
                        struct cmsghdr *cm;

                        mh.msg_control = control.buf;
                        mh.msg_controllen = sizeof(control.buf);
                        cm = CMSG_FIRSTHDR(&mh);
                        cm->cmsg_level = SOL_SOCKET;
                        cm->cmsg_type = SCM_RIGHTS;
                        cm->cmsg_len = CMSG_LEN(sizeof(int));
                        memcpy(CMSG_DATA(cm), &w->head->fd, sizeof(int));
                }

                k = RETRY_EINTR(sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT));
                /* Not a socket (a pipe in tests): plain writes; the fd must be non-blocking and
                 * a closed reader is then a SIGPIPE, as write() has no MSG_NOSIGNAL. */
                if (k < 0 && errno == ENOTSOCK && !passing)
                        k = RETRY_EINTR(writev(fd, iov, (int) n));
                if (k < 0)
                        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
                if (k == 0)
                        return 0;
                /* Sent: the peer holds its own reference now. */
                if (passing) {
                        closep(&w->head->fd);
                        w->head->fd = -1;
                }

                writer_advance(w, (size_t) k);
        }
        return 1;
}
