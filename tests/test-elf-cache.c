#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "elf-cache.h"
#include "elf-reader.h"

#define TEST(name) static void name(void **state __attribute__((unused)))

static struct elf_cache_key key_n(uint64_t n) {
        return (struct elf_cache_key) {
                .dev = 0x801,
                .ino = 1000 + n,
                .size = 4096,
                .mtime_sec = 1700000000,
                .mtime_nsec = 5,
        };
}

/* An info that tells which key it belongs to. */
static struct elf_info info_n(uint64_t n) {
        struct elf_info info = {
                .elf_class = ELFCLASS64,
                .type = ET_DYN,
                .build_id_len = 8,
                .n_loads = 1,
                .loads = { { .offset = n, .vaddr = n * 2, .filesz = 3, .memsz = 4, .flags = PF_R } },
        };
        memcpy(info.build_id, &n, sizeof(n));
        return info;
}

static bool info_is_n(const struct elf_info *info, uint64_t n) {
        struct elf_info want = info_n(n);
        return info->elf_class == want.elf_class && info->type == want.type &&
               info->build_id_len == want.build_id_len &&
               memcmp(info->build_id, want.build_id, want.build_id_len) == 0 && info->n_loads == 1 &&
               info->loads[0].offset == n && info->loads[0].vaddr == n * 2;
}

static void assert_stats(struct elf_cache *c, uint64_t hits, uint64_t misses, uint64_t evictions, size_t entries) {
        struct elf_cache_stats st;
        memset(&st, 0xff, sizeof(st));
        elf_cache_get_stats(c, &st);
        assert_int_equal(st.hits, hits);
        assert_int_equal(st.misses, misses);
        assert_int_equal(st.evictions, evictions);
        assert_int_equal(st.entries, entries);
}

static bool get_n(struct elf_cache *c, uint64_t n) {
        struct elf_cache_key k = key_n(n);
        struct elf_info info;

        memset(&info, 0x5a, sizeof(info));
        if (!elf_cache_get(c, &k, &info))
                return false;
        assert_true(info_is_n(&info, n));
        return true;
}

static void put_n(struct elf_cache *c, uint64_t n) {
        struct elf_cache_key k = key_n(n);
        struct elf_info info = info_n(n);
        assert_int_equal(elf_cache_put(c, &k, &info), 0);
}

TEST(test_new_free) {
        struct elf_cache *c = (struct elf_cache *) 0x1;
        struct elf_cache_stats st;

        assert_int_equal(elf_cache_new(0, &c), -EINVAL);
        assert_ptr_equal(c, (struct elf_cache *) 0x1);
        elf_cache_free(NULL);

        assert_int_equal(elf_cache_new(7, &c), 0);
        assert_non_null(c);
        elf_cache_get_stats(c, &st);
        assert_int_equal(st.max_entries, 7);
        assert_int_equal(st.entries, 0);
        assert_int_equal(st.hits + st.misses + st.evictions, 0);
        put_n(c, 1);
        put_n(c, 2);
        elf_cache_free(c); /* with entries: ASan's leak checker checks they are freed */
}

TEST(test_hit_miss) {
        struct elf_cache *c;
        struct elf_info info;

        assert_int_equal(elf_cache_new(10, &c), 0);
        assert_false(get_n(c, 1));
        assert_stats(c, 0, 1, 0, 0);

        put_n(c, 1);
        assert_stats(c, 0, 1, 0, 1);
        assert_true(get_n(c, 1));
        assert_true(get_n(c, 1));
        assert_false(get_n(c, 2));
        assert_stats(c, 2, 2, 0, 1);

        /* On a miss *ret is untouched. */
        struct elf_cache_key k = key_n(3);
        memset(&info, 0x77, sizeof(info));
        struct elf_info canary = info;
        assert_false(elf_cache_get(c, &k, &info));
        assert_memory_equal(&info, &canary, sizeof(info));
        assert_stats(c, 2, 3, 0, 1);
        elf_cache_free(c);
}

TEST(test_replace) {
        struct elf_cache *c;
        struct elf_cache_key k = key_n(1);
        struct elf_info info = info_n(42), got;

        assert_int_equal(elf_cache_new(2, &c), 0);
        put_n(c, 1);
        assert_int_equal(elf_cache_put(c, &k, &info), 0);
        assert_stats(c, 0, 0, 0, 1);
        assert_true(elf_cache_get(c, &k, &got));
        assert_true(info_is_n(&got, 42));

        /* Replacing in a full cache evicts nothing. */
        put_n(c, 2);
        put_n(c, 2);
        put_n(c, 1);
        assert_stats(c, 1, 0, 0, 2);
        assert_true(get_n(c, 1));
        assert_true(get_n(c, 2));
        elf_cache_free(c);
}

TEST(test_lru_eviction) {
        struct elf_cache *c;

        assert_int_equal(elf_cache_new(3, &c), 0);
        put_n(c, 1);
        put_n(c, 2);
        put_n(c, 3);
        assert_stats(c, 0, 0, 0, 3);

        /* 1 was used: 2 is now the least recently used. */
        assert_true(get_n(c, 1));
        put_n(c, 4);
        assert_stats(c, 1, 0, 1, 3);
        assert_false(get_n(c, 2));
        /* Recency now (oldest first): 3, 1, 4 -> touch 3, so 1 is the oldest. */
        assert_true(get_n(c, 3));
        put_n(c, 5);
        assert_stats(c, 2, 1, 2, 3);
        assert_false(get_n(c, 1));
        /* Oldest first: 4, 3, 5. A replacement counts as use too. */
        put_n(c, 4);
        put_n(c, 6);
        assert_false(get_n(c, 3));
        assert_true(get_n(c, 4));
        assert_true(get_n(c, 5));
        assert_true(get_n(c, 6));
        assert_stats(c, 5, 3, 3, 3);

        /* Misses do not change the order: 4, 5, 6 -> 4 goes. */
        assert_false(get_n(c, 100));
        put_n(c, 7);
        assert_false(get_n(c, 4));
        assert_true(get_n(c, 5));
        elf_cache_free(c);
}

TEST(test_single_entry) {
        struct elf_cache *c;

        assert_int_equal(elf_cache_new(1, &c), 0);
        put_n(c, 1);
        put_n(c, 2);
        assert_false(get_n(c, 1));
        assert_true(get_n(c, 2));
        put_n(c, 2);
        assert_stats(c, 1, 1, 1, 1);
        elf_cache_free(c);
}

TEST(test_many_entries) {
        struct elf_cache *c;
        struct elf_cache_stats st;

        assert_int_equal(elf_cache_new(1000, &c), 0);
        for (uint64_t n = 0; n < 5000; n++)
                put_n(c, n);
        for (uint64_t n = 0; n < 5000; n++)
                assert_int_equal(get_n(c, n), n >= 4000);
        elf_cache_get_stats(c, &st);
        assert_int_equal(st.entries, 1000);
        assert_int_equal(st.max_entries, 1000);
        assert_int_equal(st.evictions, 4000);
        assert_int_equal(st.hits, 1000);
        assert_int_equal(st.misses, 4000);
        elf_cache_free(c);
}

TEST(test_key_fields) {
        struct elf_cache *c;
        struct elf_info info = info_n(1), got;
        struct elf_cache_key base = key_n(1);

        assert_int_equal(elf_cache_new(16, &c), 0);
        assert_int_equal(elf_cache_put(c, &base, &info), 0);

        /* Each field alone makes a different file. */
        for (int field = 0; field < 5; field++) {
                struct elf_cache_key k = base;
                switch (field) {
                case 0: k.dev++; break;
                case 1: k.ino++; break;
                case 2: k.size++; break;
                case 3: k.mtime_sec++; break;
                case 4: k.mtime_nsec++; break;
                }
                assert_false(elf_cache_get(c, &k, &got));

                struct elf_info other = info_n(100 + (uint64_t) field);
                assert_int_equal(elf_cache_put(c, &k, &other), 0);
                assert_true(elf_cache_get(c, &k, &got));
                assert_true(info_is_n(&got, 100 + (uint64_t) field));
        }
        assert_true(elf_cache_get(c, &base, &got));
        assert_true(info_is_n(&got, 1));
        assert_stats(c, 6, 5, 0, 6);
        elf_cache_free(c);
}

/* Keys that differ in one field only, many of them: they share buckets, and still each finds its
 * own entry. */
TEST(test_key_collisions) {
        struct elf_cache *c;

        assert_int_equal(elf_cache_new(1000, &c), 0);
        for (int field = 0; field < 5; field++) {
                for (uint64_t pass = 0; pass < 2; pass++)
                        for (uint64_t i = 0; i < 200; i++) {
                                struct elf_cache_key k = key_n(0);
                                struct elf_info info = info_n(field * 1000 + i), got;

                                switch (field) {
                                case 0: k.dev += i; break;
                                case 1: k.ino += i; break;
                                case 2: k.size += i; break;
                                case 3: k.mtime_sec += (int64_t) i; break;
                                case 4: k.mtime_nsec += (int64_t) i; break;
                                }
                                if (pass == 0)
                                        assert_int_equal(elf_cache_put(c, &k, &info), 0);
                                else {
                                        assert_true(elf_cache_get(c, &k, &got));
                                        assert_true(info_is_n(&got, field * 1000 + i));
                                }
                        }
        }
        /* i == 0 is the same key in every round: 4 replacements. */
        assert_stats(c, 1000, 0, 0, 996);
        elf_cache_free(c);
}

TEST(test_negative_entries) {
        struct elf_cache *c;
        struct elf_cache_key k = key_n(9);
        struct elf_info not_elf = { .elf_class = 0 }, got;

        assert_int_equal(elf_cache_new(4, &c), 0);
        assert_int_equal(elf_cache_put(c, &k, &not_elf), 0);
        memset(&got, 0xff, sizeof(got));
        assert_true(elf_cache_get(c, &k, &got));
        assert_int_equal(got.elf_class, 0);
        assert_int_equal(got.build_id_len, 0);
        assert_int_equal(got.n_loads, 0);

        /* The file became an ELF file (same key here: replaced in place). */
        struct elf_info info = info_n(9);
        assert_int_equal(elf_cache_put(c, &k, &info), 0);
        assert_true(elf_cache_get(c, &k, &got));
        assert_true(info_is_n(&got, 9));
        assert_stats(c, 2, 0, 0, 1);
        elf_cache_free(c);
}

TEST(test_key_from_stat) {
        struct stat st;
        struct elf_cache_key k, k2;

        assert_int_equal(stat("/bin/true", &st), 0);
        memset(&k, 0xff, sizeof(k));
        elf_cache_key_from_stat(&st, &k);
        assert_int_equal(k.dev, st.st_dev);
        assert_int_equal(k.ino, st.st_ino);
        assert_int_equal(k.size, st.st_size);
        assert_int_equal(k.mtime_sec, st.st_mtim.tv_sec);
        assert_int_equal(k.mtime_nsec, st.st_mtim.tv_nsec);

        /* A file modified in place: same dev and inode, another key. */
        char path[] = "/tmp/test-elf-cache.XXXXXX";
        _cleanup_close_ int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(unlink(path), 0);
        const struct timespec t1[2] = { { .tv_sec = 1000, .tv_nsec = 1 }, { .tv_sec = 1000, .tv_nsec = 1 } };
        const struct timespec t2[2] = { { .tv_sec = 1000, .tv_nsec = 2 }, { .tv_sec = 1000, .tv_nsec = 2 } };
        assert_int_equal(futimens(fd, t1), 0);
        assert_int_equal(fstat(fd, &st), 0);
        elf_cache_key_from_stat(&st, &k);
        assert_int_equal(k.mtime_sec, 1000);
        assert_int_equal(k.size, 0);
        assert_int_equal(futimens(fd, t2), 0);
        assert_int_equal(fstat(fd, &st), 0);
        elf_cache_key_from_stat(&st, &k2);
        assert_int_equal(k.dev, k2.dev);
        assert_int_equal(k.ino, k2.ino);
        assert_int_equal(k2.mtime_nsec, 2);
        assert_int_equal(k.mtime_nsec, 1);
}

/* Cache poisoning across users: a file cached, deleted, and another file created in the same
 * inode with the same size and mtime (utimensat) must not meet the first one's entry. ext2 on
 * a loop device gives a freed inode to the next file at once. */
static int statx_fd(int fd, struct statx *ret) {
        return statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME, ret) < 0 ? -errno : 0;
}

TEST(test_key_inode_reuse) {
        char dir[] = "/tmp/test-elf-cache-reuse.XXXXXX", cmd[512], mnt[96], path[128];
        const struct timespec mtime[2] = { { .tv_sec = 1600000000, .tv_nsec = 42 }, { .tv_sec = 1600000000, .tv_nsec = 42 } };
        struct statx a, b;
        struct elf_cache_key ka, kb, old_kb;
        struct elf_cache *c;
        struct elf_info info = info_n(1);
        char content[4096];
        bool reused = false;
        struct statvfs vfs;
        fsfilcnt_t free_inodes;
        int fd;

        if (geteuid() != 0) {
                print_message("[  SKIPPED ] inode reuse needs root (mounts an ext2 image)\n");
                skip();
        }
        assert_non_null(mkdtemp(dir));
        snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
        assert_int_equal(mkdir(mnt, 0755), 0);
        snprintf(cmd, sizeof(cmd),
                 "truncate -s 4M %s/img && mkfs.ext2 -q -F %s/img >/dev/null 2>&1 && mount -o loop %s/img %s", dir,
                 dir, dir, mnt);
        if (system(cmd) != 0) {
                snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
                (void) system(cmd);
                print_message("[  SKIPPED ] cannot mount an ext2 image on a loop device\n");
                skip();
        }

        /* The attacker's crafted file, cached. */
        assert_int_equal(statvfs(mnt, &vfs), 0);
        free_inodes = vfs.f_ffree;
        snprintf(path, sizeof(path), "%s/crafted", mnt);
        memset(content, 'A', sizeof(content));
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, sizeof(content)), (ssize_t) sizeof(content));
        assert_int_equal(futimens(fd, mtime), 0);
        assert_int_equal(statx_fd(fd, &a), 0);
        close(fd);
        elf_cache_key_from_statx(&a, &ka);
        assert_int_equal(elf_cache_new(4, &c), 0);
        assert_int_equal(elf_cache_put(c, &ka, &info), 0);
        assert_int_equal(unlink(path), 0);
        /* Its inode is free once nothing holds it any more (a path walk of another process on
         * the machine may, for a moment): a poll, bounded. */
        for (unsigned i = 0; i < 600000; i++) {
                assert_int_equal(statvfs(mnt, &vfs), 0);
                if (vfs.f_ffree >= free_inodes)
                        break;
                usleep(100);
        }
        assert_true(vfs.f_ffree >= free_inodes);

        /* The kernel's clock for ctime may tick coarsely: the victim file is made once it has
         * moved past the crafted file's ctime (a poll, guarded against a stopped clock). */
        for (unsigned i = 0; i < 600000; i++) {
                struct timespec now;

                assert_int_equal(clock_gettime(CLOCK_REALTIME_COARSE, &now), 0);
                if (now.tv_sec > a.stx_ctime.tv_sec ||
                    (now.tv_sec == a.stx_ctime.tv_sec && now.tv_nsec > (long) a.stx_ctime.tv_nsec))
                        break;
                usleep(100);
        }

        /* The victim: same inode (the first free one), size and mtime. */
        for (unsigned i = 0; i < 64 && !reused; i++) {
                snprintf(path, sizeof(path), "%s/victim%u", mnt, i);
                fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                assert_true(fd >= 0);
                memset(content, 'B', sizeof(content));
                assert_int_equal(write(fd, content, sizeof(content)), (ssize_t) sizeof(content));
                assert_int_equal(futimens(fd, mtime), 0);
                assert_int_equal(statx_fd(fd, &b), 0);
                close(fd);
                reused = b.stx_ino == a.stx_ino;
        }
        if (!reused)
                fail_msg("no new file got inode %llu again (the last got %llu)", (unsigned long long) a.stx_ino,
                         (unsigned long long) b.stx_ino);
        elf_cache_key_from_statx(&b, &kb);

        /* What the old key had is all equal: that key would have met the crafted entry. */
        assert_int_equal(kb.dev, ka.dev);
        assert_int_equal(kb.ino, ka.ino);
        assert_int_equal(kb.size, ka.size);
        assert_int_equal(kb.mtime_sec, ka.mtime_sec);
        assert_int_equal(kb.mtime_nsec, ka.mtime_nsec);
        old_kb = kb;
        old_kb.ctime_sec = ka.ctime_sec;
        old_kb.ctime_nsec = ka.ctime_nsec;
        old_kb.btime_sec = ka.btime_sec;
        old_kb.btime_nsec = ka.btime_nsec;
        assert_true(elf_cache_get(c, &old_kb, NULL));
        /* The new key refuses the stale entry. */
        print_message("crafted ctime %lld.%09u btime %lld.%09u, victim ctime %lld.%09u btime %lld.%09u (btime %s)\n",
                      (long long) a.stx_ctime.tv_sec, a.stx_ctime.tv_nsec, (long long) a.stx_btime.tv_sec,
                      a.stx_btime.tv_nsec, (long long) b.stx_ctime.tv_sec, b.stx_ctime.tv_nsec,
                      (long long) b.stx_btime.tv_sec, b.stx_btime.tv_nsec,
                      (b.stx_mask & STATX_BTIME) ? "reported" : "not reported");
        assert_false(elf_cache_get(c, &kb, NULL));
        elf_cache_free(c);

        snprintf(cmd, sizeof(cmd), "umount %s && rm -rf %s", mnt, dir);
        assert_int_equal(system(cmd), 0);
}

/* What the engine does: stat, look up, parse on a miss, remember. */
TEST(test_with_reader) {
        struct elf_cache *c;
        struct elf_cache_key k;
        struct elf_info parsed, got;
        struct stat st;

        _cleanup_close_ int fd = open("/bin/true", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                skip();
        assert_int_equal(fstat(fd, &st), 0);
        elf_cache_key_from_stat(&st, &k);

        assert_int_equal(elf_cache_new(4, &c), 0);
        assert_false(elf_cache_get(c, &k, &got));
        assert_int_equal(elf_info_from_fd(fd, &parsed), 0);
        assert_int_equal(elf_cache_put(c, &k, &parsed), 0);
        memset(&got, 0, sizeof(got));
        assert_true(elf_cache_get(c, &k, &got));
        assert_int_equal(got.elf_class, parsed.elf_class);
        assert_int_equal(got.build_id_len, parsed.build_id_len);
        assert_memory_equal(got.build_id, parsed.build_id, parsed.build_id_len);
        assert_int_equal(got.n_loads, parsed.n_loads);
        assert_memory_equal(got.loads, parsed.loads, sizeof(parsed.loads[0]) * parsed.n_loads);
        elf_cache_free(c);
}

#define N_THREADS 4
#define N_ITERATIONS 20000
#define N_KEYS 48
#define CONCURRENT_MAX 16

struct worker {
        pthread_t thread;
        struct elf_cache *cache;
        unsigned seed;
        uint64_t hits, misses, bad;
};

static void *worker_run(void *p) {
        struct worker *w = p;

        for (unsigned i = 0; i < N_ITERATIONS; i++) {
                uint64_t n = (uint64_t) rand_r(&w->seed) % N_KEYS;
                struct elf_cache_key k = key_n(n);
                struct elf_info info;

                if (elf_cache_get(w->cache, &k, &info)) {
                        w->hits++;
                        if (!info_is_n(&info, n))
                                w->bad++;
                } else {
                        w->misses++;
                        info = info_n(n);
                        if (elf_cache_put(w->cache, &k, &info) < 0)
                                w->bad++;
                }
                if (i % 1000 == 0) {
                        struct elf_cache_stats st;
                        elf_cache_get_stats(w->cache, &st);
                        if (st.entries > CONCURRENT_MAX)
                                w->bad++;
                }
        }
        return NULL;
}

TEST(test_concurrent) {
        struct worker w[N_THREADS];
        struct elf_cache *c;
        struct elf_cache_stats st;
        uint64_t hits = 0, misses = 0;

        assert_int_equal(elf_cache_new(CONCURRENT_MAX, &c), 0);
        for (unsigned i = 0; i < N_THREADS; i++) {
                w[i] = (struct worker) { .cache = c, .seed = 12345 + i * 7919 };
                assert_int_equal(pthread_create(&w[i].thread, NULL, worker_run, &w[i]), 0);
        }
        for (unsigned i = 0; i < N_THREADS; i++) {
                assert_int_equal(pthread_join(w[i].thread, NULL), 0);
                assert_int_equal(w[i].bad, 0);
                hits += w[i].hits;
                misses += w[i].misses;
        }

        elf_cache_get_stats(c, &st);
        assert_int_equal(st.hits, hits);
        assert_int_equal(st.misses, misses);
        assert_int_equal(st.hits + st.misses, (uint64_t) N_THREADS * N_ITERATIONS);
        assert_int_equal(st.entries, CONCURRENT_MAX);
        assert_true(st.hits > 0);
        assert_true(st.evictions > 0);
        /* Every miss was followed by a put: each either added an entry (the cache holds them or
         * evicted them) or replaced one another thread had just added. */
        assert_true(st.entries + st.evictions <= st.misses);
        elf_cache_free(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_new_free),
                cmocka_unit_test(test_hit_miss),
                cmocka_unit_test(test_replace),
                cmocka_unit_test(test_lru_eviction),
                cmocka_unit_test(test_single_entry),
                cmocka_unit_test(test_many_entries),
                cmocka_unit_test(test_key_fields),
                cmocka_unit_test(test_key_collisions),
                cmocka_unit_test(test_negative_entries),
                cmocka_unit_test(test_key_from_stat),
                cmocka_unit_test(test_key_inode_reuse),
                cmocka_unit_test(test_with_reader),
                cmocka_unit_test(test_concurrent),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
