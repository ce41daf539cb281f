// Helper, open_netns() and run_in_netns()'s child side: see netns.h.
#include "netstack/sys/netns.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "netstack/sys/error.h"

namespace slipway::sys {
namespace {

void reap(pid_t pid) {
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

std::string the(const HelperNames& names) { return std::string("the ") + names.helper; }

// One datagram's msghdr: one buffer, and room for one fd (SCM_RIGHTS) in
// its control part. Stays where it is made (the header points into it).
class FdMessage {
 public:
  FdMessage(void* data, size_t size) : iov_{data, size} {
    header_.msg_iov = &iov_;
    header_.msg_iovlen = 1;
  }
  FdMessage(const FdMessage&) = delete;
  FdMessage& operator=(const FdMessage&) = delete;

  msghdr* header() { return &header_; }
  // Sender: room for an fd, and `fd` in it.
  void attach(int fd) {
    expect_fd();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&header_);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
  }
  // Receiver: room for an fd.
  void expect_fd() {
    header_.msg_control = control_;
    header_.msg_controllen = sizeof control_;
  }
  // Receiver: the fd that came, or -1.
  int received_fd() {
    int received = -1;
    for (cmsghdr* cmsg = CMSG_FIRSTHDR(&header_); cmsg != nullptr; cmsg = CMSG_NXTHDR(&header_, cmsg)) {
      if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS && cmsg->cmsg_len == CMSG_LEN(sizeof(int))) {
        std::memcpy(&received, CMSG_DATA(cmsg), sizeof received);
      }
    }
    return received;
  }

 private:
  iovec iov_;
  msghdr header_{};
  alignas(cmsghdr) char control_[CMSG_SPACE(sizeof(int))] = {};
};

}  // namespace

Helper::Helper(const HelperNames& names, std::chrono::seconds timeout, ChildFn child, void* child_main)
    : names_(names), timeout_(timeout) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    throw SystemError("cannot create a socketpair", errno);
  }
  Fd parent_end(sv[0]);
  Fd child_end(sv[1]);
  timeval receive_timeout{static_cast<time_t>(timeout.count()), 0};
  setsockopt(parent_end.get(), SOL_SOCKET, SO_RCVTIMEO, &receive_timeout, sizeof receive_timeout);
  pid_ = fork();
  if (pid_ < 0) throw SystemError("cannot fork", errno);
  if (pid_ == 0) {
    parent_end.reset();
    child(child_main, child_end.get());
    _exit(1);
  }
  sock_ = std::move(parent_end);
}

Helper::~Helper() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    reap(pid_);
  }
}

void Helper::receive(std::span<std::byte> message, Fd& fd) {
  FdMessage msg(message.data(), message.size());
  msg.expect_fd();
  ssize_t n;
  do {
    n = recvmsg(sock_.get(), msg.header(), MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    throw std::runtime_error(the(names_) + " did not answer within " + std::to_string(timeout_.count()) + " s");
  }
  if (n < 0) throw SystemError("cannot talk to " + the(names_), errno);
  if (const int received = msg.received_fd(); received >= 0) fd.reset(received);
  if (n != static_cast<ssize_t>(message.size()) || (msg.header()->msg_flags & MSG_TRUNC) != 0) {
    throw std::runtime_error(the(names_) + " exited unexpectedly");
  }
}

void Helper::send(std::span<const std::byte> message) {
  ssize_t n;
  do {
    n = ::send(sock_.get(), message.data(), message.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(message.size())) throw SystemError("cannot talk to " + the(names_), errno);
}

void Helper::wait() {
  if (pid_ > 0) reap(std::exchange(pid_, -1));
}

pid_t Helper::release() { return std::exchange(pid_, -1); }

void require_fd(const HelperNames& names, const Fd& fd) {
  if (!fd) throw std::runtime_error(the(names) + " sent no " + names.fd);
}

bool send_to_parent(int sock, std::span<const std::byte> message, int fd) noexcept {
  FdMessage msg(const_cast<std::byte*>(message.data()), message.size());
  if (fd >= 0) msg.attach(fd);
  ssize_t n;
  do {
    n = sendmsg(sock, msg.header(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(message.size());
}

namespace {

// True when `fd` is our own user namespace (setns() into it fails).
bool is_own_userns(int fd) {
  struct stat theirs {}, ours {};
  return fstat(fd, &theirs) == 0 && stat("/proc/self/ns/user", &ours) == 0 && theirs.st_dev == ours.st_dev &&
         theirs.st_ino == ours.st_ino;
}

}  // namespace

Netns open_netns(const std::string& target, const std::string& userns) {
  if (target.empty()) throw std::runtime_error("no network namespace given");
  const bool is_pid = target.find_first_not_of("0123456789") == std::string::npos;
  Netns ns;
  ns.path = is_pid ? "/proc/" + target + "/ns/net" : target;

  ns.net.reset(open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.net) throw SystemError("cannot open network namespace " + ns.path, errno);
  const int type = ioctl(ns.net.get(), NS_GET_NSTYPE);
  if (type < 0 && errno == ENOTTY) throw std::runtime_error(ns.path + " is not a namespace");
  if (type >= 0 && type != CLONE_NEWNET) throw std::runtime_error(ns.path + " is not a network namespace");

  // As root we may enter any network namespace from where we are; otherwise
  // we need the capabilities its owning user namespace grants. setns() into
  // our own user namespace would fail, so that one is skipped.
  if (!userns.empty()) {
    ns.user.reset(open(userns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns.user) throw SystemError("cannot open user namespace " + userns, errno);
    const int user_type = ioctl(ns.user.get(), NS_GET_NSTYPE);
    if (user_type >= 0 && user_type != CLONE_NEWUSER) throw std::runtime_error(userns + " is not a user namespace");
    if (user_type < 0 && errno == ENOTTY) throw std::runtime_error(userns + " is not a user namespace");
  } else if (geteuid() != 0) {
    ns.user.reset(ioctl(ns.net.get(), NS_GET_USERNS));
    if (!ns.user) throw SystemError("cannot find the user namespace that owns " + ns.path, errno);
  }
  if (ns.user && is_own_userns(ns.user.get())) ns.user.reset();
  return ns;
}

namespace detail {

bool enter(const Netns& ns, Entered& entered) noexcept {
  if (ns.user && setns(ns.user.get(), CLONE_NEWUSER) < 0) {
    entered = {Entered::Stage::kUserNamespace, errno};
    return false;
  }
  if (setns(ns.net.get(), CLONE_NEWNET) < 0) {
    entered = {Entered::Stage::kNetNamespace, errno};
    return false;
  }
  return true;
}

void finish(int sock, std::span<const std::byte> message, int fd) noexcept {
  _exit(send_to_parent(sock, message, fd) ? 0 : 1);
}

void check_entered(const Netns& ns, const Entered& entered) {
  switch (entered.stage) {
    case Entered::Stage::kEntered:
      return;
    case Entered::Stage::kUserNamespace:
      throw SystemError("cannot enter the user namespace that owns " + ns.path, entered.error);
    case Entered::Stage::kNetNamespace:
      throw SystemError("cannot enter network namespace " + ns.path, entered.error);
  }
  throw std::runtime_error("cannot enter network namespace " + ns.path);
}

}  // namespace detail
}  // namespace slipway::sys
