// TcpFlow: one guest TCP connection spliced to one host TCP socket (or a
// unix socket: a guest forward's unix: target, connect_unix()).
//
// States (what is allowed in each):
//   kConnecting   the host socket is connecting; the guest's SYN is saved and
//                 not yet given to lwIP. Guest SYN retransmissions are dropped;
//                 a guest RST cancels. Success -> kAccepting (the SYN is fed to
//                 lwIP). Refused -> RST to the guest; unreachable -> ICMP
//                 unreachable; then closed.
//   kAccepting    lwIP has the SYN and answers SYN-ACK; the flow waits for
//                 lwIP to accept the connection (the guest's final ACK). A
//                 guest RST that lwIP accepts (its sequence number is the
//                 SYN's + 1: the guest's kernel answering a SYN-ACK it does
//                 not expect, after an aborted or spoofed SYN) cancels the
//                 flow at once: the host connection is reset.
//   kConnectingGuest  (inbound, from a published port) the host connection
//                 is accepted; lwIP is connecting to the guest. The guest's
//                 SYN-ACK -> kEstablished; its RST -> the host connection is
//                 reset.
//   kEstablished  data both ways. Guest -> host: lwIP's recv callback writes
//                 to the host socket at once, straight from lwIP's pbufs (what
//                 the socket does not take waits in a write request that
//                 holds them: no copy); the bytes are acknowledged to lwIP
//                 (tcp_recved, which reopens the guest's window) only once the
//                 host socket has taken them, so a slow host reader closes
//                 the guest's window. Host -> guest: reads go into lwIP's send
//                 buffer and are sent at the end of the loop iteration
//                 (flush(): one tcp_output for all of an iteration's reads,
//                 and the FIN in the same segment when the host's EOF is
//                 already queued behind them); when the buffer is full the
//                 host socket stops being read until lwIP reports data
//                 acknowledged by the guest. It also stops, after the read
//                 that found it so, while the guest's link is not ready
//                 (FlowHost::link_ready(): the transport's queue for the
//                 guest is over its high-water mark), until resume().
//   kClosed       both handles are being closed; the object is deleted in the
//                 host socket's close callback.
//
// Half-close: a guest FIN becomes shutdown(SHUT_WR) on the host socket once
// every byte before it was written; host EOF becomes a FIN to the guest once
// every byte before it is queued in lwIP. The flow closes when both
// directions are finished. RST: a guest RST resets the host socket
// (SO_LINGER 0); a host reset or error aborts the lwIP pcb, which sends RST.
//
// Memory per flow is bounded by lwIP's window and send buffer (TCP_WND,
// TCP_SND_BUF: 2 MiB each) plus at most one host read not yet taken by lwIP
// (256 KiB). What the flow holds (guest bytes not yet taken by the host
// socket, host bytes not yet acknowledged by the guest) is reported to the
// engine's budget (FlowHost::buffered); while that budget is spent, the
// flow stops reading from the host and keeps the guest's window closed
// (the bytes it would reopen it by are owed), until resume().
//
// Host sockets: a socket the host refuses for want of file descriptors
// (EMFILE, ENFILE) refuses the guest's SYN with RST, counted (tcp_no_fd)
// and logged at most once per 10 s (FlowHost::out_of_descriptors).
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>
#include <vector>

#include "netstack/engine/flow_key.h"
#include "netstack/wire/bytes.h"

struct tcp_pcb;
struct pbuf;

namespace slipway::engine {

class FlowHost;

class TcpFlow {
 public:
  // flush() looks for a host EOF behind the data in the first this many reads.
  static constexpr uint32_t kEofPeekReads = 8;
  enum class State { kConnecting, kAccepting, kConnectingGuest, kEstablished, kClosed };

  // Outbound: the guest's SYN, to be relayed to a host destination.
  TcpFlow(FlowHost& host, const FlowKey& key, wire::Bytes syn_packet, uint32_t syn_seq, uint64_t now);
  // Inbound: a connection accepted on a host listener, to be relayed to the
  // guest. Accepts it into this flow; false (flow deleted) on failure.
  static TcpFlow* accept_inbound(FlowHost& host, uv_stream_t* listener, uint64_t now);
  // The client's address as the host sees it (inbound flows).
  bool peer_address(IpAddr* addr, uint16_t* port) const;
  // Inbound: lwIP connects `pcb` (bound to the source the guest will see) to
  // the guest; the flow's key becomes `key`.
  void connect_guest(struct tcp_pcb* pcb, const FlowKey& key);
  TcpFlow(const TcpFlow&) = delete;
  TcpFlow& operator=(const TcpFlow&) = delete;

  // Starts connecting to the host address. Failure is reported to the guest
  // like a failed connect and the flow closes itself.
  void connect(const IpAddr& host, uint16_t port);
  // The same to a unix socket (a guest forward's unix: target).
  void connect_unix(const std::string& path);
  // The same to a command run by /bin/sh -c (a guest forward's cmd:
  // target): its stdin, stdout and stderr are one end of a socketpair, the
  // flow's socket the other; the command is not waited for (libuv reaps it).
  void connect_command(const std::string& command);
  // lwIP accepted the guest's connection for this flow.
  void attach(struct tcp_pcb* pcb);
  // Sends what host reads queued in lwIP during this loop iteration; if the
  // host socket has meanwhile closed behind them, with the FIN in the same
  // segment (see flush_later()).
  void flush();
  // Closes without telling anyone (engine shutdown, timeouts).
  void close();
  // Resets both sides: RST to the guest (once lwIP has the connection) and
  // to the host socket (an inbound connection refused at the flow limit).
  void reset() { abort_guest(); }
  // The engine is going away: from now on the flow only finishes closing
  // and never calls it back (call before close()).
  void orphan() { host_ = nullptr; }
  // A guest RST arrived while connecting or accepting: the host connection
  // is reset.
  void cancel();
  // The engine's buffer budget has room again (FlowHost::wait_for_buffers).
  void resume();

  State state() const { return state_; }
  const FlowKey& key() const { return key_; }
  uint32_t syn_seq() const { return syn_seq_; }
  bool waiting_for_buffers() const { return waiting_buffers_; }
  uint64_t started() const { return started_; }
  bool inbound() const { return inbound_; }
  uint64_t bytes_to_host() const { return bytes_to_host_; }
  uint64_t bytes_to_guest() const { return bytes_to_guest_; }
  // Which guest opened the flow, for the engine's per-guest limits
  // (Engine::set_guest_identity; Engine::kNoGuest with one guest).
  uint32_t guest_id() const { return guest_id_; }
  void set_guest_id(uint32_t id) { guest_id_ = id; }

 private:
  // A host socket that could not even be set up: RST to the guest, and the
  // flow deletes itself.
  void refuse_unopened();
  friend struct TcpFlowCallbacks;
  ~TcpFlow() = default;  // deleted only from the close callback

  TcpFlow(FlowHost& host, uint64_t now);
  void connect_failed(int status);
  void guest_data(struct pbuf* p);
  void guest_fin();
  // flush: send now (false when a FIN follows at once, to go with the data).
  void host_data(const std::byte* data, size_t len, bool flush = true);
  // The host socket holds an EOF behind what was read (a non-blocking peek).
  bool eof_queued() const;
  void host_eof();
  void host_written(size_t len, int status);
  void guest_acked();
  void push_to_guest();
  size_t write_to_lwip(const std::byte* data, size_t len, bool flush = true);  // bytes lwIP took
  void after_push();
  void maybe_shutdown_host();
  void maybe_finish();
  void abort_guest();            // RST to the guest, then close
  void detach_pcb();
  void close_socket(bool reset);
  void start_reading();
  void stop_reading();
  // Reopens the guest's window by n bytes, or owes them while the engine's
  // buffer budget is spent.
  void open_window(size_t n);
  // Reports what the flow holds now to the engine's budget.
  void account();
  void wait_for_buffers();

  FlowHost* host_;  // null once the engine is gone (orphan())
  FlowKey key_;
  State state_ = State::kConnecting;
  uint64_t started_;
  // The host socket: TCP, or a unix socket for a guest forward's unix: or
  // cmd: target (unix_).
  union Socket {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } sock_;
  bool unix_ = false;
  uv_connect_t connect_req_;
  uv_shutdown_t shutdown_req_;
  struct tcp_pcb* pcb_ = nullptr;
  std::vector<std::byte> syn_;        // the guest's SYN while connecting
  uint32_t syn_seq_ = 0;
  std::vector<std::byte> to_guest_;   // host bytes lwIP could not take yet
  size_t to_host_inflight_ = 0;       // bytes in uv_write requests
  bool socket_open_ = false;
  bool reading_ = false;
  bool guest_fin_ = false;            // guest sent FIN
  bool host_shutdown_ = false;        // shutdown(SHUT_WR) requested on the host socket
  bool host_eof_ = false;             // host sent EOF
  bool fin_to_guest_ = false;         // FIN queued in lwIP
  bool closing_ = false;
  // tcp_abort() was called on the pcb: a callback lwIP is running must
  // return ERR_ABRT, or lwIP goes on using the freed pcb. (The flow itself
  // lives until its socket's close callback.)
  bool pcb_aborted_ = false;
  bool inbound_ = false;
  bool flush_pending_ = false;        // registered with FlowHost::flush_later()
  uint32_t host_reads_ = 0;           // reads from the host socket so far
  size_t accounted_ = 0;              // bytes reported to FlowHost::buffered
  size_t owed_window_ = 0;            // guest bytes taken but not yet tcp_recved (budget spent)
  bool waiting_buffers_ = false;      // registered with FlowHost::wait_for_buffers
  uint64_t bytes_to_host_ = 0, bytes_to_guest_ = 0;
  uint32_t guest_id_ = ~uint32_t{0};  // Engine::kNoGuest
};

}  // namespace slipway::engine
