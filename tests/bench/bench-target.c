/* A target process for the benchmarks: grows to a given number of VMAs, some of them pages
 * of real ELF shared libraries (so build-ID and ELF-address paths do real work), prints
 * "vmas=N" and "ready", and lives until its stdin closes.
 *
 *   bench-target TOTAL_VMAS FILE_VMAS [LIBRARY...]
 *
 * File VMAs come in groups of FILE_GROUP consecutive pages of one library, cycling through
 * the libraries: like a real process, where each library is a handful of adjacent VMAs, but
 * with many more "libraries" than files given. Neighbouring pages map non-adjacent file
 * offsets, so the kernel cannot merge them. Anonymous VMAs alternate their protection for
 * the same reason. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_GROUP 4
#define LIBS_MAX 16

static long count_vmas(void) {
        char buf[65536];
        long lines = 0;
        ssize_t n;
        int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return -1;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                for (ssize_t i = 0; i < n; i++)
                        lines += buf[i] == '\n';
        close(fd);
        /* [vsyscall] is a line of the text but no VMA. */
        return lines - 1;
}

static int map_files(long n_file, int n_libs, char **libs, long page) {
        int fds[LIBS_MAX];
        long pages[LIBS_MAX], next[LIBS_MAX] = {};
        uint8_t *base;

        if (n_file <= 0 || n_libs == 0)
                return 0;
        for (int i = 0; i < n_libs; i++) {
                struct stat st;

                fds[i] = open(libs[i], O_RDONLY | O_CLOEXEC);
                if (fds[i] < 0 || fstat(fds[i], &st) < 0) {
                        perror(libs[i]);
                        return -1;
                }
                pages[i] = st.st_size / page;
                if (pages[i] < 4) {
                        fprintf(stderr, "%s: too small\n", libs[i]);
                        return -1;
                }
        }

        /* One reservation, then every page replaced by a file page: no gaps, no merges. */
        base = mmap(NULL, (size_t) (n_file * page), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) {
                perror("mmap");
                return -1;
        }
        for (long i = 0; i < n_file; i++) {
                int lib = (int) ((i / FILE_GROUP) % n_libs);
                /* Every other page of the file: offsets of neighbours are never contiguous. */
                long off = next[lib];
                int prot = (i % FILE_GROUP) == 1 ? PROT_READ | PROT_EXEC : PROT_READ;

                next[lib] = (next[lib] + 2) % (pages[lib] - 1);
                if (mmap(base + i * page, (size_t) page, prot, MAP_PRIVATE | MAP_FIXED, fds[lib], off * page) ==
                    MAP_FAILED) {
                        perror("mmap file");
                        return -1;
                }
        }
        for (int i = 0; i < n_libs; i++)
                close(fds[i]);
        printf("files=%p\n", (void *) base);
        return 0;
}

static int map_anon(long n, long page) {
        uint8_t *base;

        if (n <= 0)
                return 0;
        base = mmap(NULL, (size_t) (n * page), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) {
                perror("mmap");
                return -1;
        }
        for (long i = 0; i < n; i += 2)
                if (mprotect(base + i * page, (size_t) page, PROT_READ | PROT_WRITE) < 0) {
                        perror("mprotect");
                        return -1;
                }
        printf("anon=%p\n", (void *) base);
        return 0;
}

int main(int argc, char **argv) {
        long page = sysconf(_SC_PAGESIZE), total, n_file, have;
        char buf[64];

        if (argc < 3) {
                fprintf(stderr, "usage: %s TOTAL_VMAS FILE_VMAS [LIBRARY...]\n", argv[0]);
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        total = strtol(argv[1], NULL, 10);
        n_file = strtol(argv[2], NULL, 10);
        if (argc - 3 > LIBS_MAX)
                argc = 3 + LIBS_MAX;

        if (map_files(n_file, argc - 3, argv + 3, page) < 0)
                return 1;
        /* Top up with anonymous VMAs; an edge may merge with a neighbour, so correct twice. */
        for (int round = 0; round < 3; round++) {
                have = count_vmas();
                if (have < 0)
                        return 1;
                if (have >= total)
                        break;
                if (map_anon(total - have, page) < 0)
                        return 1;
        }
        printf("vmas=%ld\n", count_vmas());
        printf("ready\n");
        while (read(0, buf, sizeof(buf)) > 0)
                ;
        return 0;
}
