// One netlink client, for NETLINK_ROUTE and NETLINK_SOCK_DIAG.
//
// Theory of operation
//
//   Netlink messages are a 16-byte header (length, type, flags, sequence
//   number, port id; host byte order) and a payload: for the families we use,
//   a fixed header (rtmsg, ifaddrmsg, ifinfomsg, inet_diag_req_v2, ...) and
//   then attributes (4-byte header: length, type; then the data), each padded
//   to 4 bytes. This module reads and writes those bytes with explicit loads
//   and stores at the kernel's documented offsets: no struct is ever laid
//   over a buffer, and no alignment is assumed. The netlink macros (NLMSG_*,
//   RTA_*) are not used: they are C casts; the walkers below are their rules
//   spelled out, with every length checked.
//
//   - Request builds one message in place, in a fixed buffer of
//     Request::kCapacity (256) bytes; a field or attribute that does not fit
//     marks the request as failed (ok() false) and it is never sent.
//   - Walker walks received records: messages, attributes, next hops. A
//     header whose length is shorter than itself or longer than what is left
//     stops the walk, and error() says why (ParseError) and with which
//     numbers. Fewer bytes than a header at the end are padding.
//   - The fixed headers are small value types, read by parse_*() (nullopt
//     when the payload is shorter than the kernel's struct) and written by
//     emit().
//   - request_ack() sends one request that asks for an acknowledgement and
//     reads it. The kernel handles an rtnetlink request inside sendto(), so
//     the answer is already queued and the receive does not wait
//     (MSG_DONTWAIT). The reply is read into a stack buffer of
//     kAckBufferSize (1 KiB: an error acknowledgement carries our request
//     back, at most 256 + 36 bytes). System calls only, no allocation: it
//     runs in the forked child that configures a namespace's interface.
//   - Dumper runs one dump (NLM_F_DUMP) at a time on a socket it borrows.
//     Each dump gets a sequence number unique in the process, so the tail of
//     an earlier, abandoned dump on the same socket is recognised and
//     skipped, as is any message for another port id and any datagram not
//     sent by the kernel (sender port id 0). The dump ends at NLMSG_DONE (a
//     negative code carried by DONE fails it); an NLMSG_ERROR with a non-zero
//     code fails it, one with code 0 is an acknowledgement and is skipped.
//     Control messages (types below NLMSG_MIN_TYPE) are skipped; every other
//     message goes to the caller's on_message, which may refuse it and so
//     stop the dump. NLM_F_DUMP_INTR on any message (the table changed while
//     it was read) is reported for the caller to start over.
//   - A dump given up on (a bound passed, or the caller stopped it) keeps
//     running in the kernel: until its rest has been read, the kernel
//     refuses a new dump on that socket with EBUSY (kKernel). Later dumps on
//     the socket read that rest as they go (and skip it), so it clears
//     itself; a caller that cannot wait for that closes the socket.
//
// Bounds (DumpLimits, chosen and documented by each caller)
//
//   - buffer_bytes: the receive buffer; a datagram that does not fit
//     (MSG_TRUNC) fails the dump. The kernel fills a dump datagram up to the
//     reader's buffer size but never beyond 32 KiB, so 32 KiB always fits.
//   - datagram_timeout: the longest wait for each datagram (poll()).
//   - deadline: the longest a whole dump may take, however busy the kernel.
//   - max_datagrams: the most datagrams one dump may read (with the buffer
//     size, a bound on its bytes).
//   A dump that passes a bound fails with a DumpError that says which; the
//   caller words it. Nothing else is unbounded: EINTR and EAGAIN retries
//   count against the deadline.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "netstack/sys/fd.h"

namespace slipway::sys::netlink {

using Bytes = std::span<const std::byte>;

inline constexpr size_t kAckBufferSize = 1024;

// NLMSG_ALIGN, RTA_ALIGN and RTNH_ALIGN are all this.
constexpr size_t align4(size_t n) { return (n + 3) & ~size_t{3}; }

// Host-order loads at `offset`; the caller has checked the size.
uint8_t load_u8(Bytes b, size_t offset);
uint16_t load_u16(Bytes b, size_t offset);
uint32_t load_u32(Bytes b, size_t offset);
int32_t load_i32(Bytes b, size_t offset);
// Big-endian (network order), for the fields that are (ports in inet_diag).
uint16_t load_be16(Bytes b, size_t offset);

// Why bytes were refused.
enum class ParseError : uint8_t {
  kNone = 0,
  kBadLength,     // a header's length is shorter than the header itself
  kTruncated,     // a header's length runs past the bytes that are there
  kShortPayload,  // a payload shorter than its type needs
};

// Where and why a walk stopped: `length` is what the header said (or the
// payload's size, for kShortPayload), `left` the bytes that were left.
struct Malformed {
  ParseError reason = ParseError::kNone;
  uint32_t length = 0;
  size_t left = 0;
};

// ---- Reading. ----------------------------------------------------------------

// Walks length-prefixed records (NLMSG_OK / NLMSG_NEXT, RTA_OK / RTA_NEXT,
// RTNH_OK / RTNH_NEXT, checked): each record's header says its length,
// header included, and the next record starts at the next 4-byte boundary.
// Fewer bytes than a header at the end are padding; a length shorter than
// the header or longer than what is left stops the walk, and error() says
// why. Record is Message, Attribute or RtNextHop: its kHeaderSize, length()
// (read from a header that is there) and from() (the record's bytes, as long
// as its length says) tell the walker what it walks.
template <class Record>
class Walker {
 public:
  explicit Walker(Bytes bytes) : rest_(bytes) {}

  std::optional<Record> next() {
    if (rest_.size() < Record::kHeaderSize) return std::nullopt;
    const size_t length = Record::length(rest_);
    if (length < Record::kHeaderSize || length > rest_.size()) {
      error_ = {length < Record::kHeaderSize ? ParseError::kBadLength : ParseError::kTruncated,
                static_cast<uint32_t>(length), rest_.size()};
      rest_ = {};
      return std::nullopt;
    }
    Record record = Record::from(rest_.first(length));
    rest_ = rest_.subspan(std::min(align4(length), rest_.size()));
    return record;
  }
  const Malformed& error() const { return error_; }

 private:
  Bytes rest_;
  Malformed error_;
};

struct Message {
  static constexpr size_t kHeaderSize = 16;  // struct nlmsghdr
  uint16_t type = 0, flags = 0;
  uint32_t seq = 0, port = 0;
  Bytes payload;  // after the header, up to its length
  static size_t length(Bytes header);
  static Message from(Bytes record);
};

struct Attribute {
  static constexpr size_t kHeaderSize = 4;  // struct rtattr / nlattr
  uint16_t type = 0;  // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
  Bytes data;
  static size_t length(Bytes header);
  static Attribute from(Bytes record);
};

// The messages of one datagram.
using MessageWalker = Walker<Message>;
// The attributes in a payload (after its fixed header: attributes_after());
// stops at the first one that does not fit.
using AttributeWalker = Walker<Attribute>;

// The attributes that follow a fixed header of `fixed_size` bytes.
Bytes attributes_after(Bytes payload, size_t fixed_size);

// Attribute data by type; nullopt when the size is not the type's.
std::optional<uint32_t> attr_u32(Bytes data);  // host order
std::optional<std::span<const std::byte, 4>> attr_4(Bytes data);
std::optional<std::span<const std::byte, 16>> attr_16(Bytes data);
std::string attr_string(Bytes data);  // up to the first NUL, if any

// The code an NLMSG_ERROR or NLMSG_DONE message carries (0 or -errno);
// nullopt when its payload is too short for one.
std::optional<int32_t> error_code(const Message& message);

// ---- Writing. ----------------------------------------------------------------

class Request {
 public:
  static constexpr size_t kCapacity = 256;

  // A message of `type`; NLM_F_REQUEST is added to `flags`. Sequence number
  // and port id 0 until set.
  Request(uint16_t type, uint16_t flags);

  // Appends fixed-header fields, in host order.
  Request& u8(uint8_t value);
  Request& u16(uint16_t value);
  Request& u32(uint32_t value);
  Request& zeros(size_t count);
  // Appends one attribute, at the next 4-byte boundary.
  Request& attribute(uint16_t type, Bytes data);

  void set_seq(uint32_t seq);
  void set_port(uint32_t port);
  uint32_t seq() const;
  // False once something did not fit; such a request is not sent.
  bool ok() const { return ok_; }
  // The message: its header's length field says how long it is.
  Bytes bytes() const { return Bytes(buf_.data(), size_); }

 private:
  Request& append(const void* data, size_t size);
  void store_length();

  std::array<std::byte, kCapacity> buf_{};
  size_t size_ = 0;
  bool ok_ = true;
};

// ---- Fixed headers (linux/rtnetlink.h, if_addr.h, inet_diag.h). --------------

struct IfAddrMsg {  // struct ifaddrmsg
  static constexpr size_t kSize = 8;
  uint8_t family = 0, prefix_len = 0, flags = 0, scope = 0;
  uint32_t index = 0;
};

struct RtMsg {  // struct rtmsg
  static constexpr size_t kSize = 12;
  uint8_t family = 0, dst_len = 0, src_len = 0, tos = 0, table = 0, protocol = 0, scope = 0, type = 0;
  uint32_t flags = 0;
};

struct IfInfoMsg {  // struct ifinfomsg
  static constexpr size_t kSize = 16;
  uint8_t family = 0;
  uint16_t type = 0;
  int32_t index = 0;
  uint32_t flags = 0, change = 0;
};

struct InetDiagReqV2 {  // struct inet_diag_req_v2; the socket id is left zero
  static constexpr size_t kSize = 56;
  uint8_t family = 0, protocol = 0, ext = 0;
  uint32_t states = 0;
};

struct InetDiagMsg {  // struct inet_diag_msg, the fields we read
  static constexpr size_t kSize = 72;
  uint8_t family = 0, state = 0;
  uint16_t source_port = 0, destination_port = 0;     // host order
  std::array<std::byte, 16> source{}, destination{};  // the first 4 bytes for AF_INET
};

// struct rtnexthop and its attributes: the records of RTA_MULTIPATH, walked
// with Walker<RtNextHop>.
struct RtNextHop {
  static constexpr size_t kHeaderSize = 8;
  uint8_t flags = 0, hops = 0;
  int32_t ifindex = 0;
  Bytes attributes;
  static size_t length(Bytes header);
  static RtNextHop from(Bytes record);
};

// Read a fixed header field by field from the start of a payload; nullopt
// when the payload is shorter than the kernel's struct.
std::optional<IfAddrMsg> parse_ifaddrmsg(Bytes payload);
std::optional<RtMsg> parse_rtmsg(Bytes payload);
std::optional<IfInfoMsg> parse_ifinfomsg(Bytes payload);
std::optional<InetDiagMsg> parse_inet_diag_msg(Bytes payload);

// Append a fixed header to a request, field by field.
void emit(Request& request, const IfAddrMsg& fixed);
void emit(Request& request, const RtMsg& fixed);
void emit(Request& request, const IfInfoMsg& fixed);
void emit(Request& request, const InetDiagReqV2& fixed);

// ---- Talking to the kernel. ----------------------------------------------------

// A netlink socket of `protocol` (NETLINK_ROUTE, NETLINK_SOCK_DIAG), bound so
// that the kernel assigns its port id. Throws SystemError: "cannot open a
// netlink socket", "cannot bind the netlink socket".
Fd open_socket(int protocol);

// Sends `request` (which must carry NLM_F_ACK) and reads the kernel's
// acknowledgement. Returns 0, or an errno: the kernel's, send()'s or
// recv()'s, EMSGSIZE for a request that is not ok(), EPROTO for a reply that
// is not an acknowledgement. System calls only (see the file comment).
int request_ack(int sock, const Request& request) noexcept;

// See "Bounds" in the file comment; every field must be set (> 0).
struct DumpLimits {
  size_t buffer_bytes;
  std::chrono::milliseconds datagram_timeout;
  std::chrono::milliseconds deadline;
  int max_datagrams;
};

enum class DumpError : uint8_t {
  kNone = 0,
  kSend,       // sendto() failed (code: errno; EMSGSIZE for a request not ok())
  kReceive,    // poll() or recvmsg() failed (code: errno)
  kClosed,     // recvmsg() returned 0
  kTimeout,    // no datagram within datagram_timeout
  kDeadline,   // the dump took longer than deadline
  kTooLong,    // more than max_datagrams
  kTruncated,  // a datagram larger than buffer_bytes
  kMalformed,  // bytes that do not parse (malformed says where), or refused by on_message
  kKernel,     // NLMSG_ERROR, or NLMSG_DONE with a negative code (code: errno)
};

struct DumpResult {
  DumpError error = DumpError::kNone;
  int code = 0;
  Malformed malformed;
  bool interrupted = false;  // NLM_F_DUMP_INTR was seen
  bool ok() const { return error == DumpError::kNone; }
};

// Called for each message of the dump; returns ParseError::kNone to go on,
// or why it refused the message (the dump then fails with kMalformed; the
// Malformed it sees has `reason` set to that and `length` to the message's
// payload size).
using OnMessage = std::function<ParseError(const Message&)>;

// One datagram of a dump's reply, for the dump numbered `seq` to `port` (0:
// any port). Calls on_message as described in the file comment. Returns
// kDone at NLMSG_DONE, kMore when the dump goes on, kFailed with `result`
// saying why.
enum class DumpStep { kMore, kDone, kFailed };
DumpStep read_dump_datagram(Bytes datagram, uint32_t seq, uint32_t port, const OnMessage& on_message,
                            DumpResult& result);

class Dumper {
 public:
  // Borrows `fd`, a netlink socket that must outlive the Dumper.
  Dumper(int fd, const DumpLimits& limits);

  // Sends `request` (the caller sets NLM_F_DUMP) with a fresh sequence
  // number and our port id, and reads the reply to its end within the
  // limits.
  DumpResult dump(Request request, const OnMessage& on_message);

 private:
  int fd_;
  DumpLimits limits_;
  uint32_t port_ = 0;  // 0 until known (an unbound socket gets one at its first send)
  std::vector<std::byte> buffer_;
};

}  // namespace slipway::sys::netlink
