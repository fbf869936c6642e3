/* memmapd end to end: the real daemon on a private socket, spoken to over the real socket with
 * raw Varlink, through libmemctl and through memctl, about live processes. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "fixture.h"
#include "libmemctl.h"
#include "number.h"

#define UID_A 41001
#define GID_A 41001

static struct test_daemon daemon_default;

static int setup(void **state) {
        signal(SIGPIPE, SIG_IGN);
        return test_daemon_start(NULL, &daemon_default) < 0 ? -1 : 0;
}

static int teardown(void **state) {
        /* Exit status 0: a clean shutdown, and under ASan no leak and no error. */
        return test_daemon_stop(&daemon_default) == 0 ? 0 : -1;
}

static struct json_object *parse(const char *s) {
        struct json_object *o;

        assert_non_null(s);
        o = json_tokener_parse(s);
        assert_non_null(o);
        return o;
}

/* One call on a fresh connection; returns the parsed reply. */
static struct json_object *call_on(const char *socket, const char *msg) {
        _cleanup_close_ int fd = test_connect(socket);
        _cleanup_free_ char *reply = NULL;

        assert_true(fd >= 0);
        reply = test_call(fd, msg);
        return parse(reply);
}

static struct json_object *call(const char *msg) {
        return call_on(daemon_default.socket, msg);
}

static const char *error_of(struct json_object *reply) {
        struct json_object *e;

        return json_object_object_get_ex(reply, "error", &e) ? json_object_get_string(e) : NULL;
}

static struct json_object *params_of(struct json_object *reply) {
        struct json_object *p;

        assert_true(json_object_object_get_ex(reply, "parameters", &p));
        return p;
}

static struct json_object *get(struct json_object *o, const char *key) {
        struct json_object *v = NULL;

        assert_true(json_object_object_get_ex(o, key, &v));
        return v;
}

static const char *get_str(struct json_object *o, const char *key) {
        return json_object_get_string(get(o, key));
}

static uint64_t get_hex(struct json_object *o, const char *key) {
        uint64_t v;

        assert_int_equal(parse_u64(get_str(o, key), &v), 0);
        return v;
}

static void assert_error(struct json_object *reply, const char *error) {
        const char *e = error_of(reply);

        if (!e || strcmp(e, error) != 0)
                fail_msg("expected %s, got %s", error, json_object_to_json_string(reply));
}

static void assert_invalid_parameter(const char *msg, const char *parameter) {
        _cleanup_json_ struct json_object *r = call(msg);

        assert_error(r, "org.varlink.service.InvalidParameter");
        assert_string_equal(get_str(params_of(r), "parameter"), parameter);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
        va_list ap;
        char *s;

        va_start(ap, f);
        assert_true(vasprintf(&s, f, ap) >= 0);
        va_end(ap);
        return s;
}

static uint64_t stat_start_time(pid_t pid) {
        uint64_t v = 0;

        assert_int_equal(test_proc_stat_field(pid, 22, &v), 0);
        return v;
}

/* ------------------------------------------------------------------ varlink basics */

static void test_get_info(void **state) {
        static const char *const forms[] = {
                "{\"method\":\"org.varlink.service.GetInfo\"}",
                "{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":null}",
                "{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":{}}",
        };

        for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
                _cleanup_json_ struct json_object *r = call(forms[i]);
                struct json_object *ifaces = get(params_of(r), "interfaces");
                bool found = false;

                assert_null(error_of(r));
                assert_string_equal(get_str(params_of(r), "product"), "memmapd");
                for (size_t k = 0; k < json_object_array_length(ifaces); k++)
                        found |= strcmp(json_object_get_string(json_object_array_get_idx(ifaces, k)), "io.memmapd") == 0;
                assert_true(found);
        }
}

static void test_interface_description(void **state) {
        _cleanup_json_ struct json_object *a = call(
                "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"io.memmapd\"}}");
        _cleanup_json_ struct json_object *b = call(
                "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"org.varlink.service\"}}");
        _cleanup_json_ struct json_object *c = call(
                "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"com.example.nope\"}}");
        const char *desc;

        assert_null(error_of(a));
        desc = get_str(params_of(a), "description");
        assert_non_null(strstr(desc, "\ninterface io.memmapd\n"));
        assert_non_null(strstr(desc, "method Lookup("));
        assert_non_null(strstr(desc, "error ProcessChanged"));
        assert_non_null(strstr(get_str(params_of(b), "description"), "interface org.varlink.service"));
        assert_error(c, "org.varlink.service.InterfaceNotFound");
        assert_string_equal(get_str(params_of(c), "interface"), "com.example.nope");
}

/* What GetInterfaceDescription serves must parse with an independent Varlink implementation. */
static void test_interface_parses_elsewhere(void **state) {
        static const char *const ifaces[] = { "io.memmapd", "org.varlink.service" };
        _cleanup_free_ char *probe = test_run_capture("command -v varlink-go-interface-generator");

        if (!probe) {
                printf("[  SKIPPED ] varlink-go-interface-generator (Debian package varlink-go) is not installed\n");
                skip();
        }
        for (size_t i = 0; i < ELEMENTSOF(ifaces); i++) {
                _cleanup_free_ char *msg = fmt("{\"method\":\"org.varlink.service.GetInterfaceDescription\","
                                               "\"parameters\":{\"interface\":\"%s\"}}", ifaces[i]);
                _cleanup_json_ struct json_object *r = call(msg);
                char dir[] = "/tmp/memmapd-idl-XXXXXX";
                _cleanup_free_ char *path = NULL, *cmd = NULL, *out = NULL;
                FILE *f;

                assert_non_null(mkdtemp(dir));
                path = fmt("%s/%s.varlink", dir, ifaces[i]);
                assert_non_null(f = fopen(path, "we"));
                fputs(get_str(params_of(r), "description"), f);
                assert_int_equal(fclose(f), 0);
                cmd = fmt("cd %s && varlink-go-interface-generator %s.varlink >/dev/null 2>&1 && echo ok; rm -f %s/*; rmdir %s",
                          dir, ifaces[i], dir, dir);
                out = test_run_capture(cmd);
                assert_non_null(out);
                if (strncmp(out, "ok", 2) != 0)
                        fail_msg("%s does not parse with varlink-go", ifaces[i]);
        }
}

static void test_errors(void **state) {
        struct fixture f;
        pid_t dead;

        {
                _cleanup_json_ struct json_object *r = call("{\"method\":\"io.memmapd.Nope\"}");
                assert_error(r, "org.varlink.service.MethodNotFound");
                assert_string_equal(get_str(params_of(r), "method"), "io.memmapd.Nope");
        }
        {
                _cleanup_json_ struct json_object *r = call("{\"method\":\"com.example.Thing.Do\"}");
                assert_error(r, "org.varlink.service.InterfaceNotFound");
        }
        assert_invalid_parameter("{\"method\":\"io.memmapd.ListMappings\"}", "pid");
        assert_invalid_parameter("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":\"1\"}}", "pid");
        assert_invalid_parameter("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":-5}}", "pid");
        assert_invalid_parameter("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":1.5}}", "pid");
        assert_invalid_parameter("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":1,\"uid\":0}}", "uid");
        assert_invalid_parameter("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":1,\"build_ids\":1}}",
                                 "build_ids");
        assert_invalid_parameter("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":[1]}", "parameters");
        assert_invalid_parameter("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":1}}", "addresses");
        assert_invalid_parameter("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":1,\"addresses\":\"0x1\"}}",
                                 "addresses");
        assert_invalid_parameter(
                "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":1,\"addresses\":[\"0x1\",\"zz\"]}}", "addresses");
        assert_invalid_parameter(
                "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":1,\"addresses\":[\"0x10000000000000000\"]}}",
                "addresses");
        assert_invalid_parameter("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":1,\"addresses\":[-1]}}",
                                 "addresses");
        assert_invalid_parameter("{\"method\":\"io.memmapd.GetStatus\",\"parameters\":{\"x\":1}}", "x");

        assert_int_equal(fixture_start(0, 0, &f), 0);
        dead = f.pid;
        fixture_stop(&f);
        {
                _cleanup_free_ char *m = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d}}", dead);
                _cleanup_json_ struct json_object *r = call(m);

                assert_error(r, "io.memmapd.NoSuchProcess");
                assert_int_equal(json_object_get_int(get(params_of(r), "pid")), dead);
        }
}

/* ------------------------------------------------------------------ listings and lookups */

struct maps_line {
        uint64_t start, end, offset, inode;
        char perms[5], dev[16];
        char *name;
};

/* An independent reading of /proc/PID/maps to hold the daemon's answers against. */
static size_t read_proc_maps(pid_t pid, struct maps_line **ret) {
        _cleanup_free_ char *path = fmt("/proc/%d/maps", (int) pid);
        struct maps_line *v = NULL;
        size_t n = 0, cap = 0;
        char *line = NULL;
        size_t lsz = 0;
        FILE *f = fopen(path, "re");

        assert_non_null(f);
        while (getline(&line, &lsz, f) > 0) {
                struct maps_line m = {};
                int consumed = 0;
                char *name;

                line[strcspn(line, "\n")] = 0;
                assert_int_equal(sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %15s %" SCNu64 "%n", &m.start,
                                        &m.end, m.perms, &m.offset, m.dev, &m.inode, &consumed), 6);
                name = line + consumed;
                name += strspn(name, " ");
                /* The kernel writes a newline in a name as \012. */
                m.name = *name ? strdup(name) : NULL;
                for (char *p; m.name && (p = strstr(m.name, "\\012"));) {
                        *p = '\n';
                        memmove(p + 1, p + 4, strlen(p + 4) + 1);
                }
                if (n == cap)
                        assert_non_null(v = realloc(v, (cap = cap ? 2 * cap : 256) * sizeof(*v)));
                v[n++] = m;
        }
        free(line);
        fclose(f);
        *ret = v;
        return n;
}

static void free_proc_maps(struct maps_line *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i].name);
        free(v);
}

static void assert_matches_proc(struct json_object *mappings, struct maps_line *want, size_t n) {
        assert_int_equal(json_object_array_length(mappings), n);
        for (size_t i = 0; i < n; i++) {
                struct json_object *m = json_object_array_get_idx(mappings, i), *name;

                assert_int_equal(get_hex(m, "start"), want[i].start);
                assert_int_equal(get_hex(m, "end"), want[i].end);
                assert_string_equal(get_str(m, "perms"), want[i].perms);
                assert_int_equal(get_hex(m, "offset"), want[i].offset);
                assert_string_equal(get_str(m, "dev"), want[i].dev);
                assert_int_equal(json_object_get_uint64(get(m, "inode")), want[i].inode);
                if (want[i].name)
                        assert_string_equal(get_str(m, "name"), want[i].name);
                else
                        assert_false(json_object_object_get_ex(m, "name", &name));
        }
}

/* The messages of one call that asked for "more", up to the one without "continues". */
static struct json_object *streamed_call(int fd, const char *msg) {
        struct json_object *all = json_object_new_array();

        assert_int_equal(test_send(fd, msg), 0);
        for (;;) {
                _cleanup_free_ char *reply = test_recv(fd);
                struct json_object *r = parse(reply), *c;
                bool more = json_object_object_get_ex(r, "continues", &c) && json_object_get_boolean(c);

                json_object_array_add(all, r);
                if (!more)
                        return all;
                /* Only successful parts continue: an error ends the call. */
                assert_null(error_of(r));
        }
}

/* A streamed listing: in parts of at most 1,024 mappings, every one about the same process,
 * together the same as the listing in one message. */
static void check_streamed_listing(const char *socket, pid_t pid, struct json_object *whole) {
        _cleanup_close_ int fd = test_connect(socket);
        _cleanup_free_ char *msg =
                fmt("{\"method\":\"io.memmapd.ListMappings\",\"more\":true,\"parameters\":{\"pid\":%d,\"build_ids\":true}}", pid);
        _cleanup_json_ struct json_object *parts = NULL;
        struct json_object *want = get(params_of(whole), "mappings");
        size_t n = json_object_array_length(want), at = 0, n_parts;

        assert_true(fd >= 0);
        parts = streamed_call(fd, msg);
        n_parts = json_object_array_length(parts);
        assert_int_equal(n_parts, (n + 1023) / 1024);
        for (size_t i = 0; i < n_parts; i++) {
                struct json_object *r = json_object_array_get_idx(parts, i), *c;
                struct json_object *ms = get(params_of(r), "mappings");

                assert_null(error_of(r));
                assert_int_equal(json_object_object_get_ex(r, "continues", &c), i + 1 < n_parts);
                assert_true(json_object_equal(get(params_of(r), "process"), get(params_of(whole), "process")));
                assert_true(json_object_array_length(ms) <= 1024);
                for (size_t k = 0; k < json_object_array_length(ms); k++, at++)
                        assert_string_equal(json_object_to_json_string(json_object_array_get_idx(ms, k)),
                                            json_object_to_json_string(json_object_array_get_idx(want, at)));
        }
        assert_int_equal(at, n);
        /* The connection carries the next call as before. */
        {
                _cleanup_free_ char *reply = test_call(fd, "{\"method\":\"io.memmapd.GetStatus\"}");
                _cleanup_json_ struct json_object *r = parse(reply);

                assert_null(error_of(r));
        }
}

static void check_list_matches_proc(const char *socket) {
        _cleanup_json_ struct json_object *r = NULL;
        _cleanup_free_ char *msg = NULL;
        struct maps_line *want;
        struct fixture f;
        size_t n;

        assert_int_equal(fixture_start(3000, 1, &f), 0);
        msg = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,\"build_ids\":true}}", f.pid);
        r = call_on(socket, msg);
        assert_null(error_of(r));
        n = read_proc_maps(f.pid, &want);
        assert_true(n > 3000);
        assert_matches_proc(get(params_of(r), "mappings"), want, n);
        assert_int_equal(json_object_get_int(get(get(params_of(r), "process"), "pid")), f.pid);
        assert_int_equal(json_object_get_uint64(get(get(params_of(r), "process"), "start_time")), stat_start_time(f.pid));
        check_streamed_listing(socket, f.pid, r);
        free_proc_maps(want, n);
        fixture_stop(&f);
}

/* ------------------------------------------------------------------ every field vs the kernel */

/* The kind the raw name in /proc/PID/maps says, decided here without the daemon's parser. */
static const char *kind_of_raw_name(const char *name, uint64_t inode) {
        static const struct {
                const char *prefix, *kind;
        } brackets[] = {
                { "[heap]", "heap" },       { "[stack]", "stack" }, { "[stack:", "stack" },
                { "[vdso]", "vdso" },       { "[vvar]", "vvar" },   { "[vvar_vclock]", "vvar" },
                { "[vsyscall]", "vsyscall" }, { "[anon:", "anon_named" }, { "[anon_shmem:", "shmem_named" },
        };

        if (!name)
                return "anonymous";
        for (size_t i = 0; i < ELEMENTSOF(brackets); i++)
                if (strncmp(name, brackets[i].prefix, strlen(brackets[i].prefix)) == 0)
                        return brackets[i].kind;
        if (strncmp(name, "/memfd:", 7) == 0 && inode != 0)
                return "memfd";
        if (name[0] == '/' && inode != 0 && strcmp(name, "/dev/zero (deleted)") != 0 && strncmp(name, "/SYSV", 5) != 0)
                return "file";
        return "special";
}

/* KernelPageSize of the mapping at start in /proc/PID/smaps, in bytes; 0 when not found. */
static uint64_t smaps_page_size(const char *smaps, uint64_t start) {
        char head[40];
        const char *p;
        unsigned long kib;

        snprintf(head, sizeof(head), "%" PRIx64 "-", start);
        for (p = smaps; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, head, strlen(head)) == 0)
                        break;
        if (!p || !*p || !(p = strstr(p, "\nKernelPageSize:")) || sscanf(p, "\nKernelPageSize: %lu kB", &kib) != 1)
                return 0;
        return (uint64_t) kib * 1024;
}

static char *read_text_file(const char *path) {
        _cleanup_free_ char *cmd = fmt("cat '%s'", path);

        return test_run_capture(cmd);
}

/* Every field of a listing against independent truth: the raw text of /proc/PID/maps parsed
 * here (ranges, perms, offset, dev, inode, name, and from the name the kind), smaps'
 * KernelPageSize (page_size), /proc/PID/map_files (readlink for the path, the link count of
 * what it opens for deleted) and `readelf -n` on that file for build IDs. The target must
 * not change its maps meanwhile. page_size may be left out where the backend does not know
 * it (the text has none), unless required. Returns how many mappings had a build ID. */
/* The build ID `readelf -n` finds in the vdso image of pid (start..end), copied out of the
 * process into a file: 1, or 0 when it has none. */
static int vdso_build_id(pid_t pid, uint64_t start, uint64_t end, char *ret, size_t size) {
        _cleanup_free_ char *mem = fmt("/proc/%d/mem", (int) pid), *image = malloc(end - start);
        _cleanup_close_ int fd = -1, out = -1;
        char dump[] = "/tmp/memmapd-vdso-XXXXXX";
        int r;

        assert_non_null(image);
        assert_true((fd = open(mem, O_RDONLY | O_CLOEXEC)) >= 0);
        assert_int_equal(pread(fd, image, end - start, (off_t) start), (ssize_t) (end - start));
        assert_true((out = mkostemp(dump, O_CLOEXEC)) >= 0);
        assert_int_equal(write(out, image, end - start), (ssize_t) (end - start));
        r = test_readelf_build_id(dump, ret, size);
        unlink(dump);
        return r;
}

static size_t assert_matches_kernel(pid_t pid, struct json_object *mappings, bool page_size_required) {
        _cleanup_free_ char *smaps_path = fmt("/proc/%d/smaps", (int) pid);
        _cleanup_free_ char *smaps = read_text_file(smaps_path);
        struct maps_line *want;
        size_t n = read_proc_maps(pid, &want), with_id = 0;

        assert_non_null(smaps);
        assert_matches_proc(mappings, want, n);
        for (size_t i = 0; i < n; i++) {
                struct json_object *m = json_object_array_get_idx(mappings, i), *v;
                const char *kind = kind_of_raw_name(want[i].name, want[i].inode);
                uint64_t page = smaps_page_size(smaps, want[i].start);

                assert_string_equal(get_str(m, "kind"), kind);
                /* [vsyscall] is not a VMA: smaps has no page size for it. */
                if (strcmp(kind, "vsyscall") != 0 &&
                    (page_size_required || json_object_object_get_ex(m, "page_size", &v))) {
                        assert_true(page > 0);
                        assert_int_equal(json_object_get_uint64(get(m, "page_size")), page);
                }
                assert_false(json_object_object_get_ex(m, "name_hex", &v));
                if (strcmp(kind, "file") == 0 || strcmp(kind, "memfd") == 0) {
                        _cleanup_free_ char *mf = fmt("/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int) pid, want[i].start,
                                                      want[i].end);
                        char link[4096], id[256];
                        ssize_t len = readlink(mf, link, sizeof(link) - 1);
                        struct stat st;
                        bool deleted;

                        assert_true(len > 0);
                        link[len] = 0;
                        assert_int_equal(stat(mf, &st), 0);
                        assert_int_equal(st.st_ino, want[i].inode);
                        deleted = st.st_nlink == 0;
                        /* The kernel marks an unlinked file's path with " (deleted)". */
                        if (deleted) {
                                assert_true(len > 10 && strcmp(link + len - 10, " (deleted)") == 0);
                                link[len - 10] = 0;
                        }
                        assert_string_equal(get_str(m, "path"), link);
                        if (strcmp(kind, "file") == 0)
                                assert_int_equal(json_object_get_boolean(get(m, "deleted")), deleted);
                        else
                                assert_false(json_object_object_get_ex(m, "deleted", &v));
                        if (test_readelf_build_id(mf, id, sizeof(id))) {
                                assert_string_equal(get_str(m, "build_id"), id);
                                with_id++;
                        } else
                                assert_false(json_object_object_get_ex(m, "build_id", &v));
                } else {
                        assert_false(json_object_object_get_ex(m, "path", &v));
                        assert_false(json_object_object_get_ex(m, "deleted", &v));
                        if (strcmp(kind, "vdso") == 0) {
                                char id[256];

                                /* No file holds the vdso: its image, copied out of the
                                 * process, is what readelf reads. */
                                assert_true(vdso_build_id(pid, want[i].start, want[i].end, id, sizeof(id)));
                                assert_string_equal(get_str(m, "build_id"), id);
                                with_id++;
                        } else
                                assert_false(json_object_object_get_ex(m, "build_id", &v));
                }
        }
        free_proc_maps(want, n);
        return with_id;
}

static void check_list_matches_kernel(const char *socket) {
        _cleanup_json_ struct json_object *r = NULL;
        _cleanup_free_ char *msg = NULL;
        struct fixture f;
        size_t with_id;
        bool ioctl;

        {
                _cleanup_json_ struct json_object *st = call_on(socket, "{\"method\":\"io.memmapd.GetStatus\"}");

                /* PROCMAP_QUERY gives every VMA's page size. */
                ioctl = strcmp(get_str(params_of(st), "backend"), "maps") != 0;
        }
        assert_int_equal(fixture_start(100, 1, &f), 0);
        msg = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,\"build_ids\":true}}", f.pid);
        r = call_on(socket, msg);
        assert_null(error_of(r));
        with_id = assert_matches_kernel(f.pid, get(params_of(r), "mappings"), ioctl);
        printf("# %zu mappings match the kernel in every field, %zu with build IDs\n",
               json_object_array_length(get(params_of(r), "mappings")), with_id);
        /* The fixture binary and libc at least, each in several mappings. */
        assert_true(with_id >= 4);
        fixture_stop(&f);
}

static void test_list_matches_kernel(void **state) {
        check_list_matches_kernel(daemon_default.socket);
}

/* "more" where there is nothing to stream: one message, as without it. An error ends a
 * streamed call at once; a oneway call gets no parts either. */
static void test_streamed_edges(void **state) {
        _cleanup_close_ int fd = test_connect(daemon_default.socket);
        _cleanup_free_ char *msg = NULL, *reply = NULL;
        _cleanup_json_ struct json_object *parts = NULL, *r = NULL;
        struct fixture f;

        assert_true(fd >= 0);
        assert_int_equal(fixture_start(3000, 0, &f), 0);

        parts = streamed_call(fd, "{\"method\":\"io.memmapd.ListMappings\",\"more\":true,\"parameters\":{\"pid\":4194304}}");
        assert_int_equal(json_object_array_length(parts), 1);
        assert_error(json_object_array_get_idx(parts, 0), "io.memmapd.NoSuchProcess");
        json_object_put(parts);

        msg = fmt("{\"method\":\"io.memmapd.Lookup\",\"more\":true,\"parameters\":{\"pid\":%d,\"addresses\":[\"0x1\"]}}", f.pid);
        parts = streamed_call(fd, msg);
        assert_int_equal(json_object_array_length(parts), 1);
        assert_null(error_of(json_object_array_get_idx(parts, 0)));
        free(msg);

        /* Oneway: nothing comes back, the next call's reply is the next message. */
        msg = fmt("{\"method\":\"io.memmapd.ListMappings\",\"more\":true,\"oneway\":true,\"parameters\":{\"pid\":%d}}", f.pid);
        assert_int_equal(test_send(fd, msg), 0);
        reply = test_call(fd, "{\"method\":\"io.memmapd.GetStatus\"}");
        r = parse(reply);
        assert_null(error_of(r));
        assert_true(json_object_object_get_ex(params_of(r), "uptime_usec", NULL));
        fixture_stop(&f);
}

static void test_list_matches_proc(void **state) {
        check_list_matches_proc(daemon_default.socket);
}

/* Runs check against a daemon of its own with the maps backend. */
static void with_maps_backend(void (*check)(const char *socket)) {
        static const char *const args[] = { "--backend=maps", NULL };
        struct test_daemon d;

        assert_int_equal(test_daemon_start(args, &d), 0);
        {
                _cleanup_json_ struct json_object *r = call_on(d.socket, "{\"method\":\"io.memmapd.GetStatus\"}");
                assert_string_equal(get_str(params_of(r), "backend"), "maps");
        }
        check(d.socket);
        assert_int_equal(test_daemon_stop(&d), 0);
}

static void test_list_matches_proc_maps_backend(void **state) {
        with_maps_backend(check_list_matches_proc);
}

static void test_list_matches_kernel_maps_backend(void **state) {
        with_maps_backend(check_list_matches_kernel);
}

/* ------------------------------------------------------------------ what profilers meet (issue 12) */

static struct json_object *list_on(const char *socket, pid_t pid) {
        _cleanup_free_ char *m = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d}}", (int) pid);

        return call_on(socket, m);
}

static struct json_object *lookup_on(const char *socket, pid_t pid, uint64_t addr) {
        _cleanup_free_ char *m = fmt("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"addresses\":"
                                     "[\"0x%" PRIx64 "\"],\"build_ids\":true}}", (int) pid, addr);

        return call_on(socket, m);
}

static int memctl_run(const char *socket, const char *args, bool stderr_too, char **ret_out);

static struct json_object *process_of(struct json_object *reply) {
        if (error_of(reply))
                fail_msg("unexpected error: %s", json_object_to_json_string(reply));
        return get(params_of(reply), "process");
}

/* The name /proc/PID/maps prints for the mapping at start, read with stdio (malloc'd). */
static char *raw_name_at(pid_t pid, uint64_t start) {
        _cleanup_free_ char *path = fmt("/proc/%d/maps", (int) pid);
        char *line = NULL;
        size_t cap = 0;
        FILE *fp;

        assert_non_null(fp = fopen(path, "re"));
        while (getline(&line, &cap, fp) > 0)
                if (strtoull(line, NULL, 16) == start) {
                        char *slash = strchr(line, '/');

                        fclose(fp);
                        assert_non_null(slash);
                        slash[strcspn(slash, "\n")] = 0;
                        memmove(line, slash, strlen(slash) + 1);
                        return line;
                }
        fclose(fp);
        free(line);
        fail_msg("no mapping at 0x%" PRIx64 " in %s", start, path);
        return NULL;
}

/* What a kernel thread's replies say reaches libmemctl's caller and memctl's reader: the flag
 * of the process, and why each address has no mapping. */
static void check_kernel_thread_client(const char *socket) {
        static const uint64_t addrs[] = { 0x400000, 0x1000 };
        struct memctl_process p = MEMCTL_PROCESS_INIT;
        memctl_mappings *m = NULL;
        memctl_lookup_reply *l = NULL;
        memctl *c = NULL;
        union {
                struct memctl_lookup_result res;
                unsigned char bytes[sizeof(struct memctl_lookup_result)];
        } old;
        const size_t old_size = offsetof(struct memctl_lookup_result, elf_vaddr) + sizeof(uint64_t);

        assert_int_equal(memctl_connect(socket, &c), 0);
        assert_int_equal(memctl_list_mappings(c, 2, 0, MEMCTL_BUILD_IDS, &m), 0);
        assert_int_equal(memctl_mappings_count(m), 0);
        assert_int_equal(memctl_mappings_get_process_info(m, &p), 0);
        assert_int_equal(p.pid, 2);
        assert_int_equal(p.start_time, stat_start_time(2));
        assert_true(p.kernel_thread);
        memctl_mappings_free(m);

        assert_int_equal(memctl_lookup(c, 2, p.start_time, addrs, 2, MEMCTL_BUILD_IDS, &l), 0);
        p = (struct memctl_process) MEMCTL_PROCESS_INIT;
        assert_int_equal(memctl_lookup_reply_get_process_info(l, &p), 0);
        assert_true(p.kernel_thread);
        assert_int_equal(p.pid, 2);
        for (size_t i = 0; i < 2; i++) {
                struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;

                assert_int_equal(memctl_lookup_reply_get(l, i, &res), 0);
                assert_int_equal(res.address, addrs[i]);
                assert_int_equal(res.mapping, MEMCTL_NO_MAPPING);
                assert_int_equal(res.reason, MEMCTL_REASON_NO_ADDRESS_SPACE);
                assert_string_equal(res.reason_name, "no_address_space");
                assert_false(res.has_file_offset);
        }
        /* A caller built against libmemctl 0.2 gets the members it knows, nothing past them. */
        memset(old.bytes, 0xa5, sizeof(old.bytes));
        old.res.size = old_size;
        assert_int_equal(memctl_lookup_reply_get(l, 0, &old.res), 0);
        assert_int_equal(old.res.mapping, MEMCTL_NO_MAPPING);
        for (size_t i = old_size; i < sizeof(old.bytes); i++)
                assert_int_equal(old.bytes[i], 0xa5);
        memctl_lookup_reply_free(l);

        /* An ordinary process: no flag, and an address it does not map is just unmapped. */
        assert_int_equal(memctl_lookup(c, getpid(), 0, &addrs[1], 1, 0, &l), 0);
        {
                struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;

                p = (struct memctl_process) MEMCTL_PROCESS_INIT;
                assert_int_equal(memctl_lookup_reply_get_process_info(l, &p), 0);
                assert_false(p.kernel_thread);
                assert_int_equal(p.pid, getpid());
                assert_int_equal(memctl_lookup_reply_get(l, 0, &res), 0);
                assert_int_equal(res.mapping, MEMCTL_NO_MAPPING);
                assert_int_equal(res.reason, MEMCTL_REASON_UNMAPPED);
                assert_string_equal(res.reason_name, "unmapped");
        }
        memctl_lookup_reply_free(l);
        memctl_free(c);

        /* memctl: the table names the reason, --json says what the daemon's reply says, the
         * listing's footer says why it is empty, and the vdso it has not is an error. */
        {
                _cleanup_json_ struct json_object *want = lookup_on(socket, 2, 0x400000), *got = NULL;
                _cleanup_free_ char *table = NULL, *json = NULL, *maps = NULL, *vdso = NULL;

                assert_int_equal(memctl_run(socket, "lookup 2 0x400000", false, &table), 0);
                assert_non_null(strstr(table, "0x400000"));
                assert_non_null(strstr(table, " no_address_space\n"));
                assert_int_equal(memctl_run(socket, "--json=short lookup 2 0x400000", false, &json), 0);
                *strrchr(json, 'e') = 0; /* drop "exit=0" */
                got = parse(json);
                if (!json_object_equal(got, params_of(want)))
                        fail_msg("memctl printed %s, the daemon said %s", json, json_object_to_json_string(want));
                assert_int_equal(memctl_run(socket, "maps 2", false, &maps), 0);
                assert_non_null(strstr(maps, "\n0 mappings, 0B total (a kernel thread: no user address space)\n"));
                assert_int_equal(memctl_run(socket, "vdso 2", true, &vdso), 1);
                assert_non_null(strstr(vdso, "memctl: memmapd answered with error io.memmapd.NoVdso {"));
        }
}

static void check_profiler_processes(const char *socket) {
        struct fixture f;
        pid_t tid;
        uint64_t marker, deep, flags = 0;

        /* Item 2: a thread id answers for its process. Item 1: a path beyond PATH_MAX. */
        setenv("FIXTURE_THREADS", "2", 1);
        setenv("FIXTURE_DEEP", "1", 1);
        assert_int_equal(fixture_start(0, 1, &f), 0);
        unsetenv("FIXTURE_THREADS");
        unsetenv("FIXTURE_DEEP");
        tid = (pid_t) fixture_get(&f, "tid");
        marker = fixture_get(&f, "marker");
        deep = fixture_get(&f, "deep");
        assert_true(tid > 0 && tid != f.pid && deep != 0);
        {
                _cleanup_json_ struct json_object *by_tid = list_on(socket, tid), *by_pid = list_on(socket, f.pid);
                _cleanup_json_ struct json_object *lk = lookup_on(socket, tid, marker);
                _cleanup_json_ struct json_object *lk_deep = lookup_on(socket, f.pid, deep);
                _cleanup_free_ char *raw = raw_name_at(f.pid, deep);
                struct json_object *maps = get(params_of(by_tid), "mappings"), *res;
                bool seen_deep = false;

                assert_int_equal(json_object_get_int64(get(process_of(by_tid), "pid")), f.pid);
                assert_int_equal(json_object_get_uint64(get(process_of(by_tid), "start_time")), stat_start_time(f.pid));
                assert_int_equal(json_object_array_length(maps),
                                 json_object_array_length(get(params_of(by_pid), "mappings")));
                assert_int_equal(json_object_get_int64(get(process_of(lk), "pid")), f.pid);
                res = json_object_array_get_idx(get(params_of(lk), "results"), 0);
                assert_true(json_object_object_get_ex(res, "elf_vaddr", NULL));

                assert_true(strlen(raw) > 4096);
                for (size_t i = 0; i < json_object_array_length(maps); i++) {
                        struct json_object *m = json_object_array_get_idx(maps, i);

                        if (get_hex(m, "start") == deep) {
                                assert_string_equal(get_str(m, "name"), raw);
                                assert_string_equal(get_str(m, "path"), raw);
                                seen_deep = true;
                        }
                }
                assert_true(seen_deep);
                res = json_object_array_get_idx(get(params_of(lk_deep), "mappings"), 0);
                assert_string_equal(get_str(res, "name"), raw);
        }
        /* libmemctl takes the thread group's pid in the reply (it refused another pid). */
        {
                memctl *c = NULL;
                memctl_lookup_reply *l = NULL;
                pid_t got = 0;

                assert_int_equal(memctl_connect(socket, &c), 0);
                assert_int_equal(memctl_lookup(c, tid, 0, &marker, 1, 0, &l), 0);
                assert_int_equal(memctl_lookup_reply_get_process(l, &got, NULL), 0);
                assert_int_equal(got, f.pid);
                memctl_lookup_reply_free(l);
                memctl_free(c);
        }
        fixture_stop(&f);

        /* Item 3: a kernel thread (kthreadd) has no user address space, and says so. */
        assert_int_equal(test_proc_stat_field(2, 9, &flags), 0);
        assert_true(flags & 0x00200000);
        {
                _cleanup_json_ struct json_object *l = list_on(socket, 2), *lk = lookup_on(socket, 2, 0x400000);
                struct json_object *res;

                assert_true(json_object_get_boolean(get(process_of(l), "kernel_thread")));
                assert_int_equal(json_object_array_length(get(params_of(l), "mappings")), 0);
                assert_true(json_object_get_boolean(get(process_of(lk), "kernel_thread")));
                res = json_object_array_get_idx(get(params_of(lk), "results"), 0);
                assert_string_equal(get_str(res, "reason"), "no_address_space");
                assert_false(json_object_object_get_ex(res, "mapping", NULL));
        }
        /* ... which an ordinary process does not say. */
        {
                _cleanup_json_ struct json_object *l = list_on(socket, getpid());

                assert_false(json_object_object_get_ex(process_of(l), "kernel_thread", NULL));
        }
        check_kernel_thread_client(socket);
}

/* The name of a mapping as the kernel holds it, byte for byte: its /proc/PID/map_files link
 * (" (deleted)" appended for an unlinked file). */
static char *map_files_link(pid_t pid, uint64_t start, uint64_t end) {
        _cleanup_free_ char *mf = fmt("/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int) pid, start, end);
        char link[4096];
        ssize_t len = readlink(mf, link, sizeof(link) - 1);

        assert_true(len > 0);
        link[len] = 0;
        return strdup(link);
}

/* The bytes of s (malloc'd; freed here) in lowercase hex. */
static char *hex_of(char *s) {
        size_t len = strlen(s);
        char *hex = malloc(len * 2 + 1);

        assert_non_null(hex);
        for (size_t i = 0; i < len; i++)
                sprintf(hex + 2 * i, "%02x", (unsigned char) s[i]);
        hex[len * 2] = 0;
        free(s);
        return hex;
}

/* Names that are not UTF-8 (issue 18 item 7): the daemon sends them with U+FFFD for each
 * invalid byte and the bytes in name_hex; libmemctl gives both, and the exact path opens the
 * file; memctl shows the bytes escaped, and its --json says what the daemon said. */
static void check_not_utf8_names(const char *socket) {
        struct fixture f;
        memctl_mappings *m = NULL;
        memctl_lookup_reply *l = NULL;
        memctl *c = NULL;
        struct maps_line *want;
        size_t n, seen = 0;

        assert_int_equal(setenv("FIXTURE_NOT_UTF8", "1", 1), 0);
        assert_int_equal(fixture_start(0, 1, &f), 0);
        unsetenv("FIXTURE_NOT_UTF8");
        const uint64_t at[2] = { fixture_get(&f, "not_utf8"), fixture_get(&f, "not_utf8_deleted") };
        _cleanup_free_ char *lossy0 = fmt("%s/not-utf8-\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd.bin", f.dir);
        _cleanup_free_ char *lossy1 = fmt("%s/gone-\xef\xbf\xbd.bin", f.dir);
        const char *const lossy[2] = { lossy0, lossy1 };

        assert_int_equal(memctl_connect(socket, &c), 0);
        assert_int_equal(memctl_list_mappings(c, f.pid, 0, 0, &m), 0);
        n = read_proc_maps(f.pid, &want);
        assert_int_equal(memctl_mappings_count(m), n);
        for (size_t i = 0; i < n; i++) {
                struct memctl_mapping mp = MEMCTL_MAPPING_INIT;
                _cleanup_free_ char *link = NULL, *path = NULL;
                struct stat st;
                int k = want[i].start == at[0] ? 0 : want[i].start == at[1] ? 1 : -1;

                assert_int_equal(memctl_mappings_get(m, i, &mp), 0);
                assert_int_equal(mp.start, want[i].start);
                if (k < 0) {
                        /* UTF-8 names are exact as they are. */
                        if (mp.name)
                                assert_string_equal(mp.name_exact, mp.name);
                        else
                                assert_null(mp.name_exact);
                        if (mp.path)
                                assert_string_equal(mp.path_exact, mp.path);
                        continue;
                }
                seen++;
                link = map_files_link(f.pid, want[i].start, want[i].end);
                path = strdup(link);
                if (k == 1) {
                        assert_true(strlen(path) > 10 && strcmp(path + strlen(path) - 10, " (deleted)") == 0);
                        path[strlen(path) - 10] = 0;
                }
                assert_string_equal(mp.name_exact, link);
                assert_string_equal(mp.path_exact, path);
                assert_string_equal(mp.path, lossy[k]);
                assert_int_equal(strncmp(mp.name, lossy[k], strlen(lossy[k])), 0);
                assert_int_equal(mp.deleted, k == 1);
                if (k == 0) {
                        /* The exact path is the file; the one in JSON names none. */
                        assert_int_equal(stat(mp.path_exact, &st), 0);
                        assert_int_equal(st.st_ino, mp.inode);
                        assert_int_equal(stat(mp.path, &st), -1);
                        assert_int_equal(errno, ENOENT);
                }
        }
        assert_int_equal(seen, 2);
        free_proc_maps(want, n);
        memctl_mappings_free(m);

        /* A lookup's mappings alike. */
        assert_int_equal(memctl_lookup(c, f.pid, 0, at, 2, 0, &l), 0);
        for (size_t k = 0; k < 2; k++) {
                struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;
                struct memctl_mapping mp = MEMCTL_MAPPING_INIT;

                assert_int_equal(memctl_lookup_reply_get(l, k, &res), 0);
                assert_int_equal(memctl_lookup_reply_get_mapping(l, res.mapping, &mp), 0);
                assert_int_equal(strncmp(mp.path_exact, f.dir, strlen(f.dir)), 0);
                assert_string_equal(mp.path_exact + strlen(f.dir), k == 0 ? "/not-utf8-\xff\xe2\x82.bin" : "/gone-\xfe.bin");
                assert_int_equal(res.reason, MEMCTL_REASON_NONE);
                assert_null(res.reason_name);
        }
        memctl_lookup_reply_free(l);
        memctl_free(c);

        {
                _cleanup_free_ char *msg = fmt("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"addresses\":"
                                               "[\"0x%" PRIx64 "\",\"0x%" PRIx64 "\"],\"build_ids\":true}}",
                                               f.pid, at[0], at[1]);
                _cleanup_free_ char *args = fmt("--json=short lookup %d 0x%" PRIx64 " 0x%" PRIx64, f.pid, at[0], at[1]);
                _cleanup_free_ char *table_args = fmt("maps %d", f.pid), *json = NULL, *table = NULL;
                _cleanup_json_ struct json_object *reply = call_on(socket, msg), *got = NULL;

                assert_non_null(strstr(json_object_to_json_string(reply), "name_hex"));
                assert_int_equal(memctl_run(socket, args, false, &json), 0);
                *strrchr(json, 'e') = 0; /* drop "exit=0" */
                got = parse(json);
                if (!json_object_equal(got, params_of(reply)))
                        fail_msg("memctl printed %s, the daemon said %s", json, json_object_to_json_string(reply));
                assert_int_equal(memctl_run(socket, table_args, false, &table), 0);
                assert_non_null(strstr(table, "/not-utf8-\\377\\342\\202.bin\n"));
                assert_non_null(strstr(table, "/gone-\\376.bin (deleted)\n"));
        }
        /* memctl modules alike: the bytes escaped in its table, and in hex in its JSON. */
        if (fixture_get(&f, "not_utf8_exec") == 1) {
                _cleanup_free_ char *table_args = fmt("modules %d", f.pid), *json_args = fmt("--json modules %d", f.pid);
                _cleanup_free_ char *table = NULL, *json = NULL;
                _cleanup_json_ struct json_object *got = NULL;
                struct json_object *mods;
                size_t found = 0;

                assert_int_equal(memctl_run(socket, table_args, false, &table), 0);
                assert_non_null(strstr(table, "/not-utf8-\\377\\342\\202.bin\n"));
                assert_non_null(strstr(table, "/gone-\\376.bin (deleted)\n"));
                assert_int_equal(memctl_run(socket, json_args, false, &json), 0);
                *strrchr(json, 'e') = 0; /* drop "exit=0" */
                got = parse(json);
                mods = get(got, "modules");
                for (size_t i = 0; i < json_object_array_length(mods); i++) {
                        struct json_object *mod = json_object_array_get_idx(mods, i);
                        const char *path = get_str(mod, "path");
                        _cleanup_free_ char *hex0 = hex_of(fmt("%s/not-utf8-\xff\xe2\x82.bin", f.dir));
                        _cleanup_free_ char *hex1 = hex_of(fmt("%s/gone-\xfe.bin", f.dir));

                        if (strcmp(path, lossy0) != 0 && strcmp(path, lossy1) != 0) {
                                assert_false(json_object_object_get_ex(mod, "path_hex", NULL));
                                continue;
                        }
                        found++;
                        assert_string_equal(get_str(mod, "path_hex"), strcmp(path, lossy0) == 0 ? hex0 : hex1);
                }
                assert_int_equal(found, 2);
        } else
                printf("# the fixture's directory refuses executable mappings: memctl modules not checked here\n");
        fixture_stop(&f);
}

static void test_not_utf8_names(void **state) {
        check_not_utf8_names(daemon_default.socket);
}

static void test_not_utf8_names_maps_backend(void **state) {
        with_maps_backend(check_not_utf8_names);
}

static void test_profiler_processes(void **state) {
        check_profiler_processes(daemon_default.socket);
}

static void test_profiler_processes_maps_backend(void **state) {
        with_maps_backend(check_profiler_processes);
}

/* Item 8: any positive pid that names no process is NoSuchProcess, beyond pid_max too. */
static void test_pid_beyond_pid_max(void **state) {
        long pid_max = 0;
        FILE *fp = fopen("/proc/sys/kernel/pid_max", "re");

        assert_non_null(fp);
        assert_int_equal(fscanf(fp, "%ld", &pid_max), 1);
        fclose(fp);
        const int64_t pids[] = { pid_max, pid_max + 1, 4 * 1024 * 1024 + 1, INT32_MAX, (int64_t) INT32_MAX + 1,
                                 INT64_MAX };

        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                _cleanup_free_ char *l = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%" PRId64 "}}",
                                             pids[i]);
                _cleanup_free_ char *k = fmt("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%" PRId64
                                             ",\"addresses\":[\"0x1\"]}}", pids[i]);
                _cleanup_json_ struct json_object *rl = call(l), *rk = call(k);

                assert_error(rl, "io.memmapd.NoSuchProcess");
                assert_error(rk, "io.memmapd.NoSuchProcess");
                assert_int_equal(json_object_get_int64(get(params_of(rl), "pid")), pids[i]);
        }
}

static void test_lookup(void **state) {
        _cleanup_json_ struct json_object *r = NULL;
        _cleanup_free_ char *msg = NULL;
        struct json_object *p, *results, *mappings, *res, *m;
        uint64_t marker, want_vaddr;
        struct fixture f;

        assert_int_equal(fixture_start(0, 0, &f), 0);
        marker = fixture_get(&f, "marker");
        /* The same address as a hex string, a decimal string and a JSON integer. */
        msg = fmt("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"start_time\":%" PRIu64
                  ",\"build_ids\":true,\"addresses\":[\"0x%" PRIx64 "\",\"%" PRIu64 "\",%" PRIu64
                  ",\"0x1000\",\"0xffffffffff600000\"]}}",
                  f.pid, stat_start_time(f.pid), marker, marker, marker);
        r = call(msg);
        assert_null(error_of(r));
        p = params_of(r);
        results = get(p, "results");
        mappings = get(p, "mappings");
        assert_int_equal(json_object_array_length(results), 5);

        for (int i = 0; i < 3; i++) {
                res = json_object_array_get_idx(results, i);
                assert_int_equal(get_hex(res, "address"), marker);
                assert_int_equal(json_object_get_int(get(res, "mapping")), 0);
        }
        m = json_object_array_get_idx(mappings, 0);
        res = json_object_array_get_idx(results, 0);
        assert_string_equal(get_str(m, "kind"), "file");
        assert_non_null(strstr(get_str(m, "path"), "fixture-proc"));
        {
                char want_id[256];

                /* The binary's own note, as binutils reads it (a required test dependency). */
                assert_true(test_readelf_build_id(test_program("FIXTURE_PROC", "tests/fixture-proc"), want_id,
                                                  sizeof(want_id)));
                assert_string_equal(get_str(m, "build_id"), want_id);
        }
        assert_int_equal(get_hex(res, "file_offset"), marker - get_hex(m, "start") + get_hex(m, "offset"));
        want_vaddr = test_nm_symbol(test_program("FIXTURE_PROC", "tests/fixture-proc"), "fixture_marker_function", 0);
        assert_true(want_vaddr != 0);
        assert_int_equal(get_hex(res, "elf_vaddr"), want_vaddr);

        res = json_object_array_get_idx(results, 3);
        assert_string_equal(get_str(res, "reason"), "unmapped");
        assert_false(json_object_object_get_ex(res, "mapping", &m));

        /* Above 2^63: exact through JSON as a string. */
        res = json_object_array_get_idx(results, 4);
        assert_string_equal(get_str(res, "address"), "0xffffffffff600000");
        if (json_object_object_get_ex(res, "mapping", &m)) {
                m = json_object_array_get_idx(mappings, (size_t) json_object_get_int(m));
                assert_string_equal(get_str(m, "kind"), "vsyscall");
                assert_string_equal(get_str(m, "start"), "0xffffffffff600000");
        }
        /* Each distinct mapping once. */
        assert_int_equal(json_object_array_length(mappings), json_object_object_get_ex(res, "mapping", &m) ? 2 : 1);
        fixture_stop(&f);
}

static void test_process_changed(void **state) {
        _cleanup_free_ char *msg = NULL;
        struct fixture f;

        assert_int_equal(fixture_start(0, 0, &f), 0);
        msg = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,\"start_time\":%" PRIu64 "}}", f.pid,
                  stat_start_time(f.pid) + 1);
        {
                _cleanup_json_ struct json_object *r = call(msg);

                assert_error(r, "io.memmapd.ProcessChanged");
                assert_int_equal(json_object_get_int(get(params_of(r), "pid")), f.pid);
                assert_int_equal(json_object_get_uint64(get(params_of(r), "expected_start_time")),
                                 stat_start_time(f.pid) + 1);
                assert_false(json_object_object_get_ex(params_of(r), "mappings", NULL));
        }
        fixture_stop(&f);
}

/* ------------------------------------------------------------------ connection behaviour */

static void test_pipelined(void **state) {
        _cleanup_close_ int fd = test_connect(daemon_default.socket);
        _cleanup_free_ char *batch = NULL;
        struct fixture f;
        size_t len;

        assert_int_equal(fixture_start(2000, 0, &f), 0);
        /* A slow call between fast ones: replies still come in order, and a oneway call
         * gets none. */
        const char *msgs[] = {
                "{\"method\":\"org.varlink.service.GetInfo\"}",
                NULL,
                "{\"method\":\"io.memmapd.GetStatus\",\"oneway\":true}",
                "{\"method\":\"io.memmapd.GetStatus\"}",
        };
        _cleanup_free_ char *slow = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d}}", f.pid);
        msgs[1] = slow;
        len = 0;
        for (size_t i = 0; i < ELEMENTSOF(msgs); i++)
                len += strlen(msgs[i]) + 1;
        assert_non_null(batch = malloc(len));
        len = 0;
        for (size_t i = 0; i < ELEMENTSOF(msgs); i++) {
                memcpy(batch + len, msgs[i], strlen(msgs[i]) + 1);
                len += strlen(msgs[i]) + 1;
        }
        assert_int_equal(send(fd, batch, len, MSG_NOSIGNAL), (ssize_t) len);

        {
                _cleanup_free_ char *a = test_recv(fd), *b = test_recv(fd), *c = test_recv(fd);
                _cleanup_json_ struct json_object *ra = parse(a), *rb = parse(b), *rc = parse(c);

                assert_true(json_object_object_get_ex(params_of(ra), "interfaces", NULL));
                assert_int_equal(json_object_array_length(get(params_of(rb), "mappings")) > 2000, 1);
                assert_true(json_object_object_get_ex(params_of(rc), "uptime_usec", NULL));
        }
        /* Nothing more was sent: the oneway call had no reply. */
        shutdown(fd, SHUT_WR);
        assert_null(test_recv(fd));
        fixture_stop(&f);
}

static void test_half_close(void **state) {
        _cleanup_close_ int fd = test_connect(daemon_default.socket);
        _cleanup_free_ char *reply = NULL;

        assert_int_equal(test_send(fd, "{\"method\":\"io.memmapd.GetStatus\"}"), 0);
        assert_int_equal(shutdown(fd, SHUT_WR), 0);
        reply = test_recv(fd);
        assert_non_null(reply);
        assert_non_null(strstr(reply, "\"backend\""));
        assert_null(test_recv(fd));
}

/* Integers no 64-bit type holds (json-c would clamp them) are invalid parameters, named in the
 * reply, on a connection that then goes on: the pid, an address and the start time, positive and
 * negative, with the other parameters those of a live process. */
static void test_huge_integers(void **state) {
        static const char *const huge[] = {
                "99999999999999999999999", "18446744073709551616", "-99999999999999999999999", "-9223372036854775809",
        };
        _cleanup_close_ int fd = test_connect(daemon_default.socket);
        struct fixture f;

        assert_true(fd >= 0);
        assert_int_equal(fixture_start(0, 0, &f), 0);
        uint64_t marker = fixture_get(&f, "marker"), start_time = stat_start_time(f.pid);

        for (size_t i = 0; i < ELEMENTSOF(huge); i++) {
                _cleanup_free_ char *pid = fmt("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%s,"
                                               "\"addresses\":[\"0x1\"]}}", huge[i]);
                _cleanup_free_ char *list_pid = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{"
                                                    "\"pid\":%s}}", huge[i]);
                _cleanup_free_ char *addr = fmt("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,"
                                                "\"addresses\":[\"0x%" PRIx64 "\",%s]}}", f.pid, marker, huge[i]);
                _cleanup_free_ char *st = fmt("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,"
                                              "\"addresses\":[\"0x%" PRIx64 "\"],\"start_time\":%s}}", f.pid, marker,
                                              huge[i]);
                _cleanup_free_ char *list_st = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{"
                                                   "\"pid\":%d,\"start_time\":%s}}", f.pid, huge[i]);
                const struct {
                        const char *msg, *parameter;
                } cases[] = {
                        { pid, "pid" }, { list_pid, "pid" }, { addr, "addresses" }, { st, "start_time" },
                        { list_st, "start_time" },
                };

                for (size_t k = 0; k < ELEMENTSOF(cases); k++) {
                        _cleanup_free_ char *reply = test_call(fd, cases[k].msg);
                        if (!reply)
                                fail_msg("'%s': the connection closed without a reply", cases[k].msg);
                        _cleanup_json_ struct json_object *r = parse(reply);

                        assert_error(r, "org.varlink.service.InvalidParameter");
                        assert_string_equal(get_str(params_of(r), "parameter"), cases[k].parameter);
                }
        }

        /* The same connection still answers, with the right start time. */
        _cleanup_free_ char *good = fmt("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,"
                                        "\"addresses\":[\"0x%" PRIx64 "\"],\"start_time\":%" PRIu64 "}}", f.pid,
                                        marker, start_time);
        _cleanup_free_ char *reply = test_call(fd, good);
        assert_non_null(reply);
        _cleanup_json_ struct json_object *r = parse(reply);
        assert_null(error_of(r));
        fixture_stop(&f);
}

static void test_malformed_closes(void **state) {
        static const char *const bad[] = {
                "not json", "[1,2]", "\"str\"", "42", "{}", "{\"method\":7}", "{\"method\":\"nodot\"}",
                "{\"method\":\"io.memmapd.GetStatus\"} trailing", "{\"method\":\"io.memmapd.GetStatus\"",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_close_ int fd = test_connect(daemon_default.socket);
                _cleanup_free_ char *reply = NULL;

                assert_int_equal(test_send(fd, bad[i]), 0);
                reply = test_recv(fd);
                if (reply)
                        fail_msg("'%s' got a reply: %s", bad[i], reply);
        }
        /* Deep nesting is refused too. */
        {
                _cleanup_close_ int fd = test_connect(daemon_default.socket);
                char deep[600];
                size_t n = 0;

                n += (size_t) sprintf(deep, "{\"method\":\"io.memmapd.GetStatus\",\"parameters\":{\"x\":");
                for (int i = 0; i < 100; i++)
                        deep[n++] = '[';
                for (int i = 0; i < 100; i++)
                        deep[n++] = ']';
                strcpy(deep + n, "}}");
                assert_int_equal(test_send(fd, deep), 0);
                assert_null(test_recv(fd));
        }
        /* The daemon is still fine. */
        _cleanup_json_ struct json_object *r = call("{\"method\":\"io.memmapd.GetStatus\"}");
        assert_null(error_of(r));
}

static void test_disconnect_mid_reply(void **state) {
        _cleanup_free_ char *msg = NULL;
        struct fixture f;

        assert_int_equal(fixture_start(20000, 0, &f), 0);
        msg = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,\"build_ids\":true}}", f.pid);
        for (int i = 0; i < 20; i++) {
                int fd = test_connect(daemon_default.socket);
                char buf[100];

                assert_true(fd >= 0);
                assert_int_equal(test_send(fd, msg), 0);
                if (i % 2)
                        assert_true(recv(fd, buf, sizeof(buf), 0) > 0); /* the reply has started */
                close(fd);
        }
        fixture_stop(&f);
        _cleanup_json_ struct json_object *r = call("{\"method\":\"io.memmapd.GetStatus\"}");
        assert_null(error_of(r));
        assert_int_equal(kill(daemon_default.pid, 0), 0);
}

/* A counter of the daemon's GetStatus (its own call included in "requests"). */
static uint64_t status_counter(const char *socket, const char *key) {
        _cleanup_json_ struct json_object *st = call_on(socket, "{\"method\":\"io.memmapd.GetStatus\"}");

        assert_null(error_of(st));
        return (uint64_t) json_object_get_int64(get(params_of(st), key));
}

/* Polls until the daemon has begun the call sent after `requests` was read (each poll is a
 * request too), with a guard that only catches hangs. */
static void wait_call_begun(const char *socket, uint64_t requests) {
        for (uint64_t n = 1;; n++) {
                if (status_counter(socket, "requests") >= requests + n + 1)
                        return;
                assert_true(n < 200000);
        }
}

static void test_limits(void **state) {
        static const char *const args[] = { "--set", "MaxMessageSize=1024", "--set=MaxAddresses=10",
                                            "--set=MaxOutputQueue=262144", NULL };
        struct test_daemon d;
        struct fixture f;

        assert_int_equal(test_daemon_start(args, &d), 0);
        assert_int_equal(fixture_start(30000, 0, &f), 0);
        {
                /* Some 5 MB in one message: above MaxOutputQueue. */
                _cleanup_free_ char *msg = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d}}", f.pid);
                _cleanup_json_ struct json_object *r = call_on(d.socket, msg);

                assert_error(r, "io.memmapd.LimitExceeded");
                assert_string_equal(get_str(params_of(r), "limit"), "max_output_queue");
        }
        {
                /* Streamed to a client that does not read: the daemon holds at most
                 * MaxOutputQueue and a part, then ends the call with the same error. */
                _cleanup_close_ int fd = test_connect(d.socket);
                _cleanup_free_ char *msg =
                        fmt("{\"method\":\"io.memmapd.ListMappings\",\"more\":true,\"parameters\":{\"pid\":%d}}", f.pid);
                size_t parts = 0, bytes = 0;
                unsigned long polls = 0;
                uint64_t errors = status_counter(d.socket, "errors");

                assert_int_equal(test_send(fd, msg), 0);
                /* Nothing read until the daemon has ended the call (an error it counts). */
                while (status_counter(d.socket, "errors") == errors)
                        assert_true(++polls < 200000);
                for (;;) {
                        _cleanup_free_ char *reply = test_recv(fd);
                        _cleanup_json_ struct json_object *r = parse(reply);

                        bytes += strlen(reply) + 1;
                        if (error_of(r)) {
                                assert_error(r, "io.memmapd.LimitExceeded");
                                assert_string_equal(get_str(params_of(r), "limit"), "max_output_queue");
                                break;
                        }
                        assert_true(json_object_object_get_ex(r, "continues", NULL));
                        parts++;
                }
                printf("# streamed to a client that did not read: %zu parts, %zu bytes, then LimitExceeded\n", parts,
                       bytes);
                assert_true(parts > 0);
                /* The queue bound, one part of at most 1,024 mappings, and what the socket
                 * buffers (some 200 KB each way here). */
                assert_true(bytes < 262144 + 1024 * 512 + 2 * 1024 * 1024);
        }
        fixture_stop(&f);
        {
                _cleanup_json_ struct json_object *r = call_on(
                        d.socket, "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":1,\"addresses\":"
                                  "[1,2,3,4,5,6,7,8,9,10,11]}}");
                assert_error(r, "io.memmapd.LimitExceeded");
                assert_string_equal(get_str(params_of(r), "limit"), "max_addresses");
                assert_int_equal(json_object_get_int(get(params_of(r), "max")), 10);
        }
        {
                _cleanup_json_ struct json_object *r = call_on(d.socket, "{\"method\":\"io.memmapd.GetStatus\"}");
                struct json_object *l = get(params_of(r), "limits");

                assert_int_equal(json_object_get_int(get(l, "max_message_size")), 1024);
                assert_int_equal(json_object_get_int(get(l, "max_addresses")), 10);
        }
        {
                /* 2000 bytes and no NUL: a clear error, then the connection closes. */
                _cleanup_close_ int fd = test_connect(d.socket);
                _cleanup_free_ char *reply = NULL;
                char big[2000];

                memset(big, ' ', sizeof(big));
                assert_int_equal(send(fd, big, sizeof(big), MSG_NOSIGNAL), (ssize_t) sizeof(big));
                reply = test_recv(fd);
                assert_non_null(reply);
                _cleanup_json_ struct json_object *r = parse(reply);
                assert_error(r, "io.memmapd.LimitExceeded");
                assert_string_equal(get_str(params_of(r), "limit"), "max_message_size");
                assert_null(test_recv(fd));
        }
        assert_int_equal(test_daemon_stop(&d), 0);
}

/* The target is killed while it is listed: a whole answer from before the exit, or
 * NoSuchProcess, never a truncated one. Streamed: parts, then the rest or NoSuchProcess, and
 * nothing after the end (the next reply is the next call's). The kill comes once the daemon
 * has begun the call (streamed: once its first part arrived), and rounds go on, each target
 * larger than the last while the listing won, until the exit met a listing in progress (a
 * NoSuchProcess after the call began; streamed, after parts): that path must have run. */
static void exit_while_listed(const char *socket, bool more, long n_vmas) {
        unsigned cut = 0, whole = 0, parts_before_cut = 0, rounds = 0;

        while (more ? parts_before_cut < 3 : cut < 3) {
                _cleanup_close_ int fd = test_connect(socket);
                _cleanup_free_ char *msg = NULL;
                size_t n = 0;
                struct fixture f;
                const char *e;

                assert_true(++rounds <= 200);
                assert_int_equal(fixture_start(n_vmas, 0, &f), 0);
                msg = fmt("{\"method\":\"io.memmapd.ListMappings\",%s\"parameters\":{\"pid\":%d}}",
                          more ? "\"more\":true," : "", f.pid);
                {
                        uint64_t requests = status_counter(socket, "requests");

                        assert_int_equal(test_send(fd, msg), 0);
                        if (!more)
                                wait_call_begun(socket, requests);
                }
                for (bool killed = false;;) {
                        _cleanup_free_ char *reply = NULL;
                        _cleanup_json_ struct json_object *r = NULL;
                        struct json_object *c;

                        if (!killed && !more) {
                                kill(f.pid, SIGKILL);
                                killed = true;
                        }
                        reply = test_recv(fd);
                        r = parse(reply);
                        e = error_of(r);
                        if (e) {
                                assert_string_equal(e, "io.memmapd.NoSuchProcess");
                                cut++;
                                parts_before_cut += n > 0;
                                break;
                        }
                        n += json_object_array_length(get(params_of(r), "mappings"));
                        if (!json_object_object_get_ex(r, "continues", &c))
                                break;
                        assert_true(more);
                        assert_true(json_object_get_boolean(c));
                        if (!killed) {
                                kill(f.pid, SIGKILL);
                                killed = true;
                        }
                }
                if (!e) {
                        assert_true(n > (size_t) n_vmas);
                        whole++;
                        /* The listing won the race: a longer one next time. */
                        n_vmas = MIN(n_vmas * 2, 60000L);
                }
                {
                        _cleanup_free_ char *reply = test_call(fd, "{\"method\":\"io.memmapd.GetStatus\"}");
                        _cleanup_json_ struct json_object *r = parse(reply);

                        assert_true(json_object_object_get_ex(params_of(r), "uptime_usec", NULL));
                }
                fixture_stop(&f);
        }
        printf("# exit while %s: %u rounds, %u whole, %u ended in NoSuchProcess (%u of them after parts), "
               "last target %ld mappings\n",
               more ? "streamed" : "listed", rounds, whole, cut, parts_before_cut, n_vmas);
}

static void test_exit_while_queried(void **state) {
        exit_while_listed(daemon_default.socket, false, 5000);
}

/* Only a listing read while it streams can meet the exit after its first part: with change
 * tracking, a listing streams from a layout read whole before the first part (always a whole
 * answer), so this path is driven with tracking off. */
static void test_exit_while_streamed(void **state) {
        static const char *const args[] = { "--tracking=none", NULL };
        struct test_daemon d;

        assert_int_equal(test_daemon_start(args, &d), 0);
        exit_while_listed(d.socket, true, 20000);
        assert_int_equal(test_daemon_stop(&d), 0);
}

static void test_sigterm_finishes_in_flight(void **state) {
        _cleanup_free_ char *msg = NULL, *reply = NULL;
        struct test_daemon d;
        struct fixture f;
        int fd;

        assert_int_equal(fixture_start(30000, 0, &f), 0);
        assert_int_equal(test_daemon_start(NULL, &d), 0);
        fd = test_connect(d.socket);
        msg = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d}}", f.pid);
        assert_int_equal(test_send(fd, msg), 0);
        /* SIGTERM once the daemon has begun the call: a call it never read is not in flight
         * (GetStatus counts itself, so n status calls and the listing make n + 1). */
        for (uint64_t n = 1;; n++) {
                _cleanup_json_ struct json_object *st = call_on(d.socket, "{\"method\":\"io.memmapd.GetStatus\"}");

                if ((uint64_t) json_object_get_int64(get(params_of(st), "requests")) >= n + 1)
                        break;
                assert_true(n < 100000);
        }
        kill(d.pid, SIGTERM);
        reply = test_recv(fd);
        assert_non_null(reply);
        _cleanup_json_ struct json_object *r = parse(reply);
        assert_null(error_of(r));
        assert_true(json_object_array_length(get(params_of(r), "mappings")) > 30000);
        close(fd);
        assert_int_equal(test_daemon_stop(&d), 0);
        /* It removed its socket file. */
        assert_int_equal(access(d.socket, F_OK), -1);
        fixture_stop(&f);
}

/* ------------------------------------------------------------------ libmemctl */

static void test_libmemctl(void **state) {
        struct memctl_mapping m = MEMCTL_MAPPING_INIT;
        struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;
        struct memctl_status_info info = MEMCTL_STATUS_INFO_INIT;
        memctl_mappings *maps = NULL;
        memctl_lookup_reply *lr = NULL;
        memctl_status *st = NULL;
        memctl *c = NULL;
        struct maps_line *want;
        struct fixture f;
        uint64_t addrs[2], start_time;
        pid_t pid;
        size_t n;

        assert_int_equal(fixture_start(100, 1, &f), 0);
        assert_int_equal(memctl_connect(daemon_default.socket, &c), 0);

        assert_int_equal(memctl_list_mappings(c, f.pid, 0, MEMCTL_BUILD_IDS, &maps), 0);
        n = read_proc_maps(f.pid, &want);
        assert_int_equal(memctl_mappings_count(maps), n);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(memctl_mappings_get(maps, i, &m), 0);
                assert_int_equal(m.start, want[i].start);
                assert_int_equal(m.end, want[i].end);
                if (want[i].name)
                        assert_string_equal(m.name, want[i].name);
        }
        free_proc_maps(want, n);
        assert_int_equal(memctl_mappings_get_process(maps, &pid, &start_time), 0);
        assert_int_equal(pid, f.pid);
        assert_int_equal(start_time, stat_start_time(f.pid));

        addrs[0] = fixture_get(&f, "marker");
        addrs[1] = 0x1000;
        assert_int_equal(memctl_lookup(c, f.pid, start_time, addrs, 2, MEMCTL_BUILD_IDS, &lr), 0);
        assert_int_equal(memctl_lookup_reply_count(lr), 2);
        assert_int_equal(memctl_lookup_reply_get(lr, 0, &res), 0);
        assert_int_equal(res.address, addrs[0]);
        assert_true(res.has_elf_vaddr);
        assert_int_equal(memctl_lookup_reply_get_mapping(lr, res.mapping, &m), 0);
        assert_non_null(strstr(m.path, "fixture-proc"));
        assert_non_null(m.build_id_hex);
        assert_int_equal(memctl_lookup_reply_get(lr, 1, &res), 0);
        assert_int_equal(res.mapping, MEMCTL_NO_MAPPING);

        assert_int_equal(memctl_lookup(c, f.pid, start_time + 1, addrs, 1, 0, &lr), -ESTALE);
        assert_string_equal(memctl_last_error_name(c), "io.memmapd.ProcessChanged");

        assert_int_equal(memctl_get_status(c, &st), 0);
        assert_int_equal(memctl_status_get_info(st, &info), 0);
        assert_string_equal(info.backend, "ioctl");
        assert_true(info.requests >= 2);

        memctl_lookup_reply_free(lr);
        memctl_mappings_free(maps);
        memctl_status_free(st);
        pid = f.pid;
        fixture_stop(&f);

        assert_int_equal(memctl_list_mappings(c, pid, 0, 0, &maps), -ESRCH);
        assert_string_equal(memctl_last_error_name(c), "io.memmapd.NoSuchProcess");
        memctl_free(c);
        assert_int_equal(memctl_connect("/nonexistent/memmapd.sock", &c), -ENOENT);
}

/* ------------------------------------------------------------------ memctl */

/* Runs memctl with args against the daemon at socket: its exit status; *ret_out (may be NULL)
 * gets its standard output (with standard error where stderr_too) and a last line "exit=N". */
static int memctl_run(const char *socket, const char *args, bool stderr_too, char **ret_out) {
        _cleanup_free_ char *cmd = fmt("%s --socket '%s' %s %s; echo \"exit=$?\"", test_program("MEMCTL", "client/memctl"),
                                       socket, args, stderr_too ? "2>&1" : "2>/dev/null");
        char *out = test_run_capture(cmd), *e;
        int code;

        assert_non_null(out);
        e = strrchr(out, '=');
        assert_non_null(e);
        code = atoi(e + 1);
        if (ret_out)
                *ret_out = out;
        else
                free(out);
        return code;
}

static int run_memctl(const char *args, char **ret_out) {
        return memctl_run(daemon_default.socket, args, false, ret_out);
}

/* memctl lookup PID with args, input (printf text) piped in: its output, standard error and
 * "exit=N" (malloc'd). */
static char *memctl_lookup_piped(const char *input, pid_t pid, const char *args) {
        _cleanup_free_ char *cmd = fmt("printf '%s' | %s --socket '%s' lookup %d%s 2>&1; echo \"exit=$?\"", input,
                                       test_program("MEMCTL", "client/memctl"), daemon_default.socket, (int) pid, args);
        char *out = test_run_capture(cmd);

        assert_non_null(out);
        return out;
}

static void test_memctl(void **state) {
        _cleanup_free_ char *out = NULL, *args = NULL, *json = NULL;
        struct fixture f;
        pid_t dead;

        assert_int_equal(fixture_start(0, 1, &f), 0);
        args = fmt("maps %d", f.pid);
        assert_int_equal(run_memctl(args, &out), 0);
        assert_non_null(strstr(out, "fixture-proc"));
        assert_non_null(strstr(out, "[stack]"));
        free(out);

        free(args);
        args = fmt("--json=short maps %d", f.pid);
        assert_int_equal(run_memctl(args, &json), 0);
        *strrchr(json, '\n') = 0;
        *strrchr(json, '\n') = 0;
        {
                _cleanup_json_ struct json_object *o = parse(json);
                struct maps_line *want;
                size_t n = read_proc_maps(f.pid, &want);

                assert_matches_proc(get(o, "mappings"), want, n);
                free_proc_maps(want, n);
        }

        free(args);
        args = fmt("lookup %d 0x%" PRIx64, f.pid, fixture_get(&f, "marker"));
        assert_int_equal(run_memctl(args, &out), 0);
        assert_non_null(strstr(out, "fixture-proc"));
        free(out);
        out = NULL;

        /* A stack dump piped in: one address per line, blank lines skipped. */
        free(args);
        args = fmt("0x%" PRIx64 "\\n\\n0x1000\\n", fixture_get(&f, "marker"));
        out = memctl_lookup_piped(args, f.pid, "");
        assert_non_null(strstr(out, "fixture-proc"));
        assert_non_null(strstr(out, "0x1000"));
        assert_non_null(strstr(out, "exit=0"));
        free(out);
        out = memctl_lookup_piped("0x1000\\nbogus\\n", f.pid, "");
        /* Names the bad line and what is wrong with it (the output always holds some "2"). */
        assert_non_null(strstr(out, "standard input, line 2: invalid address 'bogus'"));
        assert_non_null(strstr(out, "exit=2"));
        free(out);
        out = NULL;

        free(args);
        args = fmt("modules %d", f.pid);
        assert_int_equal(run_memctl(args, &out), 0);
        assert_non_null(strstr(out, "libc"));
        {
                /* The vdso is a module, with the build ID readelf finds in its image. */
                struct maps_line *want;
                size_t n = read_proc_maps(f.pid, &want);
                char id[256] = "";

                for (size_t i = 0; i < n; i++)
                        if (want[i].name && strcmp(want[i].name, "[vdso]") == 0)
                                assert_true(vdso_build_id(f.pid, want[i].start, want[i].end, id, sizeof(id)));
                free_proc_maps(want, n);
                assert_true(strlen(id) >= 32);
                _cleanup_free_ char *line = fmt("%s [vdso]", id);
                assert_non_null(strstr(out, line));
        }

        free(args);
        args = fmt("--start-time=1 maps %d", f.pid);
        assert_int_equal(run_memctl(args, NULL), 6);

        dead = f.pid;
        fixture_stop(&f);
        free(args);
        args = fmt("maps %d", dead);
        assert_int_equal(run_memctl(args, NULL), 4);
        assert_int_equal(run_memctl("frobnicate", NULL), 2);
        assert_int_equal(run_memctl("maps", NULL), 2);

        free(args);
        args = fmt("%s --socket /nonexistent/sock status >/dev/null 2>&1; echo $?", test_program("MEMCTL", "client/memctl"));
        free(out);
        out = test_run_capture(args);
        assert_non_null(out);
        assert_int_equal(atoi(out), 3);
}

/* How often needle occurs in out. */
static size_t count_lines(const char *out, const char *needle) {
        size_t n = 0;

        for (const char *p = out; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* memctl's usage errors: each named on standard error, exit status 2, nothing done. */
static void test_memctl_usage(void **state) {
        static const struct {
                const char *args, *want;
        } cases[] = {
                { "--json=bogus status", "memctl: invalid --json mode 'bogus' (expected pretty or short)" },
                { "--socket= status", "memctl: --socket needs a path" },
                { "--start-time=x maps 1", "memctl: invalid --start-time 'x' (expected clock ticks" },
                { "maps 1 --start-time", "memctl: option '--start-time' needs an argument" },
                { "-z status", "memctl: invalid option '-z' (see --help)" },
                { "--frobnicate status", "memctl: unknown option '--frobnicate' (see --help)" },
                { "", "memctl: missing command (see --help)" },
                { "lookup", "memctl: lookup takes a PID and addresses (see --help)" },
                { "cat 1", "memctl: cat takes a PID and an address (see --help)" },
                { "status now", "memctl: status takes no arguments" },
                { "vdso 1 2", "memctl: vdso takes one PID (see --help)" },
                { "--exec-only lookup 1 0x1", "memctl: --exec-only and --files-only apply to maps only" },
                { "--files-only modules 1", "memctl: --exec-only and --files-only apply to maps only" },
                { "--no-build-ids status", "memctl: --build-ids and --no-build-ids apply to maps, lookup and lookup-many only" },
                { "--start-time=5 status", "memctl: --start-time does not apply to status" },
                { "--symbols maps 1", "memctl: --symbols applies to lookup only" },
                { "--symbols lookup-many 1:0x1000", "memctl: --symbols applies to lookup only" },
                { "--build-id=00 maps 1", "memctl: --build-id and --deleted-only apply to who only" },
                { "--deleted-only lookup 1 0x1", "memctl: --build-id and --deleted-only apply to who only" },
                { "maps 0x10", "memctl: invalid PID: '0x10'" },
                { "maps 2147483648", "memctl: invalid PID: '2147483648'" },
                { "cat 1 zz", "memctl: invalid address 'zz' (expected 0x... or decimal)" },
                { "lookup 1 0x1 zz", "memctl: invalid address 'zz' (expected 0x... or decimal)" },
                /* These connect first: the daemon is reachable, the command refuses. */
                { "--json vdso 1", "memctl: vdso writes the image itself: --json does not apply" },
                { "--json=short cat 1 0x1000", "memctl: cat writes the file itself: --json does not apply" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *out = NULL;
                int code = memctl_run(daemon_default.socket, cases[i].args, true, &out);

                if (code != 2 || !strstr(out, cases[i].want))
                        fail_msg("memctl %s: exit %d, printed '%s', not '%s'", cases[i].args, code, out, cases[i].want);
        }

        /* --help and --version answer on standard output, and do nothing else. */
        {
                _cleanup_free_ char *help = NULL, *version = NULL;

                assert_int_equal(memctl_run(daemon_default.socket, "--help", false, &help), 0);
                assert_non_null(strstr(help, "memctl [OPTIONS] COMMAND ..."));
                assert_non_null(strstr(help, "  lookup PID [ADDR...]  Resolve addresses"));
                assert_non_null(strstr(help, "  6  process changed"));
                assert_int_equal(memctl_run(daemon_default.socket, "--version status", false, &version), 0);
                assert_string_equal(version, "memctl " MEMMAPD_VERSION "\nexit=0\n");
        }
}

/* memctl's commands and options against the real daemon, held against /proc and readelf. */
static void test_memctl_commands(void **state) {
        _cleanup_free_ char *exe = NULL, *build_id = NULL, *args = NULL, *out = NULL;
        struct maps_line *want;
        struct fixture f;
        size_t n, n_exec = 0, n_files = 0;
        uint64_t exe_start = UINT64_MAX, exe_end = 0, stack = 0;
        char id[256] = "";

        assert_int_equal(fixture_start(0, 1, &f), 0);
        n = read_proc_maps(f.pid, &want);
        for (size_t i = 0; i < n; i++) {
                const char *kind = kind_of_raw_name(want[i].name, want[i].inode);

                n_exec += want[i].perms[2] == 'x';
                n_files += strcmp(kind, "file") == 0 || strcmp(kind, "memfd") == 0;
                if (strcmp(kind, "stack") == 0)
                        stack = want[i].start;
                if (want[i].name && strstr(want[i].name, "/fixture-proc") && !strstr(want[i].name, " (deleted)")) {
                        if (!exe)
                                exe = strdup(want[i].name);
                        exe_start = MIN(exe_start, want[i].start);
                        exe_end = MAX(exe_end, want[i].end);
                }
        }
        free_proc_maps(want, n);
        assert_non_null(exe);
        assert_true(stack > 0);
        assert_true(test_readelf_build_id(exe, id, sizeof(id)));
        assert_true(strlen(id) > 12);

        /* --exec-only and --files-only list what /proc says is executable or a file; without a
         * legend there is no header and no footer. */
        args = fmt("--exec-only --no-legend --no-build-ids maps %d", f.pid);
        assert_int_equal(run_memctl(args, &out), 0);
        assert_int_equal(count_lines(out, "\n"), n_exec + 1);
        assert_null(strstr(out, "START-END"));
        assert_null(strstr(out, "mappings,"));
        for (const char *p = out; *p && strncmp(p, "exit=", 5) != 0; p = strchr(p, '\n') + 1) {
                const char *perms = strchr(p, ' ');

                /* "START-END PERMS ...": padded, then the permissions */
                perms += strspn(perms, " ");
                assert_int_equal(perms[2], 'x');
        }
        free(out);
        free(args);
        args = fmt("--files-only --no-legend maps %d", f.pid);
        assert_int_equal(run_memctl(args, &out), 0);
        assert_int_equal(count_lines(out, "\n"), n_files + 1);
        free(out);

        /* Build IDs: shortened in tables, whole with --full. */
        free(args);
        args = fmt("maps %d", f.pid);
        assert_int_equal(run_memctl(args, &out), 0);
        assert_null(strstr(out, id));
        build_id = strndup(id, 12);
        assert_non_null(strstr(out, build_id));
        free(out);
        free(args);
        args = fmt("-l maps %d", f.pid);
        assert_int_equal(run_memctl(args, &out), 0);
        assert_non_null(strstr(out, id));
        free(out);

        /* modules --json: the executable's load range and build ID as /proc and readelf say. */
        free(args);
        args = fmt("--json modules %d", f.pid);
        assert_int_equal(run_memctl(args, &out), 0);
        *strrchr(out, 'e') = 0; /* drop "exit=0" */
        {
                _cleanup_json_ struct json_object *o = parse(out);
                struct json_object *mods = get(o, "modules");
                bool seen = false, vdso = false;

                assert_int_equal(json_object_get_int(get(get(o, "process"), "pid")), f.pid);
                for (size_t i = 0; i < json_object_array_length(mods); i++) {
                        struct json_object *m = json_object_array_get_idx(mods, i);

                        if (strcmp(get_str(m, "path"), "[vdso]") == 0)
                                vdso = strlen(get_str(m, "build_id")) >= 32;
                        if (strcmp(get_str(m, "path"), exe) != 0)
                                continue;
                        seen = true;
                        assert_int_equal(get_hex(m, "start"), exe_start);
                        assert_int_equal(get_hex(m, "end"), exe_end);
                        assert_string_equal(get_str(m, "build_id"), id);
                        assert_false(json_object_get_boolean(get(m, "deleted")));
                }
                assert_true(seen);
                assert_true(vdso);
        }
        free(out);

        /* Addresses from the command line and, after "-", from standard input. */
        free(args);
        args = fmt("0x%" PRIx64 "\\n", fixture_get(&f, "marker"));
        out = memctl_lookup_piped(args, f.pid, " 0x1000 -");
        assert_non_null(strstr(out, "\n0x1000 "));
        assert_non_null(strstr(out, " unmapped\n"));
        assert_non_null(strstr(out, exe));
        assert_non_null(strstr(out, "exit=0"));
        free(out);

        /* What the daemon refuses, in words, with its error and parameters. */
        free(args);
        args = fmt("cat %d 0x1000", f.pid);
        assert_int_equal(memctl_run(daemon_default.socket, args, true, &out), 1);
        {
                _cleanup_free_ char *line = fmt("memctl: nothing is mapped there in process %d (io.memmapd.NotMapped {", f.pid);

                assert_non_null(strstr(out, line));
        }
        free(out);
        free(args);
        args = fmt("cat %d 0x%" PRIx64, f.pid, stack);
        assert_int_equal(memctl_run(daemon_default.socket, args, true, &out), 1);
        {
                _cleanup_free_ char *line = fmt("memctl: the mapping there in process %d has no file (io.memmapd.NoFile {", f.pid);

                assert_non_null(strstr(out, line));
        }
        free(out);
        out = NULL;
        {
                pid_t dead = f.pid;
                const char *const commands[] = { "vdso", "cat", "modules", "lookup" };
                _cleanup_free_ char *line = fmt("memctl: no such process: %d (io.memmapd.NoSuchProcess {", dead);

                fixture_stop(&f);
                for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                        _cleanup_free_ char *cmd = fmt("%s %d%s", commands[i], dead, i == 1 || i == 3 ? " 0x1000" : "");
                        _cleanup_free_ char *text = NULL;

                        assert_int_equal(memctl_run(daemon_default.socket, cmd, true, &text), 4);
                        assert_non_null(strstr(text, line));
                }
        }

        /* status --json is the daemon's GetStatus reply: the same limits, which do not change. */
        assert_int_equal(run_memctl("--json=short status", &out), 0);
        *strrchr(out, 'e') = 0;
        {
                _cleanup_json_ struct json_object *got = parse(out), *raw = call("{\"method\":\"io.memmapd.GetStatus\"}");

                assert_true(json_object_equal(get(got, "limits"), get(params_of(raw), "limits")));
                assert_string_equal(get_str(got, "backend"), get_str(params_of(raw), "backend"));
                assert_string_equal(get_str(got, "version"), MEMMAPD_VERSION);
                assert_true(json_object_get_uint64(get(got, "requests")) < json_object_get_uint64(get(params_of(raw), "requests")));
        }
        free(out);
        out = NULL;

        /* Without --socket: $MEMMAPD_SOCKET. */
        free(args);
        args = fmt("MEMMAPD_SOCKET='%s' %s status; echo \"exit=$?\"", daemon_default.socket, test_program("MEMCTL", "client/memctl"));
        assert_non_null(out = test_run_capture(args));
        {
                _cleanup_free_ char *line = fmt("     Socket: %s\n", daemon_default.socket);

                assert_non_null(strstr(out, line));
        }
        assert_non_null(strstr(out, "exit=0"));
}

/* A user who may not read a process's maps is told so, with the daemon's error (exit 5). */
static void test_memctl_permission(void **state) {
        _cleanup_free_ char *cmd = fmt("setpriv --reuid=%d --regid=%d --clear-groups %s --socket '%s' maps 1 2>&1; echo \"exit=$?\"",
                                       UID_A, GID_A, test_program("MEMCTL", "client/memctl"), daemon_default.socket);
        _cleanup_free_ char *out = test_run_capture(cmd);

        assert_non_null(out);
        if (!strstr(out, "memctl: permission denied for process 1 (io.memmapd.PermissionDenied {") || !strstr(out, "exit=5"))
                fail_msg("memctl maps 1 as uid %d printed '%s'", UID_A, out);
}

/* A caller built against an older libmemctl (its struct memctl_status_info old_size bytes
 * long) gets the prefix it knows, as a current caller gets it, and nothing past it. */
static void assert_status_prefix_only(const memctl_status *st, size_t old_size) {
        struct memctl_status_info full = MEMCTL_STATUS_INFO_INIT;
        union {
                struct memctl_status_info info;
                unsigned char bytes[sizeof(struct memctl_status_info)];
        } old;
        const size_t skip = sizeof(old.info.size);

        assert_int_equal(memctl_status_get_info(st, &full), 0);
        memset(old.bytes, 0xa5, sizeof(old.bytes));
        old.info.size = old_size;
        assert_int_equal(memctl_status_get_info(st, &old.info), 0);
        assert_memory_equal(old.bytes + skip, (const unsigned char *) &full + skip, old_size - skip);
        for (size_t i = old_size; i < sizeof(old.bytes); i++)
                assert_int_equal(old.bytes[i], 0xa5);
}

/* GetStatus's fair-share, budget and file-pool counters (issue 11 leftovers), as the raw reply,
 * libmemctl (for a caller built against any version) and memctl status show them. */
static void test_status_counters(void **state) {
        _cleanup_json_ struct json_object *found = NULL, *status = NULL;
        _cleanup_free_ char *lookup = NULL, *out = NULL, *line = NULL;
        struct memctl_status_info info = MEMCTL_STATUS_INFO_INIT;
        struct json_object *p, *limits;
        memctl_status *st = NULL;
        memctl *c = NULL;
        struct fixture f;
        uint64_t readers;

        (void) state;
        assert_int_equal(fixture_start(0, 1, &f), 0);
        /* A build ID is read on a file reader: the pool has started one at least. */
        lookup = fmt("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"addresses\":[\"0x%" PRIx64
                     "\"],\"build_ids\":true}}",
                     (int) f.pid, fixture_get(&f, "marker"));
        found = call(lookup);
        assert_null(error_of(found));
        status = call("{\"method\":\"io.memmapd.GetStatus\"}");
        p = params_of(status);
        limits = get(p, "limits");
        readers = json_object_get_uint64(get(p, "file_readers"));
        assert_true(readers >= 1);
        assert_true(json_object_get_uint64(get(p, "file_readers_busy")) <= readers);
        assert_true(json_object_get_uint64(get(p, "file_readers_stuck")) <= readers);
        get(p, "file_read_timeouts");
        get(p, "file_reads_refused");
        get(p, "oneway_skipped");
        get(p, "parked");
        assert_true(json_object_get_uint64(get(limits, "output_budget")) > 0);

        assert_int_equal(memctl_connect(daemon_default.socket, &c), 0);
        assert_int_equal(memctl_get_status(c, &st), 0);
        assert_int_equal(memctl_status_get_info(st, &info), 0);
        /* Fixed while the daemon runs, or only growing (no reader ends before it stops). */
        assert_int_equal(info.output_budget, json_object_get_uint64(get(limits, "output_budget")));
        assert_int_equal(info.output_budget_per_uid, json_object_get_uint64(get(limits, "output_budget_per_uid")));
        assert_int_equal(info.reserved_connections, json_object_get_uint64(get(limits, "reserved_connections")));
        assert_true(info.output_budget_per_uid > 0 && info.reserved_connections > 0);
        assert_true(info.file_readers >= readers);
        assert_true(info.file_readers_stuck <= info.file_readers);
        assert_status_prefix_only(st, offsetof(struct memctl_status_info, max_json_depth) + sizeof(uint64_t));
        memctl_status_free(st);
        memctl_free(c);

        assert_int_equal(run_memctl("status", &out), 0);
        assert_non_null(strstr(out, "     Output: "));
        assert_non_null(strstr(out, " oneway calls skipped, "));
        line = fmt("  File pool: %" PRIu64 " readers (", info.file_readers);
        assert_non_null(strstr(out, line));
        fixture_stop(&f);
}

/* The change tracking and layout store fields of GetStatus on the daemon at socket, as the
 * raw reply, libmemctl and memctl status show them: tracking is "bpf" or "none" (want, when not
 * NULL), the counters unsigned integers, and an empty store when tracking is "none". */
static void check_status_tracking(const char *socket, const char *want) {
        static const char *const counters[] = { "layout_cache_hits", "layout_cache_misses", "layout_cache_entries",
                                                "layout_cache_bytes" };
        _cleanup_json_ struct json_object *status = call_on(socket, "{\"method\":\"io.memmapd.GetStatus\"}");
        _cleanup_free_ char *out = NULL, *json = NULL, *line = NULL;
        struct memctl_status_info info = MEMCTL_STATUS_INFO_INIT;
        struct json_object *p, *t;
        uint64_t v[ELEMENTSOF(counters)];
        memctl_status *st = NULL;
        memctl *c = NULL;
        const char *tracking;

        assert_null(error_of(status));
        p = params_of(status);
        t = get(p, "tracking");
        assert_true(json_object_is_type(t, json_type_string));
        tracking = json_object_get_string(t);
        if (strcmp(tracking, "bpf") != 0 && strcmp(tracking, "none") != 0)
                fail_msg("GetStatus tracking \"%s\"", tracking);
        if (want)
                assert_string_equal(tracking, want);
        for (size_t i = 0; i < ELEMENTSOF(counters); i++) {
                struct json_object *o = get(p, counters[i]);

                if (!json_object_is_type(o, json_type_int) || json_object_get_int64(o) < 0)
                        fail_msg("GetStatus %s: %s", counters[i], json_object_to_json_string(o));
                v[i] = json_object_get_uint64(o);
        }
        /* Layouts take memory, and none is kept (or served) without tracking. */
        assert_int_equal(v[2] == 0, v[3] == 0);
        if (strcmp(tracking, "none") == 0) {
                assert_int_equal(v[0], 0);
                assert_int_equal(v[2], 0);
        }

        /* GetStatus reads no layout: libmemctl sees the same hits and misses. Entries may only
         * have gone since (the exit of an earlier test's process, drained meanwhile). */
        assert_int_equal(memctl_connect(socket, &c), 0);
        assert_int_equal(memctl_get_status(c, &st), 0);
        assert_int_equal(memctl_status_get_info(st, &info), 0);
        assert_non_null(info.tracking);
        assert_string_equal(info.tracking, tracking);
        /* Counters only grow (calls of earlier tests may still be answered, and exits drop
         * kept layouts meanwhile). */
        assert_true(info.layout_cache_hits >= v[0]);
        assert_true(info.layout_cache_misses >= v[1]);
        assert_int_equal(info.layout_cache_entries == 0, info.layout_cache_bytes == 0);
        /* libmemctl 0.1's callers, and 0.3's (before the tracking fields). */
        assert_status_prefix_only(st, offsetof(struct memctl_status_info, max_json_depth) + sizeof(uint64_t));
        assert_status_prefix_only(st, offsetof(struct memctl_status_info, file_reads_refused) + sizeof(uint64_t));
        memctl_status_free(st);
        memctl_free(c);

        assert_int_equal(memctl_run(socket, "status", false, &out), 0);
        line = fmt("\n   Tracking: %s\n    Layouts: ", tracking);
        {
                const char *at = strstr(out, line);
                uint64_t kept = UINT64_MAX, hits = UINT64_MAX;

                if (!at || sscanf(at + strlen(line), "%" SCNu64 " kept (%*[^)]), %" SCNu64 " hits, ", &kept, &hits) != 2)
                        fail_msg("memctl status printed \"%s\", without \"%s\" and its counts", out, line);
                assert_true(kept <= v[2]);
                assert_int_equal(hits, v[0]);
        }
        assert_int_equal(memctl_run(socket, "--json=short status", false, &json), 0);
        *strrchr(json, '\n') = 0;
        *strrchr(json, '\n') = 0;
        {
                _cleanup_json_ struct json_object *o = parse(json);

                assert_string_equal(get_str(o, "tracking"), tracking);
                for (size_t i = 0; i < ELEMENTSOF(counters); i++)
                        assert_true(json_object_is_type(get(o, counters[i]), json_type_int));
        }
}

/* Issue 14's GetStatus fields: on the default daemon (tracking auto: "bpf" where the programs
 * load), and "none" when the command line or the configuration file turns tracking off. */
static void test_status_tracking(void **state) {
        static const char *const off[] = { "--tracking=none", NULL };
        _cleanup_free_ char *conf = NULL, *conf_arg = NULL;
        struct test_daemon d;
        FILE *f;

        (void) state;
        check_status_tracking(daemon_default.socket, NULL);

        assert_int_equal(test_daemon_start(off, &d), 0);
        check_status_tracking(d.socket, "none");
        assert_int_equal(test_daemon_stop(&d), 0);

        /* The file the fixture gives every daemon is empty: a later --config wins. */
        conf = strdup("/tmp/memmapd-tracking-XXXXXX");
        assert_non_null(conf);
        {
                int fd = mkstemp(conf);

                assert_true(fd >= 0);
                assert_non_null(f = fdopen(fd, "w"));
        }
        assert_true(fputs("[Daemon]\nTracking=none\nMaxCachedProcesses=16\n", f) >= 0);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(chmod(conf, 0644), 0);
        conf_arg = fmt("--config=%s", conf);
        assert_int_equal(test_daemon_start((const char *const[]) { conf_arg, NULL }, &d), 0);
        check_status_tracking(d.socket, "none");
        assert_int_equal(test_daemon_stop(&d), 0);
        assert_int_equal(unlink(conf), 0);
}

/* ------------------------------------------------------------------ access control */

struct access_case {
        const char *socket;
        pid_t own, own_nondumpable, other_root;
};

/* The error a ListMappings of pid gets on fd ("ok" for none). */
/* Issue 12.9: memctl lookup --json, now written by the streaming writer from libmemctl's
 * parse, says what the daemon's reply says (pretty and short alike). */
static void test_memctl_lookup_json(void **state) {
        struct fixture f;

        assert_int_equal(fixture_start(0, 1, &f), 0);
        uint64_t marker = fixture_get(&f, "marker"), deleted = fixture_get(&f, "deleted");
        _cleanup_free_ char *msg = fmt("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"addresses\":"
                                       "[\"0x%" PRIx64 "\",\"0x%" PRIx64 "\",\"0x1\"],\"build_ids\":true}}",
                                       f.pid, marker, deleted);
        _cleanup_json_ struct json_object *want = call(msg);

        for (unsigned short_mode = 0; short_mode < 2; short_mode++) {
                _cleanup_free_ char *args = fmt("lookup %s --build-ids %d 0x%" PRIx64 " 0x%" PRIx64 " 0x1",
                                                short_mode ? "--json=short" : "--json", f.pid, marker, deleted);
                _cleanup_free_ char *out = NULL;
                _cleanup_json_ struct json_object *got = NULL;

                assert_int_equal(run_memctl(args, &out), 0);
                *strrchr(out, 'e') = 0; /* drop "exit=0" */
                got = parse(out);
                if (!json_object_equal(got, params_of(want)))
                        fail_msg("memctl printed %s, the daemon said %s", json_object_to_json_string(got),
                                 json_object_to_json_string(params_of(want)));
        }
        fixture_stop(&f);
}

/* Issue 12.10: libmemctl splits a batch above the daemon's max_addresses itself: the one
 * reply says what a daemon without the limit says in one batch (each mapping once, in address
 * order; results in the order asked, about the same process). */
static void test_libmemctl_splits_batches(void **state) {
        static const char *const args[] = { "--set=MaxAddresses=64", NULL };
        memctl_lookup_reply *whole = NULL, *split = NULL, *again = NULL;
        memctl *c_default = NULL, *c_small = NULL;
        _cleanup_free_ uint64_t *addrs = NULL;
        struct test_daemon d;
        struct fixture f;
        size_t n = 1000;

        assert_int_equal(test_daemon_start(args, &d), 0);
        assert_int_equal(fixture_start(300, 1, &f), 0);
        assert_non_null(addrs = calloc(n, sizeof(*addrs)));
        srandom(12);
        for (size_t i = 0; i < n; i++) {
                uint64_t many = fixture_get(&f, "many");

                /* The 300 small VMAs in random order, duplicates, a few unmapped and code. */
                addrs[i] = i % 10 == 0 ? (uint64_t) i : i % 10 == 1 ? fixture_get(&f, "marker")
                                                                    : many + (uint64_t) (random() % (300 * 4096));
        }
        assert_int_equal(memctl_connect(daemon_default.socket, &c_default), 0);
        assert_int_equal(memctl_connect(d.socket, &c_small), 0);
        assert_int_equal(memctl_lookup(c_default, f.pid, 0, addrs, n, MEMCTL_BUILD_IDS, &whole), 0);
        assert_int_equal(memctl_lookup(c_small, f.pid, 0, addrs, n, MEMCTL_BUILD_IDS, &split), 0);
        assert_null(memctl_last_error_name(c_small));
        /* The limit is remembered: the next one splits at once, and agrees too. */
        assert_int_equal(memctl_lookup(c_small, f.pid, stat_start_time(f.pid), addrs, n, 0, &again), 0);
        fixture_stop(&f);

        assert_int_equal(memctl_lookup_reply_count(split), n);
        assert_int_equal(memctl_lookup_reply_mapping_count(split), memctl_lookup_reply_mapping_count(whole));
        for (size_t i = 0; i < memctl_lookup_reply_mapping_count(split); i++) {
                struct memctl_mapping a = MEMCTL_MAPPING_INIT, b = MEMCTL_MAPPING_INIT;

                assert_int_equal(memctl_lookup_reply_get_mapping(whole, i, &a), 0);
                assert_int_equal(memctl_lookup_reply_get_mapping(split, i, &b), 0);
                assert_int_equal(a.start, b.start);
                assert_int_equal(a.end, b.end);
                assert_int_equal(a.inode, b.inode);
                assert_true((a.name == NULL) == (b.name == NULL));
                if (a.name)
                        assert_string_equal(a.name, b.name);
                assert_true((a.build_id_hex == NULL) == (b.build_id_hex == NULL));
        }
        for (size_t i = 0; i < n; i++) {
                struct memctl_lookup_result a = MEMCTL_LOOKUP_RESULT_INIT, b = MEMCTL_LOOKUP_RESULT_INIT,
                                            c = MEMCTL_LOOKUP_RESULT_INIT;

                assert_int_equal(memctl_lookup_reply_get(whole, i, &a), 0);
                assert_int_equal(memctl_lookup_reply_get(split, i, &b), 0);
                assert_int_equal(memctl_lookup_reply_get(again, i, &c), 0);
                assert_int_equal(b.address, addrs[i]);
                assert_int_equal(a.mapping, b.mapping);
                assert_int_equal(a.has_elf_vaddr, b.has_elf_vaddr);
                assert_int_equal(a.elf_vaddr, b.elf_vaddr);
                assert_int_equal(a.file_offset, b.file_offset);
                assert_int_equal(a.mapping == MEMCTL_NO_MAPPING, c.mapping == MEMCTL_NO_MAPPING);
        }
        memctl_lookup_reply_free(whole);
        memctl_lookup_reply_free(split);
        memctl_lookup_reply_free(again);
        memctl_free(c_default);
        memctl_free(c_small);
        assert_int_equal(test_daemon_stop(&d), 0);
}

struct vdso_access {
        const char *socket;
        pid_t own, other_root;
};

static const char *vdso_error(const char *socket, pid_t pid) {
        _cleanup_free_ char *msg = fmt("{\"method\":\"io.memmapd.GetVdso\",\"parameters\":{\"pid\":%d}}", (int) pid);
        _cleanup_close_ int fd = test_connect(socket);
        _cleanup_free_ char *reply = fd >= 0 ? test_call(fd, msg) : NULL;
        static char err[128];
        struct json_object *r = reply ? json_tokener_parse(reply) : NULL, *e;

        if (!r)
                return "no reply";
        snprintf(err, sizeof(err), "%s", json_object_object_get_ex(r, "error", &e) ? json_object_get_string(e) : "ok");
        json_object_put(r);
        return err;
}

static int vdso_as_uid_a(void *userdata) {
        const struct vdso_access *a = userdata;
        char mem[64];
        int fd;

        /* What this client may do itself (Yama's ptrace_scope may forbid it even for its own
         * processes), the daemon does for it, and no more. */
        snprintf(mem, sizeof(mem), "/proc/%d/mem", (int) a->own);
        fd = open(mem, O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
                close(fd);
        if (strcmp(vdso_error(a->socket, a->own), fd >= 0 ? "ok" : "io.memmapd.PermissionDenied") != 0)
                return 10;
        if (strcmp(vdso_error(a->socket, a->other_root), "io.memmapd.PermissionDenied") != 0)
                return 11;
        return 0;
}

/* Issue 12.4: GetVdso gives the vdso image as the process holds it (the bytes of
 * /proc/PID/mem, read here), with the build ID readelf finds in it; libmemctl and
 * memctl vdso give the same bytes; a kernel thread has none (NoVdso); a client reads only the
 * vdso of processes it may read. */
static void test_vdso_image(void **state) {
        _cleanup_free_ char *probe = test_run_capture("command -v readelf");
        _cleanup_free_ uint8_t *want = NULL, *got = NULL;
        char dump[] = "/tmp/memmapd-vdso-XXXXXX";
        uint64_t start = 0, end = 0;
        struct fixture f, mine;
        size_t size = 0;

        assert_int_equal(fixture_start(0, 0, &f), 0);
        {
                _cleanup_free_ char *msg = fmt("{\"method\":\"io.memmapd.GetVdso\",\"parameters\":{\"pid\":%d}}", f.pid);
                _cleanup_json_ struct json_object *r = call_on(daemon_default.socket, msg);
                struct json_object *m;
                const char *hex;
                char mem[64];
                int fd;

                if (error_of(r))
                        fail_msg("GetVdso: %s", json_object_to_json_string(r));
                m = get(params_of(r), "mapping");
                assert_string_equal(get_str(m, "kind"), "vdso");
                start = get_hex(m, "start");
                end = get_hex(m, "end");
                assert_int_equal(json_object_get_int64(get(process_of(r), "pid")), f.pid);
                hex = get_str(params_of(r), "image_hex");
                assert_int_equal(strlen(hex), 2 * (end - start));
                assert_non_null(want = malloc(end - start));
                snprintf(mem, sizeof(mem), "/proc/%d/mem", (int) f.pid);
                assert_true((fd = open(mem, O_RDONLY | O_CLOEXEC)) >= 0);
                assert_int_equal(pread(fd, want, end - start, (off_t) start), (ssize_t) (end - start));
                close(fd);
                for (size_t i = 0; i < end - start; i++) {
                        unsigned v;

                        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
                        assert_int_equal(v, want[i]);
                }
                if (probe) {
                        _cleanup_free_ char *cmd = NULL, *out = NULL;

                        assert_true((fd = mkstemp(dump)) >= 0);
                        assert_int_equal(write(fd, want, end - start), (ssize_t) (end - start));
                        close(fd);
                        cmd = fmt("readelf -n %s | sed -n 's/.*Build ID: //p'", dump);
                        out = test_run_capture(cmd);
                        unlink(dump);
                        if (out && *out) {
                                out[strcspn(out, "\n")] = 0;
                                assert_string_equal(get_str(m, "build_id"), out);
                        }
                }
        }
        {
                memctl *c = NULL;

                assert_int_equal(memctl_connect(daemon_default.socket, &c), 0);
                assert_int_equal(memctl_get_vdso(c, f.pid, stat_start_time(f.pid), &got, &size), 0);
                assert_int_equal(size, end - start);
                assert_memory_equal(got, want, size);
                assert_int_equal(memctl_get_vdso(c, 2, 0, &got, &size), -ENOENT);
                assert_string_equal(memctl_last_error_name(c), "io.memmapd.NoVdso");
                memctl_free(c);
        }
        {
                _cleanup_free_ char *out = NULL;
                _cleanup_free_ char *args = fmt("vdso %d | cmp -s - /proc/%d/mem -i 0:%" PRIu64 " -n %" PRIu64
                                                " && echo same", f.pid, f.pid, start, end - start);
                _cleanup_free_ char *cmd = fmt("%s --socket '%s' %s", test_program("MEMCTL", "client/memctl"),
                                               daemon_default.socket, args);

                out = test_run_capture(cmd);
                assert_non_null(out);
                assert_non_null(strstr(out, "same"));
        }
        assert_string_equal(vdso_error(daemon_default.socket, 2), "io.memmapd.NoVdso");

        assert_int_equal(fixture_start_as(0, 0, UID_A, GID_A, 0, &mine), 0);
        {
                struct vdso_access a = { .socket = daemon_default.socket, .own = mine.pid, .other_root = f.pid };

                assert_int_equal(run_as(UID_A, GID_A, vdso_as_uid_a, &a), 0);
        }
        fixture_stop(&mine);
        fixture_stop(&f);
}

/* Issue 18.7: a name the fast writer cannot take (not UTF-8, a quote) goes through the general
 * one: the build ID is still there, as readelf reads it in the file, with name_hex holding the
 * exact bytes, in listings and in lookups. The target is this process, which maps the file. */
static void test_build_id_slow_writer(void **state) {
        char dir[] = "/tmp/memmapd-slow-XXXXXX", path[96], want_id[256], hex[2 * sizeof(path) + 1];
        _cleanup_free_ char *cmd = NULL, *list = NULL, *look = NULL;
        const char *reply_of[2];
        struct stat st;
        void *a;
        int fd;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/odd\xff\"name.so", dir);
        cmd = fmt("cp '%s' '%s'", test_program("FIXTURE_PROC", "tests/fixture-proc"), path);
        assert_int_equal(system(cmd), 0);
        assert_true(test_readelf_build_id(path, want_id, sizeof(want_id)));
        assert_true((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
        assert_int_equal(fstat(fd, &st), 0);
        a = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        assert_true(a != MAP_FAILED);
        close(fd);
        for (size_t i = 0; path[i]; i++)
                snprintf(hex + 2 * i, 3, "%02x", (unsigned) (uint8_t) path[i]);

        list = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,\"build_ids\":true}}",
                   (int) getpid());
        look = fmt("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"addresses\":[\"%p\"],"
                   "\"build_ids\":true}}", (int) getpid(), a);
        reply_of[0] = list;
        reply_of[1] = look;
        for (size_t k = 0; k < 2; k++) {
                _cleanup_json_ struct json_object *r = call(reply_of[k]);
                struct json_object *ms, *m = NULL;

                assert_null(error_of(r));
                ms = get(params_of(r), "mappings");
                for (size_t i = 0; i < json_object_array_length(ms); i++)
                        if (get_hex(json_object_array_get_idx(ms, i), "start") == (uint64_t) (uintptr_t) a)
                                m = json_object_array_get_idx(ms, i);
                assert_non_null(m);
                assert_string_equal(get_str(m, "name_hex"), hex);
                assert_non_null(strstr(get_str(m, "name"), "odd\xef\xbf\xbd\"name.so"));
                assert_string_equal(get_str(m, "build_id"), want_id);
        }
        assert_int_equal(munmap(a, (size_t) st.st_size), 0);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

/* What GetVdso says about pid: its image (malloc'd, *ret_size bytes), its start and its build
 * ID (hex, "" when none). */
static uint8_t *get_vdso_of(const char *socket, pid_t pid, size_t *ret_size, uint64_t *ret_start, char *ret_id,
                            size_t id_size) {
        _cleanup_free_ char *msg = fmt("{\"method\":\"io.memmapd.GetVdso\",\"parameters\":{\"pid\":%d}}", (int) pid);
        _cleanup_json_ struct json_object *r = call_on(socket, msg);
        struct json_object *m, *id;
        uint8_t *image;
        const char *hex;
        size_t size;

        if (error_of(r))
                fail_msg("GetVdso %d: %s", (int) pid, json_object_to_json_string(r));
        m = get(params_of(r), "mapping");
        *ret_start = get_hex(m, "start");
        size = get_hex(m, "end") - *ret_start;
        snprintf(ret_id, id_size, "%s", json_object_object_get_ex(m, "build_id", &id) ? json_object_get_string(id) : "");
        hex = get_str(params_of(r), "image_hex");
        assert_int_equal(strlen(hex), 2 * size);
        assert_non_null(image = malloc(size));
        for (size_t i = 0; i < size; i++) {
                unsigned v;

                assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
                image[i] = (uint8_t) v;
        }
        *ret_size = size;
        return image;
}

/* size bytes of pid's memory at start, read here through /proc/PID/mem (malloc'd). */
static uint8_t *read_memory_of(pid_t pid, uint64_t start, size_t size) {
        _cleanup_free_ char *path = fmt("/proc/%d/mem", (int) pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        uint8_t *buf = malloc(size);

        assert_true(fd >= 0);
        assert_non_null(buf);
        assert_int_equal(pread(fd, buf, size, (off_t) start), (ssize_t) size);
        return buf;
}

/* The build ID's bytes in an ELF image mapped at base (the notes of its PT_NOTE segments). */
static uint8_t *vdso_build_id_bytes(uint8_t *base, size_t *ret_len) {
        const Elf64_Ehdr *eh = (const Elf64_Ehdr *) base;

        for (unsigned i = 0; i < eh->e_phnum; i++) {
                const Elf64_Phdr *ph = (const Elf64_Phdr *) (base + eh->e_phoff + i * eh->e_phentsize);

                for (uint64_t pos = 0; ph->p_type == PT_NOTE && pos + sizeof(Elf64_Nhdr) <= ph->p_filesz;) {
                        const Elf64_Nhdr *n = (const Elf64_Nhdr *) (base + ph->p_offset + pos);
                        uint64_t desc = pos + sizeof(*n) + ((n->n_namesz + 3) & ~3u);

                        if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && n->n_descsz > 0) {
                                *ret_len = n->n_descsz;
                                return base + ph->p_offset + desc;
                        }
                        pos = desc + ((n->n_descsz + 3) & ~3u);
                }
        }
        return NULL;
}

enum { TAMPER_BUILD_ID = 1, TAMPER_CONTENT = 2 };

/* A process (forked from here, as uid, -1: root) that rewrote its own vdso, as any process may
 * (mprotect() allows it): the last byte of its build ID (TAMPER_BUILD_ID), the last byte of its
 * image, past the code (TAMPER_CONTENT). It runs until *end_fd is closed; its pid, or -1 when
 * it could not rewrite its vdso (then it has said why on stderr). */
static pid_t start_tampered(uid_t uid, unsigned what, int *ret_end_fd) {
        int ready[2], end[2];
        pid_t pid;
        char c;

        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(end, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                uint8_t *base = (uint8_t *) getauxval(AT_SYSINFO_EHDR), *id;
                size_t size = 0, id_len = 0;
                FILE *maps = fopen("/proc/self/maps", "re");
                char line[512];

                close(ready[0]);
                close(end[1]);
                while (maps && fgets(line, sizeof(line), maps)) {
                        unsigned long s, e;

                        if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", &s, &e) == 2 && s == (uintptr_t) base)
                                size = e - s;
                }
                if (uid != (uid_t) -1 && (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
                                          setresuid(uid, uid, uid) < 0))
                        _exit(fprintf(stderr, "setresuid: %m\n") & 0);
                if (!base || size == 0 || !(id = vdso_build_id_bytes(base, &id_len)))
                        _exit(fprintf(stderr, "no vdso with a build ID\n") & 0);
                if (mprotect(base, size, PROT_READ | PROT_WRITE | PROT_EXEC) < 0)
                        _exit(fprintf(stderr, "mprotect of the vdso: %m\n") & 0);
                if (what & TAMPER_BUILD_ID)
                        id[id_len - 1] ^= 0x5a;
                if (what & TAMPER_CONTENT)
                        base[size - 1] ^= 0xa5;
                if (write(ready[1], "r", 1) != 1)
                        _exit(1);
                (void) read(end[0], &c, 1);
                _exit(0);
        }
        close(ready[1]);
        close(end[0]);
        if (read(ready[0], &c, 1) != 1) {
                close(ready[0]);
                close(end[1]);
                assert_int_equal(waitpid(pid, NULL, 0), pid);
                return -1;
        }
        close(ready[0]);
        *ret_end_fd = end[1];
        return pid;
}

static void stop_tampered(pid_t pid, int end_fd) {
        close(end_fd);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
}

/* The build ID of the vdso mapping that covers address in a Lookup of pid with build IDs. */
static void lookup_vdso_build_id(const char *socket, pid_t pid, uint64_t address, char *ret, size_t size) {
        _cleanup_free_ char *msg = fmt("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,"
                                       "\"addresses\":[\"0x%" PRIx64 "\"],\"build_ids\":true}}", (int) pid, address);
        _cleanup_json_ struct json_object *r = call_on(socket, msg);
        struct json_object *m;

        assert_null(error_of(r));
        m = json_object_array_get_idx(get(params_of(r), "mappings"), 0);
        assert_string_equal(get_str(m, "kind"), "vdso");
        snprintf(ret, size, "%s", get_str(m, "build_id"));
}

/* Issue 12.4: the vdso image is kept by build ID. Two processes get the bytes their memory
 * holds, from the daemon's own vdso (a hit each: the daemon runs the same ABI); a process whose
 * vdso carries another build ID (as a compat 32-bit process's does; this test cannot count on
 * running one) is read whole once, then hits; one that rewrote its image under the kernel's
 * build ID is served the kernel's image; an image learned from one user's process never
 * answers for another user's. */
static void test_vdso_cache(void **state) {
        const char *s = daemon_default.socket;
        _cleanup_free_ uint8_t *img1 = NULL, *img2 = NULL, *mem1 = NULL, *mem2 = NULL;
        uint64_t hits, misses, entries, start1, start2;
        char id1[2 * 64 + 1], id2[sizeof(id1)], id[sizeof(id1)];
        size_t size1, size2;
        struct fixture f1, f2;
        int end_fd;
        pid_t t;

        uint64_t h0 = status_counter(s, "vdso_cache_hits"), m0 = status_counter(s, "vdso_cache_misses"),
                 e0 = status_counter(s, "vdso_cache_entries");
        if (e0 == 0) {
                printf("[  SKIPPED ] the daemon's own vdso has no build ID (or it has no vdso): nothing to keep\n");
                skip();
        }

        assert_int_equal(fixture_start(0, 0, &f1), 0);
        assert_int_equal(fixture_start(0, 0, &f2), 0);
        img1 = get_vdso_of(s, f1.pid, &size1, &start1, id1, sizeof(id1));
        img2 = get_vdso_of(s, f2.pid, &size2, &start2, id2, sizeof(id2));
        mem1 = read_memory_of(f1.pid, start1, size1);
        mem2 = read_memory_of(f2.pid, start2, size2);
        assert_memory_equal(img1, mem1, size1);
        assert_int_equal(size2, size1);
        assert_memory_equal(img2, mem2, size2);
        assert_string_equal(id2, id1);
        assert_true(strlen(id1) >= 2);
        hits = h0 + 2;
        misses = m0;
        entries = e0;
        assert_int_equal(status_counter(s, "vdso_cache_hits"), hits);
        assert_int_equal(status_counter(s, "vdso_cache_misses"), misses);
        /* A lookup's build ID for the vdso comes from the same entry. */
        lookup_vdso_build_id(s, f2.pid, start2, id, sizeof(id));
        assert_string_equal(id, id1);
        assert_int_equal(status_counter(s, "vdso_cache_hits"), ++hits);

        t = start_tampered((uid_t) -1, TAMPER_BUILD_ID, &end_fd);
        if (t < 0) {
                printf("[  SKIPPED ] no process could rewrite its vdso here: only the daemon's own image tested\n");
                fixture_stop(&f1);
                fixture_stop(&f2);
                skip();
        }
        {
                _cleanup_free_ uint8_t *img = NULL, *mem = NULL;
                uint64_t start;
                size_t size;

                /* Its own build ID and bytes, read whole once, then kept for it. */
                for (int round = 0; round < 2; round++) {
                        free(img);
                        free(mem);
                        img = get_vdso_of(s, t, &size, &start, id, sizeof(id));
                        mem = read_memory_of(t, start, size);
                        assert_memory_equal(img, mem, size);
                        assert_string_not_equal(id, id1);
                        assert_true(memcmp(img, img1, size) != 0);
                        assert_int_equal(status_counter(s, "vdso_cache_misses"), round == 0 ? ++misses : misses);
                        assert_int_equal(status_counter(s, "vdso_cache_hits"), round == 0 ? hits : ++hits);
                        assert_int_equal(status_counter(s, "vdso_cache_entries"), entries + 1);
                }
                ++entries;
                /* The same in a lookup: this process's build ID, not the kernel's. */
                {
                        char lid[sizeof(id)];

                        lookup_vdso_build_id(s, t, start, lid, sizeof(lid));
                        assert_string_equal(lid, id);
                }
                ++hits;
        }
        {
                /* Another user's process with the same planted build ID and other bytes is
                 * read whole: the image learned above is root's process's. */
                _cleanup_free_ uint8_t *img = NULL, *mem = NULL;
                char other_id[sizeof(id)];
                uint64_t start;
                size_t size;
                int end_a;
                pid_t a = start_tampered(UID_A, TAMPER_BUILD_ID | TAMPER_CONTENT, &end_a);

                assert_true(a > 0);
                img = get_vdso_of(s, a, &size, &start, other_id, sizeof(other_id));
                mem = read_memory_of(a, start, size);
                assert_string_equal(other_id, id);
                assert_memory_equal(img, mem, size);
                assert_int_equal(status_counter(s, "vdso_cache_misses"), ++misses);
                assert_int_equal(status_counter(s, "vdso_cache_entries"), ++entries);
                stop_tampered(a, end_a);
        }
        stop_tampered(t, end_fd);
        {
                /* A process that rewrote its image under the kernel's build ID (a debugger's
                 * breakpoint does that) is served the kernel's image, by build ID. */
                _cleanup_free_ uint8_t *img = NULL, *mem = NULL;
                uint64_t start;
                size_t size;

                t = start_tampered((uid_t) -1, TAMPER_CONTENT, &end_fd);
                assert_true(t > 0);
                img = get_vdso_of(s, t, &size, &start, id, sizeof(id));
                mem = read_memory_of(t, start, size);
                assert_string_equal(id, id1);
                assert_memory_equal(img, img1, size);
                assert_true(memcmp(mem, img1, size) != 0);
                assert_int_equal(status_counter(s, "vdso_cache_hits"), ++hits);
                assert_int_equal(status_counter(s, "vdso_cache_misses"), misses);
                stop_tampered(t, end_fd);
        }
        fixture_stop(&f1);
        fixture_stop(&f2);
}

/* A stand-in daemon on path that answers every call with reply (a whole Varlink message; NULL:
 * hangs up without a word); returns its pid (end it with SIGKILL). */
static pid_t fake_daemon(const char *path, const char *reply) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        pid_t pid;

        assert_true(fd >= 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 8), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                for (;;) {
                        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
                        char buf[65536];
                        ssize_t n;

                        if (c < 0)
                                _exit(1);
                        /* One call a connection: read up to its NUL, answer, hang up. */
                        while ((n = read(c, buf, sizeof(buf))) > 0 && !memchr(buf, 0, (size_t) n))
                                ;
                        if (n > 0 && reply && write(c, reply, strlen(reply) + 1) < 0)
                                _exit(1);
                        close(c);
                }
        }
        close(fd);
        return pid;
}

/* Issue 12.9: memctl prints any error of the daemon with its name and parameters, those it
 * has no words for (InternalError's message, a newer daemon's error) included. */
static void test_memctl_prints_any_error(void **state) {
        static const struct {
                const char *reply, *want[3];
        } cases[] = {
                { "{\"error\":\"io.memmapd.InternalError\",\"parameters\":{\"message\":\"File name too long\"}}",
                  { "io.memmapd.InternalError", "File name too long", NULL } },
                { "{\"error\":\"io.memmapd.SomethingNew\",\"parameters\":{\"detail\":\"x-y-z\",\"n\":7}}",
                  { "io.memmapd.SomethingNew", "x-y-z", "\"n\":7" } },
                { "{\"error\":\"io.memmapd.NoSuchProcess\",\"parameters\":{\"pid\":4242}}",
                  { "io.memmapd.NoSuchProcess", "4242", NULL } },
        };
        char dir[] = "/tmp/memmapd-fake-XXXXXX";

        assert_non_null(mkdtemp(dir));
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *path = fmt("%s/sock%zu", dir, i);
                pid_t pid = fake_daemon(path, cases[i].reply);
                const char *const commands[] = { "lookup 4242 0x1000", "lookup --json 4242 0x1000", "maps 4242",
                                                 "maps --json 4242" };

                for (size_t k = 0; k < ELEMENTSOF(commands); k++) {
                        _cleanup_free_ char *cmd = fmt("%s --socket '%s' %s 2>&1 >/dev/null; echo \"exit=$?\"",
                                                       test_program("MEMCTL", "client/memctl"), path, commands[k]);
                        _cleanup_free_ char *out = test_run_capture(cmd);

                        assert_non_null(out);
                        for (size_t w = 0; w < ELEMENTSOF(cases[i].want) && cases[i].want[w]; w++)
                                if (!strstr(out, cases[i].want[w]))
                                        fail_msg("memctl %s on %s printed '%s', without '%s'", commands[k],
                                                 cases[i].reply, out, cases[i].want[w]);
                        assert_null(strstr(out, "exit=0"));
                }
                kill(pid, SIGKILL);
                assert_int_equal(waitpid(pid, NULL, 0), pid);
                unlink(path);
        }
        assert_int_equal(rmdir(dir), 0);
}

#define STATUS_REPLY(uptime) \
        "{\"parameters\":{\"version\":\"9.9\",\"kernel\":\"6.1.0-x\\u001b[31m\",\"backend\":\"maps\",\"uptime_usec\":" uptime "," \
        "\"requests\":12,\"errors\":3,\"elf_cache_hits\":4,\"elf_cache_misses\":5,\"elf_cache_entries\":6,\"connections\":7," \
        "\"limits\":{\"max_message_size\":16777216,\"max_addresses\":100000,\"max_connections\":256," \
        "\"max_connections_per_uid\":16,\"max_output_queue\":1572864,\"idle_timeout_sec\":60,\"max_json_depth\":32}}}"

/* What the real daemon cannot be brought to say (a newer or older daemon's errors, a broken
 * one, a daemon up for days) from a scripted peer: memctl says each in words, with the error's
 * name and parameters, and exits with the status its manual gives. */
static void test_memctl_error_words(void **state) {
        static const struct {
                const char *reply, *command, *want;
                int exit_status;
        } cases[] = {
                { "{\"error\":\"org.varlink.service.MethodNotFound\",\"parameters\":{\"method\":\"io.memmapd.GetVdso\"}}",
                  "vdso 77", "memctl: memmapd does not support this request (org.varlink.service.MethodNotFound "
                             "{\"method\":\"io.memmapd.GetVdso\"})", 1 },
                { "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"pid\"}}",
                  "maps 77", "memctl: memmapd rejected parameter 'pid'", 1 },
                { "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{}}",
                  "lookup 77 0x1", "memctl: memmapd rejected the request as invalid (org.varlink.service.InvalidParameter {})", 1 },
                { "{\"error\":\"io.memmapd.LimitExceeded\",\"parameters\":{\"limit\":\"max_message_size\",\"max\":100}}",
                  "maps 77", "memctl: request exceeds memmapd's limit max_message_size (max 100)", 1 },
                { "{\"error\":\"io.memmapd.LimitExceeded\"}",
                  "lookup 77 0x1", "memctl: request exceeds a limit of memmapd (io.memmapd.LimitExceeded {})", 1 },
                { "{\"error\":\"org.varlink.service.PermissionDenied\",\"parameters\":{}}",
                  "status", "memctl: permission denied (org.varlink.service.PermissionDenied {})", 5 },
                { "{\"error\":\"io.memmapd.ProcessChanged\",\"parameters\":{\"pid\":77}}",
                  "--start-time=5 maps 77", "memctl: process 77 changed (start time mismatch) (io.memmapd.ProcessChanged {\"pid\":77})", 6 },
                { "not json at all", "status", "memctl: invalid reply from memmapd at ", 1 },
                { NULL, "maps 77", "memctl: connection to memmapd at ", 3 },
                { STATUS_REPLY("93784000000"), "status", "     Uptime: 1d 2h 3min\n", 0 },
                { STATUS_REPLY("7384000000"), "status", "     Uptime: 2h 3min 4s\n", 0 },
                { STATUS_REPLY("184000000"), "status", "     Uptime: 3min 4s\n", 0 },
                { STATUS_REPLY("4250000"), "status", "     Uptime: 4.250s\n", 0 },
                /* The kernel's name with its escape character shown, not sent to the terminal. */
                { STATUS_REPLY("1"), "status", "     Kernel: 6.1.0-x\\033[31m\n", 0 },
                { STATUS_REPLY("1"), "status", "     Limits: messages 16M, 100000 addresses per lookup, output queue 1.5M,\n"
                                               "             JSON depth 32, idle timeout 60s\n", 0 },
                { STATUS_REPLY("1"), "status", "   Requests: 12 (3 failed)\n  ELF cache: 6 entries, 4 hits, 5 misses\n"
                                               "Connections: 7 (max 256, 16 per user)\n", 0 },
                /* An older daemon without the newer counters: they read 0. */
                { STATUS_REPLY("1"), "status", " Fair share: 0 oneway calls skipped, 0 connections parked, 0 slots reserved\n", 0 },
        };
        char dir[] = "/tmp/memmapd-fake-XXXXXX";

        assert_non_null(mkdtemp(dir));
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *path = fmt("%s/sock%zu", dir, i), *out = NULL;
                pid_t pid = fake_daemon(path, cases[i].reply);
                int code = memctl_run(path, cases[i].command, true, &out);

                if (code != cases[i].exit_status || !strstr(out, cases[i].want))
                        fail_msg("memctl %s on %s: exit %d, printed '%s', not '%s'", cases[i].command,
                                 cases[i].reply ? cases[i].reply : "(no reply)", code, out, cases[i].want);
                kill(pid, SIGKILL);
                assert_int_equal(waitpid(pid, NULL, 0), pid);
                unlink(path);
        }
        assert_int_equal(rmdir(dir), 0);
}

static const char *error_on(int fd, pid_t pid, const char *extra) {
        _cleanup_free_ char *msg = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d%s}}", pid, extra);
        _cleanup_free_ char *reply = test_call(fd, msg);
        static char err[128];
        struct json_object *r, *e;

        if (!reply)
                return "no reply";
        r = json_tokener_parse(reply);
        if (!r)
                return "bad reply";
        snprintf(err, sizeof(err), "%s", json_object_object_get_ex(r, "error", &e) ? json_object_get_string(e) : "ok");
        json_object_put(r);
        return err;
}

/* The same on a new connection. */
static const char *child_error(const char *socket, pid_t pid, const char *extra) {
        _cleanup_close_ int fd = test_connect(socket);

        if (fd < 0)
                return "connect failed";
        return error_on(fd, pid, extra);
}

static int as_uid_a(void *userdata) {
        const struct access_case *a = userdata;

        if (strcmp(child_error(a->socket, a->own, ""), "ok") != 0)
                return 10;
        if (strcmp(child_error(a->socket, a->own_nondumpable, ""), "io.memmapd.PermissionDenied") != 0)
                return 11;
        if (strcmp(child_error(a->socket, a->other_root, ""), "io.memmapd.PermissionDenied") != 0)
                return 12;
        if (strcmp(child_error(a->socket, 1, ""), "io.memmapd.PermissionDenied") != 0)
                return 13;
        /* Claiming to be someone else gets nothing more. */
        if (strcmp(child_error(a->socket, a->other_root, ",\"uid\":0"), "org.varlink.service.InvalidParameter") != 0)
                return 14;
        return 0;
}

static int as_uid_a_in_allowed_group(void *userdata) {
        const struct access_case *a = userdata;
        gid_t adm[] = { 4 };

        if (setgroups(1, adm) < 0)
                return 20;
        if (setresgid(GID_A, GID_A, GID_A) < 0 || setresuid(UID_A, UID_A, UID_A) < 0)
                return 21;
        if (strcmp(child_error(a->socket, a->other_root, ""), "ok") != 0)
                return 22;
        if (strcmp(child_error(a->socket, a->own_nondumpable, ""), "ok") != 0)
                return 23;
        return 0;
}

static void test_access(void **state) {
        static const char *const args[] = { "--allow-groups=adm", NULL };
        struct fixture own, nondump, root;
        struct test_daemon d;
        struct access_case a;
        struct group *g = getgrnam("adm");

        if (geteuid() != 0) {
                printf("[  SKIPPED ] access tests switch uids and need root\n");
                skip();
        }
        assert_int_equal(test_daemon_start(args, &d), 0);
        assert_int_equal(fixture_start_as(0, 0, UID_A, GID_A, 0, &own), 0);
        assert_int_equal(fixture_start_as(0, 0, UID_A, GID_A, 1, &nondump), 0);
        assert_int_equal(fixture_start(0, 0, &root), 0);
        a = (struct access_case) { d.socket, own.pid, nondump.pid, root.pid };

        assert_int_equal(run_as(UID_A, GID_A, as_uid_a, &a), 0);
        if (g && g->gr_gid == 4) {
                int status;
                pid_t pid = fork();

                if (pid == 0)
                        _exit(as_uid_a_in_allowed_group(&a));
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_int_equal(WEXITSTATUS(status), 0);
        } else
                printf("[  SKIPPED ] allowed-group case: no group adm with gid 4 here\n");

        /* What an allowed client gets equals what it reads itself. */
        {
                _cleanup_free_ char *msg = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d}}", own.pid);
                _cleanup_json_ struct json_object *r = call_on(d.socket, msg);
                struct maps_line *want;
                size_t n = read_proc_maps(own.pid, &want);

                assert_matches_proc(get(params_of(r), "mappings"), want, n);
                free_proc_maps(want, n);
        }
        fixture_stop(&own);
        fixture_stop(&nondump);
        fixture_stop(&root);
        assert_int_equal(test_daemon_stop(&d), 0);
}

/* ------------------------------------------------------------------ the connection's target cache */

static bool mappings_name(struct json_object *reply, const char *suffix) {
        struct json_object *m = get(params_of(reply), "mappings"), *path;
        size_t ls = strlen(suffix);

        for (size_t i = 0; i < json_object_array_length(m); i++)
                if (json_object_object_get_ex(json_object_array_get_idx(m, i), "path", &path)) {
                        const char *p = json_object_get_string(path);
                        size_t lp = strlen(p);

                        if (lp >= ls && strcmp(p + lp - ls, suffix) == 0)
                                return true;
                }
        return false;
}

/* Waits for pred(pid), up to 30 s (a guard that only catches hangs). */
static bool wait_for(bool (*pred)(pid_t), pid_t pid) {
        for (int i = 0; i < 3000; i++) {
                if (pred(pid))
                        return true;
                usleep(10000);
        }
        return false;
}

static bool runs_cat(pid_t pid) {
        return fixture_runs_cat(pid);
}

/* A connection keeps its last target open; after an exec the same connection must see the
 * new program's mappings, not an error and not the old ones. */
static void test_target_cache_exec(void **state) {
        _cleanup_close_ int fd = test_connect(daemon_default.socket);
        _cleanup_free_ char *list = NULL, *lookup = NULL;
        struct fixture f;

        assert_true(fd >= 0);
        assert_int_equal(fixture_start(0, 0, &f), 0);
        list = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d}}", f.pid);
        lookup = fmt("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"addresses\":[\"0x%" PRIx64
                     "\"]}}", f.pid, fixture_get(&f, "marker"));
        for (int round = 0; round < 2; round++) {
                _cleanup_free_ char *reply = test_call(fd, round ? list : lookup);
                _cleanup_json_ struct json_object *r = parse(reply);

                assert_null(error_of(r));
                assert_true(mappings_name(r, "/fixture-proc"));
        }
        assert_int_equal(write(f.stdin_fd, "x", 1), 1);
        assert_true(wait_for(runs_cat, f.pid));
        {
                _cleanup_free_ char *reply = test_call(fd, list);
                _cleanup_json_ struct json_object *r = parse(reply);

                assert_null(error_of(r));
                assert_true(mappings_name(r, "/cat"));
                assert_false(mappings_name(r, "/fixture-proc"));
        }
        {
                /* The old code address is gone: unmapped, or something of cat's. */
                _cleanup_free_ char *reply = test_call(fd, lookup);
                _cleanup_json_ struct json_object *r = parse(reply);

                assert_null(error_of(r));
                assert_false(mappings_name(r, "/fixture-proc"));
        }
        fixture_stop(&f);
}

/* The exec count of a fixture in its exec loop (the number after "exec-loop" in its command
 * line), or -1 when it is not (yet) in the loop. */
static long exec_count(pid_t pid) {
        char path[64], buf[256];
        _cleanup_close_ int fd = -1;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -1;
        buf[n] = 0;
        for (char *p = buf; p < buf + n; p += strlen(p) + 1)
                if (strcmp(p, "exec-loop") == 0 && p + strlen(p) + 1 < buf + n)
                        return strtol(p + strlen(p) + 1, NULL, 10);
        return -1;
}

static bool in_exec_loop(pid_t pid) {
        return exec_count(pid) >= 0;
}

/* Queries racing the target's exec: a maps fd opened just before an exec belongs to the old mm,
 * which is gone when it is read. A process alive before and after the call, with the same start
 * time (an exec keeps it), must never be NoSuchProcess, nor list no mappings at all. Each query
 * on a new connection: no connection's cached target is involved. The queries go on (Lookups and
 * ListMappings in turn) until the target has exec()ed 500 times too: a query takes a fraction of
 * an exec, and each exec is a chance for the race. */
static void check_exec_race(const char *socket) {
        enum { QUERIES = 200, EXECS = 500 };
        /* How fast the target execs beside the queries depends on the machine's load: the
         * queries go on until it has, with a guard that only catches a stuck exec loop. */
        const uint64_t guard_usec = 120 * 1000000ull;
        struct timespec t0, t;
        unsigned no_such = 0, empty = 0;
        struct fixture f;
        long first, last = 0;
        int i;

        assert_int_equal(fixture_start(0, 0, &f), 0);
        uint64_t start_time = stat_start_time(f.pid);
        _cleanup_free_ char *list = fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d}}",
                                        f.pid);
        _cleanup_free_ char *lookup = fmt("{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,"
                                          "\"addresses\":[\"0x1000\"]}}", f.pid);

        assert_int_equal(write(f.stdin_fd, "r", 1), 1);
        assert_true(wait_for(in_exec_loop, f.pid));
        first = exec_count(f.pid);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (i = 0; i < QUERIES || last - first < EXECS; i++) {
                clock_gettime(CLOCK_MONOTONIC, &t);
                if ((uint64_t) (t.tv_sec - t0.tv_sec) * 1000000u > guard_usec)
                        break;
                _cleanup_close_ int fd = test_connect(socket);
                assert_true(fd >= 0);
                _cleanup_free_ char *reply = test_call(fd, i % 2 ? list : lookup);
                assert_non_null(reply);
                _cleanup_json_ struct json_object *r = parse(reply);
                const char *e = error_of(r);

                /* The target never exits while it loops: it is alive after the call, the same. */
                assert_int_equal(kill(f.pid, 0), 0);
                assert_true(stat_start_time(f.pid) == start_time);
                if (e && strcmp(e, "io.memmapd.NoSuchProcess") == 0)
                        no_such++;
                else if (e)
                        fail_msg("query %d: %s", i, reply);
                else if (json_object_array_length(get(params_of(r), "mappings")) == 0 && i % 2)
                        empty++;
                else
                        assert_true(json_object_get_uint64(get(get(params_of(r), "process"), "start_time")) ==
                                    start_time);
                /* Between execs the command line is briefly unreadable: keep the last count. */
                long n = exec_count(f.pid);
                if (n >= 0)
                        last = n;
        }
        printf("# %d queries racing %ld execs: %u NoSuchProcess, %u empty listings\n", i, last - first, no_such, empty);
        assert_true(last - first >= EXECS);
        assert_int_equal(no_such, 0);
        assert_int_equal(empty, 0);
        fixture_stop(&f);
}

static void test_exec_race(void **state) {
        check_exec_race(daemon_default.socket);
}

static void test_exec_race_maps_backend(void **state) {
        with_maps_backend(check_exec_race);
}

struct cache_case {
        const char *socket;
        pid_t pid;
        int stdin_fd;
};

static bool owned_by_root(pid_t pid) {
        char path[64];
        struct stat st;

        /* Files under /proc/PID of a non-dumpable process belong to root. */
        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        return stat(path, &st) == 0 && st.st_uid == 0;
}

static int as_uid_a_cached(void *userdata) {
        const struct cache_case *a = userdata;
        _cleanup_close_ int fd = test_connect(a->socket);

        if (fd < 0)
                return 30;
        if (strcmp(error_on(fd, a->pid, ""), "ok") != 0)
                return 31;
        /* The target turns non-dumpable: the kernel now refuses a fresh open of its maps. */
        if (write(a->stdin_fd, "u", 1) != 1 || !wait_for(owned_by_root, a->pid))
                return 32;
        /* Another connection has no cached target: refused at once. */
        if (strcmp(child_error(a->socket, a->pid, ""), "io.memmapd.PermissionDenied") != 0)
                return 33;
        /* This one keeps what it could read for a while (TARGET_CACHE_USEC, a second), not
         * for ever: it is refused once that has passed (a call does not make it longer). */
        for (int i = 0;; i++) {
                const char *e = error_on(fd, a->pid, "");

                if (strcmp(e, "io.memmapd.PermissionDenied") == 0)
                        break;
                if (strcmp(e, "ok") != 0 || i > 3000)
                        return 34;
                usleep(10 * 1000);
        }
        return 0;
}

static void test_target_cache_permission(void **state) {
        struct cache_case a;
        struct fixture f;

        if (geteuid() != 0) {
                printf("[  SKIPPED ] needs root to switch uids\n");
                skip();
        }
        assert_int_equal(fixture_start_as(0, 0, UID_A, GID_A, 0, &f), 0);
        a = (struct cache_case) { daemon_default.socket, f.pid, f.stdin_fd };
        assert_int_equal(run_as(UID_A, GID_A, as_uid_a_cached, &a), 0);
        fixture_stop(&f);
}

/* ------------------------------------------------------------------ pid reuse */

/* Whether a mapping's name or path in a listing contains needle. */
static bool listing_names(struct json_object *mappings, const char *needle) {
        for (size_t i = 0; i < json_object_array_length(mappings); i++) {
                struct json_object *m = json_object_array_get_idx(mappings, i), *v;

                if ((json_object_object_get_ex(m, "name", &v) && strstr(json_object_get_string(v), needle)) ||
                    (json_object_object_get_ex(m, "path", &v) && strstr(json_object_get_string(v), needle)))
                        return true;
        }
        return false;
}

/* A's pid goes to B while a query about A is on its way: the answer is A's maps, or
 * NoSuchProcess, or ProcessChanged, and never B's. Each process maps a memfd named after it
 * (pidreuse-A-N, pidreuse-B-N): an answer that carries A's start time must hold A's marker
 * and nothing of B's; one that carries another start time must be B's (B's start time, read
 * here) or, holding neither marker, a process that took the pid between them. B never
 * starts within A's clock tick, so (pid, start time) always tells them apart. Rounds go on
 * until 60 pids were reused (other processes on the machine take some). */
static void test_pid_reuse_race(void **state) {
        unsigned reused = 0, answered_a = 0, answered_b = 0, refused = 0, third = 0, rounds = 0;

        /* Probe by writing back what is there: pid_max may be as low as 32768. */
        if (geteuid() != 0 || !test_set_next_pid(getpid() + 1)) {
                printf("[  SKIPPED ] cannot steer pid allocation (needs root and ns_last_pid)\n");
                skip();
        }
        for (int i = 0; reused < 60; i++) {
                _cleanup_close_ int fd = test_connect(daemon_default.socket);
                _cleanup_free_ char *msg = NULL, *reply = NULL, *name_a = fmt("pidreuse-A-%d", i),
                                              *name_b = fmt("pidreuse-B-%d", i);
                _cleanup_json_ struct json_object *r = NULL;
                struct fixture a, b;
                uint64_t ta, tb;
                pid_t p;
                bool pass_start_time = i % 4 != 3;

                assert_true(++rounds <= 1000);
                setenv("FIXTURE_MARKER_NAME", name_a, 1);
                assert_int_equal(fixture_start(10, 0, &a), 0);
                p = a.pid;
                ta = stat_start_time(p);
                msg = pass_start_time
                        ? fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,\"start_time\":%" PRIu64
                              ",\"build_ids\":true}}", p, ta)
                        : fmt("{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,\"build_ids\":true}}", p);

                /* The query goes out before the exit, between exit and reuse, or after reuse. */
                if (i % 3 == 0)
                        assert_int_equal(test_send(fd, msg), 0);
                kill(p, SIGKILL);
                fixture_stop(&a);
                if (i % 3 == 1)
                        assert_int_equal(test_send(fd, msg), 0);
                test_wait_past_tick(ta);
                setenv("FIXTURE_MARKER_NAME", name_b, 1);
                test_set_next_pid(p);
                assert_int_equal(fixture_start(2000, 0, &b), 0);
                unsetenv("FIXTURE_MARKER_NAME");
                reused += b.pid == p;
                tb = b.pid == p ? stat_start_time(p) : 0;
                assert_true(b.pid != p || tb > ta);
                if (i % 3 == 2)
                        assert_int_equal(test_send(fd, msg), 0);

                reply = test_recv(fd);
                r = parse(reply);
                if (error_of(r)) {
                        const char *e = error_of(r);

                        if (strcmp(e, "io.memmapd.NoSuchProcess") != 0 && strcmp(e, "io.memmapd.ProcessChanged") != 0)
                                fail_msg("unexpected %s", e);
                        refused++;
                } else {
                        struct json_object *proc = get(params_of(r), "process"), *mappings = get(params_of(r), "mappings");
                        uint64_t st = json_object_get_uint64(get(proc, "start_time"));
                        bool has_a = listing_names(mappings, name_a), has_b = listing_names(mappings, name_b);

                        /* A thread id answers for its thread group: the pid may have gone to
                         * a thread of another process meanwhile. */
                        bool other_group = json_object_get_int(get(proc, "pid")) != p;

                        if (pass_start_time)
                                assert_int_equal(st, ta);
                        if (has_b || st != ta)
                                printf("# round %d: start time %" PRIu64 " (A %" PRIu64 ", B %" PRIu64 "%s), %zu mappings, "
                                       "A's marker %d, B's %d\n", i, st, ta, tb, b.pid == p ? "" : ", elsewhere",
                                       json_object_array_length(mappings), has_a, has_b);
                        if (other_group) {
                                /* Another process, through one of its threads: nothing of A's
                                 * or B's. */
                                assert_false(has_a);
                                assert_false(has_b);
                                third++;
                        } else if (st == ta) {
                                /* A's identity: A's content and only A's. */
                                assert_true(has_a);
                                assert_false(has_b);
                                answered_a++;
                        } else if (b.pid == p && st == tb) {
                                /* B's identity: B's content (or B caught before it made its
                                 * marker), never A's. */
                                assert_false(has_a);
                                answered_b++;
                        } else {
                                /* Another process had the pid between A and B: its own
                                 * identity, nothing of A's or B's. */
                                assert_false(has_a);
                                assert_false(has_b);
                                assert_true(st > ta);
                                third++;
                        }
                }
                fixture_stop(&b);
        }
        printf("pid reuse: %u of %u pids reused; answers: %u about A, %u about B, %u about a third process, "
               "%u refused\n", reused, rounds, answered_a, answered_b, third, refused);
        /* Whether a query sent before the kill is answered about A first depends on the speed
         * of the daemon against the kill (a sanitizer build answered none of 60): counted,
         * not required. A query naming A's start time after A is gone can only be refused. */
        assert_true(refused > 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_get_info),
                cmocka_unit_test(test_interface_description),
                cmocka_unit_test(test_interface_parses_elsewhere),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_list_matches_proc),
                cmocka_unit_test(test_list_matches_proc_maps_backend),
                cmocka_unit_test(test_list_matches_kernel),
                cmocka_unit_test(test_list_matches_kernel_maps_backend),
                cmocka_unit_test(test_lookup),
                cmocka_unit_test(test_profiler_processes),
                cmocka_unit_test(test_profiler_processes_maps_backend),
                cmocka_unit_test(test_not_utf8_names),
                cmocka_unit_test(test_not_utf8_names_maps_backend),
                cmocka_unit_test(test_pid_beyond_pid_max),
                cmocka_unit_test(test_memctl_prints_any_error),
                cmocka_unit_test(test_memctl_error_words),
                cmocka_unit_test(test_memctl_lookup_json),
                cmocka_unit_test(test_libmemctl_splits_batches),
                cmocka_unit_test(test_vdso_image),
                cmocka_unit_test(test_vdso_cache),
                cmocka_unit_test(test_build_id_slow_writer),
                cmocka_unit_test(test_process_changed),
                cmocka_unit_test(test_pipelined),
                cmocka_unit_test(test_half_close),
                cmocka_unit_test(test_huge_integers),
                cmocka_unit_test(test_malformed_closes),
                cmocka_unit_test(test_disconnect_mid_reply),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_exit_while_queried),
                cmocka_unit_test(test_exit_while_streamed),
                cmocka_unit_test(test_streamed_edges),
                cmocka_unit_test(test_sigterm_finishes_in_flight),
                cmocka_unit_test(test_libmemctl),
                cmocka_unit_test(test_memctl),
                cmocka_unit_test(test_memctl_usage),
                cmocka_unit_test(test_memctl_commands),
                cmocka_unit_test(test_memctl_permission),
                cmocka_unit_test(test_status_counters),
                cmocka_unit_test(test_status_tracking),
                cmocka_unit_test(test_access),
                cmocka_unit_test(test_target_cache_exec),
                cmocka_unit_test(test_exec_race),
                cmocka_unit_test(test_exec_race_maps_backend),
                cmocka_unit_test(test_target_cache_permission),
                cmocka_unit_test(test_pid_reuse_race),
        };

        /* MEMMAPD_TEST_FILTER=test_exec_race*: only those (for working on one). */
        if (getenv("MEMMAPD_TEST_FILTER"))
                cmocka_set_test_filter(getenv("MEMMAPD_TEST_FILTER"));
        return cmocka_run_group_tests(tests, setup, teardown);
}
