// The standalone TCP/UDP relay: theory of operation.
//
// TCP
//
//   The listening socket and both sockets of every connection are plain
//   non-blocking fds watched by uv_poll_t (level-triggered), because splice(2)
//   needs the fds themselves; libuv's stream handles would read into their
//   own buffers. On a listener wake-up at most kMaxAcceptsPerWake connections
//   are accepted. Running out of fds (EMFILE, ENFILE, ...) pauses accepting
//   for kAcceptPauseMs; reaching max_connections pauses it until one closes.
//
//   A connection has two sides (client, target) and two directions
//   (client -> target, target -> client). Its states:
//
//     kConnecting  the connect to the target is in progress; only the target
//                  side is watched (writable). The client is not read, so
//                  what it sends waits in the kernel.
//     kRelaying    each side is watched for readable while its outgoing
//                  direction has room and has not seen EOF, and for
//                  writable while its incoming direction holds data.
//     kClosed      both poll handles are closing; the fds are closed and the
//                  connection is deleted in the last close callback.
//
//   A direction holds at most buffer_bytes: in splice mode a pipe
//   (F_SETPIPE_SZ to buffer_bytes when allowed, else the default 64 KiB), in
//   copy mode a buffer. A pipe's capacity is counted in pages, not bytes, so
//   a splice into it can fail with EAGAIN while our byte count says there is
//   room; that marks the pipe full until the next write out of it (otherwise
//   the readable socket would wake us forever). On a wake-up each direction
//   makes at most kRoundsPerWake read+write rounds. When splice refuses
//   (EINVAL, ENOSYS) the direction switches to copy mode, moving what is in
//   the pipe into the buffer first.
//
//   EOF on a side marks its direction; once that direction is empty the
//   other side gets shutdown(SHUT_WR). When both directions are shut the
//   connection closes normally. Any other error (a reset, EPIPE, ...) closes
//   both sides at once with SO_LINGER 0 so both peers see a reset.
//
// UDP
//
//   A uv_udp_t bound to the listen address; a session per client address
//   (key: the sockaddr bytes), each with a uv_udp_t connected to the target.
//   Replies go back from the listening socket with uv_udp_try_send (dropped
//   when it would block; no queue). A timer sweeps idle sessions every
//   clamp(udp_timeout/4, 10 ms, 1 s). libuv bounds the datagrams read per
//   wake-up itself (32).
#include "portfwd/relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include "netstack/sys/error.h"
#include "netstack/sys/fd.h"

namespace slipway::portfwd {
namespace {

constexpr int kMaxAcceptsPerWake = 64;
constexpr int kRoundsPerWake = 4;
constexpr uint64_t kAcceptPauseMs = 100;
constexpr int kListenBacklog = 4096;
constexpr size_t kMinCopyBuffer = 64 * 1024;
constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;

bool would_block(int error) { return error == EAGAIN || error == EWOULDBLOCK; }

void set_linger_zero(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Key for the UDP session table: the meaningful bytes of the address.
std::string client_key(const sockaddr* addr) {
  if (addr->sa_family == AF_INET6) return std::string(reinterpret_cast<const char*>(addr), sizeof(sockaddr_in6));
  sockaddr_in sin{};
  std::memcpy(&sin, addr, sizeof sin);
  std::string key(reinterpret_cast<const char*>(&sin.sin_port), sizeof sin.sin_port);
  key.append(reinterpret_cast<const char*>(&sin.sin_addr), sizeof sin.sin_addr);
  return key;
}

std::string sockaddr_text(const sockaddr* addr) {
  Endpoint e;
  e.length = addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  std::memcpy(&e.storage, addr, e.length);
  return e.to_string();
}

Endpoint bound_endpoint(int fd) {
  Endpoint e;
  e.length = sizeof e.storage;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&e.storage), &e.length) < 0) e.length = 0;
  return e;
}

template <typename Handle>
void close_and_delete(Handle* handle) {
  uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
}

}  // namespace

// ---- Endpoint ----------------------------------------------------------------

uint16_t Endpoint::port() const {
  if (family() == AF_INET6) {
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, &storage, sizeof sin6);
    return ntohs(sin6.sin6_port);
  }
  sockaddr_in sin{};
  std::memcpy(&sin, &storage, sizeof sin);
  return ntohs(sin.sin_port);
}

std::string Endpoint::to_string() const {
  char text[INET6_ADDRSTRLEN] = "?";
  if (family() == AF_INET6) {
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, &storage, sizeof sin6);
    inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof text);
    std::string out = "[";
    out += text;
    out += "]:";
    out += std::to_string(port());
    return out;
  }
  sockaddr_in sin{};
  std::memcpy(&sin, &storage, sizeof sin);
  inet_ntop(AF_INET, &sin.sin_addr, text, sizeof text);
  return std::string(text) + ":" + std::to_string(port());
}

std::optional<Endpoint> parse_endpoint(std::string_view text, std::string* error) {
  const auto fail = [&](const std::string& message) -> std::optional<Endpoint> {
    if (error != nullptr) *error = message + " in '" + std::string(text) + "'";
    return std::nullopt;
  };
  std::string_view host, port_text;
  bool v6 = false;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return fail("missing ']'");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') return fail("expected ':PORT' after ']'");
    port_text = text.substr(close + 2);
    v6 = true;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("expected ADDR:PORT");
    host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) return fail("write an IPv6 address in brackets ([::1]:80)");
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || ptr != port_text.data() + port_text.size() || port > 65535) {
    return fail("invalid port '" + std::string(port_text) + "'");
  }
  const std::string host_string(host);
  Endpoint e;
  if (v6) {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host_string.c_str(), &sin6.sin6_addr) != 1) return fail("invalid IPv6 address");
    std::memcpy(&e.storage, &sin6, sizeof sin6);
    e.length = sizeof sin6;
  } else {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host_string.c_str(), &sin.sin_addr) != 1) return fail("invalid IPv4 address");
    std::memcpy(&e.storage, &sin, sizeof sin);
    e.length = sizeof sin;
  }
  return e;
}

uint64_t raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur;
}

// ---- TcpConnection --------------------------------------------------------------

// One direction of a connection: bytes read from `from` waiting for `to`.
struct Direction {
  int from = 0;  // side index
  int to = 0;
  // Splice mode (pipe_read >= 0): bytes in the pipe.
  int pipe_read = -1;
  int pipe_write = -1;
  size_t capacity = 0;
  bool pipe_full = false;
  // Copy mode: buffer[head, tail) waits to be written.
  std::unique_ptr<char[]> buffer;
  size_t head = 0;
  size_t tail = 0;
  size_t pending = 0;  // bytes waiting, either mode
  bool eof = false;    // `from` sent FIN
  bool shut = false;   // shutdown(to, SHUT_WR) done

  bool splicing() const { return pipe_read >= 0; }
  bool has_room() const { return !eof && pending < capacity && !pipe_full; }
  bool done() const { return shut; }
};

class TcpConnection {
 public:
  TcpConnection(TcpRelay* relay, int client_fd) : relay_(relay) {
    sides_[0].fd = client_fd;
    directions_[0].from = 0;
    directions_[0].to = 1;
    directions_[1].from = 1;
    directions_[1].to = 0;
  }

  // Starts the connect to the target. Returns false (and closes) on an
  // immediate failure.
  void start(uv_loop_t* loop, const Endpoint& target, const RelayOptions& options) {
    init_side(loop, 0);
    const int fd = socket(target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      spdlog::warn("cannot create a socket for {}: {}", target.to_string(), std::strerror(errno));
      finish(true);
      return;
    }
    sides_[1].fd = fd;
    init_side(loop, 1);
    set_nodelay(fd);
    set_nodelay(sides_[0].fd);
    for (Direction& d : directions_) set_up_buffer(d, options);
    if (connect(fd, target.addr(), target.length) < 0 && errno != EINPROGRESS) {
      spdlog::debug("connect to {} failed: {}", target.to_string(), std::strerror(errno));
      if (relay_ != nullptr) relay_->stats_.connect_failures++;
      finish(true);
      return;
    }
    update_events();
  }

  // Called by the relay when it closes: no more callbacks into it.
  void detach_and_close() {
    relay_ = nullptr;
    finish(false);
  }

 private:
  enum class State { kConnecting, kRelaying, kClosed };

  struct Side {
    int fd = -1;
    uv_poll_t poll{};
    bool poll_open = false;
    int events = 0;
  };

  void init_side(uv_loop_t* loop, int index) {
    Side& side = sides_[index];
    if (uv_poll_init(loop, &side.poll, side.fd) != 0) return;
    side.poll.data = this;
    side.poll_open = true;
  }

  void set_up_buffer(Direction& d, const RelayOptions& options) {
    if (options.splice) {
      int fds[2];
      if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0) {
        d.pipe_read = fds[0];
        d.pipe_write = fds[1];
        // Larger pipes may be refused (pipe-max-size, per-user limits); the
        // default size still works, only with more wake-ups.
        fcntl(d.pipe_write, F_SETPIPE_SZ, static_cast<int>(std::min<size_t>(options.buffer_bytes, 1 << 30)));
        const int size = fcntl(d.pipe_write, F_GETPIPE_SZ);
        d.capacity = size > 0 ? static_cast<size_t>(size) : 4096;
        return;
      }
    }
    d.capacity = std::max(options.buffer_bytes, kMinCopyBuffer);
    d.buffer = std::make_unique_for_overwrite<char[]>(d.capacity);
    if (options.splice && relay_ != nullptr) relay_->stats_.copy_fallbacks++;
  }

  // Leaves splice mode, moving whatever is in the pipe into the buffer.
  void switch_to_copy(Direction& d) {
    const size_t size = std::max({d.capacity, d.pending, kMinCopyBuffer});
    d.buffer = std::make_unique_for_overwrite<char[]>(size);
    d.head = 0;
    d.tail = 0;
    while (d.tail < d.pending) {
      const ssize_t n = read(d.pipe_read, d.buffer.get() + d.tail, d.pending - d.tail);
      if (n <= 0) break;
      d.tail += static_cast<size_t>(n);
    }
    d.pending = d.tail;
    ::close(d.pipe_read);
    ::close(d.pipe_write);
    d.pipe_read = d.pipe_write = -1;
    d.pipe_full = false;
    d.capacity = size;
    if (relay_ != nullptr) relay_->stats_.copy_fallbacks++;
    spdlog::debug("splice refused, copying instead");
  }

  // One read from d.from into the direction. >0 bytes, 0 EOF, -errno.
  ssize_t fill(Direction& d) {
    const int fd = sides_[d.from].fd;
    const size_t room = d.capacity - d.pending;
    ssize_t n;
    if (d.splicing()) {
      n = splice(fd, nullptr, d.pipe_write, nullptr, room, kSpliceFlags);
      if (n < 0 && (errno == EINVAL || errno == ENOSYS) && d.pending == 0) {
        switch_to_copy(d);
        return fill(d);
      }
    } else {
      if (d.tail == d.capacity) {  // compact: everything before head is written
        std::memmove(d.buffer.get(), d.buffer.get() + d.head, d.pending);
        d.head = 0;
        d.tail = d.pending;
      }
      n = read(fd, d.buffer.get() + d.tail, d.capacity - d.tail);
      if (n > 0) d.tail += static_cast<size_t>(n);
    }
    if (n < 0) return -errno;
    d.pending += static_cast<size_t>(n);
    return n;
  }

  // One write of the direction's bytes to d.to. >0 bytes, -errno.
  ssize_t drain(Direction& d) {
    const int fd = sides_[d.to].fd;
    ssize_t n;
    if (d.splicing()) {
      n = splice(d.pipe_read, nullptr, fd, nullptr, d.pending, kSpliceFlags);
      if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
        switch_to_copy(d);
        return drain(d);
      }
    } else {
      n = send(fd, d.buffer.get() + d.head, d.pending, MSG_NOSIGNAL);
      if (n > 0) d.head += static_cast<size_t>(n);
    }
    if (n < 0) return -errno;
    if (n == 0) return -EIO;
    d.pending -= static_cast<size_t>(n);
    d.pipe_full = false;
    if (!d.splicing() && d.pending == 0) d.head = d.tail = 0;
    if (relay_ != nullptr) {
      (d.from == 0 ? relay_->stats_.bytes_to_target : relay_->stats_.bytes_to_client) += static_cast<uint64_t>(n);
    }
    return n;
  }

  // Moves bytes along one direction: at most kRoundsPerWake read+write
  // rounds. Returns false when the connection must be reset.
  bool pump(Direction& d, bool readable, bool writable) {
    for (int round = 0; round < kRoundsPerWake; ++round) {
      bool progress = false;
      if (readable && d.has_room()) {
        const ssize_t n = fill(d);
        if (n > 0) {
          progress = true;
          writable = true;  // try to pass it on at once
        } else if (n == 0) {
          d.eof = true;
        } else if (would_block(static_cast<int>(-n))) {
          readable = false;
          if (d.splicing() && d.pending > 0) d.pipe_full = true;  // see top
        } else {
          spdlog::debug("read error: {}", std::strerror(static_cast<int>(-n)));
          return false;
        }
      }
      if (writable && d.pending > 0) {
        const ssize_t n = drain(d);
        if (n > 0) {
          progress = true;
        } else if (would_block(static_cast<int>(-n))) {
          writable = false;
        } else {
          spdlog::debug("write error: {}", std::strerror(static_cast<int>(-n)));
          return false;
        }
      }
      if (!progress) break;
    }
    if (d.eof && d.pending == 0 && !d.shut) {
      d.shut = true;
      if (shutdown(sides_[d.to].fd, SHUT_WR) < 0 && errno != ENOTCONN) return false;
    }
    return true;
  }

  static void on_ready(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<TcpConnection*>(handle->data);
    const int index = handle == &self->sides_[0].poll ? 0 : 1;
    self->handle_ready(index, status, events);
  }

  void handle_ready(int index, int status, int events) {
    if (state_ == State::kClosed) return;
    // libuv reports POLLERR (a reset, a refused connect) as UV_EBADF.
    if (status < 0) {
      if (state_ == State::kConnecting && relay_ != nullptr) relay_->stats_.connect_failures++;
      finish(true);
      return;
    }
    if (state_ == State::kConnecting) {
      int error = 0;
      socklen_t length = sizeof error;
      getsockopt(sides_[1].fd, SOL_SOCKET, SO_ERROR, &error, &length);
      if (error != 0) {
        spdlog::debug("connect to target failed: {}", std::strerror(error));
        if (relay_ != nullptr) relay_->stats_.connect_failures++;
        finish(true);
        return;
      }
      state_ = State::kRelaying;
      events = UV_WRITABLE;
    }
    // The direction out of this side, then the one into it.
    Direction& out = directions_[index];
    Direction& in = directions_[1 - index];
    const bool ok = pump(out, (events & UV_READABLE) != 0, true) && pump(in, false, (events & UV_WRITABLE) != 0);
    if (!ok) {
      finish(true);
      return;
    }
    if (directions_[0].done() && directions_[1].done()) {
      finish(false);
      return;
    }
    update_events();
  }

  void update_events() {
    for (int index = 0; index < 2; ++index) {
      Side& side = sides_[index];
      int events = 0;
      if (state_ == State::kConnecting) {
        if (index == 1) events = UV_WRITABLE;
      } else {
        if (directions_[index].has_room()) events |= UV_READABLE;
        if (directions_[1 - index].pending > 0) events |= UV_WRITABLE;
      }
      if (!side.poll_open || events == side.events) continue;
      side.events = events;
      if (events == 0) {
        uv_poll_stop(&side.poll);
      } else {
        uv_poll_start(&side.poll, events, on_ready);
      }
    }
  }

  // Closes both sides; with `reset`, so that both peers see a reset.
  void finish(bool reset) {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    if (relay_ != nullptr) {
      if (reset) relay_->stats_.resets++;
      relay_->forget(this);
      relay_ = nullptr;
    }
    for (Side& side : sides_) {
      if (reset && side.fd >= 0) set_linger_zero(side.fd);
      if (side.poll_open) {
        ++closing_;
        uv_close(reinterpret_cast<uv_handle_t*>(&side.poll), on_closed);
      }
    }
    if (closing_ == 0) destroy();
  }

  static void on_closed(uv_handle_t* handle) {
    auto* self = static_cast<TcpConnection*>(handle->data);
    if (--self->closing_ == 0) self->destroy();
  }

  void destroy() {
    for (Side& side : sides_) {
      if (side.fd >= 0) ::close(side.fd);
    }
    for (Direction& d : directions_) {
      if (d.pipe_read >= 0) ::close(d.pipe_read);
      if (d.pipe_write >= 0) ::close(d.pipe_write);
    }
    delete this;
  }

  TcpRelay* relay_;  // null once the relay has let go of us
  State state_ = State::kConnecting;
  std::array<Side, 2> sides_{};              // 0: client, 1: target
  std::array<Direction, 2> directions_{};    // 0: client -> target, 1: target -> client
  int closing_ = 0;
};

// ---- TcpRelay ---------------------------------------------------------------

TcpRelay::TcpRelay(uv_loop_t* loop, const Endpoint& listen, const Endpoint& target, const RelayOptions& options)
    : loop_(loop), listen_(listen), target_(target), options_(options) {}

TcpRelay::~TcpRelay() { close(); }

void TcpRelay::start() {
  const std::string where = listen_.to_string();
  sys::Fd fd(socket(listen_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw sys::SystemError("cannot create a socket to listen on " + where, errno);
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd.get(), listen_.addr(), listen_.length) < 0) throw sys::SystemError("cannot bind to " + where, errno);
  if (::listen(fd.get(), kListenBacklog) < 0) throw sys::SystemError("cannot listen on " + where, errno);
  listen_fd_ = fd.release();
  listener_ = new uv_poll_t;
  uv_poll_init(loop_, listener_, listen_fd_);
  listener_->data = this;
  resume_timer_ = new uv_timer_t;
  uv_timer_init(loop_, resume_timer_);
  resume_timer_->data = this;
  resume_accepting();
}

Endpoint TcpRelay::local_endpoint() const { return bound_endpoint(listen_fd_); }

void TcpRelay::close() {
  if (closed_) return;
  closed_ = true;
  if (listener_ != nullptr) {
    // The fd goes after the handle: libuv must stop watching it first, and
    // uv_close does that at once.
    close_and_delete(listener_);
    listener_ = nullptr;
  }
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
  if (resume_timer_ != nullptr) {
    close_and_delete(resume_timer_);
    resume_timer_ = nullptr;
  }
  auto connections = std::move(connections_);
  connections_.clear();
  for (TcpConnection* connection : connections) connection->detach_and_close();
  stats_.active = 0;
}

void TcpRelay::on_listener_ready(uv_poll_t* handle, int status, int /*events*/) {
  auto* self = static_cast<TcpRelay*>(handle->data);
  if (status < 0) {
    spdlog::warn("listener on {}: {}", self->listen_.to_string(), uv_strerror(status));
    self->pause_accepting(kAcceptPauseMs);
    return;
  }
  self->accept_some();
}

void TcpRelay::on_resume_timer(uv_timer_t* handle) { static_cast<TcpRelay*>(handle->data)->resume_accepting(); }

void TcpRelay::accept_some() {
  for (int i = 0; i < kMaxAcceptsPerWake && !closed_; ++i) {
    if (connections_.size() >= options_.max_connections) {
      // Resumed by forget() when a connection ends.
      if (accepting_) uv_poll_stop(listener_);
      accepting_ = false;
      return;
    }
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      if (would_block(error)) return;
      if (error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM) {
        spdlog::warn("cannot accept on {}: {}; pausing for {} ms", listen_.to_string(), std::strerror(error),
                     kAcceptPauseMs);
        pause_accepting(kAcceptPauseMs);
        return;
      }
      continue;  // ECONNABORTED, EPROTO, EINTR...: that one connection is gone
    }
    stats_.accepted++;
    auto* connection = new TcpConnection(this, fd);
    connections_.insert(connection);
    stats_.active = connections_.size();
    connection->start(loop_, target_, options_);  // may forget itself at once
  }
}

void TcpRelay::pause_accepting(uint64_t ms) {
  if (closed_) return;
  if (accepting_) uv_poll_stop(listener_);
  accepting_ = false;
  uv_timer_start(resume_timer_, on_resume_timer, ms, 0);
}

void TcpRelay::resume_accepting() {
  if (closed_ || accepting_ || listener_ == nullptr) return;
  if (connections_.size() >= options_.max_connections) return;
  accepting_ = true;
  uv_poll_start(listener_, UV_READABLE, on_listener_ready);
}

void TcpRelay::forget(TcpConnection* connection) {
  connections_.erase(connection);
  stats_.active = connections_.size();
  if (!accepting_ && !closed_ && uv_is_active(reinterpret_cast<uv_handle_t*>(resume_timer_)) == 0) resume_accepting();
}

// ---- UdpSession ------------------------------------------------------------------

namespace {
// One datagram at a time is read into this; every relay on the thread shares
// it (callbacks never overlap).
thread_local std::array<char, 65536> udp_buffer;

void alloc_udp_buffer(uv_handle_t* /*handle*/, size_t /*suggested*/, uv_buf_t* buf) {
  *buf = uv_buf_init(udp_buffer.data(), static_cast<unsigned>(udp_buffer.size()));
}
}  // namespace

class UdpSession {
 public:
  UdpSession(UdpRelay* relay, const sockaddr* client, std::string key, uint64_t now_ms)
      : relay_(relay), key_(std::move(key)), last_active_ms_(now_ms) {
    std::memcpy(&client_, client, client->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  }

  // Returns false if the upstream socket cannot be set up (then the caller
  // deletes the session: no handle was opened).
  bool open(uv_loop_t* loop, const Endpoint& target) {
    if (uv_udp_init_ex(loop, &upstream_, static_cast<unsigned>(target.family())) != 0) return false;
    upstream_.data = this;
    int rc = uv_udp_connect(&upstream_, target.addr());
    if (rc == 0) rc = uv_udp_recv_start(&upstream_, alloc_udp_buffer, on_reply);
    if (rc != 0) {
      spdlog::debug("UDP session to {}: {}", target.to_string(), uv_strerror(rc));
      close();
      return true;  // the handle exists; close() frees us
    }
    open_ = true;
    return true;
  }

  bool is_open() const { return open_; }
  const std::string& key() const { return key_; }
  uint64_t last_active_ms() const { return last_active_ms_; }

  // Client -> target.
  bool send_to_target(const char* data, size_t size, uint64_t now_ms) {
    last_active_ms_ = now_ms;
    uv_buf_t buf = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(size));
    return uv_udp_try_send(&upstream_, &buf, 1, nullptr) >= 0;
  }

  void close() {
    open_ = false;
    relay_ = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&upstream_),
             [](uv_handle_t* h) { delete static_cast<UdpSession*>(h->data); });
  }

 private:
  static void on_reply(uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                       unsigned /*flags*/) {
    auto* self = static_cast<UdpSession*>(handle->data);
    if (nread == 0 && addr == nullptr) return;  // nothing (more) to read
    if (nread < 0) {
      // A connected UDP socket reports ICMP errors (ECONNREFUSED); the
      // session stays until it is idle.
      spdlog::debug("UDP session: {}", uv_strerror(static_cast<int>(nread)));
      return;
    }
    UdpRelay* relay = self->relay_;
    if (relay == nullptr || relay->listener_ == nullptr) return;
    self->last_active_ms_ = uv_now(handle->loop);
    uv_buf_t out = uv_buf_init(buf->base, static_cast<unsigned>(nread));
    if (uv_udp_try_send(relay->listener_, &out, 1, reinterpret_cast<const sockaddr*>(&self->client_)) >= 0) {
      relay->stats_.datagrams_to_client++;
    } else {
      relay->stats_.dropped++;
    }
  }

  UdpRelay* relay_;
  std::string key_;
  sockaddr_storage client_{};
  uint64_t last_active_ms_;
  uv_udp_t upstream_{};
  bool open_ = false;
};

// ---- UdpRelay ---------------------------------------------------------------------

UdpRelay::UdpRelay(uv_loop_t* loop, const Endpoint& listen, const Endpoint& target, const RelayOptions& options)
    : loop_(loop), listen_(listen), target_(target), options_(options) {}

UdpRelay::~UdpRelay() { close(); }

void UdpRelay::start() {
  const std::string where = listen_.to_string();
  listener_ = new uv_udp_t;
  uv_udp_init_ex(loop_, listener_, static_cast<unsigned>(listen_.family()));
  listener_->data = this;
  int rc = uv_udp_bind(listener_, listen_.addr(), UV_UDP_REUSEADDR);
  if (rc == 0) rc = uv_udp_recv_start(listener_, alloc_udp_buffer, on_client_datagram);
  if (rc != 0) {
    close_and_delete(listener_);
    listener_ = nullptr;
    throw std::runtime_error("cannot bind UDP to " + where + ": " + uv_strerror(rc));
  }
  sweep_timer_ = new uv_timer_t;
  uv_timer_init(loop_, sweep_timer_);
  sweep_timer_->data = this;
  const uint64_t interval = std::clamp<uint64_t>(options_.udp_timeout_ms / 4, 10, 1000);
  uv_timer_start(sweep_timer_, on_sweep, interval, interval);
}

Endpoint UdpRelay::local_endpoint() const {
  Endpoint e;
  if (listener_ == nullptr) return e;
  int length = sizeof e.storage;
  if (uv_udp_getsockname(listener_, reinterpret_cast<sockaddr*>(&e.storage), &length) == 0) {
    e.length = static_cast<socklen_t>(length);
  }
  return e;
}

void UdpRelay::close() {
  if (closed_) return;
  closed_ = true;
  if (listener_ != nullptr) {
    close_and_delete(listener_);
    listener_ = nullptr;
  }
  if (sweep_timer_ != nullptr) {
    close_and_delete(sweep_timer_);
    sweep_timer_ = nullptr;
  }
  auto sessions = std::move(sessions_);
  sessions_.clear();
  for (auto& [key, session] : sessions) session->close();
  stats_.active = 0;
}

void UdpRelay::on_client_datagram(uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                                  unsigned /*flags*/) {
  auto* self = static_cast<UdpRelay*>(handle->data);
  if (nread < 0) {
    spdlog::debug("UDP listener on {}: {}", self->listen_.to_string(), uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (addr == nullptr) return;  // nothing more to read
  const uint64_t now = uv_now(self->loop_);
  UdpSession* session = self->session_for(addr, now);
  if (session == nullptr) {
    self->stats_.dropped++;
    return;
  }
  if (session->send_to_target(buf->base, static_cast<size_t>(nread), now)) {
    self->stats_.datagrams_to_target++;
  } else {
    self->stats_.dropped++;
  }
}

UdpSession* UdpRelay::session_for(const sockaddr* client, uint64_t now_ms) {
  std::string key = client_key(client);
  if (auto it = sessions_.find(key); it != sessions_.end()) return it->second;
  if (sessions_.size() >= options_.udp_max_sessions) {
    spdlog::debug("UDP session limit ({}) reached; dropping from {}", options_.udp_max_sessions, sockaddr_text(client));
    return nullptr;
  }
  auto* session = new UdpSession(this, client, key, now_ms);
  if (!session->open(loop_, target_)) {
    delete session;
    return nullptr;
  }
  if (!session->is_open()) return nullptr;  // closing itself
  sessions_.emplace(std::move(key), session);
  stats_.sessions_opened++;
  stats_.active = sessions_.size();
  spdlog::debug("UDP session {} -> {}", sockaddr_text(client), target_.to_string());
  return session;
}

void UdpRelay::end_session(UdpSession* session) {
  sessions_.erase(session->key());
  stats_.active = sessions_.size();
  session->close();
}

void UdpRelay::expire_idle(uint64_t now_ms) {
  std::vector<UdpSession*> idle;
  for (auto& [key, session] : sessions_) {
    if (now_ms - session->last_active_ms() >= options_.udp_timeout_ms) idle.push_back(session);
  }
  for (UdpSession* session : idle) {
    stats_.sessions_expired++;
    end_session(session);
  }
}

void UdpRelay::on_sweep(uv_timer_t* handle) {
  auto* self = static_cast<UdpRelay*>(handle->data);
  self->expire_idle(uv_now(self->loop_));
}

}  // namespace slipway::portfwd
