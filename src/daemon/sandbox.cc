// Capabilities dropped and the seccomp filter (see sandbox.h).
#include "daemon/sandbox.h"

#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <ucontext.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

namespace strata::daemon {

namespace {

// What stratad calls once it serves, found by running every system test under the filter
// (docs/operating.md says how to find one that is missing). Grouped by what needs them.
constexpr const char* kAllowed[] = {
    // files: reloads read the config, rules and keys files; state saves write a temporary
    // file, sync it, rename it over and sync the directory
    "read", "write", "readv", "writev", "pread64", "pwrite64", "close", "open", "openat",
    "fstat", "newfstatat", "stat", "lstat", "statx", "lseek", "fsync", "fdatasync", "rename",
    "renameat", "renameat2", "unlink", "unlinkat", "getdents64", "readlink", "readlinkat",
    "access", "faccessat", "faccessat2", "fcntl", "getcwd", "umask",
    // memory
    "brk", "mmap", "munmap", "mprotect", "mremap", "madvise",
    // threads, signals, sleeping
    "futex", "set_robust_list", "rseq", "sched_yield", "sched_getaffinity", "nanosleep",
    "clock_nanosleep", "exit", "exit_group", "gettid", "getpid", "tgkill", "rt_sigprocmask",
    "rt_sigaction", "rt_sigreturn", "rt_sigtimedwait", "sigaltstack", "restart_syscall",
    // time: the kernel source reads its state (adjtimex and clock_adjtime only read without
    // CAP_SYS_TIME, which stratad does not hold)
    "clock_gettime", "clock_getres", "gettimeofday", "time", "adjtimex", "clock_adjtime",
    // the packet path, the mirror source's queries, the control socket, the metrics port
    // (libmicrohttpd), sd_notify
    "recvmmsg", "sendmmsg", "recvmsg", "sendmsg", "recvfrom", "sendto", "connect", "accept",
    "accept4", "shutdown", "getsockopt", "setsockopt", "getsockname", "getpeername", "poll",
    "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
    "eventfd2", "pipe2",
    // state file names, who we are (mode 6), resource use
    "getrandom", "uname", "sysinfo", "getrusage", "prlimit64", "getuid", "geteuid", "getgid",
    "getegid",
#ifdef STRATA_SANITIZER_RUNTIME
    // Only in the sanitizer trees: LeakSanitizer stops the threads with ptrace from a helper
    // task at exit, finding them with getdents (not getdents64) in /proc/self/task; a report
    // runs llvm-symbolizer (fork, exec, pipes) and reads /proc.
    "getdents", "ptrace", "wait4", "waitid", "fork", "vfork", "clone3", "execve", "pipe", "dup", "dup2",
    "dup3", "prctl", "getppid", "setrlimit", "kill", "personality", "mincore", "sched_getparam",
    "sched_getscheduler", "getpgid", "getsid", "arch_prctl",
#endif
};

// The name of every call number, resolved before the filter goes in: the SIGSYS handler may
// only call async-signal-safe functions.
constexpr int kNames = 512;
std::array<std::array<char, 24>, kNames> g_names{};

void append(char*& out, const char* end, const char* text) {
  while (*text != '\0' && out < end) *out++ = *text++;
}

void append_number(char*& out, const char* end, unsigned long v) {
  char digits[24];
  int len = 0;
  do {
    digits[len++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (len > 0 && out < end) *out++ = digits[--len];
}

void on_sigsys(int, siginfo_t* info, void* context) {
  char buf[256];
  char* out = buf;
  const char* end = buf + sizeof buf;
  const int nr = info->si_syscall;
  append(out, end, "stratad: seccomp: system call '");
  append(out, end, nr >= 0 && nr < kNames && g_names[nr][0] != '\0' ? g_names[nr].data() : "?");
  append(out, end, "' (");
  append_number(out, end, static_cast<unsigned long>(nr < 0 ? 0 : nr));
#if defined(__x86_64__)
  // Its first argument tells which use of a multiplexed call it was (prctl, ioctl, socket).
  const auto* uc = static_cast<const ucontext_t*>(context);
  append(out, end, ", first argument ");
  append_number(out, end, static_cast<unsigned long>(uc->uc_mcontext.gregs[REG_RDI]));
#else
  (void)context;
#endif
  append(out, end,
         ") is not allowed: stopping. Please report it; [server] seccomp = \"log\" lets it "
         "through and logs it\n");
  (void)!::write(STDERR_FILENO, buf, static_cast<size_t>(out - buf));
  // Die of the signal itself, as SCMP_ACT_KILL_PROCESS would.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGSYS, &dfl, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGSYS);
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ::raise(SIGSYS);
  ::_exit(128 + SIGSYS);
}

// A condition on argument `arg` (the macros of seccomp.h leave a field to zero-fill, which
// clang's -Wmissing-field-initializers refuses).
scmp_arg_cmp condition(unsigned arg, scmp_compare op, scmp_datum_t a, scmp_datum_t b = 0) {
  scmp_arg_cmp c{};
  c.arg = arg;
  c.op = op;
  c.datum_a = a;
  c.datum_b = b;
  return c;
}

std::string add(scmp_filter_ctx ctx, const char* name, uint32_t action, unsigned count = 0,
                const scmp_arg_cmp* args = nullptr) {
  const int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return "";  // not a call on this architecture
  const int rc = seccomp_rule_add_array(ctx, action, nr, count, args);
  if (rc != 0) return fmt::format("seccomp: rule for {}: {}", name, std::strerror(-rc));
  return "";
}

}  // namespace

std::span<const char* const> allowed_system_calls() { return kAllowed; }

std::string drop_capabilities() {
  // Ambient first (they need the permitted set), then the three sets of every capability.
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return fmt::format("clearing ambient capabilities: {}", std::strerror(errno));
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
  if (::syscall(SYS_capset, &header, data) != 0)
    return fmt::format("dropping capabilities: {}", std::strerror(errno));
  return "";
}

std::string install_seccomp(config::Seccomp mode) {
  if (mode == config::Seccomp::kOff) return "";
  for (int nr = 0; nr < kNames; ++nr) {
    if (char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr)) {
      std::strncpy(g_names[nr].data(), name, g_names[nr].size() - 1);
      std::free(name);
    }
  }
  const uint32_t otherwise = mode == config::Seccomp::kKill ? SCMP_ACT_TRAP : SCMP_ACT_LOG;
  scmp_filter_ctx ctx = seccomp_init(otherwise);
  if (ctx == nullptr) return "seccomp: cannot set up a filter (libseccomp)";
  struct Release {
    scmp_filter_ctx c;
    ~Release() { seccomp_release(c); }
  } release{ctx};
  if (const int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1); rc != 0)
    return fmt::format("seccomp: cannot apply to every thread: {}", std::strerror(-rc));
  std::string e;
  for (const char* name : kAllowed)
    if (e = add(ctx, name, SCMP_ACT_ALLOW); !e.empty()) return e;
#ifdef STRATA_SANITIZER_RUNTIME
  // LeakSanitizer's helper task is a clone without CLONE_THREAD.
  if (e = add(ctx, "clone", SCMP_ACT_ALLOW); !e.empty()) return e;
#else
  // Threads only, never a process.
  const scmp_arg_cmp thread[] = {condition(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)};
  if (e = add(ctx, "clone", SCMP_ACT_ALLOW, 1, thread); !e.empty()) return e;
  // clone3's flags are behind a pointer a filter cannot read: glibc falls back to clone.
  if (e = add(ctx, "clone3", SCMP_ACT_ERRNO(ENOSYS)); !e.empty()) return e;
#endif
  // Sockets of the families stratad speaks: UDP and TCP over IP, unix (sd_notify).
  for (const int family : {AF_UNIX, AF_INET, AF_INET6}) {
    const scmp_arg_cmp domain[] = {condition(0, SCMP_CMP_EQ, static_cast<scmp_datum_t>(family))};
    if (e = add(ctx, "socket", SCMP_ACT_ALLOW, 1, domain); !e.empty()) return e;
  }
  // prctl: naming a thread only (libmicrohttpd's thread names itself when it starts, which
  // may be just after the filter is in). The sanitizer trees allow every prctl.
#ifndef STRATA_SANITIZER_RUNTIME
  for (const int option : {PR_SET_NAME, PR_GET_NAME}) {
    const scmp_arg_cmp opt[] = {condition(0, SCMP_CMP_EQ, static_cast<scmp_datum_t>(option))};
    if (e = add(ctx, "prctl", SCMP_ACT_ALLOW, 1, opt); !e.empty()) return e;
  }
#endif
  // ioctl: whether stderr is a terminal, bytes waiting, non-blocking mode.
  for (const unsigned long request : {static_cast<unsigned long>(TCGETS),
                                      static_cast<unsigned long>(FIONREAD),
                                      static_cast<unsigned long>(FIONBIO)}) {
    const scmp_arg_cmp cmd[] = {condition(1, SCMP_CMP_EQ, request)};
    if (e = add(ctx, "ioctl", SCMP_ACT_ALLOW, 1, cmd); !e.empty()) return e;
  }
  if (mode == config::Seccomp::kKill) {
    struct sigaction sa {};
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(SIGSYS, &sa, nullptr) != 0)
      return fmt::format("seccomp: SIGSYS handler: {}", std::strerror(errno));
  }
  if (const int rc = seccomp_load(ctx); rc != 0)
    return fmt::format("seccomp: cannot load the filter: {}", std::strerror(-rc));
  return "";
}

}  // namespace strata::daemon
