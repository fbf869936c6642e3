/* Lookup and ListMappings answered from the kept history of executable file mappings: processes that exited, and answers as of a time. */

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "engine.h"
#include "exec-history.h"
#include "layout.h"
#include "memmapd-codec.h"
#include "methods-internal.h"
#include "process.h"
#include "retention.h"
#include "time-util.h"

/* The rule for what the kernel can no longer be asked about (memmapd(8)): a privileged client, or
 * one in the daemon's user namespace whose uid was the process's real, effective and saved uid
 * when it was last seen (at its exit), while the process was dumpable (as ptrace_may_access()
 * would have let that uid read its maps). */
bool retained_access_allowed(const struct client *c, const struct exec_history_view *v) {
        if (c->privileged)
                return true;
        return c->userns == 0 && c->uid == v->uid && c->uid == v->euid && c->uid == v->suid && v->dumpable == 1;
}

static void close_fd(int *fd) {
        if (*fd >= 0)
                close(*fd);
}

/* The files' facts of a process that is gone are those the capture kept; where it kept none, they
 * are read through the daemon's own view: its root for the paths, each file checked by device and
 * inode (another file under the name gives no facts). A process of the daemon's own with the kept
 * identity stands for it in the engine. */
static int stand_in_open(const struct exec_history_view *v, struct process *ret) {
        int proc_fd = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
        int maps_fd;

        if (proc_fd < 0)
                return -errno;
        maps_fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
        if (maps_fd < 0) {
                int r = -errno;

                close(proc_fd);
                return r;
        }
        *ret = (struct process) {
                .pid = v->pid, .pidfd = -1, .proc_fd = proc_fd, .maps_fd = maps_fd, .start_time = v->start_time,
                .refs = 1,
        };
        return 0;
}

static void stand_in_close(struct process *p) {
        close_fd(&p->proc_fd);
        close_fd(&p->maps_fd);
}

/* The facts of mapping m's file as the capture kept them (kf), standing for the file's in the
 * engine so that the file is not read for them: a file deleted or replaced since the process
 * mapped it answers with what the process mapped. Kept without the PT_LOADs (more than the
 * capture holds), those are read from the file now, only when it carries the kept build ID:
 * another file's never stand with the kept one. */
static int kept_file(const struct method_context *ctx, const struct process *stand_in, const struct mapping *m,
                     const struct exec_history_facts *kf, struct layout_file **ret) {
        struct layout_file *f;
        int r;

        r = layout_file_new(m->dev_major, m->dev_minor, m->inode, &f);
        if (r < 0)
                return r;
        f->result = 0;
        f->info.elf_class = ELFCLASS64;
        f->info.build_id_len = MIN(kf->build_id_len, (uint8_t) MAPPING_BUILD_ID_MAX);
        memcpy(f->info.build_id, kf->build_id, f->info.build_id_len);
        if (kf->has_loads) {
                f->info.n_loads = MIN(kf->n_loads, (uint8_t) MIN(EXEC_HISTORY_LOADS_MAX, ELF_LOADS_MAX));
                for (size_t i = 0; i < f->info.n_loads; i++)
                        f->info.loads[i] = (struct elf_load) {
                                .offset = kf->loads[i].offset, .vaddr = kf->loads[i].vaddr,
                                .filesz = kf->loads[i].filesz, .memsz = kf->loads[i].filesz,
                        };
        } else {
                _cleanup_close_ int fd = -1;
                struct elf_info info;

                if (engine_open_mapping_file(ctx->engine, stand_in, m, &fd) >= 0 && elf_info_from_fd(fd, &info) >= 0 &&
                    info.build_id_len == f->info.build_id_len &&
                    memcmp(info.build_id, f->info.build_id, info.build_id_len) == 0) {
                        f->info.n_loads = info.n_loads;
                        memcpy(f->info.loads, info.loads, sizeof(info.loads));
                }
        }
        *ret = f;
        return 0;
}

/* The kept mappings as a layout: complete as far as executable file mappings go, with the facts
 * of their files where the capture kept them. */
static int view_layout(const struct method_context *ctx, const struct process *stand_in,
                       const struct exec_history_view *v, struct layout **ret) {
        _cleanup_(layout_unrefp) struct layout *l = NULL;
        int r;

        r = layout_new(v->pid, v->start_time, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n; i++) {
                const struct exec_history_mapping *h = &v->mappings[i];
                struct mapping m = {
                        .start = h->start, .end = h->end, .offset = h->offset, .inode = h->inode,
                        .dev_major = h->dev_major, .dev_minor = h->dev_minor, .flags = h->flags,
                        .kind = MAPPING_KIND_FILE, .name = h->path,
                };

                r = layout_add(l, &m);
                if (r < 0)
                        return r;
        }
        layout_set_complete(l);
        layout_normalize(l);
        r = layout_prepare_files(l);
        if (r < 0)
                return r;
        /* Both sorted by start; normalizing may have dropped some of the view's. */
        for (size_t i = 0, j = 0; i < l->mappings.n; i++) {
                const struct mapping *m = &l->mappings.items[i];
                struct layout_file *f = NULL;

                while (j < v->n && v->mappings[j].start < m->start)
                        j++;
                if (j >= v->n || v->mappings[j].start != m->start || !v->mappings[j].facts)
                        continue;
                r = kept_file(ctx, stand_in, m, v->mappings[j].facts, &f);
                if (r < 0)
                        return r;
                (void) layout_fill_file(l, i, f);
                layout_file_unref(f);
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static const char *reply_time_not_known(struct json_writer *w, const struct exec_history_view *v, uint64_t time_usec) {
        varlink_reply_begin(w, MEMMAPD_ERROR_TIME_NOT_KNOWN, false);
        json_writer_key(w, "pid");
        json_writer_int(w, v->pid);
        json_writer_key(w, "time_usec");
        json_writer_uint(w, time_usec);
        json_writer_key(w, "known_since_usec");
        json_writer_uint(w, v->known_since_usec);
        varlink_message_end(w);
        return MEMMAPD_ERROR_TIME_NOT_KNOWN;
}

/* How many reads of a live process's mappings one answer tries to start its history with. */
#define SEED_ATTEMPTS 4

/* A live process's executable file mappings, read now, start its history when nothing kept it
 * complete yet (a process older than the daemon). */
static int seed_live(const struct method_context *ctx, struct exec_history *h, const struct process *p) {
        _cleanup_(layout_unrefp) struct layout *l = NULL;
        _cleanup_free_ struct exec_history_mapping *m = NULL;
        uint64_t generation = exec_history_generation(h);
        uint64_t read_from = now_usec();
        size_t n = 0;
        uid_t uid = 0;
        int r;

        r = engine_read_layout(ctx->engine, p, ENGINE_EXECUTABLE_ONLY | ENGINE_FILE_BACKED_ONLY, &l);
        if (r < 0)
                return r;
        (void) process_read_uid(p, &uid);
        m = calloc(MAX(l->mappings.n, (size_t) 1), sizeof(*m));
        if (!m)
                return -ENOMEM;
        for (size_t i = 0; i < l->mappings.n; i++) {
                const struct mapping *x = &l->mappings.items[i];

                if (x->kind != MAPPING_KIND_FILE)
                        continue;
                m[n++] = (struct exec_history_mapping) {
                        .start = x->start, .end = x->end, .offset = x->offset, .inode = x->inode,
                        .dev_major = x->dev_major, .dev_minor = x->dev_minor, .flags = x->flags,
                        .path = x->deleted ? NULL : x->name,
                };
        }
        /* Its end: a change made while it read may or may not be in it. */
        return exec_history_seed(h, p->pid, p->start_time, read_from, now_usec(), generation, m, n, uid);
}

int retained_complete_live(const struct method_context *ctx, const struct process *p) {
        struct exec_history *h = retention_history(ctx->retention);
        struct tracking_stamp st;
        int r = 0;

        if (!h || exec_history_complete(h, p->pid, p->start_time))
                return 0;
        /* Its exec or its fork (a better start than a read: from then on) may wait still. */
        tracking_stamp(ctx->tracking, p->pid, &st);
        if (catch_up(ctx, &st) > 0 && exec_history_complete(h, p->pid, p->start_time))
                return 0;
        /* A read is refused when a record of the process came after it began (see
         * find_view_of()). */
        for (unsigned attempt = 0; attempt < SEED_ATTEMPTS && r >= 0; attempt++) {
                r = seed_live(ctx, h, p);
                if (r >= 0 && exec_history_complete(h, p->pid, p->start_time))
                        return 0;
        }
        return r < 0 ? r : -EAGAIN;
}

/* The view a call answers from, in *ret: 0, -ERANGE (time_usec before what is kept; *ret says
 * since when), -ENOENT when nothing kept may answer (the caller's own error stands), -errno.
 * live: the process the call opened (time_usec is asked of it), or NULL for one that is gone. */
static int find_view_of(const struct method_context *ctx, pid_t pid, uint64_t start_time, const struct process *live,
                        bool at_time, uint64_t time_usec, struct exec_history_view *ret);

/* An unprivileged client was let see the process as it is now (live: the kernel's decision on
 * its current program; gone: the rule on its last program's credentials): times before that
 * program's exec are another program's, perhaps a setuid one's, and are not known to it. */
static int find_view(const struct method_context *ctx, pid_t pid, uint64_t start_time, const struct process *live,
                     bool at_time, uint64_t time_usec, struct exec_history_view *ret) {
        int r = find_view_of(ctx, pid, start_time, live, at_time, time_usec, ret);

        if (r >= 0 && at_time && !ctx->client->privileged && time_usec < ret->program_since_usec) {
                exec_history_view_done(ret);
                ret->known_since_usec = ret->program_since_usec;
                r = -ERANGE;
        }
        return r;
}

/* Takes what waits in the ring buffers (the capture's records first, as the loop does): how
 * many records and events were handled. */
static int drain_waiting(const struct method_context *ctx) {
        int a = retention_drain(ctx->retention), b = tracking_drain(ctx->tracking);

        return MAX(a, 0) + MAX(b, 0);
}

static int find_view_of(const struct method_context *ctx, pid_t pid, uint64_t start_time, const struct process *live,
                        bool at_time, uint64_t time_usec, struct exec_history_view *ret) {
        struct exec_history *h = retention_history(ctx->retention);
        unsigned flags = at_time ? EXEC_HISTORY_AT_TIME : 0;
        int r;

        if (!h)
                return -ENOENT;
        if (live) {
                struct tracking_stamp st = {};

                if (tracking_active(ctx->tracking))
                        tracking_stamp(ctx->tracking, live->pid, &st);
                /* A seed is refused when a record about the process came after the read began (it
                 * may say more than the read): a process that changes its mappings without pause
                 * can keep refusing it, so a few reads are tried. */
                for (unsigned attempt = 0; attempt < SEED_ATTEMPTS; attempt++) {
                        r = exec_history_get(h, live->pid, live->start_time, time_usec, flags, ret);
                        /* Its exec or its fork may wait in a ring buffer still (not drained yet):
                         * a read of it now would start its history later than they do, and a
                         * time before its first change told whole is known once its fork is. */
                        if (r == -ERANGE && attempt == 0 && time_usec < ret->known_since_usec &&
                            catch_up(ctx, &st) > 0) {
                                exec_history_view_done(ret);
                                r = exec_history_get(h, live->pid, live->start_time, time_usec, flags, ret);
                                if (r != -ENOENT)
                                        return r;
                                continue;
                        }
                        if (r != -ENOENT)
                                return r;
                        if (attempt == 0 && catch_up(ctx, &st) > 0)
                                continue;
                        if (seed_live(ctx, h, live) < 0)
                                break;
                }
                r = exec_history_get(h, live->pid, live->start_time, time_usec, flags, ret);
                if (r != -ENOENT || !at_time)
                        return r;
                /* Nothing complete is kept of it (its records were lost, say, and no read could be
                 * taken since): no time is known of it yet. */
                *ret = (struct exec_history_view) {
                        .pid = live->pid, .start_time = live->start_time, .known_since_usec = now_usec(),
                };
                return -ERANGE;
        }
        r = exec_history_get(h, pid, start_time, time_usec, flags | EXEC_HISTORY_EXITED_ONLY, ret);
        /* Its exit record may wait in the ring buffer still (records sent soon after another
         * wake nobody, see server.c): what waits is taken before saying it is not kept. */
        if (r == -ENOENT && drain_waiting(ctx) > 0)
                r = exec_history_get(h, pid, start_time, time_usec, flags | EXEC_HISTORY_EXITED_ONLY, ret);
        /* Whoever may not see it learns nothing of it: the kernel's answer stands. */
        if ((r >= 0 || r == -ERANGE) && !retained_access_allowed(ctx->client, ret)) {
                exec_history_view_done(ret);
                return -ENOENT;
        }
        return r;
}

/* After find_view(): NULL and *ret_handled false when the caller's reply stands; else the
 * writer is emptied for this call's answer, and an error is written when r is one. */
static const char *take_over(struct json_writer *w, int r, const struct exec_history_view *v, uint64_t time_usec,
                             bool *ret_handled) {
        *ret_handled = r != -ENOENT;
        if (r == -ENOENT)
                return NULL;
        json_writer_reset(w);
        if (r == -ERANGE)
                return reply_time_not_known(w, v, time_usec);
        if (r < 0)
                return reply_internal(w, r);
        return NULL;
}

static void write_view_process(struct json_writer *w, const struct exec_history_view *v) {
        if (v->exited)
                memmapd_write_process_exited(w, v->pid, v->start_time);
        else
                memmapd_write_process(w, v->pid, v->start_time, false);
}

/* What both methods start with: the view, its layout and the stand-in to read facts through
 * (the caller closes it when NULL comes back). "" when nothing kept answers: the caller's reply
 * stands, untouched. */
static const char *begin_answer(const struct method_context *ctx, struct json_writer *w, pid_t pid,
                                uint64_t start_time, const struct process *live, bool at_time, uint64_t time_usec,
                                struct exec_history_view *v, struct layout **l, struct process *stand_in,
                                bool *ret_handled) {
        const char *err;
        int r;

        r = find_view(ctx, pid, start_time, live, at_time, time_usec, v);
        err = take_over(w, r, v, time_usec, ret_handled);
        if (err || !*ret_handled)
                return err ? err : "";
        r = stand_in_open(v, stand_in);
        if (r < 0)
                return reply_internal(w, r);
        r = view_layout(ctx, stand_in, v, l);
        if (r < 0) {
                stand_in_close(stand_in);
                return reply_internal(w, r);
        }
        return NULL;
}

const char *retained_lookup(const struct method_context *ctx, struct json_writer *w, pid_t pid, uint64_t start_time,
                            const struct process *live, bool at_time, uint64_t time_usec, const uint64_t *addrs,
                            size_t n, bool build_ids, bool symbols, bool *ret_handled) {
        _cleanup_(exec_history_view_done) struct exec_history_view v = {};
        _cleanup_(symbols_done) struct symbols syms = {};
        _cleanup_(layout_unrefp) struct layout *l = NULL, *out = NULL;
        _cleanup_free_ struct layout_result *results = NULL;
        struct process stand_in;
        const char *err;
        int r;

        err = begin_answer(ctx, w, pid, start_time, live, at_time, time_usec, &v, &l, &stand_in, ret_handled);
        if (err)
                return *err ? err : NULL;
        r = engine_lookup_shared(ctx->engine, &stand_in, l, addrs, n, build_ids ? ENGINE_BUILD_IDS : 0, &out,
                                 &results);
        /* As for a live process: with this client's access, from files that are still the ones
         * mapped (device and inode). */
        if (r >= 0 && symbols)
                r = engine_symbolize(ctx->engine, &stand_in, out, results, n, &syms);
        stand_in_close(&stand_in);
        if (r < 0)
                return reply_internal(w, r);

        varlink_reply_begin(w, NULL, false);
        write_view_process(w, &v);
        json_writer_key(w, "mappings");
        json_writer_array_begin(w);
        for (size_t i = 0; i < out->mappings.n; i++)
                write_mapping(w, &out->mappings.items[i]);
        json_writer_array_end(w);
        json_writer_key(w, "results");
        json_writer_array_begin(w);
        for (size_t i = 0; i < n; i++)
                write_result(w, addrs[i], &results[i], false, symbols ? &syms.answers[i] : NULL);
        json_writer_array_end(w);
        varlink_message_end(w);
        return NULL;
}

static int visit_write(struct mapping *m, void *userdata) {
        write_mapping(userdata, m);
        return 0;
}

const char *retained_list(const struct method_context *ctx, struct json_writer *w, pid_t pid, uint64_t start_time,
                          unsigned engine_flags, bool *ret_handled) {
        _cleanup_(exec_history_view_done) struct exec_history_view v = {};
        _cleanup_(layout_unrefp) struct layout *l = NULL;
        struct process stand_in;
        const char *err;
        int r;

        err = begin_answer(ctx, w, pid, start_time, NULL, false, 0, &v, &l, &stand_in, ret_handled);
        if (err)
                return *err ? err : NULL;
        varlink_reply_begin(w, NULL, false);
        write_view_process(w, &v);
        json_writer_key(w, "mappings");
        json_writer_array_begin(w);
        r = engine_list_shared(ctx->engine, &stand_in, l, engine_flags, visit_write, w);
        stand_in_close(&stand_in);
        if (r < 0) {
                json_writer_done(w);
                return reply_internal(w, r);
        }
        json_writer_array_end(w);
        varlink_message_end(w);
        return NULL;
}
