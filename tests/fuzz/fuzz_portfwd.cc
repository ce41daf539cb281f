// Fuzz target: what automatic forwarding reads from the guest side:
// sock_diag dumps (netlink messages from the guest namespace's kernel) and
// portfwd-agent's JSON reports (from a VM). An input's first byte chooses:
//   even  the rest is one recv() of a sock_diag dump (second byte: the
//         protocol, then a 4-byte sequence number): parse_sock_diag_dump(),
//         and the listeners it yields go to AutoForwarder::update()
//   odd   the rest is report lines from the agent, one
//         AutoForwarder::update_from_agent() call per line
// The forwarder publishes on a Stack's PublishedPorts, in a private network
// namespace (it binds the ports it forwards). One Stack for the run; the
// forwarder is rebuilt per input and its forwards withdrawn.
#include <memory>
#include <string_view>

#include "fuzz_common.h"
#include "netstack/link/memory_port.h"
#include "netstack/stack/stack.h"
#include "portfwd/auto_forward.h"
#include "portfwd/listeners.h"

using namespace slipway;

namespace {

struct Rig {
  uv_loop_t loop;
  std::unique_ptr<link::MemoryPort> guest;
  std::unique_ptr<stack::Stack> stack;
  Rig() {
    uv_loop_init(&loop);
    auto [a, b] = link::MemoryPort::make_pair();
    guest = std::move(a);
    stack::StackConfig c;
    c.dns = false;
    stack = std::make_unique<stack::Stack>(&loop, std::move(b), c);
  }
};

Rig* rig = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet();
  fuzz::isolate_network();
  rig = new Rig;  // lives until exit
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  {
    portfwd::AutoForwarder forwarder(&rig->loop, rig->stack->published(), -1, {8022},
                                     (data[0] & 2) != 0 ? portfwd::HostAddresses::kAll
                                                        : portfwd::HostAddresses::kLoopback);
    if ((data[0] & 1) == 0) {
      if (size < 6) return 0;
      auto proto = (data[1] & 1) != 0 ? portfwd::Protocol::kUdp : portfwd::Protocol::kTcp;
      uint32_t seq = (uint32_t{data[2]} << 24) | (uint32_t{data[3]} << 16) | (uint32_t{data[4]} << 8) | data[5];
      std::vector<portfwd::Listener> listeners;
      std::string error;
      auto status = portfwd::parse_sock_diag_dump(fuzz::bytes(data + 6, size - 6), seq, proto, listeners, &error);
      if (status != portfwd::DumpStatus::kError) forwarder.update(listeners);
    } else {
      std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
      int n = 0;
      while (!text.empty() && n++ < 16) {
        size_t nl = text.find('\n');
        forwarder.update_from_agent(text.substr(0, nl));
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
      }
    }
    fuzz::spin(&rig->loop, 1);
  }
  for (const auto& f : rig->stack->published().list()) rig->stack->published().remove(f.rule);
  fuzz::spin(&rig->loop, 2);
  return 0;
}
