// DHCPv4 message parse/emit and the RFC 3397 search-list codec; see dhcp.h.
//
// Fixed part layout: op(0) htype(1) hlen(2) hops(3) xid(4) secs(8) flags(10)
// ciaddr(12) yiaddr(16) siaddr(20) giaddr(24) chaddr(28, 16 bytes)
// sname(44, 64 bytes) file(108, 128 bytes) cookie(236) options(240).
//
// parse() walks the options twice: once to validate every length and find
// End, then once per known option to gather its (possibly split) value.
#include "netstack/wire/dhcp.h"

#include <algorithm>
#include <cstring>

namespace slipway::wire {

namespace {

constexpr size_t kChaddrOffset = 28;
constexpr size_t kSnameOffset = 44;
constexpr size_t kFileOffset = 108;

// The options area up to End (or the buffer end); nullopt if any option runs
// past the buffer.
std::optional<Bytes> validated_options(Bytes p) {
  size_t i = DhcpMessage::kOptionsOffset;
  while (i < p.size()) {
    uint8_t code = load8(p, i);
    if (code == dhcpopt::kPad) {
      ++i;
      continue;
    }
    if (code == dhcpopt::kEnd) break;
    if (i + 2 > p.size()) return std::nullopt;
    size_t len = load8(p, i + 1);
    if (i + 2 + len > p.size()) return std::nullopt;
    i += 2 + len;
  }
  return p.subspan(DhcpMessage::kOptionsOffset, i - DhcpMessage::kOptionsOffset);
}

// The concatenation of every instance of `code` in validated options, or
// nullopt if the option is absent.
std::optional<std::vector<std::byte>> gather(Bytes opts, uint8_t code) {
  std::optional<std::vector<std::byte>> value;
  size_t i = 0;
  while (i < opts.size()) {
    uint8_t c = load8(opts, i);
    if (c == dhcpopt::kPad) {
      ++i;
      continue;
    }
    size_t len = load8(opts, i + 1);
    if (c == code) {
      if (!value) value.emplace();
      auto data = opts.subspan(i + 2, len);
      value->insert(value->end(), data.begin(), data.end());
    }
    i += 2 + len;
  }
  return value;
}

std::string to_text(const std::vector<std::byte>& data) {
  std::string s;
  s.reserve(data.size());
  for (std::byte b : data) s.push_back(static_cast<char>(b));
  // Some clients count a C string terminator in the length.
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

void put_option(std::vector<std::byte>& out, uint8_t code, Bytes data) {
  // RFC 3396: a value longer than 255 bytes is split into several instances.
  size_t off = 0;
  do {
    size_t n = std::min<size_t>(255, data.size() - off);
    out.push_back(std::byte{code});
    out.push_back(std::byte(n));
    out.insert(out.end(), data.begin() + static_cast<std::ptrdiff_t>(off),
               data.begin() + static_cast<std::ptrdiff_t>(off + n));
    off += n;
  } while (off < data.size());
}

void put_u8(std::vector<std::byte>& out, uint8_t code, uint8_t v) {
  std::byte b[1] = {std::byte{v}};
  put_option(out, code, b);
}
void put_u16(std::vector<std::byte>& out, uint8_t code, uint16_t v) {
  std::byte b[2];
  store16(b, 0, v);
  put_option(out, code, b);
}
void put_u32(std::vector<std::byte>& out, uint8_t code, uint32_t v) {
  std::byte b[4];
  store32(b, 0, v);
  put_option(out, code, b);
}
void put_addrs(std::vector<std::byte>& out, uint8_t code, std::span<const Ipv4Addr> addrs) {
  if (addrs.empty()) return;
  std::vector<std::byte> b(addrs.size() * 4);
  for (size_t i = 0; i < addrs.size(); ++i) addrs[i].store(b, i * 4);
  put_option(out, code, b);
}
void put_text(std::vector<std::byte>& out, uint8_t code, std::string_view text) {
  if (text.empty()) return;
  put_option(out, code, Bytes{reinterpret_cast<const std::byte*>(text.data()), text.size()});
}

std::vector<std::string_view> split_labels(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::vector<std::string_view> labels;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) {
      labels.push_back(name.substr(start));
      return labels;
    }
    labels.push_back(name.substr(start, dot - start));
    start = dot + 1;
  }
}

}  // namespace

std::optional<DhcpMessage> DhcpMessage::parse(Bytes p) {
  if (p.size() < kOptionsOffset) return std::nullopt;
  DhcpMessage m;
  m.op = load8(p, 0);
  if (m.op != kBootRequest && m.op != kBootReply) return std::nullopt;
  m.htype = load8(p, 1);
  m.hlen = load8(p, 2);
  if (m.hlen > 16) return std::nullopt;
  m.hops = load8(p, 3);
  m.xid = load32(p, 4);
  m.secs = load16(p, 8);
  m.flags = load16(p, 10);
  m.ciaddr = Ipv4Addr::load(p, 12);
  m.yiaddr = Ipv4Addr::load(p, 16);
  m.siaddr = Ipv4Addr::load(p, 20);
  m.giaddr = Ipv4Addr::load(p, 24);
  m.chaddr = MacAddr::load(p, kChaddrOffset);
  auto field = [&](size_t at, size_t len) {
    auto f = p.subspan(at, len);
    auto nul = std::find(f.begin(), f.end(), std::byte{0});
    return std::string(reinterpret_cast<const char*>(f.data()), static_cast<size_t>(nul - f.begin()));
  };
  m.sname = field(kSnameOffset, kSnameLen);
  m.file = field(kFileOffset, kFileLen);
  if (load32(p, kFixedLen) != kMagicCookie) return std::nullopt;

  auto opts = validated_options(p);
  if (!opts) return std::nullopt;

  // Fixed-size options: absent is fine, any other length is malformed.
  auto fixed = [&](uint8_t code, size_t len, auto&& store) -> bool {
    auto v = gather(*opts, code);
    if (!v) return true;
    if (v->size() != len) return false;
    store(Bytes{*v});
    return true;
  };
  auto addr_list = [&](uint8_t code, std::vector<Ipv4Addr>& list) -> bool {
    auto v = gather(*opts, code);
    if (!v) return true;
    if (v->empty() || v->size() % 4 != 0) return false;
    for (size_t i = 0; i < v->size(); i += 4) list.push_back(Ipv4Addr::load(*v, i));
    return true;
  };

  std::vector<Ipv4Addr> routers;
  bool ok = fixed(dhcpopt::kMessageType, 1, [&](Bytes b) { m.message_type = load8(b, 0); }) &&
            fixed(dhcpopt::kRequestedIp, 4, [&](Bytes b) { m.requested_ip = Ipv4Addr::load(b, 0); }) &&
            fixed(dhcpopt::kServerId, 4, [&](Bytes b) { m.server_id = Ipv4Addr::load(b, 0); }) &&
            fixed(dhcpopt::kMaxMessageSize, 2, [&](Bytes b) { m.max_message_size = load16(b, 0); }) &&
            fixed(dhcpopt::kSubnetMask, 4, [&](Bytes b) { m.subnet_mask = Ipv4Addr::load(b, 0); }) &&
            fixed(dhcpopt::kLeaseTime, 4, [&](Bytes b) { m.lease_time = load32(b, 0); }) &&
            fixed(dhcpopt::kRenewalTime, 4, [&](Bytes b) { m.renewal_time = load32(b, 0); }) &&
            fixed(dhcpopt::kRebindingTime, 4, [&](Bytes b) { m.rebinding_time = load32(b, 0); }) &&
            fixed(dhcpopt::kInterfaceMtu, 2, [&](Bytes b) { m.interface_mtu = load16(b, 0); }) &&
            addr_list(dhcpopt::kRouter, routers) && addr_list(dhcpopt::kDns, m.dns_servers);
  if (!ok) return std::nullopt;
  if (!routers.empty()) m.router = routers.front();

  if (auto v = gather(*opts, dhcpopt::kParameterRequestList)) {
    for (std::byte b : *v) m.parameter_request_list.push_back(static_cast<uint8_t>(b));
  }
  if (auto v = gather(*opts, dhcpopt::kClientId)) m.client_id = std::move(*v);
  if (auto v = gather(*opts, dhcpopt::kHostname)) m.hostname = to_text(*v);
  if (auto v = gather(*opts, dhcpopt::kDomainName)) m.domain_name = to_text(*v);
  if (auto v = gather(*opts, dhcpopt::kMessage)) m.message = to_text(*v);
  if (auto v = gather(*opts, dhcpopt::kTftpServerName)) m.tftp_server_name = to_text(*v);
  if (auto v = gather(*opts, dhcpopt::kBootfileName)) m.bootfile_name = to_text(*v);
  if (auto v = gather(*opts, dhcpopt::kDomainSearch)) {
    auto names = decode_domain_search(*v);
    if (!names) return std::nullopt;
    m.domain_search = std::move(*names);
  }
  return m;
}

std::vector<std::byte> DhcpMessage::emit() const {
  std::vector<std::byte> out(kOptionsOffset);
  store8(out, 0, op);
  store8(out, 1, htype);
  store8(out, 2, hlen);
  store8(out, 3, hops);
  store32(out, 4, xid);
  store16(out, 8, secs);
  store16(out, 10, flags);
  ciaddr.store(out, 12);
  yiaddr.store(out, 16);
  siaddr.store(out, 20);
  giaddr.store(out, 24);
  chaddr.store(out, kChaddrOffset);
  if (sname.size() < kSnameLen) std::memcpy(out.data() + kSnameOffset, sname.data(), sname.size());
  if (file.size() < kFileLen) std::memcpy(out.data() + kFileOffset, file.data(), file.size());
  store32(out, kFixedLen, kMagicCookie);

  if (message_type != 0) put_u8(out, dhcpopt::kMessageType, message_type);
  if (server_id) put_u32(out, dhcpopt::kServerId, server_id->value);
  if (lease_time) put_u32(out, dhcpopt::kLeaseTime, *lease_time);
  if (renewal_time) put_u32(out, dhcpopt::kRenewalTime, *renewal_time);
  if (rebinding_time) put_u32(out, dhcpopt::kRebindingTime, *rebinding_time);
  if (subnet_mask) put_u32(out, dhcpopt::kSubnetMask, subnet_mask->value);
  if (router) put_u32(out, dhcpopt::kRouter, router->value);
  put_addrs(out, dhcpopt::kDns, dns_servers);
  put_text(out, dhcpopt::kDomainName, domain_name);
  if (!domain_search.empty()) {
    auto encoded = encode_domain_search(domain_search);
    if (!encoded.empty()) put_option(out, dhcpopt::kDomainSearch, encoded);
  }
  if (interface_mtu) put_u16(out, dhcpopt::kInterfaceMtu, *interface_mtu);
  put_text(out, dhcpopt::kMessage, message);
  put_text(out, dhcpopt::kTftpServerName, tftp_server_name);
  put_text(out, dhcpopt::kBootfileName, bootfile_name);
  if (requested_ip) put_u32(out, dhcpopt::kRequestedIp, requested_ip->value);
  if (!client_id.empty()) put_option(out, dhcpopt::kClientId, client_id);
  put_text(out, dhcpopt::kHostname, hostname);
  if (!parameter_request_list.empty()) {
    std::vector<std::byte> prl;
    for (uint8_t c : parameter_request_list) prl.push_back(std::byte{c});
    put_option(out, dhcpopt::kParameterRequestList, prl);
  }
  if (max_message_size) put_u16(out, dhcpopt::kMaxMessageSize, *max_message_size);
  out.push_back(std::byte{dhcpopt::kEnd});
  if (out.size() < kMinEmitLen) out.resize(kMinEmitLen);
  return out;
}

bool is_valid_domain_name(std::string_view name) {
  if (name.empty() || name.size() > 253 + (name.back() == '.' ? 1 : 0)) return false;
  for (std::string_view label : split_labels(name)) {
    if (label.empty() || label.size() > 63) return false;
  }
  return true;
}

std::vector<std::byte> encode_domain_search(std::span<const std::string> domains) {
  constexpr size_t kMaxPointer = 0x3fff;
  std::vector<std::byte> out;
  // Every suffix written so far ("apple.com") and where it starts.
  std::vector<std::pair<std::string, size_t>> suffixes;
  for (const std::string& domain : domains) {
    if (!is_valid_domain_name(domain)) continue;
    auto labels = split_labels(domain);
    bool pointed = false;
    for (size_t k = 0; k < labels.size() && !pointed; ++k) {
      std::string suffix;
      for (size_t j = k; j < labels.size(); ++j) {
        if (j > k) suffix += '.';
        suffix += labels[j];
      }
      auto found = std::find_if(suffixes.begin(), suffixes.end(), [&](const auto& s) { return s.first == suffix; });
      if (found != suffixes.end()) {
        out.push_back(std::byte(0xc0 | (found->second >> 8)));
        out.push_back(std::byte(found->second & 0xff));
        pointed = true;
        break;
      }
      if (out.size() <= kMaxPointer) suffixes.emplace_back(std::move(suffix), out.size());
      out.push_back(std::byte(labels[k].size()));
      for (char c : labels[k]) out.push_back(std::byte(static_cast<unsigned char>(c)));
    }
    if (!pointed) out.push_back(std::byte{0});
  }
  return out;
}

std::optional<DnsName> read_dns_name(Bytes data, size_t at, bool allow_pointers) {
  constexpr size_t kMaxName = 255;
  DnsName name;
  size_t wire_len = 1;  // the final zero
  size_t pos = at;
  size_t segment_start = at;  // pointers must go strictly before this, so jumps terminate
  std::optional<size_t> end;
  while (true) {
    if (pos >= data.size()) return std::nullopt;
    uint8_t len = load8(data, pos);
    if (len == 0) {
      name.end = end.value_or(pos + 1);
      return name;
    }
    if ((len & 0xc0) == 0xc0 && allow_pointers) {
      if (pos + 1 >= data.size()) return std::nullopt;
      size_t target = load16(data, pos) & 0x3fffu;
      if (target >= segment_start) return std::nullopt;
      if (!end) end = pos + 2;
      pos = segment_start = target;
      continue;
    }
    if ((len & 0xc0) != 0) return std::nullopt;  // a pointer where none may be, or a reserved label type
    if (pos + 1 + len > data.size()) return std::nullopt;
    wire_len += 1 + size_t{len};
    if (wire_len > kMaxName) return std::nullopt;
    if (!name.text.empty()) name.text += '.';
    for (size_t k = 0; k < len; ++k) name.text.push_back(static_cast<char>(load8(data, pos + 1 + k)));
    pos += 1 + size_t{len};
  }
}

std::optional<std::vector<std::string>> decode_domain_search(Bytes data) {
  std::vector<std::string> names;
  for (size_t i = 0; i < data.size();) {
    auto name = read_dns_name(data, i, true);
    if (!name) return std::nullopt;
    names.push_back(std::move(name->text));
    i = name->end;
  }
  return names;
}

}  // namespace slipway::wire
