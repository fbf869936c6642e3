/* Retention of exited processes and answers as of a time: the exec-maps capture where it loads, drained into the exec history, published as mappings events. */
#pragma once

/* Design. The capture (daemon/tracker/exec-maps-capture.h) reports a process's executable file
 * mappings after exec, after each mmap, munmap, mprotect, mremap and pkey_mprotect, and at exit;
 * the drain (on the server's loop) turns its records into exec_history records, applies them and
 * publishes what changed as PROC_EVENT_MAPPINGS through proc_events, for Watch (an exec's new
 * set too: the exec event itself comes from tracking; nothing is published for an exit, whose
 * mappings all go with it). Each mapping's file facts (build ID and PT_LOADs, where the capture
 * read them) are kept with it, under a file_id mixed from the file's change time, size and
 * generation, so that answers after exit need not read a file that may be gone or another one
 * by then. Forks heard from proc_events copy the parent's set
 * to the child. A lost record (the ring buffer was full) forgets the history of the process it was
 * about (the capture tells which), what it holds may lack a change; when the capture cannot tell,
 * every history. Without BPF (not built, denied, a PID namespace of its own) retention is off
 * and answers for exited processes are NoSuchProcess as before. */

#include <stdbool.h>
#include <stdint.h>

struct exec_history;
struct proc_events;
struct tracking;

struct retention_config {
        bool enabled;
        uint64_t retain_sec;            /* RetainExitedSec= */
        uint64_t max_bytes;             /* MaxRetainedMemory= */
        uint64_t max_bytes_per_user;    /* MaxRetainedMemoryPerUser= (0: a quarter) */
};

struct retention;

/* Loads the capture as cfg asks (off, saying why once in the log, when it cannot) and listens to
 * events for forks (events may be NULL: nothing published, no forks heard), which tracking's
 * drain publishes (may be NULL or off: no fork is taken ahead of its turn). */
int retention_new(const struct retention_config *cfg, struct proc_events *events, struct tracking *tracking,
                  struct retention **ret);
/* Accepts NULL; returns NULL. */
struct retention *retention_free(struct retention *r);

bool retention_active(const struct retention *r);
/* The history questions are asked of; NULL when off. */
struct exec_history *retention_history(const struct retention *r);

/* The fd that polls readable when records wait (-1 when off), and the drain run on it (from any
 * thread: one drain runs at a time). */
int retention_event_fd(const struct retention *r);
/* The number of records handled, or -errno. */
int retention_drain(struct retention *r);
/* As tracking_set_wake_delay(), for the capture's records. */
void retention_set_wake_delay(struct retention *r, uint64_t delay_usec, void (*drained)(void *userdata),
                              void *userdata);
/* Drops what is past retention (called every second). */
void retention_tick(struct retention *r);

struct retention_stats {
        uint64_t records, lost, unread, skipped;
};
void retention_get_stats(const struct retention *r, struct retention_stats *ret);
