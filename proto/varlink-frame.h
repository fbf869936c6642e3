/* Varlink framing over a stream socket: NUL-terminated messages in, queued output out. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Accumulates bytes and splits them into NUL-terminated messages, none larger than
 * max_message bytes (NUL excluded). Drain varlink_reader_next() until it returns 0 after every
 * feed/read: the buffer then never grows beyond max_message + 1 + one read (64 KiB), however
 * the peer splits or batches its messages, and the copying stays linear. Once a message is
 * found to exceed max_message (scanned is then left above max_message), every call returns
 * -EMSGSIZE. */
struct varlink_reader {
        char *buf;
        size_t len;          /* bytes held, from buf[0] */
        size_t consumed;     /* bytes of buf already handed out as messages */
        size_t scanned;      /* bytes after consumed already searched for a NUL */
        size_t allocated;
        size_t max_message;
};

/* max_message is taken literally (0 only allows empty messages); clamped to SIZE_MAX / 4. */
void varlink_reader_init(struct varlink_reader *r, size_t max_message);
/* Frees the buffer; accepts NULL. The reader is then empty (and usable again). */
void varlink_reader_done(struct varlink_reader *r);

/* Copies n bytes in. -ENOMEM, or -EMSGSIZE when the message being assembled exceeds
 * max_message (the reader is then unusable: close the connection after replying). The check
 * covers the first message not handed out yet; later ones in the same feed are checked by
 * varlink_reader_next(). */
int varlink_reader_feed(struct varlink_reader *r, const void *data, size_t n);

/* One read() from fd straight into the buffer (MSG_DONTWAIT-style: fd is non-blocking),
 * offering at least 64 KiB. Returns bytes read (> 0), 0 on EOF, -EAGAIN when nothing is
 * there, -EMSGSIZE as above, or -errno. Retries EINTR itself. */
ssize_t varlink_reader_read_fd(struct varlink_reader *r, int fd);

/* Hands out the next complete message: 1 and *ret points to it (NUL-terminated, valid
 * until the next call on the reader; ret_len may be NULL), 0 when no complete message is
 * buffered, -EMSGSIZE when the next message (complete or not) exceeds max_message. Searches
 * each byte for the NUL only once. */
int varlink_reader_next(struct varlink_reader *r, const char **ret, size_t *ret_len);

/* Frees the buffer when it holds nothing that was not handed out and is larger than keep:
 * a reader that lives across many messages keeps its room (no page faults for the next large
 * message) without holding on to what its largest message needed. Otherwise does nothing. */
void varlink_reader_trim(struct varlink_reader *r, size_t keep);

/* True while bytes that were not handed out are buffered: after varlink_reader_next()
 * returned 0, exactly when an incomplete message is pending (for half-closed peers). */
bool varlink_reader_has_partial(const struct varlink_reader *r);

struct varlink_out_chunk;

/* Queued output: whole messages, written out as the socket accepts them. */
struct varlink_writer {
        struct varlink_out_chunk *head, *tail;
        size_t head_offset;  /* bytes of head already written */
        size_t pending;      /* bytes queued and not yet written */
};

void varlink_writer_init(struct varlink_writer *w);
void varlink_writer_done(struct varlink_writer *w);

/* Queues data (which must already end in its NUL terminator), taking ownership of the
 * malloc()ed buffer in every case (it is freed on failure). 0, -EINVAL (len 0, no final NUL),
 * -ENOMEM. The queue is unbounded: callers apply back-pressure by looking at pending. */
int varlink_writer_queue(struct varlink_writer *w, char *data, size_t len);

/* varlink_writer_queue() with an fd passed (SCM_RIGHTS) on the sendmsg() that writes the
 * message's first byte, and closed once sent; the writer owns fd in every case (closed on
 * failure, and with the queue). fd < 0: none. A message with an fd cannot go to a non-socket
 * (flush fails with -ENOTSOCK). */
int varlink_writer_queue_fd(struct varlink_writer *w, char *data, size_t len, int fd);

/* Writes as much as the non-blocking fd takes, with send(MSG_NOSIGNAL) so a closed peer is
 * an EPIPE and never a SIGPIPE. Returns 1 when the queue is empty, 0 when bytes remain
 * (wait for EPOLLOUT), or -errno (-EPIPE, -ECONNRESET, ...). Retries EINTR; several queued
 * messages go out in one sendmsg(). An fd that is not a socket (ENOTSOCK, e.g. a pipe in
 * tests) falls back to writev(): it must be non-blocking, and there a closed reader raises
 * SIGPIPE. */
int varlink_writer_flush(struct varlink_writer *w, int fd);
