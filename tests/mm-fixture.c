/* A target for test-mm-tracker: changes its own layout on command, one step per byte on stdin,
 * and answers each step with one byte ('k' done, 'e' failed) on stdout.
 *
 * Steps that change the layout: m (map anonymous pages), u (unmap the newest), p (flip a page's
 * protection), r (grow or shrink a mapping with mremap), b/B (grow/shrink the heap with brk),
 * f/F (map/unmap a file page), s (grow the stack by a page). Steps that must not: t (fault in a
 * scratch region's pages), d (madvise(MADV_DONTNEED) on it). x execs argv[1]; end of input exits.
 *
 * Between steps it only waits in read(): no malloc, no stdio, no threads, no transparent huge
 * pages (khugepaged write-locks the mm to collapse), so nothing else touches its mmap lock. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define REGIONS_MAX 64
#define SCRATCH_PAGES 16
#define FILE_PAGES 8

static long page;
static struct {
        uint8_t *addr;
        size_t pages;
        int writable;           /* its protection, flipped by 'p' (the whole region, so that mremap,
                                 * which wants one mapping, can still move it) */
} regions[REGIONS_MAX];
static unsigned n_regions;
static uintptr_t brk_start, brk_now;
static uint8_t *scratch;
static int file_fd = -1;
static uint8_t *file_maps[FILE_PAGES];
static unsigned n_file_maps, file_next;
static char maps_buf[1 << 16];

static int map_anon(void) {
        void *p;

        if (n_regions == REGIONS_MAX) {
                n_regions--;
                return munmap(regions[n_regions].addr, regions[n_regions].pages * (size_t) page);
        }
        p = mmap(NULL, (size_t) (2 * page), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return -1;
        regions[n_regions].addr = p;
        regions[n_regions].pages = 2;
        regions[n_regions].writable = 0;
        n_regions++;
        return 0;
}

static int unmap_anon(void) {
        if (n_regions == 0)
                return map_anon();
        n_regions--;
        return munmap(regions[n_regions].addr, regions[n_regions].pages * (size_t) page);
}

static int flip_protection(void) {
        if (n_regions == 0)
                return map_anon();
        regions[0].writable = !regions[0].writable;
        return mprotect(regions[0].addr, regions[0].pages * (size_t) page, regions[0].writable ? PROT_READ | PROT_WRITE : PROT_READ);
}

/* Grows the newest region to 4 pages (in place or moved) or shrinks it back to 2. */
static int remap(void) {
        unsigned i;
        size_t to;
        void *p;

        if (n_regions == 0)
                return map_anon();
        i = n_regions - 1;
        to = regions[i].pages == 2 ? 4 : 2;
        p = mremap(regions[i].addr, regions[i].pages * (size_t) page, to * (size_t) page, MREMAP_MAYMOVE);
        if (p == MAP_FAILED)
                return -1;
        regions[i].addr = p;
        regions[i].pages = to;
        return 0;
}

static int set_brk(uintptr_t to) {
        uintptr_t r = (uintptr_t) syscall(SYS_brk, to);

        if (r != to)
                return -1;
        brk_now = r;
        return 0;
}

static int map_file(void) {
        void *p;

        if (n_file_maps == FILE_PAGES) {
                n_file_maps--;
                return munmap(file_maps[n_file_maps], (size_t) page);
        }
        /* Each at another offset, so that neighbours never merge into an unchanged text. */
        p = mmap(NULL, (size_t) page, PROT_READ, MAP_PRIVATE, file_fd, (off_t) (file_next++ % FILE_PAGES) * page);
        if (p == MAP_FAILED)
                return -1;
        file_maps[n_file_maps++] = p;
        return 0;
}

static int unmap_file(void) {
        if (n_file_maps == 0)
                return map_file();
        n_file_maps--;
        return munmap(file_maps[n_file_maps], (size_t) page);
}

/* Touches the page below the [stack] mapping, which the kernel grows to cover it. */
static int grow_stack(void) {
        ssize_t n, len = 0;
        char *line, *end;
        int fd;

        fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        while (len < (ssize_t) sizeof(maps_buf) - 1 && (n = read(fd, maps_buf + len, sizeof(maps_buf) - 1 - (size_t) len)) > 0)
                len += n;
        close(fd);
        maps_buf[len] = 0;
        line = strstr(maps_buf, " [stack]\n");
        if (!line)
                return -1;
        while (line > maps_buf && line[-1] != '\n')
                line--;
        uintptr_t start = strtoull(line, &end, 16);
        if (end == line || *end != '-')
                return -1;
        *(volatile uint8_t *) (start - (uintptr_t) page) = 1;
        return 0;
}

static int touch_scratch(void) {
        for (int i = 0; i < SCRATCH_PAGES; i++)
                ((volatile uint8_t *) scratch)[(size_t) i * (size_t) page] = (uint8_t) i;
        return 0;
}

static int step(char c, char **argv) {
        switch (c) {
        case 'm': return map_anon();
        case 'u': return unmap_anon();
        case 'p': return flip_protection();
        case 'r': return remap();
        case 'b': return set_brk(brk_now + (uintptr_t) page);
        case 'B': return brk_now > brk_start ? set_brk(brk_now - (uintptr_t) page) : set_brk(brk_now + (uintptr_t) page);
        case 'f': return map_file();
        case 'F': return unmap_file();
        case 's': return grow_stack();
        case 't': return touch_scratch();
        case 'd': return madvise(scratch, (size_t) SCRATCH_PAGES * (size_t) page, MADV_DONTNEED);
        case 'x':
                if (argv[1])
                        execv(argv[1], argv + 1);
                return -1;
        default: return -1;
        }
}

int main(int argc, char **argv) {
        char path[] = "/tmp/memmapd-mm-fixture-XXXXXX";
        char c;

        (void) argc;
        page = sysconf(_SC_PAGESIZE);
        if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) < 0)
                return 2;
        brk_start = brk_now = (uintptr_t) syscall(SYS_brk, 0);
        scratch = mmap(NULL, (size_t) SCRATCH_PAGES * (size_t) page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        file_fd = mkostemp(path, O_CLOEXEC);
        if (scratch == MAP_FAILED || file_fd < 0 || ftruncate(file_fd, (off_t) FILE_PAGES * page) < 0)
                return 2;
        unlink(path);
        if (write(1, "r", 1) != 1)
                return 2;

        while (read(0, &c, 1) == 1) {
                char reply = step(c, argv) < 0 ? 'e' : 'k';

                if (write(1, &reply, 1) != 1)
                        return 2;
        }
        return 0;
}
