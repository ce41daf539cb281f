// The VM transports: Ports that a VMM's virtio-net frontend connects to.
//
//   vhost-user-net  slipway listens on a unix socket; the frontend (QEMU,
//                   cloud-hypervisor) shares guest memory and virtqueues.
//   stream          QEMU `-netdev stream`: slipway listens on a unix stream
//                   socket; each frame is preceded by its length (4 bytes,
//                   big-endian), as passt frames it.
//   dgram           QEMU `-netdev dgram`: one frame per unix datagram;
//                   slipway binds PATH and answers the peer it hears from.
//
// Each returns a Port that exists for the life of the process: when a
// frontend disconnects, the Port waits for the next one. Frames sent while no
// frontend is connected are dropped and counted. Errors at start-up (the path
// cannot be bound) throw std::runtime_error with the path and the reason.
#pragma once

#include <uv.h>

#include <memory>
#include <string>

#include "netstack/link/port.h"

namespace slipway::link {

std::unique_ptr<Port> listen_vhost_user(uv_loop_t* loop, const std::string& path, size_t mtu);
std::unique_ptr<Port> listen_stream(uv_loop_t* loop, const std::string& path, size_t mtu);
std::unique_ptr<Port> bind_dgram(uv_loop_t* loop, const std::string& path, size_t mtu);

}  // namespace slipway::link
