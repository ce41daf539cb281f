// Fd: the one owner of a file descriptor.
//
// Theory of operation. An Fd holds one descriptor (or -1, "empty") and closes
// it when it is destroyed or reset, so no path, exceptions included, leaks
// one. It is move-only: a moved-from Fd is empty. get() lends the number,
// release() gives it away (the Fd becomes empty), reset() closes what it
// holds and takes another.
//
// Closing keeps errno as it was, so code that reads errno after a failed call
// may let an Fd go out of scope first. close() errors are not reported: for
// the sockets, namespace files and pipes this project holds, the descriptor
// is gone either way (Linux frees it even when close() fails).
//
// Nothing here allocates; Fd may be used in a forked child before exec.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <utility>

namespace slipway::sys {

class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ~Fd() { reset(); }

  // The descriptor, or -1; still owned by this Fd.
  int get() const noexcept { return fd_; }
  // True when a descriptor is held.
  explicit operator bool() const noexcept { return fd_ >= 0; }
  // Hands the descriptor to the caller; this Fd becomes empty.
  int release() noexcept { return std::exchange(fd_, -1); }
  // Closes the descriptor held (if any) and holds `fd` instead.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0 && fd_ != fd) {
      const int saved = errno;
      ::close(fd_);
      errno = saved;
    }
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace slipway::sys
