/* Change tracking: loads the mm-track BPF programs and tells, with one load, whether a process's address space changed. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "mm-tracker.h"
#include "mm-track.skel.h"

struct mm_tracker {
        struct mm_track *skel;
        struct ring_buffer *ring;
        const uint64_t *generations;    /* the generations map, mmap'd read-only */
        const uint64_t *epochs;         /* the epochs map, likewise */
        const uint64_t *mms;            /* the mms map, likewise */
        size_t counters_size;           /* the mmap'd size of each */
        uint32_t mask;
        /* The drain in progress: ring_buffer__new() takes one context for good. */
        mm_tracker_event_fn fn;
        void *userdata;
        unsigned taken;                 /* events handed on by it */
};

/* Events one drain hands on at most: processes forking faster than the drain takes their
 * events would otherwise keep it (and the thread that runs it) forever. */
#define DRAIN_MAX 1024
/* What stops the ring buffer's consumption at that bound: never an error of fn's. */
#define DRAIN_BOUND_REACHED (-EXFULL)

/* Library code never logs: libbpf's messages are silenced while we call it (the -errno says
 * what failed; the caller logs it once). */
static int silent_print(enum libbpf_print_level level, const char *format, va_list args) {
        return 0;
}

static int on_sample(void *ctx, void *data, size_t size) {
        struct mm_tracker *t = ctx;
        struct mm_track_event event;

        /* The ring buffer is ours, but a sample's size is checked all the same. */
        if (size != sizeof(event) || !t->fn)
                return 0;
        memcpy(&event, data, sizeof(event));
        {
                int k = t->fn(&event, t->userdata);

                if (k < 0)
                        return k;
        }
        return ++t->taken >= DRAIN_MAX ? DRAIN_BOUND_REACHED : 0;
}

struct mm_tracker *mm_tracker_free(struct mm_tracker *t) {
        if (!t)
                return NULL;
        ring_buffer__free(t->ring);
        if (t->generations)
                munmap((void *) t->generations, t->counters_size);
        if (t->epochs)
                munmap((void *) t->epochs, t->counters_size);
        if (t->mms)
                munmap((void *) t->mms, t->counters_size);
        mm_track__destroy(t->skel);
        free(t);
        return NULL;
}

/* A per-slot counter map, read-only: the daemon only ever loads from it. */
static int map_counters(const struct bpf_map *map, size_t size, const uint64_t **ret) {
        void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, bpf_map__fd(map), 0);

        if (p == MAP_FAILED)
                return -errno;
        *ret = p;
        return 0;
}

static int tracker_load(struct mm_tracker *t, unsigned slots) {
        long page = sysconf(_SC_PAGESIZE);
        int r;

        t->skel = mm_track__open();
        if (!t->skel)
                return -errno;
        r = bpf_map__set_max_entries(t->skel->maps.generations, slots);
        if (r < 0)
                return r;
        r = bpf_map__set_max_entries(t->skel->maps.epochs, slots);
        if (r < 0)
                return r;
        r = bpf_map__set_max_entries(t->skel->maps.mms, slots);
        if (r < 0)
                return r;
        t->skel->rodata->slot_mask = slots - 1;
        t->mask = slots - 1;

        r = mm_track__load(t->skel);
        if (r < 0)
                return r;
        /* libbpf maps .bss where the kernel can (5.5+, below what tp_btf needs). */
        if (!t->skel->bss)
                return -EOPNOTSUPP;
        r = mm_track__attach(t->skel);
        if (r < 0)
                return r;

        t->counters_size = ((size_t) slots * sizeof(uint64_t) + (size_t) page - 1) & ~((size_t) page - 1);
        r = map_counters(t->skel->maps.generations, t->counters_size, &t->generations);
        if (r < 0)
                return r;
        r = map_counters(t->skel->maps.epochs, t->counters_size, &t->epochs);
        if (r < 0)
                return r;
        r = map_counters(t->skel->maps.mms, t->counters_size, &t->mms);
        if (r < 0)
                return r;

        t->ring = ring_buffer__new(bpf_map__fd(t->skel->maps.events), on_sample, t, NULL);
        if (!t->ring)
                return -errno;
        return 0;
}

int mm_tracker_new(unsigned slots, struct mm_tracker **ret) {
        _cleanup_mm_tracker_ struct mm_tracker *t = NULL;
        libbpf_print_fn_t old_print;
        int r;

        if (slots == 0)
                slots = MM_TRACK_DEFAULT_SLOTS;
        if (slots < 512 || slots > MM_TRACK_MAX_SLOTS || (slots & (slots - 1)) != 0)
                return -EINVAL;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;

        old_print = libbpf_set_print(silent_print);
        r = tracker_load(t, slots);
        libbpf_set_print(old_print);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(t);
        return 0;
}

uint64_t mm_tracker_generation(const struct mm_tracker *t, pid_t tgid) {
        return __atomic_load_n(&t->generations[(uint32_t) tgid & t->mask], __ATOMIC_ACQUIRE);
}

uint64_t mm_tracker_epoch(const struct mm_tracker *t, pid_t tgid) {
        return __atomic_load_n(&t->epochs[(uint32_t) tgid & t->mask], __ATOMIC_ACQUIRE);
}

uint64_t mm_tracker_mm(const struct mm_tracker *t, pid_t tgid) {
        return __atomic_load_n(&t->mms[(uint32_t) tgid & t->mask], __ATOMIC_ACQUIRE);
}

/* Acquire: the events counted were reserved before, so a drain after this load finds them
 * (once their producers submit them). */
uint64_t mm_tracker_events_emitted(const struct mm_tracker *t) {
        return __atomic_load_n(&t->skel->bss->events_emitted, __ATOMIC_ACQUIRE);
}

unsigned mm_tracker_slots(const struct mm_tracker *t) {
        return t->mask + 1;
}

void mm_tracker_set_wake_delay(struct mm_tracker *t, uint64_t delay_ns) {
        __atomic_store_n(&t->skel->bss->wake_delay_ns, delay_ns, __ATOMIC_RELEASE);
}

int mm_tracker_event_fd(const struct mm_tracker *t) {
        return ring_buffer__epoll_fd(t->ring);
}

int mm_tracker_drain(struct mm_tracker *t, mm_tracker_event_fn fn, void *userdata) {
        int r;

        t->fn = fn;
        t->userdata = userdata;
        t->taken = 0;
        r = ring_buffer__consume(t->ring);
        t->fn = NULL;
        t->userdata = NULL;
        return r == DRAIN_BOUND_REACHED ? (int) t->taken : r;
}

uint64_t mm_tracker_lost_events(const struct mm_tracker *t) {
        return __atomic_load_n(&t->skel->bss->lost_events, __ATOMIC_RELAXED);
}

int mm_tracker_shared_processes(struct mm_tracker *t, size_t max, pid_t **ret, size_t *ret_n) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint32_t *tgids = NULL;
        size_t bytes = 0, cap = (max + 1) * sizeof(*tgids);
        pid_t *out;

        tgids = malloc(cap);
        if (!tgids)
                return -ENOMEM;
        fd = bpf_iter_create(bpf_link__fd(t->skel->links.mm_track_shared));
        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t k = read(fd, (char *) tgids + bytes, cap - bytes);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                bytes += (size_t) k;
                if (bytes == cap)
                        return -E2BIG;
        }
        if (bytes % sizeof(*tgids) != 0)
                return -EBADMSG;
        /* pid_t and uint32_t: the same size on Linux, converted one by one anyway. */
        out = malloc(MAX(bytes, sizeof(*out)));
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < bytes / sizeof(*tgids); i++)
                out[i] = (pid_t) tgids[i];
        *ret = out;
        *ret_n = bytes / sizeof(*tgids);
        return 0;
}
