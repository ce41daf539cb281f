#include "netstack/sys/rx_blocks.h"

#include <new>
#include <vector>

namespace slipway::sys {

namespace {

struct FreeBlock {
  std::byte* block;
  size_t size;
};

thread_local RxBlocks::Offer* current = nullptr;
thread_local int withheld = 0;  // open Withhold scopes

// Owns the blocks on it (freed at thread exit).
struct FreeList : std::vector<FreeBlock> {
  ~FreeList() {
    for (const auto& b : *this) ::operator delete(b.block);
  }
};

FreeList& free_list() {
  thread_local FreeList list;
  return list;
}

}  // namespace

std::byte* RxBlocks::acquire(size_t size) {
  auto& list = free_list();
  for (size_t i = list.size(); i-- > 0;) {
    if (list[i].size != size) continue;
    std::byte* b = list[i].block;
    list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
    return b;
  }
  return static_cast<std::byte*>(::operator new(size));
}

void RxBlocks::release(std::byte* block, size_t size) {
  if (block == nullptr) return;
  for (Offer* o = current; o != nullptr; o = o->outer_) {
    if (o->block_ == block && o->taken_) {
      o->returned_ = true;  // back with its transport, whose caller may still read it
      return;
    }
  }
  auto& list = free_list();
  if (list.size() < kMaxFree) {
    list.push_back({block, size});
    return;
  }
  ::operator delete(block);
}

std::byte* RxBlocks::take(std::span<const std::byte> bytes, size_t* size) {
  Offer* o = current;
  if (o == nullptr || withheld > 0 || o->block_ == nullptr || o->taken_ || bytes.empty()) return nullptr;
  const std::byte* begin = o->block_;
  if (bytes.data() < begin || bytes.data() + bytes.size() > begin + o->size_) return nullptr;
  o->taken_ = true;
  *size = o->size_;
  return o->block_;
}

RxBlocks::Offer::Offer(std::byte* block, size_t size) : block_(block), size_(size), outer_(current) {
  current = this;
}

RxBlocks::Offer::~Offer() { current = outer_; }

RxBlocks::Withhold::Withhold() { ++withheld; }

RxBlocks::Withhold::~Withhold() { --withheld; }

}  // namespace slipway::sys
