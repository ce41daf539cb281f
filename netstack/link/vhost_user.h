// VhostUserPort: slipway as a vhost-user-net backend (QEMU -netdev
// vhost-user, cloud-hypervisor --net vhost_user=true).
//
// slipway listens on a unix socket; one frontend at a time connects (a second
// one is refused and closed while the first is served). The frontend sends
// requests (vhost_user_msg.h): features, the guest memory table (fds we mmap
// MAP_SHARED), and for each of the two queues (0 receive, 1 transmit) its
// size, ring addresses, base index, a kick eventfd (guest -> us) and a call
// eventfd (us -> guest). The device logic is VirtioNetDevice.
//
// Offered: VIRTIO_F_VERSION_1, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_RING_F_EVENT_IDX,
// VIRTIO_RING_F_INDIRECT_DESC, VHOST_USER_F_PROTOCOL_FEATURES, and the
// offloads both ways: CSUM, HOST_TSO4/6, HOST_ECN (the guest may send
// partial checksums and TCP segments of up to 64 KiB, which go to the
// gateway as they are), GUEST_CSUM, GUEST_TSO4/6, GUEST_ECN (the guest takes
// them: capabilities() follow what the frontend negotiated, so the engine
// sends large segments only to a guest that takes them, and send() finishes
// them in software for one that does not); protocol feature REPLY_ACK only
// (no MQ, no CONFIG, no LOG_ALL: SET_LOG_BASE/FD are refused).
//
// Connection states: listening (no frontend: send() drops and counts) ->
// connected (messages handled; a queue runs once it has memory, rings, a
// kick fd and is enabled — with PROTOCOL_FEATURES, by SET_VRING_ENABLE;
// GET_VRING_BASE stops it) -> closed (EOF, a malformed message, an unknown
// request, a ring error): memory unmapped, fds closed, rings reset, back to
// listening. A misbehaving frontend costs a log line and its connection.
//
// Frames for the guest: delivered into the receive ring at once; when the
// ring has no free buffer they wait, in order, in a FrameQueue bounded at
// kMaxQueuedBytes (4 MiB) and kMaxQueuedFrames (4096), beyond which they are
// dropped and counted (tx_queue_full), and the queue drains when the guest
// adds buffers: the receive queue's kick (which an empty ring asks for with
// avail_event under EVENT_IDX). Over Port::kTxHighWater the port is not
// ready (port.h), so the engine stops feeding it. A frame that cannot fit
// whatever the guest adds (VirtioNetDevice's kTooLarge) is dropped; with no
// frontend, or before the receive ring runs, frames are dropped too, and the
// queue is emptied (dropped, counted) when the frontend goes or stops the
// ring (GET_VRING_BASE, RESET_OWNER): nothing would drain it.
//
// Bounds per wake-up: kMaxMessagesPerWake messages; VirtioNetDevice's
// kMaxFramesPerKick transmitted frames, after which an idle handle re-runs
// the queue on the next loop iteration (so the loop is never starved); on a
// receive kick, at most the queue (what the ring takes). Reads
// take exactly one message at a time (header, then payload) so the fds that
// arrive belong to the message being read. No timeouts: a frontend may stay
// connected and idle forever.
#pragma once

#include <uv.h>

#include <memory>
#include <string>

#include "netstack/link/frame_queue.h"
#include "netstack/link/polled_fd.h"
#include "netstack/link/port.h"
#include "netstack/link/vhost_user_msg.h"
#include "netstack/link/virtio_net_device.h"

namespace slipway::link {

class VhostUserPort : public Port {
 public:
  static constexpr int kMaxMessagesPerWake = 32;
  static constexpr size_t kMaxQueuedBytes = 4u << 20;
  static constexpr size_t kMaxQueuedFrames = 4096;
  static constexpr uint64_t kOffloadFeatures =
      vhost_user::kFeatureCsum | vhost_user::kFeatureGuestCsum | vhost_user::kFeatureGuestTso4 |
      vhost_user::kFeatureGuestTso6 | vhost_user::kFeatureGuestEcn | vhost_user::kFeatureHostTso4 |
      vhost_user::kFeatureHostTso6 | vhost_user::kFeatureHostEcn;
  static constexpr uint64_t kFeatures = vhost_user::kFeatureVersion1 | vhost_user::kFeatureMrgRxbuf |
                                        vhost_user::kFeatureEventIdx | vhost_user::kFeatureIndirectDesc |
                                        vhost_user::kFeatureProtocolFeatures | kOffloadFeatures;
  static constexpr uint64_t kProtocolFeatures = vhost_user::kProtocolReplyAck;

  struct Stats {
    uint64_t connections = 0;
    uint64_t refused = 0;          // a second frontend while one is served
    uint64_t protocol_errors = 0;  // connections closed for a bad message
  };

  // Listens on path (throws std::runtime_error). mtu bounds guest frames.
  static std::unique_ptr<VhostUserPort> listen(uv_loop_t* loop, const std::string& path, size_t mtu);
  // No listener: serve connections handed in with adopt() (tests, benchmark).
  VhostUserPort(uv_loop_t* loop, size_t mtu);
  ~VhostUserPort() override;

  // Serves the connected socket fd (takes ownership), replacing any frontend.
  void adopt(int fd);
  bool transmit(Frame frame, const Offload& offload) override;

  bool connected() const { return conn_ != nullptr; }
  const Stats& vhost_stats() const { return vstats_; }
  const VirtioNetDevice::Stats& device_stats() const { return device_.stats(); }
  // Frames (and their bytes) waiting for the guest's receive buffers.
  size_t queued_frames() const { return rx_backlog_.size(); }
  size_t queued_bytes() const { return rx_backlog_.bytes(); }

 private:
  struct Connection;
  class Idle;
  VhostUserPort(uv_loop_t* loop, int listen_fd, std::string path, size_t mtu);
  void on_accept();
  void on_readable();
  // Reads and handles one message; false if the connection was closed, or
  // *again set when the socket has no more bytes.
  bool read_message(bool* again);
  bool handle(const vhost_user::Header& h, vhost_user::Bytes payload, std::vector<int>& fds);
  bool handle_unchecked(const vhost_user::Header& h, vhost_user::Bytes payload, std::vector<int>& fds,
                        std::string* why, bool* replied);
  bool reply(const std::vector<std::byte>& msg);
  void start_queue_if_ready(int q);
  void stop_queue(int q);
  void run_tx();
  void drain_rx();
  void drop_backlog();
  void on_idle();
  void signal(int q);
  void disconnect(const std::string& why);

  uv_loop_t* loop_;
  std::string path_;
  std::unique_ptr<PolledFd> listener_;
  std::unique_ptr<Connection> conn_;
  std::unique_ptr<Idle> idle_;
  VirtioNetDevice device_;
  FrameQueue rx_backlog_{kMaxQueuedBytes, kMaxQueuedFrames};
  Stats vstats_;
};

}  // namespace slipway::link
