#include "netstack/link/polled_fd.h"

#include <unistd.h>

#include <stdexcept>
#include <string>

namespace slipway::link {

struct PolledFd::Block {
  uv_poll_t poll;
  int fd;
  bool live;  // false once the PolledFd is gone: the callback is not called
  Callback cb;
};

PolledFd::PolledFd(uv_loop_t* loop, int fd, Callback cb) : block_(new Block{{}, fd, true, std::move(cb)}) {
  int rc = uv_poll_init(loop, &block_->poll, fd);
  if (rc != 0) {
    delete block_;
    ::close(fd);
    throw std::runtime_error(std::string("cannot poll fd: ") + uv_strerror(rc));
  }
  block_->poll.data = block_;
}

PolledFd::~PolledFd() {
  block_->live = false;
  uv_poll_stop(&block_->poll);
  // The std::function may be running right now (the owner destroys us from
  // its own callback): it is destroyed with the block, in the close callback.
  uv_close(reinterpret_cast<uv_handle_t*>(&block_->poll), [](uv_handle_t* h) {
    auto* b = static_cast<Block*>(h->data);
    ::close(b->fd);
    delete b;
  });
}

int PolledFd::fd() const { return block_->fd; }

void PolledFd::watch(int events) {
  if (events == events_) return;
  events_ = events;
  if (events == 0) {
    uv_poll_stop(&block_->poll);
    return;
  }
  uv_poll_start(&block_->poll, events, [](uv_poll_t* p, int status, int ev) {
    auto* b = static_cast<Block*>(p->data);
    if (b->live) b->cb(status, ev);
  });
}

}  // namespace slipway::link
