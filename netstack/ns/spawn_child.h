// The child side of `slipway run` (internal to netstack/ns).
//
// Theory of operation. spawn_child() is what the forked sys::Helper runs for
// spawn_in_new_namespace() (namespace.cc has the parent's side and the whole
// handshake). On the helper's socket, one Report per message:
//
//   1. unshare(CLONE_NEWUSER); sends a Report (ok, or the errno).
//   2. waits for the parent's one "go" byte (the ID maps are written); EOF
//      means the parent gave up or died: exit.
//   3. unshare(CLONE_NEWNET | CLONE_NEWNS); makes every mount private
//      (MS_REC | MS_PRIVATE); creates and configures the TAP
//      (link_config.h); sets up the mounts (mounts.h). Sends a Report and,
//      on success, the TAP fd (SCM_RIGHTS).
//   5. closes every fd but 0, 1, 2 (close_range, else one by one up to
//      RLIMIT_NOFILE or 65536), restores default signal handling and an
//      empty mask, sets PR_SET_PDEATHSIG(SIGTERM) (and exits if the parent
//      died before that), waits for SLAAC (slaac_wait.h), and execs the
//      command (execvp). If exec fails it writes "slipway: cannot run 'X':
//      REASON" to stderr and exits 127.
//
// Limits: from fork to exec only system calls (no allocation, no logging):
// slipway may be multithreaded. Everything is prepared in the SpawnPlan
// before the fork. PR_SET_PDEATHSIG fires when the *thread* that called
// spawn exits.
#pragma once

#include <sys/types.h>

#include <string>

#include "netstack/ns/namespace.h"
#include "netstack/ns/slaac_wait.h"
#include "netstack/ns/sysctls.h"

namespace slipway::ns {

// Everything the child needs, prepared before the fork. The pointers stay
// valid in the child (it has a copy of the parent's memory).
struct SpawnPlan {
  const GuestInterface* iface;
  const SysctlPlan* sysctls;
  const SlaacWait* slaac;
  const std::string* resolv_conf;
  char* const* argv;  // NULL-terminated
  pid_t parent;       // getpid() of the parent
};

// Runs steps 1 to 5 of the file comment on `sock`; never returns.
[[noreturn]] void spawn_child(const SpawnPlan& plan, int sock);

}  // namespace slipway::ns
