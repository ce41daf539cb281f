#include "netstack/engine/line_session.h"

#include <algorithm>

extern "C" {
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
}

namespace slipway::engine {

struct LineCallbacks {
  static err_t on_recv(void* arg, struct tcp_pcb*, struct pbuf* p, err_t) {
    auto* s = static_cast<LineSession*>(arg);
    if (p == nullptr) {
      s->close();
    } else {
      s->received(p, s->clock_.now_ms());
    }
    return s->aborted_ ? ERR_ABRT : ERR_OK;
  }
  static void on_err(void* arg, err_t) {
    auto* s = static_cast<LineSession*>(arg);
    s->pcb_ = nullptr;
    s->finished();
  }
};

LineSession::LineSession(struct tcp_pcb* pcb, LineHandler handler, std::function<void(LineSession*)> on_closed,
                         const sys::Clock& clock)
    : pcb_(pcb),
      clock_(clock),
      handler_(std::move(handler)),
      on_closed_(std::move(on_closed)),
      last_active_(clock.now_ms()) {}

void LineSession::start() {
  tcp_arg(pcb_, this);
  tcp_recv(pcb_, LineCallbacks::on_recv);
  tcp_err(pcb_, LineCallbacks::on_err);
}

void LineSession::received(struct pbuf* p, uint64_t now) {
  last_active_ = now;
  u16_t len = p->tot_len;
  size_t old = buf_.size();
  buf_.resize(old + len);
  pbuf_copy_partial(p, buf_.data() + old, len, 0);
  pbuf_free(p);
  if (pcb_ != nullptr) tcp_recved(pcb_, len);
  size_t start = 0;
  for (size_t nl; (nl = buf_.find('\n', start)) != std::string::npos; start = nl + 1) {
    handler_(std::string_view(buf_).substr(start, nl - start));
    if (closed_) return;
  }
  buf_.erase(0, start);
  if (buf_.size() > kMaxLine) {
    if (struct tcp_pcb* pcb = detach()) {
      aborted_ = true;
      tcp_abort(pcb);
    }
    finished();
  }
}

struct tcp_pcb* LineSession::detach() {
  struct tcp_pcb* pcb = pcb_;
  if (pcb != nullptr) {
    tcp_arg(pcb, nullptr);
    tcp_recv(pcb, nullptr);
    tcp_err(pcb, nullptr);
    pcb_ = nullptr;
  }
  return pcb;
}

void LineSession::close() {
  if (struct tcp_pcb* pcb = detach()) {
    if (tcp_close(pcb) != ERR_OK) {
      aborted_ = true;
      tcp_abort(pcb);
    }
  }
  finished();
}

void LineSession::finished() {
  if (closed_) return;
  closed_ = true;
  if (on_closed_) on_closed_(this);  // the engine frees us after this loop iteration
}

}  // namespace slipway::engine
