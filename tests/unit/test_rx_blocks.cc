// RxBlocks: a consumer takes the block on offer only for bytes inside it,
// never while withheld, never twice; a block released while its offer runs
// goes back to the transport; the free list hands blocks out again.
#include <catch2/catch.hpp>
#include <cstddef>

#include "netstack/sys/rx_blocks.h"

using slipway::sys::RxBlocks;

TEST_CASE("rx blocks: take, withhold, early release, reuse", "[rx_blocks]") {
  constexpr size_t kSize = 4096;
  std::byte* block = RxBlocks::acquire(kSize);
  size_t size = 0;
  // No offer: nothing to take.
  CHECK(RxBlocks::take({block + 10, 100}, &size) == nullptr);
  {
    RxBlocks::Offer offer(block, kSize);
    std::byte other[16]{};
    CHECK(RxBlocks::take({other, sizeof other}, &size) == nullptr);        // other memory
    CHECK(RxBlocks::take({block + kSize - 10, 20}, &size) == nullptr);     // runs past the end
    {
      RxBlocks::Withhold hold;
      CHECK(RxBlocks::take({block + 10, 100}, &size) == nullptr);  // several readers
    }
    CHECK_FALSE(offer.taken());
    CHECK(RxBlocks::take({block + 10, 100}, &size) == block);
    CHECK(size == kSize);
    CHECK(offer.taken());
    CHECK(RxBlocks::take({block + 10, 100}, &size) == nullptr);  // once
    // Released while the offer runs (the consumer was done at once): the
    // transport keeps it.
    RxBlocks::release(block, kSize);
    CHECK_FALSE(offer.taken());
  }
  {
    RxBlocks::Offer offer(block, kSize);
    REQUIRE(RxBlocks::take({block, kSize}, &size) == block);
    CHECK(offer.taken());
  }
  // Kept past the offer, then released: on the free list, handed out again
  // for the same size.
  RxBlocks::release(block, kSize);
  CHECK(RxBlocks::acquire(kSize) == block);
  RxBlocks::release(block, kSize);
  std::byte* other = RxBlocks::acquire(kSize * 2);
  CHECK(other != block);
  RxBlocks::release(other, kSize * 2);
}

TEST_CASE("rx blocks: released blocks are handed out again, the free list bounded", "[rx_blocks]") {
  constexpr size_t kSize = 1000;  // a size nobody else uses
  std::byte* blocks[RxBlocks::kMaxFree + 4];
  for (auto& b : blocks) b = RxBlocks::acquire(kSize);
  for (auto* b : blocks) RxBlocks::release(b, kSize);  // the extra ones go back to the heap
  size_t reused = 0;
  std::byte* again[RxBlocks::kMaxFree + 4];
  for (auto& b : again) {
    b = RxBlocks::acquire(kSize);
    for (auto* old : blocks)
      if (b == old) reused++;
  }
  CHECK(reused > 0);  // from the free list (the heap may hand freed ones back too)
  for (auto* b : again) RxBlocks::release(b, kSize);
}
