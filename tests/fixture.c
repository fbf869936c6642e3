#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "fixture.h"
#include "number.h"

static const char *const fixture_files[] = { "gone.bin", "with space.bin", "new\nline.bin", "x (deleted)" };

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

int run_as(uid_t uid, gid_t gid, int (*fn)(void *arg), void *arg) {
        int status;
        pid_t pid = fork();

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                become(uid, gid);
                _exit(fn(arg));
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int fixture_start(long n_vmas, int with_files, struct fixture *ret) {
        return fixture_start_as(n_vmas, with_files, (uid_t) -1, (gid_t) -1, 0, ret);
}

int fixture_start_as(long n_vmas, int with_files, uid_t uid, gid_t gid, int nondumpable, struct fixture *ret) {
        int in[2], out[2];
        char nbuf[32], line[256];
        struct fixture f = { .stdin_fd = -1 };
        FILE *fp;

        strcpy(f.dir, "/tmp/memmapd-fixture-XXXXXX");
        if (!mkdtemp(f.dir))
                return -errno;
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        snprintf(nbuf, sizeof(nbuf), "%ld", n_vmas);

        f.pid = fork();
        if (f.pid < 0)
                return -errno;
        if (f.pid == 0) {
                dup2(in[0], 0);
                dup2(out[1], 1);
                if (nondumpable)
                        setenv("FIXTURE_NONDUMPABLE", "1", 1);
                if (with_files && uid != (uid_t) -1 && chown(f.dir, uid, gid) < 0)
                        _exit(126);
                become(uid, gid);
                execl(test_program("FIXTURE_PROC", "tests/fixture-proc"), "fixture-proc",
                      with_files ? f.dir : "", nbuf, (char *) NULL);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        f.stdin_fd = in[1];

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
        char path[64], exe[256];
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/exe", (int) pid);
        n = readlink(path, exe, sizeof(exe) - 1);
        if (n < 0)
                return 0;
        exe[n] = 0;
        return n >= 4 && strcmp(exe + n - 4, "/cat") == 0;
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
        struct test_daemon d = {};
        char config[128];
        const char *argv[32];
        int cfd;
        size_t n = 0;

        strcpy(d.dir, "/tmp/memmapd-test-XXXXXX");
        /* Searchable by all: the access tests connect as other users. */
        if (!mkdtemp(d.dir) || chmod(d.dir, 0755) < 0)
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
        for (size_t i = 0; extra_args && extra_args[i] && n < 30; i++)
                argv[n++] = extra_args[i];
        argv[n] = NULL;

        d.pid = fork();
        if (d.pid < 0)
                return -errno;
        if (d.pid == 0) {
                execv(test_program("MEMMAPD", "daemon/memmapd"), (char *const *) argv);
                _exit(127);
        }
        for (int i = 0; i < 500; i++) {
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
