/* How much room to reserve for a reply before writing it: a heuristic per serving thread, which changes no byte of a reply. */

#include "reply-size.h"

/* Replies above this are worth reserving room for up front: grown step by step, a reply of
 * many MiB was copied at each step (6% of a 60,000-mapping listing). Small ones are not
 * worth holding more memory than they need. */
#define REPLY_RESERVE_MIN (64 * 1024)

/* The length of the last large listing this thread wrote, and of what: a profiler lists one
 * process again and again. Reserving that much the next time costs address space at worst. */
static _Thread_local struct {
        pid_t pid;
        uint64_t start_time;
        unsigned flags;
        size_t len;
} last_listing;

void reply_reserve_listing(struct json_writer *w, pid_t pid, uint64_t start_time, unsigned flags) {
        if (last_listing.len > 0 && last_listing.pid == pid && last_listing.start_time == start_time &&
            last_listing.flags == flags)
                (void) json_writer_reserve(w, last_listing.len + last_listing.len / 16);
}

void reply_note_listing(pid_t pid, uint64_t start_time, unsigned flags, size_t len) {
        last_listing.pid = pid;
        last_listing.start_time = start_time;
        last_listing.flags = flags;
        last_listing.len = len >= REPLY_RESERVE_MIN ? len : 0;
}

void reply_reserve_lookup(struct json_writer *w, size_t n_mappings, size_t n_results) {
        /* About what it takes (names aside), so a reply of a MiB is not copied as it grows. */
        if (n_mappings <= SIZE_MAX / 512 && n_results <= SIZE_MAX / 512 &&
            224 * n_mappings + 112 * n_results >= REPLY_RESERVE_MIN)
                (void) json_writer_reserve(w, 224 * n_mappings + 112 * n_results);
}
