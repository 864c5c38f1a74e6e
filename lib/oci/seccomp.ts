/**
 * containerd's default seccomp profile (the one `ctr run --seccomp` and
 * nerdctl apply), built for a spec: a syscall allowlist with EPERM for
 * everything else, extra syscalls for the capabilities the process holds,
 * the host architecture's own syscalls, and `clone` without namespace flags
 * unless the process has CAP_SYS_ADMIN. Among what it refuses: `keyctl`,
 * `add_key` and `request_key` (the kernel keyrings are not namespaced),
 * `unshare` and namespace-creating `clone`, `mount`, `bpf`, `perf_event_open`.
 *
 * @module
 */

import type { OciSpec } from "./spec.ts";

/** One syscall rule of a seccomp profile (OCI runtime spec `linux.seccomp.syscalls[]`). */
export interface SeccompSyscall {
  /** Syscall names. */
  names: string[];
  /** `SCMP_ACT_ALLOW`, `SCMP_ACT_ERRNO`, ... */
  action: string;
  /** The errno for `SCMP_ACT_ERRNO`. */
  errnoRet?: number;
  /** Argument conditions (all must hold). */
  args?: { index: number; value: number; valueTwo?: number; op: string }[];
}

/** A seccomp profile as the OCI runtime spec carries it (`linux.seccomp`). */
export interface SeccompProfile {
  /** What happens to syscalls no rule names. */
  defaultAction: string;
  /** The default action's errno (EPERM when absent). */
  defaultErrnoRet?: number;
  /** The architectures the filter covers. */
  architectures: string[];
  /** The rules. */
  syscalls: SeccompSyscall[];
}

// The allowlist every process gets (containerd 1.6's contrib/seccomp profile).
const ALWAYS =
  `accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64
fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs
fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd
getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32
getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32
getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter io_uring_register
io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr
lstat lstat64 madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat
mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv
msgsnd msync munlock munlockall munmap nanosleep newfstatat _newselect open openat openat2 pause
pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll
ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64
pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall
rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid
setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid
setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit
set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr shmat
shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socket
socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit
umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid
waitpid write writev`;

/** Syscalls a capability in the bounding set unlocks. */
const BY_CAPABILITY: Record<string, string> = {
  CAP_DAC_READ_SEARCH: "open_by_handle_at",
  CAP_SYS_ADMIN: `bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie
    mount mount_setattr move_mount name_to_handle_at open_tree perf_event_open quotactl
    quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare`,
  CAP_SYS_BOOT: "reboot",
  CAP_SYS_CHROOT: "chroot",
  CAP_SYS_MODULE: "delete_module init_module finit_module",
  CAP_SYS_PACCT: "acct",
  CAP_SYS_PTRACE: "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
  CAP_SYS_RAWIO: "iopl ioperm",
  CAP_SYS_TIME: "settimeofday stime clock_settime clock_settime64",
  CAP_SYS_TTY_CONFIG: "vhangup",
  CAP_SYS_NICE: "get_mempolicy mbind set_mempolicy",
  CAP_SYSLOG: "syslog",
  CAP_BPF: "bpf",
  CAP_PERFMON: "perf_event_open",
};

/** The architectures the filter covers, and syscalls of the host's own architecture. */
const BY_ARCH: Record<string, { arches: string[]; extra: string }> = {
  x86_64: {
    arches: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    extra: "arch_prctl modify_ldt",
  },
  aarch64: {
    arches: ["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"],
    extra: "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
  },
  riscv64: { arches: ["SCMP_ARCH_RISCV64"], extra: "riscv_flush_icache" },
};

/** `personality` values allowed to every process (Linux, and the 32-bit variants). */
const PERSONALITIES = [0x0, 0x0008, 0x20000, 0x20008, 0xffffffff];

/** CLONE_NEWNS | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWCGROUP. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;
const ENOSYS = 38;

const names = (text: string): string[] => text.split(/\s+/).filter((n) => n !== "");

/** Whether this host's kernel is at least `major.minor` (unknown counts as new enough). */
export function kernelAtLeast(major: number, minor: number): boolean {
  let release = "";
  try {
    release = Deno.osRelease();
  } catch { /* no sys permission: assume a current kernel */ }
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return true;
  return Number(m[1]) > major || (Number(m[1]) === major && Number(m[2]) >= minor);
}

/**
 * containerd's default seccomp profile for a spec: allow the common
 * syscalls, those the process's bounding capabilities unlock and those of
 * the host architecture; everything else fails with EPERM.
 *
 * @param spec The spec whose `process.capabilities.bounding` decides the
 *   extra syscalls.
 * @param arch The host architecture.
 * @returns The profile, ready for `spec.linux.seccomp`.
 *
 * @example
 * ```ts
 * import { defaultSeccompProfile, defaultSpec } from "@wfe/containerd/api";
 *
 * const spec = defaultSpec("default", "demo");
 * spec.linux.seccomp = defaultSeccompProfile(spec);
 * ```
 */
export function defaultSeccompProfile(
  spec: Pick<OciSpec, "process">,
  arch: string = Deno.build.arch,
): SeccompProfile {
  const allow = (list: string[]): SeccompSyscall => ({
    names: list,
    action: "SCMP_ACT_ALLOW",
  });
  const syscalls: SeccompSyscall[] = [allow(names(ALWAYS))];
  for (const value of PERSONALITIES) {
    syscalls.push({
      names: ["personality"],
      action: "SCMP_ACT_ALLOW",
      args: [{ index: 0, value, op: "SCMP_CMP_EQ" }],
    });
  }
  if (kernelAtLeast(4, 8)) syscalls.push(allow(["ptrace"]));
  const host = BY_ARCH[arch];
  if (host) syscalls.push(allow(names(host.extra)));
  const bounding = spec.process.capabilities.bounding ?? [];
  for (const cap of bounding) {
    const extra = BY_CAPABILITY[cap];
    if (extra) syscalls.push(allow(names(extra)));
  }
  if (!bounding.includes("CAP_SYS_ADMIN")) {
    // clone only without namespace flags (s390 passes flags in the second argument).
    syscalls.push({
      names: ["clone"],
      action: "SCMP_ACT_ALLOW",
      args: [{
        index: arch.startsWith("s390") ? 1 : 0,
        value: CLONE_NAMESPACE_FLAGS,
        valueTwo: 0,
        op: "SCMP_CMP_MASKED_EQ",
      }],
    });
    // clone3 cannot be filtered by flags: ENOSYS makes libc fall back to clone.
    syscalls.push({ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS });
  }
  return { defaultAction: "SCMP_ACT_ERRNO", architectures: host?.arches ?? [], syscalls };
}
