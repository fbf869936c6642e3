/* libmemctl's mirror: the executable file mappings of some processes kept in local memory, filled by a listing and kept current by Watch. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "cleanup.h"
#include "libmemctl-internal.h"

static void mappings_freep(memctl_mappings **l) {
        memctl_mappings_free(*l);
}

/* Processes one mirror keeps (each is a connection to the daemon). */
#define MIRROR_PROCESSES_MAX 64

struct entry {
        struct memctl_mapping m;        /* first: a lookup hands out its address */
        char *blob;                     /* path, build ID hex and bytes: what m points to */
};

struct mirrored {
        pid_t pid;
        uint64_t start_time;
        memctl *conn;                   /* carries the Watch */
        memctl_watch *watch;
        struct entry *entries;          /* sorted by start, not overlapping */
        size_t n, allocated;
        bool exited;
};

struct memctl_mirror {
        char *path;
        memctl *conn;                   /* listings */
        int epoll_fd;
        struct mirrored *procs[MIRROR_PROCESSES_MAX];
        size_t n;
};

static void entry_done(struct entry *e) {
        free(e->blob);
        e->blob = NULL;
}

/* A copy of m that owns its strings: one of the daemon's executable file mappings. */
static int entry_make(const struct memctl_mapping *m, struct entry *ret) {
        size_t plen = m->path ? strlen(m->path) + 1 : 0;
        size_t hlen = m->build_id_hex ? strlen(m->build_id_hex) + 1 : 0;
        char *blob = malloc(plen + hlen + m->build_id_size + 1);

        if (!blob)
                return -ENOMEM;
        *ret = (struct entry) {
                .m = {
                        .size = sizeof(struct memctl_mapping),
                        .start = m->start, .end = m->end, .offset = m->offset, .inode = m->inode,
                        .dev_major = m->dev_major, .dev_minor = m->dev_minor, .page_size = m->page_size,
                        .flags = m->flags, .deleted = m->deleted, .kind = MEMCTL_KIND_FILE, .kind_name = "file",
                },
                .blob = blob,
        };
        memcpy(ret->m.perms, m->perms, sizeof(ret->m.perms));
        if (plen) {
                ret->m.path = ret->m.name = ret->m.path_exact = ret->m.name_exact = memcpy(blob, m->path, plen);
                blob += plen;
        }
        if (hlen) {
                ret->m.build_id_hex = memcpy(blob, m->build_id_hex, hlen);
                blob += hlen;
        }
        if (m->build_id_size && m->build_id) {
                ret->m.build_id = memcpy(blob, m->build_id, m->build_id_size);
                ret->m.build_id_size = m->build_id_size;
        }
        return 0;
}

static void entries_clear(struct mirrored *p) {
        for (size_t i = 0; i < p->n; i++)
                entry_done(&p->entries[i]);
        p->n = 0;
}

/* The index of the first entry whose end lies above address. */
static size_t entries_bound(const struct mirrored *p, uint64_t address) {
        size_t lo = 0, hi = p->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (p->entries[mid].m.end <= address)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static void entries_remove_range(struct mirrored *p, uint64_t start, uint64_t end) {
        size_t i = entries_bound(p, start), j = i;

        while (j < p->n && p->entries[j].m.start < end)
                entry_done(&p->entries[j++]);
        if (j == i)
                return;
        memmove(p->entries + i, p->entries + j, (p->n - j) * sizeof(*p->entries));
        p->n -= j - i;
}

/* Puts m in, replacing what it overlaps (the kernel's mapping replaced theirs). */
static int entries_put(struct mirrored *p, const struct memctl_mapping *m) {
        struct entry e;
        size_t i;
        int r;

        if (m->end <= m->start)
                return 0;
        r = entry_make(m, &e);
        if (r < 0)
                return r;
        entries_remove_range(p, m->start, m->end);
        if (p->n == p->allocated) {
                size_t k = p->allocated ? p->allocated * 2 : 32;
                struct entry *x = reallocarray(p->entries, k, sizeof(*x));

                if (!x) {
                        entry_done(&e);
                        return -ENOMEM;
                }
                p->entries = x;
                p->allocated = k;
        }
        i = entries_bound(p, m->start);
        memmove(p->entries + i + 1, p->entries + i, (p->n - i) * sizeof(*p->entries));
        p->entries[i] = e;
        p->n++;
        return 0;
}

static bool mirrored_kind(const struct memctl_mapping *m) {
        return (m->flags & MEMCTL_MAPPING_EXEC) && m->kind == MEMCTL_KIND_FILE;
}

/* Lists p again: its layout now replaces what was kept. */
static int relist(memctl_mirror *m, struct mirrored *p) {
        _cleanup_(mappings_freep) memctl_mappings *l = NULL;
        int r;

        r = memctl_list_mappings(m->conn, p->pid, p->start_time, MEMCTL_EXECUTABLE_ONLY | MEMCTL_FILE_BACKED_ONLY, &l);
        if (r == -ESRCH || r == -ESTALE) {
                entries_clear(p);
                p->exited = true;
                return 0;
        }
        if (r < 0)
                return r;
        /* Added without a start time: the listing names the process. */
        if (p->start_time == 0 && memctl_mappings_get_process(l, NULL, &p->start_time) < 0)
                return -EPROTO;
        entries_clear(p);
        for (size_t i = 0; i < memctl_mappings_count(l); i++) {
                struct memctl_mapping x = MEMCTL_MAPPING_INIT;

                if (memctl_mappings_get(l, i, &x) < 0 || !mirrored_kind(&x))
                        continue;
                r = entries_put(p, &x);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void mirrored_free(memctl_mirror *m, struct mirrored *p) {
        if (!p)
                return;
        if (p->conn && m->epoll_fd >= 0)
                epoll_ctl(m->epoll_fd, EPOLL_CTL_DEL, p->conn->fd, NULL);
        memctl_watch_free(p->watch);
        memctl_free(p->conn);
        entries_clear(p);
        free(p->entries);
        free(p);
}

int memctl_mirror_new(const char *socket_path, memctl_mirror **ret) {
        memctl_mirror *m;
        int r;

        if (!ret)
                return -EINVAL;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (m->epoll_fd < 0) {
                r = -errno;
                goto fail;
        }
        if (socket_path) {
                m->path = strdup(socket_path);
                r = m->path ? 0 : -ENOMEM;
        } else
                r = memctl_default_socket_path(&m->path);
        if (r >= 0)
                r = memctl_connect(m->path, &m->conn);
        if (r < 0)
                goto fail;
        *ret = m;
        return 0;
fail:
        memctl_mirror_free(m);
        return r;
}

memctl_mirror *memctl_mirror_free(memctl_mirror *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n; i++)
                mirrored_free(m, m->procs[i]);
        if (m->epoll_fd >= 0)
                close(m->epoll_fd);
        memctl_free(m->conn);
        free(m->path);
        free(m);
        return NULL;
}

static struct mirrored *find(const memctl_mirror *m, pid_t pid, size_t *ret_index) {
        for (size_t i = 0; i < m->n; i++)
                if (m->procs[i]->pid == pid) {
                        if (ret_index)
                                *ret_index = i;
                        return m->procs[i];
                }
        return NULL;
}

int memctl_mirror_add(memctl_mirror *m, pid_t pid, uint64_t start_time) {
        struct mirrored *p;
        int r;

        if (!m || pid <= 0)
                return -EINVAL;
        if (find(m, pid, NULL))
                return -EEXIST;
        if (m->n >= MIRROR_PROCESSES_MAX)
                return -E2BIG;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->pid = pid;
        r = memctl_connect(m->path, &p->conn);
        if (r >= 0)
                r = memctl_watch_start(p->conn, pid, start_time, &p->watch);
        if (r < 0)
                goto fail;
        /* The Watch runs: the listing is as new as its first event or newer, and every change
         * after it comes as an event (applying one the listing has already is harmless). */
        p->start_time = start_time;
        r = relist(m, p);
        if (r >= 0 && p->exited)
                r = -ESRCH;
        if (r < 0)
                goto fail;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };
        if (epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, p->conn->fd, &ev) < 0) {
                r = -errno;
                goto fail;
        }
        m->procs[m->n++] = p;
        return 0;
fail:
        /* Not added to epoll: nothing to remove there. */
        memctl_watch_free(p->watch);
        memctl_free(p->conn);
        entries_clear(p);
        free(p->entries);
        free(p);
        return r;
}

int memctl_mirror_remove(memctl_mirror *m, pid_t pid) {
        struct mirrored *p;
        size_t i;

        if (!m)
                return -EINVAL;
        p = find(m, pid, &i);
        if (!p)
                return -ESRCH;
        mirrored_free(m, p);
        m->procs[i] = m->procs[--m->n];
        return 0;
}

int memctl_mirror_fd(const memctl_mirror *m) {
        return m ? m->epoll_fd : -EINVAL;
}

static int apply(memctl_mirror *m, struct mirrored *p, const struct memctl_event *e) {
        int r;

        switch (e->type) {
        case MEMCTL_EVENT_OVERFLOW:
                return relist(m, p);
        case MEMCTL_EVENT_EXEC:
                if (e->pid != p->pid || e->start_time != p->start_time)
                        return 0;
                return relist(m, p);
        case MEMCTL_EVENT_EXIT:
                if (e->pid != p->pid || e->start_time != p->start_time)
                        return 0;
                entries_clear(p);
                p->exited = true;
                return 0;
        case MEMCTL_EVENT_MAPPINGS:
                if (e->pid != p->pid || e->start_time != p->start_time || p->exited)
                        return 0;
                for (size_t i = 0; i < e->n_removed; i++)
                        entries_remove_range(p, e->removed[i].start, e->removed[i].end);
                for (size_t i = 0; i < e->n_added; i++) {
                        if (!mirrored_kind(&e->added[i]))
                                continue;
                        r = entries_put(p, &e->added[i]);
                        if (r < 0)
                                return r;
                }
                return 0;
        default:
                return 0;       /* forks of its children, events newer than the library */
        }
}

int memctl_mirror_update(memctl_mirror *m, uint64_t timeout_usec) {
        struct epoll_event evs[8];
        int applied = 0, r, timeout_ms;

        if (!m)
                return -EINVAL;
        timeout_ms = timeout_usec == MEMCTL_TIMEOUT_INFINITY ? -1 : (int) MIN(timeout_usec / 1000, (uint64_t) INT32_MAX);
        r = epoll_wait(m->epoll_fd, evs, ELEMENTSOF(evs), timeout_ms);
        if (r < 0 && errno != EINTR)
                return -errno;
        /* Every stream, not only those epoll named: the events buffered too. */
        for (size_t i = 0; i < m->n;) {
                struct mirrored *p = m->procs[i];
                struct memctl_event e = MEMCTL_EVENT_INIT;

                r = memctl_watch_next(p->watch, 0, &e);
                if (r == 0) {
                        i++;
                        continue;
                }
                if (r > 0)
                        r = apply(m, p, &e);
                if (r < 0) {
                        /* Its stream failed: a layout no longer kept current is not served. */
                        mirrored_free(m, p);
                        m->procs[i] = m->procs[--m->n];
                        return r;
                }
                applied++;
        }
        return applied;
}

int memctl_mirror_lookup(const memctl_mirror *m, pid_t pid, uint64_t address, const struct memctl_mapping **ret_mapping) {
        const struct mirrored *p = NULL;
        size_t i;

        for (size_t k = 0; k < m->n; k++)
                if (m->procs[k]->pid == pid) {
                        p = m->procs[k];
                        break;
                }
        if (!p || p->exited)
                return -ESRCH;
        i = entries_bound(p, address);
        if (i >= p->n || p->entries[i].m.start > address)
                return 0;
        *ret_mapping = &p->entries[i].m;
        return 1;
}

int memctl_mirror_get_start_time(const memctl_mirror *m, pid_t pid, uint64_t *ret_start_time) {
        const struct mirrored *p = m ? find(m, pid, NULL) : NULL;

        if (!p)
                return -ESRCH;
        *ret_start_time = p->start_time;
        return 0;
}
