// The control API's ops on a running gateway (see control_server.h for the
// protocol): add-forward, remove-forward, list-forwards, list-flows, stats.
#pragma once

#include "netstack/control/control_server.h"
#include "netstack/gateway/gateway.h"

namespace slipway::control {

// A handler answering the ops for `gateway`, which must outlive it.
ControlServer::Handler gateway_handler(gateway::Gateway& gateway);

}  // namespace slipway::control
