/* Sources of layouts: what reads a live process's mappings (the maps text, PROCMAP_QUERY, or both composed), behind one small interface. */
#pragma once

/* Design. A source knows how to read one process's mappings and nothing else: no ELF
 * files, no build IDs from files, no credentials (the caller's thread already has the
 * client's, and the process was opened under them). The engine picks its source once, at
 * engine_new(), and from then on every listing and lookup goes through it:
 *
 *   - source_maps: the text of /proc/PID/maps alone (kernels without PROCMAP_QUERY). It
 *     always reads everything; names are the text's, which escapes a newline the same way as
 *     a literal "\012" (names_from_text: the engine checks such names against the files).
 *   - source_ioctl: PROCMAP_QUERY alone, one query per VMA; filters run in the kernel, and a
 *     lookup asks only for the VMAs its addresses touch (a partial layout).
 *   - source_text_ioctl: the composition the "ioctl" backend uses. A whole unfiltered listing
 *     is read from the maps text (60,000 VMAs: 12 ms against 30 ms of queries), completed by
 *     PROCMAP_QUERY where the text is not exact (page sizes, names the text may have changed);
 *     everything else (filtered listings, listings for build IDs, lookups) is source_ioctl's.
 *
 * Both ways of reading hand out raw mappings: the engine adds the per-file facts. Sources
 * that a future tracker of changes feeds (BPF, issue 14) fit the same interface. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "mapping.h"
#include "process.h"

/* What the sources of one engine know of the kernel, learned once. */
struct source_context {
        /* The gate area as this kernel shows it to 64-bit processes (x86-64 [vsyscall]): no
         * VMA, so PROCMAP_QUERY never reports it; the text does. */
        bool have_gate;
        uint64_t gate_start, gate_end;
        uint32_t gate_flags;
};

/* Learns the gate area from the text of self_maps_fd (our own /proc/self/maps). */
void source_context_init(struct source_context *ctx, int self_maps_fd);

enum {
        SOURCE_EXECUTABLE_ONLY = LAYOUT_EXECUTABLE_ONLY, /* filters a source may apply early; */
        SOURCE_FILE_BACKED_ONLY = LAYOUT_FILE_BACKED_ONLY, /* the caller applies them again */
        SOURCE_BUILD_IDS = 1u << 2,     /* the caller will ask the kernel for each file's build ID */
};

struct source {
        const char *name;
        /* Names come from the maps text alone: a "\012" in one may have been a newline. */
        bool names_from_text;
        /* The kernel can give build IDs of mapped files on the process's maps fd. */
        bool kernel_build_ids;
        /* Visits the mappings of p (SOURCE_* flags), each lent for the call. In address order,
         * except where ordered says false: then the caller sorts (layout_normalize()). The gate
         * area is included for 64-bit processes. -ESRCH when the process exited or exec'd
         * (its mm is gone), other -errno, or visit's first negative return. A truncated read of
         * a process that exited meanwhile may return 0: the caller checks that it still lives. */
        int (*read_each)(const struct source_context *ctx, const struct process *p, unsigned flags,
                         mapping_visit_t visit, void *userdata);
        bool ordered;
        /* Reads into l (new and empty) what the n addresses need, taken in the order
         * order[0..n) gives (ascending addresses): every mapping one of them falls in, and
         * known ranges (or completeness) so that each address is known. Errors as above. */
        int (*read_addresses)(const struct source_context *ctx, const struct process *p, const uint64_t *addrs,
                              const size_t *order, size_t n, struct layout *l);
};

extern const struct source source_maps;
extern const struct source source_ioctl;
extern const struct source source_text_ioctl;

/* A complete layout of p through s (flags as for read_each: a layout read with filters holds
 * only what passes them, and is still marked complete: the caller knows what it asked for).
 * Kernel threads give an empty one. -errno as for read_each. */
int source_read_layout(const struct source *s, const struct source_context *ctx, const struct process *p,
                       unsigned flags, struct layout **ret);

/* Reads every mapping through read_each into l and marks it complete: a read_addresses for
 * sources that cannot read less. */
int source_read_addresses_all(const struct source_context *ctx, const struct source *s, const struct process *p,
                              struct layout *l);

/* Visits what read(maps_fd, q, ...) visits, then the gate area when it belongs after the last
 * mapping visited (source_gate_follows()). Errors of read, -ENOMEM, or visit's. */
int source_read_then_gate(const struct source_context *ctx,
                          int (*read)(int maps_fd, unsigned q, mapping_visit_t visit, void *userdata), int maps_fd,
                          unsigned q, mapping_visit_t visit, void *userdata);

/* The gate area's mapping (name allocated). -ENOMEM. */
int source_gate_mapping(const struct source_context *ctx, struct mapping *ret);
/* Whether the gate area belongs after a listing of a process whose last mapping ends at
 * last_end: 64-bit processes (mappings above 4 GiB) on kernels that have one. */
bool source_gate_follows(const struct source_context *ctx, uint64_t last_end);
