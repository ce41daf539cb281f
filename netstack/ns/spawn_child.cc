// The child side of `slipway run`: see spawn_child.h.
#include "netstack/ns/spawn_child.h"

#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <span>

#include "netstack/ns/link_config.h"
#include "netstack/ns/mounts.h"
#include "netstack/ns/report.h"
#include "netstack/sys/netns.h"

namespace slipway::ns {
namespace {

bool send_report(int sock, const Report& report, int fd = -1) {
  return sys::send_to_parent(sock, std::as_bytes(std::span(&report, 1)), fd);
}

void close_fds_from(unsigned first) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, first, ~0U, 0) == 0) return;
#endif
  rlimit limit{};
  rlim_t last = 65536;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) last = limit.rlim_cur;
  for (rlim_t fd = first; fd < last; ++fd) close(static_cast<int>(fd));
}

void reset_signals() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  sigset_t empty;
  sigemptyset(&empty);
  sigprocmask(SIG_SETMASK, &empty, nullptr);
}

void write_stderr(const char* s) {
  ssize_t ignored = write(STDERR_FILENO, s, std::strlen(s));
  (void)ignored;
}

}  // namespace

void spawn_child(const SpawnPlan& plan, int sock) {
  Report report;
  // Step 1.
  if (unshare(CLONE_NEWUSER) < 0) {
    fail(report, Step::kUnshareUser);
    send_report(sock, report);
    _exit(1);
  }
  if (!send_report(sock, report)) _exit(1);
  // Wait for the ID maps (step 2). EOF: the parent gave up or died.
  char go = 0;
  if (recv(sock, &go, 1, 0) != 1) _exit(1);

  // Step 3.
  int tap = -1;
  bool ok = [&] {
    if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0) return fail(report, Step::kUnshareNetMount);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) {
      return fail(report, Step::kMakeMountsPrivate);
    }
    tap = create_configured_tap(*plan.iface, *plan.sysctls, report);
    if (tap < 0) return false;
    return set_up_mounts(*plan.iface, *plan.resolv_conf, report);
  }();
  if (!ok) {
    send_report(sock, report);
    _exit(1);
  }
  if (!send_report(sock, report, tap)) _exit(1);

  // Step 5. The TAP fd and the socket go with everything else but stdio.
  close_fds_from(3);
  reset_signals();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != plan.parent) _exit(1);  // the parent died before prctl
  if (plan.slaac->limit_ms > 0 && !wait_for_slaac_address(plan.iface->name.c_str(), plan.slaac->limit_ms)) {
    write_stderr(plan.slaac->warning.c_str());
  }
  execvp(plan.argv[0], plan.argv);
  int error = errno;
  write_stderr("slipway: cannot run '");
  write_stderr(plan.argv[0]);
  write_stderr("': ");
  write_stderr(strerror(error));
  write_stderr("\n");
  _exit(127);
}

}  // namespace slipway::ns
