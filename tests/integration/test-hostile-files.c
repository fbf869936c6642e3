/* Files a target's owner controls, against the real daemon: planted paths in the target's own
 * root (a symlink out of it, a FIFO) are never opened. */

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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <grp.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "fixture.h"
#include "stall-fuse.h"

#define UID_T 41021
/* The daemon's uid where it runs as the packaged service does. */
#define UID_SERVICE 60101
#define GID_T 41021

/* A target that maps an ELF file, then lives in a root of its own (chroot) as UID_T. */
struct rooted_target {
        pid_t pid;
        int stdin_fd;           /* closing it ends the process */
        uint64_t addr;          /* where the file is mapped */
};

/* What a target does before it reports where it mapped its file: the address, or 0. */
struct target_spec {
        const char *file;
        const char *root;       /* chroot() here after mapping; NULL: stay */
        uid_t uid;
        gid_t gid;
        size_t size;            /* bytes to map; 0: the file's size */
        const char *deleted;    /* another file to map (as the owner) and unlink; NULL: none */
};

static int become_owner(const struct target_spec *spec) {
        if (setgroups(0, NULL) < 0 || setresgid(spec->gid, spec->gid, spec->gid) < 0 ||
            setresuid(spec->uid, spec->uid, spec->uid) < 0)
                return -errno;
        /* Its owner may read its maps (a uid change made it non-dumpable). */
        return prctl(PR_SET_DUMPABLE, 1) < 0 ? -errno : 0;
}

static uint64_t target_setup(const struct target_spec *spec) {
        size_t size = spec->size;
        struct stat st;
        void *p;
        int fd;

        /* A FUSE mount serves its owner only: open as the owner, unless a chroot comes first. */
        if (!spec->root && become_owner(spec) < 0)
                return 0;
        fd = open(spec->file, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || (size == 0 && fstat(fd, &st) < 0))
                return 0;
        if (size == 0)
                size = (size_t) st.st_size;
        /* Mapped, never touched: no page of it is read. */
        p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (p == MAP_FAILED)
                return 0;
        if (spec->deleted) {
                fd = open(spec->deleted, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED || unlink(spec->deleted) < 0)
                        return 0;
                close(fd);
        }
        if (spec->root && (chroot(spec->root) < 0 || chdir("/") < 0 || become_owner(spec) < 0))
                return 0;
        return (uint64_t) (uintptr_t) p;
}

/* A process set up by spec that lives until its stdin closes. */
static int start_target(const struct target_spec *spec, struct rooted_target *ret) {
        int in[2], out[2];
        uint64_t a = 0;
        ssize_t n;
        pid_t pid;

        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                char c;

                close(in[1]);
                close(out[0]);
                a = target_setup(spec);
                if (write(out[1], &a, sizeof(a)) != sizeof(a))
                        _exit(1);
                while (read(in[0], &c, 1) > 0)
                        ;
                _exit(0);
        }
        close(in[0]);
        close(out[1]);
        n = read(out[0], &a, sizeof(a));
        close(out[0]);
        *ret = (struct rooted_target) { .pid = pid, .stdin_fd = in[1], .addr = a };
        if (n != sizeof(a) || a == 0) {
                close(in[1]);
                waitpid(pid, NULL, 0);
                return -EIO;
        }
        return 0;
}

static int start_rooted_target(const char *file, const char *root, struct rooted_target *ret) {
        return start_target(&(struct target_spec) { .file = file, .root = root, .uid = UID_T, .gid = GID_T }, ret);
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

/* The owner's lookup of c (and root's, on a daemon running as service_uid) answers, with the ELF
 * address or without it. */
static void expect_lookups(struct lookup_case *c, const char *what, bool with_vaddr, uid_t service_uid) {
        for (int as_root = 0; as_root <= (service_uid != 0); as_root++) {
                memset(c->reply, 0, sizeof(c->reply));
                if (as_root)
                        assert_int_equal(lookup_as_owner(c), 0);
                else
                        assert_int_equal(run_as(UID_T, GID_T, lookup_as_owner, c), 0);
                printf("%s%s: %.300s\n", what, as_root ? ", root" : "", c->reply);
                assert_non_null(strstr(c->reply, "\"mappings\""));
                if (with_vaddr)
                        assert_non_null(strstr(c->reply, "\"elf_vaddr\""));
                else
                        assert_null(strstr(c->reply, "\"elf_vaddr\""));
        }
}

/* without_openat2: the daemon meets ENOSYS for openat2. service_uid: the daemon runs as that
 * uid with the unit's capabilities (no CAP_SYS_ADMIN, so no map_files/: root's lookups go
 * through the path in the target's root, where the planted names are); root's lookups are
 * then checked as the owner's are. */
static void check_planted_paths(bool without_openat2, uid_t service_uid) {
        static const char *const no_tracking[] = { "--tracking=none", NULL };
        char dir[] = "/tmp/test-hostile.XXXXXX", root[64], inner[160], planted[200], file[96], decoy[96];
        char cmd[512];
        struct test_daemon d;
        struct rooted_target t = {};
        uint32_t mask;
        int ifd;

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

        test_daemon_without_openat2 = without_openat2;
        /* Each lookup must open the file anew through the planted path: with change tracking, the
         * control's facts (read from the mapped file itself, same device and inode) would be
         * served from the kept layout, and the planted names never looked at. */
        if (service_uid != 0)
                assert_int_equal(test_daemon_start_as(service_uid, service_uid, no_tracking, &d), 0);
        else
                assert_int_equal(test_daemon_start(no_tracking, &d), 0);
        test_daemon_without_openat2 = false;
        assert_int_equal(start_rooted_target(file, root, &t), 0);

        struct lookup_case *c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(c != MAP_FAILED);
        *c = (struct lookup_case) { .socket = d.socket, .pid = t.pid, .addr = t.addr };

        /* The control: the path in the target's root names the mapped file, and the owner (no
         * CAP_SYS_ADMIN: no map_files/) gets the ELF address through it. */
        expect_lookups(c, "control", true, service_uid);

        ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        assert_true(ifd >= 0);
        assert_true(inotify_add_watch(ifd, decoy, IN_OPEN | IN_ACCESS) >= 0);

        /* A symlink out of the root: resolved in the root it names nothing; followed from the
         * daemon's root it was the decoy. */
        assert_int_equal(unlink(planted), 0);
        assert_int_equal(symlink(decoy, planted), 0);
        expect_lookups(c, "symlink", false, service_uid);
        assert_int_equal(count_events(ifd, &mask), 0);

        /* A FIFO: never opened (its writer would see a reader). */
        assert_int_equal(unlink(planted), 0);
        assert_int_equal(mkfifo(planted, 0666), 0);
        assert_true(inotify_add_watch(ifd, planted, IN_OPEN | IN_ACCESS) >= 0);
        expect_lookups(c, "fifo", false, service_uid);
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

/* Blocking reads: a user's stalled FUSE mount must not stop the daemon for others. */
#define UID_ATTACK 41022
#define GID_ATTACK 41022
#define UID_PROBE 41023
#define GID_PROBE 41023
#define ATTACK_CALLS 4
/* Long enough that the probe, however loaded the machine, is answered while the attacker's
 * calls still wait: the assertion is an ordering, not a time bound. */
#define READ_TIMEOUT_MSEC 8000

struct stall_case {
        const char *socket;
        pid_t attack_pid, probe_pid;
        uint64_t attack_addr;
        struct stall_fuse_counts *fuse;
        volatile uint32_t attack_sent, attack_answered;
        /* What the probe saw when its answers came. */
        uint32_t answered_then, reads_pending_then;
        uint64_t probe_usec;
        char probe_status[256], probe_lookup[4096];
        char attack_reply[ATTACK_CALLS][256], late_reply[256];
        int attack_has_stalled_build_id, late_has_stalled_build_id, attack_errors;
};

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* Whether a ListMappings reply gives the mapping at addr a build ID. */
static int reply_has_build_id_at(const char *reply, uint64_t addr) {
        char key[64];
        const char *m, *end;

        snprintf(key, sizeof(key), "\"start\":\"0x%" PRIx64 "\"", addr);
        m = strstr(reply, key);
        if (!m)
                return -1;
        end = strchr(m, '}');
        m = strstr(m, "\"build_id\"");
        return m && end && m < end;
}

/* A guard against a hang, not a time bound: a daemon that stopped answering fails the test
 * instead of hanging it. */
static int connect_guarded(const char *socket) {
        struct timeval tv = { .tv_sec = 60 };
        int fd = test_connect(socket);

        if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
                close(fd);
                return -errno;
        }
        return fd;
}

static int attacker(void *userdata) {
        struct stall_case *c = userdata;
        int fds[ATTACK_CALLS];
        char msg[256], lookup[256];

        /* Listings stall on the deleted file's name (or on f's read), lookups of f on its read. */
        snprintf(msg, sizeof(msg), "{\"method\":\"io.memmapd.ListMappings\",\"parameters\":{\"pid\":%d,\"build_ids\":true}}",
                 (int) c->attack_pid);
        snprintf(lookup, sizeof(lookup),
                 "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"addresses\":[\"0x%" PRIx64
                 "\"],\"build_ids\":true}}",
                 (int) c->attack_pid, c->attack_addr);
        for (int i = 0; i < ATTACK_CALLS; i++) {
                fds[i] = connect_guarded(c->socket);
                if (fds[i] < 0 || test_send(fds[i], i % 2 ? msg : lookup) < 0)
                        return 1;
        }
        c->attack_sent = 1;
        for (int i = 0; i < ATTACK_CALLS; i++) {
                _cleanup_free_ char *reply = test_recv(fds[i]);

                if (!reply)
                        return 2;
                __atomic_add_fetch(&c->attack_answered, 1, __ATOMIC_SEQ_CST);
                snprintf(c->attack_reply[i], sizeof(c->attack_reply[i]), "%s", reply);
                if (!strstr(reply, "\"mappings\""))
                        c->attack_errors++;
                if (reply_has_build_id_at(reply, c->attack_addr) != 0)
                        c->attack_has_stalled_build_id++;
                close(fds[i]);
        }
        /* Its readers are stuck and its quota used: answered at once, without. */
        int fd = connect_guarded(c->socket);
        if (fd < 0)
                return 3;
        _cleanup_free_ char *reply = test_call(fd, msg);
        close(fd);
        if (!reply)
                return 4;
        snprintf(c->late_reply, sizeof(c->late_reply), "%s", reply);
        c->late_has_stalled_build_id = reply_has_build_id_at(reply, c->attack_addr);
        return 0;
}

static int probe(void *userdata) {
        struct stall_case *c = userdata;
        char msg[256];
        uint64_t t0 = now_usec();
        int fd = connect_guarded(c->socket);

        if (fd < 0)
                return 1;
        _cleanup_free_ char *status = test_call(fd, "{\"method\":\"io.memmapd.GetStatus\",\"parameters\":{}}");
        snprintf(msg, sizeof(msg),
                 "{\"method\":\"io.memmapd.Lookup\",\"parameters\":{\"pid\":%d,\"addresses\":[\"0x%" PRIx64
                 "\"],\"build_ids\":true}}",
                 (int) c->probe_pid, (uint64_t) (uintptr_t) &probe);
        _cleanup_free_ char *lookup = test_call(fd, msg);
        c->probe_usec = now_usec() - t0;
        c->answered_then = __atomic_load_n(&c->attack_answered, __ATOMIC_SEQ_CST);
        c->reads_pending_then = c->fuse->reads_pending + c->fuse->lookups_pending;
        close(fd);
        if (!status || !lookup)
                return 2;
        snprintf(c->probe_status, sizeof(c->probe_status), "%s", status);
        snprintf(c->probe_lookup, sizeof(c->probe_lookup), "%s", lookup);
        return 0;
}

/* A process of uid that maps file (never touching it: no page is read) and waits. */
static int start_mapper(const char *file, const char *deleted, uid_t uid, gid_t gid, struct rooted_target *ret) {
        return start_target(&(struct target_spec) { .file = file, .uid = uid, .gid = gid, .size = STALL_FUSE_FILE_SIZE,
                                                    .deleted = deleted },
                            ret);
}

static uint32_t stalled(const struct stall_fuse *f) {
        return f->counts->reads_pending + f->counts->lookups_pending;
}

static void test_planted_paths(void **state) {
        check_planted_paths(false, 0);
}

/* As the packaged service runs: its user, its capabilities; root's lookups too. */
static void test_planted_paths_service_user(void **state) {
        check_planted_paths(false, UID_SERVICE);
}

/* Where openat2 is missing, the path is walked without following any symlink: the control
 * still reads the file, the planted symlink and FIFO are still never opened. */
static void test_planted_paths_without_openat2(void **state) {
        check_planted_paths(true, UID_SERVICE);
}

static void test_stalled_fuse(void **state) {
        static const char *const args[] = { "--set=FileReadTimeoutMSec=8000", NULL };
        struct stall_fuse fuse;
        struct rooted_target target = {}, own = {};
        struct test_daemon d;
        const char *why;
        int r, status;
        pid_t pid;

        (void) state;
        if (geteuid() != 0) {
                printf("[  SKIPPED ] mounting FUSE and switching uids need root\n");
                skip();
        }
        r = stall_fuse_start(UID_ATTACK, GID_ATTACK, &fuse, &why);
        if (r == -EOPNOTSUPP) {
                printf("[  SKIPPED ] %s\n", why);
                skip();
        }
        assert_int_equal(r, 0);
        /* The attacker's process maps f, whose reads stall, and g, unlinked, whose name's
         * lookup (to tell a deleted file from one really named "g (deleted)") stalls. */
        assert_int_equal(start_mapper(fuse.file, fuse.file2, UID_ATTACK, GID_ATTACK, &target), 0);
        assert_int_equal(start_mapper("/proc/self/exe", NULL, UID_PROBE, GID_PROBE, &own), 0);
        assert_int_equal(fuse.counts->reads_pending + fuse.counts->lookups_pending, 0);
        assert_int_equal(test_daemon_start(args, &d), 0);

        struct stall_case *c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(c != MAP_FAILED);
        *c = (struct stall_case) {
                .socket = d.socket, .attack_pid = target.pid, .probe_pid = own.pid, .attack_addr = target.addr,
                .fuse = fuse.counts,
        };

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(run_as(UID_ATTACK, GID_ATTACK, attacker, c));
        /* The attack is in force once the daemon reads the stalled file (a poll guarded
         * against a hang). */
        for (unsigned i = 0; i < 60000 && !(c->attack_sent && stalled(&fuse) > 0); i++)
                usleep(1000);
        assert_true(c->attack_sent);
        assert_true(stalled(&fuse) > 0);

        assert_int_equal(run_as(UID_PROBE, GID_PROBE, probe, c), 0);
        printf("probe (GetStatus + Lookup with build IDs) answered in %" PRIu64 " us with %u of %d attack calls answered and %u stalled requests\n",
               c->probe_usec, c->answered_then, ATTACK_CALLS, c->reads_pending_then);
        printf("stalled READs %u, stalled LOOKUPs of the deleted file's name %u\n", fuse.counts->reads_pending,
               fuse.counts->lookups_pending);
        /* Answered while the attack was still in force: some attack calls still waited. */
        assert_true(c->answered_then < ATTACK_CALLS);
        assert_true(c->reads_pending_then > 0);
        assert_non_null(strstr(c->probe_status, "\"version\""));
        assert_non_null(strstr(c->probe_lookup, "\"build_id\""));

        /* The attack's calls answer once the time bound passes, without the stalled file's
         * build ID; later ones at once. */
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(c->attack_errors, 0);
        assert_int_equal(c->attack_has_stalled_build_id, 0);
        assert_int_equal(c->late_has_stalled_build_id, 0);

        /* own was forked after target and holds its stdin: first. */
        stop_rooted_target(&own);
        stop_rooted_target(&target);
        stall_fuse_stop(&fuse);
        assert_int_equal(test_daemon_stop(&d), 0);
        munmap(c, sizeof(*c));
}

int main(void) {
        setvbuf(stdout, NULL, _IONBF, 0);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_planted_paths),
                cmocka_unit_test(test_planted_paths_service_user),
                cmocka_unit_test(test_planted_paths_without_openat2),
                cmocka_unit_test(test_stalled_fuse),
        };

        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
