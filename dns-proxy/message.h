// DNS wire format (RFC 1035, RFC 6891 EDNS0, RFC 2308 negative answers):
// checked views over untrusted bytes and builders for the answers the proxy
// makes itself.
//
// Theory of operation
// - The proxy relays messages exactly; it only needs to *understand* enough of
//   them to validate a query, match a reply to its query, find the TTLs to
//   decrement when serving from cache, find the negative-caching TTL, and
//   truncate an answer for UDP. Everything else is carried as opaque bytes.
// - Names are kept in uncompressed wire form (length-prefixed labels ending in
//   a zero byte), in their original case; comparisons are case-insensitive
//   (ASCII only, RFC 4343). Text forms exist only for configuration and logs.
// - Name decoding follows compression pointers only backwards (to an offset
//   before the pointer itself, and never into the header), so a pointer loop
//   cannot exist; a jump limit and the 255-byte name limit are kept as well.
//   Labels of the obsolete/extended types (0x40, 0x80) are rejected.
// - Every load is bounds-checked first; nothing here overlays structs on
//   packet bytes, nothing keeps state. Failures return std::nullopt or a
//   small error enum; callers decide whether to answer FORMERR or drop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "netstack/wire/bytes.h"

namespace slipway::dns {

using Bytes = std::span<const std::byte>;

constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxNameWire = 255;
constexpr size_t kClassicUdpSize = 512;
// The largest message: what a UDP payload or a TCP length prefix can hold.
constexpr size_t kMaxMessage = 65535;
// The UDP payload size the proxy advertises in its own EDNS0 answers
// (the DNS flag day 2020 recommendation).
constexpr uint16_t kOwnEdnsUdpSize = 1232;

namespace rrtype {
constexpr uint16_t kA = 1, kNs = 2, kCname = 5, kSoa = 6, kPtr = 12, kMx = 15, kTxt = 16,
                   kAaaa = 28, kSrv = 33, kOpt = 41, kAny = 255;
}
constexpr uint16_t kClassIn = 1;

enum class Rcode : uint8_t { kNoError = 0, kFormErr = 1, kServFail = 2, kNxDomain = 3, kNotImp = 4, kRefused = 5 };

// The 12-byte header. Flag accessors follow RFC 1035 section 4.1.1.
struct Header {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;

  static std::optional<Header> parse(Bytes msg);
  bool qr() const { return (flags & 0x8000) != 0; }
  uint8_t opcode() const { return static_cast<uint8_t>((flags >> 11) & 0xf); }
  bool aa() const { return (flags & 0x0400) != 0; }
  bool tc() const { return (flags & 0x0200) != 0; }
  bool rd() const { return (flags & 0x0100) != 0; }
  bool cd() const { return (flags & 0x0010) != 0; }
  uint8_t rcode() const { return static_cast<uint8_t>(flags & 0xf); }
};

constexpr uint16_t kFlagQr = 0x8000, kFlagAa = 0x0400, kFlagTc = 0x0200, kFlagRd = 0x0100,
                   kFlagRa = 0x0080;

// A name decoded at some offset: its uncompressed wire form and the offset
// just after the name where it was found (after the first pointer, if any).
struct DecodedName {
  std::string wire;
  size_t end = 0;
};
std::optional<DecodedName> read_name(Bytes msg, size_t off);

// Names in wire form (see top). All comparisons ignore ASCII case.
bool name_equal(std::string_view a_wire, std::string_view b_wire);
// True when `name` is `zone` or below it, at a label boundary.
bool name_in_zone(std::string_view name_wire, std::string_view zone_wire);
std::string name_lower(std::string_view wire);
// "host.internal" (a trailing dot is optional; "." or "" is the root) to wire
// form; nullopt for empty labels, labels over 63 bytes or names over 255.
std::optional<std::string> name_from_text(std::string_view text);
// Dotted text for logs, with '.', '\\' and unprintable bytes escaped.
std::string name_to_text(std::string_view wire);

struct Question {
  std::string name;  // wire form
  uint16_t qtype = 0;
  uint16_t qclass = 0;
};

struct Edns {
  uint16_t udp_size = 0;
  bool dnssec_ok = false;
};

enum class QueryError {
  kShort,        // under 12 bytes: no header, drop
  kResponse,     // QR=1: never answer a response (loops), drop
  kNotImpl,      // opcode other than QUERY: NOTIMP
  kQdCount,      // QDCOUNT != 1: FORMERR
  kBadQuestion,  // bad name or truncated question: FORMERR
  kBadRecord,    // a record past the question is malformed: FORMERR
  kBadOpt,       // several OPT records, or OPT not at the root: FORMERR
  kTrailing,     // bytes after the last record: FORMERR
};
const char* to_string(QueryError e);

// A validated query. `question_end` is the offset after the question.
struct Query {
  Header header;
  Question question;
  size_t question_end = 0;
  std::optional<Edns> edns;
  // The largest UDP answer this client takes: 512, or its EDNS0 size.
  size_t max_udp_size() const;
};

// Validates a query; on error, `partial` receives what could be read (the
// header always, the question when it parsed) so that FORMERR can echo it.
struct QueryParse {
  std::optional<Query> query;
  std::optional<QueryError> error;
  std::optional<Header> header;
  std::optional<Question> question;
};
QueryParse parse_query(Bytes msg);

// What the proxy needs from a reply. `records_ok` is false when the sections
// past the question do not parse: such a reply is still relayed, never
// cached.
struct ResponseInfo {
  Header header;
  Question question;
  size_t question_end = 0;
  bool records_ok = false;
  std::vector<size_t> ttl_offsets;   // TTL fields of every record but OPT
  std::optional<uint32_t> min_ttl;   // over those records
  std::optional<uint32_t> soa_negative_ttl;  // min(SOA TTL, SOA MINIMUM) in authority
  std::optional<size_t> opt_offset;  // start of the OPT record
  size_t opt_size = 0;
};
std::optional<ResponseInfo> parse_response(Bytes msg);

bool same_question(const Question& a, const Question& b);

// One record for the proxy's own answers; its owner is the question name.
struct Record {
  uint16_t type = 0;
  uint32_t ttl = 0;
  std::vector<std::byte> rdata;
};

// An answer to `query` made by the proxy: QR, RA, RD and opcode copied, AA as
// given, the question echoed, `answers` owned by the question name, and an
// OPT record when the query had one.
std::vector<std::byte> build_answer(const Query& query, Rcode rcode, bool authoritative,
                                    std::span<const Record> answers = {});
// An error answer from whatever of the query could be read (at least the
// header); the question is echoed when given.
std::vector<std::byte> build_error(const Header& header, const Question* question, Rcode rcode);

// Returns `response` unchanged if it fits in `limit` bytes; otherwise the
// header with TC=1 and the question (and the OPT record, if any), no other
// records, so that the client retries over TCP.
std::vector<std::byte> truncate_for_udp(std::span<const std::byte> response, size_t limit);

// DNS over TCP (RFC 1035 §4.2.2): `msg` (at most kMaxMessage bytes)
// preceded by its length, two bytes big-endian.
std::vector<std::byte> tcp_framed(Bytes msg);

// The address literal as rdata: 4 bytes (A) or 16 bytes (AAAA).
struct AddressRdata {
  uint16_t type = 0;
  std::vector<std::byte> rdata;
};
std::optional<AddressRdata> address_rdata(const std::string& literal);

}  // namespace slipway::dns
