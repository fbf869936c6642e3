/* Process events learned from the kernel, fanned out to the daemon's listeners. */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "proc-events.h"

struct listener {
        int id;                         /* 0: free */
        proc_event_fn fn;
        proc_event_lost_fn lost;
        void *userdata;
};

struct proc_events {
        /* Held while callbacks run: unlisten() returning means no callback runs. */
        pthread_mutex_t lock;
        struct listener listeners[PROC_EVENTS_LISTENERS_MAX];
        int next_id;
        _Atomic uint64_t published, lost;
};

static const char *const type_names[_PROC_EVENT_TYPE_MAX] = {
        [PROC_EVENT_EXEC] = "exec",
        [PROC_EVENT_EXIT] = "exit",
        [PROC_EVENT_FORK] = "fork",
        [PROC_EVENT_MAPPINGS] = "mappings",
};

const char *proc_event_type_to_string(enum proc_event_type t) {
        return (unsigned) t < _PROC_EVENT_TYPE_MAX ? type_names[t] : NULL;
}

int proc_events_new(struct proc_events **ret) {
        struct proc_events *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        pthread_mutex_init(&p->lock, NULL);
        p->next_id = 1;
        *ret = p;
        return 0;
}

struct proc_events *proc_events_free(struct proc_events *p) {
        if (!p)
                return NULL;
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
}

int proc_events_listen(struct proc_events *p, proc_event_fn fn, proc_event_lost_fn lost, void *userdata) {
        int r = -ENOSPC;

        if (!p || !fn)
                return -EINVAL;
        pthread_mutex_lock(&p->lock);
        for (size_t i = 0; i < PROC_EVENTS_LISTENERS_MAX; i++)
                if (p->listeners[i].id == 0) {
                        /* Ids are not reused while a listener could still hold an old one. */
                        if (p->next_id == INT32_MAX)
                                p->next_id = 1;
                        r = p->next_id++;
                        p->listeners[i] = (struct listener) { r, fn, lost, userdata };
                        break;
                }
        pthread_mutex_unlock(&p->lock);
        return r;
}

void proc_events_unlisten(struct proc_events *p, int id) {
        if (!p || id <= 0)
                return;
        pthread_mutex_lock(&p->lock);
        for (size_t i = 0; i < PROC_EVENTS_LISTENERS_MAX; i++)
                if (p->listeners[i].id == id)
                        p->listeners[i] = (struct listener) {};
        pthread_mutex_unlock(&p->lock);
}

void proc_events_publish(struct proc_events *p, const struct proc_event *e) {
        if (!p || !e)
                return;
        pthread_mutex_lock(&p->lock);
        for (size_t i = 0; i < PROC_EVENTS_LISTENERS_MAX; i++)
                if (p->listeners[i].id != 0)
                        p->listeners[i].fn(e, p->listeners[i].userdata);
        pthread_mutex_unlock(&p->lock);
        atomic_fetch_add(&p->published, 1);
}

void proc_events_publish_lost(struct proc_events *p, uint64_t n) {
        if (!p || n == 0)
                return;
        pthread_mutex_lock(&p->lock);
        for (size_t i = 0; i < PROC_EVENTS_LISTENERS_MAX; i++)
                if (p->listeners[i].id != 0 && p->listeners[i].lost)
                        p->listeners[i].lost(n, p->listeners[i].userdata);
        pthread_mutex_unlock(&p->lock);
        atomic_fetch_add(&p->lost, n);
}

uint64_t proc_events_published(const struct proc_events *p) {
        return p ? atomic_load(&((struct proc_events *) p)->published) : 0;
}

uint64_t proc_events_lost(const struct proc_events *p) {
        return p ? atomic_load(&((struct proc_events *) p)->lost) : 0;
}
