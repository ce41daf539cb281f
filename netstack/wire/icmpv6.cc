// ICMPv6 view and emitter, NDP messages and options, and the ICMPv6 error
// rule; see icmpv6.h.
//
// Message layouts after type(0) code(1) checksum(2):
//   NS  reserved(4) target(8, 16) options(24)
//   NA  flags R|S|O(4) reserved target(8, 16) options(24)
//   RS  reserved(4) options(8)
//   RA  cur hop limit(4) flags M|O(5) router lifetime(6) reachable(8)
//       retrans(12) options(16)
// Option layouts after type(0) length in 8-byte units(1):
//   link-layer address   mac(2, 6)
//   prefix information   prefix len(2) flags L|A(3) valid(4) preferred(8)
//                        reserved(12) prefix(16, 16); length 4
//   MTU                  reserved(2) mtu(4); length 1
//   RDNSS                reserved(2) lifetime(4) addresses(8, 16 each)
//   DNSSL                reserved(2) lifetime(4) names(8), zero padded
#include "netstack/wire/icmpv6.h"

#include <algorithm>
#include <cassert>

#include "netstack/wire/checksum.h"
#include "netstack/wire/dhcp.h"

namespace slipway::wire {

namespace {

constexpr size_t kOptionUnit = 8;

std::vector<std::byte> option_header(uint8_t type, size_t units) {
  std::vector<std::byte> opt(units * kOptionUnit);
  store8(opt, 0, type);
  store8(opt, 1, static_cast<uint8_t>(units));
  return opt;
}

void append(std::vector<std::byte>& out, const std::vector<std::byte>& part) {
  out.insert(out.end(), part.begin(), part.end());
}

void put_link_addr(std::vector<std::byte>& out, uint8_t type, MacAddr mac) {
  auto opt = option_header(type, 1);
  mac.store(opt, 2);
  append(out, opt);
}

// The common start of every NDP message: type, code 0, zero checksum and
// `fixed_len - 4` bytes for the caller to fill.
std::vector<std::byte> ndp_message(uint8_t type, size_t fixed_len) {
  std::vector<std::byte> out(fixed_len);
  store8(out, 0, type);
  return out;
}

bool ndp_header_ok(const Icmpv6Message& msg, uint8_t type, size_t min_len) {
  return msg.type() == type && msg.code() == 0 && msg.bytes().size() >= min_len;
}

}  // namespace

std::optional<Icmpv6Message> Icmpv6Message::parse(Bytes l4) {
  if (l4.size() < kHeaderLen) return std::nullopt;
  return Icmpv6Message{l4};
}

bool Icmpv6Message::checksum_ok(const Ipv6Addr& src, const Ipv6Addr& dst) const {
  uint32_t sum = pseudo_header_sum_v6(src, dst, ipproto::kIcmpv6, static_cast<uint32_t>(data_.size()));
  return checksum_fold(checksum_add(data_, sum)) == 0;
}

size_t emit_icmpv6(MutBytes out, const Ipv6Addr& src, const Ipv6Addr& dst, uint8_t type, uint8_t code,
                   uint32_t rest, Bytes payload) {
  size_t len = emit_icmp_unchecksummed(out, type, code, rest, payload);
  set_icmpv6_checksum(out.first(len), src, dst);
  return len;
}

void set_icmpv6_checksum(MutBytes message, const Ipv6Addr& src, const Ipv6Addr& dst) {
  assert(message.size() >= 4);
  store16(message, 2, 0);
  uint32_t sum = pseudo_header_sum_v6(src, dst, ipproto::kIcmpv6, static_cast<uint32_t>(message.size()));
  store16(message, 2, checksum_fold(checksum_add(Bytes{message}, sum)));
}

std::optional<NdpOptions> NdpOptions::parse(Bytes p) {
  NdpOptions o;
  size_t i = 0;
  while (i < p.size()) {
    if (i + 2 > p.size()) return std::nullopt;
    uint8_t type = load8(p, i);
    size_t len = size_t{load8(p, i + 1)} * kOptionUnit;
    if (len == 0 || i + len > p.size()) return std::nullopt;
    Bytes opt = p.subspan(i, len);
    switch (type) {
      case ndpopt::kSourceLinkAddr:
      case ndpopt::kTargetLinkAddr:
        if (len != 8) return std::nullopt;
        (type == ndpopt::kSourceLinkAddr ? o.source_link_addr : o.target_link_addr) = MacAddr::load(opt, 2);
        break;
      case ndpopt::kMtu:
        if (len != 8) return std::nullopt;
        o.mtu = load32(opt, 4);
        break;
      case ndpopt::kPrefixInfo: {
        if (len != 32) return std::nullopt;
        PrefixInfo pi;
        pi.prefix_len = load8(opt, 2);
        if (pi.prefix_len > 128) return std::nullopt;
        pi.on_link = (load8(opt, 3) & 0x80) != 0;
        pi.autonomous = (load8(opt, 3) & 0x40) != 0;
        pi.valid_lifetime = load32(opt, 4);
        pi.preferred_lifetime = load32(opt, 8);
        pi.prefix = Ipv6Addr::load(opt, 16);
        o.prefixes.push_back(pi);
        break;
      }
      case ndpopt::kRdnss: {
        // RFC 8106 §5.1: 1 + 2n units for n >= 1 addresses, an 8-byte head
        // then 16 bytes per address.
        if (len < 24 || (len - 8) % 16 != 0) return std::nullopt;
        RdnssOption r;
        r.lifetime = load32(opt, 4);
        for (size_t a = 8; a < len; a += 16) r.servers.push_back(Ipv6Addr::load(opt, a));
        o.rdnss.push_back(std::move(r));
        break;
      }
      case ndpopt::kDnssl: {
        if (len < 16) return std::nullopt;
        auto names = decode_dns_name_list(opt.subspan(8), true);
        if (!names) return std::nullopt;
        o.dnssl.push_back(DnsslOption{load32(opt, 4), std::move(*names)});
        break;
      }
      default:
        break;  // RFC 4861 §4.6: unknown options are skipped
    }
    i += len;
  }
  return o;
}

void NdpOptions::emit(std::vector<std::byte>& out) const {
  if (source_link_addr) put_link_addr(out, ndpopt::kSourceLinkAddr, *source_link_addr);
  if (target_link_addr) put_link_addr(out, ndpopt::kTargetLinkAddr, *target_link_addr);
  if (mtu) {
    auto opt = option_header(ndpopt::kMtu, 1);
    store32(opt, 4, *mtu);
    append(out, opt);
  }
  for (const PrefixInfo& pi : prefixes) {
    auto opt = option_header(ndpopt::kPrefixInfo, 4);
    store8(opt, 2, pi.prefix_len);
    store8(opt, 3, static_cast<uint8_t>((pi.on_link ? 0x80 : 0) | (pi.autonomous ? 0x40 : 0)));
    store32(opt, 4, pi.valid_lifetime);
    store32(opt, 8, pi.preferred_lifetime);
    pi.prefix.store(opt, 16);
    append(out, opt);
  }
  for (const RdnssOption& r : rdnss) {
    if (r.servers.empty()) continue;
    auto opt = option_header(ndpopt::kRdnss, 1 + 2 * r.servers.size());
    store32(opt, 4, r.lifetime);
    for (size_t k = 0; k < r.servers.size(); ++k) r.servers[k].store(opt, 8 + 16 * k);
    append(out, opt);
  }
  for (const DnsslOption& d : dnssl) {
    auto names = encode_dns_name_list(d.domains);
    if (names.empty()) continue;
    size_t units = (8 + names.size() + kOptionUnit - 1) / kOptionUnit;
    if (units > 255) continue;  // does not fit one option; RFC 8106 has no continuation
    auto opt = option_header(ndpopt::kDnssl, units);
    store32(opt, 4, d.lifetime);
    std::copy(names.begin(), names.end(), opt.begin() + 8);
    append(out, opt);
  }
}

std::optional<NeighborSolicit> NeighborSolicit::parse(const Icmpv6Message& msg) {
  if (!ndp_header_ok(msg, icmpv6type::kNeighborSolicit, kMinLen)) return std::nullopt;
  NeighborSolicit ns;
  ns.target = Ipv6Addr::load(msg.bytes(), 8);
  auto opts = NdpOptions::parse(msg.bytes().subspan(kMinLen));
  if (!opts) return std::nullopt;
  ns.options = std::move(*opts);
  return ns;
}

std::vector<std::byte> NeighborSolicit::emit() const {
  auto out = ndp_message(icmpv6type::kNeighborSolicit, kMinLen);
  target.store(out, 8);
  options.emit(out);
  return out;
}

std::optional<NeighborAdvert> NeighborAdvert::parse(const Icmpv6Message& msg) {
  if (!ndp_header_ok(msg, icmpv6type::kNeighborAdvert, kMinLen)) return std::nullopt;
  NeighborAdvert na;
  uint8_t flags = load8(msg.bytes(), 4);
  na.router = (flags & 0x80) != 0;
  na.solicited = (flags & 0x40) != 0;
  na.override_flag = (flags & 0x20) != 0;
  na.target = Ipv6Addr::load(msg.bytes(), 8);
  auto opts = NdpOptions::parse(msg.bytes().subspan(kMinLen));
  if (!opts) return std::nullopt;
  na.options = std::move(*opts);
  return na;
}

std::vector<std::byte> NeighborAdvert::emit() const {
  auto out = ndp_message(icmpv6type::kNeighborAdvert, kMinLen);
  store8(out, 4, static_cast<uint8_t>((router ? 0x80 : 0) | (solicited ? 0x40 : 0) | (override_flag ? 0x20 : 0)));
  target.store(out, 8);
  options.emit(out);
  return out;
}

std::optional<RouterSolicit> RouterSolicit::parse(const Icmpv6Message& msg) {
  if (!ndp_header_ok(msg, icmpv6type::kRouterSolicit, kMinLen)) return std::nullopt;
  auto opts = NdpOptions::parse(msg.bytes().subspan(kMinLen));
  if (!opts) return std::nullopt;
  return RouterSolicit{std::move(*opts)};
}

std::vector<std::byte> RouterSolicit::emit() const {
  auto out = ndp_message(icmpv6type::kRouterSolicit, kMinLen);
  options.emit(out);
  return out;
}

std::optional<RouterAdvert> RouterAdvert::parse(const Icmpv6Message& msg) {
  if (!ndp_header_ok(msg, icmpv6type::kRouterAdvert, kMinLen)) return std::nullopt;
  Bytes b = msg.bytes();
  RouterAdvert ra;
  ra.cur_hop_limit = load8(b, 4);
  ra.managed = (load8(b, 5) & 0x80) != 0;
  ra.other = (load8(b, 5) & 0x40) != 0;
  ra.router_lifetime = load16(b, 6);
  ra.reachable_time = load32(b, 8);
  ra.retrans_timer = load32(b, 12);
  auto opts = NdpOptions::parse(b.subspan(kMinLen));
  if (!opts) return std::nullopt;
  ra.options = std::move(*opts);
  return ra;
}

std::vector<std::byte> RouterAdvert::emit() const {
  auto out = ndp_message(icmpv6type::kRouterAdvert, kMinLen);
  store8(out, 4, cur_hop_limit);
  store8(out, 5, static_cast<uint8_t>((managed ? 0x80 : 0) | (other ? 0x40 : 0)));
  store16(out, 6, router_lifetime);
  store32(out, 8, reachable_time);
  store32(out, 12, retrans_timer);
  options.emit(out);
  return out;
}

std::vector<std::byte> encode_dns_name_list(std::span<const std::string> names) {
  std::vector<std::byte> out;
  for (const std::string& name : names) {
    if (!is_valid_domain_name(name)) continue;
    std::string_view rest = name;
    if (rest.back() == '.') rest.remove_suffix(1);
    while (!rest.empty()) {
      size_t dot = rest.find('.');
      std::string_view label = rest.substr(0, dot);
      out.push_back(std::byte(label.size()));
      for (char c : label) out.push_back(std::byte(static_cast<unsigned char>(c)));
      rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
    }
    out.push_back(std::byte{0});
  }
  return out;
}

std::optional<std::vector<std::string>> decode_dns_name_list(Bytes data, bool zero_padded) {
  std::vector<std::string> names;
  for (size_t i = 0; i < data.size();) {
    if (load8(data, i) == 0) {
      if (zero_padded) break;
      ++i;
      continue;
    }
    auto name = read_dns_name(data, i, false);
    if (!name) return std::nullopt;
    names.push_back(std::move(name->text));
    i = name->end;
  }
  return names;
}

bool icmpv6_error_allowed(const Ipv6Packet& offending, bool link_multicast, uint8_t error_type, uint8_t error_code) {
  Ipv6Addr src = offending.src();
  if (src.is_unspecified() || src.is_multicast()) return false;
  bool multicast_ok = error_type == icmpv6type::kPacketTooBig ||
                      (error_type == icmpv6type::kParamProblem && error_code == 2);
  if ((link_multicast || offending.dst().is_multicast()) && !multicast_ok) return false;
  auto ul = offending.upper_layer();
  if (!ul) return false;  // cannot tell what it carries
  if (ul->protocol != ipproto::kIcmpv6) return true;
  if (ul->fragment_offset != 0) return false;  // cannot tell what it carries
  auto icmp = Icmpv6Message::parse(ul->data);
  if (!icmp) return false;
  // Types below 128 are errors; redirects count as errors here too.
  return icmp->type() >= 128 && icmp->type() != icmpv6type::kRedirect;
}

}  // namespace slipway::wire
