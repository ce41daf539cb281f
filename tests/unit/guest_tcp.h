// A scripted guest TCP endpoint for the engine tests: the test plays the
// guest's side of one connection by hand, packet by packet, against an
// EngineRig (engine_rig.h).
//
// What it does: send a SYN (with MSS and window-scale options), take the
// engine's SYN-ACK and complete the handshake, send queued data within the
// window the engine advertises (in segments of at most `segment_size` and
// the engine's MSS), acknowledge what it receives in order, send FIN or RST.
// It advertises a receive window of `rcv_capacity` minus the bytes its
// application has not read: with `app_reading` off, received bytes stay
// unread and the window closes, as a guest application that stops reading
// would make it. It never retransmits (the link is lossless) and keeps
// every segment the engine sent on this connection, for assertions.
//
// To make the engine retransmit, `drop_data_segments` loses the next data
// segments it sends (as if the link had dropped them), and `drop_offsets`
// loses the first segment to carry each of the given stream offsets.
//
// As a Linux guest does, `reassemble` keeps out-of-order data and ACKs every
// data segment at once (so that a hole draws duplicate ACKs), and `sack`
// (which implies it) offers SACK in the SYN and puts SACK blocks (RFC 2018,
// at most three, the lowest first) on those ACKs.
//
// What it checks as it goes (counters for the test to assert on): TCP
// checksums, data beyond the window it advertised, segments out of order.
//
// poll() processes the engine's packets for this connection that arrived
// since the last call, then answers; it is called from the test's loop
// step, never from inside the engine.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine_rig.h"

namespace slipway::test {

class GuestTcp {
 public:
  // One segment the engine sent on this connection.
  struct Segment {
    uint8_t flags = 0;
    uint32_t seq = 0, ack = 0;
    uint16_t window_field = 0;
    uint64_t window = 0;  // in bytes (scaled, except on SYN-ACK)
    size_t len = 0;
  };

  // Knobs, set before use.
  uint8_t wscale = 7;               // window scale offered in the SYN
  uint16_t mss = 65000;             // MSS offered in the SYN
  size_t segment_size = 32 * 1024;  // largest data segment sent
  uint64_t rcv_capacity = 4 << 20;  // the guest's receive buffer
  bool app_reading = true;          // false: received bytes stay unread
  bool complete_handshake = true;   // false: never ACK the SYN-ACK
  bool auto_ack = true;             // ACK what arrives
  size_t drop_data_segments = 0;    // the next N data segments are lost on the way
  std::set<size_t> drop_offsets;    // the first segment carrying each offset is lost
  bool reassemble = false;          // keep out-of-order data, ACK each data segment
  bool sack = false;                // offer SACK and send SACK blocks (implies reassemble)
  std::vector<std::pair<uint32_t, uint32_t>> false_sacks;  // stream offsets [first, second) claimed too

  // State.
  uint32_t iss = 0, snd_una = 0, snd_nxt = 0;
  uint32_t irs = 0, rcv_nxt = 0;
  uint8_t peer_wscale = 0;
  uint16_t peer_mss = 536;
  uint64_t peer_window = 0;
  bool got_syn_ack = false, established = false, got_rst = false, got_fin = false;
  std::vector<std::byte> received;  // every in-order byte, read or not
  size_t unread = 0;                // of received, not yet read by the application
  std::vector<Segment> segments;    // everything the engine sent on this connection
  size_t bad_checksums = 0, beyond_window = 0, out_of_order = 0, lost = 0;
  uint32_t last_ack_sent = 0;  // the acknowledgment number of the guest's latest segment

  GuestTcp(EngineRig& rig, IpAddr guest, uint16_t guest_port, IpAddr remote, uint16_t remote_port)
      : rig_(rig), guest_(guest), guest_port_(guest_port), remote_(remote), remote_port_(remote_port) {}

  uint16_t guest_port() const { return guest_port_; }
  uint16_t remote_port() const { return remote_port_; }

  // Sends (or resends) the SYN.
  void syn(uint32_t initial_seq = 1000) {
    iss = initial_seq;
    snd_una = iss;
    snd_nxt = iss + 1;
    std::vector<std::byte> opts(8);
    wire::store8(opts, 0, 2);  // MSS
    wire::store8(opts, 1, 4);
    wire::store16(opts, 2, mss);
    wire::store8(opts, 4, 1);  // NOP
    wire::store8(opts, 5, 3);  // window scale
    wire::store8(opts, 6, 3);
    wire::store8(opts, 7, wscale);
    if (sack) {
      for (uint8_t b : {1, 1, 4, 2}) opts.push_back(std::byte{b});  // NOP NOP SACK-permitted
    }
    transmit(iss, 0, wire::tcpflag::kSyn, 0xffff, opts, {});
  }
  // Queues data, sent by poll() as the window allows.
  void send(wire::Bytes data) { to_send_.insert(to_send_.end(), data.begin(), data.end()); }
  // FIN once every queued byte is sent.
  void fin() { fin_wanted_ = true; }
  void rst() { transmit(snd_nxt, rcv_nxt, wire::tcpflag::kRst | wire::tcpflag::kAck, 0, {}, {}); }
  void ack() { transmit(snd_nxt, rcv_nxt, wire::tcpflag::kAck, window_field(), sack_blocks(), {}); }
  // Completes a handshake held back with complete_handshake = false.
  void complete() {
    complete_handshake = established = true;
    ack();
  }
  // The application reads everything received (and goes on reading, or
  // not): the window opens and the guest says so.
  void read_all(bool keep_reading = true) {
    app_reading = keep_reading;
    if (unread == 0) return;
    unread = 0;
    ack();  // window update
  }

  bool all_sent() const { return sent_ == to_send_.size() && (!fin_wanted_ || fin_sent_); }
  bool all_acked() const { return all_sent() && snd_una == snd_nxt; }
  size_t bytes_sent() const { return sent_; }
  // Data bytes the guest has acknowledged.
  size_t bytes_acknowledged_by_guest() const {
    if (!established) return 0;
    uint32_t n = last_ack_sent - (irs + 1);
    if (got_fin && last_ack_sent == rcv_nxt) n--;  // the FIN's sequence number
    return n;
  }
  // Data bytes the engine has acknowledged.
  size_t bytes_acked() const {
    size_t acked = static_cast<uint32_t>(snd_una - (iss + 1));
    return std::min(acked, sent_);
  }
  const Segment* last_segment() const { return segments.empty() ? nullptr : &segments.back(); }
  size_t count(uint8_t flags_mask, uint8_t flags) const {
    return static_cast<size_t>(std::count_if(segments.begin(), segments.end(),
                                             [&](const Segment& s) { return (s.flags & flags_mask) == flags; }));
  }

  // Takes the engine's new packets for this connection and answers them;
  // then sends what the window allows. True if anything happened.
  bool poll() {
    bool progress = false;
    uint32_t rcv_before = rcv_nxt;
    bool must_ack = false;
    for (; cursor_ < rig_.out.size(); ++cursor_) {
      auto p = GuestPacket::parse(rig_.out[cursor_]);
      if (!p || p->protocol != wire::ipproto::kTcp || !(p->src == remote_) || !(p->dst == guest_)) continue;
      auto seg = wire::TcpSegment::parse(p->l4());
      if (!seg || seg->src_port() != remote_port_ || seg->dst_port() != guest_port_) continue;
      if (!l4_checksum_ok(p->src, p->dst, wire::ipproto::kTcp, p->l4())) bad_checksums++;
      progress = true;
      bool data = !seg->payload().empty();
      bool want = take(*seg);
      if (want && data && auto_ack && (reassemble || sack)) {
        ack();  // every data segment, at once
      } else {
        must_ack |= want;
      }
    }
    if (established) progress |= transmit_queued();
    bool acks_each = reassemble || sack;
    if (auto_ack && established && ((rcv_nxt != rcv_before && !acks_each) || must_ack) && !sent_data_this_poll_)
      ack();
    sent_data_this_poll_ = false;
    return progress;
  }

 private:
  // One segment from the engine; true if it calls for an ACK.
  bool take(const wire::TcpSegment& seg) {
    uint8_t f = seg.flags();
    Segment s{f, seg.seq(), seg.ack(), seg.window(), seg.window(), seg.payload().size()};
    if ((f & wire::tcpflag::kSyn) == 0) s.window = uint64_t{seg.window()} << peer_wscale;
    segments.push_back(s);
    if (f & wire::tcpflag::kRst) {
      got_rst = true;
      return false;
    }
    if ((f & (wire::tcpflag::kSyn | wire::tcpflag::kAck)) == (wire::tcpflag::kSyn | wire::tcpflag::kAck)) {
      if (seg.ack() != iss + 1) return false;
      if (!got_syn_ack) {
        got_syn_ack = true;
        irs = seg.seq();
        rcv_nxt = irs + 1;
        parse_options(seg.options());
        peer_window = seg.window();
        snd_una = seg.ack();
      }
      if (!complete_handshake) return false;
      established = true;
      return true;  // the handshake's ACK (again, for a retransmitted SYN-ACK)
    }
    if (!established) return false;
    if (f & wire::tcpflag::kAck) {
      if (static_cast<int32_t>(seg.ack() - snd_una) >= 0 && static_cast<int32_t>(seg.ack() - snd_nxt) <= 0)
        snd_una = seg.ack();
      peer_window = s.window;
    }
    if (!seg.payload().empty() && drop_data_segments > 0) {
      drop_data_segments--;
      lost++;
      return false;
    }
    if (!seg.payload().empty()) {
      const uint32_t begin = seg.seq() - (irs + 1), end = begin + static_cast<uint32_t>(seg.payload().size());
      auto hit = drop_offsets.lower_bound(begin);
      if (hit != drop_offsets.end() && *hit < end) {
        drop_offsets.erase(hit);
        lost++;
        return false;
      }
    }
    bool want_ack = false;
    wire::Bytes data = seg.payload();
    uint32_t seq = seg.seq();
    if (!data.empty()) {
      want_ack = true;
      int32_t skip = static_cast<int32_t>(rcv_nxt - seq);
      if (skip < 0) {
        out_of_order++;
        if (reassemble || sack) ooo_.emplace(seq - (irs + 1), std::vector<std::byte>(data.begin(), data.end()));
        return true;
      }
      if (static_cast<size_t>(skip) < data.size()) {
        data = data.subspan(static_cast<size_t>(skip));
        size_t room = rcv_capacity > unread ? rcv_capacity - unread : 0;
        if (data.size() > room) {
          beyond_window++;
          data = data.first(room);
        }
        received.insert(received.end(), data.begin(), data.end());
        rcv_nxt += static_cast<uint32_t>(data.size());
        if (!app_reading) unread += data.size();
        take_reassembled();
      }
      seq = seg.seq() + static_cast<uint32_t>(seg.payload().size());
    }
    if ((f & wire::tcpflag::kFin) && seq == rcv_nxt && !got_fin) {
      got_fin = true;
      rcv_nxt++;
      want_ack = true;
    }
    return want_ack;
  }

  void parse_options(wire::Bytes o) {
    for (size_t i = 0; i < o.size();) {
      uint8_t kind = wire::load8(o, i);
      if (kind == 0) break;
      if (kind == 1) {
        ++i;
        continue;
      }
      if (i + 1 >= o.size()) break;
      uint8_t len = wire::load8(o, i + 1);
      if (len < 2 || i + len > o.size()) break;
      if (kind == 2 && len == 4) peer_mss = wire::load16(o, i + 2);
      if (kind == 3 && len == 3) peer_wscale = wire::load8(o, i + 2);
      i += len;
    }
  }

  // Moves out-of-order data that now follows rcv_nxt into `received`.
  void take_reassembled() {
    while (!ooo_.empty()) {
      auto it = ooo_.begin();
      const uint32_t at = rcv_nxt - (irs + 1);
      if (it->first > at) break;
      const size_t skip = at - it->first;
      if (skip < it->second.size()) {
        received.insert(received.end(), it->second.begin() + static_cast<std::ptrdiff_t>(skip), it->second.end());
        rcv_nxt += static_cast<uint32_t>(it->second.size() - skip);
        if (!app_reading) unread += it->second.size() - skip;
      }
      ooo_.erase(it);
    }
  }

  // NOP NOP and up to three SACK blocks for the out-of-order data held.
  std::vector<std::byte> sack_blocks() const {
    std::vector<std::byte> o;
    if (!sack || (ooo_.empty() && false_sacks.empty())) return o;
    std::vector<std::pair<uint32_t, uint32_t>> blocks = false_sacks;  // offsets [first, second)
    for (const auto& [off, bytes] : ooo_) {
      const uint32_t end = off + static_cast<uint32_t>(bytes.size());
      if (!blocks.empty() && blocks.size() > false_sacks.size() && off <= blocks.back().second)
        blocks.back().second = std::max(blocks.back().second, end);
      else
        blocks.emplace_back(off, end);
    }
    if (blocks.size() > 3) blocks.resize(3);
    o.resize(2 + 2 + 8 * blocks.size());
    wire::store8(o, 0, 1);
    wire::store8(o, 1, 1);
    wire::store8(o, 2, 5);
    wire::store8(o, 3, static_cast<uint8_t>(2 + 8 * blocks.size()));
    for (size_t i = 0; i < blocks.size(); ++i) {
      wire::store32(o, 4 + 8 * i, irs + 1 + blocks[i].first);
      wire::store32(o, 8 + 8 * i, irs + 1 + blocks[i].second);
    }
    return o;
  }

  uint16_t window_field() const {
    uint64_t free = rcv_capacity > unread ? rcv_capacity - unread : 0;
    return static_cast<uint16_t>(std::min<uint64_t>(free >> wscale, 0xffff));
  }

  // Data (and FIN) within the engine's window.
  bool transmit_queued() {
    bool any = false;
    while (sent_ < to_send_.size()) {
      uint64_t in_flight = static_cast<uint32_t>(snd_nxt - snd_una);
      if (in_flight >= peer_window) break;
      size_t n = std::min(
          {to_send_.size() - sent_, segment_size, size_t{peer_mss}, static_cast<size_t>(peer_window - in_flight)});
      wire::Bytes chunk = wire::Bytes(to_send_).subspan(sent_, n);
      transmit(snd_nxt, rcv_nxt, wire::tcpflag::kAck | wire::tcpflag::kPsh, window_field(), {}, chunk);
      snd_nxt += static_cast<uint32_t>(n);
      sent_ += n;
      any = sent_data_this_poll_ = true;
    }
    if (fin_wanted_ && !fin_sent_ && sent_ == to_send_.size()) {
      transmit(snd_nxt, rcv_nxt, wire::tcpflag::kFin | wire::tcpflag::kAck, window_field(), {}, {});
      snd_nxt++;
      fin_sent_ = any = sent_data_this_poll_ = true;
    }
    return any;
  }

  void transmit(uint32_t seq, uint32_t ack, uint8_t flags, uint16_t window, wire::Bytes options, wire::Bytes payload) {
    size_t hlen = wire::TcpSegment::kMinHeaderLen + options.size();
    std::vector<std::byte> l4(hlen + payload.size());
    wire::store16(l4, 0, guest_port_);
    wire::store16(l4, 2, remote_port_);
    wire::store32(l4, 4, seq);
    wire::store32(l4, 8, ack);
    wire::store8(l4, 12, static_cast<uint8_t>((hlen / 4) << 4));
    wire::store8(l4, 13, flags);
    wire::store16(l4, 14, window);
    std::copy(options.begin(), options.end(), l4.begin() + wire::TcpSegment::kMinHeaderLen);
    std::copy(payload.begin(), payload.end(), l4.begin() + static_cast<std::ptrdiff_t>(hlen));
    if (flags & wire::tcpflag::kAck) last_ack_sent = ack;
    rig_.input(guest_ip_packet(guest_, remote_, wire::ipproto::kTcp, std::move(l4), 16));
  }

  EngineRig& rig_;
  IpAddr guest_;
  uint16_t guest_port_;
  IpAddr remote_;
  uint16_t remote_port_;
  size_t cursor_ = 0;  // next packet of rig_.out to look at
  std::map<uint32_t, std::vector<std::byte>> ooo_;  // out-of-order data by stream offset
  std::vector<std::byte> to_send_;
  size_t sent_ = 0;
  bool fin_wanted_ = false, fin_sent_ = false;
  bool sent_data_this_poll_ = false;
};

// Pumps the loop, letting the guest answer and (given one) the host peer
// read, until pred() holds; false after max_ms.
template <class Pred>
bool converse(EngineRig& rig, GuestTcp& g, HostConn* host, Pred pred, int max_ms = 3000) {
  return rig.run_until(
      [&] {
        g.poll();
        if (host != nullptr) host->read_some();
        return pred();
      },
      max_ms);
}

// Waits for `g`'s handshake to complete and accepts the host side of the
// connection from `listener`.
inline HostConn await_established(EngineRig& rig, GuestTcp& g, HostListener& listener, int max_ms = 3000) {
  HostConn host;
  bool ok = rig.run_until(
      [&] {
        g.poll();
        if (!host.fd) host.fd = listener.accept();
        return g.established && static_cast<bool>(host.fd);
      },
      max_ms);
  REQUIRE(ok);
  return host;
}

// Opens `g` to `listener` (the guest's SYN, the engine's SYN-ACK, the
// guest's ACK) and accepts the host side of the connection.
inline HostConn establish(EngineRig& rig, GuestTcp& g, HostListener& listener, uint32_t iss = 1000) {
  g.syn(iss);
  return await_established(rig, g, listener);
}

// Sends `up` from the guest and `down` from the host at the same time and
// checks that each arrives intact, in order, with valid checksums.
inline void exchange(EngineRig& rig, GuestTcp& g, HostConn& host, wire::Bytes up, wire::Bytes down) {
  const size_t host_had = host.received.size(), guest_had = g.received.size();
  g.send(up);
  size_t off = 0;
  bool done = rig.run_until(
      [&] {
        g.poll();
        host.read_some();
        host.write_some(down, &off);
        return host.received.size() >= host_had + up.size() && g.received.size() >= guest_had + down.size();
      },
      5000);
  REQUIRE(done);
  CHECK(first_difference(wire::Bytes(host.received).subspan(host_had), up) == kSame);
  CHECK(first_difference(wire::Bytes(g.received).subspan(guest_had), down) == kSame);
  CHECK(g.bad_checksums == 0);
  CHECK(g.out_of_order == 0);
  CHECK(g.beyond_window == 0);
}

// A fixture (TEST_CASE_METHOD): an engine and one guest connection, from
// the guest's port 40000 through the gateway address to a host listener on
// 127.0.0.1. Set the guest's knobs, then open() completes the handshake and
// accepts the host side.
struct GuestConnection {
  EngineRig rig;
  HostListener listener;
  GuestTcp g{rig, kGuest4, 40000, kGateway4, listener.port()};
  HostConn host;

  void open() { host = establish(rig, g, listener); }
};

// `p` is the engine's refusal of a guest SYN: a valid RST|ACK from
// src:src_port to guest:guest_port acknowledging `ack` (the SYN's seq + 1).
inline void check_refusal(const GuestPacket& p, const IpAddr& src, uint16_t src_port, const IpAddr& guest,
                          uint16_t guest_port, uint32_t ack) {
  CHECK(p.src == src);
  CHECK(p.dst == guest);
  REQUIRE(p.protocol == wire::ipproto::kTcp);
  auto seg = wire::TcpSegment::parse(p.l4());
  REQUIRE(seg);
  CHECK(l4_checksum_ok(p.src, p.dst, wire::ipproto::kTcp, p.l4()));
  CHECK(seg->flags() == (wire::tcpflag::kRst | wire::tcpflag::kAck));
  CHECK(seg->src_port() == src_port);
  CHECK(seg->dst_port() == guest_port);
  CHECK(seg->ack() == ack);
}

// The state of the engine's only TCP flow ("none" without one).
inline std::string tcp_flow_state(EngineRig& rig) {
  for (const auto& f : rig.engine().flows())
    if (std::string(f.proto) == "tcp") return f.state;
  return "none";
}

}  // namespace slipway::test
