// Ethernet II frames (no FCS, no 802.1Q parsing: a tagged frame reports
// ethertype 0x8100 and its payload starts at the tag's TCI).
//
// EthernetFrame is a checked view over a whole frame; it does not own the
// bytes. parse() only requires the 14-byte header to be present.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "netstack/wire/bytes.h"

namespace slipway::wire {

constexpr size_t kEthernetHeaderLen = 14;

namespace ethertype {
constexpr uint16_t kIpv4 = 0x0800, kArp = 0x0806, kIpv6 = 0x86dd, kVlan = 0x8100;
}

class EthernetFrame {
 public:
  static std::optional<EthernetFrame> parse(Bytes frame);

  MacAddr dst() const { return MacAddr::load(data_, 0); }
  MacAddr src() const { return MacAddr::load(data_, 6); }
  uint16_t ethertype() const { return load16(data_, 12); }
  Bytes payload() const { return data_.subspan(kEthernetHeaderLen); }
  Bytes bytes() const { return data_; }

 private:
  explicit EthernetFrame(Bytes data) : data_(data) {}
  Bytes data_;
};

// Writes the 14-byte header at the start of `out` (out.size() >= 14).
void emit_ethernet_header(MutBytes out, MacAddr dst, MacAddr src, uint16_t ethertype);

}  // namespace slipway::wire
