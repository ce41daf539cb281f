#include "netstack/link/vhost_user_msg.h"

namespace slipway::link::vhost_user {

namespace {

uint32_t le32(Bytes b, size_t off) {
  return static_cast<uint32_t>(b[off]) | (static_cast<uint32_t>(b[off + 1]) << 8) |
         (static_cast<uint32_t>(b[off + 2]) << 16) | (static_cast<uint32_t>(b[off + 3]) << 24);
}
uint64_t le64(Bytes b, size_t off) { return uint64_t{le32(b, off)} | (uint64_t{le32(b, off + 4)} << 32); }
void put32(std::vector<std::byte>& v, uint32_t x) {
  for (int i = 0; i < 4; ++i) v.push_back(std::byte((x >> (8 * i)) & 0xff));
}
void put64(std::vector<std::byte>& v, uint64_t x) {
  put32(v, static_cast<uint32_t>(x & 0xffffffffu));
  put32(v, static_cast<uint32_t>(x >> 32));
}

constexpr size_t kRegionSize = 32;

}  // namespace

std::optional<Header> parse_header(Bytes b) {
  if (b.size() != kHeaderSize) return std::nullopt;
  Header h{le32(b, 0), le32(b, 4), le32(b, 8)};
  if ((h.flags & 3u) != kVersion || (h.flags & kFlagReply) != 0 || h.size > kMaxPayload) return std::nullopt;
  return h;
}

std::optional<uint64_t> parse_u64(Bytes p) {
  if (p.size() != 8) return std::nullopt;
  return le64(p, 0);
}

std::optional<VringState> parse_vring_state(Bytes p) {
  if (p.size() != 8) return std::nullopt;
  return VringState{le32(p, 0), le32(p, 4)};
}

std::optional<VringAddr> parse_vring_addr(Bytes p) {
  if (p.size() != 40) return std::nullopt;
  VringAddr a;
  a.index = le32(p, 0);
  a.flags = le32(p, 4);
  a.desc = le64(p, 8);
  a.used = le64(p, 16);
  a.avail = le64(p, 24);
  a.log = le64(p, 32);
  return a;
}

std::optional<std::vector<MemRegion>> parse_mem_table(Bytes p) {
  if (p.size() < 8) return std::nullopt;
  uint32_t n = le32(p, 0);
  if (n == 0 || n > kMaxFds || p.size() != 8 + kRegionSize * n) return std::nullopt;
  std::vector<MemRegion> regions;
  for (uint32_t i = 0; i < n; ++i) {
    size_t off = 8 + kRegionSize * i;
    MemRegion r{le64(p, off), le64(p, off + 8), le64(p, off + 16), le64(p, off + 24)};
    if (r.size == 0) return std::nullopt;
    regions.push_back(r);
  }
  return regions;
}

std::vector<std::byte> request(uint32_t req, Bytes payload, uint32_t flags) {
  std::vector<std::byte> v;
  put32(v, req);
  put32(v, kVersion | flags);
  put32(v, static_cast<uint32_t>(payload.size()));
  v.insert(v.end(), payload.begin(), payload.end());
  return v;
}

std::vector<std::byte> u64_payload(uint64_t x) {
  std::vector<std::byte> v;
  put64(v, x);
  return v;
}

std::vector<std::byte> vring_state_payload(VringState s) {
  std::vector<std::byte> v;
  put32(v, s.index);
  put32(v, s.num);
  return v;
}

std::vector<std::byte> vring_addr_payload(const VringAddr& a) {
  std::vector<std::byte> v;
  put32(v, a.index);
  put32(v, a.flags);
  put64(v, a.desc);
  put64(v, a.used);
  put64(v, a.avail);
  put64(v, a.log);
  return v;
}

std::vector<std::byte> mem_table_payload(std::span<const MemRegion> regions) {
  std::vector<std::byte> v;
  put32(v, static_cast<uint32_t>(regions.size()));
  put32(v, 0);
  for (const auto& r : regions) {
    put64(v, r.gpa);
    put64(v, r.size);
    put64(v, r.uaddr);
    put64(v, r.mmap_offset);
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
