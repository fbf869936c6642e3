/* A watcher's queue (daemon/watch.c): bounded in events and bytes, drops counted before the next event queued, copies that own their mappings, differences of two listings, and the reply text (ranges stated whole, changes not read). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "watch.h"

static struct proc_event fork_event(pid_t pid) {
        struct proc_event e = {
                .type = PROC_EVENT_FORK, .pid = pid, .start_time = 100 + (uint64_t) pid, .parent = 1,
                .time_usec = 1000 + (uint64_t) pid,
        };

        strcpy(e.comm, "sh");
        return e;
}

static void test_bound_and_drops(void **state) {
        struct watch_queue q = {};
        struct watch_record *r;
        struct proc_event e;
        size_t popped = 0;

        (void) state;
        for (pid_t i = 1; i <= WATCH_QUEUE_EVENTS; i++) {
                e = fork_event(i);
                assert_true(watch_queue_push(&q, watch_record_new(&e)));
        }
        /* Full: dropped and counted, never grown. */
        for (pid_t i = 0; i < 5; i++) {
                e = fork_event(5000 + i);
                assert_false(watch_queue_push(&q, watch_record_new(&e)));
        }
        watch_queue_lost(&q, 2);
        assert_int_equal(q.n, WATCH_QUEUE_EVENTS);
        assert_int_equal(q.dropped, 7);
        assert_false(watch_queue_empty(&q));

        /* Room again: the next event carries the count of those dropped before it, in order. */
        r = watch_queue_pop(&q);
        assert_int_equal(r->pid, 1);
        assert_int_equal(r->dropped_before, 0);
        watch_record_free(r);
        e = fork_event(9000);
        assert_true(watch_queue_push(&q, watch_record_new(&e)));
        assert_int_equal(q.dropped, 0);
        while ((r = watch_queue_pop(&q))) {
                popped++;
                if (r->pid == 9000) {
                        assert_int_equal(r->dropped_before, 7);
                        assert_null(q.head);
                } else
                        assert_int_equal(r->dropped_before, 0);
                watch_record_free(r);
        }
        assert_int_equal(popped, WATCH_QUEUE_EVENTS);
        assert_true(watch_queue_empty(&q));
        assert_int_equal(q.bytes, 0);
}

static void test_bytes_bound(void **state) {
        static struct proc_event_mapping m[WATCH_EVENT_MAPPINGS_MAX + 1];
        static char path[4000];
        struct proc_event e = fork_event(7);
        struct watch_queue q = {};
        size_t n = 0;

        (void) state;
        memset(path, 'a', sizeof(path) - 1);
        for (size_t i = 0; i < WATCH_EVENT_MAPPINGS_MAX + 1; i++)
                m[i] = (struct proc_event_mapping) { .start = 4096 * i, .end = 4096 * (i + 1), .path = path };
        e.type = PROC_EVENT_MAPPINGS;
        e.added = m;
        /* More mappings than an event may carry: no copy. */
        e.n_added = WATCH_EVENT_MAPPINGS_MAX + 1;
        assert_null(watch_record_new(&e));
        /* Large ones fill the byte bound long before the event bound. */
        e.n_added = 16;
        while (watch_queue_push(&q, watch_record_new(&e)))
                n++;
        assert_true(n > 0 && n < WATCH_QUEUE_EVENTS);
        assert_true(q.bytes <= WATCH_QUEUE_BYTES);
        assert_int_equal(q.dropped, 1);
        watch_queue_clear(&q);
        assert_true(watch_queue_empty(&q));
}

static void test_copy_owns(void **state) {
        char path[] = "/usr/lib/libx.so";
        uint8_t id[] = { 0xde, 0xad, 0xbe, 0xef };
        struct proc_event_mapping m = { .start = 0x1000, .end = 0x3000, .offset = 0x2000, .inode = 9, .dev_major = 8,
                                        .dev_minor = 1, .path = path, .build_id = id, .build_id_len = 4 };
        struct proc_event e = fork_event(3);
        struct watch_record *r;

        (void) state;
        e.type = PROC_EVENT_MAPPINGS;
        e.added = &m;
        e.n_added = 1;
        e.removed = &m;
        e.n_removed = 1;
        r = watch_record_new(&e);
        assert_non_null(r);
        path[1] = 'X';          /* the event's memory lives only during the call */
        assert_string_equal(r->mappings[0].path, "/usr/lib/libx.so");
        assert_string_equal(r->mappings[1].path, "/usr/lib/libx.so");
        assert_memory_equal(r->mappings[0].build_id, id, 4);
        assert_int_equal(r->n_added, 1);
        assert_int_equal(r->n_removed, 1);
        watch_record_free(r);
}

static void test_diff_and_text(void **state) {
        struct watch_mapping a[2] = {
                { .start = 0x1000, .end = 0x2000, .inode = 1, .path = (char *) "/a" },
                { .start = 0x5000, .end = 0x6000, .inode = 2, .path = (char *) "/b" },
        };
        struct watch_mapping b[2] = {
                { .start = 0x1000, .end = 0x2000, .inode = 1, .path = (char *) "/a" },
                { .start = 0x5000, .end = 0x6000, .inode = 3, .path = (char *) "/c" },
        };
        struct json_writer w;
        struct watch_record *r;
        struct json_object *o, *p, *v;
        bool oom;
        char *buf;
        size_t len;

        (void) state;
        assert_null(watch_record_diff(5, 55, 1, a, 2, a, 2, &oom));
        assert_false(oom);
        r = watch_record_diff(5, 55, 1, a, 2, b, 2, &oom);
        assert_non_null(r);
        assert_int_equal(r->n_added, 1);
        assert_int_equal(r->n_removed, 1);
        assert_string_equal(r->mappings[0].path, "/c");
        assert_string_equal(r->mappings[1].path, "/b");

        /* The reply, as any JSON parser reads it. */
        strcpy(r->comm, "a\"b\x01");
        json_writer_init(&w, 0);
        watch_write_event(&w, r);
        assert_int_equal(json_writer_finish(&w, &buf, &len), 0);
        o = json_tokener_parse(buf);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "continues", &v) && json_object_get_boolean(v));
        assert_true(json_object_object_get_ex(o, "parameters", &p));
        assert_true(json_object_object_get_ex(p, "event", &v));
        assert_string_equal(json_object_get_string(v), "mappings");
        assert_true(json_object_object_get_ex(p, "comm", &v));
        assert_string_equal(json_object_get_string(v), "a?b?");
        assert_true(json_object_object_get_ex(p, "added", &v));
        assert_int_equal(json_object_array_length(v), 1);
        assert_true(json_object_object_get_ex(p, "removed", &v));
        assert_int_equal(json_object_array_length(v), 1);
        json_object_put(o);
        free(buf);
        watch_record_free(r);
}

/* The parameters of r's reply, parsed (the caller's). */
static struct json_object *reply_parameters(const struct watch_record *r, struct json_object **ret_reply) {
        struct json_writer w;
        struct json_object *o, *p;
        char *buf;
        size_t len;

        json_writer_init(&w, 0);
        watch_write_event(&w, r);
        assert_int_equal(json_writer_finish(&w, &buf, &len), 0);
        o = json_tokener_parse(buf);
        free(buf);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "parameters", &p));
        *ret_reply = o;
        return p;
}

/* A range stated whole carries it; a change not read is an overflow naming its process. */
static void test_range_and_unknown(void **state) {
        const struct proc_event_mapping m = { .start = 0x1000, .end = 0x2000, .inode = 1, .flags = 5, .path = "/a" };
        struct proc_event e = {
                .type = PROC_EVENT_MAPPINGS, .pid = 7, .start_time = 70, .time_usec = 700, .added = &m, .n_added = 1,
                .range_start = 0x1000, .range_end = 0x3000,
        };
        struct watch_record *r;
        struct json_object *o, *p, *v;

        (void) state;
        strcpy(e.comm, "x");
        r = watch_record_new(&e);
        assert_non_null(r);
        p = reply_parameters(r, &o);
        assert_true(json_object_object_get_ex(p, "event", &v));
        assert_string_equal(json_object_get_string(v), "mappings");
        assert_true(json_object_object_get_ex(p, "range_start", &v));
        assert_int_equal(json_object_get_int64(v), 0x1000);
        assert_true(json_object_object_get_ex(p, "range_end", &v));
        assert_int_equal(json_object_get_int64(v), 0x3000);
        assert_true(json_object_object_get_ex(p, "added", &v));
        assert_int_equal(json_object_array_length(v), 1);
        json_object_put(o);
        watch_record_free(r);

        e = (struct proc_event) {
                .type = PROC_EVENT_MAPPINGS, .pid = 7, .start_time = 70, .time_usec = 800, .range_start = 0x1000,
                .range_end = 0x3000, .unknown = true,
        };
        r = watch_record_new(&e);
        assert_non_null(r);
        p = reply_parameters(r, &o);
        assert_true(json_object_object_get_ex(p, "event", &v));
        assert_string_equal(json_object_get_string(v), "overflow");
        assert_true(json_object_object_get_ex(p, "dropped", &v));
        assert_int_equal(json_object_get_int64(v), 1);
        assert_true(json_object_object_get_ex(p, "process", &v));
        assert_true(json_object_object_get_ex(v, "pid", &v));
        assert_int_equal(json_object_get_int(v), 7);
        assert_false(json_object_object_get_ex(p, "added", &v));
        assert_true(json_object_object_get_ex(p, "range_end", &v));
        json_object_put(o);
        watch_record_free(r);

        /* No range: none written. */
        e = (struct proc_event) { .type = PROC_EVENT_MAPPINGS, .pid = 7, .start_time = 70, .added = &m, .n_added = 1 };
        r = watch_record_new(&e);
        p = reply_parameters(r, &o);
        assert_false(json_object_object_get_ex(p, "range_start", &v));
        json_object_put(o);
        watch_record_free(r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_range_and_unknown),
                cmocka_unit_test(test_bound_and_drops),
                cmocka_unit_test(test_bytes_bound),
                cmocka_unit_test(test_copy_owns),
                cmocka_unit_test(test_diff_and_text),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
