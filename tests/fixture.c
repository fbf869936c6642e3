#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fixture.h"
#include "number.h"

static const char *const fixture_files[] = { "gone.bin", "with space.bin", "new\nline.bin", "x (deleted)",
                                             "back\\012slash.bin", "not-utf8-\xff\xe2\x82.bin", "gone-\xfe.bin" };

const char *test_program(const char *env, const char *fallback) {
        const char *p = getenv(env);

        return p && *p ? p : fallback;
}

static void become(uid_t uid, gid_t gid) {
        if (gid != (gid_t) -1 && (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0))
                _exit(126);
        if (uid != (uid_t) -1 && setresuid(uid, uid, uid) < 0)
                _exit(126);
}

#ifdef MEMMAPD_COVERAGE
void __gcov_dump(void);
#endif

void test_child_exit(int status) {
#ifdef MEMMAPD_COVERAGE
        __gcov_dump();
#endif
        _exit(status);
}

pid_t test_fork_piped(void (*child_main)(int in, int out), int *ret_to, int *ret_from) {
        int in[2], out[2];
        pid_t pid;

        if (pipe2(in, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(out, O_CLOEXEC) < 0) {
                int r = -errno;

                close(in[0]);
                close(in[1]);
                return r;
        }
        pid = fork();
        if (pid == 0) {
                close(in[1]);
                close(out[0]);
                child_main(in[0], out[1]);
                test_child_exit(127);
        }
        close(in[0]);
        close(out[1]);
        if (pid < 0) {
                int r = -errno;

                close(in[1]);
                close(out[0]);
                return r;
        }
        *ret_to = in[1];
        *ret_from = out[0];
        return pid;
}

int run_as(uid_t uid, gid_t gid, int (*fn)(void *arg), void *arg) {
        int status;
        pid_t pid = fork();

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                become(uid, gid);
                test_child_exit(fn(arg));
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int fixture_start(long n_vmas, int with_files, struct fixture *ret) {
        return fixture_start_as(n_vmas, with_files, (uid_t) -1, (gid_t) -1, 0, ret);
}

/* A user namespace for the fixture: ids 0..count-1 in it are outside..outside+count-1. */
struct fixture_userns {
        uid_t outside;
        unsigned count;
};

static int write_id_map(pid_t pid, const char *file, const struct fixture_userns *ns) {
        char path[64], line[64];
        _cleanup_close_ int fd = -1;
        int len;

        snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
        len = snprintf(line, sizeof(line), "0 %u %u\n", (unsigned) ns->outside, ns->count);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return write(fd, line, (size_t) len) == len ? 0 : -errno;
}

static int fixture_start_full(long n_vmas, int with_files, uid_t uid, gid_t gid, int nondumpable,
                              const struct fixture_userns *ns, struct fixture *ret) {
        int in[2], out[2], sync[2] = { -1, -1 }, go[2] = { -1, -1 };
        char nbuf[32], line[256];
        struct fixture f = { .stdin_fd = -1 };
        FILE *fp;

        strcpy(f.dir, "/tmp/memmapd-fixture-XXXXXX");
        if (!mkdtemp(f.dir))
                return -errno;
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        if (ns && (pipe2(sync, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0))
                return -errno;
        snprintf(nbuf, sizeof(nbuf), "%ld", n_vmas);

        f.pid = fork();
        if (f.pid < 0)
                return -errno;
        if (f.pid == 0) {
                char b;

                dup2(in[0], 0);
                dup2(out[1], 1);
                if (nondumpable)
                        setenv("FIXTURE_NONDUMPABLE", "1", 1);
                if (with_files && uid != (uid_t) -1 && chown(f.dir, uid, gid) < 0)
                        _exit(126);
                become(uid, gid);
                if (ns) {
                        /* Root maps the ids once the namespace exists; then become its root.
                         * Only the parent may hold the write end: its exit ends the wait. */
                        close(sync[0]);
                        close(go[1]);
                        if (unshare(CLONE_NEWUSER) < 0 || write(sync[1], "n", 1) != 1 || read(go[0], &b, 1) != 1)
                                _exit(125);
                        if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
                                _exit(124);
                }
                execl(test_program("FIXTURE_PROC", "tests/fixture-proc"), "fixture-proc",
                      with_files ? f.dir : "", nbuf, (char *) NULL);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        f.stdin_fd = in[1];
        if (ns) {
                char b;
                int r = read(sync[0], &b, 1) == 1 ? 0 : -EIO;

                if (r >= 0)
                        r = write_id_map(f.pid, "uid_map", ns);
                if (r >= 0)
                        r = write_id_map(f.pid, "gid_map", ns);
                if (r >= 0 && write(go[1], "g", 1) != 1)
                        r = -errno;
                for (unsigned i = 0; i < 2; i++) {
                        close(sync[i]);
                        close(go[i]);
                }
                if (r < 0) {
                        close(out[0]);
                        fixture_stop(&f);
                        return r;
                }
        }

        fp = fdopen(out[0], "r");
        if (!fp)
                return -errno;
        while (fgets(line, sizeof(line), fp)) {
                char *eq;

                line[strcspn(line, "\n")] = 0;
                if (strcmp(line, "ready") == 0) {
                        fclose(fp);
                        *ret = f;
                        return 0;
                }
                eq = strchr(line, '=');
                if (!eq || f.n_keys >= FIXTURE_KEYS_MAX)
                        continue;
                *eq = 0;
                snprintf(f.keys[f.n_keys], sizeof(f.keys[0]), "%.31s", line);
                snprintf(f.values[f.n_keys], sizeof(f.values[0]), "%.63s", eq + 1);
                f.n_keys++;
        }
        fclose(fp);
        fixture_stop(&f);
        return -EIO;
}

int fixture_start_as(long n_vmas, int with_files, uid_t uid, gid_t gid, int nondumpable, struct fixture *ret) {
        return fixture_start_full(n_vmas, with_files, uid, gid, nondumpable, NULL, ret);
}

int fixture_start_userns(uid_t creator, uid_t outside, unsigned count, int nondumpable, struct fixture *ret) {
        const struct fixture_userns ns = { .outside = outside, .count = count };

        return fixture_start_full(0, 0, creator, creator, nondumpable, &ns, ret);
}

static int read_maps(void *arg) {
        char path[64], b;
        int fd, e;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) *(pid_t *) arg);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno;
        e = read(fd, &b, 1) == 1 ? 0 : errno ? errno : EIO;
        close(fd);
        return e;
}

int test_maps_readable_as(uid_t uid, gid_t gid, pid_t pid) {
        int r = run_as(uid, gid, read_maps, &pid);

        /* An errno (all are below 126), else how the child failed. */
        return r < 0 ? r : r == 0 ? 0 : r < 126 ? -r : -ECHILD;
}

static const int service_caps[] = { CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, CAP_SETUID, CAP_SETGID };

uint64_t test_service_caps(void) {
        uint64_t m = 0;

        for (size_t i = 0; i < sizeof(service_caps) / sizeof(service_caps[0]); i++)
                m |= UINT64_C(1) << service_caps[i];
        return m;
}

int test_become_service_user(uid_t uid, gid_t gid) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct d[2] = {};
        uint64_t keep = test_service_caps();

        /* The bounding set and securebits while still root (CAP_SETPCAP); the capabilities
         * are kept across the uid change, as systemd does for User=. */
        for (int c = 0; c < 64; c++) {
                if (keep & (UINT64_C(1) << c))
                        continue;
                if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
                        if (errno == EINVAL)
                                break; /* past the kernel's last capability */
                        return -errno;
                }
        }
        if (prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_NOROOT | SECBIT_NOROOT_LOCKED, 0, 0, 0) < 0)
                return -errno;
        if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
                return -errno;
        for (unsigned w = 0; w < 2; w++)
                d[w].permitted = d[w].effective = d[w].inheritable = (uint32_t) (keep >> (32 * w));
        if (syscall(SYS_capset, &h, d) < 0)
                return -errno;
        for (size_t i = 0; i < sizeof(service_caps) / sizeof(service_caps[0]); i++)
                if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, service_caps[i], 0, 0) < 0)
                        return -errno;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        return 0;
}

const char *fixture_get_string(const struct fixture *f, const char *key) {
        for (size_t i = 0; i < f->n_keys; i++)
                if (strcmp(f->keys[i], key) == 0)
                        return f->values[i];
        return NULL;
}

uint64_t fixture_get(const struct fixture *f, const char *key) {
        const char *v = fixture_get_string(f, key);
        uint64_t x;

        return v && parse_u64(v, &x) >= 0 ? x : 0;
}

void fixture_stop(struct fixture *f) {
        char path[256];

        if (f->stdin_fd >= 0) {
                close(f->stdin_fd);
                f->stdin_fd = -1;
        }
        if (f->pid > 0) {
                int status;

                if (waitpid(f->pid, &status, 0) < 0 && errno == EINTR)
                        kill(f->pid, SIGKILL);
                f->pid = 0;
        }
        if (f->dir[0]) {
                for (size_t i = 0; i < sizeof(fixture_files) / sizeof(fixture_files[0]); i++) {
                        snprintf(path, sizeof(path), "%s/%s", f->dir, fixture_files[i]);
                        unlink(path);
                }
                rmdir(f->dir);
                f->dir[0] = 0;
        }
}

int fixture_runs_cat(pid_t pid) {
        _cleanup_fclose_ FILE *maps = NULL;
        _cleanup_free_ char *line = NULL;
        char path[64], exe[256];
        size_t cap = 0;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/exe", (int) pid);
        n = readlink(path, exe, sizeof(exe) - 1);
        if (n < 0)
                return 0;
        exe[n] = 0;
        if (n < 4 || strcmp(exe + n - 4, "/cat") != 0)
                return 0;

        /* exe names the new program as soon as the kernel switches to the new address space,
         * before it maps the program there: wait for its mapping in the raw maps text too. */
        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        maps = fopen(path, "re");
        if (!maps)
                return 0;
        while ((n = getline(&line, &cap, maps)) > 0)
                if (n >= 5 && strcmp(line + n - 5, "/cat\n") == 0)
                        return 1;
        return 0;
}

ssize_t test_read_maps(pid_t pid, struct test_vma *v, size_t max) {
        char path[64], line[4096];
        size_t n = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (n < max && fgets(line, sizeof(line), f)) {
                unsigned long long s, e, off, ino;
                struct test_vma *x = &v[n];

                if (sscanf(line, "%llx-%llx %4s %llx %*s %llu", &s, &e, x->perms, &off, &ino) != 5)
                        continue;
                x->start = s;
                x->end = e;
                x->offset = off;
                x->inode = ino;
                x->exec = x->perms[2] == 'x';
                n++;
        }
        fclose(f);
        return (ssize_t) n;
}

char *test_run_capture(const char *cmd) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;
        FILE *p = popen(cmd, "r");

        if (!p)
                return NULL;
        for (;;) {
                if (len + 4096 + 1 > cap) {
                        char *n = realloc(buf, cap = cap ? cap * 2 : 8192);
                        if (!n) {
                                pclose(p);
                                return NULL;
                        }
                        buf = n;
                }
                size_t k = fread(buf + len, 1, 4096, p);
                if (k == 0)
                        break;
                len += k;
        }
        buf[len] = 0;
        if (pclose(p) != 0)
                return NULL;
        return TAKE_PTR(buf);
}

int test_readelf_build_id(const char *path, char *ret, size_t size) {
        _cleanup_free_ char *cmd = NULL, *out = NULL;
        const char *p;

        if (asprintf(&cmd, "LC_ALL=C readelf -nW '%s' 2>/dev/null", path) < 0)
                return 0;
        out = test_run_capture(cmd);
        if (!out || !(p = strstr(out, "Build ID: ")))
                return 0;
        p += strlen("Build ID: ");
        snprintf(ret, size, "%.*s", (int) strcspn(p, " \n"), p);
        return 1;
}

uint64_t test_nm_symbol(const char *binary, const char *symbol, int dynamic) {
        _cleanup_free_ char *cmd = NULL, *out = NULL;
        char hex[32];

        /* Symbol versions (getpid@@GLIBC_2.2.5) are part of what nm -D prints. */
        if (asprintf(&cmd, "LC_ALL=C nm %s '%s' | grep -E ' %s(@@.*)?$' | head -n1", dynamic ? "-D" : "", binary,
                     symbol) < 0)
                return 0;
        out = test_run_capture(cmd);
        if (!out || sscanf(out, "%31s", hex) != 1)
                return 0;
        return strtoull(hex, NULL, 16);
}

int test_connect(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int test_daemon_start(const char *const *extra_args, struct test_daemon *ret) {
        return test_daemon_start_as((uid_t) -1, (gid_t) -1, extra_args, ret);
}

bool test_daemon_without_openat2;

/* A seccomp filter answering ENOSYS to openat2, as an old kernel or a filter that does not know
 * the call does (systemd-nspawn 252's, seen). Inherited across exec. */
static int deny_openat2(void) {
#ifdef __x86_64__
        struct sock_filter filter[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat2, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { .len = ELEMENTSOF(filter), .filter = filter };

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
                return -errno;
        return 0;
#else
        return -EOPNOTSUPP;
#endif
}

int test_daemon_start_as(uid_t uid, gid_t gid, const char *const *extra_args, struct test_daemon *ret) {
        struct test_daemon d = {};
        char config[128];
        const char *argv[32];
        int cfd;
        size_t n = 0;

        strcpy(d.dir, "/tmp/memmapd-test-XXXXXX");
        /* Searchable by all: the access tests connect as other users. */
        if (!mkdtemp(d.dir) || chmod(d.dir, 0755) < 0)
                return -errno;
        /* The daemon creates its socket there. */
        if (uid != (uid_t) -1 && chown(d.dir, uid, gid) < 0)
                return -errno;
        snprintf(d.socket, sizeof(d.socket), "%s/io.memmapd", d.dir);
        argv[n++] = "memmapd";
        argv[n++] = "--socket";
        argv[n++] = d.socket;
        /* An empty configuration: what /etc holds must not change the tests. */
        snprintf(config, sizeof(config), "--config=%s/memmapd.conf", d.dir);
        cfd = open(config + strlen("--config="), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (cfd < 0)
                return -errno;
        close(cfd);
        argv[n++] = config;
        /* Tests written for a daemon that forgets a process at its exit (NoSuchProcess) keep
         * it so; test-retention turns retention on (a later --set wins). */
        argv[n++] = "--set=RetainExitedSec=0";
        for (size_t i = 0; extra_args && extra_args[i] && n < 30; i++)
                argv[n++] = extra_args[i];
        argv[n] = NULL;

        pid_t parent = getpid();

        d.pid = fork();
        if (d.pid < 0)
                return -errno;
        if (d.pid == 0) {
                if (uid != (uid_t) -1 && test_become_service_user(uid, gid) < 0)
                        _exit(126);
                /* A test that fails (or is killed) before its test_daemon_stop() leaves no daemon
                 * behind. After the uid change, which clears it; the test's main thread forks. */
                if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0 || getppid() != parent)
                        _exit(124);
                if (test_daemon_without_openat2 && deny_openat2() < 0)
                        _exit(125);
                execv(test_program("MEMMAPD", "daemon/memmapd"), (char *const *) argv);
                _exit(127);
        }
        for (int i = 0; i < 3000; i++) {
                int fd = test_connect(d.socket);

                if (fd >= 0) {
                        close(fd);
                        *ret = d;
                        return 0;
                }
                if (waitpid(d.pid, NULL, WNOHANG) == d.pid)
                        return -ECHILD;
                usleep(10000);
        }
        kill(d.pid, SIGKILL);
        waitpid(d.pid, NULL, 0);
        return -ETIMEDOUT;
}

int test_daemon_stop(struct test_daemon *d) {
        int status = 0;

        if (d->pid <= 0)
                return -ESRCH;
        kill(d->pid, SIGTERM);
        if (waitpid(d->pid, &status, 0) < 0)
                return -errno;
        d->pid = 0;
        unlink(d->socket);
        {
                char config[128];

                snprintf(config, sizeof(config), "%s/memmapd.conf", d->dir);
                unlink(config);
        }
        rmdir(d->dir);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int test_send(int fd, const char *msg) {
        size_t len = strlen(msg) + 1, off = 0;

        while (off < len) {
                ssize_t k = send(fd, msg + off, len - off, MSG_NOSIGNAL);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                off += (size_t) k;
        }
        return 0;
}

/* Bytes received after a message's NUL, per fd (tests use few fds). */
static struct {
        int fd;
        char *buf;
        size_t len;
} pending[64];

char *test_recv(int fd) {
        size_t slot = (size_t) fd % 64;
        char *buf = NULL;
        size_t len = 0, cap = 0;

        if (pending[slot].fd == fd && pending[slot].buf) {
                buf = pending[slot].buf;
                len = cap = pending[slot].len;
                pending[slot].buf = NULL;
        }
        for (;;) {
                char *nul = buf ? memchr(buf, 0, len) : NULL;
                ssize_t k;

                if (nul) {
                        size_t used = (size_t) (nul - buf) + 1;

                        if (used < len) {
                                pending[slot].fd = fd;
                                pending[slot].len = len - used;
                                pending[slot].buf = malloc(len - used);
                                memcpy(pending[slot].buf, nul + 1, len - used);
                        }
                        return buf;
                }
                if (len + 65536 > cap) {
                        char *n = realloc(buf, cap = len + 65536 * 4);
                        if (!n) {
                                free(buf);
                                return NULL;
                        }
                        buf = n;
                }
                k = recv(fd, buf + len, cap - len, 0);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        free(buf);
                        return NULL;
                }
                len += (size_t) k;
        }
}

char *test_call(int fd, const char *msg) {
        if (test_send(fd, msg) < 0)
                return NULL;
        return test_recv(fd);
}

int test_proc_stat_field(pid_t pid, unsigned n, uint64_t *ret) {
        char path[64], buf[4096], *p;
        unsigned long long v;
        size_t len;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = 0;
        /* comm (field 2) may hold spaces and parentheses: count from the last ')'. */
        p = strrchr(buf, ')');
        for (unsigned field = 3; p && field <= n; field++)
                p = strchr(p + 1, ' ');
        if (n < 3 || !p || sscanf(p + 1, "%llu", &v) != 1)
                return -EBADMSG;
        *ret = v;
        return 0;
}

long test_proc_status_kib(pid_t pid, const char *key) {
        char path[64], line[256];
        size_t klen = strlen(key);
        long v = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, klen) == 0 && line[klen] == ':')
                        v = strtol(line + klen + 1, NULL, 10);
        fclose(f);
        return v;
}

bool test_set_next_pid(pid_t pid) {
        FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "we");
        bool ok;

        if (!f)
                return false;
        ok = fprintf(f, "%d", (int) pid - 1) > 0;
        return fclose(f) == 0 && ok;
}

void test_wait_past_tick(uint64_t t) {
        long hz = sysconf(_SC_CLK_TCK);

        for (;;) {
                struct timespec ts;

                if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
                        abort();
                if ((uint64_t) ts.tv_sec * (uint64_t) hz + (uint64_t) ts.tv_nsec / (1000000000u / (uint64_t) hz) > t)
                        return;
                usleep(1000);
        }
}

int test_daemon_tracking_bpf(const char *socket) {
        int fd = test_connect(socket), r;
        char *reply;

        if (fd < 0)
                return fd;
        reply = test_call(fd, "{\"method\":\"io.memmapd.GetStatus\",\"parameters\":{}}");
        close(fd);
        if (!reply)
                return -EIO;
        r = strstr(reply, "\"tracking\":\"bpf\"") != NULL;
        free(reply);
        return r;
}

void test_print_loadavg(const char *prefix) {
        char buf[128] = "";
        FILE *f = fopen("/proc/loadavg", "re");

        if (f) {
                if (!fgets(buf, sizeof(buf), f))
                        buf[0] = 0;
                fclose(f);
        }
        printf("%sload average: %s", prefix, buf);
}
