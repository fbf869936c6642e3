/* Fuzz target: libmemctl against a hostile daemon. The input is what the "daemon" sends back
 * on a real Unix socket: one call through the public API reads it, whatever it is (one
 * message, a streamed listing in parts, garbage, a stream cut off), and must return a result
 * that keeps the library's promises or an error, never crash, read out of bounds or leak.
 *
 * Input: 1 header byte, then the bytes the daemon sends (NUL-separated messages).
 *   [0] % 4: 0 ListMappings (flags from bits 2-4), 1 Lookup of 1-8 addresses, 2 GetStatus,
 *            3 memctl_call_json(). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz.h"
#include "libmemctl.h"

struct daemon_side {
        int fd;
        const uint8_t *data;
        size_t size;
};

/* Sends the reply bytes, then EOF, and reads whatever the client sent. On a thread: a reply
 * larger than the socket buffers needs the client reading meanwhile. */
static void *daemon_side_run(void *arg) {
        struct daemon_side *d = arg;
        char sink[4096];

        for (size_t done = 0; done < d->size;) {
                ssize_t n = send(d->fd, d->data + done, d->size - done, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break; /* the client gave up on the reply and closed */
                done += (size_t) n;
        }
        shutdown(d->fd, SHUT_WR);
        while (recv(d->fd, sink, sizeof(sink), 0) > 0)
                ;
        return NULL;
}

/* What a caller may read of a mapping the library handed out. */
static void check_mapping(const struct memctl_mapping *m) {
        FUZZ_CHECK(m->start < m->end);
        FUZZ_CHECK(strnlen(m->perms, sizeof(m->perms)) == 4);
        FUZZ_CHECK(m->kind_name && strlen(m->kind_name) > 0);
        if (m->name)
                (void) strlen(m->name);
        if (m->path)
                (void) strlen(m->path);
        FUZZ_CHECK((m->build_id == NULL) == (m->build_id_hex == NULL));
        if (m->build_id) {
                FUZZ_CHECK(m->build_id_size > 0 && strlen(m->build_id_hex) == 2 * m->build_id_size);
                for (size_t i = 0; i < m->build_id_size; i++)
                        (void) m->build_id[i];
        }
}

static void call_list(memctl *c, uint8_t header) {
        uint64_t flags = (uint64_t) (header >> 2) & (MEMCTL_EXECUTABLE_ONLY | MEMCTL_FILE_BACKED_ONLY | MEMCTL_BUILD_IDS);
        memctl_mappings *l = NULL;
        pid_t pid;
        uint64_t start_time;

        if (memctl_list_mappings(c, 123, 0, flags, &l) < 0) {
                FUZZ_CHECK(!l);
                return;
        }
        /* Not always 123: a thread id is answered for its thread group. */
        FUZZ_CHECK(memctl_mappings_get_process(l, &pid, &start_time) == 0 && pid > 0);
        for (size_t i = 0; i < memctl_mappings_count(l); i++) {
                struct memctl_mapping m = MEMCTL_MAPPING_INIT;

                FUZZ_CHECK(memctl_mappings_get(l, i, &m) == 0);
                check_mapping(&m);
        }
        memctl_mappings_free(l);
}

static void call_lookup(memctl *c, uint8_t header) {
        /* Addresses a seed reply can cover: 0x1800, 0x2800, ... */
        uint64_t addresses[8];
        size_t n = 1 + (size_t) (header >> 2) % 8;
        memctl_lookup_reply *l = NULL;

        for (size_t i = 0; i < n; i++)
                addresses[i] = 0x1800 + 0x1000 * (uint64_t) i;
        if (memctl_lookup(c, 123, 0, addresses, n, (header & 0x80) ? MEMCTL_BUILD_IDS : 0, &l) < 0) {
                FUZZ_CHECK(!l);
                return;
        }
        FUZZ_CHECK(memctl_lookup_reply_count(l) == n);
        for (size_t i = 0; i < n; i++) {
                struct memctl_lookup_result r = MEMCTL_LOOKUP_RESULT_INIT;
                struct memctl_mapping m = MEMCTL_MAPPING_INIT;

                FUZZ_CHECK(memctl_lookup_reply_get(l, i, &r) == 0);
                FUZZ_CHECK(r.address == addresses[i]);
                if (r.mapping == MEMCTL_NO_MAPPING)
                        continue;
                /* The library's promise: an index in range, of a mapping that covers it. */
                FUZZ_CHECK(r.mapping < memctl_lookup_reply_mapping_count(l));
                FUZZ_CHECK(memctl_lookup_reply_get_mapping(l, r.mapping, &m) == 0);
                check_mapping(&m);
                FUZZ_CHECK(m.start <= r.address && r.address < m.end);
        }
        memctl_lookup_reply_free(l);
}

static void call_status(memctl *c) {
        struct memctl_status_info info = MEMCTL_STATUS_INFO_INIT;
        memctl_status *s = NULL;

        if (memctl_get_status(c, &s) < 0) {
                FUZZ_CHECK(!s);
                return;
        }
        FUZZ_CHECK(memctl_status_get_info(s, &info) == 0);
        if (info.version)
                (void) strlen(info.version);
        if (info.kernel)
                (void) strlen(info.kernel);
        if (info.backend)
                (void) strlen(info.backend);
        memctl_status_free(s);
}

static void call_json(memctl *c) {
        char *reply = NULL;

        if (memctl_call_json(c, "io.memmapd.GetStatus", NULL, &reply) < 0) {
                FUZZ_CHECK(!reply);
                return;
        }
        FUZZ_CHECK(reply);
        (void) strlen(reply);
        free(reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char dir[] = "/tmp/fuzz-libmemctl-XXXXXX";
        static char path[sizeof(dir) + 2];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct daemon_side d;
        pthread_t thread;
        memctl *c = NULL;
        int listener;

        if (size < 1)
                return 0;
        if (!path[0]) {
                FUZZ_CHECK(mkdtemp(dir));
                snprintf(path, sizeof(path), "%s/s", dir);
        }
        /* A listener per input, gone once the client is in: the library's one retry after a
         * broken connection then fails at once instead of waiting on a daemon that never
         * answers. */
        strcpy(sa.sun_path, path);
        listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        FUZZ_CHECK(listener >= 0);
        unlink(path);
        FUZZ_CHECK(bind(listener, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        FUZZ_CHECK(listen(listener, 1) == 0);
        FUZZ_CHECK(memctl_connect(path, &c) == 0);
        d = (struct daemon_side) { .fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC), .data = data + 1, .size = size - 1 };
        FUZZ_CHECK(d.fd >= 0);
        close(listener);
        unlink(path);
        FUZZ_CHECK(memctl_set_timeout(c, 5 * 1000 * 1000) == 0);
        FUZZ_CHECK(pthread_create(&thread, NULL, daemon_side_run, &d) == 0);

        switch (data[0] % 4) {
        case 0:
                call_list(c, data[0]);
                break;
        case 1:
                call_lookup(c, data[0]);
                break;
        case 2:
                call_status(c);
                break;
        default:
                call_json(c);
                break;
        }
        /* The client hangs up first, so the daemon side's sends and reads end. */
        memctl_free(c);
        FUZZ_CHECK(pthread_join(thread, NULL) == 0);
        close(d.fd);
        return 0;
}
