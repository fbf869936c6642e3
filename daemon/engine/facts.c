/* Per-file facts: opening a mapped file as its process sees it, reading its build ID and PT_LOADs off the serving thread, and adding them to a layout. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
#include <unistd.h>

#include "cleanup.h"
#include "elf-cache.h"
#include "elf-reader.h"
#include "facts.h"
#include "procmap-ioctl.h"
#include "vdso-cache.h"

static bool statx_matches(const struct statx *stx, const struct mapping *m) {
        return S_ISREG(stx->stx_mode) && stx->stx_ino == m->inode && stx->stx_dev_major == m->dev_major &&
               stx->stx_dev_minor == m->dev_minor;
}

static int statx_fd(int fd, struct statx *ret) {
        return statx(fd, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS | STATX_BTIME, ret) < 0
                       ? -errno
                       : 0;
}

/* open_in_root() without openat2: PATH walked from root one component at a time, as O_PATH
 * without following anything, and refused at the first symlink or "..". The kernel prints a
 * mapped file's path resolved (d_path), so a symlink on the way means the name no longer leads
 * where it led; refusing costs that file's facts only. */
static int open_in_root_walk(int root, const char *path, int *ret_fd) {
        _cleanup_close_ int dir = fcntl(root, F_DUPFD_CLOEXEC, 3);

        if (dir < 0)
                return -errno;
        for (const char *c = path;;) {
                char name[NAME_MAX + 1];
                struct stat st;
                size_t len;
                int fd;

                c += strspn(c, "/");
                len = strcspn(c, "/");
                if (len == 0)
                        break;
                if (len > NAME_MAX)
                        return -ENAMETOOLONG;
                memcpy(name, c, len);
                name[len] = 0;
                c += len;
                if (strcmp(name, "..") == 0)
                        return -EXDEV;
                fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                closep(&dir);
                dir = fd;
                if (fstat(dir, &st) < 0)
                        return -errno;
                if (S_ISLNK(st.st_mode))
                        return -ELOOP;
        }
        *ret_fd = TAKE_FD(dir);
        return 0;
}

/* Set once openat2 said ENOSYS: an old kernel, or a seccomp filter that does not know it
 * (systemd-nspawn 252 answers ENOSYS for it inside its containers, measured). */
static atomic_bool openat2_missing;

/* The target's owner chooses what PATH names: a symlink out of its root (to /etc/shadow), a
 * FIFO, a device. PATH is resolved inside the process's root as the process itself would
 * (RESOLVE_IN_ROOT: ".." and absolute symlinks stop at that root; no magic links), as O_PATH,
 * which opens nothing; ret_fd receives that fd. Without openat2, no symlink is followed at
 * all (open_in_root_walk()). -errno. */
static int open_in_root(const struct process *p, const char *path, int *ret_fd) {
        struct open_how how = {
                .flags = O_PATH | O_CLOEXEC,
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        _cleanup_close_ int root = -1;
        long fd;

        root = openat(p->proc_fd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return -errno;
        if (atomic_load(&openat2_missing))
                return open_in_root_walk(root, path, ret_fd);
        fd = syscall(SYS_openat2, root, path, &how, sizeof(how));
        if (fd < 0 && errno == ENOSYS) {
                atomic_store(&openat2_missing, true);
                return open_in_root_walk(root, path, ret_fd);
        }
        if (fd < 0)
                return -errno;
        *ret_fd = (int) fd;
        return 0;
}

/* Opens the file behind a mapping as the process sees it. map_files/ works for deleted
 * files and other mount namespaces but needs CAP_SYS_ADMIN; root/PATH is the fallback
 * for files still reachable under their name. Both are first opened as O_PATH (no open
 * reaches the file: a FIFO or a device is never opened) and checked to be the mapping's
 * regular file (device, inode), so a path that now names another file is refused; only then
 * is the file opened for reading (through the O_PATH fd, so nothing can be swapped in). */
int facts_open_mapped_file(const struct process *p, const struct mapping *m, struct statx *ret_stx) {
        _cleanup_close_ int path_fd = -1;
        char mf[64];
        struct statx stx;
        int fd, r;

        snprintf(mf, sizeof(mf), "map_files/%" PRIx64 "-%" PRIx64, m->start, m->end);
        path_fd = openat(p->proc_fd, mf, O_PATH | O_CLOEXEC);
        if (path_fd < 0) {
                r = -errno;
                if (m->kind != MAPPING_KIND_FILE || m->deleted || !m->name || m->name[0] != '/')
                        return r;
                r = open_in_root(p, m->name, &path_fd);
                if (r < 0)
                        return r;
        }
        r = statx_fd(path_fd, &stx);
        if (r < 0)
                return r;
        if (!statx_matches(&stx, m))
                return -ESTALE;

        snprintf(mf, sizeof(mf), "/proc/thread-self/fd/%d", path_fd);
        fd = open(mf, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        *ret_stx = stx;
        return fd;
}

/* Probes per file: a file may sit in any of the MEMO_PROBES slots from its home slot, so two
 * libraries whose keys meet in one slot do not evict each other on every mapping (each
 * eviction cost an open() of map_files/ and an fstat(): 7-10% of a large lookup). */
#define MEMO_PROBES 4

static size_t memo_home(uint32_t dev_major, uint32_t dev_minor, uint64_t inode) {
        uint64_t k = inode ^ ((uint64_t) dev_minor << 32) ^ ((uint64_t) dev_major << 52);

        /* Fibonacci hashing: the top bits of the product mix every bit of the key. */
        return (size_t) ((k * UINT64_C(0x9e3779b97f4a7c15)) >> 59) % FACTS_MEMO_SLOTS;
}

/* See facts.h: symbol reads are jobs too. */
int facts_job_copy_target(const struct process *p, const struct mapping *m, struct mapping *ret_m, int *ret_proc_fd) {
        *ret_m = (struct mapping) {
                .start = m->start, .end = m->end, .dev_major = m->dev_major, .dev_minor = m->dev_minor,
                .inode = m->inode, .kind = m->kind, .deleted = m->deleted,
        };
        if (m->name && !(ret_m->name = strdup(m->name)))
                return -ENOMEM;
        *ret_proc_fd = fcntl(p->proc_fd, F_DUPFD_CLOEXEC, 3);
        return *ret_proc_fd < 0 ? -errno : 0;
}

/* The reads of one file, which can block (a stalled FUSE or NFS mount): they own everything
 * they touch, since a reader whose caller stopped waiting goes on until its read returns. */
struct file_job {
        int proc_fd, maps_fd;           /* duplicates of the process's */
        struct mapping m;               /* the mapping's range and file; name owned */
        bool kernel_build_id, need_elf;
        bool resolve_only;              /* only whether m's name still names its file */
        struct elf_cache *cache;        /* a reference */
        struct layout_file out;         /* not reference-counted: the job's own */
};

static void file_job_free(void *data) {
        struct file_job *j = data;

        if (!j)
                return;
        closep(&j->proc_fd);
        closep(&j->maps_fd);
        mapping_done(&j->m);
        elf_cache_free(j->cache);
        free(j);
}

static void file_job_freep(struct file_job **j) {
        file_job_free(*j);
}

static void file_job_kernel_build_id(struct file_job *j) {
        _cleanup_(procmap_buf_done) struct procmap_buf buf = {};
        struct mapping km;

        if (procmap_query(j->maps_fd, j->m.start, PROCMAP_COVERING_OR_NEXT | PROCMAP_BUILD_ID, &buf, &km) < 0)
                return;
        /* The range may have been remapped meanwhile: only the same file's ID counts. */
        if (km.start == j->m.start && km.inode == j->m.inode && km.dev_major == j->m.dev_major &&
            km.dev_minor == j->m.dev_minor && km.build_id_len > 0 && km.build_id_len <= MAPPING_BUILD_ID_MAX) {
                memcpy(j->out.kernel_build_id, km.build_id, km.build_id_len);
                j->out.kernel_build_id_len = km.build_id_len;
        }
        mapping_done(&km);
}

static int file_job_run(void *data) {
        struct file_job *j = data;
        const struct process p = { .pid = 0, .pidfd = -1, .proc_fd = j->proc_fd, .maps_fd = j->maps_fd };
        struct layout_file *out = &j->out;
        _cleanup_close_ int fd = -1;
        struct elf_cache_key key;
        struct statx stx;
        int r;

        if (j->resolve_only) {
                _cleanup_close_ int path_fd = -1;

                out->result = open_in_root(&p, j->m.name, &path_fd);
                if (out->result >= 0)
                        out->result = statx_fd(path_fd, &stx);
                if (out->result >= 0 && !statx_matches(&stx, &j->m))
                        out->result = -ESTALE;
                return 0;
        }
        if (j->kernel_build_id)
                file_job_kernel_build_id(j);
        if (!j->need_elf && out->kernel_build_id_len > 0) {
                out->result = -ENODATA;
                return 0;
        }

        fd = facts_open_mapped_file(&p, &j->m, &stx);
        if (fd < 0) {
                out->result = fd;
                return 0;
        }
        elf_cache_key_from_statx(&stx, &key);
        out->key = key;
        out->owner = stx.stx_uid;
        out->mode = stx.stx_mode;
        out->has_key = true;
        r = 0;
        if (!elf_cache_get(j->cache, &key, &out->info)) {
                r = elf_info_from_fd(fd, &out->info);
                if (r == -ENOEXEC) {
                        out->info = (struct elf_info) {};
                        r = 0;
                }
                /* Failing to cache costs a re-read later, nothing else. */
                if (r >= 0)
                        (void) elf_cache_put(j->cache, &key, &out->info);
        }
        if (r >= 0)
                r = out->info.elf_class ? 0 : -ENOEXEC;
        out->result = r;
        return 0;
}

static int file_job_new(struct facts *f, const struct mapping *m, bool resolve_only, struct file_job **ret) {
        _cleanup_(file_job_freep) struct file_job *j = calloc(1, sizeof(*j));
        int r;

        if (!j)
                return -ENOMEM;
        j->proc_fd = j->maps_fd = -1;
        r = facts_job_copy_target(f->p, m, &j->m, &j->proc_fd);
        if (r < 0)
                return r;
        if (f->kernel_build_id && !resolve_only) {
                j->maps_fd = fcntl(f->p->maps_fd, F_DUPFD_CLOEXEC, 3);
                if (j->maps_fd < 0)
                        return -errno;
        }
        j->resolve_only = resolve_only;
        j->kernel_build_id = f->kernel_build_id;
        j->need_elf = f->need_elf;
        j->cache = elf_cache_ref(f->cfg->cache);
        *ret = TAKE_PTR(j);
        return 0;
}

/* The reads of m's file into *out, off the calling thread where the engine has a runner. A
 * read that did not answer within the request's budget leaves no facts (-ETIMEDOUT); a
 * runner at its quota, none (-EBUSY). */
static int read_file_facts(struct facts *f, const struct mapping *m, bool resolve_only, struct layout_file *out) {
        struct file_job *j = NULL;
        int r;

        r = file_job_new(f, m, resolve_only, &j);
        if (r < 0)
                return r;
        if (!f->cfg->run_blocking) {
                (void) file_job_run(j);
                r = 0;
        } else {
                if (!f->budget_set) {
                        f->budget_ms = f->cfg->budget_ms;
                        f->budget_set = true;
                }
                r = f->cfg->run_blocking(f->cfg->run_blocking_userdata, file_job_run, j, file_job_free, &f->budget_ms);
                if (r < 0) {
                        f->transient = true;
                        return r;       /* j belongs to the runner now */
                }
        }
        out->result = j->out.result;
        if (j->out.result >= 0) {
                out->info = j->out.info;
                out->key = j->out.key;
                out->owner = j->out.owner;
                out->mode = j->out.mode;
                out->has_key = j->out.has_key;
        }
        out->kernel_build_id_len = j->out.kernel_build_id_len;
        memcpy(out->kernel_build_id, j->out.kernel_build_id, j->out.kernel_build_id_len);
        file_job_free(j);
        return 0;
}

/* Whether name, looked up in the process's root, is m's file: a lookup that walks the
 * target's filesystems, so it runs as a file read (off the serving thread, bounded). */
static bool names_mapped_file(struct facts *f, const struct mapping *m, const char *name) {
        struct mapping as_named = *m;
        struct layout_file out = {};

        as_named.name = (char *) name;
        return read_file_facts(f, &as_named, true, &out) >= 0 && out.result >= 0;
}

/* The kernel appends " (deleted)" to unlinked files, but a file may really be called so:
 * if the full name still exists in the process's root as the mapped inode, it is. The lookup
 * walks the name through the target's filesystems, which can block: it runs as a file read. */
static void resolve_deleted(struct facts *f, struct mapping *m) {
        if (m->kind != MAPPING_KIND_FILE || !m->deleted || !m->name || m->name[0] != '/')
                return;
        if (names_mapped_file(f, m, m->name))
                m->deleted = false;
}

/* The maps text prints a newline in a path as "\012", and a literal "\012" as it is: a
 * file named "back\012slash" reads as "back<newline>slash". The ioctl tells them apart; a
 * source of names from the text alone cannot, so the engine looks, as for " (deleted)": if the
 * name as read is not the mapped inode in the process's root but the name with each newline
 * back as "\012" is, that is the name, returned in *ret_literal (else NULL). (A name mixing
 * both forms stays as read.) -ENOMEM only. */
static int resolve_escaped_newline(struct facts *f, const struct mapping *m, char **ret_literal) {
        _cleanup_free_ char *literal = NULL;
        size_t newlines = 0, len;
        char *q;

        *ret_literal = NULL;
        if (m->kind != MAPPING_KIND_FILE || m->deleted || !m->name || !strchr(m->name, '\n'))
                return 0;
        if (names_mapped_file(f, m, m->name))
                return 0;
        len = strlen(m->name);
        for (const char *c = m->name; *c; c++)
                newlines += *c == '\n';
        literal = malloc(len + 3 * newlines + 1);
        if (!literal)
                return -ENOMEM;
        q = literal;
        for (const char *c = m->name; *c; c++)
                if (*c == '\n')
                        q = stpcpy(q, "\\012");
                else
                        *q++ = *c;
        *q = 0;
        if (names_mapped_file(f, m, literal))
                *ret_literal = TAKE_PTR(literal);
        return 0;
}

/* What is read of every vdso to learn its build ID: its ELF header, program headers and notes
 * lie in its first page (kernels link it so). The kernel copies /proc/PID/mem a page at a time,
 * so the page costs one call where the three pieces would cost three. */
#define VDSO_HEAD_SIZE 4096

/* Reads exactly size bytes of the process's memory at address: 0, -ESRCH when the mm is gone
 * (nothing read: the process exited or exec'd), -EIO when short, or -errno. */
static int read_mem(int mem_fd, uint64_t address, uint8_t *buf, size_t size) {
        ssize_t n = RETRY_EINTR(pread(mem_fd, buf, size, (off_t) address));

        if (n < 0)
                return -errno;
        if (n == 0)
                return -ESRCH;
        return (size_t) n == size ? 0 : -EIO;
}

void facts_learn_own_vdso(const struct facts_config *cfg, const struct mapping *m) {
        struct elf_info info;
        size_t size = m->end - m->start;

        if (m->kind != MAPPING_KIND_VDSO || getauxval(AT_SYSINFO_EHDR) != m->start || m->end <= m->start ||
            size > VDSO_CACHE_IMAGE_MAX)
                return;
        if (elf_info_from_buffer((const void *) (uintptr_t) m->start, size, &info) >= 0 && info.build_id_len > 0)
                (void) vdso_cache_put(cfg->vdso_cache, &info, (const uint8_t *) (uintptr_t) m->start, size, true,
                                      geteuid());
}

/* No file holds the vdso, so it is read from the process's memory, through /proc/PID/mem
 * opened in the serving thread: under the client's credentials, with the kernel's ptrace check
 * a debugger reading it meets, on every call. Only the first page is read when the cache holds
 * the image with the build ID found there, for this size and for the process's owner (see
 * vdso-cache.h): the image is the same in every process of one kernel and ABI, so the facts and
 * the image served are the kernel's for that build ID, also where a debugger's breakpoints
 * changed the process's copy. On a miss the whole image is read, and kept when it carries the
 * build ID its head showed. */
int facts_read_vdso(const struct facts_config *cfg, const struct process *p, const struct mapping *m,
                    struct elf_info *ret_info, uint8_t **ret_image) {
        _cleanup_free_ uint8_t *image = NULL;
        _cleanup_close_ int fd = -1;
        uint64_t size = m->end - m->start;
        uint8_t head[VDSO_HEAD_SIZE];
        struct elf_info head_info, info = {};
        bool keep = false;
        uid_t owner = 0;
        int r;

        if (m->end <= m->start || size > VDSO_CACHE_IMAGE_MAX || m->start > INT64_MAX - size)
                return -EINVAL;
        fd = openat(p->proc_fd, "mem", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        r = read_mem(fd, m->start, head, MIN((size_t) size, sizeof(head)));
        if (r < 0)
                return r;
        if (elf_info_from_buffer(head, MIN((size_t) size, sizeof(head)), &head_info) >= 0 &&
            head_info.build_id_len > 0) {
                /* The daemon's own image first: it needs no owner, which costs a read. */
                r = vdso_cache_get(cfg->vdso_cache, head_info.build_id, head_info.build_id_len, size, NULL, ret_info,
                                   ret_image);
                if (r == 0 && process_read_uid(p, &owner) >= 0) {
                        r = vdso_cache_get(cfg->vdso_cache, head_info.build_id, head_info.build_id_len, size, &owner,
                                           ret_info, ret_image);
                        keep = r == 0;
                }
                if (r != 0)
                        return MIN(r, 0);
        }

        image = malloc(size);
        if (!image)
                return -ENOMEM;
        r = read_mem(fd, m->start, image, size);
        if (r < 0)
                return r;
        if (elf_info_from_buffer(image, size, &info) < 0)
                info = (struct elf_info) {};
        /* The process may have rewritten its vdso between the two reads: keep only what the
         * head named. */
        if (keep && info.build_id_len == head_info.build_id_len &&
            memcmp(info.build_id, head_info.build_id, info.build_id_len) == 0)
                (void) vdso_cache_put(cfg->vdso_cache, &info, image, size, false, owner);
        *ret_info = info;
        if (ret_image)
                *ret_image = TAKE_PTR(image);
        return 0;
}

void facts_done(struct facts *f) {
        if (f->table)
                for (size_t i = 0; i < FACTS_MEMO_SLOTS; i++)
                        layout_file_unref(f->table[i]);
        free(f->table);
        f->table = NULL;
        f->cur = layout_file_unref(f->cur);
        f->vdso = layout_file_unref(f->vdso);
}

/* m's slot in the table: the one holding its file, else a free one among its probes, else
 * its home slot (to be overwritten). */
static struct layout_file **memo_slot(struct layout_file **table, const struct mapping *m) {
        size_t home = memo_home(m->dev_major, m->dev_minor, m->inode);
        struct layout_file **free_slot = NULL;

        for (size_t i = 0; i < MEMO_PROBES; i++) {
                struct layout_file **x = &table[(home + i) % FACTS_MEMO_SLOTS];

                if (*x && layout_file_matches(*x, m))
                        return x;
                if (!*x && !free_slot)
                        free_slot = x;
        }
        return free_slot ? free_slot : &table[home];
}

/* The facts of m's file in f->cur (see its result), or -errno. */
static int file_facts(struct facts *f, const struct mapping *m) {
        struct layout_file **slot = NULL, *n = NULL;
        int r;

        if (f->cur && layout_file_matches(f->cur, m))
                return 0;

        /* Only requests that meet a second file pay for the table; the first file moves into it. */
        if (!f->table && f->cur) {
                f->table = calloc(FACTS_MEMO_SLOTS, sizeof(*f->table));
                if (f->table)
                        f->table[memo_home(f->cur->dev_major, f->cur->dev_minor, f->cur->inode)] =
                                layout_file_ref(f->cur);
        }
        if (f->table) {
                slot = memo_slot(f->table, m);
                if (*slot && layout_file_matches(*slot, m)) {
                        layout_file_unref(f->cur);
                        f->cur = layout_file_ref(*slot);
                        return 0;
                }
        }

        r = layout_file_new(m->dev_major, m->dev_minor, m->inode, &n);
        if (r < 0)
                return r;
        r = read_file_facts(f, m, false, n);
        if (r < 0)
                n->result = r;
        layout_file_unref(f->cur);
        f->cur = n;
        if (slot) {
                layout_file_unref(*slot);
                *slot = layout_file_ref(n);
        }
        return 0;
}

/* The ELF facts of the process's [vdso] m in f->vdso (see its result), or -errno. Once per
 * request. */
static int vdso_facts(struct facts *f, const struct mapping *m) {
        struct layout_file *v;
        int r;

        if (f->vdso)
                return 0;
        r = layout_file_new(0, 0, 0, &v);
        if (r < 0)
                return r;
        r = facts_read_vdso(f->cfg, f->p, m, &v->info, NULL);
        if (r >= 0 && !v->info.elf_class)
                r = -ENOEXEC;
        v->result = r;
        f->vdso = v;
        return 0;
}

int facts_finish(struct facts *f, struct layout *l, size_t i, bool build_ids, bool names_from_text) {
        struct mapping *m = &l->mappings.items[i];
        struct layout_file *file = NULL;
        const uint8_t *id;
        size_t id_len;
        int r;

        if (names_from_text) {
                _cleanup_free_ char *literal = NULL;

                r = resolve_escaped_newline(f, m, &literal);
                if (r < 0)
                        return r;
                if (literal) {
                        r = layout_set_name(l, i, literal);
                        if (r < 0)
                                return r;
                }
        }
        resolve_deleted(f, m);
        if (!build_ids && !f->need_elf)
                return 0;

        if (m->kind == MAPPING_KIND_VDSO) {
                if (vdso_facts(f, m) >= 0)
                        file = f->vdso;
        } else if (mapping_is_file_backed(m) && (f->need_elf || m->build_id_len == 0)) {
                if (file_facts(f, m) >= 0)
                        file = f->cur;
        }
        if (!file)
                return 0;
        if (build_ids && m->build_id_len == 0) {
                id = layout_file_build_id(file, &id_len);
                if (id_len > 0) {
                        r = layout_set_build_id(l, i, id, id_len);
                        if (r < 0)
                                return r;
                }
        }
        return f->need_elf ? layout_set_file(l, i, file) : 0;
}

struct layout_file *facts_file_of(struct facts *f, const struct mapping *m) {
        if (m->kind == MAPPING_KIND_VDSO)
                return vdso_facts(f, m) >= 0 ? f->vdso : NULL;
        if (mapping_is_file_backed(m))
                return file_facts(f, m) >= 0 ? f->cur : NULL;
        return NULL;
}

bool facts_result_stands(int result) {
        return result >= 0 || result == -ENOEXEC;
}

void facts_finish_lent(struct facts *f, struct mapping *m) {
        resolve_deleted(f, m);
}

/* An open of a mapped file for a client, on the runner: the job owns the fd until the
 * caller takes it, so an fd opened after the caller stopped waiting is closed with the job. */
struct open_job {
        int proc_fd;                    /* a duplicate of the process's */
        struct mapping m;               /* range and file; name owned */
        int fd;
        int result;                     /* the runner passes on only whether the job ran */
};

static void open_job_free(void *data) {
        struct open_job *j = data;

        if (!j)
                return;
        closep(&j->proc_fd);
        closep(&j->fd);
        mapping_done(&j->m);
        free(j);
}

static void open_job_freep(struct open_job **j) {
        open_job_free(*j);
}

static int open_job_open(struct open_job *j) {
        const struct process p = { .pid = 0, .pidfd = -1, .proc_fd = j->proc_fd, .maps_fd = -1 };
        struct statx stx;
        int fd, flags;

        fd = facts_open_mapped_file(&p, &j->m, &stx);
        if (fd < 0)
                return fd;
        /* Opened O_NONBLOCK so that no open waits; the client's reads should not see it. */
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        j->fd = fd;
        return 0;
}

static int open_job_run(void *data) {
        struct open_job *j = data;

        j->result = open_job_open(j);
        return 0;
}

int facts_open_mapping_file(const struct facts_config *cfg, const struct process *p, const struct mapping *m, int *ret_fd) {
        _cleanup_(open_job_freep) struct open_job *j = NULL;
        unsigned budget_ms = cfg->budget_ms;
        int r;

        if (!mapping_is_file_backed(m))
                return -EMEDIUMTYPE;
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->proc_fd = j->fd = -1;
        r = facts_job_copy_target(p, m, &j->m, &j->proc_fd);
        if (r < 0)
                return r;
        if (!cfg->run_blocking)
                (void) open_job_run(j);
        else {
                struct open_job *taken = TAKE_PTR(j);

                r = cfg->run_blocking(cfg->run_blocking_userdata, open_job_run, taken, open_job_free, &budget_ms);
                if (r < 0)
                        return r;       /* the job belongs to the runner now */
                j = taken;
        }
        if (j->result < 0)
                return j->result;
        *ret_fd = TAKE_FD(j->fd);
        return 0;
}

