/* Process events learned from the kernel (exec, exit, fork, executable mappings added and removed), fanned out to the daemon's listeners: Watch streams and the retention of exited processes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Design. Events are published on the server's loop thread, as the tracker's ring buffers are
 * drained, in the order each buffer gave them. A listener's callback runs there too, under the
 * hub's lock: it must not block nor call back into the hub; it copies what it keeps (pointers
 * in an event live only during the call). Listeners come and go from any thread. */

enum proc_event_type {
        PROC_EVENT_EXEC = 1,            /* pid started another program: its mappings are all new */
        PROC_EVENT_EXIT,                /* the process ended: its mappings are gone */
        PROC_EVENT_FORK,                /* pid is a new process, a child of parent */
        PROC_EVENT_MAPPINGS,            /* executable file mappings were added or removed */
        _PROC_EVENT_TYPE_MAX,
};

/* An executable file mapping as events carry it. */
struct proc_event_mapping {
        uint64_t start, end;            /* [start, end) */
        uint64_t offset;                /* in the file */
        uint32_t dev_major, dev_minor;
        uint64_t inode;
        unsigned flags;                 /* PERM_* of basic/perms.h: the mapping's permissions */
        const char *path;               /* NULL: unknown */
        const uint8_t *build_id;        /* NULL: unknown */
        size_t build_id_len;
};

struct proc_event {
        enum proc_event_type type;
        pid_t pid;                      /* the process's (thread group) id */
        uint64_t start_time;            /* clock ticks after boot, field 22 of /proc/PID/stat */
        pid_t parent;                   /* FORK: the parent's pid; else 0 */
        uint64_t time_usec;             /* when it happened: CLOCK_MONOTONIC, microseconds */
        char comm[16];                  /* the command name then (NUL-terminated) */
        /* MAPPINGS (and EXEC, EXIT where the source knows them): what came and what went. */
        const struct proc_event_mapping *added, *removed;
        size_t n_added, n_removed;
        /* MAPPINGS: when range_end > range_start, added is every executable file mapping
         * overlapping [range_start, range_end) (the source did not know the whole set before:
         * removed may lack some), and a copy kept elsewhere clears that range first, keeping
         * the parts of its mappings outside it. */
        uint64_t range_start, range_end;
        /* MAPPINGS: [range_start, range_end) changed and how is not known (nothing added or
         * removed): a copy kept elsewhere must read the process again. */
        bool unknown;
};

const char *proc_event_type_to_string(enum proc_event_type t);

typedef void (*proc_event_fn)(const struct proc_event *e, void *userdata);

/* Events lost by a source (its ring buffer was full): listeners hear how many, in order with the
 * events around the loss. */
typedef void (*proc_event_lost_fn)(uint64_t n, void *userdata);

struct proc_events;

int proc_events_new(struct proc_events **ret);
/* Accepts NULL; returns NULL. Listeners still registered are forgotten. */
struct proc_events *proc_events_free(struct proc_events *p);

/* Registers a listener (lost may be NULL). Returns its id (> 0), -ENOMEM, or -ENOSPC past
 * PROC_EVENTS_LISTENERS_MAX. */
#define PROC_EVENTS_LISTENERS_MAX 64
int proc_events_listen(struct proc_events *p, proc_event_fn fn, proc_event_lost_fn lost, void *userdata);
/* After it returns, the listener's callbacks are not running and never run again. Unknown ids
 * are ignored. */
void proc_events_unlisten(struct proc_events *p, int id);

/* Calls every listener. p may be NULL (no listeners: nothing happens). */
void proc_events_publish(struct proc_events *p, const struct proc_event *e);
void proc_events_publish_lost(struct proc_events *p, uint64_t n);

/* Events published since p was made, and losses reported. */
uint64_t proc_events_published(const struct proc_events *p);
uint64_t proc_events_lost(const struct proc_events *p);
