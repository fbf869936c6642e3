/* Tests for daemon/proc-events.c: listeners hear every event and loss in order, stop hearing
 * when unlisten() returns (also while another thread publishes), and the listener bound holds. */

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proc-events.h"

struct heard {
        unsigned n, lost_calls;
        uint64_t lost;
        pid_t pids[8];
        enum proc_event_type types[8];
        size_t n_added[8];
};

static void on_event(const struct proc_event *e, void *userdata) {
        struct heard *h = userdata;

        if (h->n < 8) {
                h->pids[h->n] = e->pid;
                h->types[h->n] = e->type;
                h->n_added[h->n] = e->n_added;
        }
        h->n++;
}

static void on_lost(uint64_t n, void *userdata) {
        struct heard *h = userdata;

        h->lost_calls++;
        h->lost += n;
}

static void test_fan_out(void **state) {
        struct proc_events *p = NULL;
        struct heard a = {}, b = {};
        struct proc_event_mapping m = { .start = 0x1000, .end = 0x2000, .path = "/x" };
        int ia, ib;

        assert_int_equal(proc_events_new(&p), 0);
        ia = proc_events_listen(p, on_event, on_lost, &a);
        ib = proc_events_listen(p, on_event, NULL, &b);
        assert_true(ia > 0 && ib > 0 && ia != ib);

        proc_events_publish(p, &(struct proc_event) { .type = PROC_EVENT_FORK, .pid = 10, .parent = 1 });
        proc_events_publish(p, &(struct proc_event) { .type = PROC_EVENT_MAPPINGS, .pid = 10, .added = &m, .n_added = 1 });
        proc_events_publish_lost(p, 3);
        proc_events_unlisten(p, ia);
        proc_events_publish(p, &(struct proc_event) { .type = PROC_EVENT_EXIT, .pid = 10 });
        proc_events_unlisten(p, ia);            /* twice: ignored */
        proc_events_unlisten(p, 12345);         /* unknown: ignored */

        assert_int_equal(a.n, 2);
        assert_int_equal(a.types[0], PROC_EVENT_FORK);
        assert_int_equal(a.types[1], PROC_EVENT_MAPPINGS);
        assert_int_equal(a.n_added[1], 1);
        assert_int_equal(a.lost_calls, 1);
        assert_int_equal(a.lost, 3);
        assert_int_equal(b.n, 3);
        assert_int_equal(b.types[2], PROC_EVENT_EXIT);
        assert_int_equal(b.pids[2], 10);
        assert_int_equal(proc_events_published(p), 3);
        assert_int_equal(proc_events_lost(p), 3);

        assert_string_equal(proc_event_type_to_string(PROC_EVENT_EXEC), "exec");
        assert_string_equal(proc_event_type_to_string(PROC_EVENT_MAPPINGS), "mappings");
        assert_null(proc_event_type_to_string(0));
        assert_null(proc_event_type_to_string(_PROC_EVENT_TYPE_MAX));

        /* Nobody to hear: nothing happens, nothing breaks. */
        proc_events_publish(NULL, &(struct proc_event) { .type = PROC_EVENT_EXEC });
        proc_events_publish_lost(NULL, 1);
        assert_null(proc_events_free(p));
        assert_null(proc_events_free(NULL));
}

static void test_bound(void **state) {
        struct proc_events *p = NULL;
        struct heard h = {};
        int ids[PROC_EVENTS_LISTENERS_MAX];

        assert_int_equal(proc_events_new(&p), 0);
        assert_int_equal(proc_events_listen(p, NULL, NULL, &h), -EINVAL);
        for (size_t i = 0; i < PROC_EVENTS_LISTENERS_MAX; i++)
                assert_true((ids[i] = proc_events_listen(p, on_event, NULL, &h)) > 0);
        assert_int_equal(proc_events_listen(p, on_event, NULL, &h), -ENOSPC);
        proc_events_unlisten(p, ids[7]);
        assert_true(proc_events_listen(p, on_event, NULL, &h) > ids[PROC_EVENTS_LISTENERS_MAX - 1]);
        proc_events_publish(p, &(struct proc_event) { .type = PROC_EVENT_EXEC });
        assert_int_equal(h.n, PROC_EVENTS_LISTENERS_MAX);
        proc_events_free(p);
}

/* A listener that unlistens while another thread publishes without pause: once unlisten()
 * returned, its callback never runs again (its userdata may be freed then). */
struct race {
        struct proc_events *p;
        atomic_bool stop;
        atomic_uint calls;
        atomic_bool gone;
        atomic_uint after_gone;
};

static void on_race_event(const struct proc_event *e, void *userdata) {
        struct race *r = userdata;

        atomic_fetch_add(&r->calls, 1);
        if (atomic_load(&r->gone))
                atomic_fetch_add(&r->after_gone, 1);
}

static void *publisher(void *arg) {
        struct race *r = arg;

        while (!atomic_load(&r->stop))
                proc_events_publish(r->p, &(struct proc_event) { .type = PROC_EVENT_FORK });
        return NULL;
}

static void test_unlisten_race(void **state) {
        struct race r = {};
        pthread_t th;

        assert_int_equal(proc_events_new(&r.p), 0);
        assert_int_equal(pthread_create(&th, NULL, publisher, &r), 0);
        for (unsigned i = 0; i < 2000; i++) {
                unsigned before;
                int id;

                atomic_store(&r.gone, false);
                id = proc_events_listen(r.p, on_race_event, NULL, &r);
                assert_true(id > 0);
                before = atomic_load(&r.calls);
                /* Until it was heard at least once, so that the race is real. */
                while (atomic_load(&r.calls) == before)
                        ;
                proc_events_unlisten(r.p, id);
                atomic_store(&r.gone, true);
        }
        atomic_store(&r.stop, true);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(atomic_load(&r.after_gone), 0);
        proc_events_free(r.p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fan_out),
                cmocka_unit_test(test_bound),
                cmocka_unit_test(test_unlisten_race),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
