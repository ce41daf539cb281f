// A network namespace of a test's own, for the sys tests.
//
// A short-lived thread unshare()s a new network namespace (a thread may,
// unlike a user namespace) and opens /proc/thread-self/ns/net; that fd keeps
// the namespace alive after the thread ends, and "/proc/self/fd/N" names it
// for sys::open_netns(). Nothing of the test process moves. Needs
// CAP_SYS_ADMIN (root); elsewhere skip() says why and the test returns.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "netstack/sys/fd.h"

namespace slipway::test {

class PrivateNetns {
 public:
  PrivateNetns() {
    std::thread([this] {
      if (unshare(CLONE_NEWNET) != 0) {
        skip_ = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
        return;
      }
      fd_.reset(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
      if (!fd_) skip_ = std::string("cannot open /proc/thread-self/ns/net: ") + std::strerror(errno);
    }).join();
  }

  // Why there is no namespace, or "".
  const std::string& skip() const { return skip_; }
  int fd() const { return fd_.get(); }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_.get()); }
  // The namespace's inode, to tell namespaces apart.
  ino_t inode() const { return inode_of(fd_.get()); }

  static ino_t inode_of(int fd) {
    struct stat st {};
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
  }

 private:
  sys::Fd fd_;
  std::string skip_;
};

}  // namespace slipway::test

#define SKIP_WITHOUT_NETNS(netns)                                       \
  do {                                                                  \
    if (!(netns).skip().empty()) {                                      \
      WARN("skipping: no private network namespace: " << (netns).skip()); \
      return;                                                           \
    }                                                                   \
  } while (false)
