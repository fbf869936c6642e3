/* The methods memmapd serves (io.memmapd and org.varlink.service): a decoded call in, a complete reply out. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "file-pool.h"
#include "layout-store.h"
#include "memmapd-codec.h"
#include "log.h"
#include "methods.h"
#include "methods-internal.h"
#include "reply-size.h"
#include "number.h"
#include "process.h"
#include "time-util.h"
#include "tracking.h"
#include "exec-history.h"
#include "retention.h"


static const char *get_status(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w) {
        static const char *const known[] = { NULL };
        const struct limits *l = ctx->limits;
        struct elf_cache_stats cs;
        struct vdso_cache_stats vs;
        struct file_pool_stats fp = {};
        struct layout_store_stats ls = {};
        struct symbol_cache_stats ss;
        struct exec_history_stats hs = {};
        struct retention_stats rs;
        struct tracking_stats ts;
        struct utsname u;
        const char *bad;

        if (!known_params_only(call->parameters, known, &bad))
                return reply_invalid_parameter(w, bad);

        engine_get_elf_cache_stats(ctx->engine, &cs);
        engine_get_vdso_cache_stats(ctx->engine, &vs);
        engine_get_symbol_cache_stats(ctx->engine, &ss);
        if (ctx->file_pool)
                file_pool_get_stats(ctx->file_pool, &fp);
        if (ctx->store)
                layout_store_get_stats(ctx->store, &ls);
        if (retention_active(ctx->retention))
                exec_history_get_stats(retention_history(ctx->retention), &hs);
        retention_get_stats(ctx->retention, &rs);
        tracking_get_stats(ctx->tracking, &ts);
        if (uname(&u) < 0)
                strcpy(u.release, "unknown");

        varlink_reply_begin(w, NULL, false);
        json_writer_key(w, "version");
        json_writer_string(w, MEMMAPD_VERSION);
        json_writer_key(w, "kernel");
        json_writer_string(w, u.release);
        json_writer_key(w, "backend");
        json_writer_string(w, engine_backend_to_string(engine_get_backend(ctx->engine)));
        json_writer_key(w, "tracking");
        json_writer_string(w, tracking_name(ctx->tracking));
        json_writer_key(w, "retention");
        json_writer_string(w, retention_active(ctx->retention) ? "bpf" : "none");
        json_writer_key(w, "uptime_usec");
        json_writer_uint(w, now_usec() - ctx->stats->start_usec);
        json_writer_key(w, "requests");
        json_writer_uint(w, atomic_load(&ctx->stats->requests));
        json_writer_key(w, "errors");
        json_writer_uint(w, atomic_load(&ctx->stats->errors));
        json_writer_key(w, "elf_cache_hits");
        json_writer_uint(w, cs.hits);
        json_writer_key(w, "elf_cache_misses");
        json_writer_uint(w, cs.misses);
        json_writer_key(w, "elf_cache_entries");
        json_writer_uint(w, cs.entries);
        json_writer_key(w, "connections");
        json_writer_uint(w, atomic_load(&ctx->stats->connections));
        {
                const struct {
                        const char *key;
                        uint64_t value;
                } counters[] = {
                        { "oneway_skipped", atomic_load(&ctx->stats->oneway_skipped) },
                        { "output_held", atomic_load(&ctx->stats->output_held) },
                        { "parked", atomic_load(&ctx->stats->parked) },
                        { "file_readers", fp.threads },
                        { "file_readers_busy", fp.busy },
                        { "file_readers_stuck", fp.stuck },
                        { "file_read_timeouts", fp.timeouts },
                        { "file_reads_refused", fp.refused },
                        { "vdso_cache_hits", vs.hits },
                        { "vdso_cache_misses", vs.misses },
                        { "vdso_cache_entries", vs.entries },
                        { "layout_cache_hits", ls.hits },
                        { "layout_cache_misses", ls.misses },
                        { "layout_cache_entries", ls.entries },
                        { "layout_cache_bytes", ls.bytes },
                        { "symbol_cache_hits", ss.hits },
                        { "symbol_cache_misses", ss.misses },
                        { "symbol_cache_bytes", ss.bytes },
                        { "retained_processes", hs.processes },
                        { "retained_exited", hs.exited },
                        { "retained_bytes", hs.bytes },
                        { "retained_evicted", hs.evicted },
                        { "retention_records", rs.records },
                        { "retention_records_lost", rs.lost },
                        { "retention_records_unread", rs.unread },
                        { "tracking_events_lost", ts.lost_events },
                        { "tracking_shared_rebuilds", ts.shared_rebuilds },
                        { "retention_records_skipped", rs.skipped },
                };

                for (size_t i = 0; i < ELEMENTSOF(counters); i++) {
                        json_writer_key(w, counters[i].key);
                        json_writer_uint(w, counters[i].value);
                }
        }
        json_writer_key(w, "limits");
        json_writer_object_begin(w);
        json_writer_key(w, "max_message_size");
        json_writer_uint(w, l->max_message_size);
        json_writer_key(w, "max_addresses");
        json_writer_uint(w, l->max_addresses);
        json_writer_key(w, "max_connections");
        json_writer_uint(w, l->max_connections);
        json_writer_key(w, "max_connections_per_uid");
        json_writer_uint(w, l->max_connections_per_uid);
        json_writer_key(w, "max_output_queue");
        json_writer_uint(w, l->max_output_queue);
        json_writer_key(w, "reserved_connections");
        json_writer_uint(w, l->reserved_connections);
        json_writer_key(w, "output_budget");
        json_writer_uint(w, l->output_budget);
        json_writer_key(w, "output_budget_per_uid");
        json_writer_uint(w, l->output_budget_per_uid);
        json_writer_key(w, "idle_timeout_sec");
        json_writer_uint(w, l->idle_timeout_sec);
        json_writer_key(w, "max_json_depth");
        json_writer_uint(w, l->max_json_depth);
        json_writer_object_end(w);
        varlink_message_end(w);
        return NULL;
}

_Static_assert((unsigned) MAPPING_READ == (unsigned) MEMMAPD_PERM_READ &&
                       (unsigned) MAPPING_WRITE == (unsigned) MEMMAPD_PERM_WRITE &&
                       (unsigned) MAPPING_EXEC == (unsigned) MEMMAPD_PERM_EXEC &&
                       (unsigned) MAPPING_SHARED == (unsigned) MEMMAPD_PERM_SHARED,
               "the engine's permission bits are the protocol's");
_Static_assert(MAPPING_BUILD_ID_MAX == MEMMAPD_BUILD_ID_MAX, "build IDs fit the codec");

/* The codec's view of m: lent, valid while m is. */
static void mapping_view(const struct mapping *m, struct memmapd_mapping *ret) {
        bool file = mapping_is_file_backed(m) && m->name;

        *ret = (struct memmapd_mapping) {
                .start = m->start,
                .end = m->end,
                .offset = m->offset,
                .inode = m->inode,
                .dev_major = m->dev_major,
                .dev_minor = m->dev_minor,
                .page_size = m->page_size,
                .flags = m->flags,
                .kind = mapping_kind_to_string(m->kind),
                .name = m->name,
                .path = file ? m->name : NULL,
                .path_len = file ? mapping_path_len(m) : 0,
                .has_deleted = m->kind == MAPPING_KIND_FILE,
                .deleted = m->deleted,
                .build_id = m->build_id,
                .build_id_len = m->build_id_len,
        };
}

void write_mapping(struct json_writer *w, const struct mapping *m) {
        struct memmapd_mapping v;

        mapping_view(m, &v);
        memmapd_write_mapping(w, &v);
}

void write_process(struct json_writer *w, const struct process *p) {
        memmapd_write_process(w, p->pid, p->start_time, p->kernel_thread);
}

/* What every reply about a process starts with: who it is, and its mappings. */
static void write_process_and_mappings(struct json_writer *w, const struct process *p, const struct mapping_list *l) {
        write_process(w, p);
        json_writer_key(w, "mappings");
        json_writer_array_begin(w);
        for (size_t i = 0; i < l->n; i++)
                write_mapping(w, &l->items[i]);
        json_writer_array_end(w);
}

/* A connection's cached target is the access decision retained: served again while the
 * decision stands (access-decision.h). An exec is noticed at once, below. Each cached target
 * holds three fds: bounded for the whole daemon. */
#define TARGET_CACHE_MAX 256

static atomic_uint cached_targets;

void target_cache_clear(struct target_cache *c) {
        if (!c->process)
                return;
        c->process = process_free(c->process);
        atomic_fetch_sub(&cached_targets, 1);
}

/* The connection's cached target, when it is pid and its decision still stands. */
static struct process *target_cache_take(const struct method_context *ctx, pid_t pid) {
        struct target_cache *c = ctx->cache;

        if (!c || !c->process)
                return NULL;
        /* With tracking, an exec since the decision is seen without a syscall: its epoch moved. */
        if (!access_decision_stands(&c->decision, ctx->client, pid, c->process->start_time, now_usec(), 0) ||
            (tracking_active(ctx->tracking) &&
             (!c->decision.epoch_known || tracking_epoch(ctx->tracking, pid) != c->decision.epoch)) ||
            process_check_alive(c->process) < 0) {
                target_cache_clear(c);
                return NULL;
        }
        return process_ref(c->process);
}

static void target_cache_put(const struct method_context *ctx, struct process *p,
                             const struct access_decision *decision) {
        struct target_cache *c = ctx->cache;

        /* Only PROCMAP_QUERY fails (ESRCH) on a maps fd whose mm is gone after an exec; the
         * text of a stale fd just reads empty, which could pass for an answer, unless the
         * tracker tells the exec (the epoch). */
        if (!c || (engine_get_backend(ctx->engine) != ENGINE_BACKEND_IOCTL && !tracking_active(ctx->tracking)))
                return;
        target_cache_clear(c);
        if (atomic_fetch_add(&cached_targets, 1) >= TARGET_CACHE_MAX) {
                atomic_fetch_sub(&cached_targets, 1);
                return;
        }
        c->process = process_ref(p);
        c->decision = *decision;
}

/* Reads pid and start_time, opens the process and checks its identity. On failure the
 * error reply is written and returned. */
const char *open_target(const struct method_context *ctx, struct json_object *params, struct json_writer *w,
                        struct process **ret, struct access_decision *ret_decision) {
        _cleanup_(process_freep) struct process *p = NULL;
        struct access_decision decision;
        uint64_t start_time;
        int64_t pid;
        int r;

        if (varlink_param_int(params, "pid", true, 1, INT64_MAX, 0, &pid) < 0)
                return reply_invalid_parameter(w, "pid");
        if (varlink_param_u64(params, "start_time", false, 0, &start_time) < 0)
                return reply_invalid_parameter(w, "start_time");
        /* Beyond what pid_t holds, as beyond pid_max: a pid that names no process. */
        if (pid > INT32_MAX)
                return reply_pid_error(w, MEMMAPD_ERROR_NO_SUCH_PROCESS, pid);

        /* Decide, then read: nothing of the process is read or served before the decision
         * (made now, or retained by the connection's cache) said yes. */
        p = target_cache_take(ctx, (pid_t) pid);
        if (p)
                decision = ctx->cache->decision;
        else {
                bool tracked = tracking_active(ctx->tracking);
                uint64_t epoch = tracked ? tracking_epoch(ctx->tracking, (pid_t) pid) : 0;

                r = access_decide(ctx->client, (pid_t) pid, &p, &decision);
                if (r == -ESRCH || r == -ENOENT)
                        return reply_pid_error(w, MEMMAPD_ERROR_NO_SUCH_PROCESS, pid);
                if (r == -EACCES || r == -EPERM)
                        return reply_pid_error(w, MEMMAPD_ERROR_PERMISSION_DENIED, pid);
                if (r < 0)
                        return reply_internal(w, r);
                /* The decision saw one program when the epoch was the same around it (a thread
                 * id's counters are not its process's: such decisions use no stored layout). */
                decision.epoch = epoch;
                decision.epoch_known = tracked && p->pid == (pid_t) pid &&
                                       tracking_epoch(ctx->tracking, (pid_t) pid) == epoch;
                target_cache_put(ctx, p, &decision);
        }

        if (start_time != 0 && start_time != p->start_time) {
                varlink_reply_begin(w, MEMMAPD_ERROR_PROCESS_CHANGED, false);
                json_writer_key(w, "pid");
                json_writer_int(w, pid);
                json_writer_key(w, "expected_start_time");
                json_writer_uint(w, start_time);
                varlink_message_end(w);
                return MEMMAPD_ERROR_PROCESS_CHANGED;
        }

        *ret = TAKE_PTR(p);
        if (ret_decision)
                *ret_decision = decision;
        return NULL;
}

/* Errors after which what was kept of an exited process may answer instead. */
static bool is_gone_error(const char *err) {
        return strcmp(err, MEMMAPD_ERROR_NO_SUCH_PROCESS) == 0 || strcmp(err, MEMMAPD_ERROR_PROCESS_CHANGED) == 0;
}

/* pid and start_time as open_target() read them (it succeeded that far when it answered one of
 * the errors above). */
static int64_t json_param_pid(const struct varlink_call *call) {
        int64_t pid = 0;

        (void) varlink_param_int(call->parameters, "pid", true, 1, INT64_MAX, 0, &pid);
        return pid;
}

static uint64_t json_param_start_time(const struct varlink_call *call) {
        uint64_t st = 0;

        (void) varlink_param_u64(call->parameters, "start_time", false, 0, &st);
        return st;
}

/* The target whose read found it gone in the call in progress (pid 0: none), for
 * method_dispatch() to tell an exec (the pid and start time stay) from an exit. */
static _Thread_local struct {
        pid_t pid;
        uint64_t start_time;
} read_found_gone;

const char *engine_error(struct json_writer *w, const struct process *p, int r) {
        if (r == -ESRCH || r == -ENOENT) {
                read_found_gone.pid = p->pid;
                read_found_gone.start_time = p->start_time;
                return reply_pid_error(w, MEMMAPD_ERROR_NO_SUCH_PROCESS, p->pid);
        }
        if (r == -EACCES || r == -EPERM)
                return reply_pid_error(w, MEMMAPD_ERROR_PERMISSION_DENIED, p->pid);
        if (r == -E2BIG)
                return reply_limit(w, "max_mappings", MAPPING_LIST_MAX);
        return reply_internal(w, r);
}

/* The layout of p to answer from, kept or read now: 1 and a reference in *ret; 0 when the store
 * is not for this call (no tracking, a kernel thread, a decision not known to precede the
 * process's current program), and the caller reads as without a store; -errno (-ESRCH when the
 * read met an exec: the call is made again, see call_met_exec()). */
/* How many drains of each ring catch_up() runs at most. */
#define CATCH_UP_DRAINS 8

int catch_up(const struct method_context *ctx, const struct tracking_stamp *st) {
        int n = 0;

        for (unsigned i = 0; i < CATCH_UP_DRAINS; i++) {
                int a = retention_drain(ctx->retention), b = tracking_drain(ctx->tracking);

                n += MAX(a, 0) + MAX(b, 0);
                /* b <= 0: the rest is still being written (its writer is about to wake the loop). */
                if (!tracking_active(ctx->tracking) || tracking_caught_up(ctx->tracking, st) || b <= 0)
                        break;
        }
        return n + MAX(retention_drain(ctx->retention), 0);
}

int shared_layout(const struct method_context *ctx, const struct process *p,
                         const struct access_decision *decision, struct layout **ret) {
        _cleanup_(layout_unrefp) struct layout *l = NULL;
        struct tracking_stamp st;
        bool keep;
        int r;

        if (!ctx->store || !tracking_active(ctx->tracking) || p->kernel_thread || !decision->epoch_known)
                return 0;
        tracking_stamp(ctx->tracking, p->pid, &st);
        /* An exec since the decision: its maps fd names the old program's mm (PROCMAP_QUERY
         * fails, the text reads empty); the call starts over and asks the kernel again. */
        if (st.epoch != decision->epoch)
                return -ESRCH;
        r = layout_store_get(ctx->store, p->pid, p->start_time, st.epoch, st.generation, ret);
        if (r == LAYOUT_STORE_CHANGING)
                return 0;
        if (r != 0)
                return r;

        r = engine_read_shared(ctx->engine, p, &l);
        if (r < 0)
                return r;
        keep = r > 0;
        /* Events come in batches (server.c): on a machine that forks all the time some always
         * wait, and a layout would never be kept. What waited when the read began is taken now. */
        if (keep && !tracking_caught_up(ctx->tracking, &st))
                (void) catch_up(ctx, &st);
        if (tracking_unchanged(ctx->tracking, p->pid, p->start_time, &st)) {
                if (keep)
                        (void) layout_store_put(ctx->store, l, ctx->client->owner, st.epoch, st.generation);
        } else if (tracking_epoch(ctx->tracking, p->pid) != st.epoch)
                /* What was read may be the old program's last state, or nothing (a maps fd whose
                 * mm is gone reads empty): the call starts over, as after any exec. */
                return -ESRCH;
        /* Changed while read: an answer, as a read without a store would give, not kept. */
        *ret = TAKE_PTR(l);
        return 1;
}

static int visit_write_mapping(struct mapping *m, void *userdata) {
        write_mapping(userdata, m);
        return 0;
}

/* Mappings per part of a streamed listing: parts of 100-250 KB, about what a Unix socket
 * buffers, so the client decodes one while the daemon writes the next. On the 2-CPU VM a
 * 60,000-mapping listing through libmemctl took 10.3-10.6 ms at best with 1,024 (10.7-10.8
 * with 2,048, 11.1-11.4 with 4,096), against 20.4-20.9 ms in one message. */
#define LIST_PART_MAPPINGS 1024

struct list_stream {
        const struct method_context *ctx;
        struct json_writer *w;
        const struct process *p;
        size_t in_part;         /* mappings in the part being written */
        int emit_error;         /* why the stream stopped, when it was not the engine */
};

static void list_part_begin(struct json_writer *w, const struct process *p) {
        varlink_reply_begin(w, NULL, false);
        write_process(w, p);
        json_writer_key(w, "mappings");
        json_writer_array_begin(w);
}

/* Ends the part being written with "continues" (it is known only now that another part
 * follows: member order does not matter in JSON) and hands it on. */
int stream_part_emit(const struct method_context *ctx, struct json_writer *w) {
        char *buf;
        size_t len;
        int r;

        json_writer_array_end(w);
        json_writer_object_end(w);
        json_writer_key(w, "continues");
        json_writer_bool(w, true);
        json_writer_object_end(w);
        json_writer_terminate(w);
        r = json_writer_finish(w, &buf, &len);
        if (r >= 0)
                r = ctx->stream->emit(ctx->stream->userdata, buf, len);
        if (r < 0)
                return r;
        ctx->stream->parts++;
        return 0;
}

static int list_part_emit(struct list_stream *s) {
        int r = stream_part_emit(s->ctx, s->w);

        if (r < 0)
                return s->emit_error = r;
        list_part_begin(s->w, s->p);
        s->in_part = 0;
        return 0;
}

static int visit_stream_mapping(struct mapping *m, void *userdata) {
        struct list_stream *s = userdata;

        if (s->in_part == LIST_PART_MAPPINGS) {
                int r = list_part_emit(s);

                if (r < 0)
                        return r;
        }
        write_mapping(s->w, m);
        s->in_part++;
        return 0;
}

static const char *list_mappings(const struct method_context *ctx, const struct varlink_call *call,
                                 struct json_writer *w) {
        static const char *const known[] = {
                "pid", "start_time", "executable_only", "file_backed_only", "build_ids", NULL
        };
        _cleanup_(process_freep) struct process *p = NULL;
        _cleanup_(layout_unrefp) struct layout *shared = NULL;
        struct access_decision decision;
        bool exec_only, files_only, build_ids;
        const char *bad, *err;
        unsigned flags = 0;
        size_t start;
        int r;

        if (!known_params_only(call->parameters, known, &bad))
                return reply_invalid_parameter(w, bad);
        if (varlink_param_bool(call->parameters, "executable_only", false, false, &exec_only) < 0)
                return reply_invalid_parameter(w, "executable_only");
        if (varlink_param_bool(call->parameters, "file_backed_only", false, false, &files_only) < 0)
                return reply_invalid_parameter(w, "file_backed_only");
        if (varlink_param_bool(call->parameters, "build_ids", false, false, &build_ids) < 0)
                return reply_invalid_parameter(w, "build_ids");
        if (exec_only)
                flags |= ENGINE_EXECUTABLE_ONLY;
        if (files_only)
                flags |= ENGINE_FILE_BACKED_ONLY;
        if (build_ids)
                flags |= ENGINE_BUILD_IDS;
        err = open_target(ctx, call->parameters, w, &p, &decision);
        if (err && is_gone_error(err)) {
                bool handled;
                const char *kept = retained_list(ctx, w, (pid_t) json_param_pid(call), json_param_start_time(call),
                                                 flags, &handled);

                return handled ? kept : err;
        }
        if (err)
                return err;
        r = shared_layout(ctx, p, &decision, &shared);
        if (r < 0)
                return engine_error(w, p, r);

        if (call->more && ctx->stream) {
                struct list_stream st = { .ctx = ctx, .w = w, .p = p };

                /* Parts go out while the rest is read; the last part is the reply. */
                list_part_begin(w, p);
                r = shared ? engine_list_shared(ctx->engine, p, shared, flags, visit_stream_mapping, &st)
                           : engine_list_each(ctx->engine, p, flags, visit_stream_mapping, &st);
                if (r < 0) {
                        json_writer_done(w);
                        if (st.emit_error == -E2BIG)
                                return reply_limit(w, "max_output_queue", ctx->limits->max_output_queue);
                        if (st.emit_error < 0)
                                return reply_internal(w, st.emit_error);
                        return engine_error(w, p, r);
                }
                json_writer_array_end(w);
                varlink_message_end(w);
                return NULL;
        }

        reply_reserve_listing(w, p->pid, p->start_time, flags);
        start = w->len;

        /* Each mapping is written as it is read: a list of 60,000 mappings first was 8 MB of
         * fresh pages per call. */
        list_part_begin(w, p);
        r = shared ? engine_list_shared(ctx->engine, p, shared, flags, visit_write_mapping, w)
                   : engine_list_each(ctx->engine, p, flags, visit_write_mapping, w);
        if (r < 0) {
                /* Drop the partial reply and its memory. */
                json_writer_done(w);
                return engine_error(w, p, r);
        }
        json_writer_array_end(w);
        varlink_message_end(w);
        reply_note_listing(p->pid, p->start_time, flags, w->len - start);
        return NULL;
}

void write_result(struct json_writer *w, uint64_t address, const struct layout_result *res, bool no_mm,
                  const struct symbol_answer *sym) {
        memmapd_write_result(w, &(struct memmapd_result) {
                .address = address,
                .mapping = res->mapping,
                .reason = no_mm ? MEMMAPD_REASON_NO_ADDRESS_SPACE : MEMMAPD_REASON_UNMAPPED,
                .has_file_offset = res->has_file_offset,
                .has_elf_vaddr = res->has_elf_vaddr,
                .file_offset = res->file_offset,
                .elf_vaddr = res->elf_vaddr,
                .symbol = sym ? sym->name : NULL,
                .symbol_offset = sym ? sym->offset : 0,
                .symbol_size_unknown = sym && sym->size_unknown,
        });
}

void write_lookup_answer(struct json_writer *w, const struct process *p, const struct layout *l, const uint64_t *addrs,
                         const struct layout_result *results, size_t n, const struct symbol_answer *syms) {
        write_process_and_mappings(w, p, &l->mappings);
        json_writer_key(w, "results");
        json_writer_array_begin(w);
        for (size_t i = 0; i < n; i++)
                write_result(w, addrs[i], &results[i], p->kernel_thread, syms ? &syms[i] : NULL);
        json_writer_array_end(w);
}

static const char *lookup(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w) {
        static const char *const known[] = { "pid", "start_time", "addresses", "build_ids", "symbols", "time_usec",
                                             NULL };
        _cleanup_(symbols_done) struct symbols syms = {};
        _cleanup_(layout_unrefp) struct layout *l = NULL, *shared = NULL;
        _cleanup_(process_freep) struct process *p = NULL;
        _cleanup_free_ struct layout_result *results = NULL;
        _cleanup_free_ uint64_t *parsed = NULL;
        struct access_decision decision;
        const struct memmapd_addresses *decoded = memmapd_call_addresses(call);
        const uint64_t *addrs;
        const char *bad, *err;
        bool build_ids, symbols, at_time, handled;
        uint64_t time_usec;
        size_t n;
        int r;

        if (!known_params_only(call->parameters, known, &bad))
                return reply_invalid_parameter(w, bad);
        if (varlink_param_bool(call->parameters, "build_ids", false, false, &build_ids) < 0)
                return reply_invalid_parameter(w, "build_ids");
        if (varlink_param_bool(call->parameters, "symbols", false, false, &symbols) < 0)
                return reply_invalid_parameter(w, "symbols");
        at_time = json_object_object_get_ex(call->parameters, "time_usec", NULL);
        if (varlink_param_u64(call->parameters, "time_usec", false, 0, &time_usec) < 0)
                return reply_invalid_parameter(w, "time_usec");
        if (decoded) {
                /* Decoded with the message, every element valid. */
                addrs = decoded->values;
                n = decoded->n;
                if (n > ctx->limits->max_addresses)
                        return reply_limit(w, "max_addresses", ctx->limits->max_addresses);
        } else {
                struct json_object *arr;

                if (!json_object_object_get_ex(call->parameters, "addresses", &arr) ||
                    !json_object_is_type(arr, json_type_array))
                        return reply_invalid_parameter(w, "addresses");
                n = json_object_array_length(arr);
                if (n > ctx->limits->max_addresses)
                        return reply_limit(w, "max_addresses", ctx->limits->max_addresses);
                parsed = malloc(MAX(n, (size_t) 1) * sizeof(uint64_t));
                if (!parsed)
                        return reply_internal(w, -ENOMEM);
                for (size_t i = 0; i < n; i++)
                        if (varlink_json_u64(json_object_array_get_idx(arr, i), &parsed[i]) < 0)
                                return reply_invalid_parameter(w, "addresses");
                addrs = parsed;
        }

        err = open_target(ctx, call->parameters, w, &p, &decision);
        if (err && is_gone_error(err)) {
                /* Gone, or another process under the pid: what was kept after an exit may answer. */
                const char *kept = retained_lookup(ctx, w, (pid_t) json_param_pid(call), json_param_start_time(call),
                                                   NULL, at_time, time_usec, addrs, n, build_ids, symbols,
                                                   &handled);

                return handled ? kept : err;
        }
        if (err)
                return err;
        if (at_time) {
                err = retained_lookup(ctx, w, p->pid, p->start_time, p, true, time_usec, addrs, n, build_ids, symbols,
                                      &handled);
                if (handled)
                        return err;
                json_writer_reset(w);
                return reply_error_simple(w, VARLINK_ERROR_INVALID_PARAMETER, "parameter", "time_usec");
        }

        r = shared_layout(ctx, p, &decision, &shared);
        if (r > 0)
                r = engine_lookup_shared(ctx->engine, p, shared, addrs, n, build_ids ? ENGINE_BUILD_IDS : 0, &l,
                                         &results);
        else if (r == 0)
                r = engine_lookup_layout(ctx->engine, p, addrs, n, build_ids ? ENGINE_BUILD_IDS : 0, &l, &results);
        if (r < 0)
                return engine_error(w, p, r);
        /* The symbols are this request's: read with this client's access, never kept in l. */
        if (symbols && (r = engine_symbolize(ctx->engine, p, l, results, n, &syms)) < 0)
                return reply_internal(w, r);

        reply_reserve_lookup(w, l->mappings.n, n);

        varlink_reply_begin(w, NULL, false);
        write_lookup_answer(w, p, l, addrs, results, n, symbols ? syms.answers : NULL);
        varlink_message_end(w);
        return NULL;
}

/* The vdso of a process: no file holds it, so the image travels in the reply (hex). */
static const char *get_vdso(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w) {
        static const char *const known[] = { "pid", "start_time", NULL };
        _cleanup_(process_freep) struct process *p = NULL;
        _cleanup_free_ uint8_t *image = NULL;
        _cleanup_free_ char *hex = NULL;
        _cleanup_(mapping_done) struct mapping m = {};
        const char *bad, *err;
        size_t size;
        int r;

        if (!known_params_only(call->parameters, known, &bad))
                return reply_invalid_parameter(w, bad);
        err = open_target(ctx, call->parameters, w, &p, NULL);
        if (err)
                return err;
        r = engine_vdso(ctx->engine, p, &m, &image);
        if (r == -ENOENT)
                return reply_pid_error(w, MEMMAPD_ERROR_NO_VDSO, p->pid);
        if (r < 0)
                return engine_error(w, p, r);
        size = m.end - m.start;
        hex = malloc(2 * size + 1);
        if (!hex)
                return reply_internal(w, -ENOMEM);

        varlink_reply_begin(w, NULL, false);
        write_process(w, p);
        json_writer_key(w, "mapping");
        write_mapping(w, &m);
        json_writer_key(w, "image_hex");
        json_writer_string(w, format_hex_bytes(image, size, hex));
        varlink_message_end(w);
        return NULL;
}

/* An error about the mapping at address: kind or message, when given, is added. */
static const char *reply_address_error(struct json_writer *w, const char *error, pid_t pid, uint64_t address,
                                       const char *key, const char *value) {
        char hex[32];

        hex[json_format_hex(address, hex)] = '\0';
        varlink_reply_begin(w, error, false);
        json_writer_key(w, "pid");
        json_writer_int(w, pid);
        json_writer_key(w, "address");
        json_writer_string(w, hex);
        if (key) {
                json_writer_key(w, key);
                json_writer_string(w, value);
        }
        varlink_message_end(w);
        return error;
}

/* The file mapped at an address, as an fd passed with the reply: a path names the file in
 * the target's mount namespace, which on the client's side may be another file. */
static const char *open_mapping_file(const struct method_context *ctx, const struct varlink_call *call,
                                     struct json_writer *w) {
        static const char *const known[] = { "pid", "start_time", "address", NULL };
        _cleanup_(process_freep) struct process *p = NULL;
        _cleanup_(layout_unrefp) struct layout *l = NULL;
        _cleanup_free_ struct layout_result *res = NULL;
        _cleanup_close_ int fd = -1;
        const struct mapping *m;
        struct json_object *v;
        const char *bad, *err;
        uint64_t address;
        int r;

        if (!known_params_only(call->parameters, known, &bad))
                return reply_invalid_parameter(w, bad);
        if (ctx->reply_fd_limit > 0)
                return reply_limit(w, "fds_in_flight", ctx->reply_fd_limit);
        if (!json_object_object_get_ex(call->parameters, "address", &v) || varlink_json_u64(v, &address) < 0)
                return reply_invalid_parameter(w, "address");
        err = open_target(ctx, call->parameters, w, &p, NULL);
        if (err)
                return err;
        r = engine_lookup_layout(ctx->engine, p, &address, 1, 0, &l, &res);
        if (r < 0)
                return engine_error(w, p, r);
        if (res[0].mapping < 0 || (size_t) res[0].mapping >= l->mappings.n)
                return reply_address_error(w, MEMMAPD_ERROR_NOT_MAPPED, p->pid, address, NULL, NULL);
        m = &l->mappings.items[res[0].mapping];
        r = engine_open_mapping_file(ctx->engine, p, m, &fd);
        if (r == -EMEDIUMTYPE)
                return reply_address_error(w, MEMMAPD_ERROR_NO_FILE, p->pid, address, "kind", mapping_kind_to_string(m->kind));
        /* map_files/ of a process that exited meanwhile is gone too. */
        if (r == -ENOENT && process_same(p->pid, p->start_time) <= 0)
                return engine_error(w, p, -ESRCH);
        /* Not the process's doing (it is there, and the client may read it): the file. */
        if (r == -ESTALE || r == -ETIMEDOUT || r == -EBUSY || r == -ENOENT || r == -ENXIO || r == -ENODEV)
                return reply_address_error(w, MEMMAPD_ERROR_FILE_UNAVAILABLE, p->pid, address, "message", strerror(-r));
        if (r < 0)
                return engine_error(w, p, r);

        varlink_reply_begin(w, NULL, false);
        write_process(w, p);
        json_writer_key(w, "mapping");
        write_mapping(w, m);
        json_writer_key(w, "fd_index");
        json_writer_int(w, 0);
        varlink_message_end(w);
        /* A oneway call gets no fd: nobody would receive it. */
        if (ctx->reply_fd)
                *ctx->reply_fd = TAKE_FD(fd);
        return NULL;
}

struct method {
        const char *name;
        bool reads_processes;           /* runs with the client's credentials */
        const char *(*func)(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w);
};

static const struct method methods[] = {
        { "org.varlink.service.GetInfo", false, get_info },
        { "org.varlink.service.GetInterfaceDescription", false, get_interface_description },
        { MEMMAPD_INTERFACE ".GetStatus", false, get_status },
        { MEMMAPD_INTERFACE ".ListMappings", true, list_mappings },
        { MEMMAPD_INTERFACE ".Lookup", true, lookup },
        { MEMMAPD_INTERFACE ".GetVdso", true, get_vdso },
        { MEMMAPD_INTERFACE ".OpenMappingFile", true, open_mapping_file },
        { MEMMAPD_INTERFACE ".FindMappings", true, find_mappings },
        { MEMMAPD_INTERFACE ".LookupMany", true, lookup_many },
        { MEMMAPD_INTERFACE ".Watch", true, method_watch },
};

static const struct method *find_method(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if (strcmp(methods[i].name, name) == 0)
                        return &methods[i];
        return NULL;
}

/* A call that meets an exec is made again, at most this often. Each attempt that meets an
 * exec ends at its first read, so the bound is cheap; it must be high, though: with a target
 * exec()ing in a loop under a sanitizer build, about one attempt in four met another exec, and
 * three retries let one call in 200 answer NoSuchProcess for a live process. Still bounded: a
 * process that exec()s without pause holds a worker for no more than this many short reads. */
#define EXEC_RETRIES_MAX 64

/* Whether the call just made answered NoSuchProcess because its target exec()ed under it: a
 * read found the mm gone, yet the pid still names the process it opened (an exec keeps the pid
 * and the start time), and no part of the reply went out. */
static bool call_met_exec(const struct method_context *ctx, const char *error) {
        return error && strcmp(error, MEMMAPD_ERROR_NO_SUCH_PROCESS) == 0 && read_found_gone.pid > 0 &&
               (!ctx->stream || ctx->stream->parts == 0) &&
               process_same(read_found_gone.pid, read_found_gone.start_time) > 0;
}

/* A thread left with a client's credentials (or with part of them) must not serve anyone
 * else: this cannot be recovered from. */
static void __attribute__((noreturn)) credentials_lost(int r) {
        log_full_errno(LOG_CRIT, r, "Cannot restore worker credentials");
        abort();
}

int method_dispatch(const struct method_context *ctx, const struct varlink_call *call, char **ret_reply,
                    size_t *ret_len, const char **ret_error) {
        _cleanup_(json_writer_done) struct json_writer w;
        const struct method *m = find_method(call->method);
        const char *error;
        char *buf;
        size_t len;
        int r;

        size_t output_max = ctx->output_max > 0 ? ctx->output_max : ctx->limits->max_output_queue;

        json_writer_init(&w, output_max);
        if (ctx->stream)
                ctx->stream->parts = 0;
        if (m && !m->reads_processes)
                error = m->func(ctx, call, &w);
        else if (m) {
                struct impersonation imp = {};

                /* The kernel decides what an unprivileged client may read: every /proc and
                 * file access of the request happens with its credentials. */
                r = ctx->client->privileged ? 0 : impersonate_begin(ctx->client, &imp);
                if (r == -ENOTRECOVERABLE)
                        credentials_lost(r);
                if (r < 0)
                        error = reply_error_simple(&w, VARLINK_ERROR_PERMISSION_DENIED, NULL, NULL);
                else {
                        read_found_gone.pid = 0;
                        /* Blocking file reads run on the file pool as this client. */
                        file_pool_set_caller(ctx->client);
                        error = m->func(ctx, call, &w);
                        for (unsigned i = 0; i < EXEC_RETRIES_MAX && call_met_exec(ctx, error); i++) {
                                /* Its maps fd (just opened, or the connection's cached one)
                                 * names the mm the target had before: again, opened afresh. */
                                if (ctx->cache)
                                        target_cache_clear(ctx->cache);
                                json_writer_reset(&w);
                                read_found_gone.pid = 0;
                                error = m->func(ctx, call, &w);
                        }
                        file_pool_set_caller(NULL);
                        r = impersonate_end(&imp);
                        if (r < 0)
                                credentials_lost(r);
                }
        } else {
                const char *dot = strrchr(call->method, '.');
                size_t ilen = dot ? (size_t) (dot - call->method) : 0;

                /* An interface we do not have is InterfaceNotFound, a method we lack in one
                 * we have is MethodNotFound. */
                if ((ilen == strlen(MEMMAPD_INTERFACE) && strncmp(call->method, MEMMAPD_INTERFACE, ilen) == 0) ||
                    (ilen == strlen("org.varlink.service") && strncmp(call->method, "org.varlink.service", ilen) == 0))
                        error = reply_error_simple(&w, VARLINK_ERROR_METHOD_NOT_FOUND, "method", call->method);
                else {
                        _cleanup_free_ char *iface = strndup(call->method, ilen);

                        error = reply_error_simple(&w, VARLINK_ERROR_INTERFACE_NOT_FOUND, "interface",
                                                   iface ? iface : "");
                }
        }

        /* A reply that did not fit (out of memory, above the output bound) is replaced by a
         * small error, so the client always hears back. */
        r = json_writer_finish(&w, &buf, &len);
        if (r < 0) {
                json_writer_reset(&w);
                if (r != -E2BIG)
                        error = reply_internal(&w, r);
                else if (ctx->output_limit)
                        error = reply_limit(&w, ctx->output_limit, ctx->output_limit_value);
                else
                        error = reply_limit(&w, "max_output_queue", output_max);
                r = json_writer_finish(&w, &buf, &len);
        }
        /* An fd goes only with the success it belongs to. */
        if ((r < 0 || error) && ctx->reply_fd) {
                closep(ctx->reply_fd);
                *ctx->reply_fd = -1;
        }
        if (r < 0)
                return r;
        *ret_reply = buf;
        *ret_len = len;
        *ret_error = error;
        return 0;
}
