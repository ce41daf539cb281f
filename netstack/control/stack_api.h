// The control API's ops on a running stack (see control_server.h for the
// protocol): add-forward, remove-forward, list-forwards, list-flows, stats,
// list-leases (the DHCP leases), and with several guests on the stack's
// switch list-ports (each port's options, counters and learnt MACs),
// add-port {"spec": SPEC} and remove-port {"name": NAME}.
#pragma once

#include <functional>
#include <string>

#include "netstack/control/control_server.h"
#include "netstack/stack/stack.h"
#include "vswitch/switch.h"

namespace slipway::control {

// Opens the port a spec names (cli/port_spec.h) and adds it to the stack's
// switch; returns its name. Throws std::exception with a message.
using PortOpener = std::function<std::string(const std::string& spec)>;

// The switch's ops alone (the `vswitch` program without a gateway):
// list-ports, add-port (with `open_port`), remove-port (with `remove_port`,
// which returns false for an unknown name).
ControlServer::Handler switch_handler(vswitch::Switch& sw, PortOpener open_port,
                                      std::function<bool(const std::string&)> remove_port);

// A handler answering the ops for `stack`, which must outlive it.
// add-port needs `open_port` (it opens sockets and namespaces, which the
// program that parsed the options knows how to).
ControlServer::Handler stack_handler(stack::Stack& stack, PortOpener open_port = nullptr);

}  // namespace slipway::control
