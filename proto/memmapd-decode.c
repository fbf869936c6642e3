/* The io.memmapd wire types decoded in any valid form (what a client accepts from any daemon): Mapping, ProcessId, LookupResult, Status, and json-c members in the wire's forms. */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json_object.h>

#include "cleanup.h"
#include "hex.h"
#include "json-reader.h"
#include "memmapd-decode.h"
#include "number.h"
#include "utf8.h"

struct json_object *memmapd_json_member(struct json_object *o, const char *key) {
        struct json_object *v = NULL;

        if (!json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

int memmapd_json_get_string(struct json_object *o, const char *key, bool required, const char **ret) {
        struct json_object *v = memmapd_json_member(o, key);
        const char *s;

        if (!v)
                return required ? -EPROTO : 0;
        if (!json_object_is_type(v, json_type_string))
                return -EPROTO;
        s = json_object_get_string(v);
        /* An escaped NUL would truncate the string silently. */
        if (strlen(s) != (size_t) json_object_get_string_len(v))
                return -EPROTO;
        *ret = s;
        return 0;
}

int memmapd_json_get_uint(struct json_object *o, const char *key, bool required, uint64_t *ret) {
        struct json_object *v = memmapd_json_member(o, key);

        if (!v)
                return required ? -EPROTO : 0;
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
                return -EPROTO;
        *ret = json_object_get_uint64(v);
        return 0;
}

int memmapd_json_get_bool(struct json_object *o, const char *key, bool *ret) {
        struct json_object *v = memmapd_json_member(o, key);

        if (!v)
                return 0;
        if (!json_object_is_type(v, json_type_boolean))
                return -EPROTO;
        *ret = json_object_get_boolean(v);
        return 0;
}

int memmapd_json_get_hex(struct json_object *o, const char *key, bool required, uint64_t *ret, bool *ret_present) {
        const char *s = NULL;
        int r;

        r = memmapd_json_get_string(o, key, required, &s);
        if (r < 0)
                return r;
        if (!s)
                return 0;
        if (s[0] != '0' || s[1] != 'x' || parse_u64(s, ret) < 0)
                return -EPROTO;
        if (ret_present)
                *ret_present = true;
        return 0;
}

/* A json-c string member as text: 0, *ret_has set when it is there, or -EPROTO. */
static int json_get_text(struct json_object *o, const char *key, struct memmapd_text *ret, bool *ret_has) {
        const char *s = NULL;
        int r;

        r = memmapd_json_get_string(o, key, false, &s);
        if (r < 0 || !s)
                return r;
        *ret = (struct memmapd_text) { .raw = s, .len = strlen(s) };
        *ret_has = true;
        return 0;
}

/* What both mapping readers check once the members are read: the permissions (4 characters)
 * and the device, decoded. */
static int mapping_check(struct memmapd_mapping_text *m, const char *perms, const char *dev) {
        if (m->start >= m->end || strlen(perms) != 4 || perms_parse(perms, &m->flags) < 0)
                return -EPROTO;
        return memmapd_parse_dev(&dev, 0, &m->dev_major, &m->dev_minor);
}

int memmapd_mapping_from_json(struct json_object *o, struct memmapd_mapping_text *ret) {
        struct memmapd_mapping_text m = {};
        const char *perms = NULL, *dev = NULL;
        bool has_kind = false;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return -EPROTO;
        if ((r = memmapd_json_get_hex(o, "start", true, &m.start, NULL)) < 0 ||
            (r = memmapd_json_get_hex(o, "end", true, &m.end, NULL)) < 0 ||
            (r = memmapd_json_get_hex(o, "offset", true, &m.offset, NULL)) < 0 ||
            (r = memmapd_json_get_string(o, "perms", true, &perms)) < 0 ||
            (r = memmapd_json_get_string(o, "dev", true, &dev)) < 0 ||
            (r = memmapd_json_get_uint(o, "inode", true, &m.inode)) < 0 ||
            (r = memmapd_json_get_uint(o, "page_size", false, &m.page_size)) < 0 ||
            (r = json_get_text(o, "kind", &m.kind, &has_kind)) < 0 ||
            (r = json_get_text(o, "name", &m.name, &m.has_name)) < 0 ||
            (r = json_get_text(o, "name_hex", &m.name_hex, &m.has_name_hex)) < 0 ||
            (r = json_get_text(o, "path", &m.path, &m.has_path)) < 0 ||
            (r = memmapd_json_get_bool(o, "deleted", &m.deleted)) < 0 ||
            (r = json_get_text(o, "build_id", &m.build_id, &m.has_build_id)) < 0)
                return r;
        if (!has_kind)
                return -EPROTO;
        r = mapping_check(&m, perms, dev);
        if (r < 0)
                return r;
        *ret = m;
        return 1;
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

/* A string member as text: 1 and *ret_has set, 0 for null. */
static int read_text_any(struct json_reader *j, struct memmapd_text *ret, bool *ret_has) {
        int r = json_reader_get_raw(j, &ret->raw, &ret->len, &ret->escaped);

        if (r > 0)
                *ret_has = true;
        return r;
}

/* A string member as text: 1, 0 for null. */
static int read_short_text(struct json_reader *j, struct memmapd_text *ret) {
        int r = json_reader_get_raw(j, &ret->raw, &ret->len, &ret->escaped);

        /* The names the protocol gives (kinds, reasons) are short; a long one is for json-c. */
        if (r > 0 && ret->len >= JSON_READER_SHORT_MAX)
                return -EPROTO;
        return r;
}

int memmapd_read_mapping(struct json_reader *j, unsigned depth, struct memmapd_mapping_text *ret) {
        char perms[JSON_READER_SHORT_MAX], dev[JSON_READER_SHORT_MAX];
        struct memmapd_mapping_text m = {};
        unsigned seen = 0, present = 0;
        bool first = true;
        const char *key;
        size_t len;
        int r;

        if (depth >= JSON_READER_DEPTH_MAX)
                return -EPROTO;
        while ((r = json_reader_member(j, &first, &key, &len)) > 0) {
                unsigned bit = mapping_key_bit(key, len);

                if (bit == 0) {
                        r = json_reader_skip(j, depth + 1);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (json_reader_seen(&seen, bit) < 0)
                        return -EPROTO;
                switch (bit) {
                case M_START: r = json_reader_get_hex(j, &m.start); break;
                case M_END: r = json_reader_get_hex(j, &m.end); break;
                case M_OFFSET: r = json_reader_get_hex(j, &m.offset); break;
                case M_PERMS: r = json_reader_get_short(j, perms, NULL); break;
                case M_DEV: r = json_reader_get_short(j, dev, NULL); break;
                case M_INODE: r = json_reader_get_uint(j, &m.inode); break;
                case M_PAGE_SIZE: r = json_reader_get_uint(j, &m.page_size); break;
                case M_KIND: r = read_short_text(j, &m.kind); break;
                case M_NAME: r = read_text_any(j, &m.name, &m.has_name); break;
                case M_PATH: r = read_text_any(j, &m.path, &m.has_path); break;
                case M_DELETED: r = json_reader_get_bool(j, &m.deleted); break;
                case M_NAME_HEX: r = read_text_any(j, &m.name_hex, &m.has_name_hex); break;
                default: r = read_text_any(j, &m.build_id, &m.has_build_id); break;
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
        r = mapping_check(&m, perms, dev);
        if (r < 0)
                return r;
        *ret = m;
        return 1;
}

int memmapd_parse_build_id(const char *hex, size_t len, uint8_t ret[static MEMMAPD_BUILD_ID_MAX], size_t *ret_len) {
        if (len == 0 || len % 2 != 0 || len / 2 > MEMMAPD_BUILD_ID_MAX || unhex_bytes(hex, len, true, ret) < 0)
                return -EPROTO;
        *ret_len = len / 2;
        return 0;
}

/* How many bytes of exact (exact_len of them) make the first lossy_len bytes of lossy, exact's
 * form in JSON text as the daemon writes it (each byte outside well-formed UTF-8 as U+FFFD):
 * -EPROTO when they do not match, or lossy_len ends inside a character. */
static int lossy_prefix(const char *exact, size_t exact_len, const char *lossy, size_t lossy_len, size_t *ret) {
        size_t i = 0, j = 0;

        while (j < lossy_len) {
                size_t n, want_len;
                const char *want;

                if (i >= exact_len)
                        return -EPROTO;
                n = (uint8_t) exact[i] < 0x80 ? 1 : utf8_sequence_length((const uint8_t *) exact + i, exact_len - i);
                want = n > 0 ? exact + i : "\xef\xbf\xbd";
                want_len = n > 0 ? n : 3;
                if (lossy_len - j < want_len || memcmp(lossy + j, want, want_len) != 0)
                        return -EPROTO;
                i += n > 0 ? n : 1;
                j += want_len;
        }
        *ret = i;
        return 0;
}

int memmapd_parse_name_hex(const char *hex, size_t hex_len, const char *name, size_t name_len, const char *path,
                           size_t path_len, char *ret_exact, size_t *ret_path_len) {
        size_t n, path_n = 0;

        if (!name || hex_len == 0 || hex_len % 2 != 0)
                return -EPROTO;
        /* No NUL: the kernel's names are C strings. */
        if (unhex_bytes(hex, hex_len, false, (uint8_t *) ret_exact) < 0 || memchr(ret_exact, 0, hex_len / 2))
                return -EPROTO;
        if (lossy_prefix(ret_exact, hex_len / 2, name, name_len, &n) < 0 || n != hex_len / 2)
                return -EPROTO;
        if (path && (path_len > name_len || memcmp(name, path, path_len) != 0 ||
                     lossy_prefix(ret_exact, hex_len / 2, name, path_len, &path_n) < 0))
                return -EPROTO;
        *ret_path_len = path_n;
        return 0;
}

int memmapd_process_from_json(struct json_object *o, struct memmapd_process *ret) {
        struct memmapd_process p = {};

        if (!o || !json_object_is_type(o, json_type_object))
                return -EPROTO;
        if (memmapd_json_get_uint(o, "pid", true, &p.pid) < 0 ||
            memmapd_json_get_uint(o, "start_time", true, &p.start_time) < 0 ||
            memmapd_json_get_bool(o, "kernel_thread", &p.kernel_thread) < 0 ||
            memmapd_json_get_bool(o, "exited", &p.exited) < 0)
                return -EPROTO;
        *ret = p;
        return 0;
}

int memmapd_read_process(struct json_reader *j, unsigned depth, struct memmapd_process *ret) {
        struct memmapd_process p = {};
        unsigned seen = 0, present = 0;
        bool first = true;
        const char *key;
        size_t len;
        int r;

        if (json_reader_null(j) || depth >= JSON_READER_DEPTH_MAX)
                return -EPROTO;
        while ((r = json_reader_member(j, &first, &key, &len)) > 0) {
                if (json_key_is(key, len, "pid")) {
                        if (json_reader_seen(&seen, 1) < 0 || (r = json_reader_get_uint(j, &p.pid)) < 0)
                                return -EPROTO;
                        present |= r > 0 ? 1 : 0;
                } else if (json_key_is(key, len, "start_time")) {
                        if (json_reader_seen(&seen, 2) < 0 || (r = json_reader_get_uint(j, &p.start_time)) < 0)
                                return -EPROTO;
                        present |= r > 0 ? 2 : 0;
                } else if (json_key_is(key, len, "kernel_thread")) {
                        if (json_reader_seen(&seen, 4) < 0 || json_reader_get_bool(j, &p.kernel_thread) < 0)
                                return -EPROTO;
                } else if (json_key_is(key, len, "exited")) {
                        if (json_reader_seen(&seen, 8) < 0 || json_reader_get_bool(j, &p.exited) < 0)
                                return -EPROTO;
                } else if ((r = json_reader_skip(j, depth + 1)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (present != 3)
                return -EPROTO;
        *ret = p;
        return 0;
}

/* A result's address in a string form other than plain hex: "0x..." or decimal. */
static int parse_address(const char *s, uint64_t *ret) {
        return s[0] == '0' && s[1] == 'x' ? json_reader_parse_hex(s, ret) : parse_u64(s, ret);
}

/* A result's symbol, its offset and whether its size is unknown: all or none. */
static int result_symbol_from_json(struct json_object *o, struct memmapd_result_text *res) {
        struct json_object *v;
        bool has_offset = false;
        int r;

        if ((r = json_get_text(o, "symbol", &res->symbol, &res->has_symbol)) < 0 ||
            (r = memmapd_json_get_hex(o, "symbol_offset", false, &res->symbol_offset, &has_offset)) < 0)
                return r;
        if (res->has_symbol != has_offset)
                return -EPROTO;
        v = memmapd_json_member(o, "symbol_size_unknown");
        if (v && !json_object_is_type(v, json_type_boolean))
                return -EPROTO;
        res->symbol_size_unknown = v && json_object_get_boolean(v);
        return 0;
}

int memmapd_result_from_json(struct json_object *o, struct memmapd_result_text *ret) {
        struct memmapd_result_text res = { .mapping = UINT64_MAX };
        const char *address = NULL;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return -EPROTO;
        r = memmapd_json_get_string(o, "address", true, &address);
        if (r < 0)
                return r;
        if (parse_u64(address, &res.address) < 0)
                return -EPROTO;
        if ((r = memmapd_json_get_uint(o, "mapping", false, &res.mapping)) < 0 ||
            (r = json_get_text(o, "reason", &res.reason, &res.has_reason)) < 0)
                return r;
        if (res.mapping != UINT64_MAX &&
            ((r = memmapd_json_get_hex(o, "file_offset", false, &res.file_offset, &res.has_file_offset)) < 0 ||
             (r = memmapd_json_get_hex(o, "elf_vaddr", false, &res.elf_vaddr, &res.has_elf_vaddr)) < 0 ||
             (r = result_symbol_from_json(o, &res)) < 0))
                return r;
        *ret = res;
        return 0;
}

int memmapd_read_result(struct json_reader *j, unsigned depth, struct memmapd_result_text *ret) {
        struct memmapd_result_text res = { .mapping = UINT64_MAX };
        char s[JSON_READER_SHORT_MAX];
        bool has_symbol_offset = false;
        unsigned seen = 0;
        bool first = true;
        const char *key;
        size_t len;
        int r;

        if (depth >= JSON_READER_DEPTH_MAX)
                return -EPROTO;
        while ((r = json_reader_member(j, &first, &key, &len)) > 0) {
                if (json_key_is(key, len, "address")) {
                        if (json_reader_seen(&seen, 1) < 0)
                                return -EPROTO;
                        /* We ask in hex, but any form that means the same is the same address. */
                        if (json_reader_hex_plain(j, &res.address) <= 0 &&
                            (json_reader_get_short(j, s, NULL) <= 0 || parse_address(s, &res.address) < 0))
                                return -EPROTO;
                } else if (json_key_is(key, len, "mapping")) {
                        if (json_reader_seen(&seen, 2) < 0 || json_reader_get_uint(j, &res.mapping) < 0)
                                return -EPROTO;
                } else if (json_key_is(key, len, "reason")) {
                        if (json_reader_seen(&seen, 4) < 0 || (r = read_short_text(j, &res.reason)) < 0)
                                return -EPROTO;
                        res.has_reason = r > 0;
                } else if (json_key_is(key, len, "file_offset")) {
                        if (json_reader_seen(&seen, 8) < 0 || (r = json_reader_get_hex(j, &res.file_offset)) < 0)
                                return -EPROTO;
                        res.has_file_offset = r > 0;
                } else if (json_key_is(key, len, "elf_vaddr")) {
                        if (json_reader_seen(&seen, 16) < 0 || (r = json_reader_get_hex(j, &res.elf_vaddr)) < 0)
                                return -EPROTO;
                        res.has_elf_vaddr = r > 0;
                } else if (json_key_is(key, len, "symbol")) {
                        if (json_reader_seen(&seen, 32) < 0 || read_text_any(j, &res.symbol, &res.has_symbol) < 0)
                                return -EPROTO;
                } else if (json_key_is(key, len, "symbol_offset")) {
                        if (json_reader_seen(&seen, 64) < 0 || (r = json_reader_get_hex(j, &res.symbol_offset)) < 0)
                                return -EPROTO;
                        has_symbol_offset = r > 0;
                } else if (json_key_is(key, len, "symbol_size_unknown")) {
                        if (json_reader_seen(&seen, 128) < 0 || json_reader_get_bool(j, &res.symbol_size_unknown) < 0)
                                return -EPROTO;
                } else if ((r = json_reader_skip(j, depth + 1)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (!(seen & 1) || res.has_symbol != has_symbol_offset)
                return -EPROTO;
        if (res.mapping == UINT64_MAX) {
                res.has_file_offset = res.has_elf_vaddr = res.has_symbol = res.symbol_size_unknown = false;
                res.file_offset = res.elf_vaddr = res.symbol_offset = 0;
        }
        *ret = res;
        return 0;
}

int memmapd_status_from_json(struct json_object *params, struct memmapd_status *ret) {
        struct memmapd_status s = {};
        struct json_object *limits = memmapd_json_member(params, "limits");
        const struct {
                bool in_limits;
                bool required;
                const char *key;
                uint64_t *value;
        } counters[] = {
                { false, true, "uptime_usec", &s.uptime_usec },
                { false, true, "requests", &s.requests },
                { false, true, "errors", &s.errors },
                { false, true, "elf_cache_hits", &s.elf_cache_hits },
                { false, true, "elf_cache_misses", &s.elf_cache_misses },
                { false, true, "elf_cache_entries", &s.elf_cache_entries },
                { false, true, "connections", &s.connections },
                { true, true, "max_message_size", &s.max_message_size },
                { true, true, "max_addresses", &s.max_addresses },
                { true, true, "max_connections", &s.max_connections },
                { true, true, "max_connections_per_uid", &s.max_connections_per_uid },
                { true, true, "max_output_queue", &s.max_output_queue },
                { true, true, "idle_timeout_sec", &s.idle_timeout_sec },
                { true, true, "max_json_depth", &s.max_json_depth },
                /* Newer counters: an older daemon has none of them. */
                { false, false, "oneway_skipped", &s.oneway_skipped },
                { false, false, "output_held", &s.output_held },
                { false, false, "parked", &s.parked },
                { false, false, "file_readers", &s.file_readers },
                { false, false, "file_readers_busy", &s.file_readers_busy },
                { false, false, "file_readers_stuck", &s.file_readers_stuck },
                { false, false, "file_read_timeouts", &s.file_read_timeouts },
                { false, false, "file_reads_refused", &s.file_reads_refused },
                { false, false, "layout_cache_hits", &s.layout_cache_hits },
                { false, false, "layout_cache_misses", &s.layout_cache_misses },
                { false, false, "layout_cache_entries", &s.layout_cache_entries },
                { false, false, "layout_cache_bytes", &s.layout_cache_bytes },
                { false, false, "symbol_cache_hits", &s.symbol_cache_hits },
                { false, false, "symbol_cache_misses", &s.symbol_cache_misses },
                { false, false, "symbol_cache_bytes", &s.symbol_cache_bytes },
                { true, false, "reserved_connections", &s.reserved_connections },
                { true, false, "output_budget", &s.output_budget },
                { true, false, "output_budget_per_uid", &s.output_budget_per_uid },
        };
        int r;

        if ((r = memmapd_json_get_string(params, "version", true, &s.version)) < 0 ||
            (r = memmapd_json_get_string(params, "kernel", true, &s.kernel)) < 0 ||
            (r = memmapd_json_get_string(params, "backend", true, &s.backend)) < 0)
                return r;
        if (!limits || !json_object_is_type(limits, json_type_object))
                return -EPROTO;
        for (size_t i = 0; i < ELEMENTSOF(counters); i++) {
                r = memmapd_json_get_uint(counters[i].in_limits ? limits : params, counters[i].key, counters[i].required,
                                          counters[i].value);
                if (r < 0)
                        return r;
        }
        r = memmapd_json_get_string(params, "tracking", false, &s.tracking);
        if (r < 0)
                return r;
        *ret = s;
        return 0;
}

