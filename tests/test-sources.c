/* Each source of layouts against a live process of its own, checked with the raw maps text parsed here and PROCMAP_QUERY called directly. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "cleanup.h"
#include "process.h"
#include "source.h"
/* The kernel's ABI, for the oracle that calls the ioctl itself. */
#include "procmap-uapi.h"

/* One line of /proc/PID/maps as this test reads it, independently of maps-parse.c. */
struct line {
        uint64_t start, end, offset, inode;
        unsigned major, minor;
        char perms[5];
        char name[512];
};

struct truth {
        struct line *v;
        size_t n;
};

static void truth_read(pid_t pid, struct truth *ret) {
        char path[64], buf[4096];
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        f = fopen(path, "re");
        assert_non_null(f);
        *ret = (struct truth) {};
        while (fgets(buf, sizeof(buf), f)) {
                struct line l = {};
                int off = 0;
                char *name;

                assert_int_equal(sscanf(buf, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64 " %n", &l.start,
                                        &l.end, l.perms, &l.offset, &l.major, &l.minor, &l.inode, &off),
                                 7);
                name = buf + off;
                name[strcspn(name, "\n")] = 0;
                snprintf(l.name, sizeof(l.name), "%s", name);
                ret->v = realloc(ret->v, (ret->n + 1) * sizeof(*ret->v));
                assert_non_null(ret->v);
                ret->v[ret->n++] = l;
        }
        fclose(f);
        assert_true(ret->n > 0);
}

static const struct line *truth_find(const struct truth *t, uint64_t addr) {
        for (size_t i = 0; i < t->n; i++)
                if (addr >= t->v[i].start && addr < t->v[i].end)
                        return &t->v[i];
        return NULL;
}

static void assert_same(const struct mapping *m, const struct line *l) {
        assert_int_equal(m->start, l->start);
        assert_int_equal(m->end, l->end);
        assert_int_equal(m->offset, l->offset);
        assert_int_equal(m->inode, l->inode);
        assert_int_equal(m->dev_major, l->major);
        assert_int_equal(m->dev_minor, l->minor);
        assert_int_equal(!!(m->flags & MAPPING_READ), l->perms[0] == 'r');
        assert_int_equal(!!(m->flags & MAPPING_WRITE), l->perms[1] == 'w');
        assert_int_equal(!!(m->flags & MAPPING_EXEC), l->perms[2] == 'x');
        assert_int_equal(!!(m->flags & MAPPING_SHARED), l->perms[3] == 's');
        assert_string_equal(m->name ? m->name : "", l->name);
}

/* The page size PROCMAP_QUERY gives for the VMA at addr, asked directly. */
static uint64_t raw_page_size(int maps_fd, uint64_t addr) {
        struct procmap_query q = { .size = sizeof(q), .query_addr = addr };

        assert_int_equal(ioctl(maps_fd, PROCMAP_QUERY, &q), 0);
        assert_int_equal(q.vma_start, addr);
        return q.vma_page_size;
}

/* A process with mappings of every common kind: its own binary's pages mapped again at
 * several offsets, a deleted file, anonymous pages of alternating protections, shared memory. */
static pid_t fixture_start(void) {
        int ready[2];
        pid_t pid;
        char c;

        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char tmp[] = "/tmp/test-sources-XXXXXX";
                int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC), fd = mkostemp(tmp, O_CLOEXEC);
                long page = sysconf(_SC_PAGESIZE);

                if (self < 0 || fd < 0 || ftruncate(fd, 4 * page) < 0)
                        _exit(1);
                for (int i = 0; i < 4; i++)
                        if (mmap(NULL, (size_t) page, PROT_READ | (i % 2 ? PROT_EXEC : 0), MAP_PRIVATE, self,
                                 i * page) == MAP_FAILED)
                                _exit(1);
                if (mmap(NULL, 4 * (size_t) page, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED || unlink(tmp) < 0)
                        _exit(1);
                for (int i = 0; i < 64; i++)
                        if (mmap(NULL, (size_t) page, i % 2 ? PROT_READ : PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
                                _exit(1);
                if (mmap(NULL, (size_t) page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
                        _exit(1);
                if (write(ready[1], "r", 1) != 1)
                        _exit(1);
                for (;;)
                        pause();
        }
        close(ready[1]);
        assert_int_equal(read(ready[0], &c, 1), 1);
        close(ready[0]);
        return pid;
}

static void fixture_stop(pid_t pid) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

static bool have_procmap_query(void) {
        struct procmap_query q = { .size = sizeof(q), .query_flags = PROCMAP_QUERY_COVERING_OR_NEXT_VMA };
        int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
        bool ok;

        assert_true(fd >= 0);
        ok = ioctl(fd, PROCMAP_QUERY, &q) >= 0 || (errno != ENOTTY && errno != EINVAL);
        close(fd);
        return ok;
}

static struct source_context context(void) {
        struct source_context ctx;
        int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        source_context_init(&ctx, fd);
        close(fd);
        return ctx;
}

static const struct source *sources_for_test(size_t i) {
        static const struct source *const all[] = { &source_maps, &source_ioctl, &source_text_ioctl };

        if (i >= ELEMENTSOF(all))
                return NULL;
        if (all[i] != &source_maps && !have_procmap_query()) {
                printf("[  SKIPPED ] source %s: this kernel has no PROCMAP_QUERY (Linux 6.11+)\n", all[i]->name);
                return NULL;
        }
        return all[i];
}

/* Whole listings: every source gives exactly the text's lines (the gate area included, which is
 * no VMA), and the ioctl-fed ones the kernel's page sizes. */
static void test_read_layout_matches_text(void **state) {
        struct source_context ctx = context();
        pid_t pid = fixture_start();
        struct process *p = NULL;
        struct truth t;

        assert_int_equal(process_open(pid, &p), 0);
        truth_read(pid, &t);
        for (size_t k = 0; k < 3; k++) {
                const struct source *s = sources_for_test(k);
                _cleanup_(layout_unrefp) struct layout *l = NULL;

                if (!s)
                        continue;
                assert_int_equal(source_read_layout(s, &ctx, p, 0, &l), 0);
                assert_true(l->complete);
                assert_int_equal(l->pid, pid);
                assert_int_equal(l->start_time, p->start_time);
                assert_int_equal(l->mappings.n, t.n);
                for (size_t i = 0; i < t.n; i++) {
                        const struct mapping *m = &l->mappings.items[i];

                        assert_same(m, &t.v[i]);
                        if (s != &source_maps && m->kind != MAPPING_KIND_VSYSCALL)
                                assert_int_equal(m->page_size, raw_page_size(p->maps_fd, m->start));
                }
        }
        free(t.v);
        process_free(p);
        fixture_stop(pid);
}

/* Filtered listings: the kernel's filters (source_ioctl) and the layout's give the lines the
 * text's columns select. */
static void test_filters(void **state) {
        static const unsigned filters[] = { SOURCE_EXECUTABLE_ONLY, SOURCE_FILE_BACKED_ONLY,
                                            SOURCE_EXECUTABLE_ONLY | SOURCE_FILE_BACKED_ONLY };
        struct source_context ctx = context();
        pid_t pid = fixture_start();
        struct process *p = NULL;
        struct truth t;

        assert_int_equal(process_open(pid, &p), 0);
        truth_read(pid, &t);
        for (size_t k = 0; k < 3; k++)
                for (size_t f = 0; f < ELEMENTSOF(filters); f++) {
                        const struct source *s = sources_for_test(k);
                        _cleanup_(layout_unrefp) struct layout *l = NULL;
                        size_t j = 0;

                        if (!s)
                                continue;
                        assert_int_equal(source_read_layout(s, &ctx, p, filters[f], &l), 0);
                        for (size_t i = 0; i < t.n; i++) {
                                const struct line *x = &t.v[i];

                                if ((filters[f] & SOURCE_EXECUTABLE_ONLY) && x->perms[2] != 'x')
                                        continue;
                                /* Backed by a file: a path with an inode, but not the
                                 * kernel's names for shared anonymous memory. */
                                if ((filters[f] & SOURCE_FILE_BACKED_ONLY) &&
                                    (x->inode == 0 || x->name[0] != '/' || strncmp(x->name, "/dev/zero ", 10) == 0 ||
                                     strncmp(x->name, "/SYSV", 5) == 0 || strncmp(x->name, "/anon_hugepage", 14) == 0))
                                        continue;
                                assert_true(j < l->mappings.n);
                                assert_same(&l->mappings.items[j++], x);
                        }
                        assert_int_equal(j, l->mappings.n);
                        assert_true(j > 0);
                }
        free(t.v);
        process_free(p);
        fixture_stop(pid);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/* Lookups: what each source reads for a set of addresses answers every one of them as the text
 * does; PROCMAP_QUERY reads only the VMAs they touch (a partial layout that knows the gaps). */
static void test_read_addresses(void **state) {
        struct source_context ctx = context();
        pid_t pid = fixture_start();
        struct process *p = NULL;
        uint64_t addrs[200];
        size_t order[200], n = 0;
        struct truth t;

        assert_int_equal(process_open(pid, &p), 0);
        truth_read(pid, &t);
        srand(7);
        addrs[n++] = 0;
        addrs[n++] = UINT64_MAX;
        addrs[n++] = UINT64_C(0xffffffffff600000);     /* the x86-64 gate area, where there is one */
        while (n < 150) {
                const struct line *x = &t.v[(size_t) rand() % t.n];

                addrs[n++] = x->start + (uint64_t) rand() % (x->end - x->start);
        }
        for (size_t i = 1; i < t.n && n < ELEMENTSOF(addrs); i++)
                if (t.v[i].start > t.v[i - 1].end)
                        addrs[n++] = t.v[i - 1].end;            /* a gap */
        qsort(addrs, n, sizeof(*addrs), cmp_u64);
        for (size_t i = 0; i < n; i++)
                order[i] = i;

        for (size_t k = 0; k < 3; k++) {
                const struct source *s = sources_for_test(k);
                _cleanup_(layout_unrefp) struct layout *l = NULL;
                size_t touched = 0;

                if (!s)
                        continue;
                assert_int_equal(layout_new(p->pid, p->start_time, &l), 0);
                assert_int_equal(s->read_addresses(&ctx, p, addrs, order, n, l), 0);
                layout_normalize(l);
                for (size_t i = 0; i < n; i++) {
                        const struct line *x = truth_find(&t, addrs[i]);
                        size_t idx;
                        int r = layout_find(l, addrs[i], &idx);

                        if (!x) {
                                assert_int_equal(r, 0);
                                continue;
                        }
                        assert_int_equal(r, 1);
                        assert_same(&l->mappings.items[idx], x);
                }
                /* Only what the addresses touch, unless the source reads everything. */
                for (size_t i = 0; i < l->mappings.n; i++)
                        for (size_t j = 0; j < n; j++)
                                if (addrs[j] >= l->mappings.items[i].start && addrs[j] < l->mappings.items[i].end) {
                                        touched++;
                                        break;
                                }
                if (s == &source_maps)
                        assert_true(l->complete);
                else {
                        assert_false(l->complete);
                        assert_int_equal(touched, l->mappings.n);
                }
        }
        free(t.v);
        process_free(p);
        fixture_stop(pid);
}

/* A kernel thread has no address space: an empty, complete layout from every source. */
static void test_kernel_thread(void **state) {
        struct source_context ctx = context();
        struct process *p = NULL;
        int r = process_open(2, &p);

        if (r < 0 || !p->kernel_thread) {
                printf("[  SKIPPED ] pid 2 is not a kernel thread here (a pid namespace?)\n");
                process_free(p);
                skip();
        }
        for (size_t k = 0; k < 3; k++) {
                const struct source *s = sources_for_test(k);
                _cleanup_(layout_unrefp) struct layout *l = NULL;

                if (!s)
                        continue;
                assert_int_equal(source_read_layout(s, &ctx, p, 0, &l), 0);
                assert_true(l->complete);
                assert_true(l->kernel_thread);
                assert_int_equal(l->mappings.n, 0);
        }
        process_free(p);
}

/* A process that exited: its mm is gone. PROCMAP_QUERY says ESRCH; the text reads as empty. */
static void test_exited(void **state) {
        struct source_context ctx = context();
        pid_t pid = fixture_start();
        struct process *p = NULL;
        siginfo_t si;

        assert_int_equal(process_open(pid, &p), 0);
        kill(pid, SIGKILL);
        /* A zombie, not reaped: the pid still names it. */
        assert_int_equal(waitid(P_PID, (id_t) pid, &si, WEXITED | WNOWAIT), 0);
        for (size_t k = 0; k < 3; k++) {
                const struct source *s = sources_for_test(k);
                struct layout *l = NULL;
                int r;

                if (!s)
                        continue;
                r = source_read_layout(s, &ctx, p, 0, &l);
                if (s == &source_maps) {
                        assert_int_equal(r, 0);
                        assert_int_equal(l->mappings.n, 0);
                        layout_unref(l);
                } else
                        assert_int_equal(r, -ESRCH);
        }
        assert_int_equal(process_check_alive(p), -ESRCH);
        process_free(p);
        waitpid(pid, NULL, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_read_layout_matches_text),
                cmocka_unit_test(test_filters),
                cmocka_unit_test(test_read_addresses),
                cmocka_unit_test(test_kernel_thread),
                cmocka_unit_test(test_exited),
        };

        if (geteuid() != 0)
                printf("# running as uid %d: the fixture is our own child, readable anyway\n", (int) geteuid());
        return cmocka_run_group_tests(tests, NULL, NULL);
}
