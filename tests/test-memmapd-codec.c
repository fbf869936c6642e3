/* Tests for proto/memmapd-codec.c: the io.memmapd encoder against json-c's reading of its
 * output and against the writer's general path, its two general decoders against each other
 * and the encoder, and the direct Lookup call decoder against varlink_call_parse(). Links
 * proto/ and basic/ only. */

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "json-reader.h"
#include "json-writer.h"
#include "memmapd-codec.h"
#include "memmapd-decode.h"
#include "varlink.h"

/* ---------------------------------------------------------------- encoding */

static const uint8_t build_id_20[20] = {
        0xa0, 0xec, 0x75, 0x6c, 0xc4, 0x2f, 0x95, 0x13, 0xec, 0x2e,
        0x6e, 0xa0, 0x62, 0x67, 0x6e, 0x4b, 0x03, 0xfe, 0x3d, 0xca,
};
static uint8_t build_id_64[64];

/* Mappings covering each member present and absent, and odd values. */
static const struct memmapd_mapping *sample_mappings(size_t *ret_n) {
        /* Longer than the direct formatting takes (1,024 bytes): filled in below. */
        static char long_name[1200];
        static const char deleted[] = "/tmp/gone.bin (deleted)";
        static const char escaped[] = "/tmp/new\nline \"quoted\" back\\slash\x01.bin";
        static const char not_utf8[] = "/memfd:bad\xff\xfename (deleted)";
        static const char utf8[] = "/tmp/caf\xc3\xa9 \xe2\x82\xac.so";
        static struct memmapd_mapping m[] = {
                { .start = 0x1000, .end = 0x2000, .kind = "anonymous", .flags = MEMMAPD_PERM_READ },
                { .start = 0x7f0000000000, .end = 0x7f0000021000, .offset = 0x3000, .inode = 10962540,
                  .dev_major = 0xfe, .dev_minor = 0, .page_size = 4096,
                  .flags = MEMMAPD_PERM_READ | MEMMAPD_PERM_EXEC, .kind = "file", .name = "/usr/lib/libc.so.6",
                  .path = "/usr/lib/libc.so.6", .path_len = 18, .has_deleted = true,
                  .build_id = build_id_20, .build_id_len = 20 },
                { .start = 0, .end = UINT64_MAX, .offset = UINT64_MAX, .inode = UINT64_MAX,
                  .dev_major = UINT32_MAX, .dev_minor = UINT32_MAX, .page_size = UINT64_MAX, .flags = 0xf,
                  .kind = "file", .name = deleted, .path = deleted, .path_len = sizeof(deleted) - 1 - 10,
                  .has_deleted = true, .deleted = true, .build_id = build_id_64, .build_id_len = 64 },
                { .start = 0x5000, .end = 0x6000, .dev_major = 0x103, .dev_minor = 0x1ab, .kind = "file",
                  .name = escaped, .path = escaped, .path_len = sizeof(escaped) - 1, .has_deleted = true },
                { .start = 0x5000, .end = 0x6000, .flags = MEMMAPD_PERM_SHARED, .kind = "memfd", .name = not_utf8,
                  .path = not_utf8, .path_len = sizeof(not_utf8) - 1 - 10 },
                { .start = 0x5000, .end = 0x6000, .kind = "file", .name = utf8, .path = utf8,
                  .path_len = sizeof(utf8) - 1, .has_deleted = true },
                { .start = 0x5000, .end = 0x6000, .kind = "file", .name = long_name, .path = long_name,
                  .path_len = sizeof(long_name) - 1, .has_deleted = true },
                { .start = 0x5000, .end = 0x6000, .kind = "file", .name = long_name + 100, .path = long_name + 100,
                  .path_len = 1000, .has_deleted = true },
                { .start = 0x7ffc0000, .end = 0x7ffd0000, .flags = 3, .kind = "stack", .name = "[stack]" },
                { .start = 0x7000, .end = 0x8000, .flags = 3, .kind = "anon_named", .name = "[anon:fixture name]" },
                /* libmemctl's view: a path that is not a prefix of the name's bytes in memory */
                { .start = 0x9000, .end = 0xa000, .kind = "file", .name = "/a/b (deleted)", .path = "/a/b",
                  .path_len = 4, .has_deleted = true, .deleted = true },
                { .start = 0x9000, .end = 0xa000, .kind = "some_newer_kind" },
        };

        for (size_t i = 0; i < sizeof(build_id_64); i++)
                build_id_64[i] = (uint8_t) (i * 37 + 1);
        memset(long_name, 'a', sizeof(long_name) - 1);
        memcpy(long_name, "/usr/lib/", 9);
        *ret_n = ELEMENTSOF(m);
        return m;
}

static char *write_one(void (*write)(struct json_writer *, const struct memmapd_mapping *),
                       const struct memmapd_mapping *m, size_t *ret_len) {
        _cleanup_(json_writer_done) struct json_writer w;
        char *text = NULL;

        json_writer_init(&w, SIZE_MAX);
        write(&w, m);
        assert_int_equal(json_writer_finish(&w, &text, ret_len), 0);
        return text;
}

static uint64_t hex_member(struct json_object *o, const char *key) {
        struct json_object *v;
        const char *s;
        char *end;
        uint64_t x;

        assert_true(json_object_object_get_ex(o, key, &v));
        s = json_object_get_string(v);
        assert_true(strncmp(s, "0x", 2) == 0);
        errno = 0;
        x = strtoull(s + 2, &end, 16);
        assert_int_equal(errno, 0);
        assert_int_equal(*end, 0);
        return x;
}

static const char *string_member(struct json_object *o, const char *key) {
        struct json_object *v;

        if (!json_object_object_get_ex(o, key, &v))
                return NULL;
        assert_true(json_object_is_type(v, json_type_string));
        return json_object_get_string(v);
}

/* Lowercase hex of n bytes, by snprintf(): not the codec's formatter. */
static void hex_of(const uint8_t *b, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                snprintf(out + 2 * i, 3, "%02x", b[i]);
        out[2 * n] = 0;
}

/* Checks the encoded text of m as json-c reads it, member by member. */
static void check_mapping_json(const char *text, const struct memmapd_mapping *m) {
        _cleanup_json_ struct json_object *o = json_tokener_parse(text);
        struct json_object *v;
        char buf[256], perms[5];
        const char *s;

        assert_non_null(o);
        assert_true(hex_member(o, "start") == m->start);
        assert_true(hex_member(o, "end") == m->end);
        assert_true(hex_member(o, "offset") == m->offset);
        snprintf(perms, sizeof(perms), "%c%c%c%c", m->flags & 1 ? 'r' : '-', m->flags & 2 ? 'w' : '-',
                 m->flags & 4 ? 'x' : '-', m->flags & 8 ? 's' : 'p');
        assert_string_equal(string_member(o, "perms"), perms);
        snprintf(buf, sizeof(buf), "%02x:%02x", m->dev_major, m->dev_minor);
        assert_string_equal(string_member(o, "dev"), buf);
        assert_true(json_object_object_get_ex(o, "inode", &v));
        assert_true((uint64_t) json_object_get_uint64(v) == m->inode);
        assert_int_equal(json_object_object_get_ex(o, "page_size", &v), m->page_size > 0);
        if (m->page_size > 0)
                assert_true((uint64_t) json_object_get_uint64(v) == m->page_size);
        assert_string_equal(string_member(o, "kind"), m->kind);

        s = string_member(o, "name");
        assert_int_equal(s != NULL, m->name != NULL);
        if (m->name) {
                const char *h = string_member(o, "name_hex");
                bool utf8 = json_object_get_string_len(json_object_object_get(o, "name")) == (int) strlen(m->name) &&
                            strcmp(s, m->name) == 0;

                /* Either the name exactly, or name_hex with its bytes. */
                assert_int_equal(h == NULL, utf8);
                if (h) {
                        _cleanup_free_ char *want = malloc(2 * strlen(m->name) + 1);

                        assert_non_null(want);
                        hex_of((const uint8_t *) m->name, strlen(m->name), want);
                        assert_string_equal(h, want);
                }
        } else
                assert_null(string_member(o, "name_hex"));
        s = string_member(o, "path");
        assert_int_equal(s != NULL, m->path != NULL);
        /* A path that is not UTF-8 is told exactly by the name's name_hex. */
        if (m->path && !string_member(o, "name_hex")) {
                assert_int_equal(strlen(s), m->path_len);
                assert_memory_equal(s, m->path, m->path_len);
        }
        assert_int_equal(json_object_object_get_ex(o, "deleted", &v), m->has_deleted);
        if (m->has_deleted)
                assert_int_equal(json_object_get_boolean(v), m->deleted);
        s = string_member(o, "build_id");
        assert_int_equal(s != NULL, m->build_id_len > 0);
        if (s) {
                char want[2 * MEMMAPD_BUILD_ID_MAX + 1];

                hex_of(m->build_id, m->build_id_len, want);
                assert_string_equal(s, want);
        }
}

/* The direct formatting (libmemctl's fast decoder expects its exact bytes) and the writer's
 * general path write the same text; json-c reads every member back. */
static void test_mapping_encoding(void **state) {
        size_t n;
        const struct memmapd_mapping *m = sample_mappings(&n);

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *fast = NULL, *general = NULL;
                size_t fast_len, general_len;

                fast = write_one(memmapd_write_mapping, &m[i], &fast_len);
                general = write_one(memmapd_write_mapping_general, &m[i], &general_len);
                if (fast_len != general_len || memcmp(fast, general, fast_len) != 0)
                        fail_msg("mapping %zu: direct %s, general %s", i, fast, general);
                check_mapping_json(fast, &m[i]);
        }
}

/* The member order is part of the wire contract libmemctl's direct decoder relies on. */
static void test_mapping_exact_bytes(void **state) {
        size_t n, len;
        const struct memmapd_mapping *m = sample_mappings(&n);
        _cleanup_free_ char *a = write_one(memmapd_write_mapping, &m[1], &len);
        _cleanup_free_ char *b = write_one(memmapd_write_mapping, &m[0], &len);

        assert_string_equal(a, "{\"start\":\"0x7f0000000000\",\"end\":\"0x7f0000021000\",\"perms\":\"r-xp\","
                               "\"offset\":\"0x3000\",\"dev\":\"fe:00\",\"inode\":10962540,\"page_size\":4096,"
                               "\"kind\":\"file\",\"name\":\"/usr/lib/libc.so.6\",\"path\":\"/usr/lib/libc.so.6\","
                               "\"deleted\":false,\"build_id\":\"a0ec756cc42f9513ec2e6ea062676e4b03fe3dca\"}");
        assert_string_equal(b, "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r--p\",\"offset\":\"0x0\","
                               "\"dev\":\"00:00\",\"inode\":0,\"kind\":\"anonymous\"}");
}


static bool utf8_name(const struct memmapd_mapping *m) {
        _cleanup_(json_writer_done) struct json_writer w;

        json_writer_init(&w, SIZE_MAX);
        return !m->name || json_writer_string(&w, m->name);
}

static void assert_text(const struct memmapd_text *t, const char *want, size_t want_len) {
        _cleanup_free_ char *s = malloc(t->len + 1);

        assert_non_null(s);
        assert_int_equal(json_reader_copy_string(t->raw, t->len, t->escaped, s), want_len);
        assert_memory_equal(s, want, want_len);
}

/* Encoder and exact reader agree: what memmapd_write_mapping() writes,
 * memmapd_read_mapping_exact() reads back field for field (names that are not UTF-8 carry
 * name_hex, which the exact form has not: those go to the general decoder). */
static void test_mapping_round_trip(void **state) {
        size_t n, taken = 0;
        const struct memmapd_mapping *m = sample_mappings(&n);

        for (size_t i = 0; i < n; i++) {
                size_t len;
                _cleanup_free_ char *text = write_one(memmapd_write_mapping, &m[i], &len);
                struct json_reader j = { .p = text, .end = text + len };
                struct memmapd_mapping_text t;
                char hex[2 * MEMMAPD_BUILD_ID_MAX + 1];
                int r = memmapd_read_mapping_exact(&j, &t);

                if (!utf8_name(&m[i])) {
                        assert_int_equal(r, 0);
                        assert_ptr_equal(j.p, text);
                        continue;
                }
                if (r != 1)
                        fail_msg("mapping %zu not read back: %s", i, text);
                taken++;
                assert_ptr_equal(j.p, j.end);
                assert_true(t.start == m[i].start && t.end == m[i].end && t.offset == m[i].offset);
                assert_true(t.inode == m[i].inode && t.page_size == m[i].page_size);
                assert_true(t.dev_major == m[i].dev_major && t.dev_minor == m[i].dev_minor);
                assert_int_equal(t.flags, m[i].flags);
                assert_text(&t.kind, m[i].kind, strlen(m[i].kind));
                assert_int_equal(t.has_name, m[i].name != NULL);
                if (m[i].name)
                        assert_text(&t.name, m[i].name, strlen(m[i].name));
                assert_int_equal(t.has_path, m[i].path != NULL);
                if (m[i].path)
                        assert_text(&t.path, m[i].path, m[i].path_len);
                assert_int_equal(t.has_deleted, m[i].has_deleted);
                assert_int_equal(t.deleted, m[i].has_deleted && m[i].deleted);
                assert_int_equal(t.has_build_id, m[i].build_id_len > 0);
                if (t.has_build_id) {
                        hex_of(m[i].build_id, m[i].build_id_len, hex);
                        assert_text(&t.build_id, hex, strlen(hex));
                }
        }
        assert_true(taken >= n - 1);
}

/* Anything but the exact form is left alone, the reader where it was. */
static void test_mapping_exact_only(void **state) {
        static const char *const others[] = {
                "{ \"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r--p\",\"offset\":\"0x0\",\"dev\":\"00:00\",\"inode\":0,\"kind\":\"anonymous\"}",
                "{\"end\":\"0x2000\",\"start\":\"0x1000\",\"perms\":\"r--p\",\"offset\":\"0x0\",\"dev\":\"00:00\",\"inode\":0,\"kind\":\"anonymous\"}",
                "{\"start\":\"0x2000\",\"end\":\"0x1000\",\"perms\":\"r--p\",\"offset\":\"0x0\",\"dev\":\"00:00\",\"inode\":0,\"kind\":\"anonymous\"}",
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"rw-q\",\"offset\":\"0x0\",\"dev\":\"00:00\",\"inode\":0,\"kind\":\"anonymous\"}",
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r--p\",\"offset\":\"0x0\",\"dev\":\"00:00\",\"inode\":-1,\"kind\":\"anonymous\"}",
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r--p\",\"offset\":\"0x0\",\"dev\":\"00:00\",\"inode\":0,\"kind\":\"anonymous\",\"name\":null}",
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r--p\",\"offset\":\"0x0\",\"dev\":\"00:00\",\"inode\":0,\"kind\":\"anonymous\",\"name\":\"a\\u0000b\"}",
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r--p\",\"offset\":\"0x0\",\"dev\":\"0:0:0\",\"inode\":0,\"kind\":\"anonymous\"}",
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r--p\",\"offset\":\"0x0\",\"dev\":\"00:00\",\"inode\":0,\"kind\":\"anonymous\",\"x\":1}",
        };
        static const char *const result_others[] = {
                "{\"mapping\":1,\"address\":\"0x1\"}",
                "{\"address\":\"0x1\",\"mapping\":9223372036854775807}",
                "{\"address\":\"0x1\",\"mapping\":-1}",
                "{\"address\":\"0x1\",\"mapping\":1,\"file_offset\":\"1\"}",
                /* A reason the writer does not know keeps its name through the general reader. */
                "{\"address\":\"0x1\",\"reason\":\"no_address_space_yet\"}",
                "{\"address\":\"0x1\",\"reason\":\"unmappedx\"}",
                /* The writer gives a mapping or a reason, never neither nor both. */
                "{\"address\":\"0x1\"}",
                "{\"address\":\"0x1\",\"mapping\":1,\"reason\":\"unmapped\"}",
        };

        for (size_t i = 0; i < ELEMENTSOF(others); i++) {
                struct json_reader j = { .p = others[i], .end = others[i] + strlen(others[i]) };
                struct memmapd_mapping_text t;

                if (memmapd_read_mapping_exact(&j, &t) != 0)
                        fail_msg("read as exact: %s", others[i]);
                assert_ptr_equal(j.p, others[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(result_others); i++) {
                struct json_reader j = { .p = result_others[i], .end = result_others[i] + strlen(result_others[i]) };
                struct memmapd_result r;

                if (memmapd_read_result_exact(&j, &r) != 0)
                        fail_msg("read as exact: %s", result_others[i]);
                assert_ptr_equal(j.p, result_others[i]);
        }
}

static void test_result_round_trip(void **state) {
        static const struct memmapd_result results[] = {
                { .address = 0x1234, .mapping = 0, .has_file_offset = true, .file_offset = 0x234,
                  .has_elf_vaddr = true, .elf_vaddr = 0x1234 },
                { .address = UINT64_MAX, .mapping = -1, .reason = MEMMAPD_REASON_UNMAPPED },
                { .address = 0, .mapping = -1, .reason = MEMMAPD_REASON_NO_ADDRESS_SPACE },
                { .address = 0x10, .mapping = INT64_MAX - 1, .has_file_offset = true, .file_offset = UINT64_MAX },
                { .address = 0x2000, .mapping = 3, .has_elf_vaddr = true, .elf_vaddr = 0x1a, .symbol = "memcpy@@GLIBC_2.14",
                  .symbol_offset = 0x1a },
                { .address = 0x2000, .mapping = 3, .has_elf_vaddr = true, .elf_vaddr = 0x1a, .symbol = "_start",
                  .symbol_offset = UINT64_MAX, .symbol_size_unknown = true },
        };

        for (size_t i = 0; i < ELEMENTSOF(results); i++) {
                _cleanup_(json_writer_done) struct json_writer w;
                _cleanup_free_ char *text = NULL;
                struct memmapd_result r;
                struct json_reader j;
                size_t len;

                json_writer_init(&w, SIZE_MAX);
                memmapd_write_result(&w, &results[i]);
                assert_int_equal(json_writer_finish(&w, &text, &len), 0);
                j = (struct json_reader) { .p = text, .end = text + len };
                assert_int_equal(memmapd_read_result_exact(&j, &r), 1);
                assert_ptr_equal(j.p, j.end);
                assert_true(r.address == results[i].address && r.mapping == results[i].mapping);
                assert_int_equal(r.reason, results[i].reason);
                assert_true(r.has_file_offset == results[i].has_file_offset && r.file_offset == results[i].file_offset);
                assert_true(r.has_elf_vaddr == results[i].has_elf_vaddr && r.elf_vaddr == results[i].elf_vaddr);
                assert_int_equal(r.symbol != NULL, results[i].symbol != NULL);
                if (r.symbol) {
                        assert_int_equal(r.symbol_len, strlen(results[i].symbol));
                        assert_memory_equal(r.symbol, results[i].symbol, r.symbol_len);
                        assert_true(r.symbol_offset == results[i].symbol_offset);
                        assert_int_equal(r.symbol_size_unknown, results[i].symbol_size_unknown);
                }
        }

        /* A name that needs escaping (or is not UTF-8) goes key by key: the exact reader leaves
         * it to the general one, which decodes it. */
        static const char *const names[] = { "quote\"d", "back\\slash", "tab\there", "caf\xc3\xa9", "bad\xff" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_(json_writer_done) struct json_writer w;
                _cleanup_free_ char *text = NULL, *copy = NULL;
                struct memmapd_result_text t;
                struct memmapd_result r;
                struct json_reader j;
                size_t len;

                json_writer_init(&w, SIZE_MAX);
                memmapd_write_result(&w, &(struct memmapd_result) { .address = 1, .mapping = 0, .symbol = names[i],
                                                                     .symbol_offset = 2 });
                assert_int_equal(json_writer_finish(&w, &text, &len), 0);
                j = (struct json_reader) { .p = text, .end = text + len };
                assert_int_equal(memmapd_read_result_exact(&j, &r), 0);
                assert_int_equal(memmapd_read_result(&j, 0, &t), 0);
                assert_true(t.has_symbol && t.symbol_offset == 2 && !t.symbol_size_unknown);
                copy = malloc(t.symbol.len + 1);
                assert_non_null(copy);
                (void) json_reader_copy_string(t.symbol.raw, t.symbol.len, t.symbol.escaped, copy);
                if (i < 4)
                        assert_string_equal(copy, names[i]);
                else
                        assert_string_equal(copy, "bad\xef\xbf\xbd");
        }
}

static void test_process_and_results(void **state) {
        static const struct memmapd_result results[] = {
                { .address = 0x1234, .mapping = 0, .has_file_offset = true, .file_offset = 0x234,
                  .has_elf_vaddr = true, .elf_vaddr = 0x1234 },
                { .address = UINT64_MAX, .mapping = -1, .reason = MEMMAPD_REASON_UNMAPPED },
                { .address = 0, .mapping = -1, .reason = MEMMAPD_REASON_NO_ADDRESS_SPACE },
                { .address = 0x10, .mapping = INT64_MAX, .has_file_offset = true, .file_offset = UINT64_MAX },
        };
        _cleanup_(json_writer_done) struct json_writer w;
        _cleanup_json_ struct json_object *o = NULL;
        _cleanup_free_ char *text = NULL;
        struct json_object *p, *v, *arr;
        size_t len;

        json_writer_init(&w, SIZE_MAX);
        json_writer_object_begin(&w);
        memmapd_write_process(&w, 4242, UINT64_MAX, true);
        json_writer_key(&w, "results");
        json_writer_array_begin(&w);
        for (size_t i = 0; i < ELEMENTSOF(results); i++)
                memmapd_write_result(&w, &results[i]);
        json_writer_array_end(&w);
        json_writer_object_end(&w);
        assert_int_equal(json_writer_finish(&w, &text, &len), 0);

        o = json_tokener_parse(text);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "process", &p));
        assert_int_equal(json_object_get_int64(json_object_object_get(p, "pid")), 4242);
        assert_true(json_object_get_uint64(json_object_object_get(p, "start_time")) == UINT64_MAX);
        assert_true(json_object_get_boolean(json_object_object_get(p, "kernel_thread")));
        assert_true(json_object_object_get_ex(o, "results", &arr));
        assert_int_equal(json_object_array_length(arr), ELEMENTSOF(results));
        for (size_t i = 0; i < ELEMENTSOF(results); i++) {
                struct json_object *r = json_object_array_get_idx(arr, i);
                const struct memmapd_result *want = &results[i];

                assert_true(hex_member(r, "address") == want->address);
                if (want->mapping >= 0) {
                        assert_true(json_object_object_get_ex(r, "mapping", &v));
                        assert_true(json_object_get_int64(v) == want->mapping);
                        assert_null(string_member(r, "reason"));
                } else {
                        assert_false(json_object_object_get_ex(r, "mapping", NULL));
                        assert_string_equal(string_member(r, "reason"),
                                            want->reason == MEMMAPD_REASON_UNMAPPED ? "unmapped" : "no_address_space");
                }
                assert_int_equal(json_object_object_get_ex(r, "file_offset", NULL), want->has_file_offset);
                if (want->has_file_offset)
                        assert_true(hex_member(r, "file_offset") == want->file_offset);
                assert_int_equal(json_object_object_get_ex(r, "elf_vaddr", NULL), want->has_elf_vaddr);
                if (want->has_elf_vaddr)
                        assert_true(hex_member(r, "elf_vaddr") == want->elf_vaddr);
        }

        /* Without kernel_thread, the member is absent. */
        json_writer_reset(&w);
        json_writer_object_begin(&w);
        memmapd_write_process(&w, 1, 2, false);
        json_writer_object_end(&w);
        free(TAKE_PTR(text));
        assert_int_equal(json_writer_finish(&w, &text, &len), 0);
        assert_string_equal(text, "{\"process\":{\"pid\":1,\"start_time\":2}}");
}

/* ---------------------------------------------------------------- decoding any valid form */

/* A decoded text as a NUL-terminated copy (NULL when absent). */
static char *text_dup(bool has, const struct memmapd_text *t) {
        char *s;

        if (!has)
                return NULL;
        s = malloc(t->len + 1);
        assert_non_null(s);
        (void) json_reader_copy_string(t->raw, t->len, t->escaped, s);
        return s;
}

static void assert_same_text(bool has_a, const struct memmapd_text *a, bool has_b, const struct memmapd_text *b) {
        _cleanup_free_ char *x = text_dup(has_a, a), *y = text_dup(has_b, b);

        assert_int_equal(has_a, has_b);
        if (x)
                assert_string_equal(x, y);
}

/* Reads text with both general readers: their answers, the same; 1 when both accept it. */
static int read_mapping_both(const char *text, struct memmapd_mapping_text *ret_pull, struct json_object **ret_tree,
                             struct memmapd_mapping_text *ret_json) {
        struct json_reader j = { .p = text, .end = text + strlen(text) };
        struct json_object *o = json_tokener_parse(text);
        int a, b;

        a = memmapd_read_mapping(&j, 3, ret_pull);
        b = o ? memmapd_mapping_from_json(o, ret_json) : -EPROTO;
        if (a != b)
                fail_msg("pull reader %d, json-c reader %d: %s", a, b, text);
        if (a > 0) {
                assert_ptr_equal(j.p, j.end);
                assert_true(ret_pull->start == ret_json->start && ret_pull->end == ret_json->end);
                assert_true(ret_pull->offset == ret_json->offset && ret_pull->inode == ret_json->inode);
                assert_true(ret_pull->page_size == ret_json->page_size && ret_pull->flags == ret_json->flags);
                assert_true(ret_pull->dev_major == ret_json->dev_major && ret_pull->dev_minor == ret_json->dev_minor);
                assert_int_equal(ret_pull->deleted, ret_json->deleted);
                assert_same_text(true, &ret_pull->kind, true, &ret_json->kind);
                assert_same_text(ret_pull->has_name, &ret_pull->name, ret_json->has_name, &ret_json->name);
                assert_same_text(ret_pull->has_path, &ret_pull->path, ret_json->has_path, &ret_json->path);
                assert_same_text(ret_pull->has_name_hex, &ret_pull->name_hex, ret_json->has_name_hex, &ret_json->name_hex);
                assert_same_text(ret_pull->has_build_id, &ret_pull->build_id, ret_json->has_build_id, &ret_json->build_id);
        }
        *ret_tree = o;
        return a;
}

/* Every sample the encoder writes reads back through both general readers to its values; a
 * name that is not UTF-8 to its exact bytes through name_hex. */
static void test_mapping_general_round_trip(void **state) {
        size_t n;
        const struct memmapd_mapping *m = sample_mappings(&n);

        for (size_t i = 0; i < n; i++) {
                size_t len;
                _cleanup_free_ char *text = write_one(memmapd_write_mapping, &m[i], &len);
                _cleanup_json_ struct json_object *o = NULL;
                struct memmapd_mapping_text t, tj;
                _cleanup_free_ char *kind = NULL, *name = NULL, *path = NULL, *build_id = NULL, *name_hex = NULL;

                assert_int_equal(read_mapping_both(text, &t, &o, &tj), 1);
                assert_true(t.start == m[i].start && t.end == m[i].end && t.offset == m[i].offset);
                assert_true(t.inode == m[i].inode && t.page_size == m[i].page_size && t.flags == m[i].flags);
                assert_true(t.dev_major == m[i].dev_major && t.dev_minor == m[i].dev_minor);
                kind = text_dup(true, &t.kind);
                assert_string_equal(kind, m[i].kind);
                name = text_dup(t.has_name, &t.name);
                path = text_dup(t.has_path, &t.path);
                name_hex = text_dup(t.has_name_hex, &t.name_hex);
                assert_int_equal(t.has_name, m[i].name != NULL);
                assert_int_equal(t.has_path, m[i].path != NULL);
                if (utf8_name(&m[i])) {
                        assert_false(t.has_name_hex);
                        if (name)
                                assert_string_equal(name, m[i].name);
                        if (path) {
                                assert_int_equal(strlen(path), m[i].path_len);
                                assert_memory_equal(path, m[i].path, m[i].path_len);
                        }
                } else {
                        _cleanup_free_ char *exact = malloc(strlen(name_hex) / 2 + 1);
                        size_t path_len = SIZE_MAX;

                        assert_non_null(exact);
                        assert_true(t.has_name_hex);
                        assert_int_equal(memmapd_parse_name_hex(name_hex, strlen(name_hex), name, strlen(name), path,
                                                                path ? strlen(path) : 0, exact, &path_len),
                                         0);
                        assert_memory_equal(exact, m[i].name, strlen(m[i].name));
                        if (path) {
                                assert_int_equal(path_len, m[i].path_len);
                                /* Not a prefix of the exact name: refused. */
                                assert_int_equal(memmapd_parse_name_hex(name_hex, strlen(name_hex), name, strlen(name),
                                                                        "/nope", 5, exact, &path_len),
                                                 -EPROTO);
                        }
                        /* The name must be the hex's bytes as the daemon writes them. */
                        assert_int_equal(memmapd_parse_name_hex(name_hex, strlen(name_hex), "x", 1, NULL, 0, exact, &path_len),
                                         -EPROTO);
                }
                assert_int_equal(t.has_build_id, m[i].build_id_len > 0);
                if (t.has_build_id) {
                        uint8_t bin[MEMMAPD_BUILD_ID_MAX];
                        size_t bl = 0;

                        build_id = text_dup(true, &t.build_id);
                        assert_int_equal(memmapd_parse_build_id(build_id, strlen(build_id), bin, &bl), 0);
                        assert_int_equal(bl, m[i].build_id_len);
                        assert_memory_equal(bin, m[i].build_id, bl);
                }
        }
}

#define MAPPING_HEAD "\"start\":\"0x1000\",\"end\":\"0x2000\",\"offset\":\"0x0\",\"dev\":\"08:01\",\"inode\":7"

/* Other forms of a Mapping: both readers accept or refuse each alike. */
static void test_mapping_general_forms(void **state) {
        static const struct {
                const char *text;
                int want;
        } cases[] = {
                { "{" MAPPING_HEAD ",\"perms\":\"r-xp\",\"kind\":\"file\"}", 1 },
                { "{\"kind\":\"file\",\"perms\":\"r-xp\"," MAPPING_HEAD ",\"future\":{\"a\":[1,2]}}", 1 },
                { "{ " MAPPING_HEAD " , \"perms\" : \"r\\u002dxp\", \"kind\":\"f\\u0069le\", \"name\":null}", 1 },
                { "{" MAPPING_HEAD ",\"perms\":\"r-xp\",\"kind\":\"file\",\"page_size\":4096,\"deleted\":true,"
                  "\"name\":\"/a/b\",\"path\":\"/a/b\",\"build_id\":\"00ff\"}", 1 },
                { "{" MAPPING_HEAD ",\"perms\":\"r-xp\",\"kind\":\"some_newer_kind\",\"name\":\"x\\ny\"}", 1 },
                /* refused */
                { "{" MAPPING_HEAD ",\"perms\":\"r-xp\"}", -EPROTO },
                { "{" MAPPING_HEAD ",\"perms\":\"r-xq\",\"kind\":\"file\"}", -EPROTO },
                { "{" MAPPING_HEAD ",\"perms\":\"r-x\",\"kind\":\"file\"}", -EPROTO },
                { "{" MAPPING_HEAD ",\"perms\":\"r-xpp\",\"kind\":\"file\"}", -EPROTO },
                { "{\"start\":\"0x2000\",\"end\":\"0x2000\",\"offset\":\"0x0\",\"dev\":\"08:01\",\"inode\":7,"
                  "\"perms\":\"r-xp\",\"kind\":\"file\"}", -EPROTO },
                { "{\"start\":\"4096\",\"end\":\"0x2000\",\"offset\":\"0x0\",\"dev\":\"08:01\",\"inode\":7,"
                  "\"perms\":\"r-xp\",\"kind\":\"file\"}", -EPROTO },
                { "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"offset\":\"0x0\",\"dev\":\"0801\",\"inode\":7,"
                  "\"perms\":\"r-xp\",\"kind\":\"file\"}", -EPROTO },
                { "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"offset\":\"0x0\",\"dev\":\"08:01\",\"inode\":-7,"
                  "\"perms\":\"r-xp\",\"kind\":\"file\"}", -EPROTO },
                { "{" MAPPING_HEAD ",\"perms\":\"r-xp\",\"kind\":\"file\",\"name\":\"a\\u0000b\"}", -EPROTO },
                { "{" MAPPING_HEAD ",\"perms\":\"r-xp\",\"kind\":\"file\",\"deleted\":1}", -EPROTO },
                { "{" MAPPING_HEAD ",\"perms\":\"r-xp\",\"kind\":7}", -EPROTO },
                { "[]", -EPROTO },
        };
        /* Wrong build IDs are the codec's to refuse too. */
        static const char *const bad_build_ids[] = { "", "0", "00FF", "0g", NULL };
        char long_id[2 * MEMMAPD_BUILD_ID_MAX + 3];
        uint8_t bin[MEMMAPD_BUILD_ID_MAX];
        size_t n;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_ struct json_object *o = NULL;
                struct memmapd_mapping_text t, tj;

                assert_int_equal(read_mapping_both(cases[i].text, &t, &o, &tj), cases[i].want);
        }
        for (size_t i = 0; bad_build_ids[i]; i++)
                assert_int_equal(memmapd_parse_build_id(bad_build_ids[i], strlen(bad_build_ids[i]), bin, &n), -EPROTO);
        memset(long_id, 'a', sizeof(long_id) - 1);
        long_id[sizeof(long_id) - 1] = 0;
        assert_int_equal(memmapd_parse_build_id(long_id, 2 * MEMMAPD_BUILD_ID_MAX, bin, &n), 0);
        assert_int_equal(n, MEMMAPD_BUILD_ID_MAX);
        assert_int_equal(memmapd_parse_build_id(long_id, 2 * MEMMAPD_BUILD_ID_MAX + 2, bin, &n), -EPROTO);
}

/* Results and process ids in any valid form: both readers alike. */
static void test_result_and_process_general(void **state) {
        static const struct {
                const char *text;
                int want;
                uint64_t address, mapping;
                const char *reason;
                bool has_file_offset;
                uint64_t file_offset;
        } results[] = {
                { "{\"address\":\"0x10\",\"mapping\":3,\"file_offset\":\"0x5\"}", 0, 0x10, 3, NULL, true, 5 },
                { "{\"mapping\":3,\"address\":\"16\",\"elf_vaddr\":null}", 0, 0x10, 3, NULL, false, 0 },
                { "{\"address\":\"0x10\",\"reason\":\"no_address_space_yet\"}", 0, 0x10, UINT64_MAX, "no_address_space_yet" },
                { "{\"address\":\"0X10\",\"reason\":\"unm\\u0061pped\",\"x\":[]}", 0, 0x10, UINT64_MAX, "unmapped" },
                { "{\"address\":\"0x10\"}", 0, 0x10, UINT64_MAX, NULL },
                { "{\"reason\":\"unmapped\"}", -EPROTO },
                { "{\"address\":16}", -EPROTO },
                { "{\"address\":\"0x10\",\"mapping\":-1}", -EPROTO },
                { "{\"address\":\"0x10\",\"mapping\":\"1\"}", -EPROTO },
                { "{\"address\":\"0x10\",\"mapping\":1,\"file_offset\":\"5\"}", -EPROTO },
                { "{\"address\":\"0x10\",\"reason\":1}", -EPROTO },
        };
        static const struct {
                const char *text;
                int want;
                struct memmapd_process p;
        } processes[] = {
                { "{\"pid\":1,\"start_time\":2}", 0, { 1, 2, false } },
                { "{\"kernel_thread\":true,\"start_time\":2,\"pid\":1,\"x\":\"y\"}", 0, { 1, 2, true } },
                { "{\"pid\":1}", -EPROTO },
                { "{\"pid\":1,\"start_time\":-2}", -EPROTO },
                { "{\"pid\":1,\"start_time\":2,\"kernel_thread\":0}", -EPROTO },
        };

        for (size_t i = 0; i < ELEMENTSOF(results); i++) {
                const char *text = results[i].text;
                struct json_reader j = { .p = text, .end = text + strlen(text) };
                _cleanup_json_ struct json_object *o = json_tokener_parse(text);
                struct memmapd_result_text a, b;
                int ra, rb;

                assert_non_null(o);
                ra = memmapd_read_result(&j, 3, &a);
                rb = memmapd_result_from_json(o, &b);
                if (ra != results[i].want || rb != results[i].want)
                        fail_msg("pull reader %d, json-c reader %d: %s", ra, rb, text);
                if (ra < 0)
                        continue;
                assert_true(a.address == results[i].address && b.address == results[i].address);
                assert_true(a.mapping == results[i].mapping && b.mapping == results[i].mapping);
                assert_int_equal(a.has_file_offset, results[i].has_file_offset);
                assert_int_equal(b.has_file_offset, results[i].has_file_offset);
                assert_true(a.file_offset == results[i].file_offset && b.file_offset == results[i].file_offset);
                if (results[i].reason) {
                        _cleanup_free_ char *x = text_dup(a.has_reason, &a.reason), *y = text_dup(b.has_reason, &b.reason);

                        assert_non_null(x);
                        assert_string_equal(x, results[i].reason);
                        assert_string_equal(y, results[i].reason);
                } else if (results[i].mapping == UINT64_MAX)
                        assert_true(!a.has_reason && !b.has_reason);
        }
        for (size_t i = 0; i < ELEMENTSOF(processes); i++) {
                const char *text = processes[i].text;
                struct json_reader j = { .p = text, .end = text + strlen(text) };
                _cleanup_json_ struct json_object *o = json_tokener_parse(text);
                struct memmapd_process a, b;

                assert_int_equal(memmapd_read_process(&j, 3, &a), processes[i].want);
                assert_int_equal(memmapd_process_from_json(o, &b), processes[i].want);
                if (processes[i].want < 0)
                        continue;
                assert_true(a.pid == processes[i].p.pid && a.start_time == processes[i].p.start_time &&
                            a.kernel_thread == processes[i].p.kernel_thread);
                assert_true(b.pid == processes[i].p.pid && b.start_time == processes[i].p.start_time &&
                            b.kernel_thread == processes[i].p.kernel_thread);
        }
        assert_int_equal(memmapd_process_from_json(NULL, &(struct memmapd_process) {}), -EPROTO);
}

/* GetStatus's parameters: every member where it belongs, the newer ones optional. */
static void test_status_general(void **state) {
        static const char base[] =
                "{\"version\":\"0.3\",\"kernel\":\"6.8.0\",\"backend\":\"ioctl\",\"uptime_usec\":1,\"requests\":2,"
                "\"errors\":3,\"elf_cache_hits\":4,\"elf_cache_misses\":5,\"elf_cache_entries\":6,\"connections\":7,"
                "\"limits\":{\"max_message_size\":8,\"max_addresses\":9,\"max_connections\":10,"
                "\"max_connections_per_uid\":11,\"max_output_queue\":12,\"idle_timeout_sec\":13,\"max_json_depth\":14%s}%s}";
        static const char newer_limits[] = ",\"reserved_connections\":15,\"output_budget\":16,\"output_budget_per_uid\":17";
        static const char newer[] = ",\"oneway_skipped\":18,\"output_held\":19,\"parked\":20,\"file_readers\":21,"
                                    "\"file_readers_busy\":22,\"file_readers_stuck\":23,\"file_read_timeouts\":24,"
                                    "\"file_reads_refused\":25,\"layout_cache_hits\":26,\"layout_cache_bytes\":29,"
                                    "\"tracking\":\"bpf\"";
        char text[2048];
        struct memmapd_status st;

        for (int with_newer = 0; with_newer <= 1; with_newer++) {
                _cleanup_json_ struct json_object *o = NULL;

                snprintf(text, sizeof(text), base, with_newer ? newer_limits : "", with_newer ? newer : "");
                o = json_tokener_parse(text);
                assert_non_null(o);
                assert_int_equal(memmapd_status_from_json(o, &st), 0);
                assert_string_equal(st.version, "0.3");
                assert_string_equal(st.kernel, "6.8.0");
                assert_string_equal(st.backend, "ioctl");
                assert_true(st.uptime_usec == 1 && st.connections == 7 && st.max_message_size == 8 &&
                            st.max_json_depth == 14);
                assert_true(st.reserved_connections == (with_newer ? 15 : 0));
                assert_true(st.output_budget_per_uid == (with_newer ? 17 : 0));
                assert_true(st.oneway_skipped == (with_newer ? 18 : 0));
                assert_true(st.file_reads_refused == (with_newer ? 25 : 0));
                assert_true(st.layout_cache_hits == (with_newer ? 26 : 0) && st.layout_cache_misses == 0);
                assert_true(st.layout_cache_bytes == (with_newer ? 29 : 0));
                if (with_newer)
                        assert_string_equal(st.tracking, "bpf");
                else
                        assert_null(st.tracking);
        }
        /* Without limits, a counter below 0, a newer member of the wrong type: refused. */
        {
                _cleanup_json_ struct json_object *a = json_tokener_parse(
                        "{\"version\":\"0.3\",\"kernel\":\"6.8.0\",\"backend\":\"ioctl\",\"uptime_usec\":1,\"requests\":2,"
                        "\"errors\":3,\"elf_cache_hits\":4,\"elf_cache_misses\":5,\"elf_cache_entries\":6,\"connections\":7}");
                _cleanup_json_ struct json_object *b = NULL, *c = NULL;

                assert_int_equal(memmapd_status_from_json(a, &st), -EPROTO);
                snprintf(text, sizeof(text), base, "", ",\"parked\":-1");
                b = json_tokener_parse(text);
                assert_int_equal(memmapd_status_from_json(b, &st), -EPROTO);
                snprintf(text, sizeof(text), base, ",\"output_budget\":\"16\"", "");
                c = json_tokener_parse(text);
                assert_int_equal(memmapd_status_from_json(c, &st), -EPROTO);
                json_object_put(b);
                snprintf(text, sizeof(text), base, "", ",\"tracking\":1");
                b = json_tokener_parse(text);
                assert_int_equal(memmapd_status_from_json(b, &st), -EPROTO);
        }
}

/* The error names are the ones the interface description declares. */
static void test_error_names(void **state) {
        static const char *const errors[] = {
                MEMMAPD_ERROR_NO_SUCH_PROCESS, MEMMAPD_ERROR_PERMISSION_DENIED, MEMMAPD_ERROR_PROCESS_CHANGED,
                MEMMAPD_ERROR_LIMIT_EXCEEDED, MEMMAPD_ERROR_INTERNAL, MEMMAPD_ERROR_NO_VDSO,
                MEMMAPD_ERROR_NOT_MAPPED, MEMMAPD_ERROR_NO_FILE, MEMMAPD_ERROR_FILE_UNAVAILABLE,
        };

        for (size_t i = 0; i < ELEMENTSOF(errors); i++) {
                char decl[128];

                assert_true(strncmp(errors[i], MEMMAPD_INTERFACE ".", strlen(MEMMAPD_INTERFACE) + 1) == 0);
                snprintf(decl, sizeof(decl), "\nerror %s ", errors[i] + strlen(MEMMAPD_INTERFACE) + 1);
                if (!strstr(memmapd_interface_description, decl))
                        fail_msg("%s is not declared in io.memmapd.varlink", errors[i]);
        }
}

/* ---------------------------------------------------------------- Lookup huge numbers */

static void test_lookup_huge_numbers(void **state) {
        static const char *const unrepresentable[] = {
                "18446744073709551616", "99999999999999999999999", "-9223372036854775809",
        };
        struct json_object *arr;
        struct varlink_call c;
        const char *bad = NULL;
        uint64_t u = 7;
        int64_t n = 7;

        for (size_t i = 0; i < ELEMENTSOF(unrepresentable); i++) {
                _cleanup_free_ char *msg = NULL;

                /* A Lookup with plain addresses, but integers beyond 64 bits in the pid and the
                 * start time: outside the pull reader's subset, so the general decoder's. */
                assert_true(asprintf(&msg,
                                     "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%s,"
                                     "\"addresses\":[\"0x1\"],\"start_time\":%s}}",
                                     unrepresentable[i], unrepresentable[i]) > 0);
                assert_int_equal(memmapd_call_parse(msg, strlen(msg), 0, &c, &bad), 0);
                assert_null(memmapd_call_addresses(&c));
                assert_true(json_object_object_get_ex(c.parameters, "addresses", &arr));
                assert_int_equal(varlink_param_int(c.parameters, "pid", true, 1, INT32_MAX, 0, &n), -EINVAL);
                assert_int_equal(varlink_param_u64(c.parameters, "start_time", false, 0, &u), -EINVAL);
                varlink_call_done(&c);
                free(TAKE_PTR(msg));
                assert_true(asprintf(&msg,
                                     "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":1,"
                                     "\"addresses\":[\"0x1\",%s]}}",
                                     unrepresentable[i]) > 0);
                assert_int_equal(memmapd_call_parse(msg, strlen(msg), 0, &c, &bad), 0);
                assert_null(memmapd_call_addresses(&c));
                assert_true(json_object_object_get_ex(c.parameters, "addresses", &arr));
                assert_int_equal(varlink_json_u64(json_object_array_get_idx(arr, 1), &u), -EINVAL);
                varlink_call_done(&c);
        }
}

/* ---------------------------------------------------------------- the direct Lookup decoder
 *
 * memmapd_call_parse() reads Lookup addresses itself; varlink_call_parse() is json-c
 * only. Every message below goes through both, and they must agree on everything. */

struct diff_stats {
        unsigned taken;         /* decoded directly (addresses in the array) */
        unsigned ok, failed;
};

/* The keys of a json-c object in order, and the object equal: varlink_params_unknown()
 * reports the first unknown key, so the order matters too. */
static void assert_same_members(struct json_object *a, struct json_object *b) {
        struct json_object_iterator ia = json_object_iter_begin(a), ea = json_object_iter_end(a);
        struct json_object_iterator ib = json_object_iter_begin(b), eb = json_object_iter_end(b);

        while (!json_object_iter_equal(&ia, &ea) && !json_object_iter_equal(&ib, &eb)) {
                assert_string_equal(json_object_iter_peek_name(&ia), json_object_iter_peek_name(&ib));
                json_object_iter_next(&ia);
                json_object_iter_next(&ib);
        }
        assert_true(json_object_iter_equal(&ia, &ea) && json_object_iter_equal(&ib, &eb));
        assert_true(json_object_equal(a, b));
}

static void check_both_len(const char *msg, size_t len, unsigned depth, struct diff_stats *st) {
        struct varlink_call a = { .method = (char *) 0x1 }, b = { .method = (char *) 0x1 };
        const char *bad_a = NULL, *bad_b = NULL;
        int ra = memmapd_call_parse(msg, len, depth, &a, &bad_a);
        int rb = varlink_call_parse(msg, len, depth, &b, &bad_b);

        if (ra != rb)
                fail_msg("depth %u: direct %d, json-c %d: %.*s", depth, ra, rb, (int) len, msg);
        assert_true((bad_a == NULL) == (bad_b == NULL));
        if (bad_a)
                assert_string_equal(bad_a, bad_b);
        if (ra < 0) {
                assert_ptr_equal(a.method, (char *) 0x1);
                assert_ptr_equal(b.method, (char *) 0x1);
                st->failed++;
                return;
        }
        st->ok++;
        assert_null(memmapd_call_addresses(&b));
        assert_string_equal(a.method, b.method);
        assert_true(a.more == b.more && a.oneway == b.oneway && a.upgrade == b.upgrade);
        if (memmapd_call_addresses(&a)) {
                const struct memmapd_addresses *aa = memmapd_call_addresses(&a);
                struct json_object *arr = NULL;

                st->taken++;
                assert_string_equal(a.method, "io.memmapd.Lookup");
                assert_false(json_object_object_get_ex(a.parameters, "addresses", NULL));
                assert_true(json_object_object_get_ex(b.parameters, "addresses", &arr));
                assert_true(json_object_is_type(arr, json_type_array));
                assert_int_equal(json_object_array_length(arr), aa->n);
                for (size_t i = 0; i < aa->n; i++) {
                        uint64_t v = 0;

                        assert_int_equal(varlink_json_u64(json_object_array_get_idx(arr, i), &v), 0);
                        if (v != aa->values[i])
                                fail_msg("address %zu: direct %" PRIu64 ", json-c %" PRIu64 ": %.*s", i,
                                         aa->values[i], v, (int) len, msg);
                }
                json_object_object_del(b.parameters, "addresses");
        }
        assert_same_members(a.parameters, b.parameters);
        varlink_call_done(&a);
        varlink_call_done(&b);
}

static void check_both(const char *msg, unsigned depth, struct diff_stats *st) {
        check_both_len(msg, strlen(msg), depth, st);
}

static bool taken_directly(const char *msg) {
        struct varlink_call c;
        bool taken;

        assert_int_equal(memmapd_call_parse(msg, strlen(msg), 0, &c, NULL), 0);
        taken = memmapd_call_addresses(&c) != NULL;
        varlink_call_done(&c);
        return taken;
}

/* Messages the direct decoder must take, and what it must make of them. */
static void test_lookup_direct(void **state) {
        static const struct {
                const char *msg;
                size_t n;
                uint64_t first, last;
        } taken[] = {
                { "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":1,\"addresses\":[\"0x10\",\"16\",16]}}",
                  3, 16, 16 },
                { "{\"parameters\":{\"addresses\":[\"0xffffffffffffffff\",18446744073709551615]},"
                  "\"method\":\"io.memmapd.Lookup\",\"more\":null,\"x\":[\"]\",{\"a\":\"\\\"}\"}]}",
                  2, UINT64_MAX, UINT64_MAX },
                { " \t\r\n{ \"method\" : \"io.memmapd.Lookup\" , \"parameters\" : { \"addresses\" : [ \"0X00000000000000000000aBc\" ,"
                  " 0 , \"000000000000000000000018446744073709551615\" , 9223372036854775808 ] } } \n",
                  4, 0xabc, UINT64_C(9223372036854775808) },
        };
        static const char *const not_taken[] = {
                /* json-c decides these (same results: test_lookup_differential) */
                "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"addresses\":[]}}",
                "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"addresses\":[-0]}}",
                "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"addresses\":[\"\\u0030x1\"]}}",
                "{\"method\":\"io.memmapd.Look\\u0075p\",\"parameters\":{\"addresses\":[1]}}",
                "{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"addresses\":[1]}}",
                "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"addresses\":[1],\"addresses\":[2]}}",
                "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"addr\\u0065sses\":[1]}}",
                "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"addresses\":[1.0]}}",
                "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"addresses\":[\"0x\"]}}",
                "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"addresses\":[\"0x10000000000000000\"]}}",
                "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"addresses\":\"0x1\"}}",
        };
        struct diff_stats st = {};

        for (size_t i = 0; i < ELEMENTSOF(taken); i++) {
                const struct memmapd_addresses *a;
                struct varlink_call c;

                assert_int_equal(memmapd_call_parse(taken[i].msg, strlen(taken[i].msg), 0, &c, NULL), 0);
                a = memmapd_call_addresses(&c);
                assert_non_null(a);
                assert_int_equal(a->n, taken[i].n);
                assert_true(a->values[0] == taken[i].first && a->values[a->n - 1] == taken[i].last);
                varlink_call_done(&c);
                assert_null(memmapd_call_addresses(&c));
                check_both(taken[i].msg, 0, &st);
        }
        for (size_t i = 0; i < ELEMENTSOF(not_taken); i++) {
                assert_false(taken_directly(not_taken[i]));
                check_both(not_taken[i], 0, &st);
        }
        assert_int_equal(st.taken, ELEMENTSOF(taken));
}

/* xorshift: the same messages on every run. */
static uint32_t next_rand(uint32_t *s) {
        *s ^= *s << 13;
        *s ^= *s >> 17;
        *s ^= *s << 5;
        return *s;
}

static void append_str(char **p, const char *s) {
        size_t n = strlen(s);

        memcpy(*p, s, n);
        *p += n;
}

static void append_ws(char **p, uint32_t *seed) {
        static const char *const ws[] = { "", "", "", " ", "\n", "\t\r ", "  " };

        append_str(p, ws[next_rand(seed) % ELEMENTSOF(ws)]);
}

/* One address as a client might send it, or something near the edge of what is valid. */
static void append_address(char **p, uint32_t *seed) {
        static const char *const edges[] = {
                "18446744073709551615", "18446744073709551616", "9223372036854775807", "9223372036854775808",
                "\"18446744073709551615\"", "\"18446744073709551616\"", "\"0xffffffffffffffff\"",
                "\"0x1ffffffffffffffff\"", "\"0x0000000000000000000001\"", "\"0x\"", "\"\"", "\"0\"", "0",
                "-0", "-1", "01", "1e3", "1.5", "\"0x1g\"", "\" 1\"", "\"1 \"", "\"-1\"", "\"+1\"", "null",
                "true", "[]", "{}", "\"0x7f\\u0030\"", "\"0xAbCdEf\"", "\"0XABC\"", "\"x1\"", "\"0x-1\"",
                "\"\\u00001\"", "\"\xc3\xa9\"", "\"\xff\"", "1E2", "0.0",
        };
        char buf[64];
        uint64_t v = (uint64_t) next_rand(seed) << 32 | next_rand(seed);

        switch (next_rand(seed) % 8) {
        case 0:
                append_str(p, edges[next_rand(seed) % ELEMENTSOF(edges)]);
                return;
        case 1:
                snprintf(buf, sizeof(buf), "%" PRIu64, v >> (next_rand(seed) % 64));
                break;
        case 2:
                snprintf(buf, sizeof(buf), "\"%" PRIu64 "\"", v >> (next_rand(seed) % 64));
                break;
        case 3:
                snprintf(buf, sizeof(buf), "\"0X%" PRIX64 "\"", v >> (next_rand(seed) % 64));
                break;
        default:
                snprintf(buf, sizeof(buf), "\"0x%" PRIx64 "\"", v >> 16);
                break;
        }
        append_str(p, buf);
}

/* A Lookup call in one of many shapes: members in any order, other parameters and unknown
 * members (some holding brackets and "addresses" in strings), null flags, whitespace. */
static size_t random_lookup(char *buf, size_t size, uint32_t *seed, bool all_valid) {
        static const char *const top_extra[] = {
                "\"more\":true", "\"oneway\":false", "\"upgrade\":null", "\"more\":1", "\"x\":{\"addresses\":[1]}",
                "\"y\":\"]}\\\"\"", "\"parameters\":{}", "\"method\":\"io.memmapd.Lookup\"",
        };
        static const char *const param_extra[] = {
                "\"pid\":1234", "\"start_time\":\"0x10\"", "\"build_ids\":true", "\"zz\":[[[\"[\"]]]",
                "\"pid\":null", "\"q\":{\"addresses\":[\"x\"]}", "\"start_time\":18446744073709551616",
                "\"w\":\"\\u0000\"", "\"u\":-1.5e3",
        };
        char *p = buf;
        unsigned n = 1 + next_rand(seed) % 12;
        bool method_first = next_rand(seed) % 2;

        assert_true(size >= 4096);
        append_ws(&p, seed);
        append_str(&p, "{");
        if (method_first)
                append_str(&p, "\"method\":\"io.memmapd.Lookup\",");
        if (!all_valid && next_rand(seed) % 4 == 0) {
                append_str(&p, top_extra[next_rand(seed) % ELEMENTSOF(top_extra)]);
                append_str(&p, ",");
        }
        append_str(&p, "\"parameters\"");
        append_ws(&p, seed);
        append_str(&p, ":{");
        if (next_rand(seed) % 2) {
                append_str(&p, param_extra[next_rand(seed) % (all_valid ? 3 : ELEMENTSOF(param_extra))]);
                append_str(&p, ",");
        }
        append_str(&p, "\"addresses\":");
        append_ws(&p, seed);
        append_str(&p, "[");
        for (unsigned i = 0; i < n; i++) {
                char one[64], *q = one;

                if (i > 0)
                        append_str(&p, ",");
                append_ws(&p, seed);
                do {
                        struct json_object *o;
                        uint64_t v;

                        q = one;
                        append_address(&q, seed);
                        *q = 0;
                        o = json_tokener_parse(one);
                        /* all_valid: only what Lookup accepts */
                        if (!all_valid || (o && varlink_json_u64(o, &v) == 0 && one[0] != '-')) {
                                json_object_put(o);
                                break;
                        }
                        json_object_put(o);
                } while (true);
                append_str(&p, one);
                append_ws(&p, seed);
        }
        append_str(&p, "]");
        if (next_rand(seed) % 2) {
                append_str(&p, ",");
                append_str(&p, param_extra[next_rand(seed) % (all_valid ? 3 : ELEMENTSOF(param_extra))]);
        }
        append_str(&p, "}");
        if (!method_first)
                append_str(&p, ",\"method\":\"io.memmapd.Lookup\"");
        if (!all_valid && next_rand(seed) % 4 == 0) {
                append_str(&p, ",");
                append_str(&p, top_extra[next_rand(seed) % ELEMENTSOF(top_extra)]);
        }
        append_str(&p, "}");
        append_ws(&p, seed);
        *p = 0;
        return (size_t) (p - buf);
}

/* Random Lookups, valid and not, at every depth limit that matters; then every one-byte
 * mutation of some of them: both decoders must agree on each. */
static void test_lookup_differential(void **state) {
        static const char subst[] = "\"\\,:[]{} \t0179afxX-.e+nul\x01\x7f";
        static const unsigned depths[] = { 0, 1, 2, 3, 4, 5, 16 };
        struct diff_stats st = {};
        uint32_t seed = 0x2545f491u;
        char msg[4096], mut[4096 + 2];

        for (unsigned k = 0; k < 3000; k++) {
                size_t len = random_lookup(msg, sizeof(msg), &seed, k % 3 == 0);

                for (size_t d = 0; d < ELEMENTSOF(depths); d++)
                        check_both_len(msg, len, depths[d], &st);
                if (k % 60 != 0)
                        continue;

                for (size_t i = 0; i < len; i++) {
                        /* replaced */
                        for (size_t c = 0; c < sizeof(subst) - 1; c++) {
                                memcpy(mut, msg, len + 1);
                                mut[i] = subst[c];
                                check_both_len(mut, len, 0, &st);
                        }
                        /* deleted, doubled, truncated; a NUL inside */
                        memcpy(mut, msg, i);
                        memcpy(mut + i, msg + i + 1, len - i);
                        check_both_len(mut, len - 1, 0, &st);
                        memcpy(mut, msg, i + 1);
                        memcpy(mut + i + 1, msg + i, len - i + 1);
                        check_both_len(mut, len + 1, 0, &st);
                        memcpy(mut, msg, i);
                        mut[i] = 0;
                        check_both_len(mut, i, 0, &st);
                        memcpy(mut, msg, len + 1);
                        mut[i] = 0;
                        check_both_len(mut, len, 0, &st);
                }
        }
        /* Both kinds in good numbers, or the comparison proves little. */
        if (st.taken < 2000 || st.failed < 10000 || st.ok < st.taken + 1000)
                fail_msg("taken directly %u, decoded %u, refused %u", st.taken, st.ok, st.failed);
}

/* A batch as large as the profilers send, through both. */
static void test_lookup_large(void **state) {
        _cleanup_(json_writer_done) struct json_writer w;
        struct diff_stats st = {};
        struct varlink_call c;
        char *buf = NULL;
        size_t len = 0;

        json_writer_init(&w, 0);
        varlink_call_begin(&w, "io.memmapd.Lookup", false, false);
        json_writer_key(&w, "pid");
        json_writer_int(&w, 1);
        json_writer_key(&w, "addresses");
        json_writer_array_begin(&w);
        for (uint64_t i = 0; i < 5000; i++)
                json_writer_hex(&w, UINT64_C(0x7f0000000000) + i * 4097);
        json_writer_array_end(&w);
        json_writer_object_end(&w);
        json_writer_object_end(&w);
        assert_int_equal(json_writer_finish(&w, &buf, &len), 0);

        assert_int_equal(memmapd_call_parse(buf, len, 0, &c, NULL), 0);
        assert_non_null(memmapd_call_addresses(&c));
        assert_int_equal(memmapd_call_addresses(&c)->n, 5000);
        for (uint64_t i = 0; i < 5000; i++)
                assert_true(memmapd_call_addresses(&c)->values[i] == UINT64_C(0x7f0000000000) + i * 4097);
        varlink_call_done(&c);
        check_both_len(buf, len, 0, &st);
        check_both_len(buf, len, 3, &st);
        assert_int_equal(st.taken, 1);
        free(buf);
}

/* The first one-member enum of a Varlink interface description ("(name)" with nothing else
 * between the parentheses), as a pointer to its '(', or NULL. varlink/python's grammar reads
 * "(x)" as a struct field and fails on it ("after 'reason': after 'unmapped'"), so the
 * description must have none. Comments are skipped; "()" is an empty struct. */
static const char *one_member_enum(const char *desc) {
        for (const char *p = desc; *p; p++) {
                const char *q, *name_end;

                if (*p == '#') {
                        p += strcspn(p, "\n");
                        if (!*p)
                                break;
                        continue;
                }
                if (*p != '(')
                        continue;
                q = p + 1;
                q += strspn(q, " \t\n");
                name_end = q + strspn(q, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
                if (name_end == q)
                        continue;
                q = name_end + strspn(name_end, " \t\n");
                if (*q == ')')
                        return p;
        }
        return NULL;
}

static void test_interface_grammar(void **state) {
        static const char *const bad[] = {
                "type R (\n  reason: ?(unmapped),\n  x: int\n)\n",
                "type K ( only )\n",
                "method M() -> (r: ( a ))\n",
        };
        static const char *const good[] = {
                "type R (\n  reason: ?(unmapped, other),\n  x: int\n)\n",
                "# a comment (unmapped)\nerror E ()\n",
                "method M(x: int) -> ()\n",
        };
        const char *found = one_member_enum(memmapd_interface_description);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (!one_member_enum(bad[i]))
                        fail_msg("missed the one-member enum in: %s", bad[i]);
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                if (one_member_enum(good[i]))
                        fail_msg("took for a one-member enum: %s", good[i]);
        if (found)
                fail_msg("io.memmapd has a one-member enum, which varlink/python cannot parse: %.40s", found);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_mapping_encoding),
                cmocka_unit_test(test_mapping_exact_bytes),
                cmocka_unit_test(test_mapping_round_trip),
                cmocka_unit_test(test_mapping_exact_only),
                cmocka_unit_test(test_result_round_trip),
                cmocka_unit_test(test_process_and_results),
                cmocka_unit_test(test_mapping_general_round_trip),
                cmocka_unit_test(test_mapping_general_forms),
                cmocka_unit_test(test_result_and_process_general),
                cmocka_unit_test(test_status_general),
                cmocka_unit_test(test_error_names),
                cmocka_unit_test(test_lookup_huge_numbers),
                cmocka_unit_test(test_lookup_direct),
                cmocka_unit_test(test_lookup_differential),
                cmocka_unit_test(test_lookup_large),
                cmocka_unit_test(test_interface_grammar),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
