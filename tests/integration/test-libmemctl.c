/* libmemctl against a hostile daemon: every malformed reply is an error, never a crash, an
 * out-of-bounds read or a leak. The real daemon never sends these, so a scripted server
 * thread on a private socket plays it. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "libmemctl.h"

static char sock_dir[] = "/tmp/memctl-hostile-XXXXXX";
static char sock_path[128];
static int listen_fd = -1;
static pthread_t server;

/* What the server answers to the next requests: bytes, and their length (NUL included
 * where the reply has one). reply_len 0: close without answering. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char *reply;
static size_t reply_len;
static size_t huge_len;   /* > 0: send this many bytes of '[' and no NUL instead */
static size_t stream_len; /* > 0: stream a listing of this many mappings instead */
static char last_request[65536]; /* the last request read, up to its NUL */

static void *serve(void *arg) {
        for (;;) {
                int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                char buf[65536];
                size_t got = 0;

                if (fd < 0)
                        return NULL;
                /* Read one request, up to its NUL. */
                while (got < sizeof(buf)) {
                        ssize_t k = recv(fd, buf + got, sizeof(buf) - got, 0);

                        if (k <= 0)
                                break;
                        got += (size_t) k;
                        if (memchr(buf, 0, got))
                                break;
                }
                pthread_mutex_lock(&lock);
                memcpy(last_request, buf, got);
                last_request[got < sizeof(last_request) ? got : sizeof(last_request) - 1] = 0;
                if (huge_len > 0) {
                        static char chunk[1 << 16];
                        size_t sent = 0;

                        memset(chunk, '[', sizeof(chunk));
                        while (sent < huge_len) {
                                ssize_t k = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);
                                if (k <= 0)
                                        break;
                                sent += (size_t) k;
                        }
                } else if (stream_len > 0) {
                        static char part[4096 * 160];

                        for (size_t sent = 0; sent < stream_len;) {
                                size_t len = (size_t) sprintf(part, "{\"continues\":%s,\"parameters\":{\"process\":"
                                                                    "{\"pid\":123,\"start_time\":5},\"mappings\":[",
                                                              stream_len - sent > 4096 ? "true" : "false");

                                for (size_t i = 0; i < 4096 && sent < stream_len; i++, sent++)
                                        len += (size_t) sprintf(part + len, "%s{\"start\":\"0x%zx000\",\"end\":\"0x%zx000\","
                                                                "\"perms\":\"r--p\",\"offset\":\"0x0\",\"dev\":\"00:00\","
                                                                "\"inode\":0,\"kind\":\"anonymous\"}",
                                                                i ? "," : "", 2 * sent + 1, 2 * sent + 2);
                                len += (size_t) sprintf(part + len, "]}}") + 1;
                                if (send(fd, part, len, MSG_NOSIGNAL) != (ssize_t) len)
                                        break;
                        }
                } else if (reply_len > 0)
                        (void) !send(fd, reply, reply_len, MSG_NOSIGNAL);
                pthread_mutex_unlock(&lock);
                close(fd);
        }
}

static int setup(void **state) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (!mkdtemp(sock_dir))
                return -1;
        snprintf(sock_path, sizeof(sock_path), "%s/s", sock_dir);
        strcpy(sa.sun_path, sock_path);
        listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(listen_fd, 16) < 0)
                return -1;
        return pthread_create(&server, NULL, serve, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state) {
        shutdown(listen_fd, SHUT_RDWR);
        close(listen_fd);
        pthread_join(server, NULL);
        unlink(sock_path);
        rmdir(sock_dir);
        return 0;
}

/* The server answers the next requests with len bytes of data (0: closes at once). */
static void script_reply(const char *data, size_t len) {
        pthread_mutex_lock(&lock);
        reply = data;
        reply_len = len;
        huge_len = 0;
        stream_len = 0;
        pthread_mutex_unlock(&lock);
}

static void set_reply(const char *json) {
        script_reply(json, json ? strlen(json) + 1 : 0);
}

/* Several messages in one scripted reply (a streamed one): each sent with its NUL. */
static void set_replies(const char *const *msgs, size_t n) {
        static char buf[8192];
        size_t len = 0;

        for (size_t i = 0; i < n; i++) {
                size_t l = strlen(msgs[i]) + 1;

                assert_true(len + l <= sizeof(buf));
                memcpy(buf + len, msgs[i], l);
                len += l;
        }
        script_reply(buf, len);
}

#define MAPPING "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r-xp\",\"offset\":\"0x0\",\"dev\":\"08:01\"," \
                "\"inode\":7,\"kind\":\"file\",\"name\":\"/x\",\"path\":\"/x\",\"deleted\":false"
#define PROC "\"process\":{\"pid\":123,\"start_time\":5}"

static int lookup_with(const char *json, memctl_lookup_reply **ret) {
        uint64_t addr = 0x1800;
        memctl *c = NULL;
        int r;

        set_reply(json);
        assert_int_equal(memctl_connect(sock_path, &c), 0);
        r = memctl_lookup(c, 123, 0, &addr, 1, MEMCTL_BUILD_IDS, ret);
        memctl_free(c);
        return r;
}

/* Each of the n replies answers a Lookup: refused as what it is, a reply out of protocol, not
 * as any other failure, and nothing returned. */
static void assert_lookups_refused(const char *const *bad, size_t n) {
        for (size_t i = 0; i < n; i++) {
                memctl_lookup_reply *l = NULL;
                int r = lookup_with(bad[i], &l);

                if (r != -EPROTO)
                        fail_msg("reply %zu: %d, not -EPROTO: %s", i, r, bad[i]);
                assert_null(l);
        }
}

static void test_valid_reply(void **state) {
        struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;
        struct memctl_mapping m = MEMCTL_MAPPING_INIT;
        memctl_lookup_reply *l = NULL;

        /* The harness itself works: a well-formed reply is taken. */
        assert_int_equal(lookup_with("{\"parameters\":{" PROC ",\"mappings\":[" MAPPING ",\"build_id\":\"abcd\"}],"
                                     "\"results\":[{\"address\":\"0x1800\",\"mapping\":0,\"file_offset\":\"0x800\"}]}}",
                                     &l),
                         0);
        assert_int_equal(memctl_lookup_reply_get(l, 0, &res), 0);
        assert_int_equal(res.file_offset, 0x800);
        assert_int_equal(memctl_lookup_reply_get_mapping(l, res.mapping, &m), 0);
        assert_string_equal(m.path, "/x");
        assert_int_equal(m.build_id_size, 2);
        memctl_lookup_reply_free(l);
}

/* ListMappings answered by the messages msgs. */
static int list_streamed(const char *const *msgs, size_t n, memctl_mappings **ret) {
        memctl *c = NULL;
        int r;

        set_replies(msgs, n);
        assert_int_equal(memctl_connect(sock_path, &c), 0);
        r = memctl_list_mappings(c, 123, 0, 0, ret);
        memctl_free(c);
        return r;
}

static int list_with(const char *json, memctl_mappings **ret) {
        return list_streamed(&json, 1, ret);
}

/* Addresses in forms the daemon does not send but JSON allows (escapes, leading zeros past
 * 16 digits, uppercase digits) and unknown members named like known ones read as before. */
static void test_list_value_forms(void **state) {
        struct memctl_mapping m = MEMCTL_MAPPING_INIT;
        memctl_mappings *l = NULL;

        assert_int_equal(list_with("{\"parameters\":{" PROC ",\"mappings\":[{\"start\":\"\\u0030x1000\","
                                   "\"end\":\"0x00000000000000002000\",\"perms\":\"r-xp\",\"offset\":\"0xAbC\","
                                   "\"dev\":\"08:01\",\"inode\":7,\"kind\":\"file\",\"ens\":1,\"kinb\":\"x\","
                                   "\"starr\":\"0x5\",\"offsex\":[1],\"deletes\":true,\"build_ix\":\"zz\","
                                   "\"page_sizz\":null,\"name\":\"/x\",\"path\":\"/x\",\"deleted\":false}]}}",
                                   &l),
                         0);
        assert_int_equal(memctl_mappings_count(l), 1);
        assert_int_equal(memctl_mappings_get(l, 0, &m), 0);
        assert_int_equal(m.start, 0x1000);
        assert_int_equal(m.end, 0x2000);
        assert_int_equal(m.offset, 0xabc);
        assert_int_equal(m.page_size, 0);
        assert_false(m.deleted);
        assert_null(m.build_id);
        memctl_mappings_free(l);

        /* 17 significant digits, an unterminated and an empty address: refused as before. */
        assert_int_equal(list_with("{\"parameters\":{" PROC ",\"mappings\":[" MAPPING ",\"start\":\"0x10000000000000000\"}]}}", &l),
                         -EPROTO);
        assert_int_equal(list_with("{\"parameters\":{" PROC ",\"mappings\":[{\"start\":\"0x1000", &l), -EPROTO);
        assert_int_equal(list_with("{\"parameters\":{" PROC ",\"mappings\":[{\"start\":\"0x\",\"end\":\"0x2000\","
                                   "\"perms\":\"r-xp\",\"offset\":\"0x0\",\"dev\":\"08:01\",\"inode\":7,\"kind\":\"file\"}]}}",
                                   &l),
                         -EPROTO);
}


/* The Lookup request is formatted without the JSON writer: the same text it made. */
static void test_lookup_request(void **state) {
        const uint64_t addr[] = { 0x1800, 0, UINT64_MAX, 0x10 };
        memctl_lookup_reply *l = NULL;
        memctl *c = NULL;

        set_reply("{\"error\":\"io.memmapd.NoSuchProcess\",\"parameters\":{}}");
        assert_int_equal(memctl_connect(sock_path, &c), 0);
        assert_int_equal(memctl_lookup(c, 123, 77, addr, 4, MEMCTL_BUILD_IDS, &l), -ESRCH);
        assert_string_equal(last_request, "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":123,"
                                          "\"start_time\":77,\"addresses\":[\"0x1800\",\"0x0\","
                                          "\"0xffffffffffffffff\",\"0x10\"],\"build_ids\":true}}");
        assert_int_equal(memctl_lookup(c, 2147483647, 0, addr, 0, 0, &l), -ESRCH);
        assert_string_equal(last_request, "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":2147483647,"
                                          "\"addresses\":[]}}");
        assert_null(l);
        memctl_free(c);
}

/* Two mappings of one file (name, path and build ID shared), an unnamed one of an unknown
 * kind and results of every form, as the daemon writes them ... */
#define DAEMON_FORM \
        "{\"parameters\":{\"process\":{\"pid\":123,\"start_time\":5},\"mappings\":[" \
        "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r-xp\",\"offset\":\"0x0\",\"dev\":\"08:01\"," \
        "\"inode\":7,\"page_size\":4096,\"kind\":\"file\",\"name\":\"/x\",\"path\":\"/x\",\"deleted\":false," \
        "\"build_id\":\"abcd\"}," \
        "{\"start\":\"0x2000\",\"end\":\"0x3000\",\"perms\":\"rw-s\",\"offset\":\"0x1000\",\"dev\":\"fe:1\"," \
        "\"inode\":7,\"kind\":\"file\",\"name\":\"/x\",\"path\":\"/x\",\"deleted\":true,\"build_id\":\"abcd\"}," \
        "{\"start\":\"0x4000\",\"end\":\"0x5000\",\"perms\":\"---p\",\"offset\":\"0x0\",\"dev\":\"00:00\"," \
        "\"inode\":0,\"kind\":\"weird\"}]," \
        "\"results\":[{\"address\":\"0x1800\",\"mapping\":0,\"file_offset\":\"0x800\",\"elf_vaddr\":\"0x10800\"}," \
        "{\"address\":\"0x2800\",\"mapping\":1},{\"address\":\"0x3800\",\"reason\":\"unmapped\"}," \
        "{\"address\":\"0x4000\",\"mapping\":2}]}}"
/* ... and the same in other forms JSON allows, so that they are read member by member
 * (escapes, spaces, another order), or by json-c (a fraction). */
#define OTHER_FORM \
        "{\"parameters\":{\"process\":{\"start_time\":5,\"pid\":123},\"mappings\":[" \
        "{\"end\":\"0x2000\", \"start\":\"0x1000\",\"perms\":\"r\\u002dxp\",\"offset\":\"0x0\",\"dev\":\"08:01\"," \
        "\"inode\":7,\"page_size\":4096,\"kind\":\"fil\\u0065\",\"path\":\"\\/x\",\"name\":\"/x\",\"deleted\":false," \
        "\"build_id\":\"ab\\u0063d\"}," \
        "{\"start\":\"0x2000\",\"end\":\"0x3000\",\"perms\":\"rw-s\",\"offset\":\"0x1000\",\"dev\":\"fe:1\"," \
        "\"inode\":7,\"kind\":\"file\",\"name\":\"/x\",\"path\":\"/x\",\"deleted\" : true,\"build_id\":\"abcd\"}," \
        "{\"start\":\"0x4000\",\"end\":\"0x5000\",\"perms\":\"---p\",\"offset\":\"0x0\",\"dev\":\"00:00\"," \
        "\"inode\":0,\"kind\":\"weird\",\"name\":null}]," \
        "\"results\":[{\"mapping\":0,\"address\":\"0x1800\",\"file_offset\":\"0x800\",\"elf_vaddr\":\"0x10800\"}," \
        "{\"address\":\"0x2800\",\"mapping\":1 },{\"address\":\"0x3800\",\"reason\":\"unmapped\"}," \
        "{\"address\":\"0x4000\",\"mapping\":2}]}}"

static void check_forms_reply(const char *json) {
        static const uint64_t addr[] = { 0x1800, 0x2800, 0x3800, 0x4000 };
        struct memctl_mapping m[3];
        struct memctl_lookup_result res[4];
        memctl_lookup_reply *l = NULL;
        memctl *c = NULL;

        set_reply(json);
        assert_int_equal(memctl_connect(sock_path, &c), 0);
        assert_int_equal(memctl_lookup(c, 123, 0, addr, 4, 0, &l), 0);
        memctl_free(c);
        assert_int_equal(memctl_lookup_reply_mapping_count(l), 3);
        for (size_t i = 0; i < 3; i++) {
                m[i] = (struct memctl_mapping) MEMCTL_MAPPING_INIT;
                assert_int_equal(memctl_lookup_reply_get_mapping(l, i, &m[i]), 0);
        }
        for (size_t i = 0; i < 4; i++) {
                res[i] = (struct memctl_lookup_result) MEMCTL_LOOKUP_RESULT_INIT;
                assert_int_equal(memctl_lookup_reply_get(l, i, &res[i]), 0);
        }

        assert_int_equal(m[0].start, 0x1000);
        assert_int_equal(m[0].end, 0x2000);
        assert_string_equal(m[0].perms, "r-xp");
        assert_int_equal(m[0].flags, MEMCTL_MAPPING_READ | MEMCTL_MAPPING_EXEC);
        assert_int_equal(m[0].dev_major, 8);
        assert_int_equal(m[0].dev_minor, 1);
        assert_int_equal(m[0].inode, 7);
        assert_int_equal(m[0].page_size, 4096);
        assert_int_equal(m[0].kind, MEMCTL_KIND_FILE);
        assert_string_equal(m[0].kind_name, "file");
        assert_string_equal(m[0].name, "/x");
        assert_string_equal(m[0].path, "/x");
        assert_false(m[0].deleted);
        assert_string_equal(m[0].build_id_hex, "abcd");
        assert_int_equal(m[0].build_id_size, 2);
        assert_int_equal(m[0].build_id[0], 0xab);
        assert_int_equal(m[0].build_id[1], 0xcd);

        assert_int_equal(m[1].offset, 0x1000);
        assert_string_equal(m[1].perms, "rw-s");
        assert_int_equal(m[1].flags, MEMCTL_MAPPING_READ | MEMCTL_MAPPING_WRITE | MEMCTL_MAPPING_SHARED);
        assert_int_equal(m[1].dev_major, 0xfe);
        assert_int_equal(m[1].page_size, 0);
        assert_string_equal(m[1].path, "/x");
        assert_true(m[1].deleted);
        assert_string_equal(m[1].build_id_hex, "abcd");
        assert_memory_equal(m[1].build_id, "\xab\xcd", 2);

        assert_int_equal(m[2].kind, MEMCTL_KIND_UNKNOWN);
        assert_string_equal(m[2].kind_name, "weird");
        assert_null(m[2].name);
        assert_null(m[2].path);
        assert_null(m[2].build_id_hex);
        assert_null(m[2].build_id);
        assert_int_equal(m[2].build_id_size, 0);
        assert_int_equal(m[2].flags, MEMCTL_MAPPING_SHARED * 0);

        assert_int_equal(res[0].mapping, 0);
        assert_true(res[0].has_file_offset);
        assert_int_equal(res[0].file_offset, 0x800);
        assert_true(res[0].has_elf_vaddr);
        assert_int_equal(res[0].elf_vaddr, 0x10800);
        assert_int_equal(res[1].mapping, 1);
        assert_false(res[1].has_file_offset);
        assert_false(res[1].has_elf_vaddr);
        assert_int_equal(res[2].mapping, MEMCTL_NO_MAPPING);
        assert_int_equal(res[2].address, 0x3800);
        assert_int_equal(res[3].mapping, 2);
        memctl_lookup_reply_free(l);
}

/* Nested deeper than the fast decoder follows (16), not than the general one (32): a reply with
 * this member is read by json-c and the codec's json-c readers. */
#define DEEP ",\"x\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]"

/* Why an address has no mapping, in every form the daemon or a newer one may say it, and the
 * process's kernel_thread flag, by both decoders. */
static void test_reasons(void **state) {
        static const uint64_t addr[] = { 0x1000, 0x2000, 0x3000, 0x4000, 0x5000 };
        static const char *const forms[] = {
                /* as the daemon writes it */
                "{\"parameters\":{\"process\":{\"pid\":123,\"start_time\":5,\"kernel_thread\":true},\"mappings\":[],"
                "\"results\":[{\"address\":\"0x1000\",\"reason\":\"no_address_space\"},{\"address\":\"0x2000\",\"reason\":"
                "\"unmapped\"},{\"address\":\"0x3000\"},{\"address\":\"0x4000\",\"reason\":\"gone_fishing\"},"
                "{\"address\":\"0x5000\",\"reason\":null}]}}",
                /* escaped, member by member */
                "{\"parameters\":{\"process\":{\"kernel_thread\":true,\"pid\":123,\"start_time\":5},\"mappings\":[],"
                "\"results\":[{\"reason\":\"no\\u005faddress_space\",\"address\":\"0x1000\"},{\"address\":\"0x2000\","
                "\"reason\" : \"unmapped\"},{\"address\":\"0x3000\"},{\"address\":\"0x4000\",\"reason\":\"gone\\u005ffishing\"},"
                "{\"address\":\"0x5000\",\"reason\":null}]}}",
                /* by json-c */
                "{\"parameters\":{\"process\":{\"pid\":123,\"start_time\":5,\"kernel_thread\":true},\"mappings\":[],"
                "\"results\":[{\"address\":\"0x1000\",\"reason\":\"no_address_space\"},{\"address\":\"0x2000\",\"reason\":"
                "\"unmapped\"},{\"address\":\"0x3000\"},{\"address\":\"0x4000\",\"reason\":\"gone_fishing\"},"
                "{\"address\":\"0x5000\",\"reason\":null}]" DEEP "}}",
        };
        static const int reasons[] = { MEMCTL_REASON_NO_ADDRESS_SPACE, MEMCTL_REASON_UNMAPPED, MEMCTL_REASON_UNMAPPED,
                                       MEMCTL_REASON_OTHER, MEMCTL_REASON_UNMAPPED };
        static const char *const names[] = { "no_address_space", "unmapped", NULL, "gone_fishing", NULL };

        for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
                struct memctl_process p = MEMCTL_PROCESS_INIT;
                memctl_lookup_reply *l = NULL;
                memctl *c = NULL;

                set_reply(forms[f]);
                assert_int_equal(memctl_connect(sock_path, &c), 0);
                assert_int_equal(memctl_lookup(c, 123, 0, addr, 5, 0, &l), 0);
                memctl_free(c);
                assert_int_equal(memctl_lookup_reply_get_process_info(l, &p), 0);
                assert_int_equal(p.pid, 123);
                assert_int_equal(p.start_time, 5);
                assert_true(p.kernel_thread);
                for (size_t i = 0; i < 5; i++) {
                        struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;

                        assert_int_equal(memctl_lookup_reply_get(l, i, &res), 0);
                        assert_int_equal(res.mapping, MEMCTL_NO_MAPPING);
                        if (res.reason != reasons[i])
                                fail_msg("form %zu, result %zu: reason %d, not %d", f, i, res.reason, reasons[i]);
                        if (names[i])
                                assert_string_equal(res.reason_name, names[i]);
                        else
                                assert_null(res.reason_name);
                }
                memctl_lookup_reply_free(l);
        }

        /* A mapped address has no reason, whatever came with it. */
        {
                struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;
                memctl_lookup_reply *l = NULL;

                assert_int_equal(lookup_with("{\"parameters\":{" PROC ",\"mappings\":[" MAPPING "}],\"results\":"
                                             "[{\"address\":\"0x1800\",\"mapping\":0,\"reason\":\"unmapped\"}]}}", &l),
                                 0);
                assert_int_equal(memctl_lookup_reply_get(l, 0, &res), 0);
                assert_int_equal(res.mapping, 0);
                assert_int_equal(res.reason, MEMCTL_REASON_NONE);
                assert_null(res.reason_name);
                memctl_lookup_reply_free(l);
        }

        /* Types out of protocol, in either decoder. */
        {
                static const char *const bad[] = {
                        "{\"parameters\":{\"process\":{\"pid\":123,\"start_time\":5,\"kernel_thread\":1},\"mappings\":[],"
                        "\"results\":[{\"address\":\"0x1800\",\"reason\":\"unmapped\"}]}}",
                        "{\"parameters\":{\"process\":{\"pid\":123,\"start_time\":5,\"kernel_thread\":\"yes\"},\"mappings\":[],"
                        "\"results\":[{\"address\":\"0x1800\",\"reason\":\"unmapped\"}]" DEEP "}}",
                        "{\"parameters\":{" PROC ",\"mappings\":[],\"results\":[{\"address\":\"0x1800\",\"reason\":7}]}}",
                        "{\"parameters\":{" PROC ",\"mappings\":[],\"results\":[{\"address\":\"0x1800\",\"reason\":7}]" DEEP "}}",
                        "{\"parameters\":{" PROC ",\"mappings\":[],\"results\":[{\"address\":\"0x1800\",\"reason\":\"a\\u0000b\"}]}}",
                };

                assert_lookups_refused(bad, sizeof(bad) / sizeof(bad[0]));
        }
}

/* The process of a listing, for callers of every size. */
static void test_process_info(void **state) {
        union {
                struct memctl_process p;
                unsigned char bytes[sizeof(struct memctl_process) + 16];
        } big;
        struct memctl_process p = MEMCTL_PROCESS_INIT;
        memctl_mappings *m = NULL;

        assert_int_equal(list_with("{\"parameters\":{" PROC ",\"mappings\":[" MAPPING "}]}}", &m), 0);
        assert_int_equal(memctl_mappings_get_process_info(m, &p), 0);
        assert_int_equal(p.pid, 123);
        assert_int_equal(p.start_time, 5);
        assert_false(p.kernel_thread);
        /* A newer caller's larger struct: the rest zeroed. */
        memset(big.bytes, 0xa5, sizeof(big.bytes));
        big.p.size = sizeof(big.bytes);
        assert_int_equal(memctl_mappings_get_process_info(m, &big.p), 0);
        assert_int_equal(big.p.pid, 123);
        for (size_t i = sizeof(struct memctl_process); i < sizeof(big.bytes); i++)
                assert_int_equal(big.bytes[i], 0);
        /* Smaller than the struct ever was, or nothing to fill: -EINVAL, nothing written. */
        p = (struct memctl_process) { .size = offsetof(struct memctl_process, kernel_thread), .pid = 9 };
        assert_int_equal(memctl_mappings_get_process_info(m, &p), -EINVAL);
        assert_int_equal(p.pid, 9);
        assert_int_equal(memctl_mappings_get_process_info(m, NULL), -EINVAL);
        assert_int_equal(memctl_mappings_get_process_info(NULL, &p), -EINVAL);
        assert_int_equal(memctl_lookup_reply_get_process_info(NULL, &p), -EINVAL);
        memctl_mappings_free(m);
}

/* A name that is not UTF-8 comes with its bytes in name_hex: libmemctl gives them, checked
 * against name and path (which carry U+FFFD for each invalid byte), by both decoders. */
#define NOT_UTF8 "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r-xp\",\"offset\":\"0x0\",\"dev\":\"08:01\"," \
                 "\"inode\":7,\"kind\":\"file\",\"name\":\"/a\xef\xbf\xbd\xef\xbf\xbd.so (deleted)\""
static void test_name_hex(void **state) {
        /* name_hex: "/a\xff\xe2.so (deleted)", in either case */
        static const char *const good[] = {
                "{\"parameters\":{" PROC ",\"mappings\":[" NOT_UTF8 ",\"name_hex\":" "\"2f61ffe22e736f202864656c6574656429\""
                ",\"path\":\"/a\xef\xbf\xbd\xef\xbf\xbd.so\",\"deleted\":true}]}}",
                "{\"parameters\":{" PROC ",\"mappings\":[" NOT_UTF8 ",\"name_hex\":" "\"2F61FFE22E736F202864656C6574656429\""
                ",\"path\":\"/a\xef\xbf\xbd\xef\xbf\xbd.so\",\"deleted\":true}]" DEEP "}}",
        };
        static const char *const bad[] = {
                /* odd length, not hex, a NUL byte, other bytes than name's, more bytes */
                NOT_UTF8 ",\"name_hex\":\"2f61ffe22e736f202864656c657465642\"}",
                NOT_UTF8 ",\"name_hex\":\"2f61ffe22e736f202864656c65746564zz\"}",
                NOT_UTF8 ",\"name_hex\":\"2f61ffe200736f202864656c6574656429\"}",
                NOT_UTF8 ",\"name_hex\":\"2f62ffe22e736f202864656c6574656429\"}",
                NOT_UTF8 ",\"name_hex\":\"2f61ffe22e736f202864656c657465642929\"}",
                /* a path that is not the start of name, or ends inside a character */
                NOT_UTF8 ",\"name_hex\":\"2f61ffe22e736f202864656c6574656429\",\"path\":\"/b\"}",
                NOT_UTF8 ",\"name_hex\":\"2f61ffe22e736f202864656c6574656429\",\"path\":\"/a\xef\xbf\"}",
                /* bytes without a name */
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r-xp\",\"offset\":\"0x0\",\"dev\":\"08:01\","
                "\"inode\":7,\"kind\":\"file\",\"name_hex\":\"2f61\"}",
        };
        char json[1024];

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                struct memctl_mapping m = MEMCTL_MAPPING_INIT;
                memctl_mappings *l = NULL;

                assert_int_equal(list_with(good[i], &l), 0);
                assert_int_equal(memctl_mappings_get(l, 0, &m), 0);
                assert_string_equal(m.name, "/a\xef\xbf\xbd\xef\xbf\xbd.so (deleted)");
                assert_string_equal(m.name_exact, "/a\xff\xe2.so (deleted)");
                assert_string_equal(m.path, "/a\xef\xbf\xbd\xef\xbf\xbd.so");
                assert_string_equal(m.path_exact, "/a\xff\xe2.so");
                assert_true(m.deleted);
                memctl_mappings_free(l);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                for (int deep = 0; deep <= 1; deep++) {
                        memctl_mappings *l = NULL;
                        int r;

                        snprintf(json, sizeof(json), "{\"parameters\":{" PROC ",\"mappings\":[%s]%s}}", bad[i], deep ? DEEP : "");
                        r = list_with(json, &l);
                        if (r != -EPROTO)
                                fail_msg("mapping %zu (deep %d): %d, not -EPROTO: %s", i, deep, r, bad[i]);
                        assert_null(l);
                }
}

static void test_reply_forms(void **state) {
        check_forms_reply(DAEMON_FORM);
        check_forms_reply(OTHER_FORM);
}

/* Defects in the daemon's own form are refused as in any other form. */
static void test_daemon_form_defects(void **state) {
        static const char *const bad[] = {
                "{\"start\":\"0x2000\",\"end\":\"0x2000\",\"perms\":\"r-xp\",\"offset\":\"0x0\",\"dev\":\"08:01\",\"inode\":7,\"kind\":\"file\"}",
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r-xq\",\"offset\":\"0x0\",\"dev\":\"08:01\",\"inode\":7,\"kind\":\"file\"}",
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r-xpp\",\"offset\":\"0x0\",\"dev\":\"08:01\",\"inode\":7,\"kind\":\"file\"}",
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r-xp\",\"offset\":\"0x0\",\"dev\":\"08:01:2\",\"inode\":7,\"kind\":\"file\"}",
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r-xp\",\"offset\":\"0x0\",\"dev\":\"0801\",\"inode\":7,\"kind\":\"file\"}",
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r-xp\",\"offset\":\"0x0\",\"dev\":\"08:01\",\"inode\":-7,\"kind\":\"file\"}",
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r-xp\",\"offset\":\"0x0\",\"dev\":\"08:01\",\"inode\":07,\"kind\":\"file\"}",
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r-xp\",\"offset\":\"0x0\",\"dev\":\"08:01\",\"inode\":7,\"kind\":\"file\",\"build_id\":\"abc\"}",
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r-xp\",\"offset\":\"0x0\",\"dev\":\"08:01\",\"inode\":7,\"kind\":\"file\",\"name\":\"\\u0000\"}",
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r-xp\",\"offset\":\"0x0\",\"dev\":\"08:01\",\"inode\":7,\"kind\":\"file\",\"deleted\":1}",
                "{\"start\":\"0x1000\",\"end\":\"0x2000\",\"perms\":\"r-xp\",\"offset\":\"0x0\",\"dev\":\"08:01\",\"inode\":7}",
        };
        char json[1024];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                memctl_mappings *l = NULL;
                int r;

                snprintf(json, sizeof(json), "{\"parameters\":{" PROC ",\"mappings\":[%s]}}", bad[i]);
                r = list_with(json, &l);
                if (r != -EPROTO)
                        fail_msg("mapping %zu: %d, not -EPROTO: %s", i, r, bad[i]);
                assert_null(l);
        }
}

static void test_hostile_replies(void **state) {
        static const char *const bad[] = {
                "not json",
                "[]",
                "{\"parameters\":[]}",
                "{\"parameters\":{}}",
                /* mapping index out of range, negative, not an integer */
                "{\"parameters\":{" PROC ",\"mappings\":[" MAPPING "}],\"results\":[{\"address\":\"0x1800\",\"mapping\":1}]}}",
                "{\"parameters\":{" PROC ",\"mappings\":[" MAPPING "}],\"results\":[{\"address\":\"0x1800\",\"mapping\":-1}]}}",
                "{\"parameters\":{" PROC ",\"mappings\":[" MAPPING "}],\"results\":[{\"address\":\"0x1800\",\"mapping\":\"0\"}]}}",
                "{\"parameters\":{" PROC ",\"mappings\":[" MAPPING "}],\"results\":[{\"address\":\"0x1800\",\"mapping\":1e300}]}}",
                /* no process at all (another pid than asked is the thread group of a thread id) */
                "{\"parameters\":{\"process\":{\"pid\":0,\"start_time\":5},\"mappings\":[],\"results\":"
                "[{\"address\":\"0x1800\",\"reason\":\"unmapped\"}]}}",
                "{\"parameters\":{\"process\":{\"pid\":2147483648,\"start_time\":5},\"mappings\":[],\"results\":"
                "[{\"address\":\"0x1800\",\"reason\":\"unmapped\"}]}}",
                /* more or fewer results than addresses */
                "{\"parameters\":{" PROC ",\"mappings\":[],\"results\":[]}}",
                "{\"parameters\":{" PROC ",\"mappings\":[],\"results\":[{\"address\":\"0x1800\",\"reason\":\"unmapped\"},"
                "{\"address\":\"0x1800\",\"reason\":\"unmapped\"}]}}",
                /* the echoed address differs, is not hex, or lies outside its mapping */
                "{\"parameters\":{" PROC ",\"mappings\":[],\"results\":[{\"address\":\"0x1801\",\"reason\":\"unmapped\"}]}}",
                "{\"parameters\":{" PROC ",\"mappings\":[],\"results\":[{\"address\":\"0xzz\",\"reason\":\"unmapped\"}]}}",
                "{\"parameters\":{" PROC ",\"mappings\":[{\"start\":\"0x3000\",\"end\":\"0x4000\",\"perms\":\"r-xp\","
                "\"offset\":\"0x0\",\"dev\":\"08:01\",\"inode\":7,\"kind\":\"file\"}],\"results\":[{\"address\":\"0x1800\","
                "\"mapping\":0}]}}",
                /* a range that ends before it starts; a 17-digit address */
                "{\"parameters\":{" PROC ",\"mappings\":[{\"start\":\"0x2000\",\"end\":\"0x1000\",\"perms\":\"r-xp\","
                "\"offset\":\"0x0\",\"dev\":\"08:01\",\"inode\":7,\"kind\":\"file\"}],\"results\":[{\"address\":\"0x1800\","
                "\"mapping\":0}]}}",
                "{\"parameters\":{" PROC ",\"mappings\":[],\"results\":[{\"address\":\"0x10000000000000000\",\"reason\":\"unmapped\"}]}}",
                /* build IDs: odd length, uppercase, not hex, too long */
                "{\"parameters\":{" PROC ",\"mappings\":[" MAPPING ",\"build_id\":\"abc\"}],\"results\":[{\"address\":\"0x1800\",\"mapping\":0}]}}",
                "{\"parameters\":{" PROC ",\"mappings\":[" MAPPING ",\"build_id\":\"ABCD\"}],\"results\":[{\"address\":\"0x1800\",\"mapping\":0}]}}",
                "{\"parameters\":{" PROC ",\"mappings\":[" MAPPING ",\"build_id\":\"zz\"}],\"results\":[{\"address\":\"0x1800\",\"mapping\":0}]}}",
                "{\"parameters\":{" PROC ",\"mappings\":[" MAPPING ",\"build_id\":\""
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00\"}],"
                "\"results\":[{\"address\":\"0x1800\",\"mapping\":0}]}}",
                /* wrong types */
                "{\"parameters\":{" PROC ",\"mappings\":{},\"results\":[]}}",
                "{\"parameters\":{" PROC ",\"mappings\":[7],\"results\":[{\"address\":\"0x1800\",\"reason\":\"unmapped\"}]}}",
                "{\"parameters\":{\"process\":{\"pid\":\"123\",\"start_time\":5},\"mappings\":[],\"results\":"
                "[{\"address\":\"0x1800\",\"reason\":\"unmapped\"}]}}",
                /* nesting, and an error name that is not one */
                "{\"parameters\":{" PROC ",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}",
                "{\"error\":\"\",\"parameters\":{}}",
                "{\"error\":7,\"parameters\":{}}",
                "{\"error\":\"io.memmapd.NoSuchProcess\",\"parameters\":7}",
                /* "continues" on a call that did not ask for more */
                "{\"continues\":true,\"parameters\":{" PROC ",\"mappings\":[],\"results\":[{\"address\":\"0x1800\","
                "\"reason\":\"unmapped\"}]}}",
        };

        assert_lookups_refused(bad, sizeof(bad) / sizeof(bad[0]));
}

static void test_error_replies(void **state) {
        memctl_lookup_reply *l = NULL;

        assert_int_equal(lookup_with("{\"error\":\"io.memmapd.NoSuchProcess\",\"parameters\":{\"pid\":123}}", &l), -ESRCH);
        assert_int_equal(lookup_with("{\"error\":\"io.memmapd.PermissionDenied\",\"parameters\":{\"pid\":123}}", &l),
                         -EACCES);
        assert_int_equal(lookup_with("{\"error\":\"io.memmapd.ProcessChanged\",\"parameters\":{}}", &l), -ESTALE);
        assert_int_equal(lookup_with("{\"error\":\"com.example.Weird\",\"parameters\":{}}", &l), -EPROTO);
        assert_null(l);
}

/* Each error the daemon may answer is its own errno, for every kind of call. */
static void test_error_mapping(void **state) {
        static const struct {
                const char *name;
                int error;
        } cases[] = {
                { "io.memmapd.NoSuchProcess", -ESRCH },
                { "io.memmapd.PermissionDenied", -EACCES },
                { "org.varlink.service.PermissionDenied", -EACCES },
                { "io.memmapd.ProcessChanged", -ESTALE },
                { "io.memmapd.LimitExceeded", -E2BIG },
                { "io.memmapd.NoVdso", -ENOENT },
                { "io.memmapd.NotMapped", -ENXIO },
                { "io.memmapd.NoFile", -EMEDIUMTYPE },
                { "io.memmapd.FileUnavailable", -EIO },
                { "org.varlink.service.InvalidParameter", -EINVAL },
                { "org.varlink.service.MethodNotFound", -EOPNOTSUPP },
                { "org.varlink.service.MethodNotImplemented", -EOPNOTSUPP },
                { "org.varlink.service.InterfaceNotFound", -EOPNOTSUPP },
                { "io.memmapd.InternalError", -EPROTO },
        };
        memctl *c = NULL;

        assert_int_equal(memctl_connect(sock_path, &c), 0);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char json[256];
                uint64_t addr = 0x1000;
                memctl_mappings *m = NULL;
                memctl_lookup_reply *l = NULL;
                memctl_status *st = NULL;
                uint8_t *image = NULL;
                size_t size = 0;
                char *text = NULL;
                int fd = -1;

                snprintf(json, sizeof(json), "{\"error\":\"%s\",\"parameters\":{}}", cases[i].name);
                set_reply(json);
                assert_int_equal(memctl_list_mappings(c, 123, 0, 0, &m), cases[i].error);
                assert_string_equal(memctl_last_error_name(c), cases[i].name);
                assert_int_equal(memctl_lookup(c, 123, 0, &addr, 1, 0, &l), cases[i].error);
                assert_int_equal(memctl_get_status(c, &st), cases[i].error);
                assert_int_equal(memctl_get_vdso(c, 123, 0, &image, &size), cases[i].error);
                assert_int_equal(memctl_open_mapping_file(c, 123, 0, 0x1000, &fd, NULL), cases[i].error);
                assert_int_equal(memctl_call_json(c, "io.memmapd.GetStatus", NULL, &text), cases[i].error);
                assert_string_equal(memctl_last_error_name(c), cases[i].name);
                /* Nothing returned on failure. */
                assert_null(m);
                assert_null(l);
                assert_null(st);
                assert_null(image);
                assert_null(text);
                assert_int_equal(fd, -1);
        }
        memctl_free(c);
        set_reply(NULL);
}

/* The last error's name and parameters, and what each accessor says when there is no such
 * error, no such parameter, or one of another type. */
static void test_last_error(void **state) {
        const char *s = "untouched";
        int64_t v = 42;
        char *text = NULL;
        memctl *c = NULL;

        assert_null(memctl_last_error_name(NULL));
        assert_null(memctl_last_error_parameters(NULL));
        assert_int_equal(memctl_last_error_string(NULL, "limit", &s), -EINVAL);
        assert_int_equal(memctl_last_error_int(NULL, "max", &v), -EINVAL);

        assert_int_equal(memctl_connect(sock_path, &c), 0);
        set_reply("{\"error\":\"io.memmapd.LimitExceeded\",\"parameters\":{\"limit\":\"max_message_size\",\"max\":64,"
                  "\"list\":[1,\"a/b\"]}}");
        assert_int_equal(memctl_call_json(c, "io.memmapd.GetStatus", NULL, &text), -E2BIG);
        assert_string_equal(memctl_last_error_name(c), "io.memmapd.LimitExceeded");
        assert_string_equal(memctl_last_error_parameters(c), "{\"limit\":\"max_message_size\",\"max\":64,\"list\":[1,\"a/b\"]}");
        assert_int_equal(memctl_last_error_string(c, "limit", &s), 0);
        assert_string_equal(s, "max_message_size");
        assert_int_equal(memctl_last_error_int(c, "max", &v), 0);
        assert_int_equal(v, 64);
        /* Another type, no such key, nothing to fill: the value is left as it was. */
        s = "untouched";
        v = 42;
        assert_int_equal(memctl_last_error_string(c, "max", &s), -EPROTO);
        assert_int_equal(memctl_last_error_int(c, "limit", &v), -EPROTO);
        assert_int_equal(memctl_last_error_string(c, "nope", &s), -ENODATA);
        assert_int_equal(memctl_last_error_int(c, "nope", &v), -ENODATA);
        assert_int_equal(memctl_last_error_string(c, NULL, &s), -EINVAL);
        assert_int_equal(memctl_last_error_string(c, "limit", NULL), -EINVAL);
        assert_int_equal(memctl_last_error_int(c, "max", NULL), -EINVAL);
        assert_string_equal(s, "untouched");
        assert_int_equal(v, 42);

        /* An error without parameters: "{}", and no parameter in it. */
        set_reply("{\"error\":\"io.memmapd.NoSuchProcess\"}");
        assert_int_equal(memctl_call_json(c, "io.memmapd.GetStatus", NULL, &text), -ESRCH);
        assert_string_equal(memctl_last_error_parameters(c), "{}");
        assert_int_equal(memctl_last_error_int(c, "pid", &v), -ENODATA);

        /* A call that succeeds, or fails before anything is sent, clears the last error. */
        set_reply("{\"parameters\":{\"a\":1}}");
        assert_int_equal(memctl_call_json(c, "io.memmapd.GetStatus", "{\"x\":[true]}", &text), 0);
        assert_string_equal(text, "{\"a\":1}");
        free(text);
        text = NULL;
        assert_null(memctl_last_error_name(c));
        assert_null(memctl_last_error_parameters(c));
        assert_int_equal(memctl_last_error_string(c, "limit", &s), -ENODATA);
        assert_string_equal(last_request, "{\"method\":\"io.memmapd.GetStatus\",\"parameters\":{\"x\":[true]}}");
        set_reply("{\"error\":\"io.memmapd.NoSuchProcess\"}");
        assert_int_equal(memctl_call_json(c, "io.memmapd.GetStatus", NULL, &text), -ESRCH);
        assert_int_equal(memctl_call_json(c, "io.memmapd.GetStatus", "[1]", &text), -EINVAL);
        assert_null(memctl_last_error_name(c));
        assert_int_equal(memctl_call_json(c, "io.memmapd.GetStatus", "{} x", &text), -EINVAL);
        assert_int_equal(memctl_call_json(c, "", NULL, &text), -EINVAL);
        assert_null(text);
        memctl_free(c);
        set_reply(NULL);
}

/* The default socket of a user who is not root, as a child of that uid sees it: 0 when it is
 * want, else a distinct failure. */
static int default_path_as(uid_t uid, const char *xdg, const char *want) {
        pid_t pid = fork();
        int status;

        if (pid == 0) {
                char *p = NULL;

                if (setgid(uid) < 0 || setuid(uid) < 0)
                        _exit(10);
                unsetenv("MEMMAPD_SOCKET");
                setenv("XDG_RUNTIME_DIR", xdg, 1);
                if (memctl_default_socket_path(&p) < 0)
                        _exit(11);
                _exit(strcmp(p, want) == 0 ? 0 : 12);
        }
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
                return -1;
        return WEXITSTATUS(status);
}

/* Where memctl_connect(NULL) goes: $MEMMAPD_SOCKET; else root's system socket, another user's
 * socket in $XDG_RUNTIME_DIR where it exists. A path starting with '@' is abstract. */
static void test_socket_paths(void **state) {
        char dir[] = "/tmp/memctl-xdg-XXXXXX", abstract[64], *p = NULL, *text = NULL, *long_path;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        memctl *c = NULL;
        int fd;

        assert_int_equal(memctl_default_socket_path(NULL), -EINVAL);
        assert_int_equal(setenv("MEMMAPD_SOCKET", sock_path, 1), 0);
        assert_int_equal(memctl_default_socket_path(&p), 0);
        assert_string_equal(p, sock_path);
        free(p);
        set_reply("{\"parameters\":{\"a\":1}}");
        assert_int_equal(memctl_connect(NULL, &c), 0);
        assert_int_equal(memctl_call_json(c, "io.memmapd.GetStatus", NULL, &text), 0);
        assert_string_equal(text, "{\"a\":1}");
        free(text);
        memctl_free(c);
        set_reply(NULL);
        /* Empty: as if unset. */
        assert_int_equal(setenv("MEMMAPD_SOCKET", "", 1), 0);
        if (geteuid() == 0) {
                assert_int_equal(memctl_default_socket_path(&p), 0);
                assert_string_equal(p, MEMCTL_SOCKET_PATH_SYSTEM);
                free(p);

                /* Another user: the runtime directory's socket once it is there. */
                assert_non_null(mkdtemp(dir));
                assert_int_equal(chmod(dir, 0755), 0);
                char *xdg_socket_dir = NULL, *xdg_socket = NULL;
                assert_true(asprintf(&xdg_socket_dir, "%s/memmapd", dir) > 0);
                assert_true(asprintf(&xdg_socket, "%s/io.memmapd", xdg_socket_dir) > 0);
                assert_int_equal(default_path_as(41001, dir, MEMCTL_SOCKET_PATH_SYSTEM), 0);
                assert_int_equal(mkdir(xdg_socket_dir, 0755), 0);
                assert_true((fd = open(xdg_socket, O_CREAT | O_WRONLY | O_CLOEXEC, 0644)) >= 0);
                close(fd);
                assert_int_equal(default_path_as(41001, dir, xdg_socket), 0);
                /* Not an absolute path: not taken. */
                assert_int_equal(default_path_as(41001, "relative", MEMCTL_SOCKET_PATH_SYSTEM), 0);
                unlink(xdg_socket);
                rmdir(xdg_socket_dir);
                rmdir(dir);
                free(xdg_socket);
                free(xdg_socket_dir);
        } else
                print_message("skipping the other user's default socket: needs root to become one\n");
        unsetenv("MEMMAPD_SOCKET");

        /* The abstract namespace: '@' stands for the leading NUL. */
        snprintf(abstract, sizeof(abstract), "@memctl-test-%d", (int) getpid());
        memcpy(sa.sun_path + 1, abstract + 1, strlen(abstract) - 1);
        assert_true((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(abstract))), 0);
        assert_int_equal(listen(fd, 4), 0);
        assert_int_equal(memctl_connect(abstract, &c), 0);
        memctl_free(c);
        abstract[strlen(abstract) - 1] ^= 1;
        assert_int_equal(memctl_connect(abstract, &c), -ECONNREFUSED);
        close(fd);

        /* Names the kernel cannot take. */
        long_path = malloc(200);
        assert_non_null(long_path);
        memset(long_path, 'x', 199);
        long_path[0] = '@';
        long_path[199] = 0;
        assert_int_equal(memctl_connect(long_path, &c), -ENAMETOOLONG);
        long_path[0] = '/';
        assert_int_equal(memctl_connect(long_path, &c), -ENAMETOOLONG);
        assert_int_equal(memctl_connect("", &c), -EINVAL);
        assert_int_equal(memctl_connect(sock_path, NULL), -EINVAL);
        free(long_path);
}

static void test_broken_connections(void **state) {
        memctl_lookup_reply *l = NULL;
        uint64_t addr = 0x1800;
        memctl *c = NULL;
        int r;

        /* Closed without a word (after the one retry too). */
        set_reply(NULL);
        r = lookup_with(NULL, &l);
        assert_int_equal(r, -ECONNRESET);
        assert_null(l);

        /* A reply that never ends: bounded, then an error. */
        pthread_mutex_lock(&lock);
        huge_len = 80u * 1024 * 1024;
        pthread_mutex_unlock(&lock);
        assert_int_equal(memctl_connect(sock_path, &c), 0);
        r = memctl_lookup(c, 123, 0, &addr, 1, 0, &l);
        assert_int_equal(r, -EPROTO);
        assert_null(l);
        memctl_free(c);
        set_reply(NULL);
}

#define PART(start, end) "{\"start\":\"" start "\",\"end\":\"" end "\",\"perms\":\"r-xp\",\"offset\":\"0x0\"," \
                         "\"dev\":\"08:01\",\"inode\":7,\"kind\":\"file\",\"name\":\"/x\",\"path\":\"/x\",\"deleted\":false}"

/* ListMappings asks for a streamed reply and puts the parts together, in order, whichever
 * member order the daemon writes; a reply in one message (a daemon that does not stream)
 * reads the same. What does not add up is refused, and the parts read so far are freed. */
static void test_streamed_list(void **state) {
        struct memctl_mapping m = MEMCTL_MAPPING_INIT;
        memctl_mappings *l = NULL;
        pid_t pid;
        uint64_t start_time;

        {
                const char *const msgs[] = {
                        "{\"parameters\":{" PROC ",\"mappings\":[" PART("0x1000", "0x2000") "," PART("0x2000", "0x3000") "]},\"continues\":true}",
                        "{\"continues\":true,\"parameters\":{\"mappings\":[" PART("0x3000", "0x4000") "]," PROC "}}",
                        "{\"parameters\":{" PROC ",\"mappings\":[" PART("0x5000", "0x6000") "]}}",
                };

                assert_int_equal(list_streamed(msgs, 3, &l), 0);
                assert_non_null(strstr(last_request, "\"more\":true"));
                assert_int_equal(memctl_mappings_count(l), 4);
                for (size_t i = 0; i < 4; i++) {
                        static const uint64_t starts[] = { 0x1000, 0x2000, 0x3000, 0x5000 };

                        assert_int_equal(memctl_mappings_get(l, i, &m), 0);
                        assert_int_equal(m.start, starts[i]);
                        assert_string_equal(m.path, "/x");
                }
                assert_int_equal(memctl_mappings_get_process(l, &pid, &start_time), 0);
                assert_int_equal(pid, 123);
                assert_int_equal(start_time, 5);
                memctl_mappings_free(l);
                l = NULL;
        }

        /* Many parts: the table grows across them. */
        {
                static char big[6000];
                const char *msgs[20];
                size_t n = 0, len = 0;

                for (unsigned i = 0; i < 19; i++) {
                        int k = snprintf(big + len, sizeof(big) - len,
                                         "{\"continues\":true,\"parameters\":{" PROC ",\"mappings\":["
                                         "{\"start\":\"0x%x000\",\"end\":\"0x%x000\",\"perms\":\"r-xp\",\"offset\":\"0x0\","
                                         "\"dev\":\"00:00\",\"inode\":0,\"kind\":\"anonymous\"}]}}",
                                         i + 1, i + 2);
                        assert_true(k > 0 && (size_t) k < sizeof(big) - len);
                        msgs[n++] = big + len;
                        len += (size_t) k + 1;
                }
                msgs[n++] = "{\"parameters\":{" PROC ",\"mappings\":[]}}";
                assert_int_equal(list_streamed(msgs, n, &l), 0);
                assert_int_equal(memctl_mappings_count(l), 19);
                assert_int_equal(memctl_mappings_get(l, 18, &m), 0);
                assert_int_equal(m.start, 0x13000);
                memctl_mappings_free(l);
                l = NULL;
        }

        /* A continuing part without mappings: a daemon never sends one, and it would let a
         * stream go on without end. */
        {
                const char *const msgs[] = {
                        "{\"continues\":true,\"parameters\":{" PROC ",\"mappings\":[]}}",
                        "{\"parameters\":{" PROC ",\"mappings\":[" PART("0x1000", "0x2000") "]}}",
                };

                assert_int_equal(list_streamed(msgs, 2, &l), -EPROTO);
                assert_null(l);
        }
        /* A part about another start time than the first. */
        {
                const char *const msgs[] = {
                        "{\"continues\":true,\"parameters\":{" PROC ",\"mappings\":[" PART("0x1000", "0x2000") "]}}",
                        "{\"parameters\":{\"process\":{\"pid\":123,\"start_time\":6},\"mappings\":[]}}",
                };

                assert_int_equal(list_streamed(msgs, 2, &l), -EPROTO);
                assert_null(l);
        }
        /* Parts, then an error: the call fails with it, the parts are dropped. */
        {
                const char *const msgs[] = {
                        "{\"continues\":true,\"parameters\":{" PROC ",\"mappings\":[" PART("0x1000", "0x2000") "]}}",
                        "{\"error\":\"io.memmapd.NoSuchProcess\",\"parameters\":{\"pid\":123}}",
                };

                assert_int_equal(list_streamed(msgs, 2, &l), -ESRCH);
                assert_null(l);
        }
        /* Parts, then a last message the fast decoder refuses but JSON allows: taking it
         * alone would lose the parts. */
        {
                const char *const msgs[] = {
                        "{\"continues\":true,\"parameters\":{" PROC ",\"mappings\":[" PART("0x1000", "0x2000") "]}}",
                        /* Nested deeper than the fast decoder follows (16), not than the
                         * general one (32). */
                        "{\"parameters\":{" PROC ",\"mappings\":[" PART("0x3000", "0x4000") "],"
                        "\"x\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}}",
                };

                assert_int_equal(list_streamed(msgs, 2, &l), -EPROTO);
                assert_null(l);
        }
        /* A refused part: refused whatever follows. */
        {
                const char *const msgs[] = {
                        "{\"continues\":true,\"parameters\":{\"mappings\":[" PART("0x1000", "0x2000") "]}}",
                        "{\"parameters\":{" PROC ",\"mappings\":[]}}",
                };

                assert_int_equal(list_streamed(msgs, 2, &l), -EPROTO);
                assert_null(l);
        }
        /* Parts and no end: the connection closes (the retry gets the same). */
        {
                const char *const msgs[] = {
                        "{\"continues\":true,\"parameters\":{" PROC ",\"mappings\":[" PART("0x1000", "0x2000") "]}}",
                };

                assert_int_equal(list_streamed(msgs, 1, &l), -ECONNRESET);
                assert_null(l);
        }
        set_reply(NULL);
}

/* A streamed listing ends at 2^20 mappings, what the daemon lists at most: one more is
 * refused rather than grown into (a never-ending stream would take all memory). */
static void test_streamed_list_bound(void **state) {
        memctl_mappings *l = NULL;
        memctl *c = NULL;

        for (int over = 0; over <= 1; over++) {
                pthread_mutex_lock(&lock);
                stream_len = (1u << 20) + (size_t) over;
                huge_len = 0;
                pthread_mutex_unlock(&lock);
                assert_int_equal(memctl_connect(sock_path, &c), 0);
                assert_int_equal(memctl_list_mappings(c, 123, 0, 0, &l), over ? -EPROTO : 0);
                if (!over) {
                        struct memctl_mapping m = MEMCTL_MAPPING_INIT;

                        assert_int_equal(memctl_mappings_count(l), 1u << 20);
                        assert_int_equal(memctl_mappings_get(l, (1u << 20) - 1, &m), 0);
                        assert_int_equal(m.start, (uint64_t) (2 * ((1u << 20) - 1) + 1) << 12);
                        memctl_mappings_free(l);
                        l = NULL;
                } else
                        assert_null(l);
                memctl_free(c);
        }
        set_reply(NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_reply),
                cmocka_unit_test(test_list_value_forms),
                cmocka_unit_test(test_lookup_request),
                cmocka_unit_test(test_reply_forms),
                cmocka_unit_test(test_reasons),
                cmocka_unit_test(test_process_info),
                cmocka_unit_test(test_name_hex),
                cmocka_unit_test(test_daemon_form_defects),
                cmocka_unit_test(test_hostile_replies),
                cmocka_unit_test(test_error_replies),
                cmocka_unit_test(test_error_mapping),
                cmocka_unit_test(test_last_error),
                cmocka_unit_test(test_socket_paths),
                cmocka_unit_test(test_broken_connections),
                cmocka_unit_test(test_streamed_list),
                cmocka_unit_test(test_streamed_list_bound),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
