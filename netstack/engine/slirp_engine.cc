// See slirp_engine.h.
#include "netstack/engine/slirp_engine.h"

#include <arpa/inet.h>
#include <slirp/libslirp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <functional>
#include <memory>
#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "netstack/wire/arp.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/icmpv6.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/udp.h"

namespace slipway::engine {

namespace {

constexpr uint16_t kDnsPort = 53;
constexpr const char* kNoIpv6HostForward =
    "an IPv6 host address is not available with engine \"slirp\" (libslirp cannot forward an IPv6 client to the "
    "guest's IPv4); use an IPv4 host address or engine \"lwip\"";
// The MAC slirp knows every guest by; the gateway frames for the real one.
constexpr wire::MacAddr kGuestMac{{0x02, 0x00, 0x5e, 0x00, 0x00, 0x01}};
// What slirp's frames come from (its special_ethaddr prefix); any MAC would do
// as the destination of what we give it.
constexpr wire::MacAddr kSlirpMac{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}};

in_addr to_in(wire::Ipv4Addr a) {
  in_addr r{};
  r.s_addr = htonl(a.value);
  return r;
}

in6_addr to_in6(const wire::Ipv6Addr& a) {
  in6_addr r{};
  std::memcpy(r.s6_addr, a.octets.data(), 16);
  return r;
}

uint32_t to_epoll(int events) {
  uint32_t e = 0;
  if (events & SLIRP_POLL_IN) e |= EPOLLIN;
  if (events & SLIRP_POLL_OUT) e |= EPOLLOUT;
  if (events & SLIRP_POLL_PRI) e |= EPOLLPRI;
  return e;
}

int from_epoll(uint32_t e) {
  int r = 0;
  if (e & EPOLLIN) r |= SLIRP_POLL_IN;
  if (e & EPOLLOUT) r |= SLIRP_POLL_OUT;
  if (e & EPOLLPRI) r |= SLIRP_POLL_PRI;
  if (e & EPOLLERR) r |= SLIRP_POLL_ERR;
  if (e & EPOLLHUP) r |= SLIRP_POLL_HUP;
  return r;
}

template <typename H>
void close_and_delete(H* h) {
  if (h == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* p) { delete reinterpret_cast<H*>(p); });
}

socklen_t sockaddr_len(const sockaddr* sa) {
  return sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

}  // namespace

// A unix socket of slipway's that libslirp's guest forwards connect to:
// listening (unreferenced: it keeps no loop alive), each connection handed
// to owner->accept(listener). Throws, naming `what`, if it cannot listen.
template <typename Owner>
uv_pipe_t* listen_unix(uv_loop_t* loop, const std::string& path, const char* what, Owner* owner) {
  auto* listener = new uv_pipe_t;
  uv_pipe_init(loop, listener, 0);
  listener->data = owner;
  int rc = uv_pipe_bind(listener, path.c_str());
  if (rc == 0)
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener), 64, [](uv_stream_t* s, int status) {
      if (status == 0) static_cast<Owner*>(s->data)->accept(s);
    });
  if (rc != 0) {
    close_and_delete(listener);
    throw std::runtime_error(std::string("slirp engine: ") + what + " " + path + ": " + uv_strerror(rc));
  }
  uv_unref(reinterpret_cast<uv_handle_t*>(listener));
  return listener;
}

// DNS over TCP at the DNS address (IPv4): slirp connects each guest
// connection to a unix socket of ours (slirp_add_unix), where each message
// (RFC 1035 §4.2.2: a 2-byte length, then the message) goes to the resolver
// and its answer comes back in the same framing, in order of arrival. A
// session holds at most kMaxPending queries and kMaxBuffered bytes not yet
// framed; beyond, it is closed.
class DnsStreamServer {
 public:
  static constexpr size_t kMaxPending = 16;
  static constexpr size_t kMaxBuffered = 65537;

  DnsStreamServer(uv_loop_t* loop, const std::string& path, std::function<DnsResolver*()> resolver)
      : resolver_(std::move(resolver)) {
    listener_ = listen_unix(loop, path, "DNS socket", this);
  }
  ~DnsStreamServer() {
    close_and_delete(listener_);
    for (auto& [p, session] : sessions_) session->close();
  }
  DnsStreamServer(const DnsStreamServer&) = delete;
  DnsStreamServer& operator=(const DnsStreamServer&) = delete;
  size_t sessions() const { return sessions_.size(); }

 private:
  template <typename Owner>
  friend uv_pipe_t* listen_unix(uv_loop_t*, const std::string&, const char*, Owner*);
  struct Session : std::enable_shared_from_this<Session> {
    uv_pipe_t* pipe = nullptr;
    DnsStreamServer* owner = nullptr;  // null once closed
    std::vector<std::byte> in;
    size_t pending = 0;

    void close() {
      if (owner == nullptr) return;
      owner = nullptr;
      close_and_delete(pipe);
      pipe = nullptr;
    }
    void on_data(const char* data, size_t n) {
      in.insert(in.end(), reinterpret_cast<const std::byte*>(data), reinterpret_cast<const std::byte*>(data) + n);
      size_t at = 0;
      while (owner != nullptr && in.size() - at >= 2) {
        size_t len = (std::to_integer<size_t>(in[at]) << 8) | std::to_integer<size_t>(in[at + 1]);
        if (in.size() - at < 2 + len) break;
        DnsResolver* r = owner->resolver_();
        if (len == 0 || r == nullptr || !*r || pending >= kMaxPending) {
          DnsStreamServer* o = owner;
          close();
          o->sessions_.erase(this);
          return;
        }
        std::vector<std::byte> query(in.begin() + static_cast<ptrdiff_t>(at + 2),
                                     in.begin() + static_cast<ptrdiff_t>(at + 2 + len));
        at += 2 + len;
        pending++;
        std::weak_ptr<Session> self = shared_from_this();
        bool queued = (*r)(query, true, [self](std::vector<std::byte> answer) {
          auto s = self.lock();
          if (!s) return;
          s->pending--;
          s->write(answer);
        });
        if (!queued) pending--;  // dropped unanswered: its slot is free again
      }
      in.erase(in.begin(), in.begin() + static_cast<ptrdiff_t>(at));
      if (in.size() > kMaxBuffered && owner != nullptr) {
        DnsStreamServer* o = owner;
        close();
        o->sessions_.erase(this);
      }
    }
    void write(const std::vector<std::byte>& answer) {
      if (owner == nullptr || answer.size() > 0xffff) return;
      struct Req {
        uv_write_t req;
        std::vector<char> bytes;
      };
      auto* w = new Req;
      w->bytes.resize(2 + answer.size());
      w->bytes[0] = static_cast<char>(answer.size() >> 8);
      w->bytes[1] = static_cast<char>(answer.size() & 0xff);
      std::memcpy(w->bytes.data() + 2, answer.data(), answer.size());
      uv_buf_t b = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
      if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(pipe), &b, 1,
                   [](uv_write_t* req, int) { delete reinterpret_cast<Req*>(req); }) != 0)
        delete w;
    }
  };

  void accept(uv_stream_t* server) {
    auto s = std::make_shared<Session>();
    s->pipe = new uv_pipe_t;
    uv_pipe_init(server->loop, s->pipe, 0);
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(s->pipe)) != 0) {
      close_and_delete(s->pipe);
      return;
    }
    s->owner = this;
    s->pipe->data = s.get();
    sessions_.emplace(s.get(), s);
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(s->pipe),
        [](uv_handle_t*, size_t suggested, uv_buf_t* buf) {
          static thread_local std::vector<char> scratch(65536);
          (void)suggested;
          *buf = uv_buf_init(scratch.data(), static_cast<unsigned>(scratch.size()));
        },
        [](uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
          auto* session = static_cast<Session*>(stream->data);
          if (session == nullptr || session->owner == nullptr) return;
          if (n < 0) {
            DnsStreamServer* o = session->owner;
            session->close();
            o->sessions_.erase(session);  // may free the session
            return;
          }
          auto keep = session->shared_from_this();
          session->on_data(buf->base, static_cast<size_t>(n));
        });
  }

  std::function<DnsResolver*()> resolver_;
  uv_pipe_t* listener_ = nullptr;
  std::unordered_map<Session*, std::shared_ptr<Session>> sessions_;
};

// A guest forward with a tcp: target: libslirp connects each guest
// connection to a unix socket of ours (slirp_add_unix), and each connection
// accepted there is spliced to a new TCP connection to the target. The
// guest side is read only once the target accepted (until then the guest's
// bytes wait in the socket). Each direction stops reading while more than
// kMaxQueued bytes wait to be written on the other side, and resumes below
// half of it; an EOF becomes a shutdown of the other side once its bytes
// are written; the splice closes when both sides ended, or at once on an
// error. A target that refuses closes the guest's connection right after it
// opened (libslirp accepted it already: README "Engines").
class TcpTargetRelay {
 public:
  static constexpr size_t kMaxQueued = 1 << 20;
  static constexpr size_t kReadSize = 64 * 1024;

  TcpTargetRelay(uv_loop_t* loop, const std::string& path, const IpAddr& host, uint16_t port)
      : target_(to_sockaddr(host, port)) {
    listener_ = listen_unix(loop, path, "guest forward socket", this);
  }
  ~TcpTargetRelay() {
    close_and_delete(listener_);
    auto splices = splices_;
    for (Splice* sp : splices) sp->close();
  }
  TcpTargetRelay(const TcpTargetRelay&) = delete;
  TcpTargetRelay& operator=(const TcpTargetRelay&) = delete;

 private:
  template <typename Owner>
  friend uv_pipe_t* listen_unix(uv_loop_t*, const std::string&, const char*, Owner*);
  struct Splice {
    TcpTargetRelay* owner;
    uv_pipe_t guest{};  // side 0
    uv_tcp_t target{};  // side 1
    uv_connect_t connect{};
    uv_shutdown_t shutdown[2]{};
    bool reading[2] = {false, false};
    bool eof[2] = {false, false};  // side i sent EOF
    bool closing = false;
    int open_handles = 2;

    uv_stream_t* stream(int i) {
      return i == 0 ? reinterpret_cast<uv_stream_t*>(&guest) : reinterpret_cast<uv_stream_t*>(&target);
    }
    static Splice* of(uv_handle_t* h) { return static_cast<Splice*>(h->data); }
    int side(uv_stream_t* s) { return s == stream(0) ? 0 : 1; }

    void close() {
      if (closing) return;
      closing = true;
      owner->splices_.erase(this);
      for (int i = 0; i < 2; ++i)
        uv_close(reinterpret_cast<uv_handle_t*>(stream(i)), [](uv_handle_t* h) {
          Splice* splice = of(h);
          if (--splice->open_handles == 0) delete splice;
        });
    }
    void start_reading(int i) {
      if (closing || reading[i] || eof[i]) return;
      reading[i] = true;
      uv_read_start(
          stream(i),
          [](uv_handle_t*, size_t, uv_buf_t* buf) { *buf = uv_buf_init(new char[kReadSize], static_cast<unsigned>(kReadSize)); },
          [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
            Splice* splice = of(reinterpret_cast<uv_handle_t*>(s));
            splice->on_read(splice->side(s), n, buf);
          });
    }
    void stop_reading(int i) {
      if (!reading[i]) return;
      reading[i] = false;
      uv_read_stop(stream(i));
    }
    void on_read(int i, ssize_t n, const uv_buf_t* buf) {
      if (n <= 0) {
        delete[] buf->base;
        if (n == 0) return;
        if (n != UV_EOF) {
          close();
          return;
        }
        eof[i] = true;
        stop_reading(i);
        auto* req = &shutdown[1 - i];
        req->data = this;
        if (uv_shutdown(req, stream(1 - i), [](uv_shutdown_t* r, int status) {
              Splice* splice = static_cast<Splice*>(r->data);
              if (splice->closing) return;
              if (status != 0 || (splice->eof[0] && splice->eof[1])) splice->close();
            }) != 0)
          close();
        return;
      }
      struct Write {
        uv_write_t req;
        char* bytes;
        Splice* splice;
        int from;
      };
      auto* w = new Write{{}, buf->base, this, i};
      w->req.data = w;
      uv_buf_t b = uv_buf_init(buf->base, static_cast<unsigned>(n));
      int rc = uv_write(&w->req, stream(1 - i), &b, 1, [](uv_write_t* req, int status) {
        auto* done = static_cast<Write*>(req->data);
        Splice* splice = done->splice;
        int from = done->from;
        delete[] done->bytes;
        delete done;
        if (splice->closing) return;
        if (status != 0) {
          splice->close();
          return;
        }
        if (splice->stream(1 - from)->write_queue_size <= kMaxQueued / 2) splice->start_reading(from);
      });
      if (rc != 0) {
        delete[] w->bytes;
        delete w;
        close();
        return;
      }
      if (stream(1 - i)->write_queue_size > kMaxQueued) stop_reading(i);
    }
  };

  void accept(uv_stream_t* server) {
    auto* sp = new Splice;
    sp->owner = this;
    uv_pipe_init(server->loop, &sp->guest, 0);
    uv_tcp_init(server->loop, &sp->target);
    sp->guest.data = sp;
    sp->target.data = sp;
    splices_.insert(sp);
    if (uv_accept(server, sp->stream(0)) != 0) {
      sp->close();
      return;
    }
    sp->connect.data = sp;
    int rc = uv_tcp_connect(&sp->connect, &sp->target, reinterpret_cast<const sockaddr*>(&target_),
                            [](uv_connect_t* req, int status) {
                              Splice* splice = static_cast<Splice*>(req->data);
                              if (splice->closing) return;
                              if (status != 0) {
                                spdlog::debug("slirp engine: guest forward target: {}", uv_strerror(status));
                                splice->close();
                                return;
                              }
                              uv_tcp_nodelay(&splice->target, 1);
                              splice->start_reading(0);
                              splice->start_reading(1);
                            });
    if (rc != 0) sp->close();
  }

  sockaddr_storage target_;
  uv_pipe_t* listener_ = nullptr;
  std::unordered_set<Splice*> splices_;
};

// One of slirp's timers: a uv_timer calling slirp's callback.
struct SlirpEngine::Timer {
  uv_timer_t* handle;
  SlirpTimerCb cb;
  void* cb_opaque;
  SlirpEngine* engine;
};

// libslirp's and libuv's callbacks.
struct SlirpCallbacks {
  static SlirpEngine* of(void* opaque) { return static_cast<SlirpEngine*>(opaque); }

  static ssize_t send_packet(const void* buf, size_t len, void* opaque) {
    of(opaque)->from_slirp(static_cast<const std::byte*>(buf), len);
    return static_cast<ssize_t>(len);
  }
  static void guest_error(const char* msg, void*) { spdlog::debug("slirp: {}", msg); }
  static int64_t clock_get_ns(void* opaque) { return static_cast<int64_t>(of(opaque)->clock_.now_ms()) * 1'000'000; }
  static void* timer_new(SlirpTimerCb cb, void* cb_opaque, void* opaque) {
    SlirpEngine* e = of(opaque);
    auto* t = new SlirpEngine::Timer{new uv_timer_t, cb, cb_opaque, e};
    uv_timer_init(e->loop_, t->handle);
    t->handle->data = t;
    uv_unref(reinterpret_cast<uv_handle_t*>(t->handle));
    e->timers_.insert(t);
    return t;
  }
  static void timer_free(void* timer, void* opaque) {
    auto* t = static_cast<SlirpEngine::Timer*>(timer);
    of(opaque)->timers_.erase(t);
    close_and_delete(t->handle);
    delete t;
  }
  static void timer_mod(void* timer, int64_t expire_ms, void* opaque) {
    auto* t = static_cast<SlirpEngine::Timer*>(timer);
    int64_t now = static_cast<int64_t>(of(opaque)->clock_.now_ms());
    uint64_t delay = expire_ms > now ? static_cast<uint64_t>(expire_ms - now) : 0;
    uv_timer_start(
        t->handle,
        [](uv_timer_t* h) {
          auto* tt = static_cast<SlirpEngine::Timer*>(h->data);
          SlirpEngine* e = tt->engine;
          e->in_slirp_ = true;
          tt->cb(tt->cb_opaque);
          e->in_slirp_ = false;
          e->answer_resolutions();
        },
        delay, 0);
  }
  static void register_poll_fd(int, void*) {}
  static void unregister_poll_fd(int fd, void* opaque) { of(opaque)->unregister_fd(fd); }
  static void notify(void*) {}

  static int add_poll(int fd, int events, void* opaque) {
    auto& fds = of(opaque)->fds_;
    fds.push_back({fd, events, 0});
    return static_cast<int>(fds.size() - 1);
  }
  static int get_revents(int idx, void* opaque) {
    auto& fds = of(opaque)->fds_;
    if (idx < 0 || static_cast<size_t>(idx) >= fds.size()) return 0;
    return fds[static_cast<size_t>(idx)].revents;
  }
};

namespace {

const SlirpCb kCallbacks = {
    .send_packet = SlirpCallbacks::send_packet,
    .guest_error = SlirpCallbacks::guest_error,
    .clock_get_ns = SlirpCallbacks::clock_get_ns,
    .timer_new = SlirpCallbacks::timer_new,
    .timer_free = SlirpCallbacks::timer_free,
    .timer_mod = SlirpCallbacks::timer_mod,
    .register_poll_fd = SlirpCallbacks::register_poll_fd,
    .unregister_poll_fd = SlirpCallbacks::unregister_poll_fd,
    .notify = SlirpCallbacks::notify,
    .init_completed = nullptr,
    .timer_new_opaque = nullptr,
};

}  // namespace

SlirpEngine::SlirpEngine(uv_loop_t* loop, const sys::Clock& clock, EngineConfig config, Output output)
    : loop_(loop), clock_(clock), config_(std::move(config)), output_(std::move(output)), read_buffer_(65536) {
  const NatPolicy& nat = config_.nat;
  SlirpConfig c{};
  c.version = 4;
  c.in_enabled = true;
  uint32_t mask = wire::prefix_to_mask(nat.prefix);
  c.vnetwork = to_in(wire::Ipv4Addr(nat.guest.value & mask));
  c.vnetmask = to_in(wire::Ipv4Addr(mask));
  c.vhost = to_in(nat.gateway);
  c.vdhcp_start = to_in(nat.guest);
  // slirp's DNS and DHCP are off; its name server address is not the
  // gateway's DNS address, which stays free for slirp (nothing of slirp's
  // answers there: the engine does).
  c.vnameserver = to_in(nat.gateway);
  c.in6_enabled = nat.ipv6;
  c.vprefix_addr6 = to_in6(nat.prefix6);
  c.vprefix_len = static_cast<uint8_t>(nat.prefix6_len);
  c.vhost6 = to_in6(nat.gateway6);
  c.vnameserver6 = to_in6(nat.gateway6);
  c.if_mtu = std::min<size_t>(config_.mtu, 65521);
  c.if_mru = std::min<size_t>(config_.mtu, 65521);
  c.disable_host_loopback = !nat.host_loopback;
  c.restricted = nat.restrict_outbound ? 1 : 0;  // refused before libslirp too (NatPolicy)
  c.disable_dns = true;
  c.disable_dhcp = true;

  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::runtime_error(std::string("slirp engine: epoll_create1: ") + std::strerror(errno));
  slirp_ = slirp_new(&c, &kCallbacks, this);
  if (slirp_ == nullptr) {
    ::close(epoll_fd_);
    throw std::runtime_error("libslirp refused the network configuration");
  }
  spdlog::info("engine: libslirp {}", slirp_version_string());

  // DNS over TCP at the DNS address, through a unix socket in a private
  // directory (see DnsStreamServer).
  const char* base = std::getenv("XDG_RUNTIME_DIR");
  std::string tmpl = std::string(base != nullptr && *base != 0 && std::strlen(base) < 60 ? base : "/tmp") +
                     "/slipway-slirp-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    slirp_cleanup(slirp_);
    ::close(epoll_fd_);
    throw std::runtime_error("slirp engine: cannot make " + tmpl + ": " + std::strerror(errno));
  }
  private_dir_ = tmpl;
  try {
    dns_stream_ = std::make_unique<DnsStreamServer>(loop_, private_dir_ + "/dns", [this] { return &dns_resolver_; });
  } catch (...) {
    ::rmdir(private_dir_.c_str());
    slirp_cleanup(slirp_);
    ::close(epoll_fd_);
    throw;
  }
  in_addr dns = to_in(nat.dns);
  if (slirp_add_unix(slirp_, (private_dir_ + "/dns").c_str(), &dns, kDnsPort) < 0)
    spdlog::warn("slirp engine: DNS over TCP at {} is not available", nat.dns.to_string());
  // Guest forwards: libslirp connects each guest connection to a unix
  // socket, the target's own or (tcp:) a relay's in the private directory.
  for (const auto& f : nat.guest_forwards) {
    in_addr a = to_in(f.addr);
    if (f.kind == GuestForward::Kind::kCmd) {
      // slirp splits the line into words itself (g_shell_parse_argv): the
      // command goes to /bin/sh -c as one single-quoted word, as on lwIP.
      std::string quoted = "'";
      for (char ch : f.path) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
      quoted += "'";
      if (slirp_add_exec(slirp_, ("/bin/sh -c " + quoted).c_str(), &a, f.port) < 0)
        spdlog::warn("slirp engine: libslirp refused the guest forward {}", f.to_string());
      continue;
    }
    std::string path = f.path;
    if (f.kind == GuestForward::Kind::kTcp) {
      path = private_dir_ + "/fwd" + std::to_string(tcp_relays_.size());
      try {
        tcp_relays_.push_back(std::make_unique<TcpTargetRelay>(loop_, path, f.host, f.host_port));
      } catch (const std::exception& e) {
        spdlog::warn("{}: the guest forward {} is not available", e.what(), f.to_string());
        continue;
      }
    }
    if (slirp_add_unix(slirp_, path.c_str(), &a, f.port) < 0)
      spdlog::warn("slirp engine: libslirp refused the guest forward {}", f.to_string());
  }

  epoll_watch_ = new uv_poll_t;
  uv_poll_init(loop_, epoll_watch_, epoll_fd_);
  epoll_watch_->data = this;
  uv_poll_start(epoll_watch_, UV_READABLE, [](uv_poll_t* h, int status, int) {
    if (status < 0) return;
    static_cast<SlirpEngine*>(h->data)->poll(true);
  });
  uv_unref(reinterpret_cast<uv_handle_t*>(epoll_watch_));

  poll_timer_ = new uv_timer_t;
  uv_timer_init(loop_, poll_timer_);
  poll_timer_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(poll_timer_));

  prepare_ = new uv_prepare_t;
  uv_prepare_init(loop_, prepare_);
  prepare_->data = this;
  uv_prepare_start(prepare_, [](uv_prepare_t* h) { static_cast<SlirpEngine*>(h->data)->fill(); });
  uv_unref(reinterpret_cast<uv_handle_t*>(prepare_));

  // libslirp's clock (its global `curtime`) is read only in
  // slirp_pollfds_poll, and a new UDP socket's expiry is stamped from it:
  // before the first poll it is 0, so a datagram the guest sent then got a
  // socket that the next poll expired at once, with the host's reply. One
  // poll now (no sockets yet) sets it; the poll timer keeps it within a
  // second from then on.
  poll(false);
}

SlirpEngine::~SlirpEngine() {
  close_and_delete(prepare_);
  close_and_delete(poll_timer_);
  close_and_delete(epoll_watch_);
  // slirp_cleanup closes slirp's sockets and frees its timers (timer_free).
  slirp_cleanup(slirp_);
  for (Timer* t : timers_) {
    close_and_delete(t->handle);
    delete t;
  }
  timers_.clear();
  ::close(epoll_fd_);
  dns_stream_.reset();
  ::unlink((private_dir_ + "/dns").c_str());
  for (size_t i = 0; i < tcp_relays_.size(); ++i) ::unlink((private_dir_ + "/fwd" + std::to_string(i)).c_str());
  tcp_relays_.clear();
  ::rmdir(private_dir_.c_str());
}

void SlirpEngine::set_line_service(uint16_t, LineHandler) {
  throw std::logic_error("the line service (portfwd-agent in a VM) needs the lwIP engine");
}

// --- the guest's packets -------------------------------------------------

void SlirpEngine::input(const wire::Ipv4Packet& packet) {
  uint8_t proto = packet.protocol();
  if (proto != wire::ipproto::kTcp && proto != wire::ipproto::kUdp) {
    stats_.packets_dropped++;
    return;
  }
  if (packet.is_fragment()) {  // slirp reassembles; the policy is checked on whole datagrams only there
    if ((!config_.nat.host_destination(packet.dst()) && packet.dst() != config_.nat.gateway) ||
        !fragment_allowed(packet.dst())) {
      stats_.packets_dropped++;
      return;
    }
    teach(packet.src());
    to_slirp(packet.bytes(), false, 0, 0);
    return;
  }
  if (!admit(packet.src(), packet.dst(), proto, packet.payload(), packet.bytes())) return;
  teach(packet.src());
  to_slirp(packet.bytes(), false, packet.header_len(), proto);
}

void SlirpEngine::input6(const wire::Ipv6Packet& packet) {
  auto ul = packet.upper_layer();
  if (!config_.nat.ipv6 || !ul || ul->is_fragment ||
      (ul->protocol != wire::ipproto::kTcp && ul->protocol != wire::ipproto::kUdp)) {
    stats_.packets_dropped++;
    return;
  }
  if (ul->offset != wire::Ipv6Header::kLen) {  // slirp takes no extension headers
    stats_.packets_dropped++;
    return;
  }
  if (!admit(packet.src(), packet.dst(), ul->protocol, ul->data, packet.bytes())) return;
  teach(packet.src());
  to_slirp(packet.bytes(), true, ul->offset, ul->protocol);
}

// The NAT policy and the services answered here; true if slirp gets it.
bool SlirpEngine::fragment_allowed(const IpAddr& dst) const {
  auto host = config_.nat.host_destination(dst);
  const IpAddr& h = host ? *host : dst;
  bool denied = false, allowed = false;
  for (const auto& r : config_.nat.egress.rules()) {
    if (!r.covers_address(dst) && !r.covers_address(h)) continue;
    if (!r.allow) denied = true;
    else if (r.ports.empty()) allowed = true;
  }
  return allowed || !denied;
}

void SlirpEngine::deny_egress(wire::Bytes packet) {
  stats_.egress_denied++;
  if (packet.empty()) return;
  if ((static_cast<uint8_t>(packet[0]) >> 4) == 6) {
    if (auto ip = wire::Ipv6Packet::parse(packet))
      send_frame(wire::build_ipv6_icmpv6_error_frame({}, {}, config_.nat.gateway6, wire::icmpv6type::kDestUnreachable,
                                                     wire::icmpv6code::kAdminProhibited, *ip));
    return;
  }
  if (auto ip = wire::Ipv4Packet::parse(packet))
    send_frame(wire::build_ipv4_icmp_error_frame({}, {}, config_.nat.gateway, wire::icmptype::kDestUnreachable,
                                                 wire::icmpcode::kAdminProhibited, *ip));
}

bool SlirpEngine::admit(const IpAddr& src, const IpAddr& dst, uint8_t protocol, wire::Bytes l4, wire::Bytes packet) {
  const NatPolicy& nat = config_.nat;
  if (protocol == wire::ipproto::kUdp) {
    auto udp = wire::UdpDatagram::parse(l4);
    if (!udp) {
      stats_.packets_dropped++;
      return false;
    }
    if (nat.is_dns(dst)) {
      if (udp->dst_port() != kDnsPort || !dns_resolver_) {
        stats_.udp_filtered++;
        return false;
      }
      stats_.dns_udp_queries++;
      std::vector<std::byte> query(udp->payload().begin(), udp->payload().end());
      uint16_t src_port = udp->src_port();
      dns_resolver_(query, false, [this, dst, src, src_port](std::vector<std::byte> response) {
        send_frame(dst.v6 ? wire::build_ipv6_udp_frame({}, {}, dst.v6addr, kDnsPort, src.v6addr, src_port, response)
                          : wire::build_ipv4_udp_frame({}, {}, dst.v4, kDnsPort, src.v4, src_port, response));
      });
      return false;
    }
    // The gateway is left to slirp (host loopback, and the replies of
    // published UDP ports to loopback clients); anything else refused here.
    if (!nat.host_destination(dst) && !nat.is_gateway(dst)) {
      stats_.udp_filtered++;
      return false;
    }
    if (auto host = nat.host_destination(dst); host && !nat.egress.allows(dst, *host, EgressPolicy::Proto::kUdp, udp->dst_port())) {
      deny_egress(packet);
      return false;
    }
    stats_.udp_datagrams_out++;
    return true;
  }
  auto tcp = wire::TcpSegment::parse(l4);
  if (!tcp) {
    stats_.packets_dropped++;
    return false;
  }
  bool syn = (tcp->flags() & (wire::tcpflag::kSyn | wire::tcpflag::kAck)) == wire::tcpflag::kSyn;
  if (!syn) return true;  // slirp answers segments of connections it does not know with a RST
  if (!dst.v6 && nat.is_dns(dst) && tcp->dst_port() == kDnsPort && dns_resolver_) {
    stats_.dns_tcp_sessions++;  // slirp connects it to the DNS socket
    return true;
  }
  if (nat.guest_forward(dst, tcp->dst_port()) != nullptr) {
    stats_.tcp_connects++;  // slirp connects it to the forward's socket, --restrict or not
    return true;
  }
  auto host = nat.host_destination(dst);
  if (!host) {
    // DNS over TCP at the IPv6 DNS address included (see slirp_engine.h).
    stats_.tcp_refused++;
    refuse_syn(src, dst, l4);
    return false;
  }
  if (!nat.egress.allows(dst, *host, EgressPolicy::Proto::kTcp, tcp->dst_port())) {
    deny_egress(packet);
    return false;
  }
  stats_.tcp_connects++;
  return true;
}

void SlirpEngine::refuse_syn(const IpAddr& src, const IpAddr& dst, wire::Bytes l4) {
  auto tcp = wire::TcpSegment::parse(l4);
  if (!tcp) return;
  if (dst.v6 ? dst.v6addr.is_unspecified() : dst.v4.is_unspecified()) return;
  wire::TcpHeaderFields f;
  f.src_port = tcp->dst_port();
  f.dst_port = tcp->src_port();
  f.seq = 0;
  f.ack = tcp->seq() + 1;
  f.flags = wire::tcpflag::kRst | wire::tcpflag::kAck;
  send_frame(dst.v6 ? wire::build_ipv6_tcp_frame({}, {}, dst.v6addr, src.v6addr, f, {})
                    : wire::build_ipv4_tcp_frame({}, {}, dst.v4, src.v4, f, {}));
}

void SlirpEngine::to_slirp(wire::Bytes packet, bool v6, size_t l4_offset, uint8_t protocol) {
  auto& buf = in_buffer_;
  buf.resize(wire::kEthernetHeaderLen + packet.size());
  wire::MutBytes frame(buf.data(), buf.size());
  kSlirpMac.store(frame, 0);
  kGuestMac.store(frame, 6);
  wire::store16(frame, 12, v6 ? wire::ethertype::kIpv6 : wire::ethertype::kIpv4);
  std::memcpy(buf.data() + wire::kEthernetHeaderLen, packet.data(), packet.size());
  if (protocol != 0) {
    // The guest's link may leave the checksum partial (offloads); slirp
    // checks it, so it is computed here in full.
    wire::MutBytes ip = frame.subspan(wire::kEthernetHeaderLen);
    wire::MutBytes l4 = ip.subspan(l4_offset);
    size_t at = protocol == wire::ipproto::kTcp ? 16 : 6;
    if (l4.size() < at + 2 || l4.size() > 0xffff) {
      stats_.packets_dropped++;
      return;
    }
    wire::store16(l4, at, 0);
    uint32_t sum = v6 ? wire::pseudo_header_sum_v6(wire::Ipv6Addr::load(ip, 8), wire::Ipv6Addr::load(ip, 24),
                                                   protocol, static_cast<uint32_t>(l4.size()))
                      : wire::pseudo_header_sum_v4(wire::Ipv4Addr::load(ip, 12), wire::Ipv4Addr::load(ip, 16),
                                                   protocol, static_cast<uint16_t>(l4.size()));
    uint16_t c = wire::checksum_fold(wire::checksum_add(l4, sum));
    if (c == 0 && protocol == wire::ipproto::kUdp) c = 0xffff;
    wire::store16(l4, at, c);
  }
  in_slirp_ = true;
  slirp_input(slirp_, reinterpret_cast<const uint8_t*>(buf.data()), static_cast<int>(buf.size()));
  in_slirp_ = false;
  answer_resolutions();
}

// --- slirp's link layer -----------------------------------------------------

void SlirpEngine::teach(const IpAddr& guest) {
  if (!taught_.insert(guest.to_string()).second) return;
  to_answer_.push_back(guest);
  answer_resolutions();
}

void SlirpEngine::answer_resolutions() {
  if (in_slirp_) return;
  // Bounded: answering adds nothing to the list (slirp sends no request in
  // answer to a reply).
  std::vector<IpAddr> todo;
  todo.swap(to_answer_);
  for (const IpAddr& a : todo) {
    std::vector<std::byte> frame;
    if (!a.v6) {
      // A gratuitous ARP request (sender = target): slirp adds it to its table.
      wire::ArpPacket arp;
      arp.op = wire::ArpPacket::kRequest;
      arp.sender_mac = kGuestMac;
      arp.sender_ip = a.v4;
      arp.target_ip = a.v4;
      frame = wire::build_arp_frame(wire::MacAddr::broadcast(), kGuestMac, arp);
    } else {
      // A Neighbour Advertisement (override, not solicited) for the guest's
      // address, unicast to slirp, with its link-layer address option.
      std::array<std::byte, 24> body{};
      wire::MutBytes b(body.data(), body.size());
      a.v6addr.store(b, 0);
      wire::store8(b, 16, 2);  // target link-layer address
      wire::store8(b, 17, 1);  // 8 bytes
      kGuestMac.store(b, 18);
      frame = wire::build_ipv6_icmpv6_frame(kSlirpMac, kGuestMac, a.v6addr, config_.nat.gateway6, 255,
                                            wire::icmpv6type::kNeighborAdvert, 0, 0x20000000u,
                                            wire::Bytes(body.data(), body.size()));
    }
    in_slirp_ = true;
    slirp_input(slirp_, reinterpret_cast<const uint8_t*>(frame.data()), static_cast<int>(frame.size()));
    in_slirp_ = false;
  }
  // What waited for the answer goes out at slirp's next poll: now.
  if (!todo.empty() && poll_timer_ != nullptr) arm_poll_timer(0);
}

void SlirpEngine::arm_poll_timer(uint64_t timeout_ms) {
  // Only ever brought forward: a loop that wakes often for other handles
  // must not push slirp's timers back for ever.
  uint64_t due = clock_.now_ms() + timeout_ms;
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(poll_timer_)) && poll_due_ <= due) return;
  poll_due_ = due;
  uv_timer_start(
      poll_timer_, [](uv_timer_t* h) { static_cast<SlirpEngine*>(h->data)->poll(false); }, timeout_ms, 0);
}

void SlirpEngine::from_slirp(const std::byte* data, size_t len) {
  wire::Bytes frame(data, len);
  if (len < wire::kEthernetHeaderLen) return;
  uint16_t type = wire::load16(frame, 12);
  wire::Bytes payload = frame.subspan(wire::kEthernetHeaderLen);
  if (type == wire::ethertype::kArp) {
    auto arp = wire::ArpPacket::parse(payload);
    if (arp && arp->op == wire::ArpPacket::kRequest) to_answer_.push_back(IpAddr(arp->target_ip));
    return;
  }
  if (type == wire::ethertype::kIpv6) {
    auto ip = wire::Ipv6Packet::parse(payload);
    if (!ip) return;
    auto ul = ip->upper_layer();
    if (ul && ul->protocol == wire::ipproto::kIcmpv6 && !ul->data.empty()) {
      uint8_t icmp_type = static_cast<uint8_t>(ul->data[0]);
      if (icmp_type == wire::icmpv6type::kNeighborSolicit) {
        if (ul->data.size() >= 24) to_answer_.push_back(IpAddr(wire::Ipv6Addr::load(ul->data, 8)));
        return;
      }
      // The gateway sends the RAs and answers NDP itself.
      if (icmp_type >= wire::icmpv6type::kRouterSolicit && icmp_type <= wire::icmpv6type::kRedirect) return;
    }
  } else if (type != wire::ethertype::kIpv4) {
    return;
  }
  // An IP packet: to the gateway, which writes the real link header.
  out_buffer_.assign(data, data + len);
  output_(wire::MutBytes(out_buffer_.data(), out_buffer_.size()), wire::Offload{});
}

void SlirpEngine::send_frame(std::vector<std::byte> frame) {
  if (frame.size() < wire::kEthernetHeaderLen) return;
  output_(wire::MutBytes(frame.data(), frame.size()), wire::Offload{});
}

// --- published ports ----------------------------------------------------------

std::string SlirpEngine::add_host_forward(bool udp, const sockaddr* host, const IpAddr& guest, uint16_t guest_port) {
  if (guest.v6) return "slirp forwards to the guest's IPv4 address only";
  // libslirp would carry an IPv6 client's connection to the guest in IPv6
  // with IPv4 addresses (tcp_connect keeps the client's family).
  if (host->sa_family == AF_INET6) return kNoIpv6HostForward;
  sockaddr_in g{};
  g.sin_family = AF_INET;
  g.sin_port = htons(guest_port);
  g.sin_addr = to_in(guest.v4);
  int flags = (udp ? SLIRP_HOSTFWD_UDP : 0) | (host->sa_family == AF_INET6 ? SLIRP_HOSTFWD_V6ONLY : 0);
  errno = 0;
  if (slirp_add_hostxfwd(slirp_, host, sockaddr_len(host), reinterpret_cast<const sockaddr*>(&g), sizeof(g),
                         flags) < 0)
    return std::string("libslirp: ") + (errno != 0 ? std::strerror(errno) : "cannot listen");
  return "";
}

void SlirpEngine::remove_host_forward(bool udp, const sockaddr* host) {
  int flags = (udp ? SLIRP_HOSTFWD_UDP : 0) | (host->sa_family == AF_INET6 ? SLIRP_HOSTFWD_V6ONLY : 0);
  slirp_remove_hostxfwd(slirp_, host, sockaddr_len(host), flags);
}

void SlirpEngine::accept_inbound_tcp(uv_stream_t* listener, const IpAddr&, uint16_t, bool) {
  // Not reached (owns_host_listeners): take the connection and close it.
  stats_.packets_dropped++;
  auto* c = new uv_tcp_t;
  uv_tcp_init(listener->loop, c);
  uv_accept(listener, reinterpret_cast<uv_stream_t*>(c));
  close_and_delete(c);
}

void SlirpEngine::inbound_udp(uv_udp_t*, const sockaddr*, const IpAddr&, uint16_t, bool, wire::Bytes) {
  stats_.udp_dropped++;  // not reached (owns_host_listeners)
}

// --- the loop -------------------------------------------------------------------

void SlirpEngine::fill() {
  fds_.clear();
  uint32_t timeout = UINT32_MAX;
  slirp_pollfds_fill(slirp_, &timeout, SlirpCallbacks::add_poll, this);
  std::unordered_map<int, uint32_t> want;
  for (const auto& e : fds_) want[e.fd] |= to_epoll(e.events);
  for (auto it = registered_.begin(); it != registered_.end();) {
    if (!want.contains(it->first)) {
      // Gone from slirp (maybe closed already: then epoll forgot it itself).
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->first, nullptr);
      it = registered_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [fd, events] : want) {
    auto it = registered_.find(fd);
    if (it != registered_.end() && it->second == events) continue;
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    int op = it == registered_.end() ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    int rc = epoll_ctl(epoll_fd_, op, fd, &ev);
    // The number may name a new socket (the old one closed and forgotten by
    // epoll), or one still registered under it.
    if (rc < 0 && errno == ENOENT) rc = epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    if (rc < 0 && errno == EEXIST) rc = epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
    if (rc < 0) {
      spdlog::debug("slirp engine: epoll_ctl fd {}: {}", fd, std::strerror(errno));
      registered_.erase(fd);
      continue;
    }
    registered_[fd] = events;
  }
  arm_poll_timer(timeout == UINT32_MAX ? 1000 : timeout);
}

void SlirpEngine::poll(bool io) {
  for (auto& e : fds_) e.revents = 0;
  if (io) {
    epoll_event events[kMaxEvents];
    int n = epoll_wait(epoll_fd_, events, kMaxEvents, 0);
    if (n > 0) {
      std::unordered_map<int, int> ready;
      for (int i = 0; i < n; ++i) ready[events[i].data.fd] |= from_epoll(events[i].events);
      for (auto& e : fds_) {
        auto it = ready.find(e.fd);
        if (it != ready.end()) e.revents = it->second & (e.events | SLIRP_POLL_ERR | SLIRP_POLL_HUP);
      }
    }
  }
  in_slirp_ = true;
  slirp_pollfds_poll(slirp_, 0, SlirpCallbacks::get_revents, this);
  in_slirp_ = false;
  for (auto& e : fds_) e.revents = 0;
  answer_resolutions();
}

void SlirpEngine::unregister_fd(int fd) {
  if (registered_.erase(fd) != 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  for (auto& e : fds_)
    if (e.fd == fd) e.revents = 0;
}

// --- listings -------------------------------------------------------------------

namespace {

// slirp_connection_info()'s lines: "  TCP[ESTABLISHED]  12  10.0.2.15 40000  1.2.3.4  80  0  0"
// (IPv4 only). Outbound: guest address and port, then the destination.
// Inbound (a published port): the host socket's name, then the guest's.
const char* state_name(const std::string& kind) {
  // slirp's names, in the lower case LwipEngine's states use.
  static const char* const kStates[][2] = {
      {"CLOSED", "closed"},         {"LISTEN", "listen"},         {"SYN_SENT", "syn-sent"},
      {"SYN_RCVD", "syn-received"}, {"ESTABLISHED", "established"}, {"CLOSE_WAIT", "close-wait"},
      {"FIN_WAIT_1", "fin-wait-1"}, {"CLOSING", "closing"},       {"LAST_ACK", "last-ack"},
      {"FIN_WAIT_2", "fin-wait-2"}, {"TIME_WAIT", "time-wait"},   {"NONE", "none"}};
  for (const auto& s : kStates)
    if (kind == std::string("TCP[") + s[0] + "]") return s[1];
  return kind.rfind("UDP[", 0) == 0 ? "mapped" : "unknown";
}

std::vector<FlowInfo> parse_connections(Slirp* slirp, const NatPolicy& nat) {
  std::vector<FlowInfo> r;
  char* text = slirp_connection_info(slirp);
  if (text == nullptr) return r;
  std::string all(text);
  std::free(text);
  size_t pos = 0;
  while (pos < all.size()) {
    size_t nl = all.find('\n', pos);
    if (nl == std::string::npos) nl = all.size();
    std::string line = all.substr(pos, nl - pos);
    pos = nl + 1;
    char kind[64], src[64], dst[64];
    int fd, sport, dport, rq, sq;
    if (std::sscanf(line.c_str(), " %63s %d %63s %d %63s %d %d %d", kind, &fd, src, &sport, dst, &dport, &rq, &sq) != 8)
      continue;
    std::string k = kind;
    bool tcp = k.rfind("TCP[", 0) == 0;
    bool udp = k.rfind("UDP[", 0) == 0;
    if ((!tcp && !udp) || k.find("HOST_FORWARD") != std::string::npos) continue;
    auto s = wire::Ipv4Addr::parse(src).value_or(wire::Ipv4Addr{});
    auto d = wire::Ipv4Addr::parse(dst).value_or(wire::Ipv4Addr{});
    bool inbound = d.in_subnet(nat.guest, nat.prefix) && d != nat.gateway && !s.in_subnet(nat.guest, nat.prefix);
    FlowInfo f{};
    f.proto = tcp ? "tcp" : "udp";
    f.key = inbound ? FlowKey{IpAddr(d), static_cast<uint16_t>(dport), IpAddr(s), static_cast<uint16_t>(sport)}
                    : FlowKey{IpAddr(s), static_cast<uint16_t>(sport), IpAddr(d), static_cast<uint16_t>(dport)};
    f.inbound = inbound;
    f.state = state_name(k);
    r.push_back(f);
  }
  return r;
}

}  // namespace

size_t SlirpEngine::tcp_flow_count() const {
  size_t n = 0;
  for (const auto& f : parse_connections(slirp_, config_.nat))
    if (f.proto[0] == 't') n++;
  return n;
}

size_t SlirpEngine::udp_flow_count() const {
  size_t n = 0;
  for (const auto& f : parse_connections(slirp_, config_.nat))
    if (f.proto[0] == 'u') n++;
  return n;
}

std::vector<FlowInfo> SlirpEngine::flows() const { return parse_connections(slirp_, config_.nat); }

}  // namespace slipway::engine
