/* memctl's commands (maps, lookup, modules, vdso, cat, status) and how their failures are explained. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "hex.h"
#include "libmemctl.h"
#include "memctl-cli.h"
#include "memctl-commands.h"
#include "memctl-output.h"
#include "number.h"

DEFINE_CLEANUP_FUNC(memctl_mappings *, memctl_mappings_free)
DEFINE_CLEANUP_FUNC(memctl_lookup_reply *, memctl_lookup_reply_free)
DEFINE_CLEANUP_FUNC(memctl_status *, memctl_status_free)
DEFINE_CLEANUP_FUNC(memctl_found *, memctl_found_free)
DEFINE_CLEANUP_FUNC(memctl_lookup_many_reply *, memctl_lookup_many_free)

/* ------------------------------------------------------------------ errors */

static bool is_transport_error(int r) {
        switch (r) {
        case -ENOENT: case -ECONNREFUSED: case -ECONNRESET: case -ECONNABORTED: case -EPIPE:
        case -ETIMEDOUT: case -EACCES: case -EPERM: case -ENOTCONN: case -ENOTSOCK:
        case -ENAMETOOLONG: case -ENOTDIR: case -ELOOP: case -EAGAIN: case -EPROTOTYPE:
                return true;
        default:
                return false;
        }
}

int connect_failed(const char *path, int r) {
        error("cannot connect to memmapd at %s: %s%s", path, strerror(-r),
              r == -ENOENT || r == -ECONNREFUSED ? " (is memmapd running?)" : "");
        return EXIT_UNREACHABLE;
}

/* Explains a failed call; returns the exit status. pid is 0 for calls about no process. */
int call_failed(memctl *c, const char *path, int r, pid_t pid) {
        const char *name = memctl_last_error_name(c);
        const char *s = NULL, *params;
        int64_t max = 0;

        if (!name) {
                /* Not the daemon's answer: transport or local. */
                if (r == -ETIMEDOUT) {
                        error("memmapd at %s did not answer in time", path);
                        return EXIT_UNREACHABLE;
                }
                if (r == -ENOENT || r == -ECONNREFUSED)
                        return connect_failed(path, r);
                if (is_transport_error(r)) {
                        error("connection to memmapd at %s failed: %s", path, strerror(-r));
                        return EXIT_UNREACHABLE;
                }
                if (r == -EPROTO) {
                        error("invalid reply from memmapd at %s", path);
                        return EXIT_FAIL;
                }
                if (r == -ENOMEM)
                        return oom();
                error("call failed: %s", strerror(-r));
                return EXIT_FAIL;
        }

        /* Every answer of the daemon is shown with its name and parameters: what memctl does
         * not know how to say (InternalError's message, a newer daemon's error) is not lost. */
        params = memctl_last_error_parameters(c);
        if (!params)
                params = "{}";
        switch (r) {
        case -ESRCH:
                error("no such process: %d (%s %s)", (int) pid, name, params);
                return EXIT_NO_PROCESS;
        case -EACCES:
                if (pid > 0)
                        error("permission denied for process %d (%s %s)", (int) pid, name, params);
                else
                        error("permission denied (%s %s)", name, params);
                return EXIT_PERMISSION;
        case -ESTALE:
                error("process %d changed (start time mismatch) (%s %s)", (int) pid, name, params);
                return EXIT_CHANGED;
        case -E2BIG:
                if (memctl_last_error_string(c, "limit", &s) >= 0 && memctl_last_error_int(c, "max", &max) >= 0)
                        error("request exceeds memmapd's limit %s (max %" PRIi64 ")", s, max);
                else
                        error("request exceeds a limit of memmapd (%s %s)", name, params);
                return EXIT_FAIL;
        case -EINVAL:
                if (memctl_last_error_string(c, "parameter", &s) >= 0)
                        error("memmapd rejected parameter '%s'", s);
                else
                        error("memmapd rejected the request as invalid (%s %s)", name, params);
                return EXIT_FAIL;
        case -EOPNOTSUPP:
                error("memmapd does not support this request (%s %s)", name, params);
                return EXIT_FAIL;
        case -ENXIO:
                error("nothing is mapped there in process %d (%s %s)", (int) pid, name, params);
                return EXIT_FAIL;
        case -EMEDIUMTYPE:
                error("the mapping there in process %d has no file (%s %s)", (int) pid, name, params);
                return EXIT_FAIL;
        default:
                if (strcmp(name, "io.memmapd.InternalError") == 0 && memctl_last_error_string(c, "message", &s) >= 0)
                        error("memmapd failed: %s (%s %s)", s, name, params);
                else
                        error("memmapd answered with error %s %s", name, params);
                return EXIT_FAIL;
        }
}

/* ------------------------------------------------------------------ commands */

static int call_json(struct context *ctx, const char *method, struct json_object *params,
                     pid_t pid, char **ret) {
        const char *p = params ? json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN) : NULL;
        int r;

        if (params && !p)
                return oom();
        r = memctl_call_json(ctx->c, method, p, ret);
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, pid);
        return EXIT_OK;
}

/* The parameters every per-process call takes. */
static struct json_object *process_params(pid_t pid, uint64_t start_time) {
        struct json_object *p = json_object_new_object();

        if (!p)
                return NULL;
        if (json_object_object_add(p, "pid", json_object_new_int64(pid)) < 0 ||
            (start_time != 0 && json_object_object_add(p, "start_time", json_object_new_uint64(start_time)) < 0)) {
                json_object_put(p);
                return NULL;
        }
        return p;
}

static int add_true(struct json_object *p, const char *key) {
        return json_object_object_add(p, key, json_object_new_boolean(true));
}

int cmd_maps(struct context *ctx, pid_t pid) {
        static const char *const header[] = { "START-END", "PERMS", "OFFSET", "SIZE", "BUILD-ID", "NAME" };
        static const char *const header_nobid[] = { "START-END", "PERMS", "OFFSET", "SIZE", "NAME" };
        static const bool right[] = { false, false, true, true, false, false };
        static const bool right_nobid[] = { false, false, true, true, false };
        _cleanup_(memctl_mappings_freep) memctl_mappings *m = NULL;
        bool build_ids = arg.build_ids != 0;
        uint64_t flags = 0, total = 0;
        struct table t = {
                .n_columns = build_ids ? 6 : 5,
                .header = build_ids ? header : header_nobid,
                .right = build_ids ? right : right_nobid,
        };
        size_t n;
        int r;

        if (arg.json != JSON_OFF) {
                _cleanup_json_ struct json_object *p = process_params(pid, arg.start_time);
                _cleanup_free_ char *reply = NULL;

                if (!p || (arg.exec_only && add_true(p, "executable_only") < 0) ||
                    (arg.files_only && add_true(p, "file_backed_only") < 0) ||
                    (build_ids && add_true(p, "build_ids") < 0))
                        return oom();
                r = call_json(ctx, "io.memmapd.ListMappings", p, pid, &reply);
                if (r != EXIT_OK)
                        return r;
                return print_json(reply);
        }

        if (arg.exec_only)
                flags |= MEMCTL_EXECUTABLE_ONLY;
        if (arg.files_only)
                flags |= MEMCTL_FILE_BACKED_ONLY;
        if (build_ids)
                flags |= MEMCTL_BUILD_IDS;
        r = memctl_list_mappings(ctx->c, pid, arg.start_time, flags, &m);
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, pid);

        n = memctl_mappings_count(m);
        for (size_t i = 0; i < n; i++) {
                struct memctl_mapping map = MEMCTL_MAPPING_INIT;
                _cleanup_free_ char *name = NULL;
                char size[32];

                if (memctl_mappings_get(m, i, &map) < 0)
                        continue;
                name = mapping_display_name(&map);
                if (!name)
                        goto nomem;
                total += map.end - map.start;
                if (table_addf(&t, "%012" PRIx64 "-%012" PRIx64, map.start, map.end) < 0 ||
                    table_addf(&t, "%s", map.perms) < 0 ||
                    table_addf(&t, "%08" PRIx64, map.offset) < 0 ||
                    table_addf(&t, "%s", format_size(map.end - map.start, size)) < 0 ||
                    (build_ids && table_addf(&t, "%s", build_id_display(&map)) < 0) ||
                    table_addf(&t, "%s", name) < 0)
                        goto nomem;
        }

        table_print(&t);
        table_done(&t);
        if (arg.legend) {
                struct memctl_process p = MEMCTL_PROCESS_INIT;
                char size[32];

                (void) memctl_mappings_get_process_info(m, &p);
                printf("\n%zu mapping%s, %s total%s%s\n", n, n == 1 ? "" : "s", format_size(total, size),
                       p.kernel_thread ? " (a kernel thread: no user address space)" : "",
                       p.exited ? " (exited: its executable file mappings as kept after its exit)" : "");
        }
        return EXIT_OK;

nomem:
        table_done(&t);
        return oom();
}

static int lookup_rows(const memctl_lookup_reply *l, pid_t pid, bool build_ids, struct table *t);

/* Looks up one batch; grows the table (human output) or prints the reply (JSON). Returns an
 * exit status. A batch above the daemon's max_addresses is split by libmemctl. */
static int lookup_batch(struct context *ctx, pid_t pid, uint64_t *start_time, const uint64_t *addresses,
                        size_t n, bool build_ids, struct table *t) {
        _cleanup_(memctl_lookup_reply_freep) memctl_lookup_reply *l = NULL;
        int r;

        r = memctl_lookup(ctx->c, pid, *start_time, addresses, n,
                          (build_ids ? MEMCTL_BUILD_IDS : 0) | (arg.symbols ? MEMCTL_SYMBOLS : 0), &l);
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, pid);
        (void) memctl_lookup_reply_get_process(l, NULL, start_time);
        if (arg.json != JSON_OFF)
                return print_lookup_json(l);
        return lookup_rows(l, 0, build_ids, t);
}

/* The table rows of a Lookup reply; pid > 0 adds it as the first column (lookup-many). */
static int lookup_rows(const memctl_lookup_reply *l, pid_t pid, bool build_ids, struct table *t) {
        for (size_t i = 0; i < memctl_lookup_reply_count(l); i++) {
                struct memctl_lookup_result res = MEMCTL_LOOKUP_RESULT_INIT;
                struct memctl_mapping map = MEMCTL_MAPPING_INIT;
                _cleanup_free_ char *name = NULL, *symbol = NULL;
                bool mapped;

                if (memctl_lookup_reply_get(l, i, &res) < 0)
                        return oom();
                mapped = res.mapping != MEMCTL_NO_MAPPING &&
                         memctl_lookup_reply_get_mapping(l, res.mapping, &map) >= 0;
                /* Unmapped: why, in the daemon's word ("no_address_space" for a kernel thread). */
                name = mapped ? mapping_display_name(&map) : escape(res.reason_name ? res.reason_name : "unmapped");
                if (!name)
                        return oom();
                /* Names are the file's bytes: escaped like paths. */
                if (res.symbol && !(symbol = escape(res.symbol)))
                        return oom();
                if ((pid > 0 && table_addf(t, "%d", (int) pid) < 0) || table_addf(t, "0x%" PRIx64, res.address) < 0 ||
                    (res.has_file_offset ? table_addf(t, "0x%" PRIx64, res.file_offset)
                                         : table_addf(t, "-")) < 0 ||
                    (res.has_elf_vaddr ? table_addf(t, "0x%" PRIx64, res.elf_vaddr)
                                       : table_addf(t, "-")) < 0 ||
                    (build_ids && table_addf(t, "%s", mapped ? build_id_display(&map) : "-") < 0) ||
                    (arg.symbols && (symbol ? table_addf(t, "%s+0x%" PRIx64 "%s", symbol, res.symbol_offset,
                                                         res.symbol_size_unknown ? "?" : "")
                                            : table_addf(t, "-")) < 0) ||
                    table_addf(t, "%s", name) < 0)
                        return oom();
        }
        return EXIT_OK;
}

int cmd_lookup(struct context *ctx, pid_t pid, const struct addresses *a) {
        static const bool right[] = { false, false, false, false, false, false };
        bool build_ids = arg.build_ids != 0;
        const char *header[6] = { "ADDRESS", "FILE-OFFSET", "ELF-VADDR" };
        struct table t = { .n_columns = 3, .header = header, .right = right };

        if (build_ids)
                header[t.n_columns++] = "BUILD-ID";
        if (arg.symbols)
                header[t.n_columns++] = "SYMBOL";
        header[t.n_columns++] = "PATH";
        uint64_t start_time = arg.start_time;
        size_t done = 0;
        int r;

        do {
                size_t n = MIN((size_t) LOOKUP_BATCH, a->n - done);

                r = lookup_batch(ctx, pid, &start_time, a->v + done, n, build_ids, &t);
                if (r != EXIT_OK) {
                        table_done(&t);
                        return r;
                }
                done += n;
        } while (done < a->n);

        if (arg.json == JSON_OFF)
                table_print(&t);
        table_done(&t);
        return EXIT_OK;
}

struct module {
        uint64_t start, end, inode;
        uint32_t dev_major, dev_minor;
        const char *path;       /* points into the reply: U+FFFD for bytes that are not UTF-8 */
        const char *path_exact; /* likewise: the bytes */
        const char *build_id;   /* likewise */
        bool deleted;
        bool exec;
};

/* The JSON string of s's bytes in hex; NULL when out of memory (json-c then refuses the add). */
static struct json_object *hex_string(const char *s) {
        size_t len = strlen(s);
        _cleanup_free_ char *buf = malloc(len * 2 + 1);

        return buf ? json_object_new_string(format_hex_bytes((const uint8_t *) s, len, buf)) : NULL;
}

static bool module_matches(const struct module *mod, const struct memctl_mapping *m) {
        return mod->dev_major == m->dev_major && mod->dev_minor == m->dev_minor &&
               mod->inode == m->inode && strcmp(mod->path_exact, mapping_exact_path(m)) == 0;
}

int cmd_modules(struct context *ctx, pid_t pid) {
        static const char *const header[] = { "START-END", "BUILD-ID", "PATH" };
        static const bool right[] = { false, false, false };
        _cleanup_(memctl_mappings_freep) memctl_mappings *m = NULL;
        _cleanup_free_ struct module *mods = NULL;
        _cleanup_json_ struct json_object *out = NULL;
        struct json_object *list = NULL;
        struct table t = { .n_columns = 3, .header = header, .right = right };
        size_t n, n_mods = 0;
        uint64_t start_time = 0;
        pid_t reply_pid = pid;
        int r;

        /* Not file-backed only: the vdso is a module too (an ELF image a symbolizer needs). */
        r = memctl_list_mappings(ctx->c, pid, arg.start_time, MEMCTL_BUILD_IDS, &m);
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, pid);
        (void) memctl_mappings_get_process(m, &reply_pid, &start_time);

        /* Group the mappings by file: (device, inode, path). Mappings come sorted by address
         * and a file's usually follow each other, so the last group is tried first. */
        n = memctl_mappings_count(m);
        mods = calloc(n > 0 ? n : 1, sizeof(*mods));
        if (!mods)
                return oom();
        for (size_t i = 0; i < n; i++) {
                struct memctl_mapping map = MEMCTL_MAPPING_INIT;
                struct module *mod = NULL;

                if (memctl_mappings_get(m, i, &map) < 0)
                        continue;
                if (map.kind == MEMCTL_KIND_VDSO && map.name)
                        map.path = map.name;
                if (!map.path)
                        continue;
                if (n_mods > 0 && module_matches(&mods[n_mods - 1], &map))
                        mod = &mods[n_mods - 1];
                for (size_t j = 0; !mod && j < n_mods; j++)
                        if (module_matches(&mods[j], &map))
                                mod = &mods[j];
                if (!mod) {
                        mod = &mods[n_mods++];
                        *mod = (struct module) {
                                .start = map.start, .end = map.end, .inode = map.inode,
                                .dev_major = map.dev_major, .dev_minor = map.dev_minor,
                                .path = map.path,
                                .path_exact = map.kind == MEMCTL_KIND_VDSO ? map.path : mapping_exact_path(&map),
                        };
                }
                mod->start = MIN(mod->start, map.start);
                mod->end = MAX(mod->end, map.end);
                mod->deleted = mod->deleted || map.deleted;
                mod->exec = mod->exec || (map.flags & MEMCTL_MAPPING_EXEC);
                if (!mod->build_id)
                        mod->build_id = map.build_id_hex;
        }

        if (arg.json != JSON_OFF) {
                out = json_object_new_object();
                list = json_object_new_array();
                if (!out || !list || json_object_object_add(out, "process", process_params(reply_pid, start_time)) < 0 ||
                    json_object_object_add(out, "modules", list) < 0) {
                        json_object_put(list);
                        return oom();
                }
        }

        for (size_t i = 0; i < n_mods; i++) {
                const struct module *mod = &mods[i];

                /* An ELF file has a build ID or is mapped executable; data files (fonts,
                 * locale archives, caches) have neither. */
                if (!mod->build_id && !mod->exec)
                        continue;

                if (list) {
                        struct json_object *o = json_object_new_object();
                        char a[HEX_U64_MAX], b[HEX_U64_MAX];

                        if (!o || json_object_array_add(list, o) < 0) {
                                json_object_put(o);
                                return oom();
                        }
                        if (json_object_object_add(o, "start", json_object_new_string(format_hex_u64(mod->start, a))) < 0 ||
                            json_object_object_add(o, "end", json_object_new_string(format_hex_u64(mod->end, b))) < 0 ||
                            json_object_object_add(o, "build_id", mod->build_id ? json_object_new_string(mod->build_id) : NULL) < 0 ||
                            json_object_object_add(o, "path", json_object_new_string(mod->path)) < 0 ||
                            /* The bytes of a path that is not UTF-8, as the daemon's name_hex. */
                            (strcmp(mod->path, mod->path_exact) != 0 &&
                             json_object_object_add(o, "path_hex", hex_string(mod->path_exact)) < 0) ||
                            json_object_object_add(o, "deleted", json_object_new_boolean(mod->deleted)) < 0)
                                return oom();
                } else {
                        _cleanup_free_ char *joined = NULL, *shown = NULL;

                        if (asprintf(&joined, "%s%s", mod->path_exact, mod->deleted ? " (deleted)" : "") < 0)
                                goto nomem;
                        shown = escape(joined);
                        if (!shown ||
                            table_addf(&t, "%012" PRIx64 "-%012" PRIx64, mod->start, mod->end) < 0 ||
                            table_addf(&t, "%s", mod->build_id ? mod->build_id : "-") < 0 ||
                            table_addf(&t, "%s", shown) < 0)
                                goto nomem;
                }
        }

        if (out) {
                const char *text = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN);

                return text ? print_json(text) : oom();
        }
        table_print(&t);
        table_done(&t);
        return EXIT_OK;

nomem:
        table_done(&t);
        return oom();
}

static void format_uptime(uint64_t usec, char buf[static 64]) {
        uint64_t s = usec / 1000000, d = s / 86400, h = s / 3600 % 24, min = s / 60 % 60;

        if (d > 0)
                snprintf(buf, 64, "%" PRIu64 "d %" PRIu64 "h %" PRIu64 "min", d, h, min);
        else if (h > 0)
                snprintf(buf, 64, "%" PRIu64 "h %" PRIu64 "min %" PRIu64 "s", h, min, s % 60);
        else if (min > 0)
                snprintf(buf, 64, "%" PRIu64 "min %" PRIu64 "s", min, s % 60);
        else
                snprintf(buf, 64, "%" PRIu64 ".%03" PRIu64 "s", s, usec / 1000 % 1000);
}

/* The vdso image, raw, to standard output: a file for readelf, eu-unstrip or a symbolizer. */
int cmd_vdso(struct context *ctx, pid_t pid) {
        _cleanup_free_ uint8_t *image = NULL;
        size_t size = 0;
        int r;

        if (arg.json != JSON_OFF) {
                error("vdso writes the image itself: --json does not apply");
                return EXIT_USAGE;
        }
        r = memctl_get_vdso(ctx->c, pid, arg.start_time, &image, &size);
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, pid);
        if (fwrite(image, 1, size, stdout) != size || fflush(stdout) != 0) {
                error("cannot write the image: %m");
                return EXIT_FAIL;
        }
        return EXIT_OK;
}

/* The file mapped at address, as the process sees it, to standard output. */
int cmd_cat(struct context *ctx, pid_t pid, uint64_t address) {
        _cleanup_close_ int fd = -1;
        char buf[64 * 1024];
        int r;

        if (arg.json != JSON_OFF) {
                error("cat writes the file itself: --json does not apply");
                return EXIT_USAGE;
        }
        r = memctl_open_mapping_file(ctx->c, pid, arg.start_time, address, &fd, NULL);
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, pid);
        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        error("cannot read the mapped file: %m");
                        return EXIT_FAIL;
                }
                if (n == 0)
                        break;
                if (fwrite(buf, 1, (size_t) n, stdout) != (size_t) n) {
                        error("cannot write output: %m");
                        return EXIT_FAIL;
                }
        }
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

int cmd_status(struct context *ctx) {
        _cleanup_(memctl_status_freep) memctl_status *s = NULL;
        struct memctl_status_info i = MEMCTL_STATUS_INFO_INIT;
        _cleanup_free_ char *version = NULL, *kernel = NULL, *backend = NULL;
        char uptime[64], size[32], queue[32], held[32], budget[32], budget_uid[32], layouts[32], symbols[32];
        int r;

        if (arg.json != JSON_OFF) {
                _cleanup_free_ char *reply = NULL;

                r = call_json(ctx, "io.memmapd.GetStatus", NULL, 0, &reply);
                if (r != EXIT_OK)
                        return r;
                return print_json(reply);
        }

        r = memctl_get_status(ctx->c, &s);
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, 0);
        r = memctl_status_get_info(s, &i);
        if (r < 0)
                return oom();
        version = escape(i.version);
        kernel = escape(i.kernel);
        backend = escape(i.backend);
        if (!version || !kernel || !backend)
                return oom();
        format_uptime(i.uptime_usec, uptime);

        printf("     Socket: %s\n", ctx->path);
        printf("    Version: %s\n", version);
        printf("     Kernel: %s\n", kernel);
        printf("    Backend: %s\n", backend);
        /* A daemon from before change tracking has no such fields. */
        if (i.tracking) {
                _cleanup_free_ char *tracking = escape(i.tracking);

                if (!tracking)
                        return oom();
                printf("   Tracking: %s\n", tracking);
                printf("    Layouts: %" PRIu64 " kept (%s), %" PRIu64 " hits, %" PRIu64 " misses\n",
                       i.layout_cache_entries, format_size(i.layout_cache_bytes, layouts), i.layout_cache_hits,
                       i.layout_cache_misses);
        }
        /* A daemon from before symbols says 0 for each. */
        if (i.symbol_cache_hits || i.symbol_cache_misses)
                printf("    Symbols: %s kept, %" PRIu64 " hits, %" PRIu64 " misses\n",
                       format_size(i.symbol_cache_bytes, symbols), i.symbol_cache_hits, i.symbol_cache_misses);
        printf("     Uptime: %s\n", uptime);
        printf("   Requests: %" PRIu64 " (%" PRIu64 " failed)\n", i.requests, i.errors);
        printf("  ELF cache: %" PRIu64 " entries, %" PRIu64 " hits, %" PRIu64 " misses\n",
               i.elf_cache_entries, i.elf_cache_hits, i.elf_cache_misses);
        printf("Connections: %" PRIu64 " (max %" PRIu64 ", %" PRIu64 " per user)\n",
               i.connections, i.max_connections, i.max_connections_per_uid);
        printf("     Limits: messages %s, %" PRIu64 " addresses per lookup, output queue %s,\n"
               "             JSON depth %" PRIu64 ", idle timeout %" PRIu64 "s\n",
               format_size(i.max_message_size, size), i.max_addresses,
               format_size(i.max_output_queue, queue), i.max_json_depth, i.idle_timeout_sec);
        printf("     Output: %s held (budget %s, %s per user)\n", format_size(i.output_held, held),
               format_size(i.output_budget, budget), format_size(i.output_budget_per_uid, budget_uid));
        printf(" Fair share: %" PRIu64 " oneway calls skipped, %" PRIu64 " connections parked, "
               "%" PRIu64 " slots reserved\n", i.oneway_skipped, i.parked, i.reserved_connections);
        printf("  File pool: %" PRIu64 " readers (%" PRIu64 " busy, %" PRIu64 " stuck), %" PRIu64 " timeouts, "
               "%" PRIu64 " refused\n", i.file_readers, i.file_readers_busy, i.file_readers_stuck,
               i.file_read_timeouts, i.file_reads_refused);
        return EXIT_OK;
}

/* The command name of pid, as the client sees it ("?" when it cannot read it). */
static void read_comm(pid_t pid, char *buf, size_t size) {
        char path[64];
        _cleanup_fclose_ FILE *f = NULL;

        snprintf(path, sizeof(path), "/proc/%d/comm", (int) pid);
        f = fopen(path, "re");
        if (!f || !fgets(buf, (int) size, f)) {
                snprintf(buf, size, "?");
                return;
        }
        buf[strcspn(buf, "\n")] = '\0';
}

int cmd_who(struct context *ctx, const char *path, const char *build_id, bool deleted_only) {
        static const char *const header[] = { "PID", "COMMAND", "START-END", "PERMS", "OFFSET", "NAME" };
        static const bool right[] = { true, false, false, false, true, false };
        _cleanup_(memctl_found_freep) memctl_found *found = NULL;
        struct table t = { .n_columns = 6, .header = header, .right = right };
        size_t n, total = 0;
        int r;

        if (arg.json != JSON_OFF) {
                _cleanup_json_ struct json_object *p = json_object_new_object();
                _cleanup_free_ char *reply = NULL;

                if (!p || json_object_object_add(p, path ? "path" : "build_id",
                                                 json_object_new_string(path ? path : build_id)) < 0 ||
                    (deleted_only && add_true(p, "deleted_only") < 0))
                        return oom();
                r = call_json(ctx, "io.memmapd.FindMappings", p, 0, &reply);
                if (r != EXIT_OK)
                        return r;
                return print_json(reply);
        }

        r = memctl_find_mappings(ctx->c, path, build_id, deleted_only ? MEMCTL_DELETED_ONLY : 0, &found);
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, 0);
        n = memctl_found_count(found);
        for (size_t i = 0; i < n; i++) {
                const memctl_mappings *m = memctl_found_get(found, i);
                struct memctl_process p = MEMCTL_PROCESS_INIT;
                char comm[64];

                if (memctl_mappings_get_process_info(m, &p) < 0)
                        continue;
                read_comm(p.pid, comm, sizeof(comm));
                for (size_t k = 0; k < memctl_mappings_count(m); k++) {
                        struct memctl_mapping map = MEMCTL_MAPPING_INIT;
                        _cleanup_free_ char *name = NULL, *c = NULL;

                        if (memctl_mappings_get(m, k, &map) < 0)
                                continue;
                        name = mapping_display_name(&map);
                        c = escape(comm);
                        if (!name || !c || table_addf(&t, "%d", (int) p.pid) < 0 || table_addf(&t, "%s", c) < 0 ||
                            table_addf(&t, "%012" PRIx64 "-%012" PRIx64, map.start, map.end) < 0 ||
                            table_addf(&t, "%s", map.perms) < 0 || table_addf(&t, "%08" PRIx64, map.offset) < 0 ||
                            table_addf(&t, "%s", name) < 0) {
                                table_done(&t);
                                return oom();
                        }
                        total++;
                }
        }
        table_print(&t);
        table_done(&t);
        if (arg.legend)
                printf("\n%zu process%s, %zu mapping%s\n", n, n == 1 ? "" : "es", total, total == 1 ? "" : "s");
        return EXIT_OK;
}

int cmd_lookup_many(struct context *ctx, const struct memctl_lookup_group *groups, size_t n) {
        static const char *const header[] = { "PID", "ADDRESS", "FILE-OFFSET", "ELF-VADDR", "BUILD-ID", "PATH" };
        static const char *const header_nobid[] = { "PID", "ADDRESS", "FILE-OFFSET", "ELF-VADDR", "PATH" };
        static const bool right[] = { true, false, false, false, false, false };
        _cleanup_(memctl_lookup_many_freep) memctl_lookup_many_reply *many = NULL;
        bool build_ids = arg.build_ids != 0;
        struct table t = {
                .n_columns = build_ids ? 6 : 5,
                .header = build_ids ? header : header_nobid,
                .right = right,
        };
        int r;

        r = memctl_lookup_many(ctx->c, groups, n, build_ids ? MEMCTL_BUILD_IDS : 0, &many);
        if (r < 0)
                return call_failed(ctx->c, ctx->path, r, 0);
        for (size_t i = 0; i < n; i++) {
                const char *err = NULL;
                const memctl_lookup_reply *l = memctl_lookup_many_get(many, i, &err);

                if (l && arg.json != JSON_OFF)
                        r = print_lookup_json(l);
                else if (l)
                        r = lookup_rows(l, groups[i].pid, build_ids, &t);
                else if (arg.json != JSON_OFF)
                        r = printf("{\"pid\":%d,\"error\":\"%s\"}\n", (int) groups[i].pid, err ? err : "") < 0 ? EXIT_FAIL : EXIT_OK;
                else
                        /* A group that failed: its error in the path's column. */
                        r = table_addf(&t, "%d", (int) groups[i].pid) < 0 || table_addf(&t, "-") < 0 ||
                                            table_addf(&t, "-") < 0 || table_addf(&t, "-") < 0 ||
                                            (build_ids && table_addf(&t, "-") < 0) ||
                                            table_addf(&t, "%s", err ? err : "?") < 0
                                    ? oom()
                                    : EXIT_OK;
                if (r != EXIT_OK) {
                        table_done(&t);
                        return r;
                }
        }
        if (arg.json == JSON_OFF)
                table_print(&t);
        table_done(&t);
        return EXIT_OK;
}
