// Running a function in another network namespace and handing back an fd.
//
// Theory of operation
//
//   A file descriptor made in a network namespace keeps answering for that
//   namespace for its whole life: a TAP device created there stays there, a
//   netlink socket created there dumps that namespace's tables. So to get one
//   we need not move our own process (it must stay in the host's namespaces,
//   and setns() into a user namespace needs a single-threaded process): a
//   forked child enters the namespace, makes the fd and passes it back over a
//   socketpair (SCM_RIGHTS).
//
//   open_netns() opens the target (a path such as /proc/PID/ns/net or
//   /run/netns/NAME, or a PID), checks with NS_GET_NSTYPE that it is a
//   network namespace and, when we are not root, opens the user namespace
//   that owns it (NS_GET_USERNS): without root only that user namespace
//   grants the capabilities setns() needs (slirp4netns does the same). When
//   that is our own user namespace it is skipped, since setns() into it would
//   fail. A caller may name the user namespace to enter instead (`userns`,
//   slirp4netns's --userns-path); it is entered whoever we are, unless it is
//   our own.
//
//   run_in_netns() forks a Helper. The child setns()es into the owning user
//   namespace (if any), then the network namespace, calls the caller's
//   `work`, and sends one message: how entering went, the caller's fixed-size
//   Report, and the fd `work` returned (if it returned one). Then it exits;
//   the parent reaps it. A failure to enter is reported by this module
//   ("cannot enter network namespace PATH: REASON"); what `work` reports is
//   the caller's to put into words.
//
//   Helper is the fork and the channel underneath, also used on its own by
//   `slipway run` (netstack/ns/), whose child unshare()s new namespaces and
//   talks to the parent twice.
//
// Limits and timeouts
//
//   - The parent waits at most kHelperTimeout (10 s) for each message
//     (SO_RCVTIMEO on its end of the socketpair); then it kills the child
//     (SIGKILL), reaps it and throws "the HELPER did not answer within 10 s".
//   - One message is one SOCK_SEQPACKET datagram of a fixed size known to
//     both sides (the same program on both ends, so a plain struct is the
//     message); a message of another size, or EOF, is "the HELPER exited
//     unexpectedly". At most one fd comes with a message.
//   - The child runs in a copy of a process that may have other threads: it
//     makes system calls only (no allocation, no locks, no logging) until it
//     exits or execs. Everything it needs is prepared before the fork; `work`
//     and a Helper's child function must keep to that too.
//   - A Helper that is destroyed before wait() or release() kills and reaps
//     its child, so no path (exceptions included) leaves one running or a
//     zombie behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include "netstack/sys/fd.h"

namespace slipway::sys {

inline constexpr std::chrono::seconds kHelperTimeout{10};

// The words a helper's errors use: "the namespace helper did not answer
// within 10 s", "the sock_diag helper sent no socket".
struct HelperNames {
  const char* helper;  // "namespace helper"
  const char* fd;      // what it hands back: "TAP fd", "socket"
};

// A forked child and the parent's end of a SOCK_SEQPACKET socketpair to it.
class Helper {
 public:
  // Forks. The child closes the parent's end and calls child_main(sock) with
  // its own end. child_main must not return (it ends with _exit() or exec;
  // if it returns, the child _exit(1)s) and must not throw (the child would
  // terminate). Throws SystemError ("cannot create a socketpair", "cannot
  // fork").
  template <class ChildMain>
  Helper(const HelperNames& names, ChildMain&& child_main, std::chrono::seconds timeout = kHelperTimeout)
      : Helper(names, timeout, &call<std::remove_reference_t<ChildMain>>, &child_main) {}
  Helper(const Helper&) = delete;
  Helper& operator=(const Helper&) = delete;
  // Kills (SIGKILL) and reaps the child unless wait() or release() came first.
  ~Helper();

  pid_t pid() const { return pid_; }
  const HelperNames& names() const { return names_; }

  // Receives one message of exactly message.size() bytes, and the fd that
  // came with it (if any) into `fd`. Throws std::runtime_error: "the HELPER
  // did not answer within N s", "cannot talk to the HELPER: REASON", "the
  // HELPER exited unexpectedly".
  void receive(std::span<std::byte> message, Fd& fd);
  // Sends one message. Throws "cannot talk to the HELPER: REASON".
  void send(std::span<const std::byte> message);
  // Waits until the child exits by itself and reaps it.
  void wait();
  // Lets the child live on (it became the command `slipway run` started):
  // the caller reaps it. Returns its pid.
  pid_t release();

 private:
  using ChildFn = void (*)(void* child_main, int sock) noexcept;
  Helper(const HelperNames& names, std::chrono::seconds timeout, ChildFn child, void* child_main);

  template <class ChildMain>
  static void call(void* child_main, int sock) noexcept {
    (*static_cast<ChildMain*>(child_main))(sock);
  }

  HelperNames names_;
  std::chrono::seconds timeout_;
  pid_t pid_ = -1;
  Fd sock_;
};

// Throws "the HELPER sent no FD" when `fd` is empty.
void require_fd(const HelperNames& names, const Fd& fd);

// Child side: sends `message` as one datagram with `fd` attached when it is
// >= 0 (SCM_RIGHTS). System calls only. True when all of it was sent.
bool send_to_parent(int sock, std::span<const std::byte> message, int fd = -1) noexcept;

// A network namespace, opened to be entered.
struct Netns {
  std::string path;  // for messages: the path given, or /proc/PID/ns/net
  Fd net;            // the namespace file
  Fd user;           // its owning user namespace, to enter first; empty: stay in ours
};

// `target`: a path (/proc/PID/ns/net, /run/netns/NAME) or a PID. Throws
// std::runtime_error: "no network namespace given", "cannot open network
// namespace PATH: REASON", "PATH is not a namespace", "PATH is not a network
// namespace", "cannot find the user namespace that owns PATH: REASON".
// `userns`: a user namespace file to enter first instead of the owner
// ("" for the default above); "cannot open user namespace PATH: REASON",
// "PATH is not a user namespace".
Netns open_netns(const std::string& target, const std::string& userns = "");

// What run_in_netns() hands back: the child's Report and the fd `work`
// returned (empty if it returned -1).
template <class Report>
struct Handoff {
  Report report{};
  Fd fd;
};

namespace detail {

// How entering went, in the child; sent ahead of the caller's Report.
struct Entered {
  enum class Stage : uint32_t { kEntered = 0, kUserNamespace, kNetNamespace };
  Stage stage = Stage::kEntered;
  int32_t error = 0;
};

template <class Report>
struct NetnsMessage {
  Entered entered;
  Report report;
};

// Child side: setns() into ns.user (if open), then ns.net. False (with
// `entered` saying where and why) on failure. System calls only.
bool enter(const Netns& ns, Entered& entered) noexcept;
// Child side: sends `message` and `fd`, then _exit()s.
[[noreturn]] void finish(int sock, std::span<const std::byte> message, int fd) noexcept;
// Parent side: throws "cannot enter the user namespace that owns PATH:
// REASON" or "cannot enter network namespace PATH: REASON" for a failure.
void check_entered(const Netns& ns, const Entered& entered);

}  // namespace detail

// Runs `work` in a forked child inside `ns` (see the file comment) and
// returns what it reported and the fd it made. `work` is called as
// `int work(Report& report)` in the child, after entering: it fills `report`
// (a trivially copyable struct the caller defines) and returns an fd to hand
// back, or -1; system calls only. Throws std::runtime_error when the helper
// fails or cannot enter; a failure `work` reports is for the caller to check
// in Handoff::report, then Handoff::fd (require_fd()).
template <class Report, class Work>
Handoff<Report> run_in_netns(const Netns& ns, const HelperNames& names, Work&& work,
                             std::chrono::seconds timeout = kHelperTimeout) {
  static_assert(std::is_trivially_copyable_v<Report>, "a Report crosses the socketpair as bytes");
  detail::NetnsMessage<Report> message{};
  auto child_main = [&](int sock) {
    int fd = -1;
    if (detail::enter(ns, message.entered)) fd = work(message.report);
    detail::finish(sock, std::as_bytes(std::span(&message, 1)), fd);
  };
  Helper helper(names, child_main, timeout);
  Handoff<Report> out;
  helper.receive(std::as_writable_bytes(std::span(&message, 1)), out.fd);
  helper.wait();
  detail::check_entered(ns, message.entered);
  out.report = message.report;
  return out;
}

}  // namespace slipway::sys
