/* memctl: the command line client of memmapd, built on libmemctl. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "libmemctl.h"
#include "memctl-cli.h"
#include "memctl-commands.h"
#include "memctl-output.h"
#include "number.h"

#ifndef MEMMAPD_VERSION
#define MEMMAPD_VERSION "unknown"
#endif

struct memctl_options arg = {
        .legend = true,
        .build_ids = -1,
};

DEFINE_CLEANUP_FUNC(memctl *, memctl_free)

static void help(void) {
        printf("memctl [OPTIONS] COMMAND ...\n"
               "\n"
               "Ask memmapd about the memory maps of processes.\n"
               "\n"
               "Commands:\n"
               "  maps PID              List the mappings of a process, like pmap: range,\n"
               "                        permissions, file offset, size, build ID, name\n"
               "  lookup PID [ADDR...]  Resolve addresses: file offset, ELF virtual address,\n"
               "                        build ID and path of the mapping each falls in.\n"
               "                        Without ADDR, or for \"-\", reads addresses from\n"
               "                        standard input, one per line (blank lines skipped)\n"
               "  modules PID           List the ELF files a process maps, like\n"
               "                        eu-unstrip -n -p PID: load range, build ID, path\n"
               "  vdso PID              Write the image of the process's vdso to standard\n"
               "                        output (no file holds it): memctl vdso PID > vdso.so\n"
               "  cat PID ADDRESS       Write the file mapped at ADDRESS to standard output,\n"
               "                        the file the process sees (its mount namespace,\n"
               "                        deleted files, memfds), opened by memmapd\n"
               "  status                Show the daemon's version, counters and limits\n"
               "  lookup-many PID:ADDR[,ADDR...]...\n"
               "                        Resolve addresses of many processes in one call:\n"
               "                        each group answered (as lookup) or failed alone\n"
               "  who PATH              List the processes that map the file PATH names (and\n"
               "                        the files replaced at PATH since they were mapped):\n"
               "                        pid, command, the mapping ranges\n"
               "  who --build-id=HEX    The same for the files with that GNU build ID\n"
               "  watch [PID]           Print process events as they happen (exec, exit,\n"
               "                        fork, mappings; overflow when some were dropped),\n"
               "                        one line each (--json: one JSON object each), of\n"
               "                        PID and its children, or of every process you may\n"
               "                        see; until interrupted\n"
               "\n"
               "Options:\n"
               "  -h --help             Show this help and exit\n"
               "     --version          Show the version and exit\n"
               "     --json[=pretty|short]\n"
               "                        Print the daemon's reply (its parameters object) as\n"
               "                        JSON, indented or on one line; a lookup of more than\n"
               "                        %d addresses prints one object per batch, and\n"
               "                        modules prints {\"process\", \"modules\"} it derived\n"
               "     --socket=PATH      Talk to memmapd at PATH. Default: $MEMMAPD_SOCKET;\n"
               "                        else %s for root; for others\n"
               "                        $XDG_RUNTIME_DIR/memmapd/io.memmapd if it exists,\n"
               "                        else %s\n"
               "     --no-legend        Print tables without header and footer\n"
               "     --start-time=TICKS Fail (exit 6) unless PID is still the process that\n"
               "                        started at TICKS (field 22 of /proc/PID/stat);\n"
               "                        0 does not check\n"
               "     --exec-only        maps: only mappings with execute permission\n"
               "     --files-only       maps: only file-backed mappings\n"
               "     --build-ids        maps, lookup: show build IDs (the default)\n"
               "     --no-build-ids     maps, lookup: do not ask for build IDs (cheaper)\n"
               "     --symbols          lookup: show each address's function (or object) and\n"
               "                        offset, as FUNCTION+0x1a (names as in the file; \"?\"\n"
               "                        after the offset: the symbol's size is unknown)\n"
               "     --build-id=HEX     who: find files by build ID instead of a path\n"
               "     --deleted-only     who: only files deleted or replaced since mapped\n"
               "  -l --full             Show build IDs whole: tables shorten them to %d\n"
               "                        hex digits (--json and modules never do)\n"
               "\n"
               "PID is a decimal process ID. ADDR is \"0x\" followed by 1-16 hex digits, or a\n"
               "decimal number. Sizes use binary suffixes (K = 1024 bytes).\n"
               "\n"
               "Exit status:\n"
               "  0  success\n"
               "  1  other failure\n"
               "  2  bad usage or bad input\n"
               "  3  memmapd not reachable (not running, socket not accessible, connection lost)\n"
               "  4  no such process\n"
               "  5  permission denied for that process\n"
               "  6  process changed (start time mismatch: the PID was reused)\n",
               LOOKUP_BATCH, MEMCTL_SOCKET_PATH_SYSTEM, MEMCTL_SOCKET_PATH_SYSTEM, BUILD_ID_SHORT);
}

/* ------------------------------------------------------------------ argument parsing */

static int parse_pid(const char *s, pid_t *ret) {
        uint64_t v;

        /* Decimal only: parse_u64() alone would take "0x10". */
        if (!s || !*s || strspn(s, "0123456789") != strlen(s) || parse_u64(s, &v) < 0 ||
            v == 0 || v > INT_MAX) {
                error("invalid PID: '%s'", s ? s : "");
                return -EINVAL;
        }
        *ret = (pid_t) v;
        return 0;
}

static int parse_address(const char *s, uint64_t *ret) {
        return parse_u64(s, ret);
}

static int addresses_push(struct addresses *a, uint64_t v) {
        if (a->n == a->allocated) {
                size_t n = a->allocated ? a->allocated * 2 : 256;
                uint64_t *p = reallocarray(a->v, n, sizeof(*p));

                if (!p)
                        return -ENOMEM;
                a->v = p;
                a->allocated = n;
        }
        a->v[a->n++] = v;
        return 0;
}

/* Reads addresses from stdin, one per line; returns an exit status. */
static int read_addresses(FILE *f, struct addresses *a) {
        _cleanup_free_ char *line = NULL;
        size_t size = 0, lineno = 0;
        ssize_t n;

        while ((n = getline(&line, &size, f)) >= 0) {
                char *s = line, *e = line + n;
                uint64_t v;

                lineno++;
                while (s < e && strchr(" \t\r\n\v\f", *s) && *s)
                        s++;
                while (e > s && strchr(" \t\r\n\v\f", e[-1]) && e[-1])
                        e--;
                if (s == e)
                        continue;
                *e = 0;
                if (memchr(s, 0, (size_t) (e - s)) || parse_address(s, &v) < 0) {
                        _cleanup_free_ char *shown = escape(s);

                        error("standard input, line %zu: invalid address '%s' (expected 0x... or decimal)",
                              lineno, shown ? shown : s);
                        return EXIT_USAGE;
                }
                if (addresses_push(a, v) < 0)
                        return oom();
        }
        if (ferror(f)) {
                error("cannot read standard input: %m");
                return EXIT_FAIL;
        }
        return EXIT_OK;
}

/* lookup-many's groups, "PID:ADDR[,ADDR...]": their addresses go to a, which must not grow
 * after (the groups point into it). Returns an exit status. */
static int parse_groups(char **args, size_t n, struct memctl_lookup_group *groups, struct addresses *a) {
        size_t total = 0;

        for (size_t i = 0; i < n; i++)
                total += 1 + strlen(args[i]) / 2;
        a->v = calloc(total, sizeof(*a->v));
        if (!a->v)
                return oom();
        a->allocated = total;
        for (size_t i = 0; i < n; i++) {
                char *colon = strchr(args[i], ':'), *save = NULL;
                size_t first = a->n;

                if (!colon) {
                        error("invalid group '%s' (expected PID:ADDR[,ADDR...])", args[i]);
                        return EXIT_USAGE;
                }
                *colon = 0;
                groups[i] = (struct memctl_lookup_group) MEMCTL_LOOKUP_GROUP_INIT;
                groups[i].start_time = arg.start_time;
                if (parse_pid(args[i], &groups[i].pid) < 0)
                        return EXIT_USAGE;
                for (char *s = strtok_r(colon + 1, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
                        if (parse_address(s, &a->v[a->n]) < 0) {
                                error("invalid address '%s' (expected 0x... or decimal)", s);
                                return EXIT_USAGE;
                        }
                        a->n++;
                }
                groups[i].addresses = a->v + first;
                groups[i].n_addresses = a->n - first;
        }
        return EXIT_OK;
}

/* ------------------------------------------------------------------ main */

enum {
        ARG_VERSION = 0x100,
        ARG_JSON,
        ARG_SOCKET,
        ARG_NO_LEGEND,
        ARG_START_TIME,
        ARG_EXEC_ONLY,
        ARG_FILES_ONLY,
        ARG_BUILD_IDS,
        ARG_NO_BUILD_IDS,
        ARG_SYMBOLS,
        ARG_BUILD_ID,
        ARG_DELETED_ONLY,
};

static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "json", optional_argument, NULL, ARG_JSON },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
                { "start-time", required_argument, NULL, ARG_START_TIME },
                { "exec-only", no_argument, NULL, ARG_EXEC_ONLY },
                { "files-only", no_argument, NULL, ARG_FILES_ONLY },
                { "build-ids", no_argument, NULL, ARG_BUILD_IDS },
                { "no-build-ids", no_argument, NULL, ARG_NO_BUILD_IDS },
                { "full", no_argument, NULL, 'l' },
                { "symbols", no_argument, NULL, ARG_SYMBOLS },
                { "build-id", required_argument, NULL, ARG_BUILD_ID },
                { "deleted-only", no_argument, NULL, ARG_DELETED_ONLY },
                {}
        };
        int ch;

        opterr = 0;
        while ((ch = getopt_long(argc, argv, ":hl", options, NULL)) >= 0) {
                switch (ch) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        puts("memctl " MEMMAPD_VERSION);
                        return 0;
                case ARG_JSON:
                        if (!optarg || strcmp(optarg, "pretty") == 0)
                                arg.json = JSON_PRETTY;
                        else if (strcmp(optarg, "short") == 0)
                                arg.json = JSON_SHORT;
                        else {
                                error("invalid --json mode '%s' (expected pretty or short)", optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_SOCKET:
                        if (!*optarg) {
                                error("--socket needs a path");
                                return -EINVAL;
                        }
                        arg.socket = optarg;
                        break;
                case ARG_NO_LEGEND:
                        arg.legend = false;
                        break;
                case ARG_START_TIME:
                        if (parse_u64(optarg, &arg.start_time) < 0 || arg.start_time > INT64_MAX) {
                                error("invalid --start-time '%s' (expected clock ticks, decimal or 0x...)", optarg);
                                return -EINVAL;
                        }
                        arg.start_time_set = true;
                        break;
                case ARG_EXEC_ONLY:
                        arg.exec_only = true;
                        break;
                case ARG_FILES_ONLY:
                        arg.files_only = true;
                        break;
                case ARG_BUILD_IDS:
                        arg.build_ids = 1;
                        break;
                case ARG_NO_BUILD_IDS:
                        arg.build_ids = 0;
                        break;
                case 'l':
                        arg.full = true;
                        break;
                case ARG_SYMBOLS:
                        arg.symbols = true;
                        break;
                case ARG_BUILD_ID:
                        if (!*optarg || strlen(optarg) % 2 != 0 || strspn(optarg, "0123456789abcdefABCDEF") != strlen(optarg)) {
                                error("invalid --build-id '%s' (expected an even number of hex digits)", optarg);
                                return -EINVAL;
                        }
                        arg.build_id = optarg;
                        break;
                case ARG_DELETED_ONLY:
                        arg.deleted_only = true;
                        break;
                case ':':
                        error("option '%s' needs an argument", argv[optind - 1]);
                        return -EINVAL;
                default:
                        if (optopt && optopt < 0x100)
                                error("invalid option '-%c' (see --help)", optopt);
                        else
                                error("unknown option '%s' (see --help)", argv[optind - 1]);
                        return -EINVAL;
                }
        }
        return 1;
}

/* Options that only some commands take are an error elsewhere rather than silently ignored. */
static int check_options(const char *cmd) {
        bool maps = strcmp(cmd, "maps") == 0, lookup = strcmp(cmd, "lookup") == 0 || strcmp(cmd, "lookup-many") == 0;
        bool status = strcmp(cmd, "status") == 0;

        if ((arg.exec_only || arg.files_only) && !maps) {
                error("--exec-only and --files-only apply to maps only");
                return -EINVAL;
        }
        if (arg.build_ids >= 0 && !maps && !lookup) {
                error("--build-ids and --no-build-ids apply to maps, lookup and lookup-many only");
                return -EINVAL;
        }
        if (arg.symbols && strcmp(cmd, "lookup") != 0) {
                error("--symbols applies to lookup only");
                return -EINVAL;
        }
        if ((arg.build_id || arg.deleted_only) && strcmp(cmd, "who") != 0) {
                error("--build-id and --deleted-only apply to who only");
                return -EINVAL;
        }
        if (arg.start_time_set && (status || strcmp(cmd, "who") == 0)) {
                error("--start-time does not apply to status");
                return -EINVAL;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_(memctl_freep) memctl *c = NULL;
        _cleanup_free_ char *default_path = NULL;
        _cleanup_free_ uint64_t *addresses_v = NULL;
        struct addresses addresses = {};
        _cleanup_free_ struct memctl_lookup_group *groups = NULL;
        struct context ctx = {};
        const char *cmd;
        char **args;
        size_t n_args;
        uint64_t cat_address = 0;
        pid_t pid = 0;
        int r;

        r = parse_argv(argc, argv);
        if (r < 0)
                return EXIT_USAGE;
        if (r == 0)
                return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;

        if (optind >= argc) {
                error("missing command (see --help)");
                return EXIT_USAGE;
        }
        cmd = argv[optind];
        args = argv + optind + 1;
        n_args = (size_t) (argc - optind - 1);

        if (strcmp(cmd, "maps") == 0 || strcmp(cmd, "modules") == 0 || strcmp(cmd, "vdso") == 0) {
                if (n_args != 1) {
                        error("%s takes one PID (see --help)", cmd);
                        return EXIT_USAGE;
                }
        } else if (strcmp(cmd, "lookup") == 0) {
                if (n_args < 1) {
                        error("lookup takes a PID and addresses (see --help)");
                        return EXIT_USAGE;
                }
        } else if (strcmp(cmd, "cat") == 0) {
                if (n_args != 2) {
                        error("cat takes a PID and an address (see --help)");
                        return EXIT_USAGE;
                }
        } else if (strcmp(cmd, "lookup-many") == 0) {
                if (n_args < 1) {
                        error("lookup-many takes PID:ADDR[,ADDR...] groups (see --help)");
                        return EXIT_USAGE;
                }
        } else if (strcmp(cmd, "who") == 0) {
                if (n_args != (arg.build_id ? 0u : 1u)) {
                        error("who takes a PATH, or --build-id=HEX and nothing else (see --help)");
                        return EXIT_USAGE;
                }
        } else if (strcmp(cmd, "watch") == 0) {
                if (n_args > 1) {
                        error("watch takes at most one PID (see --help)");
                        return EXIT_USAGE;
                }
        } else if (strcmp(cmd, "status") == 0) {
                if (n_args != 0) {
                        error("status takes no arguments");
                        return EXIT_USAGE;
                }
        } else {
                error("unknown command '%s' (see --help)", cmd);
                return EXIT_USAGE;
        }
        if (check_options(cmd) < 0)
                return EXIT_USAGE;
        if (n_args > 0 && strcmp(cmd, "who") != 0 && strcmp(cmd, "lookup-many") != 0 && parse_pid(args[0], &pid) < 0)
                return EXIT_USAGE;

        if (strcmp(cmd, "cat") == 0 && parse_address(args[1], &cat_address) < 0) {
                error("invalid address '%s' (expected 0x... or decimal)", args[1]);
                return EXIT_USAGE;
        }

        /* Read all input before connecting: a slow pipe must not hold a connection idle. */
        if (strcmp(cmd, "lookup") == 0) {
                bool from_stdin = n_args == 1;

                for (size_t i = 1; i < n_args; i++) {
                        uint64_t v;

                        if (strcmp(args[i], "-") == 0) {
                                from_stdin = true;
                                continue;
                        }
                        if (parse_address(args[i], &v) < 0) {
                                error("invalid address '%s' (expected 0x... or decimal)", args[i]);
                                r = EXIT_USAGE;
                                goto out;
                        }
                        if (addresses_push(&addresses, v) < 0) {
                                r = oom();
                                goto out;
                        }
                }
                if (from_stdin) {
                        r = read_addresses(stdin, &addresses);
                        if (r != EXIT_OK)
                                goto out;
                }
        }

        if (arg.socket)
                ctx.path = arg.socket;
        else {
                r = memctl_default_socket_path(&default_path);
                if (r < 0) {
                        r = oom();
                        goto out;
                }
                ctx.path = default_path;
        }
        r = memctl_connect(ctx.path, &c);
        if (r < 0) {
                r = connect_failed(ctx.path, r);
                goto out;
        }
        ctx.c = c;

        if (strcmp(cmd, "maps") == 0)
                r = cmd_maps(&ctx, pid);
        else if (strcmp(cmd, "modules") == 0)
                r = cmd_modules(&ctx, pid);
        else if (strcmp(cmd, "vdso") == 0)
                r = cmd_vdso(&ctx, pid);
        else if (strcmp(cmd, "cat") == 0)
                r = cmd_cat(&ctx, pid, cat_address);
        else if (strcmp(cmd, "lookup") == 0)
                r = cmd_lookup(&ctx, pid, &addresses);
        else if (strcmp(cmd, "lookup-many") == 0) {
                groups = calloc(n_args, sizeof(*groups));
                if (!groups) {
                        r = oom();
                        goto out;
                }
                r = parse_groups(args, n_args, groups, &addresses);
                if (r == EXIT_OK)
                        r = cmd_lookup_many(&ctx, groups, n_args);
        } else if (strcmp(cmd, "who") == 0)
                r = cmd_who(&ctx, arg.build_id ? NULL : args[0], arg.build_id, arg.deleted_only);
        else if (strcmp(cmd, "watch") == 0)
                r = cmd_watch(&ctx, pid);
        else
                r = cmd_status(&ctx);

out:
        addresses_v = addresses.v;
        if (fflush(stdout) != 0 || ferror(stdout)) {
                error("cannot write output: %m");
                if (r == EXIT_OK)
                        r = EXIT_FAIL;
        }
        return r;
}
