// DNS wire format: parsing of untrusted queries and replies, and the
// proxy's own answers. See message.h for the theory of operation.
#include "dns-proxy/message.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cassert>
#include <iterator>

namespace slipway::dns {

using wire::load16;
using wire::load32;
using wire::load8;
using wire::store16;
using wire::store32;
using wire::store8;

namespace {

// More jumps than a 255-byte name has labels cannot be legitimate.
constexpr int kMaxJumps = 128;

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Skips one resource record at `off`; returns the offset after it, and the
// offsets the caller may need.
struct RecordView {
  size_t start = 0;
  size_t type_off = 0;  // type, class, TTL, rdlength follow the name
  uint16_t type = 0;
  uint16_t rclass = 0;
  uint32_t ttl = 0;
  size_t rdata_off = 0;
  uint16_t rdlength = 0;
  size_t end = 0;
  bool root_owner = false;
};
std::optional<RecordView> read_record(Bytes msg, size_t off) {
  auto name = read_name(msg, off);
  if (!name) return std::nullopt;
  RecordView r;
  r.start = off;
  r.root_owner = name->wire.size() == 1;
  r.type_off = name->end;
  if (r.type_off + 10 > msg.size()) return std::nullopt;
  r.type = load16(msg, r.type_off);
  r.rclass = load16(msg, r.type_off + 2);
  r.ttl = load32(msg, r.type_off + 4);
  r.rdlength = load16(msg, r.type_off + 8);
  r.rdata_off = r.type_off + 10;
  if (r.rdata_off + r.rdlength > msg.size()) return std::nullopt;
  r.end = r.rdata_off + r.rdlength;
  return r;
}

std::optional<Question> read_question(Bytes msg, size_t off, size_t& end) {
  auto name = read_name(msg, off);
  if (!name || name->end + 4 > msg.size()) return std::nullopt;
  Question q;
  q.name = std::move(name->wire);
  q.qtype = load16(msg, name->end);
  q.qclass = load16(msg, name->end + 2);
  end = name->end + 4;
  return q;
}

// The header (RFC 1035 §4.1.1) is six 16-bit fields, in this order from
// offset 0; Header::parse() and put_header() both follow this table.
constexpr uint16_t Header::*kHeaderFields[] = {&Header::id,      &Header::flags,   &Header::qdcount,
                                               &Header::ancount, &Header::nscount, &Header::arcount};
static_assert(std::size(kHeaderFields) * 2 == kHeaderSize);

void put_header(std::vector<std::byte>& out, const Header& header) {
  wire::MutBytes h = wire::grow(out, kHeaderSize);
  for (size_t i = 0; i < std::size(kHeaderFields); ++i) store16(h, 2 * i, header.*kHeaderFields[i]);
}

// A question (RFC 1035 §4.1.2): the name (wire form), then type(0) and
// class(2).
void put_question(std::vector<std::byte>& out, const Question& q) {
  const auto name = std::as_bytes(std::span(q.name));
  out.insert(out.end(), name.begin(), name.end());
  wire::MutBytes t = wire::grow(out, 4);
  store16(t, 0, q.qtype);
  store16(t, 2, q.qclass);
}

uint16_t answer_flags(const Header& q, Rcode rcode, bool aa) {
  uint16_t f = kFlagQr | kFlagRa;
  f = static_cast<uint16_t>(f | (q.flags & 0x7800));  // opcode
  f = static_cast<uint16_t>(f | (q.flags & kFlagRd));
  if (aa) f = static_cast<uint16_t>(f | kFlagAa);
  return static_cast<uint16_t>(f | static_cast<uint16_t>(rcode));
}

}  // namespace

std::optional<Header> Header::parse(Bytes msg) {
  if (msg.size() < kHeaderSize) return std::nullopt;
  Header h;
  for (size_t i = 0; i < std::size(kHeaderFields); ++i) h.*kHeaderFields[i] = load16(msg, 2 * i);
  return h;
}

std::optional<DecodedName> read_name(Bytes msg, size_t off) {
  DecodedName out;
  size_t pos = off;
  bool jumped = false;
  int jumps = 0;
  for (;;) {
    if (pos >= msg.size()) return std::nullopt;
    uint8_t len = load8(msg, pos);
    if ((len & 0xc0) == 0xc0) {
      if (pos + 1 >= msg.size()) return std::nullopt;
      size_t target = load16(msg, pos) & 0x3fffu;
      // Only backwards, and never into the header: loops are impossible.
      if (target >= pos || target < kHeaderSize || ++jumps > kMaxJumps) return std::nullopt;
      if (!jumped) out.end = pos + 2;
      jumped = true;
      pos = target;
      continue;
    }
    if ((len & 0xc0) != 0) return std::nullopt;  // 0x40/0x80: extended label types
    if (pos + 1 + len > msg.size()) return std::nullopt;
    if (out.wire.size() + 1 + len > kMaxNameWire) return std::nullopt;
    out.wire.push_back(static_cast<char>(len));
    for (size_t i = 0; i < len; ++i) out.wire.push_back(static_cast<char>(msg[pos + 1 + i]));
    pos += 1 + len;
    if (len == 0) break;
  }
  if (!jumped) out.end = pos;
  return out;
}

bool name_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

bool name_in_zone(std::string_view name, std::string_view zone) {
  size_t pos = 0;
  while (pos < name.size()) {
    if (name.size() - pos == zone.size() && name_equal(name.substr(pos), zone)) return true;
    uint8_t len = static_cast<uint8_t>(name[pos]);
    if (len == 0) break;
    pos += 1 + len;
  }
  return false;
}

std::string name_lower(std::string_view wire) {
  std::string out(wire);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

std::optional<std::string> name_from_text(std::string_view text) {
  if (!text.empty() && text.back() == '.') text.remove_suffix(1);
  std::string out;
  while (!text.empty()) {
    size_t dot = text.find('.');
    std::string_view label = text.substr(0, dot);
    if (label.empty() || label.size() > 63) return std::nullopt;
    out.push_back(static_cast<char>(label.size()));
    out.append(label);
    text = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
    if (dot != std::string_view::npos && text.empty()) return std::nullopt;
  }
  out.push_back('\0');
  if (out.size() > kMaxNameWire) return std::nullopt;
  return out;
}

std::string name_to_text(std::string_view wire) {
  std::string out;
  size_t pos = 0;
  while (pos < wire.size()) {
    size_t len = static_cast<uint8_t>(wire[pos]);
    if (len == 0) break;
    for (size_t i = 0; i < len && pos + 1 + i < wire.size(); ++i) {
      auto c = static_cast<unsigned char>(wire[pos + 1 + i]);
      if (c == '.' || c == '\\') {
        out.push_back('\\');
        out.push_back(static_cast<char>(c));
      } else if (c <= 0x20 || c >= 0x7f) {
        char buf[5];
        snprintf(buf, sizeof buf, "\\%03u", c);
        out.append(buf);
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
    out.push_back('.');
    pos += 1 + len;
  }
  if (out.empty()) out = ".";
  return out;
}

const char* to_string(QueryError e) {
  switch (e) {
    case QueryError::kShort: return "shorter than a header";
    case QueryError::kResponse: return "QR=1 (a response, not a query)";
    case QueryError::kNotImpl: return "opcode not QUERY";
    case QueryError::kQdCount: return "QDCOUNT != 1";
    case QueryError::kBadQuestion: return "malformed question";
    case QueryError::kBadRecord: return "malformed record";
    case QueryError::kBadOpt: return "malformed OPT";
    case QueryError::kTrailing: return "trailing bytes";
  }
  return "?";
}

size_t Query::max_udp_size() const {
  if (!edns) return kClassicUdpSize;
  return std::max<size_t>(kClassicUdpSize, edns->udp_size);
}

QueryParse parse_query(Bytes msg) {
  QueryParse p;
  p.header = Header::parse(msg);
  if (!p.header) {
    p.error = QueryError::kShort;
    return p;
  }
  const Header& h = *p.header;
  if (h.qr()) {
    p.error = QueryError::kResponse;
    return p;
  }
  if (h.opcode() != 0) {
    p.error = QueryError::kNotImpl;
    return p;
  }
  if (h.qdcount != 1) {
    p.error = QueryError::kQdCount;
    return p;
  }
  size_t off = 0;
  p.question = read_question(msg, kHeaderSize, off);
  if (!p.question) {
    p.error = QueryError::kBadQuestion;
    return p;
  }
  Query q;
  q.header = h;
  q.question = *p.question;
  q.question_end = off;
  size_t records = size_t{h.ancount} + h.nscount + h.arcount;
  for (size_t i = 0; i < records; ++i) {
    auto r = read_record(msg, off);
    if (!r) {
      p.error = QueryError::kBadRecord;
      return p;
    }
    if (r->type == rrtype::kOpt) {
      bool in_additional = i >= size_t{h.ancount} + h.nscount;
      if (!in_additional || !r->root_owner || q.edns) {
        p.error = QueryError::kBadOpt;
        return p;
      }
      q.edns = Edns{r->rclass, (r->ttl & 0x8000) != 0};
    }
    off = r->end;
  }
  if (off != msg.size()) {
    p.error = QueryError::kTrailing;
    return p;
  }
  p.query = std::move(q);
  return p;
}

std::optional<ResponseInfo> parse_response(Bytes msg) {
  auto h = Header::parse(msg);
  if (!h || !h->qr() || h->qdcount != 1) return std::nullopt;
  ResponseInfo info;
  info.header = *h;
  size_t off = 0;
  auto q = read_question(msg, kHeaderSize, off);
  if (!q) return std::nullopt;
  info.question = std::move(*q);
  info.question_end = off;
  size_t an = h->ancount, ns = h->nscount, records = an + ns + h->arcount;
  for (size_t i = 0; i < records; ++i) {
    auto r = read_record(msg, off);
    if (!r) return info;  // records_ok stays false
    if (r->type == rrtype::kOpt) {
      info.opt_offset = r->start;
      info.opt_size = r->end - r->start;
    } else {
      info.ttl_offsets.push_back(r->type_off + 4);
      info.min_ttl = std::min(info.min_ttl.value_or(r->ttl), r->ttl);
      if (r->type == rrtype::kSoa && i >= an && i < an + ns) {
        // MNAME and RNAME (possibly compressed), then five 32-bit fields.
        auto mname = read_name(msg, r->rdata_off);
        auto rname = mname ? read_name(msg, mname->end) : std::nullopt;
        if (rname && rname->end + 20 <= r->end) {
          uint32_t minimum = load32(msg, rname->end + 16);
          info.soa_negative_ttl = std::min(r->ttl, minimum);
        }
      }
    }
    off = r->end;
  }
  info.records_ok = off == msg.size();
  return info;
}

bool same_question(const Question& a, const Question& b) {
  return a.qtype == b.qtype && a.qclass == b.qclass && name_equal(a.name, b.name);
}

std::vector<std::byte> build_answer(const Query& query, Rcode rcode, bool authoritative,
                                    std::span<const Record> answers) {
  std::vector<std::byte> out;
  out.reserve(kHeaderSize + query.question.name.size() + 4 + answers.size() * 28 + 11);
  put_header(out, Header{.id = query.header.id,
                         .flags = answer_flags(query.header, rcode, authoritative),
                         .qdcount = 1,
                         .ancount = static_cast<uint16_t>(answers.size()),
                         .arcount = static_cast<uint16_t>(query.edns ? 1 : 0)});
  put_question(out, query.question);
  for (const Record& r : answers) {
    // RFC 1035 §4.1.3: owner (a pointer to the question name), type(2)
    // class(4) TTL(6) rdlength(10), rdata(12).
    wire::MutBytes rr = wire::grow(out, 12);
    store16(rr, 0, 0xc000 | kHeaderSize);
    store16(rr, 2, r.type);
    store16(rr, 4, query.question.qclass);
    store32(rr, 6, r.ttl);
    store16(rr, 10, static_cast<uint16_t>(r.rdata.size()));
    out.insert(out.end(), r.rdata.begin(), r.rdata.end());
  }
  if (query.edns) {
    // RFC 6891 §6.1.2: root owner(0), type OPT(1), our UDP size as the
    // class(3), extended rcode, version and the DO flag as the TTL(5), no
    // options (rdlength(9) 0).
    wire::MutBytes opt = wire::grow(out, 11);
    store8(opt, 0, 0);
    store16(opt, 1, rrtype::kOpt);
    store16(opt, 3, kOwnEdnsUdpSize);
    store32(opt, 5, query.edns->dnssec_ok ? 0x8000 : 0);
    store16(opt, 9, 0);
  }
  return out;
}

std::vector<std::byte> build_error(const Header& header, const Question* question, Rcode rcode) {
  std::vector<std::byte> out;
  put_header(out, Header{.id = header.id,
                         .flags = answer_flags(header, rcode, false),
                         .qdcount = static_cast<uint16_t>(question ? 1 : 0)});
  if (question) put_question(out, *question);
  return out;
}

std::vector<std::byte> truncate_for_udp(std::span<const std::byte> response, size_t limit) {
  if (response.size() <= limit) return {response.begin(), response.end()};
  std::vector<std::byte> out;
  auto info = parse_response(response);
  if (!info) {
    // Not even a question to echo: the header alone, TC set, nothing else.
    out.assign(response.begin(), response.begin() + static_cast<ptrdiff_t>(std::min(response.size(), kHeaderSize)));
    if (out.size() < kHeaderSize) return out;
    store16(out, 2, static_cast<uint16_t>(load16(out, 2) | kFlagTc));
    for (size_t off = 4; off < kHeaderSize; off += 2) store16(out, off, 0);
    return out;
  }
  out.assign(response.begin(), response.begin() + static_cast<ptrdiff_t>(info->question_end));
  store16(out, 2, static_cast<uint16_t>(info->header.flags | kFlagTc));
  store16(out, 6, 0);
  store16(out, 8, 0);
  store16(out, 10, 0);
  if (info->opt_offset && response[*info->opt_offset] == std::byte{0} &&
      out.size() + info->opt_size <= limit) {
    auto opt = response.subspan(*info->opt_offset, info->opt_size);
    out.insert(out.end(), opt.begin(), opt.end());
    store16(out, 10, 1);
  }
  return out;
}

std::vector<std::byte> tcp_framed(Bytes msg) {
  assert(msg.size() <= kMaxMessage);
  std::vector<std::byte> out(2 + msg.size());
  store16(out, 0, static_cast<uint16_t>(msg.size()));
  std::copy(msg.begin(), msg.end(), out.begin() + 2);
  return out;
}

std::optional<AddressRdata> address_rdata(const std::string& literal) {
  AddressRdata out;
  unsigned char buf[16];
  if (inet_pton(AF_INET, literal.c_str(), buf) == 1) {
    out.type = rrtype::kA;
    out.rdata.assign(reinterpret_cast<const std::byte*>(buf), reinterpret_cast<const std::byte*>(buf) + 4);
    return out;
  }
  if (inet_pton(AF_INET6, literal.c_str(), buf) == 1) {
    out.type = rrtype::kAaaa;
    out.rdata.assign(reinterpret_cast<const std::byte*>(buf), reinterpret_cast<const std::byte*>(buf) + 16);
    return out;
  }
  return std::nullopt;
}

}  // namespace slipway::dns
