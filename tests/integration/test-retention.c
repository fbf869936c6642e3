/* Integration tests for retention (issue 15 part A) against the real daemon and real processes: a
 * short-lived process looked up after its exit (path, build ID, elf_vaddr as /proc, readelf and nm
 * say), pid reuse with and without start_time, A / nothing / B at one address as of a time (live
 * and after exit), who may see what was kept, and the build IDs and elf_vaddr kept with the mappings
 * (a library deleted or rewritten after the exit, a forked child that never exec'd). */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cleanup.h"
#include "fixture.h"

#define UID_A 4242
#define UID_B 4243

static struct test_daemon daemon_;
static const char *fixture_bin, *lib_path;
/* Why every test skips (root missing, BPF not built or denied), or NULL. */
static char skip_why[160];

#define SKIP_WITHOUT_RETENTION()                                  \
        do {                                                      \
                if (skip_why[0]) {                                \
                        printf("# SKIP: %s\n", skip_why);         \
                        skip();                                   \
                }                                                 \
        } while (0)

/* What a fixture printed ("key value" lines up to "end"; "map" lines kept whole). */
struct report {
        pid_t pid;
        pid_t reported_pid;             /* the pid it printed: a child of pid's, for fork-map */
        int stdin_fd;
        unsigned long long start_time, t[4];
        pid_t child_pid;                /* short-fork: the child that never exec'd */
        unsigned long long child_start_time;
        uint64_t function, libc_getpid, address;
        char maps[32][1024];
        size_t n_maps;
};

/* Starts the fixture (as uid/gid unless -1) and reads its report; the process may have exited by
 * the time this returns (it is reaped only by reap()). hook (unless NULL) runs with the child's
 * pid before the child execs. */
static int spawn_hooked(const char *const *argv, uid_t uid, gid_t gid, void (*hook)(pid_t pid, void *userdata),
                        void *userdata, struct report *ret) {
        int out[2], in[2], gate[2];
        char line[1024];
        FILE *f;
        pid_t pid;

        memset(ret, 0, sizeof(*ret));
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(in, O_CLOEXEC) < 0 || pipe2(gate, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                char c;

                dup2(out[1], 1);
                dup2(in[0], 0);
                if (uid != (uid_t) -1 && (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
                                          setresuid(uid, uid, uid) < 0))
                        _exit(126);
                if (hook && read(gate[0], &c, 1) != 1)
                        _exit(125);
                execv(argv[0], (char **) argv);
                _exit(127);
        }
        close(out[1]);
        close(in[0]);
        close(gate[0]);
        if (hook) {
                hook(pid, userdata);
                if (write(gate[1], "x", 1) != 1)
                        return -errno;
        }
        close(gate[1]);
        ret->pid = pid;
        ret->stdin_fd = in[1];
        f = fdopen(out[0], "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                if (strcmp(line, "end\n") == 0)
                        break;
                if (strncmp(line, "map ", 4) == 0 && ret->n_maps < 32)
                        snprintf(ret->maps[ret->n_maps++], sizeof(ret->maps[0]), "%s", line + 4);
                (void) (sscanf(line, "pid %d", &ret->reported_pid) || sscanf(line, "start_time %llu", &ret->start_time) ||
                        sscanf(line, "child %d %llu", &ret->child_pid, &ret->child_start_time) == 2 ||
                        sscanf(line, "function %" SCNx64, &ret->function) ||
                        sscanf(line, "libc %" SCNx64, &ret->libc_getpid) ||
                        sscanf(line, "address %" SCNx64, &ret->address) || sscanf(line, "t0 %llu", &ret->t[0]) ||
                        sscanf(line, "t1 %llu", &ret->t[1]) || sscanf(line, "t2 %llu", &ret->t[2]) ||
                        sscanf(line, "t3 %llu", &ret->t[3]));
        }
        fclose(f);
        return ret->start_time > 0 ? 0 : -EBADMSG;
}

static int spawn(const char *const *argv, uid_t uid, gid_t gid, struct report *ret) {
        return spawn_hooked(argv, uid, gid, NULL, NULL, ret);
}

static int reap(struct report *r) {
        int status = -1;

        if (r->stdin_fd >= 0)
                close(r->stdin_fd);
        r->stdin_fd = -1;
        if (waitpid(r->pid, &status, 0) < 0)
                return -errno;
        return status;
}

static struct json_object *call(const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL, *reply = NULL;
        struct json_object *o;
        va_list ap;
        int fd;

        va_start(ap, fmt);
        assert_true(vasprintf(&msg, fmt, ap) >= 0);
        va_end(ap);
        fd = test_connect(daemon_.socket);
        assert_true(fd >= 0);
        reply = test_call(fd, msg);
        close(fd);
        assert_non_null(reply);
        o = json_tokener_parse(reply);
        assert_non_null(o);
        return o;
}

static const char *error_of(struct json_object *o) {
        struct json_object *e;

        return json_object_object_get_ex(o, "error", &e) ? json_object_get_string(e) : NULL;
}

static struct json_object *get(struct json_object *o, const char *path) {
        char key[64];

        while (o && *path) {
                size_t n = strcspn(path, ".");

                snprintf(key, sizeof(key), "%.*s", (int) n, path);
                if (json_object_is_type(o, json_type_array))
                        o = json_object_array_get_idx(o, (size_t) atoi(key));
                else if (!json_object_object_get_ex(o, key, &o))
                        return NULL;
                path += n + (path[n] == '.');
        }
        return o;
}

static const char *get_string(struct json_object *o, const char *path) {
        struct json_object *v = get(o, path);

        return v ? json_object_get_string(v) : NULL;
}

/* The mapping of a Lookup reply that result i points at, or NULL when it is unmapped. */
static struct json_object *result_mapping(struct json_object *reply, size_t i) {
        char path[64];
        struct json_object *idx;

        snprintf(path, sizeof(path), "parameters.results.%zu.mapping", i);
        idx = get(reply, path);
        if (!idx || json_object_get_int(idx) < 0)
                return NULL;
        snprintf(path, sizeof(path), "parameters.mappings.%d", json_object_get_int(idx));
        return get(reply, path);
}

static int group_setup(void **state) {
        const char *args[] = { "--tracking=auto", "--set=RetainExitedSec=60", NULL };
        struct json_object *st;

        fixture_bin = test_program("RETAIN_FIXTURE", "tests/retain-fixture");
        lib_path = test_program("RETAIN_LIB", "tests/libretain-fix.so");
        if (geteuid() != 0) {
                snprintf(skip_why, sizeof(skip_why), "retention needs root to load BPF");
                return 0;
        }
        assert_int_equal(test_daemon_start(args, &daemon_), 0);
        st = call("{\"method\":\"io.memmapd.GetStatus\"}");
        if (!get_string(st, "parameters.retention") || strcmp(get_string(st, "parameters.retention"), "bpf") != 0) {
                snprintf(skip_why, sizeof(skip_why), "retention is off here (retention: %s): BPF not built or denied",
                         get_string(st, "parameters.retention") ?: "(none)");
                json_object_put(st);
                test_daemon_stop(&daemon_);
                daemon_.pid = 0;
                return 0;
        }
        json_object_put(st);
        return 0;
}

static int group_teardown(void **state) {
        if (daemon_.pid > 0)
                test_daemon_stop(&daemon_);
        return 0;
}

/* The /proc line of the report whose path ends in suffix: its start, offset and path. */
static bool report_map(const struct report *r, const char *suffix, uint64_t *start, uint64_t *offset, char *path) {
        for (size_t i = 0; i < r->n_maps; i++) {
                uint64_t s, e, off;
                char p[400];

                if (sscanf(r->maps[i], "%" SCNx64 "-%" SCNx64 " %*s %" SCNx64 " %*s %*s %399s", &s, &e, &off, p) == 4 &&
                    strlen(p) >= strlen(suffix) && strcmp(p + strlen(p) - strlen(suffix), suffix) == 0) {
                        *start = s;
                        *offset = off;
                        strcpy(path, p);
                        return true;
                }
        }
        return false;
}

/* Result i of a Lookup reply names path, with readelf's build ID, at nm's address of symbol. */
static void check_result(struct json_object *reply, size_t i, const char *path, const char *symbol) {
        char want_id[129], key[64];

        assert_non_null(result_mapping(reply, i));
        assert_string_equal(get_string(result_mapping(reply, i), "path"), path);
        assert_int_equal(test_readelf_build_id(path, want_id, sizeof(want_id)), 1);
        assert_string_equal(get_string(result_mapping(reply, i), "build_id"), want_id);
        snprintf(key, sizeof(key), "parameters.results.%zu.elf_vaddr", i);
        assert_int_equal(strtoull(get_string(reply, key), NULL, 16), test_nm_symbol(path, symbol, 1));
}

/* Lookup of a short-lived process after its exit equals what /proc, readelf and nm said. */
static void check_exited_lookup(const struct report *r, const char *start_time_param) {
        struct json_object *reply;
        char lib[400], libc[400];
        uint64_t lib_start, lib_off, libc_start, libc_off;

        assert_true(report_map(r, "libretain-fix.so", &lib_start, &lib_off, lib));
        assert_true(report_map(r, "libc.so.6", &libc_start, &libc_off, libc));
        reply = call("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d%s,\"build_ids\":true,"
                     "\"addresses\":[\"0x%" PRIx64 "\",\"0x%" PRIx64 "\",\"0x%" PRIx64 "\"]}}",
                     (int) r->pid, start_time_param, r->function, lib_start, r->libc_getpid);
        assert_null(error_of(reply));
        assert_true(json_object_get_boolean(get(reply, "parameters.process.exited")));
        assert_int_equal(json_object_get_int64(get(reply, "parameters.process.start_time")), r->start_time);

        /* The library's function and libc's getpid: the path /proc showed, readelf's build ID,
         * nm's address; the start of the library's executable mapping: /proc's file offset. */
        check_result(reply, 0, lib, "retain_lib_function");
        assert_int_equal(strtoull(get_string(reply, "parameters.results.1.file_offset"), NULL, 16), lib_off);
        check_result(reply, 2, libc, "getpid");
        json_object_put(reply);
}

static void test_short_lived_after_exit(void **state) {
        const char *argv[] = { fixture_bin, "short", lib_path, NULL };
        struct json_object *reply;
        struct report r;
        char param[64];

        SKIP_WITHOUT_RETENTION();
        assert_int_equal(spawn(argv, -1, -1, &r), 0);
        assert_int_equal(reap(&r), 0);
        snprintf(param, sizeof(param), ",\"start_time\":%llu", r.start_time);
        /* The exit record is drained on the daemon's loop: poll for it (bounded). */
        for (int i = 0; i < 3000; i++) {
                reply = call("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d%s}}", (int) r.pid,
                             param);
                if (!error_of(reply))
                        break;
                json_object_put(reply);
                reply = NULL;
                usleep(10000);
        }
        assert_non_null(reply);
        assert_true(json_object_get_boolean(get(reply, "parameters.process.exited")));
        /* As many executable file mappings as /proc showed (the process did nothing after). */
        assert_int_equal(json_object_array_length(get(reply, "parameters.mappings")), r.n_maps);
        json_object_put(reply);
        check_exited_lookup(&r, param);
        /* By pid alone, while the pid is not reused: the latest process under the pid, which is
         * this one unless another took the pid and exited meanwhile (pid_max may be 32768). */
        if (kill(r.pid, 0) < 0 && errno == ESRCH) {
                reply = call("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d}}", (int) r.pid);
                if (!error_of(reply) && (unsigned long long) json_object_get_int64(
                                                get(reply, "parameters.process.start_time")) == r.start_time)
                        check_exited_lookup(&r, "");
                else
                        printf("# pid %d was taken by another process meanwhile: not asked by pid alone\n", (int) r.pid);
                json_object_put(reply);
        }
}

/* The ELF virtual address of file offset off in path, from `readelf -lW`'s LOAD lines: the first
 * whose file range holds it (p_offset <= off < p_offset + p_filesz). */
static uint64_t readelf_vaddr(const char *path, uint64_t off) {
        _cleanup_free_ char *cmd = NULL, *out = NULL;

        assert_true(asprintf(&cmd, "readelf -lW '%s'", path) >= 0);
        out = test_run_capture(cmd);
        assert_non_null(out);
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
                uint64_t o, v, fs;

                if (sscanf(line, " LOAD 0x%" SCNx64 " 0x%" SCNx64 " 0x%*x 0x%" SCNx64, &o, &v, &fs) == 3 && o <= off &&
                    off - o < fs)
                        return off - o + v;
        }
        fail_msg("no PT_LOAD of %s holds offset 0x%" PRIx64, path, off);
        return 0;
}

/* What the daemon must answer for an address of a process, taken while its file was still there. */
struct truth {
        uint64_t address, elf_vaddr;
        char path[400], build_id[129];
};

/* The truth for address, in the mapping of the report whose path ends in suffix: readelf -n's build
 * ID; elf_vaddr from readelf -l at the file offset /proc's maps line gives. */
static void truth_of(const struct report *r, const char *suffix, uint64_t address, struct truth *ret) {
        uint64_t start, offset;

        ret->address = address;
        assert_true(report_map(r, suffix, &start, &offset, ret->path));
        assert_int_equal(test_readelf_build_id(ret->path, ret->build_id, sizeof(ret->build_id)), 1);
        ret->elf_vaddr = readelf_vaddr(ret->path, address - start + offset);
}

/* Lookup of the exited process (pid, start_time) at the truths' addresses gives their paths,
 * build IDs and elf_vaddr. */
static void check_kept(pid_t pid, unsigned long long start_time, const struct truth *t, size_t n) {
        char addrs[256] = "", key[64];
        struct json_object *reply;

        for (size_t i = 0; i < n; i++)
                snprintf(addrs + strlen(addrs), sizeof(addrs) - strlen(addrs), "%s\"0x%" PRIx64 "\"", i ? "," : "",
                         t[i].address);
        reply = call("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"start_time\":%llu,"
                     "\"build_ids\":true,\"addresses\":[%s]}}",
                     (int) pid, start_time, addrs);
        assert_null(error_of(reply));
        assert_true(json_object_get_boolean(get(reply, "parameters.process.exited")));
        for (size_t i = 0; i < n; i++) {
                assert_non_null(result_mapping(reply, i));
                assert_string_equal(get_string(result_mapping(reply, i), "path"), t[i].path);
                assert_non_null(get_string(result_mapping(reply, i), "build_id"));
                assert_string_equal(get_string(result_mapping(reply, i), "build_id"), t[i].build_id);
                snprintf(key, sizeof(key), "parameters.results.%zu.elf_vaddr", i);
                assert_non_null(get_string(reply, key));
                assert_int_equal(strtoull(get_string(reply, key), NULL, 16), t[i].elf_vaddr);
        }
        json_object_put(reply);
}

/* Copies from to to: a new file, or in_place into the file there (its inode stays). */
static void copy_file(const char *from, const char *to, bool in_place) {
        _cleanup_free_ char *cmd = NULL, *out = NULL;

        assert_true(asprintf(&cmd, in_place ? "cat '%s' > '%s' && echo ok" : "cp '%s' '%s' && echo ok", from, to) >= 0);
        out = test_run_capture(cmd);
        assert_non_null(out);
        assert_string_equal(out, "ok\n");
}

/* The fixture run in mode with a copy of its library in a directory of its own (dir: mkdtemp's
 * template; lib: the copy's path), reaped, and the truths of its library's function and libc's
 * getpid taken while the copy is there. */
static void run_with_copy(const char *mode, char *dir, char lib[static 128], struct report *r, struct truth t[static 2]) {
        const char *argv[] = { fixture_bin, mode, lib, NULL };

        assert_non_null(mkdtemp(dir));
        snprintf(lib, 128, "%s/libretain-fix.so", dir);
        copy_file(lib_path, lib, false);
        assert_int_equal(spawn(argv, -1, -1, r), 0);
        assert_int_equal(reap(r), 0);
        truth_of(r, "/libretain-fix.so", r->function, &t[0]);
        truth_of(r, "libc.so.6", r->libc_getpid, &t[1]);
        /* The truths agree with nm's address of the symbol. */
        assert_int_equal(t[0].elf_vaddr, test_nm_symbol(lib, "retain_lib_function", 1));
}

static int64_t status_counter(const char *key) {
        struct json_object *st = call("{\"method\":\"io.memmapd.GetStatus\"}"), *p, *v;
        int64_t r = -1;

        if (json_object_object_get_ex(st, "parameters", &p) && json_object_object_get_ex(p, key, &v))
                r = json_object_get_int64(v);
        json_object_put(st);
        return r;
}

/* The capture's counters, for the log (a record not read or lost explains a missing change). */
static void print_retention_counters(void) {
        static const char *const keys[] = { "records", "records_lost", "records_unread", "records_skipped" };
        struct json_object *st = call("{\"method\":\"io.memmapd.GetStatus\"}");

        printf("# capture:");
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                char path[64];
                struct json_object *v;

                snprintf(path, sizeof(path), "parameters.retention_%s", keys[i]);
                v = get(st, path);
                printf(" %s %s", keys[i], v ? json_object_get_string(v) : "?");
        }
        printf("\n");
        json_object_put(st);
}

static void wait_retained(pid_t pid, unsigned long long start_time) {
        for (int i = 0; i < 3000; i++) {
                struct json_object *reply = call(
                        "{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,\"start_time\":%llu}}",
                        (int) pid, start_time);
                bool done = !error_of(reply);

                json_object_put(reply);
                if (done)
                        return;
                usleep(10000);
        }
        fail_msg("pid %d never answered from retention", (int) pid);
}

/* Until the daemon's drain is past a flood: a process started now is kept whole at its exit
 * (while the ring buffer is still full, its records are lost, and the next tests' too). */
static void wait_caught_up(void) {
        const char *argv[] = { fixture_bin, "short", lib_path, NULL };

        for (int round = 0; round < 300; round++) {
                struct report r;

                assert_int_equal(spawn(argv, -1, -1, &r), 0);
                assert_int_equal(reap(&r), 0);
                for (int i = 0; i < 100; i++) {
                        struct json_object *reply = call(
                                "{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,\"start_time\":%llu}}",
                                (int) r.pid, r.start_time);
                        bool kept = !error_of(reply) &&
                                    json_object_array_length(get(reply, "parameters.mappings")) == r.n_maps;

                        json_object_put(reply);
                        if (kept)
                                return;
                        usleep(10000);
                }
        }
        fail_msg("no process was kept whole after the flood");
}

static void test_pid_reuse(void **state) {
        const char *short_argv[] = { fixture_bin, "short", lib_path, NULL };
        const char *wait_argv[] = { fixture_bin, "wait", NULL };
        struct json_object *reply;
        struct report a, b;
        int rounds = 0;

        SKIP_WITHOUT_RETENTION();
        for (;;) {
                assert_int_equal(spawn(short_argv, -1, -1, &a), 0);
                assert_int_equal(reap(&a), 0);
                wait_retained(a.pid, a.start_time);
                /* A new process under the same pid, in a later clock tick (another start_time). */
                test_wait_past_tick(a.start_time);
                if (!test_set_next_pid(a.pid)) {
                        skip();
                        return;
                }
                assert_int_equal(spawn(wait_argv, -1, -1, &b), 0);
                if (b.pid == a.pid)
                        break;
                reap(&b);
                /* Another process took the pid first (a loaded machine): again, bounded. */
                if (++rounds == 50)
                        fail_msg("pid reuse never happened in 50 rounds");
        }
        assert_true(b.start_time != a.start_time);

        /* pid alone: the live process, as without retention. */
        reply = call("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"addresses\":[\"0x%" PRIx64 "\"]}}",
                     (int) a.pid, a.function);
        assert_null(error_of(reply));
        assert_null(get(reply, "parameters.process.exited"));
        assert_int_equal(json_object_get_int64(get(reply, "parameters.process.start_time")), b.start_time);
        json_object_put(reply);
        /* With the old start_time: what was kept of the exited one. */
        {
                char param[64];

                snprintf(param, sizeof(param), ",\"start_time\":%llu", a.start_time);
                check_exited_lookup(&a, param);
        }
        reap(&b);
}

/* Waits until the process (pid, start_time) is answered as exited (bounded poll). */
static void wait_exited(pid_t pid, unsigned long long start_time) {
        for (int i = 0; i < 3000; i++) {
                struct json_object *reply = call(
                        "{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,\"start_time\":%llu}}",
                        (int) pid, start_time);
                bool done = !error_of(reply) && json_object_get_boolean(get(reply, "parameters.process.exited"));

                json_object_put(reply);
                if (done)
                        return;
                usleep(10000);
        }
        fail_msg("pid %d never answered as exited", (int) pid);
}

enum after_exit { LIB_DELETED, LIB_REWRITTEN };

/* A process maps libc and a copy of the fixture's library, exits; then the copy is deleted, or
 * rewritten in place (same inode) with another ELF file of another build ID: the build IDs and
 * elf_vaddr that come back are those of the files the process mapped. */
static void kept_after(enum after_exit what) {
        char dir[] = "/tmp/memmapd-retain-XXXXXX", lib[128], other_id[129];
        struct truth t[2];
        struct stat before, after;
        struct report r;

        SKIP_WITHOUT_RETENTION();
        run_with_copy("short", dir, lib, &r, t);
        wait_retained(r.pid, r.start_time);
        if (what == LIB_DELETED)
                assert_int_equal(unlink(lib), 0);
        else {
                /* In place: the same device and inode now hold another file. */
                assert_int_equal(stat(lib, &before), 0);
                copy_file(fixture_bin, lib, true);
                assert_int_equal(stat(lib, &after), 0);
                assert_int_equal(before.st_ino, after.st_ino);
                assert_int_equal(before.st_dev, after.st_dev);
                assert_int_equal(test_readelf_build_id(lib, other_id, sizeof(other_id)), 1);
                assert_string_not_equal(other_id, t[0].build_id);
        }
        check_kept(r.pid, r.start_time, t, 2);
        (void) unlink(lib);
        assert_int_equal(rmdir(dir), 0);
}

static void test_kept_after_delete(void **state) {
        kept_after(LIB_DELETED);
}

static void test_kept_after_rewrite(void **state) {
        kept_after(LIB_REWRITTEN);
}

/* A child forked by the fixture never execs and exits after its parent: it has no page of its
 * files present to read facts from, so they come from the capture's cache of the files (filled at
 * its parent's exit); the library is deleted after both exited. */
static void test_forked_child(void **state) {
        char dir[] = "/tmp/memmapd-retain-XXXXXX", lib[128];
        struct truth t[2];
        struct report r;

        SKIP_WITHOUT_RETENTION();
        /* The child shares its parent's mappings: the same addresses, the same truths. */
        run_with_copy("short-fork", dir, lib, &r, t);
        assert_true(r.child_pid > 0);
        wait_exited(r.child_pid, r.child_start_time);
        assert_int_equal(unlink(lib), 0);
        check_kept(r.child_pid, r.child_start_time, t, 2);
        assert_int_equal(rmdir(dir), 0);
}

/* The path of the mapping at address as of t, "" when unmapped, or the error's name. */
static char *path_at(pid_t pid, unsigned long long start_time, uint64_t address, unsigned long long t) {
        struct json_object *reply =
                call("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"start_time\":%llu,"
                     "\"time_usec\":%llu,\"addresses\":[\"0x%" PRIx64 "\"]}}",
                     (int) pid, start_time, t, address);
        char *s;

        if (error_of(reply))
                s = strdup(error_of(reply));
        else if (result_mapping(reply, 0)) {
                const char *path = get_string(result_mapping(reply, 0), "path");

                s = strdup(path ? path : "(mapped, path not known)");
        } else
                s = strdup("");
        json_object_put(reply);
        return s;
}

static void check_swap(const struct report *r, const char *a, const char *b) {
        _cleanup_free_ char *before = path_at(r->pid, r->start_time, r->address, r->t[0]);
        _cleanup_free_ char *during_a = path_at(r->pid, r->start_time, r->address, r->t[1]);
        _cleanup_free_ char *between = path_at(r->pid, r->start_time, r->address, r->t[2]);
        _cleanup_free_ char *after = path_at(r->pid, r->start_time, r->address, r->t[3]);
        _cleanup_free_ char *long_before = path_at(r->pid, r->start_time, r->address, 1);

        assert_string_equal(before, "");
        assert_string_equal(during_a, a);
        assert_string_equal(between, "");
        assert_string_equal(after, b);
        assert_string_equal(long_before, "io.memmapd.TimeNotKnown");
}

static void test_a_nothing_b(void **state) {
        _cleanup_free_ char *a = realpath(lib_path, NULL), *b = realpath(fixture_bin, NULL);
        const char *argv[] = { fixture_bin, "swap", a, b, NULL };
        struct report r;

        SKIP_WITHOUT_RETENTION();
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(spawn(argv, -1, -1, &r), 0);
        /* The records of the steps are drained on the daemon's loop: the last one (B mapped)
         * shows in the latest listing once they all were (bounded poll). */
        for (int i = 0;; i++) {
                _cleanup_free_ char *now = path_at(r.pid, r.start_time, r.address, r.t[3]);

                if (strcmp(now, b) == 0)
                        break;
                if (i == 3000)
                        print_retention_counters();
                assert_true(i < 3000);
                usleep(10000);
        }
        check_swap(&r, a, b);
        assert_int_equal(reap(&r), 0);
        wait_retained(r.pid, r.start_time);
        /* After its exit, the same history. */
        check_swap(&r, a, b);
}

/* A Watch of one pid, started before the pid execs (spawn_hooked's hook). */
struct pid_watch {
        int fd;
};

static void watch_pid(pid_t pid, void *userdata) {
        struct pid_watch *w = userdata;
        struct timeval tv = { .tv_sec = 60 };
        _cleanup_free_ char *msg = NULL, *reply = NULL;

        w->fd = test_connect(daemon_.socket);
        assert_true(w->fd >= 0);
        /* Every wait for an event is bounded (a loaded machine may take long). */
        assert_int_equal(setsockopt(w->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
        assert_true(asprintf(&msg, "{\"method\":\"io.memmapd.Watch\",\"more\":true,\"parameters\":{\"pid\":%d}}",
                             (int) pid) >= 0);
        assert_int_equal(test_send(w->fd, msg), 0);
        reply = test_recv(w->fd);
        assert_non_null(reply);
        assert_non_null(strstr(reply, "\"watching\""));
}

/* The next mappings event of w that adds (or removes) a mapping of path at address; the events
 * before it are passed over. */
static void next_mapping_event(struct pid_watch *w, const char *side, uint64_t address, const char *path) {
        for (;;) {
                _cleanup_free_ char *reply = test_recv(w->fd);
                struct json_object *o, *list;

                if (!reply)
                        fail_msg("no mappings event with %s 0x%" PRIx64 " %s within the wait", side, address, path);
                o = json_tokener_parse(reply);
                assert_non_null(o);
                list = get(o, "parameters.event") && strcmp(get_string(o, "parameters.event"), "mappings") == 0
                               ? get(get(o, "parameters"), side)
                               : NULL;
                for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                        struct json_object *m = json_object_array_get_idx(list, i);

                        if (strtoull(get_string(m, "start") ?: "", NULL, 16) == address &&
                            strcmp(get_string(m, "path") ?: "", path) == 0) {
                                /* As the fixture maps it: read and execute, private. */
                                assert_string_equal(get_string(m, "perms"), "r-xp");
                                json_object_put(o);
                                return;
                        }
                }
                json_object_put(o);
        }
}

/* fixture maps A at an address, unmaps it, maps B there: Lookups as of before, between and
 * after give A, nothing, B, and a Watch of it started before its exec hears each step. */
static void check_swap_watched(const char *fixture) {
        _cleanup_free_ char *a = realpath(lib_path, NULL), *b = realpath(fixture_bin, NULL);
        const char *argv[] = { fixture, "swap", a, b, NULL };
        struct pid_watch w = { .fd = -1 };
        struct report r;

        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(spawn_hooked(argv, -1, -1, watch_pid, &w, &r), 0);
        next_mapping_event(&w, "added", r.address, a);
        next_mapping_event(&w, "removed", r.address, a);
        next_mapping_event(&w, "added", r.address, b);
        close(w.fd);
        check_swap(&r, a, b);
        assert_int_equal(reap(&r), 0);
        wait_retained(r.pid, r.start_time);
        check_swap(&r, a, b);
}

static void test_a_nothing_b_watched(void **state) {
        SKIP_WITHOUT_RETENTION();
        check_swap_watched(fixture_bin);
}

/* The same from a 32-bit program: its changes are ia32 syscalls (mmap2, munmap). */
static void test_a_nothing_b_32bit(void **state) {
        const char *fixture32 = test_program("RETAIN_FIXTURE32", "tests/retain-fixture32");
        char *const probe[] = { (char *) fixture32, NULL };
        pid_t pid;
        int r, status;

        SKIP_WITHOUT_RETENTION();
        if (access(fixture32, X_OK) < 0) {
                printf("# SKIP: no 32-bit target (%s): configure found no compiler that links -m32 "
                       "(Debian: gcc-multilib)\n", fixture32);
                skip();
        }
        /* Run without arguments it prints its usage: whether this kernel runs 32-bit programs. */
        r = posix_spawn(&pid, fixture32, NULL, NULL, probe, (char *[]) { NULL });
        if (r == ENOEXEC) {
                printf("# SKIP: this kernel runs no 32-bit programs (exec of %s: %s; ia32 emulation off)\n",
                       fixture32, strerror(r));
                skip();
        }
        assert_int_equal(r, 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        check_swap_watched(fixture32);
}

/* A child that maps A as soon as it is forked: as of a time before that, its history is its
 * parent's set (libc where the parent had it, nothing at A's address), after it, A too (its
 * fork event and its own records come through two ring buffers, in either order). */
static void test_fork_base(void **state) {
        _cleanup_free_ char *a = realpath(lib_path, NULL);
        const char *argv[] = { fixture_bin, "fork-map", a, NULL };
        char libc_path[400] = "";
        struct report r;
        int64_t lost0, unread0, tracking_lost0;

        SKIP_WITHOUT_RETENTION();
        assert_non_null(a);
        lost0 = status_counter("retention_records_lost");
        unread0 = status_counter("retention_records_unread");
        tracking_lost0 = status_counter("tracking_events_lost");
        assert_int_equal(spawn(argv, -1, -1, &r), 0);
        {
                char path[64], line[1024];
                FILE *f;

                snprintf(path, sizeof(path), "/proc/%d/maps", (int) r.reported_pid);
                f = fopen(path, "re");
                assert_non_null(f);
                while (fgets(line, sizeof(line), f)) {
                        unsigned long long s, e;

                        if (sscanf(line, "%llx-%llx", &s, &e) == 2 && s <= r.libc_getpid && r.libc_getpid < e)
                                sscanf(line, "%*s %*s %*s %*s %*s %399s", libc_path);
                }
                fclose(f);
        }
        assert_true(libc_path[0] != 0);
        /* Known once its record of A was drained (bounded poll). */
        for (int i = 0;; i++) {
                _cleanup_free_ char *now = path_at(r.reported_pid, r.start_time, r.address, r.t[1]);

                if (strcmp(now, a) == 0)
                        break;
                if (i >= 3000)
                        fail_msg("the child's history never showed A as of its mapping: %s", now);
                usleep(10000);
        }
        {
                _cleanup_free_ char *libc_before = path_at(r.reported_pid, r.start_time, r.libc_getpid, r.t[0]);
                _cleanup_free_ char *a_before = path_at(r.reported_pid, r.start_time, r.address, r.t[0]);
                _cleanup_free_ char *libc_after = path_at(r.reported_pid, r.start_time, r.libc_getpid, r.t[1]);

                /* The parent's set at the fork is the base: unknown when its records were lost or
                 * not read (another test's flood beside this one fills the ring). */
                if (strcmp(libc_before, "io.memmapd.TimeNotKnown") == 0 &&
                    (status_counter("retention_records_lost") != lost0 ||
                     status_counter("retention_records_unread") != unread0 ||
                     status_counter("tracking_events_lost") != tracking_lost0))
                        printf("# before its first change: not known, but records or events were lost or not "
                               "read meanwhile: not judged\n");
                else {
                        if (strcmp(libc_before, "io.memmapd.TimeNotKnown") == 0) {
                                /* Since when it is known says which of its history's starts won. */
                                struct json_object *reply = call(
                                        "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"start_time\":"
                                        "%llu,\"time_usec\":%llu,\"addresses\":[\"0x%" PRIx64 "\"]}}",
                                        (int) r.reported_pid, r.start_time, r.t[0], r.libc_getpid);

                                printf("# t0 %llu, t1 %llu: %s\n", r.t[0], r.t[1], json_object_to_json_string(reply));
                                json_object_put(reply);
                        }
                        assert_string_equal(libc_before, libc_path);
                        assert_string_equal(a_before, "");
                }
                assert_string_equal(libc_after, libc_path);
        }
        assert_int_equal(reap(&r), 0);
}

/* A Lookup as of t, as another user: the path there, "" when unmapped, or the error's name. */
struct at_query {
        pid_t pid;
        unsigned long long start_time, t;
        uint64_t address;
        char answer[256];
};

static int path_at_as(void *arg) {
        struct at_query *q = arg;
        _cleanup_free_ char *msg = NULL, *reply = NULL;
        struct json_object *o, *m;
        int fd = test_connect(daemon_.socket);

        if (fd < 0 || asprintf(&msg, "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"start_time\":%llu,"
                                     "\"time_usec\":%llu,\"addresses\":[\"0x%" PRIx64 "\"]}}",
                               (int) q->pid, q->start_time, q->t, q->address) < 0)
                return 2;
        reply = test_call(fd, msg);
        close(fd);
        o = reply ? json_tokener_parse(reply) : NULL;
        if (!o)
                return 3;
        m = error_of(o) ? NULL : result_mapping(o, 0);
        snprintf(q->answer, sizeof(q->answer), "%s",
                 error_of(o) ? error_of(o) : m ? get_string(m, "path") : "");
        json_object_put(o);
        return 0;
}

/* A process of UID_A maps A, then B, then execs another program: root is answered as of any
 * time; UID_A only as of its current program's times (the earlier one might have been a setuid
 * program: the kernel let UID_A see the process as it is now, not as it was). */
static void test_times_before_exec(void **state) {
        _cleanup_free_ char *a = realpath(lib_path, NULL), *b = realpath(fixture_bin, NULL);
        const char *argv[] = { fixture_bin, "swap-exec", a, b, NULL };
        /* run_as() forks: the answer comes back through shared memory. */
        struct at_query *q = mmap(NULL, sizeof(*q), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        struct report r;
        char line[1024];
        bool gone = false;

        SKIP_WITHOUT_RETENTION();
        if (geteuid() != 0) {
                printf("[  SKIPPED ] another uid needs root to switch to\n");
                skip();
        }
        assert_int_equal(spawn(argv, UID_A, UID_A, &r), 0);
        assert_int_equal(write(r.stdin_fd, "x", 1), 1);
        /* The exec is done when B is no longer at its address (the kernel's text)... */
        for (int i = 0; !gone; i++) {
                char path[64];
                FILE *f;

                assert_true(i < 3000);
                snprintf(path, sizeof(path), "/proc/%d/maps", (int) r.pid);
                f = fopen(path, "re");
                assert_non_null(f);
                gone = true;
                while (fgets(line, sizeof(line), f))
                        if (strtoull(line, NULL, 16) == r.address)
                                gone = false;
                fclose(f);
                if (!gone)
                        usleep(10000);
        }
        /* ...and known to the daemon when its history has B closed (bounded poll). */
        for (int i = 0;; i++) {
                struct timespec ts;
                _cleanup_free_ char *now = NULL;

                clock_gettime(CLOCK_MONOTONIC, &ts);
                now = path_at(r.pid, r.start_time, r.address,
                              (unsigned long long) ts.tv_sec * 1000000ull + (unsigned long long) ts.tv_nsec / 1000);
                if (strcmp(now, "") == 0)
                        break;
                assert_true(i < 3000);
                usleep(10000);
        }
        {
                _cleanup_free_ char *root_b = path_at(r.pid, r.start_time, r.address, r.t[3]);

                assert_string_equal(root_b, b);
        }
        assert_true(q != MAP_FAILED);
        *q = (struct at_query) { .pid = r.pid, .start_time = r.start_time, .t = r.t[3], .address = r.address };
        assert_int_equal(run_as(UID_A, UID_A, path_at_as, q), 0);
        assert_string_equal(q->answer, "io.memmapd.TimeNotKnown");
        /* Its current program's times are its own. */
        {
                struct timespec ts;

                clock_gettime(CLOCK_MONOTONIC, &ts);
                q->t = (unsigned long long) ts.tv_sec * 1000000ull + (unsigned long long) ts.tv_nsec / 1000;
        }
        assert_int_equal(run_as(UID_A, UID_A, path_at_as, q), 0);
        assert_string_equal(q->answer, "");
        munmap(q, sizeof(*q));
        assert_int_equal(reap(&r), 0);
}

struct as_client {
        pid_t pid;
        unsigned long long start_time;
        char error[128];
        bool exited;
};

static int lookup_as(void *arg) {
        struct as_client *c = arg;
        _cleanup_free_ char *msg = NULL, *reply = NULL;
        struct json_object *o, *v;
        int fd = test_connect(daemon_.socket), r;

        if (fd < 0 || asprintf(&msg, "{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,"
                                     "\"start_time\":%llu}}", (int) c->pid, c->start_time) < 0)
                return 2;
        reply = test_call(fd, msg);
        o = reply ? json_tokener_parse(reply) : NULL;
        close(fd);

        if (!o)
                return 3;
        if (error_of(o)) {
                uint64_t now = 0;

                r = strcmp(error_of(o), "io.memmapd.NoSuchProcess") == 0 ? 10 : 11;
                /* Another process took the pid meanwhile (pid_max may be 32768): the answer is the
                 * kernel's about that one, which says nothing of the retained process. */
                if (r == 11 && test_proc_stat_field(c->pid, 22, &now) == 0 && now != c->start_time)
                        r = 15;
        }
        else {
                v = get(o, "parameters.process.exited");
                r = v && json_object_get_boolean(v) ? 0 : 12;
        }
        json_object_put(o);
        return r;
}

static void test_access(void **state) {
        const char *argv[] = { fixture_bin, "short", lib_path, NULL };
        const char *argv_nd[] = { fixture_bin, "short-nondumpable", lib_path, NULL };
        struct as_client c;
        struct report r;
        int r_b;

        SKIP_WITHOUT_RETENTION();
        /* A process of UID_A: its owner sees what was kept, another uid does not (the kernel's
         * answer, NoSuchProcess, stands), root does. */
        assert_int_equal(spawn(argv, UID_A, UID_A, &r), 0);
        assert_int_equal(reap(&r), 0);
        wait_retained(r.pid, r.start_time);
        c = (struct as_client) { .pid = r.pid, .start_time = r.start_time };
        assert_int_equal(run_as(UID_A, UID_A, lookup_as, &c), 0);
        r_b = run_as(UID_B, UID_B, lookup_as, &c);
        if (r_b == 15)
                printf("# pid %d was taken by another process meanwhile: the other uid's answer not judged\n",
                       (int) c.pid);
        else
                assert_int_equal(r_b, 10);

        /* Non-dumpable at exit: its owner could not have read its maps then. */
        assert_int_equal(spawn(argv_nd, UID_A, UID_A, &r), 0);
        assert_int_equal(reap(&r), 0);
        wait_retained(r.pid, r.start_time);
        c = (struct as_client) { .pid = r.pid, .start_time = r.start_time };
        assert_int_equal(run_as(UID_A, UID_A, lookup_as, &c), 10);
        assert_int_equal(lookup_as(&c), 0);
}

/* Symbols of an exited process's addresses, with its pid and start time: the library's function
 * by name, libc's getpid as a name nm gives at that address (an alias may answer). */
static void test_symbols_after_exit(void **state) {
        const char *argv[] = { fixture_bin, "short", lib_path, NULL };
        struct json_object *reply;
        char lib[400], libc[400];
        uint64_t start, off, vaddr, offset;
        const char *name;
        struct report r;

        SKIP_WITHOUT_RETENTION();
        assert_int_equal(spawn(argv, -1, -1, &r), 0);
        assert_int_equal(reap(&r), 0);
        wait_retained(r.pid, r.start_time);
        assert_true(report_map(&r, "libretain-fix.so", &start, &off, lib));
        assert_true(report_map(&r, "libc.so.6", &start, &off, libc));
        reply = call("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"start_time\":%llu,"
                     "\"symbols\":true,\"addresses\":[\"0x%" PRIx64 "\",\"0x%" PRIx64 "\"]}}",
                     (int) r.pid, r.start_time, r.function + 2, r.libc_getpid);
        assert_null(error_of(reply));
        assert_true(json_object_get_boolean(get(reply, "parameters.process.exited")));
        assert_string_equal(get_string(reply, "parameters.results.0.symbol"), "retain_lib_function");
        assert_int_equal(strtoull(get_string(reply, "parameters.results.0.symbol_offset"), NULL, 16), 2);
        name = get_string(reply, "parameters.results.1.symbol");
        assert_non_null(name);
        vaddr = strtoull(get_string(reply, "parameters.results.1.elf_vaddr"), NULL, 16);
        offset = strtoull(get_string(reply, "parameters.results.1.symbol_offset"), NULL, 16);
        assert_int_equal(test_nm_symbol(libc, name, 1), vaddr - offset);
        json_object_put(reply);
}

/* A process that toggles an executable mapping of lib_path n times: a record each. */
/* n records (each mprotect adds or removes an executable mapping), then exits; with ready >= 0,
 * writes a byte there and goes on without pause until killed. */
static void flood_records(unsigned n, int ready) {
        int fd = open(lib_path, O_RDONLY | O_CLOEXEC);
        void *p = fd >= 0 ? mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) : MAP_FAILED;

        if (p == MAP_FAILED)
                _exit(1);
        for (unsigned i = 0; i < n; i++)
                if (mprotect(p, 4096, i % 2 ? PROT_READ | PROT_EXEC : PROT_READ) < 0)
                        _exit(2);
        if (ready < 0)
                _exit(0);
        if (write(ready, "x", 1) != 1)
                _exit(3);
        for (unsigned i = 0;; i++)
                if (mprotect(p, 4096, i % 2 ? PROT_READ | PROT_EXEC : PROT_READ) < 0)
                        _exit(2);
}

static uint64_t status_u64(const char *key) {
        struct json_object *st = call("{\"method\":\"io.memmapd.GetStatus\"}");
        char path[96];
        uint64_t v;

        snprintf(path, sizeof(path), "parameters.%s", key);
        assert_non_null(get(st, path));
        v = (uint64_t) json_object_get_int64(get(st, path));
        json_object_put(st);
        return v;
}

/* One user overflowing the capture's ring buffer (the daemon stopped meanwhile, as a busy
 * machine may leave it) costs the histories of the processes whose records were lost, not
 * what was kept of everyone else: an exited process kept before is still answered for. */
static void test_flood_forgets_only_its_own(void **state) {
        const char *argv[] = { fixture_bin, "short", lib_path, NULL };
        struct json_object *reply;
        uint64_t flood_start;
        uint64_t lost0;
        struct report r;
        pid_t flood;
        int status;

        SKIP_WITHOUT_RETENTION();
        assert_int_equal(spawn(argv, -1, -1, &r), 0);
        assert_int_equal(reap(&r), 0);
        wait_retained(r.pid, r.start_time);
        lost0 = status_u64("retention_records_lost");

        /* About 16,000 records fill the 4 MiB ring: 100,000 overflow it. */
        assert_int_equal(kill(daemon_.pid, SIGSTOP), 0);
        flood = fork();
        assert_true(flood >= 0);
        if (flood == 0)
                flood_records(100000, -1);
        assert_int_equal(test_proc_stat_field(flood, 22, &flood_start), 0);
        assert_int_equal(waitpid(flood, &status, 0), flood);
        assert_int_equal(kill(daemon_.pid, SIGCONT), 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        for (int i = 0; i < 3000 && status_u64("retention_records_lost") == lost0; i++)
                usleep(10000);
        assert_true(status_u64("retention_records_lost") > lost0);

        /* The process kept before: still answered, with what it had. */
        reply = call("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,\"start_time\":%llu}}",
                     (int) r.pid, r.start_time);
        assert_null(error_of(reply));
        assert_true(json_object_get_boolean(get(reply, "parameters.process.exited")));
        assert_int_equal(json_object_array_length(get(reply, "parameters.mappings")), r.n_maps);
        json_object_put(reply);

        /* The flooder: its records were lost, so nothing is told of it from a history. */
        reply = call("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,\"start_time\":%llu}}",
                     (int) flood, (unsigned long long) flood_start);
        assert_non_null(error_of(reply));
        json_object_put(reply);
        wait_caught_up();
}

/* A live process whose records are lost again and again (it is forgotten, read again, forgotten)
 * and that changes its mappings without pause: a question about it as of now is answered, or gets
 * TimeNotKnown, never another error. (test-mirror met InvalidParameter once in CI: a read of the
 * process refused or forgotten before the answer; here, the same questions, without forcing that
 * order.) */
static void test_forgotten_while_changing(void **state) {
        uint64_t flood_start, lost0;
        int ready[2], answered = 0, not_known = 0;
        pid_t flood;
        char c;

        SKIP_WITHOUT_RETENTION();
        lost0 = status_u64("retention_records_lost");
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(kill(daemon_.pid, SIGSTOP), 0);
        flood = fork();
        assert_true(flood >= 0);
        if (flood == 0) {
                /* It never ends by itself: it ends with the test, however that ends. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                        _exit(4);
                flood_records(100000, ready[1]);
        }
        close(ready[1]);
        assert_int_equal(read(ready[0], &c, 1), 1);
        close(ready[0]);
        assert_int_equal(test_proc_stat_field(flood, 22, &flood_start), 0);
        assert_int_equal(kill(daemon_.pid, SIGCONT), 0);
        for (int i = 0; i < 3000 && status_u64("retention_records_lost") == lost0; i++)
                usleep(10000);
        assert_true(status_u64("retention_records_lost") > lost0);

        for (int i = 0; i < 20; i++) {
                struct json_object *reply;
                struct timespec ts;
                const char *err;

                clock_gettime(CLOCK_MONOTONIC, &ts);
                reply = call("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"start_time\":%llu,"
                             "\"time_usec\":%llu,\"addresses\":[\"0x1000\"]}}",
                             (int) flood, (unsigned long long) flood_start,
                             (unsigned long long) ts.tv_sec * 1000000ULL + (unsigned long long) ts.tv_nsec / 1000);
                err = error_of(reply);
                if (err && strcmp(err, "io.memmapd.TimeNotKnown") != 0)
                        fail_msg("Lookup as of now of a forgotten, changing process: %s", err);
                if (err)
                        not_known++;
                else
                        answered++;
                json_object_put(reply);
        }
        printf("# 20 questions: %d answered, %d TimeNotKnown\n", answered, not_known);
        assert_int_equal(kill(flood, SIGKILL), 0);
        assert_int_equal(waitpid(flood, NULL, 0), flood);
        wait_caught_up();
}

/* One checkpoint of the churn fixture: when, and its executable file mappings then. */
struct checkpoint {
        unsigned long long t;
        struct churn_map {
                uint64_t start, end, offset;
                char perms[5], path[400];
        } maps[64];
        size_t n;
};

/* What the history answers for page `addr` as of cp->t equals what /proc showed then: the same
 * mapping (path, permissions) and file offset, or nothing. Returns the mismatches, or -1 when
 * the time is not known (TimeNotKnown). */
static int check_checkpoint(pid_t pid, unsigned long long start_time, uint64_t area, const struct checkpoint *cp) {
        char addrs[64 * 24] = "";
        struct json_object *reply;
        int bad = 0;

        for (int i = 0; i < 64; i++)
                snprintf(addrs + strlen(addrs), sizeof(addrs) - strlen(addrs), "%s\"0x%" PRIx64 "\"", i ? "," : "",
                         area + (uint64_t) i * 4096);
        reply = call("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"start_time\":%llu,"
                     "\"time_usec\":%llu,\"addresses\":[%s]}}",
                     (int) pid, start_time, cp->t, addrs);
        if (error_of(reply) && strcmp(error_of(reply), "io.memmapd.TimeNotKnown") == 0) {
                json_object_put(reply);
                return -1;
        }
        assert_null(error_of(reply));
        for (int i = 0; i < 64; i++) {
                uint64_t a = area + (uint64_t) i * 4096;
                const struct churn_map *want = NULL;
                struct json_object *m = result_mapping(reply, (size_t) i);
                char key[64];

                for (size_t j = 0; j < cp->n; j++)
                        if (cp->maps[j].start <= a && a < cp->maps[j].end)
                                want = &cp->maps[j];
                snprintf(key, sizeof(key), "parameters.results.%d.file_offset", i);
                if (!want != !m ||
                    (want && (strcmp(get_string(m, "path") ?: "", want->path) != 0 ||
                              strcmp(get_string(m, "perms") ?: "", want->perms) != 0 ||
                              strtoull(get_string(reply, key) ?: "", NULL, 16) != want->offset + (a - want->start)))) {
                        printf("# as of %llu, 0x%" PRIx64 ": /proc showed %s %s, the history %s %s\n", cp->t, a,
                               want ? want->perms : "-", want ? want->path : "nothing",
                               m ? get_string(m, "perms") : "-", m ? get_string(m, "path") : "nothing");
                        bad++;
                }
        }
        json_object_put(reply);
        return bad;
}

/* A process maps two files at random over an area (fixed, with and without exec, private and
 * shared), changes their permissions, unmaps and moves parts: the history as of each time it
 * reported equals what /proc/PID/maps showed then, page by page (the capture leaves out the
 * changes that could change nothing told: none of those may be one that did). */
static void test_churn_history(void **state) {
        _cleanup_free_ char *a = realpath(lib_path, NULL), *b = realpath(fixture_bin, NULL);
        static struct checkpoint cps[128];
        int bad = 0, checked = 0;

        SKIP_WITHOUT_RETENTION();
        assert_non_null(a);
        assert_non_null(b);
        for (unsigned seed = 1; seed <= 4; seed++) {
                char seed_s[16], line[1024];
                const char *argv[] = { fixture_bin, "churn", seed_s, "400", a, b, NULL };
                unsigned long long start_time = 0;
                uint64_t area = 0;
                size_t n = 0;
                pid_t pid = 0;
                int out[2], status, seed_bad = 0, not_known = 0;
                int64_t unread0 = status_counter("retention_records_unread");
                int64_t lost0 = status_counter("retention_records_lost");
                FILE *f;

                snprintf(seed_s, sizeof(seed_s), "%u", seed);
                assert_int_equal(pipe2(out, O_CLOEXEC), 0);
                pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        dup2(out[1], 1);
                        execv(argv[0], (char **) argv);
                        _exit(127);
                }
                close(out[1]);
                f = fdopen(out[0], "re");
                assert_non_null(f);
                while (fgets(line, sizeof(line), f)) {
                        struct churn_map *m;

                        if (sscanf(line, "start_time %llu", &start_time) == 1 || sscanf(line, "area %" SCNx64, &area) == 1)
                                continue;
                        if (strncmp(line, "check ", 6) == 0 && n < 128) {
                                cps[n] = (struct checkpoint) { .t = strtoull(line + 6, NULL, 10) };
                                n++;
                                continue;
                        }
                        if (strncmp(line, "map ", 4) != 0 || n == 0 || cps[n - 1].n >= 64)
                                continue;
                        m = &cps[n - 1].maps[cps[n - 1].n];
                        if (sscanf(line + 4, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %*s %*s %399s", &m->start, &m->end,
                                   m->perms, &m->offset, m->path) == 5)
                                cps[n - 1].n++;
                }
                fclose(f);
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_int_equal(status, 0);
                assert_true(start_time > 0 && area != 0 && n > 0);
                /* Kept at its exit: every record before the exit's was applied. */
                wait_retained(pid, start_time);
                for (size_t i = 0; i < n; i++, checked++) {
                        int k = check_checkpoint(pid, start_time, area, &cps[i]);

                        if (k < 0)
                                not_known++;
                        else
                                seed_bad += k;
                }
                /* A capture that found the mmap lock taken states nothing until the process's next
                 * change (documented), and records lost cost the history of the processes they
                 * were about (another test's flood beside this one may fill the ring): the
                 * machine's counts moved during this run, so a mismatch, or a time not known, may
                 * be that. */
                if ((seed_bad > 0 || not_known > 0) && (status_counter("retention_records_unread") != unread0 ||
                                                        status_counter("retention_records_lost") != lost0))
                        printf("# seed %u: %d mismatches, %d times not known, but a capture somewhere could not "
                               "read its process's mappings or lost records meanwhile: not judged\n", seed, seed_bad,
                               not_known);
                else
                        bad += seed_bad + not_known;
        }
        print_retention_counters();
        printf("# %d checkpoints of 64 pages compared with /proc\n", checked);
        assert_int_equal(bad, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_short_lived_after_exit),
                cmocka_unit_test(test_kept_after_delete),
                cmocka_unit_test(test_kept_after_rewrite),
                cmocka_unit_test(test_forked_child),
                cmocka_unit_test(test_a_nothing_b),
                cmocka_unit_test(test_a_nothing_b_watched),
                cmocka_unit_test(test_a_nothing_b_32bit),
                cmocka_unit_test(test_pid_reuse),
                cmocka_unit_test(test_access),
                cmocka_unit_test(test_times_before_exec),
                cmocka_unit_test(test_symbols_after_exit),
                cmocka_unit_test(test_flood_forgets_only_its_own),
                cmocka_unit_test(test_churn_history),
                cmocka_unit_test(test_forgotten_while_changing),
                cmocka_unit_test(test_fork_base),
        };

        setvbuf(stdout, NULL, _IOLBF, 0);
        /* MEMMAPD_TEST_FILTER=test_fork*: only those (for working on one). */
        if (getenv("MEMMAPD_TEST_FILTER"))
                cmocka_set_test_filter(getenv("MEMMAPD_TEST_FILTER"));
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
