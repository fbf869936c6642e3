/* A target process for the tests: builds the mappings it is asked for, prints where they
 * are ("key=value" lines, then "ready"), and lives until its stdin closes. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

/* The symbol the ELF virtual address test looks up with nm. */
__attribute__((noinline, used)) int fixture_marker_function(int x);
__attribute__((noinline, used)) int fixture_marker_function(int x) {
        return x * 3 + 1;
}

/* Churn (FIXTURE_CHURN set): a region of CHURN_PAGES pages whose layout steps through a
 * cycle, one system call a step (each atomic under the mmap lock), so that at any instant the
 * process has one of the layouts the steps lead to. 's' on stdin takes one step and stops
 * the process (SIGSTOP) for the test to read the layout; 'c' starts a thread that steps
 * without end. */
#define CHURN_PAGES 16
static uint8_t *churn;
static unsigned churn_step;
static long churn_page;

static void churn_one(void) {
        long pg = churn_page;

        switch (churn_step++ % 4) {
        case 0:
                mprotect(churn + 2 * pg, (size_t) (2 * pg), PROT_READ | PROT_WRITE);
                break;
        case 1:
                munmap(churn + 6 * pg, (size_t) (2 * pg));
                break;
        case 2:
                mmap(churn + 6 * pg, (size_t) (2 * pg), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
                break;
        case 3:
                mprotect(churn + 2 * pg, (size_t) (2 * pg), PROT_NONE);
                break;
        }
}

static void *churn_main(void *arg) {
        (void) arg;
        for (;;)
                churn_one();
        return NULL;
}

static void *map_file(const char *dir, const char *name, size_t size, bool unlink_after) {
        char path[4096];
        void *p;
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ftruncate(fd, (off_t) size) < 0) {
                perror(path);
                exit(1);
        }
        p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
                perror("mmap");
                exit(1);
        }
        close(fd);
        if (unlink_after)
                unlink(path);
        return p;
}

/* FIXTURE_DEEP: a file reached through DEEP_LEVELS directories of DEEP_NAME_LEN-byte names
 * (a path of about 7,400 bytes, longer than PATH_MAX: only *at() calls reach it), mapped. */
#define DEEP_LEVELS 30
#define DEEP_NAME_LEN 240

static int deep_fds[DEEP_LEVELS + 1];

static void deep_name(unsigned level, char name[static DEEP_NAME_LEN + 1]) {
        memset(name, 'd', DEEP_NAME_LEN);
        name[DEEP_NAME_LEN] = 0;
        snprintf(name, 4, "%02u", level);
        name[2] = '-';
}

static void *map_deep(const char *dir, size_t size, size_t *ret_len) {
        char name[DEEP_NAME_LEN + 1];
        size_t len = strlen(dir);
        void *p;
        int fd;

        deep_fds[0] = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        for (unsigned i = 0; i < DEEP_LEVELS; i++) {
                deep_name(i, name);
                if (deep_fds[i] < 0 || mkdirat(deep_fds[i], name, 0755) < 0)
                        return MAP_FAILED;
                deep_fds[i + 1] = openat(deep_fds[i], name, O_PATH | O_DIRECTORY | O_CLOEXEC);
                len += 1 + DEEP_NAME_LEN;
        }
        fd = openat(deep_fds[DEEP_LEVELS], "deep.bin", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ftruncate(fd, (off_t) size) < 0)
                return MAP_FAILED;
        p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        close(fd);
        *ret_len = len + strlen("/deep.bin");
        return p;
}

/* Removes what map_deep() made (the test's cleanup knows only the top directory). */
static void unmake_deep(void) {
        char name[DEEP_NAME_LEN + 1];

        if (deep_fds[DEEP_LEVELS] <= 0)
                return;
        unlinkat(deep_fds[DEEP_LEVELS], "deep.bin", 0);
        for (unsigned i = DEEP_LEVELS; i-- > 0;) {
                deep_name(i, name);
                unlinkat(deep_fds[i], name, AT_REMOVEDIR);
        }
}

/* FIXTURE_THREADS: threads that say their id, then wait for the end of the process. */
static void *thread_wait(void *arg) {
        long tid = (long) syscall(SYS_gettid);

        if (write(*(int *) arg, &tid, sizeof(tid)) != sizeof(tid))
                abort();
        for (;;)
                pause();
        return NULL;
}

int main(int argc, char **argv) {
        const char *dir = argc > 1 && argv[1][0] ? argv[1] : NULL;
        long n_vmas = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
        long page = sysconf(_SC_PAGESIZE);
        char buf[16];

        /* The exec loop ('r' below): exec ourselves again and again, keeping the pid and the
         * start time, until stdin closes. argv[4] counts the execs, for the test to see. */
        if (argc > 4 && strcmp(argv[3], "exec-loop") == 0) {
                struct pollfd p = { .fd = 0, .events = POLLIN };
                char n[32];

                if (poll(&p, 1, 0) != 0)
                        return 0;
                snprintf(n, sizeof(n), "%ld", strtol(argv[4], NULL, 10) + 1);
                execl("/proc/self/exe", "fixture-proc", "", "0", "exec-loop", n, (char *) NULL);
                return 1;
        }

        setvbuf(stdout, NULL, _IOLBF, 0);
        /* Non-dumpable: only privileged processes may read our maps, even of our own uid. */
        if (getenv("FIXTURE_NONDUMPABLE"))
                prctl(PR_SET_DUMPABLE, 0);
        printf("marker=%p\n", (void *) (uintptr_t) fixture_marker_function);
        /* A mapping whose name tells this process from any other (memfd:NAME in the maps),
         * made before anything else, for tests where processes take each other's pids. */
        if (getenv("FIXTURE_MARKER_NAME")) {
                int mfd = memfd_create(getenv("FIXTURE_MARKER_NAME"), MFD_CLOEXEC);
                void *p;

                if (mfd < 0 || ftruncate(mfd, page) < 0)
                        return 1;
                p = mmap(NULL, (size_t) page, PROT_READ, MAP_SHARED, mfd, 0);
                if (p == MAP_FAILED)
                        return 1;
                close(mfd);
                printf("name_marker=%p\n", p);
        }

        /* Alternating protections keep neighbouring anonymous pages from merging into one VMA. */
        if (n_vmas > 0) {
                uint8_t *base = mmap(NULL, (size_t) (n_vmas * page), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

                if (base == MAP_FAILED) {
                        perror("mmap");
                        return 1;
                }
                for (long i = 0; i < n_vmas; i += 2)
                        mprotect(base + i * page, (size_t) page, PROT_READ | PROT_WRITE);
                printf("many=%p\n", (void *) base);
        }

        if (dir) {
                int mfd;
                void *p;

                printf("deleted=%p\n", map_file(dir, "gone.bin", (size_t) page, true));
                printf("space=%p\n", map_file(dir, "with space.bin", (size_t) page, false));
                printf("newline=%p\n", map_file(dir, "new\nline.bin", (size_t) page, false));
                printf("literal_deleted=%p\n", map_file(dir, "x (deleted)", (size_t) page, false));
                if (getenv("FIXTURE_BACKSLASH"))
                        printf("backslash=%p\n", map_file(dir, "back\\012slash.bin", (size_t) page, false));
                /* Names that are not UTF-8: a byte that never is, then a sequence cut short. */
                if (getenv("FIXTURE_NOT_UTF8")) {
                        void *a = map_file(dir, "not-utf8-\xff\xe2\x82.bin", (size_t) page, false);
                        void *b = map_file(dir, "gone-\xfe.bin", (size_t) page, true);

                        printf("not_utf8=%p\n", a);
                        printf("not_utf8_deleted=%p\n", b);
                        /* Executable, so that memctl modules lists them too (a noexec mount
                         * refuses: then the test says it cannot check that). */
                        printf("not_utf8_exec=%d\n", mprotect(a, (size_t) page, PROT_READ | PROT_EXEC) >= 0 &&
                                                              mprotect(b, (size_t) page, PROT_READ | PROT_EXEC) >= 0);
                }

                mfd = memfd_create("fixture-memfd", MFD_CLOEXEC);
                if (mfd < 0 || ftruncate(mfd, page) < 0)
                        return 1;
                p = mmap(NULL, (size_t) page, PROT_READ, MAP_SHARED, mfd, 0);
                if (p == MAP_FAILED)
                        return 1;
                printf("memfd=%p\n", p);

                p = mmap(NULL, (size_t) page * 2, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED)
                        return 1;
                printf("shared_anon=%p\n", p);

                p = mmap(NULL, (size_t) page * 3, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED)
                        return 1;
                if (prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long) p, (unsigned long) page * 3,
                          (unsigned long) "fixture name") == 0)
                        printf("anon_named=%p\n", p);
                else
                        printf("anon_named_error=%d\n", errno);

                if (getenv("FIXTURE_DEEP")) {
                        size_t len = 0;

                        p = map_deep(dir, (size_t) page, &len);
                        if (p == MAP_FAILED) {
                                perror("deep");
                                unmake_deep();
                                return 1;
                        }
                        printf("deep=%p\ndeep_len=%zu\n", p, len);
                }
        }

        /* FIXTURE_HUGETLB: anonymous memory in huge pages (the test reserves them). */
        if (getenv("FIXTURE_HUGETLB")) {
                size_t huge = 2u << 20;
                void *p = mmap(NULL, huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);

                if (p == MAP_FAILED)
                        printf("hugetlb_error=%d\n", errno);
                else {
                        memset(p, 1, huge);
                        printf("hugetlb=%p\n", p);
                }
        }

        if (getenv("FIXTURE_THREADS")) {
                long n = strtol(getenv("FIXTURE_THREADS"), NULL, 10), tid = 0;
                static int pipe_fds[2];

                if (pipe2(pipe_fds, O_CLOEXEC) < 0)
                        return 1;
                for (long i = 0; i < n; i++) {
                        pthread_t t;

                        if (pthread_create(&t, NULL, thread_wait, &pipe_fds[1]) != 0 ||
                            read(pipe_fds[0], &tid, sizeof(tid)) != sizeof(tid))
                                return 1;
                }
                /* The last thread's id: the test asks about one that is not the leader. */
                printf("tid=%ld\n", tid);
        }

        if (getenv("FIXTURE_CHURN")) {
                churn_page = page;
                churn = mmap(NULL, (size_t) (CHURN_PAGES * page), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (churn == MAP_FAILED)
                        return 1;
                printf("churn=%p\n", (void *) churn);
        }

        printf("ready\n");
        /* Live until the test closes our stdin, which may also carry commands: 'u' makes us
         * non-dumpable, 'x' execs cat (which lives on until stdin is closed too), 'r' starts
         * the exec loop (which ends when stdin is closed). */
        for (;;) {
                ssize_t n = read(0, buf, sizeof(buf));

                if (n <= 0)
                        break;
                for (ssize_t i = 0; i < n; i++) {
                        if (buf[i] == 'u')
                                prctl(PR_SET_DUMPABLE, 0);
                        else if (buf[i] == 's' && churn) {
                                churn_one();
                                raise(SIGSTOP);
                        } else if (buf[i] == 'c' && churn) {
                                pthread_t t;

                                if (pthread_create(&t, NULL, churn_main, NULL) != 0)
                                        return 1;
                        }
                        else if (buf[i] == 'x') {
                                execl("/bin/cat", "cat", (char *) NULL);
                                return 1;
                        } else if (buf[i] == 'r') {
                                execl("/proc/self/exe", "fixture-proc", "", "0", "exec-loop", "1", (char *) NULL);
                                return 1;
                        }
                }
        }
        unmake_deep();
        return 0;
}
