#include "netstack/link/virtqueue.h"

#include <atomic>
#include <cstring>

namespace slipway::link {

namespace {

// Ring fields are little-endian (virtio 1.x). Loads go through memcpy of a
// local copy, never through a struct laid over guest memory.
uint16_t le16(const std::byte* p) {
  return static_cast<uint16_t>(static_cast<unsigned>(p[0]) | (static_cast<unsigned>(p[1]) << 8));
}
uint32_t le32(const std::byte* p) { return uint32_t{le16(p)} | (uint32_t{le16(p + 2)} << 16); }
uint64_t le64(const std::byte* p) { return uint64_t{le32(p)} | (uint64_t{le32(p + 4)} << 32); }
void put_le16(std::byte* p, uint16_t v) {
  p[0] = std::byte(v & 0xff);
  p[1] = std::byte(v >> 8);
}
void put_le32(std::byte* p, uint32_t v) {
  put_le16(p, static_cast<uint16_t>(v & 0xffff));
  put_le16(p + 2, static_cast<uint16_t>(v >> 16));
}

// The 16-bit ring indices shared with the driver, accessed atomically
// (their addresses are 2-byte aligned: attach() checks the ring alignment).
uint16_t load_idx(const std::byte* p) {
  return __atomic_load_n(reinterpret_cast<const uint16_t*>(p), __ATOMIC_ACQUIRE);
}
void store_idx(std::byte* p, uint16_t v) { __atomic_store_n(reinterpret_cast<uint16_t*>(p), v, __ATOMIC_RELEASE); }

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
  desc_ = avail_ = used_ = nullptr;
  if (!configured()) {
    *why = "ring size or addresses not set";
    return false;
  }
  std::byte* d = mem.translate_uva(desc_uaddr_, kDescSize * num_);
  std::byte* a = mem.translate_uva(avail_uaddr_, 6 + 2 * uint64_t{num_});
  std::byte* u = mem.translate_uva(used_uaddr_, 6 + 8 * uint64_t{num_});
  if (d == nullptr || a == nullptr || u == nullptr) {
    *why = "ring outside guest memory";
    return false;
  }
  if (!aligned(d, 16) || !aligned(a, 2) || !aligned(u, 4)) {
    *why = "ring misaligned";
    return false;
  }
  mem_ = &mem;
  desc_ = d;
  avail_ = a;
  used_ = u;
  used_idx_ = load_idx(used_ + 2);
  signalled_valid_ = false;
  return true;
}

void Virtqueue::reset() {
  mem_ = nullptr;
  desc_ = avail_ = used_ = nullptr;
  num_ = 0;
  have_addresses_ = false;
  last_avail_ = used_idx_ = signalled_used_ = 0;
  signalled_valid_ = false;
}

uint16_t Virtqueue::avail_idx() const { return load_idx(avail_ + 2); }

bool Virtqueue::has_available() {
  if (!attached()) return false;
  if (avail_idx() != last_avail_) return true;
  if (!event_idx_) return false;
  put_le16(used_ + 4 + 8 * size_t{num_}, last_avail_);
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
    put_le16(used_ + 4 + 8 * size_t{num_}, last_avail_);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    avail = avail_idx();
    if (avail == last_avail_) return PopResult::kEmpty;
  }
  if (static_cast<uint16_t>(avail - last_avail_) > num_) {
    *why = "available index ran ahead of the ring size";
    return PopResult::kError;
  }
  uint16_t head = le16(avail_ + 4 + 2 * size_t{last_avail_ % num_});
  if (head >= num_) {
    *why = "available head index out of range";
    return PopResult::kError;
  }
  out.clear();
  out.head = head;

  const std::byte* table = desc_;
  uint32_t table_size = num_;
  uint32_t visited = 0;
  bool in_indirect = false;
  uint32_t i = head;
  for (;;) {
    if (++visited > table_size) {
      *why = "descriptor chain longer than its table (loop?)";
      return PopResult::kError;
    }
    std::byte d[kDescSize];
    std::memcpy(d, table + kDescSize * i, kDescSize);  // one snapshot: the driver may rewrite it
    uint64_t addr = le64(d);
    uint32_t len = le32(d + 8);
    uint16_t flags = le16(d + 12);
    uint16_t next = le16(d + 14);
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
      table = t;
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
  std::byte* e = used_ + 4 + 8 * size_t{static_cast<uint16_t>(used_idx_ % num_)};
  put_le32(e, head);
  put_le32(e + 4, len);
  used_idx_++;
}

void Virtqueue::publish() {
  if (attached()) store_idx(used_ + 2, used_idx_);
}

bool Virtqueue::should_notify() {
  if (!attached()) return false;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!event_idx_) return (le16(avail_) & kAvailNoInterrupt) == 0;
  uint16_t old_idx = signalled_used_;
  bool valid = signalled_valid_;
  signalled_used_ = used_idx_;
  signalled_valid_ = true;
  uint16_t used_event = le16(avail_ + 4 + 2 * size_t{num_});
  return !valid || need_event(used_event, used_idx_, old_idx);
}

}  // namespace slipway::link
