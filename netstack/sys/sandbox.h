// The sandbox: what the `slipway` process gives up once it is set up, as
// passt does.
//
// Theory of operation
//   enter_sandbox() runs once, after the stack, its transports, listeners,
//   pcap file and control socket exist and before the loop runs. In order:
//   1. capabilities: every capability outside SandboxOptions::keep leaves
//      the bounding, ambient, inheritable, permitted and effective sets
//      (a process without capabilities, e.g. a user's, loses nothing);
//   2. PR_SET_NO_NEW_PRIVS: no exec can ever gain privileges;
//   3. a seccomp filter (libseccomp, all threads) that allows the system
//      calls of the data path, the control socket, the DNS proxy's file
//      reads, the TFTP server's (openat2 below its directory, pread), pcap
//      writes, SIGHUP reloads and signal handling, and - only
//      when namespace_helpers is set (`serve` with a control socket, whose
//      add-port may open a TAP in a namespace) - the fork, setns and wait of
//      the namespace helper (sys/netns.h). Nothing else: no execve, no
//      ptrace, no mount, no unshare, no module or key calls, no bpf.
//   A system call outside the list raises SIGSYS (SECCOMP_RET_TRAP); the
//   handler writes "slipway: critical: sandbox: system call NAME (NR) is not
//   allowed; exiting" to stderr and exits with 159 (128 + SIGSYS), so a
//   missing entry is a clear line, never a hang.
//
// Limits: x86-64 and aarch64 names (libseccomp resolves each name for the
// running architecture; a name the architecture lacks is skipped). The
// filter is inherited by children forked afterwards.
#pragma once

#include <string>
#include <vector>

namespace slipway::sys {

struct SandboxOptions {
  // Capabilities kept (linux/capability.h numbers), where the process has
  // them: binding published ports below 1024, ICMP raw sockets.
  std::vector<int> keep;
  // Allow the namespace helper's fork/setns/wait (and keep CAP_SYS_ADMIN,
  // CAP_NET_ADMIN) for ports opened in a namespace after set-up.
  bool namespace_helpers = false;
};

// The default set to keep: CAP_NET_BIND_SERVICE, CAP_NET_RAW.
std::vector<int> default_kept_capabilities();

// Applies the sandbox to the calling process; throws std::runtime_error
// naming the step that failed.
void enter_sandbox(const SandboxOptions& options);

// False in a sanitizer build, which loads no seccomp filter (LeakSanitizer
// traces the process at exit); capabilities and no-new-privileges still apply.
bool sandbox_filters_syscalls();

}  // namespace slipway::sys
