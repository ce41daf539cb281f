// The control API's ops on a running stack (see control_server.h for the
// protocol): add-forward, remove-forward, list-forwards, list-flows, stats.
#pragma once

#include "netstack/control/control_server.h"
#include "netstack/stack/stack.h"

namespace slipway::control {

// A handler answering the ops for `stack`, which must outlive it.
ControlServer::Handler stack_handler(stack::Stack& stack);

}  // namespace slipway::control
