/* Replays a fuzz target over its seed corpus (and any crash reproducers kept there) in builds
 * without libFuzzer, so ordinary `make check` runs, gcc and its sanitizers included, keep every
 * input that ever mattered passing. Arguments name files or directories; with none, the
 * corpus directory the build compiled in. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define REPLAY_FILE_MAX (1024 * 1024)

static int replay_file(const char *path, unsigned *count) {
        struct stat st;
        uint8_t *buf;
        size_t done = 0;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        if (st.st_size < 0 || st.st_size > REPLAY_FILE_MAX) {
                fprintf(stderr, "%s: larger than %d bytes\n", path, REPLAY_FILE_MAX);
                close(fd);
                return -1;
        }
        /* Exactly the file's size, so that ASan sees any read past the input. */
        buf = malloc(st.st_size > 0 ? (size_t) st.st_size : 1);
        FUZZ_CHECK(buf);
        while (done < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + done, (size_t) st.st_size - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                done += (size_t) n;
        }
        close(fd);

        LLVMFuzzerTestOneInput(buf, done);
        free(buf);
        (*count)++;
        return 0;
}

static int replay_path(const char *path, unsigned *count) {
        struct dirent **names;
        struct stat st;
        int n, r = 0;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        if (!S_ISDIR(st.st_mode))
                return replay_file(path, count);

        /* Sorted, so that a failure names the same file every time. */
        n = scandir(path, &names, NULL, alphasort);
        if (n < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        for (int i = 0; i < n; i++) {
                if (names[i]->d_name[0] != '.') {
                        size_t len = strlen(path) + strlen(names[i]->d_name) + 2;
                        char *p = malloc(len);

                        FUZZ_CHECK(p);
                        snprintf(p, len, "%s/%s", path, names[i]->d_name);
                        if (replay_file(p, count) < 0)
                                r = -1;
                        free(p);
                }
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char *argv[]) {
        unsigned count = 0;
        int r = 0;

        if (argc < 2)
                r = replay_path(FUZZ_CORPUS_DIR, &count);
        for (int i = 1; i < argc; i++)
                if (replay_path(argv[i], &count) < 0)
                        r = -1;

        if (r == 0 && count == 0) {
                fprintf(stderr, "no inputs found\n");
                return 1;
        }
        printf("%u inputs replayed\n", count);
        return r < 0 ? 1 : 0;
}
