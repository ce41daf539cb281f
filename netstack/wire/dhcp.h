// DHCPv4 messages (RFC 2131, options from RFC 2132, RFC 3397, RFC 3396) as a
// plain value with parse() and emit().
//
// A message is the fixed BOOTP part (236 bytes), the magic cookie
// 99.130.83.99, then options. parse() rejects: fewer than 240 bytes, op other
// than 1 or 2, hlen > 16, a wrong cookie, an option whose length runs past
// the buffer, and known fixed-size options with the wrong length. Options
// after End are ignored; a missing End is tolerated when the last option ends
// exactly at the end of the buffer. Repeated instances of an option are
// concatenated (RFC 3396). Option overload (52) is ignored: options in sname
// and file are not read (the fields are read as names). Unknown options are
// skipped.
//
// emit() writes the fixed part, the cookie, every set option (message type
// first; long values split into 255-byte pieces per RFC 3396), End, and pads
// with zeros to at least 300 bytes (the BOOTP minimum that old relays and
// clients expect).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "netstack/wire/bytes.h"

namespace slipway::wire {

namespace dhcpmsg {
constexpr uint8_t kDiscover = 1, kOffer = 2, kRequest = 3, kDecline = 4, kAck = 5, kNak = 6, kRelease = 7,
                  kInform = 8;
}

namespace dhcpopt {
constexpr uint8_t kPad = 0, kSubnetMask = 1, kRouter = 3, kDns = 6, kHostname = 12, kDomainName = 15,
                  kInterfaceMtu = 26, kRequestedIp = 50, kLeaseTime = 51, kOverload = 52, kMessageType = 53,
                  kServerId = 54, kParameterRequestList = 55, kMessage = 56, kMaxMessageSize = 57,
                  kRenewalTime = 58, kRebindingTime = 59, kClientId = 61, kTftpServerName = 66, kBootfileName = 67,
                  kDomainSearch = 119, kEnd = 255;
}

constexpr uint16_t kDhcpServerPort = 67;
constexpr uint16_t kDhcpClientPort = 68;

struct DhcpMessage {
  static constexpr uint8_t kBootRequest = 1, kBootReply = 2;
  static constexpr uint16_t kFlagBroadcast = 0x8000;
  static constexpr size_t kFixedLen = 236;         // up to (not including) the cookie
  static constexpr size_t kOptionsOffset = 240;    // after the cookie
  static constexpr size_t kMinEmitLen = 300;
  static constexpr uint32_t kMagicCookie = 0x63825363;

  uint8_t op = kBootRequest;
  uint8_t htype = 1;
  uint8_t hlen = 6;
  uint8_t hops = 0;
  uint32_t xid = 0;
  uint16_t secs = 0;
  uint16_t flags = 0;  // kFlagBroadcast
  Ipv4Addr ciaddr, yiaddr, siaddr, giaddr;
  MacAddr chaddr;  // the first 6 bytes of the 16-byte chaddr field
  // The BOOTP header's server host name (64 bytes) and boot file name (128
  // bytes), NUL-terminated: read up to the first NUL; emit() leaves a value
  // that does not fit (with its NUL) out.
  std::string sname, file;
  static constexpr size_t kSnameLen = 64, kFileLen = 128;

  // Client options.
  uint8_t message_type = 0;  // 0: absent (plain BOOTP)
  std::optional<Ipv4Addr> requested_ip, server_id;
  std::vector<uint8_t> parameter_request_list;
  std::vector<std::byte> client_id;
  std::string hostname;
  std::optional<uint16_t> max_message_size;

  // Server options.
  std::optional<Ipv4Addr> subnet_mask, router;  // router: the first of option 3's list
  std::vector<Ipv4Addr> dns_servers;
  std::optional<uint32_t> lease_time, renewal_time, rebinding_time;
  std::optional<uint16_t> interface_mtu;
  std::string domain_name;
  std::vector<std::string> domain_search;  // option 119, RFC 3397 encoding
  std::string message;                     // option 56
  std::string tftp_server_name;            // option 66 (RFC 2132 §9.4)
  std::string bootfile_name;               // option 67 (RFC 2132 §9.5)

  static std::optional<DhcpMessage> parse(Bytes udp_payload);
  std::vector<std::byte> emit() const;
};

// True for a DNS name that can be encoded: labels of 1..63 bytes separated by
// dots, an optional final dot, at most 253 characters in all.
bool is_valid_domain_name(std::string_view name);

// RFC 3397 / RFC 1035 encoding of a search list, with compression pointers
// to suffixes already written (offsets relative to the start of the option
// data). Invalid names (see is_valid_domain_name) are skipped.
std::vector<std::byte> encode_domain_search(std::span<const std::string> domains);
// The inverse; names are returned without a final dot. nullopt on a label
// running past the end, a pointer that does not point strictly backwards, a
// reserved label type, or a name longer than 255 bytes.
std::optional<std::vector<std::string>> decode_domain_search(Bytes data);

// One DNS name in wire form at `at`: labels up to a zero byte and, with
// `allow_pointers`, compression pointers (RFC 1035 §4.1.4) that point
// strictly before the part being read, so reading always ends. Returns the
// name without a final dot ("" for the root) and the offset after it in the
// original data; nullopt on the refusals listed for decode_domain_search().
// decode_domain_search() and decode_dns_name_list() (icmpv6.h) read with it.
struct DnsName {
  std::string text;
  size_t end = 0;
};
std::optional<DnsName> read_dns_name(Bytes data, size_t at, bool allow_pointers);

}  // namespace slipway::wire
