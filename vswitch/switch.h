// Switch: a learning L2 switch over Ports.
//
// Theory of operation
//   Each attached Port's received frames come to the switch (it takes the
//   port's sink); the switch forwards them out of other ports with
//   Port::send(), which never blocks: a port that cannot take a frame (its
//   queue is full, a frontend that stopped reading) drops and counts it, and
//   the others carry on. Work is bounded by what the ports deliver, which
//   each bounds per wake-up.
//
//   Learning: a frame's source MAC, in its VLAN, is learnt on the port it
//   came in on (a bounded table of kMaxMacs entries; a full table learns
//   nothing new until entries age out after SwitchConfig::ageing, 300 s by
//   default). A unicast frame to a learnt MAC goes out of that port only;
//   broadcast, multicast and unknown unicast are flooded to every other port
//   of the VLAN. Never back out of the port it came in on (no hairpin). A
//   port that goes away takes its MACs with it.
//
//   VLANs (IEEE 802.1Q): every frame belongs to one VLAN inside the switch;
//   VLAN 0 is the untagged, native one. A plain port is VLAN-unaware: its
//   frames are VLAN 0, and it gets VLAN 0 frames untagged. An access port
//   (vlan = N) puts its untagged frames in VLAN N and gets VLAN N's frames
//   with the tag removed. A trunk port (trunk = {N, M, ...}) carries those
//   VLANs tagged, and VLAN 0 untagged; a tagged frame for another VLAN is
//   dropped (counted). Tagged frames from plain and access ports are
//   dropped. Adding or removing a tag shifts a frame's offload offsets
//   (csum_start) by 4 bytes accordingly.
//
//   Isolation: an isolated port's frames go only to uplink ports (the
//   gateway, a VXLAN or trunk link), and it gets frames only from uplinks:
//   guests reach the gateway but not each other.
//
//   MTU: a port with an mtu drops frames whose IP packet is longer, in both
//   directions (counted); a TCP segment offloaded for segmentation counts by
//   its segment size (gso_size plus headers), which is what the wire sees.
//
// Re-entrancy: forwarding can call back into the switch (a gateway behind a
// PatchPort answers an ARP request from inside Port::send); the switch
// keeps no iterator over its tables across a send.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "netstack/link/port.h"
#include "netstack/sys/clock.h"
#include "netstack/wire/bytes.h"

namespace slipway::vswitch {

struct PortOptions {
  std::string name;
  enum class Mode { kPlain, kAccess, kTrunk };
  Mode mode = Mode::kPlain;
  uint16_t vlan = 0;               // kAccess: 1..4094
  std::vector<uint16_t> trunk;     // kTrunk: VLANs carried tagged, 1..4094
  bool isolated = false;           // reaches (and is reached from) uplinks only
  bool uplink = false;             // a gateway or a link to other hosts
  size_t mtu = 0;                  // largest IP packet in either direction; 0: no check
};

struct SwitchPortStats {
  uint64_t rx_frames = 0, rx_bytes = 0;  // into the switch from this port
  uint64_t tx_frames = 0, tx_bytes = 0;  // out of the switch to this port
  uint64_t tx_dropped = 0;               // the port refused them (full)
  uint64_t rx_dropped_mtu = 0, tx_dropped_mtu = 0;
  uint64_t rx_dropped_vlan = 0;          // a tag this port may not send
  uint64_t rx_dropped_malformed = 0;
  uint64_t flooded = 0;                  // frames this port sent that were flooded
};

struct SwitchConfig {
  std::chrono::seconds ageing{300};
  size_t max_macs = 4096;
};

class Switch {
 public:
  using PortId = uint32_t;
  static constexpr PortId kNoPort = ~PortId{0};

  struct Learnt {
    wire::MacAddr mac;
    uint16_t vlan;
  };
  struct PortInfo {
    PortId id;
    PortOptions options;
    SwitchPortStats stats;
    std::vector<Learnt> macs;
  };

  Switch(const sys::Clock& clock, SwitchConfig config = {});
  ~Switch();
  Switch(const Switch&) = delete;
  Switch& operator=(const Switch&) = delete;

  // Attaches `port` (which must outlive its attachment): the switch takes
  // its sink. Throws std::invalid_argument for options that do not make
  // sense (a VLAN id outside 1..4094, an access port without one).
  PortId attach(link::Port& port, PortOptions options);
  // Detaches the port: its sink is cleared and its MACs forgotten.
  void detach(PortId id);
  std::optional<PortId> find(const std::string& name) const;
  // The attached port (nullptr if none).
  link::Port* port(PortId id) const { return id < slots_.size() ? slots_[id].port : nullptr; }

  // Sees every frame a port hands to the switch, before anything is
  // checked (the `vswitch` program's --pcap). nullptr: none.
  using Monitor = std::function<void(PortId from, link::Frame frame)>;
  void set_monitor(Monitor monitor) { monitor_ = std::move(monitor); }

  std::vector<PortInfo> ports() const;
  size_t mac_count() const { return macs_.size(); }
  // Where a MAC is (kNoPort if unknown), for tests and the control API.
  PortId where(wire::MacAddr mac, uint16_t vlan = 0) const;
  // The port whose frame the switch is forwarding now (kNoPort outside
  // input()): a port's send() learns which port the frame came in on, e.g.
  // the gateway counting flows per guest. A guest cannot forge it.
  PortId ingress() const { return ingress_; }

 private:
  struct Slot {
    link::Port* port = nullptr;  // null: detached
    PortOptions options;
    SwitchPortStats stats;
  };
  struct MacKey {
    wire::MacAddr mac;
    uint16_t vlan;
    friend bool operator==(const MacKey&, const MacKey&) = default;
  };
  struct MacKeyHash {
    size_t operator()(const MacKey& k) const noexcept;
  };
  struct MacEntry {
    PortId port;
    uint64_t seen;  // ms
  };

  void input(PortId from, link::Frame frame, const link::Offload& offload);
  // The frame as `to` takes it (VLAN `vlan`), or false if it does not.
  bool carries(const Slot& s, uint16_t vlan) const;
  void output(PortId to, uint16_t vlan, bool tagged_in, link::Frame frame, const link::Offload& offload);
  bool fits_mtu(size_t mtu, link::Frame frame, const link::Offload& offload, bool tagged) const;
  void learn(PortId from, const MacKey& key, uint64_t now);
  void age(uint64_t now);

  const sys::Clock& clock_;
  SwitchConfig config_;
  std::vector<Slot> slots_;
  std::unordered_map<MacKey, MacEntry, MacKeyHash> macs_;
  uint64_t last_ageing_ = 0;
  Monitor monitor_;
  PortId ingress_ = kNoPort;
  void forward(PortId from, link::Frame frame, const link::Offload& offload);
};

}  // namespace slipway::vswitch
