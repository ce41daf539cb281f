// FlowHost: what a TcpFlow or UdpFlow needs from the engine that owns it.
//
// A flow joins one guest connection (an lwIP pcb, or a guest UDP source) to
// one host socket. It calls back into its engine only through this narrow
// interface: the loop and the clock, the NAT policy, the guest-side stack
// (feed a saved SYN, refuse it, report a destination unreachable, send a
// datagram), the counters, the engine's budget of buffered bytes, the one
// warning a flood may cause (no file descriptors), and "I am closed". The
// engine implements it; tests may implement it to drive a flow alone.
#pragma once

#include <uv.h>

#include <cstdint>
#include <vector>

#include "netstack/engine/engine.h"
#include "netstack/engine/flow_key.h"
#include "netstack/engine/nat.h"
#include "netstack/wire/bytes.h"

namespace slipway::engine {

class TcpFlow;
class UdpFlow;

class FlowHost {
 public:
  virtual ~FlowHost() = default;

  virtual uv_loop_t* loop() const = 0;
  virtual uint64_t now() const = 0;  // the stack's clock, in ms
  virtual const NatPolicy& nat() const = 0;
  virtual EngineStats& counters() = 0;
  // A buffer for host reads, consumed before the read callback returns.
  virtual std::vector<std::byte>& read_buffer() = 0;

  // An IPv4 or IPv6 packet from the guest, given to the guest-side stack
  // now (a SYN held while the host connection was being made).
  virtual void feed(wire::Bytes packet) = 0;
  // RST|ACK to a guest SYN, from the address the guest tried.
  virtual void refuse_syn(const FlowKey& key, uint32_t syn_seq) = 0;
  // ICMP (code4) or ICMPv6 (code6) destination unreachable quoting packet.
  virtual void report_unreachable(wire::Bytes packet, uint8_t code4, uint8_t code6) = 0;
  // The segment size to send to the guest with, given the MSS it announced:
  // larger when the link cuts segments itself (TSO).
  virtual uint16_t segment_size(uint16_t guest_mss) const = 0;
  // A datagram to the guest from src:src_port.
  virtual void send_udp_to_guest(const IpAddr& src, uint16_t src_port, const IpAddr& guest, uint16_t guest_port,
                                 wire::Bytes payload) = 0;

  // The host refused a socket for want of file descriptors (EMFILE, ENFILE;
  // `uv_error` is libuv's code): logged at most once per 10 s (the caller
  // counts it and refuses the guest's flow).
  virtual void out_of_descriptors(const char* what, int uv_error) = 0;

  // The engine's budget of bytes held for all flows
  // (EngineConfig::max_buffered_bytes): a flow reports the change in what
  // it holds, and while the budget is spent it neither reads from its host
  // socket nor reopens the guest's window; it asks to be resumed
  // (TcpFlow::resume()) once the total has fallen again.
  virtual void buffered(int64_t delta) = 0;
  virtual bool buffers_full() const = 0;
  // Whether the guest's link takes more now (Engine::set_link_ready). While
  // it does not, a flow stops reading its host socket and waits the same
  // way (wait_for_buffers; resume() once the link is ready again), but
  // still reopens the guest's window: the other direction is not held up.
  virtual bool link_ready() const = 0;
  virtual void wait_for_buffers(TcpFlow* flow) = 0;

  // Asks for flush() to be called once the current loop iteration's events
  // are handled (the engine batches guest-bound output per iteration).
  virtual void flush_later(TcpFlow* flow) = 0;
  virtual void flush_later(UdpFlow* flow) = 0;

  // The flow is gone from the host side; the host forgets it (the flow
  // deletes itself right after).
  virtual void closed(TcpFlow* flow) = 0;
  virtual void closed(UdpFlow* flow) = 0;
};

}  // namespace slipway::engine
