/* Fuzz target: the daemon's methods. A message is decoded as a call (memmapd_call_parse(), as
 * the daemon does) and answered by method_dispatch() with a method_context built the way
 * daemon/server.c builds one, against a live process: a child started once that sleeps
 * (/bin/sleep, so its layout is an ordinary small one). Every reply must be one well-formed
 * Varlink reply whose error is the one reported; a listing's mappings sorted and disjoint;
 * streamed parts well-formed and marked "continues".
 *
 * Input: 2 header bytes, then the message (no NUL needed).
 *   [0] bit 0: backend (0 ioctl, 1 maps); bit 1: a reply stream (a call with "more" streams);
 *       bit 2: the connection's target cache; bit 3: an unprivileged client (uid/gid 65534);
 *       bits 4-7: the stream refuses its part number (bits 4-7) with -E2BIG, 0: never.
 *   [1] below 128: output_max 0 (max_output_queue); else ([1] - 128) * 512 bytes.
 * In the message, "@P" becomes the child's pid, "@T" its start time, "@D" this process's pid,
 * "@A" the start address of the child's first mapping and "@B" the pid of a second child with
 * over 2,048 mappings, so that streamed listings come in several parts (all decimal): the
 * corpus names live processes whatever pids they get. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <json-c/json.h>

#include "daemon-config.h"
#include "engine.h"
#include "fuzz.h"
#include "memmapd-codec.h"
#include "methods.h"
#include "process.h"
#include "varlink.h"

#define HEADER_SIZE 2
#define CALL_DEPTH 64
#define MESSAGE_MAX (64 * 1024)
/* Pages of the big child's region, every other one made read-only: a VMA each. */
#define BIG_PAGES 4400

static struct {
        bool ready;
        pid_t child;
        pid_t big;
        uint64_t child_start_time;
        uint64_t child_first_address;
        struct engine *engines[2];
        struct config cfg;
} g;

static void stop_child(void) {
        if (g.child > 0) {
                kill(g.child, SIGKILL);
                (void) waitpid(g.child, NULL, 0);
                g.child = 0;
        }
        if (g.big > 0) {
                kill(g.big, SIGKILL);
                (void) waitpid(g.big, NULL, 0);
                g.big = 0;
        }
        for (size_t i = 0; i < 2; i++)
                g.engines[i] = engine_free(g.engines[i]);
        config_done(&g.cfg);
}

/* Waits until the child closes its end of the pipe (by exec or close): it is ready. */
static void wait_ready(int pipefd[2]) {
        ssize_t n;
        char c;

        close(pipefd[1]);
        while ((n = read(pipefd[0], &c, 1)) < 0 && errno == EINTR)
                ;
        FUZZ_CHECK(n == 0);
        close(pipefd[0]);
}

static void setup(void) {
        static const enum engine_backend backends[2] = { ENGINE_BACKEND_IOCTL, ENGINE_BACKEND_MAPS };
        int pipefd[2], fd;
        char maps[256], buf[64] = {};

        /* The child says it has exec()ed by closing the pipe (O_CLOEXEC), so its layout is
         * sleep's before anything reads it. It dies with this process. */
        FUZZ_CHECK(pipe2(pipefd, O_CLOEXEC) == 0);
        g.child = fork();
        FUZZ_CHECK(g.child >= 0);
        if (g.child == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                execl("/bin/sleep", "sleep", "infinity", (char *) NULL);
                _exit(127);
        }
        wait_ready(pipefd);

        /* The big child: a fork of this process that splits a region into VMAs, says so by
         * closing the pipe, and sleeps. */
        FUZZ_CHECK(pipe2(pipefd, O_CLOEXEC) == 0);
        g.big = fork();
        FUZZ_CHECK(g.big >= 0);
        if (g.big == 0) {
                long page = sysconf(_SC_PAGESIZE);
                char *region;

                prctl(PR_SET_PDEATHSIG, SIGKILL);
                close(pipefd[0]);
                region = mmap(NULL, (size_t) page * BIG_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (region == MAP_FAILED)
                        _exit(1);
                for (size_t i = 0; i < BIG_PAGES; i += 2)
                        if (mprotect(region + i * (size_t) page, (size_t) page, PROT_READ) < 0)
                                _exit(1);
                close(pipefd[1]);
                for (;;)
                        pause();
        }
        wait_ready(pipefd);

        snprintf(maps, sizeof(maps), "/proc/%d/stat", (int) g.child);
        fd = open(maps, O_RDONLY | O_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
        {
                char stat[4096];
                ssize_t k = read(fd, stat, sizeof(stat));

                FUZZ_CHECK(k > 0);
                FUZZ_CHECK(proc_parse_start_time(stat, (size_t) k, &g.child_start_time) == 0);
        }
        close(fd);

        snprintf(maps, sizeof(maps), "/proc/%d/maps", (int) g.child);
        fd = open(maps, O_RDONLY | O_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
        FUZZ_CHECK(read(fd, buf, sizeof(buf) - 1) > 0);
        close(fd);
        g.child_first_address = strtoull(buf, NULL, 16);
        FUZZ_CHECK(g.child_first_address > 0);

        config_init(&g.cfg);
        for (size_t i = 0; i < 2; i++) {
                struct engine_config ec = { .backend = backends[i] };

                FUZZ_CHECK(engine_new(&ec, &g.engines[i]) == 0);
        }
        atexit(stop_child);
        g.ready = true;
}

/* The message with the placeholders replaced, NUL-terminated; NULL when too long. */
static char *substitute(const uint8_t *s, size_t n, size_t *ret_len) {
        char *out = malloc(MESSAGE_MAX + 1);
        size_t len = 0;

        FUZZ_CHECK(out);
        for (size_t i = 0; i < n; i++) {
                char num[32];
                const char *add = NULL;

                if (s[i] == '@' && i + 1 < n) {
                        const char *at = strchr("PTDBA", s[i + 1]);
                        const uint64_t values[] = { (uint64_t) g.child, g.child_start_time, (uint64_t) getpid(),
                                                    (uint64_t) g.big, g.child_first_address };

                        if (at && *at) {
                                snprintf(num, sizeof(num), "%" PRIu64, values[at - "PTDBA"]);
                                add = num;
                        }
                }
                if (add) {
                        size_t k = strlen(add);

                        if (len + k > MESSAGE_MAX)
                                goto too_long;
                        memcpy(out + len, add, k);
                        len += k;
                        i++;
                } else {
                        if (len + 1 > MESSAGE_MAX)
                                goto too_long;
                        out[len++] = (char) s[i];
                }
        }
        out[len] = 0;
        *ret_len = len;
        return out;
too_long:
        free(out);
        return NULL;
}

static uint64_t address_of(struct json_object *m, const char *key) {
        struct json_object *v;
        uint64_t a = 0;

        FUZZ_CHECK(json_object_object_get_ex(m, key, &v));
        FUZZ_CHECK(varlink_json_u64(v, &a) == 0);
        return a;
}

/* A successful listing's mappings: each non-empty, sorted and disjoint (a Lookup's come in
 * the order of the addresses asked). */
static void check_mappings(struct json_object *params, uint64_t *last_end) {
        struct json_object *arr;

        if (!json_object_object_get_ex(params, "mappings", &arr) || json_object_object_get_ex(params, "results", NULL))
                return;
        FUZZ_CHECK(json_object_is_type(arr, json_type_array));
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                struct json_object *m = json_object_array_get_idx(arr, i);
                uint64_t start = address_of(m, "start"), end = address_of(m, "end");

                FUZZ_CHECK(start < end);
                FUZZ_CHECK(start >= *last_end);
                *last_end = end;
        }
}

struct stream_state {
        unsigned refuse_at;     /* part number refused with -E2BIG, 0: none */
        unsigned seen;
        uint64_t last_end;      /* of the listing's mappings so far */
        bool refused;
};

static void check_reply(const char *msg, size_t len, const char *error, bool continues, uint64_t *last_end) {
        struct varlink_reply rep;

        FUZZ_CHECK(len >= 1 && msg[len - 1] == 0 && strlen(msg) == len - 1);
        FUZZ_CHECK(varlink_reply_parse(msg, len - 1, CALL_DEPTH, &rep) == 0);
        FUZZ_CHECK(rep.continues == continues);
        if (error)
                FUZZ_CHECK(rep.error && strcmp(rep.error, error) == 0);
        else if (!continues)
                FUZZ_CHECK(!rep.error);
        if (!rep.error)
                check_mappings(rep.parameters, last_end);
        varlink_reply_done(&rep);
}

static int emit(void *userdata, char *msg, size_t len) {
        struct stream_state *st = userdata;

        /* Nothing comes after a refused part. */
        FUZZ_CHECK(!st->refused);
        st->seen++;
        check_reply(msg, len, NULL, true, &st->last_end);
        free(msg);
        if (st->refuse_at != 0 && st->seen == st->refuse_at) {
                st->refused = true;
                return -E2BIG;
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct service_stats stats = {};
        struct target_cache cache = {};
        struct stream_state st = {};
        struct reply_stream stream = { .emit = emit, .userdata = &st };
        struct client client = { .pid = 1, .uid = 0, .gid = 0, .owner = 0, .privileged = true };
        struct method_context ctx = {};
        struct varlink_call call = {};
        const char *bad = NULL, *error = NULL;
        char *msg, *reply = NULL;
        size_t len, rlen = 0;
        int r;

        if (!g.ready)
                setup();
        if (size < HEADER_SIZE)
                return 0;
        msg = substitute(data + HEADER_SIZE, size - HEADER_SIZE, &len);
        if (!msg)
                return 0;

        if (data[0] & 8) {
                client.uid = client.gid = client.owner = 65534;
                client.privileged = false;
        }
        st.refuse_at = data[0] >> 4;
        ctx = (struct method_context){
                .engine = g.engines[data[0] & 1],
                .limits = &g.cfg.limits,
                .stats = &stats,
                .client = &client,
                .cache = (data[0] & 4) ? &cache : NULL,
                .stream = (data[0] & 2) ? &stream : NULL,
                .output_max = data[1] < 128 ? 0 : (size_t) (data[1] - 128) * 512,
        };
        if (ctx.output_max)
                ctx.output_limit = "output_budget", ctx.output_limit_value = ctx.output_max;

        r = memmapd_call_parse(msg, len, g.cfg.limits.max_json_depth, &call, &bad);
        if (r == 0) {
                /* A oneway call is answered by the daemon without a stream, as here. */
                if (call.oneway)
                        ctx.stream = NULL;
                r = method_dispatch(&ctx, &call, &reply, &rlen, &error);
                FUZZ_CHECK(r == 0);
                /* A refused part ends the call: the last reply is then an error. */
                if (st.refused)
                        FUZZ_CHECK(error);
                check_reply(reply, rlen, error, false, &st.last_end);
                /* For whoever curates the corpus: what each input reached. */
                if (getenv("FUZZ_METHODS_VERBOSE"))
                        fprintf(stderr, "%s: %s, %u parts, %zu bytes\n", call.method, error ? error : "ok",
                                st.seen, rlen);
                free(reply);
                varlink_call_done(&call);
        }
        target_cache_clear(&cache);
        free(msg);
        return 0;
}
