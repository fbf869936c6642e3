/* memmapd's settings: defaults, /etc/memmapd.conf (key=value) and the command line, which wins. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine.h"
#include "tracking.h"

#define CONFIG_FILE_DEFAULT SYSCONFDIR "/memmapd.conf"
#define CONFIG_GROUPS_MAX 32

struct limits {
        size_t max_message_size;        /* largest request, bytes (at most 16 MiB) */
        size_t max_addresses;           /* per Lookup */
        size_t max_connections;
        size_t max_connections_per_uid;
        size_t max_output_queue;        /* bytes queued to one client before it is dropped */
        size_t reserved_connections;    /* of max_connections, only root and AllowGroups members take */
        size_t output_budget;           /* queued output and requests held, daemon-wide, bytes */
        size_t output_budget_per_uid;   /* the same for one unprivileged user (namespace owner) */
        unsigned idle_timeout_sec;
        unsigned max_json_depth;
};

struct config {
        char *socket_path;              /* NULL: the default for the user */
        char *config_file;
        enum engine_backend backend;
        int log_level;
        unsigned workers;
        size_t elf_cache_size;
        /* Blocking file reads (see file-pool.h). */
        unsigned file_readers;
        unsigned stuck_readers_per_user;
        unsigned file_read_timeout_msec;
        struct limits limits;
        /* Groups whose members may query any process (AllowGroups=). */
        char *allow_groups[CONFIG_GROUPS_MAX];
        size_t n_allow_groups;
        bool allow_groups_set;
        /* Change tracking and the layout store it keeps exact (tracking.h, layout-store.h). */
        enum tracking_mode tracking;
        /* FindMappings: the BPF task_vma iterator (auto|bpf), or a scan of /proc (none). */
        enum tracking_mode find_iterator;
        size_t max_cached_processes;    /* 0: no store */
        size_t max_cache_memory;        /* bytes */
        size_t max_cache_memory_per_user;       /* bytes; 0: a quarter of max_cache_memory */
        /* Lookup's symbols (issue 16). */
        size_t max_symbol_memory;       /* bytes of symbol tables kept */
        char *debug_file_directory;     /* NULL: ENGINE_DEBUG_DIR_DEFAULT */
        /* Retention of exited processes (retention.h): 0 s turns it off. */
        size_t retain_exited_sec;
        size_t max_retained_memory;             /* bytes */
        size_t max_retained_memory_per_user;    /* bytes; 0: a quarter of max_retained_memory */
};

#define LIMIT_MESSAGE_SIZE_MAX (16u * 1024 * 1024)

void config_init(struct config *c);
void config_done(struct config *c);

/* Applies one setting ("MaxAddresses", "128") as the config file names them; -EINVAL
 * (unknown key or bad value) or -ERANGE. */
int config_set(struct config *c, const char *key, const char *value);

/* Reads a key=value file: '#' and ';' start comments, blank lines are skipped, whitespace
 * around keys and values is trimmed. Lines longer than 4 KiB or files above 64 KiB are
 * errors. -ENOENT when the file is missing. On error *ret_line is the failing line. */
int config_parse_file(struct config *c, const char *path, unsigned *ret_line);

/* The default socket: root: /run/memmapd/io.memmapd; others: $XDG_RUNTIME_DIR/memmapd/io.memmapd. */
int config_default_socket_path(char **ret);
