// Placeholder definitions until the VM transports land: each reports that it
// is not available yet.
#include "netstack/link/vm_transports.h"

#include <stdexcept>

namespace slipway::link {

std::unique_ptr<Port> listen_vhost_user(uv_loop_t*, const std::string&, size_t) {
  throw std::runtime_error("the vhost-user transport is not built yet");
}
std::unique_ptr<Port> listen_stream(uv_loop_t*, const std::string&, size_t) {
  throw std::runtime_error("the stream transport is not built yet");
}
std::unique_ptr<Port> bind_dgram(uv_loop_t*, const std::string&, size_t) {
  throw std::runtime_error("the dgram transport is not built yet");
}

}  // namespace slipway::link
