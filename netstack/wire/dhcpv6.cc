// DHCPv6 message parse/emit; see dhcpv6.h.
//
// IA_NA layout: IAID(0) T1(4) T2(8) sub-options(12), the sub-options in the
// same code/length format as the top level. STATUS_CODE: code(0, 2 bytes)
// then a UTF-8 message filling the rest.
#include "netstack/wire/dhcpv6.h"

#include <algorithm>
#include <cassert>
#include <string_view>

#include "netstack/wire/icmpv6.h"

namespace slipway::wire {

namespace {

constexpr size_t kOptionHeaderLen = 4;
constexpr size_t kIaNaFixedLen = 12;

// Calls visit(code, data) for each option in `p`; false if an option runs
// past the end or visit() returns false.
template <typename Visit>
bool walk_options(Bytes p, Visit&& visit) {
  size_t i = 0;
  while (i < p.size()) {
    if (i + kOptionHeaderLen > p.size()) return false;
    uint16_t code = load16(p, i);
    size_t len = load16(p, i + 2);
    if (i + kOptionHeaderLen + len > p.size()) return false;
    if (!visit(code, p.subspan(i + kOptionHeaderLen, len))) return false;
    i += kOptionHeaderLen + len;
  }
  return true;
}

std::optional<Dhcpv6Status> parse_status(Bytes data) {
  if (data.size() < 2) return std::nullopt;
  Dhcpv6Status s;
  s.code = load16(data, 0);
  for (std::byte b : data.subspan(2)) s.message.push_back(static_cast<char>(b));
  return s;
}

void put_option(std::vector<std::byte>& out, uint16_t code, Bytes data) {
  assert(data.size() <= 0xffff);
  size_t at = out.size();
  out.resize(at + kOptionHeaderLen);
  store16(out, at, code);
  store16(out, at + 2, static_cast<uint16_t>(data.size()));
  out.insert(out.end(), data.begin(), data.end());
}

std::vector<std::byte> status_bytes(const Dhcpv6Status& s) {
  std::vector<std::byte> b(2);
  store16(b, 0, s.code);
  for (char c : s.message) b.push_back(std::byte(static_cast<unsigned char>(c)));
  return b;
}

}  // namespace

std::optional<Dhcpv6Message> Dhcpv6Message::parse(Bytes p) {
  if (p.size() < kHeaderLen) return std::nullopt;
  Dhcpv6Message m;
  m.msg_type = load8(p, 0);
  if (m.msg_type == dhcpv6msg::kRelayForw || m.msg_type == dhcpv6msg::kRelayRepl) return std::nullopt;
  m.transaction_id = load32(p, 0) & 0xffffff;

  auto duid = [](Bytes data, std::vector<std::byte>& into) {
    if (!into.empty() || data.size() < kMinDuidLen || data.size() > kMaxDuidLen) return false;
    into.assign(data.begin(), data.end());
    return true;
  };
  bool ok = walk_options(p.subspan(kHeaderLen), [&](uint16_t code, Bytes data) -> bool {
    switch (code) {
      case dhcpv6opt::kClientId:
        return duid(data, m.client_id);
      case dhcpv6opt::kServerId:
        return duid(data, m.server_id);
      case dhcpv6opt::kOro:
        if (data.size() % 2 != 0) return false;
        for (size_t k = 0; k < data.size(); k += 2) m.oro.push_back(load16(data, k));
        return true;
      case dhcpv6opt::kElapsedTime:
        if (data.size() != 2) return false;
        m.elapsed_time = load16(data, 0);
        return true;
      case dhcpv6opt::kRapidCommit:
        if (!data.empty()) return false;
        m.rapid_commit = true;
        return true;
      case dhcpv6opt::kStatusCode:
        m.status = parse_status(data);
        return m.status.has_value();
      case dhcpv6opt::kDnsServers:
        if (data.size() % 16 != 0) return false;
        for (size_t k = 0; k < data.size(); k += 16) m.dns_servers.push_back(Ipv6Addr::load(data, k));
        return true;
      case dhcpv6opt::kDomainList: {
        auto names = decode_dns_name_list(data, false);
        if (!names) return false;
        m.domain_list.insert(m.domain_list.end(), names->begin(), names->end());
        return true;
      }
      case dhcpv6opt::kIaNa: {
        if (data.size() < kIaNaFixedLen) return false;
        Dhcpv6IaNa ia;
        ia.iaid = load32(data, 0);
        ia.t1 = load32(data, 4);
        ia.t2 = load32(data, 8);
        bool sub_ok = walk_options(data.subspan(kIaNaFixedLen), [&](uint16_t sub, Bytes sub_data) -> bool {
          if (sub != dhcpv6opt::kStatusCode) return true;  // IAADDR and others: not kept
          ia.status = parse_status(sub_data);
          return ia.status.has_value();
        });
        if (!sub_ok) return false;
        m.ia_na.push_back(std::move(ia));
        return true;
      }
      default:
        return true;
    }
  });
  if (!ok) return std::nullopt;
  return m;
}

std::vector<std::byte> Dhcpv6Message::emit() const {
  std::vector<std::byte> out(kHeaderLen);
  store32(out, 0, (uint32_t{msg_type} << 24) | (transaction_id & 0xffffff));
  if (!client_id.empty()) put_option(out, dhcpv6opt::kClientId, client_id);
  if (!server_id.empty()) put_option(out, dhcpv6opt::kServerId, server_id);
  for (const Dhcpv6IaNa& ia : ia_na) {
    std::vector<std::byte> b(kIaNaFixedLen);
    store32(b, 0, ia.iaid);
    store32(b, 4, ia.t1);
    store32(b, 8, ia.t2);
    if (ia.status) put_option(b, dhcpv6opt::kStatusCode, status_bytes(*ia.status));
    put_option(out, dhcpv6opt::kIaNa, b);
  }
  if (status) put_option(out, dhcpv6opt::kStatusCode, status_bytes(*status));
  if (rapid_commit) put_option(out, dhcpv6opt::kRapidCommit, {});
  if (!dns_servers.empty()) {
    std::vector<std::byte> b(16 * dns_servers.size());
    for (size_t k = 0; k < dns_servers.size(); ++k) dns_servers[k].store(b, 16 * k);
    put_option(out, dhcpv6opt::kDnsServers, b);
  }
  if (!domain_list.empty()) {
    auto names = encode_dns_name_list(domain_list);
    if (!names.empty()) put_option(out, dhcpv6opt::kDomainList, names);
  }
  if (!oro.empty()) {
    std::vector<std::byte> b(2 * oro.size());
    for (size_t k = 0; k < oro.size(); ++k) store16(b, 2 * k, oro[k]);
    put_option(out, dhcpv6opt::kOro, b);
  }
  if (elapsed_time) {
    std::byte b[2];
    store16(b, 0, *elapsed_time);
    put_option(out, dhcpv6opt::kElapsedTime, b);
  }
  return out;
}

std::vector<std::byte> duid_ll(MacAddr mac) {
  std::vector<std::byte> d(10);
  store16(d, 0, 3);
  store16(d, 2, 1);
  mac.store(d, 4);
  return d;
}

}  // namespace slipway::wire
