// GuestLink and its transports; see guest_link.h for the theory of operation.
//
// Guest memory of the vhost-user link: one memfd, shared with slipway. Each
// queue has its descriptor table, then its available ring, then (at the
// next page) its used ring; queue 1's rings follow queue 0's. Then the
// receive buffers, then the transmit buffers, queue_size of each;
// descriptor i of a queue always points at its buffer i.
#include "bench/guest_link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "netstack/link/vhost_user_msg.h"

namespace slipway::bench {

namespace vu = link::vhost_user;
using Bytes = std::vector<std::byte>;

void die(const std::string& what) {
  std::fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what.c_str(), std::strerror(errno));
  std::exit(1);
}

void die_plain(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, what.c_str());
  std::exit(1);
}

bool GuestLink::send(std::span<const std::byte> frame) {
  auto slot = tx_slot();
  if (!slot || slot->frame.size() < frame.size()) return false;
  if (!slot->header.empty()) std::memset(slot->header.data(), 0, slot->header.size());
  std::memcpy(slot->frame.data(), frame.data(), frame.size());
  tx_commit(frame.size());
  return true;
}

void GuestLink::receive(int timeout_ms, int max_frames, const RxHandler& on_frame) {
  if (poll_rx(max_frames, on_frame) > 0) return;
  if (auto p = arm_rx()) {
    if (::poll(&*p, 1, timeout_ms) != 1) return;
  }
  poll_rx(max_frames, on_frame);
}

namespace {

sockaddr_un unix_addr(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof(a.sun_path)) die_plain("socket path too long: " + path);
  std::memcpy(a.sun_path, path.data(), path.size());
  return a;
}

int connect_unix(const std::string& path, int type) {
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  auto a = unix_addr(path);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) die("connect " + path);
  return fd;
}

bool would_block() { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

// ------------------------------------------------------------------ stream
class StreamLink : public GuestLink {
 public:
  explicit StreamLink(const std::string& path) : fd_(connect_unix(path, SOCK_STREAM | SOCK_NONBLOCK)) {
    in_.resize(2 * (4 + kMaxFrame));
  }
  ~StreamLink() override { ::close(fd_); }

  std::optional<TxSlot> tx_slot() override {
    if (end_ - out_off_ > kMaxStreamPending) flush();
    if (end_ - out_off_ > kMaxStreamPending) return std::nullopt;
    if (out_.size() < end_ + 4 + kMaxFrame) out_.resize(end_ + 4 + kMaxFrame);
    return TxSlot{{}, std::span(out_).subspan(end_ + 4, kMaxFrame)};
  }
  void tx_commit(size_t n) override {
    out_[end_] = std::byte(n >> 24);
    out_[end_ + 1] = std::byte((n >> 16) & 0xff);
    out_[end_ + 2] = std::byte((n >> 8) & 0xff);
    out_[end_ + 3] = std::byte(n & 0xff);
    end_ += 4 + n;
  }
  void flush() override {
    while (out_off_ < end_) {
      ssize_t n = ::send(fd_, out_.data() + out_off_, end_ - out_off_, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && would_block()) break;
      if (n <= 0) die("stream write");
      out_off_ += size_t(n);
    }
    if (out_off_ == end_) {
      out_off_ = end_ = 0;
    } else if (out_off_ > kMaxStreamPending) {
      std::memmove(out_.data(), out_.data() + out_off_, end_ - out_off_);
      end_ -= out_off_;
      out_off_ = 0;
    }
  }

  int poll_rx(int max_frames, const RxHandler& on_frame) override {
    // One read per call (bounded), then whole frames from the buffer.
    if (have_ < in_.size() && !whole_frame_at(0)) {
      ssize_t n = ::recv(fd_, in_.data() + have_, in_.size() - have_, MSG_DONTWAIT);
      if (n == 0) die_plain("slipway closed the stream");
      if (n < 0 && !would_block()) die("stream read");
      if (n > 0) have_ += size_t(n);
    }
    size_t off = 0;
    int frames = 0;
    while (frames < max_frames && whole_frame_at(off)) {
      size_t len = length_at(off);
      iovec piece{in_.data() + off + 4, len};
      on_frame(RxFrame{{}, std::span(&piece, 1), len});
      off += 4 + len;
      frames++;
    }
    std::memmove(in_.data(), in_.data() + off, have_ - off);
    have_ -= off;
    return frames;
  }
  std::optional<pollfd> arm_rx() override {
    if (whole_frame_at(0)) return std::nullopt;
    return pollfd{fd_, POLLIN, 0};
  }
  std::optional<pollfd> arm_tx() override {
    if (out_off_ == end_) return std::nullopt;
    return pollfd{fd_, POLLOUT, 0};
  }

 private:
  size_t length_at(size_t off) const {
    return (size_t(in_[off]) << 24) | (size_t(in_[off + 1]) << 16) | (size_t(in_[off + 2]) << 8) |
           size_t(in_[off + 3]);
  }
  bool whole_frame_at(size_t off) const {
    if (have_ - off < 4) return false;
    size_t len = length_at(off);
    if (len == 0 || len > kMaxFrame) die_plain("slipway sent a stream frame of " + std::to_string(len) + " bytes");
    return have_ - off - 4 >= len;
  }

  int fd_;
  Bytes in_, out_;
  size_t have_ = 0;             // received bytes in in_
  size_t out_off_ = 0, end_ = 0;  // unsent bytes: out_[out_off_, end_)
};

// ------------------------------------------------------------------- dgram
class DgramLink : public GuestLink {
 public:
  explicit DgramLink(const std::string& path) : mine_(path + ".bench-" + std::to_string(getpid())) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    unlink(mine_.c_str());
    auto me = unix_addr(mine_);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&me), sizeof(me)) != 0) die("bind " + mine_);
    auto to = unix_addr(path);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) die("connect " + path);
    out_.resize(kMaxFrame);
    in_.resize(kMaxFrame + 1);
  }
  ~DgramLink() override {
    ::close(fd_);
    unlink(mine_.c_str());
  }

  std::optional<TxSlot> tx_slot() override {
    if (pending_ > 0 && !send_pending()) return std::nullopt;
    return TxSlot{{}, std::span(out_)};
  }
  void tx_commit(size_t n) override {
    pending_ = n;
    send_pending();
  }
  int poll_rx(int max_frames, const RxHandler& on_frame) override {
    int frames = 0;
    while (frames < max_frames) {
      ssize_t n = ::recv(fd_, in_.data(), in_.size(), MSG_DONTWAIT);
      if (n < 0 && would_block()) break;
      if (n <= 0) die("dgram read");
      iovec piece{in_.data(), size_t(n)};
      on_frame(RxFrame{{}, std::span(&piece, 1), size_t(n)});
      frames++;
    }
    return frames;
  }
  std::optional<pollfd> arm_rx() override { return pollfd{fd_, POLLIN, 0}; }
  std::optional<pollfd> arm_tx() override {
    if (pending_ == 0) return std::nullopt;
    return pollfd{fd_, POLLOUT, 0};
  }

 private:
  // True once the held datagram is gone (sent); false while slipway's
  // socket is full.
  bool send_pending() {
    ssize_t n = ::send(fd_, out_.data(), pending_, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (would_block() || errno == ENOBUFS)) return false;
    if (n != ssize_t(pending_)) die("dgram write");
    pending_ = 0;
    return true;
  }

  std::string mine_;
  int fd_;
  Bytes out_, in_;
  size_t pending_ = 0;
};

// ------------------------------------------------------------------ packet
class PacketLink : public GuestLink {
 public:
  explicit PacketLink(const std::string& iface) {
    fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd_ < 0) die("AF_PACKET socket");
    sockaddr_ll a{};
    a.sll_family = AF_PACKET;
    a.sll_protocol = htons(ETH_P_ALL);
    a.sll_ifindex = int(if_nametoindex(iface.c_str()));
    if (a.sll_ifindex == 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) die("bind " + iface);
    out_.resize(kMaxFrame);
    in_.resize(kMaxFrame);
  }
  ~PacketLink() override { ::close(fd_); }

  std::optional<TxSlot> tx_slot() override { return TxSlot{{}, std::span(out_)}; }
  void tx_commit(size_t n) override {
    ssize_t r = ::send(fd_, out_.data(), n, 0);
    (void)r;  // a full device queue drops the frame, as a NIC would
  }
  int poll_rx(int max_frames, const RxHandler& on_frame) override {
    int frames = 0;
    for (int i = 0; i < max_frames; ++i) {
      sockaddr_ll from{};
      socklen_t len = sizeof(from);
      ssize_t n = recvfrom(fd_, in_.data(), in_.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0) break;
      if (from.sll_pkttype == PACKET_OUTGOING) continue;
      iovec piece{in_.data(), size_t(n)};
      on_frame(RxFrame{{}, std::span(&piece, 1), size_t(n)});
      frames++;
    }
    return frames;
  }
  std::optional<pollfd> arm_rx() override { return pollfd{fd_, POLLIN, 0}; }
  std::optional<pollfd> arm_tx() override { return std::nullopt; }

 private:
  int fd_;
  Bytes out_, in_;
};

// -------------------------------------------------------------- vhost-user
class VhostUserLink : public GuestLink {
 public:
  static constexpr uint64_t kBase = vu::kFeatureVersion1 | vu::kFeatureMrgRxbuf | vu::kFeatureProtocolFeatures |
                                    vu::kFeatureEventIdx;
  // What a Linux guest's virtio-net takes and sends when the VMM lets it.
  static constexpr uint64_t kOffloads = vu::kFeatureCsum | vu::kFeatureGuestCsum | vu::kFeatureGuestTso4 |
                                        vu::kFeatureGuestTso6 | vu::kFeatureGuestEcn | vu::kFeatureHostTso4 |
                                        vu::kFeatureHostTso6 | vu::kFeatureHostEcn;

  VhostUserLink(const std::string& path, const VhostUserOptions& o)
      : opt_(o),
        num_(o.queue_size),
        avail_off_(16u * num_),
        used_off_(round_up(avail_off_ + 6 + 2u * num_, 4096)),
        ring_span_(used_off_ + round_up(6 + 8u * num_, 4096)),
        ring_off_{0, ring_span_},
        rx_base_(2 * ring_span_),
        tx_base_(round_up(rx_base_ + num_ * o.rx_buffer, 4096)),
        mem_size_(round_up(tx_base_ + num_ * o.tx_buffer, 1 << 20)) {
    if (o.rx_buffer < kRingHdrLen + 64 || o.tx_buffer < kRingHdrLen + 64) die_plain("vhost-user buffers too small");
    if (num_ == 0 || num_ > 32768 || (num_ & (num_ - 1)) != 0) die_plain("vhost-user queue size: a power of two up to 32768");
    sock_ = connect_unix(path, SOCK_STREAM);
    memfd_ = memfd_create("bench-guest", MFD_CLOEXEC);
    if (memfd_ < 0 || ftruncate(memfd_, off_t(mem_size_)) != 0) die("memfd");
    void* p = mmap(nullptr, mem_size_, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_, 0);
    if (p == MAP_FAILED) die("mmap");
    mem_ = static_cast<std::byte*>(p);
    for (int q = 0; q < 2; ++q) {
      kick_[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      call_[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (kick_[q] < 0 || call_[q] < 0) die("eventfd");
    }
    msg(vu::kGetFeatures, {});
    uint64_t offered = reply_u64();
    if ((offered & kBase) != kBase) die_plain("backend lacks VERSION_1/MRG_RXBUF/PROTOCOL_FEATURES/EVENT_IDX");
    features_ = kBase | (o.offloads ? (offered & kOffloads) : 0);
    if (o.offloads && (features_ & kOffloads) != kOffloads)
      std::fprintf(stderr, "%s: vhost-user: the backend offers only some offloads: %#llx of %#llx\n",
                   program_invocation_short_name, static_cast<unsigned long long>(features_ & kOffloads),
                   static_cast<unsigned long long>(kOffloads));
    msg(vu::kSetFeatures, vu::u64_payload(features_));
    msg(vu::kSetProtocolFeatures, vu::u64_payload(0));
    msg(vu::kSetOwner, {});
    vu::MemRegion r{0, mem_size_, ua(0), 0};
    msg(vu::kSetMemTable, vu::mem_table_payload(std::span(&r, 1)), memfd_);
    for (uint32_t q = 0; q < 2; ++q) {
      msg(vu::kSetVringNum, vu::vring_state_payload({q, num_}));
      msg(vu::kSetVringBase, vu::vring_state_payload({q, 0}));
      vu::VringAddr va{q, 0, ua(ring_off_[q]), ua(ring_off_[q] + used_off_), ua(ring_off_[q] + avail_off_), 0};
      msg(vu::kSetVringAddr, vu::vring_addr_payload(va));
      msg(vu::kSetVringKick, vu::u64_payload(q), kick_[q]);
      msg(vu::kSetVringCall, vu::u64_payload(q), call_[q]);
    }
    // Every receive buffer posted; every transmit buffer free.
    for (uint16_t i = 0; i < num_; ++i) {
      desc(0, i, rx_base_ + opt_.rx_buffer * i, uint32_t(opt_.rx_buffer), 2 /* WRITE */);
      post(0, i);
      tx_free_.push_back(uint16_t(num_ - 1 - i));
    }
    set_used_event(1, uint16_t(tx_used_seen_ + 0x8000));  // no transmit interrupts until asked
    publish(0);
    rx_posted_at_ = avail_[0];
    for (uint32_t q = 0; q < 2; ++q) msg(vu::kSetVringEnable, vu::vring_state_payload({q, 1}));
    pieces_.reserve(num_);
    tx_in_flight_.assign(num_, false);
  }
  ~VhostUserLink() override {
    ::close(sock_);
    munmap(mem_, mem_size_);
    ::close(memfd_);
    for (int q = 0; q < 2; ++q) {
      ::close(kick_[q]);
      ::close(call_[q]);
    }
  }

  std::optional<TxSlot> tx_slot() override {
    reclaim_tx();
    if (tx_free_.empty()) return std::nullopt;
    std::byte* b = tx_buffer(tx_free_.back());
    std::span<std::byte> header = opt_.offloads ? std::span(b, kVnetHdrLen) : std::span<std::byte>();
    return TxSlot{header, std::span(b + kRingHdrLen, opt_.tx_buffer - kRingHdrLen)};
  }
  void tx_commit(size_t n) override {
    uint16_t i = tx_free_.back();
    tx_free_.pop_back();
    tx_in_flight_[i] = true;
    std::byte* b = tx_buffer(i);
    if (!opt_.offloads) std::memset(b, 0, kVnetHdrLen);
    // A driver never sends DATA_VALID (virtio 1.2 5.1.6.2.1); a TAP may
    // hand it over for a forwarded frame. num_buffers is 0 on transmit.
    b[0] &= ~std::byte{2};
    b[10] = b[11] = std::byte{0};
    desc(1, i, tx_base_ + opt_.tx_buffer * i, uint32_t(kRingHdrLen + n), 0);
    post(1, i);
    tx_pending_ = true;
  }
  void flush() override {
    if (!tx_pending_) return;
    uint16_t old = tx_kicked_at_;
    publish(1);
    tx_kicked_at_ = avail_[1];
    tx_pending_ = false;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t event = get16(ring_off_[1] + used_off_ + 4 + 8 * num_);  // avail_event
    if (uint16_t(avail_[1] - event - 1) >= uint16_t(avail_[1] - old)) return;  // not asked for
    uint64_t one = 1;
    if (write(kick_[1], &one, 8) != 8) die("kick");
  }

  int poll_rx(int max_frames, const RxHandler& on_frame) override {
    if (rx_armed_) {
      uint64_t n;
      ssize_t r = read(call_[0], &n, 8);  // clears the interrupt (EAGAIN if none came)
      (void)r;
      rx_armed_ = false;
    }
    uint16_t used = used_idx(0);
    int frames = 0;
    bool reposted = false;
    while (frames < max_frames && rx_used_seen_ != used) {
      uint32_t id = 0, len = 0;
      used_entry(0, rx_used_seen_, &id, &len);
      if (id >= num_ || len < kRingHdrLen || len > opt_.rx_buffer) {
        errors_.bad_used++;
        skip_rx(1, &reposted);
        continue;
      }
      const std::byte* first = rx_buffer(uint16_t(id));
      uint16_t nbufs = uint16_t(uint16_t(first[10]) | (uint16_t(first[11]) << 8));
      if (nbufs == 0 || nbufs > num_) {
        errors_.bad_used++;
        skip_rx(1, &reposted);
        continue;
      }
      if (uint16_t(used - rx_used_seen_) < nbufs) {
        // The rest is not published yet: look again once it is.
        if (rx_need_ == 1) errors_.rx_partial++;
        rx_need_ = nbufs;
        break;
      }
      rx_need_ = 1;
      pieces_.clear();
      pieces_.push_back(iovec{const_cast<std::byte*>(first) + kRingHdrLen, len - kRingHdrLen});
      size_t size = len - kRingHdrLen;
      bool bad = false;
      for (uint16_t k = 1; k < nbufs; ++k) {
        uint32_t kid = 0, klen = 0;
        used_entry(0, uint16_t(rx_used_seen_ + k), &kid, &klen);
        if (kid >= num_ || klen > opt_.rx_buffer) {
          bad = true;
          break;
        }
        pieces_.push_back(iovec{rx_buffer(uint16_t(kid)), klen});
        size += klen;
      }
      if (bad) {
        errors_.bad_used++;
      } else {
        on_frame(RxFrame{std::span(first, kVnetHdrLen), pieces_, size});
        frames++;
      }
      skip_rx(nbufs, &reposted);
    }
    if (reposted) {
      uint16_t old = rx_posted_at_;
      publish(0);
      rx_posted_at_ = avail_[0];
      // Frames slipway could not place for want of buffers wait for this
      // kick (the receive queue's avail_event asks for it).
      __atomic_thread_fence(__ATOMIC_SEQ_CST);
      uint16_t event = get16(ring_off_[0] + used_off_ + 4 + 8 * num_);
      if (uint16_t(avail_[0] - event - 1) < uint16_t(avail_[0] - old)) {
        uint64_t one = 1;
        if (write(kick_[0], &one, 8) != 8) die("kick");
      }
    }
    return frames;
  }
  std::optional<pollfd> arm_rx() override {
    // used_event: interrupt me once anything beyond what I have seen is
    // used (or, for a frame seen in part, once its last buffer is).
    set_used_event(0, uint16_t(rx_used_seen_ + rx_need_ - 1));
    rx_armed_ = true;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (uint16_t(used_idx(0) - rx_used_seen_) >= rx_need_) return std::nullopt;
    return pollfd{call_[0], POLLIN, 0};
  }
  std::optional<pollfd> arm_tx() override {
    reclaim_tx();
    if (!tx_free_.empty()) return std::nullopt;
    // Full: interrupt me when slipway has used the next buffer.
    set_used_event(1, tx_used_seen_);
    tx_armed_ = true;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (used_idx(1) != tx_used_seen_) return std::nullopt;
    return pollfd{call_[1], POLLIN, 0};
  }

 private:
  static size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }
  uint64_t ua(size_t off) const { return reinterpret_cast<uint64_t>(mem_ + off); }
  std::byte* rx_buffer(uint16_t i) const { return mem_ + rx_base_ + opt_.rx_buffer * i; }
  std::byte* tx_buffer(uint16_t i) const { return mem_ + tx_base_ + opt_.tx_buffer * i; }
  void put16(size_t off, uint16_t v) { std::memcpy(mem_ + off, &v, 2); }
  uint16_t get16(size_t off) const {
    uint16_t v;
    std::memcpy(&v, mem_ + off, 2);
    return v;
  }
  uint32_t get32(size_t off) const {
    uint32_t v;
    std::memcpy(&v, mem_ + off, 4);
    return v;
  }
  void used_entry(int q, uint16_t idx, uint32_t* id, uint32_t* len) const {
    size_t e = ring_off_[q] + used_off_ + 4 + 8 * (idx % num_);
    *id = get32(e);
    *len = get32(e + 4);
  }
  void set_used_event(int q, uint16_t v) { put16(ring_off_[q] + avail_off_ + 4 + 2 * num_, v); }
  void desc(int q, uint16_t i, uint64_t gpa, uint32_t len, uint16_t flags) {
    size_t o = ring_off_[q] + 16u * i;
    std::memcpy(mem_ + o, &gpa, 8);
    std::memcpy(mem_ + o + 8, &len, 4);
    std::memcpy(mem_ + o + 12, &flags, 2);
  }
  void post(int q, uint16_t head) {
    put16(ring_off_[q] + avail_off_ + 4 + 2 * (avail_[q] % num_), head);
    avail_[q]++;
  }
  void publish(int q) {
    __atomic_store_n(reinterpret_cast<uint16_t*>(mem_ + ring_off_[q] + avail_off_ + 2), avail_[q], __ATOMIC_RELEASE);
  }
  uint16_t used_idx(int q) const {
    return __atomic_load_n(reinterpret_cast<const uint16_t*>(mem_ + ring_off_[q] + used_off_ + 2), __ATOMIC_ACQUIRE);
  }
  // Reposts the next n used receive buffers (ids out of range are skipped).
  void skip_rx(uint16_t n, bool* reposted) {
    for (uint16_t k = 0; k < n; ++k) {
      uint32_t id = 0, len = 0;
      used_entry(0, rx_used_seen_, &id, &len);
      rx_used_seen_++;
      if (id < num_) {
        post(0, uint16_t(id));
        *reposted = true;
      }
    }
  }
  void reclaim_tx() {
    if (tx_armed_) {
      uint64_t n;
      ssize_t r = read(call_[1], &n, 8);
      (void)r;
      tx_armed_ = false;
    }
    uint16_t used = used_idx(1);
    if (used == tx_used_seen_) return;
    while (tx_used_seen_ != used) {
      uint32_t id = 0, len = 0;
      used_entry(1, tx_used_seen_, &id, &len);
      tx_used_seen_++;
      if (id < num_ && tx_in_flight_[id]) {
        tx_in_flight_[id] = false;
        tx_free_.push_back(uint16_t(id));
      } else {
        errors_.bad_used++;
      }
    }
    set_used_event(1, uint16_t(tx_used_seen_ + 0x8000));
  }
  void msg(uint32_t req, const Bytes& payload, int fd = -1) {
    auto m = vu::request(req, payload);
    iovec iov{m.data(), m.size()};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
    if (fd >= 0) {
      mh.msg_control = cbuf;
      mh.msg_controllen = sizeof(cbuf);
      cmsghdr* cm = CMSG_FIRSTHDR(&mh);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    if (sendmsg(sock_, &mh, MSG_NOSIGNAL) != ssize_t(m.size())) die("vhost-user send");
  }
  uint64_t reply_u64() {
    std::byte r[20];
    pollfd p{sock_, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1 || recv(sock_, r, sizeof(r), MSG_WAITALL) != 20) die("vhost-user reply");
    uint64_t v;
    std::memcpy(&v, r + 12, 8);
    return v;
  }

  VhostUserOptions opt_;
  // Layout (see the top of this file): a queue's descriptor table at
  // ring_off_[q], its available ring at + avail_off_, its used ring at + used_off_.
  const uint16_t num_;
  const size_t avail_off_, used_off_, ring_span_;
  const size_t ring_off_[2];
  size_t rx_base_, tx_base_, mem_size_;
  int sock_ = -1, memfd_ = -1;
  std::byte* mem_ = nullptr;
  int kick_[2] = {-1, -1}, call_[2] = {-1, -1};
  uint64_t features_ = 0;
  uint16_t avail_[2] = {0, 0};
  uint16_t rx_used_seen_ = 0, rx_posted_at_ = 0, tx_used_seen_ = 0, tx_kicked_at_ = 0;
  uint16_t rx_need_ = 1;  // used entries the next frame needs (more once it was seen in part)
  std::vector<uint16_t> tx_free_;     // transmit buffers (= descriptors) not in flight
  std::vector<bool> tx_in_flight_;   // by descriptor
  std::vector<iovec> pieces_;
  bool tx_pending_ = false, rx_armed_ = false, tx_armed_ = false;
};

}  // namespace

std::unique_ptr<GuestLink> connect_link(const std::string& kind, const std::string& target,
                                        const VhostUserOptions& vhost) {
  if (kind == "vhost-user") return std::make_unique<VhostUserLink>(target, vhost);
  if (kind == "stream") return std::make_unique<StreamLink>(target);
  if (kind == "dgram") return std::make_unique<DgramLink>(target);
  if (kind == "packet") return std::make_unique<PacketLink>(target);
  die_plain("unknown transport " + kind);
}

}  // namespace slipway::bench
