/* libmemctl's direct decoding of ListMappings and Lookup replies, on proto/'s JSON reader, into the public structs. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json-reader.h"
#include "libmemctl-internal.h"
#include "memmapd-codec.h"
#include "memmapd-decode.h"

/* The successful replies of ListMappings and Lookup are read where the frame reader holds
 * them, writing nothing there: the strings a result keeps are copied to its arena, everything
 * else (keys, addresses, numbers, permissions) is read from the text as it is. A reply of
 * 60,000 mappings costs a few allocations instead of a json-c tree (decoding through json-c
 * was three quarters of a 4,435-address Lookup's time; see BENCHMARKS.md) or a copy of the
 * message (a tenth of a large listing's time, most of it page faults).
 * It never decides alone that a reply is bad: whatever it does not accept (an error reply,
 * and anything outside the reader's subset, or a known member twice) goes to the general
 * decoder (varlink_reply_parse() and the codec's json-c readers), which then answers as it
 * always did, from the untouched message. What it accepts, the general decoder accepts with the
 * same result. */

struct jreader {
        struct json_reader r;
        struct text_keep keep;
};

/* One mapping: exactly as the daemon writes it (memmapd_read_mapping_exact()), or else in any
 * form (memmapd_read_mapping()), at nesting level depth. */
static int j_mapping(struct jreader *j, unsigned depth, struct memctl_mapping *m) {
        struct memmapd_mapping_text t;
        int r;

        r = memmapd_read_mapping_exact(&j->r, &t);
        if (r == 0)
                r = memmapd_read_mapping(&j->r, depth, &t);
        if (r < 0)
                return r;
        return mapping_from_text(&j->keep, &t, m);
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
                r = j_mapping(j, depth + 1, &t->items[t->n]);
                if (r < 0)
                        return r;
                t->n++;
        }
        return r;
}

/* One Lookup result: exactly as the daemon writes it (memmapd_read_result_exact()), or else in
 * any form (memmapd_read_result()), for the address asked. */
static int j_result(struct jreader *j, unsigned depth, uint64_t address, struct memctl_lookup_result *ret) {
        struct memmapd_result exact;
        struct memmapd_result_text t;
        int r;

        r = memmapd_read_result_exact(&j->r, &exact);
        if (r > 0) {
                const char *reason = exact.reason == MEMMAPD_REASON_NO_ADDRESS_SPACE ? "no_address_space" : "unmapped";

                /* The exact form has a reason exactly when it has no mapping. */
                t = (struct memmapd_result_text) {
                        .address = exact.address,
                        .mapping = exact.mapping < 0 ? UINT64_MAX : (uint64_t) exact.mapping,
                        .has_reason = exact.mapping < 0,
                        .reason = { .raw = reason, .len = strlen(reason) },
                        .has_file_offset = exact.has_file_offset,
                        .has_elf_vaddr = exact.has_elf_vaddr,
                        .file_offset = exact.file_offset,
                        .elf_vaddr = exact.elf_vaddr,
                        .has_symbol = exact.symbol != NULL,
                        .symbol = { .raw = exact.symbol, .len = exact.symbol_len },
                        .symbol_offset = exact.symbol_offset,
                        .symbol_size_unknown = exact.symbol_size_unknown,
                };
        } else {
                r = memmapd_read_result(&j->r, depth, &t);
                if (r < 0)
                        return r;
        }
        return result_from_text(j->keep.arena, &t, address, ret);
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
        struct jreader j = { .r = { .p = msg, .end = msg + len }, .keep.arena = &f->table.arena };
        unsigned seen = 0;
        bool first = true, have_process = false, continues = false;
        struct memmapd_process p = {};
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
                                        if (json_reader_seen(&seen, 2) < 0 || memmapd_read_process(&j.r, 3, &p) < 0)
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
        if (p.pid == 0 || p.pid > INT32_MAX || (f->start_time != 0 && p.start_time != f->start_time) ||
            (f->parts > 0 && (p.start_time != f->table.start_time || (pid_t) p.pid != f->table.pid ||
                              p.kernel_thread != f->table.kernel_thread)))
                goto fail;
        f->table.pid = (pid_t) p.pid;
        f->table.start_time = p.start_time;
        f->table.kernel_thread = p.kernel_thread;
        f->table.exited = p.exited;
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

