/* libmemctl's transport: the connection to the daemon, timeouts, calls and their replies, passed fds. */

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "json-writer.h"
#include "libmemctl.h"
#include "memmapd-codec.h"
#include "time-util.h"
#include "varlink-frame.h"
#include "varlink.h"
#include "libmemctl-internal.h"

uint64_t deadline_after(uint64_t timeout_usec) {
        uint64_t now;

        if (timeout_usec == MEMCTL_TIMEOUT_INFINITY)
                return UINT64_MAX;
        now = now_usec();
        return timeout_usec > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + timeout_usec;
}

/* Milliseconds left until deadline, rounded up, for poll(): -1 waits forever. */
int poll_timeout(uint64_t deadline) {
        uint64_t now, left;

        if (deadline == UINT64_MAX)
                return -1;
        now = now_usec();
        if (now >= deadline)
                return 0;
        left = (deadline - now + 999) / 1000;
        return left > INT_MAX ? INT_MAX : (int) left;
}

/* ------------------------------------------------------------------ connection */

int memctl_default_socket_path(char **ret_path) {
        const char *e;
        char *p = NULL;

        if (!ret_path)
                return -EINVAL;

        e = secure_getenv("MEMMAPD_SOCKET");
        if (e && *e) {
                p = strdup(e);
                if (!p)
                        return -ENOMEM;
        } else if (geteuid() != 0) {
                e = secure_getenv("XDG_RUNTIME_DIR");
                if (e && e[0] == '/') {
                        if (asprintf(&p, "%s/memmapd/io.memmapd", e) < 0)
                                return -ENOMEM;
                        if (access(p, F_OK) < 0) {
                                free(p);
                                p = NULL;
                        }
                }
        }
        if (!p) {
                p = strdup(MEMCTL_SOCKET_PATH_SYSTEM);
                if (!p)
                        return -ENOMEM;
        }
        *ret_path = p;
        return 0;
}

static int socket_address(const char *path, struct sockaddr_un *ret, socklen_t *ret_len) {
        size_t l = strlen(path);

        *ret = (struct sockaddr_un) { .sun_family = AF_UNIX };
        if (l == 0)
                return -EINVAL;
        if (path[0] == '@') {
                /* Abstract namespace: a leading NUL instead of the '@', no terminator. */
                if (l > sizeof(ret->sun_path))
                        return -ENAMETOOLONG;
                memcpy(ret->sun_path + 1, path + 1, l - 1);
                *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l);
        } else {
                if (l >= sizeof(ret->sun_path))
                        return -ENAMETOOLONG;
                memcpy(ret->sun_path, path, l);
                *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l + 1);
        }
        return 0;
}

static void connection_close(memctl *c) {
        if (c->fd >= 0) {
                close(c->fd);
                c->fd = -1;
        }
        /* Drop whatever was buffered from the old connection. */
        varlink_reader_done(&c->reader);
        varlink_reader_init(&c->reader, REPLY_SIZE_MAX);
}

static int connection_open(memctl *c, uint64_t deadline) {
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa;
        socklen_t sa_len;
        int r;

        r = socket_address(c->path, &sa, &sa_len);
        if (r < 0)
                return r;

        /* Non-blocking throughout: every wait is a poll() bounded by the deadline. */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;

        for (;;) {
                if (connect(fd, (const struct sockaddr *) &sa, sa_len) >= 0 || errno == EISCONN)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno == EINPROGRESS) {
                        struct pollfd p = { .fd = fd, .events = POLLOUT };
                        int err = 0;
                        socklen_t err_len = sizeof(err);

                        r = poll(&p, 1, poll_timeout(deadline));
                        if (r < 0) {
                                if (errno == EINTR)
                                        continue;
                                return -errno;
                        }
                        if (r == 0)
                                return -ETIMEDOUT;
                        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) < 0)
                                return -errno;
                        if (err != 0)
                                return -err;
                        break;
                }
                if (errno == EAGAIN) {
                        /* The listener's backlog is full: an AF_UNIX socket cannot wait for
                         * that with poll(), so try again shortly, until the deadline. */
                        int ms = poll_timeout(deadline);
                        struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };

                        if (ms == 0)
                                return -ETIMEDOUT;
                        if (ms > 0 && ms < 10)
                                ts.tv_nsec = (long) ms * 1000 * 1000;
                        nanosleep(&ts, NULL);
                        continue;
                }
                return -errno;
        }

        connection_close(c);
        c->fd = TAKE_FD(fd);
        return 0;
}

int memctl_connect(const char *path, memctl **ret) {
        memctl *c;
        int r;

        if (!ret)
                return -EINVAL;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = -1;
        c->timeout_usec = MEMCTL_TIMEOUT_DEFAULT_USEC;
        varlink_reader_init(&c->reader, REPLY_SIZE_MAX);

        if (path) {
                c->path = strdup(path);
                r = c->path ? 0 : -ENOMEM;
        } else
                r = memctl_default_socket_path(&c->path);
        if (r >= 0)
                r = connection_open(c, deadline_after(c->timeout_usec));
        if (r < 0) {
                memctl_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

void error_clear(memctl *c) {
        free(c->error_name);
        c->error_name = NULL;
        json_object_put(c->error_parameters);
        c->error_parameters = NULL;
}

memctl *memctl_free(memctl *c) {
        if (!c)
                return NULL;
        if (c->fd >= 0)
                close(c->fd);
        varlink_reader_done(&c->reader);
        free(c->request);
        error_clear(c);
        free(c->path);
        free(c);
        return NULL;
}

int memctl_set_timeout(memctl *c, uint64_t timeout_usec) {
        if (!c)
                return -EINVAL;
        c->timeout_usec = timeout_usec == 0 ? MEMCTL_TIMEOUT_DEFAULT_USEC : timeout_usec;
        return 0;
}

const char *memctl_last_error_name(const memctl *c) {
        return c ? c->error_name : NULL;
}

const char *memctl_last_error_parameters(const memctl *c) {
        if (!c || !c->error_name)
                return NULL;
        if (!c->error_parameters)
                return "{}";
        return json_object_to_json_string_ext(c->error_parameters, JSON_FLAGS);
}

static int last_error_field(const memctl *c, const char *key, json_type type, struct json_object **ret) {
        struct json_object *v = NULL;

        if (!c || !key)
                return -EINVAL;
        if (!c->error_name || !c->error_parameters ||
            !json_object_object_get_ex(c->error_parameters, key, &v) || !v)
                return -ENODATA;
        if (!json_object_is_type(v, type))
                return -EPROTO;
        *ret = v;
        return 0;
}

int memctl_last_error_string(const memctl *c, const char *key, const char **ret_value) {
        struct json_object *v;
        int r;

        if (!ret_value)
                return -EINVAL;
        r = last_error_field(c, key, json_type_string, &v);
        if (r < 0)
                return r;
        *ret_value = json_object_get_string(v);
        return 0;
}

int memctl_last_error_int(const memctl *c, const char *key, int64_t *ret_value) {
        struct json_object *v;
        int r;

        if (!ret_value)
                return -EINVAL;
        r = last_error_field(c, key, json_type_int, &v);
        if (r < 0)
                return r;
        *ret_value = json_object_get_int64(v);
        return 0;
}

/* ------------------------------------------------------------------ calls */

int error_to_errno(const char *name) {
        static const struct {
                const char *name;
                int error;
        } table[] = {
                { MEMMAPD_ERROR_NO_SUCH_PROCESS, ESRCH },
                { MEMMAPD_ERROR_PERMISSION_DENIED, EACCES },
                { VARLINK_ERROR_PERMISSION_DENIED, EACCES },
                { MEMMAPD_ERROR_PROCESS_CHANGED, ESTALE },
                { MEMMAPD_ERROR_LIMIT_EXCEEDED, E2BIG },
                { MEMMAPD_ERROR_NO_VDSO, ENOENT },
                { MEMMAPD_ERROR_NOT_MAPPED, ENXIO },
                { MEMMAPD_ERROR_NO_FILE, EMEDIUMTYPE },
                { MEMMAPD_ERROR_FILE_UNAVAILABLE, EIO },
                { MEMMAPD_ERROR_TRACKING_UNAVAILABLE, ENOSYS },
                { VARLINK_ERROR_INVALID_PARAMETER, EINVAL },
                { VARLINK_ERROR_METHOD_NOT_FOUND, EOPNOTSUPP },
                { VARLINK_ERROR_METHOD_NOT_IMPLEMENTED, EOPNOTSUPP },
                { VARLINK_ERROR_INTERFACE_NOT_FOUND, EOPNOTSUPP },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (strcmp(name, table[i].name) == 0)
                        return -table[i].error;
        return -EPROTO;
}


/* Passed fds taken per read: the daemon passes one; more are read (and closed) only so that
 * none is left behind. */
#define PASSED_FDS_MAX 8

/* One recvmsg() into the reader, taking passed fds (close-on-exec at once): the first of the
 * call goes to *c->passed_fd, any other is closed. Returns as varlink_reader_read_fd(). */
static ssize_t read_with_fd(memctl *c) {
        char buf[16 * 1024];
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * PASSED_FDS_MAX)];
        } control = {};
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
        struct msghdr mh = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf),
        };
        ssize_t n;
        int r;

        n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
                return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len < CMSG_LEN(0))
                        continue;
                for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                        int fd;

                        memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                        if (*c->passed_fd < 0)
                                *c->passed_fd = fd;
                        else
                                close(fd);
                }
        }
        if (n > 0) {
                r = varlink_reader_feed(&c->reader, buf, (size_t) n);
                if (r < 0)
                        return r;
        }
        return n;
}

/* Sends one request and waits for its reply. Reads while writing, so that a daemon that
 * answers early (an error about a request it will not read to the end) never deadlocks us,
 * and after a failed write still reads what the daemon said before it hung up.
 * *ret_reusable is false when the connection must not carry another call. */
static int transact(memctl *c, const char *req, size_t req_len, uint64_t deadline, struct fast_decode *fast,
                    struct varlink_reply *ret, bool *ret_reusable) {
        size_t sent = 0, streamed = 0;
        int write_error = 0;

        if (fast) {
                /* a retry starts the streamed reply over */
                fast->parts = 0;
                fast->streamed = 0;
        }
        if (c->on_part) {
                int k = c->on_part(NULL, c->part_userdata);

                if (k < 0)
                        return k;
        }

        for (;;) {
                struct pollfd p = { .fd = c->fd, .events = POLLIN };
                const char *msg;
                size_t msg_len;
                int r;

                r = varlink_reader_next(&c->reader, &msg, &msg_len);
                if (r < 0)
                        return -EPROTO; /* larger than REPLY_SIZE_MAX */
                if (r > 0) {
                        bool reusable = sent == req_len;
                        size_t parts = fast ? fast->parts : 0;

                        /* 1: not a successful reply; the general decoder takes it. */
                        r = fast ? fast_decode_reply(fast, msg, msg_len) : 1;
                        if (r == 2) {
                                /* A part of a streamed reply: the next comes. */
                                fast->streamed += msg_len;
                                if (fast->streamed > STREAM_SIZE_MAX)
                                        return -EPROTO;
                                continue;
                        }
                        if (r == 0)
                                fast->done = true;
                        else if (r > 0) {
                                r = varlink_reply_parse(msg, msg_len, VARLINK_JSON_DEPTH_DEFAULT, ret);
                                if (r >= 0 && ret->continues && !ret->error && c->on_part) {
                                        int k = (streamed += msg_len) > STREAM_SIZE_MAX
                                                        ? -EPROTO
                                                        : c->on_part(ret->parameters, c->part_userdata);

                                        varlink_reply_done(ret);
                                        if (k < 0)
                                                return k;
                                        continue;
                                }
                                /* After parts, only an error may end the call: a last part
                                 * the fast decoder refused would lose the earlier ones. */
                                if (r >= 0 && parts > 0 && !ret->error) {
                                        varlink_reply_done(ret);
                                        r = -EPROTO;
                                }
                        }
                        if (r < 0)
                                return r == -ENOMEM ? r : -EPROTO;
                        /* We never pipeline: anything after the reply is garbage. */
                        if (varlink_reader_next(&c->reader, &msg, &msg_len) != 0 ||
                            varlink_reader_has_partial(&c->reader))
                                reusable = false;
                        *ret_reusable = reusable;
                        return 0;
                }

                if (sent < req_len && write_error == 0)
                        p.events |= POLLOUT;
                r = poll(&p, 1, poll_timeout(deadline));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        return -ETIMEDOUT;
                if (p.revents & POLLNVAL)
                        return -EBADF;

                if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t n = c->passed_fd ? read_with_fd(c) : varlink_reader_read_fd(&c->reader, c->fd);

                        if (n == 0)
                                /* EOF before the reply */
                                return write_error != 0 ? write_error : -ECONNRESET;
                        if (n == -EMSGSIZE)
                                return -EPROTO;
                        if (n < 0 && n != -EAGAIN && n != -EINTR)
                                return write_error != 0 ? write_error : (int) n;
                        if (n > 0)
                                continue;
                }

                if (sent < req_len && write_error == 0 && (p.revents & (POLLOUT | POLLHUP | POLLERR))) {
                        ssize_t n = send(c->fd, req + sent, req_len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);

                        if (n < 0) {
                                if (errno == EAGAIN || errno == EINTR)
                                        continue;
                                if (errno != EPIPE && errno != ECONNRESET)
                                        return -errno;
                                /* The daemon hung up: an error reply may be waiting, read
                                 * up to the EOF that must follow. */
                                write_error = -errno;
                                continue;
                        }
                        sent += (size_t) n;
                }
        }
}

/* Performs one call: req is a whole message, NUL terminator included. On success,
 * *ret_parameters is the reply's parameters object; a Varlink error is recorded on c and
 * mapped to -errno. */
static int call_attempts(memctl *c, const char *req, size_t req_len, struct fast_decode *fast,
                         struct json_object **ret_parameters) {
        uint64_t deadline = deadline_after(c->timeout_usec);

        for (unsigned attempt = 0;; attempt++) {
                struct varlink_reply reply = {};
                bool reusable = false;
                int r;

                if (c->fd < 0) {
                        r = connection_open(c, deadline);
                        if (r < 0)
                                return r;
                }

                r = transact(c, req, req_len, deadline, fast, &reply, &reusable);
                if (r < 0) {
                        connection_close(c);
                        /* The connection broke before the reply: the daemon restarted or
                         * dropped an idle connection. All our calls are idempotent. */
                        if (attempt == 0 && (r == -ECONNRESET || r == -EPIPE))
                                continue;
                        return r;
                }
                if (!reusable)
                        connection_close(c);
                if (fast && fast->done)
                        return 0;

                if (reply.continues) {
                        /* A part the fast decoder refused, or of a call we did not ask to
                         * stream: the daemon is confused. */
                        varlink_reply_done(&reply);
                        connection_close(c);
                        return -EPROTO;
                }
                if (reply.error) {
                        c->error_name = strdup(reply.error);
                        c->error_parameters = json_object_get(reply.parameters);
                        varlink_reply_done(&reply);
                        if (!c->error_name) {
                                error_clear(c);
                                return -ENOMEM;
                        }
                        return error_to_errno(c->error_name);
                }
                if (!reply.parameters || !json_object_is_type(reply.parameters, json_type_object)) {
                        varlink_reply_done(&reply);
                        return -EPROTO;
                }
                *ret_parameters = json_object_get(reply.parameters);
                varlink_reply_done(&reply);
                return 0;
        }
}

int call(memctl *c, const char *req, size_t req_len, struct fast_decode *fast,
                struct json_object **ret_parameters) {
        int r = call_attempts(c, req, req_len, fast, ret_parameters);

        /* The reply was decoded (or failed): the buffer is empty, keep it unless it is huge. */
        varlink_reader_trim(&c->reader, BUFFER_KEEP_MAX);
        return r;
}

/* Finishes the message begun with varlink_call_begin() and performs the call. */
int call_writer(memctl *c, struct json_writer *w, struct fast_decode *fast,
                       struct json_object **ret_parameters) {
        _cleanup_free_ char *req = NULL;
        size_t len;
        int r;

        varlink_message_end(w);
        r = json_writer_finish(w, &req, &len);
        if (r < 0)
                return r;
        /* The message goes out with its NUL terminator. */
        if (len == 0 || req[len - 1] != '\0')
                len++;
        return call(c, req, len, fast, ret_parameters);
}

