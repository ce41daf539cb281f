// One upstream query over UDP or TCP. See forwarder.h for the theory of
// operation.
#include "dns-proxy/forwarder.h"

#include <spdlog/spdlog.h>

#include <cstring>

namespace slipway::dns {

// ------------------------------------------------------------------ Timer

Timer::Timer(uv_loop_t* loop, std::function<void()> fn) : box_(new Box{}) {
  box_->fn = std::move(fn);
  uv_timer_init(loop, &box_->handle);
  box_->handle.data = box_;
}

Timer::~Timer() {
  box_->fn = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&box_->handle),
           [](uv_handle_t* h) { delete static_cast<Box*>(h->data); });
}

void Timer::start(uint64_t timeout_ms) {
  uv_timer_start(
      &box_->handle,
      [](uv_timer_t* t) {
        auto* box = static_cast<Box*>(t->data);
        if (box->fn) box->fn();
      },
      timeout_ms, 0);
}

void Timer::stop() { uv_timer_stop(&box_->handle); }

// --------------------------------------------------------------- matching

bool reply_matches(std::span<const std::byte> reply, uint16_t query_id, const Question& expected,
                   bool& truncated) {
  auto h = Header::parse(reply);
  if (!h || h->id != query_id || !h->qr() || h->qdcount != 1) return false;
  auto name = read_name(reply, kHeaderSize);
  if (!name || name->end + 4 > reply.size()) return false;
  Question q{std::move(name->wire), wire::load16(reply, name->end), wire::load16(reply, name->end + 2)};
  if (!same_question(q, expected)) return false;
  truncated = h->tc();
  return true;
}

// --------------------------------------------------------------- Exchange

Exchange* Exchange::start(uv_loop_t* loop, const ResolvedUpstream& server, Transport transport,
                          std::vector<std::byte> query, Question expected, Done done) {
  auto* e = new Exchange();
  e->loop_ = loop;
  e->server_ = server;
  e->transport_ = transport;
  e->query_id_ = query.size() >= 2 ? wire::load16(query, 0) : 0;
  e->expected_ = std::move(expected);
  e->done_ = std::move(done);
  if (transport == Transport::kTcp) {
    e->query_ = tcp_framed(query);
  } else {
    e->query_ = std::move(query);
  }
  bool ok = transport == Transport::kUdp ? e->start_udp() : e->start_tcp();
  if (!ok) {
    e->abort();
    return nullptr;
  }
  return e;
}

void Exchange::abort() {
  if (closing_) return;
  closing_ = true;
  done_ = nullptr;
  if (!initialised_) {  // no handle to close
    delete this;
    return;
  }
  uv_close(&h_.handle, [](uv_handle_t* h) { delete static_cast<Exchange*>(h->data); });
}

void Exchange::finish(Outcome outcome, std::vector<std::byte> reply) {
  if (closing_ || !done_) return;
  if (transport_ == Transport::kUdp) uv_udp_recv_stop(&h_.udp);
  else uv_read_stop(reinterpret_cast<uv_stream_t*>(&h_.tcp));
  Done done = std::move(done_);
  done_ = nullptr;
  done(outcome, std::move(reply));  // may abort() us: touch nothing after
}

bool Exchange::from_server(const sockaddr* from) const {
  if (from == nullptr) return true;  // connected socket: the kernel filtered it
  const auto& want = server_.addr;
  if (from->sa_family != want.ss_family) return false;
  if (from->sa_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(from);
    const auto* b = reinterpret_cast<const sockaddr_in*>(&want);
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  const auto* a = reinterpret_cast<const sockaddr_in6*>(from);
  const auto* b = reinterpret_cast<const sockaddr_in6*>(&want);
  return a->sin6_port == b->sin6_port && std::memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
}

bool Exchange::start_udp() {
  if (uv_udp_init_ex(loop_, &h_.udp, server_.addr.ss_family) != 0) return false;
  initialised_ = true;
  h_.handle.data = this;
  const auto* addr = reinterpret_cast<const sockaddr*>(&server_.addr);
  if (int rc = uv_udp_connect(&h_.udp, addr); rc != 0) {
    spdlog::debug("dns: udp connect to {}: {}", server_.to_string(), uv_strerror(rc));
    return false;
  }
  rbuf_.resize(kMaxMessage);
  int rc = uv_udp_recv_start(
      &h_.udp,
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* self = static_cast<Exchange*>(h->data);
        *buf = uv_buf_init(reinterpret_cast<char*>(self->rbuf_.data()), static_cast<unsigned>(self->rbuf_.size()));
      },
      [](uv_udp_t* u, ssize_t nread, const uv_buf_t* buf, const sockaddr* from, unsigned) {
        static_cast<Exchange*>(u->data)->on_udp(nread, buf, from);
      });
  if (rc != 0) return false;
  send_req_.data = this;
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(query_.data()), static_cast<unsigned>(query_.size()));
  rc = uv_udp_send(&send_req_, &h_.udp, &b, 1, nullptr, [](uv_udp_send_t* req, int status) {
    auto* self = static_cast<Exchange*>(req->data);
    if (status != 0 && status != UV_ECANCELED && !self->closing_) {
      spdlog::debug("dns: udp send to {}: {}", self->server_.to_string(), uv_strerror(status));
      self->finish(Outcome::kError, {});
    }
  });
  return rc == 0;
}

void Exchange::on_udp(ssize_t nread, const uv_buf_t* buf, const sockaddr* from) {
  if (closing_) return;
  if (nread < 0) {
    spdlog::debug("dns: udp from {}: {}", server_.to_string(), uv_strerror(static_cast<int>(nread)));
    finish(Outcome::kError, {});
    return;
  }
  if (nread == 0 && from == nullptr) return;  // nothing more to read
  std::span<const std::byte> reply(reinterpret_cast<const std::byte*>(buf->base), static_cast<size_t>(nread));
  bool truncated = false;
  if (!from_server(from) || !reply_matches(reply, query_id_, expected_, truncated)) {
    ++mismatched_;
    spdlog::debug("dns: ignored a datagram that does not answer our query to {}", server_.to_string());
    return;
  }
  finish(truncated ? Outcome::kTruncated : Outcome::kAnswer, {reply.begin(), reply.end()});
}

bool Exchange::start_tcp() {
  if (uv_tcp_init_ex(loop_, &h_.tcp, server_.addr.ss_family) != 0) return false;
  initialised_ = true;
  h_.handle.data = this;
  uv_tcp_nodelay(&h_.tcp, 1);
  connect_req_.data = this;
  int rc = uv_tcp_connect(&connect_req_, &h_.tcp, reinterpret_cast<const sockaddr*>(&server_.addr),
                          [](uv_connect_t* req, int status) {
    auto* self = static_cast<Exchange*>(req->data);
    if (self->closing_ || status == UV_ECANCELED) return;
    if (status != 0) {
      spdlog::debug("dns: tcp connect to {}: {}", self->server_.to_string(), uv_strerror(status));
      self->finish(Outcome::kError, {});
      return;
    }
    self->write_req_.data = self;
    uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(self->query_.data()), static_cast<unsigned>(self->query_.size()));
    int wrc = uv_write(&self->write_req_, reinterpret_cast<uv_stream_t*>(&self->h_.tcp), &b, 1,
                       [](uv_write_t* w, int st) {
      auto* me = static_cast<Exchange*>(w->data);
      if (st != 0 && st != UV_ECANCELED && !me->closing_) me->finish(Outcome::kError, {});
    });
    if (wrc != 0) {
      self->finish(Outcome::kError, {});
      return;
    }
    self->rbuf_.resize(kMaxMessage + 2);
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&self->h_.tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* out) {
          auto* me = static_cast<Exchange*>(h->data);
          *out = uv_buf_init(reinterpret_cast<char*>(me->rbuf_.data() + me->rlen_),
                             static_cast<unsigned>(me->rbuf_.size() - me->rlen_));
        },
        [](uv_stream_t* s, ssize_t nread, const uv_buf_t* b2) {
          static_cast<Exchange*>(s->data)->on_tcp_read(nread, b2);
        });
  });
  return rc == 0;
}

void Exchange::on_tcp_read(ssize_t nread, const uv_buf_t*) {
  if (closing_) return;
  if (nread < 0) {
    spdlog::debug("dns: tcp from {}: {}", server_.to_string(), uv_strerror(static_cast<int>(nread)));
    finish(Outcome::kError, {});
    return;
  }
  rlen_ += static_cast<size_t>(nread);
  if (rlen_ < 2) return;
  size_t len = wire::load16(rbuf_, 0);
  if (rlen_ < 2 + len) {
    if (rlen_ == rbuf_.size()) finish(Outcome::kError, {});  // cannot happen: 2 + 65535 fits
    return;
  }
  std::span<const std::byte> reply(rbuf_.data() + 2, len);
  bool truncated = false;
  if (!reply_matches(reply, query_id_, expected_, truncated)) {
    ++mismatched_;
    finish(Outcome::kError, {});
    return;
  }
  finish(Outcome::kAnswer, {reply.begin(), reply.end()});
}

}  // namespace slipway::dns
