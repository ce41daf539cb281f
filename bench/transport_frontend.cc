// transport_frontend: a synthetic VM frontend for bench/transports.sh.
//
// It plays the guest's side of one slipway transport and blasts ICMP echo
// requests at the gateway (10.0.2.2, answered by slipway's Gateway itself),
// keeping up to --window requests in flight, for --seconds, and prints one
// line: transport, frames sent and received, seconds, received frames per
// second and Gbit/s (frame bytes received, without any transport header).
//
//   --vhost-user PATH  vhost-user frontend: memfd "guest memory" (16 MiB)
//                      shared with slipway, 256-entry rings, eventfd kicks
//                      and calls with EVENT_IDX as Linux's virtio-net uses
//                      them (RX: interrupt after the last seen entry; TX:
//                      kick only when slipway asks, no TX interrupts: TX
//                      completions are polled)
//   --stream PATH      QEMU -netdev stream framing (4-byte length)
//   --dgram PATH       QEMU -netdev dgram (one frame per datagram)
//   --packet IFACE     AF_PACKET on a TAP-backed interface (`slipway run`):
//                      the TAP reference
//
// The guest is 10.0.2.15 / 52:54:00:12:34:56; the gateway's MAC is learnt
// with an ARP request first. A request unanswered for 200 ms is forgotten
// (the window refills), so a lossy transport shows as a lower rate, not a
// hang. Everything is bounded by --seconds plus 5 s of set-up.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "netstack/link/vhost_user_msg.h"

namespace {

namespace vu = slipway::link::vhost_user;
using Bytes = std::vector<std::byte>;
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "transport_frontend: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

sockaddr_un unix_addr(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof(a.sun_path)) die("path too long");
  std::memcpy(a.sun_path, path.data(), path.size());
  return a;
}

// One transport, guest side.
class Link {
 public:
  virtual ~Link() = default;
  virtual bool send(const Bytes& frame) = 0;
  virtual void flush() {}
  // Calls on_frame for frames received within timeout_ms; bounded batch.
  virtual void receive(int timeout_ms, const std::function<void(const std::byte*, size_t)>& on_frame) = 0;
};

class StreamLink : public Link {
 public:
  explicit StreamLink(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto a = unix_addr(path);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) die("connect " + path);
    buf_.resize(1 << 20);
  }
  bool send(const Bytes& f) override {
    out_.push_back(std::byte(f.size() >> 24));
    out_.push_back(std::byte((f.size() >> 16) & 0xff));
    out_.push_back(std::byte((f.size() >> 8) & 0xff));
    out_.push_back(std::byte(f.size() & 0xff));
    out_.insert(out_.end(), f.begin(), f.end());
    return true;
  }
  void flush() override {
    size_t off = 0;
    while (off < out_.size()) {
      ssize_t n = write(fd_, out_.data() + off, out_.size() - off);
      if (n <= 0) die("write");
      off += size_t(n);
    }
    out_.clear();
  }
  void receive(int timeout_ms, const std::function<void(const std::byte*, size_t)>& on_frame) override {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1) return;
    ssize_t n = recv(fd_, buf_.data() + have_, buf_.size() - have_, MSG_DONTWAIT);
    if (n == 0) die("slipway closed the stream");
    if (n < 0) return;
    have_ += size_t(n);
    size_t off = 0;
    while (have_ - off >= 4) {
      size_t len = (size_t(buf_[off]) << 24) | (size_t(buf_[off + 1]) << 16) | (size_t(buf_[off + 2]) << 8) |
                   size_t(buf_[off + 3]);
      if (have_ - off - 4 < len) break;
      on_frame(buf_.data() + off + 4, len);
      off += 4 + len;
    }
    std::memmove(buf_.data(), buf_.data() + off, have_ - off);
    have_ -= off;
  }

 private:
  int fd_;
  Bytes buf_, out_;
  size_t have_ = 0;
};

class DgramLink : public Link {
 public:
  explicit DgramLink(const std::string& path) : mine_(path + ".bench-" + std::to_string(getpid())) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    unlink(mine_.c_str());
    auto me = unix_addr(mine_);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&me), sizeof(me)) != 0) die("bind " + mine_);
    auto to = unix_addr(path);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) die("connect " + path);
    buf_.resize(65536);
  }
  ~DgramLink() override { unlink(mine_.c_str()); }
  bool send(const Bytes& f) override { return ::send(fd_, f.data(), f.size(), 0) == ssize_t(f.size()); }
  void receive(int timeout_ms, const std::function<void(const std::byte*, size_t)>& on_frame) override {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1) return;
    for (int i = 0; i < 64; ++i) {
      ssize_t n = recv(fd_, buf_.data(), buf_.size(), MSG_DONTWAIT);
      if (n <= 0) return;
      on_frame(buf_.data(), size_t(n));
    }
  }

 private:
  std::string mine_;
  int fd_;
  Bytes buf_;
};

class PacketLink : public Link {
 public:
  explicit PacketLink(const std::string& iface) {
    fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd_ < 0) die("AF_PACKET socket");
    sockaddr_ll a{};
    a.sll_family = AF_PACKET;
    a.sll_protocol = htons(ETH_P_ALL);
    a.sll_ifindex = int(if_nametoindex(iface.c_str()));
    if (a.sll_ifindex == 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) die("bind " + iface);
    buf_.resize(65536);
  }
  bool send(const Bytes& f) override { return ::send(fd_, f.data(), f.size(), 0) == ssize_t(f.size()); }
  void receive(int timeout_ms, const std::function<void(const std::byte*, size_t)>& on_frame) override {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1) return;
    for (int i = 0; i < 64; ++i) {
      sockaddr_ll from{};
      socklen_t len = sizeof(from);
      ssize_t n = recvfrom(fd_, buf_.data(), buf_.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0) return;
      if (from.sll_pkttype == PACKET_OUTGOING) continue;
      on_frame(buf_.data(), size_t(n));
    }
  }

 private:
  int fd_;
  Bytes buf_;
};

// The vhost-user frontend: what QEMU does, minus the guest.
class VhostUserLink : public Link {
 public:
  static constexpr size_t kMem = 16 << 20;
  static constexpr uint16_t kQ = 256;
  static constexpr size_t kBuf = 2048;
  static constexpr size_t kRing[2] = {0x0, 0x10000};         // desc; avail +0x1000; used +0x2000
  static constexpr size_t kBufs[2] = {0x100000, 0x200000};  // kQ buffers of kBuf each

  explicit VhostUserLink(const std::string& path) {
    sock_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto a = unix_addr(path);
    if (connect(sock_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) die("connect " + path);
    memfd_ = memfd_create("bench-guest", MFD_CLOEXEC);
    if (memfd_ < 0 || ftruncate(memfd_, kMem) != 0) die("memfd");
    void* p = mmap(nullptr, kMem, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_, 0);
    if (p == MAP_FAILED) die("mmap");
    mem_ = static_cast<std::byte*>(p);
    for (int q = 0; q < 2; ++q) {
      kick_[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      call_[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    }
    msg(vu::kGetFeatures, {});
    uint64_t features = reply_u64();
    uint64_t want =
        vu::kFeatureVersion1 | vu::kFeatureMrgRxbuf | vu::kFeatureProtocolFeatures | vu::kFeatureEventIdx;
    if ((features & want) != want) die("backend lacks VERSION_1/MRG_RXBUF/PROTOCOL_FEATURES");
    msg(vu::kSetFeatures, vu::u64_payload(want));
    msg(vu::kSetProtocolFeatures, vu::u64_payload(0));
    msg(vu::kSetOwner, {});
    vu::MemRegion r{0, kMem, ua(0), 0};
    msg(vu::kSetMemTable, vu::mem_table_payload(std::span(&r, 1)), memfd_);
    for (uint32_t q = 0; q < 2; ++q) {
      msg(vu::kSetVringNum, vu::vring_state_payload({q, kQ}));
      msg(vu::kSetVringBase, vu::vring_state_payload({q, 0}));
      vu::VringAddr va{q, 0, ua(kRing[q]), ua(kRing[q] + 0x2000), ua(kRing[q] + 0x1000), 0};
      msg(vu::kSetVringAddr, vu::vring_addr_payload(va));
      msg(vu::kSetVringKick, vu::u64_payload(q), kick_[q]);
      if (q == 0) msg(vu::kSetVringCall, vu::u64_payload(q), call_[q]);
      else msg(vu::kSetVringCall, vu::u64_payload(q | vu::kVringNoFd));  // TX completions are polled
    }
    // Every receive buffer posted.
    for (uint16_t i = 0; i < kQ; ++i) {
      desc(0, i, kBufs[0] + kBuf * i, kBuf, 2 /* WRITE */);
      post(0, i);
    }
    publish(0);
    for (uint32_t q = 0; q < 2; ++q) msg(vu::kSetVringEnable, vu::vring_state_payload({q, 1}));
  }

  bool send(const Bytes& f) override {
    if (f.size() + 12 > kBuf) return false;
    reclaim_tx();
    if (tx_in_flight_ == kQ) return false;
    uint16_t i = tx_next_;
    tx_next_ = uint16_t((tx_next_ + 1) % kQ);
    tx_in_flight_++;
    std::byte* b = mem_ + kBufs[1] + kBuf * i;
    std::memset(b, 0, 12);
    std::memcpy(b + 12, f.data(), f.size());
    desc(1, i, kBufs[1] + kBuf * i, uint32_t(12 + f.size()), 0);
    post(1, i);
    tx_pending_ = true;
    return true;
  }
  void flush() override {
    if (!tx_pending_) return;
    uint16_t old = tx_kicked_at_;
    publish(1);
    tx_kicked_at_ = avail_[1];
    tx_pending_ = false;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t event = get16(kRing[1] + 0x2000 + 4 + 8 * kQ);  // avail_event
    if (uint16_t(avail_[1] - event - 1) >= uint16_t(avail_[1] - old)) return;  // not asked for
    uint64_t one = 1;
    if (write(kick_[1], &one, 8) != 8) die("kick");
  }
  void receive(int timeout_ms, const std::function<void(const std::byte*, size_t)>& on_frame) override {
    // used_event: interrupt me once anything beyond what I have seen is used.
    put16(kRing[0] + 0x1000 + 4 + 2 * kQ, rx_used_seen_);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (used_idx(0) == rx_used_seen_) {
      pollfd p{call_[0], POLLIN, 0};
      if (poll(&p, 1, timeout_ms) != 1) return;
      uint64_t n;
      if (read(call_[0], &n, 8) < 0) return;
    }
    uint16_t used = used_idx(0);
    while (rx_used_seen_ != used) {
      size_t e = kRing[0] + 0x2000 + 4 + 8 * (rx_used_seen_ % kQ);
      uint32_t id = get32(e), len = get32(e + 4);
      if (id < kQ && len >= 12 && len <= kBuf) on_frame(mem_ + kBufs[0] + kBuf * id + 12, len - 12);
      rx_used_seen_++;
      if (id < kQ) post(0, uint16_t(id));
    }
    publish(0);
  }

 private:
  uint64_t ua(size_t off) const { return reinterpret_cast<uint64_t>(mem_ + off); }
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
  void desc(int q, uint16_t i, uint64_t gpa, uint32_t len, uint16_t flags) {
    size_t o = kRing[q] + 16u * i;
    std::memcpy(mem_ + o, &gpa, 8);
    std::memcpy(mem_ + o + 8, &len, 4);
    std::memcpy(mem_ + o + 12, &flags, 2);
  }
  void post(int q, uint16_t head) {
    put16(kRing[q] + 0x1000 + 4 + 2 * (avail_[q] % kQ), head);
    avail_[q]++;
  }
  void publish(int q) {
    __atomic_store_n(reinterpret_cast<uint16_t*>(mem_ + kRing[q] + 0x1000 + 2), avail_[q], __ATOMIC_RELEASE);
  }
  uint16_t used_idx(int q) const {
    return __atomic_load_n(reinterpret_cast<const uint16_t*>(mem_ + kRing[q] + 0x2000 + 2), __ATOMIC_ACQUIRE);
  }
  void reclaim_tx() {
    uint16_t used = used_idx(1);
    tx_in_flight_ = uint16_t(tx_in_flight_ - uint16_t(used - tx_used_seen_));
    tx_used_seen_ = used;
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

  int sock_, memfd_;
  std::byte* mem_;
  int kick_[2], call_[2];
  uint16_t avail_[2] = {0, 0};
  uint16_t rx_used_seen_ = 0, tx_used_seen_ = 0, tx_next_ = 0, tx_in_flight_ = 0, tx_kicked_at_ = 0;
  bool tx_pending_ = false;
};

// ---------------------------------------------------------------- frames
const uint8_t kGuestMac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
const uint8_t kGuestIp[4] = {10, 0, 2, 15}, kGatewayIp[4] = {10, 0, 2, 2};

uint16_t checksum(const std::byte* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t(p[i]) << 8) | uint32_t(p[i + 1]);
  if (n & 1) sum += uint32_t(p[n - 1]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

Bytes arp_request() {
  Bytes f(42);
  auto* p = f.data();
  std::memset(p, 0xff, 6);
  std::memcpy(p + 6, kGuestMac, 6);
  p[12] = std::byte{0x08}, p[13] = std::byte{0x06};
  const uint8_t hdr[8] = {0, 1, 8, 0, 6, 4, 0, 1};
  std::memcpy(p + 14, hdr, 8);
  std::memcpy(p + 22, kGuestMac, 6);
  std::memcpy(p + 28, kGuestIp, 4);
  std::memcpy(p + 38, kGatewayIp, 4);
  return f;
}

Bytes echo_request(const uint8_t gw_mac[6], size_t frame_size, uint16_t seq) {
  Bytes f(frame_size);
  auto* p = f.data();
  std::memcpy(p, gw_mac, 6);
  std::memcpy(p + 6, kGuestMac, 6);
  p[12] = std::byte{0x08}, p[13] = std::byte{0x00};
  auto* ip = p + 14;
  size_t ip_len = frame_size - 14;
  ip[0] = std::byte{0x45};
  ip[2] = std::byte(ip_len >> 8), ip[3] = std::byte(ip_len & 0xff);
  ip[8] = std::byte{64}, ip[9] = std::byte{1};
  std::memcpy(ip + 12, kGuestIp, 4);
  std::memcpy(ip + 16, kGatewayIp, 4);
  uint16_t c = checksum(ip, 20);
  ip[10] = std::byte(c >> 8), ip[11] = std::byte(c & 0xff);
  auto* icmp = ip + 20;
  icmp[0] = std::byte{8};
  icmp[4] = std::byte{0x12}, icmp[5] = std::byte{0x34};
  icmp[6] = std::byte(seq >> 8), icmp[7] = std::byte(seq & 0xff);
  for (size_t i = 8; i < ip_len - 20; ++i) icmp[i] = std::byte(i & 0xff);
  c = checksum(icmp, ip_len - 20);
  icmp[2] = std::byte(c >> 8), icmp[3] = std::byte(c & 0xff);
  return f;
}

bool is_arp_reply(const std::byte* p, size_t n) {
  return n >= 42 && p[12] == std::byte{0x08} && p[13] == std::byte{0x06} && p[21] == std::byte{2};
}
bool is_echo_reply(const std::byte* p, size_t n) {
  return n >= 42 && p[12] == std::byte{0x08} && p[13] == std::byte{0x00} && p[23] == std::byte{1} &&
         p[34] == std::byte{0};
}

}  // namespace

int main(int argc, char** argv) {
  std::string kind, target;
  double seconds = 5;
  size_t size = 1514;
  int window = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--vhost-user" || a == "--stream" || a == "--dgram" || a == "--packet") {
      kind = a.substr(2);
      target = argv[i + 1];
    } else if (a == "--seconds") {
      seconds = std::atof(argv[i + 1]);
    } else if (a == "--size") {
      size = size_t(std::atol(argv[i + 1]));
    } else if (a == "--window") {
      window = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (kind.empty() || size < 64 || size > 1514 || window < 1) {
    std::fprintf(stderr,
                 "usage: transport_frontend (--vhost-user|--stream|--dgram PATH | --packet IFACE) "
                 "[--seconds S] [--size 64..1514] [--window N]\n");
    return 2;
  }
  std::unique_ptr<Link> link;
  if (kind == "vhost-user") link = std::make_unique<VhostUserLink>(target);
  if (kind == "stream") link = std::make_unique<StreamLink>(target);
  if (kind == "dgram") link = std::make_unique<DgramLink>(target);
  if (kind == "packet") link = std::make_unique<PacketLink>(target);

  // Learn the gateway's MAC.
  uint8_t gw_mac[6] = {};
  bool have_mac = false;
  auto setup_end = Clock::now() + std::chrono::seconds(5);
  while (!have_mac && Clock::now() < setup_end) {
    link->send(arp_request());
    link->flush();
    link->receive(100, [&](const std::byte* p, size_t n) {
      if (is_arp_reply(p, n)) {
        std::memcpy(gw_mac, p + 22, 6);
        have_mac = true;
      }
    });
  }
  if (!have_mac) {
    std::fprintf(stderr, "transport_frontend: no ARP reply from the gateway\n");
    return 1;
  }

  uint64_t sent = 0, received = 0, rx_bytes = 0;
  int in_flight = 0;
  uint16_t seq = 0;
  auto start = Clock::now();
  auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  auto last_reply = start;
  std::vector<Bytes> templates;
  for (int i = 0; i < 16; ++i) templates.push_back(echo_request(gw_mac, size, uint16_t(i)));
  while (Clock::now() < end) {
    while (in_flight < window) {
      if (!link->send(templates[seq++ % templates.size()])) break;
      sent++;
      in_flight++;
    }
    link->flush();
    link->receive(10, [&](const std::byte* p, size_t n) {
      if (!is_echo_reply(p, n)) return;
      received++;
      rx_bytes += n;
      if (in_flight > 0) in_flight--;
      last_reply = Clock::now();
    });
    if (Clock::now() - last_reply > std::chrono::milliseconds(200)) {
      in_flight = 0;  // lost: refill the window
      last_reply = Clock::now();
    }
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("%s sent=%llu received=%llu seconds=%.2f fps=%.0f gbps=%.3f\n", kind.c_str(),
              static_cast<unsigned long long>(sent), static_cast<unsigned long long>(received), secs,
              double(received) / secs, double(rx_bytes) * 8 / secs / 1e9);
  return received > 0 ? 0 : 1;
}
