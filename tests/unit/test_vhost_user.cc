// vhost-user: the message parser against byte vectors, and VhostUserPort
// driven over a real socketpair by a synthetic frontend that shares memfd
// memory, sets up both rings, kicks through an eventfd and reads the call
// eventfd, as QEMU does.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "netstack/link/vhost_user.h"
#include "netstack/wire/bytes.h"

namespace vu = slipway::link::vhost_user;
using slipway::link::Frame;
using slipway::link::Port;
using slipway::link::VhostUserPort;
using slipway::link::Virtqueue;
namespace wire = slipway::wire;

namespace {

// Little-endian 32-bit words, as vhost-user messages carry them.
std::vector<std::byte> le(std::initializer_list<uint32_t> words) {
  std::vector<std::byte> v(4 * words.size());
  size_t off = 0;
  for (uint32_t w : words) {
    wire::store_le32(v, off, w);
    off += 4;
  }
  return v;
}

}  // namespace

TEST_CASE("vhost-user: header parsing", "[vhost]") {
  CHECK(vu::parse_header(le({1, 1, 0})).has_value());
  auto h = vu::parse_header(le({5, 1 | vu::kFlagNeedReply, 40}));
  REQUIRE(h);
  CHECK(h->request == 5);
  CHECK(h->size == 40);
  CHECK(h->need_reply());
  auto shorter = le({1, 1, 0});
  shorter.pop_back();
  CHECK_FALSE(vu::parse_header(shorter));                         // 11 bytes
  CHECK_FALSE(vu::parse_header({}));                              // nothing
  CHECK_FALSE(vu::parse_header(le({1, 0, 0})));                   // version 0
  CHECK_FALSE(vu::parse_header(le({1, 2, 0})));                   // version 2
  CHECK_FALSE(vu::parse_header(le({1, 1 | vu::kFlagReply, 0})));  // a reply sent to us
  CHECK_FALSE(vu::parse_header(le({1, 1, uint32_t(vu::kMaxPayload + 1)})));
  CHECK_FALSE(vu::parse_header(le({1, 1, 0xffffffffu})));
}

TEST_CASE("vhost-user: payload sizes are checked per request", "[vhost]") {
  CHECK(vu::parse_u64(le({7, 0})) == 7u);
  CHECK_FALSE(vu::parse_u64(le({7})));
  CHECK_FALSE(vu::parse_u64(le({7, 0, 0})));
  auto s = vu::parse_vring_state(le({1, 256}));
  REQUIRE(s);
  CHECK(s->index == 1);
  CHECK(s->num == 256);
  CHECK_FALSE(vu::parse_vring_state(le({1})));
  auto a = vu::parse_vring_addr(le({1, 0, 0x1000, 0, 0x2000, 0, 0x3000, 0, 0, 0}));
  REQUIRE(a);
  CHECK(a->desc == 0x1000);
  CHECK(a->used == 0x2000);
  CHECK(a->avail == 0x3000);
  CHECK_FALSE(vu::parse_vring_addr(le({1, 0, 0x1000, 0, 0x2000, 0, 0x3000, 0, 0})));

  vu::MemRegion r{0x0, 0x100000, 0x7f0000000000, 0};
  auto table = vu::mem_table_payload(std::span(&r, 1));
  auto m = vu::parse_mem_table(table);
  REQUIRE(m);
  REQUIRE(m->size() == 1);
  CHECK((*m)[0].size == 0x100000);
  CHECK((*m)[0].uaddr == 0x7f0000000000);
  auto cut = table;
  cut.pop_back();
  CHECK_FALSE(vu::parse_mem_table(cut));         // size does not match the count
  CHECK_FALSE(vu::parse_mem_table(le({0, 0})));  // no regions
  CHECK_FALSE(vu::parse_mem_table(le({9, 0})));  // too many
  CHECK_FALSE(vu::parse_mem_table(le({2, 0})));  // count says 2, no regions follow
  vu::MemRegion empty{0, 0, 0, 0};
  CHECK_FALSE(vu::parse_mem_table(vu::mem_table_payload(std::span(&empty, 1))));
  CHECK(std::string(vu::request_name(999)) == "unknown");
  CHECK(std::string(vu::request_name(vu::kSetMemTable)) == "SET_MEM_TABLE");
}

namespace {

constexpr size_t kMem = 1 << 20;
constexpr uint64_t kGpa = 0x40000000;
constexpr uint16_t kQ = 64;

// The frontend side: a socket, shared memory and eventfds.
struct Frontend {
  uv_loop_t* loop;
  int sock = -1;
  int memfd = -1;
  std::byte* mem = nullptr;
  int kick[2] = {-1, -1}, call[2] = {-1, -1};
  uint16_t avail_idx[2] = {0, 0};

  explicit Frontend(uv_loop_t* l, int s) : loop(l), sock(s) {
    memfd = memfd_create("guest", MFD_CLOEXEC);
    REQUIRE(memfd >= 0);
    REQUIRE(ftruncate(memfd, kMem) == 0);
    void* p = mmap(nullptr, kMem, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    REQUIRE(p != MAP_FAILED);
    mem = static_cast<std::byte*>(p);
    for (int q = 0; q < 2; ++q) {
      kick[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      call[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    }
  }
  ~Frontend() {
    munmap(mem, kMem);
    for (int fd : {sock, memfd, kick[0], kick[1], call[0], call[1]})
      if (fd >= 0) close(fd);
  }
  void spin(int n = 5) {
    for (int i = 0; i < n; ++i) uv_run(loop, UV_RUN_NOWAIT);
  }
  void send(uint32_t req, const std::vector<std::byte>& payload, std::vector<int> fds = {}, uint32_t flags = 0) {
    auto msg = vu::request(req, payload, flags);
    iovec iov{msg.data(), msg.size()};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 16)] = {};
    REQUIRE(fds.size() <= 16);
    if (!fds.empty()) {
      mh.msg_control = cbuf;
      mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* cm = CMSG_FIRSTHDR(&mh);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
    }
    REQUIRE(sendmsg(sock, &mh, MSG_NOSIGNAL) == static_cast<ssize_t>(msg.size()));
    spin();
  }
  // Reads one reply (header + payload); empty if none within the time.
  std::vector<std::byte> reply() {
    spin();
    pollfd p{sock, POLLIN, 0};
    if (poll(&p, 1, 1000) != 1) return {};
    std::vector<std::byte> buf(256);
    ssize_t n = recv(sock, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n <= 0) return {};
    buf.resize(size_t(n));
    return buf;
  }
  static uint64_t reply_u64(const std::vector<std::byte>& r) {
    REQUIRE(r.size() == 20);
    return wire::load_le64(r, 12);
  }
  uint64_t ua(size_t off) const { return reinterpret_cast<uint64_t>(mem + off); }
  static size_t desc_off(int q) { return size_t(q) * 0x8000; }
  static size_t avail_off(int q) { return desc_off(q) + 0x2000; }
  static size_t used_off(int q) { return desc_off(q) + 0x4000; }

  void set_up() {
    send(vu::kGetFeatures, {});
    uint64_t features = reply_u64(reply());
    REQUIRE((features & vu::kFeatureVersion1) != 0);
    send(vu::kGetProtocolFeatures, {});
    uint64_t pf = reply_u64(reply());
    REQUIRE((pf & vu::kProtocolReplyAck) != 0);
    send(vu::kSetFeatures, vu::u64_payload(features));
    send(vu::kSetProtocolFeatures, vu::u64_payload(vu::kProtocolReplyAck));
    send(vu::kSetOwner, {});
    vu::MemRegion r{kGpa, kMem, ua(0), 0};
    send(vu::kSetMemTable, vu::mem_table_payload(std::span(&r, 1)), {memfd}, vu::kFlagNeedReply);
    REQUIRE(reply_u64(reply()) == 0);  // REPLY_ACK: success
    for (uint32_t q = 0; q < 2; ++q) {
      send(vu::kSetVringNum, vu::vring_state_payload({q, kQ}));
      send(vu::kSetVringBase, vu::vring_state_payload({q, 0}));
      vu::VringAddr a{q, 0, ua(desc_off(q)), ua(used_off(q)), ua(avail_off(q)), 0};
      send(vu::kSetVringAddr, vu::vring_addr_payload(a));
      send(vu::kSetVringKick, vu::u64_payload(q), {kick[q]});
      send(vu::kSetVringCall, vu::u64_payload(q), {call[q]});
      send(vu::kSetVringEnable, vu::vring_state_payload({q, 1}));
    }
  }
  // The shared memory, where the rings' little-endian fields live.
  std::span<std::byte> shared() const { return {mem, kMem}; }
  void put(size_t off, const void* p, size_t n) { std::memcpy(mem + off, p, n); }
  void desc(int q, uint16_t i, uint64_t gpa, uint32_t len, uint16_t flags) {
    wire::store_le64(shared(), desc_off(q) + 16u * i, gpa);
    wire::store_le32(shared(), desc_off(q) + 16u * i + 8, len);
    wire::store_le16(shared(), desc_off(q) + 16u * i + 12, flags);
  }
  void make_available(int q, uint16_t head) {
    wire::store_le16(shared(), avail_off(q) + 4 + 2 * (avail_idx[q] % kQ), head);
    avail_idx[q]++;
    wire::store_le16(shared(), avail_off(q) + 2, avail_idx[q]);
  }
  uint16_t used_idx(int q) const { return wire::load_le16(shared(), used_off(q) + 2); }
  void do_kick(int q) {
    uint64_t one = 1;
    REQUIRE(write(kick[q], &one, 8) == 8);
    spin();
  }
  bool called(int q) {
    uint64_t n = 0;
    return read(call[q], &n, 8) == 8 && n > 0;
  }
};

struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
  }
};

std::vector<std::byte> frame_of(size_t n, int seed) {
  std::vector<std::byte> f(n);
  for (size_t i = 0; i < n; ++i) f[i] = std::byte((i + size_t(seed)) & 0xff);
  return f;
}

}  // namespace

TEST_CASE("vhost-user: a synthetic frontend exchanges frames through shared memory", "[vhost]") {
  Loop l;
  {
    VhostUserPort port(&l.loop, 1500);
    std::vector<std::vector<std::byte>> got;
    port.set_sink([&](Frame f) { got.emplace_back(f.begin(), f.end()); });
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    port.adopt(sv[0]);
    Frontend fe(&l.loop, sv[1]);
    fe.set_up();
    REQUIRE(port.connected());

    // Guest -> host: one frame, kicked.
    auto f1 = frame_of(200, 1);
    std::vector<std::byte> pkt(12);
    pkt.insert(pkt.end(), f1.begin(), f1.end());
    fe.put(0x20000, pkt.data(), pkt.size());
    fe.desc(1, 0, kGpa + 0x20000, uint32_t(pkt.size()), 0);
    fe.make_available(1, 0);
    fe.do_kick(1);
    REQUIRE(got.size() == 1);
    CHECK(got[0] == f1);
    CHECK(fe.used_idx(1) == 1);
    CHECK(fe.called(1));

    // Host -> guest: post a buffer, send, the guest is called.
    fe.desc(0, 0, kGpa + 0x30000, 2048, Virtqueue::kDescWrite);
    fe.make_available(0, 0);
    auto f2 = frame_of(300, 2);
    CHECK(port.send(f2));
    CHECK(fe.used_idx(0) == 1);
    CHECK(fe.called(0));
    CHECK(std::memcmp(fe.mem + 0x30000 + 12, f2.data(), f2.size()) == 0);
    // No buffer left: the frame waits for the guest's next buffers.
    CHECK(port.send(f2));
    CHECK(port.device_stats().rx_no_buffers == 1);
    CHECK(port.queued_frames() == 1);

    // GET_VRING_BASE stops the ring and reports where it stood.
    fe.send(vu::kGetVringBase, vu::vring_state_payload({1, 0}));
    auto r = fe.reply();
    REQUIRE(r.size() == 20);
    CHECK(wire::load_le32(r, 16) == 1);

    // An unknown request closes the connection; the port survives.
    fe.send(77, {});
    CHECK_FALSE(port.connected());
    CHECK(port.vhost_stats().protocol_errors == 1);
    CHECK(port.queued_frames() == 0);  // nothing would drain it: dropped, counted
    CHECK(port.stats().tx_dropped == 1);
    CHECK_FALSE(port.send(f2));
  }
}

namespace {

// The guest's side of the receive ring in the tests below: descriptor i is a
// 2 KiB buffer at kRxBuffers + i * 2 KiB.
constexpr size_t kRxBuffers = 0x30000;
constexpr uint32_t kRxBufferLen = 2048;

// Posts n buffers (the next n descriptors, round the ring) and kicks.
void post_rx(Frontend& fe, uint16_t n) {
  for (uint16_t k = 0; k < n; ++k) {
    uint16_t i = uint16_t(fe.avail_idx[0] % kQ);
    fe.desc(0, i, kGpa + kRxBuffers + size_t(i) * kRxBufferLen, kRxBufferLen, Virtqueue::kDescWrite);
    fe.make_available(0, i);
  }
  fe.do_kick(0);
}

// The frame in used element `at` of the receive ring (without its header).
std::vector<std::byte> rx_frame(Frontend& fe, uint16_t at) {
  size_t elem = Frontend::used_off(0) + 4 + 8 * size_t(at % kQ);
  uint32_t id = wire::load_le32(fe.shared(), elem);
  uint32_t len = wire::load_le32(fe.shared(), elem + 4);
  REQUIRE(id < kQ);
  REQUIRE(len >= 12);
  REQUIRE(len <= kRxBufferLen);
  const std::byte* b = fe.mem + kRxBuffers + size_t(id) * kRxBufferLen;
  CHECK(wire::load_le16(fe.shared(), kRxBuffers + size_t(id) * kRxBufferLen + 10) == 1);  // num_buffers
  return {b + 12, b + len};
}

}  // namespace

TEST_CASE("vhost-user: frames for a full receive ring wait in order until the guest adds buffers", "[vhost]") {
  Loop l;
  VhostUserPort port(&l.loop, 1500);
  std::vector<bool> ready_changes;
  port.set_tx_ready_listener([&](bool r) { ready_changes.push_back(r); });
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  port.adopt(sv[0]);
  Frontend fe(&l.loop, sv[1]);
  fe.set_up();

  SECTION("a few frames wait and go out on the receive kick") {
    post_rx(fe, 2);
    for (int i = 0; i < 10; ++i) CHECK(port.send(frame_of(1000 + size_t(i), i)));
    CHECK(fe.used_idx(0) == 2);
    CHECK(port.queued_frames() == 8);
    CHECK(port.stats().tx_queued == 8);
    CHECK(port.stats().tx_dropped == 0);
    CHECK(rx_frame(fe, 0) == frame_of(1000, 0));
    CHECK(rx_frame(fe, 1) == frame_of(1001, 1));
    CHECK(fe.called(0));
    // The guest adds three buffers: three more frames, in order.
    post_rx(fe, 3);
    CHECK(fe.used_idx(0) == 5);
    CHECK(port.queued_frames() == 5);
    for (uint16_t i = 2; i < 5; ++i) CHECK(rx_frame(fe, i) == frame_of(1000 + i, i));
    // A new frame goes behind those still waiting, not into a new buffer.
    CHECK(port.send(frame_of(1100, 10)));
    post_rx(fe, 10);
    REQUIRE(fe.used_idx(0) == 11);
    for (uint16_t i = 5; i < 10; ++i) CHECK(rx_frame(fe, i) == frame_of(1000 + i, i));
    CHECK(rx_frame(fe, 10) == frame_of(1100, 10));
    CHECK(port.queued_frames() == 0);
    CHECK(port.stats().tx_frames == 11);
    CHECK(ready_changes.empty());  // never near the high-water mark
  }

  SECTION("beyond the bound frames are dropped and counted; the rest arrive in order") {
    // 1514-byte frames: the byte bound (4 MiB) comes before the frame bound.
    const size_t frame_len = 1514;
    std::vector<int> accepted;
    int sent = 0;
    for (; sent < 4000; ++sent) {
      if (port.send(frame_of(frame_len, sent))) accepted.push_back(sent);
    }
    CHECK(port.queued_bytes() <= VhostUserPort::kMaxQueuedBytes);
    CHECK(port.queued_bytes() > VhostUserPort::kMaxQueuedBytes - frame_len);
    CHECK(port.stats().tx_queue_full == size_t(sent) - accepted.size());
    CHECK(port.stats().tx_dropped == size_t(sent) - accepted.size());
    CHECK_FALSE(port.tx_ready());
    REQUIRE(ready_changes == std::vector<bool>{false});
    // The guest takes them a ring at a time, every one whole and in order.
    size_t next = 0;
    for (int round = 0; round < 200 && next < accepted.size(); ++round) {
      uint16_t before = fe.used_idx(0);
      post_rx(fe, kQ);
      uint16_t now = fe.used_idx(0);
      REQUIRE(now != before);
      for (uint16_t u = before; u != now; ++u) {
        REQUIRE(next < accepted.size());
        REQUIRE(rx_frame(fe, u) == frame_of(frame_len, accepted[next]));
        next++;
      }
      if (port.queued_bytes() > Port::kTxLowWater) CHECK_FALSE(port.tx_ready());
    }
    CHECK(next == accepted.size());
    CHECK(port.queued_frames() == 0);
    CHECK(port.tx_ready());
    CHECK(ready_changes == std::vector<bool>{false, true});
  }

  SECTION("stopping the receive ring drops what waits and makes the port ready") {
    for (int i = 0; i < 1000; ++i) port.send(frame_of(1514, i));
    CHECK_FALSE(port.tx_ready());
    fe.send(vu::kGetVringBase, vu::vring_state_payload({0, 0}));
    REQUIRE(fe.reply().size() == 20);
    CHECK(port.queued_frames() == 0);
    CHECK(port.stats().tx_dropped == 1000);
    CHECK(port.tx_ready());
  }
}

TEST_CASE("vhost-user: misbehaving frontends lose their connection, the next one is served", "[vhost]") {
  Loop l;
  VhostUserPort port(&l.loop, 1500);
  auto connect = [&]() {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    port.adopt(sv[0]);
    return std::make_unique<Frontend>(&l.loop, sv[1]);
  };
  {
    auto fe = connect();
    SECTION("memory table without its fd") {
      vu::MemRegion r{kGpa, kMem, fe->ua(0), 0};
      fe->send(vu::kSetMemTable, vu::mem_table_payload(std::span(&r, 1)));
    }
    SECTION("wrong payload size") { fe->send(vu::kSetVringNum, le({0})); }
    SECTION("queue index out of range") { fe->send(vu::kSetVringNum, vu::vring_state_payload({2, 64})); }
    SECTION("ring size not a power of two") { fe->send(vu::kSetVringNum, vu::vring_state_payload({0, 100})); }
    SECTION("features never offered") { fe->send(vu::kSetFeatures, vu::u64_payload(1ull << 63)); }
    SECTION("dirty logging") { fe->send(vu::kSetLogFd, {}, {fe->memfd}); }
    SECTION("too many fds") {
      fe->send(vu::kSetVringCall, vu::u64_payload(0), {fe->call[0], fe->call[1], fe->kick[0], fe->kick[1], fe->memfd,
                                                       fe->call[0], fe->call[1], fe->kick[0], fe->kick[1]});
    }
    SECTION("a header with a huge size") {
      auto h = le({vu::kSetMemTable, 1, 1u << 30});
      REQUIRE(write(fe->sock, h.data(), h.size()) == 12);
      fe->spin();
    }
    SECTION("a ring outside the memory table") {
      vu::MemRegion r{kGpa, kMem, fe->ua(0), 0};
      fe->send(vu::kSetMemTable, vu::mem_table_payload(std::span(&r, 1)), {fe->memfd});
      fe->send(vu::kSetVringNum, vu::vring_state_payload({1, kQ}));
      vu::VringAddr a{1, 0, fe->ua(kMem - 64), fe->ua(0x4000), fe->ua(0x2000), 0};
      fe->send(vu::kSetVringAddr, vu::vring_addr_payload(a));
    }
    SECTION("a descriptor outside guest memory") {
      fe->set_up();
      fe->desc(1, 0, kGpa + kMem - 8, 100, 0);
      fe->make_available(1, 0);
      fe->do_kick(1);
      CHECK(port.device_stats().ring_errors == 1);
    }
    CHECK_FALSE(port.connected());
  }
  // The next frontend works.
  auto fe = connect();
  fe->set_up();
  std::vector<std::vector<std::byte>> got;
  port.set_sink([&](Frame f) { got.emplace_back(f.begin(), f.end()); });
  auto f = frame_of(60, 3);
  std::vector<std::byte> pkt(12);
  pkt.insert(pkt.end(), f.begin(), f.end());
  fe->put(0x20000, pkt.data(), pkt.size());
  fe->desc(1, 0, kGpa + 0x20000, uint32_t(pkt.size()), 0);
  fe->make_available(1, 0);
  fe->do_kick(1);
  REQUIRE(got.size() == 1);
  CHECK(got[0] == f);
}

TEST_CASE("vhost-user: the frontend closing the socket resets the backend", "[vhost]") {
  Loop l;
  VhostUserPort port(&l.loop, 1500);
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  port.adopt(sv[0]);
  {
    Frontend fe(&l.loop, sv[1]);
    fe.set_up();
    CHECK(port.connected());
  }
  for (int i = 0; i < 5; ++i) uv_run(&l.loop, UV_RUN_NOWAIT);
  CHECK_FALSE(port.connected());
  CHECK(port.vhost_stats().protocol_errors == 0);
}
