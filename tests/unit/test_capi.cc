// The C API (include/slipway.h) through the shared library, as an embedder
// uses it: configuration defaults and checks, a stack on the test's own
// libuv loop (ARP and ping to the gateway, forwards on real 127.0.0.1
// ports, one stack per process), and a stack on its own thread (frames
// pushed from the test thread and received on slipway's thread, the bounded
// input queue, a clean join).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "netstack/wire/arp.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/ipv4.h"
#include "slipway.h"
#include "sockets.h"

using namespace slipway;
using wire::Ipv4Addr;
using wire::MacAddr;

namespace {

const MacAddr kGuestMac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
const Ipv4Addr kGuest{10, 0, 2, 15};
const Ipv4Addr kGw{10, 0, 2, 2};
// The gateway's MAC: 52:55 and the gateway address (slirp's convention).
const MacAddr kGwMac{{0x52, 0x55, 10, 0, 2, 2}};

std::vector<std::byte> arp_request_for_gateway() {
  wire::ArpPacket req{wire::ArpPacket::kRequest, kGuestMac, kGuest, MacAddr{}, kGw};
  return wire::build_arp_frame(MacAddr::broadcast(), kGuestMac, req);
}

std::vector<std::byte> ping_gateway(uint16_t seq) {
  std::vector<std::byte> payload(32, std::byte{0x5a});
  return wire::build_ipv4_icmp_frame(kGwMac, kGuestMac, kGuest, kGw, wire::icmptype::kEchoRequest, 0,
                                     (0x4242u << 16) | seq, payload);
}

bool is_arp_reply_from_gateway(const std::vector<std::byte>& f) {
  auto eth = wire::EthernetFrame::parse(f);
  if (!eth || eth->ethertype() != wire::ethertype::kArp) return false;
  auto arp = wire::ArpPacket::parse(eth->payload());
  return arp && arp->op == wire::ArpPacket::kReply && arp->sender_ip == kGw && arp->sender_mac == kGwMac &&
         arp->target_mac == kGuestMac;
}

bool is_echo_reply_from_gateway(const std::vector<std::byte>& f, uint16_t seq) {
  auto eth = wire::EthernetFrame::parse(f);
  if (!eth || eth->ethertype() != wire::ethertype::kIpv4) return false;
  auto ip = wire::Ipv4Packet::parse(eth->payload());
  if (!ip || ip->src() != kGw || ip->dst() != kGuest) return false;
  auto icmp = wire::IcmpMessage::parse(ip->payload());
  return icmp && icmp->type() == wire::icmptype::kEchoReply && icmp->echo_id() == 0x4242 && icmp->echo_seq() == seq;
}

// Frames the stack sent, as the output callback saw them.
struct Received {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::vector<std::byte>> frames;
  std::vector<std::thread::id> threads;
  // The stack, for callbacks that call back into it.
  slipway_t* stack = nullptr;
  int reentrant_input = 1;  // slipway_input's result from inside the callback
  bool try_reentrant_input = false;
  // Threaded tests: the callback waits while `hold` is set.
  bool hold = false;
  bool in_held_callback = false;

  template <class Pred>
  bool wait_for(Pred pred) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(5), [&] { return pred(frames); });
  }
};

void on_output(void* opaque, const void* frame, size_t len) {
  auto* r = static_cast<Received*>(opaque);
  auto* p = static_cast<const std::byte*>(frame);
  std::unique_lock lock(r->mu);
  r->frames.emplace_back(p, p + len);
  r->threads.push_back(std::this_thread::get_id());
  if (r->try_reentrant_input) {
    auto ping = ping_gateway(99);
    r->reentrant_input = slipway_input(r->stack, ping.data(), ping.size());
  }
  r->in_held_callback = r->hold;
  r->cv.notify_all();
  r->cv.wait(lock, [&] { return !r->hold; });
  r->in_held_callback = false;
}

using test::free_port;

// A socket listening on 127.0.0.1:port (closed by the destructor).
struct Listener {
  int fd = -1;
  uint16_t port = 0;
  Listener() {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(fd, 4) == 0);
    socklen_t l = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
    port = ntohs(a.sin_port);
  }
  ~Listener() { close(fd); }
};

// Whether 127.0.0.1:port can be bound now (nothing holds it).
bool port_is_free(uint16_t port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(s);
  return ok;
}

slipway_config quiet_config() {
  slipway_config c;
  slipway_config_init(&c);
  c.log_level = SLIPWAY_LOG_OFF;
  return c;
}

// A loop for on-loop stacks; checks that the stack left nothing open.
struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
};

}  // namespace

TEST_CASE("capi: slipway_config_init fills the documented defaults", "[capi]") {
  slipway_config c;
  std::memset(&c, 0xff, sizeof c);
  slipway_config_init(&c);
  CHECK(std::string(c.address) == "10.0.2.15");
  CHECK(c.prefix == 24);
  CHECK(std::string(c.gateway) == "10.0.2.2");
  CHECK(std::string(c.dns) == "10.0.2.3");
  CHECK(std::string(c.mac) == "52:54:00:12:34:56");
  CHECK(c.mtu == 65520);
  CHECK(c.host_loopback == 1);
  CHECK(c.dns_upstreams == nullptr);
  CHECK(c.dns_upstream_count == 0);
  CHECK(c.publish == nullptr);
  CHECK(c.publish_count == 0);
  CHECK(c.log_level == SLIPWAY_LOG_WARN);
  CHECK(c.queue_frames == 1024);
  slipway_config_init(nullptr);  // no crash

  CHECK(std::string(slipway_version()) == "0.1.0");
  CHECK(std::string(slipway_strerror(SLIPWAY_OK)) == "success");
  CHECK(std::string(slipway_strerror(SLIPWAY_EBUSY)).find("already") != std::string::npos);
  CHECK(std::string(slipway_strerror(12345)) == "unknown error code");
}

TEST_CASE("capi: invalid arguments and configurations give SLIPWAY_EINVAL", "[capi]") {
  Loop l;
  Received r;
  slipway_t* s = reinterpret_cast<slipway_t*>(&r);  // must be reset to NULL on failure
  slipway_config c = quiet_config();

  CHECK(slipway_new_on_loop(&c, &l.loop, on_output, &r, nullptr) == SLIPWAY_EINVAL);
  CHECK(slipway_new_on_loop(nullptr, &l.loop, on_output, &r, &s) == SLIPWAY_EINVAL);
  CHECK(s == nullptr);
  CHECK(slipway_new_on_loop(&c, nullptr, on_output, &r, &s) == SLIPWAY_EINVAL);
  CHECK(slipway_new_on_loop(&c, &l.loop, nullptr, &r, &s) == SLIPWAY_EINVAL);
  CHECK(slipway_new_threaded(nullptr, on_output, &r, &s) == SLIPWAY_EINVAL);
  CHECK(slipway_new_threaded(&c, nullptr, &r, &s) == SLIPWAY_EINVAL);

  auto rejected = [&](slipway_config bad, const char* word) {
    int rc = slipway_new_on_loop(&bad, &l.loop, on_output, &r, &s);
    std::string why = slipway_last_error();
    INFO("last error: " << why);
    CHECK(why.find(word) != std::string::npos);
    return rc == SLIPWAY_EINVAL && s == nullptr;
  };
  slipway_config bad = c;
  bad.address = "10.0.2.300";
  CHECK(rejected(bad, "address"));
  bad = c;
  bad.address = nullptr;
  CHECK(rejected(bad, "address"));
  bad = c;
  bad.prefix = 31;
  CHECK(rejected(bad, "prefix"));
  bad = c;
  bad.gateway = "10.0.3.2";
  CHECK(rejected(bad, "gateway"));
  bad = c;
  bad.dns = "10.0.2.15";  // the guest's own address
  CHECK(rejected(bad, "address"));
  bad = c;
  bad.mac = "01:00:5e:00:00:01";  // multicast
  CHECK(rejected(bad, "mac"));
  bad = c;
  bad.mtu = 100;
  CHECK(rejected(bad, "mtu"));
  bad = c;
  bad.log_level = 42;
  CHECK(rejected(bad, "log_level"));
  bad = c;
  bad.queue_frames = 0;
  CHECK(rejected(bad, "queue_frames"));
  const char* bad_rules[] = {"8080:80/sctp"};
  bad = c;
  bad.publish = bad_rules;
  bad.publish_count = 1;
  CHECK(rejected(bad, "publish"));
  bad = c;
  bad.publish_count = 2;  // and publish is NULL
  CHECK(rejected(bad, "publish"));
  const char* bad_upstreams[] = {"not an address"};
  bad = c;
  bad.dns_upstreams = bad_upstreams;
  bad.dns_upstream_count = 1;
  CHECK(rejected(bad, "dns_upstreams"));

  // Calls on a stack.
  REQUIRE(slipway_new_on_loop(&c, &l.loop, on_output, &r, &s) == SLIPWAY_OK);
  REQUIRE(s != nullptr);
  auto arp = arp_request_for_gateway();
  CHECK(slipway_input(nullptr, arp.data(), arp.size()) == SLIPWAY_EINVAL);
  CHECK(slipway_input(s, nullptr, arp.size()) == SLIPWAY_EINVAL);
  CHECK(slipway_input(s, arp.data(), 0) == SLIPWAY_EINVAL);
  std::vector<std::byte> huge(65520 + 14 + 1);
  CHECK(slipway_input(s, huge.data(), huge.size()) == SLIPWAY_EINVAL);
  huge.resize(65520 + 14);  // exactly mtu + 14 is accepted (and dropped as malformed)
  CHECK(slipway_input(s, huge.data(), huge.size()) == SLIPWAY_OK);
  char err[128];
  CHECK(slipway_add_forward(nullptr, "8080:80", err, sizeof err) == SLIPWAY_EINVAL);
  CHECK(slipway_add_forward(s, nullptr, err, sizeof err) == SLIPWAY_EINVAL);
  CHECK(slipway_add_forward(s, "8080:80", err, 0) == SLIPWAY_EINVAL);
  CHECK(slipway_add_forward(s, "8080:80", nullptr, sizeof err) == SLIPWAY_EINVAL);
  CHECK(slipway_add_forward(s, "99999:80", err, sizeof err) == SLIPWAY_EINVAL);
  CHECK(std::string(err).find("99999") != std::string::npos);
  CHECK(slipway_remove_forward(s, nullptr, nullptr, 0) == SLIPWAY_EINVAL);
  char tiny[4];
  CHECK(slipway_add_forward(s, "garbage", tiny, sizeof tiny) == SLIPWAY_EINVAL);
  CHECK(std::strlen(tiny) == 3);  // truncated and terminated
  slipway_stats st;
  CHECK(slipway_get_stats(nullptr, &st) == SLIPWAY_EINVAL);
  CHECK(slipway_get_stats(s, nullptr) == SLIPWAY_EINVAL);
  slipway_free(s);
  slipway_free(nullptr);  // a no-op
}

TEST_CASE("capi: a stack on the caller's loop answers ARP and ping for the gateway", "[capi]") {
  Loop l;
  Received r;
  slipway_config c = quiet_config();
  slipway_t* s = nullptr;
  REQUIRE(slipway_new_on_loop(&c, &l.loop, on_output, &r, &s) == SLIPWAY_OK);
  r.stack = s;

  // The replies come at once, inside slipway_input, on this thread.
  auto arp = arp_request_for_gateway();
  REQUIRE(slipway_input(s, arp.data(), arp.size()) == SLIPWAY_OK);
  REQUIRE(r.frames.size() == 1);
  CHECK(is_arp_reply_from_gateway(r.frames[0]));
  CHECK(r.threads[0] == std::this_thread::get_id());

  auto ping = ping_gateway(7);
  REQUIRE(slipway_input(s, ping.data(), ping.size()) == SLIPWAY_OK);
  REQUIRE(r.frames.size() == 2);
  CHECK(is_echo_reply_from_gateway(r.frames[1], 7));

  // From inside the output callback, input would re-enter the gateway.
  r.try_reentrant_input = true;
  ping = ping_gateway(8);
  REQUIRE(slipway_input(s, ping.data(), ping.size()) == SLIPWAY_OK);
  r.try_reentrant_input = false;
  CHECK(r.reentrant_input == SLIPWAY_ESTATE);
  REQUIRE(r.frames.size() == 3);
  CHECK(is_echo_reply_from_gateway(r.frames[2], 8));

  // Another thread may not use an on-loop stack.
  int from_other_thread = 0;
  std::thread([&] { from_other_thread = slipway_input(s, ping.data(), ping.size()); }).join();
  CHECK(from_other_thread == SLIPWAY_ESTATE);

  slipway_stats st;
  REQUIRE(slipway_get_stats(s, &st) == SLIPWAY_OK);
  CHECK(st.input_frames == 3);
  CHECK(st.input_dropped == 0);
  CHECK(st.output_frames == 3);
  slipway_free(s);
}

TEST_CASE("capi: only one stack per process", "[capi]") {
  Loop l;
  Received r;
  slipway_config c = quiet_config();
  slipway_t* first = nullptr;
  slipway_t* second = nullptr;
  REQUIRE(slipway_new_on_loop(&c, &l.loop, on_output, &r, &first) == SLIPWAY_OK);
  CHECK(slipway_new_on_loop(&c, &l.loop, on_output, &r, &second) == SLIPWAY_EBUSY);
  CHECK(second == nullptr);
  CHECK(slipway_new_threaded(&c, on_output, &r, &second) == SLIPWAY_EBUSY);
  slipway_free(first);
  // Freed: a new one may be made.
  REQUIRE(slipway_new_on_loop(&c, &l.loop, on_output, &r, &second) == SLIPWAY_OK);
  slipway_free(second);
}

TEST_CASE("capi: forwards are added and removed on 127.0.0.1", "[capi]") {
  Loop l;
  Received r;
  uint16_t port = free_port();
  std::string rule = "127.0.0.1:" + std::to_string(port) + ":80/tcp";
  slipway_config c = quiet_config();
  slipway_t* s = nullptr;
  REQUIRE(slipway_new_on_loop(&c, &l.loop, on_output, &r, &s) == SLIPWAY_OK);

  char err[256] = "";
  REQUIRE(slipway_add_forward(s, rule.c_str(), err, sizeof err) == SLIPWAY_OK);
  CHECK_FALSE(port_is_free(port));
  // The same rule, written without the default address.
  CHECK(slipway_remove_forward(s, (std::to_string(port) + ":80").c_str(), err, sizeof err) == SLIPWAY_OK);
  uv_run(&l.loop, UV_RUN_NOWAIT);
  CHECK(port_is_free(port));
  CHECK(slipway_remove_forward(s, rule.c_str(), err, sizeof err) == SLIPWAY_ENOENT);
  CHECK(std::string(err).find(std::to_string(port)) != std::string::npos);

  // A port something else holds: an error and its reason.
  Listener busy;
  err[0] = '\0';
  CHECK(slipway_add_forward(s, ("127.0.0.1:" + std::to_string(busy.port) + ":80").c_str(), err, sizeof err) ==
        SLIPWAY_EIO);
  CHECK(std::strlen(err) > 0);
  CHECK(std::string(slipway_last_error()) == err);
  slipway_free(s);

  // A published port that cannot be bound fails the creation.
  std::string busy_rule = std::to_string(busy.port) + ":80/tcp";
  const char* rules[] = {busy_rule.c_str()};
  c.publish = rules;
  c.publish_count = 1;
  CHECK(slipway_new_on_loop(&c, &l.loop, on_output, &r, &s) == SLIPWAY_EIO);
  CHECK(s == nullptr);
  // A free one is published at creation.
  port = free_port();
  busy_rule = std::to_string(port) + ":80/tcp";
  rules[0] = busy_rule.c_str();
  REQUIRE(slipway_new_on_loop(&c, &l.loop, on_output, &r, &s) == SLIPWAY_OK);
  CHECK_FALSE(port_is_free(port));
  slipway_free(s);
}

TEST_CASE("capi: a threaded stack takes frames from any thread and answers on its own", "[capi]") {
  Received r;
  slipway_config c = quiet_config();
  c.queue_frames = 2;
  slipway_t* s = nullptr;
  REQUIRE(slipway_new_threaded(&c, on_output, &r, &s) == SLIPWAY_OK);

  auto arp = arp_request_for_gateway();
  REQUIRE(slipway_input(s, arp.data(), arp.size()) == SLIPWAY_OK);
  REQUIRE(r.wait_for([](const auto& f) { return f.size() >= 1; }));
  auto ping = ping_gateway(1);
  REQUIRE(slipway_input(s, ping.data(), ping.size()) == SLIPWAY_OK);
  REQUIRE(r.wait_for([](const auto& f) { return f.size() >= 2; }));
  {
    std::lock_guard lock(r.mu);
    CHECK(is_arp_reply_from_gateway(r.frames[0]));
    CHECK(is_echo_reply_from_gateway(r.frames[1], 1));
    CHECK(r.threads[0] != std::this_thread::get_id());
    CHECK(r.threads[1] == r.threads[0]);
  }

  // Forwards are handed to slipway's thread and waited for.
  uint16_t port = free_port();
  std::string rule = std::to_string(port) + ":22";
  char err[256] = "";
  REQUIRE(slipway_add_forward(s, rule.c_str(), err, sizeof err) == SLIPWAY_OK);
  CHECK_FALSE(port_is_free(port));
  Listener busy;
  CHECK(slipway_add_forward(s, (std::to_string(busy.port) + ":22").c_str(), err, sizeof err) == SLIPWAY_EIO);
  REQUIRE(slipway_remove_forward(s, rule.c_str(), err, sizeof err) == SLIPWAY_OK);
  CHECK(slipway_remove_forward(s, rule.c_str(), err, sizeof err) == SLIPWAY_ENOENT);

  // While slipway's thread is held inside the callback, the queue (2
  // frames) fills and the next frame is dropped and counted.
  {
    std::lock_guard lock(r.mu);
    r.hold = true;
  }
  ping = ping_gateway(2);
  REQUIRE(slipway_input(s, ping.data(), ping.size()) == SLIPWAY_OK);
  {
    std::unique_lock lock(r.mu);
    REQUIRE(r.cv.wait_for(lock, std::chrono::seconds(5), [&] { return r.in_held_callback; }));
  }
  ping = ping_gateway(3);
  CHECK(slipway_input(s, ping.data(), ping.size()) == SLIPWAY_OK);
  ping = ping_gateway(4);
  CHECK(slipway_input(s, ping.data(), ping.size()) == SLIPWAY_OK);
  ping = ping_gateway(5);
  CHECK(slipway_input(s, ping.data(), ping.size()) == SLIPWAY_EAGAIN);
  {
    std::lock_guard lock(r.mu);
    r.hold = false;
    r.cv.notify_all();
  }
  REQUIRE(r.wait_for([](const auto& f) { return f.size() >= 5; }));
  slipway_stats st;
  REQUIRE(slipway_get_stats(s, &st) == SLIPWAY_OK);
  CHECK(st.input_frames == 5);
  CHECK(st.input_dropped == 1);
  CHECK(st.output_frames == 5);

  slipway_free(s);  // joins slipway's thread
  size_t after_free;
  {
    std::lock_guard lock(r.mu);
    after_free = r.frames.size();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::lock_guard lock(r.mu);
  CHECK(r.frames.size() == after_free);
  CHECK(is_echo_reply_from_gateway(r.frames[4], 4));
}

TEST_CASE("capi: a threaded stack is freed cleanly while frames arrive", "[capi]") {
  Received r;
  slipway_config c = quiet_config();
  slipway_t* s = nullptr;
  for (int round = 0; round < 3; ++round) {
    REQUIRE(slipway_new_threaded(&c, on_output, &r, &s) == SLIPWAY_OK);
    auto ping = ping_gateway(static_cast<uint16_t>(round));
    for (int i = 0; i < 200; ++i) slipway_input(s, ping.data(), ping.size());
    slipway_free(s);  // frames still queued are dropped; no callback after this
    std::lock_guard lock(r.mu);
    size_t seen = r.frames.size();
    r.frames.clear();
    CHECK(seen <= 200);
  }
}
