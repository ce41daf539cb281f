// Virtqueue; see virtqueue.h for the theory of operation.
//
// Ring layouts (virtio 1.x 2.7, every field little-endian):
//   descriptor table  num x { addr(0, 8) len(8, 4) flags(12, 2) next(14, 2) }
//   available ring    flags(0) idx(2) ring(4, 2 x num) used_event(4 + 2 x num)
//   used ring         flags(0) idx(2) ring(4, 8 x num: id(0, 4) len(4, 4))
//                     avail_event(4 + 8 x num)
// Fields are read and written with wire/'s little-endian loads and stores
// over spans of the rings; a descriptor is first copied out whole, never
// read through a struct laid over guest memory.
#include "netstack/link/virtqueue.h"

#include <array>
#include <atomic>
#include <cstring>

#include "netstack/wire/bytes.h"

namespace slipway::link {

namespace {

// The 16-bit ring indices shared with the driver, accessed atomically
// (their addresses are 2-byte aligned: attach() checks the ring alignment).
uint16_t load_idx(std::span<const std::byte> ring) {
  return __atomic_load_n(reinterpret_cast<const uint16_t*>(&ring[2]), __ATOMIC_ACQUIRE);
}
void store_idx(std::span<std::byte> ring, uint16_t v) {
  __atomic_store_n(reinterpret_cast<uint16_t*>(&ring[2]), v, __ATOMIC_RELEASE);
}

bool aligned(const std::byte* p, uintptr_t a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

// virtio 1.x 2.7.10: true if the driver asked for an interrupt between old
// and new (event is its used_event).
bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

constexpr size_t kDescSize = 16;

}  // namespace

bool Virtqueue::set_num(uint32_t num) {
  if (num == 0 || num > kMaxSize || (num & (num - 1)) != 0) return false;
  num_ = num;
  return true;
}

bool Virtqueue::attach(const GuestMemory& mem, std::string* why) {
  desc_ = avail_ = used_ = {};
  if (!configured()) {
    *why = "ring size or addresses not set";
    return false;
  }
  const size_t desc_len = kDescSize * num_, avail_len = 6 + 2 * size_t{num_}, used_len = 6 + 8 * size_t{num_};
  std::byte* d = mem.translate_uva(desc_uaddr_, desc_len);
  std::byte* a = mem.translate_uva(avail_uaddr_, avail_len);
  std::byte* u = mem.translate_uva(used_uaddr_, used_len);
  if (d == nullptr || a == nullptr || u == nullptr) {
    *why = "ring outside guest memory";
    return false;
  }
  if (!aligned(d, 16) || !aligned(a, 2) || !aligned(u, 4)) {
    *why = "ring misaligned";
    return false;
  }
  mem_ = &mem;
  desc_ = {d, desc_len};
  avail_ = {a, avail_len};
  used_ = {u, used_len};
  used_idx_ = load_idx(used_);
  signalled_valid_ = false;
  return true;
}

void Virtqueue::reset() {
  mem_ = nullptr;
  desc_ = avail_ = used_ = {};
  num_ = 0;
  have_addresses_ = false;
  last_avail_ = used_idx_ = signalled_used_ = 0;
  signalled_valid_ = false;
}

uint16_t Virtqueue::avail_idx() const { return load_idx(avail_); }

void Virtqueue::set_avail_event(uint16_t idx) { wire::store_le16(used_, 4 + 8 * size_t{num_}, idx); }

bool Virtqueue::has_available() {
  if (!attached()) return false;
  if (avail_idx() != last_avail_) return true;
  if (!event_idx_) return false;
  set_avail_event(last_avail_);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return avail_idx() != last_avail_;
}

bool Virtqueue::add_buffer(uint64_t gpa, uint32_t len, bool writable, Chain& out, std::string* why) {
  auto& segs = writable ? out.writable : out.readable;
  (writable ? out.writable_bytes : out.readable_bytes) += len;
  uint64_t left = len;
  // A buffer may straddle two adjacent regions: take it piece by piece. Each
  // piece is at least one byte, and there are at most kMaxRegions regions.
  for (size_t piece = 0; left > 0; ++piece) {
    const GuestMemory::Region* r = mem_->region_of_gpa(gpa);
    if (r == nullptr || piece >= GuestMemory::kMaxRegions) {
      *why = "descriptor outside guest memory";
      return false;
    }
    uint64_t off = gpa - r->gpa;
    uint64_t take = std::min(left, r->size - off);
    segs.push_back(Segment{r->host + off, static_cast<uint32_t>(take)});
    left -= take;
    gpa += take;  // cannot wrap: take <= size - off and the region does not wrap
  }
  return true;
}

Virtqueue::PopResult Virtqueue::pop(Chain& out, std::string* why) {
  if (!attached()) return PopResult::kEmpty;
  uint16_t avail = avail_idx();
  if (avail == last_avail_) {
    if (!event_idx_) return PopResult::kEmpty;
    // Ask for a kick when the driver adds the next chain, then look again:
    // it may have added one before it could see avail_event.
    set_avail_event(last_avail_);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    avail = avail_idx();
    if (avail == last_avail_) return PopResult::kEmpty;
  }
  if (static_cast<uint16_t>(avail - last_avail_) > num_) {
    *why = "available index ran ahead of the ring size";
    return PopResult::kError;
  }
  uint16_t head = wire::load_le16(avail_, 4 + 2 * size_t{last_avail_ % num_});
  if (head >= num_) {
    *why = "available head index out of range";
    return PopResult::kError;
  }
  out.clear();
  out.head = head;

  std::span<const std::byte> table = desc_;
  uint32_t table_size = num_;
  uint32_t visited = 0;
  bool in_indirect = false;
  uint32_t i = head;
  for (;;) {
    if (++visited > table_size) {
      *why = "descriptor chain longer than its table (loop?)";
      return PopResult::kError;
    }
    std::array<std::byte, kDescSize> d;
    std::memcpy(d.data(), &table[kDescSize * i], kDescSize);  // one snapshot: the driver may rewrite it
    uint64_t addr = wire::load_le64(d, 0);
    uint32_t len = wire::load_le32(d, 8);
    uint16_t flags = wire::load_le16(d, 12);
    uint16_t next = wire::load_le16(d, 14);
    if (flags & kDescIndirect) {
      if (in_indirect || (flags & kDescNext)) {
        *why = "nested or chained indirect descriptor";
        return PopResult::kError;
      }
      if (len == 0 || len % kDescSize != 0 || len / kDescSize > num_) {
        *why = "indirect table has a bad length";
        return PopResult::kError;
      }
      const std::byte* t = mem_->translate_gpa(addr, len);
      if (t == nullptr) {
        *why = "indirect table outside guest memory";
        return PopResult::kError;
      }
      table = {t, len};
      table_size = len / kDescSize;
      visited = 0;
      in_indirect = true;
      i = 0;
      continue;
    }
    bool writable = (flags & kDescWrite) != 0;
    if (!writable && !out.writable.empty()) {
      *why = "device-readable descriptor after a writable one";
      return PopResult::kError;
    }
    if (len > 0 && !add_buffer(addr, len, writable, out, why)) return PopResult::kError;
    if (!(flags & kDescNext)) break;
    if (next >= table_size) {
      *why = "next descriptor index out of range";
      return PopResult::kError;
    }
    i = next;
  }
  last_avail_++;
  return PopResult::kChain;
}

void Virtqueue::push(uint16_t head, uint32_t len) {
  const size_t elem = 4 + 8 * size_t{static_cast<uint16_t>(used_idx_ % num_)};
  wire::store_le32(used_, elem, head);
  wire::store_le32(used_, elem + 4, len);
  used_idx_++;
}

void Virtqueue::publish() {
  if (attached()) store_idx(used_, used_idx_);
}

bool Virtqueue::should_notify() {
  if (!attached()) return false;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!event_idx_) return (wire::load_le16(avail_, 0) & kAvailNoInterrupt) == 0;
  uint16_t old_idx = signalled_used_;
  bool valid = signalled_valid_;
  signalled_used_ = used_idx_;
  signalled_valid_ = true;
  uint16_t used_event = wire::load_le16(avail_, 4 + 2 * size_t{num_});
  return !valid || need_event(used_event, used_idx_, old_idx);
}

}  // namespace slipway::link
