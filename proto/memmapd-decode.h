/* The io.memmapd wire types decoded in any valid form (what a client accepts from any daemon): Mapping, ProcessId, LookupResult, Status, and json-c members in the wire's forms. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json-reader.h"
#include "memmapd-codec.h"

struct json_object;

/* What a client accepts from any daemon that speaks io.memmapd: members in any order, unknown
 * members ignored, null meaning absent. Two readers of each type, one on the pull reader
 * (json-reader.h: for replies read in place) and one on a json-c tree (for the rest); both
 * accept the same values with the same result. They check what the wire format promises
 * (types, forms, start < end, perms, dev); what a value means to the call (the process
 * asked, an index into the reply's mappings) is the caller's to check. A string member is
 * given as text (struct memmapd_text: into the reader's text, or, from json-c, the tree's
 * decoded NUL-terminated string, never escaped). */

/* One Mapping object, at nesting level depth: 1 and *ret, or -EPROTO. The exact form above
 * is the fast case of it. */
int memmapd_read_mapping(struct json_reader *j, unsigned depth, struct memmapd_mapping_text *ret);
int memmapd_mapping_from_json(struct json_object *o, struct memmapd_mapping_text *ret);

/* A build ID as the wire carries it (lowercase hex, 1 to MEMMAPD_BUILD_ID_MAX bytes): 0 with
 * its bytes in ret and their number in *ret_len, or -EPROTO. */
int memmapd_parse_build_id(const char *hex, size_t len, uint8_t ret[static MEMMAPD_BUILD_ID_MAX], size_t *ret_len);

/* The exact bytes of a name that is not UTF-8 (a Mapping's name_hex, hex_len digits): checked
 * against name (name_len bytes: those bytes with U+FFFD for each byte outside well-formed
 * UTF-8) and path (path_len bytes, a prefix of name; NULL: none). 0 with the bytes in
 * ret_exact (hex_len / 2 of them, no NUL among them) and the length of the path's in
 * *ret_path_len, or -EPROTO. */
int memmapd_parse_name_hex(const char *hex, size_t hex_len, const char *name, size_t name_len, const char *path,
                           size_t path_len, char *ret_exact, size_t *ret_path_len);

/* A ProcessId. */
struct memmapd_process {
        uint64_t pid;
        uint64_t start_time;
        bool kernel_thread;
        bool exited;            /* answered from what was kept after its exit */
};

/* A ProcessId object: 0 and *ret (pid and start_time present), or -EPROTO. */
int memmapd_read_process(struct json_reader *j, unsigned depth, struct memmapd_process *ret);
int memmapd_process_from_json(struct json_object *o, struct memmapd_process *ret);

/* A LookupResult in any valid form. */
struct memmapd_result_text {
        uint64_t address;
        uint64_t mapping;               /* UINT64_MAX: none */
        bool has_reason;
        struct memmapd_text reason;     /* shorter than JSON_READER_SHORT_MAX from the pull reader */
        bool has_file_offset;
        bool has_elf_vaddr;
        uint64_t file_offset;
        uint64_t elf_vaddr;
        /* Lookup's symbols: present with a mapping only. */
        bool has_symbol;
        struct memmapd_text symbol;
        uint64_t symbol_offset;
        bool symbol_size_unknown;
};

/* A LookupResult object: 0 and *ret, or -EPROTO. The address may be any string form
 * parse_u64() takes. Without a mapping, file_offset and elf_vaddr mean nothing: the pull reader
 * checks and clears them, the json-c reader leaves them unread. */
int memmapd_read_result(struct json_reader *j, unsigned depth, struct memmapd_result_text *ret);
int memmapd_result_from_json(struct json_object *o, struct memmapd_result_text *ret);

/* GetStatus's reply (a Status, with its Limits): the strings json-c's, the counters 0 when a
 * daemon older than them sent none. */
struct memmapd_status {
        const char *version;
        const char *kernel;
        const char *backend;
        uint64_t uptime_usec;
        uint64_t requests;
        uint64_t errors;
        uint64_t elf_cache_hits;
        uint64_t elf_cache_misses;
        uint64_t elf_cache_entries;
        uint64_t connections;
        uint64_t oneway_skipped;
        uint64_t output_held;
        uint64_t parked;
        uint64_t file_readers;
        uint64_t file_readers_busy;
        uint64_t file_readers_stuck;
        uint64_t file_read_timeouts;
        uint64_t file_reads_refused;
        const char *tracking;           /* NULL: not said */
        uint64_t layout_cache_hits;
        uint64_t layout_cache_misses;
        uint64_t layout_cache_entries;
        uint64_t layout_cache_bytes;
        uint64_t symbol_cache_hits;
        uint64_t symbol_cache_misses;
        uint64_t symbol_cache_bytes;
        /* limits */
        uint64_t max_message_size;
        uint64_t max_addresses;
        uint64_t max_connections;
        uint64_t max_connections_per_uid;
        uint64_t max_output_queue;
        uint64_t idle_timeout_sec;
        uint64_t max_json_depth;
        uint64_t reserved_connections;
        uint64_t output_budget;
        uint64_t output_budget_per_uid;
};

/* GetStatus's parameters: 0 and *ret, or -EPROTO. */
int memmapd_status_from_json(struct json_object *params, struct memmapd_status *ret);

/* The members of json-c objects in the wire's forms, for the types above and the methods'
 * other parameters: absent and null are both "not there" (0, or -EPROTO when required).
 * A string with a NUL in it, an integer below 0, an address not "0x" and hex digits: -EPROTO. */
struct json_object *memmapd_json_member(struct json_object *o, const char *key);
int memmapd_json_get_string(struct json_object *o, const char *key, bool required, const char **ret);
int memmapd_json_get_uint(struct json_object *o, const char *key, bool required, uint64_t *ret);
int memmapd_json_get_bool(struct json_object *o, const char *key, bool *ret);
/* *ret_present (may be NULL) is set when the member is there. */
int memmapd_json_get_hex(struct json_object *o, const char *key, bool required, uint64_t *ret, bool *ret_present);

