// DNS listeners over UDP and TCP. See server.h for the theory of operation.
#include "dns-proxy/server.h"

#include <spdlog/spdlog.h>

#include <cstring>
#include <stdexcept>
#include <unordered_map>

namespace slipway::dns {

namespace {
constexpr size_t kMaxFrame = 2 + kMaxMessage;
constexpr size_t kReadBuffer = kMaxFrame + 16 * 1024;

struct Conn;
}  // namespace

struct Server::State {
  uv_loop_t* loop = nullptr;
  Proxy* proxy = nullptr;
  ServerLimits limits;
  ServerStats stats;
  uv_udp_t* udp = nullptr;       // freed in its close callback
  uv_tcp_t* listener = nullptr;  // freed in its close callback
  std::vector<std::byte> udp_buf = std::vector<std::byte>(65536);
  std::unordered_map<Conn*, std::shared_ptr<Conn>> conns;
  bool closed = false;
  std::weak_ptr<State> self;

  void on_udp(ssize_t nread, const uv_buf_t* buf, const sockaddr* from);
  void on_connection(int status);
};

namespace {

void free_handle(uv_handle_t* h) {
  switch (h->type) {
    case UV_UDP: delete reinterpret_cast<uv_udp_t*>(h); break;
    case UV_TCP: delete reinterpret_cast<uv_tcp_t*>(h); break;
    default: break;
  }
}

struct Conn : std::enable_shared_from_this<Conn> {
  Server::State* server = nullptr;  // valid while !closing (the server closes us first)
  uv_tcp_t* tcp = nullptr;
  std::vector<std::byte> rbuf = std::vector<std::byte>(kReadBuffer);
  size_t rlen = 0;
  size_t inflight = 0;
  size_t backlog = 0;
  bool reading = false;
  bool eof = false;
  bool closing = false;
  bool processing = false;
  std::unique_ptr<Timer> idle;

  void start();
  void close();
  void on_read(ssize_t nread);
  void process();
  void update_reading();
  void write(std::vector<std::byte> reply);
  void maybe_done();
};

struct WriteReq {
  uv_write_t req;
  std::vector<std::byte> buf;
  std::weak_ptr<Conn> conn;
};

void Conn::start() {
  tcp->data = this;
  std::weak_ptr<Conn> weak = weak_from_this();
  idle = std::make_unique<Timer>(server->loop, [weak] {
    auto c = weak.lock();
    if (!c || c->closing) return;
    if (c->inflight > 0) {
      c->idle->start(c->server->limits.idle_timeout_ms);
      return;
    }
    spdlog::debug("dns-proxy: closing an idle TCP connection");
    c->close();
  });
  idle->start(server->limits.idle_timeout_ms);
  update_reading();
}

void Conn::close() {
  if (closing) return;
  closing = true;
  auto self = shared_from_this();  // the map may hold the last reference
  idle.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(tcp), free_handle);
  server->conns.erase(this);
}

void Conn::update_reading() {
  if (closing) return;
  bool want = !eof && inflight < server->limits.max_inflight && backlog <= server->limits.max_write_backlog &&
              rlen < rbuf.size();
  auto* stream = reinterpret_cast<uv_stream_t*>(tcp);
  if (want && !reading) {
    uv_read_start(
        stream,
        [](uv_handle_t* h, size_t, uv_buf_t* out) {
          auto* c = static_cast<Conn*>(h->data);
          *out = uv_buf_init(reinterpret_cast<char*>(c->rbuf.data() + c->rlen),
                             static_cast<unsigned>(c->rbuf.size() - c->rlen));
        },
        [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) { static_cast<Conn*>(s->data)->on_read(nread); });
    reading = true;
  } else if (!want && reading) {
    uv_read_stop(stream);
    reading = false;
  }
}

void Conn::on_read(ssize_t nread) {
  auto self = shared_from_this();
  if (closing) return;
  if (nread == UV_EOF) {
    eof = true;
    process();
    update_reading();
    maybe_done();
    return;
  }
  if (nread < 0) {
    close();
    return;
  }
  rlen += static_cast<size_t>(nread);
  idle->start(server->limits.idle_timeout_ms);
  process();
  update_reading();
}

// Hands complete frames to the proxy, at most until max_inflight.
void Conn::process() {
  if (processing) return;  // an answer arrived from inside resolve()
  processing = true;
  auto self = shared_from_this();
  size_t off = 0;
  while (!closing && inflight < server->limits.max_inflight && rlen - off >= 2) {
    size_t len = wire::load16(rbuf, off);
    if (rlen - off < 2 + len) break;
    std::span<const std::byte> frame(rbuf.data() + off + 2, len);
    off += 2 + len;
    ++inflight;
    ++server->stats.tcp_queries;
    std::weak_ptr<Conn> weak = self;
    bool answered = server->proxy->resolve(frame, Transport::kTcp, [weak](std::vector<std::byte> reply) {
      auto c = weak.lock();
      if (!c || c->closing) return;
      --c->inflight;
      c->write(std::move(reply));
      c->process();
      c->update_reading();
      c->maybe_done();
    });
    if (!answered) --inflight;  // dropped as garbage: no answer will come
  }
  if (!closing && off > 0) {
    std::memmove(rbuf.data(), rbuf.data() + off, rlen - off);
    rlen -= off;
  }
  processing = false;
}

void Conn::write(std::vector<std::byte> reply) {
  if (closing) return;
  if (reply.size() > kMaxMessage) return;  // cannot be framed; the proxy never makes one
  auto* w = new WriteReq{};
  w->buf = tcp_framed(reply);
  w->conn = weak_from_this();
  w->req.data = w;
  backlog += w->buf.size();
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(w->buf.data()), static_cast<unsigned>(w->buf.size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(tcp), &b, 1, [](uv_write_t* req, int status) {
    auto* wr = static_cast<WriteReq*>(req->data);
    auto c = wr->conn.lock();
    size_t n = wr->buf.size();
    delete wr;
    if (!c || c->closing) return;
    c->backlog -= n;
    if (status != 0) {
      c->close();
      return;
    }
    c->update_reading();
    c->maybe_done();
  });
  if (rc != 0) {
    backlog -= w->buf.size();
    delete w;
    close();
  }
}

void Conn::maybe_done() {
  if (!closing && eof && inflight == 0 && backlog == 0) close();
}

}  // namespace

void Server::State::on_udp(ssize_t nread, const uv_buf_t* buf, const sockaddr* from) {
  if (closed || nread <= 0 || from == nullptr) return;
  ++stats.udp_queries;
  sockaddr_storage peer{};
  std::memcpy(&peer, from, from->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  std::weak_ptr<State> weak = self;
  proxy->resolve(std::span<const std::byte>(reinterpret_cast<const std::byte*>(buf->base), static_cast<size_t>(nread)),
                 Transport::kUdp, [weak, peer](std::vector<std::byte> reply) {
                   auto s = weak.lock();
                   if (!s || s->closed) return;
                   uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(reply.data()), static_cast<unsigned>(reply.size()));
                   if (uv_udp_try_send(s->udp, &b, 1, reinterpret_cast<const sockaddr*>(&peer)) < 0)
                     ++s->stats.udp_send_drops;
                 });
}

void Server::State::on_connection(int status) {
  if (closed || status != 0) return;
  auto* tcp = new uv_tcp_t;
  uv_tcp_init(loop, tcp);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(listener), reinterpret_cast<uv_stream_t*>(tcp)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp), free_handle);
    return;
  }
  if (conns.size() >= limits.max_connections) {
    ++stats.tcp_rejected;
    uv_close(reinterpret_cast<uv_handle_t*>(tcp), free_handle);
    return;
  }
  ++stats.tcp_connections;
  uv_tcp_nodelay(tcp, 1);
  auto c = std::make_shared<Conn>();
  c->server = this;
  c->tcp = tcp;
  conns.emplace(c.get(), c);
  c->start();
}

Server::Server(uv_loop_t* loop, Proxy& proxy, const std::string& listen_addr, uint16_t port, ServerLimits limits)
    : state_(std::make_shared<State>()) {
  State& s = *state_;
  s.loop = loop;
  s.proxy = &proxy;
  s.limits = limits;
  s.self = state_;
  sockaddr_storage addr{};
  if (uv_ip4_addr(listen_addr.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(listen_addr.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0)
    throw std::runtime_error("dns-proxy: bad listen address '" + listen_addr + "'");
  const auto* sa = reinterpret_cast<const sockaddr*>(&addr);

  s.udp = new uv_udp_t;
  uv_udp_init(loop, s.udp);
  s.udp->data = &s;
  s.listener = new uv_tcp_t;
  uv_tcp_init(loop, s.listener);
  s.listener->data = &s;
  auto fail = [&](const char* what, int rc) {
    s.closed = true;
    uv_close(reinterpret_cast<uv_handle_t*>(s.udp), free_handle);
    uv_close(reinterpret_cast<uv_handle_t*>(s.listener), free_handle);
    throw std::runtime_error(std::string("dns-proxy: ") + what + " " + listen_addr + ":" + std::to_string(port) +
                             ": " + uv_strerror(rc));
  };
  if (int rc = uv_udp_bind(s.udp, sa, 0); rc != 0) fail("cannot bind UDP", rc);
  int rc = uv_udp_recv_start(
      s.udp,
      [](uv_handle_t* h, size_t, uv_buf_t* out) {
        auto* st = static_cast<State*>(h->data);
        *out = uv_buf_init(reinterpret_cast<char*>(st->udp_buf.data()), static_cast<unsigned>(st->udp_buf.size()));
      },
      [](uv_udp_t* u, ssize_t nread, const uv_buf_t* buf, const sockaddr* from, unsigned) {
        static_cast<State*>(u->data)->on_udp(nread, buf, from);
      });
  if (rc != 0) fail("cannot read UDP on", rc);
  if (rc = uv_tcp_bind(s.listener, sa, 0); rc != 0) fail("cannot bind TCP", rc);
  rc = uv_listen(reinterpret_cast<uv_stream_t*>(s.listener), 128, [](uv_stream_t* l, int status) {
    static_cast<State*>(l->data)->on_connection(status);
  });
  if (rc != 0) fail("cannot listen on TCP", rc);
}

Server::~Server() {
  State& s = *state_;
  s.closed = true;
  uv_close(reinterpret_cast<uv_handle_t*>(s.udp), free_handle);
  uv_close(reinterpret_cast<uv_handle_t*>(s.listener), free_handle);
  while (!s.conns.empty()) s.conns.begin()->second->close();
}

namespace {
uint16_t port_of(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}
}  // namespace

uint16_t Server::udp_port() const {
  sockaddr_storage ss{};
  int len = sizeof ss;
  uv_udp_getsockname(state_->udp, reinterpret_cast<sockaddr*>(&ss), &len);
  return port_of(ss);
}

uint16_t Server::tcp_port() const {
  sockaddr_storage ss{};
  int len = sizeof ss;
  uv_tcp_getsockname(state_->listener, reinterpret_cast<sockaddr*>(&ss), &len);
  return port_of(ss);
}

size_t Server::connections() const { return state_->conns.size(); }
const ServerStats& Server::stats() const { return state_->stats; }

}  // namespace slipway::dns
