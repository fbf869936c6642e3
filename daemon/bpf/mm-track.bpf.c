/* BPF programs that keep per-process generations of address-space changes and exec epochs, and report exec, exit and fork. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "mm-track.h"
#include "ring-wake.bpf.h"

/* The tracepoints' BTF and mm->owner are GPL-only facts of the kernel. */
char LICENSE[] SEC("license") = "GPL";

/* include/linux/sched.h: a kernel thread (a #define, so not in vmlinux.h). */
#define PF_KTHREAD_FLAG 0x00200000

/* Set by the loader before load, with the generations' and epochs' size: slots - 1. */
const volatile __u32 slot_mask = MM_TRACK_DEFAULT_SLOTS - 1;

/* One u64 per slot, slot = tgid & slot_mask, read by the daemon through mmap with a plain load.
 *
 * A slot is shared by every tgid equal modulo the size. That costs only extra bumps, never a
 * missed one: every change of a tgid increments its slot, whatever else shares it, so a reader
 * that sees the same value before and after reading a layout knows that no write section of
 * that tgid ended in between. A neighbour's change makes the value move too, which only looks
 * like a change that did not happen (the layout is read again for nothing). */
struct slot_counters {
        __uint(type, BPF_MAP_TYPE_ARRAY);
        __uint(map_flags, BPF_F_MMAPABLE);
        __type(key, __u32);
        __type(value, __u64);
        __uint(max_entries, MM_TRACK_DEFAULT_SLOTS);
};

/* The generation: it moves at the end of every write section of a tgid's mmap lock. */
struct slot_counters generations SEC(".maps");

/* The exec epoch: it moves only when a tgid starts running another program or stops being one
 * process (exec, exit, fork), never when a layout changes, so an access decision can be checked
 * with one load too. Every place that moves it moves the generation as well: a reader of
 * generations alone stays safe. */
struct slot_counters epochs SEC(".maps");

/* The address space a tgid last wrote as its own mm (its address: an identity the daemon only
 * compares, never shows). It changes when an exec's new address space, installed, is first
 * written (setup_arg_pages, before the new program runs): an access decision made while the
 * exec was still building that address space (the epoch had moved, not yet at the exec's end)
 * names the old one, so it never serves what is read of the new one in between. */
struct slot_counters mms SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_RINGBUF);
        __uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Events the ring buffer had no room for: a reader that sees it move must forget everything. */
__u64 lost_events = 0;

/* Events reserved in the ring buffer, counted before they are submitted: a reader that read
 * this and then drained as many has seen all of them. */
__u64 events_emitted = 0;
/* Set by the daemon (mm_tracker_set_wake_delay()); see ring-wake.bpf.h. */
__u64 wake_delay_ns = 0;
__u64 last_wake_ns = 0;

static __always_inline void bump_slot(void *counters, __u32 tgid) {
        /* The key must live on the stack, not point into the task. */
        __u32 slot = tgid & slot_mask;
        __u64 *c = bpf_map_lookup_elem(counters, &slot);

        if (c)
                __sync_fetch_and_add(c, 1);
}

static __always_inline void bump(__u32 tgid) {
        bump_slot(&generations, tgid);
}

/* The epoch first, so that a reader that saw the generation move (and then reads the epoch)
 * never finds the old epoch for a change of program. */
static __always_inline void bump_epoch(__u32 tgid) {
        bump_slot(&epochs, tgid);
        bump(tgid);
}

/* The mm's process. The owner is NULL at exit_mmap (the exit event bumps instead). An mm that
 * is not yet its owner's, written by the owner itself, is exec's new address space before
 * exec_mmap installs it: another program under that tgid, so its epoch moves before the new mm
 * can be opened through /proc. Fork's copy in dup_mmap is written by the parent, while its owner
 * is the child (still carrying the parent's tgid): only the generation moves there (a harmless
 * extra bump of the parent), so a process that forks keeps its epoch. */
static __always_inline void bump_mm(struct mm_struct *mm) {
        struct task_struct *owner = mm->owner;

        if (!owner)
                return;
        if (owner->mm != mm) {
                if (owner == bpf_get_current_task_btf())
                        bump_epoch(owner->tgid);
                else
                        bump(owner->tgid);
                return;
        }
        {
                __u32 slot = owner->tgid & slot_mask;
                __u64 *c = bpf_map_lookup_elem(&mms, &slot);
                __u64 id = (__u64) mm;

                /* Before the bump (a full barrier): whoever sees the new generation sees the
                 * mm too. Written only when it changes: most sections write the same mm again. */
                if (c && *c != id)
                        *c = id;
        }
        bump(owner->tgid);
}

/* Every write section of the mmap lock ends here (mmap_write_unlock) unless it is downgraded. */
SEC("tp_btf/mmap_lock_released")
int BPF_PROG(on_mmap_released, struct mm_struct *mm, bool write) {
        if (write)
                bump_mm(mm);
        return 0;
}

/* mmap_write_downgrade (munmap, brk shrink, stack growth) ends a write section without a
 * release: it reports a read acquisition while mm_lock_seq is still odd. A real reader can
 * never see it odd, since no writer holds the lock while a reader does. */
SEC("tp_btf/mmap_lock_acquire_returned")
int BPF_PROG(on_mmap_acquired, struct mm_struct *mm, bool write, bool success) {
        if (!write && success && (mm->mm_lock_seq.sequence & 1))
                bump_mm(mm);
        return 0;
}

static __always_inline void emit(__u32 type, struct task_struct *p, __u32 pid, __u32 parent_tgid, __u32 flags) {
        struct mm_track_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

        if (!e) {
                __sync_fetch_and_add(&lost_events, 1);
                return;
        }
        __sync_fetch_and_add(&events_emitted, 1);
        e->type = type;
        e->tgid = p->tgid;
        e->pid = pid;
        e->parent_tgid = parent_tgid;
        e->flags = flags;
        e->reserved = 0;
        e->start_boottime = BPF_CORE_READ(p, group_leader, start_boottime);
        bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), p->comm);
        e->time_ns = bpf_ktime_get_ns();
        bpf_ringbuf_submit(e, ring_wake_flags(&wake_delay_ns, &last_wake_ns));
}

/* The exec replaced the address space; the new one's own write sections bumped too, but the
 * switch itself takes no lock of the old one that names this tgid. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) {
        bump_epoch(p->tgid);
        emit(MM_TRACK_EXEC, p, old_pid, 0, 0);
        return 0;
}

/* Not named "exit": clang 14 miscompiles a BPF program of that name. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_process_exit, struct task_struct *p, bool group_dead) {
        if (!group_dead || (p->flags & PF_KTHREAD_FLAG))
                return 0;
        bump_epoch(p->tgid);
        emit(MM_TRACK_EXIT, p, p->tgid, 0, 0);
        return 0;
}

/* A new process (not a thread): its slot may hold an older process's count, bump it so that a
 * reader keyed by the reused pid sees a change. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_process_fork, struct task_struct *parent, struct task_struct *child) {
        __u32 flags = 0;

        if (child->pid != child->tgid || (child->flags & PF_KTHREAD_FLAG))
                return 0;
        if (child->mm && child->mm == parent->mm)
                flags |= MM_TRACK_F_SHARED_MM;
        bump_epoch(child->tgid);
        emit(MM_TRACK_FORK, child, child->pid, parent->tgid, flags);
        return 0;
}

/* Every process whose address space counts under another process (its mm's owner is not its
 * own leader): a clone(CLONE_VM) child that did not exec, or the one left when the owner moved.
 * Its changes bump the owner's slot, not its own. Read after lost events, which may have hidden
 * the forks that made them: one u32 tgid per such process. */
SEC("iter/task")
int mm_track_shared(struct bpf_iter__task *ctx) {
        struct task_struct *task = ctx->task;
        struct mm_struct *mm;
        struct task_struct *owner;
        __u32 tgid;

        if (!task || task->pid != task->tgid || (task->flags & PF_KTHREAD_FLAG))
                return 0;
        mm = task->mm;
        if (!mm)
                return 0;
        owner = BPF_CORE_READ(mm, owner);
        tgid = task->tgid;
        if (owner && BPF_CORE_READ(owner, tgid) == tgid)
                return 0;
        bpf_seq_write(ctx->meta->seq, &tgid, sizeof(tgid));
        return 0;
}
