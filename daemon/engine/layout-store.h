/* The layout store: complete layouts of live processes, kept while the change tracker says they are unchanged, bounded in count and bytes (LRU, with a share per user). */
#pragma once

/* Design. The store knows nothing of BPF: whoever puts a layout names the two counters it was
 * read under (the process's exec epoch and its change generation, see tracking.h), and whoever
 * gets one names the counters as they are now; an entry answers only when both are equal, so
 * a stale entry can never be served, whatever the caller forgot to drop. Entries are keyed by
 * pid and checked against the start time (pid reuse). Dropping on exec and exit
 * (layout_store_forget()) and clearing when events were lost only give memory back early.
 *
 * What the store holds is shared: layout_store_get() hands out a reference, the layout stays
 * valid for its holder after the entry was dropped. A stored layout is complete and carries
 * no build IDs; per-file facts are filled in lazily (layout_fill_file()) by the lookups that
 * need them, so the first lookup costs what it cost without a store.
 *
 * Bounds: at most max_entries layouts and max_bytes of them (layout_memory()); each entry is
 * charged to the owner that caused the read (a user, as the server's accounts count them), and
 * an owner other than 0 (privileged: root) holds at most max_bytes_per_owner: its own least
 * recently used entries go first, so one user cannot evict everyone else's. A layout larger
 * than that share is not kept. Thread-safe (one mutex, held for table operations only). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "layout.h"

struct layout_store_config {
        size_t max_entries;             /* 0: keep nothing */
        size_t max_bytes;
        size_t max_bytes_per_owner;     /* 0: max_bytes / 4 */
};

#define LAYOUT_STORE_MAX_ENTRIES_DEFAULT 4096
/* With OutputBudget='s 256 MiB, within the unit's MemoryMax=512M. */
#define LAYOUT_STORE_MAX_BYTES_DEFAULT ((size_t) 128 * 1024 * 1024)

struct layout_store_stats {
        uint64_t hits;
        uint64_t misses;
        uint64_t entries;               /* layouts kept (markers of changing processes not counted) */
        uint64_t bytes;                 /* theirs (the markers' few bytes each count in the bound) */
        uint64_t evictions;             /* dropped to stay within the bounds */
        uint64_t forgotten;             /* dropped on exec, exit, lost events or staleness */
};

struct layout_store;

int layout_store_new(const struct layout_store_config *cfg, struct layout_store **ret);
/* Accepts NULL; returns NULL. */
struct layout_store *layout_store_free(struct layout_store *s);

/* A process whose kept layout went stale before it answered a single call changes faster than
 * it is asked about: reading it whole for every call would cost more than reading what each call
 * needs (a JIT's 20,000 mappings against one address). Its entry then becomes a marker without
 * a layout, and calls about it are told so (LAYOUT_STORE_CHANGING) until one finds it unchanged
 * since the call before: then it is read whole and kept again. */
#define LAYOUT_STORE_CHANGING 2

/* The layout of (pid, start_time) read under (epoch, generation): 1 and a new reference in
 * *ret (a hit); 0 when there is none (a miss: read it whole and keep it; an entry of pid read
 * under other counters or another start time is dropped); LAYOUT_STORE_CHANGING (a miss: the
 * process changes faster than it is asked about, read only what the call needs). */
int layout_store_get(struct layout_store *s, pid_t pid, uint64_t start_time, uint64_t epoch, uint64_t generation,
                     struct layout **ret);

/* Keeps l (complete; a new reference is taken) for (l->pid, l->start_time), read under (epoch,
 * generation), charged to owner, replacing an entry of the same pid. 1 when kept, 0 when not
 * (larger than a share; a store keeping nothing), -ENOMEM. */
int layout_store_put(struct layout_store *s, struct layout *l, uid_t owner, uint64_t epoch, uint64_t generation);

/* Drops pid's entry, if any. */
void layout_store_forget(struct layout_store *s, pid_t pid);
/* Drops every entry. */
void layout_store_clear(struct layout_store *s);

void layout_store_get_stats(struct layout_store *s, struct layout_store_stats *ret);
