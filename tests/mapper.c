/* Test support: a forked process that maps pages of a file, optionally as nobody, and lives until its control pipe closes. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mapper.h"

#define PAGE 4096

static void mapper_child(const char *lib, size_t pages, uid_t uid, int ready_fd, int control_fd) {
        char c;

        if (lib && pages > 0) {
                int fd = open(lib, O_RDONLY | O_CLOEXEC);

                if (fd < 0)
                        _exit(1);
                for (size_t i = 0; i < pages; i++)
                        if (mmap(NULL, PAGE, PROT_READ | (i > 0 ? PROT_EXEC : 0), MAP_PRIVATE, fd,
                                 (off_t) (i * PAGE)) == MAP_FAILED)
                                _exit(1);
                close(fd);
        }
        /* Dumpable again after the change of uid: its owner may read its maps. */
        if (uid != (uid_t) -1 && (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
                                  setresuid(uid, uid, uid) < 0 || prctl(PR_SET_DUMPABLE, 1) < 0))
                _exit(1);
        if (write(ready_fd, "r", 1) != 1)
                _exit(1);
        while (read(control_fd, &c, 1) > 0)
                ;
        _exit(0);
}

int mapper_start(const char *lib, size_t pages, uid_t uid, const int *close_fds, size_t n_close, struct mapper *ret) {
        int ready[2], control[2];
        pid_t pid;
        char c;

        if (pipe2(ready, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(control, O_CLOEXEC) < 0) {
                close(ready[0]);
                close(ready[1]);
                return -errno;
        }
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                close(ready[0]);
                close(control[1]);
                for (size_t k = 0; k < n_close; k++)
                        close(close_fds[k]);
                mapper_child(lib, pages, uid, ready[1], control[0]);
        }
        close(ready[1]);
        close(control[0]);
        if (read(ready[0], &c, 1) != 1) {
                close(ready[0]);
                close(control[1]);
                waitpid(pid, NULL, 0);
                return -EIO;
        }
        close(ready[0]);
        *ret = (struct mapper) { .pid = pid, .control_fd = control[1] };
        return 0;
}

void mapper_stop(struct mapper *m) {
        close(m->control_fd);
        (void) waitpid(m->pid, NULL, 0);
}
