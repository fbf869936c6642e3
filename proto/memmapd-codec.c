/* The io.memmapd wire types (Mapping, ProcessId, LookupResult, errors): their one encoder, and the Lookup call decoder. */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json_object.h>

#include "cleanup.h"
#include "hex.h"
#include "json-reader.h"
#include "memmapd-codec.h"
#include "number.h"
#include "utf8.h"

const char memmapd_interface_description[] =
#include "io.memmapd.varlink.inc"
        ;

/* ---------------------------------------------------------------- encoding */

size_t memmapd_format_dev(uint32_t major, uint32_t minor, char *buf) {
        /* Without snprintf(): that was 8% of the time of a 60,000-mapping listing. */
        static const char hex[16] = "0123456789abcdef";
        const uint32_t v[2] = { major, minor };
        char *p = buf;

        for (unsigned k = 0; k < 2; k++) {
                unsigned digits = 2;

                while (digits < 8 && (v[k] >> (4 * digits)) != 0)
                        digits++;
                while (digits-- > 0)
                        *p++ = hex[(v[k] >> (4 * digits)) & 0xf];
                if (k == 0)
                        *p++ = ':';
        }
        *p = 0;
        return (size_t) (p - buf);
}

/* Room for every member of a mapping but the name and path, with their keys. */
#define MAPPING_JSON_FIXED 512
/* Names up to this long (most are far shorter) are formatted in one go; longer ones, and
 * names that need escaping, take the writer's general path. */
#define MAPPING_JSON_NAME_MAX 1024

#define PUT_LITERAL(p, s) (memcpy((p), (s), sizeof(s) - 1), (p) += sizeof(s) - 1)

/* memmapd_write_mapping_general() for the common case, the same bytes formatted straight into
 * the reply: key by key through the writer was most of the daemon's time on a 60,000-mapping
 * listing after reading the maps. False (nothing written) when the mapping needs the general
 * path. libmemctl's direct decoder (memctl's fast path) expects exactly this order and form. */
static bool write_mapping_fast(struct json_writer *w, const struct memmapd_mapping *m) {
        char perms[5], *buf, *p;
        size_t name_len = 0, kind_len;

        if (!m->kind || (kind_len = strlen(m->kind)) > 32 || json_plain_length(m->kind, kind_len) != kind_len)
                return false;
        if (m->name) {
                name_len = strlen(m->name);
                if (name_len > MAPPING_JSON_NAME_MAX || json_plain_length(m->name, name_len) != name_len)
                        return false;
        }
        /* The daemon's path is a prefix of its name, checked above. */
        if (m->path && !(m->path == m->name && m->path_len <= name_len) &&
            (m->path_len > MAPPING_JSON_NAME_MAX || json_plain_length(m->path, m->path_len) != m->path_len))
                return false;
        if (m->build_id_len > MEMMAPD_BUILD_ID_MAX)
                return false;
        buf = p = json_writer_raw_reserve(w, MAPPING_JSON_FIXED + name_len + (m->path ? m->path_len : 0));
        if (!buf)
                return true; /* the writer's error stands for the reply */
        PUT_LITERAL(p, "{\"start\":\"");
        p += json_format_hex(m->start, p);
        PUT_LITERAL(p, "\",\"end\":\"");
        p += json_format_hex(m->end, p);
        PUT_LITERAL(p, "\",\"perms\":\"");
        memcpy(p, perms_format(m->flags, perms), 4);
        p += 4;
        PUT_LITERAL(p, "\",\"offset\":\"");
        p += json_format_hex(m->offset, p);
        PUT_LITERAL(p, "\",\"dev\":\"");
        p += memmapd_format_dev(m->dev_major, m->dev_minor, p);
        PUT_LITERAL(p, "\",\"inode\":");
        p += json_format_uint(m->inode, p);
        if (m->page_size > 0) {
                PUT_LITERAL(p, ",\"page_size\":");
                p += json_format_uint(m->page_size, p);
        }
        PUT_LITERAL(p, ",\"kind\":\"");
        memcpy(p, m->kind, kind_len);
        p += kind_len;
        *p++ = '"';
        if (m->name) {
                PUT_LITERAL(p, ",\"name\":\"");
                memcpy(p, m->name, name_len);
                p += name_len;
                *p++ = '"';
        }
        if (m->path) {
                PUT_LITERAL(p, ",\"path\":\"");
                memcpy(p, m->path, m->path_len);
                p += m->path_len;
                *p++ = '"';
        }
        if (m->has_deleted) {
                if (m->deleted)
                        PUT_LITERAL(p, ",\"deleted\":true");
                else
                        PUT_LITERAL(p, ",\"deleted\":false");
        }
        if (m->build_id_len > 0) {
                PUT_LITERAL(p, ",\"build_id\":\"");
                format_hex_bytes(m->build_id, m->build_id_len, p);
                p += 2 * m->build_id_len;
                *p++ = '"';
        }
        *p++ = '}';
        json_writer_raw_commit(w, (size_t) (p - buf));
        return true;
}

void memmapd_write_mapping_general(struct json_writer *w, const struct memmapd_mapping *m) {
        char perms[5], dev[24];

        json_writer_object_begin(w);
        json_writer_key(w, "start");
        json_writer_hex(w, m->start);
        json_writer_key(w, "end");
        json_writer_hex(w, m->end);
        json_writer_key(w, "perms");
        json_writer_string(w, perms_format(m->flags, perms));
        json_writer_key(w, "offset");
        json_writer_hex(w, m->offset);
        json_writer_key(w, "dev");
        memmapd_format_dev(m->dev_major, m->dev_minor, dev);
        json_writer_string(w, dev);
        json_writer_key(w, "inode");
        json_writer_uint(w, m->inode);
        if (m->page_size > 0) {
                json_writer_key(w, "page_size");
                json_writer_uint(w, m->page_size);
        }
        json_writer_key(w, "kind");
        json_writer_string(w, m->kind);
        if (m->name) {
                json_writer_key(w, "name");
                if (!json_writer_string(w, m->name)) {
                        size_t len = strlen(m->name);
                        _cleanup_free_ char *h = len <= SIZE_MAX / 2 - 1 ? malloc(2 * len + 1) : NULL;

                        /* The bytes as they are, for names that are not UTF-8. */
                        json_writer_key(w, "name_hex");
                        if (h)
                                json_writer_string(w, format_hex_bytes((const uint8_t *) m->name, len, h));
                        else
                                json_writer_null(w);
                }
        }
        if (m->path) {
                json_writer_key(w, "path");
                json_writer_string_len(w, m->path, m->path_len);
        }
        if (m->has_deleted) {
                json_writer_key(w, "deleted");
                json_writer_bool(w, m->deleted);
        }
        if (m->build_id_len > 0) {
                char hex[2 * MEMMAPD_BUILD_ID_MAX + 1];

                json_writer_key(w, "build_id");
                if (m->build_id_len <= MEMMAPD_BUILD_ID_MAX)
                        json_writer_string(w, format_hex_bytes(m->build_id, m->build_id_len, hex));
                else
                        json_writer_null(w);
        }
        json_writer_object_end(w);
}

void memmapd_write_mapping(struct json_writer *w, const struct memmapd_mapping *m) {
        if (!write_mapping_fast(w, m))
                memmapd_write_mapping_general(w, m);
}

static void write_process(struct json_writer *w, int64_t pid, uint64_t start_time, const char *flag) {
        json_writer_key(w, "process");
        json_writer_object_begin(w);
        json_writer_key(w, "pid");
        json_writer_int(w, pid);
        json_writer_key(w, "start_time");
        json_writer_uint(w, start_time);
        if (flag) {
                json_writer_key(w, flag);
                json_writer_bool(w, true);
        }
        json_writer_object_end(w);
}

void memmapd_write_process(struct json_writer *w, int64_t pid, uint64_t start_time, bool kernel_thread) {
        write_process(w, pid, start_time, kernel_thread ? "kernel_thread" : NULL);
}

void memmapd_write_process_exited(struct json_writer *w, int64_t pid, uint64_t start_time) {
        write_process(w, pid, start_time, "exited");
}

/* Formatted straight into the reply, the bytes the writer would write key by key: that way
 * was a third of the daemon's time on a 4,435-address batch once the request decoding got
 * cheap. */
/* A result whose symbol needs escaping, key by key: names are the file's bytes, any bytes. */
static void write_result_general(struct json_writer *w, const struct memmapd_result *r) {
        json_writer_object_begin(w);
        json_writer_key(w, "address");
        json_writer_hex(w, r->address);
        json_writer_key(w, "mapping");
        json_writer_uint(w, (uint64_t) r->mapping);
        if (r->has_file_offset) {
                json_writer_key(w, "file_offset");
                json_writer_hex(w, r->file_offset);
        }
        if (r->has_elf_vaddr) {
                json_writer_key(w, "elf_vaddr");
                json_writer_hex(w, r->elf_vaddr);
        }
        json_writer_key(w, "symbol");
        json_writer_string(w, r->symbol);
        json_writer_key(w, "symbol_offset");
        json_writer_hex(w, r->symbol_offset);
        if (r->symbol_size_unknown) {
                json_writer_key(w, "symbol_size_unknown");
                json_writer_bool(w, true);
        }
        json_writer_object_end(w);
}

void memmapd_write_result(struct json_writer *w, const struct memmapd_result *r) {
        size_t symbol_len = 0;

        if (r->symbol && r->mapping >= 0) {
                symbol_len = strlen(r->symbol);
                if (json_plain_length(r->symbol, symbol_len) != symbol_len) {
                        write_result_general(w, r);
                        return;
                }
        }

        /* At most 12 + 18 + 30 + 16 + 19 + 14 + 19 + 1 bytes, and the symbol's 11 + len + 19 + 19 + 27. */
        char *buf = json_writer_raw_reserve(w, 160 + (symbol_len > 0 ? symbol_len + 80 : 0)), *p = buf;

        if (!buf)
                return;

        PUT_LITERAL(p, "{\"address\":\"");
        p += json_format_hex(r->address, p);
        if (r->mapping < 0 && r->reason == MEMMAPD_REASON_NO_ADDRESS_SPACE)
                PUT_LITERAL(p, "\",\"reason\":\"no_address_space\"");
        else if (r->mapping < 0)
                PUT_LITERAL(p, "\",\"reason\":\"unmapped\"");
        else {
                PUT_LITERAL(p, "\",\"mapping\":");
                p += json_format_uint((uint64_t) r->mapping, p);
        }
        if (r->has_file_offset) {
                PUT_LITERAL(p, ",\"file_offset\":\"");
                p += json_format_hex(r->file_offset, p);
                *p++ = '"';
        }
        if (r->has_elf_vaddr) {
                PUT_LITERAL(p, ",\"elf_vaddr\":\"");
                p += json_format_hex(r->elf_vaddr, p);
                *p++ = '"';
        }
        if (symbol_len > 0) {
                PUT_LITERAL(p, ",\"symbol\":\"");
                memcpy(p, r->symbol, symbol_len);
                p += symbol_len;
                PUT_LITERAL(p, "\",\"symbol_offset\":\"");
                p += json_format_hex(r->symbol_offset, p);
                *p++ = '"';
                if (r->symbol_size_unknown)
                        PUT_LITERAL(p, ",\"symbol_size_unknown\":true");
        }
        *p++ = '}';
        json_writer_raw_commit(w, (size_t) (p - buf));
}

/* ---------------------------------------------------------------- decoding the daemon's exact form */

int memmapd_parse_dev(const char **s, char term, uint32_t *ret_major, uint32_t *ret_minor) {
        const char *p = *s;
        uint32_t v[2] = {};

        for (unsigned part = 0; part < 2; part++) {
                unsigned digits = 0;

                for (; *p && *p != ':' && *p != term; p++, digits++) {
                        int d = unhexchar(*p);

                        if (d < 0 || digits >= 8)
                                return -EPROTO;
                        v[part] = v[part] << 4 | (uint32_t) d;
                }
                if (digits == 0 || (part == 0 && *p != ':') || (part == 1 && *p != term))
                        return -EPROTO;
                if (part == 0)
                        p++;
        }
        *s = p;
        *ret_major = v[0];
        *ret_minor = v[1];
        return 0;
}

/* A string member's value (no NUL in it): 1, or 0 for null and anything else. */
static bool read_text(struct json_reader *j, struct memmapd_text *ret) {
        return json_reader_get_raw(j, &ret->raw, &ret->len, &ret->escaped) > 0;
}

int memmapd_read_mapping_exact(struct json_reader *j, struct memmapd_mapping_text *ret) {
        struct memmapd_mapping_text m = {};
        const char *start = j->p, *s;
        bool negative;

        if (!JSON_READER_LIT(j, "{\"start\":") || json_reader_hex_plain(j, &m.start) <= 0 ||
            !JSON_READER_LIT(j, ",\"end\":") || json_reader_hex_plain(j, &m.end) <= 0 || m.start >= m.end ||
            !JSON_READER_LIT(j, ",\"perms\":\"") || j->end - j->p < 5 || j->p[4] != '"' ||
            perms_parse(j->p, &m.flags) < 0)
                goto other;
        j->p += 5;
        if (!JSON_READER_LIT(j, ",\"offset\":") || json_reader_hex_plain(j, &m.offset) <= 0 ||
            !JSON_READER_LIT(j, ",\"dev\":\""))
                goto other;
        s = j->p;
        if (memmapd_parse_dev(&s, '"', &m.dev_major, &m.dev_minor) < 0)
                goto other;
        j->p = s + 1;
        if (!JSON_READER_LIT(j, ",\"inode\":") || json_reader_number(j, &negative, &m.inode) < 0 || negative)
                goto other;
        if (JSON_READER_LIT(j, ",\"page_size\":") && (json_reader_number(j, &negative, &m.page_size) < 0 || negative))
                goto other;
        if (!JSON_READER_LIT(j, ",\"kind\":\""))
                goto other;
        for (s = j->p; json_reader_plain[(uint8_t) *s]; s++)
                ;
        if (*s != '"')
                goto other;
        m.kind = (struct memmapd_text) { .raw = j->p, .len = (size_t) (s - j->p) };
        j->p = s + 1;
        if (JSON_READER_LIT(j, ",\"name\":") && !(m.has_name = read_text(j, &m.name)))
                goto other;
        if (JSON_READER_LIT(j, ",\"path\":") && !(m.has_path = read_text(j, &m.path)))
                goto other;
        if (JSON_READER_LIT(j, ",\"deleted\":")) {
                m.has_deleted = true;
                if (JSON_READER_LIT(j, "true"))
                        m.deleted = true;
                else if (!JSON_READER_LIT(j, "false"))
                        goto other;
        }
        if (JSON_READER_LIT(j, ",\"build_id\":") && !(m.has_build_id = read_text(j, &m.build_id)))
                goto other;
        if (!JSON_READER_LIT(j, "}"))
                goto other;
        *ret = m;
        return 1;

other:
        j->p = start;
        return 0;
}

int memmapd_read_result_exact(struct json_reader *j, struct memmapd_result *ret) {
        struct memmapd_result r = { .mapping = -1 };
        const char *start = j->p;
        uint64_t index;
        bool negative;

        if (!JSON_READER_LIT(j, "{\"address\":") || json_reader_hex_plain(j, &r.address) <= 0)
                goto other;
        /* A mapping, or the reason there is none: one of the two the writer knows. A newer
         * reason's name, or a result with both or neither, is for the general decoder. */
        if (JSON_READER_LIT(j, ",\"mapping\":")) {
                if (json_reader_number(j, &negative, &index) < 0 || negative || index >= INT64_MAX)
                        goto other;
                r.mapping = (int64_t) index;
        } else if (JSON_READER_LIT(j, ",\"reason\":\"no_address_space\""))
                r.reason = MEMMAPD_REASON_NO_ADDRESS_SPACE;
        else if (!JSON_READER_LIT(j, ",\"reason\":\"unmapped\""))
                goto other;
        if (JSON_READER_LIT(j, ",\"file_offset\":")) {
                if (json_reader_hex_plain(j, &r.file_offset) <= 0)
                        goto other;
                r.has_file_offset = true;
        }
        if (JSON_READER_LIT(j, ",\"elf_vaddr\":")) {
                if (json_reader_hex_plain(j, &r.elf_vaddr) <= 0)
                        goto other;
                r.has_elf_vaddr = true;
        }
        /* The writer's raw form of a symbol: a plain name (json_plain_length()), its offset,
         * the flag; anything else (an escaped name) is the general decoder's. */
        if (r.mapping >= 0 && JSON_READER_LIT(j, ",\"symbol\":\"")) {
                const char *name = j->p;

                while (j->p < j->end && *j->p != '"')
                        j->p++;
                if (j->p == j->end || j->p == name || json_plain_length(name, (size_t) (j->p - name)) != (size_t) (j->p - name))
                        goto other;
                r.symbol = name;
                r.symbol_len = (size_t) (j->p - name);
                j->p++;
                if (!JSON_READER_LIT(j, ",\"symbol_offset\":") || json_reader_hex_plain(j, &r.symbol_offset) <= 0)
                        goto other;
                r.symbol_size_unknown = JSON_READER_LIT(j, ",\"symbol_size_unknown\":true");
        }
        if (!JSON_READER_LIT(j, "}"))
                goto other;
        *ret = r;
        return 1;

other:
        j->p = start;
        return 0;
}

/* ---------------------------------------------------------------- the Lookup call, directly
 *
 * A 4,435-address Lookup spent most of its decoding time building, reading and freeing one
 * json-c node per address. So the addresses array is read here, straight into uint64s, and
 * json-c parses the message with the array replaced by [0]: everything but the addresses
 * keeps the general decoder's (varlink_call_parse()) rules, errors and depth accounting.
 *
 * Why that is the same as parsing the whole message: the array taken out is checked here to
 * be '[' element (',' element)* ']' with JSON whitespace, each element a string of ASCII
 * letters and digits without escapes or an integer without sign, fraction, exponent or
 * leading zero, and in range. Both it and [0] are then complete values, with scalar elements
 * only (the same depth for json-c, which counts a level per element), ASCII, without NUL and
 * without integers json_next_unrepresentable_int() finds; the text around them is the same
 * bytes. So json-c accepts one message exactly when it accepts the other, with the same tree
 * but for that one value. Where the array sits is found by the pull reader (json-reader.h),
 * stricter than json-c, which then confirms the text before and after the array.
 * The scanner declines (and the general decoder takes over) for anything it does not follow:
 * text outside the pull reader's strict subset (json-reader.h: integers beyond 64 bits among
 * them), escaped keys at the top two levels, a repeated "method",
 * "parameters" or "addresses", a method other than Lookup, an element it does not read. */

#define LOOKUP_METHOD MEMMAPD_INTERFACE ".Lookup"

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* One address: a string parse_u64() takes, or a non-negative integer literal. false for
 * anything else, valid or not: the general decoder decides those. */
static bool scan_address(struct json_reader *j, uint64_t *ret) {
        const char *p = j->p;
        uint64_t v = 0;

        if (*p == '"') {
                p++;
                if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
                        p += 2;
                        if (*p == '"')
                                return false;
                        for (; *p != '"'; p++) {
                                unsigned d = hex_value1[(uint8_t) *p];

                                if (d == 0 || v >> 60 != 0)
                                        return false;
                                v = v << 4 | (d - 1);
                        }
                } else {
                        if (*p == '"')
                                return false;
                        for (; *p != '"'; p++) {
                                if (!is_digit(*p) || __builtin_mul_overflow(v, 10, &v) ||
                                    __builtin_add_overflow(v, (uint64_t) (*p - '0'), &v))
                                        return false;
                        }
                }
                p++;
        } else if (is_digit(*p)) {
                if (p[0] == '0' && is_digit(p[1]))
                        return false;
                for (; is_digit(*p); p++)
                        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t) (*p - '0'), &v))
                                return false;
        } else
                return false;

        /* What may follow an element: whitespace, ',' or ']' (a fraction or exponent would
         * make a double; the NUL at the end stops every loop above). */
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != ',' && *p != ']')
                return false;
        j->p = p;
        *ret = v;
        return true;
}

/* The addresses array at j->p: its elements in a malloc()ed *ret (n >= 1). */
static bool scan_addresses(struct json_reader *j, struct memmapd_addresses **ret) {
        _cleanup_free_ struct memmapd_addresses *a = NULL;
        size_t n = 0, allocated = 0;
        bool first = true;
        int r;

        while ((r = json_reader_element(j, &first)) > 0) {
                if (n == allocated) {
                        size_t m = allocated ? 2 * allocated : 256;
                        struct memmapd_addresses *t;

                        /* n is below the message length, so this never overflows. */
                        t = realloc(a, sizeof(*a) + m * sizeof(uint64_t));
                        if (!t)
                                return false;
                        a = t;
                        allocated = m;
                }
                json_reader_ws(j);
                if (!scan_address(j, &a->values[n]))
                        return false;
                n++;
        }
        if (r < 0 || n == 0)
                return false;

        a->n = n;
        *ret = TAKE_PTR(a);
        return true;
}

/* A key json_reader_member() decoded (or returned empty, too long to decode): one the scanner
 * does not follow, as json-c might read it as a known key. */
static bool key_escaped(const struct json_reader *j, const char *k, size_t kl) {
        return k == j->key || kl == 0;
}

/* Finds the Lookup call's addresses array: [*ret_start, *ret_end) of msg, and its values. The
 * text is read by the strict pull reader: what it does not take is declined. */
static bool scan_lookup_call(const char *msg, size_t len, size_t *ret_start, size_t *ret_end,
                             struct memmapd_addresses **ret) {
        _cleanup_free_ struct memmapd_addresses *a = NULL;
        struct json_reader j = { .p = msg, .end = msg + len };
        bool first = true, have_method = false, have_params = false;
        size_t start = 0, end = 0;
        const char *k;
        size_t kl;
        int r;

        while ((r = json_reader_member(&j, &first, &k, &kl)) > 0) {
                if (key_escaped(&j, k, kl))
                        return false;
                if (json_key_is(k, kl, "method")) {
                        /* The method, exactly and without escapes: anything else is not ours. */
                        json_reader_ws(&j);
                        if (have_method || !JSON_READER_LIT(&j, "\"" LOOKUP_METHOD "\""))
                                return false;
                        have_method = true;
                } else if (json_key_is(k, kl, "parameters")) {
                        bool pfirst = true;

                        if (have_params)
                                return false;
                        have_params = true;
                        while ((r = json_reader_member(&j, &pfirst, &k, &kl)) > 0) {
                                if (key_escaped(&j, k, kl))
                                        return false;
                                if (json_key_is(k, kl, "addresses")) {
                                        if (a)
                                                return false;
                                        json_reader_ws(&j);
                                        start = (size_t) (j.p - msg);
                                        if (!scan_addresses(&j, &a))
                                                return false;
                                        end = (size_t) (j.p - msg);
                                } else if (json_reader_skip(&j, 2) < 0)
                                        return false;
                        }
                        if (r < 0)
                                return false;
                } else if (json_reader_skip(&j, 1) < 0)
                        return false;
        }
        json_reader_ws(&j);
        if (r < 0 || j.p != j.end || !have_method || !a)
                return false;

        *ret_start = start;
        *ret_end = end;
        *ret = TAKE_PTR(a);
        return true;
}

/* The call with the addresses array of msg[start, end) replaced by [0], through json-c;
 * then [0] taken out of its parameters. false when json-c refuses it or anything is not as
 * the scanner said: the caller then decodes msg as it is. */
static bool lookup_call_rest(const char *msg, size_t len, size_t start, size_t end, unsigned max_depth,
                             struct varlink_call *ret) {
        static const char placeholder[] = "[0]";
        _cleanup_free_ char *text = NULL;
        struct varlink_call c;
        struct json_object *v;
        size_t n;

        n = start + strlen(placeholder) + (len - end);
        text = malloc(n + 1);
        if (!text)
                return false;
        memcpy(text, msg, start);
        memcpy(text + start, placeholder, strlen(placeholder));
        memcpy(text + start + strlen(placeholder), msg + end, len - end);
        text[n] = 0;

        if (varlink_call_parse(text, n, max_depth, &c, NULL) < 0)
                return false;
        if (strcmp(c.method, LOOKUP_METHOD) != 0 || !json_object_object_get_ex(c.parameters, "addresses", &v) ||
            !json_object_is_type(v, json_type_array) || json_object_array_length(v) != 1 ||
            !json_object_is_type(json_object_array_get_idx(v, 0), json_type_int) ||
            json_object_get_int64(json_object_array_get_idx(v, 0)) != 0) {
                varlink_call_done(&c);
                return false;
        }
        json_object_object_del(c.parameters, "addresses");
        *ret = c;
        return true;
}

static void addresses_free(void *p) {
        free(p);
}

int memmapd_call_parse(const char *msg, size_t len, unsigned max_depth, struct varlink_call *ret,
                       const char **ret_bad_field) {
        _cleanup_free_ struct memmapd_addresses *a = NULL;
        size_t start, end;
        struct varlink_call c;

        /* Anything the direct path does not take, or that json-c then refuses, is decoded
         * as it is, so every error is the general decoder's. */
        if (msg && len <= INT_MAX && msg[len] == 0 && scan_lookup_call(msg, len, &start, &end, &a) &&
            lookup_call_rest(msg, len, start, end, max_depth, &c)) {
                c.decoded = TAKE_PTR(a);
                c.decoded_free = addresses_free;
                *ret = c;
                return 0;
        }
        return varlink_call_parse(msg, len, max_depth, ret, ret_bad_field);
}

const struct memmapd_addresses *memmapd_call_addresses(const struct varlink_call *c) {
        return c && c->decoded_free == addresses_free ? c->decoded : NULL;
}
