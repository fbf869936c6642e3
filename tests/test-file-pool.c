/* The file pool: jobs run off the calling thread, with the caller's credentials, a time bound
 * and a per-owner quota of readers; a stuck reader stays charged until it returns. */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <unistd.h>

#include <cmocka.h>

#include "access.h"
#include "cleanup.h"
#include "file-pool.h"

/* A job that blocks reading a pipe until the test writes to it (a stalled read), then
 * records what it read and its credentials. */
struct blocker {
        int fd;
        int got;
        uid_t fsuid;
        int *freed;             /* counts free_blocker() calls */
};

static int read_blocker(void *data) {
        struct blocker *b = data;
        char c;

        b->got = read(b->fd, &c, 1) == 1 ? c : -1;
        b->fsuid = (uid_t) setfsuid((uid_t) -1);
        return 0;
}

static void free_blocker(void *data) {
        struct blocker *b = data;

        (*b->freed)++;
        free(b);
}

static struct blocker *blocker_new(int fd, int *freed) {
        struct blocker *b = calloc(1, sizeof(*b));

        assert_non_null(b);
        *b = (struct blocker) { .fd = fd, .got = -2, .freed = freed };
        return b;
}

static struct client client_of(uid_t uid, bool privileged) {
        return (struct client) { .pid = getpid(), .uid = uid, .gid = uid, .owner = uid, .privileged = privileged };
}

static void wait_stuck(struct file_pool *p, unsigned stuck, unsigned busy) {
        struct file_pool_stats st;

        /* A poll for state, guarded against a hang. */
        for (unsigned i = 0; i < 60000; i++) {
                file_pool_get_stats(p, &st);
                if (st.stuck == stuck && st.busy == busy)
                        return;
                usleep(1000);
        }
        fail_msg("pool never reached %u stuck, %u busy (has %u, %u)", stuck, busy, st.stuck, st.busy);
}

static void test_runs_and_returns(void **state) {
        struct file_pool *p;
        int pipefd[2], freed = 0;
        unsigned budget = 60000;

        (void) state;
        assert_int_equal(file_pool_new(&(struct file_pool_config) { .max_threads = 2 }, &p), 0);
        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        assert_int_equal(write(pipefd[1], "x", 1), 1);
        struct blocker *b = blocker_new(pipefd[0], &freed);
        file_pool_set_caller(NULL);
        assert_int_equal(file_pool_run(p, read_blocker, b, free_blocker, &budget), 0);
        assert_int_equal(b->got, 'x');
        assert_int_equal(freed, 0);
        free_blocker(b);
        assert_true(budget <= 60000);
        close(pipefd[0]);
        close(pipefd[1]);
        file_pool_free(p);
}

/* Two stuck readers of one owner use its quota: its next read fails at once while another
 * owner's runs; when the stuck reads return, the quota is free again. */
static void test_quota_and_timeout(void **state) {
        struct client attacker = client_of(geteuid() == 0 ? 41031 : geteuid(), false);
        struct client other = client_of(geteuid() == 0 ? 41032 : geteuid(), false);
        struct file_pool *p;
        struct file_pool_stats st;
        int stall[2], ok[2], freed = 0;
        unsigned budget;

        (void) state;
        if (geteuid() != 0) {
                print_message("[  SKIPPED ] readers act as the client: needs root to switch credentials\n");
                skip();
        }
        assert_int_equal(file_pool_new(&(struct file_pool_config) { .max_threads = 4, .quota_per_owner = 2 }, &p), 0);
        assert_int_equal(pipe2(stall, O_CLOEXEC), 0);
        assert_int_equal(pipe2(ok, O_CLOEXEC), 0);

        file_pool_set_caller(&attacker);
        for (int i = 0; i < 2; i++) {
                budget = 50;
                assert_int_equal(file_pool_run(p, read_blocker, blocker_new(stall[0], &freed), free_blocker, &budget),
                                 -ETIMEDOUT);
                assert_int_equal(budget, 0);
        }
        wait_stuck(p, 2, 2);
        /* The quota is used: refused at once, fn never runs (the data is freed). */
        budget = 60000;
        assert_int_equal(file_pool_run(p, read_blocker, blocker_new(stall[0], &freed), free_blocker, &budget), -EBUSY);
        assert_int_equal(freed, 1);
        /* A spent budget refuses too. */
        budget = 0;
        assert_int_equal(file_pool_run(p, read_blocker, blocker_new(stall[0], &freed), free_blocker, &budget), -EBUSY);
        assert_int_equal(freed, 2);

        /* Another owner is served, as itself. */
        file_pool_set_caller(&other);
        assert_int_equal(write(ok[1], "y", 1), 1);
        struct blocker *b = blocker_new(ok[0], &freed);
        budget = 60000;
        assert_int_equal(file_pool_run(p, read_blocker, b, free_blocker, &budget), 0);
        assert_int_equal(b->got, 'y');
        assert_int_equal(b->fsuid, other.uid);
        free_blocker(b);

        /* The stuck reads return: their jobs are freed and the quota is free again. */
        assert_int_equal(write(stall[1], "zz", 2), 2);
        wait_stuck(p, 0, 0);
        assert_int_equal(freed, 5);
        file_pool_get_stats(p, &st);
        assert_int_equal(st.timeouts, 2);
        assert_int_equal(st.refused, 2);
        file_pool_set_caller(&attacker);
        assert_int_equal(write(ok[1], "w", 1), 1);
        b = blocker_new(ok[0], &freed);
        budget = 60000;
        assert_int_equal(file_pool_run(p, read_blocker, b, free_blocker, &budget), 0);
        assert_int_equal(b->got, 'w');
        assert_int_equal(b->fsuid, attacker.uid);
        free_blocker(b);

        file_pool_set_caller(NULL);
        file_pool_free(p);
        close(stall[0]);
        close(stall[1]);
        close(ok[0]);
        close(ok[1]);
}

/* One owner reading from three threads at once, with a quota of 2 and no read stuck: the third
 * waits for a slot (never refused) and runs when one of the first two returns. */
struct caller {
        struct file_pool *p;
        struct client *client;
        int fd, freed, result;
        int got;
        pthread_t thread;
};

static void *call_thread(void *arg) {
        struct caller *c = arg;
        struct blocker *b = blocker_new(c->fd, &c->freed);
        unsigned budget = 600000;

        file_pool_set_caller(c->client);
        c->result = file_pool_run(c->p, read_blocker, b, free_blocker, &budget);
        if (c->result == 0) {
                c->got = b->got;
                free_blocker(b);
        }
        return NULL;
}

static void test_quota_waits(void **state) {
        struct client profiler = client_of(geteuid() == 0 ? 41033 : geteuid(), false);
        struct caller calls[3];
        struct file_pool *p;
        struct file_pool_stats st;
        int feed[2];
        unsigned got_mask = 0;

        (void) state;
        if (geteuid() != 0) {
                print_message("[  SKIPPED ] readers act as the client: needs root to switch credentials\n");
                skip();
        }
        assert_int_equal(file_pool_new(&(struct file_pool_config) { .max_threads = 4, .quota_per_owner = 2 }, &p), 0);
        assert_int_equal(pipe2(feed, O_CLOEXEC), 0);
        for (int i = 0; i < 3; i++) {
                calls[i] = (struct caller) { .p = p, .client = &profiler, .fd = feed[0], .result = 1 };
                assert_int_equal(pthread_create(&calls[i].thread, NULL, call_thread, &calls[i]), 0);
                /* In turn: the first two take the quota, the third finds it used. */
                wait_stuck(p, 0, i < 2 ? (unsigned) i + 1 : 2);
        }
        for (unsigned i = 0; i < 60000; i++) {
                file_pool_get_stats(p, &st);
                if (st.waiting == 1)
                        break;
                usleep(1000);
        }
        assert_int_equal(st.waiting, 1);
        /* Two readers block on the pipe; the third caller waits for a slot (not refused). */
        file_pool_get_stats(p, &st);
        assert_int_equal(st.refused, 0);
        for (int i = 0; i < 3; i++)
                assert_int_equal(calls[i].result, 1);

        assert_int_equal(write(feed[1], "a", 1), 1);
        /* One read returned; the waiting caller's took its slot: 2 busy again, then more bytes. */
        assert_int_equal(write(feed[1], "bc", 2), 2);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(pthread_join(calls[i].thread, NULL), 0);
                assert_int_equal(calls[i].result, 0);
                assert_int_equal(calls[i].freed, 1);     /* by call_thread, once: the pool kept none */
                assert_true(calls[i].got >= 'a' && calls[i].got <= 'c');
                got_mask |= 1u << (calls[i].got - 'a');
        }
        assert_int_equal(got_mask, 7);
        file_pool_get_stats(p, &st);
        assert_int_equal(st.refused, 0);
        assert_int_equal(st.timeouts, 0);
        file_pool_set_caller(NULL);
        file_pool_free(p);
        close(feed[0]);
        close(feed[1]);
}

/* Privileged callers have no quota, but the pool's size still bounds them. */
static void test_pool_full(void **state) {
        struct client root = client_of(0, true);
        struct file_pool *p;
        int stall[2], freed = 0;
        unsigned budget;

        (void) state;
        assert_int_equal(file_pool_new(&(struct file_pool_config) { .max_threads = 2, .quota_per_owner = 1 }, &p), 0);
        assert_int_equal(pipe2(stall, O_CLOEXEC), 0);
        file_pool_set_caller(&root);
        for (int i = 0; i < 2; i++) {
                budget = 20;
                assert_int_equal(file_pool_run(p, read_blocker, blocker_new(stall[0], &freed), free_blocker, &budget),
                                 -ETIMEDOUT);
        }
        wait_stuck(p, 2, 2);
        budget = 60000;
        assert_int_equal(file_pool_run(p, read_blocker, blocker_new(stall[0], &freed), free_blocker, &budget), -EBUSY);
        assert_int_equal(write(stall[1], "zz", 2), 2);
        wait_stuck(p, 0, 0);
        assert_int_equal(freed, 3);
        file_pool_set_caller(NULL);
        file_pool_free(p);
        close(stall[0]);
        close(stall[1]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_runs_and_returns),
                cmocka_unit_test(test_quota_and_timeout),
                cmocka_unit_test(test_quota_waits),
                cmocka_unit_test(test_pool_full),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
