/* libmemctl: the C client library of memmapd, the daemon that answers questions about Linux processes' memory maps. */
#ifndef LIBMEMCTL_H
#define LIBMEMCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Conventions
 *
 *  - Functions that can fail return an int: >= 0 on success, -errno on failure. Output
 *    parameters are named ret_* and come last; they are left untouched on failure.
 *  - Destructors (memctl_*_free) accept NULL and return NULL: p = memctl_free(p);
 *  - Strings handed out point into the object they came from and stay valid until that
 *    object is freed (or, for memctl_last_error_*, until the next call on the connection).
 *  - No global state. A connection is not thread-safe: use one connection per thread (or
 *    lock around it). Result objects are immutable and may be read from any thread.
 *  - The library never prints, never logs, and never touches signal dispositions; writes
 *    use MSG_NOSIGNAL, so a vanished daemon is an error (-EPIPE/-ECONNRESET), not SIGPIPE.
 *
 * ABI growth
 *
 *  Connections and replies are opaque objects read through accessor functions. Per-item
 *  data is copied out into public structs that begin with a "size_t size" member which the
 *  caller sets to sizeof() the struct as it was compiled (use the MEMCTL_*_INIT initializers,
 *  or zero the struct and set .size).  New library versions only ever append members, so:
 *    - an older caller (smaller size) gets the prefix it knows about;
 *    - a newer caller (larger size) on an older library gets the members that library
 *      knows, and every member beyond them is zeroed;
 *    - a size smaller than the struct of libmemctl 0.1 (of 0.3 for struct memctl_process) is
 *      -EINVAL.
 *  The library never writes the size member.
 *
 * Errors
 *
 *  Daemon (Varlink) errors are mapped to errno values:
 *    io.memmapd.NoSuchProcess                      -ESRCH
 *    io.memmapd.PermissionDenied,
 *    org.varlink.service.PermissionDenied          -EACCES
 *    io.memmapd.ProcessChanged                     -ESTALE  (start time mismatch)
 *    io.memmapd.LimitExceeded                      -E2BIG
 *    org.varlink.service.InvalidParameter          -EINVAL
 *    org.varlink.service.MethodNotFound,
 *    org.varlink.service.MethodNotImplemented,
 *    org.varlink.service.InterfaceNotFound         -EOPNOTSUPP
 *    any other error                               -EPROTO
 *  The error's name and parameters are kept on the connection (memctl_last_error_*()); they
 *  are cleared at the start of every call, so after a failed call a NULL
 *  memctl_last_error_name() means the failure was local or in transport, not the daemon's
 *  answer. A malformed, oversized (> 64 MiB) or inconsistent reply is -EPROTO. Transport:
 *  connect() errors as connect() reports them (-ENOENT, -ECONNREFUSED, -EACCES, ...), a
 *  broken connection -ECONNRESET or -EPIPE, no reply within the timeout -ETIMEDOUT.
 *
 *  Every call is idempotent: when the connection turns out to be broken before the reply
 *  arrived (the daemon restarted or closed an idle connection), the library reconnects once
 *  to the same socket and retries the call once.
 */

/* Initializes a public struct for the calls that fill it: zeroed, with size set. */
#ifdef __cplusplus
#  define MEMCTL_INIT(type) ([] { type _x{}; _x.size = sizeof(type); return _x; }())
#else
#  define MEMCTL_INIT(type) { .size = sizeof(type) }
#endif

typedef struct memctl memctl;                          /* a connection */
typedef struct memctl_mappings memctl_mappings;        /* a ListMappings reply */
typedef struct memctl_lookup_reply memctl_lookup_reply; /* a Lookup reply */
typedef struct memctl_status memctl_status;            /* a GetStatus reply */

/* ------------------------------------------------------------------ connections */

#define MEMCTL_SOCKET_PATH_SYSTEM "/run/memmapd/io.memmapd"
#define MEMCTL_TIMEOUT_DEFAULT_USEC (30 * UINT64_C(1000000))
#define MEMCTL_TIMEOUT_INFINITY UINT64_MAX

/* The socket memctl_connect(NULL, ...) uses, newly allocated (free() it): $MEMMAPD_SOCKET
 * if set and not empty; else for root /run/memmapd/io.memmapd; for others
 * $XDG_RUNTIME_DIR/memmapd/io.memmapd if that exists, else /run/memmapd/io.memmapd.
 * Environment variables are read with secure_getenv(). */
int memctl_default_socket_path(char **ret_path);

/* Connects to the daemon at path (NULL: see memctl_default_socket_path(); a path starting
 * with '@' names a socket in the abstract namespace). The timeout is the default one. */
int memctl_connect(const char *path, memctl **ret);

/* Closes the connection and frees it. */
memctl *memctl_free(memctl *c);

/* How long one call may take, connecting, sending and receiving included, in microseconds:
 * 0 restores the default (MEMCTL_TIMEOUT_DEFAULT_USEC), MEMCTL_TIMEOUT_INFINITY waits
 * forever. After a timeout the connection is closed; the next call reconnects. */
int memctl_set_timeout(memctl *c, uint64_t timeout_usec);

/* The Varlink error name of the last call on c ("io.memmapd.NoSuchProcess", ...), or NULL
 * when it succeeded or failed without an answer from the daemon. */
const char *memctl_last_error_name(const memctl *c);
/* That error's parameters as JSON object text ("{}" when it had none), or NULL. */
const char *memctl_last_error_parameters(const memctl *c);
/* One parameter of that error: "parameter" of InvalidParameter, "limit" and "max" of
 * LimitExceeded, "pid", "expected_start_time", ... -ENODATA when there is no last error or
 * no such parameter, -EPROTO when it has another type. ret_value is valid until the next
 * call on c. */
int memctl_last_error_string(const memctl *c, const char *key, const char **ret_value);
int memctl_last_error_int(const memctl *c, const char *key, int64_t *ret_value);

/* ------------------------------------------------------------------ mappings */

/* Bits of memctl_mapping.flags */
#define MEMCTL_MAPPING_READ   (1u << 0)
#define MEMCTL_MAPPING_WRITE  (1u << 1)
#define MEMCTL_MAPPING_EXEC   (1u << 2)
#define MEMCTL_MAPPING_SHARED (1u << 3)

/* What a mapping is (the protocol's MappingKind). A kind that a newer daemon reports and this
 * library does not know is MEMCTL_KIND_UNKNOWN; memctl_mapping.kind_name still names it. */
enum memctl_mapping_kind {
        MEMCTL_KIND_UNKNOWN = 0,
        MEMCTL_KIND_ANONYMOUS,   /* no name */
        MEMCTL_KIND_FILE,        /* a file: see path, deleted */
        MEMCTL_KIND_HEAP,        /* [heap] */
        MEMCTL_KIND_STACK,       /* [stack] */
        MEMCTL_KIND_VDSO,        /* [vdso] */
        MEMCTL_KIND_VVAR,        /* [vvar], [vvar_vclock] */
        MEMCTL_KIND_VSYSCALL,    /* [vsyscall], the x86-64 gate area */
        MEMCTL_KIND_MEMFD,       /* /memfd:NAME (deleted): path is set */
        MEMCTL_KIND_ANON_NAMED,  /* [anon:NAME] */
        MEMCTL_KIND_SHMEM_NAMED, /* [anon_shmem:NAME] */
        MEMCTL_KIND_SPECIAL,     /* anon_inode:..., /dev/zero (deleted), [uprobes], ... */
};

/* One mapping (VMA). Strings and build_id point into the reply object. */
struct memctl_mapping {
        size_t size;              /* set by the caller: sizeof(struct memctl_mapping) */
        uint64_t start;           /* first address */
        uint64_t end;             /* first address after the mapping */
        uint64_t offset;          /* offset in the backing file */
        uint64_t inode;
        uint32_t dev_major;
        uint32_t dev_minor;
        uint64_t page_size;       /* 0: not known */
        uint32_t flags;           /* MEMCTL_MAPPING_READ | ... */
        char perms[5];            /* "r-xp", as /proc/PID/maps shows it */
        bool deleted;             /* file kind: the file was deleted or replaced */
        int kind;                 /* enum memctl_mapping_kind */
        const char *kind_name;    /* the protocol's name of the kind: "file", "heap", ... */
        const char *name;         /* the kernel's name, unescaped; NULL for anonymous memory */
        const char *path;         /* file and memfd kinds: the path without " (deleted)"; else NULL */
        const char *build_id_hex; /* GNU build ID, lowercase hex, or NULL (unknown or not asked) */
        const uint8_t *build_id;  /* the same in binary, build_id_size bytes; NULL when none */
        size_t build_id_size;
        /* Appended after LIBMEMCTL_0.2 (no new symbol: the size tells); NULL from an older library. */
        const char *name_exact;   /* name byte for byte as the kernel has it: where that is not valid
                                   * UTF-8, name and path carry U+FFFD for each invalid byte (JSON
                                   * text cannot hold them) and the daemon sends the bytes besides
                                   * (name_hex); else the same text as name. NULL when name is */
        const char *path_exact;   /* path likewise: what to open; NULL when path is */
};
#define MEMCTL_MAPPING_INIT MEMCTL_INIT(struct memctl_mapping)

/* Flags of memctl_list_mappings() and memctl_lookup() */
#define MEMCTL_EXECUTABLE_ONLY  (UINT64_C(1) << 0) /* only mappings with execute permission */
#define MEMCTL_FILE_BACKED_ONLY (UINT64_C(1) << 1) /* only file and memfd mappings */
#define MEMCTL_BUILD_IDS        (UINT64_C(1) << 2) /* add build IDs of file-backed mappings */
#define MEMCTL_SYMBOLS          (UINT64_C(1) << 3) /* memctl_lookup(): add each address's symbol */

/* All mappings of process pid, sorted by address (ListMappings). start_time: field 22 of
 * /proc/PID/stat, the clock tick at which the process the caller means started: -ESTALE if
 * pid now belongs to another process; 0 does not check. flags: MEMCTL_EXECUTABLE_ONLY,
 * MEMCTL_FILE_BACKED_ONLY, MEMCTL_BUILD_IDS (others: -EINVAL). */
int memctl_list_mappings(memctl *c, pid_t pid, uint64_t start_time, uint64_t flags,
                         memctl_mappings **ret);

size_t memctl_mappings_count(const memctl_mappings *m);
/* -ERANGE when index >= count. */
int memctl_mappings_get(const memctl_mappings *m, size_t index, struct memctl_mapping *ret);
/* The process the reply is about: its pid and start time (either pointer may be NULL).
 * Asked about a thread id, the daemon answers about the thread's process: pid is then the
 * thread group id. */
int memctl_mappings_get_process(const memctl_mappings *m, pid_t *ret_pid, uint64_t *ret_start_time);
memctl_mappings *memctl_mappings_free(memctl_mappings *m);

/* The process a reply is about, all the daemon says of it (LIBMEMCTL_0.3). */
struct memctl_process {
        size_t size;              /* set by the caller: sizeof(struct memctl_process) */
        pid_t pid;                /* the thread group id, also when a thread id was asked */
        uint64_t start_time;      /* field 22 of /proc/PID/stat */
        bool kernel_thread;       /* a kernel thread: it has no user address space, so its
                                   * listings are empty and every lookup result has reason
                                   * MEMCTL_REASON_NO_ADDRESS_SPACE */
        bool exited;              /* the process had exited: the answer comes from its
                                   * executable file mappings the daemon kept (issue 15) */
};
#define MEMCTL_PROCESS_INIT MEMCTL_INIT(struct memctl_process)

/* The process of a listing (also of memctl_open_mapping_file()'s ret_mapping). */
int memctl_mappings_get_process_info(const memctl_mappings *m, struct memctl_process *ret);

/* ------------------------------------------------------------------ lookup */

#define MEMCTL_NO_MAPPING SIZE_MAX

/* Why an address has no mapping: the protocol's LookupResult reason. */
enum memctl_lookup_reason {
        MEMCTL_REASON_NONE = 0,         /* the address is mapped (or the library is older than the member) */
        MEMCTL_REASON_UNMAPPED,         /* nothing is mapped there (also when the daemon gave no reason) */
        MEMCTL_REASON_NO_ADDRESS_SPACE, /* the process is a kernel thread: no user address space */
        MEMCTL_REASON_OTHER,            /* a reason newer than the library (reason_name names it): unmapped */
};

/* What one address resolved to. */
struct memctl_lookup_result {
        size_t size;              /* set by the caller: sizeof(struct memctl_lookup_result) */
        uint64_t address;         /* the address asked */
        size_t mapping;           /* index for memctl_lookup_reply_get_mapping(), or
                                   * MEMCTL_NO_MAPPING when the address is not mapped */
        bool has_file_offset;     /* file-backed mapping */
        bool has_elf_vaddr;       /* ELF file */
        uint64_t file_offset;     /* address - start + offset */
        uint64_t elf_vaddr;       /* file_offset as a virtual address of the ELF file's PT_LOAD
                                   * segments: what a symbolizer looks up */
        /* Appended after LIBMEMCTL_0.2 (no new symbol: the size tells); 0 from an older library. */
        int reason;               /* enum memctl_lookup_reason: why mapping is MEMCTL_NO_MAPPING */
        const char *reason_name;  /* the daemon's word for it ("unmapped", "no_address_space", ...);
                                   * NULL when mapped or when the daemon gave none */
        /* Appended for MEMCTL_SYMBOLS (no new symbol: the size tells); NULL and 0 without. */
        const char *symbol;       /* the function or object symbol covering elf_vaddr, as named in
                                   * the file (not demangled); NULL: none */
        uint64_t symbol_offset;   /* elf_vaddr - the symbol's value */
        bool symbol_size_unknown; /* no sized symbol covers it: the nearest one below, of size 0 */
};
#define MEMCTL_LOOKUP_RESULT_INIT MEMCTL_INIT(struct memctl_lookup_result)

/* Looks up n_addresses addresses of process pid (Lookup). start_time as for
 * memctl_list_mappings(); flags: MEMCTL_BUILD_IDS. A batch above the daemon's max_addresses
 * is split by the library (the limit is learned from the daemon's LimitExceeded answer and
 * kept on the connection), every part asked about the process the first part found: the
 * reply is the one a daemon without the limit would give, one result per address, in order,
 * and each distinct mapping once. */
int memctl_lookup(memctl *c, pid_t pid, uint64_t start_time, const uint64_t *addresses,
                  size_t n_addresses, uint64_t flags, memctl_lookup_reply **ret);

/* The number of results: n_addresses. */
size_t memctl_lookup_reply_count(const memctl_lookup_reply *l);
/* The result for addresses[index]; -ERANGE when index >= count. */
int memctl_lookup_reply_get(const memctl_lookup_reply *l, size_t index, struct memctl_lookup_result *ret);
/* The mappings results refer to, by memctl_lookup_result.mapping. */
size_t memctl_lookup_reply_mapping_count(const memctl_lookup_reply *l);
int memctl_lookup_reply_get_mapping(const memctl_lookup_reply *l, size_t mapping_index,
                                    struct memctl_mapping *ret);
int memctl_lookup_reply_get_process(const memctl_lookup_reply *l, pid_t *ret_pid, uint64_t *ret_start_time);
/* LIBMEMCTL_0.3: as memctl_mappings_get_process_info(). */
int memctl_lookup_reply_get_process_info(const memctl_lookup_reply *l, struct memctl_process *ret);
memctl_lookup_reply *memctl_lookup_reply_free(memctl_lookup_reply *l);

/* ------------------------------------------------------------------ status */

struct memctl_status_info {
        size_t size;              /* set by the caller: sizeof(struct memctl_status_info) */
        const char *version;      /* the daemon's version */
        const char *kernel;       /* uname release of the running kernel */
        const char *backend;      /* "ioctl" (PROCMAP_QUERY) or "maps" (/proc/PID/maps) */
        uint64_t uptime_usec;
        uint64_t requests;
        uint64_t errors;
        uint64_t elf_cache_hits;
        uint64_t elf_cache_misses;
        uint64_t elf_cache_entries;
        uint64_t connections;
        /* The daemon's limits */
        uint64_t max_message_size;
        uint64_t max_addresses;
        uint64_t max_connections;
        uint64_t max_connections_per_uid;
        uint64_t max_output_queue;
        uint64_t idle_timeout_sec;
        uint64_t max_json_depth;
        /* Appended after LIBMEMCTL_0.2 (no new symbol: the size tells); 0 from a daemon without them. */
        uint64_t oneway_skipped;          /* oneway calls past their budget: parsed, not run */
        uint64_t output_held;             /* bytes of queued output and held requests, all clients */
        uint64_t parked;                  /* unprivileged clients' connections waiting for a worker */
        uint64_t reserved_connections;    /* limit: slots kept for root and AllowGroups members */
        uint64_t output_budget;           /* limit: output_held of all clients together */
        uint64_t output_budget_per_uid;   /* limit: output_held of one user */
        uint64_t file_readers;            /* file reader threads started and not ended */
        uint64_t file_readers_busy;       /* of them, running a read */
        uint64_t file_readers_stuck;      /* of them, running a read whose caller stopped waiting */
        uint64_t file_read_timeouts;      /* waits for reads that ran out */
        uint64_t file_reads_refused;      /* reads refused at once (quota or pool used up) */
        /* Appended after LIBMEMCTL_0.3 (no new symbol: the size tells); NULL and 0 from a daemon
         * without them. */
        const char *tracking;             /* "bpf": layouts kept while unchanged; "none" */
        uint64_t layout_cache_hits;       /* calls answered from a kept layout */
        uint64_t layout_cache_misses;     /* calls that read the process */
        uint64_t layout_cache_entries;    /* layouts kept */
        uint64_t layout_cache_bytes;      /* memory they take */
        /* Appended for Lookup's symbols; 0 from a daemon without them. */
        uint64_t symbol_cache_hits;       /* symbol tables found kept */
        uint64_t symbol_cache_misses;     /* symbol tables read */
        uint64_t symbol_cache_bytes;      /* memory the kept ones take */
};
#define MEMCTL_STATUS_INFO_INIT MEMCTL_INIT(struct memctl_status_info)

int memctl_get_status(memctl *c, memctl_status **ret);
int memctl_status_get_info(const memctl_status *s, struct memctl_status_info *ret);
memctl_status *memctl_status_free(memctl_status *s);

/* ------------------------------------------------------------------ vdso (LIBMEMCTL_0.2) */

/* The image of process pid's vdso (GetVdso), which no file holds: *ret_image (malloc'd, free()
 * it) of *ret_size bytes, read by the daemon from the process's memory with the caller's
 * access. start_time as for memctl_list_mappings(). -ENOENT when the process has no vdso
 * (a kernel thread). Symbolize lookups in the vdso (their elf_vaddr) with this image; its
 * build ID is the [vdso] mapping's in listings and lookups with MEMCTL_BUILD_IDS. */
int memctl_get_vdso(memctl *c, pid_t pid, uint64_t start_time, uint8_t **ret_image, size_t *ret_size);

/* ------------------------------------------------------------------ mapped files (LIBMEMCTL_0.2) */

/* The file mapped at address in process pid, as the process sees it (OpenMappingFile): a path
 * of a listing names the file in the process's mount namespace, which here may be another
 * file. *ret_fd receives a read-only, close-on-exec fd of the mapping's regular file, passed
 * by the daemon (SCM_RIGHTS) after opening it with the caller's access and checking its device
 * and inode; close() it. ret_mapping (may be NULL) receives the mapping as a one-item listing
 * (memctl_mappings_get(m, 0, ...); free it with memctl_mappings_free()). start_time as for
 * memctl_list_mappings(). Deleted files and memfds work where the daemon may read
 * /proc/PID/map_files (a privileged caller). -ENXIO: nothing is mapped there; -EMEDIUMTYPE:
 * the mapping has no file (anonymous memory, stack, vdso...); -EIO: the file could not be
 * opened as that file (FileUnavailable: its name now names another one, or the open did not
 * finish in time); -EACCES, -ESRCH, -ESTALE as for the other calls. */
int memctl_open_mapping_file(memctl *c, pid_t pid, uint64_t start_time, uint64_t address, int *ret_fd,
                             memctl_mappings **ret_mapping);

/* ------------------------------------------------------------------ raw calls */

/* Calls method ("io.memmapd.ListMappings", "org.varlink.service.GetInfo", ...) with
 * parameters_json (a JSON object as text; NULL means {}) and returns the reply's
 * parameters object as compact JSON text, newly allocated (free() it). A parameters_json
 * that is not one JSON object is -EINVAL. Errors as for the typed calls. */
int memctl_call_json(memctl *c, const char *method, const char *parameters_json, char **ret_reply_json);

/* ------------------------------------------------------------------ system-wide (LIBMEMCTL_0.4) */

typedef struct memctl_found memctl_found;              /* a FindMappings reply */

/* Flag of memctl_find_mappings(): only mappings of files deleted or replaced since mapped. */
#define MEMCTL_DELETED_ONLY (UINT64_C(1) << 3)

/* Every process the caller may see that maps the file path names (by device and inode, in the
 * daemon's mount namespace; files replaced since they were mapped under that name too, with
 * deleted set), or any file whose build ID is build_id_hex: exactly one of the two, the other
 * NULL (FindMappings). Asked to stream: an answer of any size comes in parts (each within the
 * daemon's output bounds) and is put together here. */
int memctl_find_mappings(memctl *c, const char *path, const char *build_id_hex, uint64_t flags, memctl_found **ret);
/* The processes found, in pid order. */
size_t memctl_found_count(const memctl_found *f);
/* Process index's matching mappings, owned by f (memctl_mappings_get_process_info() names the
 * process); NULL when index >= count. */
const memctl_mappings *memctl_found_get(const memctl_found *f, size_t index);
memctl_found *memctl_found_free(memctl_found *f);

/* One process's addresses in a memctl_lookup_many() call. */
struct memctl_lookup_group {
        size_t size;              /* set by the caller: sizeof(struct memctl_lookup_group) */
        pid_t pid;
        uint64_t start_time;      /* 0: any (as for memctl_lookup()) */
        const uint64_t *addresses;
        size_t n_addresses;
};
#define MEMCTL_LOOKUP_GROUP_INIT MEMCTL_INIT(struct memctl_lookup_group)

typedef struct memctl_lookup_many_reply memctl_lookup_many_reply;     /* a LookupMany reply */

/* Lookups in many processes in one round trip (LookupMany), for profilers that sample the whole
 * machine: each group is answered as memctl_lookup() would answer it, or fails on its own. The
 * addresses of all groups together, and the groups, are bounded by the daemon's MaxAddresses
 * (-E2BIG for the whole call: not split here). flags: MEMCTL_BUILD_IDS. */
int memctl_lookup_many(memctl *c, const struct memctl_lookup_group *groups, size_t n_groups, uint64_t flags,
                       memctl_lookup_many_reply **ret);
size_t memctl_lookup_many_count(const memctl_lookup_many_reply *r);
/* Group index's reply, owned by r; NULL when that group failed, with *ret_error (when not NULL)
 * the name of its error ("io.memmapd.NoSuchProcess", ...), or when index >= count. */
const memctl_lookup_reply *memctl_lookup_many_get(const memctl_lookup_many_reply *r, size_t index,
                                                  const char **ret_error);
memctl_lookup_many_reply *memctl_lookup_many_free(memctl_lookup_many_reply *r);
/* ------------------------------------------------------------------ watch (LIBMEMCTL_0.4) */

typedef struct memctl_watch memctl_watch;              /* a Watch stream */

enum memctl_event_type {
        MEMCTL_EVENT_UNKNOWN = 0,       /* newer than the library: type_name names it */
        MEMCTL_EVENT_EXEC,              /* the process started another program: all its mappings are new */
        MEMCTL_EVENT_EXIT,              /* the process ended */
        MEMCTL_EVENT_FORK,              /* the process is new, a child of parent */
        MEMCTL_EVENT_MAPPINGS,          /* executable file mappings were added and removed */
        MEMCTL_EVENT_OVERFLOW,          /* dropped events were not delivered: layouts kept must be read again */
};

/* One event. Strings and mappings point into the watch: valid until its next call. */
struct memctl_event {
        size_t size;              /* set by the caller: sizeof(struct memctl_event) */
        int type;                 /* enum memctl_event_type */
        const char *type_name;    /* "exec", "exit", "fork", "mappings", "overflow", ... */
        pid_t pid;                /* the process (overflow: 0, or the one whose change was not read) */
        uint64_t start_time;
        pid_t parent;             /* fork: the parent's pid; else 0 */
        uint64_t time_usec;       /* CLOCK_MONOTONIC microseconds: when it happened */
        const char *comm;         /* the command name then ("" when not known) */
        const struct memctl_mapping *added;   /* mappings: what came (n_added items) */
        size_t n_added;
        const struct memctl_mapping *removed; /* and what went */
        size_t n_removed;
        uint64_t dropped;         /* overflow: how many events were dropped */
        /* mappings: when range_end > range_start, added is every executable file mapping
         * overlapping [range_start, range_end) (the daemon did not know the process's whole
         * set: removed may lack some); a copy kept drops what it has there that is not in
         * added, keeping the parts of its mappings outside the range. overflow with a pid: the
         * range of the change that could not be read. */
        uint64_t range_start, range_end;
};
#define MEMCTL_EVENT_INIT MEMCTL_INIT(struct memctl_event)

/* Starts a Watch on connection c: events of process pid (start_time as for
 * memctl_list_mappings(); pid 0: of every process the caller may see), from the daemon's first
 * reply on: memctl_watch_start() returns once it came, so every change after it is reported.
 * c then carries only the stream: make no other call on it; free the watch before c.
 * -ENOSYS: the daemon has no change tracking (TrackingUnavailable); -E2BIG: too many watchers
 * (LimitExceeded); -ESRCH, -EACCES, -ESTALE as for the other calls. */
int memctl_watch_start(memctl *c, pid_t pid, uint64_t start_time, memctl_watch **ret);
/* The fd to poll() for POLLIN: an event (or the end) may be read. */
int memctl_watch_fd(const memctl_watch *w);
/* The next event: 1 with *ret filled, 0 when none came within timeout_usec (0: none buffered
 * or readable now), -ECONNRESET when the daemon ended the stream, -EBADMSG for a reply that is
 * not a Watch event, -errno. */
int memctl_watch_next(memctl_watch *w, uint64_t timeout_usec, struct memctl_event *ret);
memctl_watch *memctl_watch_free(memctl_watch *w);

/* ------------------------------------------------------------------ mirror (LIBMEMCTL_0.4) */

/* A local copy of the executable file mappings of some processes, filled by one ListMappings
 * each and kept current by a Watch of each, so addresses are looked up in the caller's memory.
 *
 * The guarantee: a lookup answers from the layout the process had when the daemon sent the
 * last event memctl_mirror_update() applied for it (or, before any, from the listing made
 * after its Watch began): never from a layout older than the last event read. Changes the
 * daemon has not sent yet, or that wait unread in the socket, are not seen until the next
 * update. An overflow or an exec makes the update list the process again (a round trip there,
 * never in a lookup). memctl_mirror_get_as_of() says how far each process's layout is
 * current.
 *
 * Threads: one thread at a time (the pump) calls memctl_mirror_add(), _remove(), _update() and
 * _set_limits(); memctl_mirror_lookup(), _get_as_of() and _get_start_time() may be called from
 * any number of threads at once, concurrently with each other and with the pump. They take no
 * lock and never wait for the pump (nor it for them): each reads an immutable snapshot that
 * the pump replaces whole, and what a lookup hands out stays valid after it (see
 * memctl_mirror_lookup()). A thread's first lookup in a mirror allocates it a counter (64
 * bytes, kept until the mirror is freed, given back when the thread has looked up in 4 other
 * mirrors since): so lookups are not async-signal-safe until the thread made one outside a
 * handler. memctl_mirror_free() only when no other call runs. */
typedef struct memctl_mirror memctl_mirror;

/* A mirror whose calls go to the daemon at socket_path (NULL: the default). */
int memctl_mirror_new(const char *socket_path, memctl_mirror **ret);
/* Bounds of the mirror (0: keep the default): the processes it mirrors at once (1024;
 * memctl_mirror_add() past it: -ENOSPC; each is a connection to the daemon, which allows 16
 * watching connections per user and 256 in all: -E2BIG from there), and the distinct files it
 * keeps (65536; a process whose events name one more fails its update with -ENOSPC and is no
 * longer mirrored). */
int memctl_mirror_set_limits(memctl_mirror *m, size_t max_processes, size_t max_files);
/* Mirrors process pid (start_time: 0 or as for memctl_list_mappings()): starts its Watch, then
 * lists it. 0; -EEXIST when it is mirrored already; -ENOSPC past max_processes; -errno as for
 * memctl_watch_start() and memctl_list_mappings(). */
int memctl_mirror_add(memctl_mirror *m, pid_t pid, uint64_t start_time);
/* Stops mirroring pid: 0, or -ESRCH when it is not mirrored. */
int memctl_mirror_remove(memctl_mirror *m, pid_t pid);
/* An fd that polls readable when an update has events to apply. */
int memctl_mirror_fd(const memctl_mirror *m);
/* Applies the events that came (at most 4096 per process per call: the rest at the next call,
 * which then does not wait), waiting at most timeout_usec for the first: how many were read
 * (>= 0), or -errno (a process's stream failed: it is no longer mirrored). */
int memctl_mirror_update(memctl_mirror *m, uint64_t timeout_usec);
/* The executable file mapping of pid that covers address: 1 with *ret filled (a copy: set
 * ret->size as for the other calls), 0 when none covers it (*ret untouched), -ESRCH when pid is
 * not mirrored or has exited. The file offset is address - start + offset. Its strings (path,
 * build ID) are the mirror's record of the file: they stay valid until memctl_mirror_free(),
 * and one file has one record, so equal path pointers mean the same file (device, inode, path
 * and build ID): a key for the caller's symbol tables. Thread-safe (see above). */
int memctl_mirror_lookup(const memctl_mirror *m, pid_t pid, uint64_t address, struct memctl_mapping *ret);
/* How far pid's layout is current, in CLOCK_MONOTONIC microseconds (the clock of the events'
 * time_usec, of perf samples and of Lookup's time_usec): 1 when exact, *ret_time_usec then the
 * time of the last event applied (or of the exit): the layout is the one the daemon's Lookup
 * with that time_usec answers from (two changes stamped with the same microsecond cannot be
 * told apart: a later one of that microsecond may be missing); 0 when a lower bound, after a
 * listing (at the add, an overflow, an exec) and before the first event stamped after it:
 * the layout is no older than *ret_time_usec, when the listing was asked for; -ESRCH when pid
 * is not mirrored. A time read before a lookup bounds that lookup's layout from below (the
 * pump only moves forward). Thread-safe. */
int memctl_mirror_get_as_of(const memctl_mirror *m, pid_t pid, uint64_t *ret_time_usec);
/* The process a mirrored pid is (its start time): 0, or -ESRCH. Thread-safe. */
int memctl_mirror_get_start_time(const memctl_mirror *m, pid_t pid, uint64_t *ret_start_time);
memctl_mirror *memctl_mirror_free(memctl_mirror *m);

#ifdef __cplusplus
}
#endif

#endif /* LIBMEMCTL_H */
