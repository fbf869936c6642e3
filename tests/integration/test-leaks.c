/* Address-layout leaks through memmapd: an unprivileged client gets a process's maps from the
 * real daemon exactly where the kernel lets it read them itself. Run against a daemon running
 * as root and against one running as the unit runs it (its own user, four capabilities). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "fixture.h"

#define UID_NOBODY 65534
#define UID_SERVICE 60100
#define UID_A 41001
#define GID_A 41001

/* What a ListMappings or Lookup call got. */
enum answer {
        ANSWER_MAPS = 0,
        ANSWER_DENIED = 1,
        ANSWER_NO_PROCESS = 2,
        ANSWER_OTHER_ERROR = 3,
        ANSWER_NO_REPLY = 4,
};

static const char *answer_name(int a) {
        switch (a) {
        case ANSWER_MAPS: return "maps";
        case ANSWER_DENIED: return "PermissionDenied";
        case ANSWER_NO_PROCESS: return "NoSuchProcess";
        case ANSWER_OTHER_ERROR: return "another error";
        case ANSWER_NO_REPLY: return "no reply";
        default: return "a failed child";
        }
}

struct target {
        const char *what;
        uid_t creator, outside;         /* a user namespace: its creator, where its 0 maps to */
        unsigned count;                 /* ids it maps; 0: no namespace of its own */
        int nondumpable;
        bool readable;                  /* what the kernel says to uid 65534 */
        struct fixture f;
        pid_t pid;
};

static struct target targets[] = {
        /* root ran unshare --user --map-root-user: root owns the namespace. */
        { "root's unshare -r", (uid_t) -1, 0, 1, 0, false },
        /* A container: root's namespace, its root mapped to 300000. */
        { "a container's root", (uid_t) -1, 300000, 65536, 0, false },
        { "a non-dumpable container process", (uid_t) -1, 300000, 65536, 1, false },
        /* The client's own, which it reads through the kernel. */
        { "the client's unshare -r", UID_NOBODY, UID_NOBODY, 1, 0, true },
        { "the client's subuid namespace", UID_NOBODY, 400000, 65536, 0, true },
        { "a non-dumpable process in the client's subuid namespace", UID_NOBODY, 400000, 65536, 1, true },
        /* Without namespaces, for comparison. */
        { "a root process", (uid_t) -1, 0, 0, 0, false },
        { "the client's own process", UID_NOBODY, 0, 0, 0, true },
};

static int setup(void **state) {
        signal(SIGPIPE, SIG_IGN);
        if (geteuid() != 0)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(targets); i++) {
                struct target *t = &targets[i];
                int r = t->count > 0 ? fixture_start_userns(t->creator, t->outside, t->count, t->nondumpable, &t->f)
                                     : fixture_start_as(0, 0, t->creator, t->creator, t->nondumpable, &t->f);

                if (r < 0) {
                        fprintf(stderr, "cannot start %s: %s\n", t->what, strerror(-r));
                        return -1;
                }
                t->pid = t->f.pid;
        }
        return 0;
}

static int teardown(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(targets); i++)
                if (targets[i].pid > 0)
                        fixture_stop(&targets[i].f);
        return 0;
}

static void require_root(void) {
        if (geteuid() != 0) {
                printf("[  SKIPPED ] leak tests switch uids and need root\n");
                skip();
        }
}

struct query {
        const char *socket;
        pid_t pid;
        bool lookup;
        gid_t group;                    /* a supplementary group for the client; 0: none */
};

/* One call on a fresh connection, as whoever runs it. */
static int ask(const struct query *q) {
        _cleanup_close_ int fd = test_connect(q->socket);
        _cleanup_free_ char *msg = NULL, *reply = NULL;
        _cleanup_json_ struct json_object *r = NULL;
        struct json_object *e, *params, *maps;
        int n;

        if (fd < 0)
                return ANSWER_NO_REPLY;
        if (q->lookup)
                n = asprintf(&msg, "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,"
                             "\"addresses\":[\"0x1000\"]}}", (int) q->pid);
        else
                n = asprintf(&msg, "{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d}}", (int) q->pid);
        if (n < 0)
                return ANSWER_NO_REPLY;
        reply = test_call(fd, msg);
        if (!reply || !(r = json_tokener_parse(reply)))
                return ANSWER_NO_REPLY;
        if (json_object_object_get_ex(r, "error", &e)) {
                const char *err = json_object_get_string(e);

                if (strcmp(err, "io.memmapd.PermissionDenied") == 0)
                        return ANSWER_DENIED;
                return strcmp(err, "io.memmapd.NoSuchProcess") == 0 ? ANSWER_NO_PROCESS : ANSWER_OTHER_ERROR;
        }
        /* A listing has mappings; a lookup of one address may find none. */
        if (!json_object_object_get_ex(r, "parameters", &params) ||
            !json_object_object_get_ex(params, "mappings", &maps) ||
            (!q->lookup && json_object_array_length(maps) == 0))
                return ANSWER_OTHER_ERROR;
        return ANSWER_MAPS;
}

static int ask_child(void *arg) {
        return ask(arg);
}

/* The same from a forked child running as uid/gid, with q->group as its only supplementary
 * group. */
static int ask_as(uid_t uid, gid_t gid, const struct query *q) {
        int status;
        pid_t pid = fork();

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                gid_t groups[1] = { q->group };

                if (setgroups(q->group ? 1 : 0, groups) < 0 || setresgid(gid, gid, gid) < 0 ||
                    setresuid(uid, uid, uid) < 0)
                        _exit(126);
                _exit(ask_child((void *) q));
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A thread of pid other than its main one, waiting until it has one. */
static pid_t other_thread(pid_t pid) {
        char path[64];

        snprintf(path, sizeof(path), "/proc/%d/task", (int) pid);
        for (int i = 0; i < 3000; i++) {
                _cleanup_closedir_ DIR *d = opendir(path);
                struct dirent *de;

                assert_non_null(d);
                while ((de = readdir(d))) {
                        int tid = atoi(de->d_name);

                        if (tid > 0 && tid != pid)
                                return tid;
                }
                usleep(10000);
        }
        fail_msg("memmapd %d started no threads", (int) pid);
        return -1;
}

/* What uid 65534 gets from the daemon on socket about pid, against what the kernel gives it:
 * maps exactly where the kernel lets it read /proc/PID/maps, PermissionDenied exactly where
 * the kernel refuses. Returns whether they agree, having said so when not. */
static bool agrees_with_kernel(const char *socket, const char *what, pid_t pid, bool expect_readable) {
        int kernel = test_maps_readable_as(UID_NOBODY, UID_NOBODY, pid);
        bool ok = true;

        if (kernel != 0 && kernel != -EACCES && kernel != -EPERM)
                fail_msg("%s: the kernel check failed: %s", what, strerror(-kernel));
        if ((kernel == 0) != expect_readable) {
                fprintf(stderr, "%s: the kernel says %s to uid 65534, the test expects otherwise\n", what,
                        kernel == 0 ? "readable" : strerror(-kernel));
                ok = false;
        }
        for (int lookup = 0; lookup < 2; lookup++) {
                const struct query q = { .socket = socket, .pid = pid, .lookup = lookup };
                int got = ask_as(UID_NOBODY, UID_NOBODY, &q), want = kernel == 0 ? ANSWER_MAPS : ANSWER_DENIED;

                if (got != want) {
                        fprintf(stderr, "%s (%s): memmapd gives uid 65534 %s, the kernel %s\n", what,
                                lookup ? "Lookup" : "ListMappings", answer_name(got),
                                kernel == 0 ? "the maps" : strerror(-kernel));
                        ok = false;
                }
        }
        return ok;
}

static void check_leaks(uid_t daemon_uid) {
        static const char *const args[] = { "--allow-groups=adm", NULL };
        struct group *adm = getgrnam("adm");
        struct test_daemon d;
        pid_t tid;
        bool ok = true;

        if (daemon_uid == 0)
                assert_int_equal(test_daemon_start(args, &d), 0);
        else
                assert_int_equal(test_daemon_start_as(daemon_uid, daemon_uid, args, &d), 0);
        tid = other_thread(d.pid);

        /* An unprivileged client: the kernel's answer, and nothing of the daemon's own. */
        for (size_t i = 0; i < ELEMENTSOF(targets); i++)
                ok &= agrees_with_kernel(d.socket, targets[i].what, targets[i].pid, targets[i].readable);
        ok &= agrees_with_kernel(d.socket, "the daemon's pid", d.pid, false);
        ok &= agrees_with_kernel(d.socket, "a thread of the daemon", tid, false);

        /* root, and a member of AllowGroups, read everything, the daemon included. */
        for (size_t i = 0; i < ELEMENTSOF(targets) + 2; i++) {
                pid_t pid = i < ELEMENTSOF(targets) ? targets[i].pid : i == ELEMENTSOF(targets) ? d.pid : tid;
                const char *what = i < ELEMENTSOF(targets) ? targets[i].what : "the daemon";
                struct query q = { .socket = d.socket, .pid = pid };
                int got = ask(&q);

                if (got != ANSWER_MAPS) {
                        fprintf(stderr, "%s: root gets %s\n", what, answer_name(got));
                        ok = false;
                }
                if (adm) {
                        q.group = adm->gr_gid;
                        got = ask_as(UID_A, GID_A, &q);
                        if (got != ANSWER_MAPS) {
                                fprintf(stderr, "%s: a member of adm gets %s\n", what, answer_name(got));
                                ok = false;
                        }
                }
        }
        if (!adm)
                printf("[  SKIPPED ] allowed-group cases: no group adm here\n");

        assert_true(ok);
        assert_int_equal(test_daemon_stop(&d), 0);
}

static void test_daemon_as_root(void **state) {
        require_root();
        check_leaks(0);
}

/* As the unit runs it: User=memmapd, AmbientCapabilities=CAP_SYS_PTRACE CAP_DAC_READ_SEARCH
 * CAP_SETUID CAP_SETGID and nothing else. The impersonation works with only those. */
static void test_daemon_as_service_user(void **state) {
        require_root();
        check_leaks(UID_SERVICE);
}

static int write_file(const char *path, const char *text) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        return write(fd, text, strlen(text)) == (ssize_t) strlen(text) ? 0 : -EIO;
}

static bool kernel_reads(pid_t pid) {
        char path[64];
        _cleanup_close_ int fd = -1;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        return fd >= 0;
}

/* Runs as uid 65534 inside a user namespace of its own (its root mapped to 65534): asks about
 * outside, a process of its own uid outside the namespace, and inside, a child of its own in
 * it. Exit status: bit 0 set when the kernel and memmapd disagree about outside, bit 1 about
 * inside, bit 2 when the kernel did not behave as the test assumes; 126 on setup failure. */
static int ask_from_namespace(const char *socket, pid_t outside) {
        int status = 0, r;
        pid_t inside;

        if (setgroups(0, NULL) < 0 || setresgid(UID_NOBODY, UID_NOBODY, UID_NOBODY) < 0 ||
            setresuid(UID_NOBODY, UID_NOBODY, UID_NOBODY) < 0 ||
            /* A uid change made us non-dumpable: /proc/self would stay root's. */
            prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0 || unshare(CLONE_NEWUSER) < 0 ||
            write_file("/proc/self/setgroups", "deny") < 0 || write_file("/proc/self/uid_map", "0 65534 1") < 0 ||
            write_file("/proc/self/gid_map", "0 65534 1") < 0)
                return 126;
        inside = fork();
        if (inside < 0)
                return 126;
        if (inside == 0) {
                pause();
                _exit(0);
        }
        for (int i = 0; i < 2; i++) {
                pid_t pid = i == 0 ? outside : inside;
                bool kernel = kernel_reads(pid);

                /* The kernel refuses what lies outside, even with the same uid. */
                if (kernel != (i == 1))
                        status |= 4;
                for (int lookup = 0; lookup < 2; lookup++) {
                        const struct query q = { .socket = socket, .pid = pid, .lookup = lookup };

                        r = ask(&q);
                        if (r != (kernel ? ANSWER_MAPS : ANSWER_DENIED)) {
                                fprintf(stderr, "from a user namespace, %s (%s): memmapd gives %s, the kernel %s\n",
                                        i == 0 ? "a process of the same uid outside" : "a process inside",
                                        lookup ? "Lookup" : "ListMappings", answer_name(r),
                                        kernel ? "the maps" : "a refusal");
                                status |= 1 << i;
                        }
                }
        }
        kill(inside, SIGKILL);
        waitpid(inside, NULL, 0);
        return status;
}

/* A client inside a user namespace reads nothing outside it through the kernel (the
 * capability check runs in its namespace, whatever the uids), so memmapd must not either;
 * what lies inside stays readable. */
static void test_client_in_namespace(void **state) {
        struct target *own = NULL;
        struct test_daemon d;
        int status;
        pid_t pid;

        require_root();
        for (size_t i = 0; i < ELEMENTSOF(targets); i++)
                if (strcmp(targets[i].what, "the client's own process") == 0)
                        own = &targets[i];
        assert_non_null(own);
        assert_int_equal(test_daemon_start(NULL, &d), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(ask_from_namespace(d.socket, own->pid));
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_not_equal(WEXITSTATUS(status), 126);
        assert_int_equal(WEXITSTATUS(status) & 4, 0);
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(test_daemon_stop(&d), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_daemon_as_root),
                cmocka_unit_test(test_daemon_as_service_user),
                cmocka_unit_test(test_client_in_namespace),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
