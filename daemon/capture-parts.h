/* The exec-maps capture's records gathered into whole sets as exec_history records: a set told in parts is taken only whole. */
#pragma once

/* Design. The capture (daemon/bpf/exec-maps.h) tells a range with more than
 * EXEC_MAPS_PER_RECORD executable file mappings in several records ("parts"), each stating
 * [range_start, range_end) of it, the next one starting where the last ended, all with the
 * capture's kind and time; parts of other processes may come between. A part can be lost (the
 * ring buffer was full: the capture counts it and names the process): a set gathered across the
 * gap does not state its range and is dropped, as is the rest of an exec's or exit's whole set
 * whose first part was lost; a change's later parts state their own range truly and are taken as
 * a change of that range. */

#include <stdint.h>

#include "exec-history.h"
#include "exec-maps.h"

/* Processes whose sets may be gathered at once. */
#define CAPTURE_PARTS_PROCESSES 16

struct capture_parts;

/* tick_ns: a clock tick, to make /proc's start time of a record's start_boottime. */
int capture_parts_new(uint64_t tick_ns, struct capture_parts **ret);
/* Accepts NULL; returns NULL. */
struct capture_parts *capture_parts_free(struct capture_parts *cp);

/* A whole set: r.mappings is m (paths and facts owned), r.n is n. */
struct capture_set {
        struct exec_history_record r;
        struct exec_history_mapping *m;
        size_t n;
};
void capture_set_done(struct capture_set *s);

/* Takes er: 1 and *ret (the caller's: capture_set_done()) when it completes a set; 0 when more
 * of its set is to come, or it was dropped with a set that lost a part (the capture counted that
 * loss). The record is dropped with its set, and the loss is the caller's to count, on -ENOSPC
 * (more than CAPTURE_PARTS_PROCESSES sets gathered at once), -E2BIG (a set past
 * EXEC_HISTORY_INTERVALS_MAX mappings) and -ENOMEM. */
int capture_parts_add(struct capture_parts *cp, const struct exec_maps_record *er, struct capture_set *ret);

/* Drops what was gathered of tgid's set (records of it were lost). */
void capture_parts_forget(struct capture_parts *cp, uint32_t tgid);
/* Drops every set being gathered. */
void capture_parts_clear(struct capture_parts *cp);
