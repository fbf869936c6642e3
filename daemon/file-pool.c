/* Reads that can block on a file (a stalled FUSE or NFS mount) run on a bounded pool of their own threads, with a time bound and a per-owner quota of stuck readers, so the threads that answer everyone never wait on them. */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "file-pool.h"
#include "time-util.h"

/* One job per blocking read. The caller waits on the job's condition variable until the job
 * is done or its budget runs out; then it abandons the job, which the pool thread frees (with
 * the caller's data) when the read returns. Every job, queued or running, is charged to its
 * owner until the read returns: a stuck reader keeps its quota slot, and a pool thread, for as
 * long as it is stuck. Jobs are only accepted when a thread is free, so no job waits behind a
 * stuck one.
 *
 * A caller whose owner's quota (or the pool) is used by reads that are still within their
 * callers' time waits, within its own budget, for one of them to end: a profiler reading build
 * IDs from several threads at once is served, not refused. Only slots held by stuck reads (which
 * may never return: a stalled mount) refuse at once, so a stall costs its owner no waiting. */

struct job {
        struct job *next;
        int (*fn)(void *data);
        void *data;
        void (*free_data)(void *data);
        bool impersonate;
        struct client client;           /* a copy, when impersonating */
        uid_t owner;
        bool charged;                   /* counted against owner's quota */
        bool done, abandoned;
        int result;                     /* impersonation's failure, else 0 */
        pthread_cond_t cond;
};

struct owner_count {
        uid_t owner;
        unsigned n;
        unsigned stuck;                 /* of n, jobs whose caller stopped waiting */
};

struct file_pool {
        pthread_mutex_t lock;
        pthread_cond_t work;
        pthread_cond_t slot_freed;      /* a job's read returned: a thread and a quota slot are free */
        struct job *head, *tail;
        unsigned max_threads, quota, timeout_ms;
        unsigned threads, idle, busy, stuck, queued;
        unsigned waiting;               /* callers waiting for a slot */
        uint64_t timeouts, refused;
        bool closing;
        unsigned refs;                  /* the owner of the pool, plus one per thread */
        struct owner_count *owners;     /* max_threads slots; n == 0: free */
};

static __thread const struct client *current_caller;

void file_pool_set_caller(const struct client *c) {
        current_caller = c;
}

static int pool_spawn(struct file_pool *p);

static void job_free(struct job *j) {
        if (!j)
                return;
        client_done(&j->client);
        pthread_cond_destroy(&j->cond);
        free(j);
}

static void pool_destroy(struct file_pool *p) {
        free(p->owners);
        pthread_cond_destroy(&p->work);
        pthread_cond_destroy(&p->slot_freed);
        pthread_mutex_destroy(&p->lock);
        free(p);
}

int file_pool_new(const struct file_pool_config *cfg, struct file_pool **ret) {
        pthread_condattr_t attr;
        struct file_pool *p;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->max_threads = cfg && cfg->max_threads ? cfg->max_threads : FILE_POOL_THREADS_DEFAULT;
        p->quota = cfg && cfg->quota_per_owner ? cfg->quota_per_owner : FILE_POOL_QUOTA_DEFAULT;
        p->timeout_ms = cfg && cfg->timeout_ms ? cfg->timeout_ms : FILE_POOL_TIMEOUT_MS_DEFAULT;
        p->refs = 1;
        p->owners = calloc(p->max_threads, sizeof(*p->owners));
        if (!p->owners) {
                free(p);
                return -ENOMEM;
        }
        pthread_mutex_init(&p->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&p->work, &attr);
        pthread_cond_init(&p->slot_freed, &attr);
        pthread_condattr_destroy(&attr);

        /* All threads start now, from the thread that makes the pool: a thread started later
         * by a serving thread would inherit the client's credentials it acts with. */
        pthread_mutex_lock(&p->lock);
        for (unsigned i = 0; i < p->max_threads; i++) {
                int r = pool_spawn(p);

                if (r < 0) {
                        pthread_mutex_unlock(&p->lock);
                        file_pool_free(p);
                        return r;
                }
        }
        pthread_mutex_unlock(&p->lock);
        *ret = p;
        return 0;
}

void file_pool_free(struct file_pool *p) {
        bool last;

        if (!p)
                return;
        pthread_mutex_lock(&p->lock);
        p->closing = true;
        pthread_cond_broadcast(&p->work);
        pthread_cond_broadcast(&p->slot_freed);
        last = --p->refs == 0;
        pthread_mutex_unlock(&p->lock);
        if (last)
                pool_destroy(p);
}

static struct owner_count *owner_find(struct file_pool *p, uid_t owner, bool add) {
        struct owner_count *free_slot = NULL;

        for (unsigned i = 0; i < p->max_threads; i++) {
                if (p->owners[i].n > 0 && p->owners[i].owner == owner)
                        return &p->owners[i];
                if (p->owners[i].n == 0 && !free_slot)
                        free_slot = &p->owners[i];
        }
        if (add && free_slot)
                free_slot->owner = owner;
        return add ? free_slot : NULL;
}

/* Under the lock: the job's read returned; its thread is free again. */
static void job_finished(struct file_pool *p, struct job *j) {
        if (j->charged) {
                struct owner_count *o = owner_find(p, j->owner, false);

                if (o) {
                        o->n--;
                        if (j->abandoned)
                                o->stuck--;
                }
        }
        p->busy--;
        p->idle++;
        j->done = true;
        if (j->abandoned)
                p->stuck--;
        pthread_cond_broadcast(&p->slot_freed);
}

/* Under the lock: whether a job of owner (charged: an unprivileged caller's) may be queued now
 * (0), must wait for a running read to end (-EAGAIN), or is refused (-EBUSY): its slots, or all
 * threads, are held by stuck reads, or owners fill the table. *ret_o: owner's count to charge. */
static int admit(struct file_pool *p, bool charged, uid_t owner, struct owner_count **ret_o) {
        struct owner_count *o = NULL;

        if (p->closing)
                return -EBUSY;
        if (charged) {
                o = owner_find(p, owner, true);
                if (!o)
                        return -EBUSY;
                if (o->n >= p->quota)
                        return o->stuck >= p->quota ? -EBUSY : -EAGAIN;
        }
        if (p->idle <= p->queued)
                return p->stuck >= p->threads ? -EBUSY : -EAGAIN;
        *ret_o = o;
        return 0;
}

static void *pool_thread(void *userdata) {
        struct file_pool *p = userdata;
        bool last;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                struct job *j;
                bool abandoned;

                while (!p->head && !p->closing)
                        pthread_cond_wait(&p->work, &p->lock);
                if (!p->head)
                        break;
                j = p->head;
                p->head = j->next;
                if (!p->head)
                        p->tail = NULL;
                p->queued--;
                p->idle--;
                p->busy++;
                pthread_mutex_unlock(&p->lock);

                if (j->impersonate) {
                        struct impersonation imp = {};
                        int r = impersonate_begin(&j->client, &imp);

                        /* A thread left with a client's credentials must serve nobody. */
                        if (r == -ENOTRECOVERABLE)
                                abort();
                        if (r < 0)
                                j->result = r;
                        else {
                                (void) j->fn(j->data);
                                if (impersonate_end(&imp) < 0)
                                        abort();
                        }
                } else
                        (void) j->fn(j->data);

                pthread_mutex_lock(&p->lock);
                job_finished(p, j);
                abandoned = j->abandoned;
                if (!abandoned)
                        pthread_cond_signal(&j->cond);
                if (abandoned) {
                        pthread_mutex_unlock(&p->lock);
                        j->free_data(j->data);
                        job_free(j);
                        pthread_mutex_lock(&p->lock);
                }
        }
        p->threads--;
        p->idle--;
        last = --p->refs == 0;
        pthread_mutex_unlock(&p->lock);
        if (last)
                pool_destroy(p);
        return NULL;
}

/* Under the lock: starts a thread. */
static int pool_spawn(struct file_pool *p) {
        pthread_attr_t attr;
        sigset_t all, old;
        pthread_t t;
        int r;

        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        /* Readers need little stack: the ELF reader's buffers are small. */
        pthread_attr_setstacksize(&attr, 256 * 1024);
        /* Signals are for the threads that wait for them, never for a reader. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = pthread_create(&t, &attr, pool_thread, p);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        if (r != 0)
                return -r;
        p->threads++;
        p->idle++;
        p->refs++;
        return 0;
}

int file_pool_run(struct file_pool *p, int (*fn)(void *data), void *data, void (*free_data)(void *data),
                  unsigned *budget_ms) {
        const struct client *caller = current_caller;
        bool impersonate = caller && !caller->privileged;
        pthread_condattr_t attr;
        struct owner_count *o = NULL;
        struct timespec deadline;
        uint64_t start, waited;
        struct job *j;
        int r;

        if (*budget_ms == 0) {
                pthread_mutex_lock(&p->lock);
                p->refused++;
                pthread_mutex_unlock(&p->lock);
                free_data(data);
                return -EBUSY;
        }

        j = calloc(1, sizeof(*j));
        if (!j) {
                free_data(data);
                return -ENOMEM;
        }
        *j = (struct job) {
                .fn = fn, .data = data, .free_data = free_data, .impersonate = impersonate,
                .owner = caller ? caller->owner : 0, .charged = impersonate,
        };
        if (impersonate) {
                r = client_copy(caller, &j->client);
                if (r < 0) {
                        free(j);
                        free_data(data);
                        return r;
                }
        }
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&j->cond, &attr);
        pthread_condattr_destroy(&attr);

        start = now_usec();
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += *budget_ms / 1000;
        deadline.tv_nsec += (long) (*budget_ms % 1000) * 1000000;
        if (deadline.tv_nsec >= 1000000000) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000;
        }

        pthread_mutex_lock(&p->lock);
        /* Every accepted job has a free thread: none waits behind a stuck one. */
        while ((r = admit(p, j->charged, j->owner, &o)) == -EAGAIN) {
                int w;

                p->waiting++;
                w = pthread_cond_timedwait(&p->slot_freed, &p->lock, &deadline);
                p->waiting--;
                if (w == ETIMEDOUT) {
                        r = admit(p, j->charged, j->owner, &o);
                        if (r == -EAGAIN)
                                r = -EBUSY;
                        break;
                }
        }
        if (r < 0) {
                p->refused++;
                pthread_mutex_unlock(&p->lock);
                waited = (now_usec() - start) / 1000;
                *budget_ms -= waited < *budget_ms ? (unsigned) waited : *budget_ms;
                job_free(j);
                free_data(data);
                return r;
        }
        if (o)
                o->n++;
        if (p->tail)
                p->tail->next = j;
        else
                p->head = j;
        p->tail = j;
        p->queued++;
        pthread_cond_signal(&p->work);

        while (!j->done)
                if (pthread_cond_timedwait(&j->cond, &p->lock, &deadline) == ETIMEDOUT)
                        break;
        waited = (now_usec() - start) / 1000;
        *budget_ms -= waited < *budget_ms ? (unsigned) waited : *budget_ms;
        if (!j->done) {
                /* The thread frees the job and the data when the read returns. */
                j->abandoned = true;
                p->stuck++;
                if (o)
                        o->stuck++;
                p->timeouts++;
                pthread_mutex_unlock(&p->lock);
                return -ETIMEDOUT;
        }
        pthread_mutex_unlock(&p->lock);

        r = j->result;
        job_free(j);
        if (r < 0) {
                free_data(data);
                return r;
        }
        return 0;
}

int file_pool_run_for_engine(void *userdata, int (*fn)(void *data), void *data, void (*free_data)(void *data),
                             unsigned *budget_ms) {
        return file_pool_run(userdata, fn, data, free_data, budget_ms);
}

unsigned file_pool_timeout_ms(const struct file_pool *p) {
        return p->timeout_ms;
}

void file_pool_get_stats(struct file_pool *p, struct file_pool_stats *ret) {
        pthread_mutex_lock(&p->lock);
        *ret = (struct file_pool_stats) {
                .threads = p->threads,
                .busy = p->busy,
                .stuck = p->stuck,
                .waiting = p->waiting,
                .timeouts = p->timeouts,
                .refused = p->refused,
        };
        pthread_mutex_unlock(&p->lock);
}
