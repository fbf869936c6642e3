/* memmapd: answers questions about processes' memory maps over Varlink. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cleanup.h"
#include "daemon-config.h"
#include "engine.h"
#include "layout-store.h"
#include "proc-events.h"
#include "tracking.h"
#include "find-scan.h"
#include "retention.h"
#include "file-pool.h"
#include "log.h"
#include "server.h"

static void help(void) {
        printf("Usage: memmapd [OPTIONS]\n"
               "Answers questions about processes' memory maps over Varlink (io.memmapd).\n\n"
               "  -h --help                     Show this help and exit\n"
               "     --version                  Show the version and exit\n"
               "     --socket=PATH              Listen on PATH (default: /run/memmapd/io.memmapd for root,\n"
               "                                $XDG_RUNTIME_DIR/memmapd/io.memmapd otherwise; ignored\n"
               "                                under socket activation)\n"
               "     --config=FILE              Read settings from FILE (default: %s)\n"
               "     --backend=auto|ioctl|maps  How to read maps: PROCMAP_QUERY or /proc/PID/maps\n"
               "     --log-level=LEVEL          emerg..debug or 0-7 (default: info)\n"
               "     --workers=N                Threads serving clients (default: 4)\n"
               "     --allow-groups=G1,G2       Groups whose members may query any process\n"
               "     --tracking=auto|bpf|none   Keep layouts while BPF change tracking says they\n"
               "                                are unchanged (default: auto, BPF where it loads)\n"
               "     --set=KEY=VALUE            Any setting of memmapd.conf(5), e.g. MaxAddresses=1000\n",
               CONFIG_FILE_DEFAULT);
}

/* Memory freed by a call stays with the allocator for the next one: replies of many MiB built
 * in fresh mmap() memory page-faulted on every call (a fifth of the daemon's CPU time for a
 * 60,000-mapping listing or a 4,435-address lookup). Blocks up to ARENA_BLOCK_MAX come from
 * glibc's heap, which keeps up to RETAIN_MAX of free memory (a free() that leaves more than
 * that at its top gives the top back at once): enough for the largest listing
 * vm.max_map_count allows (about 9 MB of reply, in a buffer that grew once more than it
 * needed). The server gives everything back (malloc_trim()) at the first tick with no new
 * call, so an idle daemon stays small: without that, glibc kept 100 MiB of freed replies
 * after a load. All threads share one arena: malloc_trim() cannot give back the top of the
 * per-thread ones, and small allocations mostly stay in the per-thread caches anyway (the
 * 64-client benchmark did not slow down). */
#define ARENA_BLOCK_MAX (16 * 1024 * 1024)
#define RETAIN_MAX (32 * 1024 * 1024)

static void retain_memory_while_busy(void) {
        mallopt(M_ARENA_MAX, 1);
        mallopt(M_MMAP_THRESHOLD, ARENA_BLOCK_MAX);
        mallopt(M_TRIM_THRESHOLD, RETAIN_MAX);
}

struct override {
        const char *key;
        const char *value;
};

static int parse_argv(int argc, char **argv, struct override *ov, size_t *n_ov, size_t max_ov,
                      const char **ret_config) {
        enum { ARG_VERSION = 0x100, ARG_SOCKET, ARG_CONFIG, ARG_BACKEND, ARG_LOG_LEVEL, ARG_WORKERS,
               ARG_ALLOW_GROUPS, ARG_TRACKING, ARG_SET };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "backend", required_argument, NULL, ARG_BACKEND },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "workers", required_argument, NULL, ARG_WORKERS },
                { "allow-groups", required_argument, NULL, ARG_ALLOW_GROUPS },
                { "tracking", required_argument, NULL, ARG_TRACKING },
                { "set", required_argument, NULL, ARG_SET },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                const char *key = NULL;
                char *value = optarg;

                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("memmapd %s\n", MEMMAPD_VERSION);
                        return 0;
                case ARG_CONFIG:
                        *ret_config = optarg;
                        continue;
                case ARG_SOCKET: key = "Socket"; break;
                case ARG_BACKEND: key = "Backend"; break;
                case ARG_LOG_LEVEL: key = "LogLevel"; break;
                case ARG_WORKERS: key = "Workers"; break;
                case ARG_ALLOW_GROUPS: key = "AllowGroups"; break;
                case ARG_TRACKING: key = "Tracking"; break;
                case ARG_SET: {
                        char *eq = strchr(optarg, '=');

                        if (!eq) {
                                log_error("--set expects KEY=VALUE, got '%s'", optarg);
                                return -EINVAL;
                        }
                        *eq = 0;
                        key = optarg;
                        value = eq + 1;
                        break;
                }
                default:
                        return -EINVAL;
                }
                if (*n_ov >= max_ov) {
                        log_error("Too many options");
                        return -E2BIG;
                }
                ov[(*n_ov)++] = (struct override) { key, value };
        }
        if (optind < argc) {
                log_error("Unexpected argument '%s'", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

int main(int argc, char **argv) {
        _cleanup_(config_done) struct config cfg;
        struct override ov[64];
        size_t n_ov = 0;
        const char *config_file = NULL;
        struct engine *engine = NULL;
        struct file_pool *file_pool = NULL;
        struct server *server = NULL;
        struct layout_store *store = NULL;
        struct tracking *tracking = NULL;
        struct proc_events *events = NULL;
        struct find_scan *find = NULL;
        struct retention *retention = NULL;
        struct rlimit rl;
        unsigned line = 0;
        int r;

        config_init(&cfg);
        r = parse_argv(argc, argv, ov, &n_ov, ELEMENTSOF(ov), &config_file);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        r = config_parse_file(&cfg, config_file ?: CONFIG_FILE_DEFAULT, &line);
        if (r == -ENOENT && !config_file)
                r = 0;
        if (r < 0) {
                if (line > 0)
                        log_error_errno(r, "Bad configuration %s, line %u", config_file ?: CONFIG_FILE_DEFAULT, line);
                else
                        log_error_errno(r, "Cannot read configuration %s", config_file ?: CONFIG_FILE_DEFAULT);
                return 1;
        }
        /* The command line wins over the file. */
        for (size_t i = 0; i < n_ov; i++) {
                r = config_set(&cfg, ov[i].key, ov[i].value);
                if (r < 0) {
                        log_error_errno(r, "Invalid setting %s=%s", ov[i].key, ov[i].value);
                        return 2;
                }
        }
        log_set_max_level(cfg.log_level);

        retain_memory_while_busy();

        /* Replies go out with MSG_NOSIGNAL; this covers any other write to a dead peer. */
        signal(SIGPIPE, SIG_IGN);
        /* Every client costs an fd: take what the hard limit allows. */
        if (getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }

        r = file_pool_new(&(struct file_pool_config) { .max_threads = cfg.file_readers,
                                                       .quota_per_owner = cfg.stuck_readers_per_user,
                                                       .timeout_ms = cfg.file_read_timeout_msec },
                          &file_pool);
        if (r < 0) {
                log_error_errno(r, "Cannot set up the file readers");
                return 1;
        }
        r = engine_new(&(struct engine_config) { .backend = cfg.backend, .elf_cache_size = cfg.elf_cache_size,
                                                 .run_blocking = file_pool_run_for_engine,
                                                 .run_blocking_userdata = file_pool,
                                                 .blocking_budget_ms = cfg.file_read_timeout_msec,
                                                 .max_symbol_memory = cfg.max_symbol_memory,
                                                 .debug_dir = cfg.debug_file_directory },
                       &engine);
        if (r < 0) {
                log_error_errno(r, "Cannot start the mapping engine (backend %s)", engine_backend_to_string(cfg.backend));
                return 1;
        }
        log_info("memmapd %s starting, backend %s", MEMMAPD_VERSION,
                 engine_backend_to_string(engine_get_backend(engine)));

        r = server_new(&cfg, engine, file_pool, &server);
        /* After the server took the sockets systemd passed: the tracker's fds must not take
         * the numbers of passed fds that are not open (the server names those as such). */
        if (r >= 0)
                /* Without room to keep layouts, tracking would buy nothing. */
                r = layout_store_new(&(struct layout_store_config) {
                                             .max_entries = cfg.max_cached_processes,
                                             .max_bytes = cfg.max_cache_memory,
                                             .max_bytes_per_owner = cfg.max_cache_memory_per_user },
                                     &store);
        if (r < 0 && server)
                log_error_errno(r, "Cannot set up the layout store");
        if (r >= 0)
                r = tracking_new(cfg.max_cached_processes > 0 ? cfg.tracking : TRACKING_NONE, store, &tracking);
        if (r >= 0 && tracking_active(tracking)) {
                r = proc_events_new(&events);
                if (r >= 0) {
                        tracking_set_events(tracking, events);
                        server_set_events(server, events);
                        r = server_set_tracking(server, tracking, store);
                }
        }
        if (r >= 0) {
                const char *why = NULL;

                r = find_scan_new(cfg.find_iterator, &find, &why);
                if (r < 0)
                        log_error_errno(r, "Cannot load the FindMappings iterator (FindIterator=bpf)");
                else {
                        if (why)
                                log_info("FindMappings scans /proc: %s", why);
                        server_set_find_scan(server, find);
                }
        }
        /* Retention needs the process events (forks) and the tracker's namespace check: it runs
         * only where tracking does. */
        if (r >= 0 && tracking_active(tracking)) {
                r = retention_new(&(struct retention_config) {
                                          .enabled = cfg.retain_exited_sec > 0,
                                          .retain_sec = cfg.retain_exited_sec,
                                          .max_bytes = cfg.max_retained_memory,
                                          .max_bytes_per_user = cfg.max_retained_memory_per_user },
                                  events, tracking, &retention);
                if (r >= 0)
                        r = server_set_retention(server, retention);
        }
        if (r >= 0)
                r = server_run(server);
        server_free(server);
        find_scan_free(find);
        retention_free(retention);
        tracking_free(tracking);
        proc_events_free(events);
        layout_store_free(store);
        engine_free(engine);
        file_pool_free(file_pool);
        return r < 0 ? 1 : 0;
}
