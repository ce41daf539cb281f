#include "netstack/engine/dns_tcp_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>

extern "C" {
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
}

namespace slipway::engine {


struct DnsTcpCallbacks {
  static err_t on_recv(void* arg, struct tcp_pcb*, struct pbuf* p, err_t) {
    auto* s = static_cast<DnsTcpSession*>(arg);
    if (p == nullptr) {
      s->guest_fin();
    } else {
      s->received(p, s->clock_.now_ms());
    }
    // The session may have aborted the pcb (it stays alive until the end of
    // this loop iteration, dns_tcp_session.h).
    return s->aborted_ ? ERR_ABRT : ERR_OK;
  }
  static err_t on_sent(void* arg, struct tcp_pcb*, u16_t) {
    auto* s = static_cast<DnsTcpSession*>(arg);
    s->flush();
    return s->aborted_ ? ERR_ABRT : ERR_OK;
  }
  static void on_err(void* arg, err_t) {
    auto* s = static_cast<DnsTcpSession*>(arg);
    s->pcb_ = nullptr;
    s->finished();
  }
};

DnsTcpSession::DnsTcpSession(struct tcp_pcb* pcb, DnsResolver resolver, std::function<void(DnsTcpSession*)> on_closed,
                             const sys::Clock& clock)
    : pcb_(pcb),
      clock_(clock),
      resolver_(std::move(resolver)),
      on_closed_(std::move(on_closed)),
      last_active_(clock.now_ms()) {}

void DnsTcpSession::start() {
  // lwIP opened a window scaled to TCP_WND (2 MiB) when the guest offered
  // window scaling, but so far the guest has only been told the SYN-ACK's
  // unscaled window (at most 65535): shrink lwIP's to kReceiveWindow
  // before any data is taken (this runs when lwIP accepts, before the
  // handshake's last segment is processed).
  if (pcb_->rcv_wnd > kReceiveWindow) {
    pcb_->rcv_wnd = kReceiveWindow;
    pcb_->rcv_ann_wnd = std::min<tcpwnd_size_t>(pcb_->rcv_ann_wnd, std::min<tcpwnd_size_t>(kReceiveWindow, 0xffff));
    pcb_->rcv_ann_right_edge = pcb_->rcv_nxt + pcb_->rcv_ann_wnd;
  }
  tcp_arg(pcb_, this);
  tcp_recv(pcb_, DnsTcpCallbacks::on_recv);
  tcp_sent(pcb_, DnsTcpCallbacks::on_sent);
  tcp_err(pcb_, DnsTcpCallbacks::on_err);
  tcp_nagle_disable(pcb_);
}

void DnsTcpSession::received(struct pbuf* p, uint64_t) {
  // Not activity by itself: only whole queries and answers keep the
  // session (a client trickling bytes that never make a query does not).
  size_t old = in_.size();
  in_.resize(old + p->tot_len);
  pbuf_copy_partial(p, in_.data() + old, p->tot_len, 0);
  unacked_ += p->tot_len;
  pbuf_free(p);
  process();
}

// Hands every complete query to the resolver, up to kMaxOutstanding, and
// acknowledges the bytes consumed (which reopens the guest's window).
void DnsTcpSession::process() {
  // The resolver may answer before it returns (cache hits); answer() then
  // must not re-enter this loop.
  if (processing_) return;
  processing_ = true;
  size_t off = 0;
  while (outstanding_ < kMaxOutstanding && !answers_backlogged() && in_.size() - off >= 2) {
    size_t len = wire::load16(in_, off);
    if (in_.size() - off < 2 + len) break;
    wire::Bytes query(in_.data() + off + 2, len);
    off += 2 + len;
    outstanding_++;
    last_active_ = clock_.now_ms();
    std::weak_ptr<DnsTcpSession> weak = weak_from_this();
    bool answering = resolver_(query, true, [weak](std::vector<std::byte> response) {
      if (auto s = weak.lock()) s->answer(std::move(response));
    });
    if (closed_) return;
    // Dropped without an answer: its slot is free again (it used to stay
    // taken, and 16 such queries stopped the session for good).
    if (!answering && outstanding_ > 0) outstanding_--;
  }
  processing_ = false;
  in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(off));
  if (pcb_ != nullptr && off > 0) {
    size_t n = std::min(off, unacked_);
    unacked_ -= n;
    while (n > 0) {
      auto c = static_cast<u16_t>(std::min<size_t>(n, 0xffff));
      tcp_recved(pcb_, c);
      n -= c;
    }
  }
  if (finished_after_fin()) close();
}

void DnsTcpSession::answer(std::vector<std::byte> response) {
  if (outstanding_ > 0) outstanding_--;
  if (closed_ || pcb_ == nullptr) return;
  last_active_ = clock_.now_ms();
  if (response.size() > 0xffff) {
    process();
    return;
  }
  if (out_.size() + response.size() + 2 > kMaxQueuedBytes) {
    abort();
    return;
  }
  size_t old = out_.size();
  out_.resize(old + 2 + response.size());
  wire::store16(out_, old, static_cast<uint16_t>(response.size()));
  std::copy(response.begin(), response.end(), out_.begin() + static_cast<std::ptrdiff_t>(old + 2));
  flush();
  if (!closed_) process();  // a slot is free again
}

void DnsTcpSession::flush() {
  if (pcb_ == nullptr) return;
  size_t off = 0;
  while (off < out_.size()) {
    size_t n = std::min({static_cast<size_t>(tcp_sndbuf(pcb_)), out_.size() - off, size_t{0xffff}});
    if (n == 0 || tcp_write(pcb_, out_.data() + off, static_cast<u16_t>(n), TCP_WRITE_FLAG_COPY) != ERR_OK) break;
    off += n;
  }
  out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(off));
  if (off > 0) tcp_output(pcb_);
  if (finished_after_fin()) {
    close();
    return;
  }
  // Queries held back while answers waited may go on.
  if (!closed_ && !answers_backlogged() && !in_.empty()) process();
}

bool DnsTcpSession::answers_backlogged() const {
  if (!out_.empty()) return true;
  // Written to lwIP and not yet acknowledged by the guest.
  return pcb_ != nullptr && static_cast<uint32_t>(pcb_->snd_lbb - pcb_->lastack) > kMaxUnackedAnswerBytes;
}

void DnsTcpSession::guest_fin() {
  guest_fin_ = true;
  if (finished_after_fin()) close();
}

bool DnsTcpSession::finished_after_fin() const {
  if (!guest_fin_ || outstanding_ != 0 || !out_.empty()) return false;
  // A whole query held back (answers were backlogged) is still to be answered.
  return !(in_.size() >= 2 && in_.size() >= 2 + size_t{wire::load16(in_, 0)});
}

struct tcp_pcb* DnsTcpSession::detach() {
  struct tcp_pcb* pcb = pcb_;
  if (pcb != nullptr) {
    tcp_arg(pcb, nullptr);
    tcp_recv(pcb, nullptr);
    tcp_sent(pcb, nullptr);
    tcp_err(pcb, nullptr);
    pcb_ = nullptr;
  }
  return pcb;
}

void DnsTcpSession::close() {
  if (struct tcp_pcb* pcb = detach()) {
    // Unread input would make lwIP reset anyway.
    if (unacked_ > 0 || tcp_close(pcb) != ERR_OK) {
      aborted_ = true;
      tcp_abort(pcb);
    }
  }
  finished();
}

void DnsTcpSession::abort() {
  if (struct tcp_pcb* pcb = detach()) {
    aborted_ = true;
    tcp_abort(pcb);
  }
  finished();
}

void DnsTcpSession::finished() {
  if (closed_) return;
  closed_ = true;
  // The engine keeps the session alive until the end of this loop iteration.
  if (on_closed_) on_closed_(this);
}

}  // namespace slipway::engine
