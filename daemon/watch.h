/* A watcher's queue of process events: copies made on the loop, bounded in events and bytes, with the count of those dropped; and their Watch reply text. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "json-writer.h"
#include "proc-events.h"

/* What one watching connection may hold unread beyond its socket's buffer: queued events, and
 * formatted replies waiting for the socket (WATCH_OUTPUT_CHUNK and one event more). The whole
 * is charged to the budgets while the watch lasts (WATCH_HELD_BYTES). */
#define WATCH_QUEUE_EVENTS 1024
#define WATCH_QUEUE_BYTES (256u * 1024)
#define WATCH_OUTPUT_CHUNK (64u * 1024)
#define WATCH_HELD_BYTES (WATCH_QUEUE_BYTES + 2 * WATCH_OUTPUT_CHUNK)
/* Mappings one event may carry; an event with more is dropped (and counted) whole. */
#define WATCH_EVENT_MAPPINGS_MAX 1024

/* An executable file mapping, owned by its record. */
struct watch_mapping {
        uint64_t start, end, offset, inode;
        uint32_t dev_major, dev_minor;
        unsigned flags;                 /* MEMMAPD_PERM_* */
        char *path;                     /* NULL: unknown */
        uint8_t build_id[20];
        size_t build_id_len;
};

struct watch_record {
        struct watch_record *next;
        enum proc_event_type type;
        pid_t pid, parent;
        uint64_t start_time, time_usec;
        char comm[16];
        uint64_t dropped_before;        /* events dropped just before this one */
        size_t bytes;                   /* what it takes */
        size_t n_added, n_removed;
        struct watch_mapping *mappings; /* the added, then the removed */
        uint64_t range_start, range_end; /* as struct proc_event's */
        bool unknown;
};

struct watch_queue {
        struct watch_record *head, *tail;
        size_t n, bytes;
        uint64_t dropped;               /* since the last record queued */
};

/* A copy of e (its mappings and their paths too). NULL: out of memory, or e carries more
 * than WATCH_EVENT_MAPPINGS_MAX mappings. */
struct watch_record *watch_record_new(const struct proc_event *e);
void watch_record_free(struct watch_record *r);

/* Queues r (taken in every case): false when the queue was full and r was dropped (counted). */
bool watch_queue_push(struct watch_queue *q, struct watch_record *r);
/* n events were lost before the next one. */
void watch_queue_lost(struct watch_queue *q, uint64_t n);
/* The oldest record, or NULL. */
struct watch_record *watch_queue_pop(struct watch_queue *q);
bool watch_queue_empty(const struct watch_queue *q);
void watch_queue_clear(struct watch_queue *q);

/* One Watch reply ("continues": true) into w: the event r, or (r NULL) an overflow of n. */
void watch_write_event(struct json_writer *w, const struct watch_record *r);
void watch_write_overflow(struct json_writer *w, uint64_t n);
void watch_write_watching(struct json_writer *w);

struct engine;
struct process;

/* The executable file mappings of p now, sorted by address (read as the calling thread may:
 * the client's credentials), into *ret (free with watch_mappings_free()). 0 or -errno
 * (-E2BIG past WATCH_EVENT_MAPPINGS_MAX). */
int watch_list_exec_mappings(struct engine *e, const struct process *p, struct watch_mapping **ret, size_t *ret_n);
void watch_mappings_free(struct watch_mapping *m, size_t n);

/* A mappings record of what went from old to new (both sorted, as listed): NULL when they are
 * the same (or out of memory: *ret_oom). */
struct watch_record *watch_record_diff(pid_t pid, uint64_t start_time, uint64_t time_usec,
                                       const struct watch_mapping *old, size_t n_old,
                                       const struct watch_mapping *new, size_t n_new, bool *ret_oom);
