/* libmemctl's insides shared by its files: the connection, the reply tables, the arena, and the calls between them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>

#include "json-writer.h"
#include "libmemctl.h"
#include "memmapd-codec.h"
#include "memmapd-decode.h"
#include "varlink-frame.h"

/* Bounds of what we send and what we accept from the daemon. */
#define REPLY_SIZE_MAX (64u * 1024 * 1024)
/* A streamed listing comes in many messages: bounded in all too. The daemon lists at most
 * 2^20 mappings; a listing that long with build IDs is some 300 MB of JSON. */
#define STREAM_SIZE_MAX (1024u * 1024 * 1024)
#define MAPPINGS_MAX (1u << 20)
#define REQUEST_SIZE_MAX (64u * 1024 * 1024)
/* A connection keeps its receive and request buffers for its next calls, so that large
 * replies stop costing a page fault per 4 KiB on every call, but not beyond this. */
#define BUFFER_KEEP_MAX (16u * 1024 * 1024)

/* The size of a public struct up to and including member: what libmemctl 0.1 defined. */
#define ENDOF(type, member) (offsetof(type, member) + sizeof(((type *) NULL)->member))
#define MAPPING_SIZE_0_1 ENDOF(struct memctl_mapping, build_id_size)
#define LOOKUP_RESULT_SIZE_0_1 ENDOF(struct memctl_lookup_result, elf_vaddr)
#define STATUS_INFO_SIZE_0_1 ENDOF(struct memctl_status_info, max_json_depth)
#define PROCESS_SIZE_0_3 ENDOF(struct memctl_process, kernel_thread)

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct memctl {
        int fd;
        char *path;
        uint64_t timeout_usec;          /* MEMCTL_TIMEOUT_INFINITY: none */
        struct varlink_reader reader;
        char *request;                  /* kept for the next call: see BUFFER_KEEP_MAX */
        size_t request_allocated;
        char *error_name;               /* the last call's Varlink error, or NULL */
        struct json_object *error_parameters;
        uint64_t max_addresses;         /* the daemon's, once it said (LimitExceeded); 0: unknown */
        /* Set during a call that expects an fd with its reply (OpenMappingFile): reads then take
         * passed fds, the first into it, and close the rest. NULL: fds are never taken (the
         * kernel drops what a read() does not take). */
        int *passed_fd;
        /* Set during a call asked to stream in parts that the fast decoder does not take
         * (FindMappings): each part's parameters go to it; NULL parameters: the call starts
         * over (a retry), forget the parts. A negative return ends the call with it. */
        int (*on_part)(struct json_object *parameters, void *userdata);
        void *part_userdata;
};

/* Memory a reply's strings and binary build IDs are kept in, freed all at once. */
struct arena_chunk {
        struct arena_chunk *next;
        size_t used, size;
        char data[];
};

struct mapping_table {
        struct json_object *parameters; /* owns the strings of a reply decoded by json-c */
        struct arena_chunk *arena;      /* the other strings, and the binary build IDs */
        struct memctl_mapping *items;
        size_t n;
        size_t allocated;               /* items has room for; the parts of a streamed reply add up */
        pid_t pid;
        uint64_t start_time;
        bool kernel_thread;
        bool exited;                    /* answered from what was kept after an exit */
};

struct memctl_mappings {
        struct mapping_table table;
};

struct memctl_lookup_reply {
        struct mapping_table table;
        struct memctl_lookup_result *results;
        size_t n_results;
        /* A batch split by the library: the replies of its parts, which own the strings
         * table's items point to (table then owns only its items). */
        memctl_lookup_reply **parts;
        size_t n_parts;
};

struct memctl_status {
        struct json_object *parameters;
        struct memctl_status_info info;
};

/* Lookup and ListMappings replies can be megabytes: they are decoded straight from the message
 * text (client/reply-fast.c) instead of through a json-c tree. */
struct fast_decode {
        /* what was asked */
        bool lookup;
        pid_t pid;
        uint64_t start_time;
        const uint64_t *addresses;
        size_t n_addresses;
        bool more;              /* asked for a streamed reply (ListMappings) */
        /* what was answered: done once a successful reply was decoded */
        size_t parts;           /* of a streamed reply, decoded so far */
        size_t streamed;        /* bytes of those parts */
        bool done;
        struct mapping_table table;
        struct memctl_lookup_result *results;
};


/* client/transport.c */
void error_clear(memctl *c);
int error_to_errno(const char *name);
/* A deadline timeout_usec from now (MEMCTL_TIMEOUT_INFINITY: UINT64_MAX), and the poll()
 * timeout left until it. */
uint64_t deadline_after(uint64_t timeout_usec);
int poll_timeout(uint64_t deadline);
int call(memctl *c, const char *req, size_t req_len, struct fast_decode *fast, struct json_object **ret_parameters);
int call_writer(memctl *c, struct json_writer *w, struct fast_decode *fast, struct json_object **ret_parameters);

/* client/reply-decode.c */
void *arena_alloc(struct arena_chunk **arena, size_t n);
void arena_free(struct arena_chunk **arena);
char *arena_strndup(struct arena_chunk **arena, const char *s, size_t n);
/* A string kept in the arena, by the text it was decoded from: consecutive mappings of one
 * file repeat their name, path and build ID, and keep one copy. */
struct text_memo {
        const char *raw;
        size_t raw_len;
        const char *copy;
        const uint8_t *build_id;
        size_t build_id_size;
};
/* Where the strings of the codec's decoded types go. */
struct text_keep {
        struct arena_chunk **arena;
        /* The texts are json-c's strings, which the reply's tree keeps: pointed to, not copied. */
        bool borrow;
        struct text_memo name, build_id;
};
/* A Mapping, a LookupResult (for the address asked; its mapping index unchecked) as the
 * codec decoded them, into the public structs. */
int mapping_from_text(struct text_keep *k, const struct memmapd_mapping_text *t, struct memctl_mapping *m);
int result_from_text(struct arena_chunk **arena, const struct memmapd_result_text *t, uint64_t address,
                     struct memctl_lookup_result *ret);
int parse_mapping(struct json_object *o, struct arena_chunk **arena, struct memctl_mapping *m);
int parse_process(struct json_object *params, pid_t pid, uint64_t start_time, pid_t *ret_pid, uint64_t *ret_start_time,
                  bool *ret_kernel_thread);
/* Whether the reply's process is marked exited (a malformed or missing mark: false). */
bool parse_process_exited(struct json_object *params);
void mapping_table_done(struct mapping_table *t);
int mapping_table_parse(struct json_object *params, pid_t pid, uint64_t start_time, struct mapping_table *t);
int copy_sized(void *ret, const void *src, size_t src_size, size_t min_size);
int mapping_table_get(const struct mapping_table *t, size_t index, struct memctl_mapping *ret);
int process_get(const struct mapping_table *t, pid_t *ret_pid, uint64_t *ret_start_time);
int process_info_get(const struct mapping_table *t, struct memctl_process *ret);

/* client/libmemctl.c: a Lookup reply's parameters (taken over: l frees them) decoded into l,
 * for the addresses asked. */
int lookup_reply_parse(struct json_object *params, pid_t pid, uint64_t start_time, const uint64_t *addresses,
                       size_t n_addresses, memctl_lookup_reply *l);

/* client/reply-fast.c */
void fast_decode_done(struct fast_decode *f);
int fast_decode_reply(struct fast_decode *f, const char *msg, size_t len);

