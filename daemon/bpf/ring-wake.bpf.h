/* Wake-ups of the daemon held back for a while after one: shared by the BPF programs that feed it ring buffers. */
#pragma once

/* Each record written while the reader had read everything wakes it: an irq_work self-IPI in
 * the writing process (which a paravirtualized guest pays with an exit) and a turn of the
 * daemon's loop, once per fork, exit, exec or capture. Once the daemon also drains on a timer
 * armed after every drain (it sets *delay_ns to the timer's period), a record sent within
 * *delay_ns of the last wake-up wakes nobody: the drain that wake-up caused armed the timer,
 * which takes it, and arms the timer again while it finds records. The first record after a
 * quiet period wakes at once. *delay_ns 0: the kernel's own rule for every record. */
static __always_inline __u64 ring_wake_flags(__u64 *delay_ns, __u64 *last_wake_ns) {
        __u64 delay = *(volatile __u64 *) delay_ns, now;

        if (delay == 0)
                return 0;
        now = bpf_ktime_get_ns();
        if (now - *(volatile __u64 *) last_wake_ns < delay)
                return BPF_RB_NO_WAKEUP;
        *(volatile __u64 *) last_wake_ns = now;
        return BPF_RB_FORCE_WAKEUP;
}
