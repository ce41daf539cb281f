// The VM transports' factories (see vm_transports.h): each binds its socket
// at once, so that a bad path fails at start-up with a clear message.
#include "netstack/link/vm_transports.h"

#include "netstack/link/dgram_port.h"
#include "netstack/link/stream_port.h"
#include "netstack/link/vhost_user.h"

namespace slipway::link {

std::unique_ptr<Port> listen_vhost_user(uv_loop_t* loop, const std::string& path, size_t mtu) {
  return VhostUserPort::listen(loop, path, mtu);
}
std::unique_ptr<Port> listen_stream(uv_loop_t* loop, const std::string& path, size_t mtu) {
  return StreamPort::listen(loop, path, mtu);
}
std::unique_ptr<Port> bind_dgram(uv_loop_t* loop, const std::string& path, size_t mtu) {
  return DgramPort::bind(loop, path, mtu);
}

}  // namespace slipway::link
