// vhost-user message parsing and emitting; see vhost_user_msg.h. Every
// field is little-endian and is loaded or stored at its offset with wire/'s
// little-endian helpers; emitters size their message first, then fill it.
#include "netstack/link/vhost_user_msg.h"

#include <algorithm>

#include "netstack/wire/bytes.h"

namespace slipway::link::vhost_user {

namespace {

// A memory region in SET_MEM_TABLE: gpa(0) size(8) uaddr(16) mmap offset(24).
constexpr size_t kRegionSize = 32;
// SET_MEM_TABLE starts with the region count (u32) and 4 bytes of padding.
constexpr size_t kMemTableHead = 8;
constexpr size_t kVringAddrSize = 40;

}  // namespace

std::optional<Header> parse_header(Bytes b) {
  if (b.size() != kHeaderSize) return std::nullopt;
  Header h{wire::load_le32(b, 0), wire::load_le32(b, 4), wire::load_le32(b, 8)};
  if ((h.flags & 3u) != kVersion || (h.flags & kFlagReply) != 0 || h.size > kMaxPayload) return std::nullopt;
  return h;
}

std::optional<uint64_t> parse_u64(Bytes p) {
  if (p.size() != 8) return std::nullopt;
  return wire::load_le64(p, 0);
}

std::optional<VringState> parse_vring_state(Bytes p) {
  if (p.size() != 8) return std::nullopt;
  return VringState{wire::load_le32(p, 0), wire::load_le32(p, 4)};
}

std::optional<VringAddr> parse_vring_addr(Bytes p) {
  if (p.size() != kVringAddrSize) return std::nullopt;
  VringAddr a;
  a.index = wire::load_le32(p, 0);
  a.flags = wire::load_le32(p, 4);
  a.desc = wire::load_le64(p, 8);
  a.used = wire::load_le64(p, 16);
  a.avail = wire::load_le64(p, 24);
  a.log = wire::load_le64(p, 32);
  return a;
}

std::optional<std::vector<MemRegion>> parse_mem_table(Bytes p) {
  if (p.size() < kMemTableHead) return std::nullopt;
  uint32_t n = wire::load_le32(p, 0);
  if (n == 0 || n > kMaxFds || p.size() != kMemTableHead + kRegionSize * n) return std::nullopt;
  std::vector<MemRegion> regions;
  for (uint32_t i = 0; i < n; ++i) {
    size_t off = kMemTableHead + kRegionSize * i;
    MemRegion r{wire::load_le64(p, off), wire::load_le64(p, off + 8), wire::load_le64(p, off + 16),
                wire::load_le64(p, off + 24)};
    if (r.size == 0) return std::nullopt;
    regions.push_back(r);
  }
  return regions;
}

std::vector<std::byte> request(uint32_t req, Bytes payload, uint32_t flags) {
  std::vector<std::byte> v(kHeaderSize + payload.size());
  wire::store_le32(v, 0, req);
  wire::store_le32(v, 4, kVersion | flags);
  wire::store_le32(v, 8, static_cast<uint32_t>(payload.size()));
  std::copy(payload.begin(), payload.end(), v.begin() + kHeaderSize);
  return v;
}

std::vector<std::byte> u64_payload(uint64_t x) {
  std::vector<std::byte> v(8);
  wire::store_le64(v, 0, x);
  return v;
}

std::vector<std::byte> vring_state_payload(VringState s) {
  std::vector<std::byte> v(8);
  wire::store_le32(v, 0, s.index);
  wire::store_le32(v, 4, s.num);
  return v;
}

std::vector<std::byte> vring_addr_payload(const VringAddr& a) {
  std::vector<std::byte> v(kVringAddrSize);
  wire::store_le32(v, 0, a.index);
  wire::store_le32(v, 4, a.flags);
  wire::store_le64(v, 8, a.desc);
  wire::store_le64(v, 16, a.used);
  wire::store_le64(v, 24, a.avail);
  wire::store_le64(v, 32, a.log);
  return v;
}

std::vector<std::byte> mem_table_payload(std::span<const MemRegion> regions) {
  std::vector<std::byte> v(kMemTableHead + kRegionSize * regions.size());
  wire::store_le32(v, 0, static_cast<uint32_t>(regions.size()));
  for (size_t i = 0; i < regions.size(); ++i) {
    const MemRegion& r = regions[i];
    size_t off = kMemTableHead + kRegionSize * i;
    wire::store_le64(v, off, r.gpa);
    wire::store_le64(v, off + 8, r.size);
    wire::store_le64(v, off + 16, r.uaddr);
    wire::store_le64(v, off + 24, r.mmap_offset);
  }
  return v;
}

std::vector<std::byte> reply_u64(uint32_t req, uint64_t value) {
  auto p = u64_payload(value);
  return request(req, p, kFlagReply);
}

std::vector<std::byte> reply_vring_state(uint32_t req, VringState s) {
  auto p = vring_state_payload(s);
  return request(req, p, kFlagReply);
}

const char* request_name(uint32_t r) {
  switch (r) {
    case kGetFeatures: return "GET_FEATURES";
    case kSetFeatures: return "SET_FEATURES";
    case kSetOwner: return "SET_OWNER";
    case kResetOwner: return "RESET_OWNER";
    case kSetMemTable: return "SET_MEM_TABLE";
    case kSetLogBase: return "SET_LOG_BASE";
    case kSetLogFd: return "SET_LOG_FD";
    case kSetVringNum: return "SET_VRING_NUM";
    case kSetVringAddr: return "SET_VRING_ADDR";
    case kSetVringBase: return "SET_VRING_BASE";
    case kGetVringBase: return "GET_VRING_BASE";
    case kSetVringKick: return "SET_VRING_KICK";
    case kSetVringCall: return "SET_VRING_CALL";
    case kSetVringErr: return "SET_VRING_ERR";
    case kGetProtocolFeatures: return "GET_PROTOCOL_FEATURES";
    case kSetProtocolFeatures: return "SET_PROTOCOL_FEATURES";
    case kGetQueueNum: return "GET_QUEUE_NUM";
    case kSetVringEnable: return "SET_VRING_ENABLE";
    case kSendRarp: return "SEND_RARP";
    case kNetSetMtu: return "NET_SET_MTU";
    case kGetConfig: return "GET_CONFIG";
    case kSetConfig: return "SET_CONFIG";
    default: return "unknown";
  }
}

}  // namespace slipway::link::vhost_user
