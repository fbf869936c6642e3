/* A task_vma iterator that writes the mappings of given inodes (or of every file) of every process in one pass. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "find-vma.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before each pass (the loader serializes passes). */
struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __type(key, struct find_vma_key);
        __type(value, __u8);
        __uint(max_entries, FIND_VMA_MAX_TARGETS);
} targets SEC(".maps");

/* FIND_VMA_ALL_FILES, FIND_VMA_UNLINKED: written by user space in .bss between passes. */
__u32 pass_flags;
/* With FIND_VMA_UNLINKED: the name unlinked files must have (length 0: any). Most unlinked
 * files are memfds and temporary files: their processes are not read again for nothing. */
char unlinked_name[FIND_VMA_NAME_MAX];
__u32 unlinked_name_len;

static bool name_matches(struct file *file) {
        char buf[FIND_VMA_NAME_MAX];
        const unsigned char *name;
        __u32 len = unlinked_name_len;

        if (len == 0)
                return true;
        if (len >= FIND_VMA_NAME_MAX || BPF_CORE_READ(file, f_path.dentry, d_name.len) != len)
                return false;
        name = BPF_CORE_READ(file, f_path.dentry, d_name.name);
        if (bpf_probe_read_kernel_str(buf, sizeof(buf), name) < 0)
                return false;
        for (__u32 i = 0; i < FIND_VMA_NAME_MAX && i < len; i++)
                if (buf[i] != unlinked_name[i])
                        return false;
        return true;
}

SEC("iter/task_vma")
int find_vma(struct bpf_iter__task_vma *ctx) {
        struct vm_area_struct *vma = ctx->vma;
        struct task_struct *task = ctx->task;
        struct find_vma_key key = {};
        struct find_vma_rec rec = {};
        struct file *file;
        struct inode *inode;
        bool unlinked;

        if (!vma || !task)
                return 0;
        file = vma->vm_file;
        if (!file)
                return 0;
        inode = BPF_CORE_READ(file, f_inode);
        key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
        key.ino = BPF_CORE_READ(inode, i_ino);
        /* What d_path() marks " (deleted)": an unhashed dentry; a replaced file also has no
         * links left. User space compares names; this only has to let them through. */
        unlinked = BPF_CORE_READ(inode, __i_nlink) == 0 || !BPF_CORE_READ(file, f_path.dentry, d_hash.pprev);

        if (!(pass_flags & FIND_VMA_ALL_FILES) && !bpf_map_lookup_elem(&targets, &key) &&
            !(unlinked && (pass_flags & FIND_VMA_UNLINKED) && name_matches(file)))
                return 0;
        rec.tgid = task->tgid;
        rec.dev = key.dev;
        rec.ino = key.ino;
        rec.start = vma->vm_start;
        rec.end = vma->vm_end;
        rec.flags = unlinked ? FIND_VMA_REC_UNLINKED : 0;
        bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
        return 0;
}
