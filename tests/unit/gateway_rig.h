// A guest on one end of an in-memory link and a Stack (gateway, engine,
// relay, DNS, forwards) on the other, on a real libuv loop: what the gateway
// tests share. Frames the gateway sends to the guest collect in `received`.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <memory>
#include <vector>

#include "netstack/gateway/gateway.h"
#include "netstack/link/memory_port.h"
#include "netstack/stack/stack.h"
#include "sockets.h"

namespace slipway::test {


struct GatewayRig {
  uv_loop_t loop;
  std::unique_ptr<stack::Stack> stack;
  gateway::Gateway* gw = nullptr;
  std::unique_ptr<link::MemoryPort> guest;
  link::MemoryPort* gw_end = nullptr;  // the stack's transport
  std::vector<std::vector<std::byte>> received;

  explicit GatewayRig(const stack::StackConfig& config) {
    uv_loop_init(&loop);
    auto [a, b] = link::MemoryPort::make_pair();
    guest = std::move(a);
    gw_end = b.get();
    stack = std::make_unique<stack::Stack>(&loop, std::move(b), config);
    gw = &stack->gateway();
    guest->set_sink([this](link::Frame f) { received.emplace_back(f.begin(), f.end()); });
  }
  ~GatewayRig() {
    stack.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(uv_loop_close(&loop) == 0);
  }
  GatewayRig(const GatewayRig&) = delete;
  GatewayRig& operator=(const GatewayRig&) = delete;

  wire::MacAddr gw_mac() const { return gw->config().mac; }
  // One frame from the guest, and whatever the gateway answers at once.
  void send(const std::vector<std::byte>& frame) {
    guest->send(frame);
    gw_end->poll();
    guest->poll();
  }
  void pump() {
    uv_run(&loop, UV_RUN_NOWAIT);
    gw_end->poll();
    guest->poll();
  }
  // Runs the loop until pred() holds or ~5 s pass (generous: CI machines
  // are shared, and a pass returns as soon as pred() holds).
  template <class Pred>
  bool run_until(Pred pred) {
    for (int i = 0; i < 1000 && !pred(); ++i) {
      pump();
      if (!pred()) usleep(5000);
    }
    return pred();
  }
};

}  // namespace slipway::test
