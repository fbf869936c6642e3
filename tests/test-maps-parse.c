/* Unit tests for the /proc/PID/maps text parser (daemon/engine/maps-parse.c) and the name classifier. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "mapping.h"
#include "maps-parse.h"
#include "procmap-ioctl.h"

#define UNUSED __attribute__((unused))

/* The columns of a typical 64-bit line up to and including the padding before the name. */
#define COLS "55d0c8a00000-55d0c8a28000 r--p 00001000 fd:01 1311234                    "

static void parse_ok(const char *line, struct mapping *m) {
        int r = maps_parse_line(line, strlen(line), m);

        if (r != 0)
                print_error("line not accepted: \"%s\"\n", line);
        assert_int_equal(r, 0);
}

static void expect_name(const char *line, const char *name, enum mapping_kind kind, bool deleted) {
        struct mapping m = {};

        parse_ok(line, &m);
        if (name) {
                assert_non_null(m.name);
                assert_string_equal(m.name, name);
        } else
                assert_null(m.name);
        assert_int_equal(m.kind, kind);
        assert_int_equal(m.deleted, deleted);
        mapping_done(&m);
}

static char *xstrdup(const char *s) {
        char *p = strdup(s);

        assert_non_null(p);
        return p;
}

/* ------------------------------------------------------------------ single lines */

static void test_file_path_fields(void **state UNUSED) {
        struct mapping m;

        memset(&m, 0xAA, sizeof(m));
        parse_ok("55d0c8a00000-55d0c8a28000 r-xp 0002a000 fd:01 1311234                    /usr/bin/cat", &m);
        assert_true(m.start == 0x55d0c8a00000ULL);
        assert_true(m.end == 0x55d0c8a28000ULL);
        assert_true(m.offset == 0x2a000ULL);
        assert_int_equal(m.dev_major, 0xfd);
        assert_int_equal(m.dev_minor, 0x01);
        assert_true(m.inode == 1311234);
        assert_int_equal(m.flags, MAPPING_READ | MAPPING_EXEC);
        assert_int_equal(m.page_size, 0);
        assert_int_equal(m.build_id_len, 0);
        assert_string_equal(m.name, "/usr/bin/cat");
        assert_int_equal(m.kind, MAPPING_KIND_FILE);
        assert_false(m.deleted);
        mapping_done(&m);
        assert_null(m.name);
}

static void test_field_limits(void **state UNUSED) {
        struct mapping m = {};

        /* Largest values of every column, big device numbers, uppercase hex, short fields. */
        parse_ok("0-ffffffffffffffff rwxs ffffffffffffffff ffffffff:fffff 18446744073709551615", &m);
        assert_true(m.start == 0);
        assert_true(m.end == UINT64_MAX);
        assert_true(m.offset == UINT64_MAX);
        assert_true(m.dev_major == 0xffffffffu);
        assert_true(m.dev_minor == 0xfffffu);
        assert_true(m.inode == UINT64_MAX);
        assert_int_equal(m.flags, MAPPING_READ | MAPPING_WRITE | MAPPING_EXEC | MAPPING_SHARED);
        assert_null(m.name);
        mapping_done(&m);

        parse_ok("ABCDEF00-ABCDF000 ---p 0000000A 0A:1B 7", &m);
        assert_true(m.start == 0xabcdef00ULL);
        assert_true(m.end == 0xabcdf000ULL);
        assert_true(m.offset == 10);
        assert_int_equal(m.dev_major, 0x0a);
        assert_int_equal(m.dev_minor, 0x1b);
        assert_true(m.inode == 7);
        assert_int_equal(m.flags, 0);
        mapping_done(&m);

        /* A 32-bit kernel's 8-digit addresses. */
        parse_ok("08048000-08049000 r-xp 00000000 03:01 1234       /bin/x", &m);
        assert_true(m.start == 0x08048000ULL);
        assert_string_equal(m.name, "/bin/x");
        mapping_done(&m);

        /* end == start parses (normalize drops it later). */
        parse_ok("7f0000001000-7f0000001000 rw-p 00000000 00:00 0 ", &m);
        assert_true(m.start == m.end);
        mapping_done(&m);
}

static void test_perms(void **state UNUSED) {
        static const char *const r = "r-", *const w = "w-", *const x = "x-", *const s = "sp";

        for (unsigned bits = 0; bits < 16; bits++) {
                char line[128];
                struct mapping m = {};
                uint32_t want = 0;

                snprintf(line, sizeof(line), "1000-2000 %c%c%c%c 00000000 00:00 0 ",
                         r[!(bits & 1)], w[!(bits & 2)], x[!(bits & 4)], s[!(bits & 8)]);
                if (bits & 1)
                        want |= MAPPING_READ;
                if (bits & 2)
                        want |= MAPPING_WRITE;
                if (bits & 4)
                        want |= MAPPING_EXEC;
                if (bits & 8)
                        want |= MAPPING_SHARED;
                parse_ok(line, &m);
                assert_int_equal(m.flags, want);

                char buf[5];
                assert_memory_equal(perms_format(m.flags, buf), line + 10, 4);
                mapping_done(&m);
        }

        struct mapping m = {};
        parse_ok("7f0a1b000000-7f0a1b021000 rw-s 00000000 00:01 4242                       /dev/shm/x", &m);
        assert_int_equal(m.flags, MAPPING_READ | MAPPING_WRITE | MAPPING_SHARED);
        assert_int_equal(m.kind, MAPPING_KIND_FILE);
        mapping_done(&m);
}

static void test_name_forms(void **state UNUSED) {
        expect_name(COLS "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6",
                    MAPPING_KIND_FILE, false);
        /* Spaces inside and at the end of a name are kept; names are never split. */
        expect_name(COLS "/tmp/my file  with   spaces ", "/tmp/my file  with   spaces ", MAPPING_KIND_FILE, false);
        expect_name(COLS "/tmp/tab\there", "/tmp/tab\there", MAPPING_KIND_FILE, false);
        /* A CR is a legal filename byte: kept as is. */
        expect_name(COLS "/tmp/cr\r", "/tmp/cr\r", MAPPING_KIND_FILE, false);
        /* Only one space is needed between the inode and the name. */
        expect_name("1000-2000 r--p 00000000 08:01 12 /x", "/x", MAPPING_KIND_FILE, false);

        /* A file literally named "x (deleted)": the raw name is kept, classification says deleted. */
        expect_name(COLS "/tmp/x (deleted)", "/tmp/x (deleted)", MAPPING_KIND_FILE, true);
        expect_name(COLS "/tmp/x (deleted) (deleted)", "/tmp/x (deleted) (deleted)", MAPPING_KIND_FILE, true);

        expect_name(COLS "[heap]", "[heap]", MAPPING_KIND_HEAP, false);
        expect_name("7ffd1c6a1000-7ffd1c6c2000 rw-p 00000000 00:00 0                          [stack]", "[stack]",
                    MAPPING_KIND_STACK, false);
        expect_name(COLS "[stack:1234]", "[stack:1234]", MAPPING_KIND_STACK, false);
        expect_name(COLS "[vdso]", "[vdso]", MAPPING_KIND_VDSO, false);
        expect_name(COLS "[vvar]", "[vvar]", MAPPING_KIND_VVAR, false);
        expect_name(COLS "[vvar_vclock]", "[vvar_vclock]", MAPPING_KIND_VVAR, false);
        expect_name(COLS "/memfd:foo (deleted)", "/memfd:foo (deleted)", MAPPING_KIND_MEMFD, false);
        expect_name(COLS "/memfd:with space (deleted)", "/memfd:with space (deleted)", MAPPING_KIND_MEMFD, false);
        expect_name(COLS "/dev/zero (deleted)", "/dev/zero (deleted)", MAPPING_KIND_SPECIAL, false);
        expect_name(COLS "/SYSV00000000 (deleted)", "/SYSV00000000 (deleted)", MAPPING_KIND_SPECIAL, false);
        expect_name(COLS "anon_inode:[perf_event]", "anon_inode:[perf_event]", MAPPING_KIND_SPECIAL, false);
        expect_name(COLS "[uprobes]", "[uprobes]", MAPPING_KIND_SPECIAL, false);
        expect_name(COLS "[anon:my name]", "[anon:my name]", MAPPING_KIND_ANON_NAMED, false);
        expect_name(COLS "[anon_shmem:x]", "[anon_shmem:x]", MAPPING_KIND_SHMEM_NAMED, false);
}

static void test_vsyscall(void **state UNUSED) {
        struct mapping m = {};

        parse_ok("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]", &m);
        assert_true(m.start == 0xffffffffff600000ULL);
        assert_true(m.end == 0xffffffffff601000ULL);
        assert_true(m.start >= (1ULL << 63));
        assert_int_equal(m.flags, MAPPING_EXEC);
        assert_string_equal(m.name, "[vsyscall]");
        assert_int_equal(m.kind, MAPPING_KIND_VSYSCALL);
        mapping_done(&m);
}

static void test_anonymous(void **state UNUSED) {
        static const char *const lines[] = {
                "7f0a1b000000-7f0a1b021000 rw-p 00000000 00:00 0 ",
                "7f0a1b000000-7f0a1b021000 rw-p 00000000 00:00 0",
                "7f0a1b000000-7f0a1b021000 rw-p 00000000 00:00 0                          ",
        };

        for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
                struct mapping m;

                memset(&m, 0xAA, sizeof(m));
                parse_ok(lines[i], &m);
                assert_null(m.name);
                assert_int_equal(m.kind, MAPPING_KIND_ANONYMOUS);
                assert_false(m.deleted);
                assert_true(m.start == 0x7f0a1b000000ULL);
                assert_true(m.end == 0x7f0a1b021000ULL);
                assert_true(m.inode == 0);
                assert_int_equal(m.page_size, 0);
                assert_int_equal(m.build_id_len, 0);
                mapping_done(&m);
        }
}

static void test_escapes(void **state UNUSED) {
        expect_name(COLS "/tmp/a\\012b", "/tmp/a\nb", MAPPING_KIND_FILE, false);
        expect_name(COLS "/tmp/\\012\\012", "/tmp/\n\n", MAPPING_KIND_FILE, false);
        expect_name(COLS "/tmp/nl\\012 (deleted)", "/tmp/nl\n (deleted)", MAPPING_KIND_FILE, true);
        expect_name(COLS "/memfd:a\\012b (deleted)", "/memfd:a\nb (deleted)", MAPPING_KIND_MEMFD, false);
        /* Every other backslash stays, including incomplete and other octal sequences. */
        expect_name(COLS "/tmp/back\\slash", "/tmp/back\\slash", MAPPING_KIND_FILE, false);
        expect_name(COLS "/tmp/x\\01", "/tmp/x\\01", MAPPING_KIND_FILE, false);
        expect_name(COLS "/tmp/x\\", "/tmp/x\\", MAPPING_KIND_FILE, false);
        expect_name(COLS "/tmp/x\\040y", "/tmp/x\\040y", MAPPING_KIND_FILE, false);
        expect_name(COLS "/tmp/x\\0123", "/tmp/x\n3", MAPPING_KIND_FILE, false);
        expect_name(COLS "/tmp/x\\\\012", "/tmp/x\\\n", MAPPING_KIND_FILE, false);
}

/* Builds COLS + body, checking it fits; the caller frees. */
static char *make_line(const char *body) {
        size_t n = strlen(COLS) + strlen(body);
        char *line = malloc(n + 1);

        assert_non_null(line);
        strcpy(line, COLS);
        strcat(line, body);
        return line;
}

static void test_long_names(void **state UNUSED) {
        _cleanup_free_ char *path = NULL, *line = NULL, *esc = NULL, *nl = NULL;
        struct mapping m = {};

        /* PATH_MAX - 1 characters. */
        path = malloc(PATH_MAX);
        assert_non_null(path);
        path[0] = '/';
        memset(path + 1, 'a', PATH_MAX - 2);
        path[PATH_MAX - 1] = 0;
        assert_int_equal(strlen(path), 4095);
        line = make_line(path);
        parse_ok(line, &m);
        assert_string_equal(m.name, path);
        assert_int_equal(m.kind, MAPPING_KIND_FILE);
        mapping_done(&m);
        free(TAKE_PTR(line));

        /* 4095 newlines, escaped to 4 * 4095 characters. */
        esc = malloc(4 * 4095 + sizeof(DELETED_SUFFIX) + 1);
        nl = malloc(4095 + 1);
        assert_non_null(esc);
        assert_non_null(nl);
        for (size_t i = 0; i < 4095; i++)
                memcpy(esc + 4 * i, "\\012", 4);
        esc[4 * 4095] = 0;
        memset(nl, '\n', 4095);
        nl[4095] = 0;
        line = make_line(esc);
        assert_true(strlen(line) <= MAPS_LINE_MAX);
        parse_ok(line, &m);
        assert_int_equal(strlen(m.name), 4095);
        assert_string_equal(m.name, nl);
        assert_int_equal(m.kind, MAPPING_KIND_SPECIAL);
        mapping_done(&m);
        free(TAKE_PTR(line));

        /* The worst real case: a path of PATH_MAX - 1 bytes, all but the '/' newlines, unlinked. */
        esc[0] = '/';
        memmove(esc + 1, esc + 4, 4 * 4094);
        strcpy(esc + 1 + 4 * 4094, DELETED_SUFFIX);
        line = make_line(esc);
        assert_true(strlen(line) <= MAPS_LINE_MAX);
        parse_ok(line, &m);
        assert_int_equal(strlen(m.name), 4095 + strlen(DELETED_SUFFIX));
        assert_int_equal(m.name[0], '/');
        assert_int_equal(m.name[4094], '\n');
        assert_int_equal(m.kind, MAPPING_KIND_FILE);
        assert_true(m.deleted);
        assert_int_equal(mapping_path_len(&m), 4095);
        mapping_done(&m);
}

static void test_line_length_limit(void **state UNUSED) {
        _cleanup_free_ char *line = NULL;
        size_t cols = strlen(COLS);
        struct mapping m = {};

        line = malloc(MAPS_LINE_MAX + 2);
        assert_non_null(line);
        memcpy(line, COLS, cols);
        line[cols] = '/';
        memset(line + cols + 1, 'b', MAPS_LINE_MAX + 1 - cols - 1);
        line[MAPS_LINE_MAX + 1] = 0;

        /* Exactly MAPS_LINE_MAX: accepted. */
        assert_int_equal(maps_parse_line(line, MAPS_LINE_MAX, &m), 0);
        assert_int_equal(strlen(m.name), MAPS_LINE_MAX - cols);
        mapping_done(&m);

        /* One more: refused, *ret untouched. */
        memset(&m, 0x5A, sizeof(m));
        struct mapping copy = m;
        assert_int_equal(maps_parse_line(line, MAPS_LINE_MAX + 1, &m), -EINVAL);
        assert_memory_equal(&m, &copy, sizeof(m));
}

/* The same text with a NUL byte spliced in at position at. */
static void expect_nul_rejected(const char *text, size_t at) {
        size_t n = strlen(text);
        _cleanup_free_ char *buf = malloc(n + 1);
        struct mapping m = {};

        assert_non_null(buf);
        memcpy(buf, text, at);
        buf[at] = 0;
        memcpy(buf + at + 1, text + at, n - at);
        assert_int_equal(maps_parse_line(buf, n + 1, &m), -EINVAL);
        assert_null(m.name);
}

static void test_hostile_lines(void **state UNUSED) {
        static const char *const bad[] = {
                "",
                " ",
                "                                        ",
                "\r",
                "garbage",
                /* Truncated after each field and separator. */
                "55d0c8a00000",
                "55d0c8a00000-",
                "55d0c8a00000-55d0c8a28000",
                "55d0c8a00000-55d0c8a28000 ",
                "55d0c8a00000-55d0c8a28000 r",
                "55d0c8a00000-55d0c8a28000 r--",
                "55d0c8a00000-55d0c8a28000 r--p",
                "55d0c8a00000-55d0c8a28000 r--p ",
                "55d0c8a00000-55d0c8a28000 r--p 00000000",
                "55d0c8a00000-55d0c8a28000 r--p 00000000 ",
                "55d0c8a00000-55d0c8a28000 r--p 00000000 fd",
                "55d0c8a00000-55d0c8a28000 r--p 00000000 fd:",
                "55d0c8a00000-55d0c8a28000 r--p 00000000 fd:01",
                "55d0c8a00000-55d0c8a28000 r--p 00000000 fd:01 ",
                "55d0c8a00000-55d0c8a28000 r--p 00000000 fd:01   /x",
                /* Bad perms. */
                "55d0c8a00000-55d0c8a28000 rw-x 00000000 fd:01 1 /x",
                "55d0c8a00000-55d0c8a28000 R--p 00000000 fd:01 1 /x",
                "55d0c8a00000-55d0c8a28000 w--p 00000000 fd:01 1 /x",
                "55d0c8a00000-55d0c8a28000 -r-p 00000000 fd:01 1 /x",
                "55d0c8a00000-55d0c8a28000 rwx? 00000000 fd:01 1 /x",
                "55d0c8a00000-55d0c8a28000 rwxpp 00000000 fd:01 1 /x",
                "55d0c8a00000-55d0c8a28000 rwx 00000000 fd:01 1 /x",
                "55d0c8a00000-55d0c8a28000 ---- 00000000 fd:01 1 /x",
                /* Too many digits: 17-digit addresses and offset, 9-digit dev, 21-digit inode. */
                "00000000000000001-55d0c8a28000 r--p 00000000 fd:01 1 /x",
                "1000-00000000000002000 r--p 00000000 fd:01 1 /x",
                "1000-10000000000000000 r--p 00000000 fd:01 1 /x",
                "1000-2000 r--p 00000000000000000 fd:01 1 /x",
                "1000-2000 r--p 00000000 000000001:01 1 /x",
                "1000-2000 r--p 00000000 01:000000001 1 /x",
                "1000-2000 r--p 00000000 01:01 000000000000000000001 /x",
                "1000-2000 r--p 00000000 01:01 18446744073709551616 /x",
                "1000-2000 r--p 00000000 01:01 99999999999999999999 /x",
                /* Non-hex / non-decimal characters, signs, prefixes. */
                "55d0g8a00000-55d0c8a28000 r--p 00000000 fd:01 1 /x",
                "55d0c8a00000-55d0c8a2800z r--p 00000000 fd:01 1 /x",
                "0x1000-0x2000 r--p 00000000 fd:01 1 /x",
                "1000-2000 r--p 0000000g fd:01 1 /x",
                "1000-2000 r--p 00000000 fg:01 1 /x",
                "1000-2000 r--p 00000000 fd:0g 1 /x",
                "1000-2000 r--p 00000000 fd:01 1a /x",
                "1000-2000 r--p 00000000 fd:01 -1 /x",
                "1000-2000 r--p 00000000 fd:01 +1 /x",
                "1000-2000 r--p 00000000 fd:01 0x1 /x",
                "-1000-2000 r--p 00000000 fd:01 1 /x",
                "1000--2000 r--p 00000000 fd:01 1 /x",
                /* Missing or wrong separators. */
                "55d0c8a00000 55d0c8a28000 r--p 00000000 fd:01 1 /x",
                "55d0c8a0000055d0c8a28000 r--p 00000000 fd:01 1 /x",
                "1000-2000 r--p 00000000 fd-01 1 /x",
                "1000-2000 r--p 00000000 fd01 1 /x",
                "1000-2000  r--p 00000000 fd:01 1 /x",
                "1000-2000 r--p  00000000 fd:01 1 /x",
                "1000-2000 r--p 00000000  fd:01 1 /x",
                "1000-2000 r--p 00000000 fd:01  1 /x",
                "1000-2000\tr--p 00000000 fd:01 1 /x",
                "1000-2000 r--p 00000000 fd:01 1\t/x",
                "1000-2000 r--p 00000000 fd:01 1[heap]",
                " 1000-2000 r--p 00000000 fd:01 1 /x",
                "1000-2000 r--p 00000000 fd:01 0\r",
                "1000-2000 r--p\r00000000 fd:01 0",
                /* end < start. */
                "2000-1000 r--p 00000000 fd:01 1 /x",
                "ffffffffff601000-ffffffffff600000 --xp 00000000 00:00 0 [vsyscall]",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct mapping m, copy;
                int r;

                memset(&m, 0xA5, sizeof(m));
                copy = m;
                r = maps_parse_line(bad[i], strlen(bad[i]), &m);
                if (r != -EINVAL)
                        print_error("accepted: \"%s\" (%d)\n", bad[i], r);
                assert_int_equal(r, -EINVAL);
                assert_memory_equal(&m, &copy, sizeof(m));
        }

        /* NUL bytes in every column and in the name. */
        static const char good[] = "55d0c8a00000-55d0c8a28000 r--p 00000000 fd:01 1311234                    /usr/bin/cat";
        for (size_t at = 0; at <= strlen(good); at++)
                expect_nul_rejected(good, at);
        expect_nul_rejected("1000-2000 r--p 00000000 fd:01 0 ", 32);

        /* NULL with length, and argument checks. */
        struct mapping m = {};
        assert_int_equal(maps_parse_line(NULL, 5, &m), -EINVAL);
        assert_int_equal(maps_parse_line(NULL, 0, &m), -EINVAL);
        assert_int_equal(maps_parse_line("1000-2000 r--p 00000000 fd:01 0", 31, NULL), -EINVAL);

        /* The length is honoured: the bytes after it are not looked at. */
        static const char longer[] = "1000-2000 r--p 00000000 fd:01 7 /abc GARBAGE";
        assert_int_equal(maps_parse_line(longer, strlen(longer) - 8, &m), 0);
        assert_string_equal(m.name, "/abc");
        mapping_done(&m);
        assert_int_equal(maps_parse_line(longer, 28, &m), -EINVAL); /* cut inside the dev */
}

/* ------------------------------------------------------------------ buffers */

static void assert_normalized(const struct mapping_list *l) {
        for (size_t i = 0; i < l->n; i++) {
                assert_true(l->items[i].start < l->items[i].end);
                if (i > 0)
                        assert_true(l->items[i - 1].end <= l->items[i].start);
        }
}

static void test_buffer_multiline(void **state UNUSED) {
        static const char text[] =
                "55d0c8a00000-55d0c8a28000 r--p 00000000 fd:01 1311234                    /usr/bin/cat\n"
                "7ffd1c6a1000-7ffd1c6c2000 rw-p 00000000 00:00 0                          [stack]\n"
                "7f0a1b000000-7f0a1b021000 rw-p 00000000 00:00 0 \n"
                "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
                /* Overlaps the [stack] line: dropped (the earlier, larger one at that start wins). */
                "7ffd1c6b0000-7ffd1c6b1000 r--p 00000000 00:00 0                          [overlap]\n"
                /* Same start as cat, shorter: dropped. */
                "55d0c8a00000-55d0c8a01000 r--p 00000000 fd:01 1311234                    /usr/bin/dup\n"
                /* Empty range: dropped. */
                "7f0a1c000000-7f0a1c000000 rw-p 00000000 00:00 0\n"
                "7f0a1b021000-7f0a1b022000 r-xs 00001000 00:05 77                         /memfd:foo (deleted)\n"
                /* Final line without '\n'. */
                "55d0c8a28000-55d0c8a30000 r-xp 00028000 fd:01 1311234                    /usr/bin/cat";
        struct mapping_list l = {};

        assert_int_equal(maps_parse_buffer(text, strlen(text), &l), 0);
        assert_int_equal(l.n, 6);
        assert_normalized(&l);

        assert_true(l.items[0].start == 0x55d0c8a00000ULL);
        assert_true(l.items[0].end == 0x55d0c8a28000ULL);
        assert_string_equal(l.items[0].name, "/usr/bin/cat");
        assert_true(l.items[1].start == 0x55d0c8a28000ULL);
        assert_true(l.items[1].offset == 0x28000ULL);
        assert_string_equal(l.items[1].name, "/usr/bin/cat");
        assert_null(l.items[2].name);
        assert_int_equal(l.items[2].kind, MAPPING_KIND_ANONYMOUS);
        assert_string_equal(l.items[3].name, "/memfd:foo (deleted)");
        assert_int_equal(l.items[3].kind, MAPPING_KIND_MEMFD);
        assert_int_equal(l.items[3].flags, MAPPING_READ | MAPPING_EXEC | MAPPING_SHARED);
        assert_string_equal(l.items[4].name, "[stack]");
        assert_int_equal(l.items[4].kind, MAPPING_KIND_STACK);
        assert_string_equal(l.items[5].name, "[vsyscall]");
        assert_int_equal(l.items[5].kind, MAPPING_KIND_VSYSCALL);

        assert_int_equal(mapping_list_find(&l, 0x7ffd1c6b0000ULL), 4);
        assert_int_equal(mapping_list_find(&l, 0x1000), -1);

        /* A trailing '\n' adds no line; appending to a non-empty list merges and normalizes. */
        static const char more[] = "1000-2000 r--p 00000000 00:00 0 [anon:x]\n";
        assert_int_equal(maps_parse_buffer(more, strlen(more), &l), 0);
        assert_int_equal(l.n, 7);
        assert_normalized(&l);
        assert_string_equal(l.items[0].name, "[anon:x]");
        assert_int_equal(l.items[0].kind, MAPPING_KIND_ANON_NAMED);
        assert_string_equal(l.items[1].name, "/usr/bin/cat");

        /* Empty text: nothing appended, still success. */
        assert_int_equal(maps_parse_buffer("", 0, &l), 0);
        assert_int_equal(maps_parse_buffer(NULL, 0, &l), 0);
        assert_int_equal(l.n, 7);

        mapping_list_done(&l);
        assert_null(l.items);
        assert_int_equal(l.n, 0);

        /* Into an empty list. */
        assert_int_equal(maps_parse_buffer(more, strlen(more), &l), 0);
        assert_int_equal(l.n, 1);
        mapping_list_done(&l);
}

static void test_buffer_malformed(void **state UNUSED) {
        static const char *const bad[] = {
                "1000-2000 r--p 00000000 00:00 0\n3000-4000 r--p 00000000 00:00 0\nbroken\n5000-6000 r--p 00000000 00:00 0\n",
                "1000-2000 r--p 00000000 00:00 0\n3000-4000 r--p 00000000 00:00 0\nbroken",
                "1000-2000 r--p 00000000 00:00 0\n\n3000-4000 r--p 00000000 00:00 0\n",
                "\n",
                "1000-2000 r--p 00000000 00:00 0\n3000-4000 r--p 00000000 00:00 0\n ",
                "1000-2000 r--p 00000000 00:00 0\r\n3000-4000 r--p 00000000 00:00 0\r\n",
                "1000-2000 r--p 00000000 00:00 0\n3000-2000 r--p 00000000 00:00 0\n",
                "1000-2000 r--p 00000000 00:00 0\n3000-4000 r--x 00000000 00:00 0\n",
        };
        struct mapping_list l = {};
        struct mapping m = { .start = 0x10, .end = 0x20, .name = xstrdup("/keep") };

        assert_int_equal(mapping_list_push(&l, &m), 0);
        struct mapping_list copy = l;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = maps_parse_buffer(bad[i], strlen(bad[i]), &l);

                if (r != -EBADMSG)
                        print_error("accepted buffer %zu (%d)\n", i, r);
                assert_int_equal(r, -EBADMSG);
                assert_memory_equal(&l, &copy, sizeof(l));
                assert_string_equal(l.items[0].name, "/keep");
        }

        /* A NUL byte in the middle of the text. */
        static const char withnul[] = "1000-2000 r--p 00000000 00:00 0\n3000-4000 r--p 00000000 00:00 0 /a\0b\n";
        assert_int_equal(maps_parse_buffer(withnul, sizeof(withnul) - 1, &l), -EBADMSG);
        assert_memory_equal(&l, &copy, sizeof(l));

        /* An overlong line, both terminated and at the end. */
        size_t n = MAPS_LINE_MAX + 100;
        _cleanup_free_ char *big = malloc(n + 64);
        assert_non_null(big);
        strcpy(big, "1000-2000 r--p 00000000 00:00 0 /");
        size_t k = strlen(big);
        memset(big + k, 'c', MAPS_LINE_MAX + 1 - k);
        big[MAPS_LINE_MAX + 1] = 0;
        assert_int_equal(maps_parse_buffer(big, MAPS_LINE_MAX + 1, &l), -EBADMSG);
        assert_memory_equal(&l, &copy, sizeof(l));
        big[MAPS_LINE_MAX + 1] = '\n';
        assert_int_equal(maps_parse_buffer(big, MAPS_LINE_MAX + 2, &l), -EBADMSG);
        assert_memory_equal(&l, &copy, sizeof(l));
        /* Exactly MAPS_LINE_MAX plus its '\n' is fine. */
        big[MAPS_LINE_MAX] = '\n';
        assert_int_equal(maps_parse_buffer(big, MAPS_LINE_MAX + 1, &l), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.items[0].name, "/keep");
        assert_int_equal(strlen(l.items[1].name), MAPS_LINE_MAX - k + 1);

        assert_int_equal(maps_parse_buffer(NULL, 3, &l), -EINVAL);
        assert_int_equal(maps_parse_buffer("", 0, NULL), -EINVAL);
        mapping_list_done(&l);
}

/* ------------------------------------------------------------------ file descriptors */

static int make_memfd(const char *text, size_t len) {
        int fd = memfd_create("maps-test", MFD_CLOEXEC);
        size_t done = 0;

        assert_true(fd >= 0);
        while (done < len) {
                ssize_t n = write(fd, text + done, len - done);

                assert_true(n > 0);
                done += (size_t) n;
        }
        return fd;
}

struct textbuf {
        char *p;
        size_t n, allocated;
};

static void tb_append(struct textbuf *b, const char *s, size_t len) {
        if (b->n + len + 1 > b->allocated) {
                size_t a = MAX(b->allocated * 2, b->n + len + 1);
                char *p = realloc(b->p, a);

                assert_non_null(p);
                b->p = p;
                b->allocated = a;
        }
        memcpy(b->p + b->n, s, len);
        b->n += len;
        b->p[b->n] = 0;
}

#define N_BIG 20000

/* 20,000 lines of varying length and names (some long, some escaped), in one text well over
 * a read chunk, so lines straddle read boundaries. No final '\n' when final_newline is false. */
static void make_big_text(struct textbuf *b, bool final_newline) {
        _cleanup_free_ char *longname = malloc(1501);

        assert_non_null(longname);
        memset(longname, 'L', 1500);
        longname[0] = '/';
        longname[1500] = 0;

        for (unsigned i = 0; i < N_BIG; i++) {
                char line[4096];
                uint64_t start = 0x100000000ULL + (uint64_t) i * 0x3000;
                int n;

                switch (i % 5) {
                case 0:
                        n = snprintf(line, sizeof(line), "%012llx-%012llx r-xp %08x fd:01 %u                    /usr/lib/lib%u.so",
                                     (unsigned long long) start, (unsigned long long) start + 0x2000, i * 0x1000, i, i);
                        break;
                case 1:
                        n = snprintf(line, sizeof(line), "%012llx-%012llx rw-p 00000000 00:00 0 ",
                                     (unsigned long long) start, (unsigned long long) start + 0x1000);
                        break;
                case 2:
                        n = snprintf(line, sizeof(line), "%012llx-%012llx rw-s 00000000 00:01 %u                    /memfd:n\\012%u (deleted)",
                                     (unsigned long long) start, (unsigned long long) start + 0x3000, i, i);
                        break;
                case 3:
                        n = snprintf(line, sizeof(line), "%012llx-%012llx r--p 00000000 fd:01 %u                    %s",
                                     (unsigned long long) start, (unsigned long long) start + 0x1000, i, longname);
                        break;
                default:
                        n = snprintf(line, sizeof(line), "%012llx-%012llx ---p 00000000 00:00 0",
                                     (unsigned long long) start, (unsigned long long) start + 0x2000);
                        break;
                }
                assert_true(n > 0 && (size_t) n < sizeof(line));
                tb_append(b, line, (size_t) n);
                if (i + 1 < N_BIG || final_newline)
                        tb_append(b, "\n", 1);
        }
}

static void check_big_list(const struct mapping_list *l) {
        char want[64];

        assert_int_equal(l->n, N_BIG);
        assert_normalized(l);
        for (unsigned i = 0; i < N_BIG; i++) {
                const struct mapping *m = &l->items[i];

                assert_true(m->start == 0x100000000ULL + (uint64_t) i * 0x3000);
                switch (i % 5) {
                case 0:
                        snprintf(want, sizeof(want), "/usr/lib/lib%u.so", i);
                        assert_string_equal(m->name, want);
                        assert_true(m->offset == (uint64_t) i * 0x1000);
                        assert_true(m->inode == i);
                        assert_int_equal(m->kind, MAPPING_KIND_FILE);
                        break;
                case 1:
                        assert_null(m->name);
                        assert_int_equal(m->flags, MAPPING_READ | MAPPING_WRITE);
                        break;
                case 2:
                        snprintf(want, sizeof(want), "/memfd:n\n%u (deleted)", i);
                        assert_string_equal(m->name, want);
                        assert_int_equal(m->kind, MAPPING_KIND_MEMFD);
                        assert_true(m->end - m->start == 0x3000);
                        break;
                case 3:
                        assert_int_equal(strlen(m->name), 1500);
                        assert_int_equal(m->name[1499], 'L');
                        break;
                default:
                        assert_null(m->name);
                        assert_int_equal(m->flags, 0);
                        break;
                }
        }
}

static void test_read_fd_big(void **state UNUSED) {
        for (int final_newline = 0; final_newline <= 1; final_newline++) {
                struct textbuf b = {};
                struct mapping_list l = {};
                _cleanup_close_ int fd = -1;

                make_big_text(&b, final_newline);
                assert_true(b.n > 8 * 128 * 1024);
                fd = make_memfd(b.p, b.n);
                /* The file position is at the end: reading must still start at offset 0. */
                assert_int_equal(maps_read_fd(fd, &l), 0);
                check_big_list(&l);

                /* The same text through maps_parse_buffer gives the same list. */
                struct mapping_list l2 = {};
                assert_int_equal(maps_parse_buffer(b.p, b.n, &l2), 0);
                assert_int_equal(l2.n, l.n);
                for (size_t i = 0; i < l.n; i++) {
                        assert_true(l.items[i].start == l2.items[i].start);
                        assert_true(l.items[i].end == l2.items[i].end);
                        assert_int_equal(l.items[i].flags, l2.items[i].flags);
                        if (l.items[i].name)
                                assert_string_equal(l.items[i].name, l2.items[i].name);
                        else
                                assert_null(l2.items[i].name);
                }
                mapping_list_done(&l2);
                mapping_list_done(&l);
                free(b.p);
        }
}

struct visits {
        struct mapping_list l;
        size_t calls, fail_at;  /* the call (1-based) that fails with -ECANCELED; 0: none */
};

static int record_visit(struct mapping *m, void *userdata) {
        struct visits *v = userdata;

        if (++v->calls == v->fail_at)
                return -ECANCELED;
        return mapping_list_push_copy(&v->l, m);
}

/* maps_read_each() visits lines as read (no sorting), lends names unescaped, and stops at a
 * malformed line or at the visitor's error. */
static void test_read_each(void **state UNUSED) {
        static const char text[] =
                "7f0a1b021000-7f0a1b022000 r-xs 00001000 00:05 77                         /memfd:a\\012b (deleted)\n"
                "1000-2000 rw-p 00000000 00:00 0\n"
                "3000-4000 r--p 00000000 fd:01 5                          /x y\n"
                "5000-6000 ---p 00000000 00:00 0                          [anon:z]";
        static const char bad[] = "1000-2000 rw-p 00000000 00:00 0\n3000-4000 r--p 00000000 fd:01 5 /x\nbad\n5000-6000 ---p 0 0:0 0\n";
        _cleanup_close_ int fd = make_memfd(text, strlen(text)), bfd = make_memfd(bad, strlen(bad));
        struct visits v = {}, w = { .fail_at = 2 }, x = {};

        assert_int_equal(maps_read_each(fd, record_visit, &v), 0);
        assert_int_equal(v.l.n, 4);
        assert_true(v.l.items[0].start == 0x7f0a1b021000 && v.l.items[1].start == 0x1000);
        assert_string_equal(v.l.items[0].name, "/memfd:a\nb (deleted)");
        assert_int_equal(v.l.items[0].kind, MAPPING_KIND_MEMFD);
        assert_null(v.l.items[1].name);
        assert_int_equal(v.l.items[1].kind, MAPPING_KIND_ANONYMOUS);
        assert_string_equal(v.l.items[2].name, "/x y");
        assert_string_equal(v.l.items[3].name, "[anon:z]");
        assert_int_equal(v.l.items[3].kind, MAPPING_KIND_ANON_NAMED);

        assert_int_equal(maps_read_each(fd, record_visit, &w), -ECANCELED);
        assert_int_equal(w.calls, 2);
        assert_int_equal(w.l.n, 1);

        assert_int_equal(maps_read_each(bfd, record_visit, &x), -EBADMSG);
        assert_int_equal(x.l.n, 2);

        assert_int_equal(maps_read_each(-1, record_visit, &x), -EBADF);
        assert_int_equal(maps_read_each(fd, NULL, &x), -EINVAL);
        mapping_list_done(&v.l);
        mapping_list_done(&w.l);
        mapping_list_done(&x.l);
}

/* Past the first pages maps_read_each() reads ahead on a second thread: the lines visited
 * must be exactly those of the text, in order, and a visitor failing deep into the text (the
 * reader then several chunks ahead) must stop it cleanly. */
static void test_read_each_read_ahead(void **state UNUSED) {
        struct textbuf b = {};
        struct mapping_list want = {};
        struct visits v = {}, w = { .fail_at = N_BIG - 7 };

        make_big_text(&b, false);
        assert_true(b.n > 4 * 128 * 1024);
        assert_int_equal(maps_parse_buffer(b.p, b.n, &want), 0);
        {
                _cleanup_close_ int fd = make_memfd(b.p, b.n);

                assert_int_equal(maps_read_each(fd, record_visit, &v), 0);
                assert_int_equal(maps_read_each(fd, record_visit, &w), -ECANCELED);
        }
        /* The text is in address order already, so normalizing kept every line. */
        assert_int_equal(v.l.n, want.n);
        for (size_t i = 0; i < want.n; i++) {
                assert_true(v.l.items[i].start == want.items[i].start && v.l.items[i].end == want.items[i].end);
                if (want.items[i].name)
                        assert_string_equal(v.l.items[i].name, want.items[i].name);
                else
                        assert_null(v.l.items[i].name);
        }
        assert_int_equal(w.calls, N_BIG - 7);
        assert_int_equal(w.l.n, N_BIG - 8);
        mapping_list_done(&v.l);
        mapping_list_done(&w.l);
        mapping_list_done(&want);
        free(b.p);
}

static void test_read_fd_errors(void **state UNUSED) {
        struct mapping_list l = {};
        struct mapping m = { .start = 0x10, .end = 0x20, .name = xstrdup("/keep") };
        struct textbuf b = {};

        assert_int_equal(mapping_list_push(&l, &m), 0);
        struct mapping_list copy = l;

        /* A malformed line far into the file, after several full chunks. */
        make_big_text(&b, true);
        size_t cut = b.n - 1000;
        while (b.p[cut] != '\n')
                cut++;
        char saved = b.p[cut + 1];
        b.p[cut + 1] = 'X';
        {
                _cleanup_close_ int fd = make_memfd(b.p, b.n);
                assert_int_equal(maps_read_fd(fd, &l), -EBADMSG);
                assert_memory_equal(&l, &copy, sizeof(l));
        }

        /* A NUL in the middle of a chunk. */
        b.p[cut + 1] = saved;
        b.p[b.n / 2] = 0;
        {
                _cleanup_close_ int fd = make_memfd(b.p, b.n);
                assert_int_equal(maps_read_fd(fd, &l), -EBADMSG);
                assert_memory_equal(&l, &copy, sizeof(l));
        }
        free(b.p);

        /* An endless line: refused as soon as it exceeds MAPS_LINE_MAX, with or without '\n'. */
        size_t n = 3 * 128 * 1024;
        _cleanup_free_ char *big = malloc(n);
        assert_non_null(big);
        memcpy(big, "1000-2000 r--p 00000000 00:00 0 /", 33);
        memset(big + 33, 'z', n - 33);
        {
                _cleanup_close_ int fd = make_memfd(big, n);
                assert_int_equal(maps_read_fd(fd, &l), -EBADMSG);
                assert_memory_equal(&l, &copy, sizeof(l));
        }
        big[n - 1] = '\n';
        {
                _cleanup_close_ int fd = make_memfd(big, n);
                assert_int_equal(maps_read_fd(fd, &l), -EBADMSG);
                assert_memory_equal(&l, &copy, sizeof(l));
        }
        /* Exactly MAPS_LINE_MAX, unterminated at EOF: accepted. */
        {
                _cleanup_close_ int fd = make_memfd(big, MAPS_LINE_MAX);
                assert_int_equal(maps_read_fd(fd, &l), 0);
                assert_int_equal(l.n, 2);
                assert_int_equal(strlen(l.items[1].name), MAPS_LINE_MAX - 32);
                mapping_list_done(&l);
        }

        /* Bad fds. */
        assert_int_equal(maps_read_fd(-1, &l), -EBADF);
        int fd = memfd_create("closed", MFD_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(close(fd), 0);
        assert_int_equal(maps_read_fd(fd, &l), -EBADF);
        assert_int_equal(l.n, 0);
        /* A directory: read fails with EISDIR. */
        {
                _cleanup_close_ int dfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                assert_true(dfd >= 0);
                assert_int_equal(maps_read_fd(dfd, &l), -EISDIR);
        }
        assert_int_equal(maps_read_fd(0, NULL), -EINVAL);

        /* An empty file: success, nothing added. */
        {
                _cleanup_close_ int efd = make_memfd("", 0);
                assert_int_equal(maps_read_fd(efd, &l), 0);
                assert_int_equal(l.n, 0);
        }
        mapping_list_done(&l);
}

static void test_read_fd_pipe(void **state UNUSED) {
        static const char text[] =
                "3000-4000 r--p 00000000 00:00 0 [heap]\n"
                "1000-2000 r-xp 00000000 08:02 9 /bin/true";
        struct mapping_list l = {};
        int p[2];

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(write(p[1], text, strlen(text)), (ssize_t) strlen(text));
        assert_int_equal(close(p[1]), 0);
        assert_int_equal(maps_read_fd(p[0], &l), 0);
        assert_int_equal(close(p[0]), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.items[0].name, "/bin/true");
        assert_int_equal(l.items[1].kind, MAPPING_KIND_HEAP);
        mapping_list_done(&l);
}

static size_t count_lines_of_self_maps(void) {
        _cleanup_close_ int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
        static char buf[65536];
        size_t lines = 0;
        bool partial = false;
        ssize_t n;

        assert_true(fd >= 0);
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
                for (ssize_t i = 0; i < n; i++)
                        if (buf[i] == '\n')
                                lines++;
                partial = buf[n - 1] != '\n';
        }
        assert_true(n == 0);
        return lines + partial;
}

static void test_read_proc_self(void **state UNUSED) {
        struct mapping_list l = {};
        uint64_t fn = (uint64_t) (uintptr_t) &test_read_proc_self;
        bool stable = false;

        /* The sanitizers may map memory while we look: retry until a read agrees with the counts
         * taken just before and just after it. */
        for (int attempt = 0; attempt < 50 && !stable; attempt++) {
                _cleanup_close_ int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
                size_t before, after;

                assert_true(fd >= 0);
                mapping_list_done(&l);
                before = count_lines_of_self_maps();
                assert_int_equal(maps_read_fd(fd, &l), 0);
                after = count_lines_of_self_maps();
                stable = before == after && l.n == before;
        }
        assert_true(stable);
        assert_true(l.n > 5);
        assert_normalized(&l);

        ssize_t i = mapping_list_find(&l, fn);
        assert_true(i >= 0);
        const struct mapping *m = &l.items[i];
        assert_int_equal(m->kind, MAPPING_KIND_FILE);
        assert_true(m->flags & MAPPING_EXEC);
        assert_true(m->flags & MAPPING_READ);
        assert_non_null(m->name);
        assert_true(m->inode != 0);

        /* The path is our own executable's. */
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        assert_true(n > 0);
        exe[n] = 0;
        assert_string_equal(m->name, exe);
        const char *base = strrchr(m->name, '/');
        assert_non_null(base);
        assert_non_null(strstr(base, "test-maps")); /* test-maps-parse, or a hand-built copy */

        /* The stack we run on is there too. */
        int local;
        i = mapping_list_find(&l, (uint64_t) (uintptr_t) &local);
        assert_true(i >= 0);
        assert_true(l.items[i].flags & MAPPING_WRITE);

        mapping_list_done(&l);
}

/* A process that is gone: a zombie's maps read as empty, a reaped one's fail with ESRCH. */
static void test_read_fd_dead_process(void **state UNUSED) {
        struct mapping_list l = {};
        char path[64];
        pid_t pid;
        siginfo_t si = {};

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                for (;;)
                        pause();
        }
        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);

        assert_int_equal(maps_read_fd(fd, &l), 0);
        assert_true(l.n > 0);
        mapping_list_done(&l);

        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitid(P_PID, (id_t) pid, &si, WEXITED | WNOWAIT), 0);
        assert_int_equal(maps_read_fd(fd, &l), 0);
        assert_int_equal(l.n, 0);

        assert_int_equal(waitpid(pid, NULL, 0), pid);
        struct mapping keep = { .start = 1, .end = 2 };
        assert_int_equal(mapping_list_push(&l, &keep), 0);
        struct mapping_list copy = l;
        assert_int_equal(maps_read_fd(fd, &l), -ESRCH);
        assert_memory_equal(&l, &copy, sizeof(l));
        mapping_list_done(&l);
}

/* ------------------------------------------------------------------ classification */

static void test_classify(void **state UNUSED) {
        static const struct {
                const char *name;
                enum mapping_kind kind;
                bool deleted;
        } table[] = {
                { NULL, MAPPING_KIND_ANONYMOUS, false },
                { "", MAPPING_KIND_ANONYMOUS, false },
                { "/usr/bin/cat", MAPPING_KIND_FILE, false },
                { "/tmp/a b", MAPPING_KIND_FILE, false },
                { "/tmp/a\nb", MAPPING_KIND_FILE, false },
                { "/tmp/x (deleted)", MAPPING_KIND_FILE, true },
                { "/ (deleted)", MAPPING_KIND_FILE, true },
                { "/tmp/x (deleted) ", MAPPING_KIND_FILE, false },
                { "/tmp/x(deleted)", MAPPING_KIND_FILE, false },
                { "[heap]", MAPPING_KIND_HEAP, false },
                { "[stack]", MAPPING_KIND_STACK, false },
                { "[stack:42]", MAPPING_KIND_STACK, false },
                { "[vdso]", MAPPING_KIND_VDSO, false },
                { "[vvar]", MAPPING_KIND_VVAR, false },
                { "[vvar_vclock]", MAPPING_KIND_VVAR, false },
                { "[vsyscall]", MAPPING_KIND_VSYSCALL, false },
                { "/memfd:foo (deleted)", MAPPING_KIND_MEMFD, false },
                { "/memfd:foo", MAPPING_KIND_FILE, false },
                { "/dev/zero (deleted)", MAPPING_KIND_SPECIAL, false },
                { "/dev/zero", MAPPING_KIND_FILE, false },
                { "/SYSV00000000 (deleted)", MAPPING_KIND_SPECIAL, false },
                { "/SYSV0000abcd (deleted)", MAPPING_KIND_SPECIAL, false },
                { "anon_inode:[perf_event]", MAPPING_KIND_SPECIAL, false },
                { "anon_inode:i915.gem", MAPPING_KIND_SPECIAL, false },
                { "[uprobes]", MAPPING_KIND_SPECIAL, false },
                { "[anon:my name]", MAPPING_KIND_ANON_NAMED, false },
                { "[anon:]", MAPPING_KIND_ANON_NAMED, false },
                { "[anon:x", MAPPING_KIND_SPECIAL, false },
                { "[anon_shmem:x]", MAPPING_KIND_SHMEM_NAMED, false },
                { "\n\n", MAPPING_KIND_SPECIAL, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                bool deleted = !table[i].deleted;

                assert_int_equal(mapping_classify(table[i].name, &deleted), table[i].kind);
                assert_int_equal(deleted, table[i].deleted);
                assert_int_equal(mapping_classify(table[i].name, NULL), table[i].kind);
                assert_non_null(mapping_kind_to_string(table[i].kind));
        }
        assert_null(mapping_kind_to_string(_MAPPING_KIND_MAX));
}

/* ------------------------------------------------------------------ the text with the ioctl */

#define HUGE_2M (2u * 1024 * 1024)

/* Files the child maps: one the text shows as is, and names it escapes or pads. */
static const char *const odd_names[] = { "plain", "lit\\012eral", "new\nline", "sp ace  " };

/* Maps what the text alone gets wrong into a child: hugetlb memory (page size), files whose
 * names the text escapes ambiguously, and the usual specials; then waits for the parent. */
static void child_with_odd_mappings(const char *dir, int ready_fd) {
        char path[PATH_MAX];
        void *p;

        for (size_t i = 0; i < ELEMENTSOF(odd_names); i++) {
                int fd;

                snprintf(path, sizeof(path), "%s/%s", dir, odd_names[i]);
                fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
                if (fd < 0 || ftruncate(fd, 8192) < 0 ||
                    mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
                        _exit(2);
                close(fd);
        }
        /* hugetlb where this machine has huge pages: anonymous, memfd and SysV */
        (void) mmap(NULL, HUGE_2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
        int mfd = memfd_create("huge", MFD_HUGETLB | MFD_CLOEXEC);
        if (mfd >= 0 && ftruncate(mfd, HUGE_2M) == 0)
                (void) mmap(NULL, HUGE_2M, PROT_READ, MAP_SHARED, mfd, 0);
        int id = shmget(IPC_PRIVATE, HUGE_2M, IPC_CREAT | SHM_HUGETLB | 0600);
        if (id >= 0) {
                (void) shmat(id, NULL, SHM_RDONLY);
                (void) shmctl(id, IPC_RMID, NULL);
        }
        id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
        if (id >= 0) {
                (void) shmat(id, NULL, SHM_RDONLY);
                (void) shmctl(id, IPC_RMID, NULL);
        }
        mfd = memfd_create("small", MFD_CLOEXEC);
        if (mfd >= 0 && ftruncate(mfd, 4096) == 0)
                (void) mmap(NULL, 4096, PROT_READ, MAP_SHARED, mfd, 0);
        (void) mmap(NULL, 4096, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        p = mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED)
                (void) prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long) p, 4096, (unsigned long) "odd name");

        if (write(ready_fd, "x", 1) != 1)
                _exit(3);
        for (;;)
                pause();
}

static size_t count_huge(const struct mapping_list *l) {
        size_t n = 0;

        for (size_t i = 0; i < l->n; i++)
                n += l->items[i].page_size == HUGE_2M;
        return n;
}

/* procmap_list_text() gives exactly procmap_list()'s list: page sizes and names included. */
static void test_list_text_matches_ioctl(void **state UNUSED) {
        char dir[] = "/tmp/test-maps-parse.XXXXXX", path[64], saved[32] = "";
        struct mapping_list a = {}, b = {};
        int pipefd[2], hp = -1;
        bool raised = false;
        pid_t pid;

        /* Two huge pages for the hugetlb mappings, where we may (root) and there are none. */
        hp = open("/proc/sys/vm/nr_hugepages", O_RDWR | O_CLOEXEC);
        if (hp >= 0) {
                ssize_t n = read(hp, saved, sizeof(saved) - 1);

                if (n > 0 && atoi(saved) < 4 && pwrite(hp, "4\n", 2, 0) == 2)
                        raised = true;
        }

        assert_non_null(mkdtemp(dir));
        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                child_with_odd_mappings(dir, pipefd[1]);
        }
        char c;
        assert_int_equal(read(pipefd[0], &c, 1), 1);
        close(pipefd[0]);
        close(pipefd[1]);

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        if (!procmap_supported(fd)) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                skip();
        }
        assert_int_equal(procmap_list_text(fd, &a), 0);
        assert_int_equal(procmap_list(fd, 0, &b), 0);
        assert_int_equal(a.n, b.n);
        for (size_t i = 0; i < a.n; i++) {
                const struct mapping *x = &a.items[i], *y = &b.items[i];

                assert_int_equal(x->start, y->start);
                assert_int_equal(x->end, y->end);
                assert_int_equal(x->offset, y->offset);
                assert_int_equal(x->inode, y->inode);
                assert_int_equal(x->dev_major, y->dev_major);
                assert_int_equal(x->dev_minor, y->dev_minor);
                assert_int_equal(x->flags, y->flags);
                assert_int_equal(x->page_size, y->page_size);
                assert_true(x->page_size > 0);
                assert_int_equal(x->kind, y->kind);
                assert_int_equal(x->deleted, y->deleted);
                assert_int_equal(!!x->name, !!y->name);
                if (x->name)
                        assert_string_equal(x->name, y->name);
        }
        /* The cases that matter were there: the literal backslash, and huge pages if any. */
        bool literal = false;
        for (size_t i = 0; i < a.n; i++)
                literal |= a.items[i].name && strstr(a.items[i].name, "lit\\012eral") != NULL;
        assert_true(literal);
        if (raised)
                assert_true(count_huge(&a) >= 1);
        print_message("%zu mappings, %zu with 2 MiB pages\n", a.n, count_huge(&a));

        mapping_list_done(&a);
        mapping_list_done(&b);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (raised)
                (void) pwrite(hp, saved, strlen(saved), 0);
        if (hp >= 0)
                close(hp);
        for (size_t i = 0; i < ELEMENTSOF(odd_names); i++) {
                char f[PATH_MAX];

                snprintf(f, sizeof(f), "%s/%s", dir, odd_names[i]);
                (void) unlink(f);
        }
        (void) rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_file_path_fields),
                cmocka_unit_test(test_field_limits),
                cmocka_unit_test(test_perms),
                cmocka_unit_test(test_name_forms),
                cmocka_unit_test(test_vsyscall),
                cmocka_unit_test(test_anonymous),
                cmocka_unit_test(test_escapes),
                cmocka_unit_test(test_long_names),
                cmocka_unit_test(test_line_length_limit),
                cmocka_unit_test(test_hostile_lines),
                cmocka_unit_test(test_buffer_multiline),
                cmocka_unit_test(test_buffer_malformed),
                cmocka_unit_test(test_read_fd_big),
                cmocka_unit_test(test_read_each),
                cmocka_unit_test(test_read_fd_errors),
                cmocka_unit_test(test_read_fd_pipe),
                cmocka_unit_test(test_read_each_read_ahead),
                cmocka_unit_test(test_read_proc_self),
                cmocka_unit_test(test_read_fd_dead_process),
                cmocka_unit_test(test_classify),
                cmocka_unit_test(test_list_text_matches_ioctl),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
