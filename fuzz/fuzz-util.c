/* Helpers shared by the fuzz targets. */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

int fuzz_memfd(const uint8_t *data, size_t size) {
        static int fd = -1;
        size_t done = 0;

        if (fd < 0) {
                fd = memfd_create("fuzz-input", MFD_CLOEXEC);
                FUZZ_CHECK(fd >= 0);
        }
        FUZZ_CHECK(ftruncate(fd, 0) == 0);
        while (done < size) {
                ssize_t n = pwrite(fd, data + done, size - done, (off_t) done);

                if (n < 0 && errno == EINTR)
                        continue;
                FUZZ_CHECK(n > 0);
                done += (size_t) n;
        }
        return fd;
}
