/* Lookup's symbols against the real daemon and real processes: every answer checked against
 * nm's symbol ranges and against eu-addr2line, for libc (.dynsym), a binary with a full .symtab,
 * the vdso, and a stripped binary whose .symtab comes from a debug file under a test root. */

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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "fixture.h"
#include "libmemctl.h"

/* Addresses per symbol: its start, middle and last byte. */
#define PER_SYMBOL 3
#define ADDRESSES_MAX 30000

/* One symbol as nm prints it with -S: only sized ones are kept. */
struct nm_sym {
        uint64_t value, size;
        char *name;             /* without a version (@GLIBC_...) */
};

struct truth {
        struct nm_sym *syms;
        size_t n;
};

static void truth_done(struct truth *t) {
        for (size_t i = 0; i < t->n; i++)
                free(t->syms[i].name);
        free(t->syms);
        *t = (struct truth) {};
}

/* The sections of the memory image (readelf's flag A): a symbol elsewhere has no address. */
static char *alloc_sections(const char *file) {
        _cleanup_free_ char *cmd = NULL, *out = NULL;
        char *names = strdup("|");

        assert_true(asprintf(&cmd, "LC_ALL=C readelf -SW '%s' 2>/dev/null", file) > 0);
        out = test_run_capture(cmd);
        assert_non_null(out);
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
                char name[256], type[64], flags[32];
                unsigned long long addr, off, size, es;
                char *bracket = strchr(line, ']');

                if (!bracket || sscanf(bracket + 1, "%255s %63s %llx %llx %llx %llx %31s", name, type, &addr, &off, &size,
                                       &es, flags) != 7 || !strchr(flags, 'A'))
                        continue;
                char *n = NULL;
                assert_true(asprintf(&n, "%s%s|", names, name) > 0);
                free(names);
                names = n;
        }
        return names;
}

/* nm's System V format names each symbol's type: the daemon answers with functions and objects
 * of the memory image. */
static void load_nm(const char *file, bool dynamic, struct truth *ret) {
        _cleanup_free_ char *cmd = NULL, *out = NULL, *alloc = alloc_sections(file);
        struct truth t = {};
        size_t allocated = 0;

        assert_true(asprintf(&cmd, "LC_ALL=C nm -f sysv --defined-only %s '%s'", dynamic ? "-D" : "", file) > 0);
        out = test_run_capture(cmd);
        assert_non_null(out);
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
                char *field[7];
                size_t nf = 0;

                for (char *c = line; nf < ELEMENTSOF(field);) {
                        field[nf++] = c;
                        c = strchr(c, '|');
                        if (!c)
                                break;
                        *c++ = 0;
                }
                if (nf != 7)
                        continue;
                for (size_t i = 0; i < nf; i++) {
                        size_t l;

                        field[i] += strspn(field[i], " ");
                        for (l = strlen(field[i]); l > 0 && field[i][l - 1] == ' '; l--)
                                field[i][l - 1] = 0;
                }
                /* STT_GNU_IFUNC (10) is "<OS specific>: 10" to nm. */
                bool ifunc = strlen(field[3]) > 4 && strcmp(field[3] + strlen(field[3]) - 4, ": 10") == 0;
                if ((strcmp(field[3], "FUNC") != 0 && strcmp(field[3], "OBJECT") != 0 && !ifunc) ||
                    field[6][0] == '*' || field[4][0] == 0)
                        continue;
                char section[300];
                snprintf(section, sizeof(section), "|%s|", field[6]);
                if (!strstr(alloc, section))
                        continue;
                uint64_t value = strtoull(field[1], NULL, 16), size = strtoull(field[4], NULL, 16);
                if (size == 0)
                        continue;
                /* nm -D adds the version from .gnu.version; in a .symtab, "@@" is part of the name. */
                if (dynamic)
                        field[0][strcspn(field[0], "@")] = 0;
                if (t.n == allocated) {
                        allocated = allocated ? 2 * allocated : 1024;
                        t.syms = realloc(t.syms, allocated * sizeof(*t.syms));
                        assert_non_null(t.syms);
                }
                t.syms[t.n++] = (struct nm_sym) { .value = value, .size = size, .name = strdup(field[0]) };
        }
        assert_true(t.n > 0);
        *ret = t;
}

/* Whether some symbol nm lists starts at value, is named name and covers vaddr. */
static bool truth_covers(const struct truth *t, const char *name, uint64_t value, uint64_t vaddr) {
        for (size_t i = 0; i < t->n; i++)
                if (t->syms[i].value == value && vaddr - value < t->syms[i].size && strcmp(t->syms[i].name, name) == 0)
                        return true;
        return false;
}

/* Whether a symbol named name starts at value (any size): eu-addr2line's pick among aliases. */
static bool truth_alias(const struct truth *t, const char *name, uint64_t value) {
        for (size_t i = 0; i < t->n; i++)
                if (t->syms[i].value == value && strcmp(t->syms[i].name, name) == 0)
                        return true;
        return false;
}

struct seg {
        uint64_t offset, vaddr, filesz;
};

struct range {
        uint64_t start, end, offset;
};

/* Where the process maps the file at ELF address vaddr: the PT_LOAD (readelf) holding it in its
 * file part, and the maps line (the kernel's text) holding that file offset. */
struct placement {
        struct seg segs[16];
        size_t n_segs;
        struct range ranges[32];
        size_t n_ranges;
};

static void load_placement(const char *file, pid_t pid, const char *maps_name, struct placement *ret) {
        _cleanup_free_ char *cmd = NULL, *out = NULL;
        char path[64], line[4096];
        struct placement p = {};
        FILE *f;

        assert_true(asprintf(&cmd, "LC_ALL=C readelf -lW '%s' 2>/dev/null", file) > 0);
        out = test_run_capture(cmd);
        assert_non_null(out);
        for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
                unsigned long long off, vaddr, paddr, filesz;

                if (sscanf(l, " LOAD %llx %llx %llx %llx", &off, &vaddr, &paddr, &filesz) == 4 &&
                    p.n_segs < ELEMENTSOF(p.segs))
                        p.segs[p.n_segs++] = (struct seg) { off, vaddr, filesz };
        }
        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        f = fopen(path, "re");
        assert_non_null(f);
        while (fgets(line, sizeof(line), f)) {
                unsigned long long start, end, off;
                int name_at = 0;

                line[strcspn(line, "\n")] = 0;
                if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %n", &start, &end, &off, &name_at) == 3 && name_at > 0 &&
                    strcmp(line + name_at, maps_name) == 0 && p.n_ranges < ELEMENTSOF(p.ranges))
                        p.ranges[p.n_ranges++] = (struct range) { start, end, off };
        }
        fclose(f);
        assert_true(p.n_segs > 0);
        assert_true(p.n_ranges > 0);
        *ret = p;
}

static bool place(const struct placement *p, uint64_t vaddr, uint64_t *ret) {
        for (size_t i = 0; i < p->n_segs; i++) {
                const struct seg *s = &p->segs[i];

                if (vaddr < s->vaddr || vaddr - s->vaddr >= s->filesz)
                        continue;
                uint64_t fo = vaddr - s->vaddr + s->offset;
                for (size_t j = 0; j < p->n_ranges; j++) {
                        const struct range *r = &p->ranges[j];

                        if (fo >= r->offset && fo - r->offset < r->end - r->start) {
                                *ret = r->start + fo - r->offset;
                                return true;
                        }
                }
        }
        return false;
}

struct probe {
        uint64_t address, vaddr;
};

/* Addresses inside the sized symbols of t, at most max. */
static size_t make_probes(const struct truth *t, const struct placement *p, struct probe *probes, size_t max) {
        size_t n = 0;

        for (size_t i = 0; i < t->n && n + PER_SYMBOL <= max; i++) {
                const uint64_t offs[PER_SYMBOL] = { 0, t->syms[i].size / 2, t->syms[i].size - 1 };

                for (size_t k = 0; k < PER_SYMBOL; k++) {
                        uint64_t vaddr = t->syms[i].value + offs[k], address;

                        if ((k > 0 && offs[k] == offs[k - 1]) || !place(p, vaddr, &address))
                                continue;
                        probes[n++] = (struct probe) { address, vaddr };
                }
        }
        return n;
}

/* A Lookup of every probe with symbols: the results array (a reference into *ret_reply). */
static struct json_object *lookup(const char *socket, pid_t pid, const struct probe *probes, size_t n, bool symbols,
                                  struct json_object **ret_reply) {
        size_t size = 128 + n * 24, len;
        _cleanup_free_ char *msg = malloc(size), *reply = NULL;
        struct json_object *r, *params, *results;
        _cleanup_close_ int fd = -1;

        assert_non_null(msg);
        len = (size_t) snprintf(msg, size, "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,%s\"addresses\":[",
                                (int) pid, symbols ? "\"symbols\":true," : "");
        for (size_t i = 0; i < n; i++)
                len += (size_t) snprintf(msg + len, size - len, "%s\"0x%" PRIx64 "\"", i ? "," : "", probes[i].address);
        snprintf(msg + len, size - len, "]}}");

        fd = test_connect(socket);
        assert_true(fd >= 0);
        reply = test_call(fd, msg);
        assert_non_null(reply);
        r = json_tokener_parse(reply);
        assert_non_null(r);
        if (!json_object_object_get_ex(r, "parameters", &params) ||
            !json_object_object_get_ex(params, "results", &results)) {
                fprintf(stderr, "reply: %.300s\n", reply);
                fail();
        }
        assert_int_equal(json_object_array_length(results), n);
        *ret_reply = r;
        return results;
}

static const char *member_string(struct json_object *o, const char *key) {
        struct json_object *v;

        return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

struct answer {
        const char *name;       /* NULL: none */
        uint64_t offset;
        bool size_unknown;
};

static void read_answers(struct json_object *results, size_t n, struct answer *ret) {
        for (size_t i = 0; i < n; i++) {
                struct json_object *o = json_object_array_get_idx(results, i), *v;
                const char *off = member_string(o, "symbol_offset");

                ret[i] = (struct answer) { .name = member_string(o, "symbol") };
                if (ret[i].name) {
                        assert_non_null(off);
                        ret[i].offset = strtoull(off, NULL, 16);
                }
                ret[i].size_unknown = json_object_object_get_ex(o, "symbol_size_unknown", &v) && json_object_get_boolean(v);
        }
}

/* eu-addr2line -S's "name+0xoff" for each vaddr (no debug files: debuginfo_path is empty),
 * checked against the daemon's answers: where the daemon names a symbol, eu-addr2line names one
 * at the same value (an alias as nm lists them) with the same offset. Returns how many agreed. */
static size_t check_addr2line(const char *file, const char *debuginfo_path, const struct truth *t,
                              const struct probe *probes, const struct answer *answers, size_t n) {
        char tmp[] = "/tmp/memmapd-sym-XXXXXX";
        _cleanup_free_ char *cmd = NULL, *out = NULL;
        size_t agreed = 0, i = 0;
        int fd = mkstemp(tmp);
        FILE *f;

        assert_true(fd >= 0);
        f = fdopen(fd, "w");
        assert_non_null(f);
        for (size_t k = 0; k < n; k++)
                fprintf(f, "0x%" PRIx64 "\n", probes[k].vaddr);
        fclose(f);
        assert_true(asprintf(&cmd, "eu-addr2line --debuginfo-path='%s' -S -e '%s' < %s", debuginfo_path, file, tmp) > 0);
        out = test_run_capture(cmd);
        unlink(tmp);
        assert_non_null(out);

        /* Two lines per address: the symbol, then file:line. */
        char *save = NULL;
        for (char *line = strtok_r(out, "\n", &save); line && i < n; line = strtok_r(NULL, "\n", &save), i++) {
                char *plus = strrchr(line, '+');
                uint64_t off = 0;

                (void) strtok_r(NULL, "\n", &save);
                if (!answers[i].name)
                        continue;
                if (plus) {
                        *plus = 0;
                        off = strtoull(plus + 1, NULL, 16);
                }
                if (off != answers[i].offset || !truth_alias(t, line, probes[i].vaddr - off)) {
                        fprintf(stderr, "vaddr 0x%" PRIx64 ": memmapd %s+0x%" PRIx64 ", eu-addr2line %s+0x%" PRIx64 "\n",
                                probes[i].vaddr, answers[i].name, answers[i].offset, line, off);
                        fail();
                }
                agreed++;
        }
        assert_int_equal(i, n);
        return agreed;
}

/* libmemctl's MEMCTL_SYMBOLS gives what the reply said, for every probe. */
static void check_libmemctl(const char *socket, pid_t pid, const struct probe *probes, const struct answer *answers,
                            size_t n) {
        _cleanup_free_ uint64_t *addrs = calloc(n, sizeof(*addrs));
        memctl_lookup_reply *l = NULL;
        memctl *c = NULL;

        assert_non_null(addrs);
        for (size_t i = 0; i < n; i++)
                addrs[i] = probes[i].address;
        assert_int_equal(memctl_connect(socket, &c), 0);
        assert_int_equal(memctl_lookup(c, pid, 0, addrs, n, MEMCTL_SYMBOLS, &l), 0);
        assert_int_equal(memctl_lookup_reply_count(l), n);
        for (size_t i = 0; i < n; i++) {
                struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;

                assert_int_equal(memctl_lookup_reply_get(l, i, &res), 0);
                assert_string_equal(res.symbol, answers[i].name);
                assert_int_equal(res.symbol_offset, answers[i].offset);
                assert_int_equal(res.symbol_size_unknown, answers[i].size_unknown);
        }
        memctl_lookup_reply_free(l);
        memctl_free(c);
}

/* Every probe answered with a symbol nm says covers it, at its value; then eu-addr2line's
 * answers. Returns the answers (malloc'd) for more checks. */
static struct answer *check_object(const char *socket, pid_t pid, const char *file, const char *maps_name,
                                   bool dynamic, const char *truth_file, const char *label, size_t *ret_n,
                                   struct json_object **ret_reply) {
        struct probe *probes = calloc(ADDRESSES_MAX, sizeof(*probes));
        struct answer *answers = calloc(ADDRESSES_MAX, sizeof(*answers));
        struct json_object *results;
        struct placement place_of;
        struct truth t;
        size_t n, agreed;

        assert_non_null(probes);
        assert_non_null(answers);
        load_nm(truth_file ?: file, dynamic, &t);
        load_placement(file, pid, maps_name, &place_of);
        n = make_probes(&t, &place_of, probes, ADDRESSES_MAX);
        assert_true(n >= 10);

        results = lookup(socket, pid, probes, n, true, ret_reply);
        read_answers(results, n, answers);
        for (size_t i = 0; i < n; i++) {
                struct json_object *o = json_object_array_get_idx(results, i);
                const char *vaddr = member_string(o, "elf_vaddr");

                assert_non_null(vaddr);
                assert_int_equal(strtoull(vaddr, NULL, 16), probes[i].vaddr);
                if (!answers[i].name || answers[i].size_unknown ||
                    !truth_covers(&t, answers[i].name, probes[i].vaddr - answers[i].offset, probes[i].vaddr)) {
                        fprintf(stderr, "%s: vaddr 0x%" PRIx64 ": memmapd says %s+0x%" PRIx64 "%s\n", label,
                                probes[i].vaddr, answers[i].name ?: "(none)", answers[i].offset,
                                answers[i].size_unknown ? " (size unknown)" : "");
                        fail();
                }
        }

        /* eu-addr2line, given no debug files, reads the same table as the daemon. */
        agreed = check_addr2line(truth_file ?: file, "/nonexistent-memmapd-debug", &t, probes, answers, n);
        check_libmemctl(socket, pid, probes, answers, n);
        printf("%s: %zu addresses, all covered as nm says; %zu agree with eu-addr2line\n", label, n, agreed);
        assert_int_equal(agreed, n);
        truth_done(&t);
        free(probes);
        *ret_n = n;
        return answers;
}

static char tmpdir[] = "/tmp/memmapd-test-symbols-XXXXXX";

static void run(const char *fmt, ...) {
        _cleanup_free_ char *cmd = NULL;
        va_list ap;

        va_start(ap, fmt);
        assert_true(vasprintf(&cmd, fmt, ap) > 0);
        va_end(ap);
        if (system(cmd) != 0) {
                fprintf(stderr, "failed: %s\n", cmd);
                fail();
        }
}

static void start_daemon(const char *debug_dir, struct test_daemon *d) {
        _cleanup_free_ char *set = NULL;

        assert_true(asprintf(&set, "--set=DebugFileDirectory=%s", debug_dir) > 0);
        const char *args[] = { set, NULL };
        assert_int_equal(test_daemon_start(args, d), 0);
}

static const char *libc_path(pid_t pid) {
        static char path[4096];
        char maps[64], line[4096];
        FILE *f;

        snprintf(maps, sizeof(maps), "/proc/%d/maps", (int) pid);
        f = fopen(maps, "re");
        assert_non_null(f);
        path[0] = 0;
        while (fgets(line, sizeof(line), f)) {
                char *slash = strchr(line, '/');

                if (slash && strstr(slash, "/libc.so.6\n")) {
                        slash[strcspn(slash, "\n")] = 0;
                        snprintf(path, sizeof(path), "%s", slash);
                        break;
                }
        }
        fclose(f);
        assert_true(path[0] == '/');
        return path;
}

static int64_t status_counter(const char *socket, const char *key) {
        _cleanup_close_ int fd = test_connect(socket);
        _cleanup_free_ char *status = NULL;
        struct json_object *st, *params, *v;
        int64_t value;

        assert_true(fd >= 0);
        status = test_call(fd, "{\"method\":\"io.memmapd.GetStatus\",\"parameters\":{}}");
        assert_non_null(status);
        st = json_tokener_parse(status);
        assert_non_null(st);
        assert_true(json_object_object_get_ex(st, "parameters", &params));
        assert_true(json_object_object_get_ex(params, key, &v));
        value = json_object_get_int64(v);
        json_object_put(st);
        return value;
}

/* With MaxSymbolMemory= below a table's size nothing is kept: every call reads the table
 * again, and answers as well. */
static void test_small_cache(void **state) {
        _cleanup_free_ char *empty = NULL, *set = NULL;
        struct json_object *reply;
        struct test_daemon d;
        struct fixture fx;
        size_t n;

        (void) state;
        assert_true(asprintf(&empty, "%s/empty-small", tmpdir) > 0);
        assert_true(asprintf(&set, "--set=DebugFileDirectory=%s", empty) > 0);
        assert_int_equal(mkdir(empty, 0755), 0);
        const char *args[] = { set, "--set=MaxSymbolMemory=65536", NULL };
        assert_int_equal(test_daemon_start(args, &d), 0);
        assert_int_equal(fixture_start(0, 0, &fx), 0);

        free(check_object(d.socket, fx.pid, libc_path(fx.pid), libc_path(fx.pid), true, NULL, "libc, 64 KiB of tables",
                          &n, &reply));
        json_object_put(reply);
        assert_int_equal(status_counter(d.socket, "symbol_cache_hits"), 0);
        assert_true(status_counter(d.socket, "symbol_cache_misses") >= 2);
        assert_true(status_counter(d.socket, "symbol_cache_bytes") <= 65536);

        fixture_stop(&fx);
        assert_int_equal(test_daemon_stop(&d), 0);
}

/* libc as Debian ships it (.dynsym only; no debug root), and the fixture (a full .symtab). */
static void test_libc_and_symtab(void **state) {
        _cleanup_free_ char *empty = NULL;
        struct test_daemon d;
        struct fixture fx;
        struct json_object *reply;
        struct answer *answers;
        size_t n;

        (void) state;
        assert_true(asprintf(&empty, "%s/empty", tmpdir) > 0);
        assert_int_equal(mkdir(empty, 0755), 0);
        start_daemon(empty, &d);
        assert_int_equal(fixture_start(0, 0, &fx), 0);

        answers = check_object(d.socket, fx.pid, libc_path(fx.pid), libc_path(fx.pid), true, NULL, "libc (.dynsym)", &n,
                               &reply);
        free(answers);
        json_object_put(reply);

        char exe[4096], link[64];
        snprintf(link, sizeof(link), "/proc/%d/exe", (int) fx.pid);
        ssize_t len = readlink(link, exe, sizeof(exe) - 1);
        assert_true(len > 0);
        exe[len] = 0;
        answers = check_object(d.socket, fx.pid, exe, exe, false, NULL, "fixture (.symtab)", &n, &reply);
        free(answers);
        json_object_put(reply);

        /* A larger binary with a full .symtab: the daemon itself, asked about its own process. */
        char dexe[4096];
        snprintf(link, sizeof(link), "/proc/%d/exe", (int) d.pid);
        len = readlink(link, dexe, sizeof(dexe) - 1);
        assert_true(len > 0);
        dexe[len] = 0;
        answers = check_object(d.socket, d.pid, dexe, dexe, false, NULL, "memmapd (.symtab)", &n, &reply);
        assert_true(n >= 1000);
        free(answers);
        json_object_put(reply);

        /* The second Lookup of libc's table is a hit; without symbols: none in the results. */
        struct probe one, first[PER_SYMBOL];
        struct placement p;
        struct truth t;

        load_nm(exe, false, &t);
        load_placement(exe, fx.pid, exe, &p);
        assert_true(make_probes(&t, &p, first, PER_SYMBOL) > 0);
        one = first[0];
        truth_done(&t);
        struct json_object *results = lookup(d.socket, fx.pid, &one, 1, false, &reply);
        assert_null(member_string(json_object_array_get_idx(results, 0), "symbol"));
        json_object_put(reply);

        /* Each table read once (a miss), then kept: libmemctl's Lookup of the same addresses hit. */
        assert_true(status_counter(d.socket, "symbol_cache_misses") >= 3);
        assert_true(status_counter(d.socket, "symbol_cache_hits") >= 3);
        assert_true(status_counter(d.socket, "symbol_cache_bytes") > 0);

        fixture_stop(&fx);
        assert_int_equal(test_daemon_stop(&d), 0);
}

/* libc with its .symtab from the system's debug root, where libc6-dbg installed its debug file. */
static void test_libc_debug_package(void **state) {
        char id[128], debug[256];
        struct json_object *reply;
        struct test_daemon d;
        struct fixture fx;
        size_t n;

        (void) state;
        assert_int_equal(fixture_start(0, 0, &fx), 0);
        const char *libc = libc_path(fx.pid);
        assert_int_equal(test_readelf_build_id(libc, id, sizeof(id)), 1);
        snprintf(debug, sizeof(debug), "/usr/lib/debug/.build-id/%.2s/%s.debug", id, id + 2);
        if (access(debug, R_OK) < 0) {
                printf("skipped: no debug file for libc at %s (libc6-dbg)\n", debug);
                fixture_stop(&fx);
                skip();
        }
        start_daemon("/usr/lib/debug", &d);
        free(check_object(d.socket, fx.pid, libc, libc, false, debug, "libc (.symtab of libc6-dbg)", &n, &reply));
        assert_true(n >= 1000);
        json_object_put(reply);
        fixture_stop(&fx);
        assert_int_equal(test_daemon_stop(&d), 0);
}

/* The vdso, from its image: the truth is nm on the image read from the process's memory. */
static void test_vdso(void **state) {
        _cleanup_free_ char *empty = NULL, *image_path = NULL, *mem = NULL;
        struct test_daemon d;
        struct fixture fx;
        struct json_object *reply;
        size_t n;

        (void) state;
        assert_true(asprintf(&empty, "%s/empty-vdso", tmpdir) > 0);
        assert_int_equal(mkdir(empty, 0755), 0);
        start_daemon(empty, &d);
        assert_int_equal(fixture_start(0, 0, &fx), 0);

        /* The image, as a debugger reads it. */
        assert_true(asprintf(&image_path, "%s/vdso.so", tmpdir) > 0);
        assert_true(asprintf(&mem, "/proc/%d/mem", (int) fx.pid) > 0);
        {
                struct placement any = {};
                char maps[64], line[512];
                FILE *f;

                snprintf(maps, sizeof(maps), "/proc/%d/maps", (int) fx.pid);
                f = fopen(maps, "re");
                assert_non_null(f);
                while (fgets(line, sizeof(line), f))
                        if (strstr(line, "[vdso]")) {
                                unsigned long long s, e;
                                assert_int_equal(sscanf(line, "%llx-%llx", &s, &e), 2);
                                any.ranges[any.n_ranges++] = (struct range) { s, e, 0 };
                        }
                fclose(f);
                if (any.n_ranges == 0) {
                        printf("skipped: the fixture has no vdso\n");
                        fixture_stop(&fx);
                        test_daemon_stop(&d);
                        skip();
                }
                size_t size = any.ranges[0].end - any.ranges[0].start;
                _cleanup_free_ uint8_t *buf = malloc(size);
                _cleanup_close_ int mfd = open(mem, O_RDONLY | O_CLOEXEC);
                _cleanup_close_ int out = open(image_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                assert_true(buf && mfd >= 0 && out >= 0);
                assert_int_equal(pread(mfd, buf, size, (off_t) any.ranges[0].start), (ssize_t) size);
                assert_int_equal(write(out, buf, size), (ssize_t) size);
        }
        free(check_object(d.socket, fx.pid, image_path, "[vdso]", true, NULL, "vdso", &n, &reply));
        json_object_put(reply);

        fixture_stop(&fx);
        assert_int_equal(test_daemon_stop(&d), 0);
}

/* A stripped binary with its .symtab in a -dbgsym style debug file under a debug root: the
 * names are the unstripped binary's; with no debug root, or with a debug file of another
 * build ID at its path, they are not. */
static void test_debug_file(void **state) {
        const char *orig = test_program("FIXTURE_PROC", "tests/fixture-proc");
        _cleanup_free_ char *stripped = NULL, *root = NULL, *wrong = NULL, *empty = NULL, *saved = NULL;
        struct answer *with_debug, *without;
        struct json_object *reply, *results;
        struct placement place_of;
        struct test_daemon d;
        struct fixture fx;
        struct probe *probes;
        struct truth t;
        char id[128];
        size_t n, differ = 0;

        (void) state;
        assert_true(asprintf(&stripped, "%s/fixture-stripped", tmpdir) > 0);
        assert_true(asprintf(&root, "%s/debug", tmpdir) > 0);
        assert_true(asprintf(&wrong, "%s/debug-wrong", tmpdir) > 0);
        assert_true(asprintf(&empty, "%s/debug-empty", tmpdir) > 0);
        run("strip --strip-all -o '%s' '%s'", stripped, orig);
        assert_int_equal(test_readelf_build_id(stripped, id, sizeof(id)), 1);
        assert_true(strlen(id) > 2);
        run("mkdir -p '%s/.build-id/%.2s' '%s/.build-id/%.2s' '%s'", root, id, wrong, id, empty);
        run("objcopy --only-keep-debug '%s' '%s/.build-id/%.2s/%s.debug'", orig, root, id, id + 2);
        /* Another binary's debug file, at this build ID's path. */
        run("objcopy --only-keep-debug '%s' '%s/.build-id/%.2s/%s.debug'",
            test_program("MEMMAPD", "daemon/memmapd"), wrong, id, id + 2);

        saved = strdup(getenv("FIXTURE_PROC") ?: "");
        setenv("FIXTURE_PROC", stripped, 1);
        assert_int_equal(fixture_start(0, 0, &fx), 0);
        if (saved[0])
                setenv("FIXTURE_PROC", saved, 1);
        else
                unsetenv("FIXTURE_PROC");

        start_daemon(root, &d);
        with_debug = check_object(d.socket, fx.pid, stripped, stripped, false, orig, "stripped + debug file", &n, &reply);
        json_object_put(reply);
        assert_int_equal(test_daemon_stop(&d), 0);

        /* The same addresses without the debug file, and with a wrong one: .dynsym at most. */
        probes = calloc(ADDRESSES_MAX, sizeof(*probes));
        without = calloc(ADDRESSES_MAX, sizeof(*without));
        assert_true(probes && without);
        load_nm(orig, false, &t);
        load_placement(stripped, fx.pid, stripped, &place_of);
        assert_int_equal(make_probes(&t, &place_of, probes, ADDRESSES_MAX), n);
        const char *roots[] = { empty, wrong };
        for (size_t k = 0; k < ELEMENTSOF(roots); k++) {
                start_daemon(roots[k], &d);
                results = lookup(d.socket, fx.pid, probes, n, true, &reply);
                read_answers(results, n, without);
                differ = 0;
                for (size_t i = 0; i < n; i++)
                        differ += !without[i].name || strcmp(without[i].name, with_debug[i].name) != 0;
                /* The fixture's own functions are not exported: without the debug file most
                 * addresses have no name. */
                printf("%s: %zu of %zu addresses without the debug file's name\n", k ? "wrong build ID" : "no debug root",
                       differ, n);
                assert_true(differ > n / 2);
                json_object_put(reply);
                assert_int_equal(test_daemon_stop(&d), 0);
        }

        truth_done(&t);
        free(probes);
        free(without);
        free(with_debug);
        fixture_stop(&fx);
}

/* The offset and size of a section, from readelf. */
static void section_of(const char *file, const char *section, uint64_t *ret_off, uint64_t *ret_size) {
        _cleanup_free_ char *cmd = NULL, *out = NULL;

        assert_true(asprintf(&cmd, "LC_ALL=C readelf -SW '%s' 2>/dev/null", file) > 0);
        out = test_run_capture(cmd);
        assert_non_null(out);
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
                char name[256], type[64];
                unsigned long long addr, off, size;
                char *bracket = strchr(line, ']');

                if (bracket && sscanf(bracket + 1, "%255s %63s %llx %llx %llx", name, type, &addr, &off, &size) == 5 &&
                    strcmp(name, section) == 0) {
                        *ret_off = off;
                        *ret_size = size;
                        return;
                }
        }
        fail_msg("%s has no %s", file, section);
}

/* A file anyone could write: libc's bytes (its build ID too) with every letter of its .dynstr
 * made 'Q', owned by another user and mapped by a process. Its made-up names answer for it,
 * and never for the real libc of another process, whichever is asked first. */
static void test_planted_table(void **state) {
        _cleanup_free_ char *fake = NULL, *empty = NULL;
        uint64_t off = 0, size = 0;
        struct json_object *reply, *results;
        struct placement real_place, fake_place;
        struct test_daemon d;
        struct fixture fx;
        struct truth t;
        struct probe p[2];
        int pipefd[2], ready[2];
        pid_t child;
        char c;

        (void) state;
        assert_int_equal(fixture_start(0, 0, &fx), 0);
        const char *libc = libc_path(fx.pid);
        assert_true(asprintf(&fake, "%s/planted-libc.so.6", tmpdir) > 0);
        assert_true(asprintf(&empty, "%s/empty-planted", tmpdir) > 0);
        assert_int_equal(mkdir(empty, 0755), 0);
        run("cp '%s' '%s'", libc, fake);
        section_of(fake, ".dynstr", &off, &size);
        {
                _cleanup_free_ char *buf = malloc(size);
                _cleanup_close_ int fd = open(fake, O_RDWR | O_CLOEXEC);

                assert_true(buf && fd >= 0);
                assert_int_equal(pread(fd, buf, size, (off_t) off), (ssize_t) size);
                for (uint64_t i = 0; i < size; i++)
                        if ((buf[i] >= 'a' && buf[i] <= 'z') || (buf[i] >= 'A' && buf[i] <= 'Z'))
                                buf[i] = 'Q';
                assert_int_equal(pwrite(fd, buf, size, (off_t) off), (ssize_t) size);
        }
        assert_int_equal(chown(fake, 41021, 41021), 0);

        /* A process mapping the file (a plain mapping: the daemon reads the file, not the loader). */
        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                int fd = open(fake, O_RDONLY | O_CLOEXEC);
                struct stat st;

                if (fd < 0 || fstat(fd, &st) < 0 ||
                    mmap(NULL, (size_t) st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED)
                        test_child_exit(1);
                close(pipefd[1]);
                (void) !write(ready[1], "r", 1);
                (void) !read(pipefd[0], &c, 1);
                test_child_exit(0);
        }
        close(pipefd[0]);
        close(ready[1]);
        /* The child says when its mapping is there (EOF: it failed). */
        assert_int_equal(read(ready[0], &c, 1), 1);
        close(ready[0]);

        /* The function at the middle of nm -D's list, in both processes. */
        load_nm(libc, true, &t);
        const struct nm_sym *s = &t.syms[t.n / 2];
        load_placement(libc, fx.pid, libc, &real_place);
        load_placement(fake, child, fake, &fake_place);
        assert_true(place(&fake_place, s->value + s->size / 2, &p[0].address));
        assert_true(place(&real_place, s->value + s->size / 2, &p[1].address));
        p[0].vaddr = p[1].vaddr = s->value + s->size / 2;

        for (int order = 0; order < 2; order++) {
                start_daemon(empty, &d);
                for (int k = 0; k < 2; k++) {
                        bool planted = (k == 0) == (order == 0);
                        struct answer a;

                        results = lookup(d.socket, planted ? child : fx.pid, &p[planted ? 0 : 1], 1, true, &reply);
                        read_answers(results, 1, &a);
                        assert_non_null(a.name);
                        if (planted)
                                assert_int_equal(strspn(a.name, "Q_.0123456789"), strlen(a.name));
                        else if (!truth_covers(&t, a.name, p[1].vaddr - a.offset, p[1].vaddr))
                                fail_msg("real libc answered %s+0x%" PRIx64 " after the planted table", a.name, a.offset);
                        json_object_put(reply);
                }
                assert_int_equal(test_daemon_stop(&d), 0);
        }
        printf("planted table: made-up names for the planted file only, in both orders\n");

        close(pipefd[1]);
        assert_int_equal(waitpid(child, NULL, 0), child);
        truth_done(&t);
        fixture_stop(&fx);
}

int main(void) {
        setvbuf(stdout, NULL, _IONBF, 0);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_libc_and_symtab),
                cmocka_unit_test(test_libc_debug_package),
                cmocka_unit_test(test_vdso),
                cmocka_unit_test(test_debug_file),
                cmocka_unit_test(test_planted_table),
                cmocka_unit_test(test_small_cache),
        };
        int r;

        signal(SIGPIPE, SIG_IGN);
        if (!getenv("MEMMAPD") || system("command -v eu-addr2line >/dev/null") != 0) {
                printf("skipped: needs $MEMMAPD (make check) and eu-addr2line (elfutils)\n");
                return 77;
        }
        if (!mkdtemp(tmpdir))
                return 1;
        r = cmocka_run_group_tests(tests, NULL, NULL);
        _cleanup_free_ char *cmd = NULL;
        if (asprintf(&cmd, "rm -rf '%s'", tmpdir) > 0)
                (void) system(cmd);
        return r;
}
