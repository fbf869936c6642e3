/* BPF programs that capture a process's executable file mappings after exec, after each syscall that can add or remove one, and at exit. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "exec-maps.h"

/* The tracepoints' BTF is a GPL-only fact of the kernel. */
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

/* x86-64 syscall numbers: compat (32-bit) processes' changes are not captured, only their exec
 * and exit (documented in memmapd(8)). */
#define NR_MMAP 9
#define NR_MPROTECT 10
#define NR_MUNMAP 11
#define NR_MREMAP 25
#define NR_PKEY_MPROTECT 329

/* Path components walked up to the root: a deeper path is cut. */
#define PATH_DEPTH 32

/* bpftool 7.1 writes no kfunc prototypes into vmlinux.h. */
extern int bpf_iter_task_vma_new(struct bpf_iter_task_vma *it, struct task_struct *task, __u64 addr) __ksym;
extern struct vm_area_struct *bpf_iter_task_vma_next(struct bpf_iter_task_vma *it) __ksym;
extern void bpf_iter_task_vma_destroy(struct bpf_iter_task_vma *it) __ksym;

/* A record is built here, not on the 512-byte stack; buf holds a path built backwards. */
struct scratch {
        struct exec_maps_record rec;
        char buf[512];
};

struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __type(key, __u32);
        __type(value, struct scratch);
        __uint(max_entries, 1);
} scratch SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_RINGBUF);
        __uint(max_entries, 4 * 1024 * 1024);
} records SEC(".maps");

/* Records the ring buffer had no room for: what the daemon keeps is then incomplete. */
__u64 lost_records = 0;
/* Records sent. */
__u64 records_emitted = 0;
/* Captures that found the address space's lock taken (the iterator only tries it). */
__u64 unread_records = 0;

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

static __always_inline void send(struct exec_maps_record *r) {
        __u32 n = r->n;

        if (n > EXEC_MAPS_PER_RECORD)
                n = EXEC_MAPS_PER_RECORD;
        if (bpf_ringbuf_output(&records, r, EXEC_MAPS_RECORD_HEADER + n * sizeof(r->m[0]), 0) < 0)
                __sync_fetch_and_add(&lost_records, 1);
        else
                __sync_fetch_and_add(&records_emitted, 1);
}

/* States the executable file mappings of task's address space overlapping [lo, hi). always:
 * send a record even when none is there (the range may have held some before). */
static __always_inline void capture(struct task_struct *task, __u32 kind, __u64 lo, __u64 hi, bool always) {
        struct scratch *s = scratch_get();
        struct exec_maps_record *r;
        struct bpf_iter_task_vma it;
        struct vm_area_struct *vma;
        struct mm_struct *mm;
        const struct cred *cred;

        if (!s)
                return;
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
        bpf_probe_read_kernel_str(r->comm, sizeof(r->comm), task->comm);

        if (bpf_iter_task_vma_new(&it, task, lo) < 0) {
                bpf_iter_task_vma_destroy(&it);
                __sync_fetch_and_add(&unread_records, 1);
                r->flags = EXEC_MAPS_F_UNREAD;
                send(r);
                return;
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
                if (!f || !(vm_flags & VM_EXEC_FLAG))
                        continue;
                n = r->n;
                if (n >= EXEC_MAPS_PER_RECORD) {
                        /* This record states [range_start, here); the next one goes on from here. */
                        r->range_end = vma->vm_start;
                        r->flags |= EXEC_MAPS_F_MORE;
                        send(r);
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
                /* A global function takes scalars only: the pointer's value read as one. */
                bpf_probe_read_kernel(&file_addr, sizeof(file_addr), &vma->vm_file);
                fill_path(n, file_addr);
                r->n = n + 1;
        }
        bpf_iter_task_vma_destroy(&it);
        if (r->n > 0 || always)
                send(r);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(em_on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) {
        capture(p, EXEC_MAPS_EXEC, 0, ~0ULL, true);
        return 0;
}

/* The mm is still intact here on 6.16+ (the tracepoint runs before exit_mm). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(em_on_exit, struct task_struct *p, bool group_dead) {
        if (!group_dead || (p->flags & PF_KTHREAD_FLAG))
                return 0;
        capture(p, EXEC_MAPS_EXIT, 0, ~0ULL, true);
        return 0;
}

static __always_inline __u64 range_end(__u64 lo, __u64 len) {
        __u64 hi = lo + ((len + 4095) & ~4095ULL);

        return hi < lo ? ~0ULL : hi;
}

/* Every syscall's exit: only the five that change mappings go on (the arguments are still in
 * the saved user registers). */
SEC("tp_btf/sys_exit")
int BPF_PROG(em_on_sys_exit, struct pt_regs *regs, long ret) {
        struct task_struct *task;
        __u64 nr = regs->orig_ax;
        __u64 a0, a1, lo;

        if (nr != NR_MMAP && nr != NR_MUNMAP && nr != NR_MPROTECT && nr != NR_MREMAP && nr != NR_PKEY_MPROTECT)
                return 0;
        if (ret < 0 && ret > -4096)
                return 0;
        task = bpf_get_current_task_btf();
        if (task->flags & PF_KTHREAD_FLAG)
                return 0;
        a0 = regs->di & ~4095ULL;
        a1 = regs->si;
        switch (nr) {
        case NR_MMAP: {
                __u64 flags = regs->r10;

                lo = (__u64) ret;
                /* A fixed mapping may have replaced what was there; any other adds to a hole. */
                capture(task, EXEC_MAPS_CHANGE, lo, range_end(lo, a1),
                        (flags & (MAP_FIXED_FLAG | MAP_FIXED_NOREPLACE_FLAG)) != 0);
                break;
        }
        case NR_MREMAP:
                capture(task, EXEC_MAPS_CHANGE, a0, range_end(a0, a1), true);
                lo = (__u64) ret;
                if (lo != a0)
                        capture(task, EXEC_MAPS_CHANGE, lo, range_end(lo, regs->dx), true);
                else if (regs->dx > a1)
                        capture(task, EXEC_MAPS_CHANGE, lo, range_end(lo, regs->dx), false);
                break;
        default:
                capture(task, EXEC_MAPS_CHANGE, a0, range_end(a0, a1), true);
                break;
        }
        return 0;
}
