// TftpServer: a read-only TFTP server at the gateway address (--tftp DIR),
// for network boot (PXE, iPXE) and small fetches.
//
// Theory of operation
//   The gateway hands it every UDP datagram from the guest to the gateway
//   address (IPv4 or IPv6) on port 69, and any other datagram to the gateway
//   for which owns() says yes (a transfer's own port); everything else still
//   goes to the engine. It is a state machine with time passed in: handle()
//   takes one datagram, poll() the passing of time; both send through the
//   Send callback (the gateway frames the payload as UDP from the gateway
//   address), and next_deadline() says when poll() has work.
//
//   A read request (RRQ, RFC 1350) opens its file (sys/open_beneath.h: below
//   DIR only, no "..", no escaping symlink, only a regular file), picks a
//   random server port (its TID, 49152..65535, unique among the transfers)
//   and answers from it: an OACK (RFC 2347) when the request carried options
//   the server takes, else DATA block 1. Options taken:
//     blksize (RFC 2348): 8..65464, lowered to what one datagram carries on
//       the guest's link (MTU - IP header - 8 - 4); below 8 it is ignored;
//     tsize (RFC 2349): the file's size (octet mode only);
//     timeout (RFC 2349): 1..255 s, the retransmission interval.
//   Others (windowsize, RFC 7440, included) are left out of the OACK, so the
//   client uses the defaults: 512-byte blocks, one block in flight.
//   Transfer states:
//     kSending  one packet (the OACK or a DATA block) is in flight, kept for
//               retransmission. The ACK of its block (0 for the OACK) sends
//               the next block, read from the file then (never the whole
//               file in memory); any other ACK (a duplicate of an earlier
//               one) is ignored, so duplicate ACKs never duplicate DATA
//               (the Sorcerer's Apprentice bug, RFC 1123 §4.2.3.1). With no
//               ACK for the interval (1 s, or the timeout option) the
//               packet is sent again, up to kMaxRetries (5) times; then the
//               transfer is dropped. An ERROR from the client ends it.
//     kLinger   the last block was acknowledged; the file is closed, and for
//               kLingerMs (3 s) stray ACKs from the client to this port are
//               absorbed (not handed to the engine), then it is forgotten.
//   Block numbers are 16 bits on the wire and roll over from 65535 to 0 (as
//   tftp-hpa, busybox, curl and iPXE expect), so files of any size transfer
//   (past 32 MiB at 512-byte blocks); the server counts blocks in 64 bits.
//   Modes: octet, and netascii (LF sent as CR LF, CR as CR NUL, produced
//   block by block as the file is read); others get ERROR 4.
//
//   Refusals (an ERROR, then nothing is kept): a write request (WRQ: ERROR 2,
//   access violation: the server is read-only), a name that leaves DIR or
//   names something other than a regular file (ERROR 2), a file that is not
//   there (ERROR 1), more than max_sessions transfers at once (ERROR 0,
//   "too many transfers"), a malformed request (ERROR 4). A repeated RRQ from
//   a guest port that already has a transfer is ignored (its packet is
//   retransmitted on time). Datagrams to port 69 that are not requests,
//   and unexpected packets on a transfer's port (answered with ERROR 4, the
//   transfer dropped), are counted.
//
// Limits: max_sessions (64) transfers, each holding one open file and one
// packet of at most 4 + blksize bytes: at most 64 x 64 KiB of buffers. No
// windowsize (RFC 7440), no multicast (RFC 2090), no writes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "netstack/engine/ip_addr.h"
#include "netstack/sys/fd.h"
#include "netstack/wire/bytes.h"

namespace slipway::gateway {

struct TftpServerConfig {
  std::string root;  // the directory served (--tftp DIR)
  uint16_t mtu = 1500;  // the guest link's: bounds blksize
  size_t max_sessions = 64;
  uint64_t timeout_ms = 1000;  // the default retransmission interval
};

struct TftpStats {
  uint64_t requests = 0;        // RRQ and WRQ received (repeats ignored not counted)
  uint64_t transfers = 0;       // transfers started
  uint64_t completed = 0;       // last block acknowledged
  uint64_t timed_out = 0;       // dropped after kMaxRetries retransmissions
  uint64_t aborted = 0;         // ended by the client's ERROR or an unexpected packet
  uint64_t retransmits = 0;
  uint64_t duplicate_acks = 0;  // ACKs that were not for the packet in flight (ignored)
  uint64_t bytes_sent = 0;      // file bytes in DATA (first sends, not retransmissions)
  uint64_t not_found = 0, access_denied = 0, write_refused = 0, busy = 0, bad_requests = 0;
  uint64_t dropped = 0;         // datagrams to port 69 that were not requests
};

class TftpServer {
 public:
  static constexpr unsigned kMaxRetries = 5;
  static constexpr uint64_t kLingerMs = 3000;
  static constexpr uint16_t kFirstTid = 49152;
  static constexpr size_t kMaxBlksize = 65464;  // RFC 2348
  static constexpr size_t kDefaultBlksize = 512;

  // A payload for the guest, from the gateway address's port `server_port`
  // to guest:guest_port.
  using Send = std::function<void(const engine::IpAddr& guest, uint16_t guest_port, uint16_t server_port,
                                  wire::Bytes payload)>;

  // Opens config.root (throws std::runtime_error naming it if that is not a
  // directory it can open). `seed` picks the transfers' ports (tests fix it).
  TftpServer(TftpServerConfig config, Send send, uint32_t seed = std::random_device{}());
  ~TftpServer();
  TftpServer(const TftpServer&) = delete;
  TftpServer& operator=(const TftpServer&) = delete;

  // True for a datagram to the gateway the server takes: port 69, or a
  // transfer's port from that transfer's guest address and port.
  bool owns(const engine::IpAddr& guest, uint16_t guest_port, uint16_t server_port) const;
  void handle(const engine::IpAddr& guest, uint16_t guest_port, uint16_t server_port, wire::Bytes payload,
              uint64_t now_ms);
  // Retransmits and expires what is due at now_ms.
  void poll(uint64_t now_ms);
  // When poll() next has work (nullopt: no transfer).
  std::optional<uint64_t> next_deadline() const;

  size_t sessions() const { return sessions_.size(); }
  const TftpStats& stats() const { return stats_; }
  const TftpServerConfig& config() const { return config_; }

 private:
  struct Session;
  void on_request(const engine::IpAddr& guest, uint16_t guest_port, wire::Bytes payload, uint64_t now);
  void on_transfer(Session& s, wire::Bytes payload, uint64_t now);
  // Reads block `s.block` into s.packet; false on a read error (sent as ERROR).
  bool fill_block(Session& s);
  // The file could not be read (errno): ERROR to the guest, the transfer
  // ends (s is erased). Returns false, for fill_block.
  bool fail_read(Session& s);
  void transmit(Session& s, uint64_t now);
  void refuse(const engine::IpAddr& guest, uint16_t guest_port, uint16_t code, const std::string& message);
  std::optional<uint16_t> pick_port();
  void erase(uint16_t tid);

  TftpServerConfig config_;
  Send send_;
  sys::Fd root_;
  std::mt19937 rng_;
  TftpStats stats_;
  std::unordered_map<uint16_t, std::unique_ptr<Session>> sessions_;  // by server port (TID)
};

}  // namespace slipway::gateway
