// See sandbox.h.
#include "netstack/sys/sandbox.h"

#include <linux/capability.h>
#include <seccomp.h>
#include <spdlog/spdlog.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace slipway::sys {
namespace {

// What the running process calls once set up (see the file comment).
constexpr const char* kAllowed[] = {
    // I/O on fds
    "read", "write", "readv", "writev", "pread64", "pwrite64", "close", "lseek", "fcntl", "ioctl", "dup", "dup2",
    "dup3", "fsync", "fdatasync", "ftruncate",
    // files: the DNS hosts file, the configuration (SIGHUP), /proc, pcap, TFTP
    "open", "openat", "openat2", "stat", "fstat", "lstat", "newfstatat", "statx", "access", "faccessat", "faccessat2",
    "readlink", "readlinkat", "getdents64", "unlink", "unlinkat", "rmdir",
    // sockets
    "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname", "getpeername",
    "setsockopt", "getsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown",
    // the event loop (libuv)
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll",
    "select", "pselect6", "eventfd2", "pipe", "pipe2", "timerfd_create", "timerfd_settime", "timerfd_gettime",
    // signals, the child of `run`, exit
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "kill", "tgkill", "tkill", "wait4", "waitid",
    "exit", "exit_group", "restart_syscall",
    // process and time
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getrlimit", "prlimit64",
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time", "uname",
    "getrandom", "sched_yield", "sched_getaffinity", "sysinfo",
    // memory and threads (malloc, libuv's thread pool, spdlog)
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "futex", "set_robust_list", "get_robust_list",
    "rseq", "membarrier",
};

// Only with SandboxOptions::namespace_helpers (sys/netns.h's helper: fork,
// enter the namespace, open the TAP, hand it back; and a namespace guest's
// /etc/netns/NAME/resolv.conf, cli/port_spec.cc).
constexpr const char* kNamespaceHelpers[] = {
    "fork", "vfork", "clone", "clone3", "setns", "set_tid_address", "capget", "capset", "prctl", "mkdir", "mkdirat",
};

// A sanitizer build (scripts/build-asan.sh) loads no seccomp filter:
// LeakSanitizer stops the process's threads from a child that traces them
// at exit, with calls no allow-list of slipway's should carry.
#if defined(__SANITIZE_ADDRESS__)
#define SLIPWAY_SANITIZER_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SLIPWAY_SANITIZER_BUILD 1
#endif
#endif

extern "C" void on_sigsys(int, siginfo_t* info, void*) {
  // Async-signal-safe as far as it matters: the process ends right here.
  int nr = info->si_syscall;
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
  char line[200];
  int n = std::snprintf(line, sizeof line,
                        "slipway: critical: sandbox: system call %s (%d) is not allowed; exiting (--no-sandbox "
                        "turns the sandbox off; please report this)\n",
                        name != nullptr ? name : "?", nr);
  if (n > 0) {
    ssize_t w = ::write(STDERR_FILENO, line, static_cast<size_t>(std::min<int>(n, sizeof line - 1)));
    (void)w;
  }
  ::_exit(128 + SIGSYS);
}

[[noreturn]] void fail(const std::string& step, int err) {
  throw std::runtime_error("sandbox: " + step + ": " + std::strerror(err));
}

void drop_capabilities(std::vector<int> keep) {
  // The bounding set first (this needs CAP_SETPCAP, which goes last).
  for (int cap = 0; cap <= 63; ++cap) {
    if (std::find(keep.begin(), keep.end(), cap) != keep.end()) continue;
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;  // past the kernel's last capability
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EPERM) fail("dropping capability " + std::to_string(cap), errno);
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &header, data) < 0) fail("capget", errno);
  __user_cap_data_struct want[2]{};
  for (int cap : keep) {
    auto bit = 1u << (cap % 32);
    auto& w = want[cap / 32];
    const auto& have = data[cap / 32];
    if (have.permitted & bit) w.permitted |= bit;
    if (have.effective & bit) w.effective |= bit;
  }
  if (syscall(SYS_capset, &header, want) < 0) fail("capset", errno);
}

}  // namespace

std::vector<int> default_kept_capabilities() { return {CAP_NET_BIND_SERVICE, CAP_NET_RAW}; }

bool sandbox_filters_syscalls() {
#ifdef SLIPWAY_SANITIZER_BUILD
  return false;
#else
  return true;
#endif
}

void enter_sandbox(const SandboxOptions& options) {
  std::vector<int> keep = options.keep;
  if (options.namespace_helpers) {
    keep.push_back(CAP_SYS_ADMIN);
    keep.push_back(CAP_NET_ADMIN);
  }
  drop_capabilities(keep);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail("PR_SET_NO_NEW_PRIVS", errno);

#ifdef SLIPWAY_SANITIZER_BUILD
  spdlog::debug("sandbox: a sanitizer build: no seccomp filter (capabilities dropped, no new privileges)");
  return;
#endif
  struct sigaction sa {};
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSYS, &sa, nullptr) < 0) fail("SIGSYS handler", errno);

  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
  if (ctx == nullptr) throw std::runtime_error("sandbox: seccomp_init failed");
  auto allow = [&](const char* name) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return;  // not on this architecture
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    if (rc < 0) {
      seccomp_release(ctx);
      fail(std::string("allowing ") + name, -rc);
    }
  };
  for (const char* name : kAllowed) allow(name);
  if (options.namespace_helpers)
    for (const char* name : kNamespaceHelpers) allow(name);
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
  if (rc == 0) rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc < 0) fail("loading the seccomp filter", -rc);
}

}  // namespace slipway::sys
