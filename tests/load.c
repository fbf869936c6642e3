/* memmapd-load: a load generator that checks every answer. N client threads, each with its own
 * libmemctl connection, ask single-address Lookups (and every so often a small ListMappings of
 * the executable mappings) about the given processes, for a bounded count and time, and hold
 * each answer against /proc/PID/maps as read at start (the targets must not change their
 * maps while it runs). Prints throughput and latency percentiles; exits 0 only when every
 * call succeeded and every answer was right.
 *
 *   memmapd-load --socket PATH [--clients N] [--requests N] [--seconds S] [--list-every K] PID...
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libmemctl.h"

#define TARGETS_MAX 16

struct vma {
        uint64_t start, end;
        bool exec;
};

struct target {
        pid_t pid;
        struct vma *vmas;
        size_t n_vmas, n_exec;
};

static struct target targets[TARGETS_MAX];
static size_t n_targets;
static const char *socket_path;
static unsigned long requests_per_client = 1000;
static double max_seconds = 10;
static unsigned long list_every = 10;
static atomic_ulong failed, wrong;

struct client {
        pthread_t thread;
        unsigned id;
        uint64_t *lat_usec;     /* one per request done */
        size_t done;
};

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int read_maps(pid_t pid, struct target *t) {
        char path[64], line[4096];
        size_t cap = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        t->pid = pid;
        while (fgets(line, sizeof(line), f)) {
                struct vma v = {};
                char perms[8];

                if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s", &v.start, &v.end, perms) != 3)
                        continue;
                v.exec = perms[2] == 'x';
                if (t->n_vmas == cap) {
                        struct vma *n = realloc(t->vmas, (cap = cap ? cap * 2 : 64) * sizeof(*n));
                        if (!n) {
                                fclose(f);
                                return -ENOMEM;
                        }
                        t->vmas = n;
                }
                t->vmas[t->n_vmas++] = v;
                t->n_exec += v.exec;
        }
        fclose(f);
        return t->n_vmas > 0 ? 0 : -ENODATA;
}

static uint64_t xorshift(uint64_t *s) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

static void complain(const char *what, pid_t pid, int r) {
        /* The first few explain a failing run; thousands would hide it. */
        static atomic_uint said;

        if (atomic_fetch_add(&said, 1) < 10)
                fprintf(stderr, "memmapd-load: %s (pid %d): %s\n", what, (int) pid, r < 0 ? strerror(-r) : "wrong answer");
}

static void do_lookup(memctl *c, const struct target *t, uint64_t *seed) {
        const struct vma *v = &t->vmas[xorshift(seed) % t->n_vmas];
        uint64_t addr = v->start + xorshift(seed) % (v->end - v->start);
        struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;
        struct memctl_mapping m = MEMCTL_MAPPING_INIT;
        memctl_lookup_reply *l = NULL;
        int r;

        r = memctl_lookup(c, t->pid, 0, &addr, 1, 0, &l);
        if (r < 0) {
                atomic_fetch_add(&failed, 1);
                complain("Lookup failed", t->pid, r);
                return;
        }
        if (memctl_lookup_reply_count(l) != 1 || memctl_lookup_reply_get(l, 0, &res) < 0 || res.address != addr ||
            res.mapping == MEMCTL_NO_MAPPING || memctl_lookup_reply_get_mapping(l, res.mapping, &m) < 0 ||
            m.start != v->start || m.end != v->end) {
                atomic_fetch_add(&wrong, 1);
                complain("Lookup", t->pid, 0);
        }
        memctl_lookup_reply_free(l);
}

static void do_list(memctl *c, const struct target *t) {
        memctl_mappings *ms = NULL;
        size_t k = 0;
        int r;

        r = memctl_list_mappings(c, t->pid, 0, MEMCTL_EXECUTABLE_ONLY, &ms);
        if (r < 0) {
                atomic_fetch_add(&failed, 1);
                complain("ListMappings failed", t->pid, r);
                return;
        }
        bool ok = memctl_mappings_count(ms) == t->n_exec;
        for (size_t i = 0; ok && i < t->n_vmas; i++) {
                struct memctl_mapping m = MEMCTL_MAPPING_INIT;

                if (!t->vmas[i].exec)
                        continue;
                ok = memctl_mappings_get(ms, k++, &m) >= 0 && m.start == t->vmas[i].start && m.end == t->vmas[i].end;
        }
        if (!ok) {
                atomic_fetch_add(&wrong, 1);
                complain("ListMappings", t->pid, 0);
        }
        memctl_mappings_free(ms);
}

static void *client_main(void *arg) {
        struct client *cl = arg;
        uint64_t seed = 0x9e3779b97f4a7c15ull ^ ((uint64_t) cl->id + 1) * 0x100000001b3ull;
        uint64_t deadline = now_usec() + (uint64_t) (max_seconds * 1e6);
        memctl *c = NULL;
        int r;

        r = memctl_connect(socket_path, &c);
        if (r < 0) {
                atomic_fetch_add(&failed, 1);
                complain("connect", 0, r);
                return NULL;
        }
        for (unsigned long i = 0; i < requests_per_client; i++) {
                const struct target *t = &targets[(cl->id + i) % n_targets];
                uint64_t t0 = now_usec();

                if (t0 >= deadline)
                        break;
                if (list_every > 0 && i % list_every == list_every - 1)
                        do_list(c, t);
                else
                        do_lookup(c, t, &seed);
                cl->lat_usec[cl->done++] = now_usec() - t0;
        }
        memctl_free(c);
        return NULL;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

static uint64_t percentile(const uint64_t *v, size_t n, double p) {
        size_t i = (size_t) (p / 100.0 * (double) n);

        return n == 0 ? 0 : v[i < n ? i : n - 1];
}

static void usage(FILE *f) {
        fprintf(f, "Usage: memmapd-load --socket PATH [--clients N] [--requests N-per-client] [--seconds S]\n"
                   "                    [--list-every K] PID...\n"
                   "Every K-th call of a client is a ListMappings of the executable mappings (0: never).\n");
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "socket", required_argument, NULL, 's' },   { "clients", required_argument, NULL, 'c' },
                { "requests", required_argument, NULL, 'n' }, { "seconds", required_argument, NULL, 't' },
                { "list-every", required_argument, NULL, 'l' }, { "help", no_argument, NULL, 'h' },
                {},
        };
        unsigned long n_clients = 4;
        struct client *clients;
        uint64_t *all, t0, elapsed;
        size_t total = 0;
        int o, r;

        while ((o = getopt_long(argc, argv, "s:c:n:t:l:h", opts, NULL)) >= 0) {
                switch (o) {
                case 's': socket_path = optarg; break;
                case 'c': n_clients = strtoul(optarg, NULL, 10); break;
                case 'n': requests_per_client = strtoul(optarg, NULL, 10); break;
                case 't': max_seconds = strtod(optarg, NULL); break;
                case 'l': list_every = strtoul(optarg, NULL, 10); break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (!socket_path || optind >= argc || n_clients == 0 || n_clients > 4096 || requests_per_client == 0 ||
            requests_per_client > 100000000ul || !(max_seconds > 0)) {
                usage(stderr);
                return 2;
        }
        for (int i = optind; i < argc; i++) {
                if (n_targets == TARGETS_MAX) {
                        fprintf(stderr, "memmapd-load: at most %d pids\n", TARGETS_MAX);
                        return 2;
                }
                r = read_maps((pid_t) atoi(argv[i]), &targets[n_targets]);
                if (r < 0) {
                        fprintf(stderr, "memmapd-load: cannot read the maps of pid %s: %s\n", argv[i], strerror(-r));
                        return 2;
                }
                n_targets++;
        }

        clients = calloc(n_clients, sizeof(*clients));
        if (!clients)
                return 1;
        t0 = now_usec();
        for (unsigned long i = 0; i < n_clients; i++) {
                clients[i].id = (unsigned) i;
                clients[i].lat_usec = calloc(requests_per_client, sizeof(uint64_t));
                if (!clients[i].lat_usec || (r = pthread_create(&clients[i].thread, NULL, client_main, &clients[i])) != 0) {
                        fprintf(stderr, "memmapd-load: cannot start client %lu\n", i);
                        return 1;
                }
        }
        for (unsigned long i = 0; i < n_clients; i++) {
                pthread_join(clients[i].thread, NULL);
                total += clients[i].done;
        }
        elapsed = now_usec() - t0;

        all = malloc((total ? total : 1) * sizeof(uint64_t));
        if (!all)
                return 1;
        total = 0;
        for (unsigned long i = 0; i < n_clients; i++) {
                memcpy(all + total, clients[i].lat_usec, clients[i].done * sizeof(uint64_t));
                total += clients[i].done;
                free(clients[i].lat_usec);
        }
        free(clients);
        qsort(all, total, sizeof(uint64_t), cmp_u64);
        printf("memmapd-load: clients=%lu requests=%zu failed=%lu wrong=%lu seconds=%.3f rate=%.0f/s "
               "p50=%" PRIu64 "us p99=%" PRIu64 "us p99.9=%" PRIu64 "us max=%" PRIu64 "us\n",
               n_clients, total, atomic_load(&failed), atomic_load(&wrong), (double) elapsed / 1e6,
               elapsed ? (double) total * 1e6 / (double) elapsed : 0.0, percentile(all, total, 50),
               percentile(all, total, 99), percentile(all, total, 99.9), total ? all[total - 1] : 0);
        free(all);
        for (size_t i = 0; i < n_targets; i++)
                free(targets[i].vmas);
        return atomic_load(&failed) == 0 && atomic_load(&wrong) == 0 && total > 0 ? 0 : 1;
}
