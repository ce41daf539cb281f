// DHCPv6 messages (RFC 8415; DNS options from RFC 3646) as a plain value
// with parse() and emit(), for a stateless server: one that hands out DNS
// configuration but no addresses.
//
// A client/server message is msg-type (1 byte), transaction id (3 bytes),
// then options: code (2), length (2), data. Relay messages (RELAY-FORW,
// RELAY-REPL) have another layout and are refused. parse() also refuses: a
// message shorter than 4 bytes, an option running past the end (at the top
// level or inside IA_NA), repeated CLIENTID or SERVERID, a DUID shorter than
// 2 or longer than 130 bytes, an ORO of odd length, ELAPSED_TIME not 2 bytes,
// RAPID_COMMIT not empty, STATUS_CODE shorter than 2, DNS_SERVERS not a
// multiple of 16, a DOMAIN_LIST that does not decode, an IA_NA shorter than
// 12. Unknown options are skipped. IA_NA is read for its IAID, T1, T2 and
// status only; its addresses are not kept (we assign none).
//
// emit() writes every set option: CLIENTID, SERVERID, IA_NA, STATUS_CODE,
// RAPID_COMMIT, DNS_SERVERS, DOMAIN_LIST, ORO, ELAPSED_TIME. DOMAIN_LIST
// uses the uncompressed encoding RFC 8415 §10 requires.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "netstack/wire/bytes.h"
#include "netstack/wire/ipv6.h"

namespace slipway::wire {

namespace dhcpv6msg {
constexpr uint8_t kSolicit = 1, kAdvertise = 2, kRequest = 3, kConfirm = 4, kRenew = 5, kRebind = 6, kReply = 7,
                  kRelease = 8, kDecline = 9, kReconfigure = 10, kInformationRequest = 11, kRelayForw = 12,
                  kRelayRepl = 13;
}

namespace dhcpv6opt {
constexpr uint16_t kClientId = 1, kServerId = 2, kIaNa = 3, kIaTa = 4, kIaAddr = 5, kOro = 6, kPreference = 7,
                   kElapsedTime = 8, kStatusCode = 13, kRapidCommit = 14, kDnsServers = 23, kDomainList = 24,
                   kIaPd = 25, kInfoRefreshTime = 32;
}

namespace dhcpv6status {
constexpr uint16_t kSuccess = 0, kUnspecFail = 1, kNoAddrsAvail = 2, kNoBinding = 3, kNotOnLink = 4,
                   kUseMulticast = 5, kNoPrefixAvail = 6;
}

constexpr uint16_t kDhcpv6ClientPort = 546;
constexpr uint16_t kDhcpv6ServerPort = 547;
// All_DHCP_Relay_Agents_and_Servers, where clients send.
constexpr Ipv6Addr kAllDhcpv6Servers = Ipv6Addr::from_groups({0xff02, 0, 0, 0, 0, 0, 1, 2});

struct Dhcpv6Status {
  uint16_t code = dhcpv6status::kSuccess;
  std::string message;
  friend bool operator==(const Dhcpv6Status&, const Dhcpv6Status&) = default;
};

struct Dhcpv6IaNa {
  uint32_t iaid = 0, t1 = 0, t2 = 0;
  std::optional<Dhcpv6Status> status;
  friend bool operator==(const Dhcpv6IaNa&, const Dhcpv6IaNa&) = default;
};

struct Dhcpv6Message {
  static constexpr size_t kHeaderLen = 4;
  static constexpr size_t kMinDuidLen = 2, kMaxDuidLen = 130;

  uint8_t msg_type = 0;
  uint32_t transaction_id = 0;  // 24 bits
  std::vector<std::byte> client_id, server_id;  // DUIDs; empty: absent
  std::vector<uint16_t> oro;                    // requested option codes
  std::optional<uint16_t> elapsed_time;         // hundredths of a second
  bool rapid_commit = false;
  std::optional<Dhcpv6Status> status;
  std::vector<Dhcpv6IaNa> ia_na;
  std::vector<Ipv6Addr> dns_servers;
  std::vector<std::string> domain_list;  // without final dots

  static std::optional<Dhcpv6Message> parse(Bytes udp_payload);
  std::vector<std::byte> emit() const;
};

// DUID-LL (RFC 8415 §11.4): type 3, hardware type 1 (Ethernet), the MAC.
std::vector<std::byte> duid_ll(MacAddr mac);

}  // namespace slipway::wire
