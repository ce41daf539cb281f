// See tftp.h.
#include "netstack/wire/tftp.h"

#include <algorithm>
#include <cctype>

namespace slipway::wire {

namespace {

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Reads NUL-terminated strings from a packet, bounded.
class StringReader {
 public:
  StringReader(Bytes b, size_t at) : b_(b), at_(at) {}
  bool done() const { return at_ >= b_.size(); }
  // The next string, or nullopt (and *error) if it has no NUL or is too long.
  std::optional<std::string> next(TftpError* error) {
    size_t end = at_;
    while (end < b_.size() && b_[end] != std::byte{0}) ++end;
    if (end >= b_.size()) {
      *error = TftpError::kUnterminated;
      return std::nullopt;
    }
    if (end - at_ > TftpRequest::kMaxString) {
      *error = TftpError::kTooLong;
      return std::nullopt;
    }
    std::string s(reinterpret_cast<const char*>(b_.data() + at_), end - at_);
    at_ = end + 1;
    return s;
  }

 private:
  Bytes b_;
  size_t at_;
};

// option NUL value NUL pairs up to the end.
bool read_options(StringReader& r, std::vector<std::pair<std::string, std::string>>& out, TftpError* error) {
  while (!r.done()) {
    auto name = r.next(error);
    if (!name) return false;
    if (name->empty() || r.done()) {
      *error = TftpError::kBadOption;
      return false;
    }
    auto value = r.next(error);
    if (!value) return false;
    std::string key = lowercase(*name);
    if (std::any_of(out.begin(), out.end(), [&](const auto& kv) { return kv.first == key; })) continue;
    if (out.size() >= TftpRequest::kMaxOptions) {
      *error = TftpError::kTooManyOptions;
      return false;
    }
    out.emplace_back(std::move(key), std::move(*value));
  }
  return true;
}

void put_string(std::vector<std::byte>& out, std::string_view s) {
  for (char c : s) out.push_back(static_cast<std::byte>(c));
  out.push_back(std::byte{0});
}

std::vector<std::byte> header(uint16_t opcode, uint16_t field) {
  std::vector<std::byte> out(4);
  store16(out, 0, opcode);
  store16(out, 2, field);
  return out;
}

}  // namespace

const char* to_string(TftpError e) {
  switch (e) {
    case TftpError::kNone: return "none";
    case TftpError::kTruncated: return "truncated";
    case TftpError::kNotRequest: return "not a request";
    case TftpError::kUnterminated: return "unterminated string";
    case TftpError::kEmptyName: return "empty filename";
    case TftpError::kTooLong: return "string too long";
    case TftpError::kBadOption: return "bad option";
    case TftpError::kTooManyOptions: return "too many options";
  }
  return "?";
}

std::optional<std::string_view> TftpRequest::option(std::string_view name) const {
  for (const auto& [k, v] : options)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

std::optional<TftpRequest> parse_tftp_request(Bytes payload, TftpError* error) {
  TftpError scratch = TftpError::kNone;
  if (error == nullptr) error = &scratch;
  *error = TftpError::kNone;
  if (payload.size() < 4) {
    *error = TftpError::kTruncated;
    return std::nullopt;
  }
  TftpRequest r;
  r.opcode = load16(payload, 0);
  if (r.opcode != tftpop::kRrq && r.opcode != tftpop::kWrq) {
    *error = TftpError::kNotRequest;
    return std::nullopt;
  }
  StringReader reader(payload, 2);
  auto name = reader.next(error);
  if (!name) return std::nullopt;
  if (name->empty()) {
    *error = TftpError::kEmptyName;
    return std::nullopt;
  }
  auto mode = reader.next(error);
  if (!mode) return std::nullopt;
  r.filename = std::move(*name);
  r.mode = lowercase(*mode);
  if (!read_options(reader, r.options, error)) return std::nullopt;
  return r;
}

std::vector<std::byte> emit_tftp_request(const TftpRequest& request) {
  std::vector<std::byte> out(2);
  store16(out, 0, request.opcode);
  put_string(out, request.filename);
  put_string(out, request.mode);
  for (const auto& [k, v] : request.options) {
    put_string(out, k);
    put_string(out, v);
  }
  return out;
}

std::optional<uint16_t> tftp_opcode(Bytes payload) {
  if (payload.size() < 2) return std::nullopt;
  return load16(payload, 0);
}

std::optional<uint16_t> tftp_ack_block(Bytes payload) {
  if (payload.size() < 4 || load16(payload, 0) != tftpop::kAck) return std::nullopt;
  return load16(payload, 2);
}

std::optional<uint16_t> tftp_data_block(Bytes payload) {
  if (payload.size() < 4 || load16(payload, 0) != tftpop::kData) return std::nullopt;
  return load16(payload, 2);
}

Bytes tftp_data_payload(Bytes payload) {
  if (!tftp_data_block(payload)) return {};
  return payload.subspan(4);
}

std::optional<TftpErrorPacket> parse_tftp_error(Bytes payload) {
  if (payload.size() < 4 || load16(payload, 0) != tftpop::kError) return std::nullopt;
  TftpErrorPacket e;
  e.code = load16(payload, 2);
  auto text = payload.subspan(4);
  auto nul = std::find(text.begin(), text.end(), std::byte{0});
  e.message.assign(reinterpret_cast<const char*>(text.data()), static_cast<size_t>(nul - text.begin()));
  return e;
}

std::optional<std::vector<std::pair<std::string, std::string>>> parse_tftp_oack(Bytes payload) {
  if (payload.size() < 2 || load16(payload, 0) != tftpop::kOack) return std::nullopt;
  std::vector<std::pair<std::string, std::string>> out;
  StringReader reader(payload, 2);
  TftpError error = TftpError::kNone;
  if (!read_options(reader, out, &error)) return std::nullopt;
  return out;
}

void emit_tftp_data_header(MutBytes out, uint16_t block) {
  store16(out, 0, tftpop::kData);
  store16(out, 2, block);
}

std::vector<std::byte> emit_tftp_data(uint16_t block, Bytes data) {
  std::vector<std::byte> out(4 + data.size());
  emit_tftp_data_header(out, block);
  std::copy(data.begin(), data.end(), out.begin() + 4);
  return out;
}

std::vector<std::byte> emit_tftp_ack(uint16_t block) { return header(tftpop::kAck, block); }

std::vector<std::byte> emit_tftp_error(uint16_t code, std::string_view message) {
  auto out = header(tftpop::kError, code);
  put_string(out, message);
  return out;
}

std::vector<std::byte> emit_tftp_oack(const std::vector<std::pair<std::string, std::string>>& options) {
  std::vector<std::byte> out(2);
  store16(out, 0, tftpop::kOack);
  for (const auto& [k, v] : options) {
    put_string(out, k);
    put_string(out, v);
  }
  return out;
}

}  // namespace slipway::wire
