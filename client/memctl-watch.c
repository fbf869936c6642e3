/* memctl watch: process events as they happen, one line (or JSON object) each. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "memctl-cli.h"
#include "memctl-commands.h"

static void watch_freep(memctl_watch **w) {
        memctl_watch_free(*w);
}

static void print_mappings(char sign, const struct memctl_mapping *m, size_t n) {
        for (size_t i = 0; i < n; i++)
                printf(" %c%" PRIx64 "-%" PRIx64 ":%" PRIx64 ":%s", sign, m[i].start, m[i].end, m[i].offset,
                       m[i].path ?: "?");
}

static void print_line(const struct memctl_event *e) {
        if (e->type == MEMCTL_EVENT_OVERFLOW && e->pid == 0) {
                printf("overflow dropped=%" PRIu64 "\n", e->dropped);
                return;
        }
        printf("%" PRIu64 ".%06" PRIu64 " %s %d/%" PRIu64 " %s", e->time_usec / 1000000, e->time_usec % 1000000,
               e->type_name, (int) e->pid, e->start_time, e->comm);
        if (e->type == MEMCTL_EVENT_FORK)
                printf(" parent=%d", (int) e->parent);
        if (e->range_end > e->range_start)
                printf(" range=%" PRIx64 "-%" PRIx64, e->range_start, e->range_end);
        print_mappings('+', e->added, e->n_added);
        print_mappings('-', e->removed, e->n_removed);
        putchar('\n');
}

static struct json_object *mappings_json(const struct memctl_mapping *m, size_t n) {
        struct json_object *a = json_object_new_array();
        char buf[32];

        for (size_t i = 0; a && i < n; i++) {
                struct json_object *o = json_object_new_object();

                snprintf(buf, sizeof(buf), "0x%" PRIx64, m[i].start);
                json_object_object_add(o, "start", json_object_new_string(buf));
                snprintf(buf, sizeof(buf), "0x%" PRIx64, m[i].end);
                json_object_object_add(o, "end", json_object_new_string(buf));
                snprintf(buf, sizeof(buf), "0x%" PRIx64, m[i].offset);
                json_object_object_add(o, "offset", json_object_new_string(buf));
                json_object_object_add(o, "perms", json_object_new_string(m[i].perms));
                json_object_object_add(o, "inode", json_object_new_int64((int64_t) m[i].inode));
                if (m[i].path)
                        json_object_object_add(o, "path", json_object_new_string(m[i].path));
                if (m[i].build_id_hex)
                        json_object_object_add(o, "build_id", json_object_new_string(m[i].build_id_hex));
                json_object_array_add(a, o);
        }
        return a;
}

static int print_json(const struct memctl_event *e) {
        _cleanup_json_ struct json_object *o = json_object_new_object();

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "event", json_object_new_string(e->type_name));
        if (e->type == MEMCTL_EVENT_OVERFLOW)
                json_object_object_add(o, "dropped", json_object_new_int64((int64_t) e->dropped));
        if (e->type != MEMCTL_EVENT_OVERFLOW || e->pid != 0) {
                struct json_object *p = json_object_new_object();

                json_object_object_add(p, "pid", json_object_new_int(e->pid));
                json_object_object_add(p, "start_time", json_object_new_int64((int64_t) e->start_time));
                json_object_object_add(o, "process", p);
                if (e->type == MEMCTL_EVENT_FORK)
                        json_object_object_add(o, "parent", json_object_new_int(e->parent));
                json_object_object_add(o, "comm", json_object_new_string(e->comm));
                json_object_object_add(o, "time_usec", json_object_new_int64((int64_t) e->time_usec));
                if (e->type == MEMCTL_EVENT_MAPPINGS) {
                        json_object_object_add(o, "added", mappings_json(e->added, e->n_added));
                        json_object_object_add(o, "removed", mappings_json(e->removed, e->n_removed));
                }
                if (e->range_end > e->range_start) {
                        char buf[32];

                        snprintf(buf, sizeof(buf), "0x%" PRIx64, e->range_start);
                        json_object_object_add(o, "range_start", json_object_new_string(buf));
                        snprintf(buf, sizeof(buf), "0x%" PRIx64, e->range_end);
                        json_object_object_add(o, "range_end", json_object_new_string(buf));
                }
        }
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        return 0;
}

int cmd_watch(struct context *ctx, pid_t pid) {
        _cleanup_(watch_freep) memctl_watch *w = NULL;
        int r;

        r = memctl_watch_start(ctx->c, pid, arg.start_time, &w);
        if (r == -ENOSYS) {
                error("memmapd has no change tracking (its tracking is \"none\"): nothing to watch");
                return EXIT_FAIL;
        }
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, pid);
        for (;;) {
                struct memctl_event e = MEMCTL_EVENT_INIT;

                r = memctl_watch_next(w, MEMCTL_TIMEOUT_INFINITY, &e);
                if (r == -ECONNRESET) {
                        error("memmapd ended the stream");
                        return EXIT_UNREACHABLE;
                }
                if (r < 0) {
                        error("cannot read events: %s", strerror(-r));
                        return EXIT_FAIL;
                }
                if (r == 0)
                        continue;
                if (arg.json != JSON_OFF) {
                        if (print_json(&e) < 0)
                                return oom();
                } else
                        print_line(&e);
                /* One event, one line, now: a pipe reader sees it as it happens. */
                if (fflush(stdout) != 0)
                        return EXIT_FAIL;
        }
}
