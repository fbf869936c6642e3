/* libmemctl's Watch stream: the call, and its events decoded one at a time. */

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "libmemctl-internal.h"
#include "varlink.h"

/* Mappings one event may carry (the daemon sends at most 1024 each way). */
#define EVENT_MAPPINGS_MAX 4096
#define EVENT_SIZE_MIN ENDOF(struct memctl_event, dropped)

struct memctl_watch {
        memctl *c;
        /* What the last event handed out points into. */
        struct json_object *parameters;
        struct arena_chunk *arena;
        struct memctl_mapping *mappings;
        size_t allocated;
        bool ended;
};

static void event_data_clear(memctl_watch *w) {
        json_object_put(w->parameters);
        w->parameters = NULL;
        arena_free(&w->arena);
}

memctl_watch *memctl_watch_free(memctl_watch *w) {
        if (!w)
                return NULL;
        event_data_clear(w);
        free(w->mappings);
        free(w);
        return NULL;
}

int memctl_watch_fd(const memctl_watch *w) {
        return w ? w->c->fd : -EINVAL;
}

/* Writes all of req, waiting for the socket until deadline. */
static int send_all(int fd, const char *req, size_t len, uint64_t deadline) {
        size_t sent = 0;

        while (sent < len) {
                ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);

                if (n > 0) {
                        sent += (size_t) n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno != EAGAIN)
                        return -errno;
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                int k = poll(&p, 1, poll_timeout(deadline));

                if (k == 0)
                        return -ETIMEDOUT;
                if (k < 0 && errno != EINTR)
                        return -errno;
        }
        return 0;
}

/* The next message: 1 and *ret (valid until the next read), 0 when none came by deadline. */
static int next_message(memctl_watch *w, uint64_t deadline, const char **ret, size_t *ret_len) {
        memctl *c = w->c;

        for (;;) {
                int r = varlink_reader_next(&c->reader, ret, ret_len);
                ssize_t n;

                if (r != 0)
                        return r;
                if (w->ended)
                        return -ECONNRESET;
                n = varlink_reader_read_fd(&c->reader, c->fd);
                if (n > 0)
                        continue;
                if (n == 0) {
                        w->ended = true;
                        continue;       /* what came before the end is handed out first */
                }
                if (n != -EAGAIN)
                        return (int) n;
                struct pollfd p = { .fd = c->fd, .events = POLLIN };
                int k = poll(&p, 1, poll_timeout(deadline));

                if (k == 0)
                        return 0;
                if (k < 0 && errno != EINTR)
                        return -errno;
        }
}

/* The reply as a Watch event's parameters (taken), or the error it is (kept on c). */
static int decode_reply(memctl_watch *w, const char *msg, size_t len, struct json_object **ret) {
        struct varlink_reply reply = {};
        int r;

        r = varlink_reply_parse(msg, len, 64, &reply);
        if (r < 0)
                return -EBADMSG;
        if (reply.error) {
                error_clear(w->c);
                w->c->error_name = TAKE_PTR(reply.error);
                w->c->error_parameters = TAKE_PTR(reply.parameters);
                varlink_reply_done(&reply);
                return error_to_errno(w->c->error_name);
        }
        if (!reply.continues) {
                /* The stream never ends by a reply. */
                varlink_reply_done(&reply);
                return -EBADMSG;
        }
        *ret = TAKE_PTR(reply.parameters);
        varlink_reply_done(&reply);
        return 0;
}

int memctl_watch_start(memctl *c, pid_t pid, uint64_t start_time, memctl_watch **ret) {
        _cleanup_(json_writer_done) struct json_writer jw;
        _cleanup_json_ struct json_object *params = NULL;
        _cleanup_free_ char *req = NULL;
        uint64_t deadline;
        struct json_object *v;
        const char *msg;
        size_t len;
        memctl_watch *w;
        int r;

        if (!c || !ret || pid < 0 || c->fd < 0)
                return -EINVAL;
        error_clear(c);
        json_writer_init(&jw, 0);
        varlink_call_begin(&jw, MEMMAPD_INTERFACE ".Watch", true, false);
        if (pid > 0) {
                json_writer_key(&jw, "pid");
                json_writer_int(&jw, pid);
                if (start_time > 0) {
                        json_writer_key(&jw, "start_time");
                        json_writer_uint(&jw, start_time);
                }
        }
        varlink_message_end(&jw);
        r = json_writer_finish(&jw, &req, &len);
        if (r < 0)
                return r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->c = c;
        deadline = deadline_after(c->timeout_usec);
        r = send_all(c->fd, req, len, deadline);
        if (r >= 0)
                r = next_message(w, deadline, &msg, &len);
        if (r == 0)
                r = -ETIMEDOUT;
        if (r > 0)
                r = decode_reply(w, msg, len, &params);
        if (r >= 0 && (!json_object_object_get_ex(params, "event", &v) ||
                       strcmp(json_object_get_string(v) ?: "", "watching") != 0))
                r = -EBADMSG;
        if (r < 0) {
                memctl_watch_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

static const char *const event_names[] = {
        [MEMCTL_EVENT_EXEC] = "exec",
        [MEMCTL_EVENT_EXIT] = "exit",
        [MEMCTL_EVENT_FORK] = "fork",
        [MEMCTL_EVENT_MAPPINGS] = "mappings",
        [MEMCTL_EVENT_OVERFLOW] = "overflow",
};

static int get_u64(struct json_object *o, const char *key, uint64_t *ret) {
        struct json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !v)
                return 0;
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
                return -EBADMSG;
        *ret = json_object_get_uint64(v);
        return 1;
}

/* An array of Mapping (NULL: absent) into w->mappings from index at. */
static int decode_mappings(memctl_watch *w, struct json_object *a, size_t at, size_t *ret_n) {
        size_t n;

        *ret_n = 0;
        if (!a)
                return 0;
        if (!json_object_is_type(a, json_type_array))
                return -EBADMSG;
        n = json_object_array_length(a);
        if (n > EVENT_MAPPINGS_MAX || at + n > 2 * EVENT_MAPPINGS_MAX)
                return -EBADMSG;
        if (at + n > w->allocated) {
                struct memctl_mapping *x = reallocarray(w->mappings, at + n, sizeof(*x));

                if (!x)
                        return -ENOMEM;
                w->mappings = x;
                w->allocated = at + n;
        }
        for (size_t i = 0; i < n; i++) {
                struct memctl_mapping *m = &w->mappings[at + i];
                int r;

                *m = (struct memctl_mapping) { .size = sizeof(*m) };
                r = parse_mapping(json_object_array_get_idx(a, i), &w->arena, m);
                if (r < 0)
                        return r;
        }
        *ret_n = n;
        return 0;
}

static int decode_event(memctl_watch *w, struct json_object *p, struct memctl_event *e) {
        struct json_object *v, *added = NULL, *removed = NULL;
        const char *name;
        uint64_t u;
        size_t n_added, n_removed;
        int r;

        if (!json_object_object_get_ex(p, "event", &v) || !json_object_is_type(v, json_type_string))
                return -EBADMSG;
        name = json_object_get_string(v);
        e->type_name = name;
        for (size_t i = 1; i < ELEMENTSOF(event_names); i++)
                if (strcmp(name, event_names[i]) == 0)
                        e->type = (int) i;
        e->comm = "";
        if (json_object_object_get_ex(p, "comm", &v) && json_object_is_type(v, json_type_string))
                e->comm = json_object_get_string(v);
        if (json_object_object_get_ex(p, "process", &v) && v) {
                pid_t pid;
                bool kthread;

                r = parse_process(p, 0, 0, &pid, &e->start_time, &kthread);
                if (r < 0)
                        return -EBADMSG;
                e->pid = pid;
        }
        if ((r = get_u64(p, "parent", &u)) < 0)
                return r;
        if (r > 0) {
                if (u > INT32_MAX)
                        return -EBADMSG;
                e->parent = (pid_t) u;
        }
        if ((r = get_u64(p, "time_usec", &e->time_usec)) < 0 || (r = get_u64(p, "dropped", &e->dropped)) < 0 ||
            (r = get_u64(p, "range_start", &e->range_start)) < 0 || (r = get_u64(p, "range_end", &e->range_end)) < 0)
                return r;
        if (e->range_end < e->range_start)
                return -EBADMSG;
        json_object_object_get_ex(p, "added", &added);
        json_object_object_get_ex(p, "removed", &removed);
        r = decode_mappings(w, added, 0, &n_added);
        if (r >= 0)
                r = decode_mappings(w, removed, n_added, &n_removed);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        e->n_added = n_added;
        e->n_removed = n_removed;
        e->added = n_added ? w->mappings : NULL;
        e->removed = n_removed ? w->mappings + n_added : NULL;
        return 0;
}

int memctl_watch_next(memctl_watch *w, uint64_t timeout_usec, struct memctl_event *ret) {
        struct memctl_event e = {};
        struct json_object *params = NULL;
        const char *msg;
        size_t len;
        int r;

        if (!w || !ret || ret->size < EVENT_SIZE_MIN)
                return -EINVAL;
        event_data_clear(w);
        r = next_message(w, timeout_usec == 0 ? 0 : deadline_after(timeout_usec), &msg, &len);
        if (r <= 0)
                return r;
        r = decode_reply(w, msg, len, &params);
        if (r < 0)
                return r;
        w->parameters = params;
        r = decode_event(w, params, &e);
        if (r < 0)
                return r;
        e.size = ret->size;
        return copy_sized(ret, &e, sizeof(e), EVENT_SIZE_MIN) < 0 ? -EINVAL : 1;
}
