// PcapWriter and PcapPort: files are read back byte by byte, and by tshark
// when it is installed (the real reader our users will point at them).
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "netstack/link/pcap.h"
#include "netstack/wire/bytes.h"

using slipway::link::Frame;
using slipway::link::PcapPort;
using slipway::link::PcapWriter;
using slipway::link::Port;
namespace wire = slipway::wire;

namespace {

std::vector<std::byte> bytes_of(std::initializer_list<int> values) {
  std::vector<std::byte> v;
  for (int x : values) v.push_back(std::byte(x));
  return v;
}

void append(std::vector<std::byte>& v, std::initializer_list<int> values) {
  for (int x : values) v.push_back(std::byte(x));
}

// ARP request: who has 10.0.2.2, tell 10.0.2.15 (42 bytes).
std::vector<std::byte> arp_frame() {
  auto f = bytes_of({0xff, 0xff, 0xff, 0xff, 0xff, 0xff,      // dst
                     0x52, 0x54, 0x00, 0x12, 0x34, 0x56,      // src
                     0x08, 0x06});                            // ARP
  append(f, {0x00, 0x01, 0x08, 0x00, 6,    4,    0x00, 0x01,  // Ethernet/IPv4, request
             0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10,   0,    2, 15, 0, 0, 0, 0, 0, 0, 10, 0, 2, 2});
  return f;
}

// UDP 10.0.2.15:40000 -> 10.0.2.3:40001 with a 4-byte payload (46 bytes).
std::vector<std::byte> udp_frame() {
  auto f = bytes_of(
      {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x00});
  std::vector<int> ip = {0x45, 0, 0,  32, 0x12, 0x34, 0x40, 0, 64, 17,
                         0,    0, 10, 0,  2,    15,   10,   0, 2,  3};
  uint32_t sum = 0;
  for (size_t i = 0; i < ip.size(); i += 2) sum += static_cast<uint32_t>(ip[i] << 8 | ip[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  ip[10] = static_cast<int>((~sum >> 8) & 0xff);
  ip[11] = static_cast<int>(~sum & 0xff);
  for (int x : ip) f.push_back(std::byte(x));
  append(f, {0x9c, 0x40, 0x9c, 0x41, 0, 12, 0, 0, 'a', 'b', 'c', 'd'});  // no UDP checksum
  return f;
}

struct TempFile {
  std::string path;
  TempFile() {
    char tmpl[] = "/tmp/slipway-pcap-XXXXXX";
    int fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    ::close(fd);
    path = tmpl;
  }
  ~TempFile() { ::unlink(path.c_str()); }
  std::vector<std::byte> read() const {
    std::ifstream in(path, std::ios::binary);
    std::vector<std::byte> out;
    for (auto it = std::istreambuf_iterator<char>(in); it != std::istreambuf_iterator<char>(); ++it)
      out.push_back(std::byte(*it));
    return out;
  }
  size_t size() const {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return static_cast<size_t>(st.st_size);
  }
};

bool same_bytes(const std::vector<std::byte>& file, size_t off, const std::vector<std::byte>& f) {
  return file.size() >= off + f.size() && std::equal(f.begin(), f.end(), file.begin() + off);
}

std::chrono::system_clock::time_point at_us(int64_t us) {
  return std::chrono::system_clock::time_point(std::chrono::microseconds(us));
}

// An in-memory Port: send() keeps frames (or refuses them), receive()
// plays a frame arriving from the wire.
class MemoryPort : public Port {
 public:
  bool transmit(Frame frame, const slipway::link::Offload&) override {
    if (refuse) return false;
    sent.emplace_back(frame.begin(), frame.end());
    return true;
  }
  void receive(Frame frame) { deliver(frame); }
  std::vector<std::vector<std::byte>> sent;
  bool refuse = false;
};

}  // namespace

TEST_CASE("pcap: global header and records, byte by byte", "[pcap]") {
  TempFile tmp;
  const auto arp = arp_frame();
  const auto udp = udp_frame();
  {
    auto w = PcapWriter::open(tmp.path);
    w->write(arp, at_us(1'700'000'000'123'456));
    w->write(udp, at_us(1'700'000'001'000'001));
    CHECK(w->stats().frames == 2);
    CHECK(w->stats().bytes == arp.size() + udp.size());
  }
  const auto b = tmp.read();
  REQUIRE(b.size() == 24 + 16 + arp.size() + 16 + udp.size());
  CHECK(wire::load_le32(b, 0) == 0xa1b2c3d4);
  CHECK(b[0] == std::byte{0xd4});  // written little-endian whatever the host
  CHECK(wire::load_le16(b, 4) == 2);
  CHECK(wire::load_le16(b, 6) == 4);
  CHECK(wire::load_le32(b, 8) == 0);
  CHECK(wire::load_le32(b, 12) == 0);
  CHECK(wire::load_le32(b, 16) == 262144);
  CHECK(wire::load_le32(b, 20) == 1);

  size_t off = 24;
  CHECK(wire::load_le32(b, off) == 1'700'000'000u);
  CHECK(wire::load_le32(b, off + 4) == 123'456u);
  CHECK(wire::load_le32(b, off + 8) == arp.size());
  CHECK(wire::load_le32(b, off + 12) == arp.size());
  CHECK(same_bytes(b, off + 16, arp));
  off += 16 + arp.size();
  CHECK(wire::load_le32(b, off) == 1'700'000'001u);
  CHECK(wire::load_le32(b, off + 4) == 1u);
  CHECK(wire::load_le32(b, off + 8) == udp.size());
  CHECK(wire::load_le32(b, off + 12) == udp.size());
  CHECK(same_bytes(b, off + 16, udp));
}

TEST_CASE("pcap: frames longer than the snaplen are cut, orig_len kept", "[pcap]") {
  TempFile tmp;
  std::vector<std::byte> big(PcapWriter::kSnapLen + 100, std::byte{0x5a});
  {
    auto w = PcapWriter::open(tmp.path);
    w->write(big, at_us(0));
    CHECK(w->stats().truncated == 1);
  }
  const auto b = tmp.read();
  REQUIRE(b.size() == 24 + 16 + PcapWriter::kSnapLen);
  CHECK(wire::load_le32(b, 24 + 8) == PcapWriter::kSnapLen);
  CHECK(wire::load_le32(b, 24 + 12) == big.size());
}

TEST_CASE("pcap: open failure names the path", "[pcap]") {
  const std::string path = "/nonexistent-dir-slipway/x.pcap";
  try {
    PcapWriter::open(path);
    FAIL("open succeeded");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    CHECK(what.find(path) != std::string::npos);
    CHECK(what.find("No such file") != std::string::npos);
  }
}

TEST_CASE("pcap: buffered, flushed at most about once a second of frame time", "[pcap]") {
  TempFile tmp;
  const auto arp = arp_frame();
  const size_t record = 16 + arp.size();
  auto w = PcapWriter::open(tmp.path);
  CHECK(tmp.size() == 24);  // the header is on disk at once
  const int64_t t0 = 1'700'000'000'000'000;
  w->write(arp, at_us(t0));  // first frame: more than a second since the last flush
  CHECK(tmp.size() == 24 + record);
  w->write(arp, at_us(t0 + 500'000));
  CHECK(tmp.size() == 24 + record);  // still buffered
  w->write(arp, at_us(t0 + 1'000'000));
  CHECK(tmp.size() == 24 + 3 * record);
  w->write(arp, at_us(t0 + 1'100'000));
  CHECK(tmp.size() == 24 + 3 * record);
  w->flush();
  CHECK(tmp.size() == 24 + 4 * record);
  w->write(arp, at_us(t0 + 1'200'000));
  w.reset();  // destruction flushes
  CHECK(tmp.size() == 24 + 5 * record);
}

TEST_CASE("pcap: PcapPort records both directions and passes frames through", "[pcap]") {
  TempFile tmp;
  const auto arp = arp_frame();
  const auto udp = udp_frame();
  MemoryPort inner;
  std::vector<std::vector<std::byte>> received;
  {
    auto writer = std::shared_ptr<PcapWriter>(PcapWriter::open(tmp.path));
    int64_t clock_us = 1'000'000;
    PcapPort port(inner, writer, [&clock_us] { return at_us(clock_us++); });
    port.set_sink([&](Frame f) { received.emplace_back(f.begin(), f.end()); });

    inner.receive(arp);     // from the wire, up to our sink
    CHECK(port.send(udp));  // from us, out through inner
    inner.refuse = true;
    CHECK_FALSE(port.send(arp));  // inner refuses: still recorded, counted as dropped

    REQUIRE(received.size() == 1);
    CHECK(received[0] == arp);
    REQUIRE(inner.sent.size() == 1);
    CHECK(inner.sent[0] == udp);
    CHECK(port.stats().rx_frames == 1);
    CHECK(port.stats().rx_bytes == arp.size());
    CHECK(port.stats().tx_frames == 1);
    CHECK(port.stats().tx_bytes == udp.size());
    CHECK(port.stats().tx_dropped == 1);
    CHECK(writer->stats().frames == 3);
  }
  // The port is gone: inner no longer calls into it.
  inner.receive(arp);
  CHECK(received.size() == 1);

  const auto b = tmp.read();
  REQUIRE(b.size() == 24 + 3 * 16 + 2 * arp.size() + udp.size());
  size_t off = 24;
  CHECK(wire::load_le32(b, off) == 1);
  CHECK(wire::load_le32(b, off + 4) == 0);
  CHECK(same_bytes(b, off + 16, arp));
  off += 16 + arp.size();
  CHECK(wire::load_le32(b, off + 4) == 1);
  CHECK(same_bytes(b, off + 16, udp));
  off += 16 + udp.size();
  CHECK(wire::load_le32(b, off + 4) == 2);
  CHECK(same_bytes(b, off + 16, arp));
}

TEST_CASE("pcap: tshark reads our file", "[pcap]") {
  if (::access("/usr/bin/tshark", X_OK) != 0) {
    WARN("tshark not installed; skipping");
    return;
  }
  TempFile tmp;
  {
    auto w = PcapWriter::open(tmp.path);
    w->write(arp_frame(), std::chrono::system_clock::now());
    w->write(udp_frame(), std::chrono::system_clock::now());
  }
  const std::string cmd = "/usr/bin/tshark -r " + tmp.path +
                          " -T fields -e frame.len -e frame.protocols -e udp.dstport 2>/dev/null";
  std::FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[256];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  INFO("tshark output:\n" << out);
  CHECK(status == 0);
  CHECK(out == "42\teth:ethertype:arp\t\n46\teth:ethertype:ip:udp:data\t40001\n");
}
