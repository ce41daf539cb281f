// TFTP server; the theory of operation is in tftp_server.h.
#include "netstack/gateway/tftp_server.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "netstack/sys/open_beneath.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/ipv6.h"
#include "netstack/wire/tftp.h"
#include "netstack/wire/udp.h"

namespace slipway::gateway {

namespace {

constexpr size_t kTftpHeader = 4;

// A decimal option value in [lo, hi]; nullopt for anything else.
std::optional<uint64_t> number(std::string_view v, uint64_t lo, uint64_t hi) {
  if (v.empty() || v.size() > 10) return std::nullopt;
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < lo || n > hi) return std::nullopt;
  return n;
}

}  // namespace

struct TftpServer::Session {
  engine::IpAddr guest;
  uint16_t guest_port = 0;
  uint16_t tid = 0;
  enum class State { kSending, kLinger } state = State::kSending;
  sys::Fd file;
  std::string name;
  bool netascii = false;
  size_t blksize = kDefaultBlksize;
  uint64_t timeout_ms = 1000;
  // The block in flight, counted from 0 (the OACK) without rolling over;
  // the wire carries its low 16 bits.
  uint64_t block = 0;
  bool last = false;                 // the block in flight is the final one
  std::vector<std::byte> packet;     // the packet in flight
  unsigned retries = 0;
  uint64_t deadline = 0;
  // octet: the next block is read at (block - 1) * blksize. netascii: the
  // file is read in order from `offset`; `pending` is the second byte of a
  // CR LF / CR NUL pair that did not fit the last block (-1: none).
  uint64_t offset = 0;
  int pending = -1;
};

TftpServer::TftpServer(TftpServerConfig config, Send send, uint32_t seed)
    : config_(std::move(config)), send_(std::move(send)), rng_(seed) {
  int fd = ::open(config_.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    throw std::runtime_error("--tftp: cannot open the directory '" + config_.root + "': " + std::strerror(errno));
  root_.reset(fd);
}

TftpServer::~TftpServer() = default;

bool TftpServer::owns(const engine::IpAddr& guest, uint16_t guest_port, uint16_t server_port) const {
  if (server_port == wire::kTftpPort) return true;
  auto it = sessions_.find(server_port);
  return it != sessions_.end() && it->second->guest == guest && it->second->guest_port == guest_port;
}

void TftpServer::handle(const engine::IpAddr& guest, uint16_t guest_port, uint16_t server_port, wire::Bytes payload,
                        uint64_t now_ms) {
  if (server_port == wire::kTftpPort) {
    on_request(guest, guest_port, payload, now_ms);
    return;
  }
  auto it = sessions_.find(server_port);
  if (it == sessions_.end() || !(it->second->guest == guest) || it->second->guest_port != guest_port) return;
  on_transfer(*it->second, payload, now_ms);
}

void TftpServer::refuse(const engine::IpAddr& guest, uint16_t guest_port, uint16_t code, const std::string& message) {
  // From a port of its own, as a transfer would answer (RFC 1350 §4).
  auto port = pick_port();
  auto packet = wire::emit_tftp_error(code, message);
  send_(guest, guest_port, port.value_or(wire::kTftpPort), packet);
}

std::optional<uint16_t> TftpServer::pick_port() {
  std::uniform_int_distribution<uint32_t> dist(kFirstTid, 65535);
  for (int i = 0; i < 64; ++i) {
    auto p = static_cast<uint16_t>(dist(rng_));
    if (!sessions_.count(p)) return p;
  }
  for (uint32_t p = kFirstTid; p <= 65535; ++p)
    if (!sessions_.count(static_cast<uint16_t>(p))) return static_cast<uint16_t>(p);
  return std::nullopt;
}

void TftpServer::on_request(const engine::IpAddr& guest, uint16_t guest_port, wire::Bytes payload, uint64_t now) {
  wire::TftpError error = wire::TftpError::kNone;
  auto req = wire::parse_tftp_request(payload, &error);
  if (!req) {
    if (error == wire::TftpError::kNotRequest || error == wire::TftpError::kTruncated) {
      stats_.dropped++;  // an ACK, DATA or ERROR to port 69, or noise
      spdlog::trace("tftp: dropping a datagram to port 69 from {}: {}", guest.endpoint(guest_port),
                    wire::to_string(error));
      return;
    }
    stats_.bad_requests++;
    refuse(guest, guest_port, wire::tftperr::kIllegalOperation, std::string("malformed request: ") + wire::to_string(error));
    return;
  }
  // A retransmitted request: the transfer already answers it on time.
  for (const auto& [tid, s] : sessions_)
    if (s->guest == guest && s->guest_port == guest_port && s->state == Session::State::kSending) return;
  stats_.requests++;
  if (req->opcode == wire::tftpop::kWrq) {
    stats_.write_refused++;
    refuse(guest, guest_port, wire::tftperr::kAccessViolation, "read-only server");
    return;
  }
  if (req->mode != "octet" && req->mode != "netascii") {
    stats_.bad_requests++;
    refuse(guest, guest_port, wire::tftperr::kIllegalOperation, "unsupported mode '" + req->mode + "'");
    return;
  }
  // Room for one more: lingering transfers give way first.
  if (sessions_.size() >= config_.max_sessions) {
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      if (it->second->state == Session::State::kLinger) {
        sessions_.erase(it);
        break;
      }
    }
  }
  if (sessions_.size() >= config_.max_sessions) {
    stats_.busy++;
    refuse(guest, guest_port, wire::tftperr::kNotDefined, "too many transfers");
    return;
  }
  auto opened = sys::open_beneath(root_.get(), req->filename);
  if (!opened) {
    spdlog::debug("tftp: {} asked for '{}': {}", guest.endpoint(guest_port), req->filename,
                  sys::to_string(opened.error));
    if (opened.error == sys::OpenBeneath::Error::kNotFound) {
      stats_.not_found++;
      refuse(guest, guest_port, wire::tftperr::kFileNotFound, "file not found");
    } else {
      stats_.access_denied++;
      refuse(guest, guest_port, wire::tftperr::kAccessViolation, sys::to_string(opened.error));
    }
    return;
  }
  auto tid = pick_port();
  if (!tid) {
    stats_.busy++;
    refuse(guest, guest_port, wire::tftperr::kNotDefined, "too many transfers");
    return;
  }
  auto s = std::make_unique<Session>();
  s->guest = guest;
  s->guest_port = guest_port;
  s->tid = *tid;
  s->file = std::move(opened.fd);
  s->name = req->filename;
  s->netascii = req->mode == "netascii";
  s->timeout_ms = config_.timeout_ms;
  const size_t ip_header = guest.v6 ? wire::Ipv6Header::kLen : wire::Ipv4Header::kLen;
  const size_t link_max = config_.mtu > ip_header + wire::UdpDatagram::kHeaderLen + kTftpHeader
                              ? config_.mtu - ip_header - wire::UdpDatagram::kHeaderLen - kTftpHeader
                              : kDefaultBlksize;
  std::vector<std::pair<std::string, std::string>> accepted;
  if (auto v = req->option("blksize")) {
    if (auto n = number(*v, 8, 65535)) {
      s->blksize = std::min<uint64_t>({*n, kMaxBlksize, std::max<size_t>(link_max, 8)});
      accepted.emplace_back("blksize", std::to_string(s->blksize));
    }
  }
  if (auto v = req->option("tsize"); v && !s->netascii) accepted.emplace_back("tsize", std::to_string(opened.size));
  if (auto v = req->option("timeout")) {
    if (auto n = number(*v, 1, 255)) {
      s->timeout_ms = *n * 1000;
      accepted.emplace_back("timeout", std::to_string(*n));
    }
  }
  stats_.transfers++;
  spdlog::debug("tftp: {} reads '{}' ({} bytes, blksize {}) from port {}", guest.endpoint(guest_port), req->filename,
                opened.size, s->blksize, s->tid);
  Session& ref = *s;
  sessions_.emplace(*tid, std::move(s));
  if (!accepted.empty()) {
    ref.block = 0;
    ref.packet = wire::emit_tftp_oack(accepted);
  } else {
    ref.block = 1;
    if (!fill_block(ref)) return;
  }
  transmit(ref, now);
}

bool TftpServer::fail_read(Session& s) {
  spdlog::warn("tftp: reading '{}': {}", s.name, std::strerror(errno));
  send_(s.guest, s.guest_port, s.tid, wire::emit_tftp_error(wire::tftperr::kNotDefined, "read error"));
  stats_.aborted++;
  erase(s.tid);  // s is gone from here on
  return false;
}

bool TftpServer::fill_block(Session& s) {
  s.packet.resize(kTftpHeader + s.blksize);
  wire::emit_tftp_data_header(s.packet, static_cast<uint16_t>(s.block));
  std::byte* out = s.packet.data() + kTftpHeader;
  size_t n = 0;
  if (!s.netascii) {
    const uint64_t at = (s.block - 1) * s.blksize;
    while (n < s.blksize) {
      ssize_t r = ::pread(s.file.get(), out + n, s.blksize - n, static_cast<off_t>(at + n));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return fail_read(s);
      if (r == 0) break;
      n += static_cast<size_t>(r);
    }
  } else {
    std::byte chunk[4096];
    if (s.pending >= 0 && n < s.blksize) {
      out[n++] = static_cast<std::byte>(s.pending);
      s.pending = -1;
    }
    while (n < s.blksize) {
      ssize_t r = ::pread(s.file.get(), chunk, std::min(sizeof chunk, s.blksize - n), static_cast<off_t>(s.offset));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return fail_read(s);
      if (r == 0) break;
      // Translate until the block is full; what was not used is read again.
      ssize_t used = 0;
      for (; used < r && n < s.blksize; ++used) {
        auto c = static_cast<unsigned char>(chunk[used]);
        if (c == '\n' || c == '\r') {
          out[n++] = std::byte{'\r'};
          int second = c == '\n' ? '\n' : 0;
          if (n < s.blksize) {
            out[n++] = static_cast<std::byte>(second);
          } else {
            s.pending = second;
          }
        } else {
          out[n++] = chunk[used];
        }
      }
      s.offset += static_cast<uint64_t>(used);
    }
  }
  s.packet.resize(kTftpHeader + n);
  s.last = n < s.blksize;
  stats_.bytes_sent += n;
  return true;
}

void TftpServer::transmit(Session& s, uint64_t now) {
  s.retries = 0;
  s.deadline = now + s.timeout_ms;
  send_(s.guest, s.guest_port, s.tid, s.packet);
}

void TftpServer::on_transfer(Session& s, wire::Bytes payload, uint64_t now) {
  if (s.state == Session::State::kLinger) return;  // a stray ACK after the end
  auto op = wire::tftp_opcode(payload);
  if (op == wire::tftpop::kError) {
    auto e = wire::parse_tftp_error(payload);
    spdlog::debug("tftp: {} ended the transfer of '{}': {} {}", s.guest.endpoint(s.guest_port), s.name,
                  e ? e->code : 0, e ? e->message : "");
    stats_.aborted++;
    erase(s.tid);
    return;
  }
  auto ack = wire::tftp_ack_block(payload);
  if (!ack) {
    stats_.aborted++;
    send_(s.guest, s.guest_port, s.tid, wire::emit_tftp_error(wire::tftperr::kIllegalOperation, "expected an ACK"));
    erase(s.tid);
    return;
  }
  if (*ack != static_cast<uint16_t>(s.block)) {
    stats_.duplicate_acks++;  // an earlier block's: never answered (Sorcerer's Apprentice)
    return;
  }
  if (s.block > 0 && s.last) {
    stats_.completed++;
    spdlog::debug("tftp: {} has '{}'", s.guest.endpoint(s.guest_port), s.name);
    s.state = Session::State::kLinger;
    s.file.reset();
    s.packet = {};
    s.packet.shrink_to_fit();
    s.deadline = now + kLingerMs;
    return;
  }
  s.block++;
  if (!fill_block(s)) return;
  transmit(s, now);
}

void TftpServer::poll(uint64_t now_ms) {
  std::vector<uint16_t> due;
  for (const auto& [tid, s] : sessions_)
    if (s->deadline <= now_ms) due.push_back(tid);
  for (uint16_t tid : due) {
    auto it = sessions_.find(tid);
    if (it == sessions_.end()) continue;
    Session& s = *it->second;
    if (s.state == Session::State::kLinger) {
      erase(tid);
      continue;
    }
    if (s.retries >= kMaxRetries) {
      stats_.timed_out++;
      spdlog::debug("tftp: {} stopped answering for '{}'; transfer dropped", s.guest.endpoint(s.guest_port), s.name);
      erase(tid);
      continue;
    }
    s.retries++;
    stats_.retransmits++;
    s.deadline = now_ms + s.timeout_ms;
    send_(s.guest, s.guest_port, s.tid, s.packet);
  }
}

std::optional<uint64_t> TftpServer::next_deadline() const {
  std::optional<uint64_t> next;
  for (const auto& [tid, s] : sessions_)
    if (!next || s->deadline < *next) next = s->deadline;
  return next;
}

void TftpServer::erase(uint16_t tid) { sessions_.erase(tid); }

}  // namespace slipway::gateway
