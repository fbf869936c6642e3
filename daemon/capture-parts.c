/* The exec-maps capture's records gathered into whole sets (capture-parts.h). */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "capture-parts.h"
#include "perms.h"

struct pending {
        uint32_t tgid;                  /* 0: free */
        uint32_t kind;                  /* the set's (EXEC_MAPS_EXEC, ...) */
        uint64_t time_ns;               /* the set's time: all its parts have it */
        uint64_t next_start;            /* where its next part starts (the last one's end) */
        bool skip;                      /* a whole set whose first part was lost: the rest goes */
        struct capture_set set;
};

struct capture_parts {
        uint64_t tick_ns;
        struct pending pending[CAPTURE_PARTS_PROCESSES];
};

void capture_set_done(struct capture_set *s) {
        for (size_t i = 0; i < s->n; i++) {
                free(s->m[i].path);
                free((struct exec_history_facts *) s->m[i].facts);
        }
        free(s->m);
        *s = (struct capture_set) {};
}

static void pending_clear(struct pending *p) {
        capture_set_done(&p->set);
        *p = (struct pending) {};
}

int capture_parts_new(uint64_t tick_ns, struct capture_parts **ret) {
        struct capture_parts *cp;

        if (tick_ns == 0)
                return -EINVAL;
        cp = calloc(1, sizeof(*cp));
        if (!cp)
                return -ENOMEM;
        cp->tick_ns = tick_ns;
        *ret = cp;
        return 0;
}

void capture_parts_clear(struct capture_parts *cp) {
        for (size_t i = 0; i < CAPTURE_PARTS_PROCESSES; i++)
                pending_clear(&cp->pending[i]);
}

struct capture_parts *capture_parts_free(struct capture_parts *cp) {
        if (!cp)
                return NULL;
        capture_parts_clear(cp);
        free(cp);
        return NULL;
}

static struct pending *pending_find(struct capture_parts *cp, uint32_t tgid, bool create) {
        struct pending *free_slot = NULL;

        for (size_t i = 0; i < CAPTURE_PARTS_PROCESSES; i++) {
                if (cp->pending[i].tgid == tgid)
                        return &cp->pending[i];
                if (!free_slot && cp->pending[i].tgid == 0)
                        free_slot = &cp->pending[i];
        }
        if (create && free_slot)
                free_slot->tgid = tgid;
        return create ? free_slot : NULL;
}

void capture_parts_forget(struct capture_parts *cp, uint32_t tgid) {
        struct pending *p = pending_find(cp, tgid, false);

        if (p)
                pending_clear(p);
}

/* The captured facts worth keeping, in a copy (NULL: none, or out of memory). Only those with a
 * build ID: without one the file is read at answer time, as before, for all of them. */
static struct exec_history_facts *facts_from(const struct exec_maps_facts *f) {
        struct exec_history_facts *c;

        if (!(f->flags & EXEC_MAPS_FACTS_BUILD_ID) || f->build_id_len == 0 || f->build_id_len > EXEC_MAPS_BUILD_ID_MAX)
                return NULL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->build_id_len = f->build_id_len;
        memcpy(c->build_id, f->build_id, f->build_id_len);
        c->has_loads = (f->flags & EXEC_MAPS_FACTS_LOADS) && f->n_loads <= EXEC_MAPS_LOADS_MAX;
        if (c->has_loads) {
                c->n_loads = f->n_loads;
                for (size_t i = 0; i < f->n_loads; i++)
                        c->loads[i] = (struct exec_history_load) {
                                .offset = f->loads[i].offset, .vaddr = f->loads[i].vaddr, .filesz = f->loads[i].filesz,
                        };
        }
        return c;
}

/* The file's content identity beyond (dev, inode), mixed into 64 bits (splitmix64 steps): equal
 * only for the same change time, size and generation but for a 2^-64 chance. Never 0. */
static uint64_t file_id_of(const struct exec_maps_mapping *s) {
        uint64_t x = 0;
        const uint64_t parts[3] = { s->ctime_ns, s->size, s->generation };

        for (size_t i = 0; i < 3; i++) {
                x += parts[i] + 0x9e3779b97f4a7c15ull;
                x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
                x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
                x ^= x >> 31;
        }
        return x ? x : 1;
}

/* Whether er goes on with the set p gathers: the part after the last one, where it ended, of
 * the same event (a set's parts share its kind and time). */
static bool continues(const struct pending *p, const struct exec_maps_record *er) {
        return er->range_start == p->next_start && er->time_ns == p->time_ns && er->kind == p->kind;
}

static struct exec_history_mapping mapping_from(const struct exec_maps_mapping *s) {
        bool cut = (s->flags & EXEC_MAPS_M_PATH_CUT) || s->path_len == 0 || s->path_len >= EXEC_MAPS_PATH_MAX;

        return (struct exec_history_mapping) {
                .start = s->start, .end = s->end, .offset = s->offset, .inode = s->inode,
                .dev_major = s->dev >> 20, .dev_minor = s->dev & 0xfffff,
                .flags = (s->flags & EXEC_MAPS_M_READ ? PERM_READ : 0) | (s->flags & EXEC_MAPS_M_WRITE ? PERM_WRITE : 0) |
                         (s->flags & EXEC_MAPS_M_EXEC ? PERM_EXEC : 0) | (s->flags & EXEC_MAPS_M_SHARED ? PERM_SHARED : 0),
                /* The BPF side is ours, but its path is NUL-terminated here regardless. */
                .path = cut ? NULL : strndup(s->path, s->path_len),
                .file_id = file_id_of(s),
                .facts = facts_from(&s->facts),
        };
}

int capture_parts_add(struct capture_parts *cp, const struct exec_maps_record *er, struct capture_set *ret) {
        struct pending *p = pending_find(cp, er->tgid, true);
        uint32_t n = er->n < EXEC_MAPS_PER_RECORD ? er->n : EXEC_MAPS_PER_RECORD;
        bool first;

        if (!p)
                return -ENOSPC;
        /* A part lost between two: what was gathered does not state its range, and goes; so does
         * a set whose last part was lost, found by the process's next one. */
        if ((p->set.n > 0 || p->skip) && !continues(p, er)) {
                pending_clear(p);
                p->tgid = er->tgid;
        }
        first = p->set.n == 0 && !p->skip;
        if (first) {
                p->kind = er->kind;
                p->time_ns = er->time_ns;
                /* A part of an exec's or exit's whole set whose first part was lost: not the
                 * whole set, so none of it is taken. (A change's later part states its own range
                 * truly, and is taken as a change of that range.) */
                p->skip = er->kind != EXEC_MAPS_CHANGE && er->range_start != 0;
        }
        p->next_start = er->range_end;
        if (p->skip) {
                if (!(er->flags & EXEC_MAPS_F_MORE))
                        pending_clear(p);
                return 0;
        }
        if (p->set.n + n > EXEC_HISTORY_INTERVALS_MAX) {
                pending_clear(p);
                return -E2BIG;
        }
        if (n > 0) {
                struct exec_history_mapping *m = reallocarray(p->set.m, p->set.n + n, sizeof(*m));

                if (!m) {
                        pending_clear(p);
                        return -ENOMEM;
                }
                p->set.m = m;
        }
        for (uint32_t i = 0; i < n; i++)
                p->set.m[p->set.n++] = mapping_from(&er->m[i]);
        if (first) {
                /* The set's identity and where its range starts. */
                p->set.r = (struct exec_history_record) {
                        .kind = er->kind == EXEC_MAPS_EXEC   ? EXEC_HISTORY_EXEC
                                : er->kind == EXEC_MAPS_EXIT ? EXEC_HISTORY_EXIT
                                                             : EXEC_HISTORY_RANGE,
                        .pid = (pid_t) er->tgid,
                        /* As the kernel makes field 22 of /proc/PID/stat from it. */
                        .start_time = er->start_boottime / cp->tick_ns,
                        .time_usec = er->time_ns / 1000,
                        .lo = er->range_start,
                        .uid = er->uid, .euid = er->euid, .suid = er->suid, .dumpable = er->dumpable,
                };
                memcpy(p->set.r.comm, er->comm, sizeof(p->set.r.comm));
                p->set.r.comm[sizeof(p->set.r.comm) - 1] = 0;
        }
        if (er->flags & EXEC_MAPS_F_MORE)
                return 0;
        p->set.r.hi = er->range_end;
        p->set.r.mappings = p->set.m;
        p->set.r.n = p->set.n;
        p->set.r.unread = er->flags & EXEC_MAPS_F_UNREAD;
        *ret = p->set;
        /* Handed on: the slot is free again. */
        *p = (struct pending) {};
        return 1;
}
