/* The io.memmapd wire types (Mapping, ProcessId, LookupResult, Status, errors): their one encoder, their decoders, and the Lookup call decoder. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json-writer.h"
#include "perms.h"
#include "varlink.h"

#define MEMMAPD_INTERFACE "io.memmapd"

/* Its description, embedded from proto/io.memmapd.varlink. */
extern const char memmapd_interface_description[];

/* The io.memmapd errors (proto/io.memmapd.varlink), named once for the daemon and libmemctl. */
#define MEMMAPD_ERROR_NO_SUCH_PROCESS MEMMAPD_INTERFACE ".NoSuchProcess"
#define MEMMAPD_ERROR_PERMISSION_DENIED MEMMAPD_INTERFACE ".PermissionDenied"
#define MEMMAPD_ERROR_PROCESS_CHANGED MEMMAPD_INTERFACE ".ProcessChanged"
#define MEMMAPD_ERROR_LIMIT_EXCEEDED MEMMAPD_INTERFACE ".LimitExceeded"
#define MEMMAPD_ERROR_INTERNAL MEMMAPD_INTERFACE ".InternalError"
#define MEMMAPD_ERROR_NO_VDSO MEMMAPD_INTERFACE ".NoVdso"
#define MEMMAPD_ERROR_NOT_MAPPED MEMMAPD_INTERFACE ".NotMapped"
#define MEMMAPD_ERROR_NO_FILE MEMMAPD_INTERFACE ".NoFile"
#define MEMMAPD_ERROR_FILE_UNAVAILABLE MEMMAPD_INTERFACE ".FileUnavailable"

/* Permission bits of a Mapping ("rwxs" of its perms): basic/perms.h's, whose text the wire carries. */
enum {
        MEMMAPD_PERM_READ = PERM_READ,
        MEMMAPD_PERM_WRITE = PERM_WRITE,
        MEMMAPD_PERM_EXEC = PERM_EXEC,
        MEMMAPD_PERM_SHARED = PERM_SHARED,
};

/* GNU build IDs are usually 20 bytes; linkers accept longer custom ones. */
#define MEMMAPD_BUILD_ID_MAX 64

/* A Mapping as the wire carries it: what the encoder writes, borrowed from its owner (the
 * daemon's engine, libmemctl's reply) for the call. */
struct memmapd_mapping {
        uint64_t start;
        uint64_t end;
        uint64_t offset;
        uint64_t inode;
        uint32_t dev_major;
        uint32_t dev_minor;
        uint64_t page_size;             /* 0: absent */
        unsigned flags;                 /* MEMMAPD_PERM_* */
        const char *kind;               /* the protocol's name: "file", "heap", ... */
        const char *name;               /* NUL-terminated, any bytes; NULL: absent */
        const char *path;               /* path_len bytes (may point into name); NULL: absent */
        size_t path_len;
        bool has_deleted;               /* write "deleted" (the file kind) */
        bool deleted;
        const uint8_t *build_id;        /* build_id_len bytes; none when 0 */
        size_t build_id_len;
};

/* Appends one Mapping object. Members in the order the daemon has always written them;
 * a name that is not UTF-8 is written with its bytes replaced and, in "name_hex", exactly.
 * Errors go to the writer's error state. */
void memmapd_write_mapping(struct json_writer *w, const struct memmapd_mapping *m);

/* The same bytes through the writer's general key-by-key path: the reference the direct
 * formatting is tested against. */
void memmapd_write_mapping_general(struct json_writer *w, const struct memmapd_mapping *m);

/* "%02x:%02x" as /proc/PID/maps shows a device; buf holds 18 bytes. Returns the length. */
size_t memmapd_format_dev(uint32_t major, uint32_t minor, char *buf);

/* Appends "process":{"pid":PID,"start_time":T[,"kernel_thread":true]} (a ProcessId) as a
 * member of the object being written. */
void memmapd_write_process(struct json_writer *w, int64_t pid, uint64_t start_time, bool kernel_thread);

/* Why a LookupResult has no mapping. */
enum memmapd_reason {
        MEMMAPD_REASON_UNMAPPED,
        MEMMAPD_REASON_NO_ADDRESS_SPACE,
};

struct memmapd_result {
        uint64_t address;
        int64_t mapping;                /* index into the reply's mappings; < 0: none */
        enum memmapd_reason reason;     /* when mapping < 0 */
        bool has_file_offset;
        bool has_elf_vaddr;
        uint64_t file_offset;
        uint64_t elf_vaddr;
};

/* Appends one LookupResult object. */
void memmapd_write_result(struct json_writer *w, const struct memmapd_result *r);

/* ---------------------------------------------------------------- decoding the daemon's exact form */

#include "json-reader.h"

struct json_object;

/* A string as it stands in the text, between its quotes: escaped when it holds escapes
 * (json_reader_copy_string() decodes it); never holds \u0000. */
struct memmapd_text {
        const char *raw;
        size_t len;
        bool escaped;
};

/* A Mapping read by memmapd_read_mapping_exact(): the values, and the strings as text for
 * the caller to keep as it likes. */
struct memmapd_mapping_text {
        uint64_t start;
        uint64_t end;
        uint64_t offset;
        uint64_t inode;
        uint64_t page_size;             /* 0: absent */
        uint32_t dev_major;
        uint32_t dev_minor;
        unsigned flags;                 /* MEMMAPD_PERM_* */
        struct memmapd_text kind;       /* the exact form's has no escapes; shorter than JSON_READER_SHORT_MAX from the pull readers */
        bool has_name, has_path, has_deleted, has_build_id, has_name_hex;
        bool deleted;
        struct memmapd_text name, path, build_id, name_hex;
};

/* Reads one Mapping exactly as memmapd_write_mapping() writes it: its members in that order,
 * no whitespace, the values in their plain forms (start < end). Matching whole literals
 * instead of reading keys one by one was a third of a large listing's time in libmemctl.
 * 1 and *ret; 0 with the reader where it was for anything else (valid or not: a general
 * decoder decides), so the form is a contract with the encoder above, which
 * tests/test-memmapd-codec holds them to. */
int memmapd_read_mapping_exact(struct json_reader *j, struct memmapd_mapping_text *ret);

/* The same for a LookupResult as memmapd_write_result() writes it (mapping below INT64_MAX,
 * or else one of the reasons of enum memmapd_reason: a result with another reason reads as
 * "anything else", so that its name is not lost). */
int memmapd_read_result_exact(struct json_reader *j, struct memmapd_result *ret);

/* "major:minor" in hex (1 to 8 digits each) as /proc/PID/maps shows a device, ending at the
 * byte term: 0 and *s left at term, or -EPROTO. */
int memmapd_parse_dev(const char **s, char term, uint32_t *ret_major, uint32_t *ret_minor);

/* ---------------------------------------------------------------- decoding any valid form
 *
 * What a client accepts from any daemon that speaks io.memmapd: members in any order, unknown
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

/* ---------------------------------------------------------------- the Lookup call */

/* The addresses of a Lookup call that memmapd_call_parse() read itself. */
struct memmapd_addresses {
        size_t n;                       /* >= 1 */
        uint64_t values[];
};

/* varlink_call_parse() for calls to the daemon: the same result (return value, method,
 * flags, the other parameters and their order), but a Lookup call whose "addresses" is a
 * non-empty array of plain address strings ("0x..." or decimal, no escapes) and non-negative
 * integers is decoded without a json-c node per address: the array is then not in
 * ret->parameters, memmapd_call_addresses() gives it. */
int memmapd_call_parse(const char *msg, size_t len, unsigned max_depth, struct varlink_call *ret,
                       const char **ret_bad_field);

/* The addresses memmapd_call_parse() took out of c's parameters, or NULL (then "addresses",
 * if any, is in c->parameters). */
const struct memmapd_addresses *memmapd_call_addresses(const struct varlink_call *c);
