/* Executable-mapping capture: loads the exec-maps BPF programs and hands on their records. */
#include <errno.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "exec-maps-capture.h"
#include "exec-maps.skel.h"

struct exec_maps_capture {
        struct exec_maps *skel;
        struct ring_buffer *ring;
        exec_maps_record_fn fn;         /* the drain in progress */
        void *userdata;
        unsigned taken;                 /* records handed on by it */
        _Atomic uint64_t consumed;      /* records taken out of the ring buffer, ever */
        uint64_t unknown_seen;          /* lost_unknown at the last exec_maps_capture_take_lost() */
};

/* Records one drain hands on at most: a machine that makes them faster than the drain takes
 * them would otherwise keep it (and the thread that runs it) forever. */
#define DRAIN_MAX 1024
/* What stops the ring buffer's consumption at that bound: never an error of fn's. */
#define DRAIN_BOUND_REACHED (-EXFULL)

/* Library code never logs: the -errno says what failed, the caller logs it once. */
static int silent_print(enum libbpf_print_level level, const char *format, va_list args) {
        return 0;
}

static int on_sample(void *ctx, void *data, size_t size) {
        struct exec_maps_capture *c = ctx;
        const struct exec_maps_record *r = data;

        /* Consumed whatever follows (libbpf moves past a sample whose callback fails too). */
        atomic_fetch_add_explicit(&c->consumed, 1, memory_order_release);
        /* Our own ring buffer, but a record's size is checked against what it says it holds. */
        if (!c->fn || size < EXEC_MAPS_RECORD_HEADER || r->n > EXEC_MAPS_PER_RECORD ||
            size != EXEC_MAPS_RECORD_HEADER + r->n * sizeof(r->m[0]))
                return 0;
        {
                int k = c->fn(r, c->userdata);

                if (k < 0)
                        return k;
        }
        return ++c->taken >= DRAIN_MAX ? DRAIN_BOUND_REACHED : 0;
}

struct exec_maps_capture *exec_maps_capture_free(struct exec_maps_capture *c) {
        if (!c)
                return NULL;
        ring_buffer__free(c->ring);
        exec_maps__destroy(c->skel);
        free(c);
        return NULL;
}

static int capture_load(struct exec_maps_capture *c) {
        int r;

        c->skel = exec_maps__open();
        if (!c->skel)
                return -errno;
        r = exec_maps__load(c->skel);
        if (r < 0)
                return r;
        if (!c->skel->bss)
                return -EOPNOTSUPP;
        r = exec_maps__attach(c->skel);
        if (r < 0)
                return r;
        c->ring = ring_buffer__new(bpf_map__fd(c->skel->maps.records), on_sample, c, NULL);
        if (!c->ring)
                return -errno;
        return 0;
}

int exec_maps_capture_new(struct exec_maps_capture **ret) {
        _cleanup_exec_maps_capture_ struct exec_maps_capture *c = NULL;
        libbpf_print_fn_t old_print;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        old_print = libbpf_set_print(silent_print);
        r = capture_load(c);
        libbpf_set_print(old_print);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

void exec_maps_capture_set_wake_delay(struct exec_maps_capture *c, uint64_t delay_ns) {
        __atomic_store_n(&c->skel->bss->wake_delay_ns, delay_ns, __ATOMIC_RELEASE);
}

int exec_maps_capture_fd(const struct exec_maps_capture *c) {
        return ring_buffer__epoll_fd(c->ring);
}

int exec_maps_capture_drain(struct exec_maps_capture *c, exec_maps_record_fn fn, void *userdata) {
        int r;

        c->fn = fn;
        c->userdata = userdata;
        c->taken = 0;
        r = ring_buffer__consume(c->ring);
        c->fn = NULL;
        c->userdata = NULL;
        return r == DRAIN_BOUND_REACHED ? (int) c->taken : r;
}

uint64_t exec_maps_capture_consumed(const struct exec_maps_capture *c) {
        return atomic_load_explicit(&((struct exec_maps_capture *) c)->consumed, memory_order_acquire);
}

void exec_maps_capture_get_stats(const struct exec_maps_capture *c, struct exec_maps_capture_stats *ret) {
        *ret = (struct exec_maps_capture_stats) {
                .emitted = __atomic_load_n(&c->skel->bss->records_emitted, __ATOMIC_RELAXED),
                .lost = __atomic_load_n(&c->skel->bss->lost_records, __ATOMIC_RELAXED),
                .unread = __atomic_load_n(&c->skel->bss->unread_records, __ATOMIC_RELAXED),
                .skipped = __atomic_load_n(&c->skel->bss->skipped_records, __ATOMIC_RELAXED),
        };
}

int exec_maps_capture_take_lost(struct exec_maps_capture *c, struct exec_maps_lost_process **ret, size_t *ret_n,
                                bool *ret_all) {
        int fd = bpf_map__fd(c->skel->maps.lost_processes);
        uint64_t unknown = __atomic_load_n(&c->skel->bss->lost_unknown, __ATOMIC_ACQUIRE);
        struct exec_maps_lost_process *out;
        bool all = true;
        size_t n = 0;

        out = calloc(EXEC_MAPS_LOST_MAX, sizeof(*out));
        if (!out)
                return -ENOMEM;
        /* Each entry taken out as it is read (the program may add more meanwhile: those are
         * counted as lost after they were noted, and the next call takes them). */
        while (n < EXEC_MAPS_LOST_MAX) {
                struct exec_maps_lost v;
                __u32 key;

                if (bpf_map_get_next_key(fd, NULL, &key) < 0)
                        break;
                if (bpf_map_lookup_and_delete_elem(fd, &key, &v) < 0) {
                        all = false;
                        break;
                }
                out[n++] = (struct exec_maps_lost_process) { .tgid = key, .start_boottime = v.start_boottime };
        }
        *ret_all = all && unknown == c->unknown_seen;
        c->unknown_seen = unknown;
        *ret = out;
        *ret_n = n;
        return 0;
}
