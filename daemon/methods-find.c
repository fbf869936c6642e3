/* FindMappings: the processes (those the client may see) that map a file, named by path or by build ID. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "cleanup.h"
#include "find-scan.h"
#include "hex.h"
#include "methods-internal.h"
#include "number.h"

/* Bounds of one call: the whole machine is read, and other clients wait meanwhile. */
#define FIND_PROCESSES_MAX 65536u      /* processes scanned */
#define FIND_HITS_MAX (1u << 20)        /* candidate mappings from the kernel */
#define FIND_FILES_MAX 16384u           /* distinct files whose build ID is learnt */
#define FIND_BUILD_ID_TRIES 4u          /* processes tried to learn one file's build ID */
/* Mappings per part of a streamed reply, as ListMappings. */
#define FIND_PART_MAPPINGS 1024

struct find_query {
        bool by_path;
        const char *path;
        size_t path_len;
        size_t name_len;                /* of the last component */
        bool have_file;                 /* path names a file now */
        struct find_inode file;
        uint8_t build_id[MAPPING_BUILD_ID_MAX];
        size_t build_id_len;
        bool deleted_only;
};

/* The one test both ways of finding apply to a mapping read (with the client's access). */
static bool query_matches(const struct find_query *q, const struct mapping *m) {
        if (m->kind != MAPPING_KIND_FILE || !m->name)
                return false;
        if (q->deleted_only && !m->deleted)
                return false;
        if (!q->by_path)
                return m->build_id_len == q->build_id_len && memcmp(m->build_id, q->build_id, q->build_id_len) == 0;
        if (q->have_file && find_kernel_dev(m->dev_major, m->dev_minor) == q->file.dev && m->inode == q->file.ino)
                return true;
        /* Replaced or deleted since it was mapped: the old file, known by the name it had. */
        return m->deleted && mapping_path_len(m) == q->path_len && memcmp(m->name, q->path, q->path_len) == 0;
}

struct find_out {
        const struct method_context *ctx;
        struct json_writer *w;
        const struct find_query *q;
        unsigned flags;                 /* engine flags of every read */
        bool streaming;
        size_t in_part;                 /* mappings in the part being written */
        bool wrote;                     /* a process was written */
        int emit_error;
};

static void find_part_begin(struct json_writer *w) {
        varlink_reply_begin(w, NULL, false);
        json_writer_key(w, "matches");
        json_writer_array_begin(w);
}

/* Writes p with those of its mappings the query matches, if any. */
static int out_process(struct find_out *o, const struct process *p, const struct mapping *items, size_t n) {
        bool begun = false;

        for (size_t i = 0; i < n; i++) {
                if (!query_matches(o->q, &items[i]))
                        continue;
                if (!begun) {
                        if (o->streaming && o->in_part >= FIND_PART_MAPPINGS) {
                                int r = stream_part_emit(o->ctx, o->w);

                                if (r < 0)
                                        return o->emit_error = r;
                                find_part_begin(o->w);
                                o->in_part = 0;
                        }
                        o->wrote = true;
                        json_writer_object_begin(o->w);
                        write_process(o->w, p);
                        json_writer_key(o->w, "mappings");
                        json_writer_array_begin(o->w);
                        begun = true;
                }
                write_mapping(o->w, &items[i]);
                o->in_part++;
        }
        if (begun) {
                json_writer_array_end(o->w);
                json_writer_object_end(o->w);
        }
        return 0;
}

/* Opens pid as the client would (ListMappings' decision): 0 and *ret, or a negative errno when
 * the client may not see it, or it is gone: such processes are left out silently. */
static int open_visible(const struct method_context *ctx, pid_t pid, struct process **ret) {
        _cleanup_(process_freep) struct process *p = NULL;
        struct access_decision decision;
        int r;

        r = access_decide(ctx->client, pid, &p, &decision);
        if (r < 0)
                return r;
        if (p->kernel_thread || p->pid != pid)
                return -ESRCH;
        *ret = TAKE_PTR(p);
        return 0;
}

/* Whether a process's read failed for a reason that leaves it out (gone, exec'd, not
 * visible), rather than failing the call. */
static bool skip_error(int r) {
        return r == -ESRCH || r == -ENOENT || r == -EACCES || r == -EPERM;
}

/* Without the iterator: every process of /proc, read with the client's access. */
static int find_by_proc_scan(struct find_out *o) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        unsigned seen = 0;

        d = opendir("/proc");
        if (!d)
                return -errno;
        while ((errno = 0, de = readdir(d))) {
                _cleanup_(process_freep) struct process *p = NULL;
                _cleanup_(mapping_list_done) struct mapping_list l = {};
                uint64_t pid;
                int r;

                if (parse_u64(de->d_name, &pid) < 0 || pid == 0 || pid > INT32_MAX)
                        continue;
                if (++seen > FIND_PROCESSES_MAX)
                        return -E2BIG;
                if (open_visible(o->ctx, (pid_t) pid, &p) < 0)
                        continue;
                r = engine_list(o->ctx->engine, p, ENGINE_FILE_BACKED_ONLY | o->flags, &l);
                if (skip_error(r))
                        continue;
                if (r < 0)
                        return r;
                r = out_process(o, p, l.items, l.n);
                if (r < 0)
                        return r;
        }
        return errno > 0 ? -errno : 0;
}

static int hit_by_tgid(const void *a, const void *b) {
        const struct find_hit *x = a, *y = b;

        if (x->tgid != y->tgid)
                return x->tgid < y->tgid ? -1 : 1;
        return x->start < y->start ? -1 : x->start > y->start;
}

static int hit_by_file(const void *a, const void *b) {
        const struct find_hit *x = a, *y = b;

        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        return hit_by_tgid(a, b);
}

typedef int (*process_hits_fn)(const struct process *p, const struct mapping_list *l, const struct find_hit *hits,
                               size_t n, void *userdata);

/* For hits sorted by tgid: reads each process with the client's access and hands its mappings
 * to fn with its hits. Without build IDs only the mappings at the hits' starts are read (the
 * ioctl backend reads nothing else); with them the process's file mappings, as the /proc scan
 * reads them: a lookup reads build IDs from the files only, which an unprivileged client may
 * not open when they were deleted, while a listing has the kernel's too. Processes the client
 * may not see, or that are gone, are skipped. */
static int visit_processes(const struct method_context *ctx, const struct find_hit *hits, size_t n, unsigned flags,
                           process_hits_fn fn, void *userdata) {
        _cleanup_free_ uint64_t *starts = NULL;

        starts = malloc((n ? n : 1) * sizeof(*starts));
        if (!starts)
                return -ENOMEM;
        for (size_t i = 0, j; i < n; i = j) {
                _cleanup_(process_freep) struct process *p = NULL;
                _cleanup_(layout_unrefp) struct layout *l = NULL;
                _cleanup_free_ struct layout_result *res = NULL;
                _cleanup_(mapping_list_done) struct mapping_list list = {};
                size_t k = 0;
                int r;

                for (j = i; j < n && hits[j].tgid == hits[i].tgid; j++)
                        if (k == 0 || starts[k - 1] != hits[j].start)
                                starts[k++] = hits[j].start;
                r = open_visible(ctx, hits[i].tgid, &p);
                if (r >= 0 && (flags & ENGINE_BUILD_IDS))
                        r = engine_list(ctx->engine, p, ENGINE_FILE_BACKED_ONLY | flags, &list);
                else if (r >= 0)
                        r = engine_lookup_layout(ctx->engine, p, starts, k, flags, &l, &res);
                if (skip_error(r))
                        continue;
                if (r < 0)
                        return r;
                r = fn(p, l ? &l->mappings : &list, hits + i, j - i, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int answer_process(const struct process *p, const struct mapping_list *l, const struct find_hit *hits,
                          size_t n, void *userdata) {
        return out_process(userdata, p, l->items, l->n);
}

/* Build ID: what is known of each file the machine maps. */
struct file_verdicts {
        const struct find_query *q;
        const struct find_hit *files;   /* each file's first hit */
        int8_t *verdict;                /* per file: 1 carries the build ID, 0 another, -1 none known */
};

/* The hits here are representatives, their ino replaced by the index of their file. */
static int judge_files(const struct process *p, const struct mapping_list *l, const struct find_hit *reps, size_t n,
                       void *userdata) {
        struct file_verdicts *v = userdata;

        for (size_t t = 0; t < n; t++) {
                const struct find_hit *file = &v->files[reps[t].ino];
                ssize_t m = mapping_list_find(l, reps[t].start);
                const struct mapping *mp;

                if (m < 0)
                        continue;
                mp = &l->items[m];
                /* The process may have mapped another file there since. */
                if (find_kernel_dev(mp->dev_major, mp->dev_minor) != file->dev || mp->inode != file->ino ||
                    mp->build_id_len == 0)
                        continue;
                v->verdict[reps[t].ino] = mp->build_id_len == v->q->build_id_len &&
                                          memcmp(mp->build_id, v->q->build_id, mp->build_id_len) == 0;
        }
        return 0;
}

/* Build ID: which of the files the machine maps carry it. Each file's build ID is read once
 * (the ELF cache keeps it) through a process that maps it and that the client may see; the
 * hits of other files are dropped (*n shrinks). */
static int keep_build_id_files(struct find_out *o, struct find_hit *hits, size_t *n) {
        _cleanup_free_ size_t *first = NULL;           /* each file's first hit, and *n */
        _cleanup_free_ struct find_hit *files = NULL;
        _cleanup_free_ int8_t *verdict = NULL;
        _cleanup_free_ struct find_hit *reps = NULL;
        struct file_verdicts v = { .q = o->q };
        size_t n_files = 0, kept = 0;

        qsort(hits, *n, sizeof(*hits), hit_by_file);
        for (size_t i = 0; i < *n; i++)
                if (i == 0 || hits[i].dev != hits[i - 1].dev || hits[i].ino != hits[i - 1].ino)
                        n_files++;
        if (n_files > FIND_FILES_MAX)
                return -E2BIG;
        first = calloc(n_files + 1, sizeof(*first));
        files = calloc(n_files + 1, sizeof(*files));
        verdict = malloc(n_files + 1);
        reps = calloc(*n + 1, sizeof(*reps));
        if (!first || !files || !verdict || !reps)
                return -ENOMEM;
        for (size_t i = 0, f = 0; i < *n; i++)
                if (i == 0 || hits[i].dev != hits[i - 1].dev || hits[i].ino != hits[i - 1].ino) {
                        files[f] = hits[i];
                        first[f++] = i;
                }
        first[n_files] = *n;
        memset(verdict, -1, n_files + 1);
        v.files = files;
        v.verdict = verdict;

        for (unsigned round = 0; round < FIND_BUILD_ID_TRIES; round++) {
                size_t n_reps = 0;
                int r;

                /* Each unknown file's round-th process (the client may not see the earlier
                 * ones), grouped by process: one read each. */
                for (size_t f = 0; f < n_files; f++) {
                        size_t distinct = 0;

                        if (verdict[f] >= 0)
                                continue;
                        for (size_t i = first[f]; i < first[f + 1]; i++) {
                                if (i > first[f] && hits[i].tgid != hits[i - 1].tgid)
                                        distinct++;
                                if (distinct > round)
                                        break;
                                /* All its mappings there: one of them may be the file's
                                 * start, where the kernel reads the build ID of a deleted
                                 * file the client may not open. */
                                if (distinct == round) {
                                        reps[n_reps] = hits[i];
                                        reps[n_reps++].ino = f;
                                }
                        }
                }
                if (n_reps == 0)
                        break;
                qsort(reps, n_reps, sizeof(*reps), hit_by_tgid);
                r = visit_processes(o->ctx, reps, n_reps, ENGINE_BUILD_IDS, judge_files, &v);
                if (r < 0)
                        return r;
        }

        for (size_t f = 0; f < n_files; f++)
                if (verdict[f] > 0)
                        for (size_t i = first[f]; i < first[f + 1]; i++)
                                hits[kept++] = hits[i];
        *n = kept;
        return 0;
}

/* With the iterator: one pass finds the candidates, the client's reads decide. */
static int find_by_iterator(struct find_out *o) {
        const struct find_query *q = o->q;
        _cleanup_free_ struct find_hit *hits = NULL;
        size_t n = 0;
        int r;

        if (q->by_path)
                /* The unlinked files of the path's last name only: a replaced file keeps its
                 * name (the kernel shows "PATH (deleted)"); longer names than the iterator
                 * compares are let through and compared here. */
                r = find_scan_run(o->ctx->find, q->have_file ? &q->file : NULL, q->have_file ? 1 : 0,
                                  FIND_SCAN_UNLINKED, q->name_len < 256 ? strrchr(q->path, '/') + 1 : NULL,
                                  FIND_HITS_MAX, &hits, &n);
        else
                r = find_scan_run(o->ctx->find, NULL, 0, FIND_SCAN_ALL_FILES, NULL, FIND_HITS_MAX, &hits, &n);
        if (r < 0)
                return r;
        if (!q->by_path) {
                r = keep_build_id_files(o, hits, &n);
                if (r < 0)
                        return r;
        }
        qsort(hits, n, sizeof(*hits), hit_by_tgid);
        return visit_processes(o->ctx, hits, n, o->flags, answer_process, o);
}

static const char *parse_query(const struct varlink_call *call, struct json_writer *w, struct find_query *q) {
        const char *path = NULL, *build_id = NULL;

        if (varlink_param_string(call->parameters, "path", false, &path) < 0)
                return reply_invalid_parameter(w, "path");
        if (varlink_param_string(call->parameters, "build_id", false, &build_id) < 0)
                return reply_invalid_parameter(w, "build_id");
        if (varlink_param_bool(call->parameters, "deleted_only", false, false, &q->deleted_only) < 0)
                return reply_invalid_parameter(w, "deleted_only");
        /* Exactly one of the two. */
        if (!!path == !!build_id)
                return reply_invalid_parameter(w, path ? "build_id" : "path");
        if (path) {
                struct stat st;

                q->path_len = strlen(path);
                if (path[0] != '/' || q->path_len >= PATH_MAX)
                        return reply_invalid_parameter(w, "path");
                q->by_path = true;
                q->path = path;
                q->name_len = strlen(strrchr(path, '/') + 1);
                /* With the client's credentials (the method runs as the client): a path it may
                 * not resolve names no file for it, only the names of deleted ones. */
                if (stat(path, &st) >= 0) {
                        q->have_file = true;
                        q->file = (struct find_inode) {
                                .dev = find_kernel_dev(major(st.st_dev), minor(st.st_dev)),
                                .ino = st.st_ino,
                        };
                }
        } else {
                size_t len = strlen(build_id);

                if (len == 0 || len % 2 != 0 || len / 2 > MAPPING_BUILD_ID_MAX ||
                    unhex_bytes(build_id, len, false, q->build_id) < 0)
                        return reply_invalid_parameter(w, "build_id");
                q->build_id_len = len / 2;
        }
        return NULL;
}

const char *find_mappings(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w) {
        static const char *const known[] = { "path", "build_id", "deleted_only", NULL };
        struct find_query q = {};
        struct find_out o = { .ctx = ctx, .w = w, .q = &q };
        const char *bad, *err;
        int r;

        if (!known_params_only(call->parameters, known, &bad))
                return reply_invalid_parameter(w, bad);
        err = parse_query(call, w, &q);
        if (err)
                return err;
        o.flags = q.by_path ? 0 : ENGINE_BUILD_IDS;
        o.streaming = call->more && ctx->stream;

        find_part_begin(w);
        r = find_scan_active(ctx->find) ? find_by_iterator(&o) : -EOPNOTSUPP;
        /* A pass that failed before anything was written (the kernel kept restarting it, no
         * memory for it): the /proc scan gives the same answer, slower. */
        if (r < 0 && r != -E2BIG && o.emit_error == 0 && !o.wrote)
                r = find_by_proc_scan(&o);
        if (r < 0) {
                json_writer_done(w);
                if (o.emit_error == -E2BIG)
                        return reply_limit(w, "max_output_queue", ctx->limits->max_output_queue);
                if (o.emit_error < 0)
                        return reply_internal(w, o.emit_error);
                if (r == -E2BIG)
                        return reply_limit(w, "max_mappings", FIND_HITS_MAX);
                return reply_internal(w, r);
        }
        json_writer_array_end(w);
        varlink_message_end(w);
        return NULL;
}
