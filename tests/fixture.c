#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
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
