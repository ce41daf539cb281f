// Fuzz target: the DHCPv4 server and the DHCPv6 server (in the NDP
// responder). Each input is a sequence of records (fuzz_common.h); a
// record's first byte chooses the server (bit 0: DHCPv6) and the client's
// MAC (bits 1-3: one of 8), the rest is the UDP payload, so one input can
// walk a client through DISCOVER, REQUEST, RENEW and RELEASE (or SOLICIT,
// REQUEST, ...). Fresh servers per input; the clock moves 30 s a message.
#include <chrono>

#include "fuzz_common.h"
#include "netstack/gateway/dhcp_server.h"
#include "netstack/gateway/ndp_responder.h"
#include "netstack/wire/frame.h"

using namespace slipway;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gateway::DhcpServerConfig c4;
  c4.reserved = {wire::Ipv4Addr{10, 0, 2, 2}, wire::Ipv4Addr{10, 0, 2, 3}};
  c4.pool_end = wire::Ipv4Addr{10, 0, 2, 20};  // small, so the pool runs out
  c4.max_leases = 8;
  c4.search_domains = {"example.test"};
  c4.statics = {{wire::MacAddr{{0x52, 0x54, 0, 0, 0, 7}}, wire::Ipv4Addr{10, 0, 2, 50}, "seven"}};
  gateway::DhcpServer v4(c4);
  gateway::NdpResponderConfig c6;
  c6.search_domains = {"example.test"};
  gateway::NdpResponder v6(c6);

  auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  fuzz::Records records(data, size);
  std::span<const std::byte> rec;
  int n = 0;
  while (records.next(rec) && n++ < 32) {
    if (rec.empty()) continue;
    auto sel = std::to_integer<uint8_t>(rec[0]);
    auto payload = rec.subspan(1);
    wire::MacAddr mac{{0x52, 0x54, 0, 0, 0, static_cast<uint8_t>((sel >> 1) & 7)}};
    now += std::chrono::seconds(30);
    if ((sel & 1) == 0) {
      (void)v4.handle(payload, mac, now);
      (void)v4.leases();
    } else {
      auto src = wire::Ipv6Addr::from_groups({0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe00, static_cast<uint16_t>(mac.octets[5])});
      auto dst = wire::Ipv6Addr::from_groups({0xff02, 0, 0, 0, 0, 0, 1, 2});
      auto frame = wire::build_ipv6_udp_frame(wire::MacAddr{{0x33, 0x33, 0, 1, 0, 2}}, mac, src, 546, dst, 547, payload);
      (void)v6.handle(frame, now);
    }
  }
  return 0;
}
