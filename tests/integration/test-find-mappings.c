/* Tests of FindMappings (issue 17): which processes map a file, by path and by build ID, checked against map_files as root, with the BPF iterator and with the /proc scan. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <dirent.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "elf-builder.h"
#include "fixture.h"
#include "libmemctl.h"
#include "mapper.h"

#define N_OLD 40        /* map the library, then see it replaced on disk */
#define N_NEW 30        /* map the replacement */
#define N_NONE 30       /* map neither */
#define N_TARGETS (N_OLD + N_NEW + N_NONE)
#define NOBODY 65534
#define PAGE 4096

struct target {
        pid_t pid;
        int control_fd;         /* closing it ends the process */
        bool nobody;
};

static struct {
        char dir[64];
        char lib[128];
        uint8_t id_old[20], id_new[20];
        char hex_old[41], hex_new[41];
        struct stat st_old, st_new;
        struct target targets[N_TARGETS];
} g;

/* One mapping as found: the process and the range. */
struct hit {
        pid_t pid;
        uint64_t start, end;
        bool deleted;
};

struct hits {
        struct hit *items;
        size_t n;
};

static void hits_add(struct hits *h, pid_t pid, uint64_t start, uint64_t end, bool deleted) {
        h->items = realloc(h->items, (h->n + 1) * sizeof(*h->items));
        assert_non_null(h->items);
        h->items[h->n++] = (struct hit) { pid, start, end, deleted };
}

static int hit_cmp(const void *a, const void *b) {
        const struct hit *x = a, *y = b;

        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        return x->start < y->start ? -1 : x->start > y->start;
}

static bool hits_equal(struct hits *a, struct hits *b) {
        qsort(a->items, a->n, sizeof(*a->items), hit_cmp);
        qsort(b->items, b->n, sizeof(*b->items), hit_cmp);
        if (a->n != b->n) {
                fprintf(stderr, "# %zu mappings found, %zu expected\n", a->n, b->n);
                return false;
        }
        for (size_t i = 0; i < a->n; i++)
                if (a->items[i].pid != b->items[i].pid || a->items[i].start != b->items[i].start ||
                    a->items[i].end != b->items[i].end || a->items[i].deleted != b->items[i].deleted) {
                        fprintf(stderr, "# differs at %zu: pid %d 0x%" PRIx64 " deleted %d, expected pid %d 0x%" PRIx64
                                        " deleted %d\n",
                                i, a->items[i].pid, a->items[i].start, a->items[i].deleted, b->items[i].pid,
                                b->items[i].start, b->items[i].deleted);
                        return false;
                }
        return true;
}

/* A small shared object with the given build ID, two pages long. */
static void write_library(const char *path, const uint8_t *id) {
        struct elf_builder *b = eb_new(ELFCLASS64, ELFDATA2LSB, ET_DYN);
        struct eb_image img;
        _cleanup_close_ int fd = -1;

        eb_add_load(b, 0, 0, 2 * PAGE, 2 * PAGE, PF_R | PF_X);
        eb_begin_notes(b, EB_NOTES_SEGMENT, 4);
        eb_add_build_id(b, id, 20);
        eb_build(b, &img);
        eb_free(b);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_true(img.size <= 2 * PAGE);
        assert_int_equal(write(fd, img.data, img.size), (ssize_t) img.size);
        assert_int_equal(ftruncate(fd, 2 * PAGE), 0);
        eb_image_done(&img);
}

/* A target that maps lib (when given) twice, a read-only first page and an executable second
 * one, running as nobody when asked. */
static void start_target(struct target *t, const char *lib, bool nobody) {
        int fds[N_TARGETS];
        size_t n = 0;
        struct mapper m;

        for (struct target *o = g.targets; o < t; o++)
                fds[n++] = o->control_fd;
        assert_int_equal(mapper_start(lib, lib ? 2 : 0, nobody ? NOBODY : (uid_t) -1, fds, n, &m), 0);
        t->pid = m.pid;
        t->control_fd = m.control_fd;
        t->nobody = nobody;
}

static void random_id(uint8_t *id, char *hex) {
        _cleanup_close_ int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

        assert_int_equal(read(fd, id, 20), 20);
        for (size_t i = 0; i < 20; i++)
                sprintf(hex + 2 * i, "%02x", id[i]);
}

static int setup(void **state) {
        char tmp[160], readelf_id[64];

        strcpy(g.dir, "/tmp/memmapd-find-XXXXXX");
        if (!mkdtemp(g.dir) || chmod(g.dir, 0755) < 0)
                return -1;
        snprintf(g.lib, sizeof(g.lib), "%s/libfind-test.so", g.dir);
        random_id(g.id_old, g.hex_old);
        random_id(g.id_new, g.hex_new);

        write_library(g.lib, g.id_old);
        /* The truth of the build IDs is readelf's, not our reader's. */
        assert_int_equal(test_readelf_build_id(g.lib, readelf_id, sizeof(readelf_id)), 1);
        assert_string_equal(readelf_id, g.hex_old);
        assert_int_equal(stat(g.lib, &g.st_old), 0);
        for (size_t i = 0; i < N_OLD; i++)
                start_target(&g.targets[i], g.lib, i % 4 == 0);

        /* Replaced as a package upgrade does: a new file renamed over the old one. */
        snprintf(tmp, sizeof(tmp), "%s.new", g.lib);
        write_library(tmp, g.id_new);
        assert_int_equal(rename(tmp, g.lib), 0);
        assert_int_equal(test_readelf_build_id(g.lib, readelf_id, sizeof(readelf_id)), 1);
        assert_string_equal(readelf_id, g.hex_new);
        assert_int_equal(stat(g.lib, &g.st_new), 0);
        for (size_t i = N_OLD; i < N_OLD + N_NEW; i++)
                start_target(&g.targets[i], g.lib, i % 4 == 0);
        for (size_t i = N_OLD + N_NEW; i < N_TARGETS; i++)
                start_target(&g.targets[i], NULL, i % 4 == 0);
        return 0;
}

static int teardown(void **state) {
        for (size_t i = 0; i < N_TARGETS; i++)
                mapper_stop(&(struct mapper) { .pid = g.targets[i].pid, .control_fd = g.targets[i].control_fd });
        unlink(g.lib);
        rmdir(g.dir);
        return 0;
}

/* The truth, as root, independent of memmapd: every mapping on the machine whose
 * /proc/PID/map_files entry is the old file (old), or the current one (cur); the old ones
 * are the deleted ones. Only nobody's processes when asked. */
static void truth(bool old, bool cur, bool nobody_only, struct hits *ret) {
        _cleanup_closedir_ DIR *d = opendir("/proc");
        struct dirent *de;

        assert_non_null(d);
        while ((de = readdir(d))) {
                char path[300], line[1024];
                _cleanup_fclose_ FILE *f = NULL;
                struct stat st;
                char *end;
                long pid = strtol(de->d_name, &end, 10);

                if (*end || pid <= 0)
                        continue;
                if (nobody_only) {
                        snprintf(path, sizeof(path), "/proc/%ld", pid);
                        if (stat(path, &st) < 0 || st.st_uid != NOBODY)
                                continue;
                }
                snprintf(path, sizeof(path), "/proc/%ld/maps", pid);
                f = fopen(path, "re");
                if (!f)
                        continue;
                while (fgets(line, sizeof(line), f)) {
                        uint64_t start, stop;

                        if (sscanf(line, "%" SCNx64 "-%" SCNx64, &start, &stop) != 2)
                                continue;
                        snprintf(path, sizeof(path), "/proc/%ld/map_files/%" PRIx64 "-%" PRIx64, pid, start, stop);
                        if (stat(path, &st) < 0)
                                continue;
                        if (old && st.st_dev == g.st_old.st_dev && st.st_ino == g.st_old.st_ino)
                                hits_add(ret, (pid_t) pid, start, stop, true);
                        if (cur && st.st_dev == g.st_new.st_dev && st.st_ino == g.st_new.st_ino)
                                hits_add(ret, (pid_t) pid, start, stop, false);
                }
        }
}

/* The mappings of one reply part, checked for what every mapping found must be. */
static void add_reply(const char *reply, const char *build_id, struct hits *ret, bool *ret_continues) {
        _cleanup_(json_object_putp) struct json_object *o = json_tokener_parse(reply);
        struct json_object *params, *matches, *v;

        assert_non_null(o);
        if (!json_object_object_get_ex(o, "parameters", &params) ||
            !json_object_object_get_ex(params, "matches", &matches))
                fail_msg("not an answer: %s", reply);
        *ret_continues = json_object_object_get_ex(o, "continues", &v) && json_object_get_boolean(v);
        for (size_t i = 0; i < json_object_array_length(matches); i++) {
                struct json_object *m = json_object_array_get_idx(matches, i), *proc, *maps, *pid;

                assert_true(json_object_object_get_ex(m, "process", &proc));
                assert_true(json_object_object_get_ex(proc, "pid", &pid));
                assert_true(json_object_object_get_ex(m, "mappings", &maps));
                assert_true(json_object_array_length(maps) > 0);
                for (size_t k = 0; k < json_object_array_length(maps); k++) {
                        struct json_object *mp = json_object_array_get_idx(maps, k), *s, *e, *del, *id, *p;

                        assert_true(json_object_object_get_ex(mp, "start", &s));
                        assert_true(json_object_object_get_ex(mp, "end", &e));
                        assert_true(json_object_object_get_ex(mp, "deleted", &del));
                        assert_true(json_object_object_get_ex(mp, "path", &p));
                        assert_string_equal(json_object_get_string(p), g.lib);
                        if (build_id) {
                                assert_true(json_object_object_get_ex(mp, "build_id", &id));
                                assert_string_equal(json_object_get_string(id), build_id);
                        }
                        hits_add(ret, json_object_get_int(pid), strtoull(json_object_get_string(s), NULL, 16),
                                 strtoull(json_object_get_string(e), NULL, 16), json_object_get_boolean(del));
                }
        }
}

/* Calls FindMappings with params (a JSON object's members), streamed or in one message. */
static int find(const char *socket, const char *params, bool more, const char *build_id, struct hits *ret) {
        _cleanup_close_ int fd = test_connect(socket);
        char msg[512];
        bool continues;

        if (fd < 0)
                return fd;
        snprintf(msg, sizeof(msg), "{\"method\":\"io.memmapd.FindMappings\",\"parameters\":{%s}%s}", params,
                 more ? ",\"more\":true" : "");
        if (test_send(fd, msg) < 0)
                return -EIO;
        do {
                _cleanup_free_ char *reply = test_recv(fd);

                if (!reply)
                        return -EIO;
                add_reply(reply, build_id, ret, &continues);
        } while (continues);
        return 0;
}

struct query {
        const char *socket;
        char params[256];
        const char *build_id;
        bool old, cur;
};

static void query_init(struct query *q, const char *socket, int which, bool deleted_only) {
        *q = (struct query) { .socket = socket };
        if (which == 0) {
                snprintf(q->params, sizeof(q->params), "\"path\":\"%s\"%s", g.lib,
                         deleted_only ? ",\"deleted_only\":true" : "");
                q->old = true;
                q->cur = !deleted_only;
        } else {
                snprintf(q->params, sizeof(q->params), "\"build_id\":\"%s\"", which == 1 ? g.hex_old : g.hex_new);
                q->build_id = which == 1 ? g.hex_old : g.hex_new;
                q->old = which == 1;
                q->cur = which == 2;
        }
}

/* Run as nobody: exactly nobody's processes among the truth computed as root (passed in). */
struct nobody_check {
        struct query q;
        struct hits expected;
};

static int check_as_nobody(void *arg) {
        struct nobody_check *c = arg;
        struct hits got = {};

        if (find(c->q.socket, c->q.params, true, c->q.build_id, &got) < 0)
                return 2;
        if (hits_equal(&got, &c->expected))
                return 0;
        fprintf(stderr, "# as nobody: {%s}\n", c->q.params);
        return 1;
}

/* The daemon of the test running: stopped by teardown when an assertion ended the test. */
static struct test_daemon running;

static void check_daemon(const char *socket) {
        for (int which = 0; which < 3; which++)
                for (int deleted_only = 0; deleted_only < (which == 0 ? 2 : 1); deleted_only++) {
                        struct nobody_check c = {};
                        struct hits expected = {}, got = {}, got_more = {};

                        query_init(&c.q, socket, which, deleted_only);
                        truth(c.q.old, c.q.cur, false, &expected);
                        /* The test's own processes are there: the truth is not empty. */
                        assert_int_equal(expected.n, 2 * (c.q.old ? N_OLD : 0) + 2 * (c.q.cur ? N_NEW : 0));
                        assert_int_equal(find(socket, c.q.params, false, c.q.build_id, &got), 0);
                        assert_true(hits_equal(&got, &expected));
                        assert_int_equal(find(socket, c.q.params, true, c.q.build_id, &got_more), 0);
                        assert_true(hits_equal(&got_more, &expected));

                        truth(c.q.old, c.q.cur, true, &c.expected);
                        assert_true(c.expected.n > 0 && c.expected.n < expected.n);
                        assert_int_equal(run_as(NOBODY, NOBODY, check_as_nobody, &c), 0);
                        free(c.expected.items);
                        free(expected.items);
                        free(got.items);
                        free(got_more.items);
                }
}

static void test_find_with_iterator(void **state) {
        static const char *const args[] = { "--set", "FindIterator=bpf", NULL };
        struct test_daemon *d = &running;

        if (test_daemon_start(args, d) < 0) {
                print_message("[  SKIPPED ] the daemon does not start with FindIterator=bpf: BPF is denied or not built here\n");
                skip();
        }
        check_daemon(d->socket);
        assert_int_equal(test_daemon_stop(d), 0);
        d->pid = 0;
}

static void test_find_by_proc_scan(void **state) {
        static const char *const args[] = { "--set", "FindIterator=none", NULL };
        struct test_daemon *d = &running;

        assert_int_equal(test_daemon_start(args, d), 0);
        check_daemon(d->socket);
        assert_int_equal(test_daemon_stop(d), 0);
        d->pid = 0;
}

/* test_clients' processes that map the library many times: ended here if the test failed. */
#define MANY_PROCS 10
static pid_t many_pids[MANY_PROCS];

static int stop_running(void **state) {
        if (running.pid > 0)
                (void) test_daemon_stop(&running);
        running.pid = 0;
        for (int k = 0; k < MANY_PROCS; k++)
                if (many_pids[k] > 0) {
                        kill(many_pids[k], SIGKILL);
                        (void) waitpid(many_pids[k], NULL, 0);
                        many_pids[k] = 0;
                }
        return 0;
}

static void test_bad_queries(void **state) {
        static const char *const params[] = {
                "",                                             /* neither */
                "\"path\":\"/x\",\"build_id\":\"00\"",          /* both */
                "\"path\":\"relative\"",
                "\"build_id\":\"abc\"",                         /* odd */
                "\"build_id\":\"zz\"",
                "\"path\":\"/x\",\"unknown\":1",
        };
        struct test_daemon d;
        _cleanup_close_ int fd = -1;

        assert_int_equal(test_daemon_start(NULL, &d), 0);
        fd = test_connect(d.socket);
        assert_true(fd >= 0);
        for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
                char msg[256];
                _cleanup_free_ char *reply = NULL;

                snprintf(msg, sizeof(msg), "{\"method\":\"io.memmapd.FindMappings\",\"parameters\":{%s}}", params[i]);
                reply = test_call(fd, msg);
                assert_non_null(reply);
                assert_non_null(strstr(reply, "org.varlink.service.InvalidParameter"));
        }
        assert_int_equal(test_daemon_stop(&d), 0);
}

/* A LookupMany of groups (pid, start_time, addresses): the truth's mappings of 12 targets of
 * both owners (their starts, and 0x1000, unmapped), a pid that names no process and a target
 * asked with a wrong start time; each group answered or failed on its own. */
struct many_check {
        const char *socket;
        struct hits all;                /* truth of every target's library mappings */
        bool as_nobody;
};

static int check_many(void *arg) {
        struct many_check *c = arg;
        char msg[16384], *end = msg;
        _cleanup_close_ int fd = test_connect(c->socket);
        _cleanup_free_ char *reply = NULL;
        _cleanup_json_ struct json_object *o = NULL;
        struct json_object *params, *groups;
        size_t n_targets = 0;
        pid_t pids[12];

        if (fd < 0)
                return 2;
        end += sprintf(end, "{\"method\":\"io.memmapd.LookupMany\",\"parameters\":{\"groups\":[");
        for (size_t i = 0; i < N_TARGETS && n_targets < 12; i += 7) {
                pids[n_targets++] = g.targets[i].pid;
                end += sprintf(end, "{\"pid\":%d,\"addresses\":[\"0x1000\"", g.targets[i].pid);
                for (size_t k = 0; k < c->all.n; k++)
                        if (c->all.items[k].pid == g.targets[i].pid)
                                end += sprintf(end, ",\"0x%" PRIx64 "\"", c->all.items[k].start + 1);
                end += sprintf(end, "]},");
        }
        end += sprintf(end, "{\"pid\":%d,\"addresses\":[\"0x1000\"]},", INT32_MAX);
        end += sprintf(end, "{\"pid\":%d,\"start_time\":1,\"addresses\":[]}]}}", g.targets[0].pid);

        reply = test_call(fd, msg);
        o = reply ? json_tokener_parse(reply) : NULL;
        if (!o || !json_object_object_get_ex(o, "parameters", &params) ||
            !json_object_object_get_ex(params, "groups", &groups) || json_object_array_length(groups) != n_targets + 2) {
                fprintf(stderr, "# LookupMany: %s\n", reply ? reply : "(none)");
                return 1;
        }
        for (size_t i = 0; i < n_targets + 2; i++) {
                struct json_object *grp = json_object_array_get_idx(groups, i), *err, *maps, *results;
                const char *want = i == n_targets ? "io.memmapd.NoSuchProcess"
                                 : i == n_targets + 1 ? "io.memmapd.ProcessChanged"
                                 : c->as_nobody && !g.targets[(i * 7)].nobody ? "io.memmapd.PermissionDenied"
                                 : NULL;

                if (want) {
                        if (!json_object_object_get_ex(grp, "error", &err) ||
                            strcmp(json_object_get_string(err), want) != 0) {
                                fprintf(stderr, "# group %zu: %s, expected %s\n", i, json_object_to_json_string(grp), want);
                                return 1;
                        }
                        continue;
                }
                if (json_object_object_get_ex(grp, "error", &err) ||
                    !json_object_object_get_ex(grp, "mappings", &maps) ||
                    !json_object_object_get_ex(grp, "results", &results)) {
                        fprintf(stderr, "# group %zu: %s\n", i, json_object_to_json_string(grp));
                        return 1;
                }
                /* Result k+1 is the truth's k-th mapping of this pid, result 0 unmapped. */
                for (size_t r = 0, k = 0; r < json_object_array_length(results); r++) {
                        struct json_object *res = json_object_array_get_idx(results, r), *idx, *s;
                        uint64_t start = 0;

                        if (r == 0) {
                                if (json_object_object_get_ex(res, "mapping", &idx))
                                        return 1;
                                continue;
                        }
                        while (k < c->all.n && c->all.items[k].pid != pids[i])
                                k++;
                        if (k == c->all.n || !json_object_object_get_ex(res, "mapping", &idx) ||
                            !json_object_object_get_ex(json_object_array_get_idx(maps, json_object_get_int(idx)), "start", &s))
                                return 1;
                        start = strtoull(json_object_get_string(s), NULL, 16);
                        if (start != c->all.items[k].start) {
                                fprintf(stderr, "# group %zu result %zu: 0x%" PRIx64 ", expected 0x%" PRIx64 "\n", i, r,
                                        start, c->all.items[k].start);
                                return 1;
                        }
                        k++;
                }
        }
        return 0;
}

static void test_lookup_many(void **state) {
        static const char *const args[] = { "--set", "MaxAddresses=1000", NULL };
        struct many_check c = {};
        struct test_daemon *d = &running;
        _cleanup_free_ char *reply = NULL;
        _cleanup_close_ int fd = -1;

        truth(true, true, false, &c.all);
        /* The order check_many() reads them in: by pid, then address. */
        qsort(c.all.items, c.all.n, sizeof(*c.all.items), hit_cmp);
        assert_int_equal(test_daemon_start(args, d), 0);
        c.socket = d->socket;
        assert_int_equal(check_many(&c), 0);
        c.as_nobody = true;
        assert_int_equal(run_as(NOBODY, NOBODY, check_many, &c), 0);

        /* libmemctl's memctl_lookup_many(): two targets with the library, one pid of no process. */
        {
                struct memctl_lookup_group groups[3] = { MEMCTL_LOOKUP_GROUP_INIT, MEMCTL_LOOKUP_GROUP_INIT,
                                                         MEMCTL_LOOKUP_GROUP_INIT };
                uint64_t addrs[2][2];
                memctl_lookup_many_reply *many = NULL;
                memctl *mc = NULL;
                const char *err;

                for (size_t i = 0; i < 2; i++) {
                        size_t k = 0;

                        groups[i].pid = g.targets[i * 7].pid;
                        for (size_t h = 0; h < c.all.n && k < 2; h++)
                                if (c.all.items[h].pid == groups[i].pid)
                                        addrs[i][k++] = c.all.items[h].start;
                        assert_int_equal(k, 2);
                        groups[i].addresses = addrs[i];
                        groups[i].n_addresses = 2;
                }
                groups[2].pid = INT32_MAX;
                assert_int_equal(memctl_connect(d->socket, &mc), 0);
                assert_int_equal(memctl_lookup_many(mc, groups, 3, 0, &many), 0);
                assert_int_equal(memctl_lookup_many_count(many), 3);
                for (size_t i = 0; i < 2; i++) {
                        const memctl_lookup_reply *l = memctl_lookup_many_get(many, i, &err);

                        assert_non_null(l);
                        assert_null(err);
                        for (size_t k = 0; k < 2; k++) {
                                struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;
                                struct memctl_mapping m = MEMCTL_MAPPING_INIT;

                                assert_int_equal(memctl_lookup_reply_get(l, k, &res), 0);
                                assert_int_equal(memctl_lookup_reply_get_mapping(l, res.mapping, &m), 0);
                                assert_int_equal(m.start, addrs[i][k]);
                        }
                }
                assert_null(memctl_lookup_many_get(many, 2, &err));
                assert_string_equal(err, "io.memmapd.NoSuchProcess");
                memctl_lookup_many_free(many);
                memctl_free(mc);
        }

        /* MaxAddresses bounds all groups together. */
        fd = test_connect(d->socket);
        assert_true(fd >= 0);
        {
                size_t len = 0, cap = 1 << 20;
                _cleanup_free_ char *big = malloc(cap);

                assert_non_null(big);
                len += sprintf(big, "{\"method\":\"io.memmapd.LookupMany\",\"parameters\":{\"groups\":[");
                /* 3 groups of 400: each within MaxAddresses=1000, all of them not. */
                for (int grp = 0; grp < 3; grp++) {
                        len += sprintf(big + len, "%s{\"pid\":%d,\"addresses\":[", grp ? "," : "", g.targets[0].pid);
                        for (int a = 0; a < 400; a++)
                                len += sprintf(big + len, "%s%d", a ? "," : "", 4096 * (a + 1));
                        len += sprintf(big + len, "]}");
                }
                sprintf(big + len, "]}}");
                reply = test_call(fd, big);
                assert_non_null(reply);
                assert_non_null(strstr(reply, "io.memmapd.LimitExceeded"));
                assert_non_null(strstr(reply, "max_addresses"));
        }
        free(c.all.items);
        assert_int_equal(test_daemon_stop(d), 0);
        d->pid = 0;
}

/* Processes each mapping the library MANY_MAPS times (apart: offset 0 each, so they never merge),
 * until killed (or the test ends); their pids once the mappings are all there. */
#define MANY_MAPS 300
static void start_many_maps(const char *lib, pid_t *ret) {
        for (int k = 0; k < MANY_PROCS; k++) {
                int p[2];
                char b;

                assert_int_equal(pipe2(p, O_CLOEXEC), 0);
                ret[k] = fork();
                assert_true(ret[k] >= 0);
                if (ret[k] == 0) {
                        int fd = open(lib, O_RDONLY | O_CLOEXEC);

                        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                        for (int i = 0; i < MANY_MAPS; i++)
                                if (fd < 0 || mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED)
                                        _exit(1);
                        if (write(p[1], "r", 1) != 1)
                                _exit(1);
                        pause();
                        _exit(0);
                }
                close(p[1]);
                assert_int_equal(read(p[0], &b, 1), 1);
                close(p[0]);
        }
}

static bool is_many(const pid_t *many, pid_t pid) {
        for (int k = 0; k < MANY_PROCS; k++)
                if (many && many[k] == pid)
                        return true;
        return false;
}

/* libmemctl's memctl_find_mappings() and `memctl who` give the truth too. */
static void found_to_hits(const memctl_found *f, const pid_t *many, struct hits *ret) {
        for (size_t i = 0; i < memctl_found_count(f); i++) {
                const memctl_mappings *m = memctl_found_get(f, i);
                struct memctl_process p = MEMCTL_PROCESS_INIT;

                assert_int_equal(memctl_mappings_get_process_info(m, &p), 0);
                if (is_many(many, p.pid)) {
                        /* Every one, in the parts the reply came in. */
                        assert_int_equal(memctl_mappings_count(m), MANY_MAPS);
                        continue;
                }
                for (size_t k = 0; k < memctl_mappings_count(m); k++) {
                        struct memctl_mapping map = MEMCTL_MAPPING_INIT;

                        assert_int_equal(memctl_mappings_get(m, k, &map), 0);
                        assert_string_equal(map.path, g.lib);
                        hits_add(ret, p.pid, map.start, map.end, map.deleted);
                }
        }
        assert_null(memctl_found_get(f, memctl_found_count(f)));
}

static void test_clients(void **state) {
        struct test_daemon *d = &running;
        memctl *c = NULL;
        memctl_found *f = NULL;
        struct hits expected = {}, got = {}, cli = {}, old = {}, got_old = {};
        _cleanup_free_ char *cmd = NULL, *out = NULL;
        char *line, *save = NULL;
        size_t many_seen = 0;
        /* A reply of ~3,200 mappings (~700 KiB) does not fit one message of 512 KiB; its parts
         * (a process's mappings whole, a part ending past 1,024) do. */
        const char *args[] = { "--set=MaxOutputQueue=524288", NULL };

        assert_int_equal(test_daemon_start(args, d), 0);
        assert_int_equal(memctl_connect(d->socket, &c), 0);
        truth(true, true, false, &expected);
        start_many_maps(g.lib, many_pids);
        assert_int_equal(memctl_find_mappings(c, g.lib, NULL, 0, &f), 0);
        found_to_hits(f, many_pids, &got);
        for (size_t i = 0; i < memctl_found_count(f); i++) {
                struct memctl_process p = MEMCTL_PROCESS_INIT;

                assert_int_equal(memctl_mappings_get_process_info(memctl_found_get(f, i), &p), 0);
                many_seen += is_many(many_pids, p.pid);
        }
        assert_int_equal(many_seen, MANY_PROCS);
        for (int k = 0; k < MANY_PROCS; k++) {
                kill(many_pids[k], SIGKILL);
                assert_int_equal(waitpid(many_pids[k], NULL, 0), many_pids[k]);
                many_pids[k] = 0;
        }
        assert_true(hits_equal(&got, &expected));
        f = memctl_found_free(f);

        truth(true, false, false, &old);
        assert_int_equal(memctl_find_mappings(c, NULL, g.hex_old, 0, &f), 0);
        found_to_hits(f, NULL, &got_old);
        assert_true(hits_equal(&got_old, &old));
        f = memctl_found_free(f);
        /* Exactly one of path and build ID. */
        assert_int_equal(memctl_find_mappings(c, g.lib, g.hex_old, 0, &f), -EINVAL);
        assert_int_equal(memctl_find_mappings(c, NULL, NULL, 0, &f), -EINVAL);
        memctl_free(c);

        assert_true(asprintf(&cmd, "%s --socket %s --no-legend who %s", test_program("MEMCTL", "client/memctl"),
                             d->socket, g.lib) > 0);
        out = test_run_capture(cmd);
        assert_non_null(out);
        for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                int pid;
                uint64_t start, end;
                char comm[64];

                /* PID COMMAND START-END PERMS OFFSET NAME */
                assert_int_equal(sscanf(line, "%d %63s %" SCNx64 "-%" SCNx64, &pid, comm, &start, &end), 4);
                hits_add(&cli, pid, start, end, strstr(line, "(deleted)") != NULL);
        }
        assert_true(hits_equal(&cli, &expected));

        /* memctl lookup-many: a target's two library mappings, and a pid of no process. */
        free(cmd);
        free(out);
        assert_true(asprintf(&cmd, "%s --socket %s --no-legend --no-build-ids lookup-many %d:0x%" PRIx64 ",0x%" PRIx64 " %d:0x1000",
                             test_program("MEMCTL", "client/memctl"), d->socket, old.items[0].pid, old.items[0].start,
                             old.items[1].start, INT32_MAX) > 0);
        out = test_run_capture(cmd);
        assert_non_null(out);
        {
                char want[256];

                snprintf(want, sizeof(want), "0x%" PRIx64 " ", old.items[0].start);
                assert_non_null(strstr(out, want));
                snprintf(want, sizeof(want), "%s (deleted)", g.lib);
                assert_non_null(strstr(out, want));
                assert_non_null(strstr(out, "io.memmapd.NoSuchProcess"));
        }
        free(expected.items);
        free(got.items);
        free(cli.items);
        free(old.items);
        free(got_old.items);
        assert_int_equal(test_daemon_stop(d), 0);
        d->pid = 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_find_with_iterator, stop_running),
                cmocka_unit_test_teardown(test_find_by_proc_scan, stop_running),
                cmocka_unit_test(test_bad_queries),
                cmocka_unit_test_teardown(test_lookup_many, stop_running),
                cmocka_unit_test_teardown(test_clients, stop_running),
        };

        if (geteuid() != 0) {
                print_message("[  SKIPPED ] test-find-mappings: needs root (map_files, another user)\n");
                return 77;
        }
        return cmocka_run_group_tests(tests, setup, teardown);
}
