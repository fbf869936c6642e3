/* BPF programs that capture a process's executable file mappings after exec, after each syscall that can add or remove one, and at exit. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "exec-maps.h"
#include "ring-wake.bpf.h"

/* The tracepoints' BTF is a GPL-only fact of the kernel. */
/* The records' ring buffer. A process's whole set is told (a walk of all its mappings, a
 * record as large as they are many) only while it is at most half full: under a flood that
 * fills it, changes are told as their ranges, which the daemon takes right all the same. */
#define RECORDS_RING_BYTES (4 * 1024 * 1024)

char LICENSE[] SEC("license") = "GPL";

/* include/linux/sched.h and include/linux/mm.h: #defines, so not in vmlinux.h. */
#define PF_KTHREAD_FLAG 0x00200000
#define VM_READ_FLAG 0x1
#define VM_WRITE_FLAG 0x2
#define VM_EXEC_FLAG 0x4
/* VM_MAYSHARE, not VM_SHARED: a shared mapping of a file opened read-only loses VM_SHARED, and
 * /proc/PID/maps prints 's' from VM_MAYSHARE. */
#define VM_MAYSHARE_FLAG 0x80
#define PAGE_SHIFT_X86 12
#define MAP_FIXED_FLAG 0x10
#define MAP_FIXED_NOREPLACE_FLAG 0x100000
#define MREMAP_FIXED_FLAG 0x2

/* x86-64 syscall numbers. */
#define NR_MMAP 9
#define NR_MPROTECT 10
#define NR_MUNMAP 11
#define NR_MREMAP 25
#define NR_PKEY_MPROTECT 329
/* ia32 ones (arch/x86/entry/syscalls/syscall_32.tbl), for a syscall made in compat mode. */
#define NR32_OLD_MMAP 90
#define NR32_MUNMAP 91
#define NR32_MPROTECT 125
#define NR32_MREMAP 163
#define NR32_MMAP2 192
#define NR32_PKEY_MPROTECT 380
/* arch/x86/include/asm/thread_info.h: thread_info.status while a 32-bit syscall runs (set at
 * its entry, cleared after the exit work that runs sys_exit), whether the process is a 32-bit
 * program or a 64-bit one using int $0x80. */
#define TS_COMPAT_FLAG 0x0002
/* include/uapi/linux/personality.h and mman.h. */
#define READ_IMPLIES_EXEC_FLAG 0x0400000
#define PROT_READ_FLAG 0x1
#define PROT_EXEC_FLAG 0x4
/* Intervals a process's hint holds (below). */
#define HINT_SLOTS 16

/* Path components walked up to the root: a deeper path is cut. */
#define PATH_DEPTH 32

/* bpftool 7.1 writes no kfunc prototypes into vmlinux.h. */
extern int bpf_iter_task_vma_new(struct bpf_iter_task_vma *it, struct task_struct *task, __u64 addr) __ksym;
extern struct vm_area_struct *bpf_iter_task_vma_next(struct bpf_iter_task_vma *it) __ksym;
extern void bpf_iter_task_vma_destroy(struct bpf_iter_task_vma *it) __ksym;

/* What identifies a file's content for the facts cache: a rewrite changes the change time (and
 * mostly the size), a reuse of the inode the generation and the change time. */
struct file_key {
        __u64 ino;
        __u64 ctime_ns;
        __u64 size;
        __u32 dev;
        __u32 generation;
};

#define FAILED_KEYS 8

/* A record is built here, not on the 512-byte stack; buf holds a path built backwards, facts the
 * file facts being read. */
struct scratch {
        /* Off the stacks (the deepest chain of calls must stay within 512 bytes): */
        __u8 eh[64];                    /* an ELF header read (EH_SIZE) */
        /* Files whose facts the current capture could not read: not tried again in it (a
         * forked child has none of its file pages present, and each failed read is a fault). */
        struct file_key failed[FAILED_KEYS];
        __u32 n_failed;
        struct exec_maps_record rec;
        char buf[512];
        struct exec_maps_facts facts;
        struct file_key key;            /* the file whose facts were read */
};

/* The facts of files read once (flags 0: read, nothing to claim: not an ELF file of ours). Least
 * recently used go first: a file mapped again is read again from its offset-0 mapping. */
struct {
        __uint(type, BPF_MAP_TYPE_LRU_HASH);
        __type(key, struct file_key);
        __type(value, struct exec_maps_facts);
        __uint(max_entries, 4096);
} file_facts SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __type(key, __u32);
        __type(value, struct scratch);
        __uint(max_entries, 1);
} scratch SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_RINGBUF);
        __uint(max_entries, RECORDS_RING_BYTES);
} records SEC(".maps");

/* The processes whose records were lost (exec-maps.h). */
struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __type(key, __u32);
        __type(value, struct exec_maps_lost);
        __uint(max_entries, EXEC_MAPS_LOST_MAX);
} lost_processes SEC(".maps");

/* Records the ring buffer had no room for: what the daemon keeps is then incomplete. */
__u64 lost_records = 0;
/* Lost records whose process could not be told in lost_processes: the daemon forgets all. */
__u64 lost_unknown = 0;
/* Records sent. */
__u64 records_emitted = 0;
/* Set by the daemon (exec_maps_capture_set_wake_delay()); see ring-wake.bpf.h. */
__u64 wake_delay_ns = 0;
__u64 last_wake_ns = 0;
/* Captures that found the address space's lock taken (the iterator only tries it). */
__u64 unread_records = 0;
/* Files whose facts were read from a process's memory (cached), and reads that failed (a page
 * not present, the file changed meanwhile: nothing cached, tried again at the next capture). */
__u64 facts_read = 0;
__u64 facts_failed = 0;

/* Changes not captured: they could change nothing the daemon was told (the hint below). */
__u64 skipped_records = 0;

/* Where a process (since its exec) may have had an executable file mapping: a superset of every
 * one a record told, so that a change in a range outside it that cannot make one (munmap,
 * mprotect without exec, a mapping without exec) changes nothing the daemon knows and is not
 * captured (ld.so makes 8 of those for each library it loads). Intervals only grow (merged with
 * the nearest when the slots are full) until the next exec. A range that can add a mapping is
 * added before its capture iterates: a change elsewhere that removes what that capture finds
 * comes after the iteration (it holds the mmap lock for reading), so it sees the range.
 * On the thread group's leader; none for a process forked and not exec'd since, one that exec'd
 * before the daemon started, or one whose capture was lost or could not read its mappings: its
 * next change is told as its whole set, and leaves one interval over everything (nothing is
 * skipped, but the daemon knows the whole set from there). */
struct exec_hint {
        struct bpf_spin_lock lock;
        __u32 n;
        __u64 lo[HINT_SLOTS], hi[HINT_SLOTS];
};

struct {
        __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
        __uint(map_flags, BPF_F_NO_PREALLOC);
        __type(key, int);
        __type(value, struct exec_hint);
} hints SEC(".maps");

static __always_inline struct scratch *scratch_get(void) {
        __u32 zero = 0;

        return bpf_map_lookup_elem(&scratch, &zero);
}

/* One step of the walk up from a file to the root. */
struct path_walk {
        struct scratch *s;
        struct dentry *d;
        struct vfsmount *vm;
        struct mount *mnt;
        __u32 pos;              /* where the path built so far starts in s->buf */
        bool done, cut;
};

/* A bpf_loop() callback: verified once, whatever the depth (an unrolled loop of this passed the
 * verifier's million instructions). 1 stops the loop. */
static long path_step(__u32 i, void *data) {
        struct path_walk *w = data;
        /* Locals: BPF_CORE_READ() relocates every step of its chain, ours too. */
        struct dentry *d = w->d, *parent;
        struct vfsmount *vm = w->vm;
        struct mount *mnt = w->mnt;
        const unsigned char *name;
        __u32 len, pos = w->pos;

        if (d == BPF_CORE_READ(vm, mnt_root)) {
                struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

                if (up == mnt) {
                        w->done = true;
                        return 1;
                }
                w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
                w->mnt = up;
                w->vm = &up->mnt;
                return 0;
        }
        parent = BPF_CORE_READ(d, d_parent);
        if (parent == d) {
                w->done = true;
                return 1;
        }
        len = BPF_CORE_READ(d, d_name.len);
        name = BPF_CORE_READ(d, d_name.name);
        if (len + 1 >= pos || pos > 255) {
                w->cut = true;
                return 1;
        }
        pos -= len;
        bpf_probe_read_kernel(&w->s->buf[pos & 255], len & 255, name);
        pos -= 1;
        w->s->buf[pos & 255] = '/';
        w->pos = pos;
        w->d = parent;
        return 0;
}

/* The path of mapping idx's file, from a walk of dentries and mounts up to the root (what
 * d_path() would print, in the walker's mount tree). A global function: verified once, not
 * inlined in every caller's loop. Scalars in: the file's address is read through probes only. */
__noinline int fill_path(__u32 idx, __u64 file_addr) {
        struct scratch *s = scratch_get();
        struct file *f = (struct file *) file_addr;
        struct exec_maps_mapping *m;
        struct path_walk w = {};
        __u32 pos, size;

        if (!s || idx >= EXEC_MAPS_PER_RECORD)
                return 0;
        /* Kept from clang, which would drop the mask after the check above, and the verifier
         * loses the check's bound across the spill. */
        asm volatile("" : "+r"(idx));
        m = &s->rec.m[idx & (EXEC_MAPS_PER_RECORD - 1)];
        w.s = s;
        w.d = BPF_CORE_READ(f, f_path.dentry);
        w.vm = BPF_CORE_READ(f, f_path.mnt);
        w.mnt = (struct mount *) ((char *) w.vm - bpf_core_field_offset(struct mount, mnt));
        w.pos = 255;
        s->buf[255] = 0;
        bpf_loop(PATH_DEPTH, path_step, &w, 0);
        if (!w.done) {
                m->flags |= EXEC_MAPS_M_PATH_CUT;
                m->path[0] = 0;
                m->path_len = 0;
                return 0;
        }
        pos = w.pos;
        if (pos == 255) {
                pos = 254;
                s->buf[254] = '/';
        }
        asm volatile("" : "+r"(pos));
        pos &= 255;
        size = 256 - pos;
        bpf_probe_read_kernel(m->path, size, &s->buf[pos]);
        m->path_len = size - 1;
        return 0;
}

/* A record of r's process was lost: its process is told to the daemon (counted before the
 * loss is, so a daemon that sees the count move finds the process). A global function: verified
 * once for every caller. */
__noinline int note_lost(__u32 tgid, __u64 start_boottime) {
        struct exec_maps_lost v = { .start_boottime = start_boottime };
        struct exec_maps_lost *old = bpf_map_lookup_elem(&lost_processes, &tgid);

        if (old && old->start_boottime == start_boottime)
                ;
        else if (old || bpf_map_update_elem(&lost_processes, &tgid, &v, BPF_NOEXIST) < 0)
                /* Full, or the pid names another process whose mark must stay. */
                __sync_fetch_and_add(&lost_unknown, 1);
        return 0;
}

/* ELF, as include/uapi/linux/elf.h has it (64-bit little-endian only: x86-64). */
#define EH_SIZE 64
#define PH_SIZE 56
#define PH_MAX 64               /* the program headers read: beyond, nothing is claimed */
#define NOTE_SEGMENTS_MAX 4
#define NOTES_MAX 32            /* notes scanned per segment */
#define PT_LOAD_TYPE 1
#define PT_NOTE_TYPE 4
#define NT_GNU_BUILD_ID_TYPE 3

static __always_inline void file_key_of(struct file *f, struct file_key *k) {
        struct inode *ino = BPF_CORE_READ(f, f_inode);

        k->ino = BPF_CORE_READ(ino, i_ino);
        k->dev = BPF_CORE_READ(ino, i_sb, s_dev);
        k->ctime_ns = (__u64) BPF_CORE_READ(ino, i_ctime_sec) * 1000000000ULL + BPF_CORE_READ(ino, i_ctime_nsec);
        k->size = BPF_CORE_READ(ino, i_size);
        k->generation = BPF_CORE_READ(ino, i_generation);
}

/* The reading of one file's headers from its offset-0 mapping at base, len bytes long: every
 * offset the file states is checked against len before it is read. */
struct elf_read {
        struct scratch *s;
        __u64 base, len;
        __u64 phoff, phentsize;
        __u64 note_off[NOTE_SEGMENTS_MAX], note_len[NOTE_SEGMENTS_MAX], note_align[NOTE_SEGMENTS_MAX];
        __u32 n_notes;
        __u64 pos, end, align;  /* the note scan: [pos, end) of the segment left */
        bool failed, overflow, overflow_notes, found;
};

/* A bpf_loop() callback: program header i. */
static long ph_step(__u32 i, void *data) {
        struct elf_read *e = data;
        struct exec_maps_facts *f = &e->s->facts;
        __u8 ph[PH_SIZE];
        __u32 type;
        __u64 off = e->phoff + (__u64) i * e->phentsize;

        if (bpf_probe_read_user(ph, sizeof(ph), (const void *) (e->base + off)) < 0) {
                e->failed = true;
                return 1;
        }
        type = *(__u32 *) &ph[0];
        if (type == PT_LOAD_TYPE) {
                __u32 n = f->n_loads;

                if (n >= EXEC_MAPS_LOADS_MAX) {
                        e->overflow = true;
                        return 0;
                }
                f->loads[n & (EXEC_MAPS_LOADS_MAX - 1)] = (struct exec_maps_load) {
                        .offset = *(__u64 *) &ph[8], .vaddr = *(__u64 *) &ph[16], .filesz = *(__u64 *) &ph[32],
                };
                f->n_loads = n + 1;
        } else if (type == PT_NOTE_TYPE && e->n_notes < NOTE_SEGMENTS_MAX) {
                __u32 n = e->n_notes & (NOTE_SEGMENTS_MAX - 1);

                e->note_off[n] = *(__u64 *) &ph[8];
                e->note_len[n] = *(__u64 *) &ph[32];
                e->note_align[n] = *(__u64 *) &ph[48] == 8 ? 8 : 4;
                e->n_notes++;
        }
        return 0;
}

static __always_inline __u64 align_up(__u64 x, __u64 a) {
        return (x + a - 1) & ~(a - 1);
}

/* A bpf_loop() callback: the note at e->pos. As the file reader scans (elf-reader.c): a note that
 * does not fit its segment ends the scan; the first GNU build ID of 1-64 bytes is the file's. */
static long note_step(__u32 i, void *data) {
        struct elf_read *e = data;
        struct exec_maps_facts *f = &e->s->facts;
        __u32 hdr[3];
        __u64 pos = e->pos, end = e->end, name_off, desc_off, desc_end, next;
        char name[4];

        if (end - pos < 12)
                return 1;
        if (bpf_probe_read_user(hdr, sizeof(hdr), (const void *) (e->base + pos)) < 0) {
                e->failed = true;
                return 1;
        }
        name_off = pos + 12;
        if (hdr[0] > end - name_off)
                return 1;
        desc_off = align_up(name_off + hdr[0], e->align);
        if (desc_off > end || hdr[1] > end - desc_off)
                return 1;
        desc_end = desc_off + hdr[1];
        if (hdr[2] == NT_GNU_BUILD_ID_TYPE && hdr[0] == 4 && hdr[1] >= 1 && hdr[1] <= EXEC_MAPS_BUILD_ID_MAX) {
                __u32 len = hdr[1];

                if (bpf_probe_read_user(name, sizeof(name), (const void *) (e->base + name_off)) < 0) {
                        e->failed = true;
                        return 1;
                }
                if (name[0] == 'G' && name[1] == 'N' && name[2] == 'U' && name[3] == 0) {
                        /* 1..64 as the verifier can see it. */
                        len = ((len - 1) & (EXEC_MAPS_BUILD_ID_MAX - 1)) + 1;
                        if (bpf_probe_read_user(f->build_id, len, (const void *) (e->base + desc_off)) < 0) {
                                e->failed = true;
                                return 1;
                        }
                        f->build_id_len = len;
                        e->found = true;
                        return 1;
                }
        }
        next = align_up(desc_end, e->align);
        if (next >= end)
                return 1;
        e->pos = next;
        return 0;
}

/* Reads into scratch's facts the file facts from its offset-0 mapping [base, base + len) of the
 * current process's memory. 1: read (facts.flags says what holds; 0: nothing, such as a file
 * that is not ELF); 0: could not be read now (a page not present). A global function: verified
 * once. */
__noinline int read_facts(__u64 base, __u64 len) {
        struct scratch *s = scratch_get();
        struct elf_read e = {};
        __u8 *eh;
        __u64 phoff, phentsize, phnum;

        if (!s)
                return 0;
        eh = s->eh;
        s->facts.flags = 0;
        s->facts.build_id_len = 0;
        s->facts.n_loads = 0;
        s->facts.reserved = 0;
        if (len < EH_SIZE)
                return 1;
        if (bpf_probe_read_user(eh, EH_SIZE, (const void *) base) < 0)
                return 0;
        /* ELFMAG, ELFCLASS64, ELFDATA2LSB */
        if (eh[0] != 0x7f || eh[1] != 'E' || eh[2] != 'L' || eh[3] != 'F' || eh[4] != 2 || eh[5] != 1)
                return 1;
        phoff = *(__u64 *) &eh[32];
        phentsize = *(__u16 *) &eh[54];
        phnum = *(__u16 *) &eh[56];
        /* As elf_info_from_buffer(): a table it refuses, or one of more entries than read here,
         * claims nothing. */
        if (phentsize < PH_SIZE || phnum > PH_MAX || phoff > len || phnum * phentsize > len - phoff)
                return 1;
        e.s = s;
        e.base = base;
        e.len = len;
        e.phoff = phoff;
        e.phentsize = phentsize;
        bpf_loop(phnum, ph_step, &e, 0);
        if (e.failed)
                return 0;
        for (__u32 i = 0; i < NOTE_SEGMENTS_MAX && i < e.n_notes && !e.found; i++) {
                __u64 off = e.note_off[i], size = e.note_len[i];

                if (size == 0)
                        continue;
                /* A segment outside the mapping: the file reader would read it, the capture
                 * cannot, so no build ID is claimed (the answer reads the file, as before). */
                if (off > len || size > len - off) {
                        e.overflow_notes = true;
                        break;
                }
                e.pos = off;
                e.end = off + size;
                e.align = e.note_align[i];
                /* Every iteration used: notes may be left that the file reader would scan. */
                if (bpf_loop(NOTES_MAX, note_step, &e, 0) >= NOTES_MAX && !e.found)
                        e.overflow_notes = true;
                if (e.failed || e.overflow_notes)
                        break;
        }
        if (e.failed)
                return 0;
        s->facts.flags = (e.overflow ? 0 : EXEC_MAPS_FACTS_LOADS) |
                         (e.found && !e.overflow_notes ? EXEC_MAPS_FACTS_BUILD_ID : 0);
        return 1;
}

/* A file the current capture's process maps at offset 0 in [start, end): unless the cache has its
 * facts, they are read into scratch's facts (its identity into scratch's key). 1 when read, for
 * the caller to cache. A global function (scalars in). */
__noinline int read_file_facts(__u64 file_addr, __u64 start, __u64 end) {
        struct scratch *s = scratch_get();
        struct file *f = (struct file *) file_addr;
        struct file_key again = {};

        if (!s || end <= start)
                return 0;
        s->key = (struct file_key) {};
        file_key_of(f, &s->key);
        if (bpf_map_lookup_elem(&file_facts, &s->key))
                return 0;
        for (__u32 i = 0; i < FAILED_KEYS; i++)
                if (i < s->n_failed && s->failed[i].ino == s->key.ino && s->failed[i].dev == s->key.dev &&
                    s->failed[i].ctime_ns == s->key.ctime_ns)
                        return 0;
        if (!read_facts(start, end - start)) {
                __sync_fetch_and_add(&facts_failed, 1);
                if (s->n_failed < FAILED_KEYS)
                        s->failed[s->n_failed++ & (FAILED_KEYS - 1)] = s->key;
                return 0;
        }
        /* The file changed while it was read: what was read may be the new content's. */
        file_key_of(f, &again);
        if (again.ctime_ns != s->key.ctime_ns || again.size != s->key.size) {
                __sync_fetch_and_add(&facts_failed, 1);
                return 0;
        }
        return 1;
}

/* The facts of vma's file, when it maps the file at offset 0, into the cache. Only from a mapping
 * the process never wrote to: its pages then are the file's, not something the process (or its
 * tracer) put there for others' answers to show. The anonymous pages' anon_vma is set before a
 * private copy of a page is made: still unset after the read, nothing read was such a copy. */
static __always_inline void learn_file(struct vm_area_struct *vma, __u64 vm_flags, __u64 file_addr) {
        struct scratch *s;

        if (vma->vm_pgoff != 0 || !(vm_flags & VM_READ_FLAG) || (vm_flags & VM_WRITE_FLAG) || vma->anon_vma ||
            read_file_facts(file_addr, vma->vm_start, vma->vm_end) != 1)
                return;
        s = scratch_get();
        if (!s || vma->anon_vma) {
                __sync_fetch_and_add(&facts_failed, 1);
                return;
        }
        bpf_map_update_elem(&file_facts, &s->key, &s->facts, BPF_ANY);
        __sync_fetch_and_add(&facts_read, 1);
}

/* Mapping idx's file identity and, when the cache knows them, its facts. A global function. */
__noinline int fill_facts(__u32 idx, __u64 file_addr) {
        struct scratch *s = scratch_get();
        struct file *f = (struct file *) file_addr;
        struct exec_maps_mapping *m;
        struct exec_maps_facts *v;
        struct file_key k = {};

        if (!s || idx >= EXEC_MAPS_PER_RECORD)
                return 0;
        asm volatile("" : "+r"(idx));
        m = &s->rec.m[idx & (EXEC_MAPS_PER_RECORD - 1)];
        file_key_of(f, &k);
        m->ctime_ns = k.ctime_ns;
        m->size = k.size;
        m->generation = k.generation;
        m->reserved2 = 0;
        v = bpf_map_lookup_elem(&file_facts, &k);
        if (v)
                bpf_probe_read_kernel(&m->facts, sizeof(m->facts), v);
        else
                m->facts.flags = 0;
        return 0;
}

/* Whether r went out (else it is counted lost, and its process marked). */
static __always_inline bool send(struct exec_maps_record *r) {
        __u32 n = r->n;

        if (n > EXEC_MAPS_PER_RECORD)
                n = EXEC_MAPS_PER_RECORD;
        if (bpf_ringbuf_output(&records, r, EXEC_MAPS_RECORD_HEADER + n * sizeof(r->m[0]),
                               ring_wake_flags(&wake_delay_ns, &last_wake_ns)) < 0) {
                note_lost(r->tgid, r->start_boottime);
                __sync_fetch_and_add(&lost_records, 1);
                return false;
        }
        __sync_fetch_and_add(&records_emitted, 1);
        return true;
}

/* States the executable file mappings of task's address space overlapping [lo, hi). always:
 * send a record even when none is there (the range may have held some before). Whether the
 * daemon was told: read, and every record of it sent. */
static __always_inline bool capture(struct task_struct *task, __u32 kind, __u64 lo, __u64 hi, bool always,
                                    bool learn) {
        struct scratch *s = scratch_get();
        struct exec_maps_record *r;
        struct bpf_iter_task_vma it;
        struct vm_area_struct *vma;
        struct mm_struct *mm;
        const struct cred *cred;
        bool told = true;

        if (!s)
                return false;
        r = &s->rec;
        r->kind = kind;
        r->tgid = task->tgid;
        r->start_boottime = BPF_CORE_READ(task, group_leader, start_boottime);
        r->time_ns = bpf_ktime_get_ns();
        r->range_start = lo;
        r->range_end = hi;
        cred = task->real_cred;
        r->uid = BPF_CORE_READ(cred, uid.val);
        r->euid = BPF_CORE_READ(cred, euid.val);
        r->suid = BPF_CORE_READ(cred, suid.val);
        mm = task->mm;
        r->dumpable = mm ? (__u32) (BPF_CORE_READ(mm, flags.__mm_flags[0]) & 3) : 0;
        r->flags = 0;
        r->n = 0;
        s->n_failed = 0;
        bpf_probe_read_kernel_str(r->comm, sizeof(r->comm), task->comm);

        if (bpf_iter_task_vma_new(&it, task, lo) < 0) {
                bpf_iter_task_vma_destroy(&it);
                __sync_fetch_and_add(&unread_records, 1);
                r->flags = EXEC_MAPS_F_UNREAD;
                send(r);
                return false;
        }
        while ((vma = bpf_iter_task_vma_next(&it))) {
                struct exec_maps_mapping *m;
                struct file *f;
                __u64 vm_flags, file_addr = 0;
                __u32 n;

                if (vma->vm_start >= hi)
                        break;
                vm_flags = vma->vm_flags;
                f = vma->vm_file;
                if (!f)
                        continue;
                /* A global function takes scalars only: the pointer's value read as one. */
                bpf_probe_read_kernel(&file_addr, sizeof(file_addr), &vma->vm_file);
                if (learn)
                        learn_file(vma, vm_flags, file_addr);
                if (!(vm_flags & VM_EXEC_FLAG))
                        continue;
                n = r->n;
                if (n >= EXEC_MAPS_PER_RECORD) {
                        /* This record states [range_start, here); the next one goes on from here. */
                        r->range_end = vma->vm_start;
                        r->flags |= EXEC_MAPS_F_MORE;
                        told = send(r) && told;
                        r->range_start = vma->vm_start;
                        r->range_end = hi;
                        r->flags = 0;
                        r->n = 0;
                        n = 0;
                }
                m = &r->m[n & (EXEC_MAPS_PER_RECORD - 1)];
                m->start = vma->vm_start;
                m->end = vma->vm_end;
                m->offset = (__u64) vma->vm_pgoff << PAGE_SHIFT_X86;
                m->inode = BPF_CORE_READ(f, f_inode, i_ino);
                m->dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
                m->flags = (vm_flags & VM_READ_FLAG ? EXEC_MAPS_M_READ : 0) |
                           (vm_flags & VM_WRITE_FLAG ? EXEC_MAPS_M_WRITE : 0) | EXEC_MAPS_M_EXEC |
                           (vm_flags & VM_MAYSHARE_FLAG ? EXEC_MAPS_M_SHARED : 0);
                m->path_len = 0;
                m->reserved = 0;
                fill_path(n, file_addr);
                fill_facts(n, file_addr);
                r->n = n + 1;
        }
        bpf_iter_task_vma_destroy(&it);
        if (r->n > 0 || always)
                told = send(r) && told;
        return told;
}

static __always_inline bool hint_overlaps(struct exec_hint *h, __u64 lo, __u64 hi) {
        bool hit = false;

        bpf_spin_lock(&h->lock);
        for (__u32 i = 0; i < HINT_SLOTS; i++)
                if (i < h->n && lo < h->hi[i] && hi > h->lo[i])
                        hit = true;
        bpf_spin_unlock(&h->lock);
        return hit;
}

struct hint_search {
        struct exec_hint *h;
        __u64 lo, hi, best_gap;
        __u32 best;
};

/* A bpf_loop() callback: the interval nearest [lo, hi), read without the lock (any choice is
 * right: the one made is extended under it). Verified once, not as 2^16 paths. */
static long hint_nearest(__u32 i, void *data) {
        struct hint_search *s = data;
        __u64 lo = s->h->lo[i & (HINT_SLOTS - 1)], hi = s->h->hi[i & (HINT_SLOTS - 1)];
        __u64 gap = s->lo > hi ? s->lo - hi : lo > s->hi ? lo - s->hi : 0;

        if (gap < s->best_gap) {
                s->best_gap = gap;
                s->best = i & (HINT_SLOTS - 1);
        }
        return 0;
}

/* [lo, hi) joins the interval it touches, else a free slot, else the nearest interval. */
static __always_inline void hint_add(struct exec_hint *h, __u64 lo, __u64 hi) {
        struct hint_search s = { .h = h, .lo = lo, .hi = hi, .best_gap = ~0ULL };
        bool done = false;
        __u32 n;

        bpf_spin_lock(&h->lock);
        n = h->n;
        for (__u32 i = 0; i < HINT_SLOTS; i++) {
                if (i >= n)
                        break;
                if (lo <= h->hi[i] && hi >= h->lo[i]) {
                        if (lo < h->lo[i])
                                h->lo[i] = lo;
                        if (hi > h->hi[i])
                                h->hi[i] = hi;
                        done = true;
                        break;
                }
        }
        if (!done && n < HINT_SLOTS) {
                h->lo[n & (HINT_SLOTS - 1)] = lo;
                h->hi[n & (HINT_SLOTS - 1)] = hi;
                h->n = n + 1;
                done = true;
        }
        bpf_spin_unlock(&h->lock);
        if (done)
                return;
        bpf_loop(HINT_SLOTS, hint_nearest, &s, 0);
        bpf_spin_lock(&h->lock);
        if (lo < h->lo[s.best & (HINT_SLOTS - 1)])
                h->lo[s.best & (HINT_SLOTS - 1)] = lo;
        if (hi > h->hi[s.best & (HINT_SLOTS - 1)])
                h->hi[s.best & (HINT_SLOTS - 1)] = hi;
        bpf_spin_unlock(&h->lock);
}

/* After the exec's capture (its record still in the scratch): the hint is what it told. The
 * process has one thread here: nothing else changes its mappings meanwhile. */
static __always_inline void hint_reset(struct task_struct *task) {
        struct scratch *s = scratch_get();
        struct exec_hint *h;
        __u32 n;

        if (!s)
                return;
        n = s->rec.n;
        /* Not read, or told in several records (only the last is here): no hint. */
        if ((s->rec.flags & EXEC_MAPS_F_UNREAD) || s->rec.range_start != 0 || n > HINT_SLOTS) {
                bpf_task_storage_delete(&hints, task);
                return;
        }
        h = bpf_task_storage_get(&hints, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
        if (!h)
                return;
        bpf_spin_lock(&h->lock);
        for (__u32 i = 0; i < HINT_SLOTS; i++) {
                h->lo[i] = i < n ? s->rec.m[i].start : 0;
                h->hi[i] = i < n ? s->rec.m[i].end : 0;
        }
        h->n = n;
        bpf_spin_unlock(&h->lock);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(em_on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) {
        if (capture(p, EXEC_MAPS_EXEC, 0, ~0ULL, true, true))
                hint_reset(bpf_get_current_task_btf());
        else
                /* Lost: the next change tells the whole set again. */
                bpf_task_storage_delete(&hints, bpf_get_current_task_btf());
        return 0;
}

/* A process told whole by a change (one never told whole before): every change is captured
 * from then on, as none of its ranges is known to hold nothing told. */
static __always_inline void hint_all(struct task_struct *leader) {
        struct exec_hint *h = bpf_task_storage_get(&hints, leader, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

        if (!h)
                return;
        bpf_spin_lock(&h->lock);
        h->lo[0] = 0;
        h->hi[0] = ~0ULL;
        h->n = 1;
        bpf_spin_unlock(&h->lock);
}

/* The mm is still intact here on 6.16+ (the tracepoint runs before exit_mm). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(em_on_exit, struct task_struct *p, bool group_dead) {
        if (!group_dead || (p->flags & PF_KTHREAD_FLAG))
                return 0;
        capture(p, EXEC_MAPS_EXIT, 0, ~0ULL, true, true);
        return 0;
}

static __always_inline __u64 range_end(__u64 lo, __u64 len) {
        __u64 hi = lo + ((len + 4095) & ~4095ULL);

        return hi < lo ? ~0ULL : hi;
}

enum change_kind {
        CHANGE_NONE,
        CHANGE_MMAP,
        CHANGE_MUNMAP,
        CHANGE_MPROTECT,
        CHANGE_MREMAP,
        /* After the capture. */
        CHANGE_TOLD_WHOLE,
        CHANGE_NOT_TOLD,
};

/* A syscall's arguments as the change needs them, whatever its ABI. */
struct change {
        __u32 kind;
        __u64 addr, len;        /* mremap: the old range */
        __u64 prot;             /* mmap, mprotect */
        __u64 flags;            /* mmap */
        __u64 new_len;          /* mremap */
        __u64 new_addr;         /* mremap with MREMAP_FIXED */
};

/* The ia32 mmap's (old_mmap) arguments, in user memory. */
struct mmap_arg32 {
        __u32 addr, len, prot, flags, fd, offset;
};

static __always_inline bool may_change(__u64 nr) {
        switch (nr) {
        case NR_MMAP: case NR_MPROTECT: case NR_MUNMAP: case NR_MREMAP: case NR_PKEY_MPROTECT:
        case NR32_OLD_MMAP: case NR32_MUNMAP: case NR32_MPROTECT: case NR32_MREMAP: case NR32_MMAP2:
        case NR32_PKEY_MPROTECT:
                return true;
        }
        return false;
}

/* The 32-bit syscall's arguments (ebx, ecx, edx, esi: 32 bits each). */
static __always_inline void decode_compat(struct pt_regs *regs, __u64 nr, struct change *c) {
        __u64 a0 = (__u32) regs->bx, a1 = (__u32) regs->cx, a2 = (__u32) regs->dx, a3 = (__u32) regs->si;

        switch (nr) {
        case NR32_OLD_MMAP: {
                struct mmap_arg32 a;

                /* The kernel read them a moment ago: resident. Unreadable, the range is all
                 * of the 32-bit space above the mapping, stated. */
                if (bpf_probe_read_user(&a, sizeof(a), (void *) a0) < 0)
                        *c = (struct change) { .kind = CHANGE_MMAP, .len = 1ULL << 32, .prot = PROT_EXEC_FLAG,
                                               .flags = MAP_FIXED_FLAG };
                else
                        *c = (struct change) { .kind = CHANGE_MMAP, .len = a.len, .prot = a.prot, .flags = a.flags };
                break;
        }
        case NR32_MMAP2:
                *c = (struct change) { .kind = CHANGE_MMAP, .len = a1, .prot = a2, .flags = a3 };
                break;
        case NR32_MUNMAP:
                *c = (struct change) { .kind = CHANGE_MUNMAP, .addr = a0, .len = a1 };
                break;
        case NR32_MPROTECT:
        case NR32_PKEY_MPROTECT:
                *c = (struct change) { .kind = CHANGE_MPROTECT, .addr = a0, .len = a1, .prot = a2 };
                break;
        case NR32_MREMAP:
                *c = (struct change) { .kind = CHANGE_MREMAP, .addr = a0, .len = a1, .new_len = a2, .flags = a3,
                                       .new_addr = (__u32) regs->di };
                break;
        }
}

/* The 64-bit syscall's arguments (rdi, rsi, rdx, r10). */
static __always_inline void decode_native(struct pt_regs *regs, __u64 nr, struct change *c) {
        switch (nr) {
        case NR_MMAP:
                *c = (struct change) { .kind = CHANGE_MMAP, .len = regs->si, .prot = regs->dx, .flags = regs->r10 };
                break;
        case NR_MUNMAP:
                *c = (struct change) { .kind = CHANGE_MUNMAP, .addr = regs->di, .len = regs->si };
                break;
        case NR_MPROTECT:
        case NR_PKEY_MPROTECT:
                *c = (struct change) { .kind = CHANGE_MPROTECT, .addr = regs->di, .len = regs->si, .prot = regs->dx };
                break;
        case NR_MREMAP:
                *c = (struct change) { .kind = CHANGE_MREMAP, .addr = regs->di, .len = regs->si, .new_len = regs->dx,
                                       .flags = regs->r10, .new_addr = regs->r8 };
                break;
        }
}

/* Whether a change with these protections can leave an executable mapping. */
static __always_inline bool may_exec(struct task_struct *task, __u64 prot) {
        return (prot & PROT_EXEC_FLAG) || ((prot & PROT_READ_FLAG) && (task->personality & READ_IMPLIES_EXEC_FLAG));
}

/* How a range is captured: not, only if it holds a mapping now, or whatever it holds. */
enum {
        CAPTURE_NOT,
        CAPTURE_IF_FOUND,
        CAPTURE_ALWAYS,
};

/* A change of [lo, hi) that removes or replaces what was there; adds: it may leave an
 * executable mapping. Captured unless the hint rules out that it changed anything told. */
static __always_inline int change_range(struct exec_hint *h, __u64 lo, __u64 hi, bool adds) {
        bool before = !h || hint_overlaps(h, lo, hi);

        if (adds) {
                if (h)
                        hint_add(h, lo, hi);
                return before ? CAPTURE_ALWAYS : CAPTURE_IF_FOUND;
        }
        if (before)
                return CAPTURE_ALWAYS;
        __sync_fetch_and_add(&skipped_records, 1);
        return CAPTURE_NOT;
}

/* Every syscall's exit: only the ones that change mappings go on (the arguments are still in
 * the saved user registers). At most two ranges are captured (mremap's old and new), each
 * inlined once: the iterator's loop in more copies passed the verifier's bound. */
SEC("tp_btf/sys_exit")
int BPF_PROG(em_on_sys_exit, struct pt_regs *regs, long ret) {
        struct task_struct *task;
        struct exec_hint *h;
        struct change c = {};
        __u64 nr = regs->orig_ax, lo = 0, hi = 0, lo2 = 0, hi2 = 0;
        int how = CAPTURE_NOT, how2 = CAPTURE_NOT;
        bool compat, failed;

        if (!may_change(nr))
                return 0;
        task = bpf_get_current_task_btf();
        if (task->flags & PF_KTHREAD_FLAG)
                return 0;
        compat = task->thread_info.status & TS_COMPAT_FLAG;
        if (compat)
                decode_compat(regs, nr, &c);
        else
                decode_native(regs, nr, &c);
        /* A failed mprotect may have changed the part before the hole it met; a failed mremap
         * with MREMAP_FIXED may have unmapped its destination (and the old range's tail) before
         * it found the old range unfit. */
        failed = ret < 0 && ret > -4096;
        if (c.kind == CHANGE_NONE || (failed && c.kind != CHANGE_MPROTECT &&
                                      (c.kind != CHANGE_MREMAP || !(c.flags & MREMAP_FIXED_FLAG))))
                return 0;
        if (compat)
                ret = (__u32) ret;
        h = bpf_task_storage_get(&hints, task->group_leader, 0, 0);
        switch (c.kind) {
        case CHANGE_MMAP:
                lo = (__u64) ret;
                hi = range_end(lo, c.len);
                if (c.flags & MAP_FIXED_FLAG)
                        how = change_range(h, lo, hi, may_exec(task, c.prot));
                else if (may_exec(task, c.prot)) {
                        /* Not fixed (nor MAP_FIXED_NOREPLACE, which fails on a mapped range):
                         * a hole now holds just this mapping. */
                        if (h)
                                hint_add(h, lo, hi);
                        how = CAPTURE_IF_FOUND;
                }
                break;
        case CHANGE_MUNMAP:
                lo = c.addr & ~4095ULL;
                hi = range_end(lo, c.len);
                how = change_range(h, lo, hi, false);
                break;
        case CHANGE_MPROTECT:
                lo = c.addr & ~4095ULL;
                hi = range_end(lo, c.len);
                how = change_range(h, lo, hi, may_exec(task, c.prot));
                break;
        case CHANGE_MREMAP: {
                bool moved_exec;

                lo = c.addr & ~4095ULL;
                hi = range_end(lo, c.len);
                /* What moved or grew is executable only if the old range may have held one. */
                moved_exec = !h || hint_overlaps(h, lo, hi);
                how = moved_exec ? CAPTURE_ALWAYS : CAPTURE_NOT;
                lo2 = failed ? c.new_addr : (__u64) ret;
                hi2 = range_end(lo2, c.new_len);
                if (failed)
                        how2 = change_range(h, lo2, hi2, false);
                else if (lo2 != lo || c.new_len > c.len)
                        how2 = change_range(h, lo2, hi2, moved_exec);
                break;
        }
        }
        /* A process never told whole (it exec'd before the daemon started, it forked and did
         * not exec since, or what it told was lost or could not be read): its first change is
         * told as its whole set, so the daemon knows all of it from there (a diff of what it
         * does not know would miss what went). */
        /* (c is done with: its kind says how the capture went, no stack more is taken.) */
        if (!h && (how != CAPTURE_NOT || how2 != CAPTURE_NOT) &&
            bpf_ringbuf_query(&records, BPF_RB_AVAIL_DATA) <= RECORDS_RING_BYTES / 2) {
                lo = 0;
                hi = ~0ULL;
                how = CAPTURE_ALWAYS;
                how2 = CAPTURE_NOT;
                c.kind = CHANGE_TOLD_WHOLE;
        }
        /* A whole set told reads no file's facts: a forked child (the usual such process) has
         * none of its file pages present, and its exit tries again. */
        if (how != CAPTURE_NOT &&
            !capture(task, EXEC_MAPS_CHANGE, lo, hi, how == CAPTURE_ALWAYS, c.kind != CHANGE_TOLD_WHOLE))
                c.kind = CHANGE_NOT_TOLD;
        if (how2 != CAPTURE_NOT && !capture(task, EXEC_MAPS_CHANGE, lo2, hi2, how2 == CAPTURE_ALWAYS, true))
                c.kind = CHANGE_NOT_TOLD;
        if (c.kind == CHANGE_NOT_TOLD)
                bpf_task_storage_delete(&hints, task->group_leader);
        else if (c.kind == CHANGE_TOLD_WHOLE)
                hint_all(task->group_leader);
        return 0;
}
