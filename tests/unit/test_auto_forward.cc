// AutoForwarder fed the way portfwd-agent feeds it (JSON lines), on a real
// loop with real host listeners.
#include <uv.h>

#include <catch2/catch.hpp>
#include <memory>

#include "netstack/gateway/auto_forward.h"
#include "netstack/gateway/gateway.h"

using namespace slipway;

namespace {
uint16_t free_tcp_port(uv_loop_t* loop) {
  uv_tcp_t t;
  uv_tcp_init(loop, &t);
  sockaddr_in a{};
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_bind(&t, reinterpret_cast<const sockaddr*>(&a), 0);
  sockaddr_storage ss{};
  int len = sizeof ss;
  uv_tcp_getsockname(&t, reinterpret_cast<sockaddr*>(&ss), &len);
  uint16_t port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return port;
}
}  // namespace

TEST_CASE("agent reports publish and withdraw automatic forwards", "[autofwd]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    gateway::GatewayConfig c;
    c.dns = false;
    gateway::Gateway gw(&loop, c);
    uint16_t p = free_tcp_port(&loop);
    uint16_t excluded = free_tcp_port(&loop);
    gateway::AutoForwarder af(&loop, gw.published(), -1, {excluded});
    auto port = std::to_string(p);
    af.update_from_agent(R"({"listeners":[{"proto":"tcp","family":4,"address":"0.0.0.0","port":)" + port +
                         R"(},{"proto":"tcp","family":4,"address":"10.0.2.15","port":9},)" +
                         R"({"proto":"tcp","family":4,"address":"127.0.0.1","port":)" + std::to_string(excluded) +
                         "}]}");
    auto list = gw.published().list();
    REQUIRE(list.size() == 1);  // the specific-address bind and the excluded port are not forwarded
    CHECK(list[0].rule.to_string() == "127.0.0.1:" + port + ":" + port + "/tcp");
    CHECK(list[0].origin == engine::PublishedPorts::Origin::kAuto);
    CHECK(list[0].error.empty());

    af.update_from_agent("{not json");  // ignored, nothing changes
    CHECK(gw.published().list().size() == 1);
    af.update_from_agent(R"({"listeners":[{"proto":"tcp","family":4,"address":"0.0.0.0","port":70000}]})");
    CHECK(gw.published().list().empty());  // an out-of-range port is skipped; the old forward is withdrawn
    af.update_from_agent(R"({"listeners":[]})");
    CHECK(gw.published().list().empty());
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  REQUIRE(uv_loop_close(&loop) == 0);
}
