/* Tests of OpenMappingFile (issue 12 item 5): the mapped file passed as an fd, as the target sees it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cleanup.h"
#include "fixture.h"
#include "libmemctl.h"

#define UID_A 41001
#define GID_A 41001

#define HOST_TEXT "the host's file, which the target does not see\n"
#define NS_TEXT "the file of the target's own mount namespace, longer than the host's one\n"
#define DELETED_TEXT "a file the target unlinked after mapping it\n"
#define MEMFD_TEXT "the contents of a memfd\n"

static struct test_daemon daemon_default;

/* A target made here: mappings of a file in its own mount namespace (a tmpfs over a host
 * directory, the file under the same path as a host file with other contents), of a deleted
 * file, of a memfd, and anonymous memory. It lives until its control pipe closes. */
struct target {
        pid_t pid;
        int control_fd;
        char dir[64];
        char ns_path[128];
        bool has_ns;
        uint64_t ns, deleted, memfd, anon;
};

static void *map_text(int fd, const char *text) {
        size_t len = strlen(text);

        if (write(fd, text, len) != (ssize_t) len)
                return MAP_FAILED;
        return mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
}

static void target_child(struct target *t, int report_fd, int control_fd) {
        char path[192];
        void *p;
        int fd;

        /* The namespace's file first: the others are mapped in the new namespace too. */
        if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
            mount("tmpfs", t->dir, "tmpfs", 0, "size=1m") == 0) {
                fd = open(t->ns_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
                p = fd >= 0 ? map_text(fd, NS_TEXT) : MAP_FAILED;
                dprintf(report_fd, "ns=%p\n", p == MAP_FAILED ? NULL : p);
        } else
                dprintf(report_fd, "ns_error=%d\n", errno);

        snprintf(path, sizeof(path), "/tmp/memmapd-fdpass-deleted-%d", (int) getpid());
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        p = fd >= 0 ? map_text(fd, DELETED_TEXT) : MAP_FAILED;
        unlink(path);
        dprintf(report_fd, "deleted=%p\n", p == MAP_FAILED ? NULL : p);

        fd = memfd_create("fdpass-test", MFD_CLOEXEC);
        p = fd >= 0 ? map_text(fd, MEMFD_TEXT) : MAP_FAILED;
        dprintf(report_fd, "memfd=%p\n", p == MAP_FAILED ? NULL : p);

        p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        *(volatile char *) p = 1;
        dprintf(report_fd, "anon=%p\nready\n", p);
        close(report_fd);

        for (;;) {
                char c;

                if (read(control_fd, &c, 1) < 0 && errno == EINTR)
                        continue;
                _exit(0);
        }
}

static uint64_t value_of(const char *text, const char *key) {
        _cleanup_free_ char *k = NULL;
        const char *at;

        assert_true(asprintf(&k, "\n%s=", key) > 0);
        at = strstr(text, k);
        return at ? strtoull(at + strlen(k), NULL, 0) : 0;
}

static void target_start(struct target *t) {
        char text[1024] = "\n";
        size_t len = 1;
        int report[2], control[2], fd;
        char host[192];

        *t = (struct target) {};
        snprintf(t->dir, sizeof(t->dir), "/tmp/memmapd-fdpass-XXXXXX");
        assert_non_null(mkdtemp(t->dir));
        snprintf(t->ns_path, sizeof(t->ns_path), "%s/lib.bin", t->dir);
        snprintf(host, sizeof(host), "%s", t->ns_path);
        assert_true((fd = open(host, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) >= 0);
        assert_int_equal(write(fd, HOST_TEXT, strlen(HOST_TEXT)), (ssize_t) strlen(HOST_TEXT));
        close(fd);

        assert_int_equal(pipe2(report, O_CLOEXEC), 0);
        assert_int_equal(pipe2(control, O_CLOEXEC), 0);
        t->pid = fork();
        assert_true(t->pid >= 0);
        if (t->pid == 0) {
                close(report[0]);
                close(control[1]);
                target_child(t, report[1], control[0]);
        }
        close(report[1]);
        close(control[0]);
        t->control_fd = control[1];
        /* Until the child closes its end: no time bound, the test harness's covers a hang. */
        for (;;) {
                ssize_t n = read(report[0], text + len, sizeof(text) - 1 - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t) n;
        }
        text[len] = 0;
        close(report[0]);
        assert_non_null(strstr(text, "\nready\n"));
        t->ns = value_of(text, "ns");
        t->has_ns = t->ns != 0;
        if (!t->has_ns)
                print_message("[  SKIPPED ] namespace part: unshare/mount failed (errno %d)\n",
                              (int) value_of(text, "ns_error"));
        t->deleted = value_of(text, "deleted");
        t->memfd = value_of(text, "memfd");
        t->anon = value_of(text, "anon");
        assert_true(t->deleted && t->memfd && t->anon);
}

static void target_stop(struct target *t) {
        char host[192];

        close(t->control_fd);
        assert_int_equal(waitpid(t->pid, NULL, 0), t->pid);
        snprintf(host, sizeof(host), "%s", t->ns_path);
        unlink(host);
        rmdir(t->dir);
}

/* The bytes of fd from its start, NUL-terminated (at most size - 1). */
static char *read_all(int fd, char *buf, size_t size) {
        size_t len = 0;

        for (;;) {
                ssize_t n = pread(fd, buf + len, size - 1 - len, (off_t) len);

                assert_true(n >= 0);
                if (n == 0 || len + (size_t) n == size - 1) {
                        len += (size_t) n;
                        break;
                }
                len += (size_t) n;
        }
        buf[len] = 0;
        return buf;
}

/* What the kernel itself says the mapping at address is: its map_files/ link, stat()ed. */
static void map_files_stat(pid_t pid, uint64_t address, struct stat *ret) {
        _cleanup_fclose_ FILE *f = NULL;
        char path[128], line[512];
        bool found = false;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        assert_non_null(f = fopen(path, "re"));
        while (fgets(line, sizeof(line), f)) {
                unsigned long long start, end;

                if (sscanf(line, "%llx-%llx", &start, &end) == 2 && address >= start && address < end) {
                        snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int) pid, start, end);
                        found = true;
                        break;
                }
        }
        assert_true(found);
        assert_int_equal(stat(path, ret), 0);
}

/* The fd the daemon passed is the mapping's file: its bytes, its device and inode. */
static void check_fd(memctl *c, pid_t pid, uint64_t address, const char *text) {
        _cleanup_close_ int fd = -1;
        memctl_mappings *m = NULL;
        struct memctl_mapping mm = MEMCTL_MAPPING_INIT;
        struct stat st, want;
        char buf[256];
        int flags;

        assert_int_equal(memctl_open_mapping_file(c, pid, 0, address, &fd, &m), 0);
        assert_true(fd >= 0);
        assert_string_equal(read_all(fd, buf, sizeof(buf)), text);
        assert_int_equal(fstat(fd, &st), 0);
        map_files_stat(pid, address, &want);
        assert_int_equal(st.st_dev, want.st_dev);
        assert_int_equal(st.st_ino, want.st_ino);
        flags = fcntl(fd, F_GETFL);
        assert_int_equal(flags & O_ACCMODE, O_RDONLY);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        assert_int_equal(memctl_mappings_count(m), 1);
        assert_int_equal(memctl_mappings_get(m, 0, &mm), 0);
        assert_true(mm.start <= address && address < mm.end);
        assert_int_equal(mm.inode, (uint64_t) want.st_ino);
        memctl_mappings_free(m);
}

static int setup(void **state) {
        (void) state;
        return test_daemon_start(NULL, &daemon_default) < 0 ? -1 : 0;
}

static int teardown(void **state) {
        (void) state;
        return test_daemon_stop(&daemon_default) == 0 ? 0 : -1;
}

/* The fd is the file the target sees: in its own mount namespace (not the host's file of the
 * same path), deleted, a memfd; anonymous memory and unmapped addresses are refused. */
static void test_files_as_the_process_sees_them(void **state) {
        struct target t;
        memctl *c = NULL;
        int fd = -1;

        (void) state;
        target_start(&t);
        assert_int_equal(memctl_connect(daemon_default.socket, &c), 0);
        if (t.has_ns) {
                char host[256];
                _cleanup_close_ int hfd = open(t.ns_path, O_RDONLY | O_CLOEXEC);

                /* The host's file of that path is another one: what a path-based client opens. */
                assert_true(hfd >= 0);
                assert_string_equal(read_all(hfd, host, sizeof(host)), HOST_TEXT);
                check_fd(c, t.pid, t.ns, NS_TEXT);
        }
        check_fd(c, t.pid, t.deleted, DELETED_TEXT);
        check_fd(c, t.pid, t.memfd, MEMFD_TEXT);

        assert_int_equal(memctl_open_mapping_file(c, t.pid, 0, t.anon, &fd, NULL), -EMEDIUMTYPE);
        assert_int_equal(fd, -1);
        assert_string_equal(memctl_last_error_name(c), "io.memmapd.NoFile");
        {
                const char *kind;

                assert_int_equal(memctl_last_error_string(c, "kind", &kind), 0);
                assert_string_equal(kind, "anonymous");
        }
        assert_int_equal(memctl_open_mapping_file(c, t.pid, 0, 0x1000, &fd, NULL), -ENXIO);
        assert_string_equal(memctl_last_error_name(c), "io.memmapd.NotMapped");
        assert_int_equal(fd, -1);
        memctl_free(c);

        /* memctl cat writes the namespace's file. */
        if (t.has_ns) {
                _cleanup_free_ char *cmd = NULL, *out = NULL;

                assert_true(asprintf(&cmd, "%s --socket '%s' cat %d 0x%" PRIx64,
                                     test_program("MEMCTL", "client/memctl"), daemon_default.socket, (int) t.pid,
                                     t.ns) > 0);
                out = test_run_capture(cmd);
                assert_non_null(out);
                assert_string_equal(out, NS_TEXT);
        }
        target_stop(&t);
}

struct unprivileged {
        pid_t own, root_owned;
        uint64_t own_file, root_file;
        const char *own_path;
};

static int as_uid_a(void *userdata) {
        const struct unprivileged *u = userdata;
        memctl *c = NULL;
        char want[256], got[256];
        int fd = -1, wfd;

        if (memctl_connect(daemon_default.socket, &c) < 0)
                return 10;
        /* Another user's process: refused, as its maps are. */
        if (memctl_open_mapping_file(c, u->root_owned, 0, u->root_file, &fd, NULL) != -EACCES || fd != -1)
                return 11;
        if (strcmp(memctl_last_error_name(c) ?: "", "io.memmapd.PermissionDenied") != 0)
                return 12;
        /* Its own process's file, opened with its own access (map_files/ is not for it: the
         * path inside the process's root). */
        if (memctl_open_mapping_file(c, u->own, 0, u->own_file, &fd, NULL) != 0)
                return 13;
        wfd = open(u->own_path, O_RDONLY | O_CLOEXEC);
        if (wfd < 0)
                return 14;
        if (strcmp(read_all(fd, got, sizeof(got)), read_all(wfd, want, sizeof(want))) != 0)
                return 15;
        close(wfd);
        close(fd);
        memctl_free(c);
        return 0;
}

static void test_unprivileged_client(void **state) {
        struct fixture mine;
        struct target t;
        char path[192];

        (void) state;
        target_start(&t);
        assert_int_equal(fixture_start_as(0, 1, UID_A, GID_A, 0, &mine), 0);
        snprintf(path, sizeof(path), "%s/with space.bin", mine.dir);
        {
                struct unprivileged u = {
                        .own = mine.pid, .own_file = fixture_get(&mine, "space"), .own_path = path,
                        .root_owned = t.pid, .root_file = t.deleted,
                };

                assert_true(u.own_file != 0);
                assert_int_equal(run_as(UID_A, GID_A, as_uid_a, &u), 0);
        }
        fixture_stop(&mine);
        target_stop(&t);
}

static unsigned count_fds(pid_t pid) {
        char path[64];
        unsigned n = 0;
        DIR *d;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
        d = opendir(path);
        assert_non_null(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

/* A raw call on a new connection, left without reading its reply. */
static void call_and_leave(const char *socket, const char *msg) {
        int fd = test_connect(socket);

        assert_true(fd >= 0);
        assert_int_equal(test_send(fd, msg), 0);
        close(fd);
}

/* One byte of a reply, by recvmsg(): the fds that came with it go to fds (at most max; the
 * count is returned). */
static size_t recv_byte(int fd, char *ret, int *fds, size_t max) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 4)];
        } control;
        struct iovec iov = { .iov_base = ret, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        size_t n = 0;

        assert_int_equal(recvmsg(fd, &mh, MSG_CMSG_CLOEXEC), 1);
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                assert_int_equal(cm->cmsg_type, SCM_RIGHTS);
                for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                        assert_true(n < max);
                        memcpy(&fds[n++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                }
        }
        return n;
}

/* The one fd comes with the reply's first byte, and only with a successful reply. */
static void test_raw_reply_carries_one_fd(void **state) {
        struct target t;

        (void) state;
        target_start(&t);
        {
                _cleanup_close_ int fd = test_connect(daemon_default.socket);
                _cleanup_free_ char *msg = NULL;
                char buf[4096];
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(int) * 4)];
                } control;
                struct iovec iov = { .iov_base = buf, .iov_len = 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                                     .msg_controllen = sizeof(control.buf) };
                int passed = -1;
                ssize_t n;

                assert_true(fd >= 0);
                assert_true(asprintf(&msg, "{\"method\":\"io.memmapd.OpenMappingFile\",\"parameters\":{\"pid\":%d,"
                                           "\"address\":\"0x%" PRIx64 "\"}}", (int) t.pid, t.memfd) > 0);
                assert_int_equal(test_send(fd, msg), 0);
                /* Its first byte alone: the fd arrives with it, and no other. */
                assert_int_equal(recv_byte(fd, buf, &passed, 1), 1);
                assert_int_equal(buf[0], '{');
                {
                        char text[256];

                        assert_string_equal(read_all(passed, text, sizeof(text)), MEMFD_TEXT);
                }
                close(passed);

                /* An error reply carries none. */
                free(msg);
                assert_true(asprintf(&msg, "{\"method\":\"io.memmapd.OpenMappingFile\",\"parameters\":{\"pid\":%d,"
                                           "\"address\":\"0x%" PRIx64 "\"}}", (int) t.pid, t.anon) > 0);
                /* The rest of the first reply, then the second whole. */
                {
                        _cleanup_free_ char *rest = test_recv(fd);

                        assert_non_null(rest);
                        assert_non_null(strstr(rest, "\"fd_index\":0"));
                }
                assert_int_equal(test_send(fd, msg), 0);
                iov.iov_len = sizeof(buf);
                mh.msg_controllen = sizeof(control.buf);
                n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
                assert_true(n > 0);
                assert_null(CMSG_FIRSTHDR(&mh));
                assert_non_null(memmem(buf, (size_t) n, "io.memmapd.NoFile", strlen("io.memmapd.NoFile")));
        }
        target_stop(&t);
}

/* No fd stays behind in the daemon: 200 calls, successes, refusals, oneway calls (which get
 * no fd) and clients that hang up before reading; its fd count comes back to where it was. */
static void test_no_fd_leak(void **state) {
        struct target t;
        memctl *c = NULL;
        unsigned before, after = 0;
        _cleanup_free_ char *ok = NULL, *oneway = NULL, *anon = NULL;

        (void) state;
        target_start(&t);
        /* One call first, so that whatever the daemon opens once (caches, pools) is open; the
         * connection stays, so it is counted before and after alike. */
        assert_int_equal(memctl_connect(daemon_default.socket, &c), 0);
        {
                int fd = -1;

                assert_int_equal(memctl_open_mapping_file(c, t.pid, 0, t.memfd, &fd, NULL), 0);
                close(fd);
        }
        /* What the previous calls left closing (a job's fds, a connection) goes away on its
         * own: the least of a few counts is the baseline. */
        before = count_fds(daemon_default.pid);
        for (unsigned i = 0; i < 10; i++) {
                struct timespec ts = { 0, 20 * 1000 * 1000 };

                nanosleep(&ts, NULL);
                before = MIN(before, count_fds(daemon_default.pid));
        }

        assert_true(asprintf(&ok, "{\"method\":\"io.memmapd.OpenMappingFile\",\"parameters\":{\"pid\":%d,"
                                  "\"address\":\"0x%" PRIx64 "\"}}", (int) t.pid, t.deleted) > 0);
        assert_true(asprintf(&oneway, "{\"method\":\"io.memmapd.OpenMappingFile\",\"oneway\":true,\"parameters\":"
                                      "{\"pid\":%d,\"address\":\"0x%" PRIx64 "\"}}", (int) t.pid, t.memfd) > 0);
        assert_true(asprintf(&anon, "{\"method\":\"io.memmapd.OpenMappingFile\",\"parameters\":{\"pid\":%d,"
                                    "\"address\":\"0x%" PRIx64 "\"}}", (int) t.pid, t.anon) > 0);
        for (unsigned i = 0; i < 200; i++) {
                int fd = -1;

                switch (i % 5) {
                case 0:
                        assert_int_equal(memctl_open_mapping_file(c, t.pid, 0, t.deleted, &fd, NULL), 0);
                        close(fd);
                        break;
                case 1:
                        assert_int_equal(memctl_open_mapping_file(c, t.pid, 0, t.anon, &fd, NULL), -EMEDIUMTYPE);
                        assert_int_equal(memctl_open_mapping_file(c, t.pid, 0, 0x1000, &fd, NULL), -ENXIO);
                        break;
                case 2:
                        call_and_leave(daemon_default.socket, ok);
                        break;
                case 3:
                        call_and_leave(daemon_default.socket, oneway);
                        break;
                default:
                        call_and_leave(daemon_default.socket, anon);
                        break;
                }
        }

        /* Connections whose client left are closed as the daemon gets to them: poll, with a
         * guard that only catches a leak (or a hang). */
        for (time_t deadline = time(NULL) + 60; time(NULL) < deadline;) {
                after = count_fds(daemon_default.pid);
                if (after <= before)
                        break;
                struct timespec ts = { 0, 50 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        print_message("daemon fds: %u before, %u after 200 calls\n", before, after);
        assert_true(after <= before);
        memctl_free(c);
        target_stop(&t);
}

/* The daemon's count of calls begun (GetStatus), on a connection of its own. */
static uint64_t daemon_requests(void) {
        _cleanup_close_ int fd = test_connect(daemon_default.socket);
        _cleanup_free_ char *reply = NULL;
        const char *at;

        assert_true(fd >= 0);
        reply = test_call(fd, "{\"method\":\"io.memmapd.GetStatus\"}");
        assert_non_null(reply);
        at = strstr(reply, "\"requests\":");
        assert_non_null(at);
        return strtoull(at + strlen("\"requests\":"), NULL, 10);
}

/* A client that pipelines calls without reading gets at most 16 fds in flight; the rest of
 * its calls are LimitExceeded "fds_in_flight". Once it has read everything, it gets fds again. */
static void test_fds_in_flight_bounded(void **state) {
        _cleanup_free_ char *msg = NULL, *batch = NULL;
        struct target t;
        unsigned fds = 0, limited = 0, replies = 0;
        uint64_t base;
        size_t len, n = 40;
        int fd;

        (void) state;
        target_start(&t);
        assert_true(asprintf(&msg, "{\"method\":\"io.memmapd.OpenMappingFile\",\"parameters\":{\"pid\":%d,"
                                   "\"address\":\"0x%" PRIx64 "\"}}", (int) t.pid, t.memfd) > 0);
        len = strlen(msg) + 1;
        assert_non_null(batch = malloc((n + 1) * len));
        for (size_t i = 0; i <= n; i++)
                memcpy(batch + i * len, msg, len);
        fd = test_connect(daemon_default.socket);
        assert_true(fd >= 0);
        /* All calls at once, and one more; nothing read until the daemon has begun the last,
         * so it decided on the first n while none of their replies was read (read, they
         * would rightly make room again). */
        base = daemon_requests();
        assert_int_equal(send(fd, batch, (n + 1) * len, MSG_NOSIGNAL), (ssize_t) ((n + 1) * len));
        /* Each poll is a call too: the i-th adds i to the count. */
        for (uint64_t i = 1, deadline = (uint64_t) time(NULL) + 60;
             daemon_requests() - i < base + n + 1 && (uint64_t) time(NULL) < deadline; i++) {
                struct timespec ts = { 0, 10 * 1000 * 1000 };

                nanosleep(&ts, NULL);
        }
        while (replies < n + 1) {
                char buf[512];
                int passed[4];
                size_t got = recv_byte(fd, buf, passed, 4);

                for (size_t i = 0; i < got; i++)
                        close(passed[i]);
                fds += replies < n ? (unsigned) got : 0;
                if (buf[0] == 0) {
                        replies++;
                        continue;
                }
                /* Byte by byte to the NUL: each reply's text, for its error. */
                {
                        size_t l = 1;

                        while (l < sizeof(buf) - 1 && read(fd, buf + l, 1) == 1 && buf[l] != 0)
                                l++;
                        buf[l] = 0;
                        if (strstr(buf, "\"fds_in_flight\""))
                                limited += replies < n;
                        else
                                assert_non_null(strstr(buf, "\"fd_index\":0"));
                        replies++;
                }
        }
        print_message("40 pipelined calls: %u fds, %u LimitExceeded\n", fds, limited);
        assert_true(fds <= 16);
        assert_int_equal(fds + limited, n);
        /* Everything read: the next call gets its fd. */
        assert_int_equal(test_send(fd, msg), 0);
        {
                char b;
                int passed;

                assert_int_equal(recv_byte(fd, &b, &passed, 1), 1);
                close(passed);
        }
        close(fd);
        target_stop(&t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_files_as_the_process_sees_them),
                cmocka_unit_test(test_raw_reply_carries_one_fd),
                cmocka_unit_test(test_unprivileged_client),
                cmocka_unit_test(test_no_fd_leak),
                cmocka_unit_test(test_fds_in_flight_bounded),
        };

        if (geteuid() != 0) {
                print_message("[  SKIPPED ] test-fdpass: needs root (mount namespaces, other users)\n");
                return 77;
        }
        return cmocka_run_group_tests(tests, setup, teardown);
}
