// Virtqueue and VirtioNetDevice driven by a synthetic frontend: guest memory
// is a heap buffer in this process (so AddressSanitizer sees any access
// outside it), the test writes descriptor tables and avail rings as a
// virtio driver would, "kicks" by calling transmit(), and checks the used
// ring and the data (ring fields little-endian, as virtio 1.x has them).
// Hostile rings must break the device (the transport then closes the
// connection) without reading or writing outside the regions.
#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "netstack/link/virtio_net_device.h"
#include "netstack/wire/bytes.h"

using slipway::link::Frame;
using slipway::link::VirtioNetDevice;
using slipway::link::Virtqueue;
namespace wire = slipway::wire;

namespace {

constexpr uint64_t kGpaBase = 0x100000;
constexpr size_t kMemSize = 256 * 1024;
constexpr uint16_t kQueueSize = 16;

// One guest: a memory region and the two queues' rings in it.
struct Guest {
  std::vector<std::byte> mem = std::vector<std::byte>(kMemSize);
  // Offsets of each queue's rings (queue 0 at 0x0000.., queue 1 at 0x4000..).
  static size_t desc_off(int q) { return size_t(q) * 0x4000; }
  static size_t avail_off(int q) { return desc_off(q) + 0x1000; }
  static size_t used_off(int q) { return desc_off(q) + 0x2000; }
  static constexpr size_t kBuffers = 0x10000;  // data buffers from here
  uint16_t avail_idx[2] = {0, 0};

  uint64_t uaddr(size_t off) { return reinterpret_cast<uint64_t>(mem.data() + off); }
  uint64_t gpa(size_t off) const { return kGpaBase + off; }

  void desc_at(size_t table_off, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    size_t o = table_off + 16u * i;
    wire::store_le64(mem, o, addr);
    wire::store_le32(mem, o + 8, len);
    wire::store_le16(mem, o + 12, flags);
    wire::store_le16(mem, o + 14, next);
  }
  void desc(int q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) {
    desc_at(desc_off(q), i, addr, len, flags, next);
  }
  void make_available(int q, uint16_t head) {
    wire::store_le16(mem, avail_off(q) + 4 + 2 * (avail_idx[q] % kQueueSize), head);
    avail_idx[q]++;
    wire::store_le16(mem, avail_off(q) + 2, avail_idx[q]);
  }
  uint16_t used_idx(int q) const { return wire::load_le16(mem, used_off(q) + 2); }
  uint32_t used_id(int q, uint16_t i) const { return wire::load_le32(mem, used_off(q) + 4 + 8 * (i % kQueueSize)); }
  uint32_t used_len(int q, uint16_t i) const { return wire::load_le32(mem, used_off(q) + 8 + 8 * (i % kQueueSize)); }
  void set_used_event(int q, uint16_t v) { wire::store_le16(mem, avail_off(q) + 4 + 2 * kQueueSize, v); }

  // Writes a 12-byte zero header and the frame at buffer offset off.
  void write_packet(size_t off, const std::vector<std::byte>& frame) {
    std::memset(&mem[off], 0, 12);
    std::memcpy(&mem[off + 12], frame.data(), frame.size());
  }

  void attach(VirtioNetDevice& dev, bool event_idx = true) {
    REQUIRE(dev.memory().add_region(kGpaBase, kMemSize, uaddr(0), mem.data()));
    for (int q = 0; q < 2; ++q) {
      auto& vq = dev.queue(q);
      REQUIRE(vq.set_num(kQueueSize));
      vq.set_addresses(uaddr(desc_off(q)), uaddr(avail_off(q)), uaddr(used_off(q)));
      vq.set_event_idx(event_idx);
      std::string why;
      REQUIRE(vq.attach(dev.memory(), &why));
      dev.set_enabled(q, true);
    }
    dev.set_mergeable_rx(true);
  }
};

std::vector<std::byte> pattern(size_t n, int seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::byte((i * 7 + size_t(seed)) & 0xff);
  return v;
}

struct Collect {
  std::vector<std::vector<std::byte>> frames;
  std::vector<wire::Offload> offloads;
  std::function<void(Frame, const wire::Offload&)> fn() {
    return [this](Frame f, const wire::Offload& o) {
      frames.emplace_back(f.begin(), f.end());
      offloads.push_back(o);
    };
  }
};

constexpr int TX = VirtioNetDevice::kTxQueue;
constexpr int RX = VirtioNetDevice::kRxQueue;

}  // namespace

TEST_CASE("virtqueue: a transmitted frame in a two-descriptor chain is delivered and returned", "[vhost]") {
  Guest g;
  VirtioNetDevice dev(1514);
  g.attach(dev);
  auto frame = pattern(100, 1);
  size_t off = Guest::kBuffers;
  g.write_packet(off, frame);
  // Header in one descriptor, frame in the next.
  g.desc(TX, 3, g.gpa(off), 12, Virtqueue::kDescNext, 5);
  g.desc(TX, 5, g.gpa(off + 12), 100, 0);
  g.make_available(TX, 3);
  Collect c;
  REQUIRE(dev.transmit(c.fn()) == VirtioNetDevice::TxResult::kDone);
  REQUIRE(c.frames.size() == 1);
  CHECK(c.frames[0] == frame);
  CHECK(g.used_idx(TX) == 1);
  CHECK(g.used_id(TX, 0) == 3);
  CHECK(dev.stats().tx_frames == 1);
  CHECK_FALSE(dev.broken());
}

TEST_CASE("virtqueue: indirect descriptor tables are followed", "[vhost]") {
  Guest g;
  VirtioNetDevice dev(1514);
  g.attach(dev);
  auto frame = pattern(60, 2);
  size_t table = Guest::kBuffers;
  size_t off = Guest::kBuffers + 0x1000;
  g.write_packet(off, frame);
  g.desc_at(table, 0, g.gpa(off), 30, Virtqueue::kDescNext, 1);
  g.desc_at(table, 1, g.gpa(off + 30), 42, 0, 0);
  g.desc(TX, 0, g.gpa(table), 32, Virtqueue::kDescIndirect);
  g.make_available(TX, 0);
  Collect c;
  dev.transmit(c.fn());
  REQUIRE(c.frames.size() == 1);
  CHECK(c.frames[0] == frame);
  CHECK(g.used_idx(TX) == 1);
}

TEST_CASE("virtqueue: at most kMaxFramesPerKick frames per kick", "[vhost]") {
  Guest g;
  VirtioNetDevice dev(1514);
  g.attach(dev);
  // 16 descriptors, re-posted as they complete: 100 frames in all.
  Collect c;
  int posted = 0;
  auto post = [&](uint16_t i) {
    size_t off = Guest::kBuffers + 0x100 * i;
    g.write_packet(off, pattern(64, posted));
    g.desc(TX, i, g.gpa(off), 12 + 64, 0);
    g.make_available(TX, i);
    posted++;
  };
  for (uint16_t i = 0; i < kQueueSize; ++i) post(i);
  VirtioNetDevice::TxResult r = VirtioNetDevice::TxResult::kMore;
  int calls = 0;
  while (r == VirtioNetDevice::TxResult::kMore || posted < 100) {
    r = dev.transmit([&](Frame f, const wire::Offload&) {
      c.frames.emplace_back(f.begin(), f.end());
      if (posted < 100) post(static_cast<uint16_t>(g.used_id(TX, static_cast<uint16_t>(g.used_idx(TX) - 1))));
    });
    calls++;
    REQUIRE(calls < 10);
    if (calls == 1) {
      CHECK(r == VirtioNetDevice::TxResult::kMore);
      CHECK(c.frames.size() == VirtioNetDevice::kMaxFramesPerKick);
    }
  }
  CHECK(c.frames.size() == 100);
  CHECK(calls == 2);
}

TEST_CASE("virtqueue: received frames fill mergeable buffers and set num_buffers", "[vhost]") {
  Guest g;
  VirtioNetDevice dev(1514);
  g.attach(dev);
  for (uint16_t i = 0; i < 4; ++i) {
    g.desc(RX, i, g.gpa(Guest::kBuffers + 0x1000 * i), 1000, Virtqueue::kDescWrite);
    g.make_available(RX, i);
  }
  auto frame = pattern(1500, 3);
  REQUIRE(dev.receive(frame) == VirtioNetDevice::RxResult::kDelivered);
  REQUIRE(g.used_idx(RX) == 2);
  CHECK(g.used_len(RX, 0) == 1000);
  CHECK(g.used_len(RX, 1) == 512);
  CHECK(wire::load_le16(g.mem, Guest::kBuffers + 10) == 2);  // num_buffers
  std::vector<std::byte> got(g.mem.begin() + Guest::kBuffers + 12, g.mem.begin() + Guest::kBuffers + 1000);
  got.insert(got.end(), g.mem.begin() + Guest::kBuffers + 0x1000, g.mem.begin() + Guest::kBuffers + 0x1000 + 512);
  CHECK(got == frame);

  // Two buffers left, 2000 bytes: a 3000-byte frame does not fit; nothing is
  // consumed and the drop is counted.
  REQUIRE(dev.receive(pattern(2500, 4)) == VirtioNetDevice::RxResult::kNoBuffers);
  CHECK(g.used_idx(RX) == 2);
  CHECK(dev.stats().rx_no_buffers == 1);
  CHECK(dev.queue(RX).last_avail() == 2);
  // A small one still fits.
  REQUIRE(dev.receive(pattern(60, 5)) == VirtioNetDevice::RxResult::kDelivered);
  CHECK(g.used_idx(RX) == 3);
}

TEST_CASE("virtqueue: a frame no set of guest buffers can hold is kTooLarge, not kNoBuffers", "[vhost]") {
  Guest g;
  VirtioNetDevice dev(VirtioNetDevice::kMaxGsoFrame);
  g.attach(dev);
  SECTION("mergeable: larger than the whole ring") {
    for (uint16_t i = 0; i < kQueueSize; ++i) {
      g.desc(RX, i, g.gpa(Guest::kBuffers + 0x800 * i), 512, Virtqueue::kDescWrite);
      g.make_available(RX, i);
    }
    CHECK(dev.receive(pattern(kQueueSize * 512, 1)) == VirtioNetDevice::RxResult::kTooLarge);
  }
  SECTION("without MRG_RXBUF: larger than the chain") {
    dev.set_mergeable_rx(false);
    g.desc(RX, 0, g.gpa(Guest::kBuffers), 1000, Virtqueue::kDescWrite);
    g.make_available(RX, 0);
    g.desc(RX, 1, g.gpa(Guest::kBuffers + 0x1000), 1000, Virtqueue::kDescWrite);
    g.make_available(RX, 1);
    CHECK(dev.receive(pattern(1500, 1)) == VirtioNetDevice::RxResult::kTooLarge);
  }
  // Nothing taken: the buffers stay the guest's, a frame that fits uses them.
  CHECK(dev.stats().rx_too_large == 1);
  CHECK(dev.stats().rx_no_buffers == 0);
  CHECK(g.used_idx(RX) == 0);
  CHECK(dev.queue(RX).last_avail() == 0);
  CHECK(dev.receive(pattern(200, 2)) == VirtioNetDevice::RxResult::kDelivered);
  CHECK(g.used_idx(RX) == 1);
  CHECK_FALSE(dev.broken());
}

TEST_CASE("virtqueue: no receive buffers: kNoBuffers, counted", "[vhost]") {
  Guest g;
  VirtioNetDevice dev(1514);
  g.attach(dev);
  CHECK(dev.receive(pattern(60, 1)) == VirtioNetDevice::RxResult::kNoBuffers);
  CHECK(dev.stats().rx_no_buffers == 1);
  CHECK_FALSE(dev.broken());
}

TEST_CASE("virtqueue: EVENT_IDX suppresses interrupts the driver did not ask for", "[vhost]") {
  Guest g;
  VirtioNetDevice dev(1514);
  g.attach(dev);
  for (uint16_t i = 0; i < 3; ++i) {
    g.desc(RX, i, g.gpa(Guest::kBuffers + 0x1000 * i), 2000, Virtqueue::kDescWrite);
    g.make_available(RX, i);
  }
  g.set_used_event(RX, 0);  // interrupt me after the first used buffer
  REQUIRE(dev.receive(pattern(60, 1)) == VirtioNetDevice::RxResult::kDelivered);
  CHECK(dev.should_notify(RX));
  REQUIRE(dev.receive(pattern(60, 2)) == VirtioNetDevice::RxResult::kDelivered);
  CHECK_FALSE(dev.should_notify(RX));
  g.set_used_event(RX, 2);  // and again after the third
  REQUIRE(dev.receive(pattern(60, 3)) == VirtioNetDevice::RxResult::kDelivered);
  CHECK(dev.should_notify(RX));
}

TEST_CASE("virtqueue: an oversized transmitted frame is dropped, its chain returned", "[vhost]") {
  Guest g;
  VirtioNetDevice dev(1514);
  g.attach(dev);
  g.desc(TX, 0, g.gpa(Guest::kBuffers), 12 + 1515, 0);
  g.make_available(TX, 0);
  Collect c;
  CHECK(dev.transmit(c.fn()) == VirtioNetDevice::TxResult::kDone);
  CHECK(c.frames.empty());
  CHECK(dev.stats().tx_oversize == 1);
  CHECK(g.used_idx(TX) == 1);
  CHECK_FALSE(dev.broken());
}

TEST_CASE("virtqueue: rings outside guest memory are refused at attach", "[vhost]") {
  Guest g;
  VirtioNetDevice dev(1514);
  REQUIRE(dev.memory().add_region(kGpaBase, kMemSize, g.uaddr(0), g.mem.data()));
  auto& vq = dev.queue(0);
  REQUIRE(vq.set_num(kQueueSize));
  CHECK_FALSE(vq.set_num(3));
  CHECK_FALSE(vq.set_num(65536));
  std::string why;
  vq.set_addresses(g.uaddr(kMemSize - 16), g.uaddr(0x1000), g.uaddr(0x2000));  // desc table runs off the end
  CHECK_FALSE(vq.attach(dev.memory(), &why));
  vq.set_addresses(g.uaddr(0), g.uaddr(0x1000), g.uaddr(0x2002));  // used ring misaligned
  CHECK_FALSE(vq.attach(dev.memory(), &why));
  vq.set_addresses(g.uaddr(0), g.uaddr(0x1000), g.uaddr(0x2000));
  CHECK(vq.attach(dev.memory(), &why));
}

// Each hostile ring breaks the device; nothing is delivered, the error is
// counted once, and no byte outside the region is touched (ASan checks).
TEST_CASE("virtqueue: hostile frontends break the device, never the host", "[vhost]") {
  Guest g;
  VirtioNetDevice dev(1514);
  g.attach(dev);
  size_t buf = Guest::kBuffers;
  SECTION("descriptor outside the regions") { g.desc(TX, 0, kGpaBase + kMemSize, 100, 0); }
  SECTION("descriptor below the region") { g.desc(TX, 0, kGpaBase - 64, 100, 0); }
  SECTION("descriptor length running past the region") { g.desc(TX, 0, g.gpa(kMemSize - 10), 100, 0); }
  SECTION("descriptor address + length overflowing 64 bits") { g.desc(TX, 0, ~uint64_t{0} - 8, 0xffffffffu, 0); }
  SECTION("length overflowing the region from inside it") { g.desc(TX, 0, g.gpa(buf), 0xffffffffu, 0); }
  SECTION("a chain loop") {
    g.desc(TX, 0, g.gpa(buf), 12, Virtqueue::kDescNext, 1);
    g.desc(TX, 1, g.gpa(buf), 12, Virtqueue::kDescNext, 0);
  }
  SECTION("a self loop") { g.desc(TX, 0, g.gpa(buf), 12, Virtqueue::kDescNext, 0); }
  SECTION("next index beyond the table") { g.desc(TX, 0, g.gpa(buf), 12, Virtqueue::kDescNext, kQueueSize); }
  SECTION("indirect table outside the regions") { g.desc(TX, 0, kGpaBase + kMemSize - 16, 64, Virtqueue::kDescIndirect); }
  SECTION("indirect table length not a multiple of 16") { g.desc(TX, 0, g.gpa(buf), 40, Virtqueue::kDescIndirect); }
  SECTION("huge indirect table (more entries than the queue)") {
    g.desc(TX, 0, g.gpa(buf), 16 * (kQueueSize + 1), Virtqueue::kDescIndirect);
  }
  SECTION("indirect table with a loop") {
    g.desc_at(buf, 0, g.gpa(buf + 0x1000), 12, Virtqueue::kDescNext, 1);
    g.desc_at(buf, 1, g.gpa(buf + 0x1000), 12, Virtqueue::kDescNext, 0);
    g.desc(TX, 0, g.gpa(buf), 32, Virtqueue::kDescIndirect);
  }
  SECTION("nested indirect") {
    g.desc_at(buf, 0, g.gpa(buf), 16, Virtqueue::kDescIndirect, 0);
    g.desc(TX, 0, g.gpa(buf), 16, Virtqueue::kDescIndirect);
  }
  SECTION("indirect with NEXT") {
    g.desc_at(buf, 0, g.gpa(buf + 0x1000), 80, 0, 0);
    g.desc(TX, 0, g.gpa(buf), 16, Virtqueue::kDescIndirect | Virtqueue::kDescNext, 1);
  }
  SECTION("readable after writable") {
    g.desc(TX, 0, g.gpa(buf), 12, Virtqueue::kDescNext | Virtqueue::kDescWrite, 1);
    g.desc(TX, 1, g.gpa(buf), 80, 0);
  }
  SECTION("head index out of range") {
    wire::store_le16(g.mem, Guest::avail_off(TX) + 4, kQueueSize + 3);
    g.avail_idx[TX] = 1;
    wire::store_le16(g.mem, Guest::avail_off(TX) + 2, 1);
  }
  SECTION("avail index far ahead of the ring") {
    g.desc(TX, 0, g.gpa(buf), 80, 0);
    g.avail_idx[TX] = kQueueSize + 5;
    wire::store_le16(g.mem, Guest::avail_off(TX) + 2, g.avail_idx[TX]);
  }
  if (g.avail_idx[TX] == 0) g.make_available(TX, 0);
  Collect c;
  CHECK(dev.transmit(c.fn()) == VirtioNetDevice::TxResult::kBroken);
  CHECK(c.frames.empty());
  CHECK(dev.broken());
  CHECK(dev.stats().ring_errors == 1);
  CHECK_FALSE(dev.error().empty());
  // Broken stays broken until reset: nothing more is processed.
  CHECK(dev.transmit(c.fn()) == VirtioNetDevice::TxResult::kBroken);
  CHECK(dev.receive(pattern(60, 1)) == VirtioNetDevice::RxResult::kBroken);
  CHECK(dev.stats().ring_errors == 1);
  dev.reset();
  CHECK_FALSE(dev.broken());
  CHECK(dev.memory().empty());
}

TEST_CASE("virtqueue: a receive chain with readable buffers breaks the device", "[vhost]") {
  Guest g;
  VirtioNetDevice dev(1514);
  g.attach(dev);
  g.desc(RX, 0, g.gpa(Guest::kBuffers), 2000, 0);
  g.make_available(RX, 0);
  CHECK(dev.receive(pattern(60, 1)) == VirtioNetDevice::RxResult::kBroken);
  CHECK(dev.broken());
}

TEST_CASE("guest memory: translation checks ranges without overflow", "[vhost]") {
  std::vector<std::byte> a(4096), b(4096);
  slipway::link::GuestMemory m;
  REQUIRE(m.add_region(0x1000, 4096, 0x7000'0000, a.data()));
  REQUIRE(m.add_region(0x2000, 4096, 0x7000'1000, b.data()));
  CHECK_FALSE(m.add_region(~uint64_t{0} - 10, 100, 0, a.data()));  // wraps
  CHECK(m.translate_gpa(0x1000, 4096) == a.data());
  CHECK(m.translate_gpa(0x1fff, 1) == a.data() + 4095);
  CHECK(m.translate_gpa(0x1fff, 2) == nullptr);  // spans two regions
  CHECK(m.translate_gpa(0x2000, 1) == b.data());
  CHECK(m.translate_gpa(0x3000, 1) == nullptr);
  CHECK(m.translate_gpa(0xfff, 1) == nullptr);
  CHECK(m.translate_gpa(0x1000, ~uint64_t{0}) == nullptr);
  CHECK(m.translate_gpa(~uint64_t{0}, 2) == nullptr);
  CHECK(m.translate_uva(0x7000'0800, 16) == a.data() + 0x800);
  CHECK(m.translate_uva(0x7000'2000, 1) == nullptr);
}

TEST_CASE("virtqueue: stopping at the per-kick bound still asks for the next kick (EVENT_IDX)", "[vhost]") {
  Guest g;
  VirtioNetDevice dev(1514);
  g.attach(dev);
  // Exactly kMaxFramesPerKick chains in one run (the driver re-posts each
  // completed chain until it has posted that many): the device stops at the
  // bound with the ring empty and must still leave avail_event at its
  // position, or the driver (which kicks only when avail_event says so)
  // would never kick again.
  int posted = 0;
  auto post = [&](uint16_t i) {
    g.desc(TX, i, g.gpa(Guest::kBuffers), 12 + 60, 0);
    g.make_available(TX, i);
    posted++;
  };
  for (uint16_t i = 0; i < kQueueSize; ++i) post(i);
  int got = 0;
  auto r = dev.transmit([&](Frame, const wire::Offload&) {
    got++;
    uint16_t last = static_cast<uint16_t>(g.used_idx(TX) - 1);
    if (posted < VirtioNetDevice::kMaxFramesPerKick) post(static_cast<uint16_t>(g.used_id(TX, last)));
  });
  CHECK(got == VirtioNetDevice::kMaxFramesPerKick);
  CHECK(r == VirtioNetDevice::TxResult::kDone);
  const uint16_t avail_event = wire::load_le16(g.mem, Guest::used_off(TX) + 4 + 8 * kQueueSize);
  CHECK(avail_event == VirtioNetDevice::kMaxFramesPerKick);
}

TEST_CASE("virtqueue: the virtio-net header's offload travels with the frame both ways", "[vhost][offload]") {
  Guest g;
  VirtioNetDevice dev(1514);
  g.attach(dev);
  wire::Offload tso;
  tso.flags = wire::Offload::kNeedsCsum;
  tso.gso = wire::Offload::Gso::kTcpV4;
  tso.hdr_len = 54;
  tso.gso_size = 1448;
  tso.csum_start = 34;
  tso.csum_offset = 16;

  // Guest -> host: a 30000-byte TSO frame is too long for a 1514-byte MTU
  // until the guest may send large segments (HOST_TSO).
  auto big = pattern(30000, 9);
  size_t off = Guest::kBuffers;
  g.write_packet(off, big);
  wire::emit_virtio_net_hdr(std::span(g.mem).subspan(off, 12), tso);
  g.desc(TX, 0, g.gpa(off), static_cast<uint32_t>(12 + big.size()), 0);
  g.make_available(TX, 0);
  Collect c;
  dev.transmit(c.fn());
  CHECK(c.frames.empty());
  CHECK(dev.stats().tx_oversize == 1);
  dev.set_large_tx(true);
  g.make_available(TX, 0);
  dev.transmit(c.fn());
  REQUIRE(c.frames.size() == 1);
  CHECK(c.frames[0] == big);
  CHECK(c.offloads[0] == tso);

  // A header naming an unknown GSO type: dropped, counted, chain returned.
  std::span(g.mem)[off + 1] = std::byte{2};
  g.make_available(TX, 0);
  dev.transmit(c.fn());
  CHECK(c.frames.size() == 1);
  CHECK(dev.stats().tx_bad_header == 1);
  CHECK(g.used_idx(TX) == 3);

  // Host -> guest: the header the guest reads says what the frame needs.
  g.desc(RX, 0, g.gpa(Guest::kBuffers + 0x20000), 0x10000, Virtqueue::kDescWrite);
  g.make_available(RX, 0);
  auto down = pattern(20000, 5);
  REQUIRE(dev.receive(down, tso) == VirtioNetDevice::RxResult::kDelivered);
  auto header = wire::parse_virtio_net_hdr(std::span(g.mem).subspan(Guest::kBuffers + 0x20000, 12));
  REQUIRE(header);
  CHECK(*header == tso);
  CHECK(wire::load_le16(g.mem, Guest::kBuffers + 0x20000 + 10) == 1);  // num_buffers
  CHECK(std::equal(down.begin(), down.end(), g.mem.begin() + Guest::kBuffers + 0x20000 + 12));
}

TEST_CASE("guest memory refuses a region that ends past the end of its file", "[virtqueue]") {
  // A frontend that maps more than the memfd holds would make the first
  // descriptor past the file's end kill slipway with SIGBUS.
  int fd = memfd_create("guest", MFD_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(ftruncate(fd, 64 * 1024) == 0);
  slipway::link::GuestMemory mem;
  auto err = mem.map_fd(fd, 0, 1 << 20, 0x7f0000000000, 0);
  REQUIRE(err);
  CHECK(err->find("65536") != std::string::npos);
  // The offset counts: 60 KiB at 8 KiB is refused, 56 KiB at 8 KiB taken
  // (and its last byte, the file's last, reads).
  CHECK(mem.map_fd(fd, 0, 60 * 1024, 0x7f0000000000, 8 * 1024));
  REQUIRE_FALSE(mem.map_fd(fd, 0, 56 * 1024, 0x7f0000000000, 8 * 1024));
  std::byte* last = mem.translate_gpa(56 * 1024 - 1, 1);
  REQUIRE(last != nullptr);
  CHECK(*last == std::byte{0});
  close(fd);
}
