/* The mapping engine on live processes: both backends, names, build IDs, ELF addresses. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <setjmp.h>
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
#include "engine.h"
#include "fixture.h"
#include "maps-parse.h"
#include "number.h"
#include "procmap-ioctl.h"
/* The kernel's ABI, for the oracle that calls the ioctl itself. */
#include "procmap-uapi.h"

static const enum engine_backend backends[] = { ENGINE_BACKEND_IOCTL, ENGINE_BACKEND_MAPS };

static struct engine *new_engine(enum engine_backend b) {
        struct engine *e = NULL;
        int r = engine_new(&(struct engine_config) { .backend = b }, &e);

        if (r == -EOPNOTSUPP && b == ENGINE_BACKEND_IOCTL) {
                printf("[  SKIPPED ] this kernel has no PROCMAP_QUERY ioctl (Linux 6.11+)\n");
                skip();
        }
        assert_int_equal(r, 0);
        assert_int_equal(engine_get_backend(e), b);
        return e;
}

static void list_with(enum engine_backend b, pid_t pid, unsigned flags, struct mapping_list *ret) {
        struct engine *e = new_engine(b);
        struct process *p = NULL;

        assert_non_null(e);
        assert_int_equal(process_open(pid, &p), 0);
        assert_int_equal(engine_list(e, p, flags, ret), 0);
        process_free(p);
        engine_free(e);
}

static const struct mapping *find(const struct mapping_list *l, uint64_t addr) {
        ssize_t i = mapping_list_find(l, addr);

        return i < 0 ? NULL : &l->items[i];
}

static void assert_same_mapping(const struct mapping *a, const struct mapping *b) {
        assert_int_equal(a->start, b->start);
        assert_int_equal(a->end, b->end);
        assert_int_equal(a->flags, b->flags);
        assert_int_equal(a->offset, b->offset);
        assert_int_equal(a->dev_major, b->dev_major);
        assert_int_equal(a->dev_minor, b->dev_minor);
        assert_int_equal(a->inode, b->inode);
        assert_int_equal(a->kind, b->kind);
        assert_int_equal(a->deleted, b->deleted);
        if (a->name || b->name) {
                assert_non_null(a->name);
                assert_non_null(b->name);
                assert_string_equal(a->name, b->name);
        }
}

static void assert_same_list(const struct mapping_list *a, const struct mapping_list *b) {
        assert_int_equal(a->n, b->n);
        for (size_t i = 0; i < a->n; i++)
                assert_same_mapping(&a->items[i], &b->items[i]);
}

static void test_backends_identical(void **state) {
        _cleanup_(mapping_list_done) struct mapping_list a = {}, b = {};
        struct fixture f;

        assert_int_equal(fixture_start(3000, 1, &f), 0);
        list_with(ENGINE_BACKEND_IOCTL, f.pid, 0, &a);
        list_with(ENGINE_BACKEND_MAPS, f.pid, 0, &b);
        fixture_stop(&f);

        assert_true(a.n > 3000);
        assert_same_list(&a, &b);
        for (size_t i = 1; i < a.n; i++)
                assert_true(a.items[i - 1].end <= a.items[i].start);
}

/* Unfiltered listings take the text path on both backends: this checks the other one, one
 * PROCMAP_QUERY per VMA, against the text, and the engine's filtered listings (which take it)
 * against the maps backend's. */
static void test_ioctl_per_vma_matches_maps(void **state) {
        static const unsigned filters[] = {
                ENGINE_FILE_BACKED_ONLY,
                ENGINE_EXECUTABLE_ONLY,
                ENGINE_FILE_BACKED_ONLY | ENGINE_BUILD_IDS,
        };
        _cleanup_(mapping_list_done) struct mapping_list q = {}, text = {};
        struct engine *e = new_engine(ENGINE_BACKEND_IOCTL);
        struct process *p = NULL;
        struct fixture f;

        engine_free(e);
        assert_int_equal(fixture_start(3000, 1, &f), 0);
        assert_int_equal(process_open(f.pid, &p), 0);
        assert_int_equal(procmap_list(p->maps_fd, 0, &q), 0);
        assert_int_equal(maps_read_fd(p->maps_fd, &text), 0);
        /* The text alone shows the gate area, which is no VMA. */
        if (text.n > 0 && text.items[text.n - 1].kind == MAPPING_KIND_VSYSCALL)
                mapping_done(&text.items[--text.n]);
        assert_true(q.n > 3000);
        assert_same_list(&q, &text);
        for (size_t i = 0; i < q.n; i++)
                assert_true(q.items[i].page_size > 0);
        process_free(p);

        for (size_t k = 0; k < ELEMENTSOF(filters); k++) {
                _cleanup_(mapping_list_done) struct mapping_list a = {}, b = {};

                list_with(ENGINE_BACKEND_IOCTL, f.pid, filters[k], &a);
                list_with(ENGINE_BACKEND_MAPS, f.pid, filters[k], &b);
                assert_true(a.n > 0);
                assert_same_list(&a, &b);
                for (size_t i = 0; i < a.n; i++) {
                        assert_int_equal(a.items[i].build_id_len, b.items[i].build_id_len);
                        assert_memory_equal(a.items[i].build_id, b.items[i].build_id, a.items[i].build_id_len);
                }
        }
        fixture_stop(&f);
}

struct visited {
        struct mapping_list l;
        size_t stop_after;      /* fail with -ECANCELED after this many; 0: never */
};

static int visit_record(struct mapping *m, void *userdata) {
        struct visited *v = userdata;

        if (v->stop_after > 0 && v->l.n == v->stop_after)
                return -ECANCELED;
        return mapping_list_push_copy(&v->l, m);
}

/* engine_list_each() visits what engine_list() lists, in order, and stops at the visitor's
 * first error, passing it on. */
static void test_list_each(void **state) {
        struct fixture f;

        assert_int_equal(fixture_start(3000, 1, &f), 0);
        for (size_t k = 0; k < ELEMENTSOF(backends); k++)
                for (unsigned flags = 0; flags <= (ENGINE_FILE_BACKED_ONLY | ENGINE_EXECUTABLE_ONLY); flags++) {
                        _cleanup_(mapping_list_done) struct mapping_list want = {};
                        struct engine *e = new_engine(backends[k]);
                        struct visited v = {}, w = { .stop_after = 7 };
                        struct process *p = NULL;

                        assert_int_equal(process_open(f.pid, &p), 0);
                        assert_int_equal(engine_list(e, p, flags, &want), 0);
                        assert_int_equal(engine_list_each(e, p, flags, visit_record, &v), 0);
                        assert_same_list(&v.l, &want);
                        for (size_t i = 0; i < want.n; i++)
                                assert_int_equal(v.l.items[i].page_size, want.items[i].page_size);
                        if (want.n > 7) {
                                assert_int_equal(engine_list_each(e, p, flags, visit_record, &w), -ECANCELED);
                                assert_int_equal(w.l.n, 7);
                        }
                        mapping_list_done(&v.l);
                        mapping_list_done(&w.l);
                        process_free(p);
                        engine_free(e);
                }
        fixture_stop(&f);
}

static void test_filters(void **state) {
        struct fixture f;

        assert_int_equal(fixture_start(10, 1, &f), 0);
        for (size_t k = 0; k < ELEMENTSOF(backends); k++) {
                _cleanup_(mapping_list_done) struct mapping_list all = {}, x = {}, files = {};
                size_t n_x = 0, n_files = 0;

                list_with(backends[k], f.pid, 0, &all);
                list_with(backends[k], f.pid, ENGINE_EXECUTABLE_ONLY, &x);
                list_with(backends[k], f.pid, ENGINE_FILE_BACKED_ONLY, &files);
                for (size_t i = 0; i < all.n; i++) {
                        n_x += !!(all.items[i].flags & MAPPING_EXEC);
                        n_files += mapping_is_file_backed(&all.items[i]);
                }
                assert_true(n_x > 0 && n_files > 0);
                assert_int_equal(x.n, n_x);
                assert_int_equal(files.n, n_files);
                for (size_t i = 0; i < x.n; i++)
                        assert_true(x.items[i].flags & MAPPING_EXEC);
                for (size_t i = 0; i < files.n; i++)
                        assert_true(mapping_is_file_backed(&files.items[i]));
        }
        fixture_stop(&f);
}

static bool ends_with(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);

        return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void test_name_forms(void **state) {
        struct fixture f;

        assert_int_equal(fixture_start(0, 1, &f), 0);
        for (size_t k = 0; k < ELEMENTSOF(backends); k++) {
                _cleanup_(mapping_list_done) struct mapping_list l = {};
                const struct mapping *m;

                list_with(backends[k], f.pid, 0, &l);

                assert_non_null(m = find(&l, fixture_get(&f, "deleted")));
                assert_int_equal(m->kind, MAPPING_KIND_FILE);
                assert_true(m->deleted);
                assert_true(ends_with(m->name, "/gone.bin (deleted)"));
                assert_int_equal(mapping_path_len(m), strlen(m->name) - strlen(" (deleted)"));

                assert_non_null(m = find(&l, fixture_get(&f, "space")));
                assert_int_equal(m->kind, MAPPING_KIND_FILE);
                assert_false(m->deleted);
                assert_true(ends_with(m->name, "/with space.bin"));

                assert_non_null(m = find(&l, fixture_get(&f, "newline")));
                assert_true(ends_with(m->name, "/new\nline.bin"));

                /* A live file whose name really ends in " (deleted)". */
                assert_non_null(m = find(&l, fixture_get(&f, "literal_deleted")));
                assert_int_equal(m->kind, MAPPING_KIND_FILE);
                assert_true(ends_with(m->name, "/x (deleted)"));
                assert_false(m->deleted);
                assert_int_equal(mapping_path_len(m), strlen(m->name));

                assert_non_null(m = find(&l, fixture_get(&f, "memfd")));
                assert_int_equal(m->kind, MAPPING_KIND_MEMFD);
                assert_string_equal(m->name, "/memfd:fixture-memfd (deleted)");
                assert_true(mapping_is_file_backed(m));

                assert_non_null(m = find(&l, fixture_get(&f, "shared_anon")));
                assert_int_equal(m->kind, MAPPING_KIND_SPECIAL);
                assert_string_equal(m->name, "/dev/zero (deleted)");
                assert_true(m->flags & MAPPING_SHARED);

                if (fixture_get_string(&f, "anon_named")) {
                        assert_non_null(m = find(&l, fixture_get(&f, "anon_named")));
                        assert_int_equal(m->kind, MAPPING_KIND_ANON_NAMED);
                        assert_string_equal(m->name, "[anon:fixture name]");
                } else if (k == 0)
                        printf("[  SKIPPED ] live prctl(PR_SET_VMA_ANON_NAME) case: the kernel refused it "
                               "(errno %s; built without CONFIG_ANON_VMA_NAME); the parser tests cover the name form\n",
                               fixture_get_string(&f, "anon_named_error"));

                bool heap = false, stack = false, vdso = false;
                for (size_t i = 0; i < l.n; i++) {
                        heap |= l.items[i].kind == MAPPING_KIND_HEAP;
                        stack |= l.items[i].kind == MAPPING_KIND_STACK;
                        vdso |= l.items[i].kind == MAPPING_KIND_VDSO;
                }
                assert_true(stack && vdso);
                (void) heap; /* a process that never called brk() has none */
        }
        fixture_stop(&f);
}

/* A file of this process mapped at a fresh address (one page of x), then closed. */
static void *map_file(const char *path, char x) {
        char page[4096];
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        void *a;

        assert_true(fd >= 0);
        memset(page, x, sizeof(page));
        assert_int_equal(write(fd, page, sizeof(page)), (ssize_t) sizeof(page));
        a = mmap(NULL, sizeof(page), PROT_READ, MAP_PRIVATE, fd, 0);
        assert_true(a != MAP_FAILED);
        close(fd);
        return a;
}

/* Another file (another inode) at path. */
static void plant_file(const char *path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, "other", 5), 5);
        close(fd);
}

/* The checks that a name as printed names the mapped file compare device and inode: a file
 * created under the printed name of a deleted file ("NAME (deleted)"), or under the literal
 * form of a name with a newline ("a\012b" for "a<newline>b"), is another file, and does not
 * change what is reported. Against raw /proc/self/maps for the names the kernel prints. */
static void test_file_replaced(void **state) {
        char dir[] = "/tmp/memmapd-replaced-XXXXXX", gone[96], planted[128], newline[96], literal[128];
        _cleanup_free_ char *maps = NULL;
        void *a, *b;

        assert_non_null(mkdtemp(dir));
        snprintf(gone, sizeof(gone), "%s/gone.so", dir);
        snprintf(planted, sizeof(planted), "%s/gone.so (deleted)", dir);
        snprintf(newline, sizeof(newline), "%s/a\nb.so", dir);
        snprintf(literal, sizeof(literal), "%s/a\\012b.so", dir);
        a = map_file(gone, 'g');
        assert_int_equal(unlink(gone), 0);
        plant_file(planted);
        b = map_file(newline, 'n');
        plant_file(literal);

        /* What the kernel prints: both names are ambiguous in the text. */
        {
                _cleanup_free_ char *want_a = NULL, *want_b = NULL, *cmd = NULL;

                assert_true(asprintf(&cmd, "cat /proc/%d/maps", (int) getpid()) > 0);
                assert_non_null(maps = test_run_capture(cmd));
                assert_true(asprintf(&want_a, "%s (deleted)\n", gone) > 0);
                assert_true(asprintf(&want_b, "%s/a\\012b.so\n", dir) > 0);
                assert_non_null(strstr(maps, want_a));
                assert_non_null(strstr(maps, want_b));
        }
        for (size_t k = 0; k < ELEMENTSOF(backends); k++) {
                _cleanup_(mapping_list_done) struct mapping_list l = {};
                const struct mapping *m;

                list_with(backends[k], getpid(), 0, &l);
                assert_non_null(m = find(&l, (uint64_t) (uintptr_t) a));
                assert_string_equal(m->name, planted);
                assert_true(m->deleted);
                assert_int_equal(mapping_path_len(m), strlen(gone));
                assert_non_null(m = find(&l, (uint64_t) (uintptr_t) b));
                assert_string_equal(m->name, newline);
                assert_false(m->deleted);
        }
        assert_int_equal(munmap(a, 4096), 0);
        assert_int_equal(munmap(b, 4096), 0);
        unlink(planted);
        unlink(newline);
        unlink(literal);
        assert_int_equal(rmdir(dir), 0);
}

static void test_build_ids(void **state) {
        _cleanup_(mapping_list_done) struct mapping_list a = {}, b = {};
        _cleanup_free_ char *probe = test_run_capture("command -v readelf");
        struct fixture f;
        size_t checked = 0;

        /* binutils is a test dependency (tools/setup.sh): without it nothing is checked. */
        assert_non_null(probe);
        assert_int_equal(fixture_start(0, 1, &f), 0);
        /* The ioctl's build IDs come from the kernel; the maps backend's from our ELF reader. */
        list_with(ENGINE_BACKEND_IOCTL, f.pid, ENGINE_BUILD_IDS | ENGINE_FILE_BACKED_ONLY, &a);
        list_with(ENGINE_BACKEND_MAPS, f.pid, ENGINE_BUILD_IDS | ENGINE_FILE_BACKED_ONLY, &b);
        fixture_stop(&f);

        assert_int_equal(a.n, b.n);
        for (size_t i = 0; i < a.n; i++) {
                const struct mapping *m = &a.items[i];
                char ours[2 * MAPPING_BUILD_ID_MAX + 1], theirs[256];

                assert_int_equal(m->build_id_len, b.items[i].build_id_len);
                assert_memory_equal(m->build_id, b.items[i].build_id, m->build_id_len);
                if (m->kind != MAPPING_KIND_FILE || m->deleted)
                        continue;
                if (!test_readelf_build_id(m->name, theirs, sizeof(theirs))) {
                        assert_int_equal(m->build_id_len, 0);
                        continue;
                }
                assert_true(m->build_id_len > 0);
                assert_string_equal(format_hex_bytes(m->build_id, m->build_id_len, ours), theirs);
                checked++;
        }
        /* At least the fixture binary and libc, each in several mappings. */
        assert_true(checked >= 4);
}

static void test_elf_vaddr(void **state) {
        const char *bin = test_program("FIXTURE_PROC", "tests/fixture-proc");
        uint64_t want = test_nm_symbol(bin, "fixture_marker_function", 0);
        struct fixture f;

        /* binutils is a test dependency (tools/setup.sh): nm must find it. */
        assert_true(want != 0);
        assert_int_equal(fixture_start(0, 0, &f), 0);
        for (size_t k = 0; k < ELEMENTSOF(backends); k++) {
                _cleanup_(mapping_list_done) struct mapping_list l = {};
                _cleanup_free_ struct engine_result *res = NULL;
                uint64_t addr = fixture_get(&f, "marker");
                struct engine *e = new_engine(backends[k]);
                struct process *p = NULL;

                assert_int_equal(process_open(f.pid, &p), 0);
                assert_int_equal(engine_lookup(e, p, &addr, 1, ENGINE_BUILD_IDS, &l, &res), 0);
                assert_int_equal(l.n, 1);
                assert_int_equal(res[0].mapping, 0);
                assert_true(res[0].has_file_offset);
                assert_int_equal(res[0].file_offset, addr - l.items[0].start + l.items[0].offset);
                assert_true(res[0].has_elf_vaddr);
                assert_int_equal(res[0].elf_vaddr, want);
                assert_true(l.items[0].build_id_len > 0);
                process_free(p);
                engine_free(e);
        }
        fixture_stop(&f);
}

static void lookup_with(enum engine_backend b, pid_t pid, const uint64_t *addrs, size_t n, struct mapping_list *ret,
                        struct engine_result **ret_res) {
        struct engine *e = new_engine(b);
        struct process *p = NULL;

        assert_int_equal(process_open(pid, &p), 0);
        assert_int_equal(engine_lookup(e, p, addrs, n, ENGINE_BUILD_IDS, ret, ret_res), 0);
        process_free(p);
        engine_free(e);
}

static void test_lookup_backends_agree(void **state) {
        _cleanup_(mapping_list_done) struct mapping_list all = {}, la = {}, lb = {};
        _cleanup_free_ struct engine_result *ra = NULL, *rb = NULL;
        _cleanup_free_ uint64_t *addrs = NULL;
        size_t n = 0, cap = 20000;
        struct fixture f;

        assert_int_equal(fixture_start(2000, 1, &f), 0);
        list_with(ENGINE_BACKEND_MAPS, f.pid, 0, &all);
        assert_non_null(addrs = calloc(cap, sizeof(uint64_t)));
        srandom(42);
        for (size_t i = 0; i < all.n && n + 8 < cap; i++) {
                const struct mapping *m = &all.items[i];

                addrs[n++] = m->start;
                addrs[n++] = m->end - 1;
                addrs[n++] = m->start + (uint64_t) random() % (m->end - m->start);
                addrs[n++] = m->end;                   /* often unmapped: a gap */
                addrs[n++] = m->start;                 /* a duplicate */
        }
        addrs[n++] = 0;
        addrs[n++] = UINT64_MAX;
        addrs[n++] = UINT64_C(0xffffffffff600000);
        /* Unsorted input. */
        for (size_t i = n - 1; i > 0; i--) {
                size_t j = (size_t) random() % (i + 1);
                uint64_t t = addrs[i];
                addrs[i] = addrs[j];
                addrs[j] = t;
        }

        lookup_with(ENGINE_BACKEND_IOCTL, f.pid, addrs, n, &la, &ra);
        lookup_with(ENGINE_BACKEND_MAPS, f.pid, addrs, n, &lb, &rb);
        fixture_stop(&f);

        assert_same_list(&la, &lb);
        for (size_t i = 1; i < la.n; i++)
                assert_true(la.items[i - 1].end <= la.items[i].start);
        for (size_t i = 0; i < n; i++) {
                const struct mapping *want = find(&all, addrs[i]);

                if (ra[i].mapping != rb[i].mapping)
                        printf("address 0x%llx: ioctl %zd, maps %zd\n", (unsigned long long) addrs[i], ra[i].mapping,
                               rb[i].mapping);
                assert_int_equal(ra[i].mapping, rb[i].mapping);
                assert_int_equal(ra[i].has_file_offset, rb[i].has_file_offset);
                assert_int_equal(ra[i].file_offset, rb[i].file_offset);
                assert_int_equal(ra[i].has_elf_vaddr, rb[i].has_elf_vaddr);
                assert_int_equal(ra[i].elf_vaddr, rb[i].elf_vaddr);
                if (!want) {
                        if (ra[i].mapping != -1)
                                printf("address 0x%llx found in [0x%llx, 0x%llx) %s\n", (unsigned long long) addrs[i],
                                       (unsigned long long) la.items[ra[i].mapping].start,
                                       (unsigned long long) la.items[ra[i].mapping].end, la.items[ra[i].mapping].name);
                        assert_int_equal(ra[i].mapping, -1);
                        continue;
                }
                assert_true(ra[i].mapping >= 0);
                assert_same_mapping(&la.items[ra[i].mapping], want);
        }
}

static void test_gate_area(void **state) {
        _cleanup_(mapping_list_done) struct mapping_list self = {}, a = {}, b = {};
        _cleanup_close_ int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
        struct fixture f;

        assert_true(fd >= 0);
        assert_int_equal(maps_read_fd(fd, &self), 0);
        if (self.n == 0 || self.items[self.n - 1].kind != MAPPING_KIND_VSYSCALL) {
                printf("[  SKIPPED ] this kernel shows no [vsyscall] gate area\n");
                skip();
        }
        assert_int_equal(fixture_start(0, 0, &f), 0);
        list_with(ENGINE_BACKEND_IOCTL, f.pid, 0, &a);
        list_with(ENGINE_BACKEND_MAPS, f.pid, 0, &b);
        fixture_stop(&f);
        assert_int_equal(a.items[a.n - 1].kind, MAPPING_KIND_VSYSCALL);
        assert_same_mapping(&a.items[a.n - 1], &b.items[b.n - 1]);
        assert_true(a.items[a.n - 1].start >= UINT64_C(1) << 63);
}

static void test_exited_process(void **state) {
        struct fixture f;

        for (size_t k = 0; k < ELEMENTSOF(backends); k++) {
                _cleanup_(mapping_list_done) struct mapping_list l = {};
                _cleanup_free_ struct engine_result *res = NULL;
                struct engine *e = new_engine(backends[k]);
                struct process *p = NULL, *q = NULL;
                uint64_t addr;
                pid_t pid;

                assert_int_equal(fixture_start(0, 0, &f), 0);
                pid = f.pid;
                addr = fixture_get(&f, "marker");
                assert_int_equal(process_open(pid, &p), 0);
                assert_true(p->start_time > 0);
                fixture_stop(&f);

                /* Exited (and reaped) while pinned: never a partial answer. */
                assert_int_equal(engine_list(e, p, 0, &l), -ESRCH);
                assert_int_equal(engine_lookup(e, p, &addr, 1, 0, &l, &res), -ESRCH);
                assert_int_equal(l.n, 0);
                /* Gone before it is opened. */
                assert_int_equal(process_open(pid, &q), -ESRCH);
                process_free(p);
                engine_free(e);
        }
}

/* Opened, then exec()ed: the maps fd names the old mm, whose text reads as empty. Both backends
 * say -ESRCH (the ioctl by itself, the text by looking at the maps afresh), never an empty
 * answer; process_same() tells this from an exit, and the process opened afresh reads fine. */
static void test_exec_after_open(void **state) {
        struct fixture f;

        for (size_t k = 0; k < ELEMENTSOF(backends); k++) {
                _cleanup_(mapping_list_done) struct mapping_list l = {}, m = {}, again = {};
                _cleanup_free_ struct engine_result *res = NULL;
                struct engine *e = new_engine(backends[k]);
                struct process *p = NULL, *q = NULL;
                uint64_t addr, start_time;

                assert_int_equal(fixture_start(0, 0, &f), 0);
                addr = fixture_get(&f, "marker");
                assert_int_equal(process_open(f.pid, &p), 0);
                start_time = p->start_time;
                assert_int_equal(process_maps_stale(p), 0);
                assert_int_equal(write(f.stdin_fd, "x", 1), 1);
                for (int i = 0; i < 30000 && !fixture_runs_cat(f.pid); i++)
                        usleep(1000);
                assert_true(fixture_runs_cat(f.pid));

                assert_int_equal(process_maps_stale(p), 1);
                assert_int_equal(process_same(f.pid, start_time), 1);
                assert_int_equal(process_same(f.pid, start_time + 1), 0);
                assert_int_equal(engine_list(e, p, 0, &l), -ESRCH);
                assert_int_equal(l.n, 0);
                assert_int_equal(engine_list(e, p, ENGINE_FILE_BACKED_ONLY, &l), -ESRCH);
                assert_int_equal(engine_lookup(e, p, &addr, 1, 0, &m, &res), -ESRCH);

                assert_int_equal(process_open(f.pid, &q), 0);
                assert_true(q->start_time == start_time);
                assert_int_equal(process_maps_stale(q), 0);
                assert_int_equal(engine_list(e, q, 0, &again), 0);
                assert_true(again.n > 0);

                fixture_stop(&f);
                assert_int_equal(process_same(f.pid, start_time), 0);
                process_free(q);
                process_free(p);
                engine_free(e);
        }
}

/* The name /proc/PID/maps prints for the mapping starting at start (malloc'd), read here
 * with stdio, independently of the daemon's parser: the name begins at the first '/' after
 * the inode column. NULL when there is none. */
static char *raw_maps_name(pid_t pid, uint64_t start) {
        char path[64], *line = NULL;
        size_t cap = 0;
        FILE *fp;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        assert_non_null(fp = fopen(path, "re"));
        while (getline(&line, &cap, fp) > 0) {
                char *slash;

                if (strtoull(line, NULL, 16) != start)
                        continue;
                fclose(fp);
                line[strcspn(line, "\n")] = 0;
                slash = strchr(line, '/');
                if (!slash) {
                        free(line);
                        return NULL;
                }
                memmove(line, slash, strlen(slash) + 1);
                return line;
        }
        fclose(fp);
        free(line);
        return NULL;
}

/* Issue 12.1: a file whose path is longer than PATH_MAX. The kernel prints it in full in the
 * text, while PROCMAP_QUERY answers ENAMETOOLONG for it: every call, on both backends, must
 * give the exact name and not fail the process. */
static void test_path_beyond_path_max(void **state) {
        static const unsigned flag_sets[] = { 0, ENGINE_BUILD_IDS, ENGINE_FILE_BACKED_ONLY | ENGINE_BUILD_IDS };
        _cleanup_free_ char *raw = NULL;
        struct fixture f;
        uint64_t deep;

        setenv("FIXTURE_DEEP", "1", 1);
        assert_int_equal(fixture_start(0, 1, &f), 0);
        unsetenv("FIXTURE_DEEP");
        deep = fixture_get(&f, "deep");
        assert_true(deep != 0);
        raw = raw_maps_name(f.pid, deep);
        assert_non_null(raw);
        assert_int_equal(strlen(raw), fixture_get(&f, "deep_len"));
        assert_true(strlen(raw) > 4096);
        printf("path of %zu bytes\n", strlen(raw));

        /* The ioctl called directly: the name comes whole, through the text. */
        {
                _cleanup_(procmap_buf_done) struct procmap_buf buf = {};
                _cleanup_close_ int fd = -1;
                char path[64];
                struct mapping m = {};

                snprintf(path, sizeof(path), "/proc/%d/maps", (int) f.pid);
                assert_true((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
                assert_int_equal(procmap_query(fd, deep, PROCMAP_BUILD_ID, &buf, &m), 0);
                assert_string_equal(m.name, raw);
                assert_int_equal(m.kind, MAPPING_KIND_FILE);
                mapping_done(&m);
        }

        for (size_t b = 0; b < ELEMENTSOF(backends); b++)
                for (size_t k = 0; k < ELEMENTSOF(flag_sets); k++) {
                        _cleanup_(mapping_list_done) struct mapping_list l = {};
                        const struct mapping *m;

                        list_with(backends[b], f.pid, flag_sets[k], &l);
                        assert_non_null(m = find(&l, deep));
                        assert_string_equal(m->name, raw);
                        assert_int_equal(m->kind, MAPPING_KIND_FILE);
                        assert_false(m->deleted);
                }
        for (size_t b = 0; b < ELEMENTSOF(backends); b++) {
                _cleanup_(mapping_list_done) struct mapping_list l = {};
                _cleanup_free_ struct engine_result *res = NULL;
                const uint64_t addrs[] = { deep + 16, fixture_get(&f, "marker") };

                lookup_with(backends[b], f.pid, addrs, ELEMENTSOF(addrs), &l, &res);
                assert_true(res[0].mapping >= 0 && res[1].mapping >= 0);
                assert_string_equal(l.items[res[0].mapping].name, raw);
                assert_int_equal(res[0].file_offset, 16);
                assert_true(res[1].has_elf_vaddr);
        }
        fixture_stop(&f);
}

/* Issue 12.2: a thread id stands for its process, on both backends. */
static void test_thread_id(void **state) {
        struct fixture f;
        pid_t tid;

        setenv("FIXTURE_THREADS", "2", 1);
        assert_int_equal(fixture_start(0, 1, &f), 0);
        unsetenv("FIXTURE_THREADS");
        tid = (pid_t) fixture_get(&f, "tid");
        assert_true(tid > 0 && tid != f.pid);

        for (size_t b = 0; b < ELEMENTSOF(backends); b++) {
                _cleanup_(mapping_list_done) struct mapping_list by_pid = {}, by_tid = {}, l = {};
                _cleanup_free_ struct engine_result *res = NULL;
                const uint64_t addr = fixture_get(&f, "marker");
                struct engine *e = new_engine(backends[b]);
                struct process *p = NULL, *q = NULL;
                uint64_t start_time;

                assert_int_equal(process_open(tid, &p), 0);
                assert_int_equal(p->pid, f.pid);
                assert_int_equal(process_open(f.pid, &q), 0);
                assert_int_equal(p->start_time, q->start_time);
                assert_int_equal(test_proc_stat_field(f.pid, 22, &start_time), 0);
                assert_int_equal(p->start_time, start_time);
                assert_int_equal(engine_list(e, p, 0, &by_tid), 0);
                assert_int_equal(engine_list(e, q, 0, &by_pid), 0);
                assert_same_list(&by_tid, &by_pid);
                assert_true(by_tid.n > 5);
                assert_int_equal(engine_lookup(e, p, &addr, 1, ENGINE_BUILD_IDS, &l, &res), 0);
                assert_true(res[0].mapping >= 0 && res[0].has_elf_vaddr);
                process_free(p);
                process_free(q);
                engine_free(e);
        }
        fixture_stop(&f);
}

/* Issue 12.6: a file literally named "back\012slash" and one with a newline print alike in
 * the maps text; both backends give each its own name (the ioctl's, called directly, is the
 * truth). */
static void test_escaped_newline_names(void **state) {
        struct fixture f;
        uint64_t back, newline;

        setenv("FIXTURE_BACKSLASH", "1", 1);
        assert_int_equal(fixture_start(0, 1, &f), 0);
        unsetenv("FIXTURE_BACKSLASH");
        back = fixture_get(&f, "backslash");
        newline = fixture_get(&f, "newline");
        assert_true(back != 0 && newline != 0);
        {
                _cleanup_(procmap_buf_done) struct procmap_buf buf = {};
                _cleanup_close_ int fd = -1;
                _cleanup_free_ char *raw = raw_maps_name(f.pid, back);
                char path[64];
                struct mapping m = {};

                /* The text cannot tell: it shows the escape sequence either way. */
                assert_non_null(strstr(raw, "back\\012slash.bin"));
                snprintf(path, sizeof(path), "/proc/%d/maps", (int) f.pid);
                assert_true((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
                assert_int_equal(procmap_query(fd, back, 0, &buf, &m), 0);
                assert_non_null(strstr(m.name, "/back\\012slash.bin"));
                assert_null(strchr(m.name, '\n'));
                mapping_done(&m);
        }
        for (size_t b = 0; b < ELEMENTSOF(backends); b++) {
                static const unsigned flag_sets[] = { 0, ENGINE_FILE_BACKED_ONLY };

                for (size_t k = 0; k < ELEMENTSOF(flag_sets); k++) {
                        _cleanup_(mapping_list_done) struct mapping_list l = {};
                        const struct mapping *m;

                        list_with(backends[b], f.pid, flag_sets[k], &l);
                        assert_non_null(m = find(&l, back));
                        assert_non_null(strstr(m->name, "/back\\012slash.bin"));
                        assert_null(strchr(m->name, '\n'));
                        assert_non_null(m = find(&l, newline));
                        assert_non_null(strstr(m->name, "/new\nline.bin"));
                }
                {
                        _cleanup_(mapping_list_done) struct mapping_list l = {};
                        _cleanup_free_ struct engine_result *res = NULL;
                        const uint64_t addrs[] = { newline, back };

                        lookup_with(backends[b], f.pid, addrs, 2, &l, &res);
                        assert_non_null(strstr(l.items[res[0].mapping].name, "/new\nline.bin"));
                        assert_non_null(strstr(l.items[res[1].mapping].name, "/back\\012slash.bin"));
                }
        }
        fixture_stop(&f);
}

/* Issue 12.4 (part): the vdso's build ID in listings with build IDs and its elf_vaddr in
 * lookups, read from the process's memory. Checked against the image dumped here from
 * /proc/PID/mem and read with readelf (build ID) and nm (a symbol's address). */
static void test_vdso(void **state) {
        _cleanup_free_ char *probe = test_run_capture("command -v readelf && command -v nm");
        _cleanup_(mapping_list_done) struct mapping_list self = {};
        char dump[] = "/tmp/memmapd-vdso-XXXXXX", want_id[200] = "";
        _cleanup_free_ char *cmd = NULL, *out = NULL;
        _cleanup_free_ uint8_t *image = NULL;
        const struct mapping *vdso = NULL;
        uint64_t sym = 0;
        struct fixture f;
        int fd;

        if (!probe || !strstr(probe, "nm")) {
                printf("[  SKIPPED ] readelf and nm (binutils) are needed\n");
                skip();
        }
        assert_int_equal(fixture_start(0, 0, &f), 0);
        list_with(ENGINE_BACKEND_MAPS, f.pid, 0, &self);
        for (size_t i = 0; i < self.n; i++)
                if (self.items[i].kind == MAPPING_KIND_VDSO)
                        vdso = &self.items[i];
        if (!vdso) {
                fixture_stop(&f);
                printf("[  SKIPPED ] the process has no [vdso]\n");
                skip();
        }
        {
                size_t size = vdso->end - vdso->start;
                char mem[64];
                int mfd;

                snprintf(mem, sizeof(mem), "/proc/%d/mem", (int) f.pid);
                assert_true((mfd = open(mem, O_RDONLY | O_CLOEXEC)) >= 0);
                assert_non_null(image = malloc(size));
                assert_int_equal(pread(mfd, image, size, (off_t) vdso->start), (ssize_t) size);
                close(mfd);
                assert_true((fd = mkstemp(dump)) >= 0);
                assert_int_equal(write(fd, image, size), (ssize_t) size);
                close(fd);
        }
        cmd = malloc(256);
        snprintf(cmd, 256, "readelf -n %s", dump);
        out = test_run_capture(cmd);
        if (out && strstr(out, "Build ID: "))
                snprintf(want_id, sizeof(want_id), "%.*s", (int) strcspn(strstr(out, "Build ID: ") + 10, " \n"),
                         strstr(out, "Build ID: ") + 10);
        free(out);
        snprintf(cmd, 256, "nm -D %s | grep -E ' [TtWw] (__vdso_)?clock_gettime(@|$)' | head -n 1", dump);
        out = test_run_capture(cmd);
        if (out)
                sym = strtoull(out, NULL, 16);
        unlink(dump);
        if (!want_id[0] || sym == 0) {
                fixture_stop(&f);
                printf("[  SKIPPED ] this vdso has no build ID or no clock_gettime (readelf/nm found none)\n");
                skip();
        }

        for (size_t b = 0; b < ELEMENTSOF(backends); b++) {
                _cleanup_(mapping_list_done) struct mapping_list l = {}, lk = {};
                _cleanup_free_ struct engine_result *res = NULL;
                const uint64_t addr = vdso->start + sym;
                char hex[2 * MAPPING_BUILD_ID_MAX + 1] = "";
                const struct mapping *m;

                list_with(backends[b], f.pid, ENGINE_BUILD_IDS, &l);
                assert_non_null(m = find(&l, vdso->start));
                assert_int_equal(m->kind, MAPPING_KIND_VDSO);
                for (size_t i = 0; i < m->build_id_len; i++)
                        snprintf(hex + 2 * i, 3, "%02x", m->build_id[i]);
                assert_string_equal(hex, want_id);
                lookup_with(backends[b], f.pid, &addr, 1, &lk, &res);
                assert_true(res[0].mapping >= 0);
                assert_true(res[0].has_elf_vaddr);
                assert_int_equal(res[0].elf_vaddr, sym);
                assert_false(res[0].has_file_offset);
        }
        fixture_stop(&f);
}

/* A kworker's pid (a kernel thread whose comm says so), or 0. */
static pid_t find_kworker(void) {
        _cleanup_free_ char *out = test_run_capture("grep -l '^kworker' /proc/[0-9]*/comm 2>/dev/null | head -n 1");
        pid_t pid = 0;

        if (out && sscanf(out, "/proc/%d/comm", &pid) != 1)
                pid = 0;
        return pid;
}

/* Issue 12.3: kernel threads have no user address space: both backends answer an empty
 * listing (the ioctl said ESRCH, i.e. NoSuchProcess) and every address unmapped, and say so. */
static void test_kernel_thread(void **state) {
        const pid_t pids[] = { 2, find_kworker() };
        struct fixture f;

        for (size_t i = 0; i < ELEMENTSOF(pids); i++)
                for (size_t b = 0; b < ELEMENTSOF(backends); b++) {
                        _cleanup_(mapping_list_done) struct mapping_list l = {}, lf = {};
                        _cleanup_free_ struct engine_result *res = NULL;
                        const uint64_t addrs[] = { 0x400000, 0x7fff00000000 };
                        struct engine *e = new_engine(backends[b]);
                        struct process *p = NULL;
                        uint64_t flags;

                        if (pids[i] == 0) {
                                printf("no kworker found: pid 2 only\n");
                                engine_free(e);
                                continue;
                        }
                        /* PF_KTHREAD, read independently. */
                        assert_int_equal(test_proc_stat_field(pids[i], 9, &flags), 0);
                        assert_true(flags & 0x00200000);
                        assert_int_equal(process_open(pids[i], &p), 0);
                        assert_true(p->kernel_thread);
                        assert_int_equal(engine_list(e, p, 0, &l), 0);
                        assert_int_equal(l.n, 0);
                        assert_int_equal(engine_list(e, p, ENGINE_BUILD_IDS | ENGINE_EXECUTABLE_ONLY, &lf), 0);
                        assert_int_equal(lf.n, 0);
                        assert_int_equal(engine_lookup(e, p, addrs, 2, ENGINE_BUILD_IDS, &l, &res), 0);
                        assert_int_equal(res[0].mapping, -1);
                        assert_int_equal(res[1].mapping, -1);
                        process_free(p);
                        engine_free(e);
                }

        /* An ordinary process is no kernel thread. */
        assert_int_equal(fixture_start(0, 0, &f), 0);
        {
                struct process *p = NULL;

                assert_int_equal(process_open(f.pid, &p), 0);
                assert_false(p->kernel_thread);
                process_free(p);
        }
        fixture_stop(&f);
}

static int read_long_file(const char *path, long *ret) {
        FILE *fp = fopen(path, "re");
        int ok;

        if (!fp)
                return -errno;
        ok = fscanf(fp, "%ld", ret) == 1;
        fclose(fp);
        return ok ? 0 : -EBADMSG;
}

static int write_long_file(const char *path, long v) {
        FILE *fp = fopen(path, "we");
        int ok;

        if (!fp)
                return -errno;
        ok = fprintf(fp, "%ld\n", v) > 0;
        return fclose(fp) == 0 && ok ? 0 : -EIO;
}

static const char nr_path[] = "/proc/sys/vm/nr_hugepages";
static long hugepages_before = -1;

/* Gives back the huge pages test_anon_hugepage() reserved, also when it failed. */
static int restore_hugepages(void **state) {
        if (hugepages_before >= 0)
                (void) write_long_file(nr_path, hugepages_before);
        hugepages_before = -1;
        return 0;
}

/* Issue 12.7: anonymous MAP_HUGETLB memory ("/anon_hugepage (deleted)") is anonymous. */
static void test_anon_hugepage(void **state) {
        long old = 0, now = 0;
        struct fixture f;
        uint64_t huge;
        int r;

        if (read_long_file(nr_path, &old) == 0)
                hugepages_before = old;
        if (hugepages_before < 0 || write_long_file(nr_path, old + 2) < 0 ||
            read_long_file(nr_path, &now) < 0 || now < old + 1) {
                printf("[  SKIPPED ] no huge pages can be reserved through %s (had %ld, got %ld)\n", nr_path, old, now);
                skip();
        }
        setenv("FIXTURE_HUGETLB", "1", 1);
        r = fixture_start(0, 0, &f);
        unsetenv("FIXTURE_HUGETLB");
        huge = r == 0 ? fixture_get(&f, "hugetlb") : 0;
        if (huge == 0) {
                if (r == 0)
                        fixture_stop(&f);
                printf("[  SKIPPED ] MAP_HUGETLB failed in the fixture (errno %d)\n",
                       r == 0 ? (int) fixture_get(&f, "hugetlb_error") : r);
                skip();
        }
        {
                _cleanup_free_ char *raw = raw_maps_name(f.pid, huge);

                assert_non_null(raw);
                assert_string_equal(raw, "/anon_hugepage (deleted)");
        }
        for (size_t b = 0; b < ELEMENTSOF(backends); b++) {
                _cleanup_(mapping_list_done) struct mapping_list l = {}, fb = {}, lk = {};
                _cleanup_free_ struct engine_result *res = NULL;
                const struct mapping *m;

                list_with(backends[b], f.pid, 0, &l);
                assert_non_null(m = find(&l, huge));
                assert_int_equal(m->kind, MAPPING_KIND_ANONYMOUS);
                assert_false(m->deleted);
                assert_false(mapping_is_file_backed(m));
                assert_string_equal(m->name, "/anon_hugepage (deleted)");
                if (backends[b] == ENGINE_BACKEND_IOCTL)
                        assert_true(m->page_size >= 2u << 20);
                list_with(backends[b], f.pid, ENGINE_FILE_BACKED_ONLY, &fb);
                assert_null(find(&fb, huge));
                lookup_with(backends[b], f.pid, &huge, 1, &lk, &res);
                assert_true(res[0].mapping >= 0);
                assert_int_equal(lk.items[res[0].mapping].kind, MAPPING_KIND_ANONYMOUS);
                assert_false(res[0].has_file_offset);
        }
        fixture_stop(&f);
}

static void test_start_time_parse(void **state) {
        static const char good[] = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10";
        uint64_t t = 0;

        assert_int_equal(proc_parse_start_time(good, strlen(good), &t), 0);
        assert_int_equal(t, 123456);
        assert_int_equal(proc_parse_start_time("42 (x) S 1 2", 12, &t), -EBADMSG);
        assert_int_equal(proc_parse_start_time("no paren", 8, &t), -EBADMSG);
        assert_int_equal(proc_parse_start_time("", 0, &t), -EBADMSG);
        static const char huge[] = "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99999999999999999999999 1 1";
        assert_int_equal(proc_parse_start_time(huge, strlen(huge), &t), -ERANGE);
        assert_int_equal(t, 123456);
}

/* ------------------------------------------------------------------ churn */

#define CHURN_PAGES 16
#define CHURN_ORACLE_STEPS 8
#define CHURN_VMAS_MAX 64

struct churn_vma {
        uint64_t start, end;
        unsigned prot;          /* MAPPING_READ | MAPPING_WRITE | MAPPING_EXEC */
};

/* A layout of the churn region: its VMAs clipped to it, in order. */
struct churn_layout {
        size_t n;
        struct churn_vma v[CHURN_VMAS_MAX];
};

static void layout_add(struct churn_layout *l, uint64_t lo, uint64_t hi, uint64_t start, uint64_t end, unsigned prot) {
        if (end <= lo || start >= hi)
                return;
        assert_true(l->n < CHURN_VMAS_MAX);
        l->v[l->n++] = (struct churn_vma) { MAX(start, lo), MIN(end, hi), prot };
}

/* The oracle: the region's layout by PROCMAP_QUERY, called here directly (not through the
 * engine), VMA after VMA, while the process is stopped. */
static void raw_layout(pid_t pid, uint64_t lo, uint64_t hi, struct churn_layout *ret) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;

        assert_true(asprintf(&path, "/proc/%d/maps", (int) pid) > 0);
        assert_true((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
        *ret = (struct churn_layout) {};
        for (uint64_t addr = lo; addr < hi;) {
                struct procmap_query q = {
                        .size = sizeof(q),
                        .query_flags = PROCMAP_QUERY_COVERING_OR_NEXT_VMA,
                        .query_addr = addr,
                };

                if (ioctl(fd, PROCMAP_QUERY, &q) < 0) {
                        assert_int_equal(errno, ENOENT);
                        break;
                }
                layout_add(ret, lo, hi, q.vma_start, q.vma_end,
                           (q.vma_flags & PROCMAP_QUERY_VMA_READABLE ? MAPPING_READ : 0) |
                           (q.vma_flags & PROCMAP_QUERY_VMA_WRITABLE ? MAPPING_WRITE : 0) |
                           (q.vma_flags & PROCMAP_QUERY_VMA_EXECUTABLE ? MAPPING_EXEC : 0));
                addr = q.vma_end;
        }
}

static void engine_layout(const struct mapping_list *l, uint64_t lo, uint64_t hi, struct churn_layout *ret) {
        *ret = (struct churn_layout) {};
        for (size_t i = 0; i < l->n; i++)
                layout_add(ret, lo, hi, l->items[i].start, l->items[i].end,
                           l->items[i].flags & (MAPPING_READ | MAPPING_WRITE | MAPPING_EXEC));
}

static bool same_layout(const struct churn_layout *a, const struct churn_layout *b) {
        return a->n == b->n && memcmp(a->v, b->v, a->n * sizeof(a->v[0])) == 0;
}

static bool vma_in(const struct churn_vma *v, const struct churn_layout *l) {
        for (size_t i = 0; i < l->n; i++)
                if (memcmp(v, &l->v[i], sizeof(*v)) == 0)
                        return true;
        return false;
}

/* Whether the process is stopped (state T in /proc/PID/stat). */
static bool is_stopped(pid_t pid) {
        _cleanup_free_ char *cmd = NULL, *out = NULL;

        assert_true(asprintf(&cmd, "sed 's/.*) //' /proc/%d/stat", (int) pid) > 0);
        out = test_run_capture(cmd);
        return out && out[0] == 'T';
}

/* A process that mmaps, munmaps and mprotects from another thread while it is listed and
 * looked up. Its steps are known: the layouts they lead to are read first with the raw
 * ioctl, the process stopped after each step. Then, while it churns, every listing by either
 * backend is sorted and without overlaps, and every VMA of the region in it is one the
 * process really had; every lookup finds a VMA it really had, holding the address. Whole
 * listings of the region that match none of the layouts are counted: a listing is not a
 * snapshot (neither /proc/PID/maps nor the ioctl reads the process at one instant). */
static void test_churn(void **state) {
        struct churn_layout layouts[CHURN_ORACLE_STEPS + 1], all = {};
        long page = sysconf(_SC_PAGESIZE);
        uint64_t lo, hi;
        struct fixture f;

        setenv("FIXTURE_CHURN", "1", 1);
        assert_int_equal(fixture_start(0, 0, &f), 0);
        unsetenv("FIXTURE_CHURN");
        lo = fixture_get(&f, "churn");
        assert_true(lo != 0);
        hi = lo + (uint64_t) (CHURN_PAGES * page);

        raw_layout(f.pid, lo, hi, &layouts[0]);
        for (int s = 1; s <= CHURN_ORACLE_STEPS; s++) {
                int i;

                assert_int_equal(write(f.stdin_fd, "s", 1), 1);
                for (i = 0; i < 30000 && !is_stopped(f.pid); i++)
                        usleep(1000);
                assert_true(is_stopped(f.pid));
                raw_layout(f.pid, lo, hi, &layouts[s]);
                assert_int_equal(kill(f.pid, SIGCONT), 0);
                for (i = 0; i < 30000 && is_stopped(f.pid); i++)
                        usleep(1000);
        }
        for (int s = 0; s <= CHURN_ORACLE_STEPS; s++)
                for (size_t k = 0; k < layouts[s].n; k++)
                        if (!vma_in(&layouts[s].v[k], &all))
                                layout_add(&all, lo, hi, layouts[s].v[k].start, layouts[s].v[k].end, layouts[s].v[k].prot);
        /* The steps changed the layout: two cycles of four give at least four layouts. */
        assert_false(same_layout(&layouts[1], &layouts[2]));

        assert_int_equal(write(f.stdin_fd, "c", 1), 1);
        for (size_t b = 0; b < ELEMENTSOF(backends); b++) {
                struct engine *e = new_engine(backends[b]);
                struct process *p = NULL;
                unsigned real = 0, mixed = 0, seen = 0, n_seen = 0;
                int round;

                assert_int_equal(process_open(f.pid, &p), 0);
                /* 300 rounds, and on until the region was seen in two layouts at least (the
                 * churn thread ran meanwhile); the bound only catches a stuck one. */
                for (round = 0; round < 300 || n_seen < 2; round++) {
                        _cleanup_(mapping_list_done) struct mapping_list l = {}, lk = {};
                        _cleanup_free_ struct engine_result *res = NULL;
                        uint64_t addrs[CHURN_PAGES];
                        struct churn_layout got;
                        bool known = false;

                        assert_int_equal(engine_list(e, p, 0, &l), 0);
                        for (size_t i = 0; i < l.n; i++) {
                                assert_true(l.items[i].start < l.items[i].end);
                                if (i > 0)
                                        assert_true(l.items[i - 1].end <= l.items[i].start);
                        }
                        engine_layout(&l, lo, hi, &got);
                        for (size_t k = 0; k < got.n; k++)
                                if (!vma_in(&got.v[k], &all))
                                        fail_msg("%s backend, round %d: VMA %" PRIx64 "-%" PRIx64 " prot %u, never in the "
                                                 "process", b ? "maps" : "ioctl", round, got.v[k].start - lo,
                                                 got.v[k].end - lo, got.v[k].prot);
                        assert_true(round < 100000);
                        for (int s = 0; s <= CHURN_ORACLE_STEPS && !known; s++)
                                if ((known = same_layout(&got, &layouts[s])) && !(seen & (1u << s))) {
                                        seen |= 1u << s;
                                        n_seen++;
                                }
                        known ? real++ : mixed++;

                        for (size_t k = 0; k < CHURN_PAGES; k++)
                                addrs[k] = lo + k * (uint64_t) page + 8;
                        assert_int_equal(engine_lookup(e, p, addrs, CHURN_PAGES, 0, &lk, &res), 0);
                        for (size_t k = 0; k < CHURN_PAGES; k++) {
                                struct churn_layout one = {};

                                if (res[k].mapping < 0)
                                        continue;
                                assert_true((size_t) res[k].mapping < lk.n);
                                const struct mapping *m = &lk.items[res[k].mapping];
                                assert_true(m->start <= addrs[k] && addrs[k] < m->end);
                                layout_add(&one, lo, hi, m->start, m->end, m->flags & (MAPPING_READ | MAPPING_WRITE | MAPPING_EXEC));
                                assert_true(vma_in(&one.v[0], &all));
                        }
                }
                printf("# churn, %s backend: %d listings of a region stepping through %zu VMA shapes: %u whole "
                       "layouts the process had (%u different), %u mixing two\n", b ? "maps" : "ioctl", round, all.n,
                       real, n_seen, mixed);
                process_free(p);
                engine_free(e);
        }
        fixture_stop(&f);
}

static void test_stat_parsers(void **state) {
        static const char kthread[] = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0";
        static const char user[] = "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10";
        static const char status[] = "Name:\tx\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nPid:\t4243\n";
        pid_t tgid = 0;

        assert_int_equal(proc_parse_kernel_thread(kthread, strlen(kthread)), 1);
        assert_int_equal(proc_parse_kernel_thread(user, strlen(user)), 0);
        assert_int_equal(proc_parse_kernel_thread("1 (x) S 1", 9), -EBADMSG);
        assert_int_equal(proc_parse_tgid(status, strlen(status), &tgid), 0);
        assert_int_equal(tgid, 4242);
        assert_int_equal(proc_parse_tgid("Tgid:\t\n", 7, &tgid), -EBADMSG);
        assert_int_equal(proc_parse_tgid("Tgid:\t99999999999\n", 18, &tgid), -EBADMSG);
        assert_int_equal(proc_parse_tgid("Pid:\t1\n", 7, &tgid), -EBADMSG);
        assert_int_equal(tgid, 4242);
}

/* The real uid (the vdso cache's owner of a process), against the real uid of live processes
 * as getresuid() gives it. */
static void test_uid_parser(void **state) {
        static const char status[] = "Name:\tx\nTgid:\t1\nUid:\t1000\t0\t0\t0\nGid:\t5\t5\t5\t5\n";
        struct process *p = NULL;
        uid_t uid = 7, ru, eu, su;

        assert_int_equal(proc_parse_uid(status, strlen(status), &uid), 0);
        assert_int_equal(uid, 1000);
        assert_int_equal(proc_parse_uid("Uid:\t4294967295\t0\n", 19, &uid), -EBADMSG);
        assert_int_equal(proc_parse_uid("Uid:\tx\n", 7, &uid), -EBADMSG);
        assert_int_equal(proc_parse_uid("Gid:\t1\n", 7, &uid), -EBADMSG);
        assert_int_equal(uid, 1000);

        assert_int_equal(getresuid(&ru, &eu, &su), 0);
        assert_int_equal(process_open(getpid(), &p), 0);
        assert_int_equal(process_read_uid(p, &uid), 0);
        assert_int_equal(uid, ru);
        process_free(p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_backends_identical),
                cmocka_unit_test(test_uid_parser),
                cmocka_unit_test(test_file_replaced),
                cmocka_unit_test(test_ioctl_per_vma_matches_maps),
                cmocka_unit_test(test_list_each),
                cmocka_unit_test(test_filters),
                cmocka_unit_test(test_name_forms),
                cmocka_unit_test(test_build_ids),
                cmocka_unit_test(test_elf_vaddr),
                cmocka_unit_test(test_lookup_backends_agree),
                cmocka_unit_test(test_gate_area),
                cmocka_unit_test(test_exited_process),
                cmocka_unit_test(test_exec_after_open),
                cmocka_unit_test(test_path_beyond_path_max),
                cmocka_unit_test(test_thread_id),
                cmocka_unit_test(test_escaped_newline_names),
                cmocka_unit_test(test_vdso),
                cmocka_unit_test(test_kernel_thread),
                cmocka_unit_test_teardown(test_anon_hugepage, restore_hugepages),
                cmocka_unit_test(test_start_time_parse),
                cmocka_unit_test(test_churn),
                cmocka_unit_test(test_stat_parsers),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
