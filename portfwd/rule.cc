// Parsing of `-p` rules: theory of operation.
//
// The text is taken apart from the outside in, each step with its own error:
//   1. an optional "/tcp" or "/udp" suffix (the last '/');
//   2. an optional address: "[v6]:" when the text starts with '[', otherwise
//      the first field when it is an IPv4 literal and two or three more
//      follow (more ':' than that means an unbracketed IPv6 address, which
//      is ambiguous and rejected);
//   3. "HOSTPORTS:[GUEST:]GUESTPORTS", the ports each a port or a range
//      "FIRST-LAST" of decimal digits only, 1..65535, FIRST <= LAST, equal
//      lengths; GUEST a DNS label or an IPv4 literal.
// Addresses are checked and canonicalised with inet_pton/inet_ntop.
#include "portfwd/rule.h"

#include <arpa/inet.h>

#include <charconv>

namespace slipway::portfwd {
namespace {

struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;
};

bool set_error(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return false;
}

std::optional<uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr != text.data() + text.size() || value == 0 || value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

// "80" or "8000-8010"; `what` is "host" or "guest" for the message.
bool parse_range(std::string_view text, std::string_view what, std::string_view whole, PortRange& out,
                 std::string* error) {
  const auto bad = [&](std::string_view part) {
    return set_error(error, "invalid " + std::string(what) + " port '" + std::string(part) + "' in '" +
                                std::string(whole) + "' (1..65535)");
  };
  if (text.empty()) {
    return set_error(error, "missing " + std::string(what) + " port in '" + std::string(whole) + "'");
  }
  const size_t dash = text.find('-');
  const std::string_view first_text = text.substr(0, dash);
  auto first = parse_port(first_text);
  if (!first) return bad(first_text);
  auto last = first;
  if (dash != std::string_view::npos) {
    const std::string_view last_text = text.substr(dash + 1);
    last = parse_port(last_text);
    if (!last) return bad(last_text);
    if (*last < *first) {
      return set_error(error, std::string(what) + " port range '" + std::string(text) + "' in '" +
                                  std::string(whole) + "' ends before it starts");
    }
  }
  out = PortRange{*first, *last};
  return true;
}

// Validates `text` as an IPv4 (or, when `v6`, IPv6) literal and returns its
// canonical form.
std::optional<std::string> canonical_address(std::string_view text, bool v6) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  const std::string copy(text);
  unsigned char bytes[16];
  char out[INET6_ADDRSTRLEN];
  const int family = v6 ? AF_INET6 : AF_INET;
  if (inet_pton(family, copy.c_str(), bytes) != 1) return std::nullopt;
  if (inet_ntop(family, bytes, out, sizeof out) == nullptr) return std::nullopt;
  return std::string(out);
}

// One DNS label (RFC 1123): letters, digits and '-', not at either end,
// not all digits (that would be a port).
bool is_label(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  bool letter = false;
  for (char c : s) {
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alpha && !(c >= '0' && c <= '9') && c != '-') return false;
    letter |= alpha || c == '-';
  }
  return letter;
}

bool parse(std::string_view text, Rule& rule, std::string* error) {
  const std::string whole(text);
  if (text.empty()) return set_error(error, "empty port rule");

  // 1. Protocol suffix.
  const size_t slash = text.rfind('/');
  if (slash != std::string_view::npos) {
    const std::string_view proto = text.substr(slash + 1);
    if (proto == "tcp") {
      rule.proto = Protocol::kTcp;
    } else if (proto == "udp") {
      rule.proto = Protocol::kUdp;
    } else {
      return set_error(error, "invalid protocol '" + std::string(proto) + "' in '" + whole + "' (tcp or udp)");
    }
    text = text.substr(0, slash);
  }

  // 2. Address.
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return set_error(error, "missing ']' after the IPv6 address in '" + whole + "'");
    const std::string_view addr = text.substr(1, close - 1);
    auto canonical = canonical_address(addr, true);
    if (!canonical) return set_error(error, "invalid IPv6 address '" + std::string(addr) + "' in '" + whole + "'");
    rule.host_addr = *canonical;
    text = text.substr(close + 1);
    if (text.empty() || text.front() != ':') {
      return set_error(error, "expected ':' after the IPv6 address in '" + whole + "'");
    }
    text = text.substr(1);
  } else {
    size_t colons = 0;
    for (char c : text) colons += c == ':' ? 1 : 0;
    if (colons > 3) {
      return set_error(error, "too many ':' in '" + whole + "' (write an IPv6 address in brackets: [::1]:8080:80)");
    }
    const size_t colon = text.find(':');
    const std::string_view first = colon == std::string_view::npos ? text : text.substr(0, colon);
    // Two ':' with a port first is HOSTPORT:GUEST:GUESTPORT; otherwise the
    // first of three or four fields is the host address.
    const bool starts_with_port = !first.empty() && first.find_first_not_of("0123456789-") == std::string_view::npos;
    if (colons == 3 || (colons == 2 && !starts_with_port)) {
      if (first.empty()) return set_error(error, "empty host address in '" + whole + "'");
      auto canonical = canonical_address(first, false);
      if (!canonical) return set_error(error, "invalid host address '" + std::string(first) + "' in '" + whole + "'");
      rule.host_addr = *canonical;
      text = text.substr(colon + 1);
    }
  }

  // 3. Port ranges, and the guest between them.
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    return set_error(error, "expected HOSTPORT:GUESTPORT in '" + whole + "'");
  }
  std::string_view guest_text = text.substr(colon + 1);
  if (const size_t second = guest_text.find(':'); second != std::string_view::npos) {
    const std::string_view who = guest_text.substr(0, second);
    if (guest_text.find(':', second + 1) != std::string_view::npos)
      return set_error(error, "too many ':' in '" + whole + "'");
    if (auto v4 = canonical_address(who, false)) {
      rule.guest = *v4;
    } else if (is_label(who)) {
      rule.guest = std::string(who);
    } else {
      return set_error(error, "invalid guest '" + std::string(who) + "' in '" + whole +
                                  "' (a name of letters, digits and '-', or an IPv4 address)");
    }
    guest_text = guest_text.substr(second + 1);
  }
  PortRange host, guest;
  if (!parse_range(text.substr(0, colon), "host", whole, host, error)) return false;
  if (!parse_range(guest_text, "guest", whole, guest, error)) return false;
  if (host.last - host.first != guest.last - guest.first) {
    return set_error(error, "host and guest port ranges in '" + whole + "' have different lengths (" +
                                std::to_string(host.last - host.first + 1) + " and " +
                                std::to_string(guest.last - guest.first + 1) + ")");
  }
  rule.host_port_first = host.first;
  rule.host_port_last = host.last;
  rule.guest_port_first = guest.first;
  rule.guest_port_last = guest.last;
  return true;
}

std::string range_text(uint16_t first, uint16_t last) {
  return first == last ? std::to_string(first) : std::to_string(first) + "-" + std::to_string(last);
}

}  // namespace

std::string Rule::to_string() const {
  const bool v6 = host_addr.find(':') != std::string::npos;
  return (v6 ? "[" + host_addr + "]" : host_addr) + ":" + range_text(host_port_first, host_port_last) + ":" +
         (guest.empty() ? "" : guest + ":") + range_text(guest_port_first, guest_port_last) + "/" +
         std::string(portfwd::to_string(proto));
}

std::optional<Rule> parse_rule(std::string_view text, std::string* error) {
  Rule rule;
  if (!parse(text, rule, error)) return std::nullopt;
  return rule;
}

}  // namespace slipway::portfwd
