/* The mapping engine: lists and looks up a process's mappings through PROCMAP_QUERY or /proc/PID/maps, adding build IDs and ELF virtual addresses. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/openat2.h>
#include <unistd.h>

#include "cleanup.h"
#include "elf-cache.h"
#include "elf-reader.h"
#include "engine.h"
#include "maps-parse.h"
#include "procmap-ioctl.h"
#include "vdso-cache.h"

struct engine {
        enum engine_backend backend;
        struct elf_cache *elf_cache;
        struct vdso_cache *vdso_cache;
        /* The gate area as this kernel shows it to 64-bit processes (x86-64 [vsyscall]). */
        bool have_gate;
        uint64_t gate_start, gate_end;
        uint32_t gate_flags;
        int (*run_blocking)(void *userdata, int (*fn)(void *data), void *data, void (*free_data)(void *data),
                            unsigned *budget_ms);
        void *run_blocking_userdata;
        unsigned blocking_budget_ms;
};

/* ELF facts for one file, remembered across the mappings of one request: a library's
 * mappings are adjacent, so the current entry saves most open() calls and cache lookups;
 * the table catches a file met again further on (the same library mapped twice, or many
 * libraries interleaved), where each miss cost an open() of map_files/ and an fstat(). */
struct elf_memo_entry {
        bool valid;
        uint32_t dev_major, dev_minor;
        uint64_t inode;
        int result;             /* 0, or -errno: no ELF facts for this file */
        struct elf_info info;
        uint8_t kernel_build_id_len;    /* the kernel's build ID, where asked for */
        uint8_t kernel_build_id[MAPPING_BUILD_ID_MAX];
};

#define ELF_MEMO_SLOTS 32

struct elf_memo {
        struct elf_memo_entry cur;
        struct elf_memo_entry *table;   /* ELF_MEMO_SLOTS, direct-mapped; allocated on demand */
        struct elf_memo_entry vdso;     /* the process's [vdso], read from its memory */
        /* What the request reads of each file: the kernel's build ID (listings with build IDs
         * on the ioctl backend) and the ELF facts (lookups; listings the kernel gave none). */
        bool kernel_build_id, need_elf;
        /* How long the request may still wait for blocking reads; set at the first one. */
        bool budget_set;
        unsigned budget_ms;
};

static void elf_memo_done(struct elf_memo *memo) {
        free(memo->table);
        memo->table = NULL;
}

static const char *const backend_names[_ENGINE_BACKEND_MAX] = {
        [ENGINE_BACKEND_AUTO] = "auto",
        [ENGINE_BACKEND_IOCTL] = "ioctl",
        [ENGINE_BACKEND_MAPS] = "maps",
};

const char *engine_backend_to_string(enum engine_backend b) {
        return (unsigned) b < _ENGINE_BACKEND_MAX ? backend_names[b] : NULL;
}

int engine_backend_from_string(const char *s, enum engine_backend *ret) {
        for (unsigned i = 0; i < _ENGINE_BACKEND_MAX; i++)
                if (s && strcmp(s, backend_names[i]) == 0) {
                        *ret = (enum engine_backend) i;
                        return 0;
                }
        return -EINVAL;
}

/* Seeds the vdso cache with the daemon's own vdso: the kernel's image for the daemon's ABI,
 * which no client can have written to, so it may answer for any process that carries its
 * build ID. Without it (no vdso, no build ID) every image is learned from processes. */
static void engine_learn_own_vdso(struct engine *e, const struct mapping *m) {
        struct elf_info info;
        size_t size = m->end - m->start;

        if (getauxval(AT_SYSINFO_EHDR) != m->start || m->end <= m->start || size > VDSO_CACHE_IMAGE_MAX)
                return;
        if (elf_info_from_buffer((const void *) (uintptr_t) m->start, size, &info) >= 0 && info.build_id_len > 0)
                (void) vdso_cache_put(e->vdso_cache, &info, (const uint8_t *) (uintptr_t) m->start, size, true,
                                      geteuid());
}

static void engine_learn_gate(struct engine *e, int self_maps_fd) {
        _cleanup_(mapping_list_done) struct mapping_list l = {};

        if (maps_read_fd(self_maps_fd, &l) < 0)
                return;
        for (size_t i = 0; i < l.n; i++)
                if (l.items[i].kind == MAPPING_KIND_VSYSCALL) {
                        e->have_gate = true;
                        e->gate_start = l.items[i].start;
                        e->gate_end = l.items[i].end;
                        e->gate_flags = l.items[i].flags;
                } else if (l.items[i].kind == MAPPING_KIND_VDSO)
                        engine_learn_own_vdso(e, &l.items[i]);
}

int engine_new(const struct engine_config *cfg, struct engine **ret) {
        _cleanup_close_ int fd = -1;
        struct engine *e;
        bool ioctl_ok;
        int r;

        if ((unsigned) cfg->backend >= _ENGINE_BACKEND_MAX)
                return -EINVAL;

        fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        ioctl_ok = procmap_supported(fd);
        if (cfg->backend == ENGINE_BACKEND_IOCTL && !ioctl_ok)
                return -EOPNOTSUPP;

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->backend = cfg->backend != ENGINE_BACKEND_AUTO ? cfg->backend
                     : ioctl_ok                          ? ENGINE_BACKEND_IOCTL
                                                         : ENGINE_BACKEND_MAPS;
        r = elf_cache_new(cfg->elf_cache_size ?: ENGINE_ELF_CACHE_DEFAULT, &e->elf_cache);
        if (r < 0) {
                free(e);
                return r;
        }
        r = vdso_cache_new(&e->vdso_cache);
        if (r < 0) {
                elf_cache_free(e->elf_cache);
                free(e);
                return r;
        }
        engine_learn_gate(e, fd);
        e->run_blocking = cfg->run_blocking;
        e->run_blocking_userdata = cfg->run_blocking_userdata;
        e->blocking_budget_ms = cfg->blocking_budget_ms ?: ENGINE_BLOCKING_BUDGET_MS_DEFAULT;

        *ret = e;
        return 0;
}

struct engine *engine_free(struct engine *e) {
        if (!e)
                return NULL;
        elf_cache_free(e->elf_cache);
        vdso_cache_free(e->vdso_cache);
        free(e);
        return NULL;
}

enum engine_backend engine_get_backend(const struct engine *e) {
        return e->backend;
}

void engine_get_elf_cache_stats(struct engine *e, struct elf_cache_stats *ret) {
        elf_cache_get_stats(e->elf_cache, ret);
}

void engine_get_vdso_cache_stats(struct engine *e, struct vdso_cache_stats *ret) {
        vdso_cache_get_stats(e->vdso_cache, ret);
}

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
static int open_mapped_file(const struct process *p, const struct mapping *m, struct statx *ret_stx) {
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

static bool memo_matches(const struct elf_memo_entry *x, const struct mapping *m) {
        return x->valid && x->inode == m->inode && x->dev_major == m->dev_major && x->dev_minor == m->dev_minor;
}

/* Probes per file: a file may sit in any of the MEMO_PROBES slots from its home slot, so two
 * libraries whose keys meet in one slot do not evict each other on every mapping (each
 * eviction cost an open() of map_files/ and an fstat(): 7-10% of a large lookup). */
#define MEMO_PROBES 4

static size_t memo_home(uint32_t dev_major, uint32_t dev_minor, uint64_t inode) {
        uint64_t k = inode ^ ((uint64_t) dev_minor << 32) ^ ((uint64_t) dev_major << 52);

        /* Fibonacci hashing: the top bits of the product mix every bit of the key. */
        return (size_t) ((k * UINT64_C(0x9e3779b97f4a7c15)) >> 59) % ELF_MEMO_SLOTS;
}

/* m's slot in the table: the one holding its file, else a free one among its probes, else
 * its home slot (to be overwritten). */
static struct elf_memo_entry *memo_slot(struct elf_memo_entry *table, const struct mapping *m) {
        size_t home = memo_home(m->dev_major, m->dev_minor, m->inode);
        struct elf_memo_entry *free_slot = NULL;

        for (size_t i = 0; i < MEMO_PROBES; i++) {
                struct elf_memo_entry *x = &table[(home + i) % ELF_MEMO_SLOTS];

                if (memo_matches(x, m))
                        return x;
                if (!x->valid && !free_slot)
                        free_slot = x;
        }
        return free_slot ? free_slot : &table[home];
}

/* What a job on the runner needs of its target, owned by the job (a reader whose caller
 * stopped waiting outlives the caller's process and mapping): m's range and file, with its
 * name, and p's /proc directory. -ENOMEM, -errno. */
static int job_copy_target(const struct process *p, const struct mapping *m, struct mapping *ret_m, int *ret_proc_fd) {
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
        struct elf_memo_entry out;
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
        struct elf_memo_entry *out = &j->out;
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

        fd = open_mapped_file(&p, &j->m, &stx);
        if (fd < 0) {
                out->result = fd;
                return 0;
        }
        elf_cache_key_from_statx(&stx, &key);
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

static int file_job_new(struct engine *e, const struct process *p, const struct mapping *m, const struct elf_memo *memo,
                        bool resolve_only, struct file_job **ret) {
        _cleanup_(file_job_freep) struct file_job *j = calloc(1, sizeof(*j));
        int r;

        if (!j)
                return -ENOMEM;
        j->proc_fd = j->maps_fd = -1;
        r = job_copy_target(p, m, &j->m, &j->proc_fd);
        if (r < 0)
                return r;
        if (memo->kernel_build_id && !resolve_only) {
                j->maps_fd = fcntl(p->maps_fd, F_DUPFD_CLOEXEC, 3);
                if (j->maps_fd < 0)
                        return -errno;
        }
        j->resolve_only = resolve_only;
        j->kernel_build_id = memo->kernel_build_id;
        j->need_elf = memo->need_elf;
        j->cache = elf_cache_ref(e->elf_cache);
        *ret = TAKE_PTR(j);
        return 0;
}

/* The reads of m's file into *out, off the calling thread where the engine has a runner. A
 * read that did not answer within the request's budget leaves no facts (-ETIMEDOUT); a
 * runner at its quota, none (-EBUSY). */
static int read_file_facts(struct engine *e, const struct process *p, const struct mapping *m, struct elf_memo *memo,
                           bool resolve_only, struct elf_memo_entry *out) {
        struct file_job *j = NULL;
        int r;

        r = file_job_new(e, p, m, memo, resolve_only, &j);
        if (r < 0)
                return r;
        if (!e->run_blocking) {
                (void) file_job_run(j);
                r = 0;
        } else {
                if (!memo->budget_set) {
                        memo->budget_ms = e->blocking_budget_ms;
                        memo->budget_set = true;
                }
                r = e->run_blocking(e->run_blocking_userdata, file_job_run, j, file_job_free, &memo->budget_ms);
                if (r < 0)
                        return r;       /* j belongs to the runner now */
        }
        out->result = j->out.result;
        out->info = j->out.info;
        out->kernel_build_id_len = j->out.kernel_build_id_len;
        memcpy(out->kernel_build_id, j->out.kernel_build_id, j->out.kernel_build_id_len);
        file_job_free(j);
        return 0;
}

/* The facts of m's file in memo->cur (0: see its result), or -errno. */
static int engine_file_facts(struct engine *e, const struct process *p, const struct mapping *m, struct elf_memo *memo) {
        struct elf_memo_entry *cur = &memo->cur, *slot = NULL;
        int r;

        if (memo_matches(cur, m))
                return 0;

        /* Only requests that meet a second file pay for the table (about 35 KiB); the first
         * file moves into it. */
        if (!memo->table && cur->valid) {
                memo->table = calloc(ELF_MEMO_SLOTS, sizeof(*memo->table));
                if (memo->table)
                        memo->table[memo_home(cur->dev_major, cur->dev_minor, cur->inode)] = *cur;
        }
        if (memo->table) {
                slot = memo_slot(memo->table, m);
                if (memo_matches(slot, m)) {
                        *cur = *slot;
                        return 0;
                }
        }

        *cur = (struct elf_memo_entry) {
                .valid = true, .inode = m->inode, .dev_major = m->dev_major, .dev_minor = m->dev_minor,
        };
        r = read_file_facts(e, p, m, memo, false, cur);
        if (r < 0)
                cur->result = r;
        if (slot)
                *slot = *cur;
        return 0;
}

/* The ELF facts of m's file in memo->cur (0), or -errno. */
static int engine_elf_info(struct engine *e, const struct process *p, const struct mapping *m, struct elf_memo *memo) {
        int r = engine_file_facts(e, p, m, memo);

        return r < 0 ? r : memo->cur.result;
}

/* Whether name, looked up in the process's root, is m's file: a lookup that walks the
 * target's filesystems, so it runs as a file read (off the serving thread, bounded). */
static bool names_mapped_file(struct engine *e, const struct process *p, const struct mapping *m, char *name,
                              struct elf_memo *memo) {
        struct mapping as_named = *m;
        struct elf_memo_entry out = {};

        as_named.name = name;
        return read_file_facts(e, p, &as_named, memo, true, &out) >= 0 && out.result >= 0;
}

/* The kernel appends " (deleted)" to unlinked files, but a file may really be called so:
 * if the full name still exists in the process's root as the mapped inode, it is. The lookup
 * walks the name through the target's filesystems, which can block: it runs as a file read. */
static void resolve_deleted(struct engine *e, const struct process *p, struct mapping *m, struct elf_memo *memo) {
        if (m->kind != MAPPING_KIND_FILE || !m->deleted || !m->name || m->name[0] != '/')
                return;
        if (names_mapped_file(e, p, m, m->name, memo))
                m->deleted = false;
}

/* The maps text prints a newline in a path as "\012", and a literal "\012" as it is: a
 * file named "back\012slash" reads as "back<newline>slash". The ioctl tells them apart; the
 * maps backend looks, as for " (deleted)": if the name as read is not the mapped inode in the
 * process's root but the name with each newline back as "\012" is, that is the name.
 * (A name mixing both forms stays as read.) m must own its name. -ENOMEM only. */
static int resolve_escaped_newline(struct engine *e, const struct process *p, struct mapping *m, struct elf_memo *memo) {
        _cleanup_free_ char *literal = NULL;
        size_t newlines = 0, len;
        char *q;

        if (m->kind != MAPPING_KIND_FILE || m->deleted || !m->name || !strchr(m->name, '\n'))
                return 0;
        if (names_mapped_file(e, p, m, m->name, memo))
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
        if (names_mapped_file(e, p, m, literal, memo)) {
                free(m->name);
                m->name = TAKE_PTR(literal);
        }
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

/* The ELF facts of the process's [vdso] m (elf_class 0 when its image is no ELF file), and with
 * ret_image its image (malloc'd, m->end - m->start bytes); or -errno. No file holds it, so it is
 * read from the process's memory, through /proc/PID/mem opened in the serving thread: under
 * the client's credentials, with the kernel's ptrace check a debugger reading it meets, on
 * every call. Only the first page is read when the cache holds the image with the build ID
 * found there, for this size and for the process's owner (see vdso-cache.h): the image is the
 * same in every process of one kernel and ABI, so the facts and the image served are the
 * kernel's for that build ID, also where a debugger's breakpoints changed the process's copy.
 * On a miss the whole image is read, and kept when it carries the build ID its head showed. */
static int read_vdso(struct engine *e, const struct process *p, const struct mapping *m, struct elf_info *ret_info,
                     uint8_t **ret_image) {
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
                r = vdso_cache_get(e->vdso_cache, head_info.build_id, head_info.build_id_len, size, NULL, ret_info,
                                   ret_image);
                if (r == 0 && process_read_uid(p, &owner) >= 0) {
                        r = vdso_cache_get(e->vdso_cache, head_info.build_id, head_info.build_id_len, size, &owner,
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
                (void) vdso_cache_put(e->vdso_cache, &info, image, size, false, owner);
        *ret_info = info;
        if (ret_image)
                *ret_image = TAKE_PTR(image);
        return 0;
}

/* The ELF facts of the process's [vdso] m in memo->vdso (0), or -errno. Once per request. */
static int vdso_elf_info(struct engine *e, const struct process *p, const struct mapping *m,
                         struct elf_memo *memo) {
        struct elf_memo_entry *v = &memo->vdso;
        int r;

        if (v->valid)
                return v->result;
        *v = (struct elf_memo_entry) { .valid = true };
        r = read_vdso(e, p, m, &v->info, NULL);
        if (r >= 0 && !v->info.elf_class)
                r = -ENOEXEC;
        return v->result = r;
}

int engine_vdso(struct engine *e, const struct process *p, struct mapping *ret_mapping, uint8_t **ret_image) {
        _cleanup_(mapping_list_done) struct mapping_list l = {};
        _cleanup_free_ uint8_t *image = NULL;
        struct elf_info info;
        struct mapping m;
        int r;

        r = engine_list(e, p, 0, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n; i++) {
                if (l.items[i].kind != MAPPING_KIND_VDSO)
                        continue;
                r = read_vdso(e, p, &l.items[i], &info, &image);
                if (r < 0)
                        return r;
                m = l.items[i];
                l.items[i] = (struct mapping) {};
                if (info.build_id_len > 0) {
                        r = mapping_set_build_id(&m, info.build_id, info.build_id_len);
                        if (r < 0) {
                                mapping_done(&m);
                                return r;
                        }
                }
                *ret_mapping = m;
                *ret_image = TAKE_PTR(image);
                return 0;
        }
        return -ENOENT;
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

        fd = open_mapped_file(&p, &j->m, &stx);
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

int engine_open_mapping_file(struct engine *e, const struct process *p, const struct mapping *m, int *ret_fd) {
        _cleanup_(open_job_freep) struct open_job *j = NULL;
        unsigned budget_ms = e->blocking_budget_ms;
        int r;

        if (!mapping_is_file_backed(m))
                return -EMEDIUMTYPE;
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->proc_fd = j->fd = -1;
        r = job_copy_target(p, m, &j->m, &j->proc_fd);
        if (r < 0)
                return r;
        if (!e->run_blocking)
                (void) open_job_run(j);
        else {
                struct open_job *taken = TAKE_PTR(j);

                r = e->run_blocking(e->run_blocking_userdata, open_job_run, taken, open_job_free, &budget_ms);
                if (r < 0)
                        return r;       /* the job belongs to the runner now */
                j = taken;
        }
        if (j->result < 0)
                return j->result;
        *ret_fd = TAKE_FD(j->fd);
        return 0;
}

/* Everything both backends add to a raw mapping. -ENOMEM only. */
static int finish_mapping(struct engine *e, const struct process *p, struct mapping *m, unsigned flags,
                          struct elf_memo *memo) {
        int r;

        /* Only the maps backend reads names from the text alone (and owns them here). */
        if (e->backend == ENGINE_BACKEND_MAPS) {
                r = resolve_escaped_newline(e, p, m, memo);
                if (r < 0)
                        return r;
        }
        resolve_deleted(e, p, m, memo);
        if (!(flags & ENGINE_BUILD_IDS))
                return mapping_set_build_id(m, NULL, 0);
        if (m->build_id_len > 0)
                return 0;
        if (m->kind == MAPPING_KIND_VDSO)
                return vdso_elf_info(e, p, m, memo) >= 0 && memo->vdso.info.build_id_len > 0
                               ? mapping_set_build_id(m, memo->vdso.info.build_id, memo->vdso.info.build_id_len)
                               : 0;
        if (!mapping_is_file_backed(m) || engine_file_facts(e, p, m, memo) < 0)
                return 0;
        if (memo->cur.kernel_build_id_len > 0)
                return mapping_set_build_id(m, memo->cur.kernel_build_id, memo->cur.kernel_build_id_len);
        if (memo->cur.result >= 0 && memo->cur.info.build_id_len > 0)
                return mapping_set_build_id(m, memo->cur.info.build_id, memo->cur.info.build_id_len);
        return 0;
}

static bool filter_matches(const struct mapping *m, unsigned flags) {
        if ((flags & ENGINE_EXECUTABLE_ONLY) && !(m->flags & MAPPING_EXEC))
                return false;
        if ((flags & ENGINE_FILE_BACKED_ONLY) && !mapping_is_file_backed(m))
                return false;
        return true;
}

static int gate_mapping(const struct engine *e, struct mapping *ret) {
        char *name = strdup("[vsyscall]");

        if (!name)
                return -ENOMEM;
        *ret = (struct mapping) {
                .start = e->gate_start,
                .end = e->gate_end,
                .flags = e->gate_flags,
                .name = name,
        };
        mapping_classify_name(ret);
        return 0;
}

/* Only 64-bit processes have the x86-64 gate area; they always have mappings above 4 GiB,
 * which 32-bit ones never do. */
static int process_is_64bit(const struct process *p) {
        _cleanup_(procmap_buf_done) struct procmap_buf buf = {};
        struct mapping m;
        int r;

        r = procmap_query(p->maps_fd, UINT64_C(1) << 32, PROCMAP_COVERING_OR_NEXT, &buf, &m);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        mapping_done(&m);
        return 1;
}

/* Whether the gate area belongs after a listing of a process whose last mapping ends at
 * last_end: 64-bit processes (mappings above 4 GiB) on kernels that have one. */
static bool gate_follows(const struct engine *e, uint64_t last_end) {
        return e->have_gate && last_end > (UINT64_C(1) << 32) && last_end <= e->gate_start;
}

/* The maps backend's read of an empty list. The text of an mm that is gone reads as empty, not
 * as an error: a maps fd opened just before an exec names the old mm. Then this says -ESRCH, as
 * the ioctl does, and the caller may open the process afresh. */
static int read_maps_text(const struct process *p, struct mapping_list *ret) {
        int r;

        r = maps_read_fd(p->maps_fd, ret);
        if (r < 0)
                return r;
        if (ret->n == 0 && process_maps_stale(p) > 0)
                return -ESRCH;
        return 0;
}

static int read_all(struct engine *e, const struct process *p, unsigned flags, struct mapping_list *ret) {
        unsigned q = 0;
        int r;

        if (e->backend == ENGINE_BACKEND_MAPS)
                return read_maps_text(p, ret);

        if (flags & ENGINE_EXECUTABLE_ONLY)
                q |= PROCMAP_EXECUTABLE;
        if (flags & ENGINE_FILE_BACKED_ONLY)
                q |= PROCMAP_FILE_BACKED;
        /* Build IDs are read per file, off this thread (engine_file_facts()): the kernel's
         * read of a file's first page can block for as long as its filesystem likes. */
        r = procmap_list(p->maps_fd, q, ret);
        if (r < 0)
                return r;

        if (ret->n > 0 && gate_follows(e, ret->items[ret->n - 1].end)) {
                struct mapping g;

                r = gate_mapping(e, &g);
                if (r < 0)
                        return r;
                r = mapping_list_push(ret, &g);
                if (r < 0) {
                        mapping_done(&g);
                        return r;
                }
        }
        return 0;
}

/* A listing streamed from the maps text (see engine_list_each()). */
struct text_listing {
        struct engine *e;
        const struct process *p;
        struct elf_memo memo;
        mapping_visit_t visit;
        void *userdata;
        uint64_t last_end;
};

static int text_listing_visit(struct mapping *m, void *userdata) {
        struct text_listing *t = userdata;

        /* Without build IDs this only resolves " (deleted)": m stays lent. */
        (void) finish_mapping(t->e, t->p, m, 0, &t->memo);
        t->last_end = m->end;
        return t->visit(m, t->userdata);
}

static int list_each_text(struct engine *e, const struct process *p, mapping_visit_t visit, void *userdata) {
        struct text_listing t = { .e = e, .p = p, .visit = visit, .userdata = userdata };
        int r;

        /* Unfiltered without build IDs, the text gives the same list at a fraction of the cost
         * of one ioctl per VMA (60,000 VMAs: 12 ms of reading against 30 ms); the ioctl then
         * only adds what the text lacks. Filters run in the kernel, and build IDs need a query
         * per file VMA anyway: those stay with the ioctl. */
        r = procmap_list_text_each(p->maps_fd, text_listing_visit, &t);
        elf_memo_done(&t.memo);
        if (r < 0)
                return r;
        if (gate_follows(e, t.last_end)) {
                struct mapping g;

                r = gate_mapping(e, &g);
                if (r < 0)
                        return r;
                r = visit(&g, userdata);
                mapping_done(&g);
                if (r < 0)
                        return r;
        }

        /* A process that exited mid-read leaves a truncated listing: never report that. */
        return process_check_alive(p);
}

int engine_list(struct engine *e, const struct process *p, unsigned flags, struct mapping_list *ret) {
        _cleanup_(mapping_list_done) struct mapping_list all = {};
        _cleanup_(elf_memo_done) struct elf_memo memo = {
                .kernel_build_id = e->backend == ENGINE_BACKEND_IOCTL && (flags & ENGINE_BUILD_IDS),
        };
        size_t w = 0;
        int r;

        /* No address space: the ioctl would say ESRCH, the text nothing. Both say nothing. */
        if (p->kernel_thread)
                goto done;
        if (e->backend == ENGINE_BACKEND_IOCTL && flags == 0) {
                r = list_each_text(e, p, mapping_list_push_visit, &all);
                if (r < 0)
                        return r;
                goto done;
        }

        r = read_all(e, p, flags, &all);
        if (r < 0)
                return r;

        /* Filtered in place: a second list of 60,000 mappings was 8 MB of fresh pages. */
        for (size_t i = 0; i < all.n; i++) {
                struct mapping *m = &all.items[i];

                if (!filter_matches(m, flags)) {
                        mapping_done(m);
                        continue;
                }
                r = finish_mapping(e, p, m, flags, &memo);
                if (r < 0)
                        return r;
                /* The slot moved from is overwritten later or left beyond all.n. */
                if (w != i)
                        all.items[w] = *m;
                w++;
        }
        all.n = w;

        /* A process that exited mid-read leaves a truncated listing: never report that. */
        r = process_check_alive(p);
        if (r < 0)
                return r;
done:
        *ret = all;
        all = (struct mapping_list) {};
        return 0;
}

int engine_list_each(struct engine *e, const struct process *p, unsigned flags, mapping_visit_t visit,
                     void *userdata) {
        _cleanup_(mapping_list_done) struct mapping_list l = {};
        int r;

        if (p->kernel_thread)
                return 0;
        if (e->backend == ENGINE_BACKEND_IOCTL && flags == 0)
                return list_each_text(e, p, visit, userdata);

        r = engine_list(e, p, flags, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n; i++) {
                r = visit(&l.items[i], userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

struct addr_index {
        uint64_t addr;
        size_t index;
};

/* The indices of addrs in address order (stable). An LSD radix sort of (address, index)
 * pairs by bytes, skipping the bytes no two addresses differ in (user addresses share their
 * top bytes): a merge sort, branching on every comparison of random addresses, was 17% of a
 * 4,435-address lookup's CPU time, and qsort() before it 12%. */
static size_t *sorted_order(const uint64_t *addrs, size_t n) {
        _cleanup_free_ struct addr_index *a = NULL, *b = NULL;
        size_t *idx = malloc(MAX(n, (size_t) 1) * sizeof(size_t));
        uint64_t differ = 0;
        bool sorted = true;

        if (!idx)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                idx[i] = i;
                differ |= addrs[i] ^ addrs[0];
                if (i > 0 && addrs[i - 1] > addrs[i])
                        sorted = false;
        }
        if (sorted)
                return idx;

        a = malloc(n * sizeof(*a));
        b = malloc(n * sizeof(*b));
        if (!a || !b) {
                free(idx);
                return NULL;
        }
        for (size_t i = 0; i < n; i++)
                a[i] = (struct addr_index) { addrs[i], i };
        for (unsigned shift = 0; shift < 64; shift += 8) {
                size_t count[256] = {}, pos = 0;
                struct addr_index *t;

                if (((differ >> shift) & 0xff) == 0)
                        continue;
                for (size_t i = 0; i < n; i++)
                        count[(a[i].addr >> shift) & 0xff]++;
                for (unsigned d = 0; d < 256; d++) {
                        size_t c = count[d];

                        count[d] = pos;
                        pos += c;
                }
                for (size_t i = 0; i < n; i++)
                        b[count[(a[i].addr >> shift) & 0xff]++] = a[i];
                t = a;
                a = b;
                b = t;
        }
        for (size_t i = 0; i < n; i++)
                idx[i] = a[i].index;
        return idx;
}

/* Where the next mapping comes from: either the full text listing (maps backend) or one
 * ioctl per distinct VMA. */
struct cursor {
        struct engine *e;
        const struct process *p;
        unsigned flags;
        struct procmap_buf buf;
        struct mapping_list all;    /* maps backend: the whole listing */
        ssize_t *all_to_out;        /* maps backend: index in the output, or -1 */
        int is_64bit;               /* -1: not known yet */
        /* ioctl backend: the VMA last returned, and the lowest address since which we know
         * nothing is mapped below cur.start. */
        bool have_cur;
        struct mapping cur;
        ssize_t cur_out;
        uint64_t gap_from;
        bool none_above;            /* no VMA at or above gap_from */
        uint64_t none_from;
        ssize_t gate_out;
};

static void cursor_done(struct cursor *c) {
        procmap_buf_done(&c->buf);
        mapping_list_done(&c->all);
        free(c->all_to_out);
        mapping_done(&c->cur);
}

static int push_out(struct cursor *c, struct mapping *m, struct mapping_list *out, struct elf_memo *memo,
                    ssize_t *ret_index) {
        int r;

        r = finish_mapping(c->e, c->p, m, c->flags, memo);
        if (r < 0)
                return r;
        r = mapping_list_push(out, m);
        if (r < 0)
                return r;
        *ret_index = (ssize_t) out->n - 1;
        return 0;
}

/* Finds the mapping covering addr; addresses come in ascending order. Returns the output
 * index (>= 0), -1 for unmapped, or -errno. */
static ssize_t cursor_find(struct cursor *c, uint64_t addr, struct mapping_list *out, struct elf_memo *memo) {
        struct mapping m;
        ssize_t idx;
        int r;

        if (c->e->have_gate && addr >= c->e->gate_start && addr < c->e->gate_end &&
            c->e->backend == ENGINE_BACKEND_IOCTL) {
                if (c->gate_out >= 0)
                        return c->gate_out;
                if (c->is_64bit < 0) {
                        r = process_is_64bit(c->p);
                        if (r < 0)
                                return r;
                        c->is_64bit = r;
                }
                if (!c->is_64bit)
                        return -1;
                r = gate_mapping(c->e, &m);
                if (r < 0)
                        return r;
                r = push_out(c, &m, out, memo, &c->gate_out);
                if (r < 0) {
                        mapping_done(&m);
                        return r;
                }
                return c->gate_out;
        }

        if (c->e->backend == ENGINE_BACKEND_MAPS) {
                ssize_t i = mapping_list_find(&c->all, addr);

                if (i < 0)
                        return -1;
                if (c->all_to_out[i] < 0) {
                        /* The name moves to the output; the range stays for the binary search. */
                        struct mapping moved = c->all.items[i];

                        c->all.items[i].name = NULL;
                        c->all.items[i].build_id = NULL;
                        c->all.items[i].build_id_len = 0;
                        r = push_out(c, &moved, out, memo, &idx);
                        if (r < 0) {
                                mapping_done(&moved);
                                return r;
                        }
                        c->all_to_out[i] = idx;
                }
                return c->all_to_out[i];
        }

        if (c->have_cur && addr >= c->cur.start && addr < c->cur.end)
                goto hit;
        if (c->have_cur && addr >= c->gap_from && addr < c->cur.start)
                return -1;
        if (c->none_above && addr >= c->none_from)
                return -1;

        r = procmap_query(c->p->maps_fd, addr, PROCMAP_COVERING_OR_NEXT, &c->buf, &m);
        if (r == -ENOENT) {
                c->none_above = true;
                c->none_from = addr;
                return -1;
        }
        if (r < 0)
                return r;
        mapping_done(&c->cur);
        c->cur = m;
        c->have_cur = true;
        c->cur_out = -1;
        c->gap_from = addr;
        if (addr < c->cur.start)
                return -1;
hit:
        if (c->cur_out < 0) {
                /* The output takes what cur owns (a copy was a malloc() per mapping); cur keeps
                 * its range for the next addresses. */
                struct mapping moved = c->cur;

                c->cur.name = NULL;
                c->cur.build_id = NULL;
                c->cur.build_id_len = 0;
                r = push_out(c, &moved, out, memo, &c->cur_out);
                if (r < 0) {
                        mapping_done(&moved);
                        return r;
                }
        }
        return c->cur_out;
}

int engine_lookup(struct engine *e, const struct process *p, const uint64_t *addrs, size_t n, unsigned flags,
                  struct mapping_list *ret_mappings, struct engine_result **ret_results) {
        _cleanup_(mapping_list_done) struct mapping_list out = {};
        _cleanup_(cursor_done) struct cursor c = {
                .e = e, .p = p, .flags = flags & ENGINE_BUILD_IDS, .is_64bit = -1, .cur_out = -1, .gate_out = -1,
        };
        _cleanup_(freep) struct engine_result *results = NULL;
        _cleanup_free_ size_t *order = NULL;
        /* The ELF facts give both the addresses and the build ID. */
        _cleanup_(elf_memo_done) struct elf_memo memo = { .need_elf = true };
        int r;

        results = calloc(MAX(n, (size_t) 1), sizeof(*results));
        order = sorted_order(addrs, n);
        if (!results || !order)
                return -ENOMEM;

        /* A kernel thread maps nothing: every address is unmapped. */
        for (size_t i = 0; i < n; i++)
                results[i].mapping = -1;
        if (p->kernel_thread)
                n = 0;
        if (e->backend == ENGINE_BACKEND_MAPS && n > 0) {
                r = read_maps_text(p, &c.all);
                if (r < 0)
                        return r;
                c.all_to_out = malloc(MAX(c.all.n, (size_t) 1) * sizeof(ssize_t));
                if (!c.all_to_out)
                        return -ENOMEM;
                for (size_t i = 0; i < c.all.n; i++)
                        c.all_to_out[i] = -1;
        }

        for (size_t k = 0; k < n; k++) {
                size_t i = order[k];
                uint64_t a = addrs[i];
                struct engine_result *res = &results[i];
                const struct mapping *m;
                ssize_t idx;

                idx = cursor_find(&c, a, &out, &memo);
                if (idx < -1)
                        return (int) idx;
                res->mapping = idx;
                if (idx < 0)
                        continue;

                m = &out.items[idx];
                /* The vdso's image starts at its start (offset 0): an ELF address, no file. */
                if (m->kind == MAPPING_KIND_VDSO && vdso_elf_info(e, p, m, &memo) >= 0 &&
                    elf_info_vaddr(&memo.vdso.info, a - m->start, &res->elf_vaddr) >= 0)
                        res->has_elf_vaddr = true;
                if (!mapping_is_file_backed(m))
                        continue;
                res->has_file_offset = !__builtin_add_overflow(a - m->start, m->offset, &res->file_offset);
                if (res->has_file_offset && engine_elf_info(e, p, m, &memo) >= 0 &&
                    elf_info_vaddr(&memo.cur.info, res->file_offset, &res->elf_vaddr) >= 0)
                        res->has_elf_vaddr = true;
        }

        r = process_check_alive(p);
        if (r < 0)
                return r;

        *ret_mappings = out;
        out = (struct mapping_list) {};
        *ret_results = TAKE_PTR(results);
        return 0;
}
