/* How much room to reserve for a reply before writing it: a heuristic per serving thread, which changes no byte of a reply. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "json-writer.h"

/* Before a listing of (pid, start_time) with engine flags: reserves what this thread's last
 * listing of the same took, when it was large. */
void reply_reserve_listing(struct json_writer *w, pid_t pid, uint64_t start_time, unsigned flags);

/* After it: len bytes were written. */
void reply_note_listing(pid_t pid, uint64_t start_time, unsigned flags, size_t len);

/* Before a Lookup reply of n_mappings mappings and n_results results. */
void reply_reserve_lookup(struct json_writer *w, size_t n_mappings, size_t n_results);
