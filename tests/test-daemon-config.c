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

static void test_bad_values(void **state) {
        static const struct {
                const char *key, *value;
                int error;
        } bad[] = {
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
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int r = config_set(&c, bad[i].key, bad[i].value);

                if (r != bad[i].error)
                        fail_msg("%s=%s: %d, expected %d", bad[i].key, bad[i].value, r, bad[i].error);
        }
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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_file),
                cmocka_unit_test(test_bad_values),
                cmocka_unit_test(test_bad_files),
                cmocka_unit_test(test_budgets),
                cmocka_unit_test(test_log_levels),
                cmocka_unit_test(test_default_socket),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
