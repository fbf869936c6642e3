/* Settings: the key=value file, its hostile forms, and command-line overrides. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon-config.h"
#include "log.h"

static char path[] = "/tmp/memmapd-config-XXXXXX";

static const char *write_file(const char *text, size_t len) {
        int fd;

        strcpy(path, "/tmp/memmapd-config-XXXXXX");
        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, len), (ssize_t) len);
        close(fd);
        return path;
}

static void test_file(void **state) {
        static const char text[] =
                "# comment\n"
                "; another\n"
                "\n"
                "[Daemon]\n"
                "  Backend = maps  \n"
                "LogLevel=debug\n"
                "Socket=/run/x/io.memmapd\n"
                "MaxAddresses=0x400\n"
                "IdleTimeoutSec=7\n"
                "AllowGroups=adm, profilers wheel\n"
                "Workers=2\n";
        struct config c;
        unsigned line = 0;

        config_init(&c);
        assert_int_equal(config_parse_file(&c, write_file(text, sizeof(text) - 1), &line), 0);
        unlink(path);
        assert_int_equal(c.backend, ENGINE_BACKEND_MAPS);
        assert_int_equal(c.log_level, LOG_DEBUG);
        assert_string_equal(c.socket_path, "/run/x/io.memmapd");
        assert_int_equal(c.limits.max_addresses, 1024);
        assert_int_equal(c.limits.idle_timeout_sec, 7);
        assert_int_equal(c.workers, 2);
        assert_int_equal(c.n_allow_groups, 3);
        assert_string_equal(c.allow_groups[1], "profilers");
        assert_true(c.allow_groups_set);

        /* The command line comes after the file and wins. */
        assert_int_equal(config_set(&c, "Backend", "ioctl"), 0);
        assert_int_equal(config_set(&c, "AllowGroups", ""), 0);
        assert_int_equal(c.backend, ENGINE_BACKEND_IOCTL);
        assert_int_equal(c.n_allow_groups, 0);
        assert_true(c.allow_groups_set);

        /* The file readers' settings, with their defaults and bounds. */
        assert_int_equal(c.file_read_timeout_msec, 2000);
        assert_int_equal(c.stuck_readers_per_user, 2);
        assert_int_equal(c.file_readers, 16);
        assert_int_equal(config_set(&c, "FileReadTimeoutMSec", "500"), 0);
        assert_int_equal(config_set(&c, "StuckReadersPerUser", "3"), 0);
        assert_int_equal(config_set(&c, "FileReaders", "8"), 0);
        assert_int_equal(c.file_read_timeout_msec, 500);
        assert_int_equal(c.stuck_readers_per_user, 3);
        assert_int_equal(c.file_readers, 8);
        assert_true(config_set(&c, "FileReadTimeoutMSec", "0") < 0);
        assert_true(config_set(&c, "FileReaders", "0") < 0);
        assert_true(config_set(&c, "StuckReadersPerUser", "0") < 0);
        config_done(&c);
}

struct bad_setting {
        const char *key, *value;
        int error;
};

/* Each setting fails with its error. */
static void expect_bad(struct config *c, const struct bad_setting *bad, size_t n) {
        for (size_t i = 0; i < n; i++) {
                int r = config_set(c, bad[i].key, bad[i].value);

                if (r != bad[i].error)
                        fail_msg("%s=%s: %d, expected %d", bad[i].key, bad[i].value, r, bad[i].error);
        }
}

static void test_bad_values(void **state) {
        static const struct bad_setting bad[] = {
                { "Nope", "1", -EINVAL },
                { "Backend", "bpf", -EINVAL },
                { "LogLevel", "loud", -EINVAL },
                { "Socket", "relative/path", -EINVAL },
                { "MaxMessageSize", "16777217", -ERANGE },   /* above 16 MiB */
                { "MaxMessageSize", "100", -ERANGE },
                { "Workers", "0", -ERANGE },
                { "Workers", "-1", -EINVAL },
                { "MaxAddresses", "18446744073709551616", -ERANGE },
                { "IdleTimeoutSec", "1s", -EINVAL },
                { "MaxJsonDepth", "", -EINVAL },
        };
        struct config c;

        config_init(&c);
        expect_bad(&c, bad, sizeof(bad) / sizeof(bad[0]));
        /* Nothing changed. */
        assert_int_equal(c.workers, 4);
        assert_int_equal(c.limits.max_message_size, 4u * 1024 * 1024);
        config_done(&c);
}

static void test_bad_files(void **state) {
        struct config c;
        unsigned line = 0;
        char *big;

        config_init(&c);
        assert_int_equal(config_parse_file(&c, write_file("Workers=2\nno equals sign\n", 25), &line), -EINVAL);
        assert_int_equal(line, 2);
        unlink(path);
        assert_int_equal(config_parse_file(&c, write_file("A\0=1\n", 5), &line), -EBADMSG);
        unlink(path);

        /* A line above 4 KiB, and a file above 64 KiB. */
        big = malloc(70000);
        assert_non_null(big);
        memset(big, 'x', 70000);
        memcpy(big, "Workers=", 8);
        big[5000] = '\n';
        assert_int_equal(config_parse_file(&c, write_file(big, 6000), &line), -E2BIG);
        assert_int_equal(line, 1);
        unlink(path);
        assert_int_equal(config_parse_file(&c, write_file(big, 70000), &line), -EFBIG);
        unlink(path);
        free(big);

        assert_int_equal(config_parse_file(&c, "/nonexistent/memmapd.conf", &line), -ENOENT);
        assert_int_equal(config_parse_file(&c, "/tmp", &line), -EBADF);
        assert_int_equal(c.workers, 4);
        config_done(&c);
        config_done(&c);
}

/* The budgets against denial of service (issue 11): their defaults keep what all clients can
 * make the daemon hold under the unit's MemoryMax=512M, and each can be set. */
static void test_budgets(void **state) {
        struct config c;

        config_init(&c);
        assert_int_equal(c.limits.reserved_connections, 64);
        assert_int_equal(c.limits.output_budget, 256u * 1024 * 1024);
        assert_int_equal(c.limits.output_budget_per_uid, 64u * 1024 * 1024);
        /* One reply of every worker in flight beside a full budget stays under 512 MiB. */
        assert_true(c.limits.output_budget + c.workers * c.limits.max_output_queue <= 512u * 1024 * 1024);
        assert_int_equal(config_set(&c, "ReservedConnections", "0"), 0);
        assert_int_equal(c.limits.reserved_connections, 0);
        assert_int_equal(config_set(&c, "OutputBudget", "0x2000000"), 0);
        assert_int_equal(c.limits.output_budget, 32u * 1024 * 1024);
        assert_int_equal(config_set(&c, "OutputBudgetPerUser", "1048576"), 0);
        assert_int_equal(c.limits.output_budget_per_uid, 1024 * 1024);
        assert_int_equal(config_set(&c, "OutputBudget", "1000"), -ERANGE);
        assert_int_equal(config_set(&c, "OutputBudgetPerUser", "100"), -ERANGE);
        assert_int_equal(config_set(&c, "ReservedConnections", "-1"), -EINVAL);
        assert_int_equal(c.limits.output_budget, 32u * 1024 * 1024);
        config_done(&c);
}

/* Change tracking and the layout store (issue 14): defaults, the file, the command line and
 * hostile values, none of which may change a setting. */
static void test_tracking(void **state) {
        static const char text[] =
                "Tracking=none\n"
                "MaxCachedProcesses=0\n"
                "MaxCacheMemory=0x4000000\n"
                "MaxCacheMemoryPerUser=1048576\n";
        static const struct bad_setting bad[] = {
                { "Tracking", "", -EINVAL },
                { "Tracking", "BPF", -EINVAL },
                { "Tracking", "bpf ", -EINVAL },
                { "Tracking", "yes", -EINVAL },
                { "MaxCachedProcesses", "-1", -EINVAL },
                { "MaxCachedProcesses", "1048577", -ERANGE },
                { "MaxCacheMemory", "0", -ERANGE },
                { "MaxCacheMemory", "1048575", -ERANGE },
                { "MaxCacheMemory", "68719476737", -ERANGE },   /* above 64 GiB */
                { "MaxCacheMemory", "256M", -EINVAL },
                { "MaxCacheMemoryPerUser", "18446744073709551616", -ERANGE },
        };
        struct config c;
        unsigned line = 0;

        config_init(&c);
        assert_int_equal(c.tracking, TRACKING_AUTO);
        assert_int_equal(c.max_cached_processes, 4096);
        assert_int_equal(c.max_cache_memory, 128u * 1024 * 1024);
        assert_int_equal(c.max_cache_memory_per_user, 0);
        expect_bad(&c, bad, sizeof(bad) / sizeof(bad[0]));
        assert_int_equal(c.tracking, TRACKING_AUTO);
        assert_int_equal(c.max_cached_processes, 4096);
        assert_int_equal(c.max_cache_memory, 128u * 1024 * 1024);
        assert_int_equal(c.max_cache_memory_per_user, 0);

        assert_int_equal(config_parse_file(&c, write_file(text, sizeof(text) - 1), &line), 0);
        unlink(path);
        assert_int_equal(c.tracking, TRACKING_NONE);
        assert_int_equal(c.max_cached_processes, 0);
        assert_int_equal(c.max_cache_memory, 64u * 1024 * 1024);
        assert_int_equal(c.max_cache_memory_per_user, 1024 * 1024);

        /* A bad line leaves the file's other settings unapplied as well. */
        assert_int_equal(config_parse_file(&c, write_file("Tracking=auto\nMaxCachedProcesses=x\n", 35), &line), -EINVAL);
        unlink(path);
        assert_int_equal(line, 2);
        assert_int_equal(c.tracking, TRACKING_NONE);

        /* The command line after the file. */
        assert_int_equal(config_set(&c, "Tracking", "bpf"), 0);
        assert_int_equal(c.tracking, TRACKING_BPF);
        assert_int_equal(config_set(&c, "Tracking", "auto"), 0);
        assert_int_equal(c.tracking, TRACKING_AUTO);
        assert_int_equal(config_set(&c, "MaxCacheMemory", "68719476736"), 0);
        assert_int_equal(c.max_cache_memory, UINT64_C(64) << 30);
        assert_int_equal(config_set(&c, "MaxCacheMemoryPerUser", "0"), 0);
        assert_int_equal(c.max_cache_memory_per_user, 0);
        config_done(&c);

        /* Each mode's name reads back as the mode. */
        for (unsigned m = 0; m < _TRACKING_MODE_MAX; m++) {
                enum tracking_mode back = _TRACKING_MODE_MAX;

                assert_non_null(tracking_mode_to_string(m));
                assert_int_equal(tracking_mode_from_string(tracking_mode_to_string(m), &back), 0);
                assert_int_equal(back, m);
        }
        assert_null(tracking_mode_to_string(_TRACKING_MODE_MAX));
        assert_string_equal(tracking_mode_to_string(TRACKING_NONE), "none");
}

static void test_log_levels(void **state) {
        assert_int_equal(log_level_from_string("err"), LOG_ERR);
        assert_int_equal(log_level_from_string("error"), LOG_ERR);
        assert_int_equal(log_level_from_string("debug"), LOG_DEBUG);
        assert_int_equal(log_level_from_string("0"), 0);
        assert_int_equal(log_level_from_string("7"), 7);
        assert_int_equal(log_level_from_string("8"), -EINVAL);
        assert_int_equal(log_level_from_string("77"), -EINVAL);
        assert_int_equal(log_level_from_string(NULL), -EINVAL);
}

/* As a user, in a child (the choice follows the effective uid): 0 when every case held. */
static int default_socket_as_user(void) {
        char *p = NULL;

        if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
                return 1;
        setenv("XDG_RUNTIME_DIR", "/run/user/65534", 1);
        if (config_default_socket_path(&p) != 0 || strcmp(p, "/run/user/65534/memmapd/io.memmapd") != 0)
                return 2;
        free(p);
        p = NULL;
        /* No runtime directory, or a relative one: no default, and *ret untouched. */
        unsetenv("XDG_RUNTIME_DIR");
        if (config_default_socket_path(&p) != -ENXIO || p)
                return 3;
        setenv("XDG_RUNTIME_DIR", "run/user/65534", 1);
        if (config_default_socket_path(&p) != -ENXIO || p)
                return 4;
        return 0;
}

static void test_default_socket(void **state) {
        char *p = NULL;
        pid_t pid;
        int status;

        if (geteuid() != 0) {
                printf("[  SKIPPED ] needs root to check both the system and a user's socket\n");
                skip();
        }
        setenv("XDG_RUNTIME_DIR", "/run/user/0", 1);
        assert_int_equal(config_default_socket_path(&p), 0);
        assert_string_equal(p, "/run/memmapd/io.memmapd");
        free(p);

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(default_socket_as_user());
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* Symbols (issue 16): the table memory and the debug file root. */
static void test_symbols(void **state) {
        static const char text[] =
                "MaxSymbolMemory=65536\n"
                "DebugFileDirectory=/srv/debug\n";
        static const struct bad_setting bad[] = {
                { "MaxSymbolMemory", "65535", -ERANGE },
                { "MaxSymbolMemory", "68719476737", -ERANGE },
                { "MaxSymbolMemory", "1G", -EINVAL },
                { "DebugFileDirectory", "", -EINVAL },
                { "DebugFileDirectory", "relative/debug", -EINVAL },
        };
        struct config c;
        unsigned line = 0;

        (void) state;
        config_init(&c);
        assert_int_equal(c.max_symbol_memory, 256u * 1024 * 1024);
        assert_null(c.debug_file_directory);
        expect_bad(&c, bad, sizeof(bad) / sizeof(bad[0]));
        assert_int_equal(c.max_symbol_memory, 256u * 1024 * 1024);
        assert_null(c.debug_file_directory);

        assert_int_equal(config_parse_file(&c, write_file(text, sizeof(text) - 1), &line), 0);
        unlink(path);
        assert_int_equal(c.max_symbol_memory, 65536);
        assert_string_equal(c.debug_file_directory, "/srv/debug");
        assert_int_equal(config_set(&c, "DebugFileDirectory", "/usr/lib/debug"), 0);
        assert_string_equal(c.debug_file_directory, "/usr/lib/debug");
        config_done(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_file),
                cmocka_unit_test(test_bad_values),
                cmocka_unit_test(test_bad_files),
                cmocka_unit_test(test_budgets),
                cmocka_unit_test(test_tracking),
                cmocka_unit_test(test_symbols),
                cmocka_unit_test(test_log_levels),
                cmocka_unit_test(test_default_socket),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
