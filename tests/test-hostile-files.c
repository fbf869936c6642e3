/* Files a target's owner controls, against the real daemon: planted paths in the target's own
 * root (a symlink out of it, a FIFO) are never opened. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "fixture.h"

#define UID_T 41021
#define GID_T 41021

/* A target that maps an ELF file, then lives in a root of its own (chroot) as UID_T. */
struct rooted_target {
        pid_t pid;
        int stdin_fd;           /* closing it ends the process */
        uint64_t addr;          /* where the file is mapped */
};

static int start_rooted_target(const char *file, const char *root, struct rooted_target *ret) {
        int in[2], out[2];
        pid_t pid;

        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int fd = open(file, O_RDONLY | O_CLOEXEC);
                struct stat st;
                void *p;
                char c;

                close(in[1]);
                close(out[0]);
                if (fd < 0 || fstat(fd, &st) < 0)
                        _exit(1);
                p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
                if (p == MAP_FAILED)
                        _exit(2);
                close(fd);
                if (chroot(root) < 0 || chdir("/") < 0)
                        _exit(3);
                if (setresgid(GID_T, GID_T, GID_T) < 0 || setresuid(UID_T, UID_T, UID_T) < 0)
                        _exit(4);
                /* Its owner may read its maps (a uid change made it non-dumpable). */
                if (prctl(PR_SET_DUMPABLE, 1) < 0)
                        _exit(5);
                uint64_t a = (uint64_t) (uintptr_t) p;
                if (write(out[1], &a, sizeof(a)) != sizeof(a))
                        _exit(6);
                while (read(in[0], &c, 1) > 0)
                        ;
                _exit(0);
        }
        close(in[0]);
        close(out[1]);
        uint64_t a = 0;
        ssize_t n = read(out[0], &a, sizeof(a));
        close(out[0]);
        if (n != sizeof(a)) {
                fprintf(stderr, "target: read %zd: %m\n", n);
                close(in[1]);
                waitpid(pid, NULL, 0);
                return -EIO;
        }
        *ret = (struct rooted_target) { .pid = pid, .stdin_fd = in[1], .addr = a };
        return 0;
}

static void stop_rooted_target(struct rooted_target *t) {
        close(t->stdin_fd);
        waitpid(t->pid, NULL, 0);
}

struct lookup_case {
        const char *socket;
        pid_t pid;
        uint64_t addr;
        char reply[8192];
};

/* As the target's owner: a Lookup with build IDs of the mapped file; the reply goes back
 * through a shared page. */
static int lookup_as_owner(void *userdata) {
        struct lookup_case *c = userdata;
        char msg[256];
        int fd = test_connect(c->socket);

        if (fd < 0)
                return 1;
        snprintf(msg, sizeof(msg),
                 "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"addresses\":[\"0x%" PRIx64
                 "\"],\"build_ids\":true}}",
                 (int) c->pid, c->addr + 16);
        _cleanup_free_ char *reply = test_call(fd, msg);
        close(fd);
        if (!reply)
                return 2;
        snprintf(c->reply, sizeof(c->reply), "%s", reply);
        return 0;
}

/* Events inotify has queued (nonblocking): their count, or -errno. */
static int count_events(int ifd, uint32_t *ret_mask) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        int n = 0;

        *ret_mask = 0;
        for (;;) {
                ssize_t len = read(ifd, buf, sizeof(buf));

                if (len < 0)
                        return errno == EAGAIN ? n : -errno;
                for (char *p = buf; p < buf + len;) {
                        const struct inotify_event *ev = (const struct inotify_event *) p;

                        *ret_mask |= ev->mask;
                        n++;
                        p += sizeof(*ev) + ev->len;
                }
        }
}

static void test_planted_paths(void **state) {
        char dir[] = "/tmp/test-hostile.XXXXXX", root[64], inner[160], planted[200], file[96], decoy[96];
        char cmd[512];
        struct test_daemon d;
        struct rooted_target t = {};
        uint32_t mask;
        int ifd, status;

        (void) state;
        if (geteuid() != 0) {
                printf("[  SKIPPED ] the target chroot()s and clients switch uids: needs root\n");
                skip();
        }
        assert_non_null(mkdtemp(dir));
        assert_int_equal(chmod(dir, 0755), 0);
        snprintf(file, sizeof(file), "%s/lib.so", dir);
        snprintf(decoy, sizeof(decoy), "%s/decoy", dir);
        snprintf(root, sizeof(root), "%s/root", dir);
        /* The daemon sees the mapping under its own name for it (the file was mapped before
         * the chroot); the target's root holds that path as its owner chooses. */
        snprintf(inner, sizeof(inner), "%s%s", root, dir);
        snprintf(planted, sizeof(planted), "%s/lib.so", inner);
        snprintf(cmd, sizeof(cmd), "cp %s %s && echo secret > %s && mkdir -p %s && chmod -R a+rX %s",
                 test_program("FIXTURE_PROC", "tests/fixture-proc"), file, decoy, inner, dir);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(link(file, planted), 0);

        assert_int_equal(test_daemon_start(NULL, &d), 0);
        assert_int_equal(start_rooted_target(file, root, &t), 0);

        struct lookup_case *c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(c != MAP_FAILED);
        *c = (struct lookup_case) { .socket = d.socket, .pid = t.pid, .addr = t.addr };

        /* The control: the path in the target's root names the mapped file, and the owner (no
         * CAP_SYS_ADMIN: no map_files/) gets the ELF address through it. */
        status = run_as(UID_T, GID_T, lookup_as_owner, c);
        assert_int_equal(status, 0);
        printf("control: %.300s\n", c->reply);
        assert_non_null(strstr(c->reply, "\"elf_vaddr\""));

        ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        assert_true(ifd >= 0);
        assert_true(inotify_add_watch(ifd, decoy, IN_OPEN | IN_ACCESS) >= 0);

        /* A symlink out of the root: resolved in the root it names nothing; followed from the
         * daemon's root it was the decoy. */
        assert_int_equal(unlink(planted), 0);
        assert_int_equal(symlink(decoy, planted), 0);
        memset(c->reply, 0, sizeof(c->reply));
        assert_int_equal(run_as(UID_T, GID_T, lookup_as_owner, c), 0);
        printf("symlink: %.300s\n", c->reply);
        assert_non_null(strstr(c->reply, "\"mappings\""));
        assert_null(strstr(c->reply, "\"elf_vaddr\""));
        assert_int_equal(count_events(ifd, &mask), 0);

        /* A FIFO: never opened (its writer would see a reader). */
        assert_int_equal(unlink(planted), 0);
        assert_int_equal(mkfifo(planted, 0666), 0);
        assert_true(inotify_add_watch(ifd, planted, IN_OPEN | IN_ACCESS) >= 0);
        memset(c->reply, 0, sizeof(c->reply));
        assert_int_equal(run_as(UID_T, GID_T, lookup_as_owner, c), 0);
        printf("fifo: %.300s\n", c->reply);
        assert_non_null(strstr(c->reply, "\"mappings\""));
        assert_null(strstr(c->reply, "\"elf_vaddr\""));
        int n = count_events(ifd, &mask);
        printf("inotify events on the decoy and the FIFO: %d (mask 0x%x)\n", n, mask);
        assert_int_equal(n, 0);
        /* Nobody holds the FIFO open for reading now. */
        int w = open(planted, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        assert_true(w < 0 && errno == ENXIO);

        close(ifd);
        stop_rooted_target(&t);
        munmap(c, sizeof(*c));
        test_daemon_stop(&d);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);
}

int main(void) {
        setvbuf(stdout, NULL, _IONBF, 0);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_planted_paths),
        };

        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
