/* A watcher's queue of process events and their Watch reply text. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "engine.h"
#include "mapping.h"
#include "memmapd-codec.h"
#include "varlink.h"
#include "watch.h"

static void mapping_copy(struct watch_mapping *m, const struct proc_event_mapping *e, char **ret_path_room) {
        *m = (struct watch_mapping) {
                .start = e->start,
                .end = e->end,
                .offset = e->offset,
                .inode = e->inode,
                .dev_major = e->dev_major,
                .dev_minor = e->dev_minor,
                .flags = e->flags,
        };
        if (e->build_id && e->build_id_len > 0 && e->build_id_len <= sizeof(m->build_id)) {
                memcpy(m->build_id, e->build_id, e->build_id_len);
                m->build_id_len = e->build_id_len;
        }
        if (e->path) {
                size_t len = strlen(e->path);

                m->path = memcpy(*ret_path_room, e->path, len + 1);
                *ret_path_room += len + 1;
        }
}

struct watch_record *watch_record_new(const struct proc_event *e) {
        size_t n = e->n_added + e->n_removed, paths = 0;
        struct watch_record *r;
        char *room;

        if (e->n_added > WATCH_EVENT_MAPPINGS_MAX || e->n_removed > WATCH_EVENT_MAPPINGS_MAX ||
            n > WATCH_EVENT_MAPPINGS_MAX)
                return NULL;
        for (size_t i = 0; i < e->n_added; i++)
                paths += e->added[i].path ? strlen(e->added[i].path) + 1 : 0;
        for (size_t i = 0; i < e->n_removed; i++)
                paths += e->removed[i].path ? strlen(e->removed[i].path) + 1 : 0;
        /* One allocation: the record, its mappings, their paths. */
        r = malloc(sizeof(*r) + n * sizeof(struct watch_mapping) + paths);
        if (!r)
                return NULL;
        *r = (struct watch_record) {
                .type = e->type,
                .pid = e->pid,
                .parent = e->parent,
                .start_time = e->start_time,
                .time_usec = e->time_usec,
                .bytes = sizeof(*r) + n * sizeof(struct watch_mapping) + paths,
                .n_added = e->n_added,
                .n_removed = e->n_removed,
                .mappings = n > 0 ? (struct watch_mapping *) (r + 1) : NULL,
                .range_start = e->range_start,
                .range_end = e->range_end,
                .unknown = e->unknown,
        };
        memcpy(r->comm, e->comm, sizeof(r->comm) - 1);
        room = (char *) (r + 1) + n * sizeof(struct watch_mapping);
        for (size_t i = 0; i < e->n_added; i++)
                mapping_copy(&r->mappings[i], &e->added[i], &room);
        for (size_t i = 0; i < e->n_removed; i++)
                mapping_copy(&r->mappings[e->n_added + i], &e->removed[i], &room);
        return r;
}

void watch_record_free(struct watch_record *r) {
        free(r);
}

bool watch_queue_push(struct watch_queue *q, struct watch_record *r) {
        if (!r) {
                q->dropped++;
                return false;
        }
        if (q->n >= WATCH_QUEUE_EVENTS || q->bytes + r->bytes > WATCH_QUEUE_BYTES) {
                q->dropped++;
                watch_record_free(r);
                return false;
        }
        r->dropped_before = q->dropped;
        q->dropped = 0;
        r->next = NULL;
        if (q->tail)
                q->tail->next = r;
        else
                q->head = r;
        q->tail = r;
        q->n++;
        q->bytes += r->bytes;
        return true;
}

void watch_queue_lost(struct watch_queue *q, uint64_t n) {
        q->dropped += n;
}

struct watch_record *watch_queue_pop(struct watch_queue *q) {
        struct watch_record *r = q->head;

        if (!r)
                return NULL;
        q->head = r->next;
        if (!q->head)
                q->tail = NULL;
        q->n--;
        q->bytes -= r->bytes;
        return r;
}

bool watch_queue_empty(const struct watch_queue *q) {
        return !q->head && q->dropped == 0;
}

void watch_queue_clear(struct watch_queue *q) {
        struct watch_record *r;

        while ((r = watch_queue_pop(q)))
                watch_record_free(r);
        q->dropped = 0;
}

static void write_mappings(struct json_writer *w, const char *key, const struct watch_mapping *m, size_t n) {
        json_writer_key(w, key);
        json_writer_array_begin(w);
        for (size_t i = 0; i < n; i++) {
                struct memmapd_mapping v = {
                        .start = m[i].start,
                        .end = m[i].end,
                        .offset = m[i].offset,
                        .inode = m[i].inode,
                        .dev_major = m[i].dev_major,
                        .dev_minor = m[i].dev_minor,
                        .flags = m[i].flags,
                        .kind = "file",
                        .name = m[i].path,
                        .path = m[i].path,
                        .path_len = m[i].path ? strlen(m[i].path) : 0,
                        .has_deleted = true,
                        .build_id = m[i].build_id_len ? m[i].build_id : NULL,
                        .build_id_len = m[i].build_id_len,
                };

                memmapd_write_mapping(w, &v);
        }
        json_writer_array_end(w);
}

void watch_write_event(struct json_writer *w, const struct watch_record *r) {
        char comm[sizeof(r->comm)];
        /* A change not known is an overflow of the process's events: a client that ignores
         * whose reads everything again, and is still right. */
        bool overflow = r->type == PROC_EVENT_MAPPINGS && r->unknown;

        varlink_reply_begin(w, NULL, true);
        json_writer_key(w, "event");
        json_writer_string(w, overflow ? "overflow" : proc_event_type_to_string(r->type));
        if (overflow) {
                json_writer_key(w, "dropped");
                json_writer_uint(w, 1);
        }
        memmapd_write_process(w, r->pid, r->start_time, false);
        if (r->type == PROC_EVENT_FORK) {
                json_writer_key(w, "parent");
                json_writer_int(w, r->parent);
        }
        /* The kernel's comm is any bytes: shown as printable ASCII, others as '?'. */
        for (size_t i = 0; i < sizeof(comm); i++) {
                unsigned char ch = (unsigned char) r->comm[i];

                comm[i] = ch == 0 ? 0 : (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '"') ? (char) ch : '?';
                if (ch == 0)
                        break;
        }
        comm[sizeof(comm) - 1] = 0;
        json_writer_key(w, "comm");
        json_writer_string(w, comm);
        json_writer_key(w, "time_usec");
        json_writer_uint(w, r->time_usec);
        if (r->type == PROC_EVENT_MAPPINGS && !overflow) {
                write_mappings(w, "added", r->mappings, r->n_added);
                write_mappings(w, "removed", r->mappings + r->n_added, r->n_removed);
        }
        if (r->type == PROC_EVENT_MAPPINGS && r->range_end > r->range_start) {
                json_writer_key(w, "range_start");
                json_writer_uint(w, r->range_start);
                json_writer_key(w, "range_end");
                json_writer_uint(w, r->range_end);
        }
        varlink_message_end(w);
}

void watch_write_overflow(struct json_writer *w, uint64_t n) {
        varlink_reply_begin(w, NULL, true);
        json_writer_key(w, "event");
        json_writer_string(w, "overflow");
        json_writer_key(w, "dropped");
        json_writer_uint(w, n);
        varlink_message_end(w);
}

void watch_write_watching(struct json_writer *w) {
        varlink_reply_begin(w, NULL, true);
        json_writer_key(w, "event");
        json_writer_string(w, "watching");
        varlink_message_end(w);
}

/* ------------------------------------------------------------------ mappings the daemon reads */

struct list_state {
        struct watch_mapping *items;
        size_t n, allocated;
};

static int visit_exec_mapping(struct mapping *m, void *userdata) {
        struct list_state *st = userdata;
        struct watch_mapping *x;

        if (!(m->flags & MAPPING_EXEC) || m->kind != MAPPING_KIND_FILE || !m->name)
                return 0;
        if (st->n >= WATCH_EVENT_MAPPINGS_MAX)
                return -E2BIG;
        if (st->n == st->allocated) {
                size_t k = st->allocated ? st->allocated * 2 : 16;

                x = reallocarray(st->items, k, sizeof(*x));
                if (!x)
                        return -ENOMEM;
                st->items = x;
                st->allocated = k;
        }
        x = &st->items[st->n];
        *x = (struct watch_mapping) {
                .start = m->start,
                .end = m->end,
                .offset = m->offset,
                .inode = m->inode,
                .dev_major = m->dev_major,
                .dev_minor = m->dev_minor,
                .flags = m->flags,
        };
        x->path = strndup(m->name, mapping_path_len(m));
        if (!x->path)
                return -ENOMEM;
        st->n++;
        return 0;
}

void watch_mappings_free(struct watch_mapping *m, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(m[i].path);
        free(m);
}

int watch_list_exec_mappings(struct engine *e, const struct process *p, struct watch_mapping **ret, size_t *ret_n) {
        struct list_state st = {};
        int r;

        r = engine_list_each(e, p, ENGINE_EXECUTABLE_ONLY | ENGINE_FILE_BACKED_ONLY, visit_exec_mapping, &st);
        if (r < 0) {
                watch_mappings_free(st.items, st.n);
                return r;
        }
        *ret = st.items;
        *ret_n = st.n;
        return 0;
}

static bool mapping_same(const struct watch_mapping *a, const struct watch_mapping *b) {
        return a->start == b->start && a->end == b->end && a->offset == b->offset && a->inode == b->inode &&
               a->dev_major == b->dev_major && a->dev_minor == b->dev_minor && a->flags == b->flags &&
               strcmp(a->path ?: "", b->path ?: "") == 0;
}

static bool mapping_in(const struct watch_mapping *m, const struct watch_mapping *set, size_t n) {
        size_t lo = 0, hi = n;

        /* set is sorted by start and its mappings do not overlap. */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (set[mid].start < m->start)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < n && mapping_same(&set[lo], m);
}

static struct proc_event_mapping event_mapping(const struct watch_mapping *m) {
        return (struct proc_event_mapping) {
                .start = m->start, .end = m->end, .offset = m->offset,
                .dev_major = m->dev_major, .dev_minor = m->dev_minor, .inode = m->inode,
                .flags = m->flags, .path = m->path,
        };
}

struct watch_record *watch_record_diff(pid_t pid, uint64_t start_time, uint64_t time_usec,
                                       const struct watch_mapping *old, size_t n_old,
                                       const struct watch_mapping *new, size_t n_new, bool *ret_oom) {
        _cleanup_free_ struct proc_event_mapping *added = NULL, *removed = NULL;
        struct proc_event e = {
                .type = PROC_EVENT_MAPPINGS, .pid = pid, .start_time = start_time, .time_usec = time_usec,
        };
        struct watch_record *r;

        *ret_oom = false;
        added = calloc(n_new + 1, sizeof(*added));
        removed = calloc(n_old + 1, sizeof(*removed));
        if (!added || !removed) {
                *ret_oom = true;
                return NULL;
        }
        for (size_t i = 0; i < n_new; i++)
                if (!mapping_in(&new[i], old, n_old))
                        added[e.n_added++] = event_mapping(&new[i]);
        for (size_t i = 0; i < n_old; i++)
                if (!mapping_in(&old[i], new, n_new))
                        removed[e.n_removed++] = event_mapping(&old[i]);
        if (e.n_added == 0 && e.n_removed == 0)
                return NULL;
        e.added = added;
        e.removed = removed;
        r = watch_record_new(&e);
        if (!r)
                *ret_oom = true;
        return r;
}
