/* Reads that can block on a file (a stalled FUSE or NFS mount) run on a bounded pool of their own threads, with a time bound and a per-owner quota of stuck readers, so the threads that answer everyone never wait on them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "access.h"

struct file_pool_config {
        unsigned max_threads;           /* readers at once, stuck ones included; 0: the default */
        unsigned quota_per_owner;       /* an unprivileged owner's readers at once; 0: the default */
        unsigned timeout_ms;            /* how long one call waits for its reads; 0: the default */
};

#define FILE_POOL_THREADS_DEFAULT 16
#define FILE_POOL_QUOTA_DEFAULT 2
#define FILE_POOL_TIMEOUT_MS_DEFAULT 2000

struct file_pool;

int file_pool_new(const struct file_pool_config *cfg, struct file_pool **ret);
/* Accepts NULL. Idle threads end; a reader still stuck in the kernel ends when its read
 * returns and frees its job then (it cannot be killed). */
void file_pool_free(struct file_pool *p);

/* The client the calling thread serves (NULL: none, the daemon's own reads): file_pool_run()
 * charges its reads to it and runs them with its credentials. Thread-local; the client must
 * outlive the calls made meanwhile. */
void file_pool_set_caller(const struct client *c);

/* Runs fn(data) on a pool thread, with the caller's credentials (file_pool_set_caller()), and
 * waits for it at most *budget_ms, which is lowered by the time waited. 0: fn returned and
 * the caller owns data again. Otherwise the pool owns data and frees it with free_data (at
 * once, or when a stuck fn returns): -ETIMEDOUT when the wait ran out (the reader, still
 * running, stays charged to the owner until it returns), -EBUSY when the owner's quota or
 * the pool is held by stuck reads, or stayed used up by running ones for the whole budget, or
 * the budget is already spent (fn never ran), -ENOMEM, -errno. A caller whose owner's quota,
 * or the pool, is used by running reads waits (within the budget) for one to end. */
int file_pool_run(struct file_pool *p, int (*fn)(void *data), void *data, void (*free_data)(void *data),
                  unsigned *budget_ms);

/* An engine runner (see engine_config.run_blocking): file_pool_run() on userdata. */
int file_pool_run_for_engine(void *userdata, int (*fn)(void *data), void *data, void (*free_data)(void *data),
                             unsigned *budget_ms);

struct file_pool_stats {
        unsigned threads;               /* started and not ended */
        unsigned busy;                  /* running a job */
        unsigned stuck;                 /* running a job whose caller stopped waiting */
        unsigned waiting;               /* callers waiting for a thread or a quota slot */
        uint64_t timeouts;              /* waits that ran out */
        uint64_t refused;               /* runs refused at once (quota, pool full, budget) */
};

void file_pool_get_stats(struct file_pool *p, struct file_pool_stats *ret);

/* The time bound a call starts with (its budget_ms). */
unsigned file_pool_timeout_ms(const struct file_pool *p);
