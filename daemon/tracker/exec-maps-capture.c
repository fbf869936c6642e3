/* Executable-mapping capture: loads the exec-maps BPF programs and hands on their records. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "exec-maps-capture.h"
#include "exec-maps.skel.h"

struct exec_maps_capture {
        struct exec_maps *skel;
        struct ring_buffer *ring;
        exec_maps_record_fn fn;         /* the drain in progress */
        void *userdata;
};

/* Library code never logs: the -errno says what failed, the caller logs it once. */
static int silent_print(enum libbpf_print_level level, const char *format, va_list args) {
        return 0;
}

static int on_sample(void *ctx, void *data, size_t size) {
        struct exec_maps_capture *c = ctx;
        const struct exec_maps_record *r = data;

        /* Our own ring buffer, but a record's size is checked against what it says it holds. */
        if (!c->fn || size < EXEC_MAPS_RECORD_HEADER || r->n > EXEC_MAPS_PER_RECORD ||
            size != EXEC_MAPS_RECORD_HEADER + r->n * sizeof(r->m[0]))
                return 0;
        return c->fn(r, c->userdata);
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

int exec_maps_capture_fd(const struct exec_maps_capture *c) {
        return ring_buffer__epoll_fd(c->ring);
}

int exec_maps_capture_drain(struct exec_maps_capture *c, exec_maps_record_fn fn, void *userdata) {
        int r;

        c->fn = fn;
        c->userdata = userdata;
        r = ring_buffer__consume(c->ring);
        c->fn = NULL;
        c->userdata = NULL;
        return r;
}

void exec_maps_capture_get_stats(const struct exec_maps_capture *c, struct exec_maps_capture_stats *ret) {
        *ret = (struct exec_maps_capture_stats) {
                .emitted = __atomic_load_n(&c->skel->bss->records_emitted, __ATOMIC_RELAXED),
                .lost = __atomic_load_n(&c->skel->bss->lost_records, __ATOMIC_RELAXED),
                .unread = __atomic_load_n(&c->skel->bss->unread_records, __ATOMIC_RELAXED),
                .skipped = __atomic_load_n(&c->skel->bss->skipped_records, __ATOMIC_RELAXED),
        };
}
