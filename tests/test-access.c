/* Access control: the kernel's own rule decides what an unprivileged client may open. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

/* Writes "0 outside 1" to /proc/PID/FILE (uid_map, gid_map). */
static void map_one(pid_t pid, const char *file, unsigned outside) {
        char path[64];
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
        assert_non_null(f = fopen(path, "we"));
        fprintf(f, "0 %u 1\n", outside);
        assert_int_equal(fclose(f), 0);
}

/* A user namespace two deep: UID_A creates one (its uid 0 is UID_A) and, as its root, another
 * inside. The process in the inner one is within the daemon's namespace (found walking up
 * through the outer), and is charged to UID_A, the owner of the outermost one below the
 * daemon's, whatever the inner one's owner; once it is gone, its namespace cannot be asked. */
static void test_nested_namespaces(void **state) {
        int ready[2], go[2], status, ns, proc_fd;
        ino_t self;
        uid_t owner = 0;
        struct stat st;
        char path[64], b;
        pid_t pid;

        require_root();
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(ready[0]);
                close(go[1]);
                if (setgroups(0, NULL) < 0 || setresgid(GID_A, GID_A, GID_A) < 0 ||
                    setresuid(UID_A, UID_A, UID_A) < 0 || unshare(CLONE_NEWUSER) < 0)
                        _exit(2);
                if (write(ready[1], "o", 1) != 1 || read(go[0], &b, 1) != 1)
                        _exit(3);
                if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0 || unshare(CLONE_NEWUSER) < 0)
                        _exit(4);
                if (write(ready[1], "i", 1) != 1)
                        _exit(5);
                (void) !read(go[0], &b, 1);
                _exit(0);
        }
        close(ready[1]);
        close(go[0]);
        assert_int_equal(read(ready[0], &b, 1), 1);
        map_one(pid, "uid_map", UID_A);
        map_one(pid, "gid_map", GID_A);
        assert_int_equal(write(go[1], "g", 1), 1);
        assert_int_equal(read(ready[0], &b, 1), 1);
        assert_int_equal(b, 'i');

        assert_int_equal(stat("/proc/self/ns/user", &st), 0);
        self = st.st_ino;
        snprintf(path, sizeof(path), "/proc/%d", (int) pid);
        assert_true((proc_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) >= 0);
        snprintf(path, sizeof(path), "/proc/%d/ns/user", (int) pid);
        assert_true((ns = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
        assert_int_equal(fstat(ns, &st), 0);
        assert_true(st.st_ino != self);

        assert_int_equal(process_userns_within(proc_fd, self), 1);
        assert_int_equal(process_userns_within(proc_fd, st.st_ino), 1);
        assert_int_equal(userns_owner(ns, &owner), 0);
        assert_int_equal(owner, UID_A);
        close(ns);

        close(go[1]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        /* Reaped: its /proc directory names nothing now. */
        assert_true(process_userns_within(proc_fd, self) < 0);
        close(proc_fd);
        close(ready[0]);
}

/* What is not a connected socket identifies nobody; an fd that is no namespace has no owner;
 * a copy of a client owns its own groups. */
static void test_identity_errors(void **state) {
        gid_t groups[] = { 5, 7, GID_PROFILERS };
        struct client c = { .uid = UID_A, .gid = GID_A, .n_groups = 3, .groups = groups }, copy = {};
        struct client untouched = { .uid = 77 };
        uid_t owner = 99;
        int p[2], s;

        assert_int_equal(client_copy(&c, &copy), 0);
        assert_int_equal(copy.uid, UID_A);
        assert_int_equal(copy.n_groups, 3);
        assert_true(copy.groups != groups);
        assert_memory_equal(copy.groups, groups, sizeof(groups));
        client_done(&copy);
        assert_null(copy.groups);
        assert_int_equal(copy.n_groups, 0);

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(client_from_socket(p[0], NULL, 0, &untouched), -ENOTSOCK);
        assert_int_equal(untouched.uid, 77);
        close(p[0]);
        close(p[1]);
        /* A socket with no peer has no credentials to give. */
        assert_true((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
        assert_int_equal(client_from_socket(s, NULL, 0, &untouched), -ENODATA);
        assert_int_equal(untouched.uid, 77);
        close(s);

        assert_int_equal(userns_owner(-1, &owner), -EBADF);
        assert_int_equal(owner, 99);
}

/* ------------------------------------------------------------------ the thread's identity */

#define UID_NOBODY 65534
#define UID_SERVICE 60100

#define CHECK(cond)                                                                      \
        do {                                                                             \
                if (!(cond)) {                                                           \
                        fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
                        return 1;                                                        \
                }                                                                        \
        } while (0)

/* The same while impersonating: gives the thread back first, so that what follows runs as
 * itself. */
#define CHECK_AS(cond)                                                                   \
        do {                                                                             \
                if (!(cond)) {                                                           \
                        fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
                        (void) impersonate_end(&imp);                                    \
                        return 1;                                                        \
                }                                                                        \
        } while (0)

/* A thread's credentials as the kernel reports them in /proc/self/task/TID/status. */
struct thread_ids {
        char uid[64], gid[64], groups[256];
        uint64_t cap_eff;
};

static void copy_field(char *dst, size_t size, const char *value) {
        size_t len = strcspn(value, "\n");

        /* Groups: ends with a space. */
        while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
                len--;
        snprintf(dst, size, "%.*s", (int) len, value);
}

static int read_thread_ids(pid_t tid, struct thread_ids *ret) {
        char path[64], line[4096];
        struct thread_ids t = {};
        unsigned found = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int) tid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                if (strncmp(line, "Uid:\t", 5) == 0)
                        copy_field(t.uid, sizeof(t.uid), line + 5), found |= 1;
                else if (strncmp(line, "Gid:\t", 5) == 0)
                        copy_field(t.gid, sizeof(t.gid), line + 5), found |= 2;
                else if (strncmp(line, "Groups:\t", 8) == 0)
                        copy_field(t.groups, sizeof(t.groups), line + 8), found |= 4;
                else if (strncmp(line, "CapEff:\t", 8) == 0 && sscanf(line + 8, "%" SCNx64, &t.cap_eff) == 1)
                        found |= 8;
        }
        fclose(f);
        if (found != 15)
                return -EBADMSG;
        *ret = t;
        return 0;
}

static bool same_ids(const struct thread_ids *a, const struct thread_ids *b) {
        return strcmp(a->uid, b->uid) == 0 && strcmp(a->gid, b->gid) == 0 && strcmp(a->groups, b->groups) == 0 &&
               a->cap_eff == b->cap_eff;
}

struct idle_thread {
        pid_t tid;
        int ready[2], quit[2];
};

static void *idle_main(void *userdata) {
        struct idle_thread *t = userdata;
        char b;

        t->tid = gettid();
        (void) !write(t->ready[1], "r", 1);
        (void) !read(t->quit[0], &b, 1);
        return NULL;
}

/* impersonate_begin() gives the calling thread, and it only, the client's euid, egid, fsuid,
 * fsgid and groups and no effective capabilities, keeping the real and saved ids, and
 * impersonate_end() gives everything back. Run by a daemon whose ids are daemon_uid and
 * daemon_gid; returns 0, or 1 after saying what failed. */
static int check_thread_identity(uid_t daemon_uid, gid_t daemon_gid) {
        gid_t groups[] = { GID_PROFILERS, GID_PROFILERS + 1 };
        struct client c = { .uid = UID_A, .gid = GID_A, .n_groups = 2, .groups = groups };
        struct thread_ids before, other_before, during, other_during, after, other_after;
        struct idle_thread t = {};
        struct impersonation imp;
        char want[64];
        pthread_t th;
        char b;

        CHECK(pipe2(t.ready, O_CLOEXEC) == 0 && pipe2(t.quit, O_CLOEXEC) == 0);
        CHECK(pthread_create(&th, NULL, idle_main, &t) == 0);
        CHECK(read(t.ready[0], &b, 1) == 1);

        CHECK(read_thread_ids(gettid(), &before) == 0);
        CHECK(read_thread_ids(t.tid, &other_before) == 0);
        snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", daemon_uid, daemon_uid, daemon_uid, daemon_uid);
        CHECK(strcmp(before.uid, want) == 0);
        CHECK(before.cap_eff != 0);

        CHECK(impersonate_begin(&c, &imp) == 0);
        CHECK_AS(read_thread_ids(gettid(), &during) == 0);
        CHECK_AS(read_thread_ids(t.tid, &other_during) == 0);
        /* The client's effective and file system ids, the daemon's real and saved ones. */
        snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", daemon_uid, UID_A, daemon_uid, UID_A);
        if (strcmp(during.uid, want) != 0)
                fprintf(stderr, "Uid: %s, want %s\n", during.uid, want);
        CHECK_AS(strcmp(during.uid, want) == 0);
        snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", daemon_gid, GID_A, daemon_gid, GID_A);
        CHECK_AS(strcmp(during.gid, want) == 0);
        snprintf(want, sizeof(want), "%u %u", GID_PROFILERS, GID_PROFILERS + 1);
        CHECK_AS(strcmp(during.groups, want) == 0);
        CHECK_AS(during.cap_eff == 0);
        /* The other thread is untouched. */
        CHECK_AS(same_ids(&other_during, &other_before));

        CHECK(impersonate_end(&imp) == 0);
        CHECK(read_thread_ids(gettid(), &after) == 0);
        CHECK(read_thread_ids(t.tid, &other_after) == 0);
        CHECK(same_ids(&after, &before));
        CHECK(same_ids(&other_after, &other_before));

        CHECK(write(t.quit[1], "q", 1) == 1);
        CHECK(pthread_join(th, NULL) == 0);
        close(t.ready[0]);
        close(t.ready[1]);
        close(t.quit[0]);
        close(t.quit[1]);
        return 0;
}

static void test_thread_identity(void **state) {
        require_root();
        assert_int_equal(check_thread_identity(0, 0), 0);
}

/* A child running as the service does (its own uid, the unit's capabilities only). */
static int as_service(int (*fn)(void *arg), void *arg) {
        int status;
        pid_t pid = fork();

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                if (test_become_service_user(UID_SERVICE, UID_SERVICE) < 0)
                        _exit(126);
                test_child_exit(fn(arg));
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int service_thread_identity(void *arg) {
        struct thread_ids now;

        if (read_thread_ids(gettid(), &now) < 0 || now.cap_eff != test_service_caps()) {
                fprintf(stderr, "not running with the unit's capabilities\n");
                return 1;
        }
        return check_thread_identity(UID_SERVICE, UID_SERVICE);
}

/* The same with a daemon running as the unit runs it: another user than root, whose
 * capabilities the uid change does not touch. */
static void test_thread_identity_service(void **state) {
        require_root();
        assert_int_equal(as_service(service_thread_identity, NULL), 0);
}

/* Takes cap out of the calling thread's permitted and effective sets. */
static int drop_cap(int cap) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct d[2] = {};

        if (syscall(SYS_capget, &h, d) < 0)
                return -errno;
        d[cap / 32].permitted &= ~(1u << (cap % 32));
        d[cap / 32].effective &= ~(1u << (cap % 32));
        d[cap / 32].inheritable &= ~(1u << (cap % 32));
        return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

static int service_failures(void *arg) {
        gid_t groups[] = { GID_PROFILERS };
        struct client a = { .uid = UID_A, .gid = GID_A, .n_groups = 1, .groups = groups };
        /* Its own uid needs no CAP_SETUID: only the gid and groups change. */
        struct client own_uid = { .uid = UID_SERVICE, .gid = GID_A, .n_groups = 1, .groups = groups };
        struct thread_ids before, after;
        struct impersonation imp;

        /* Without CAP_SETUID the switch fails half way (groups and gid are set by then): it
         * is refused, and the thread is itself again. */
        CHECK(drop_cap(CAP_SETUID) == 0);
        CHECK(read_thread_ids(gettid(), &before) == 0);
        CHECK(impersonate_begin(&a, &imp) == -EPERM);
        CHECK(read_thread_ids(gettid(), &after) == 0);
        CHECK(same_ids(&after, &before));

        /* What cannot be given back is reported as such: the caller must stop serving. */
        CHECK(impersonate_begin(&own_uid, &imp) == 0);
        CHECK(drop_cap(CAP_SETGID) == 0);
        CHECK(impersonate_end(&imp) == -ENOTRECOVERABLE);
        return 0;
}

/* A switch that fails half way is undone; a restore that fails says so. */
static void test_impersonation_failures(void **state) {
        require_root();
        assert_int_equal(as_service(service_failures, NULL), 0);
}

/* Processes in user namespaces, and what the kernel lets uid 65534 read of them. */
struct ns_case {
        const char *what;
        uid_t creator, outside;
        unsigned count;
        int nondumpable;
        bool readable;                  /* what the kernel says */
        struct fixture f;
};

static struct ns_case ns_cases[] = {
        /* root ran unshare --user --map-root-user: the namespace is root's. */
        { "root's unshare -r", (uid_t) -1, 0, 1, 0, false },
        /* A container: root's namespace, its root mapped to 300000. */
        { "container", (uid_t) -1, 300000, 65536, 0, false },
        { "non-dumpable in a container", (uid_t) -1, 300000, 65536, 1, false },
        /* The client's own: unshare --user --map-root-user, and a subuid range. */
        { "client's unshare -r", UID_NOBODY, UID_NOBODY, 1, 0, true },
        { "client's subuid namespace", UID_NOBODY, 400000, 65536, 0, true },
        { "non-dumpable in the client's subuid namespace", UID_NOBODY, 400000, 65536, 1, true },
};

static int open_as_quiet(const struct client *c, pid_t pid) {
        struct impersonation imp;
        struct process *p = NULL;
        int r;

        r = impersonate_begin(c, &imp);
        if (r < 0)
                return r;
        r = process_open(pid, &p);
        if (impersonate_end(&imp) < 0)
                return -ENOTRECOVERABLE;
        process_free(p);
        return r;
}

/* Every case: the impersonating thread is let in exactly where the kernel lets uid 65534 in,
 * and the daemon itself reads them all. */
static int check_ns_decisions(void *arg) {
        struct client nobody = { .uid = UID_NOBODY, .gid = UID_NOBODY };
        int failed = 0;

        for (size_t i = 0; i < ELEMENTSOF(ns_cases); i++) {
                struct ns_case *k = &ns_cases[i];
                struct process *p = NULL;
                int r = open_as_quiet(&nobody, k->f.pid);

                if ((r == 0) != k->readable || (r < 0 && r != -EACCES && r != -EPERM)) {
                        fprintf(stderr, "%s: opened as uid 65534: %s, the kernel says %s\n", k->what,
                                r == 0 ? "readable" : strerror(-r), k->readable ? "readable" : "EACCES");
                        failed = 1;
                }
                r = process_open(k->f.pid, &p);
                process_free(p);
                if (r < 0) {
                        fprintf(stderr, "%s: the daemon itself cannot open it: %s\n", k->what, strerror(-r));
                        failed = 1;
                }
        }
        return failed;
}

static void test_namespace_decisions(void **state) {
        require_root();
        for (size_t i = 0; i < ELEMENTSOF(ns_cases); i++) {
                struct ns_case *k = &ns_cases[i];
                int kernel;

                assert_int_equal(fixture_start_userns(k->creator, k->outside, k->count, k->nondumpable, &k->f), 0);
                /* What the kernel says, asked directly: the expectations hold on this kernel. */
                kernel = test_maps_readable_as(UID_NOBODY, UID_NOBODY, k->f.pid);
                if ((kernel == 0) != k->readable)
                        fail_msg("%s: the kernel says %s to uid 65534", k->what, kernel == 0 ? "readable" : strerror(-kernel));
        }
        /* As a daemon running as root, and as one running as the unit runs it. */
        {
                int as_root = check_ns_decisions(NULL), as_unit = as_service(check_ns_decisions, NULL);

                assert_int_equal(as_root, 0);
                assert_int_equal(as_unit, 0);
        }
        for (size_t i = 0; i < ELEMENTSOF(ns_cases); i++)
                fixture_stop(&ns_cases[i].f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kernel_decides),
                cmocka_unit_test(test_per_thread),
                cmocka_unit_test(test_privileged),
                cmocka_unit_test(test_peer_identity),
                cmocka_unit_test(test_many_groups),
                cmocka_unit_test(test_owner_of_namespace),
                cmocka_unit_test(test_nested_namespaces),
                cmocka_unit_test(test_identity_errors),
                cmocka_unit_test(test_thread_identity),
                cmocka_unit_test(test_thread_identity_service),
                cmocka_unit_test(test_impersonation_failures),
                cmocka_unit_test(test_namespace_decisions),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
