/* Test support: starts tests/fixture-proc as a live target process and reads what it reports. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define FIXTURE_KEYS_MAX 32

struct fixture {
        pid_t pid;
        int stdin_fd;           /* closing it ends the process */
        char dir[64];           /* temporary directory of its files */
        size_t n_keys;
        char keys[FIXTURE_KEYS_MAX][32];
        char values[FIXTURE_KEYS_MAX][64];
};

/* Starts the fixture with n_vmas extra anonymous VMAs and, if with_files, the file, memfd
 * and shared mappings; waits until it is ready. 0 or -errno. */
int fixture_start(long n_vmas, int with_files, struct fixture *ret);

/* The same, running as uid/gid (no supplementary groups; -1: unchanged), and made
 * non-dumpable with prctl(PR_SET_DUMPABLE, 0) when asked. */
int fixture_start_as(long n_vmas, int with_files, uid_t uid, gid_t gid, int nondumpable, struct fixture *ret);

/* The same in a new user namespace created by creator (uid and gid; -1: stays root), whose
 * ids 0..count-1 root maps to outside..outside+count-1 (as newuidmap would); the fixture
 * runs as uid and gid 0 in it, non-dumpable when asked. 0 or -errno. */
int fixture_start_userns(uid_t creator, uid_t outside, unsigned count, int nondumpable, struct fixture *ret);

/* Ends a forked child that ran code under test: with its line counters written first in a
 * coverage build (_exit() skips that, and the counters of what the child ran would be lost). */
void test_child_exit(int status) __attribute__((noreturn));

/* Forks a child that runs child_main(in, out) on two pipes (it must not return) and hands the
 * parent's ends: *ret_to (the child's in) and *ret_from (its out). The child's pid, or -errno. */
pid_t test_fork_piped(void (*child_main)(int in, int out), int *ret_to, int *ret_from);

/* Runs fn(arg) in a forked child as uid/gid (setgroups, setresgid, setresuid: no
 * capabilities left) and returns its exit status (0-255), or -errno. */
int run_as(uid_t uid, gid_t gid, int (*fn)(void *arg), void *arg);

/* Whether uid/gid (no supplementary groups, no capabilities) may read /proc/PID/maps itself,
 * tried in a forked child: 0, or the -errno that opening or reading it gave. */
int test_maps_readable_as(uid_t uid, gid_t gid, pid_t pid);

/* Makes the calling process uid/gid with exactly the capabilities systemd/memmapd.service.in
 * gives the daemon, as the unit does (User=, Group=, AmbientCapabilities=,
 * CapabilityBoundingSet=, SecureBits=noroot-locked, NoNewPrivileges=yes): permitted,
 * effective, inheritable and ambient CAP_SYS_PTRACE CAP_DAC_READ_SEARCH CAP_SETUID
 * CAP_SETGID, so they survive an exec. 0 or -errno. */
int test_become_service_user(uid_t uid, gid_t gid);

/* The effective set test_become_service_user() leaves, as /proc/PID/status shows it. */
uint64_t test_service_caps(void);

/* The value it printed for key, parsed as a number (0x... or decimal); 0 when missing. */
uint64_t fixture_get(const struct fixture *f, const char *key);
const char *fixture_get_string(const struct fixture *f, const char *key);

/* Ends the process, reaps it and removes its files. */
void fixture_stop(struct fixture *f);

/* Whether the process runs /bin/cat now (its /proc/PID/exe ends in "/cat" and its maps name
 * it): the fixture exec()s it on 'x'. */
int fixture_runs_cat(pid_t pid);

/* One line of /proc/PID/maps as the kernel wrote it, read by the test (never by the daemon's
 * parser): the independent word on a process's mappings. */
struct test_vma {
        uint64_t start, end, offset, inode;
        char perms[5];
        bool exec;              /* perms[2] == 'x' */
};

/* pid's /proc/PID/maps now: how many lines (up to max) went into v, or -errno. */
ssize_t test_read_maps(pid_t pid, struct test_vma *v, size_t max);

/* Path of a built program named by an environment variable the test harness sets
 * (FIXTURE_PROC, MEMMAPD, MEMCTL), else the fallback relative to the build dir. */
const char *test_program(const char *env, const char *fallback);

/* Runs a shell command and returns its whole stdout (malloc'd), or NULL. */
char *test_run_capture(const char *cmd);

/* The build ID `readelf -n` prints for path, as lower-case hex into ret: 1, or 0 when it
 * names none (binutils is a test dependency: tools/setup.sh installs it). */
int test_readelf_build_id(const char *path, char *ret, size_t size);

/* The value `nm` (dynamic: `nm -D`) gives symbol in binary; 0 when it has none. */
uint64_t test_nm_symbol(const char *binary, const char *symbol, int dynamic);

/* A memmapd started by a test on a private socket. */
struct test_daemon {
        pid_t pid;
        char dir[64];
        char socket[128];
};

/* Starts $MEMMAPD --socket DIR/io.memmapd with the extra arguments (NULL-terminated) and
 * waits until the socket answers. Retention of exited processes is off unless the extra
 * arguments turn it on (--set=RetainExitedSec=N). 0 or -errno. */
int test_daemon_start(const char *const *extra_args, struct test_daemon *ret);

/* The same, the daemon running as uid/gid with the unit's capabilities only
 * (test_become_service_user()); uid -1: as the caller. DIR belongs to uid. */
int test_daemon_start_as(uid_t uid, gid_t gid, const char *const *extra_args, struct test_daemon *ret);
/* Set: daemons started next meet ENOSYS for openat2 (a seccomp filter), as under old kernels. */
extern bool test_daemon_without_openat2;

/* SIGTERM, then reaps it; returns its exit status (or 128+signal). */
int test_daemon_stop(struct test_daemon *d);

/* A blocking connection to a socket path, or -errno. */
int test_connect(const char *path);

/* Sends msg plus its NUL terminator. 0 or -errno. */
int test_send(int fd, const char *msg);

/* Receives one NUL-terminated message (malloc'd), or NULL on EOF or error. Keeps the bytes
 * after the NUL for the next call in a small per-fd buffer. */
char *test_recv(int fd);

/* Sends one call and returns its reply. */
char *test_call(int fd, const char *msg);

/* Field n (>= 3) of /proc/PID/stat as a number, read independently of the daemon's parser
 * so that tests check it. 0 and *ret set, or -errno (-EBADMSG for an unexpected text). */
int test_proc_stat_field(pid_t pid, unsigned n, uint64_t *ret);

/* A "Key:   N kB" line of /proc/PID/status (VmRSS, VmHWM...), in KiB; -1 when missing. */
long test_proc_status_kib(pid_t pid, const char *key);

/* Makes pid the next pid the kernel gives out in the caller's pid namespace (writes pid - 1 to
 * /proc/sys/kernel/ns_last_pid: needs root there). Whether that worked. */
bool test_set_next_pid(pid_t pid);

/* Waits until the clock has left tick t (/proc/PID/stat start times count USER_HZ ticks of
 * CLOCK_BOOTTIME), so that a process started next cannot share it. */
void test_wait_past_tick(uint64_t t);

/* Whether the daemon at socket keeps layouts under BPF tracking (GetStatus "tracking"): 1,
 * 0 ("none"), or -errno. */
int test_daemon_tracking_bpf(const char *socket);

/* Prints "# load average: ..." (/proc/loadavg) after prefix: numbers are reported with it. */
void test_print_loadavg(const char *prefix);
