// transport_frontend: a synthetic VM frontend for bench/transports.sh.
//
// It plays the guest's side of one slipway transport and blasts ICMP echo
// requests at the gateway (10.0.2.2, answered by slipway's Gateway itself),
// keeping up to --window requests in flight, for --seconds, and prints one
// line: transport, frames sent and received, seconds, received frames per
// second and Gbit/s (frame bytes received, without any transport header).
//
//   --vhost-user PATH  vhost-user frontend: memfd "guest memory" shared
//                      with slipway, 256-entry rings, 2048-byte buffers,
//                      eventfd kicks and calls with EVENT_IDX as Linux's
//                      virtio-net uses them (RX: interrupt after the last
//                      seen entry; TX: kick only when slipway asks, TX
//                      completions reaped when a buffer is needed), no
//                      offloads
//   --stream PATH      QEMU -netdev stream framing (4-byte length)
//   --dgram PATH       QEMU -netdev dgram (one frame per datagram)
//   --packet IFACE     AF_PACKET on a TAP-backed interface (`slipway run`):
//                      the TAP reference
//
// The guest is 10.0.2.15 / 52:54:00:12:34:56; the gateway's MAC is learnt
// with an ARP request first. A request unanswered for 200 ms is forgotten
// (the window refills), so a lossy transport shows as a lower rate, not a
// hang. Everything is bounded by --seconds plus 5 s of set-up. The
// transports' guest side is bench/guest_link.h, shared with transport_relay.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/guest_link.h"

namespace {

using slipway::bench::GuestLink;
using slipway::bench::RxFrame;
using Bytes = std::vector<std::byte>;
using Clock = std::chrono::steady_clock;

// Replies handed over per receive() call: a whole ring's worth.
constexpr int kMaxFramesPerWake = slipway::bench::kQueueSize;

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
  std::unique_ptr<GuestLink> link = slipway::bench::connect_link(kind, target);
  // Frames arrive whole here (at most 1514 bytes, one 2048-byte buffer each).
  auto whole = [](const RxFrame& f, const std::function<void(const std::byte*, size_t)>& use) {
    if (f.pieces.size() == 1) use(static_cast<const std::byte*>(f.pieces[0].iov_base), f.pieces[0].iov_len);
  };

  // Learn the gateway's MAC.
  uint8_t gw_mac[6] = {};
  bool have_mac = false;
  auto setup_end = Clock::now() + std::chrono::seconds(5);
  while (!have_mac && Clock::now() < setup_end) {
    link->send(arp_request());
    link->flush();
    link->receive(100, kMaxFramesPerWake, [&](const RxFrame& f) {
      whole(f, [&](const std::byte* p, size_t n) {
        if (is_arp_reply(p, n)) {
          std::memcpy(gw_mac, p + 22, 6);
          have_mac = true;
        }
      });
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
    link->receive(10, kMaxFramesPerWake, [&](const RxFrame& f) {
      whole(f, [&](const std::byte* p, size_t n) {
        if (!is_echo_reply(p, n)) return;
        received++;
        rx_bytes += n;
        if (in_flight > 0) in_flight--;
        last_reply = Clock::now();
      });
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
