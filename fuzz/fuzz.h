/* Shared by the libFuzzer targets and by the corpus replayer that runs them in ordinary builds. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The libFuzzer entry point each target defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test: a violation must stop the fuzzer with a crash it keeps,
 * so abort() and never a return. Not assert(): NDEBUG must not turn the checks off. */
#define FUZZ_CHECK(expr)                                                                      \
        do {                                                                                  \
                if (!(expr)) {                                                                \
                        fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, \
                                #expr);                                                       \
                        abort();                                                              \
                }                                                                             \
        } while (0)

/* A small deterministic generator, so that bytes of the input can drive choices (chunk sizes,
 * limits) the way libFuzzer's FuzzedDataProvider would, with the same input always making the
 * same choices. */
static inline uint32_t fuzz_rand(uint32_t *state) {
        uint32_t x = *state ? *state : 0x9e3779b9u;

        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *state = x;
        return x;
}

/* An anonymous in-memory file holding data, for the fd-reading variants of the parsers; one
 * per process, rewritten for each input. Aborts on failure: this is harness code. */
int fuzz_memfd(const uint8_t *data, size_t size);
