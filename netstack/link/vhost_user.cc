#include "netstack/link/vhost_user.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "netstack/link/unix_socket.h"

namespace slipway::link {

namespace vu = vhost_user;

// Re-runs the transmit queue on the next loop iteration (bounded work per
// wake-up); its handle lives in a heap block freed by the close callback.
class VhostUserPort::Idle {
 public:
  Idle(uv_loop_t* loop, VhostUserPort* owner) : block_(new Block{{}, owner}) {
    uv_idle_init(loop, &block_->idle);
    block_->idle.data = block_;
  }
  ~Idle() {
    block_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&block_->idle),
             [](uv_handle_t* h) { delete static_cast<Block*>(h->data); });
  }
  Idle(const Idle&) = delete;
  Idle& operator=(const Idle&) = delete;
  void start() {
    uv_idle_start(&block_->idle, [](uv_idle_t* h) {
      auto* b = static_cast<Block*>(h->data);
      if (b->owner != nullptr) b->owner->on_idle();
    });
  }
  void stop() { uv_idle_stop(&block_->idle); }

 private:
  struct Block {
    uv_idle_t idle;
    VhostUserPort* owner;
  };
  Block* block_;
};

struct VhostUserPort::Connection {
  std::unique_ptr<PolledFd> sock;
  // Read state: one message at a time.
  std::array<std::byte, vu::kHeaderSize> header{};
  size_t header_have = 0;
  std::optional<vu::Header> hdr;
  std::array<std::byte, vu::kMaxPayload> payload{};
  size_t payload_have = 0;
  std::vector<int> fds;  // received with the current message
  // Negotiated state.
  uint64_t features = 0;
  uint64_t protocol_features = 0;
  std::unique_ptr<PolledFd> kick[VirtioNetDevice::kNumQueues];
  int call[VirtioNetDevice::kNumQueues] = {-1, -1};

  ~Connection() {
    for (int fd : fds) ::close(fd);
    for (int fd : call)
      if (fd >= 0) ::close(fd);
  }
  bool rings_start_enabled() const { return (features & vu::kFeatureProtocolFeatures) == 0; }
};

std::unique_ptr<VhostUserPort> VhostUserPort::listen(uv_loop_t* loop, const std::string& path, size_t mtu) {
  int fd = bind_unix(path, SOCK_STREAM);
  return std::unique_ptr<VhostUserPort>(new VhostUserPort(loop, fd, path, mtu));
}

VhostUserPort::VhostUserPort(uv_loop_t* loop, size_t mtu) : VhostUserPort(loop, -1, "", mtu) {}

VhostUserPort::VhostUserPort(uv_loop_t* loop, int listen_fd, std::string path, size_t mtu)
    : loop_(loop), path_(std::move(path)), idle_(std::make_unique<Idle>(loop, this)), device_(mtu + 14 + 4) {
  if (listen_fd >= 0) {
    listener_ = std::make_unique<PolledFd>(loop, listen_fd, [this](int, int) { on_accept(); });
    listener_->watch(UV_READABLE);
    spdlog::info("vhost-user: listening on {}", path_);
  }
}

VhostUserPort::~VhostUserPort() {
  conn_.reset();
  device_.reset();
  listener_.reset();
  if (!path_.empty()) ::unlink(path_.c_str());
}

void VhostUserPort::on_accept() {
  // A few per wake-up: each is either served or refused at once.
  for (int i = 0; i < 4; ++i) {
    int fd = ::accept4(listener_->fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (conn_ != nullptr && peer_hung_up(conn_->sock->fd())) {
      // The old frontend died (a VMM killed and restarted) but its hang-up
      // was not read yet: the new one takes its place.
      disconnect("frontend closed the connection");
    }
    if (conn_ != nullptr) {
      vstats_.refused++;
      spdlog::warn("vhost-user: refusing a second frontend on {} while one is connected", path_);
      ::close(fd);
      continue;
    }
    adopt(fd);
  }
}

void VhostUserPort::adopt(int fd) {
  if (conn_ != nullptr) disconnect("replaced by a new frontend");
  device_.reset();
  conn_ = std::make_unique<Connection>();
  conn_->sock = std::make_unique<PolledFd>(loop_, fd, [this](int, int) { on_readable(); });
  conn_->sock->watch(UV_READABLE);
  vstats_.connections++;
  spdlog::info("vhost-user: frontend connected");
}

void VhostUserPort::disconnect(const std::string& why) {
  if (conn_ == nullptr) return;
  spdlog::info("vhost-user: frontend disconnected: {}", why);
  idle_->stop();
  conn_.reset();    // closes the socket, kick and call fds
  device_.reset();  // unmaps guest memory, forgets the rings
  drop_backlog();
}

void VhostUserPort::on_readable() {
  for (int i = 0; i < kMaxMessagesPerWake; ++i) {
    bool again = false;
    if (!read_message(&again)) return;  // closed: touch nothing
    if (again) return;
  }
}

bool VhostUserPort::read_message(bool* again) {
  Connection& c = *conn_;
  // Read exactly what the current message still lacks, so that ancillary
  // fds always arrive with (and belong to) the message being read.
  std::byte* dst;
  size_t want;
  if (c.header_have < vu::kHeaderSize) {
    dst = c.header.data() + c.header_have;
    want = vu::kHeaderSize - c.header_have;
  } else {
    dst = c.payload.data() + c.payload_have;
    want = c.hdr->size - c.payload_have;
  }
  if (want > 0) {
    iovec iov{dst, want};
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * vu::kMaxFds)];
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof(cbuf);
    ssize_t n = ::recvmsg(c.sock->fd(), &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        *again = true;
        return true;
      }
      disconnect(std::string("read: ") + std::strerror(errno));
      return false;
    }
    for (cmsghdr* cm = CMSG_FIRSTHDR(&mh); cm != nullptr; cm = CMSG_NXTHDR(&mh, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
      size_t nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t k = 0; k < nfds; ++k) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int), sizeof(int));
        c.fds.push_back(fd);  // closed by the Connection if unused
      }
    }
    if ((mh.msg_flags & MSG_CTRUNC) != 0 || c.fds.size() > vu::kMaxFds) {
      vstats_.protocol_errors++;
      spdlog::warn("vhost-user: closing the frontend's connection: too many file descriptors with one message");
      disconnect("too many file descriptors with one message");
      return false;
    }
    if (n == 0) {
      disconnect("frontend closed the connection");
      return false;
    }
    if (c.header_have < vu::kHeaderSize) {
      c.header_have += static_cast<size_t>(n);
      if (c.header_have < vu::kHeaderSize) return true;
      c.hdr = vu::parse_header(c.header);
      if (!c.hdr) {
        vstats_.protocol_errors++;
        spdlog::warn("vhost-user: closing the frontend's connection: malformed message header");
        disconnect("malformed message header");
        return false;
      }
      if (c.hdr->size > 0) return true;  // the payload next
    } else {
      c.payload_have += static_cast<size_t>(n);
      if (c.payload_have < c.hdr->size) return true;
    }
  }
  // A whole message.
  vu::Header h = *c.hdr;
  std::vector<int> fds = std::move(c.fds);
  c.fds.clear();
  c.header_have = 0;
  c.payload_have = 0;
  c.hdr.reset();
  bool ok = handle(h, vu::Bytes(c.payload.data(), h.size), fds);
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
  return ok;
}

bool VhostUserPort::reply(const std::vector<std::byte>& msg) {
  ssize_t n = ::send(conn_->sock->fd(), msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n != static_cast<ssize_t>(msg.size())) {
    disconnect("cannot write a reply");
    return false;
  }
  return true;
}

bool VhostUserPort::handle(const vu::Header& h, vu::Bytes payload, std::vector<int>& fds) {
  std::string why;
  bool replied = false;
  spdlog::debug("vhost-user: {} ({} bytes, {} fds)", vu::request_name(h.request), h.size, fds.size());
  if (!handle_unchecked(h, payload, fds, &why, &replied)) {
    if (conn_ == nullptr) return false;  // already closed (a reply failed)
    vstats_.protocol_errors++;
    spdlog::warn("vhost-user: closing the frontend's connection: {}: {}", vu::request_name(h.request), why);
    disconnect(why);
    return false;
  }
  if (conn_ == nullptr) return false;
  if (!replied && h.need_reply() && (conn_->protocol_features & vu::kProtocolReplyAck) != 0)
    return reply(vu::reply_u64(h.request, 0));
  return true;
}

// Takes fds[i] out of the list (so the caller does not close it).
static int take_fd(std::vector<int>& fds, size_t i) {
  int fd = fds[i];
  fds[i] = -1;
  return fd;
}

bool VhostUserPort::handle_unchecked(const vu::Header& h, vu::Bytes p, std::vector<int>& fds, std::string* why,
                                     bool* replied) {
  Connection& c = *conn_;
  auto bad = [why](const char* reason) {
    *why = reason;
    return false;
  };
  auto queue_index = [](uint64_t i) { return i < VirtioNetDevice::kNumQueues; };
  switch (h.request) {
    case vu::kGetFeatures:
    case vu::kGetProtocolFeatures:
    case vu::kGetQueueNum: {
      if (h.size != 0) return bad("unexpected payload");
      uint64_t v = h.request == vu::kGetFeatures ? kFeatures
                   : h.request == vu::kGetProtocolFeatures ? kProtocolFeatures
                                                           : VirtioNetDevice::kNumQueues;
      *replied = true;
      return reply(vu::reply_u64(h.request, v));
    }
    case vu::kSetFeatures: {
      auto v = vu::parse_u64(p);
      if (!v) return bad("payload size");
      if ((*v & ~kFeatures) != 0) return bad("features we did not offer");
      c.features = *v;
      device_.set_mergeable_rx((*v & vu::kFeatureMrgRxbuf) != 0);
      device_.set_large_tx((*v & (vu::kFeatureHostTso4 | vu::kFeatureHostTso6)) != 0);
      set_capabilities(Capabilities{
          .csum = (*v & vu::kFeatureGuestCsum) != 0,
          .tso = (*v & vu::kFeatureGuestCsum) != 0 && (*v & vu::kFeatureGuestTso4) != 0 &&
                 (*v & vu::kFeatureGuestTso6) != 0});
      spdlog::info("vhost-user: features {:#x}: to the guest checksum offload {}, TSO {}; from it {}, {}", *v,
                   capabilities().csum ? "on" : "off", capabilities().tso ? "on" : "off",
                   (*v & vu::kFeatureCsum) != 0 ? "on" : "off",
                   (*v & (vu::kFeatureHostTso4 | vu::kFeatureHostTso6)) != 0 ? "on" : "off");
      for (int q = 0; q < VirtioNetDevice::kNumQueues; ++q)
        device_.queue(q).set_event_idx((*v & vu::kFeatureEventIdx) != 0);
      return true;
    }
    case vu::kSetProtocolFeatures: {
      auto v = vu::parse_u64(p);
      if (!v) return bad("payload size");
      if ((*v & ~kProtocolFeatures) != 0) return bad("protocol features we did not offer");
      c.protocol_features = *v;
      return true;
    }
    case vu::kSetOwner:
      return h.size == 0 ? true : bad("unexpected payload");
    case vu::kResetOwner: {
      if (h.size != 0) return bad("unexpected payload");
      for (int q = 0; q < VirtioNetDevice::kNumQueues; ++q) stop_queue(q);
      device_.reset();
      c.features = 0;
      set_capabilities({});
      return true;
    }
    case vu::kSetMemTable: {
      auto regions = vu::parse_mem_table(p);
      if (!regions) return bad("malformed memory table");
      if (regions->size() != fds.size()) return bad("memory table and fd count differ");
      // Replacing the table: the old mappings go, rings are re-translated.
      device_.memory().clear();
      for (size_t i = 0; i < regions->size(); ++i) {
        const auto& r = (*regions)[i];
        if (auto err = device_.memory().map_fd(fds[i], r.gpa, r.size, r.uaddr, r.mmap_offset)) {
          *why = "memory region: " + *err;
          return false;
        }
      }
      for (int q = 0; q < VirtioNetDevice::kNumQueues; ++q) {
        Virtqueue& vq = device_.queue(q);
        if (vq.configured() && !vq.attach(device_.memory(), why)) return false;
      }
      return true;  // fds are closed by the caller: the mappings stay
    }
    case vu::kSetLogBase:
    case vu::kSetLogFd:
      return bad("dirty logging was not offered");
    case vu::kSetVringNum: {
      auto s = vu::parse_vring_state(p);
      if (!s || !queue_index(s->index)) return bad("bad queue");
      if (!device_.queue(static_cast<int>(s->index)).set_num(s->num)) return bad("ring size not a power of two <= 32768");
      return true;
    }
    case vu::kSetVringAddr: {
      auto a = vu::parse_vring_addr(p);
      if (!a || !queue_index(a->index)) return bad("bad queue");
      Virtqueue& vq = device_.queue(static_cast<int>(a->index));
      vq.set_addresses(a->desc, a->avail, a->used);
      if (!device_.memory().empty() && !vq.attach(device_.memory(), why)) return false;
      return true;
    }
    case vu::kSetVringBase: {
      auto s = vu::parse_vring_state(p);
      if (!s || !queue_index(s->index) || s->num > 0xffff) return bad("bad queue or base");
      device_.queue(static_cast<int>(s->index)).set_base(static_cast<uint16_t>(s->num));
      return true;
    }
    case vu::kGetVringBase: {
      auto s = vu::parse_vring_state(p);
      if (!s || !queue_index(s->index)) return bad("bad queue");
      int q = static_cast<int>(s->index);
      uint16_t base = device_.queue(q).last_avail();
      stop_queue(q);
      device_.queue(q).reset();
      *replied = true;
      return reply(vu::reply_vring_state(h.request, vu::VringState{s->index, base}));
    }
    case vu::kSetVringKick:
    case vu::kSetVringCall:
    case vu::kSetVringErr: {
      auto v = vu::parse_u64(p);
      if (!v || !queue_index(*v & vu::kVringIndexMask) || (*v & ~(vu::kVringIndexMask | vu::kVringNoFd)) != 0)
        return bad("bad queue");
      int q = static_cast<int>(*v & vu::kVringIndexMask);
      bool no_fd = (*v & vu::kVringNoFd) != 0;
      if (fds.size() != (no_fd ? 0u : 1u)) return bad("fd missing or extra");
      if (h.request == vu::kSetVringErr) return true;  // we report no errors: the caller closes it
      if (h.request == vu::kSetVringCall) {
        if (c.call[q] >= 0) ::close(c.call[q]);
        c.call[q] = no_fd ? -1 : take_fd(fds, 0);
        return true;
      }
      if (no_fd) return bad("polling without a kick fd is not supported");
      c.kick[q] = std::make_unique<PolledFd>(loop_, take_fd(fds, 0), [this, q](int, int) {
        uint64_t n;
        ssize_t r = ::read(conn_->kick[q]->fd(), &n, sizeof(n));
        (void)r;  // the count is irrelevant; reading resets it
        if (q == VirtioNetDevice::kTxQueue) {
          run_tx();
        } else {
          drain_rx();  // the guest added receive buffers
        }
      });
      if (c.rings_start_enabled()) device_.set_enabled(q, true);
      start_queue_if_ready(q);
      return true;
    }
    case vu::kSetVringEnable: {
      auto s = vu::parse_vring_state(p);
      if (!s || !queue_index(s->index) || s->num > 1) return bad("bad queue or state");
      int q = static_cast<int>(s->index);
      device_.set_enabled(q, s->num == 1);
      if (q == VirtioNetDevice::kRxQueue && s->num == 0) drop_backlog();  // nothing would drain it
      start_queue_if_ready(q);
      return true;
    }
    default:
      *why = "request " + std::to_string(h.request) + " not supported";
      return false;
  }
}

void VhostUserPort::start_queue_if_ready(int q) {
  Connection& c = *conn_;
  if (c.kick[q] == nullptr || !device_.running(q)) return;
  // Transmit queue: the guest's kicks say it has frames for us. Receive
  // queue: that it added buffers, which frames waiting in rx_backlog_ need
  // (an empty ring asks for that kick: avail_event with EVENT_IDX; without
  // it the driver kicks anyway, we never set VRING_USED_F_NO_NOTIFY).
  c.kick[q]->watch(UV_READABLE);
  if (q == VirtioNetDevice::kTxQueue) idle_->start();  // the guest may have queued frames before it kicked
}

void VhostUserPort::stop_queue(int q) {
  // Stopped, not disabled: SET_VRING_ENABLE's state outlives a stop and
  // start (GET_VRING_BASE ... SET_VRING_KICK), as in libvhost-user.
  conn_->kick[q].reset();
  // Frames for a guest whose ring stopped would wait for a kick that may
  // never come (and keep the engine paused): they are dropped, as frames
  // that arrive while the ring is stopped are.
  if (q == VirtioNetDevice::kRxQueue) drop_backlog();
}

void VhostUserPort::drop_backlog() {
  size_t n = rx_backlog_.clear();
  stats_.tx_dropped += n;
  note_tx_backlog(0);
}

void VhostUserPort::drain_rx() {
  if (conn_ == nullptr) return;
  // Bounded by the backlog (kMaxQueuedFrames) and by the ring: each frame
  // delivered takes at least one of its buffers.
  bool delivered = false;
  while (!rx_backlog_.empty()) {
    const auto& f = rx_backlog_.front();
    auto r = device_.receive(Frame(f.bytes), f.offload);
    if (r == VirtioNetDevice::RxResult::kNoBuffers) break;
    if (r == VirtioNetDevice::RxResult::kDelivered) {
      delivered = true;
      stats_.tx_frames++;
      stats_.tx_bytes += f.bytes.size();
    } else if (r == VirtioNetDevice::RxResult::kBroken) {
      idle_->start();  // closes the connection on the next iteration
      break;
    } else {
      stats_.tx_dropped++;  // kTooLarge; kNotReady cannot be: the queue runs
    }
    rx_backlog_.pop();
  }
  if (delivered) signal(VirtioNetDevice::kRxQueue);
  note_tx_backlog(rx_backlog_.bytes());
}

void VhostUserPort::signal(int q) {
  int fd = conn_->call[q];
  if (fd >= 0 && device_.should_notify(q)) {
    uint64_t one = 1;
    ssize_t r = ::write(fd, &one, sizeof(one));
    (void)r;  // EAGAIN only if the counter is about to overflow: the guest is interrupted anyway
  }
}

void VhostUserPort::run_tx() {
  if (conn_ == nullptr) return;
  auto r = device_.transmit([this](Frame f, const Offload& o) { deliver(f, o); });
  if (conn_ == nullptr) return;
  if (r == VirtioNetDevice::TxResult::kBroken) {
    spdlog::warn("vhost-user: closing the frontend's connection: {}", device_.error());
    disconnect(device_.error());
    return;
  }
  signal(VirtioNetDevice::kTxQueue);
  if (r == VirtioNetDevice::TxResult::kMore) {
    idle_->start();
  } else {
    idle_->stop();
  }
}

void VhostUserPort::on_idle() {
  if (conn_ != nullptr && device_.broken()) {
    spdlog::warn("vhost-user: closing the frontend's connection: {}", device_.error());
    disconnect(device_.error());
    return;
  }
  run_tx();
}

bool VhostUserPort::transmit(Frame frame, const Offload& offload) {
  if (conn_ == nullptr) {
    stats_.tx_dropped++;
    return false;
  }
  // Behind frames already waiting: in order, after them.
  auto r = rx_backlog_.empty() ? device_.receive(frame, offload) : VirtioNetDevice::RxResult::kNoBuffers;
  switch (r) {
    case VirtioNetDevice::RxResult::kDelivered:
      stats_.tx_frames++;
      stats_.tx_bytes += frame.size();
      signal(VirtioNetDevice::kRxQueue);
      return true;
    case VirtioNetDevice::RxResult::kNoBuffers:
      // The ring is full: the frame waits for the guest's next buffers.
      if (!rx_backlog_.push(frame, offload)) {
        stats_.tx_queue_full++;
        stats_.tx_dropped++;
        return false;
      }
      stats_.tx_queued++;
      note_tx_backlog(rx_backlog_.bytes());
      return true;
    case VirtioNetDevice::RxResult::kBroken:
      // Not here: send() may run inside our own transmit path. The idle
      // callback closes the connection on the next loop iteration.
      idle_->start();
      [[fallthrough]];
    default:  // kNotReady (no ring yet: nothing would drain a queue), kTooLarge
      stats_.tx_dropped++;
      return false;
  }
}

}  // namespace slipway::link
