/* memmapd's settings: defaults, /etc/memmapd.conf (key=value) and the command line, which wins. */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "cleanup.h"
#include "daemon-config.h"
#include "file-pool.h"
#include "layout-store.h"
#include "log.h"
#include "number.h"

#define CONFIG_LINE_MAX 4096
#define CONFIG_FILE_MAX (64 * 1024)

void config_init(struct config *c) {
        *c = (struct config) {
                .backend = ENGINE_BACKEND_AUTO,
                .log_level = LOG_INFO,
                .workers = 4,
                .elf_cache_size = ENGINE_ELF_CACHE_DEFAULT,
                .file_readers = FILE_POOL_THREADS_DEFAULT,
                .stuck_readers_per_user = FILE_POOL_QUOTA_DEFAULT,
                .file_read_timeout_msec = FILE_POOL_TIMEOUT_MS_DEFAULT,
                .tracking = TRACKING_AUTO,
                .find_iterator = TRACKING_AUTO,
                .max_cached_processes = LAYOUT_STORE_MAX_ENTRIES_DEFAULT,
                .max_cache_memory = LAYOUT_STORE_MAX_BYTES_DEFAULT,
                .max_cache_memory_per_user = 0,
                .max_symbol_memory = ENGINE_SYMBOL_MEMORY_DEFAULT,
                .retain_exited_sec = 60,
                .max_retained_memory = 64u << 20,
                .limits = {
                        .max_message_size = 4u * 1024 * 1024,
                        .max_addresses = 100000,
                        .max_connections = 1024,
                        .max_connections_per_uid = 128,
                        /* Was 64 MiB: 1,024 clients could then hold 64 GiB. What all of them
                         * hold together is bounded by OutputBudget; this only bounds one reply. */
                        .max_output_queue = 16u * 1024 * 1024,
                        .reserved_connections = 64,
                        .output_budget = 256u * 1024 * 1024,
                        .output_budget_per_uid = 64u * 1024 * 1024,
                        .idle_timeout_sec = 300,
                        .max_json_depth = 16,
                },
        };
}

static void clear_groups(struct config *c) {
        for (size_t i = 0; i < c->n_allow_groups; i++)
                free(c->allow_groups[i]);
        c->n_allow_groups = 0;
}

void config_done(struct config *c) {
        if (!c)
                return;
        free(c->socket_path);
        free(c->config_file);
        free(c->debug_file_directory);
        clear_groups(c);
        *c = (struct config) {};
}

static int parse_size(const char *v, uint64_t min, uint64_t max, uint64_t *ret) {
        uint64_t x;
        int r = parse_u64(v, &x);

        if (r < 0)
                return r;
        if (x < min || x > max)
                return -ERANGE;
        *ret = x;
        return 0;
}

static int set_string(char **field, const char *v) {
        char *s = strdup(v);

        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int set_groups(struct config *c, const char *v) {
        _cleanup_free_ char *copy = strdup(v);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        clear_groups(c);
        c->allow_groups_set = true;
        for (char *tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
                if (c->n_allow_groups >= CONFIG_GROUPS_MAX)
                        return -E2BIG;
                if (!(c->allow_groups[c->n_allow_groups] = strdup(tok)))
                        return -ENOMEM;
                c->n_allow_groups++;
        }
        return 0;
}

int config_set(struct config *c, const char *key, const char *value) {
        uint64_t x;
        int r;

        if (strcmp(key, "Socket") == 0)
                return value[0] == '/' && strlen(value) < 108 ? set_string(&c->socket_path, value) : -EINVAL;
        if (strcmp(key, "Backend") == 0)
                return engine_backend_from_string(value, &c->backend);
        if (strcmp(key, "LogLevel") == 0) {
                r = log_level_from_string(value);
                if (r < 0)
                        return r;
                c->log_level = r;
                return 0;
        }
        if (strcmp(key, "AllowGroups") == 0)
                return set_groups(c, value);
        if (strcmp(key, "Tracking") == 0)
                return tracking_mode_from_string(value, &c->tracking);
        if (strcmp(key, "DebugFileDirectory") == 0)
                return value[0] == '/' && strlen(value) < 1024 ? set_string(&c->debug_file_directory, value) : -EINVAL;
        if (strcmp(key, "FindIterator") == 0)
                return tracking_mode_from_string(value, &c->find_iterator);

        static const struct {
                const char *key;
                uint64_t min, max;
                size_t offset;
                size_t width;
        } numeric[] = {
#define N(k, lo, hi, field) { k, lo, hi, offsetof(struct config, field), sizeof(((struct config *) 0)->field) }
                N("Workers", 1, 64, workers),
                N("ElfCacheSize", 1, 1u << 20, elf_cache_size),
                N("FileReaders", 1, 1024, file_readers),
                N("StuckReadersPerUser", 1, 1024, stuck_readers_per_user),
                N("FileReadTimeoutMSec", 10, 3600 * 1000, file_read_timeout_msec),
                N("MaxMessageSize", 1024, LIMIT_MESSAGE_SIZE_MAX, limits.max_message_size),
                N("MaxAddresses", 1, 10u * 1000 * 1000, limits.max_addresses),
                N("MaxConnections", 1, 1u << 20, limits.max_connections),
                N("MaxConnectionsPerUser", 1, 1u << 20, limits.max_connections_per_uid),
                N("MaxOutputQueue", 64u * 1024, UINT64_C(4) << 30, limits.max_output_queue),
                N("ReservedConnections", 0, 1u << 20, limits.reserved_connections),
                N("OutputBudget", 1u << 20, UINT64_C(64) << 30, limits.output_budget),
                N("OutputBudgetPerUser", 64u * 1024, UINT64_C(64) << 30, limits.output_budget_per_uid),
                N("IdleTimeoutSec", 1, 86400 * 365, limits.idle_timeout_sec),
                N("MaxJsonDepth", 4, 256, limits.max_json_depth),
                /* A layout of 65,530 mappings (vm.max_map_count) takes a few MiB: a store below
                 * 1 MiB would keep next to nothing, and one above 64 GiB is a typo. */
                N("MaxCachedProcesses", 0, 1u << 20, max_cached_processes),
                N("MaxCacheMemory", 1u << 20, UINT64_C(64) << 30, max_cache_memory),
                N("MaxCacheMemoryPerUser", 0, UINT64_C(64) << 30, max_cache_memory_per_user),
                /* libc's table takes some 300 KiB: below 64 KiB nothing would be kept. */
                N("MaxSymbolMemory", 64u * 1024, UINT64_C(64) << 30, max_symbol_memory),
                N("RetainExitedSec", 0, 86400, retain_exited_sec),
                N("MaxRetainedMemory", 1u << 20, UINT64_C(64) << 30, max_retained_memory),
                N("MaxRetainedMemoryPerUser", 0, UINT64_C(64) << 30, max_retained_memory_per_user),
#undef N
        };
        for (size_t i = 0; i < ELEMENTSOF(numeric); i++) {
                if (strcmp(key, numeric[i].key) != 0)
                        continue;
                r = parse_size(value, numeric[i].min, numeric[i].max, &x);
                if (r < 0)
                        return r;
                if (numeric[i].width == sizeof(unsigned))
                        *(unsigned *) ((char *) c + numeric[i].offset) = (unsigned) x;
                else
                        *(size_t *) ((char *) c + numeric[i].offset) = (size_t) x;
                return 0;
        }
        return -EINVAL;
}

static char *trim(char *s) {
        char *e;

        while (isspace((unsigned char) *s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                *--e = 0;
        return s;
}

/* Applies every line of text (NUL-terminated, modified in place) to c. */
static int apply_text(struct config *c, char *text, unsigned *ret_line) {
        unsigned lineno = 0;
        char *line, *next;
        int r;

        /* strtok_r would merge empty lines and lose the numbering: split by hand. */
        for (line = text; line; line = next) {
                char *eq, *key, *value;

                lineno++;
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                r = strlen(line) > CONFIG_LINE_MAX ? -E2BIG : 0;
                if (r == 0) {
                        line = trim(line);
                        /* Comments, blank lines and an ini-style section header ([Daemon]). */
                        if (!*line || *line == '#' || *line == ';' || (*line == '[' && line[strlen(line) - 1] == ']'))
                                continue;
                        eq = strchr(line, '=');
                        if (!eq)
                                r = -EINVAL;
                        else {
                                *eq = 0;
                                key = trim(line);
                                value = trim(eq + 1);
                                r = config_set(c, key, value);
                        }
                }
                if (r < 0) {
                        if (ret_line)
                                *ret_line = lineno;
                        return r;
                }
        }
        return 0;
}

int config_parse_file(struct config *c, const char *path, unsigned *ret_line) {
        _cleanup_(config_done) struct config scratch = {};
        _cleanup_free_ char *text = NULL, *copy = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        ssize_t n;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADF;
        text = malloc(CONFIG_FILE_MAX + 1);
        if (!text)
                return -ENOMEM;
        n = RETRY_EINTR(read(fd, text, CONFIG_FILE_MAX + 1));
        if (n < 0)
                return -errno;
        if (n > CONFIG_FILE_MAX)
                return -EFBIG;
        if (memchr(text, 0, (size_t) n))
                return -EBADMSG;
        text[n] = 0;

        /* Validate on a scratch copy first, so a bad file changes nothing. */
        copy = strdup(text);
        if (!copy)
                return -ENOMEM;
        config_init(&scratch);
        r = apply_text(&scratch, copy, ret_line);
        if (r < 0)
                return r;
        return apply_text(c, text, ret_line);
}

int config_default_socket_path(char **ret) {
        const char *rt;
        char *p;

        if (geteuid() == 0)
                p = strdup("/run/memmapd/io.memmapd");
        else if ((rt = getenv("XDG_RUNTIME_DIR")) && rt[0] == '/') {
                if (asprintf(&p, "%s/memmapd/io.memmapd", rt) < 0)
                        p = NULL;
        } else
                return -ENXIO;
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}
