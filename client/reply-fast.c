/* libmemctl's direct decoding of ListMappings and Lookup replies, on proto/'s JSON reader, into the public structs. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json-reader.h"
#include "libmemctl-internal.h"
#include "memmapd-codec.h"
#include "number.h"

/* The successful replies of ListMappings and Lookup are read where the frame reader holds
 * them, writing nothing there: the strings a result keeps are copied to its arena, everything
 * else (keys, addresses, numbers, permissions) is read from the text as it is. A reply of
 * 60,000 mappings costs a few allocations instead of a json-c tree (decoding through json-c
 * was three quarters of a 4,435-address Lookup's time; see BENCHMARKS.md) or a copy of the
 * message (a tenth of a large listing's time, most of it page faults).
 * It never decides alone that a reply is bad: whatever it does not accept (an error reply,
 * and anything outside the reader's subset, or a known member twice) goes to the general
 * decoder (varlink_reply_parse() and the get_*() checks), which then answers as it always
 * did, from the untouched message. What it accepts, the general decoder accepts with the
 * same result. */

/* A string kept in the arena, by the text it was decoded from: consecutive mappings of one
 * file repeat their name, path and build ID, and keep one copy. */
struct jmemo {
        const char *raw;
        size_t raw_len;
        const char *copy;
        const uint8_t *build_id;
        size_t build_id_size;
};

struct jreader {
        struct json_reader r;
        struct arena_chunk **arena;     /* where kept strings go */
        struct jmemo name, build_id;
};

/* A string the result keeps: decoded into the arena, or the copy made of the same text
 * last time (memo). */
static int keep_text(struct jreader *j, struct jmemo *memo, const struct memmapd_text *t, const char **ret) {
        char *copy;

        if (memo->copy && memo->raw_len == t->len && memcmp(memo->raw, t->raw, t->len) == 0) {
                *ret = memo->copy;
                return 1;
        }
        copy = arena_alloc(j->arena, t->len + 1);
        if (!copy)
                return -ENOMEM;
        (void) json_reader_copy_string(t->raw, t->len, t->escaped, copy);
        *memo = (struct jmemo) { .raw = t->raw, .raw_len = t->len, .copy = copy };
        *ret = copy;
        return 1;
}

/* A string member the result keeps: 1, 0 for null. */
static int j_get_kept(struct jreader *j, struct jmemo *memo, const char **ret) {
        struct memmapd_text t;
        int r;

        r = json_reader_get_raw(&j->r, &t.raw, &t.len, &t.escaped);
        if (r <= 0)
                return r;
        return keep_text(j, memo, &t, ret);
}

enum {
        M_START = 1u << 0, M_END = 1u << 1, M_OFFSET = 1u << 2, M_PERMS = 1u << 3, M_DEV = 1u << 4,
        M_INODE = 1u << 5, M_PAGE_SIZE = 1u << 6, M_KIND = 1u << 7, M_NAME = 1u << 8, M_PATH = 1u << 9,
        M_DELETED = 1u << 10, M_BUILD_ID = 1u << 11, M_NAME_HEX = 1u << 12,
        M_REQUIRED = M_START | M_END | M_OFFSET | M_PERMS | M_DEV | M_INODE | M_KIND,
};

/* The M_* bit of a mapping member's key, 0 for an unknown one. Keys compared by length first,
 * with constant sizes the compiler inlines: a loop over a table calling memcmp() was a sixth
 * of the client's time on a large listing. */
static unsigned mapping_key_bit(const char *key, size_t len) {
        switch (len) {
        case 3:
                return json_key_is(key, len, "end") ? M_END : json_key_is(key, len, "dev") ? M_DEV : 0;
        case 4:
                return json_key_is(key, len, "kind")   ? M_KIND
                       : json_key_is(key, len, "name") ? M_NAME
                       : json_key_is(key, len, "path") ? M_PATH
                                                  : 0;
        case 5:
                return json_key_is(key, len, "start")   ? M_START
                       : json_key_is(key, len, "perms") ? M_PERMS
                       : json_key_is(key, len, "inode") ? M_INODE
                                                   : 0;
        case 6:
                return json_key_is(key, len, "offset") ? M_OFFSET : 0;
        case 7:
                return json_key_is(key, len, "deleted") ? M_DELETED : 0;
        case 8:
                return json_key_is(key, len, "build_id") ? M_BUILD_ID : json_key_is(key, len, "name_hex") ? M_NAME_HEX : 0;
        case 9:
                return json_key_is(key, len, "page_size") ? M_PAGE_SIZE : 0;
        default:
                return 0;
        }
}

/* The kind: the protocol's names need no copy. */
static int j_get_kind(struct jreader *j, struct memctl_mapping *m) {
        char s[JSON_READER_SHORT_MAX];
        size_t len;
        int r;

        r = json_reader_get_short(&j->r, s, &len);
        if (r <= 0)
                return r;
        m->kind = kind_from_string(s, len);
        m->kind_name = m->kind != MEMCTL_KIND_UNKNOWN ? kind_names[m->kind] : arena_strndup(j->arena, s, len);
        return m->kind_name ? 1 : -ENOMEM;
}

/* The build ID of hex (kept in the arena): checked and converted once for a run of mappings
 * of one file. */
static int build_id_kept(struct jreader *j, struct memctl_mapping *m, const char *hex, const char *previous) {
        int r;

        if (hex == previous && j->build_id.build_id) {
                m->build_id_hex = hex;
                m->build_id = j->build_id.build_id;
                m->build_id_size = j->build_id.build_id_size;
                return 1;
        }
        r = build_id_set(j->arena, m, hex);
        if (r < 0)
                return r;
        j->build_id.build_id = m->build_id;
        j->build_id.build_id_size = m->build_id_size;
        return 1;
}

static int j_get_build_id(struct jreader *j, struct memctl_mapping *m) {
        const char *hex = NULL, *previous = j->build_id.copy;
        int r;

        r = j_get_kept(j, &j->build_id, &hex);
        if (r <= 0)
                return r;
        return build_id_kept(j, m, hex, previous);
}

/* One mapping object, at nesting level depth. */
static int j_mapping(struct jreader *j, unsigned depth, struct memctl_mapping *m) {
        char perms[JSON_READER_SHORT_MAX], dev[JSON_READER_SHORT_MAX];
        struct jmemo name_hex_memo = {};
        const char *name_hex = NULL;
        unsigned seen = 0, present = 0;
        bool first = true;
        const char *key;
        size_t len;
        int r;

        if (depth >= JSON_READER_DEPTH_MAX)
                return -EPROTO;
        *m = (struct memctl_mapping) { .size = sizeof(*m) };
        while ((r = json_reader_member(&j->r, &first, &key, &len)) > 0) {
                unsigned bit = mapping_key_bit(key, len);

                if (bit == 0) {
                        r = json_reader_skip(&j->r, depth + 1);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (json_reader_seen(&seen, bit) < 0)
                        return -EPROTO;
                switch (bit) {
                case M_START: r = json_reader_get_hex(&j->r, &m->start); break;
                case M_END: r = json_reader_get_hex(&j->r, &m->end); break;
                case M_OFFSET: r = json_reader_get_hex(&j->r, &m->offset); break;
                case M_PERMS: r = json_reader_get_short(&j->r, perms, NULL); break;
                case M_DEV: r = json_reader_get_short(&j->r, dev, NULL); break;
                case M_INODE: r = json_reader_get_uint(&j->r, &m->inode); break;
                case M_PAGE_SIZE: r = json_reader_get_uint(&j->r, &m->page_size); break;
                case M_KIND: r = j_get_kind(j, m); break;
                case M_NAME: r = j_get_kept(j, &j->name, &m->name); break;
                case M_PATH: r = j_get_kept(j, &j->name, &m->path); break;
                case M_DELETED: r = json_reader_get_bool(&j->r, &m->deleted); break;
                case M_NAME_HEX: r = j_get_kept(j, &name_hex_memo, &name_hex); break;
                default: r = j_get_build_id(j, m); break;
                }
                if (r < 0)
                        return r;
                if (r > 0)
                        present |= bit;
        }
        if (r < 0)
                return r;
        if ((present & M_REQUIRED) != M_REQUIRED)
                return -EPROTO;
        return mapping_finish(j->arena, m, perms, dev, NULL, name_hex);
}

/* A mapping exactly as the daemon writes it (memmapd_read_mapping_exact()): 1; 0 with the
 * reader where it was, for j_mapping() to read what is not in this form (a mapping it
 * accepts, j_mapping() accepts alike); -ENOMEM. */
static int j_mapping_daemon(struct jreader *j, struct memctl_mapping *m) {
        const char *start = j->r.p, *previous = j->build_id.copy, *hex = NULL;
        struct memmapd_mapping_text t;
        int r = 0;

        if (memmapd_read_mapping_exact(&j->r, &t) <= 0)
                return 0;
        *m = (struct memctl_mapping) {
                .size = sizeof(*m),
                .start = t.start,
                .end = t.end,
                .offset = t.offset,
                .inode = t.inode,
                .dev_major = t.dev_major,
                .dev_minor = t.dev_minor,
                .page_size = t.page_size,
                .flags = t.flags,
                .deleted = t.deleted,
        };
        memmapd_format_perms(t.flags, m->perms);
        m->kind = kind_from_string(t.kind, t.kind_len);
        m->kind_name = m->kind != MEMCTL_KIND_UNKNOWN ? kind_names[m->kind] : arena_strndup(j->arena, t.kind, t.kind_len);
        if (!m->kind_name)
                return -ENOMEM;
        if ((t.has_name && (r = keep_text(j, &j->name, &t.name, &m->name)) < 0) ||
            (t.has_path && (r = keep_text(j, &j->name, &t.path, &m->path)) < 0) ||
            (t.has_build_id && ((r = keep_text(j, &j->build_id, &t.build_id, &hex)) < 0 ||
                                (r = build_id_kept(j, m, hex, previous)) < 0))) {
                if (r == -ENOMEM)
                        return r;
                j->r.p = start;
                return 0;
        }
        /* A name that is not UTF-8 has a name_hex, which this form leaves to j_mapping(). */
        m->name_exact = m->name;
        m->path_exact = m->path;
        return 1;
}

static int j_mappings(struct jreader *j, unsigned depth, struct mapping_table *t) {
        bool first = true;
        int r;

        if (json_reader_null(&j->r))
                return -EPROTO;
        if (depth >= JSON_READER_DEPTH_MAX)
                return -EPROTO;
        while ((r = json_reader_element(&j->r, &first)) > 0) {
                if (t->n >= MAPPINGS_MAX)
                        return -EPROTO;
                if (t->n == t->allocated) {
                        size_t a = t->allocated ? t->allocated * 2 : 64;
                        struct memctl_mapping *items = realloc(t->items, a * sizeof(*items));

                        if (!items)
                                return -ENOMEM;
                        t->items = items;
                        t->allocated = a;
                }
                r = j_mapping_daemon(j, &t->items[t->n]);
                if (r == 0)
                        r = j_mapping(j, depth + 1, &t->items[t->n]);
                if (r < 0)
                        return r;
                t->n++;
        }
        return r;
}

static int j_process(struct jreader *j, unsigned depth, uint64_t *ret_pid, uint64_t *ret_start_time,
                     bool *ret_kernel_thread) {
        unsigned seen = 0, present = 0;
        bool first = true;
        const char *key;
        size_t len;
        int r;

        if (json_reader_null(&j->r) || depth >= JSON_READER_DEPTH_MAX)
                return -EPROTO;
        while ((r = json_reader_member(&j->r, &first, &key, &len)) > 0) {
                if (json_key_is(key, len, "pid")) {
                        if (json_reader_seen(&seen, 1) < 0 || (r = json_reader_get_uint(&j->r, ret_pid)) < 0)
                                return -EPROTO;
                        present |= r > 0 ? 1 : 0;
                } else if (json_key_is(key, len, "start_time")) {
                        if (json_reader_seen(&seen, 2) < 0 || (r = json_reader_get_uint(&j->r, ret_start_time)) < 0)
                                return -EPROTO;
                        present |= r > 0 ? 2 : 0;
                } else if (json_key_is(key, len, "kernel_thread")) {
                        if (json_reader_seen(&seen, 4) < 0 || json_reader_get_bool(&j->r, ret_kernel_thread) < 0)
                                return -EPROTO;
                } else if ((r = json_reader_skip(&j->r, depth + 1)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return present == 3 ? 0 : -EPROTO;
}

/* The echoed address of a result: 0 when it is the one asked. We asked in hex, but accept
 * any form that means the same, as parse_result() does. */
static int j_result_address(struct jreader *j, uint64_t address) {
        char s[JSON_READER_SHORT_MAX];
        uint64_t v;

        if (json_reader_hex_plain(&j->r, &v) > 0)
                return v == address ? 0 : -EPROTO;
        if (json_reader_get_short(&j->r, s, NULL) <= 0 ||
            (s[0] == '0' && s[1] == 'x' ? json_reader_parse_hex(s, &v) : parse_u64(s, &v)) < 0 || v != address)
                return -EPROTO;
        return 0;
}

static int result_finish(struct memctl_lookup_result *ret, uint64_t index, const char *reason, size_t reason_len,
                         struct arena_chunk **arena);

/* One Lookup result, checked against the address asked and the mappings once all is read. */
static int j_result(struct jreader *j, unsigned depth, uint64_t address, struct memctl_lookup_result *ret) {
        unsigned seen = 0;
        bool first = true, have_address = false;
        uint64_t index = UINT64_MAX;
        char reason_buf[JSON_READER_SHORT_MAX];
        const char *key, *reason = NULL;
        size_t len, reason_len = 0;
        int r;

        if (depth >= JSON_READER_DEPTH_MAX)
                return -EPROTO;
        *ret = (struct memctl_lookup_result) {
                .size = sizeof(*ret),
                .address = address,
                .mapping = MEMCTL_NO_MAPPING,
        };
        while ((r = json_reader_member(&j->r, &first, &key, &len)) > 0) {
                if (json_key_is(key, len, "address")) {
                        if (json_reader_seen(&seen, 1) < 0 || j_result_address(j, address) < 0)
                                return -EPROTO;
                        have_address = true;
                } else if (json_key_is(key, len, "mapping")) {
                        if (json_reader_seen(&seen, 2) < 0 || json_reader_get_uint(&j->r, &index) < 0)
                                return -EPROTO;
                } else if (json_key_is(key, len, "reason")) {
                        if (json_reader_seen(&seen, 4) < 0 || (r = json_reader_get_short(&j->r, reason_buf, &reason_len)) < 0)
                                return -EPROTO;
                        reason = r > 0 ? reason_buf : NULL;
                } else if (json_key_is(key, len, "file_offset")) {
                        if (json_reader_seen(&seen, 8) < 0 || (r = json_reader_get_hex(&j->r, &ret->file_offset)) < 0)
                                return -EPROTO;
                        ret->has_file_offset = r > 0;
                } else if (json_key_is(key, len, "elf_vaddr")) {
                        if (json_reader_seen(&seen, 16) < 0 || (r = json_reader_get_hex(&j->r, &ret->elf_vaddr)) < 0)
                                return -EPROTO;
                        ret->has_elf_vaddr = r > 0;
                } else if ((r = json_reader_skip(&j->r, depth + 1)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (!have_address)
                return -EPROTO;
        return result_finish(ret, index, reason, reason_len, j->arena);
}

/* A result exactly as the daemon writes it (memmapd_read_result_exact()): 1, or 0 with the
 * reader where it was, for j_result(). */
static int j_result_daemon(struct jreader *j, uint64_t address, struct memctl_lookup_result *ret) {
        const char *start = j->r.p, *reason;
        struct memmapd_result r;
        int k;

        if (memmapd_read_result_exact(&j->r, &r) <= 0)
                return 0;
        if (r.address != address) {
                j->r.p = start;
                return 0;
        }
        *ret = (struct memctl_lookup_result) {
                .size = sizeof(*ret),
                .address = address,
                .mapping = MEMCTL_NO_MAPPING,
                .has_file_offset = r.has_file_offset,
                .has_elf_vaddr = r.has_elf_vaddr,
                .file_offset = r.file_offset,
                .elf_vaddr = r.elf_vaddr,
        };
        /* The exact form has a reason exactly when it has no mapping. */
        reason = r.reason == MEMMAPD_REASON_NO_ADDRESS_SPACE ? "no_address_space" : "unmapped";
        k = result_finish(ret, r.mapping < 0 ? UINT64_MAX : (uint64_t) r.mapping, r.mapping < 0 ? reason : NULL,
                          strlen(reason), j->arena);
        return k == -ENOMEM ? k : k < 0 ? -EPROTO : 1;
}

/* What both readers of a result do once its members are read: index is UINT64_MAX when it
 * had no mapping; reason (reason_len bytes, NULL: none) is ignored when it had one. */
static int result_finish(struct memctl_lookup_result *ret, uint64_t index, const char *reason, size_t reason_len,
                         struct arena_chunk **arena) {
        if (index == UINT64_MAX) {
                /* not mapped, whatever the (possibly newer) reason */
                ret->has_file_offset = ret->has_elf_vaddr = false;
                ret->file_offset = ret->elf_vaddr = 0;
                return result_set_reason(ret, reason, reason_len, arena);
        }
        /* Checked against the mappings at the end, when they are all known. */
        ret->mapping = (size_t) index;
        if ((uint64_t) ret->mapping != index)
                return -EPROTO;
        return 0;
}

static int j_results(struct jreader *j, unsigned depth, struct fast_decode *f) {
        bool first = true;
        size_t n = 0;
        int r;

        if (json_reader_null(&j->r) || depth >= JSON_READER_DEPTH_MAX)
                return -EPROTO;
        f->results = calloc(f->n_addresses > 0 ? f->n_addresses : 1, sizeof(*f->results));
        if (!f->results)
                return -ENOMEM;
        while ((r = json_reader_element(&j->r, &first)) > 0) {
                if (n >= f->n_addresses)
                        return -EPROTO;
                r = j_result_daemon(j, f->addresses[n], &f->results[n]);
                if (r == 0)
                        r = j_result(j, depth + 1, f->addresses[n], &f->results[n]);
                if (r < 0)
                        return r;
                n++;
        }
        if (r < 0)
                return r;
        return n == f->n_addresses ? 0 : -EPROTO;
}

void fast_decode_done(struct fast_decode *f) {
        mapping_table_done(&f->table);
        free(f->results);
        f->table = (struct mapping_table) {};
        f->results = NULL;
        f->done = false;
}

/* 0: a successful reply, decoded into f; 2: a part of a streamed reply, added to f; 1: the
 * general decoder must look at it (what parts came before are dropped); -ENOMEM. */
int fast_decode_reply(struct fast_decode *f, const char *msg, size_t len) {
        struct jreader j = { .r = { .p = msg, .end = msg + len }, .arena = &f->table.arena };
        unsigned seen = 0;
        bool first = true, have_process = false, continues = false, kernel_thread = false;
        uint64_t pid = 0, start_time = 0;
        size_t n_before;
        const char *key;
        size_t klen;
        int r;

        if (f->parts == 0)
                fast_decode_done(f);
        n_before = f->table.n;
        /* msg ends in the frame's NUL, and a NUL inside it needs no scan of its own: the
         * reader never steps over a NUL, so it stops there and the check that it ended at len
         * refuses the message. */

        while ((r = json_reader_member(&j.r, &first, &key, &klen)) > 0) {
                if (json_key_is(key, klen, "error")) {
                        if (!json_reader_null(&j.r))
                                goto fail;
                } else if (json_key_is(key, klen, "continues")) {
                        /* Only what we asked to be streamed may come in parts. */
                        if (json_reader_get_bool(&j.r, &continues) < 0 || (continues && !f->more))
                                goto fail;
                } else if (json_key_is(key, klen, "parameters")) {
                        bool pfirst = true;

                        if (json_reader_seen(&seen, 1) < 0)
                                goto fail;
                        if (json_reader_null(&j.r))
                                continue; /* {}: no process, refused below */
                        while ((r = json_reader_member(&j.r, &pfirst, &key, &klen)) > 0) {
                                if (json_key_is(key, klen, "process")) {
                                        if (json_reader_seen(&seen, 2) < 0 || j_process(&j, 3, &pid, &start_time, &kernel_thread) < 0)
                                                goto fail;
                                        have_process = true;
                                } else if (json_key_is(key, klen, "mappings")) {
                                        if (json_reader_seen(&seen, 4) < 0)
                                                goto fail;
                                        r = j_mappings(&j, 3, &f->table);
                                        if (r < 0)
                                                goto fail;
                                } else if (f->lookup && json_key_is(key, klen, "results")) {
                                        if (json_reader_seen(&seen, 8) < 0)
                                                goto fail;
                                        r = j_results(&j, 3, f);
                                        if (r < 0)
                                                goto fail;
                                } else if ((r = json_reader_skip(&j.r, 3)) < 0)
                                        goto fail;
                        }
                        if (r < 0)
                                goto fail;
                } else if ((r = json_reader_skip(&j.r, 2)) < 0)
                        goto fail;
        }
        if (r < 0)
                goto fail;
        /* Nothing may follow the object, as for the general decoder. */
        if (j.r.p != msg + len)
                goto fail;

        if (!have_process || !(seen & 4) || (f->lookup && !(seen & 8)))
                goto fail;
        /* The daemon answers about the process we asked about (asked about a thread id, about
         * its thread group, whose id pid is then), or not at all; every part about the same one. */
        if (pid == 0 || pid > INT32_MAX || (f->start_time != 0 && start_time != f->start_time) ||
            (f->parts > 0 && (start_time != f->table.start_time || (pid_t) pid != f->table.pid ||
                              kernel_thread != f->table.kernel_thread)))
                goto fail;
        f->table.pid = (pid_t) pid;
        f->table.start_time = start_time;
        f->table.kernel_thread = kernel_thread;
        if (continues) {
                /* Every part but the last brings mappings: so MAPPINGS_MAX bounds the parts. */
                if (f->table.n == n_before)
                        goto fail;
                f->parts++;
                return 2;
        }
        for (size_t i = 0; f->lookup && i < f->n_addresses; i++) {
                const struct memctl_lookup_result *res = &f->results[i];
                const struct memctl_mapping *m;

                if (res->mapping == MEMCTL_NO_MAPPING)
                        continue;
                /* An index in range, of a mapping that does cover the address. */
                if (res->mapping >= f->table.n)
                        goto fail;
                m = &f->table.items[res->mapping];
                if (res->address < m->start || res->address >= m->end)
                        goto fail;
        }
        return 0;

fail:
        fast_decode_done(f);
        f->parts = 0;
        return r == -ENOMEM ? r : 1;
}

