// The netlink client: see netlink.h.
#include "netstack/sys/netlink.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <climits>
#include <cstring>

#include "netstack/sys/error.h"

namespace slipway::sys::netlink {

// The offsets below are the kernel's ABI; the static_asserts tie each one to
// its header so that a mistake here fails the build.
static_assert(sizeof(nlmsghdr) == Message::kHeaderSize && offsetof(nlmsghdr, nlmsg_type) == 4 &&
              offsetof(nlmsghdr, nlmsg_flags) == 6 && offsetof(nlmsghdr, nlmsg_seq) == 8 &&
              offsetof(nlmsghdr, nlmsg_pid) == 12);
static_assert(sizeof(rtattr) == Attribute::kHeaderSize && offsetof(rtattr, rta_type) == 2);
static_assert(sizeof(ifaddrmsg) == IfAddrMsg::kSize && offsetof(ifaddrmsg, ifa_prefixlen) == 1 &&
              offsetof(ifaddrmsg, ifa_flags) == 2 && offsetof(ifaddrmsg, ifa_scope) == 3 &&
              offsetof(ifaddrmsg, ifa_index) == 4);
static_assert(sizeof(rtmsg) == RtMsg::kSize && offsetof(rtmsg, rtm_dst_len) == 1 && offsetof(rtmsg, rtm_src_len) == 2 &&
              offsetof(rtmsg, rtm_tos) == 3 && offsetof(rtmsg, rtm_table) == 4 && offsetof(rtmsg, rtm_protocol) == 5 &&
              offsetof(rtmsg, rtm_scope) == 6 && offsetof(rtmsg, rtm_type) == 7 && offsetof(rtmsg, rtm_flags) == 8);
static_assert(sizeof(ifinfomsg) == IfInfoMsg::kSize && offsetof(ifinfomsg, ifi_type) == 2 &&
              offsetof(ifinfomsg, ifi_index) == 4 && offsetof(ifinfomsg, ifi_flags) == 8 &&
              offsetof(ifinfomsg, ifi_change) == 12);
static_assert(sizeof(rtnexthop) == RtNextHop::kHeaderSize && offsetof(rtnexthop, rtnh_flags) == 2 &&
              offsetof(rtnexthop, rtnh_hops) == 3 && offsetof(rtnexthop, rtnh_ifindex) == 4);
static_assert(sizeof(inet_diag_req_v2) == InetDiagReqV2::kSize && offsetof(inet_diag_req_v2, sdiag_protocol) == 1 &&
              offsetof(inet_diag_req_v2, idiag_ext) == 2 && offsetof(inet_diag_req_v2, idiag_states) == 4 &&
              offsetof(inet_diag_req_v2, id) == 8 && sizeof(inet_diag_sockid) == 48);
static_assert(sizeof(inet_diag_msg) == InetDiagMsg::kSize && offsetof(inet_diag_msg, idiag_state) == 1 &&
              offsetof(inet_diag_msg, id) == 4 && offsetof(inet_diag_sockid, idiag_sport) == 0 &&
              offsetof(inet_diag_sockid, idiag_dport) == 2 && offsetof(inet_diag_sockid, idiag_src) == 4 &&
              offsetof(inet_diag_sockid, idiag_dst) == 20);

namespace {

constexpr size_t kSportOffset = 4, kDportOffset = 6, kSourceOffset = 8, kDestinationOffset = 24;

template <class T>
T load(Bytes b, size_t offset) {
  T value;
  std::memcpy(&value, b.data() + offset, sizeof value);
  return value;
}

// Each dump in the process gets its own sequence number (see netlink.h).
std::atomic<uint32_t> next_seq{1};

}  // namespace

uint8_t load_u8(Bytes b, size_t offset) { return static_cast<uint8_t>(b[offset]); }
uint16_t load_u16(Bytes b, size_t offset) { return load<uint16_t>(b, offset); }
uint32_t load_u32(Bytes b, size_t offset) { return load<uint32_t>(b, offset); }
int32_t load_i32(Bytes b, size_t offset) { return load<int32_t>(b, offset); }
uint16_t load_be16(Bytes b, size_t offset) {
  return static_cast<uint16_t>(static_cast<unsigned>(b[offset]) << 8 | static_cast<unsigned>(b[offset + 1]));
}

// ---- Reading. ----------------------------------------------------------------

size_t Message::length(Bytes header) { return load_u32(header, 0); }

Message Message::from(Bytes record) {
  return Message{load_u16(record, 4), load_u16(record, 6), load_u32(record, 8), load_u32(record, 12),
                 record.subspan(kHeaderSize)};
}

size_t Attribute::length(Bytes header) { return load_u16(header, 0); }

Attribute Attribute::from(Bytes record) {
  return Attribute{static_cast<uint16_t>(load_u16(record, 2) & NLA_TYPE_MASK), record.subspan(kHeaderSize)};
}

size_t RtNextHop::length(Bytes header) { return load_u16(header, 0); }

RtNextHop RtNextHop::from(Bytes record) {
  return RtNextHop{load_u8(record, 2), load_u8(record, 3), load_i32(record, 4), record.subspan(kHeaderSize)};
}

Bytes attributes_after(Bytes payload, size_t fixed_size) {
  return payload.subspan(std::min(align4(fixed_size), payload.size()));
}

std::optional<uint32_t> attr_u32(Bytes data) {
  if (data.size() != sizeof(uint32_t)) return std::nullopt;
  return load_u32(data, 0);
}

std::optional<std::span<const std::byte, 4>> attr_4(Bytes data) {
  if (data.size() != 4) return std::nullopt;
  return data.first<4>();
}

std::optional<std::span<const std::byte, 16>> attr_16(Bytes data) {
  if (data.size() != 16) return std::nullopt;
  return data.first<16>();
}

std::string attr_string(Bytes data) {
  std::string s;
  for (std::byte b : data) {
    if (b == std::byte{0}) break;
    s.push_back(static_cast<char>(b));
  }
  return s;
}

std::optional<int32_t> error_code(const Message& message) {
  if (message.payload.size() < sizeof(int32_t)) return std::nullopt;
  return load_i32(message.payload, 0);
}

// An error code as a positive errno; INT_MIN (which an int cannot negate)
// as INT_MAX.
static int as_errno(int32_t code) { return code == INT_MIN ? INT_MAX : (code < 0 ? -code : code); }

// ---- Writing. ----------------------------------------------------------------

Request::Request(uint16_t type, uint16_t flags) {
  size_ = Message::kHeaderSize;
  const uint16_t all_flags = static_cast<uint16_t>(flags | NLM_F_REQUEST);
  std::memcpy(buf_.data() + 4, &type, sizeof type);
  std::memcpy(buf_.data() + 6, &all_flags, sizeof all_flags);
  store_length();
}

Request& Request::append(const void* data, size_t size) {
  if (!ok_ || size > kCapacity - size_) {
    ok_ = false;
    return *this;
  }
  if (size > 0) std::memcpy(buf_.data() + size_, data, size);
  size_ += size;
  store_length();
  return *this;
}

Request& Request::u8(uint8_t value) { return append(&value, sizeof value); }
Request& Request::u16(uint16_t value) { return append(&value, sizeof value); }
Request& Request::u32(uint32_t value) { return append(&value, sizeof value); }

Request& Request::zeros(size_t count) {
  if (!ok_ || count > kCapacity - size_) {
    ok_ = false;
    return *this;
  }
  std::memset(buf_.data() + size_, 0, count);
  size_ += count;
  store_length();
  return *this;
}

Request& Request::attribute(uint16_t type, Bytes data) {
  const size_t start = align4(size_);
  const size_t length = Attribute::kHeaderSize + data.size();
  if (!ok_ || length > UINT16_MAX || start > kCapacity || align4(length) > kCapacity - start) {
    ok_ = false;
    return *this;
  }
  zeros(start - size_);
  u16(static_cast<uint16_t>(length));
  u16(type);
  append(data.data(), data.size());
  return zeros(align4(length) - length);  // RTA_ALIGN: the message ends aligned
}

void Request::set_seq(uint32_t seq) { std::memcpy(buf_.data() + 8, &seq, sizeof seq); }
void Request::set_port(uint32_t port) { std::memcpy(buf_.data() + 12, &port, sizeof port); }
uint32_t Request::seq() const { return load_u32(Bytes(buf_), 8); }

void Request::store_length() {
  const auto length = static_cast<uint32_t>(size_);
  std::memcpy(buf_.data(), &length, sizeof length);
}

// ---- Fixed headers. --------------------------------------------------------------

std::optional<IfAddrMsg> parse_ifaddrmsg(Bytes p) {
  if (p.size() < IfAddrMsg::kSize) return std::nullopt;
  return IfAddrMsg{load_u8(p, 0), load_u8(p, 1), load_u8(p, 2), load_u8(p, 3), load_u32(p, 4)};
}

std::optional<RtMsg> parse_rtmsg(Bytes p) {
  if (p.size() < RtMsg::kSize) return std::nullopt;
  return RtMsg{load_u8(p, 0), load_u8(p, 1), load_u8(p, 2), load_u8(p, 3), load_u8(p, 4),
               load_u8(p, 5), load_u8(p, 6), load_u8(p, 7), load_u32(p, 8)};
}

std::optional<IfInfoMsg> parse_ifinfomsg(Bytes p) {
  if (p.size() < IfInfoMsg::kSize) return std::nullopt;
  return IfInfoMsg{load_u8(p, 0), load_u16(p, 2), load_i32(p, 4), load_u32(p, 8), load_u32(p, 12)};
}

std::optional<InetDiagMsg> parse_inet_diag_msg(Bytes p) {
  if (p.size() < InetDiagMsg::kSize) return std::nullopt;
  InetDiagMsg m;
  m.family = load_u8(p, 0);
  m.state = load_u8(p, 1);
  m.source_port = load_be16(p, kSportOffset);
  m.destination_port = load_be16(p, kDportOffset);
  std::memcpy(m.source.data(), p.data() + kSourceOffset, m.source.size());
  std::memcpy(m.destination.data(), p.data() + kDestinationOffset, m.destination.size());
  return m;
}

void emit(Request& r, const IfAddrMsg& m) { r.u8(m.family).u8(m.prefix_len).u8(m.flags).u8(m.scope).u32(m.index); }

void emit(Request& r, const RtMsg& m) {
  r.u8(m.family).u8(m.dst_len).u8(m.src_len).u8(m.tos).u8(m.table).u8(m.protocol).u8(m.scope).u8(m.type);
  r.u32(m.flags);
}

void emit(Request& r, const IfInfoMsg& m) {
  r.u8(m.family).u8(0).u16(m.type).u32(static_cast<uint32_t>(m.index)).u32(m.flags).u32(m.change);
}

void emit(Request& r, const InetDiagReqV2& m) {
  r.u8(m.family).u8(m.protocol).u8(m.ext).u8(0).u32(m.states).zeros(sizeof(inet_diag_sockid));
}

// ---- Talking to the kernel. ----------------------------------------------------

Fd open_socket(int protocol) {
  Fd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol));
  if (!fd) throw SystemError("cannot open a netlink socket", errno);
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&local), sizeof local) < 0) {
    throw SystemError("cannot bind the netlink socket", errno);
  }
  return fd;
}

int request_ack(int sock, const Request& request) noexcept {
  if (!request.ok()) return EMSGSIZE;
  const Bytes message = request.bytes();
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(sock, message.data(), message.size(), 0, reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel) < 0) {
    return errno;
  }
  std::array<std::byte, kAckBufferSize> reply;
  const ssize_t n = recv(sock, reply.data(), reply.size(), MSG_DONTWAIT);
  if (n < 0) return errno;
  MessageWalker walker(Bytes(reply.data(), static_cast<size_t>(n)));
  const auto m = walker.next();
  if (!m || m->type != NLMSG_ERROR) return EPROTO;
  const auto code = error_code(*m);
  if (!code) return EPROTO;
  return as_errno(*code);
}

DumpStep read_dump_datagram(Bytes datagram, uint32_t seq, uint32_t port, const OnMessage& on_message,
                            DumpResult& result) {
  MessageWalker walker(datagram);
  while (auto m = walker.next()) {
    if (m->seq != seq || (port != 0 && m->port != port)) continue;  // an earlier dump's tail
    if ((m->flags & NLM_F_DUMP_INTR) != 0) result.interrupted = true;
    if (m->type == NLMSG_DONE) {
      // DONE may carry the dump's return code.
      const auto code = error_code(*m);
      if (code && *code < 0) {
        result.error = DumpError::kKernel;
        result.code = as_errno(*code);
        return DumpStep::kFailed;
      }
      return DumpStep::kDone;
    }
    if (m->type == NLMSG_ERROR) {
      const auto code = error_code(*m);
      if (!code) {
        result.error = DumpError::kMalformed;
        result.malformed = {ParseError::kShortPayload, static_cast<uint32_t>(m->payload.size()), m->payload.size()};
        return DumpStep::kFailed;
      }
      if (*code == 0) continue;  // an acknowledgement; we did not ask for one
      result.error = DumpError::kKernel;
      result.code = as_errno(*code);
      return DumpStep::kFailed;
    }
    if (m->type < NLMSG_MIN_TYPE) continue;  // NOOP, OVERRUN
    if (const ParseError refused = on_message(*m); refused != ParseError::kNone) {
      result.error = DumpError::kMalformed;
      result.malformed = {refused, static_cast<uint32_t>(m->payload.size()), m->payload.size()};
      return DumpStep::kFailed;
    }
  }
  if (walker.error().reason != ParseError::kNone) {
    result.error = DumpError::kMalformed;
    result.malformed = walker.error();
    return DumpStep::kFailed;
  }
  return DumpStep::kMore;
}

namespace {

uint32_t port_of(int fd) {
  sockaddr_nl local{};
  socklen_t length = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) < 0) return 0;
  return local.nl_pid;
}

DumpResult failed(DumpError error, int code = 0) {
  DumpResult result;
  result.error = error;
  result.code = code;
  return result;
}

}  // namespace

Dumper::Dumper(int fd, const DumpLimits& limits) : fd_(fd), limits_(limits), port_(port_of(fd)) {}

DumpResult Dumper::dump(Request request, const OnMessage& on_message) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + limits_.deadline;
  const uint32_t seq = next_seq.fetch_add(1, std::memory_order_relaxed);
  request.set_seq(seq);
  request.set_port(port_);
  if (!request.ok()) return failed(DumpError::kSend, EMSGSIZE);

  const Bytes message = request.bytes();
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  for (;;) {
    const ssize_t n =
        sendto(fd_, message.data(), message.size(), 0, reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
    if (n == static_cast<ssize_t>(message.size())) break;
    if (n < 0 && errno == EINTR && Clock::now() < deadline) continue;
    return failed(DumpError::kSend, n < 0 ? errno : EMSGSIZE);
  }
  if (port_ == 0) port_ = port_of(fd_);  // bound by that first send

  if (buffer_.size() != limits_.buffer_bytes) buffer_.resize(limits_.buffer_bytes);
  DumpResult result;
  for (int datagrams = 0; datagrams < limits_.max_datagrams;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return failed(DumpError::kDeadline);
    const auto wait = std::min(left, limits_.datagram_timeout);
    pollfd p{fd_, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(wait.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return failed(DumpError::kReceive, errno);
    if (ready == 0) return failed(wait < limits_.datagram_timeout ? DumpError::kDeadline : DumpError::kTimeout);

    sockaddr_nl from{};
    iovec iov{buffer_.data(), buffer_.size()};
    msghdr header{};
    header.msg_name = &from;
    header.msg_namelen = sizeof from;
    header.msg_iov = &iov;
    header.msg_iovlen = 1;
    const ssize_t n = recvmsg(fd_, &header, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n < 0) return failed(DumpError::kReceive, errno);
    ++datagrams;
    if ((header.msg_flags & MSG_TRUNC) != 0) return failed(DumpError::kTruncated);
    if (n == 0) return failed(DumpError::kClosed);
    if (from.nl_pid != 0) continue;  // not from the kernel
    switch (read_dump_datagram(Bytes(buffer_.data(), static_cast<size_t>(n)), seq, port_, on_message, result)) {
      case DumpStep::kDone:
      case DumpStep::kFailed:
        return result;
      case DumpStep::kMore:
        break;
    }
  }
  return failed(DumpError::kTooLong);
}

}  // namespace slipway::sys::netlink
