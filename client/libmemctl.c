/* libmemctl: a blocking Varlink client of memmapd, with strict decoding of every reply. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "json-writer.h"
#include "libmemctl.h"
#include "memmapd-codec.h"
#include "number.h"
#include "time-util.h"
#include "utf8.h"
#include "varlink-frame.h"
#include "varlink.h"

/* Bounds of what we send and what we accept from the daemon. */
#define REPLY_SIZE_MAX (64u * 1024 * 1024)
/* A streamed listing comes in many messages: bounded in all too. The daemon lists at most
 * 2^20 mappings; a listing that long with build IDs is some 300 MB of JSON. */
#define STREAM_SIZE_MAX (1024u * 1024 * 1024)
#define MAPPINGS_MAX (1u << 20)
#define REQUEST_SIZE_MAX (64u * 1024 * 1024)
/* A connection keeps its receive and request buffers for its next calls, so that large
 * replies stop costing a page fault per 4 KiB on every call, but not beyond this. */
#define BUFFER_KEEP_MAX (16u * 1024 * 1024)

/* The size of a public struct up to and including member: what libmemctl 0.1 defined. */
#define ENDOF(type, member) (offsetof(type, member) + sizeof(((type *) NULL)->member))
#define MAPPING_SIZE_0_1 ENDOF(struct memctl_mapping, build_id_size)
#define LOOKUP_RESULT_SIZE_0_1 ENDOF(struct memctl_lookup_result, elf_vaddr)
#define STATUS_INFO_SIZE_0_1 ENDOF(struct memctl_status_info, max_json_depth)

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct memctl {
        int fd;
        char *path;
        uint64_t timeout_usec;          /* MEMCTL_TIMEOUT_INFINITY: none */
        struct varlink_reader reader;
        char *request;                  /* kept for the next call: see BUFFER_KEEP_MAX */
        size_t request_allocated;
        char *error_name;               /* the last call's Varlink error, or NULL */
        struct json_object *error_parameters;
        uint64_t max_addresses;         /* the daemon's, once it said (LimitExceeded); 0: unknown */
        /* Set during a call that expects an fd with its reply (OpenMappingFile): reads then take
         * passed fds, the first into it, and close the rest. NULL: fds are never taken (the
         * kernel drops what a read() does not take). */
        int *passed_fd;
};

/* Memory a reply's strings and binary build IDs are kept in, freed all at once. */
struct arena_chunk {
        struct arena_chunk *next;
        size_t used, size;
        char data[];
};

struct mapping_table {
        struct json_object *parameters; /* owns the strings of a reply decoded by json-c */
        struct arena_chunk *arena;      /* the other strings, and the binary build IDs */
        struct memctl_mapping *items;
        size_t n;
        size_t allocated;               /* items has room for; the parts of a streamed reply add up */
        pid_t pid;
        uint64_t start_time;
};

struct memctl_mappings {
        struct mapping_table table;
};

struct memctl_lookup_reply {
        struct mapping_table table;
        struct memctl_lookup_result *results;
        size_t n_results;
        /* A batch split by the library: the replies of its parts, which own the strings
         * table's items point to (table then owns only its items). */
        memctl_lookup_reply **parts;
        size_t n_parts;
};

struct memctl_status {
        struct json_object *parameters;
        struct memctl_status_info info;
};

/* ------------------------------------------------------------------ arena */

#define ARENA_CHUNK_MIN ((size_t) 4096)
#define ARENA_CHUNK_MAX ((size_t) 1024 * 1024)

/* n bytes that live until arena_free(): NULL when out of memory. */
static void *arena_alloc(struct arena_chunk **arena, size_t n) {
        struct arena_chunk *c = *arena;
        void *p;

        if (!c || c->size - c->used < n) {
                size_t size = c ? MIN(c->size * 2, ARENA_CHUNK_MAX) : ARENA_CHUNK_MIN;

                if (n > SIZE_MAX - sizeof(*c))
                        return NULL;
                size = MAX(size, n);
                c = malloc(sizeof(*c) + size);
                if (!c)
                        return NULL;
                *c = (struct arena_chunk) { .next = *arena, .size = size };
                *arena = c;
        }
        p = c->data + c->used;
        c->used += n;
        return p;
}

/* A NUL-terminated copy of the n bytes at s. */
static char *arena_strndup(struct arena_chunk **arena, const char *s, size_t n) {
        char *p = n < SIZE_MAX ? arena_alloc(arena, n + 1) : NULL;

        if (p) {
                memcpy(p, s, n);
                p[n] = 0;
        }
        return p;
}

static void arena_free(struct arena_chunk **arena) {
        struct arena_chunk *c, *next;

        for (c = *arena; c; c = next) {
                next = c->next;
                free(c);
        }
        *arena = NULL;
}

static uint64_t deadline_after(uint64_t timeout_usec) {
        uint64_t now;

        if (timeout_usec == MEMCTL_TIMEOUT_INFINITY)
                return UINT64_MAX;
        now = now_usec();
        return timeout_usec > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + timeout_usec;
}

/* Milliseconds left until deadline, rounded up, for poll(): -1 waits forever. */
static int poll_timeout(uint64_t deadline) {
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

static void error_clear(memctl *c) {
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

static int error_to_errno(const char *name) {
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

/* Lookup and ListMappings replies can be megabytes: they are decoded straight from the message
 * text (see "fast reply decoding" below) instead of through a json-c tree. */
struct fast_decode {
        /* what was asked */
        bool lookup;
        pid_t pid;
        uint64_t start_time;
        const uint64_t *addresses;
        size_t n_addresses;
        bool more;              /* asked for a streamed reply (ListMappings) */
        /* what was answered: done once a successful reply was decoded */
        size_t parts;           /* of a streamed reply, decoded so far */
        size_t streamed;        /* bytes of those parts */
        bool done;
        struct mapping_table table;
        struct memctl_lookup_result *results;
};

static int fast_decode_reply(struct fast_decode *f, const char *msg, size_t len);
static void fast_decode_done(struct fast_decode *f);

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
        size_t sent = 0;
        int write_error = 0;

        if (fast) {
                /* a retry starts the streamed reply over */
                fast->parts = 0;
                fast->streamed = 0;
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

static int call(memctl *c, const char *req, size_t req_len, struct fast_decode *fast,
                struct json_object **ret_parameters) {
        int r = call_attempts(c, req, req_len, fast, ret_parameters);

        /* The reply was decoded (or failed): the buffer is empty, keep it unless it is huge. */
        varlink_reader_trim(&c->reader, BUFFER_KEEP_MAX);
        return r;
}

/* Finishes the message begun with varlink_call_begin() and performs the call. */
static int call_writer(memctl *c, struct json_writer *w, struct fast_decode *fast,
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

/* ------------------------------------------------------------------ reply decoding */

/* A member of o; absent and null are both NULL. */
static struct json_object *member(struct json_object *o, const char *key) {
        struct json_object *v = NULL;

        if (!json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

static int get_string(struct json_object *o, const char *key, bool required, const char **ret) {
        struct json_object *v = member(o, key);
        const char *s;

        if (!v)
                return required ? -EPROTO : 0;
        if (!json_object_is_type(v, json_type_string))
                return -EPROTO;
        s = json_object_get_string(v);
        /* An escaped NUL would truncate the string silently. */
        if (strlen(s) != (size_t) json_object_get_string_len(v))
                return -EPROTO;
        *ret = s;
        return 0;
}

static int get_uint(struct json_object *o, const char *key, bool required, uint64_t *ret) {
        struct json_object *v = member(o, key);

        if (!v)
                return required ? -EPROTO : 0;
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
                return -EPROTO;
        *ret = json_object_get_uint64(v);
        return 0;
}

static int get_bool(struct json_object *o, const char *key, bool *ret) {
        struct json_object *v = member(o, key);

        if (!v)
                return 0;
        if (!json_object_is_type(v, json_type_boolean))
                return -EPROTO;
        *ret = json_object_get_boolean(v);
        return 0;
}

/* An address, offset or size: "0x" and hex digits, nothing else. */
static int get_hex(struct json_object *o, const char *key, bool required, uint64_t *ret, bool *ret_present) {
        const char *s = NULL;
        int r;

        r = get_string(o, key, required, &s);
        if (r < 0)
                return r;
        if (!s)
                return 0;
        if (s[0] != '0' || s[1] != 'x' || parse_u64(s, ret) < 0)
                return -EPROTO;
        if (ret_present)
                *ret_present = true;
        return 0;
}

/* "major:minor" in hex, as /proc/PID/maps shows a device, ending at term: *s is left there. */
static int parse_dev(const char **s, char term, uint32_t *ret_major, uint32_t *ret_minor) {
        const char *p = *s;
        uint32_t v[2] = {};

        for (unsigned part = 0; part < 2; part++) {
                unsigned digits = 0;

                for (; *p && *p != ':' && *p != term; p++, digits++) {
                        int d = unhexchar(*p);

                        if (d < 0 || digits >= 8)
                                return -EPROTO;
                        v[part] = v[part] << 4 | (uint32_t) d;
                }
                if (digits == 0 || (part == 0 && *p != ':') || (part == 1 && *p != term))
                        return -EPROTO;
                if (part == 0)
                        p++;
        }
        *s = p;
        *ret_major = v[0];
        *ret_minor = v[1];
        return 0;
}

/* The 4 permission characters at p, as /proc/PID/maps shows them. */
static int parse_perms(const char *p, struct memctl_mapping *m) {
        static const char perm_chars[4][2] = { { 'r', '-' }, { 'w', '-' }, { 'x', '-' }, { 's', 'p' } };

        for (unsigned i = 0; i < 4; i++) {
                if (p[i] == perm_chars[i][0])
                        m->flags |= 1u << i; /* READ, WRITE, EXEC, SHARED in that order */
                else if (p[i] != perm_chars[i][1])
                        return -EPROTO;
        }
        memcpy(m->perms, p, 4);
        m->perms[4] = 0;
        return 0;
}

static const char *const kind_names[] = {
        [MEMCTL_KIND_ANONYMOUS] = "anonymous",
        [MEMCTL_KIND_FILE] = "file",
        [MEMCTL_KIND_HEAP] = "heap",
        [MEMCTL_KIND_STACK] = "stack",
        [MEMCTL_KIND_VDSO] = "vdso",
        [MEMCTL_KIND_VVAR] = "vvar",
        [MEMCTL_KIND_VSYSCALL] = "vsyscall",
        [MEMCTL_KIND_MEMFD] = "memfd",
        [MEMCTL_KIND_ANON_NAMED] = "anon_named",
        [MEMCTL_KIND_SHMEM_NAMED] = "shmem_named",
        [MEMCTL_KIND_SPECIAL] = "special",
};

/* The kind named by the len bytes at s. */
static int kind_from_string(const char *s, size_t len) {
        for (size_t i = 1; i < ELEMENTSOF(kind_names); i++)
                if (strlen(kind_names[i]) == len && memcmp(s, kind_names[i], len) == 0)
                        return (int) i;
        /* A kind of a newer daemon: kind_name still tells what it is. */
        return MEMCTL_KIND_UNKNOWN;
}

static int mapping_finish(struct arena_chunk **arena, struct memctl_mapping *m, const char *perms, const char *dev,
                          const char *build_id);

static int parse_mapping(struct json_object *o, struct arena_chunk **arena, struct memctl_mapping *m) {
        const char *perms = NULL, *dev = NULL, *build_id = NULL;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return -EPROTO;

        *m = (struct memctl_mapping) { .size = sizeof(*m) };

        if ((r = get_hex(o, "start", true, &m->start, NULL)) < 0 ||
            (r = get_hex(o, "end", true, &m->end, NULL)) < 0 ||
            (r = get_hex(o, "offset", true, &m->offset, NULL)) < 0 ||
            (r = get_string(o, "perms", true, &perms)) < 0 ||
            (r = get_string(o, "dev", true, &dev)) < 0 ||
            (r = get_uint(o, "inode", true, &m->inode)) < 0 ||
            (r = get_uint(o, "page_size", false, &m->page_size)) < 0 ||
            (r = get_string(o, "kind", true, &m->kind_name)) < 0 ||
            (r = get_string(o, "name", false, &m->name)) < 0 ||
            (r = get_string(o, "path", false, &m->path)) < 0 ||
            (r = get_bool(o, "deleted", &m->deleted)) < 0 ||
            (r = get_string(o, "build_id", false, &build_id)) < 0)
                return r;
        m->kind = kind_from_string(m->kind_name, strlen(m->kind_name));
        return mapping_finish(arena, m, perms, dev, build_id);
}

/* Checks a build ID (lowercase hex, as the protocol promises) and sets m's build ID to it:
 * hex stays where it is, its binary form goes to the arena. */
static int build_id_set(struct arena_chunk **arena, struct memctl_mapping *m, const char *hex) {
        size_t l = strlen(hex);
        uint8_t *bin;

        if (l == 0 || l % 2 != 0 || l / 2 > MEMMAPD_BUILD_ID_MAX)
                return -EPROTO;
        bin = arena_alloc(arena, l / 2);
        if (!bin)
                return -ENOMEM;
        if (unhex_bytes(hex, l, true, bin) < 0)
                return -EPROTO;
        m->build_id_hex = hex;
        m->build_id = bin;
        m->build_id_size = l / 2;
        return 0;
}

/* What both decoders check and derive once a mapping's members are read (m->kind is set). */
static int mapping_finish(struct arena_chunk **arena, struct memctl_mapping *m, const char *perms, const char *dev,
                          const char *build_id) {
        int r;

        if (m->start >= m->end)
                return -EPROTO;
        if (strlen(perms) != 4 || parse_perms(perms, m) < 0)
                return -EPROTO;
        r = parse_dev(&dev, 0, &m->dev_major, &m->dev_minor);
        if (r < 0)
                return r;
        return build_id ? build_id_set(arena, m, build_id) : 0;
}

static int parse_process(struct json_object *params, pid_t pid, uint64_t start_time,
                         pid_t *ret_pid, uint64_t *ret_start_time) {
        struct json_object *p = member(params, "process");
        uint64_t reply_pid, reply_start_time;

        if (!p || !json_object_is_type(p, json_type_object))
                return -EPROTO;
        if (get_uint(p, "pid", true, &reply_pid) < 0 ||
            get_uint(p, "start_time", true, &reply_start_time) < 0)
                return -EPROTO;
        /* The daemon answers about the process we asked about, or not at all: asked about a
         * thread id, about its thread group (reply_pid is then the thread group id). */
        if (reply_pid == 0 || reply_pid > INT32_MAX || (start_time != 0 && reply_start_time != start_time))
                return -EPROTO;
        (void) pid;
        *ret_pid = (pid_t) reply_pid;
        *ret_start_time = reply_start_time;
        return 0;
}

static void mapping_table_done(struct mapping_table *t) {
        free(t->items);
        json_object_put(t->parameters);
        arena_free(&t->arena);
}

/* Decodes the process and mappings members shared by ListMappings and Lookup replies,
 * taking over params. */
static int mapping_table_parse(struct json_object *params, pid_t pid, uint64_t start_time,
                               struct mapping_table *t) {
        struct json_object *a;
        size_t n;
        int r;

        *t = (struct mapping_table) { .parameters = params };

        r = parse_process(params, pid, start_time, &t->pid, &t->start_time);
        if (r < 0)
                return r;

        a = member(params, "mappings");
        if (!a || !json_object_is_type(a, json_type_array))
                return -EPROTO;
        n = json_object_array_length(a);
        t->items = calloc(n > 0 ? n : 1, sizeof(*t->items));
        t->allocated = n > 0 ? n : 1;
        if (!t->items)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = parse_mapping(json_object_array_get_idx(a, i), &t->arena, &t->items[i]);
                if (r < 0)
                        return r;
        }
        t->n = n;
        return 0;
}

/* Copies src (a public struct of src_size bytes that starts with size_t size) into ret as
 * the caller's ret->size asks: see "ABI growth" in memctl.h. */
static int copy_sized(void *ret, const void *src, size_t src_size, size_t min_size) {
        size_t size;

        memcpy(&size, ret, sizeof(size));
        if (size < min_size)
                return -EINVAL;
        memcpy((char *) ret + sizeof(size_t), (const char *) src + sizeof(size_t),
               MIN(size, src_size) - sizeof(size_t));
        if (size > src_size)
                memset((char *) ret + src_size, 0, size - src_size);
        return 0;
}

static int mapping_table_get(const struct mapping_table *t, size_t index, struct memctl_mapping *ret) {
        if (!ret)
                return -EINVAL;
        if (index >= t->n)
                return -ERANGE;
        return copy_sized(ret, &t->items[index], sizeof(t->items[index]), MAPPING_SIZE_0_1);
}

static int process_get(const struct mapping_table *t, pid_t *ret_pid, uint64_t *ret_start_time) {
        if (ret_pid)
                *ret_pid = t->pid;
        if (ret_start_time)
                *ret_start_time = t->start_time;
        return 0;
}

/* ------------------------------------------------------------------ fast reply decoding */

/* A strict JSON reader for the successful replies of ListMappings and Lookup, reading the
 * message where the frame reader holds it and writing nothing there: the strings a result
 * keeps are copied to its arena, everything else (keys, addresses, numbers, permissions) is
 * read from the text as it is. A reply of 60,000 mappings costs a few allocations instead of
 * a json-c tree (decoding through json-c was three quarters of a 4,435-address Lookup's
 * time; see BENCHMARKS.md) or a copy of the message (a tenth of a large listing's time, most
 * of it page faults).
 * It never decides alone that a reply is bad: whatever it does not accept (an error reply,
 * and anything outside the narrow, strict subset it reads: RFC 8259 JSON in UTF-8, integers
 * only, nesting below J_DEPTH_MAX, each known member once, no lone UTF-16 surrogates) goes to
 * the general decoder (varlink_reply_parse() and the get_*() checks), which then answers as
 * it always did, from the untouched message. What it accepts, the general decoder accepts
 * with the same result. */

/* The daemon nests 5 levels; deeper unknown members go to the general decoder. */
#define J_DEPTH_MAX 16
/* Known keys are at most 11 bytes and a decoded byte takes at most 6 bytes of text: an
 * escaped key longer than this is none of them. */
#define J_KEY_SCRATCH 72
/* perms, dev, kind and the rarer forms of an address: room for any valid value, escaped. */
#define J_SHORT_MAX 128

/* Bytes a JSON string carries as they are: printable ASCII but '"' and '\\'. */
static const uint8_t j_plain[256] = {
        [0x20] = 1, [0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7f] = 1,
};

/* A string kept in the arena, by the text it was decoded from: consecutive mappings of one
 * file repeat their name, path and build ID, and keep one copy. */
struct jmemo {
        const char *raw;
        size_t raw_len;
        const char *copy;
        const uint8_t *build_id;
        size_t build_id_size;
};

struct jreader {
        const char *p;                  /* the next byte; the text ends in a NUL */
        const char *end;                /* that NUL */
        bool nul;                       /* the last string read held a \u0000 */
        struct arena_chunk **arena;     /* where kept strings go */
        struct jmemo name, build_id;
        char key[J_KEY_SCRATCH];        /* an escaped key, decoded */
};

static void j_ws(struct jreader *j) {
        while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
                j->p++;
}

static bool j_take(struct jreader *j, char ch) {
        j_ws(j);
        if (*j->p != ch)
                return false;
        j->p++;
        return true;
}

/* Stops at the first byte that is no hex digit, so never runs past the text's NUL. */
static int hex4(const char *p, uint32_t *ret) {
        uint32_t v = 0;

        for (unsigned i = 0; i < 4; i++) {
                int d = unhexchar(p[i]);

                if (d < 0)
                        return -EPROTO;
                v = v << 4 | (uint32_t) d;
        }
        *ret = v;
        return 0;
}

/* Checks the string at j->p and steps over it: *ret_raw points to its text between the
 * quotes, *ret_len bytes of it, and *ret_escaped tells whether it holds escapes (without
 * any, the text is the string). */
static int j_string(struct jreader *j, const char **ret_raw, size_t *ret_len, bool *ret_escaped) {
        const char *in, *start;
        bool escaped = false;

        j_ws(j);
        if (*j->p != '"')
                return -EPROTO;
        j->nul = false;
        start = in = j->p + 1;
        for (;;) {
                uint8_t c;

                while (j_plain[(uint8_t) *in])
                        in++;
                c = (uint8_t) *in;
                if (c == '"')
                        break;
                if (c < 0x20)
                        return -EPROTO; /* control characters, and the end of the text */
                if (c >= 0x80) {
                        /* The text ends in a NUL, which is no continuation byte: the
                         * check stops there before reading further. */
                        size_t n = utf8_sequence_length((const uint8_t *) in, 4);

                        if (n == 0)
                                return -EPROTO;
                        in += n;
                        continue;
                }

                /* An escape */
                escaped = true;
                in++;
                switch (*in) {
                case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                        in++;
                        break;
                case 'u': {
                        uint32_t cp, lo;

                        if (hex4(in + 1, &cp) < 0)
                                return -EPROTO;
                        in += 5;
                        if (cp >= 0xdc00 && cp <= 0xdfff)
                                return -EPROTO;
                        if (cp >= 0xd800 && cp <= 0xdbff) {
                                if (in[0] != '\\' || in[1] != 'u' || hex4(in + 2, &lo) < 0 || lo < 0xdc00 ||
                                    lo > 0xdfff)
                                        return -EPROTO;
                                in += 6;
                        }
                        if (cp == 0)
                                j->nul = true;
                        break;
                }
                default:
                        return -EPROTO;
                }
        }
        j->p = in + 1;
        *ret_raw = start;
        *ret_len = (size_t) (in - start);
        *ret_escaped = escaped;
        return 0;
}

/* Decodes the len bytes of string text at in, which j_string() accepted, to out: never more
 * bytes than len (UTF-8 is never longer than the escape it came from). Returns the length. */
static size_t j_unescape(const char *in, size_t len, char *out) {
        const char *end = in + len;
        char *o = out;

        while (in < end) {
                uint32_t cp = 0, lo = 0xdc00; /* hex4() cannot fail: j_string() checked the digits */

                if (*in != '\\') {
                        *o++ = *in++;
                        continue;
                }
                in += 2;
                switch (in[-1]) {
                case 'b': *o++ = '\b'; break;
                case 'f': *o++ = '\f'; break;
                case 'n': *o++ = '\n'; break;
                case 'r': *o++ = '\r'; break;
                case 't': *o++ = '\t'; break;
                case 'u':
                        (void) hex4(in, &cp);
                        in += 4;
                        if (cp >= 0xd800 && cp <= 0xdbff) {
                                (void) hex4(in + 2, &lo);
                                in += 6;
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        }
                        if (cp < 0x80)
                                *o++ = (char) cp;
                        else if (cp < 0x800) {
                                *o++ = (char) (0xc0 | cp >> 6);
                                *o++ = (char) (0x80 | (cp & 0x3f));
                        } else if (cp < 0x10000) {
                                *o++ = (char) (0xe0 | cp >> 12);
                                *o++ = (char) (0x80 | ((cp >> 6) & 0x3f));
                                *o++ = (char) (0x80 | (cp & 0x3f));
                        } else {
                                *o++ = (char) (0xf0 | cp >> 18);
                                *o++ = (char) (0x80 | ((cp >> 12) & 0x3f));
                                *o++ = (char) (0x80 | ((cp >> 6) & 0x3f));
                                *o++ = (char) (0x80 | (cp & 0x3f));
                        }
                        break;
                default: /* '"', '\\', '/' */
                        *o++ = in[-1];
                        break;
                }
        }
        return (size_t) (o - out);
}

/* The string's text into dst (len + 1 bytes), unescaped where it has escapes, NUL-terminated;
 * returns its length. */
static size_t j_copy_string(const char *raw, size_t len, bool escaped, char *dst) {
        if (escaped)
                len = j_unescape(raw, len, dst);
        else
                memcpy(dst, raw, len);
        dst[len] = 0;
        return len;
}

static bool is_digit_char(char ch) {
        return ch >= '0' && ch <= '9';
}

/* An integer literal: its magnitude and sign. Integers outside [INT64_MIN, UINT64_MAX] are
 * refused, as the general decoder refuses them. */
static int j_number(struct jreader *j, bool *ret_negative, uint64_t *ret_value) {
        const char *p = j->p;
        bool negative = false, overflow = false;
        uint64_t v = 0;

        if (*p == '-') {
                negative = true;
                p++;
        }
        if (!is_digit_char(*p))
                return -EPROTO;
        if (*p == '0' && is_digit_char(p[1]))
                return -EPROTO; /* leading zeros */
        for (; is_digit_char(*p); p++) {
                unsigned d = (unsigned) (*p - '0');

                if (v > (UINT64_MAX - d) / 10)
                        overflow = true;
                else
                        v = v * 10 + d;
        }
        /* Fractions and exponents: the daemon sends none; the general decoder takes them. */
        if (*p == '.' || *p == 'e' || *p == 'E')
                return -EPROTO;
        if (overflow || (negative && v > (uint64_t) INT64_MAX + 1))
                return -EPROTO;
        j->p = p;
        *ret_negative = negative;
        *ret_value = v;
        return 0;
}

static bool j_literal_len(struct jreader *j, const char *lit, size_t l) {
        /* The text ends in a NUL that no literal holds: the loop stops there at the latest. */
        for (size_t i = 0; i < l; i++)
                if (j->p[i] != lit[i])
                        return false;
        j->p += l;
        return true;
}
#define j_literal(j, lit) j_literal_len(j, lit, sizeof(lit) - 1)

/* True (and consumed) when the next value is null. */
static bool j_null(struct jreader *j) {
        j_ws(j);
        return j_literal(j, "null");
}

/* Checks and skips any value; depth is the nesting level a container here would have. */
static int j_skip(struct jreader *j, unsigned depth) {
        const char *s;
        size_t l;
        bool escaped, negative;
        uint64_t v;
        int r;

        j_ws(j);
        switch (*j->p) {
        case '"':
                return j_string(j, &s, &l, &escaped);
        case '{':
        case '[': {
                bool object = *j->p == '{';
                char close = object ? '}' : ']';

                if (depth >= J_DEPTH_MAX)
                        return -EPROTO;
                j->p++;
                if (j_take(j, close))
                        return 0;
                do {
                        if (object && ((r = j_string(j, &s, &l, &escaped)) < 0 || !j_take(j, ':')))
                                return -EPROTO;
                        r = j_skip(j, depth + 1);
                        if (r < 0)
                                return r;
                } while (j_take(j, ','));
                return j_take(j, close) ? 0 : -EPROTO;
        }
        case 't':
                return j_literal(j, "true") ? 0 : -EPROTO;
        case 'f':
                return j_literal(j, "false") ? 0 : -EPROTO;
        case 'n':
                return j_literal(j, "null") ? 0 : -EPROTO;
        default:
                return j_number(j, &negative, &v);
        }
}

/* Iterates the members of an object: call with *first true; returns 1 with *ret_key (and
 * its length, not NUL-terminated; valid until the next key) for each member, with the reader
 * at its value, 0 after the closing brace. A key is compared as it stands in the text unless
 * it holds escapes; one too long to be a known key is returned empty, which no known key is. */
static int j_member(struct jreader *j, bool *first, const char **ret_key, size_t *ret_len) {
        const char *key;
        size_t len;
        bool escaped;

        if (*first) {
                *first = false;
                if (!j_take(j, '{'))
                        return -EPROTO;
                if (j_take(j, '}'))
                        return 0;
        } else {
                if (j_take(j, '}'))
                        return 0;
                if (!j_take(j, ','))
                        return -EPROTO;
        }
        if (j_string(j, &key, &len, &escaped) < 0 || j->nul || !j_take(j, ':'))
                return -EPROTO;
        if (escaped) {
                if (len <= sizeof(j->key)) {
                        len = j_unescape(key, len, j->key);
                        key = j->key;
                } else
                        len = 0;
        }
        *ret_key = key;
        *ret_len = len;
        return 1;
}

/* Iterates the elements of an array likewise: 1 with the reader at the next element. */
static int j_element(struct jreader *j, bool *first) {
        if (*first) {
                *first = false;
                if (!j_take(j, '['))
                        return -EPROTO;
                return j_take(j, ']') ? 0 : 1;
        }
        if (j_take(j, ']'))
                return 0;
        return j_take(j, ',') ? 1 : -EPROTO;
}

#define key_is(key, len, name) ((len) == sizeof(name) - 1 && memcmp(key, name, sizeof(name) - 1) == 0)

/* The typed members, as get_string(), get_uint(), get_bool() and get_hex() read them. A
 * known member may appear once: *seen collects the bits. null means absent. */
static int j_seen(unsigned *seen, unsigned bit) {
        if (*seen & bit)
                return -EPROTO;
        *seen |= bit;
        return 0;
}

/* A string without NUL: 1 with its text (escaped when *ret_escaped), 0 for null. */
static int j_get_raw(struct jreader *j, const char **ret_raw, size_t *ret_len, bool *ret_escaped) {
        if (j_null(j))
                return 0;
        if (j_string(j, ret_raw, ret_len, ret_escaped) < 0 || j->nul)
                return -EPROTO;
        return 1;
}

/* A short string decoded into buf (J_SHORT_MAX bytes), NUL-terminated: 1, 0 for null. A
 * longer one is left to the general decoder. */
static int j_get_short(struct jreader *j, char *buf, size_t *ret_len) {
        const char *raw;
        size_t len;
        bool escaped;
        int r;

        r = j_get_raw(j, &raw, &len, &escaped);
        if (r <= 0)
                return r;
        if (len >= J_SHORT_MAX)
                return -EPROTO;
        len = j_copy_string(raw, len, escaped, buf);
        if (ret_len)
                *ret_len = len;
        return 1;
}

/* A string the result keeps: decoded into the arena, or the copy made of the same text
 * last time (memo). */
static int j_get_kept(struct jreader *j, struct jmemo *memo, const char **ret) {
        const char *raw;
        size_t raw_len, len;
        bool escaped;
        char *copy;
        int r;

        r = j_get_raw(j, &raw, &raw_len, &escaped);
        if (r <= 0)
                return r;
        len = raw_len;
        if (memo->copy && memo->raw_len == len && memcmp(memo->raw, raw, len) == 0) {
                *ret = memo->copy;
                return 1;
        }
        copy = arena_alloc(j->arena, len + 1);
        if (!copy)
                return -ENOMEM;
        len = j_copy_string(raw, len, escaped, copy);
        *memo = (struct jmemo) { .raw = raw, .raw_len = raw_len, .copy = copy };
        *ret = copy;
        return 1;
}

static int j_get_uint(struct jreader *j, uint64_t *ret) {
        bool negative;
        uint64_t v;

        if (j_null(j))
                return 0;
        j_ws(j);
        if (j_number(j, &negative, &v) < 0 || negative)
                return -EPROTO;
        *ret = v;
        return 1;
}

/* parse_u64() of a "0x..." string, with a table instead of branches: it was a sixth of the
 * client's time on a large Lookup. Same rules: at least one digit, leading zeros allowed,
 * nothing above UINT64_MAX. */
static int j_parse_hex(const char *s, uint64_t *ret) {
        const uint8_t *p = (const uint8_t *) s + 2;
        uint64_t v = 0;

        if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || *p == 0)
                return -EPROTO;
        for (; *p; p++) {
                uint8_t d = hex_value1[*p];

                if (d == 0 || v > (UINT64_MAX >> 4))
                        return -EPROTO;
                v = v << 4 | (uint64_t) (d - 1);
        }
        *ret = v;
        return 0;
}

/* What the daemon sends for an address, "0x" and 1 to 16 hex digits, read straight from the
 * text: 1 and *ret, or 0 (nothing consumed) for any other form. */
static int j_hex_plain(struct jreader *j, uint64_t *ret) {
        const uint8_t *p;
        uint64_t v = 0;
        unsigned n = 0;

        j_ws(j);
        p = (const uint8_t *) j->p;
        if (p[0] != '"' || p[1] != '0' || p[2] != 'x' || hex_value1[p[3]] == 0)
                return 0;
        for (p += 3; hex_value1[*p] != 0 && n < 16; p++, n++)
                v = v << 4 | (uint64_t) (hex_value1[*p] - 1);
        if (*p != '"')
                return 0;
        j->p = (const char *) p + 1;
        *ret = v;
        return 1;
}

static int j_get_hex(struct jreader *j, uint64_t *ret) {
        char s[J_SHORT_MAX];
        int r;

        /* Anything but the plain form (escapes, 17 digits, ...) takes the path below, which
         * decides the same. */
        r = j_hex_plain(j, ret);
        if (r != 0)
                return r;
        r = j_get_short(j, s, NULL);
        if (r <= 0)
                return r;
        if (s[1] != 'x' || j_parse_hex(s, ret) < 0)
                return -EPROTO;
        return 1;
}

static int j_get_bool(struct jreader *j, bool *ret) {
        j_ws(j);
        if (j_literal(j, "null"))
                return 0;
        if (j_literal(j, "true"))
                *ret = true;
        else if (j_literal(j, "false"))
                *ret = false;
        else
                return -EPROTO;
        return 1;
}

enum {
        M_START = 1u << 0, M_END = 1u << 1, M_OFFSET = 1u << 2, M_PERMS = 1u << 3, M_DEV = 1u << 4,
        M_INODE = 1u << 5, M_PAGE_SIZE = 1u << 6, M_KIND = 1u << 7, M_NAME = 1u << 8, M_PATH = 1u << 9,
        M_DELETED = 1u << 10, M_BUILD_ID = 1u << 11,
        M_REQUIRED = M_START | M_END | M_OFFSET | M_PERMS | M_DEV | M_INODE | M_KIND,
};

/* The M_* bit of a mapping member's key, 0 for an unknown one. Keys compared by length first,
 * with constant sizes the compiler inlines: a loop over a table calling memcmp() was a sixth
 * of the client's time on a large listing. */
static unsigned mapping_key_bit(const char *key, size_t len) {
        switch (len) {
        case 3:
                return key_is(key, len, "end") ? M_END : key_is(key, len, "dev") ? M_DEV : 0;
        case 4:
                return key_is(key, len, "kind")   ? M_KIND
                       : key_is(key, len, "name") ? M_NAME
                       : key_is(key, len, "path") ? M_PATH
                                                  : 0;
        case 5:
                return key_is(key, len, "start")   ? M_START
                       : key_is(key, len, "perms") ? M_PERMS
                       : key_is(key, len, "inode") ? M_INODE
                                                   : 0;
        case 6:
                return key_is(key, len, "offset") ? M_OFFSET : 0;
        case 7:
                return key_is(key, len, "deleted") ? M_DELETED : 0;
        case 8:
                return key_is(key, len, "build_id") ? M_BUILD_ID : 0;
        case 9:
                return key_is(key, len, "page_size") ? M_PAGE_SIZE : 0;
        default:
                return 0;
        }
}

/* The kind: the protocol's names need no copy. */
static int j_get_kind(struct jreader *j, struct memctl_mapping *m) {
        char s[J_SHORT_MAX];
        size_t len;
        int r;

        r = j_get_short(j, s, &len);
        if (r <= 0)
                return r;
        m->kind = kind_from_string(s, len);
        m->kind_name = m->kind != MEMCTL_KIND_UNKNOWN ? kind_names[m->kind] : arena_strndup(j->arena, s, len);
        return m->kind_name ? 1 : -ENOMEM;
}

/* The build ID: checked and converted once for a run of mappings of one file. */
static int j_get_build_id(struct jreader *j, struct memctl_mapping *m) {
        const char *hex = NULL, *previous = j->build_id.copy;
        int r;

        r = j_get_kept(j, &j->build_id, &hex);
        if (r <= 0)
                return r;
        if (hex == previous && j->build_id.build_id) {
                m->build_id_hex = hex;
                m->build_id = j->build_id.build_id;
                m->build_id_size = j->build_id.build_id_size;
                return 1;
        }
        r = build_id_set(j->arena, m, hex);
        if (r < 0)
                return r;
        j->build_id.build_id = m->build_id;
        j->build_id.build_id_size = m->build_id_size;
        return 1;
}

/* One mapping object, at nesting level depth. */
static int j_mapping(struct jreader *j, unsigned depth, struct memctl_mapping *m) {
        char perms[J_SHORT_MAX], dev[J_SHORT_MAX];
        unsigned seen = 0, present = 0;
        bool first = true;
        const char *key;
        size_t len;
        int r;

        if (depth >= J_DEPTH_MAX)
                return -EPROTO;
        *m = (struct memctl_mapping) { .size = sizeof(*m) };
        while ((r = j_member(j, &first, &key, &len)) > 0) {
                unsigned bit = mapping_key_bit(key, len);

                if (bit == 0) {
                        r = j_skip(j, depth + 1);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (j_seen(&seen, bit) < 0)
                        return -EPROTO;
                switch (bit) {
                case M_START: r = j_get_hex(j, &m->start); break;
                case M_END: r = j_get_hex(j, &m->end); break;
                case M_OFFSET: r = j_get_hex(j, &m->offset); break;
                case M_PERMS: r = j_get_short(j, perms, NULL); break;
                case M_DEV: r = j_get_short(j, dev, NULL); break;
                case M_INODE: r = j_get_uint(j, &m->inode); break;
                case M_PAGE_SIZE: r = j_get_uint(j, &m->page_size); break;
                case M_KIND: r = j_get_kind(j, m); break;
                case M_NAME: r = j_get_kept(j, &j->name, &m->name); break;
                case M_PATH: r = j_get_kept(j, &j->name, &m->path); break;
                case M_DELETED: r = j_get_bool(j, &m->deleted); break;
                default: r = j_get_build_id(j, m); break;
                }
                if (r < 0)
                        return r;
                if (r > 0)
                        present |= bit;
        }
        if (r < 0)
                return r;
        if ((present & M_REQUIRED) != M_REQUIRED)
                return -EPROTO;
        return mapping_finish(j->arena, m, perms, dev, NULL);
}

/* The text at j->p starts with the n bytes at s: true, and they are consumed. Reads no
 * further than the text, so a constant n compiles to a few word compares. */
static inline __attribute__((always_inline)) bool j_lit(struct jreader *j, const char *s, size_t n) {
        if ((size_t) (j->end - j->p) < n || memcmp(j->p, s, n) != 0)
                return false;
        j->p += n;
        return true;
}
#define J_LIT(j, s) j_lit(j, s, sizeof(s) - 1)

/* A mapping exactly as the daemon writes it: its members in its order, no whitespace, the
 * values in their plain forms. The keys are matched as whole literals instead of being read
 * one by one (reading keys and dispatching on them was a third of a large listing's time).
 * 1; 0 with the reader where it was, for j_mapping() to read what is not in this form (a
 * mapping it accepts, j_mapping() accepts alike); -ENOMEM. */
static int j_mapping_daemon(struct jreader *j, struct memctl_mapping *m) {
        const char *start = j->p, *s;
        bool negative;
        int r;

        *m = (struct memctl_mapping) { .size = sizeof(*m) };
        if (!J_LIT(j, "{\"start\":") || j_hex_plain(j, &m->start) <= 0 ||
            !J_LIT(j, ",\"end\":") || j_hex_plain(j, &m->end) <= 0 || m->start >= m->end ||
            !J_LIT(j, ",\"perms\":\"") || j->end - j->p < 5 || j->p[4] != '"' || parse_perms(j->p, m) < 0)
                goto other;
        j->p += 5;
        if (!J_LIT(j, ",\"offset\":") || j_hex_plain(j, &m->offset) <= 0 || !J_LIT(j, ",\"dev\":\""))
                goto other;
        s = j->p;
        if (parse_dev(&s, '"', &m->dev_major, &m->dev_minor) < 0)
                goto other;
        j->p = s + 1;
        if (!J_LIT(j, ",\"inode\":") || j_number(j, &negative, &m->inode) < 0 || negative)
                goto other;
        if (J_LIT(j, ",\"page_size\":") && (j_number(j, &negative, &m->page_size) < 0 || negative))
                goto other;
        if (!J_LIT(j, ",\"kind\":\""))
                goto other;
        for (s = j->p; j_plain[(uint8_t) *s]; s++)
                ;
        if (*s != '"')
                goto other;
        m->kind = kind_from_string(j->p, (size_t) (s - j->p));
        m->kind_name = m->kind != MEMCTL_KIND_UNKNOWN ? kind_names[m->kind]
                                                      : arena_strndup(j->arena, j->p, (size_t) (s - j->p));
        if (!m->kind_name)
                return -ENOMEM;
        j->p = s + 1;
        if (J_LIT(j, ",\"name\":") && (r = j_get_kept(j, &j->name, &m->name)) <= 0)
                goto other_r;
        if (J_LIT(j, ",\"path\":") && (r = j_get_kept(j, &j->name, &m->path)) <= 0)
                goto other_r;
        if (J_LIT(j, ",\"deleted\":")) {
                if (J_LIT(j, "true"))
                        m->deleted = true;
                else if (!J_LIT(j, "false"))
                        goto other;
        }
        if (J_LIT(j, ",\"build_id\":") && (r = j_get_build_id(j, m)) <= 0)
                goto other_r;
        if (!J_LIT(j, "}"))
                goto other;
        return 1;

other_r:
        if (r == -ENOMEM)
                return r;
other:
        j->p = start;
        return 0;
}

static int j_mappings(struct jreader *j, unsigned depth, struct mapping_table *t) {
        bool first = true;
        int r;

        if (j_null(j))
                return -EPROTO;
        if (depth >= J_DEPTH_MAX)
                return -EPROTO;
        while ((r = j_element(j, &first)) > 0) {
                if (t->n >= MAPPINGS_MAX)
                        return -EPROTO;
                if (t->n == t->allocated) {
                        size_t a = t->allocated ? t->allocated * 2 : 64;
                        struct memctl_mapping *items = realloc(t->items, a * sizeof(*items));

                        if (!items)
                                return -ENOMEM;
                        t->items = items;
                        t->allocated = a;
                }
                r = j_mapping_daemon(j, &t->items[t->n]);
                if (r == 0)
                        r = j_mapping(j, depth + 1, &t->items[t->n]);
                if (r < 0)
                        return r;
                t->n++;
        }
        return r;
}

static int j_process(struct jreader *j, unsigned depth, uint64_t *ret_pid, uint64_t *ret_start_time) {
        unsigned seen = 0, present = 0;
        bool first = true;
        const char *key;
        size_t len;
        int r;

        if (j_null(j) || depth >= J_DEPTH_MAX)
                return -EPROTO;
        while ((r = j_member(j, &first, &key, &len)) > 0) {
                if (key_is(key, len, "pid")) {
                        if (j_seen(&seen, 1) < 0 || (r = j_get_uint(j, ret_pid)) < 0)
                                return -EPROTO;
                        present |= r > 0 ? 1 : 0;
                } else if (key_is(key, len, "start_time")) {
                        if (j_seen(&seen, 2) < 0 || (r = j_get_uint(j, ret_start_time)) < 0)
                                return -EPROTO;
                        present |= r > 0 ? 2 : 0;
                } else if ((r = j_skip(j, depth + 1)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return present == 3 ? 0 : -EPROTO;
}

/* The echoed address of a result: 0 when it is the one asked. We asked in hex, but accept
 * any form that means the same, as parse_result() does. */
static int j_result_address(struct jreader *j, uint64_t address) {
        char s[J_SHORT_MAX];
        uint64_t v;

        if (j_hex_plain(j, &v) > 0)
                return v == address ? 0 : -EPROTO;
        if (j_get_short(j, s, NULL) <= 0 ||
            (s[0] == '0' && s[1] == 'x' ? j_parse_hex(s, &v) : parse_u64(s, &v)) < 0 || v != address)
                return -EPROTO;
        return 0;
}

static int result_finish(struct memctl_lookup_result *ret, uint64_t index);

/* One Lookup result, checked against the address asked and the mappings once all is read. */
static int j_result(struct jreader *j, unsigned depth, uint64_t address, struct memctl_lookup_result *ret) {
        unsigned seen = 0;
        bool first = true, have_address = false;
        uint64_t index = UINT64_MAX;
        const char *key;
        size_t len;
        int r;

        if (depth >= J_DEPTH_MAX)
                return -EPROTO;
        *ret = (struct memctl_lookup_result) {
                .size = sizeof(*ret),
                .address = address,
                .mapping = MEMCTL_NO_MAPPING,
        };
        while ((r = j_member(j, &first, &key, &len)) > 0) {
                if (key_is(key, len, "address")) {
                        if (j_seen(&seen, 1) < 0 || j_result_address(j, address) < 0)
                                return -EPROTO;
                        have_address = true;
                } else if (key_is(key, len, "mapping")) {
                        if (j_seen(&seen, 2) < 0 || j_get_uint(j, &index) < 0)
                                return -EPROTO;
                } else if (key_is(key, len, "reason")) {
                        const char *reason;
                        bool escaped;

                        if (j_seen(&seen, 4) < 0 || j_get_raw(j, &reason, &len, &escaped) < 0)
                                return -EPROTO;
                } else if (key_is(key, len, "file_offset")) {
                        if (j_seen(&seen, 8) < 0 || (r = j_get_hex(j, &ret->file_offset)) < 0)
                                return -EPROTO;
                        ret->has_file_offset = r > 0;
                } else if (key_is(key, len, "elf_vaddr")) {
                        if (j_seen(&seen, 16) < 0 || (r = j_get_hex(j, &ret->elf_vaddr)) < 0)
                                return -EPROTO;
                        ret->has_elf_vaddr = r > 0;
                } else if ((r = j_skip(j, depth + 1)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (!have_address)
                return -EPROTO;
        return result_finish(ret, index);
}

/* A result exactly as the daemon writes it, read like j_mapping_daemon() reads a mapping:
 * 1, or 0 with the reader where it was, for j_result(). */
static int j_result_daemon(struct jreader *j, uint64_t address, struct memctl_lookup_result *ret) {
        const char *start = j->p;
        uint64_t v, index = UINT64_MAX;
        bool negative;

        *ret = (struct memctl_lookup_result) {
                .size = sizeof(*ret),
                .address = address,
                .mapping = MEMCTL_NO_MAPPING,
        };
        if (!J_LIT(j, "{\"address\":") || j_hex_plain(j, &v) <= 0 || v != address)
                goto other;
        if (J_LIT(j, ",\"mapping\":") && (j_number(j, &negative, &index) < 0 || negative))
                goto other;
        if (J_LIT(j, ",\"reason\":\"")) {
                const char *s = j->p;

                while (j_plain[(uint8_t) *s])
                        s++;
                if (*s != '"')
                        goto other;
                j->p = s + 1;
        }
        if (J_LIT(j, ",\"file_offset\":")) {
                if (j_hex_plain(j, &ret->file_offset) <= 0)
                        goto other;
                ret->has_file_offset = true;
        }
        if (J_LIT(j, ",\"elf_vaddr\":")) {
                if (j_hex_plain(j, &ret->elf_vaddr) <= 0)
                        goto other;
                ret->has_elf_vaddr = true;
        }
        if (!J_LIT(j, "}"))
                goto other;
        return result_finish(ret, index) < 0 ? -EPROTO : 1;

other:
        j->p = start;
        return 0;
}

/* What both readers of a result do once its members are read: index is UINT64_MAX when it
 * had no mapping. */
static int result_finish(struct memctl_lookup_result *ret, uint64_t index) {
        if (index == UINT64_MAX) {
                /* not mapped, whatever the (possibly newer) reason */
                ret->has_file_offset = ret->has_elf_vaddr = false;
                ret->file_offset = ret->elf_vaddr = 0;
                return 0;
        }
        /* Checked against the mappings at the end, when they are all known. */
        ret->mapping = (size_t) index;
        if ((uint64_t) ret->mapping != index)
                return -EPROTO;
        return 0;
}

static int j_results(struct jreader *j, unsigned depth, struct fast_decode *f) {
        bool first = true;
        size_t n = 0;
        int r;

        if (j_null(j) || depth >= J_DEPTH_MAX)
                return -EPROTO;
        f->results = calloc(f->n_addresses > 0 ? f->n_addresses : 1, sizeof(*f->results));
        if (!f->results)
                return -ENOMEM;
        while ((r = j_element(j, &first)) > 0) {
                if (n >= f->n_addresses)
                        return -EPROTO;
                r = j_result_daemon(j, f->addresses[n], &f->results[n]);
                if (r == 0)
                        r = j_result(j, depth + 1, f->addresses[n], &f->results[n]);
                if (r < 0)
                        return r;
                n++;
        }
        if (r < 0)
                return r;
        return n == f->n_addresses ? 0 : -EPROTO;
}

static void fast_decode_done(struct fast_decode *f) {
        mapping_table_done(&f->table);
        free(f->results);
        f->table = (struct mapping_table) {};
        f->results = NULL;
        f->done = false;
}

/* 0: a successful reply, decoded into f; 2: a part of a streamed reply, added to f; 1: the
 * general decoder must look at it (what parts came before are dropped); -ENOMEM. */
static int fast_decode_reply(struct fast_decode *f, const char *msg, size_t len) {
        struct jreader j = { .p = msg, .end = msg + len, .arena = &f->table.arena };
        unsigned seen = 0;
        bool first = true, have_process = false, continues = false;
        uint64_t pid = 0, start_time = 0;
        size_t n_before;
        const char *key;
        size_t klen;
        int r;

        if (f->parts == 0)
                fast_decode_done(f);
        n_before = f->table.n;
        /* msg ends in the frame's NUL, and a NUL inside it needs no scan of its own: the
         * reader never steps over a NUL, so it stops there and the check that it ended at len
         * refuses the message. */

        while ((r = j_member(&j, &first, &key, &klen)) > 0) {
                if (key_is(key, klen, "error")) {
                        if (!j_null(&j))
                                goto fail;
                } else if (key_is(key, klen, "continues")) {
                        /* Only what we asked to be streamed may come in parts. */
                        if (j_get_bool(&j, &continues) < 0 || (continues && !f->more))
                                goto fail;
                } else if (key_is(key, klen, "parameters")) {
                        bool pfirst = true;

                        if (j_seen(&seen, 1) < 0)
                                goto fail;
                        if (j_null(&j))
                                continue; /* {}: no process, refused below */
                        while ((r = j_member(&j, &pfirst, &key, &klen)) > 0) {
                                if (key_is(key, klen, "process")) {
                                        if (j_seen(&seen, 2) < 0 || j_process(&j, 3, &pid, &start_time) < 0)
                                                goto fail;
                                        have_process = true;
                                } else if (key_is(key, klen, "mappings")) {
                                        if (j_seen(&seen, 4) < 0)
                                                goto fail;
                                        r = j_mappings(&j, 3, &f->table);
                                        if (r < 0)
                                                goto fail;
                                } else if (f->lookup && key_is(key, klen, "results")) {
                                        if (j_seen(&seen, 8) < 0)
                                                goto fail;
                                        r = j_results(&j, 3, f);
                                        if (r < 0)
                                                goto fail;
                                } else if ((r = j_skip(&j, 3)) < 0)
                                        goto fail;
                        }
                        if (r < 0)
                                goto fail;
                } else if ((r = j_skip(&j, 2)) < 0)
                        goto fail;
        }
        if (r < 0)
                goto fail;
        /* Nothing may follow the object, as for the general decoder. */
        if (j.p != msg + len)
                goto fail;

        if (!have_process || !(seen & 4) || (f->lookup && !(seen & 8)))
                goto fail;
        /* The daemon answers about the process we asked about (asked about a thread id, about
         * its thread group, whose id pid is then), or not at all; every part about the same one. */
        if (pid == 0 || pid > INT32_MAX || (f->start_time != 0 && start_time != f->start_time) ||
            (f->parts > 0 && (start_time != f->table.start_time || (pid_t) pid != f->table.pid)))
                goto fail;
        f->table.pid = (pid_t) pid;
        f->table.start_time = start_time;
        if (continues) {
                /* Every part but the last brings mappings: so MAPPINGS_MAX bounds the parts. */
                if (f->table.n == n_before)
                        goto fail;
                f->parts++;
                return 2;
        }
        for (size_t i = 0; f->lookup && i < f->n_addresses; i++) {
                const struct memctl_lookup_result *res = &f->results[i];
                const struct memctl_mapping *m;

                if (res->mapping == MEMCTL_NO_MAPPING)
                        continue;
                /* An index in range, of a mapping that does cover the address. */
                if (res->mapping >= f->table.n)
                        goto fail;
                m = &f->table.items[res->mapping];
                if (res->address < m->start || res->address >= m->end)
                        goto fail;
        }
        return 0;

fail:
        fast_decode_done(f);
        f->parts = 0;
        return r == -ENOMEM ? r : 1;
}

/* ------------------------------------------------------------------ ListMappings */

#define LIST_FLAGS (MEMCTL_EXECUTABLE_ONLY | MEMCTL_FILE_BACKED_ONLY | MEMCTL_BUILD_IDS)

static void write_process(struct json_writer *w, pid_t pid, uint64_t start_time) {
        json_writer_key(w, "pid");
        json_writer_int(w, pid);
        if (start_time != 0) {
                json_writer_key(w, "start_time");
                json_writer_uint(w, start_time);
        }
}

static void write_flag(struct json_writer *w, uint64_t flags, uint64_t flag, const char *key) {
        if (flags & flag) {
                json_writer_key(w, key);
                json_writer_bool(w, true);
        }
}

int memctl_list_mappings(memctl *c, pid_t pid, uint64_t start_time, uint64_t flags,
                         memctl_mappings **ret) {
        struct json_writer w;
        struct json_object *params = NULL;
        /* Streamed: large listings come in parts, each decoded while the daemon writes the
         * next. A daemon that does not stream answers in one message, which is read alike. */
        struct fast_decode fast = { .pid = pid, .start_time = start_time, .more = true };
        memctl_mappings *m;
        int r;

        if (c)
                error_clear(c); /* also when the call fails before it is sent */
        if (!c || !ret || pid <= 0 || (flags & ~LIST_FLAGS) || start_time > INT64_MAX)
                return -EINVAL;

        json_writer_init(&w, REQUEST_SIZE_MAX);
        varlink_call_begin(&w, "io.memmapd.ListMappings", true, false);
        write_process(&w, pid, start_time);
        write_flag(&w, flags, MEMCTL_EXECUTABLE_ONLY, "executable_only");
        write_flag(&w, flags, MEMCTL_FILE_BACKED_ONLY, "file_backed_only");
        write_flag(&w, flags, MEMCTL_BUILD_IDS, "build_ids");
        r = call_writer(c, &w, &fast, &params);
        json_writer_done(&w);
        if (r < 0) {
                fast_decode_done(&fast);
                return r;
        }

        m = calloc(1, sizeof(*m));
        if (!m) {
                json_object_put(params);
                fast_decode_done(&fast);
                return -ENOMEM;
        }
        if (fast.done) {
                m->table = fast.table;
                *ret = m;
                return 0;
        }
        r = mapping_table_parse(params, pid, start_time, &m->table);
        if (r < 0)
                return memctl_mappings_free(m), r;
        *ret = m;
        return 0;
}

size_t memctl_mappings_count(const memctl_mappings *m) {
        return m ? m->table.n : 0;
}

int memctl_mappings_get(const memctl_mappings *m, size_t index, struct memctl_mapping *ret) {
        if (!m)
                return -EINVAL;
        return mapping_table_get(&m->table, index, ret);
}

int memctl_mappings_get_process(const memctl_mappings *m, pid_t *ret_pid, uint64_t *ret_start_time) {
        if (!m)
                return -EINVAL;
        return process_get(&m->table, ret_pid, ret_start_time);
}

memctl_mappings *memctl_mappings_free(memctl_mappings *m) {
        if (m) {
                mapping_table_done(&m->table);
                free(m);
        }
        return NULL;
}

/* ------------------------------------------------------------------ Lookup */

static int parse_result(struct json_object *o, uint64_t address, const struct mapping_table *t,
                        struct memctl_lookup_result *ret) {
        const char *asked = NULL, *reason = NULL;
        uint64_t v, index = UINT64_MAX;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return -EPROTO;

        *ret = (struct memctl_lookup_result) {
                .size = sizeof(*ret),
                .address = address,
                .mapping = MEMCTL_NO_MAPPING,
        };

        /* The address as asked: we asked in hex, but accept any form that means the same. */
        r = get_string(o, "address", true, &asked);
        if (r < 0)
                return r;
        if (parse_u64(asked, &v) < 0 || v != address)
                return -EPROTO;

        if ((r = get_uint(o, "mapping", false, &index)) < 0 ||
            (r = get_string(o, "reason", false, &reason)) < 0)
                return r;
        if (index == UINT64_MAX)
                return 0; /* not mapped, whatever the (possibly newer) reason */

        /* An index in range, of a mapping that does cover the address. */
        if (index >= t->n || address < t->items[index].start || address >= t->items[index].end)
                return -EPROTO;
        ret->mapping = (size_t) index;

        if ((r = get_hex(o, "file_offset", false, &ret->file_offset, &ret->has_file_offset)) < 0 ||
            (r = get_hex(o, "elf_vaddr", false, &ret->elf_vaddr, &ret->has_elf_vaddr)) < 0)
                return r;
        return 0;
}

/* The Lookup request, formatted straight into c->request: through the JSON writer, a call
 * per address was a tenth of the client's time on a large Lookup. The same text as the
 * writer made (tests/test-libmemctl.c compares), within the same bound (-E2BIG). *ret_len
 * counts the NUL terminator. */
static int lookup_request(memctl *c, pid_t pid, uint64_t start_time, const uint64_t *addresses, size_t n,
                          uint64_t flags, size_t *ret_len) {
        static const char head[] = "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":";
        static const char start_key[] = ",\"start_time\":";
        static const char addresses_key[] = ",\"addresses\":[";
        static const char build_ids[] = ",\"build_ids\":true";
        char pid_text[20], start_text[20];
        size_t pid_len, start_len = 0, len;
        char *p;

        pid_len = json_format_uint((uint64_t) pid, pid_text);
        if (start_time != 0)
                start_len = json_format_uint(start_time, start_text);
        len = sizeof(head) - 1 + pid_len + (start_time != 0 ? sizeof(start_key) - 1 + start_len : 0) +
              sizeof(addresses_key) - 1 + 1 + (flags & MEMCTL_BUILD_IDS ? sizeof(build_ids) - 1 : 0) + 2;
        /* Each address: "0x", its digits, quotes and a comma (one comma fewer than addresses). */
        for (size_t i = 0; i < n && len <= REQUEST_SIZE_MAX; i++)
                len += (addresses[i] ? (size_t) (67 - __builtin_clzll(addresses[i])) / 4 : 1) + 4 + (i > 0);
        if (len > REQUEST_SIZE_MAX)
                return -E2BIG;

        if (c->request_allocated < len + 1) {
                p = realloc(c->request, len + 1);
                if (!p)
                        return -ENOMEM;
                c->request = p;
                c->request_allocated = len + 1;
        }

        p = mempcpy(c->request, head, sizeof(head) - 1);
        p = mempcpy(p, pid_text, pid_len);
        if (start_time != 0) {
                p = mempcpy(p, start_key, sizeof(start_key) - 1);
                p = mempcpy(p, start_text, start_len);
        }
        p = mempcpy(p, addresses_key, sizeof(addresses_key) - 1);
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        *p++ = ',';
                *p++ = '"';
                p += json_format_hex(addresses[i], p);
                *p++ = '"';
        }
        *p++ = ']';
        if (flags & MEMCTL_BUILD_IDS)
                p = mempcpy(p, build_ids, sizeof(build_ids) - 1);
        *p++ = '}';
        *p++ = '}';
        *p++ = 0;
        *ret_len = (size_t) (p - c->request);
        return 0;
}

static int lookup_once(memctl *c, pid_t pid, uint64_t start_time, const uint64_t *addresses,
                       size_t n_addresses, uint64_t flags, memctl_lookup_reply **ret) {
        struct json_object *params = NULL, *a;
        size_t len;
        struct fast_decode fast = {
                .lookup = true, .pid = pid, .start_time = start_time,
                .addresses = addresses, .n_addresses = n_addresses,
        };
        memctl_lookup_reply *l;
        int r;

        if (c)
                error_clear(c); /* also when the call fails before it is sent */
        if (!c || !ret || pid <= 0 || (flags & ~MEMCTL_BUILD_IDS) || start_time > INT64_MAX ||
            (!addresses && n_addresses > 0))
                return -EINVAL;

        r = lookup_request(c, pid, start_time, addresses, n_addresses, flags, &len);
        if (r >= 0)
                r = call(c, c->request, len, &fast, &params);
        if (c->request_allocated > BUFFER_KEEP_MAX) {
                free(c->request);
                c->request = NULL;
                c->request_allocated = 0;
        }
        if (r < 0) {
                fast_decode_done(&fast);
                return r;
        }

        l = calloc(1, sizeof(*l));
        if (!l) {
                json_object_put(params);
                fast_decode_done(&fast);
                return -ENOMEM;
        }
        if (fast.done) {
                l->table = fast.table;
                l->results = fast.results;
                l->n_results = n_addresses;
                *ret = l;
                return 0;
        }
        r = mapping_table_parse(params, pid, start_time, &l->table);
        if (r < 0)
                goto fail;

        a = member(params, "results");
        if (!a || !json_object_is_type(a, json_type_array) || json_object_array_length(a) != n_addresses) {
                r = -EPROTO;
                goto fail;
        }
        /* One array for all results: no allocation per address. */
        l->results = calloc(n_addresses > 0 ? n_addresses : 1, sizeof(*l->results));
        if (!l->results) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t i = 0; i < n_addresses; i++) {
                r = parse_result(json_object_array_get_idx(a, i), addresses[i], &l->table, &l->results[i]);
                if (r < 0)
                        goto fail;
        }
        l->n_results = n_addresses;
        /* The decoded results need nothing from the JSON tree: free that part of it now. */
        json_object_object_del(params, "results");

        *ret = l;
        return 0;

fail:
        memctl_lookup_reply_free(l);
        return r;
}

/* A mapping of one part of a split lookup, for merging. */
struct part_mapping {
        const struct memctl_mapping *m;
        size_t part, index;
};

static int part_mapping_compare(const void *a, const void *b) {
        const struct part_mapping *x = a, *y = b;

        if (x->m->start != y->m->start)
                return x->m->start < y->m->start ? -1 : 1;
        /* Stable: the earlier part first. */
        return x->part < y->part ? -1 : x->part > y->part;
}

static bool same_mapping(const struct memctl_mapping *a, const struct memctl_mapping *b) {
        return a->start == b->start && a->end == b->end && a->offset == b->offset && a->inode == b->inode &&
               a->dev_major == b->dev_major && a->dev_minor == b->dev_minor && a->flags == b->flags;
}

/* One reply out of the parts of a split batch, as if the daemon had answered it at once:
 * each distinct mapping once, in address order, and the results in the order asked. Takes
 * the parts (freed with the reply, also on failure). */
static int lookup_merge(memctl_lookup_reply **parts, size_t n_parts, size_t n_addresses, memctl_lookup_reply **ret) {
        _cleanup_free_ struct part_mapping *all = NULL;
        _cleanup_free_ size_t **remap = NULL;
        memctl_lookup_reply *l;
        size_t total = 0, k = 0, done = 0;
        int r = -ENOMEM;

        l = calloc(1, sizeof(*l));
        if (!l) {
                for (size_t i = 0; i < n_parts; i++)
                        memctl_lookup_reply_free(parts[i]);
                free(parts);
                return -ENOMEM;
        }
        l->parts = parts;
        l->n_parts = n_parts;
        l->table.pid = parts[0]->table.pid;
        l->table.start_time = parts[0]->table.start_time;

        for (size_t i = 0; i < n_parts; i++)
                total += parts[i]->table.n;
        all = calloc(MAX(total, (size_t) 1), sizeof(*all));
        remap = calloc(n_parts, sizeof(*remap));
        l->table.items = calloc(MAX(total, (size_t) 1), sizeof(*l->table.items));
        l->results = calloc(MAX(n_addresses, (size_t) 1), sizeof(*l->results));
        if (!all || !remap || !l->table.items || !l->results)
                goto fail;
        l->table.allocated = MAX(total, (size_t) 1);
        for (size_t i = 0; i < n_parts; i++) {
                remap[i] = calloc(MAX(parts[i]->table.n, (size_t) 1), sizeof(size_t));
                if (!remap[i])
                        goto fail;
                for (size_t j = 0; j < parts[i]->table.n; j++)
                        all[k++] = (struct part_mapping) { &parts[i]->table.items[j], i, j };
        }
        qsort(all, total, sizeof(*all), part_mapping_compare);
        for (size_t i = 0; i < total; i++) {
                if (l->table.n == 0 || !same_mapping(&l->table.items[l->table.n - 1], all[i].m))
                        l->table.items[l->table.n++] = *all[i].m;
                remap[all[i].part][all[i].index] = l->table.n - 1;
        }
        for (size_t i = 0; i < n_parts; i++)
                for (size_t j = 0; j < parts[i]->n_results; j++) {
                        struct memctl_lookup_result res = parts[i]->results[j];

                        if (done >= n_addresses) {
                                r = -EPROTO;
                                goto fail;
                        }
                        if (res.mapping != MEMCTL_NO_MAPPING)
                                res.mapping = remap[i][res.mapping];
                        l->results[done++] = res;
                }
        l->n_results = done;
        r = done == n_addresses ? 0 : -EPROTO;
fail:
        if (remap)
                for (size_t i = 0; i < n_parts; i++)
                        free(remap[i]);
        if (r < 0) {
                memctl_lookup_reply_free(l);
                return r;
        }
        *ret = l;
        return 0;
}

/* Whether the last call was refused for more than max_addresses addresses: the daemon's
 * max then, else 0. */
static uint64_t refused_max_addresses(const memctl *c, size_t n) {
        const char *limit = NULL;
        int64_t max = 0;

        if (!c->error_name || strcmp(c->error_name, "io.memmapd.LimitExceeded") != 0 ||
            memctl_last_error_string(c, "limit", &limit) < 0 || strcmp(limit, "max_addresses") != 0 ||
            memctl_last_error_int(c, "max", &max) < 0 || max <= 0 || (uint64_t) max >= n)
                return 0;
        return (uint64_t) max;
}

/* Rounds of splitting: the daemon may lower its limit (a restart with another config)
 * between the parts; each round needs a smaller limit, so this is a bound only. */
#define LOOKUP_SPLIT_ROUNDS 4

int memctl_lookup(memctl *c, pid_t pid, uint64_t start_time, const uint64_t *addresses,
                  size_t n_addresses, uint64_t flags, memctl_lookup_reply **ret) {
        int r;

        if (!c || !ret)
                return lookup_once(c, pid, start_time, addresses, n_addresses, flags, ret);

        for (unsigned round = 0; round < LOOKUP_SPLIT_ROUNDS; round++) {
                memctl_lookup_reply **parts;
                uint64_t pinned = start_time, max = c->max_addresses;
                size_t n_parts, batch;

                if (max == 0 || max >= n_addresses) {
                        r = lookup_once(c, pid, start_time, addresses, n_addresses, flags, ret);
                        if (r != -E2BIG || (max = refused_max_addresses(c, n_addresses)) == 0)
                                return r;
                        /* Learned once per connection: later large batches split at once. */
                        c->max_addresses = max;
                }

                batch = (size_t) max;
                n_parts = n_addresses / batch + (n_addresses % batch != 0);
                parts = calloc(n_parts, sizeof(*parts));
                if (!parts)
                        return -ENOMEM;
                r = 0;
                for (size_t i = 0; i < n_parts && r >= 0; i++) {
                        size_t off = i * batch;

                        r = lookup_once(c, pid, pinned, addresses + off, MIN(batch, n_addresses - off), flags,
                                        &parts[i]);
                        /* Every part about the process the first part found. */
                        if (r >= 0 && i == 0)
                                pinned = parts[0]->table.start_time;
                }
                if (r >= 0)
                        return lookup_merge(parts, n_parts, n_addresses, ret);
                for (size_t i = 0; i < n_parts; i++)
                        memctl_lookup_reply_free(parts[i]);
                free(parts);
                if (r != -E2BIG || (max = refused_max_addresses(c, batch)) == 0)
                        return r;
                c->max_addresses = max;
        }
        return -E2BIG;
}

size_t memctl_lookup_reply_count(const memctl_lookup_reply *l) {
        return l ? l->n_results : 0;
}

int memctl_lookup_reply_get(const memctl_lookup_reply *l, size_t index, struct memctl_lookup_result *ret) {
        if (!l || !ret)
                return -EINVAL;
        if (index >= l->n_results)
                return -ERANGE;
        return copy_sized(ret, &l->results[index], sizeof(l->results[index]), LOOKUP_RESULT_SIZE_0_1);
}

size_t memctl_lookup_reply_mapping_count(const memctl_lookup_reply *l) {
        return l ? l->table.n : 0;
}

int memctl_lookup_reply_get_mapping(const memctl_lookup_reply *l, size_t mapping_index,
                                    struct memctl_mapping *ret) {
        if (!l)
                return -EINVAL;
        return mapping_table_get(&l->table, mapping_index, ret);
}

int memctl_lookup_reply_get_process(const memctl_lookup_reply *l, pid_t *ret_pid, uint64_t *ret_start_time) {
        if (!l)
                return -EINVAL;
        return process_get(&l->table, ret_pid, ret_start_time);
}

memctl_lookup_reply *memctl_lookup_reply_free(memctl_lookup_reply *l) {
        if (l) {
                mapping_table_done(&l->table);
                free(l->results);
                for (size_t i = 0; i < l->n_parts; i++)
                        memctl_lookup_reply_free(l->parts[i]);
                free(l->parts);
                free(l);
        }
        return NULL;
}

/* ------------------------------------------------------------------ GetStatus */

static int parse_status(struct json_object *params, struct memctl_status_info *s) {
        struct json_object *limits = member(params, "limits");
        /* Newer counters: an older daemon has none of them. */
        const struct {
                struct json_object *in;
                const char *key;
                uint64_t *value;
        } optional[] = {
                { params, "oneway_skipped", &s->oneway_skipped },
                { params, "output_held", &s->output_held },
                { params, "parked", &s->parked },
                { params, "file_readers", &s->file_readers },
                { params, "file_readers_busy", &s->file_readers_busy },
                { params, "file_readers_stuck", &s->file_readers_stuck },
                { params, "file_read_timeouts", &s->file_read_timeouts },
                { params, "file_reads_refused", &s->file_reads_refused },
                { limits, "reserved_connections", &s->reserved_connections },
                { limits, "output_budget", &s->output_budget },
                { limits, "output_budget_per_uid", &s->output_budget_per_uid },
        };
        int r;

        *s = (struct memctl_status_info) { .size = sizeof(*s) };

        if ((r = get_string(params, "version", true, &s->version)) < 0 ||
            (r = get_string(params, "kernel", true, &s->kernel)) < 0 ||
            (r = get_string(params, "backend", true, &s->backend)) < 0 ||
            (r = get_uint(params, "uptime_usec", true, &s->uptime_usec)) < 0 ||
            (r = get_uint(params, "requests", true, &s->requests)) < 0 ||
            (r = get_uint(params, "errors", true, &s->errors)) < 0 ||
            (r = get_uint(params, "elf_cache_hits", true, &s->elf_cache_hits)) < 0 ||
            (r = get_uint(params, "elf_cache_misses", true, &s->elf_cache_misses)) < 0 ||
            (r = get_uint(params, "elf_cache_entries", true, &s->elf_cache_entries)) < 0 ||
            (r = get_uint(params, "connections", true, &s->connections)) < 0)
                return r;

        if (!limits || !json_object_is_type(limits, json_type_object))
                return -EPROTO;
        if ((r = get_uint(limits, "max_message_size", true, &s->max_message_size)) < 0 ||
            (r = get_uint(limits, "max_addresses", true, &s->max_addresses)) < 0 ||
            (r = get_uint(limits, "max_connections", true, &s->max_connections)) < 0 ||
            (r = get_uint(limits, "max_connections_per_uid", true, &s->max_connections_per_uid)) < 0 ||
            (r = get_uint(limits, "max_output_queue", true, &s->max_output_queue)) < 0 ||
            (r = get_uint(limits, "idle_timeout_sec", true, &s->idle_timeout_sec)) < 0 ||
            (r = get_uint(limits, "max_json_depth", true, &s->max_json_depth)) < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(optional); i++)
                if ((r = get_uint(optional[i].in, optional[i].key, false, optional[i].value)) < 0)
                        return r;
        return 0;
}

int memctl_get_status(memctl *c, memctl_status **ret) {
        struct json_writer w;
        struct json_object *params = NULL;
        memctl_status *s;
        int r;

        if (c)
                error_clear(c); /* also when the call fails before it is sent */
        if (!c || !ret)
                return -EINVAL;

        json_writer_init(&w, REQUEST_SIZE_MAX);
        varlink_call_begin(&w, "io.memmapd.GetStatus", false, false);
        r = call_writer(c, &w, NULL, &params);
        json_writer_done(&w);
        if (r < 0)
                return r;

        s = calloc(1, sizeof(*s));
        if (!s) {
                json_object_put(params);
                return -ENOMEM;
        }
        s->parameters = params;
        r = parse_status(params, &s->info);
        if (r < 0)
                return memctl_status_free(s), r;
        *ret = s;
        return 0;
}

int memctl_status_get_info(const memctl_status *s, struct memctl_status_info *ret) {
        if (!s || !ret)
                return -EINVAL;
        return copy_sized(ret, &s->info, sizeof(s->info), STATUS_INFO_SIZE_0_1);
}

memctl_status *memctl_status_free(memctl_status *s) {
        if (s) {
                json_object_put(s->parameters);
                free(s);
        }
        return NULL;
}

/* ------------------------------------------------------------------ raw calls */

/* Parses text that must be exactly one JSON object (whitespace around it allowed). */
static int parse_object(const char *text, struct json_object **ret) {
        struct json_tokener *tok;
        struct json_object *o;
        size_t len = strlen(text), end;

        tok = json_tokener_new_ex(VARLINK_JSON_DEPTH_DEFAULT);
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, text, (int) MIN(len, (size_t) INT_MAX));
        end = json_tokener_get_parse_end(tok);
        if (json_tokener_get_error(tok) != json_tokener_success || len > INT_MAX ||
            !json_object_is_type(o, json_type_object) || text[end + strspn(text + end, " \t\r\n")]) {
                json_object_put(o);
                json_tokener_free(tok);
                return -EINVAL;
        }
        json_tokener_free(tok);
        *ret = o;
        return 0;
}

/* The vdso is a few pages: a bound on what a reply may make us allocate. */
#define VDSO_IMAGE_MAX (256 * 1024)

static int unhex(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int memctl_get_vdso(memctl *c, pid_t pid, uint64_t start_time, uint8_t **ret_image, size_t *ret_size) {
        _cleanup_json_ struct json_object *params = NULL;
        _cleanup_free_ uint8_t *image = NULL;
        struct json_object *mapping;
        uint64_t start, end, reply_start_time;
        pid_t reply_pid;
        const char *hex, *s;
        struct json_writer w;
        size_t len;
        int r;

        if (c)
                error_clear(c); /* also when the call fails before it is sent */
        if (!c || pid <= 0 || start_time > INT64_MAX || !ret_image || !ret_size)
                return -EINVAL;

        json_writer_init(&w, REQUEST_SIZE_MAX);
        varlink_call_begin(&w, "io.memmapd.GetVdso", false, false);
        json_writer_key(&w, "pid");
        json_writer_int(&w, pid);
        if (start_time > 0) {
                json_writer_key(&w, "start_time");
                json_writer_uint(&w, start_time);
        }
        r = call_writer(c, &w, NULL, &params);
        json_writer_done(&w);
        if (r < 0)
                return r;

        /* Hostile until checked: the image is the mapping's size, in hex, and bounded. */
        if (parse_process(params, pid, start_time, &reply_pid, &reply_start_time) < 0)
                return -EPROTO;
        mapping = member(params, "mapping");
        if (!mapping || !json_object_is_type(mapping, json_type_object) || get_string(mapping, "start", true, &s) < 0 ||
            parse_u64(s, &start) < 0 || get_string(mapping, "end", true, &s) < 0 || parse_u64(s, &end) < 0 ||
            end <= start || end - start > VDSO_IMAGE_MAX || get_string(params, "image_hex", true, &hex) < 0)
                return -EPROTO;
        len = strlen(hex);
        if (len != 2 * (end - start))
                return -EPROTO;
        image = malloc(len / 2);
        if (!image)
                return -ENOMEM;
        for (size_t i = 0; i < len / 2; i++) {
                int hi = unhex(hex[2 * i]), lo = unhex(hex[2 * i + 1]);

                if (hi < 0 || lo < 0)
                        return -EPROTO;
                image[i] = (uint8_t) (hi << 4 | lo);
        }
        *ret_size = len / 2;
        *ret_image = TAKE_PTR(image);
        return 0;
}

int memctl_open_mapping_file(memctl *c, pid_t pid, uint64_t start_time, uint64_t address, int *ret_fd,
                             memctl_mappings **ret_mapping) {
        _cleanup_json_ struct json_object *params = NULL;
        _cleanup_close_ int fd = -1;
        memctl_mappings *m = NULL;
        struct memctl_mapping *item;
        struct json_writer w;
        struct stat st;
        uint64_t index;
        int r;

        if (c)
                error_clear(c); /* also when the call fails before it is sent */
        if (!c || pid <= 0 || start_time > INT64_MAX || !ret_fd)
                return -EINVAL;

        json_writer_init(&w, REQUEST_SIZE_MAX);
        varlink_call_begin(&w, "io.memmapd.OpenMappingFile", false, false);
        write_process(&w, pid, start_time);
        json_writer_key(&w, "address");
        json_writer_hex(&w, address);
        c->passed_fd = &fd;
        r = call_writer(c, &w, NULL, &params);
        c->passed_fd = NULL;
        json_writer_done(&w);
        if (r < 0)
                return r;

        /* Hostile until checked: one mapping, covering address, whose regular file the fd is. */
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->table.items = calloc(1, sizeof(*m->table.items));
        m->table.parameters = TAKE_PTR(params);
        if (!m->table.items)
                r = -ENOMEM;
        else if (parse_process(m->table.parameters, pid, start_time, &m->table.pid, &m->table.start_time) < 0 ||
                 get_uint(m->table.parameters, "fd_index", true, &index) < 0 || index != 0 ||
                 !member(m->table.parameters, "mapping") ||
                 parse_mapping(member(m->table.parameters, "mapping"), &m->table.arena, &m->table.items[0]) < 0)
                r = -EPROTO;
        if (r >= 0) {
                m->table.n = m->table.allocated = 1;
                item = &m->table.items[0];
                if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_ino != item->inode ||
                    major(st.st_dev) != item->dev_major || minor(st.st_dev) != item->dev_minor ||
                    address < item->start || address >= item->end)
                        r = -EPROTO;
        }
        if (r < 0) {
                memctl_mappings_free(m);
                return r;
        }
        *ret_fd = TAKE_FD(fd);
        if (ret_mapping)
                *ret_mapping = m;
        else
                memctl_mappings_free(m);
        return 0;
}

int memctl_call_json(memctl *c, const char *method, const char *parameters_json, char **ret_reply_json) {
        _cleanup_json_ struct json_object *in = NULL;
        _cleanup_json_ struct json_object *out = NULL;
        struct json_writer w;
        char *text;
        int r;

        if (c)
                error_clear(c); /* also when the call fails before it is sent */
        if (!c || !method || !*method || !ret_reply_json)
                return -EINVAL;
        if (parameters_json) {
                r = parse_object(parameters_json, &in);
                if (r < 0)
                        return r;
        }

        json_writer_init(&w, REQUEST_SIZE_MAX);
        varlink_call_begin(&w, method, false, false);
        if (in) {
                json_object_object_foreach(in, key, value) {
                        const char *v = json_object_to_json_string_ext(value, JSON_FLAGS);

                        json_writer_key(&w, key);
                        json_writer_raw(&w, v, strlen(v));
                }
        }
        r = call_writer(c, &w, NULL, &out);
        json_writer_done(&w);
        if (r < 0)
                return r;

        text = strdup(json_object_to_json_string_ext(out, JSON_FLAGS));
        if (!text)
                return -ENOMEM;
        *ret_reply_json = text;
        return 0;
}
