// FaultPort: a filter Port that makes the link unreliable on purpose, for
// testing the stacks at both ends (--link-faults).
//
// Theory of operation
// - It wraps an inner Port (a transport) like PcapPort does: frames the
//   inner port receives go to this port's sink, frames sent to this port go
//   to the inner port, and each frame in each direction meets, in order:
//     loss     dropped, with probability `loss`;
//     corrupt  one byte after the Ethernet header XORed with a random
//              non-zero value, with probability `corrupt` (so the IP, TCP
//              or UDP checksum, or at worst the guest's Ethernet filter,
//              must catch it);
//     dup      passed twice, with probability `dup`;
//     reorder  held back, with probability `reorder`, and passed right
//              after the next frame in the same direction (or after
//              kReorderHoldMs if none comes);
//     delay    every frame passed `delay_ms` later (a FIFO, so no
//              reordering of its own).
//   The decisions come from one PRNG (std::mt19937_64) seeded with `seed`,
//   so a run's faults repeat for the same frames in the same order.
// - Corruption happens "on the wire", after the sender's checksums: the
//   port then carries no offloads (capabilities() is empty, so frames for
//   the inner port arrive with complete checksums), and an offloaded frame
//   from the inner port that is to be corrupted is finished in software
//   first (checksum completed, a GSO frame cut into segments, one of which
//   is corrupted) and delivered plain. The receiver must verify: the
//   guest's kernel does; the gateway does when GatewayConfig's
//   verify_checksums is on (the Stack sets it with faults). Without
//   corruption the inner port's offloads pass through.
// - Held and delayed frames are copies, at most kMaxQueued in all; beyond
//   that a frame is dropped (counted as lost). One libuv timer releases
//   them; it is closed in the destructor and freed in its close callback.
//
// Limits: probabilities 0 to 1 (given as percentages on the command line),
// delay 0 to 10000 ms.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "netstack/link/port.h"

namespace slipway::link {

struct LinkFaults {
  double loss = 0, dup = 0, reorder = 0, corrupt = 0;  // probabilities, 0 to 1
  uint32_t delay_ms = 0;
  uint64_t seed = 1;

  bool any() const { return loss > 0 || dup > 0 || reorder > 0 || corrupt > 0 || delay_ms > 0; }
  // "loss=1%,dup=0.5%,reorder=1%,corrupt=0.1%,delay=5ms,seed=7" (any
  // subset; a percentage may also be written as a fraction: loss=0.01).
  // nullopt with *error saying why.
  static std::optional<LinkFaults> parse(std::string_view text, std::string* error);
  std::string to_string() const;
};

struct FaultStats {
  uint64_t frames = 0;  // entered the port in this direction
  uint64_t lost = 0, corrupted = 0, duplicated = 0, reordered = 0, delayed = 0;
};

class FaultPort : public Port {
 public:
  static constexpr uint64_t kReorderHoldMs = 10;
  static constexpr size_t kMaxQueued = 8192;

  // Takes over inner's sink and capabilities listener; inner must outlive
  // this port. `loop` runs the timer for held and delayed frames.
  FaultPort(uv_loop_t* loop, Port& inner, LinkFaults faults);
  ~FaultPort() override;

  Capabilities capabilities() const override;
  bool transmit(Frame frame, const Offload& offload) override;

  const LinkFaults& faults() const { return faults_; }
  const FaultStats& to_inner_stats() const { return stats_dir_[kToInner]; }
  const FaultStats& from_inner_stats() const { return stats_dir_[kFromInner]; }

 private:
  enum Dir { kToInner = 0, kFromInner = 1 };
  struct Pending {
    uint64_t due = 0;
    Dir dir = kToInner;
    std::vector<std::byte> frame;
    Offload offload;
  };

  void enter(Dir dir, Frame frame, const Offload& offload);
  void faults_on(Dir dir, Frame frame, const Offload& offload);
  void reorder_step(Dir dir, Frame frame, const Offload& offload);
  void delay_step(Dir dir, Frame frame, const Offload& offload);
  void out(Dir dir, Frame frame, const Offload& offload);
  bool chance(double p);
  void on_timer();
  void arm();
  size_t queued() const;

  Port& inner_;
  LinkFaults faults_;
  std::mt19937_64 rng_;
  uv_loop_t* loop_;
  uv_timer_t* timer_;
  std::optional<Pending> held_[2];
  std::deque<Pending> delayed_;
  FaultStats stats_dir_[2];
  std::vector<std::byte> scratch_;
};

}  // namespace slipway::link
