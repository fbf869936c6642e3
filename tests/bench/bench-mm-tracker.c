/* What the change tracker costs the processes it watches: a loop of mmap+munmap pairs timed
 * with and without the BPF programs attached, alternately, and the ratio of the medians.
 *
 *   bench-mm-tracker [PAIRS [RUNS]]     (default 1,000,000 pairs, 5 runs of each; needs root) */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "mm-tracker.h"
#include "number.h"

#define RUNS_MAX 64

/* The thread's CPU time (user and system), not the wall clock: on a shared, loaded machine the
 * wall clock mostly measures waiting for a CPU, while the tracepoints' price is CPU time in the
 * kernel on this thread. */
static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int loop(uint64_t pairs, long page, uint64_t *ret_ns) {
        uint64_t t0 = now_ns();

        for (uint64_t i = 0; i < pairs; i++) {
                void *p = mmap(NULL, (size_t) page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

                if (p == MAP_FAILED || munmap(p, (size_t) page) < 0)
                        return -errno;
        }
        *ret_ns = now_ns() - t0;
        return 0;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
        uint64_t pairs = 1000000, runs = 5;
        uint64_t plain[RUNS_MAX], traced[RUNS_MAX], bumps = 0;
        long page = sysconf(_SC_PAGESIZE);
        pid_t self = getpid();
        int r;

        if ((argc > 1 && (parse_u64(argv[1], &pairs) < 0 || pairs == 0)) ||
            (argc > 2 && (parse_u64(argv[2], &runs) < 0 || runs == 0 || runs > RUNS_MAX))) {
                fprintf(stderr, "usage: %s [PAIRS [RUNS (1-%d)]]\n", argv[0], RUNS_MAX);
                return 2;
        }

        /* Alternated, so that a machine whose load drifts weighs on both sides alike. */
        for (uint64_t i = 0; i < runs; i++) {
                struct mm_tracker *t = NULL;
                uint64_t g0;

                r = loop(pairs, page, &plain[i]);
                if (r < 0)
                        goto fail;
                r = mm_tracker_new(0, &t);
                if (r < 0) {
                        fprintf(stderr, "bench-mm-tracker: cannot load the tracker: %s (needs CAP_BPF and CAP_PERFMON)\n",
                                strerror(-r));
                        return 77;
                }
                g0 = mm_tracker_generation(t, self);
                r = loop(pairs, page, &traced[i]);
                bumps = mm_tracker_generation(t, self) - g0;
                mm_tracker_free(t);
                if (r < 0)
                        goto fail;
                printf("run %" PRIu64 ": without %.1f ns/pair, with %.1f ns/pair (CPU time), %" PRIu64 " bumps\n", i + 1,
                       (double) plain[i] / (double) pairs, (double) traced[i] / (double) pairs, bumps);
        }
        qsort(plain, runs, sizeof(plain[0]), cmp_u64);
        qsort(traced, runs, sizeof(traced[0]), cmp_u64);
        printf("%" PRIu64 " mmap+munmap pairs, median of %" PRIu64 " runs (CPU time): without the tracker %.3f s, with it %.3f s, ratio %.3f\n",
               pairs, runs, (double) plain[runs / 2] / 1e9, (double) traced[runs / 2] / 1e9,
               (double) traced[runs / 2] / (double) plain[runs / 2]);
        /* Each pair is two write sections (mmap's, munmap's downgraded one): anything else means
         * the tracker missed one (fewer) or another process shares the slot (more). */
        printf("generation bumps in the last traced run: %" PRIu64 " (2 per pair: %" PRIu64 ")\n", bumps, 2 * pairs);
        return 0;
fail:
        fprintf(stderr, "bench-mm-tracker: %s\n", strerror(-r));
        return 1;
}
