/* Access control: the kernel's own rule decides what an unprivileged client may open. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "access.h"
#include "cleanup.h"
#include "fixture.h"
#include "process.h"

#define UID_A 41001
#define UID_B 41002
#define GID_A 41001
#define GID_PROFILERS 41100

static int open_as(const struct client *c, pid_t pid) {
        struct impersonation imp;
        struct process *p = NULL;
        int r, k;

        r = impersonate_begin(c, &imp);
        if (r < 0)
                return r;
        r = process_open(pid, &p);
        k = impersonate_end(&imp);
        assert_int_equal(k, 0);
        process_free(p);
        return r;
}

static void require_root(void) {
        if (geteuid() != 0) {
                printf("[  SKIPPED ] access tests switch uids and need root\n");
                skip();
        }
}

static void test_kernel_decides(void **state) {
        struct client a = { .uid = UID_A, .gid = GID_A };
        struct fixture own, other, nondump, rootproc;

        require_root();
        assert_int_equal(fixture_start_as(0, 0, UID_A, GID_A, 0, &own), 0);
        assert_int_equal(fixture_start_as(0, 0, UID_B, UID_B, 0, &other), 0);
        assert_int_equal(fixture_start_as(0, 0, UID_A, GID_A, 1, &nondump), 0);
        assert_int_equal(fixture_start(0, 0, &rootproc), 0);

        assert_int_equal(open_as(&a, own.pid), 0);
        assert_int_equal(open_as(&a, other.pid), -EACCES);
        assert_int_equal(open_as(&a, nondump.pid), -EACCES);
        assert_int_equal(open_as(&a, rootproc.pid), -EACCES);
        assert_int_equal(open_as(&a, 1), -EACCES);

        /* After impersonating, the thread is root again: it can open everything. */
        struct process *p = NULL;
        assert_int_equal(process_open(other.pid, &p), 0);
        p = process_free(p);
        assert_int_equal(process_open(nondump.pid, &p), 0);
        p = process_free(p);
        assert_int_equal(setfsuid((uid_t) -1), 0);

        fixture_stop(&own);
        fixture_stop(&other);
        fixture_stop(&nondump);
        fixture_stop(&rootproc);
}

struct thread_arg {
        pid_t pid;
        int result;
        pthread_barrier_t go;
};

static void *root_opener(void *userdata) {
        struct thread_arg *a = userdata;
        struct process *p = NULL;

        /* Wait until the main thread impersonates: a thread created meanwhile would inherit
         * its credentials, but this one exists already, as the daemon's workers do. */
        pthread_barrier_wait(&a->go);
        a->result = process_open(a->pid, &p);
        process_free(p);
        return NULL;
}

static void test_per_thread(void **state) {
        struct client a = { .uid = UID_A, .gid = GID_A };
        struct impersonation imp;
        struct thread_arg arg = { .result = 1 };
        struct fixture other;
        pthread_t t;

        require_root();
        assert_int_equal(fixture_start_as(0, 0, UID_B, UID_B, 0, &other), 0);
        arg.pid = other.pid;
        assert_int_equal(pthread_barrier_init(&arg.go, NULL, 2), 0);
        assert_int_equal(pthread_create(&t, NULL, root_opener, &arg), 0);

        /* While this thread acts as uid A, the other thread keeps the daemon's rights. */
        assert_int_equal(impersonate_begin(&a, &imp), 0);
        pthread_barrier_wait(&arg.go);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(arg.result, 0);
        assert_int_equal((int) setfsuid((uid_t) -1), UID_A);
        struct process *p = NULL;
        assert_int_equal(process_open(other.pid, &p), -EACCES);
        assert_int_equal(impersonate_end(&imp), 0);
        assert_int_equal((int) setfsuid((uid_t) -1), 0);
        pthread_barrier_destroy(&arg.go);
        fixture_stop(&other);
}

static void test_privileged(void **state) {
        gid_t allowed[] = { GID_PROFILERS };
        struct client root = { .uid = 0, .gid = 0 };
        gid_t profilers[] = { GID_PROFILERS }, five[] = { 5 };
        struct client member = { .uid = UID_A, .gid = GID_A, .n_groups = 1, .groups = profilers };
        struct client primary = { .uid = UID_B, .gid = GID_PROFILERS };
        struct client stranger = { .uid = UID_A, .gid = GID_A, .n_groups = 1, .groups = five };

        assert_true(client_is_privileged(&root, NULL, 0));
        assert_true(client_is_privileged(&member, allowed, 1));
        assert_true(client_is_privileged(&primary, allowed, 1));
        assert_false(client_is_privileged(&stranger, allowed, 1));
        assert_false(client_is_privileged(&member, NULL, 0));
}

/* A client's identity comes from the socket: uid, gid and supplementary groups as they
 * were when it connected. */
static void test_peer_identity(void **state) {
        gid_t allowed[] = { GID_PROFILERS };
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_(client_done) struct client c = {};
        int lfd, cfd, status;
        char dir[] = "/tmp/memmapd-access-XXXXXX";
        pid_t pid;

        require_root();
        assert_non_null(mkdtemp(dir));
        assert_int_equal(chmod(dir, 0777), 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
        assert_true((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
        assert_int_equal(bind(lfd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(chmod(sa.sun_path, 0666), 0);
        assert_int_equal(listen(lfd, 1), 0);

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                gid_t groups[] = { GID_PROFILERS };
                int fd;
                char b;

                if (setgroups(1, groups) < 0 || setresgid(GID_A, GID_A, GID_A) < 0 ||
                    setresuid(UID_A, UID_A, UID_A) < 0)
                        _exit(2);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                        _exit(3);
                (void) !read(fd, &b, 1);
                _exit(0);
        }
        assert_true((cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0);
        assert_int_equal(client_from_socket(cfd, allowed, 1, &c), 0);
        assert_int_equal(c.uid, UID_A);
        assert_int_equal(c.gid, GID_A);
        assert_int_equal(c.pid, pid);
        assert_int_equal(c.n_groups, 1);
        assert_int_equal(c.groups[0], GID_PROFILERS);
        assert_true(c.privileged);
        assert_int_equal(c.owner, UID_A);
        client_done(&c);
        assert_int_equal(client_from_socket(cfd, NULL, 0, &c), 0);
        assert_false(c.privileged);
        close(cfd);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(lfd);
        unlink(sa.sun_path);
        rmdir(dir);
}

/* A listening socket in a fresh world-writable directory. */
static int listen_tmp(char *dir, struct sockaddr_un *sa) {
        int lfd;

        assert_non_null(mkdtemp(dir));
        assert_int_equal(chmod(dir, 0777), 0);
        snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/s", dir);
        assert_true((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
        assert_int_equal(bind(lfd, (struct sockaddr *) sa, sizeof(*sa)), 0);
        assert_int_equal(chmod(sa->sun_path, 0666), 0);
        assert_int_equal(listen(lfd, 1), 0);
        return lfd;
}

#define MANY_GROUPS 1000

/* More supplementary groups than fit the first buffer: SO_PEERGROUPS then copies nothing
 * and reports ERANGE; every group must still be known, never a list of zeros (which made the
 * serving thread act as group root). */
static void test_many_groups(void **state) {
        _cleanup_(client_done) struct client c = {};
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char dir[] = "/tmp/memmapd-access-XXXXXX";
        int lfd, cfd, status;
        gid_t allowed[] = { 20000 + MANY_GROUPS - 1 };
        pid_t pid;

        require_root();
        lfd = listen_tmp(dir, &sa);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                static gid_t groups[MANY_GROUPS];
                int fd;
                char b;

                for (size_t i = 0; i < MANY_GROUPS; i++)
                        groups[i] = (gid_t) (20000 + i);
                if (setgroups(MANY_GROUPS, groups) < 0 || setresgid(GID_A, GID_A, GID_A) < 0 ||
                    setresuid(UID_A, UID_A, UID_A) < 0)
                        _exit(2);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                        _exit(3);
                (void) !read(fd, &b, 1);
                _exit(0);
        }
        assert_true((cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0);
        assert_int_equal(client_from_socket(cfd, allowed, 1, &c), 0);
        assert_int_equal(c.n_groups, MANY_GROUPS);
        for (size_t i = 0; i < MANY_GROUPS; i++)
                assert_int_equal(c.groups[i], 20000 + i);
        /* The last group is the allowed one: it is seen. */
        assert_true(c.privileged);
        close(cfd);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(lfd);
        unlink(sa.sun_path);
        rmdir(dir);
}

/* A user with a subuid range runs uids of that range in a user namespace it owns: the daemon
 * sees another uid, but charges the user who owns the namespace. */
static void test_owner_of_namespace(void **state) {
        _cleanup_(client_done) struct client c = {};
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char dir[] = "/tmp/memmapd-access-XXXXXX";
        int lfd, cfd, status, ready[2], mapped[2];
        char path[64], b;
        pid_t pid;
        FILE *f;

        require_root();
        lfd = listen_tmp(dir, &sa);
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(mapped, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int fd;

                if (setgroups(0, NULL) < 0 || setresgid(GID_A, GID_A, GID_A) < 0 ||
                    setresuid(UID_A, UID_A, UID_A) < 0 || unshare(CLONE_NEWUSER) < 0)
                        _exit(2);
                (void) !write(ready[1], "r", 1);
                if (read(mapped[0], &b, 1) != 1)
                        _exit(3);
                /* uid 5 inside is 300005 outside. */
                if (setresgid(5, 5, 5) < 0 || setresuid(5, 5, 5) < 0)
                        _exit(4);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                        _exit(5);
                (void) !read(fd, &b, 1);
                _exit(0);
        }
        assert_int_equal(read(ready[0], &b, 1), 1);
        snprintf(path, sizeof(path), "/proc/%d/uid_map", (int) pid);
        assert_non_null(f = fopen(path, "we"));
        fprintf(f, "0 300000 100\n");
        assert_int_equal(fclose(f), 0);
        snprintf(path, sizeof(path), "/proc/%d/gid_map", (int) pid);
        assert_non_null(f = fopen(path, "we"));
        fprintf(f, "0 300000 100\n");
        assert_int_equal(fclose(f), 0);
        assert_int_equal(write(mapped[1], "m", 1), 1);

        assert_true((cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0);
        assert_int_equal(client_from_socket(cfd, NULL, 0, &c), 0);
        assert_int_equal(c.uid, 300005);
        assert_int_equal(c.owner, UID_A);
        assert_false(c.privileged);
        close(cfd);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(lfd);
        close(ready[0]);
        close(ready[1]);
        close(mapped[0]);
        close(mapped[1]);
        unlink(sa.sun_path);
        rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kernel_decides),
                cmocka_unit_test(test_per_thread),
                cmocka_unit_test(test_privileged),
                cmocka_unit_test(test_peer_identity),
                cmocka_unit_test(test_many_groups),
                cmocka_unit_test(test_owner_of_namespace),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
