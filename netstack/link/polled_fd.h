// PolledFd: a file descriptor watched by a uv_poll_t, owned RAII-style.
//
// The transports (stream, dgram, vhost-user sockets, kick eventfds) use raw
// non-blocking fds so that they control every read and write themselves
// (bounded buffers, SCM_RIGHTS). PolledFd takes ownership of the fd and of a
// heap block holding the uv_poll_t; destroying the PolledFd stops the watch
// and hands the block to the loop, whose close callback closes the fd and
// frees the block. The callback is never called after the PolledFd is gone,
// so it may capture its owner's `this`, and the owner may destroy the
// PolledFd from inside the callback itself.
#pragma once

#include <uv.h>

#include <functional>

namespace slipway::link {

class PolledFd {
 public:
  using Callback = std::function<void(int status, int events)>;

  // Takes ownership of fd. Throws std::runtime_error (and closes fd) if the
  // loop cannot poll it.
  PolledFd(uv_loop_t* loop, int fd, Callback cb);
  ~PolledFd();
  PolledFd(const PolledFd&) = delete;
  PolledFd& operator=(const PolledFd&) = delete;

  // Watches UV_READABLE / UV_WRITABLE; 0 stops watching.
  void watch(int events);
  int events() const { return events_; }
  int fd() const;

 private:
  struct Block;
  Block* block_;
  int events_ = -1;
};

}  // namespace slipway::link
