/* Tests for proto/varlink-frame.c: message splitting, size limits, fd I/O, queued output.
 * SIGPIPE is deliberately left at its default: a write that raised it would kill the test. */

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "cleanup.h"
#include "varlink-frame.h"

#define READ_CHUNK (64 * 1024)

static void expect_next(struct varlink_reader *r, const char *expected) {
        const char *msg = NULL;
        size_t len = SIZE_MAX;

        assert_int_equal(varlink_reader_next(r, &msg, &len), 1);
        assert_int_equal(len, strlen(expected));
        assert_string_equal(msg, expected);
}

static void expect_none(struct varlink_reader *r) {
        const char *msg = (const char *) 0x1;
        size_t len = 777;

        assert_int_equal(varlink_reader_next(r, &msg, &len), 0);
        assert_ptr_equal(msg, (const char *) 0x1);
        assert_int_equal(len, 777);
}

static void test_feed_basic(void **state) {
        struct varlink_reader r;

        varlink_reader_init(&r, 1024);
        expect_none(&r);
        assert_false(varlink_reader_has_partial(&r));

        /* several messages in one feed, and a partial one */
        assert_int_equal(varlink_reader_feed(&r, "{\"a\":1}\0{\"b\":2}\0{\"c\"", 20), 0);
        expect_next(&r, "{\"a\":1}");
        expect_next(&r, "{\"b\":2}");
        expect_none(&r);
        assert_true(varlink_reader_has_partial(&r));
        expect_none(&r);

        /* the rest arrives */
        assert_int_equal(varlink_reader_feed(&r, ":3}\0", 4), 0);
        expect_next(&r, "{\"c\":3}");
        expect_none(&r);
        assert_false(varlink_reader_has_partial(&r));

        /* empty messages, and empty feeds */
        assert_int_equal(varlink_reader_feed(&r, "\0\0", 2), 0);
        assert_int_equal(varlink_reader_feed(&r, NULL, 0), 0);
        expect_next(&r, "");
        expect_next(&r, "");
        expect_none(&r);

        /* ret_len may be NULL */
        assert_int_equal(varlink_reader_feed(&r, "x\0", 2), 0);
        {
                const char *msg;
                assert_int_equal(varlink_reader_next(&r, &msg, NULL), 1);
                assert_string_equal(msg, "x");
        }

        varlink_reader_done(&r);
        varlink_reader_done(&r);
        varlink_reader_done(NULL);
}

static void test_feed_byte_by_byte(void **state) {
        static const char stream[] = "{\"method\":\"io.memmapd.List\"}\0{}\0{\"x\":[1,2,3]}";
        static const char *const expected[] = { "{\"method\":\"io.memmapd.List\"}", "{}", "{\"x\":[1,2,3]}" };
        struct varlink_reader r;
        size_t got = 0;

        varlink_reader_init(&r, 64);
        for (size_t i = 0; i < sizeof(stream); i++) { /* includes the final NUL */
                const char *msg;
                size_t len;
                int k;

                assert_int_equal(varlink_reader_feed(&r, stream + i, 1), 0);
                k = varlink_reader_next(&r, &msg, &len);
                if (stream[i] == '\0') {
                        assert_int_equal(k, 1);
                        assert_true(got < ELEMENTSOF(expected));
                        assert_string_equal(msg, expected[got]);
                        assert_int_equal(len, strlen(expected[got]));
                        got++;
                } else {
                        assert_int_equal(k, 0);
                        assert_true(varlink_reader_has_partial(&r));
                }
                expect_none(&r);
        }
        assert_int_equal(got, ELEMENTSOF(expected));
        assert_false(varlink_reader_has_partial(&r));
        /* the buffer never had to hold more than one message */
        assert_true(r.allocated <= 4096);
        varlink_reader_done(&r);
}

static char *make_message(size_t n, char fill) {
        char *m = malloc(n + 1);

        assert_non_null(m);
        memset(m, fill, n);
        m[n] = '\0';
        return m;
}

static void test_size_limits(void **state) {
        _cleanup_free_ char *max = make_message(100, 'm'), *over = make_message(101, 'o');
        struct varlink_reader r;
        const char *msg;
        size_t len;

        /* exactly max_message bytes, NUL excluded */
        varlink_reader_init(&r, 100);
        assert_int_equal(varlink_reader_feed(&r, max, 101), 0);
        expect_next(&r, max);
        /* max bytes without their NUL yet: still fine */
        assert_int_equal(varlink_reader_feed(&r, max, 100), 0);
        expect_none(&r);
        assert_int_equal(varlink_reader_feed(&r, "", 1), 0);
        expect_next(&r, max);
        varlink_reader_done(&r);

        /* max + 1 bytes with their NUL in the same feed */
        varlink_reader_init(&r, 100);
        assert_int_equal(varlink_reader_feed(&r, over, 102), -EMSGSIZE);
        assert_int_equal(varlink_reader_next(&r, &msg, &len), -EMSGSIZE);
        /* and it stays broken */
        assert_int_equal(varlink_reader_feed(&r, "{}\0", 3), -EMSGSIZE);
        assert_int_equal(varlink_reader_next(&r, &msg, &len), -EMSGSIZE);
        varlink_reader_done(&r);

        /* max + 1 bytes and no NUL ever: detected at the 101st byte, fed one at a time */
        varlink_reader_init(&r, 100);
        for (size_t i = 0; i < 100; i++) {
                assert_int_equal(varlink_reader_feed(&r, "z", 1), 0);
                expect_none(&r);
        }
        assert_int_equal(varlink_reader_feed(&r, "z", 1), -EMSGSIZE);
        assert_int_equal(varlink_reader_next(&r, &msg, &len), -EMSGSIZE);
        varlink_reader_done(&r);

        /* a good message, then an oversized one in the same feed */
        varlink_reader_init(&r, 100);
        {
                _cleanup_free_ char *both = malloc(4 + 102);

                assert_non_null(both);
                memcpy(both, "{}\0", 3);
                memcpy(both + 3, over, 102);
                assert_int_equal(varlink_reader_feed(&r, both, 3 + 102), 0);
        }
        expect_next(&r, "{}");
        assert_int_equal(varlink_reader_next(&r, &msg, &len), -EMSGSIZE);
        assert_int_equal(varlink_reader_next(&r, &msg, &len), -EMSGSIZE);
        varlink_reader_done(&r);

        /* max_message 0: only empty messages */
        varlink_reader_init(&r, 0);
        assert_int_equal(varlink_reader_feed(&r, "\0", 1), 0);
        expect_next(&r, "");
        assert_int_equal(varlink_reader_feed(&r, "a", 1), -EMSGSIZE);
        varlink_reader_done(&r);
}

/* Many messages of varied sizes, fed in pieces of varied sizes: every message comes out
 * intact, and the buffer stays bounded by max_message plus one read. */
static void test_stream(void **state) {
        const size_t max = 3000, total_messages = 5000;
        struct varlink_reader r;
        _cleanup_free_ char *stream = NULL;
        size_t stream_len = 0, stream_alloc = total_messages * (max + 1);
        size_t fed = 0, msg_index = 0, expected_offset = 0;
        uint32_t x = 12345;

        stream = malloc(stream_alloc);
        assert_non_null(stream);
        for (size_t i = 0; i < total_messages; i++) {
                size_t n;

                x = x * 1103515245 + 12345;
                n = (x >> 8) % (i % 10 == 0 ? max + 1 : 50);
                for (size_t j = 0; j < n; j++)
                        stream[stream_len + j] = (char) ('A' + (i + j) % 26);
                stream[stream_len + n] = '\0';
                stream_len += n + 1;
        }

        varlink_reader_init(&r, max);
        while (fed < stream_len) {
                const char *msg;
                size_t len, piece;

                x = x * 1103515245 + 12345;
                piece = MIN(stream_len - fed, (size_t) (x >> 8) % 9000 + 1);
                assert_int_equal(varlink_reader_feed(&r, stream + fed, piece), 0);
                fed += piece;

                while (varlink_reader_next(&r, &msg, &len) == 1) {
                        assert_int_equal(len, strlen(stream + expected_offset));
                        assert_memory_equal(msg, stream + expected_offset, len + 1);
                        expected_offset += len + 1;
                        msg_index++;
                }
                assert_true(r.allocated <= 2 * (max + 1 + 9000));
        }
        assert_int_equal(msg_index, total_messages);
        assert_int_equal(expected_offset, stream_len);
        assert_false(varlink_reader_has_partial(&r));
        varlink_reader_done(&r);
}

static void nonblocking_socketpair(int fds[2]) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
}

static int close_fd(int fd) {
        if (fd >= 0)
                close(fd);
        return -1;
}

static void test_read_fd(void **state) {
        _cleanup_close_ int a = -1, b = -1;
        struct varlink_reader r;
        int fds[2];
        const char *msg;
        size_t len;

        nonblocking_socketpair(fds);
        a = fds[0];
        b = fds[1];

        varlink_reader_init(&r, 1 << 20);
        assert_int_equal(varlink_reader_read_fd(&r, a), -EAGAIN);

        /* several messages in one read */
        assert_int_equal(write(b, "{\"a\":1}\0{\"b\":2}\0{\"c", 19), 19);
        assert_int_equal(varlink_reader_read_fd(&r, a), 19);
        expect_next(&r, "{\"a\":1}");
        expect_next(&r, "{\"b\":2}");
        expect_none(&r);
        assert_int_equal(varlink_reader_read_fd(&r, a), -EAGAIN);
        assert_int_equal(write(b, "\":3}\0", 5), 5);
        assert_int_equal(varlink_reader_read_fd(&r, a), 5);
        expect_next(&r, "{\"c\":3}");
        expect_none(&r);

        /* a message much larger than the socket buffer and than one read */
        {
                const size_t n = 700 * 1024;
                _cleanup_free_ char *big = make_message(n, 'b');
                size_t written = 0, reads = 0;
                bool done = false;

                while (!done) {
                        if (written < n + 1) {
                                ssize_t k = write(b, big + written, n + 1 - written);

                                if (k < 0)
                                        assert_int_equal(errno, EAGAIN);
                                else
                                        written += (size_t) k;
                        }
                        ssize_t k = varlink_reader_read_fd(&r, a);
                        if (k == -EAGAIN)
                                continue;
                        assert_true(k > 0);
                        assert_true(k <= (ssize_t) (r.allocated));
                        reads++;
                        int m = varlink_reader_next(&r, &msg, &len);
                        assert_true(m >= 0);
                        if (m == 1) {
                                assert_int_equal(len, n);
                                assert_memory_equal(msg, big, n + 1);
                                done = true;
                        }
                        /* bounded by the message plus one read */
                        assert_true(r.allocated <= (1 << 20) + 1 + READ_CHUNK);
                }
                assert_true(reads > 1);
        }

        /* EOF, with and without a partial message pending */
        assert_int_equal(write(b, "{\"tail", 6), 6);
        assert_int_equal(varlink_reader_read_fd(&r, a), 6);
        expect_none(&r);
        assert_true(varlink_reader_has_partial(&r));
        b = close_fd(b);
        assert_int_equal(varlink_reader_read_fd(&r, a), 0);
        assert_true(varlink_reader_has_partial(&r));

        /* a bad fd */
        assert_int_equal(varlink_reader_read_fd(&r, -1), -EBADF);
        varlink_reader_done(&r);
}

/* A peer that never sends a NUL is cut off once max_message is passed, without the reader
 * buffering more than the limit plus one read. */
static void test_read_fd_oversize(void **state) {
        _cleanup_close_ int a = -1, b = -1;
        struct varlink_reader r;
        int fds[2];
        char junk[4096];
        size_t sent = 0;
        ssize_t k = 0;

        nonblocking_socketpair(fds);
        a = fds[0];
        b = fds[1];
        memset(junk, 'j', sizeof(junk));

        /* small limit: the first read already passes it */
        varlink_reader_init(&r, 100);
        assert_int_equal(write(b, junk, 200), 200);
        assert_int_equal(varlink_reader_read_fd(&r, a), -EMSGSIZE);
        assert_int_equal(varlink_reader_read_fd(&r, a), -EMSGSIZE);
        assert_int_equal(varlink_reader_next(&r, &(const char *) { NULL }, NULL), -EMSGSIZE);
        assert_true(r.allocated <= 100 + 1 + READ_CHUNK);
        varlink_reader_done(&r);
        while (read(a, junk, sizeof(junk)) > 0)
                ;

        /* larger limit, endless stream: the buffer has to grow, but not past the bound */
        varlink_reader_init(&r, 150000);
        for (;;) {
                ssize_t w = write(b, junk, sizeof(junk));

                if (w > 0)
                        sent += (size_t) w;
                k = varlink_reader_read_fd(&r, a);
                if (k == -EMSGSIZE)
                        break;
                assert_true(k > 0 || k == -EAGAIN);
                assert_int_equal(varlink_reader_next(&r, &(const char *) { NULL }, NULL), 0);
                assert_true(sent < 10 * 150000);
                assert_true(r.allocated <= 150000 + 1 + READ_CHUNK);
        }
        assert_true(sent > 150000);
        assert_true(r.len <= 150000 + 1 + READ_CHUNK);
        varlink_reader_done(&r);
}

static char *dup_message(const char *s, size_t len) {
        char *m = malloc(len);

        assert_non_null(m);
        memcpy(m, s, len);
        return m;
}

/* trim frees a buffer larger than asked only when nothing is pending, and the reader goes on. */
static void test_reader_trim(void **state) {
        _cleanup_free_ char *big = malloc(100000);
        struct varlink_reader r;

        assert_non_null(big);
        memset(big, 'x', 99999);
        big[99999] = 0;
        varlink_reader_init(&r, 200000);

        /* a partial message is never dropped */
        assert_int_equal(varlink_reader_feed(&r, big, 99999), 0);
        varlink_reader_trim(&r, 4096);
        assert_non_null(r.buf);
        assert_true(varlink_reader_has_partial(&r));
        assert_int_equal(varlink_reader_feed(&r, "", 1), 0);
        expect_next(&r, big);

        /* all handed out: kept up to keep, freed above it */
        varlink_reader_trim(&r, r.allocated);
        assert_non_null(r.buf);
        varlink_reader_trim(&r, 4096);
        assert_null(r.buf);
        assert_int_equal(r.allocated, 0);
        assert_int_equal(r.max_message, 200000);

        /* and the reader still works, trimmed again when empty */
        varlink_reader_trim(&r, 0);
        assert_int_equal(varlink_reader_feed(&r, "{}\0{", 4), 0);
        expect_next(&r, "{}");
        varlink_reader_trim(&r, 0);
        assert_non_null(r.buf);
        assert_int_equal(varlink_reader_feed(&r, "}\0", 2), 0);
        expect_next(&r, "{}");
        varlink_reader_trim(&r, 0);
        assert_null(r.buf);
        expect_none(&r);
        varlink_reader_done(&r);
}

static void test_writer_queue_errors(void **state) {
        struct varlink_writer w;

        varlink_writer_init(&w);
        /* no NUL at the end, or nothing at all: refused, and the buffer freed (LeakSanitizer) */
        assert_int_equal(varlink_writer_queue(&w, dup_message("abc", 3), 3), -EINVAL);
        assert_int_equal(varlink_writer_queue(&w, malloc(1), 0), -EINVAL);
        assert_int_equal(varlink_writer_queue(&w, NULL, 0), -EINVAL);
        assert_null(w.head);
        assert_int_equal(w.pending, 0);

        /* queued chunks are freed by done without being written */
        assert_int_equal(varlink_writer_queue(&w, dup_message("{}", 3), 3), 0);
        assert_int_equal(varlink_writer_queue(&w, dup_message("[]", 3), 3), 0);
        assert_int_equal(w.pending, 6);
        varlink_writer_done(&w);
        assert_null(w.head);
        assert_null(w.tail);
        assert_int_equal(w.pending, 0);
        varlink_writer_done(&w);
        varlink_writer_done(NULL);

        /* an empty queue flushes to anything */
        assert_int_equal(varlink_writer_flush(&w, -1), 1);
}

static void drain(int fd, char *buf, size_t size, size_t *got) {
        while (*got < size) {
                ssize_t k = read(fd, buf + *got, size - *got);

                if (k < 0) {
                        assert_int_equal(errno, EAGAIN);
                        return;
                }
                assert_true(k > 0);
                *got += (size_t) k;
        }
}

static void test_writer_socket(void **state) {
        _cleanup_close_ int a = -1, b = -1;
        _cleanup_free_ char *expected = NULL, *received = NULL;
        struct varlink_writer w;
        const size_t n_messages = 20, msg_size = 50000;
        size_t total = n_messages * msg_size, got = 0;
        int fds[2], sndbuf = 4096, r;
        unsigned zeros = 0;

        nonblocking_socketpair(fds);
        a = fds[0];
        b = fds[1];
        assert_int_equal(setsockopt(a, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);

        expected = malloc(total);
        received = malloc(total);
        assert_non_null(expected);
        assert_non_null(received);

        varlink_writer_init(&w);
        for (size_t i = 0; i < n_messages; i++) {
                char *m = malloc(msg_size);

                assert_non_null(m);
                for (size_t j = 0; j < msg_size - 1; j++)
                        m[j] = (char) ('a' + (i * 7 + j) % 26);
                m[msg_size - 1] = '\0';
                memcpy(expected + i * msg_size, m, msg_size);
                assert_int_equal(varlink_writer_queue(&w, m, msg_size), 0);
        }
        assert_int_equal(w.pending, total);

        /* the peer reads nothing: the socket fills up and flush says "later" */
        assert_int_equal(varlink_writer_flush(&w, a), 0);
        assert_true(w.pending > 0 && w.pending < total);
        assert_int_equal(varlink_writer_flush(&w, a), 0);

        /* the peer reads bit by bit; flush goes on where it stopped */
        while ((r = varlink_writer_flush(&w, a)) == 0) {
                drain(b, received, total, &got);
                zeros++;
                assert_true(zeros < 100000);
        }
        assert_int_equal(r, 1);
        assert_int_equal(w.pending, 0);
        assert_null(w.head);
        drain(b, received, total, &got);
        assert_int_equal(got, total);
        assert_memory_equal(received, expected, total);
        assert_true(zeros > 1);

        /* more after the queue went empty */
        assert_int_equal(varlink_writer_queue(&w, dup_message("{}", 3), 3), 0);
        assert_int_equal(varlink_writer_flush(&w, a), 1);
        got = 0;
        drain(b, received, total, &got);
        assert_int_equal(got, 3);
        assert_memory_equal(received, "{}", 3);
        varlink_writer_done(&w);
}

static void test_writer_epipe(void **state) {
        _cleanup_close_ int a = -1, b = -1;
        struct varlink_writer w;
        int fds[2];

        nonblocking_socketpair(fds);
        a = fds[0];
        b = fds[1];

        varlink_writer_init(&w);
        assert_int_equal(varlink_writer_queue(&w, dup_message("{\"a\":1}", 8), 8), 0);
        b = close_fd(b);
        /* SIGPIPE is not ignored here: send() without MSG_NOSIGNAL would kill the test */
        assert_int_equal(varlink_writer_flush(&w, a), -EPIPE);
        assert_int_equal(w.pending, 8);
        assert_int_equal(varlink_writer_flush(&w, a), -EPIPE);
        varlink_writer_done(&w);

        /* a bad fd */
        varlink_writer_init(&w);
        assert_int_equal(varlink_writer_queue(&w, dup_message("{}", 3), 3), 0);
        assert_int_equal(varlink_writer_flush(&w, -1), -EBADF);
        varlink_writer_done(&w);
}

static void test_writer_pipe(void **state) {
        _cleanup_close_ int rd = -1, wr = -1;
        struct varlink_writer w;
        struct varlink_reader r;
        int fds[2];

        assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
        rd = fds[0];
        wr = fds[1];

        varlink_writer_init(&w);
        assert_int_equal(varlink_writer_queue(&w, dup_message("{\"x\":1}", 8), 8), 0);
        assert_int_equal(varlink_writer_queue(&w, dup_message("{\"y\":2}", 8), 8), 0);
        assert_int_equal(varlink_writer_flush(&w, wr), 1);
        assert_int_equal(w.pending, 0);
        varlink_writer_done(&w);

        /* and the reader reads it back from the pipe */
        varlink_reader_init(&r, 100);
        assert_int_equal(varlink_reader_read_fd(&r, rd), 16);
        expect_next(&r, "{\"x\":1}");
        expect_next(&r, "{\"y\":2}");
        expect_none(&r);
        varlink_reader_done(&r);
}

/* A pipe's write end, passed as fd: the read end sees EOF once every copy of it is closed,
 * which tells independently whether the writer still holds one. */
static bool write_end_closed(int rd) {
        char c;

        return read(rd, &c, 1) == 0;
}

/* One recvmsg() of up to len bytes: the bytes read, and the fds that came with them. */
static ssize_t recv_with_fds(int fd, char *buf, size_t len, int *fds, size_t *n_fds) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 4)];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

        *n_fds = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
                        memcpy(&fds[(*n_fds)++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
        return n;
}

/* Each message's fd goes with its first byte and no other; the writer closes its copy once
 * sent, and every fd it holds when it is dropped or refuses a message. */
static void test_writer_fds(void **state) {
        int sp[2], p1[2], p2[2], got[8];
        struct varlink_writer w;
        char buf[64];
        size_t n_fds;

        (void) state;
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp), 0);
        assert_int_equal(pipe2(p1, O_NONBLOCK | O_CLOEXEC), 0);
        assert_int_equal(pipe2(p2, O_NONBLOCK | O_CLOEXEC), 0);

        varlink_writer_init(&w);
        assert_int_equal(varlink_writer_queue(&w, dup_message("{\"a\":1}", 8), 8), 0);
        assert_int_equal(varlink_writer_queue_fd(&w, dup_message("{\"b\":2}", 8), 8, p1[1]), 0);
        assert_int_equal(varlink_writer_queue_fd(&w, dup_message("{\"c\":3}", 8), 8, p2[1]), 0);
        assert_int_equal(varlink_writer_flush(&w, sp[0]), 1);
        varlink_writer_done(&w);

        /* Read a byte at a time: each fd comes with its message's first byte (offsets 8 and
         * 16), the first message has none. */
        for (size_t off = 0; off < 24; off++) {
                assert_int_equal(recv_with_fds(sp[1], buf + off, 1, got, &n_fds), 1);
                assert_int_equal(n_fds, off == 8 || off == 16 ? 1 : 0);
                if (n_fds == 1) {
                        char c;

                        /* The pipe of its own message: b's is p1, c's p2. */
                        assert_int_equal(write(got[0], "x", 1), 1);
                        assert_int_equal(read(off == 8 ? p1[0] : p2[0], &c, 1), 1);
                        close(got[0]);
                        /* The writer's copy was closed once sent. */
                        assert_true(write_end_closed(off == 8 ? p1[0] : p2[0]));
                }
        }
        assert_memory_equal(buf, "{\"a\":1}\0{\"b\":2}\0{\"c\":3}", 24);
        close(p1[0]);
        close(p2[0]);

        /* Dropped unsent, refused, or meant for a pipe: closed all the same. */
        assert_int_equal(pipe2(p1, O_NONBLOCK | O_CLOEXEC), 0);
        varlink_writer_init(&w);
        assert_int_equal(varlink_writer_queue_fd(&w, dup_message("{}", 3), 3, p1[1]), 0);
        varlink_writer_done(&w);
        assert_true(write_end_closed(p1[0]));
        close(p1[0]);

        assert_int_equal(pipe2(p1, O_NONBLOCK | O_CLOEXEC), 0);
        varlink_writer_init(&w);
        assert_int_equal(varlink_writer_queue_fd(&w, dup_message("{}", 2), 1, p1[1]), -EINVAL);
        assert_true(write_end_closed(p1[0]));
        close(p1[0]);

        assert_int_equal(pipe2(p1, O_NONBLOCK | O_CLOEXEC), 0);
        assert_int_equal(pipe2(p2, O_NONBLOCK | O_CLOEXEC), 0);
        assert_int_equal(varlink_writer_queue_fd(&w, dup_message("{}", 3), 3, p1[1]), 0);
        assert_int_equal(varlink_writer_flush(&w, p2[1]), -ENOTSOCK);
        varlink_writer_done(&w);
        assert_true(write_end_closed(p1[0]));
        close(p1[0]);
        close(p2[0]);
        close(p2[1]);
        close(sp[0]);
        close(sp[1]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_feed_basic),
                cmocka_unit_test(test_feed_byte_by_byte),
                cmocka_unit_test(test_size_limits),
                cmocka_unit_test(test_stream),
                cmocka_unit_test(test_read_fd),
                cmocka_unit_test(test_read_fd_oversize),
                cmocka_unit_test(test_reader_trim),
                cmocka_unit_test(test_writer_queue_errors),
                cmocka_unit_test(test_writer_socket),
                cmocka_unit_test(test_writer_epipe),
                cmocka_unit_test(test_writer_pipe),
                cmocka_unit_test(test_writer_fds),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
