// RxBlocks: zero-copy receive, frame memory that the reader of a frame may
// keep instead of copying it.
//
// Theory of operation
//   A transport that reads each frame into a heap block of its own (the
//   TAP) offers that block while its sink runs (an Offer, on the stack of
//   the read loop). A consumer that would copy bytes of the frame to keep
//   them past the call (the lwIP engine copies each guest TCP segment into
//   a pbuf) may take the whole block instead: take() hands it over when the
//   bytes lie inside the block on offer, and the consumer frees it later
//   with release(). The transport sees taken() and reads its next frame
//   into a fresh block (acquire()). A block released while its offer is
//   still running goes back to that offer (code further up the call may
//   still read the frame), so the transport keeps it.
//
//   A part that hands one frame to several consumers (a switch flooding)
//   withholds the offer meanwhile (Withhold): the first consumer must not
//   take memory the next one reads.
//
// Limits: single-threaded (the offer is per thread). Free blocks wait on a
// free list of at most kMaxFree blocks; the rest go back to the heap. A
// taken block stays as large as the transport's buffer (a 64 KiB block for
// any frame), so consumers take only frames that fill a good part of it.
#pragma once

#include <cstddef>
#include <span>

namespace slipway::sys {

class RxBlocks {
 public:
  static constexpr size_t kMaxFree = 16;

  // A block of `size` bytes: from the free list when one of that size
  // waits there, else new.
  static std::byte* acquire(size_t size);
  // Gives a block back (to its offer, if that is still running).
  static void release(std::byte* block, size_t size);

  // If `bytes` lies inside the block on offer, takes it: the caller owns
  // the block (its start and *size returned) and must release() it.
  // nullptr otherwise (no offer, withheld, or other memory).
  static std::byte* take(std::span<const std::byte> bytes, size_t* size);

  class Offer {
   public:
    Offer(std::byte* block, size_t size);
    ~Offer();
    Offer(const Offer&) = delete;
    Offer& operator=(const Offer&) = delete;
    // A consumer kept the block: the transport needs a new one.
    bool taken() const { return taken_ && !returned_; }

   private:
    friend class RxBlocks;
    std::byte* block_;
    size_t size_;
    bool taken_ = false;
    bool returned_ = false;
    Offer* outer_;
  };

  class Withhold {
   public:
    Withhold();
    ~Withhold();
    Withhold(const Withhold&) = delete;
    Withhold& operator=(const Withhold&) = delete;
  };
};

}  // namespace slipway::sys
