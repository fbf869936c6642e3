/* libmemctl: the public API of the io.memmapd client library (ListMappings, Lookup, GetStatus, raw calls). */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "json-writer.h"
#include "libmemctl.h"
#include "number.h"
#include "varlink.h"
#include "libmemctl-internal.h"

/* ------------------------------------------------------------------ ListMappings */

#define LIST_FLAGS (MEMCTL_EXECUTABLE_ONLY | MEMCTL_FILE_BACKED_ONLY | MEMCTL_BUILD_IDS)

static void write_process(struct json_writer *w, pid_t pid, uint64_t start_time) {
        json_writer_key(w, "pid");
        json_writer_int(w, pid);
        if (start_time != 0) {
                json_writer_key(w, "start_time");
                json_writer_uint(w, start_time);
        }
}

static void write_flag(struct json_writer *w, uint64_t flags, uint64_t flag, const char *key) {
        if (flags & flag) {
                json_writer_key(w, key);
                json_writer_bool(w, true);
        }
}

int memctl_list_mappings(memctl *c, pid_t pid, uint64_t start_time, uint64_t flags,
                         memctl_mappings **ret) {
        struct json_writer w;
        struct json_object *params = NULL;
        /* Streamed: large listings come in parts, each decoded while the daemon writes the
         * next. A daemon that does not stream answers in one message, which is read alike. */
        struct fast_decode fast = { .pid = pid, .start_time = start_time, .more = true };
        memctl_mappings *m;
        int r;

        if (c)
                error_clear(c); /* also when the call fails before it is sent */
        if (!c || !ret || pid <= 0 || (flags & ~LIST_FLAGS) || start_time > INT64_MAX)
                return -EINVAL;

        json_writer_init(&w, REQUEST_SIZE_MAX);
        varlink_call_begin(&w, "io.memmapd.ListMappings", true, false);
        write_process(&w, pid, start_time);
        write_flag(&w, flags, MEMCTL_EXECUTABLE_ONLY, "executable_only");
        write_flag(&w, flags, MEMCTL_FILE_BACKED_ONLY, "file_backed_only");
        write_flag(&w, flags, MEMCTL_BUILD_IDS, "build_ids");
        r = call_writer(c, &w, &fast, &params);
        json_writer_done(&w);
        if (r < 0) {
                fast_decode_done(&fast);
                return r;
        }

        m = calloc(1, sizeof(*m));
        if (!m) {
                json_object_put(params);
                fast_decode_done(&fast);
                return -ENOMEM;
        }
        if (fast.done) {
                m->table = fast.table;
                *ret = m;
                return 0;
        }
        r = mapping_table_parse(params, pid, start_time, &m->table);
        if (r < 0)
                return memctl_mappings_free(m), r;
        *ret = m;
        return 0;
}

size_t memctl_mappings_count(const memctl_mappings *m) {
        return m ? m->table.n : 0;
}

int memctl_mappings_get(const memctl_mappings *m, size_t index, struct memctl_mapping *ret) {
        if (!m)
                return -EINVAL;
        return mapping_table_get(&m->table, index, ret);
}

int memctl_mappings_get_process(const memctl_mappings *m, pid_t *ret_pid, uint64_t *ret_start_time) {
        if (!m)
                return -EINVAL;
        return process_get(&m->table, ret_pid, ret_start_time);
}

int memctl_mappings_get_process_info(const memctl_mappings *m, struct memctl_process *ret) {
        if (!m)
                return -EINVAL;
        return process_info_get(&m->table, ret);
}

memctl_mappings *memctl_mappings_free(memctl_mappings *m) {
        if (m) {
                mapping_table_done(&m->table);
                free(m);
        }
        return NULL;
}

/* ------------------------------------------------------------------ Lookup */

static int parse_result(struct json_object *o, uint64_t address, struct mapping_table *t,
                        struct memctl_lookup_result *ret) {
        struct memmapd_result_text res;
        int r;

        if ((r = memmapd_result_from_json(o, &res)) < 0 || (r = result_from_text(&t->arena, &res, address, ret)) < 0)
                return r;
        /* An index in range, of a mapping that does cover the address. */
        if (ret->mapping != MEMCTL_NO_MAPPING &&
            (ret->mapping >= t->n || address < t->items[ret->mapping].start || address >= t->items[ret->mapping].end))
                return -EPROTO;
        return 0;
}

/* The Lookup request, formatted straight into c->request: through the JSON writer, a call
 * per address was a tenth of the client's time on a large Lookup. The same text as the
 * writer made (tests/integration/test-libmemctl.c compares), within the same bound (-E2BIG). *ret_len
 * counts the NUL terminator. */
static int lookup_request(memctl *c, pid_t pid, uint64_t start_time, const uint64_t *addresses, size_t n,
                          uint64_t flags, size_t *ret_len) {
        static const char head[] = "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":";
        static const char start_key[] = ",\"start_time\":";
        static const char addresses_key[] = ",\"addresses\":[";
        static const char build_ids[] = ",\"build_ids\":true";
        static const char symbols[] = ",\"symbols\":true";
        char pid_text[20], start_text[20];
        size_t pid_len, start_len = 0, len;
        char *p;

        pid_len = json_format_uint((uint64_t) pid, pid_text);
        if (start_time != 0)
                start_len = json_format_uint(start_time, start_text);
        len = sizeof(head) - 1 + pid_len + (start_time != 0 ? sizeof(start_key) - 1 + start_len : 0) +
              sizeof(addresses_key) - 1 + 1 + (flags & MEMCTL_BUILD_IDS ? sizeof(build_ids) - 1 : 0) +
              (flags & MEMCTL_SYMBOLS ? sizeof(symbols) - 1 : 0) + 2;
        /* Each address: "0x", its digits, quotes and a comma (one comma fewer than addresses). */
        for (size_t i = 0; i < n && len <= REQUEST_SIZE_MAX; i++)
                len += (addresses[i] ? (size_t) (67 - __builtin_clzll(addresses[i])) / 4 : 1) + 4 + (i > 0);
        if (len > REQUEST_SIZE_MAX)
                return -E2BIG;

        if (c->request_allocated < len + 1) {
                p = realloc(c->request, len + 1);
                if (!p)
                        return -ENOMEM;
                c->request = p;
                c->request_allocated = len + 1;
        }

        p = mempcpy(c->request, head, sizeof(head) - 1);
        p = mempcpy(p, pid_text, pid_len);
        if (start_time != 0) {
                p = mempcpy(p, start_key, sizeof(start_key) - 1);
                p = mempcpy(p, start_text, start_len);
        }
        p = mempcpy(p, addresses_key, sizeof(addresses_key) - 1);
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        *p++ = ',';
                *p++ = '"';
                p += json_format_hex(addresses[i], p);
                *p++ = '"';
        }
        *p++ = ']';
        if (flags & MEMCTL_BUILD_IDS)
                p = mempcpy(p, build_ids, sizeof(build_ids) - 1);
        if (flags & MEMCTL_SYMBOLS)
                p = mempcpy(p, symbols, sizeof(symbols) - 1);
        *p++ = '}';
        *p++ = '}';
        *p++ = 0;
        *ret_len = (size_t) (p - c->request);
        return 0;
}

int lookup_reply_parse(struct json_object *params, pid_t pid, uint64_t start_time, const uint64_t *addresses,
                       size_t n_addresses, memctl_lookup_reply *l) {
        struct json_object *a;
        int r;

        r = mapping_table_parse(params, pid, start_time, &l->table);
        if (r < 0)
                return r;
        a = memmapd_json_member(params, "results");
        if (!a || !json_object_is_type(a, json_type_array) || json_object_array_length(a) != n_addresses)
                return -EPROTO;
        /* One array for all results: no allocation per address. */
        l->results = calloc(n_addresses > 0 ? n_addresses : 1, sizeof(*l->results));
        if (!l->results)
                return -ENOMEM;
        for (size_t i = 0; i < n_addresses; i++) {
                r = parse_result(json_object_array_get_idx(a, i), addresses[i], &l->table, &l->results[i]);
                if (r < 0)
                        return r;
        }
        l->n_results = n_addresses;
        /* The decoded results need nothing from the JSON tree: free that part of it now. */
        json_object_object_del(params, "results");
        return 0;
}

static int lookup_once(memctl *c, pid_t pid, uint64_t start_time, const uint64_t *addresses,
                       size_t n_addresses, uint64_t flags, memctl_lookup_reply **ret) {
        struct json_object *params = NULL;
        size_t len;
        struct fast_decode fast = {
                .lookup = true, .pid = pid, .start_time = start_time,
                .addresses = addresses, .n_addresses = n_addresses,
        };
        memctl_lookup_reply *l;
        int r;

        if (c)
                error_clear(c); /* also when the call fails before it is sent */
        if (!c || !ret || pid <= 0 || (flags & ~(MEMCTL_BUILD_IDS | MEMCTL_SYMBOLS)) || start_time > INT64_MAX ||
            (!addresses && n_addresses > 0))
                return -EINVAL;

        r = lookup_request(c, pid, start_time, addresses, n_addresses, flags, &len);
        if (r >= 0)
                r = call(c, c->request, len, &fast, &params);
        if (c->request_allocated > BUFFER_KEEP_MAX) {
                free(c->request);
                c->request = NULL;
                c->request_allocated = 0;
        }
        if (r < 0) {
                fast_decode_done(&fast);
                return r;
        }

        l = calloc(1, sizeof(*l));
        if (!l) {
                json_object_put(params);
                fast_decode_done(&fast);
                return -ENOMEM;
        }
        if (fast.done) {
                l->table = fast.table;
                l->results = fast.results;
                l->n_results = n_addresses;
                *ret = l;
                return 0;
        }
        r = lookup_reply_parse(params, pid, start_time, addresses, n_addresses, l);
        if (r < 0)
                return memctl_lookup_reply_free(l), r;
        *ret = l;
        return 0;
}

/* A mapping of one part of a split lookup, for merging. */
struct part_mapping {
        const struct memctl_mapping *m;
        size_t part, index;
};

static int part_mapping_compare(const void *a, const void *b) {
        const struct part_mapping *x = a, *y = b;

        if (x->m->start != y->m->start)
                return x->m->start < y->m->start ? -1 : 1;
        /* Stable: the earlier part first. */
        return x->part < y->part ? -1 : x->part > y->part;
}

static bool same_mapping(const struct memctl_mapping *a, const struct memctl_mapping *b) {
        return a->start == b->start && a->end == b->end && a->offset == b->offset && a->inode == b->inode &&
               a->dev_major == b->dev_major && a->dev_minor == b->dev_minor && a->flags == b->flags;
}

/* One reply out of the parts of a split batch, as if the daemon had answered it at once:
 * each distinct mapping once, in address order, and the results in the order asked. Takes
 * the parts (freed with the reply, also on failure). */
static int lookup_merge(memctl_lookup_reply **parts, size_t n_parts, size_t n_addresses, memctl_lookup_reply **ret) {
        _cleanup_free_ struct part_mapping *all = NULL;
        _cleanup_free_ size_t **remap = NULL;
        memctl_lookup_reply *l;
        size_t total = 0, k = 0, done = 0;
        int r = -ENOMEM;

        l = calloc(1, sizeof(*l));
        if (!l) {
                for (size_t i = 0; i < n_parts; i++)
                        memctl_lookup_reply_free(parts[i]);
                free(parts);
                return -ENOMEM;
        }
        l->parts = parts;
        l->n_parts = n_parts;
        l->table.pid = parts[0]->table.pid;
        l->table.start_time = parts[0]->table.start_time;
        l->table.kernel_thread = parts[0]->table.kernel_thread;
        l->table.exited = parts[0]->table.exited;

        for (size_t i = 0; i < n_parts; i++)
                total += parts[i]->table.n;
        all = calloc(MAX(total, (size_t) 1), sizeof(*all));
        remap = calloc(n_parts, sizeof(*remap));
        l->table.items = calloc(MAX(total, (size_t) 1), sizeof(*l->table.items));
        l->results = calloc(MAX(n_addresses, (size_t) 1), sizeof(*l->results));
        if (!all || !remap || !l->table.items || !l->results)
                goto fail;
        l->table.allocated = MAX(total, (size_t) 1);
        for (size_t i = 0; i < n_parts; i++) {
                remap[i] = calloc(MAX(parts[i]->table.n, (size_t) 1), sizeof(size_t));
                if (!remap[i])
                        goto fail;
                for (size_t j = 0; j < parts[i]->table.n; j++)
                        all[k++] = (struct part_mapping) { &parts[i]->table.items[j], i, j };
        }
        qsort(all, total, sizeof(*all), part_mapping_compare);
        for (size_t i = 0; i < total; i++) {
                if (l->table.n == 0 || !same_mapping(&l->table.items[l->table.n - 1], all[i].m))
                        l->table.items[l->table.n++] = *all[i].m;
                remap[all[i].part][all[i].index] = l->table.n - 1;
        }
        for (size_t i = 0; i < n_parts; i++)
                for (size_t j = 0; j < parts[i]->n_results; j++) {
                        struct memctl_lookup_result res = parts[i]->results[j];

                        if (done >= n_addresses) {
                                r = -EPROTO;
                                goto fail;
                        }
                        if (res.mapping != MEMCTL_NO_MAPPING)
                                res.mapping = remap[i][res.mapping];
                        l->results[done++] = res;
                }
        l->n_results = done;
        r = done == n_addresses ? 0 : -EPROTO;
fail:
        if (remap)
                for (size_t i = 0; i < n_parts; i++)
                        free(remap[i]);
        if (r < 0) {
                memctl_lookup_reply_free(l);
                return r;
        }
        *ret = l;
        return 0;
}

/* Whether the last call was refused for more than max_addresses addresses: the daemon's
 * max then, else 0. */
static uint64_t refused_max_addresses(const memctl *c, size_t n) {
        const char *limit = NULL;
        int64_t max = 0;

        if (!c->error_name || strcmp(c->error_name, "io.memmapd.LimitExceeded") != 0 ||
            memctl_last_error_string(c, "limit", &limit) < 0 || strcmp(limit, "max_addresses") != 0 ||
            memctl_last_error_int(c, "max", &max) < 0 || max <= 0 || (uint64_t) max >= n)
                return 0;
        return (uint64_t) max;
}

/* Rounds of splitting: the daemon may lower its limit (a restart with another config)
 * between the parts; each round needs a smaller limit, so this is a bound only. */
#define LOOKUP_SPLIT_ROUNDS 4

int memctl_lookup(memctl *c, pid_t pid, uint64_t start_time, const uint64_t *addresses,
                  size_t n_addresses, uint64_t flags, memctl_lookup_reply **ret) {
        int r;

        if (!c || !ret)
                return lookup_once(c, pid, start_time, addresses, n_addresses, flags, ret);

        for (unsigned round = 0; round < LOOKUP_SPLIT_ROUNDS; round++) {
                memctl_lookup_reply **parts;
                uint64_t pinned = start_time, max = c->max_addresses;
                size_t n_parts, batch;

                if (max == 0 || max >= n_addresses) {
                        r = lookup_once(c, pid, start_time, addresses, n_addresses, flags, ret);
                        if (r != -E2BIG || (max = refused_max_addresses(c, n_addresses)) == 0)
                                return r;
                        /* Learned once per connection: later large batches split at once. */
                        c->max_addresses = max;
                }

                batch = (size_t) max;
                n_parts = n_addresses / batch + (n_addresses % batch != 0);
                parts = calloc(n_parts, sizeof(*parts));
                if (!parts)
                        return -ENOMEM;
                r = 0;
                for (size_t i = 0; i < n_parts && r >= 0; i++) {
                        size_t off = i * batch;

                        r = lookup_once(c, pid, pinned, addresses + off, MIN(batch, n_addresses - off), flags,
                                        &parts[i]);
                        /* Every part about the process the first part found. */
                        if (r >= 0 && i == 0)
                                pinned = parts[0]->table.start_time;
                }
                if (r >= 0)
                        return lookup_merge(parts, n_parts, n_addresses, ret);
                for (size_t i = 0; i < n_parts; i++)
                        memctl_lookup_reply_free(parts[i]);
                free(parts);
                if (r != -E2BIG || (max = refused_max_addresses(c, batch)) == 0)
                        return r;
                c->max_addresses = max;
        }
        return -E2BIG;
}

size_t memctl_lookup_reply_count(const memctl_lookup_reply *l) {
        return l ? l->n_results : 0;
}

int memctl_lookup_reply_get(const memctl_lookup_reply *l, size_t index, struct memctl_lookup_result *ret) {
        if (!l || !ret)
                return -EINVAL;
        if (index >= l->n_results)
                return -ERANGE;
        return copy_sized(ret, &l->results[index], sizeof(l->results[index]), LOOKUP_RESULT_SIZE_0_1);
}

size_t memctl_lookup_reply_mapping_count(const memctl_lookup_reply *l) {
        return l ? l->table.n : 0;
}

int memctl_lookup_reply_get_mapping(const memctl_lookup_reply *l, size_t mapping_index,
                                    struct memctl_mapping *ret) {
        if (!l)
                return -EINVAL;
        return mapping_table_get(&l->table, mapping_index, ret);
}

int memctl_lookup_reply_get_process(const memctl_lookup_reply *l, pid_t *ret_pid, uint64_t *ret_start_time) {
        if (!l)
                return -EINVAL;
        return process_get(&l->table, ret_pid, ret_start_time);
}

int memctl_lookup_reply_get_process_info(const memctl_lookup_reply *l, struct memctl_process *ret) {
        if (!l)
                return -EINVAL;
        return process_info_get(&l->table, ret);
}

memctl_lookup_reply *memctl_lookup_reply_free(memctl_lookup_reply *l) {
        if (l) {
                mapping_table_done(&l->table);
                free(l->results);
                for (size_t i = 0; i < l->n_parts; i++)
                        memctl_lookup_reply_free(l->parts[i]);
                free(l->parts);
                free(l);
        }
        return NULL;
}

/* ------------------------------------------------------------------ GetStatus */

static int parse_status(struct json_object *params, struct memctl_status_info *s) {
        struct memmapd_status st;
        int r;

        r = memmapd_status_from_json(params, &st);
        if (r < 0)
                return r;
        *s = (struct memctl_status_info) {
                .size = sizeof(*s),
                .version = st.version,
                .kernel = st.kernel,
                .backend = st.backend,
                .uptime_usec = st.uptime_usec,
                .requests = st.requests,
                .errors = st.errors,
                .elf_cache_hits = st.elf_cache_hits,
                .elf_cache_misses = st.elf_cache_misses,
                .elf_cache_entries = st.elf_cache_entries,
                .connections = st.connections,
                .max_message_size = st.max_message_size,
                .max_addresses = st.max_addresses,
                .max_connections = st.max_connections,
                .max_connections_per_uid = st.max_connections_per_uid,
                .max_output_queue = st.max_output_queue,
                .idle_timeout_sec = st.idle_timeout_sec,
                .max_json_depth = st.max_json_depth,
                .oneway_skipped = st.oneway_skipped,
                .output_held = st.output_held,
                .parked = st.parked,
                .reserved_connections = st.reserved_connections,
                .output_budget = st.output_budget,
                .output_budget_per_uid = st.output_budget_per_uid,
                .file_readers = st.file_readers,
                .file_readers_busy = st.file_readers_busy,
                .file_readers_stuck = st.file_readers_stuck,
                .file_read_timeouts = st.file_read_timeouts,
                .file_reads_refused = st.file_reads_refused,
                .tracking = st.tracking,
                .layout_cache_hits = st.layout_cache_hits,
                .layout_cache_misses = st.layout_cache_misses,
                .layout_cache_entries = st.layout_cache_entries,
                .layout_cache_bytes = st.layout_cache_bytes,
                .symbol_cache_hits = st.symbol_cache_hits,
                .symbol_cache_misses = st.symbol_cache_misses,
                .symbol_cache_bytes = st.symbol_cache_bytes,
        };
        return 0;
}

int memctl_get_status(memctl *c, memctl_status **ret) {
        struct json_writer w;
        struct json_object *params = NULL;
        memctl_status *s;
        int r;

        if (c)
                error_clear(c); /* also when the call fails before it is sent */
        if (!c || !ret)
                return -EINVAL;

        json_writer_init(&w, REQUEST_SIZE_MAX);
        varlink_call_begin(&w, "io.memmapd.GetStatus", false, false);
        r = call_writer(c, &w, NULL, &params);
        json_writer_done(&w);
        if (r < 0)
                return r;

        s = calloc(1, sizeof(*s));
        if (!s) {
                json_object_put(params);
                return -ENOMEM;
        }
        s->parameters = params;
        r = parse_status(params, &s->info);
        if (r < 0)
                return memctl_status_free(s), r;
        *ret = s;
        return 0;
}

int memctl_status_get_info(const memctl_status *s, struct memctl_status_info *ret) {
        if (!s || !ret)
                return -EINVAL;
        return copy_sized(ret, &s->info, sizeof(s->info), STATUS_INFO_SIZE_0_1);
}

memctl_status *memctl_status_free(memctl_status *s) {
        if (s) {
                json_object_put(s->parameters);
                free(s);
        }
        return NULL;
}

/* ------------------------------------------------------------------ raw calls */

/* Parses text that must be exactly one JSON object (whitespace around it allowed). */
static int parse_object(const char *text, struct json_object **ret) {
        struct json_tokener *tok;
        struct json_object *o;
        size_t len = strlen(text), end;

        tok = json_tokener_new_ex(VARLINK_JSON_DEPTH_DEFAULT);
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, text, (int) MIN(len, (size_t) INT_MAX));
        end = json_tokener_get_parse_end(tok);
        if (json_tokener_get_error(tok) != json_tokener_success || len > INT_MAX ||
            !json_object_is_type(o, json_type_object) || text[end + strspn(text + end, " \t\r\n")]) {
                json_object_put(o);
                json_tokener_free(tok);
                return -EINVAL;
        }
        json_tokener_free(tok);
        *ret = o;
        return 0;
}

/* The vdso is a few pages: a bound on what a reply may make us allocate. */
#define VDSO_IMAGE_MAX (256 * 1024)

static int unhex(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int memctl_get_vdso(memctl *c, pid_t pid, uint64_t start_time, uint8_t **ret_image, size_t *ret_size) {
        _cleanup_json_ struct json_object *params = NULL;
        _cleanup_free_ uint8_t *image = NULL;
        struct json_object *mapping;
        uint64_t start, end, reply_start_time;
        pid_t reply_pid;
        const char *hex, *s;
        struct json_writer w;
        size_t len;
        int r;

        if (c)
                error_clear(c); /* also when the call fails before it is sent */
        if (!c || pid <= 0 || start_time > INT64_MAX || !ret_image || !ret_size)
                return -EINVAL;

        json_writer_init(&w, REQUEST_SIZE_MAX);
        varlink_call_begin(&w, "io.memmapd.GetVdso", false, false);
        json_writer_key(&w, "pid");
        json_writer_int(&w, pid);
        if (start_time > 0) {
                json_writer_key(&w, "start_time");
                json_writer_uint(&w, start_time);
        }
        r = call_writer(c, &w, NULL, &params);
        json_writer_done(&w);
        if (r < 0)
                return r;

        /* Hostile until checked: the image is the mapping's size, in hex, and bounded. */
        if (parse_process(params, pid, start_time, &reply_pid, &reply_start_time, NULL) < 0)
                return -EPROTO;
        mapping = memmapd_json_member(params, "mapping");
        if (!mapping || !json_object_is_type(mapping, json_type_object) || memmapd_json_get_string(mapping, "start", true, &s) < 0 ||
            parse_u64(s, &start) < 0 || memmapd_json_get_string(mapping, "end", true, &s) < 0 || parse_u64(s, &end) < 0 ||
            end <= start || end - start > VDSO_IMAGE_MAX || memmapd_json_get_string(params, "image_hex", true, &hex) < 0)
                return -EPROTO;
        len = strlen(hex);
        if (len != 2 * (end - start))
                return -EPROTO;
        image = malloc(len / 2);
        if (!image)
                return -ENOMEM;
        for (size_t i = 0; i < len / 2; i++) {
                int hi = unhex(hex[2 * i]), lo = unhex(hex[2 * i + 1]);

                if (hi < 0 || lo < 0)
                        return -EPROTO;
                image[i] = (uint8_t) (hi << 4 | lo);
        }
        *ret_size = len / 2;
        *ret_image = TAKE_PTR(image);
        return 0;
}

int memctl_open_mapping_file(memctl *c, pid_t pid, uint64_t start_time, uint64_t address, int *ret_fd,
                             memctl_mappings **ret_mapping) {
        _cleanup_json_ struct json_object *params = NULL;
        _cleanup_close_ int fd = -1;
        memctl_mappings *m = NULL;
        struct memctl_mapping *item;
        struct json_writer w;
        struct stat st;
        uint64_t index;
        int r;

        if (c)
                error_clear(c); /* also when the call fails before it is sent */
        if (!c || pid <= 0 || start_time > INT64_MAX || !ret_fd)
                return -EINVAL;

        json_writer_init(&w, REQUEST_SIZE_MAX);
        varlink_call_begin(&w, "io.memmapd.OpenMappingFile", false, false);
        write_process(&w, pid, start_time);
        json_writer_key(&w, "address");
        json_writer_hex(&w, address);
        c->passed_fd = &fd;
        r = call_writer(c, &w, NULL, &params);
        c->passed_fd = NULL;
        json_writer_done(&w);
        if (r < 0)
                return r;

        /* Hostile until checked: one mapping, covering address, whose regular file the fd is. */
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->table.items = calloc(1, sizeof(*m->table.items));
        m->table.parameters = TAKE_PTR(params);
        if (!m->table.items)
                r = -ENOMEM;
        else if (parse_process(m->table.parameters, pid, start_time, &m->table.pid, &m->table.start_time,
                               &m->table.kernel_thread) < 0 ||
                 memmapd_json_get_uint(m->table.parameters, "fd_index", true, &index) < 0 || index != 0 ||
                 !memmapd_json_member(m->table.parameters, "mapping") ||
                 parse_mapping(memmapd_json_member(m->table.parameters, "mapping"), &m->table.arena, &m->table.items[0]) < 0)
                r = -EPROTO;
        if (r >= 0) {
                m->table.n = m->table.allocated = 1;
                item = &m->table.items[0];
                if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_ino != item->inode ||
                    major(st.st_dev) != item->dev_major || minor(st.st_dev) != item->dev_minor ||
                    address < item->start || address >= item->end)
                        r = -EPROTO;
        }
        if (r < 0) {
                memctl_mappings_free(m);
                return r;
        }
        *ret_fd = TAKE_FD(fd);
        if (ret_mapping)
                *ret_mapping = m;
        else
                memctl_mappings_free(m);
        return 0;
}

int memctl_call_json(memctl *c, const char *method, const char *parameters_json, char **ret_reply_json) {
        _cleanup_json_ struct json_object *in = NULL;
        _cleanup_json_ struct json_object *out = NULL;
        struct json_writer w;
        char *text;
        int r;

        if (c)
                error_clear(c); /* also when the call fails before it is sent */
        if (!c || !method || !*method || !ret_reply_json)
                return -EINVAL;
        if (parameters_json) {
                r = parse_object(parameters_json, &in);
                if (r < 0)
                        return r;
        }

        json_writer_init(&w, REQUEST_SIZE_MAX);
        varlink_call_begin(&w, method, false, false);
        if (in) {
                json_object_object_foreach(in, key, value) {
                        const char *v = json_object_to_json_string_ext(value, JSON_FLAGS);

                        json_writer_key(&w, key);
                        json_writer_raw(&w, v, strlen(v));
                }
        }
        r = call_writer(c, &w, NULL, &out);
        json_writer_done(&w);
        if (r < 0)
                return r;

        text = strdup(json_object_to_json_string_ext(out, JSON_FLAGS));
        if (!text)
                return -ENOMEM;
        *ret_reply_json = text;
        return 0;
}

