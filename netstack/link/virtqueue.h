// Virtqueue: the device side of one split virtqueue (virtio 1.x, 2.7) in
// guest memory shared by a vhost-user frontend.
//
// The frontend sets the size (SET_VRING_NUM), the ring addresses in its own
// address space (SET_VRING_ADDR) and the next available index
// (SET_VRING_BASE); attach() then translates the three rings through the
// GuestMemory and checks that each lies inside one region and is aligned.
// pop() takes the next available descriptor chain and walks it into a list
// of host segments; push() puts a used element and publish() makes used
// elements visible; should_notify() says whether the driver asked to be
// interrupted (VIRTIO_RING_F_EVENT_IDX: used_event; else the avail flags).
//
// Everything in guest memory is untrusted and may change under us. Every
// descriptor is translated through GuestMemory (address and length checked
// without overflow); a chain visits at most `num` descriptors in all (loops
// and oversized chains are errors), indirect tables must be a whole number of
// descriptors, at most `num` of them, inside guest memory, not nested and not
// combined with NEXT; a device-readable descriptor after a device-writable
// one is an error. Any error makes pop() return kError with a reason: the
// caller closes the frontend's connection (the queue is then unusable until
// it is set up again). Ring indices are read with acquire loads and the used
// index stored with a release store; a full fence separates "write
// avail_event / used element" from "read avail idx / used_event".
//
// States: unconfigured -> attached (attach() succeeded) -> detached (reset()).
// Only an attached queue pops or pushes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "netstack/link/guest_memory.h"

namespace slipway::link {

class Virtqueue {
 public:
  static constexpr uint16_t kMaxSize = 32768;
  static constexpr uint16_t kDescNext = 1, kDescWrite = 2, kDescIndirect = 4;
  static constexpr uint16_t kAvailNoInterrupt = 1;

  struct Segment {
    std::byte* data;
    uint32_t len;
  };
  // One descriptor chain as host segments: the device-readable ones first,
  // then the device-writable ones.
  struct Chain {
    uint16_t head = 0;
    std::vector<Segment> readable, writable;
    uint64_t readable_bytes = 0, writable_bytes = 0;
    void clear() {
      readable.clear();
      writable.clear();
      readable_bytes = writable_bytes = 0;
    }
  };
  enum class PopResult { kEmpty, kChain, kError };

  // Configuration, as the frontend sends it (checked in attach()).
  bool set_num(uint32_t num);  // false unless a power of two in 1..kMaxSize
  void set_addresses(uint64_t desc, uint64_t avail, uint64_t used) {
    desc_uaddr_ = desc;
    avail_uaddr_ = avail;
    used_uaddr_ = used;
    have_addresses_ = true;
  }
  void set_base(uint16_t base) { last_avail_ = base; }
  void set_event_idx(bool on) { event_idx_ = on; }

  // Translates the rings (num and addresses must be set). On failure returns
  // false and sets why. The used index the device continues from is read
  // from the used ring itself.
  bool attach(const GuestMemory& mem, std::string* why);
  // Detaches and forgets the configuration (num, addresses, base).
  void reset();
  bool attached() const { return !desc_.empty(); }
  bool configured() const { return num_ != 0 && have_addresses_; }

  PopResult pop(Chain& out, std::string* why);
  // Gives back the last n popped chains (none of them pushed yet).
  void rewind(uint16_t n) { last_avail_ = static_cast<uint16_t>(last_avail_ - n); }
  // Writes a used element (not yet visible to the driver).
  void push(uint16_t head, uint32_t len);
  // Makes the pushed elements visible (release store of used->idx).
  void publish();
  // Whether the driver wants an interrupt for what was published since the
  // last time this returned true.
  bool should_notify();
  // Are there chains the device has not taken yet? If not, with EVENT_IDX,
  // asks the driver to kick on its next chain (as pop() does on empty), so
  // that stopping here never misses a kick.
  bool has_available();

  uint16_t last_avail() const { return last_avail_; }
  uint16_t num() const { return static_cast<uint16_t>(num_); }

 private:
  uint16_t avail_idx() const;
  // EVENT_IDX: asks the driver to kick when it makes idx available.
  void set_avail_event(uint16_t idx);
  // Appends [gpa, gpa + len) to segs, split at region boundaries.
  bool add_buffer(uint64_t gpa, uint32_t len, bool writable, Chain& out, std::string* why);

  const GuestMemory* mem_ = nullptr;
  uint32_t num_ = 0;
  uint64_t desc_uaddr_ = 0, avail_uaddr_ = 0, used_uaddr_ = 0;
  bool have_addresses_ = false;
  bool event_idx_ = false;
  // The three rings in guest memory, empty until attach().
  std::span<std::byte> desc_, avail_, used_;
  uint16_t last_avail_ = 0;
  uint16_t used_idx_ = 0;          // next used slot (shadow of used->idx)
  uint16_t signalled_used_ = 0;    // used idx at the last notification
  bool signalled_valid_ = false;
};

}  // namespace slipway::link
