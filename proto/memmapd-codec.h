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
#define MEMMAPD_ERROR_TRACKING_UNAVAILABLE MEMMAPD_INTERFACE ".TrackingUnavailable"
#define MEMMAPD_ERROR_TIME_NOT_KNOWN MEMMAPD_INTERFACE ".TimeNotKnown"

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
/* The same for a process that exited, answered from what was kept: ...,"exited":true}. */
void memmapd_write_process_exited(struct json_writer *w, int64_t pid, uint64_t start_time);

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
        /* Lookup's symbols (issue 16): symbol NULL when there is none. The writer takes it
         * NUL-terminated; the exact reader points it into the text (symbol_len bytes, not
         * terminated). */
        const char *symbol;
        size_t symbol_len;
        uint64_t symbol_offset;
        bool symbol_size_unknown;
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
