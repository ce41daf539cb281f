// TFTP (RFC 1350) with option negotiation (RFC 2347, 2348, 2349): the
// packets a read-only server reads and writes. No state.
//
// Every packet starts with a 2-byte opcode:
//   RRQ/WRQ  1/2  filename NUL mode NUL [option NUL value NUL]...
//   DATA     3    block(2) data (0..blksize bytes; shorter than blksize: the last)
//   ACK      4    block(2)
//   ERROR    5    code(2) message NUL
//   OACK     6    [option NUL value NUL]...
// parse_tftp_request() reads an RRQ or WRQ and refuses (TftpError): fewer
// than 4 bytes, another opcode, a filename or mode without its NUL, an empty
// filename, a string longer than kMaxString (512 bytes, RFC 1350's limit on
// a request), an option without a value, more than kMaxOptions (16)
// options. Mode and option names are compared case-insensitively (RFC 1350,
// 2347) and returned lowercased; a repeated option keeps its first value.
// Options are returned as given: the server decides which it understands.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "netstack/wire/bytes.h"

namespace slipway::wire {

inline constexpr uint16_t kTftpPort = 69;

namespace tftpop {
constexpr uint16_t kRrq = 1, kWrq = 2, kData = 3, kAck = 4, kError = 5, kOack = 6;
}

namespace tftperr {
constexpr uint16_t kNotDefined = 0, kFileNotFound = 1, kAccessViolation = 2, kDiskFull = 3, kIllegalOperation = 4,
                   kUnknownTid = 5, kFileExists = 6, kNoSuchUser = 7, kOptionRefused = 8;
}

enum class TftpError : uint8_t {
  kNone,
  kTruncated,     // shorter than an opcode and a field
  kNotRequest,    // an opcode other than RRQ or WRQ
  kUnterminated,  // a string without its NUL
  kEmptyName,     // an empty filename
  kTooLong,       // a string longer than kMaxString
  kBadOption,     // an option without a value, or an empty option name
  kTooManyOptions,
};
const char* to_string(TftpError e);

struct TftpRequest {
  static constexpr size_t kMaxString = 512;
  static constexpr size_t kMaxOptions = 16;

  uint16_t opcode = tftpop::kRrq;
  std::string filename;  // as sent (the server checks it)
  std::string mode;      // lowercased: "octet", "netascii", "mail", ...
  std::vector<std::pair<std::string, std::string>> options;  // names lowercased, in order

  // The value of option `name` (lowercase), if the request carries it.
  std::optional<std::string_view> option(std::string_view name) const;
};

std::optional<TftpRequest> parse_tftp_request(Bytes payload, TftpError* error = nullptr);
std::vector<std::byte> emit_tftp_request(const TftpRequest& request);  // for tests and clients

// The opcode of any packet (nullopt below 2 bytes).
std::optional<uint16_t> tftp_opcode(Bytes payload);
// The block number of an ACK or DATA (nullopt if shorter than 4 bytes or
// another opcode).
std::optional<uint16_t> tftp_ack_block(Bytes payload);
std::optional<uint16_t> tftp_data_block(Bytes payload);
// DATA's payload after the 4-byte header (empty for other packets).
Bytes tftp_data_payload(Bytes payload);
struct TftpErrorPacket {
  uint16_t code = 0;
  std::string message;
};
// An ERROR packet (the message may lack its NUL; it is cut at the first NUL).
std::optional<TftpErrorPacket> parse_tftp_error(Bytes payload);
// The options of an OACK (nullopt if malformed, as for a request's).
std::optional<std::vector<std::pair<std::string, std::string>>> parse_tftp_oack(Bytes payload);

// Writes a DATA header (opcode, block) into out[0..4); the data follows.
void emit_tftp_data_header(MutBytes out, uint16_t block);
std::vector<std::byte> emit_tftp_data(uint16_t block, Bytes data);
std::vector<std::byte> emit_tftp_ack(uint16_t block);
std::vector<std::byte> emit_tftp_error(uint16_t code, std::string_view message);
std::vector<std::byte> emit_tftp_oack(const std::vector<std::pair<std::string, std::string>>& options);

}  // namespace slipway::wire
