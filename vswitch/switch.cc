// See switch.h.
#include "vswitch/switch.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

#include "netstack/sys/rx_blocks.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/vlan.h"

namespace slipway::vswitch {

namespace {

constexpr uint64_t kAgeingSweepMs = 10'000;
// Nested forwarding (a gateway answering from inside send()) is a few levels
// deep at most; each level builds tagged or untagged copies in its own buffer.
constexpr size_t kMaxDepth = 16;

bool allowed(const PortOptions& from, const PortOptions& to) {
  if (from.isolated && !to.uplink) return false;
  if (to.isolated && !from.uplink) return false;
  return true;
}

// The offload of a frame whose L2 header grew (+4) or shrank (-4).
link::Offload shifted(link::Offload o, int delta) {
  if (o.needs_csum()) o.csum_start = static_cast<uint16_t>(o.csum_start + delta);
  if (o.hdr_len != 0) o.hdr_len = static_cast<uint16_t>(o.hdr_len + delta);
  return o;
}

}  // namespace

size_t Switch::MacKeyHash::operator()(const MacKey& k) const noexcept {
  size_t h = k.vlan;
  for (uint8_t b : k.mac.octets) h = h * 131 + b;
  return h;
}

Switch::Switch(const sys::Clock& clock, SwitchConfig config) : clock_(clock), config_(config) {}

Switch::~Switch() {
  for (auto& s : slots_)
    if (s.port != nullptr) s.port->set_sink(nullptr);
}

Switch::PortId Switch::attach(link::Port& port, PortOptions o) {
  if (o.mode == PortOptions::Mode::kAccess && !wire::valid_vlan_id(o.vlan))
    throw std::invalid_argument("port " + o.name + ": an access port needs a VLAN id of 1 to 4094");
  if (o.mode == PortOptions::Mode::kTrunk) {
    if (o.trunk.empty()) throw std::invalid_argument("port " + o.name + ": a trunk port needs at least one VLAN");
    for (uint16_t v : o.trunk)
      if (!wire::valid_vlan_id(v))
        throw std::invalid_argument("port " + o.name + ": VLAN " + std::to_string(v) + " is not 1 to 4094");
  }
  PortId id = 0;
  while (id < slots_.size() && slots_[id].port != nullptr) ++id;
  if (id == slots_.size()) slots_.emplace_back();
  slots_[id] = Slot{&port, std::move(o), {}};
  port.set_sink([this, id](link::Frame f, const link::Offload& off) { input(id, f, off); });
  return id;
}

void Switch::detach(PortId id) {
  if (id >= slots_.size() || slots_[id].port == nullptr) return;
  slots_[id].port->set_sink(nullptr);
  slots_[id].port = nullptr;
  std::erase_if(macs_, [id](const auto& kv) { return kv.second.port == id; });
}

std::optional<Switch::PortId> Switch::find(const std::string& name) const {
  for (PortId i = 0; i < slots_.size(); ++i)
    if (slots_[i].port != nullptr && slots_[i].options.name == name) return i;
  return std::nullopt;
}

std::vector<Switch::PortInfo> Switch::ports() const {
  std::vector<PortInfo> r;
  for (PortId i = 0; i < slots_.size(); ++i) {
    if (slots_[i].port == nullptr) continue;
    PortInfo p{i, slots_[i].options, slots_[i].stats, {}};
    for (const auto& [k, e] : macs_)
      if (e.port == i) p.macs.push_back(Learnt{k.mac, k.vlan});
    r.push_back(std::move(p));
  }
  return r;
}

Switch::PortId Switch::where(wire::MacAddr mac, uint16_t vlan) const {
  auto it = macs_.find(MacKey{mac, vlan});
  if (it == macs_.end() || clock_.now_ms() - it->second.seen > static_cast<uint64_t>(config_.ageing.count()) * 1000)
    return kNoPort;
  return it->second.port;
}

bool Switch::carries(const Slot& s, uint16_t vlan) const {
  switch (s.options.mode) {
    case PortOptions::Mode::kPlain:
      return vlan == 0;
    case PortOptions::Mode::kAccess:
      return vlan == s.options.vlan;
    case PortOptions::Mode::kTrunk:
      return vlan == 0 || std::find(s.options.trunk.begin(), s.options.trunk.end(), vlan) != s.options.trunk.end();
  }
  return false;
}

bool Switch::fits_mtu(size_t mtu, link::Frame frame, const link::Offload& offload, bool tagged) const {
  if (mtu == 0) return true;
  const size_t l2 = wire::kEthernetHeaderLen + (tagged ? wire::kVlanTagLen : 0);
  if (frame.size() < l2) return false;
  size_t ip_len = frame.size() - l2;
  if (offload.is_gso() && offload.gso_size > 0) {
    // What the wire will see: one segment, headers and gso_size bytes.
    size_t headers = offload.hdr_len > l2 ? offload.hdr_len - l2 : (offload.csum_start > l2 ? offload.csum_start - l2 + 20 : 0);
    ip_len = std::min(ip_len, headers + offload.gso_size);
  }
  return ip_len <= mtu;
}

void Switch::learn(PortId from, const MacKey& key, uint64_t now) {
  auto it = macs_.find(key);
  if (it != macs_.end()) {
    it->second = MacEntry{from, now};  // refreshed, or moved to another port
    return;
  }
  if (macs_.size() >= config_.max_macs) {
    age(now);
    if (macs_.size() >= config_.max_macs) return;  // full: unknown MACs are flooded
  }
  macs_.emplace(key, MacEntry{from, now});
}

void Switch::age(uint64_t now) {
  const uint64_t limit = static_cast<uint64_t>(config_.ageing.count()) * 1000;
  std::erase_if(macs_, [&](const auto& kv) { return now - kv.second.seen > limit; });
  last_ageing_ = now;
}

void Switch::input(PortId from, link::Frame frame, const link::Offload& offload) {
  if (from >= slots_.size() || slots_[from].port == nullptr) return;
  // A send() may forward again before it returns: restore the outer one.
  const PortId outer = ingress_;
  ingress_ = from;
  forward(from, frame, offload);
  ingress_ = outer;
}

void Switch::forward(PortId from, link::Frame frame, const link::Offload& offload) {
  if (monitor_) monitor_(from, frame);
  SwitchPortStats& in = slots_[from].stats;
  in.rx_frames++;
  in.rx_bytes += frame.size();
  auto eth = wire::EthernetFrame::parse(frame);
  if (!eth) {
    in.rx_dropped_malformed++;
    return;
  }
  const PortOptions& o = slots_[from].options;
  auto tag = wire::vlan_tag(frame);
  uint16_t vlan = 0;
  if (tag) {
    if (o.mode != PortOptions::Mode::kTrunk || tag->vid == 0 ||
        std::find(o.trunk.begin(), o.trunk.end(), tag->vid) == o.trunk.end()) {
      in.rx_dropped_vlan++;
      return;
    }
    vlan = tag->vid;
  } else if (o.mode == PortOptions::Mode::kAccess) {
    vlan = o.vlan;
  }
  if (!fits_mtu(o.mtu, frame, offload, tag.has_value())) {
    in.rx_dropped_mtu++;
    return;
  }
  const uint64_t now = clock_.now_ms();
  if (now - last_ageing_ > kAgeingSweepMs) age(now);
  if (!eth->src().is_multicast()) learn(from, MacKey{eth->src(), vlan}, now);

  const wire::MacAddr dst = eth->dst();
  if (!dst.is_multicast()) {
    auto it = macs_.find(MacKey{dst, vlan});
    if (it != macs_.end() && now - it->second.seen <= static_cast<uint64_t>(config_.ageing.count()) * 1000) {
      PortId to = it->second.port;
      if (to == from) return;  // on the sender's own segment: no hairpin
      if (to < slots_.size() && slots_[to].port != nullptr && allowed(slots_[from].options, slots_[to].options))
        output(to, vlan, tag.has_value(), frame, offload);
      return;
    }
  }
  // Broadcast, multicast, unknown unicast: every other port of the VLAN.
  // Each reads the same frame: none may keep its memory (sys/rx_blocks.h).
  in.flooded++;
  sys::RxBlocks::Withhold one_frame_many_readers;
  for (PortId to = 0; to < slots_.size(); ++to) {
    if (to == from || slots_[to].port == nullptr || !carries(slots_[to], vlan)) continue;
    if (from >= slots_.size() || !allowed(slots_[from].options, slots_[to].options)) continue;
    output(to, vlan, tag.has_value(), frame, offload);
  }
}

void Switch::output(PortId to, uint16_t vlan, bool tagged_in, link::Frame frame, const link::Offload& offload) {
  Slot& s = slots_[to];
  const bool tagged_out = vlan != 0 && s.options.mode == PortOptions::Mode::kTrunk;
  link::Frame out = frame;
  link::Offload out_offload = offload;
  // Each nesting level has its own buffer: a send() may forward again
  // before it returns (see the top of switch.h).
  thread_local size_t depth = 0;
  if (depth >= kMaxDepth) return;
  std::vector<std::byte> buffer;
  if (tagged_in && !tagged_out) {
    wire::pop_vlan(frame, buffer);
    out = buffer;
    out_offload = shifted(offload, -static_cast<int>(wire::kVlanTagLen));
  } else if (!tagged_in && tagged_out) {
    wire::push_vlan(frame, wire::VlanTag{vlan, 0, false}, buffer);
    out = buffer;
    out_offload = shifted(offload, static_cast<int>(wire::kVlanTagLen));
  }
  if (!fits_mtu(s.options.mtu, out, out_offload, tagged_out)) {
    s.stats.tx_dropped_mtu++;
    return;
  }
  ++depth;
  bool sent = s.port->send(out, out_offload);
  --depth;
  // The slot may have been detached from inside send(): look it up again.
  if (to >= slots_.size()) return;
  SwitchPortStats& st = slots_[to].stats;
  if (sent) {
    st.tx_frames++;
    st.tx_bytes += out.size();
  } else {
    st.tx_dropped++;
  }
}

}  // namespace slipway::vswitch
