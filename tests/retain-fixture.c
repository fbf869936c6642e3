/* A target for test-retention: a short-lived process that maps libc and a library of its own and
 * reports its executable mappings as /proc shows them before it exits, or one that maps file A
 * at an address, unmaps it and maps file B there, reporting the time of each step, or one that
 * changes its mappings at random, reporting what /proc shows at times, or a child that maps A
 * as soon as it is forked. short-fork: as short, with a child forked that never execs and exits
 * only after its parent did. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static unsigned long long now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (unsigned long long) ts.tv_sec * 1000000u + (unsigned long long) ts.tv_nsec / 1000u;
}

/* Field 22 of /proc/self/stat, after the command's closing parenthesis. */
static unsigned long long start_time(void) {
        char buf[1024], *p;
        unsigned long long v = 0;
        FILE *f = fopen("/proc/self/stat", "re");
        size_t n;

        if (!f)
                return 0;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &v) != 1)
                return 0;
        return v;
}

static void print_exec_maps(void) {
        char line[4096];
        FILE *f = fopen("/proc/self/maps", "re");

        while (f && fgets(line, sizeof(line), f))
                if (strstr(line, " r-xp ") && strchr(line, '/'))
                        printf("map %s", line);
        if (f)
                fclose(f);
}

static void *map_file(const char *path, void *at) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        void *p;

        if (fd < 0)
                return MAP_FAILED;
        p = mmap(at, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | (at ? MAP_FIXED_NOREPLACE : 0), fd, 0);
        close(fd);
        return p;
}

/* The executable file mappings of /proc/self/maps inside [lo, hi), as "map" lines. */
static void print_exec_maps_in(uintptr_t lo, uintptr_t hi) {
        char line[4096];
        FILE *f = fopen("/proc/self/maps", "re");

        while (f && fgets(line, sizeof(line), f)) {
                unsigned long long s, e;
                char perms[5];

                if (sscanf(line, "%llx-%llx %4s", &s, &e, perms) == 3 && s >= lo && e <= hi && perms[2] == 'x' &&
                    strchr(line, '/'))
                        printf("map %s", line);
        }
        if (f)
                fclose(f);
}

#define CHURN_PAGES 64

/* Random mmap (fixed, of two files, with and without exec, private and shared), mprotect,
 * munmap and mremap in an area of CHURN_PAGES pages; every few rounds the time and what
 * /proc/self/maps shows there, for the test to ask the history as of that time. */
static int churn(unsigned seed, int rounds, const char *const files[2]) {
        static const int prots[] = { PROT_READ, PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE,
                                     PROT_READ | PROT_WRITE | PROT_EXEC, PROT_NONE };
        const size_t page = 4096;
        int fds[2];
        char *area = mmap(NULL, CHURN_PAGES * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (area == MAP_FAILED)
                return 2;
        for (int i = 0; i < 2; i++)
                if ((fds[i] = open(files[i], O_RDONLY | O_CLOEXEC)) < 0)
                        return 2;
        srand(seed);
        printf("pid %d\nstart_time %llu\narea %p\n", (int) getpid(), start_time(), (void *) area);
        for (int r = 0; r < rounds; r++) {
                size_t at = (size_t) rand() % CHURN_PAGES, n = 1 + (size_t) rand() % 8;
                int prot = prots[rand() % 5];

                if (at + n > CHURN_PAGES)
                        n = CHURN_PAGES - at;
                switch (rand() % 5) {
                case 0:
                case 1: {
                        int fd = fds[rand() % 2];
                        int shared = rand() % 4 == 0 && !(prot & PROT_WRITE);

                        (void) mmap(area + at * page, n * page, prot, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED, fd,
                                    (off_t) (rand() % 16) * (off_t) page);
                        break;
                }
                case 2:
                        (void) mprotect(area + at * page, n * page, prot);
                        break;
                case 3:
                        (void) munmap(area + at * page, n * page);
                        break;
                case 4: {
                        size_t to = (size_t) rand() % (CHURN_PAGES - n + 1);

                        if (to + n <= at || to >= at + n)
                                (void) mremap(area + at * page, n * page, n * page, MREMAP_MAYMOVE | MREMAP_FIXED,
                                              area + to * page);
                        break;
                }
                }
                if (r % 4 == 3) {
                        printf("check %llu\n", now_usec());
                        print_exec_maps_in((uintptr_t) area, (uintptr_t) area + CHURN_PAGES * page);
                }
        }
        printf("end\n");
        fflush(stdout);
        return 0;
}

int main(int argc, char **argv) {
        setvbuf(stdout, NULL, _IOFBF, 1 << 16);
        if (argc >= 6 && strcmp(argv[1], "churn") == 0) {
                const char *const files[2] = { argv[4], argv[5] };

                return churn((unsigned) strtoul(argv[2], NULL, 10), atoi(argv[3]), files);
        }
        if (argc >= 3 && (strcmp(argv[1], "short") == 0 || strcmp(argv[1], "short-nondumpable") == 0 ||
                          strcmp(argv[1], "short-fork") == 0)) {
                void *lib = dlopen(argv[2], RTLD_NOW);
                int (*fn)(int) = lib ? (int (*)(int)) dlsym(lib, "retain_lib_function") : NULL;

                if (!fn)
                        return 2;
                if (strcmp(argv[1], "short-nondumpable") == 0 && prctl(PR_SET_DUMPABLE, 0) < 0)
                        return 3;
                if (strcmp(argv[1], "short-fork") == 0) {
                        int gone[2], ready[2];
                        pid_t child;
                        char c;

                        if (pipe2(gone, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0)
                                return 4;
                        fflush(stdout);
                        child = fork();
                        if (child < 0)
                                return 5;
                        if (child == 0) {
                                close(gone[1]);
                                printf("child %d %llu\n", (int) getpid(), start_time());
                                fflush(stdout);
                                if (write(ready[1], "x", 1) != 1)
                                        _exit(6);
                                /* Until the parent exited (its end of the pipe closed then). */
                                while (read(gone[0], &c, 1) > 0)
                                        ;
                                _exit(0);
                        }
                        close(gone[0]);
                        if (read(ready[0], &c, 1) != 1)
                                return 7;
                }
                printf("pid %d\nstart_time %llu\nfunction %p %d\nlibc %p\n", (int) getpid(), start_time(),
                       (void *) fn, fn(1), dlsym(RTLD_DEFAULT, "getpid"));
                print_exec_maps();
                printf("end\n");
                fflush(stdout);
                return 0;
        }
        if (argc >= 4 && (strcmp(argv[1], "swap") == 0 || strcmp(argv[1], "swap-exec") == 0)) {
                void *a, *b;
                unsigned long long t0, t1, t2, t3;
                char c;

                t0 = now_usec();
                a = map_file(argv[2], NULL);
                if (a == MAP_FAILED)
                        return 2;
                t1 = now_usec();
                if (munmap(a, 4096) < 0)
                        return 3;
                t2 = now_usec();
                b = map_file(argv[3], a);
                if (b != a)
                        return 4;
                t3 = now_usec();
                printf("pid %d\nstart_time %llu\naddress %p\nt0 %llu\nt1 %llu\nt2 %llu\nt3 %llu\nend\n", (int) getpid(),
                       start_time(), a, t0, t1, t2, t3);
                fflush(stdout);
                /* Until the test closes our stdin; swap-exec: at its first byte, another program. */
                while (read(0, &c, 1) > 0)
                        if (strcmp(argv[1], "swap-exec") == 0) {
                                /* The test read its report and closed the pipe: the next one
                                 * would only meet SIGPIPE. */
                                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

                                if (null < 0 || dup2(null, 1) < 0)
                                        return 6;
                                execl("/proc/self/exe", argv[0], "wait", (char *) NULL);
                                return 5;
                        }
                return 0;
        }
        if (argc >= 3 && strcmp(argv[1], "fork-map") == 0) {
                /* A child that maps A at once: its history before that is its parent's set. */
                pid_t child = fork();

                if (child < 0)
                        return 2;
                if (child == 0) {
                        unsigned long long t0 = now_usec(), t1;
                        void *a = map_file(argv[2], NULL);
                        char c;

                        if (a == MAP_FAILED)
                                return 2;
                        t1 = now_usec();
                        printf("pid %d\nstart_time %llu\naddress %p\nlibc %p\nt0 %llu\nt1 %llu\nend\n", (int) getpid(),
                               start_time(), a, dlsym(RTLD_DEFAULT, "getpid"), t0, t1);
                        fflush(stdout);
                        while (read(0, &c, 1) > 0)
                                ;
                        return 0;
                }
                return waitpid(child, NULL, 0) == child ? 0 : 3;
        }
        if (argc >= 2 && strcmp(argv[1], "wait") == 0) {
                char c;

                printf("pid %d\nstart_time %llu\nend\n", (int) getpid(), start_time());
                fflush(stdout);
                while (read(0, &c, 1) > 0)
                        ;
                return 0;
        }
        fprintf(stderr, "usage: retain-fixture short|short-nondumpable|short-fork LIB | swap|swap-exec A B | wait | "
                        "fork-map A | churn SEED ROUNDS A B\n");
        return 1;
}
