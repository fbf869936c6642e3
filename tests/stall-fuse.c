#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stall-fuse.h"

#define NODE_FILE 2
#define NODE_FILE2 3
#define ATTR_VALID 3600

/* The kernel wants at least this much room per read of /dev/fuse. */
#define BUF_SIZE (FUSE_MIN_READ_BUFFER + 4096)

static void reply(int fd, uint64_t unique, int error, const void *payload, size_t len) {
        struct fuse_out_header h = {
                .len = (uint32_t) (sizeof(h) + (error ? 0 : len)),
                .error = error,
                .unique = unique,
        };
        char buf[sizeof(h) + 512];

        if (error)
                len = 0;
        memcpy(buf, &h, sizeof(h));
        if (len)
                memcpy(buf + sizeof(h), payload, len);
        (void) !write(fd, buf, sizeof(h) + len);
}

static void fill_attr(uint64_t node, uid_t uid, gid_t gid, struct fuse_attr *a) {
        *a = (struct fuse_attr) {
                .ino = node,
                .size = node != FUSE_ROOT_ID ? STALL_FUSE_FILE_SIZE : 0,
                .blocks = node != FUSE_ROOT_ID ? STALL_FUSE_FILE_SIZE / 512 : 0,
                .mode = node != FUSE_ROOT_ID ? S_IFREG | 0444 : S_IFDIR | 0755,
                .nlink = node != FUSE_ROOT_ID ? 1 : 2,
                .uid = uid,
                .gid = gid,
                .blksize = 4096,
        };
}

static void __attribute__((noreturn)) serve(int fd, uid_t uid, gid_t gid, struct stall_fuse_counts *counts) {
        static char buf[BUF_SIZE];
        bool unlinked = false;

        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                struct fuse_in_header *in = (struct fuse_in_header *) buf;
                void *arg = buf + sizeof(*in);

                if (n < 0 && (errno == EINTR || errno == ENOENT))
                        continue;
                if (n < (ssize_t) sizeof(*in))
                        _exit(0);       /* unmounted */
                counts->requests++;

                switch (in->opcode) {
                case FUSE_INIT: {
                        const struct fuse_init_in *ii = arg;
                        struct fuse_init_out o = {
                                .major = FUSE_KERNEL_VERSION,
                                .minor = FUSE_KERNEL_MINOR_VERSION,
                                .max_readahead = ii->max_readahead,
                                .max_write = 4096,
                                .time_gran = 1,
                        };
                        reply(fd, in->unique, 0, &o, sizeof(o));
                        break;
                }
                case FUSE_LOOKUP: {
                        struct fuse_entry_out o = {
                                .nodeid = NODE_FILE,
                                .generation = 1,
                                .entry_valid = ATTR_VALID,
                                .attr_valid = ATTR_VALID,
                        };
                        /* The daemon looks up "g (deleted)": is a file really named so? */
                        if (in->nodeid == FUSE_ROOT_ID && unlinked && strncmp((const char *) arg, "g ", 2) == 0) {
                                counts->lookups_pending++;
                                break;
                        }
                        if (in->nodeid == FUSE_ROOT_ID && strcmp((const char *) arg, "g") == 0) {
                                if (unlinked) {
                                        counts->lookups_pending++;
                                        break;
                                }
                                o.nodeid = NODE_FILE2;
                        } else if (in->nodeid != FUSE_ROOT_ID || strcmp((const char *) arg, "f") != 0) {
                                reply(fd, in->unique, -ENOENT, NULL, 0);
                                break;
                        }
                        fill_attr(o.nodeid, uid, gid, &o.attr);
                        reply(fd, in->unique, 0, &o, sizeof(o));
                        break;
                }
                case FUSE_GETATTR: {
                        struct fuse_attr_out o = { .attr_valid = ATTR_VALID };

                        fill_attr(in->nodeid, uid, gid, &o.attr);
                        reply(fd, in->unique, 0, &o, sizeof(o));
                        break;
                }
                case FUSE_OPEN: {
                        struct fuse_open_out o = { .fh = 1 };

                        counts->opens++;
                        reply(fd, in->unique, 0, &o, sizeof(o));
                        break;
                }
                case FUSE_UNLINK:
                        unlinked = unlinked || strcmp((const char *) arg, "g") == 0;
                        reply(fd, in->unique, 0, NULL, 0);
                        break;
                case FUSE_READ:
                        /* The stall: never answered. */
                        counts->reads_pending++;
                        break;
                case FUSE_FORGET:
                case FUSE_BATCH_FORGET:
                case FUSE_INTERRUPT:
                        break;          /* no reply expected (an interrupted READ stays unanswered) */
                case FUSE_RELEASE:
                case FUSE_FLUSH:
                        reply(fd, in->unique, 0, NULL, 0);
                        break;
                default:
                        reply(fd, in->unique, -ENOSYS, NULL, 0);
                }
        }
}

int stall_fuse_start(uid_t uid, gid_t gid, struct stall_fuse *ret, const char **ret_why) {
        struct stall_fuse f = {};
        char opts[128], c;
        int ready[2], fd;

        *ret_why = NULL;
        snprintf(f.dir, sizeof(f.dir), "/tmp/test-stall-fuse.XXXXXX");
        if (!mkdtemp(f.dir))
                return -errno;
        snprintf(f.mnt, sizeof(f.mnt), "%s/mnt", f.dir);
        snprintf(f.file, sizeof(f.file), "%s/f", f.mnt);
        snprintf(f.file2, sizeof(f.file2), "%s/g", f.mnt);
        if (chmod(f.dir, 0755) < 0 || mkdir(f.mnt, 0755) < 0)
                return -errno;
        f.counts = mmap(NULL, sizeof(*f.counts), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (f.counts == MAP_FAILED)
                return -errno;

        fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                *ret_why = "cannot open /dev/fuse";
                rmdir(f.mnt);
                rmdir(f.dir);
                munmap(f.counts, sizeof(*f.counts));
                return -EOPNOTSUPP;
        }
        snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=%u,group_id=%u,allow_other", fd, (unsigned) uid,
                 (unsigned) gid);
        if (mount("stall-fuse", f.mnt, "fuse", MS_NOSUID | MS_NODEV, opts) < 0) {
                *ret_why = "cannot mount a FUSE filesystem";
                close(fd);
                rmdir(f.mnt);
                rmdir(f.dir);
                munmap(f.counts, sizeof(*f.counts));
                return -EOPNOTSUPP;
        }
        if (pipe2(ready, O_CLOEXEC) < 0)
                return -errno;
        f.server = fork();
        if (f.server < 0)
                return -errno;
        if (f.server == 0) {
                close(ready[0]);
                close(ready[1]);
                serve(fd, uid, gid, f.counts);
        }
        close(fd);
        close(ready[1]);
        (void) !read(ready[0], &c, 1);
        close(ready[0]);
        *ret = f;
        return 0;
}

void stall_fuse_stop(struct stall_fuse *f) {
        if (f->server > 0) {
                kill(f->server, SIGKILL);
                waitpid(f->server, NULL, 0);
        }
        /* With its server gone, the connection is aborted: every waiting request fails. */
        (void) umount2(f->mnt, MNT_DETACH);
        rmdir(f->mnt);
        rmdir(f->dir);
        munmap(f->counts, sizeof(*f->counts));
}
