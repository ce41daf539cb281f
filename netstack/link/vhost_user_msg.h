// vhost-user message format: the 12-byte header and the payloads slipway
// handles, as pure parse/emit functions over bytes (no state, no I/O).
//
// A message is: u32 request, u32 flags, u32 size, then `size` payload bytes,
// all in the frontend's byte order (little-endian on every host we build
// for; we load and store little-endian explicitly). flags carries the
// protocol version (bits 0-1, must be 1), REPLY (bit 2) and NEED_REPLY (bit
// 3). File descriptors travel beside the header as SCM_RIGHTS.
//
// Each payload parser checks the exact size its request has (or, for the
// memory table, the size implied by its region count) and returns nullopt on
// anything else; parse_header() refuses a bad version, a REPLY flag on a
// request and a payload larger than kMaxPayload, so the reader never
// allocates more than that.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace slipway::link::vhost_user {

using Bytes = std::span<const std::byte>;

constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxPayload = 1024;
constexpr size_t kMaxFds = 8;
constexpr uint32_t kVersion = 1, kFlagReply = 1u << 2, kFlagNeedReply = 1u << 3;

enum Request : uint32_t {
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kResetOwner = 4,
  kSetMemTable = 5,
  kSetLogBase = 6,
  kSetLogFd = 7,
  kSetVringNum = 8,
  kSetVringAddr = 9,
  kSetVringBase = 10,
  kGetVringBase = 11,
  kSetVringKick = 12,
  kSetVringCall = 13,
  kSetVringErr = 14,
  kGetProtocolFeatures = 15,
  kSetProtocolFeatures = 16,
  kGetQueueNum = 17,
  kSetVringEnable = 18,
  kSendRarp = 19,
  kNetSetMtu = 20,
  kGetConfig = 24,
  kSetConfig = 25,
};

// Feature bits (virtio and vhost-user).
constexpr uint64_t kFeatureCsum = 1ull << 0;             // VIRTIO_NET_F_CSUM: we take partial checksums
constexpr uint64_t kFeatureGuestCsum = 1ull << 1;        // VIRTIO_NET_F_GUEST_CSUM: the guest takes them
constexpr uint64_t kFeatureGuestTso4 = 1ull << 7;        // VIRTIO_NET_F_GUEST_TSO4
constexpr uint64_t kFeatureGuestTso6 = 1ull << 8;        // VIRTIO_NET_F_GUEST_TSO6
constexpr uint64_t kFeatureGuestEcn = 1ull << 9;         // VIRTIO_NET_F_GUEST_ECN
constexpr uint64_t kFeatureHostTso4 = 1ull << 11;        // VIRTIO_NET_F_HOST_TSO4
constexpr uint64_t kFeatureHostTso6 = 1ull << 12;        // VIRTIO_NET_F_HOST_TSO6
constexpr uint64_t kFeatureHostEcn = 1ull << 13;         // VIRTIO_NET_F_HOST_ECN
constexpr uint64_t kFeatureMrgRxbuf = 1ull << 15;        // VIRTIO_NET_F_MRG_RXBUF
constexpr uint64_t kFeatureIndirectDesc = 1ull << 28;    // VIRTIO_RING_F_INDIRECT_DESC
constexpr uint64_t kFeatureEventIdx = 1ull << 29;        // VIRTIO_RING_F_EVENT_IDX
constexpr uint64_t kFeatureProtocolFeatures = 1ull << 30;  // VHOST_USER_F_PROTOCOL_FEATURES
constexpr uint64_t kFeatureVersion1 = 1ull << 32;        // VIRTIO_F_VERSION_1
constexpr uint64_t kProtocolMq = 1ull << 0;
constexpr uint64_t kProtocolReplyAck = 1ull << 3;

// SET_VRING_KICK/CALL/ERR: bits 0-7 the queue, bit 8 "no fd" (polling).
constexpr uint64_t kVringIndexMask = 0xff, kVringNoFd = 1ull << 8;

struct Header {
  uint32_t request = 0;
  uint32_t flags = 0;
  uint32_t size = 0;
  bool need_reply() const { return (flags & kFlagNeedReply) != 0; }
};

struct VringState {
  uint32_t index = 0;
  uint32_t num = 0;
};

struct VringAddr {
  uint32_t index = 0, flags = 0;
  uint64_t desc = 0, used = 0, avail = 0, log = 0;
};

struct MemRegion {
  uint64_t gpa = 0, size = 0, uaddr = 0, mmap_offset = 0;
};

// Exactly kHeaderSize bytes; nullopt if malformed (see above).
std::optional<Header> parse_header(Bytes b);
std::optional<uint64_t> parse_u64(Bytes payload);
std::optional<VringState> parse_vring_state(Bytes payload);
std::optional<VringAddr> parse_vring_addr(Bytes payload);
// At most kMaxFds regions, each non-empty.
std::optional<std::vector<MemRegion>> parse_mem_table(Bytes payload);

// Replies: header (version | REPLY) and payload.
std::vector<std::byte> reply_u64(uint32_t request, uint64_t value);
std::vector<std::byte> reply_vring_state(uint32_t request, VringState s);

// Emitters for frontends (tests, the benchmark): a request with a payload.
std::vector<std::byte> request(uint32_t req, Bytes payload, uint32_t flags = 0);
std::vector<std::byte> u64_payload(uint64_t v);
std::vector<std::byte> vring_state_payload(VringState s);
std::vector<std::byte> vring_addr_payload(const VringAddr& a);
std::vector<std::byte> mem_table_payload(std::span<const MemRegion> regions);

const char* request_name(uint32_t request);

}  // namespace slipway::link::vhost_user
