/* The layout store without a process: hits only under the counters a layout was read under, pid reuse, bounds by count, bytes and owner, LRU order, lazily filled facts, and many threads at once. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "layout-store.h"

/* A complete layout of pid with n file mappings, ready to be shared. */
static struct layout *mk_layout(pid_t pid, uint64_t start_time, size_t n) {
        struct layout *l = NULL;

        assert_int_equal(layout_new(pid, start_time, &l), 0);
        for (size_t i = 0; i < n; i++) {
                char name[64];
                struct mapping m = {
                        .start = 0x10000 + i * 0x2000, .end = 0x11000 + i * 0x2000, .flags = MAPPING_READ,
                        .dev_major = 8, .inode = 100 + i, .name = name,
                };

                snprintf(name, sizeof(name), "/usr/lib/lib%zu.so", i);
                mapping_classify_name(&m);
                assert_int_equal(layout_add(l, &m), 0);
        }
        layout_normalize(l);
        layout_set_complete(l);
        assert_int_equal(layout_prepare_files(l), 0);
        return l;
}

static struct layout_store *mk_store(size_t entries, size_t bytes, size_t per_owner) {
        struct layout_store *s = NULL;

        assert_int_equal(layout_store_new(&(struct layout_store_config) { entries, bytes, per_owner }, &s), 0);
        return s;
}

static void put(struct layout_store *s, pid_t pid, uint64_t start, uid_t owner, uint64_t epoch, uint64_t gen,
                size_t n, int expect) {
        struct layout *l = mk_layout(pid, start, n);

        assert_int_equal(layout_store_put(s, l, owner, epoch, gen), expect);
        layout_unref(l);
}

static bool has(struct layout_store *s, pid_t pid, uint64_t start, uint64_t epoch, uint64_t gen) {
        struct layout *l = NULL;
        int r = layout_store_get(s, pid, start, epoch, gen, &l);

        assert_true(r == 0 || r == 1);
        if (r == 1) {
                assert_non_null(l);
                assert_int_equal(l->pid, pid);
                assert_int_equal(l->start_time, start);
                layout_unref(l);
        }
        return r == 1;
}

/* A kept layout answers under exactly the counters and start time it was read under; any other
 * drops it for good (counters only move forward). */
static void test_hit_only_when_unchanged(void **state) {
        struct layout_store *s = mk_store(16, 1 << 20, 0);
        struct layout_store_stats st;

        put(s, 10, 500, 1000, 3, 7, 4, 1);
        assert_true(has(s, 10, 500, 3, 7));
        assert_true(has(s, 10, 500, 3, 7));
        assert_false(has(s, 10, 500, 3, 8));    /* changed: dropped */
        assert_false(has(s, 10, 500, 3, 7));    /* and gone */

        put(s, 10, 500, 1000, 3, 7, 4, 1);
        assert_false(has(s, 10, 500, 4, 7));    /* another program (exec) */
        put(s, 10, 500, 1000, 3, 7, 4, 1);
        assert_false(has(s, 10, 501, 3, 7));    /* another process under the pid */
        assert_false(has(s, 11, 500, 3, 7));

        layout_store_get_stats(s, &st);
        assert_int_equal(st.hits, 2);
        assert_int_equal(st.misses, 5);
        assert_int_equal(st.entries, 0);
        assert_int_equal(st.bytes, 0);
        assert_int_equal(st.forgotten, 3);
        layout_store_free(s);
}

static int get(struct layout_store *s, pid_t pid, uint64_t start, uint64_t epoch, uint64_t gen) {
        struct layout *l = NULL;
        int r = layout_store_get(s, pid, start, epoch, gen, &l);

        layout_unref(l);
        return r;
}

/* A process whose layout goes stale before it answered once is marked as changing: calls about
 * it read what they need until one finds it unchanged since the call before; then it is read
 * whole and kept again. A layout that served goes stale as any other. */
static void test_changing_process(void **state) {
        struct layout_store *s = mk_store(16, 1 << 20, 0);
        struct layout_store_stats st;

        put(s, 7, 1, 1000, 0, 10, 4, 1);
        assert_int_equal(get(s, 7, 1, 0, 11), LAYOUT_STORE_CHANGING);   /* stale, never hit */
        layout_store_get_stats(s, &st);
        assert_int_equal(st.entries, 0);        /* the layout went; a marker stays */
        assert_int_equal(st.bytes, 0);          /* and is not a layout's bytes */
        assert_int_equal(get(s, 7, 1, 0, 12), LAYOUT_STORE_CHANGING);   /* changed again */
        assert_int_equal(get(s, 7, 1, 0, 13), LAYOUT_STORE_CHANGING);
        assert_int_equal(get(s, 7, 1, 0, 13), 0);       /* unchanged since: read it whole */
        put(s, 7, 1, 1000, 0, 13, 4, 1);
        assert_int_equal(get(s, 7, 1, 0, 13), 1);
        assert_int_equal(get(s, 7, 1, 0, 14), 0);       /* it served: an ordinary miss */
        /* A marker is another process's only under its own start time and epoch. */
        put(s, 8, 1, 1000, 0, 1, 4, 1);
        assert_int_equal(get(s, 8, 1, 0, 2), LAYOUT_STORE_CHANGING);
        assert_int_equal(get(s, 8, 2, 0, 3), 0);
        assert_int_equal(get(s, 8, 2, 0, 3), 0);
        put(s, 9, 1, 1000, 0, 1, 4, 1);
        assert_int_equal(get(s, 9, 1, 0, 2), LAYOUT_STORE_CHANGING);
        assert_int_equal(get(s, 9, 1, 1, 3), 0);        /* exec'd */
        layout_store_forget(s, 9);
        layout_store_clear(s);
        layout_store_get_stats(s, &st);
        assert_int_equal(st.entries, 0);
        assert_int_equal(st.bytes, 0);
        layout_store_free(s);
}

/* A reference handed out stays valid after the entry went. */
static void test_reference_outlives_entry(void **state) {
        struct layout_store *s = mk_store(16, 1 << 20, 0);
        struct layout *l = NULL;

        put(s, 10, 1, 0, 0, 0, 3, 1);
        assert_int_equal(layout_store_get(s, 10, 1, 0, 0, &l), 1);
        layout_store_forget(s, 10);
        layout_store_clear(s);
        assert_int_equal(l->mappings.n, 3);
        assert_string_equal(l->mappings.items[2].name, "/usr/lib/lib2.so");
        layout_unref(l);
        layout_store_free(s);
}

/* Past max_entries the least recently used goes; a get makes an entry recent. */
static void test_lru_by_count(void **state) {
        struct layout_store *s = mk_store(3, 1 << 24, 0);
        struct layout_store_stats st;

        put(s, 1, 1, 0, 0, 0, 2, 1);
        put(s, 2, 1, 0, 0, 0, 2, 1);
        put(s, 3, 1, 0, 0, 0, 2, 1);
        assert_true(has(s, 1, 1, 0, 0));        /* 2 is now the oldest */
        put(s, 4, 1, 0, 0, 0, 2, 1);
        assert_false(has(s, 2, 1, 0, 0));
        assert_true(has(s, 1, 1, 0, 0));
        assert_true(has(s, 3, 1, 0, 0));
        assert_true(has(s, 4, 1, 0, 0));
        layout_store_get_stats(s, &st);
        assert_int_equal(st.entries, 3);
        assert_int_equal(st.evictions, 1);
        /* A put for a kept pid replaces it, costing nothing else. */
        put(s, 3, 1, 0, 0, 1, 2, 1);
        assert_true(has(s, 3, 1, 0, 1));
        assert_true(has(s, 1, 1, 0, 0));
        assert_true(has(s, 4, 1, 0, 0));
        layout_store_free(s);
}

/* Bytes are bounded daemon-wide and per owner: one user's layouts push out only its own, and a
 * layout larger than a share is not kept at all. */
static void test_bytes_and_owner_share(void **state) {
        struct layout *probe = mk_layout(1, 1, 100);
        size_t one = layout_memory(probe);
        struct layout_store *s;
        struct layout_store_stats st;

        layout_unref(probe);
        /* Room for 8 such layouts, 2 per unprivileged owner. */
        s = mk_store(1000, 8 * one + one / 2, 2 * one + one / 2);

        put(s, 100, 1, 1001, 0, 0, 100, 1);     /* the victim's */
        put(s, 101, 1, 1001, 0, 0, 100, 1);
        for (pid_t pid = 200; pid < 210; pid++) /* the attacker's, many */
                put(s, pid, 1, 2002, 0, 0, 100, 1);
        assert_true(has(s, 100, 1, 0, 0));
        assert_true(has(s, 101, 1, 0, 0));
        assert_true(has(s, 208, 1, 0, 0));
        assert_true(has(s, 209, 1, 0, 0));
        assert_false(has(s, 207, 1, 0, 0));
        layout_store_get_stats(s, &st);
        assert_int_equal(st.entries, 4);
        assert_true(st.bytes <= 8 * one + one / 2);

        /* Root (owner 0) is bounded by the whole store only, and the whole store by its bytes. */
        for (pid_t pid = 300; pid < 320; pid++)
                put(s, pid, 1, 0, 0, 0, 100, 1);
        layout_store_get_stats(s, &st);
        assert_true(st.bytes <= 8 * one + one / 2);
        assert_int_equal(st.entries, 8);
        assert_true(has(s, 319, 1, 0, 0));

        /* Larger than an owner's share: not kept, nothing evicted for it. */
        put(s, 400, 1, 3003, 0, 0, 1000, 0);
        layout_store_get_stats(s, &st);
        assert_int_equal(st.entries, 8);
        layout_store_free(s);

        /* A store of no entries keeps nothing. */
        s = mk_store(0, 1 << 20, 0);
        put(s, 1, 1, 0, 0, 0, 1, 0);
        assert_false(has(s, 1, 1, 0, 0));
        layout_store_free(s);
}

/* Facts are filled in once: the first stands, a later one is dropped, readers see either none
 * or the one that stands. */
static void test_fill_file_once(void **state) {
        struct layout *l = mk_layout(5, 5, 2);
        struct layout_file *a = NULL, *b = NULL;

        assert_int_equal(layout_file_new(8, 0, 100, &a), 0);
        assert_int_equal(layout_file_new(8, 0, 100, &b), 0);
        assert_null(layout_file_of(l, 0));
        assert_ptr_equal(layout_fill_file(l, 0, a), a);
        assert_ptr_equal(layout_fill_file(l, 0, b), a);
        assert_ptr_equal(layout_file_of(l, 0), a);
        assert_null(layout_file_of(l, 1));
        assert_int_equal(a->refs, 2);
        assert_int_equal(b->refs, 1);
        layout_file_unref(a);
        layout_file_unref(b);
        layout_unref(l);        /* drops the last reference of a */
}

struct hammer {
        struct layout_store *s;
        unsigned seed;
        unsigned long hits;
};

static void *hammer_main(void *userdata) {
        struct hammer *h = userdata;

        for (int i = 0; i < 20000; i++) {
                pid_t pid = (pid_t) (rand_r(&h->seed) % 64) + 1;
                uint64_t gen = rand_r(&h->seed) % 3;
                struct layout *l = NULL;

                switch (rand_r(&h->seed) % 4) {
                case 0: {
                        struct layout *n = mk_layout(pid, 9, 1 + rand_r(&h->seed) % 8);

                        assert_true(layout_store_put(h->s, n, (uid_t) (pid % 3), 0, gen) >= 0);
                        layout_unref(n);
                        break;
                }
                case 1:
                        layout_store_forget(h->s, pid);
                        break;
                default:
                        if (layout_store_get(h->s, pid, 9, 0, gen, &l) == 1) {
                                assert_int_equal(l->pid, pid);
                                assert_true(l->mappings.n >= 1);
                                h->hits++;
                                layout_unref(l);
                        }
                }
        }
        return NULL;
}

/* Threads putting, getting and forgetting at once: every hit is the pid asked for, and the
 * counts add up afterwards (ASan and the leak checker see the rest). */
static void test_threads(void **state) {
        struct layout_store *s = mk_store(32, 1 << 20, 0);
        struct hammer h[4];
        pthread_t t[4];
        struct layout_store_stats st;
        unsigned long hits = 0;

        for (unsigned i = 0; i < 4; i++) {
                h[i] = (struct hammer) { .s = s, .seed = i + 1 };
                assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
        }
        for (unsigned i = 0; i < 4; i++) {
                pthread_join(t[i], NULL);
                hits += h[i].hits;
        }
        layout_store_get_stats(s, &st);
        assert_int_equal(st.hits, hits);
        assert_true(hits > 0);
        assert_true(st.entries <= 32);
        layout_store_clear(s);
        layout_store_get_stats(s, &st);
        assert_int_equal(st.entries, 0);
        assert_int_equal(st.bytes, 0);
        layout_store_free(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hit_only_when_unchanged),
                cmocka_unit_test(test_reference_outlives_entry),
                cmocka_unit_test(test_changing_process),
                cmocka_unit_test(test_lru_by_count),
                cmocka_unit_test(test_bytes_and_owner_share),
                cmocka_unit_test(test_fill_file_once),
                cmocka_unit_test(test_threads),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
