// Guest forwards (--guest-forward, engine/guest_forward.h): the spec parser,
// its checks in the configuration and the options, the NAT policy, and the
// lwIP engine connecting a guest connection to a host unix socket, with
// --restrict on.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <cstdlib>
#include <string>

#include "engine_rig.h"
#include "guest_tcp.h"
#include "netstack/cli/options.h"
#include "netstack/config/config_file.h"
#include "netstack/engine/guest_forward.h"

using namespace slipway;
using namespace slipway::test;
using engine::GuestForward;
using wire::Ipv4Addr;

namespace {

std::string parse_error(const char* spec) {
  std::string err;
  auto f = engine::parse_guest_forward(spec, &err);
  CHECK_FALSE(f.has_value());
  return err;
}

// A listening unix socket in a private directory.
struct UnixListener {
  std::string dir, path;
  Fd fd;
  UnixListener() {
    char tmpl[] = "/tmp/slipway-gfwd-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    path = dir + "/s";
    fd = Fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path.c_str());
    REQUIRE(bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(fd.get(), 4) == 0);
  }
  ~UnixListener() {
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  }
  Fd accept() { return Fd(accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK)); }
};

}  // namespace

TEST_CASE("guest forward: specs parse, bad ones say why", "[guestfwd]") {
  std::string err;
  auto u = engine::parse_guest_forward("10.0.2.100:8080=unix:/run/x.sock", &err);
  REQUIRE(u);
  CHECK(u->addr == Ipv4Addr{10, 0, 2, 100});
  CHECK(u->port == 8080);
  CHECK(u->kind == GuestForward::Kind::kUnix);
  CHECK(u->path == "/run/x.sock");
  CHECK(u->to_string() == "10.0.2.100:8080=unix:/run/x.sock");
  auto t = engine::parse_guest_forward("10.0.2.101:80=tcp:127.0.0.1:8000", &err);
  REQUIRE(t);
  CHECK(t->kind == GuestForward::Kind::kTcp);
  CHECK(t->host == engine::IpAddr(Ipv4Addr{127, 0, 0, 1}));
  CHECK(t->host_port == 8000);
  auto t6 = engine::parse_guest_forward("10.0.2.101:80=tcp:[::1]:8000", &err);
  REQUIRE(t6);
  CHECK(t6->host.v6);
  CHECK(t6->to_string() == "10.0.2.101:80=tcp:[::1]:8000");

  CHECK(parse_error("10.0.2.100:8080") == "expected ADDR:PORT=TARGET");
  CHECK(parse_error("10.0.2.100=unix:/x") == "'10.0.2.100' is not ADDR:PORT");
  CHECK(parse_error("10.0.2:80=unix:/x") == "'10.0.2' is not an IPv4 address");
  CHECK(parse_error("10.0.2.100:0=unix:/x") == "'0' is not a port (1-65535)");
  CHECK(parse_error("10.0.2.100:65536=unix:/x") == "'65536' is not a port (1-65535)");
  CHECK(parse_error("10.0.2.100:80=unix:") == "unix:PATH needs an absolute path");
  CHECK(parse_error("10.0.2.100:80=unix:rel.sock") == "unix:PATH needs an absolute path");
  CHECK(parse_error(("10.0.2.100:80=unix:/" + std::string(107, 'a')).c_str()) == "unix:PATH is longer than 107 bytes");
  CHECK(parse_error("10.0.2.100:80=tcp:127.0.0.1") == "tcp:HOSTADDR:PORT expected");
  CHECK(parse_error("10.0.2.100:80=tcp:127.0.0.1:x") == "'x' is not a port (1-65535)");
  CHECK(parse_error("10.0.2.100:80=tcp:localhost:80") ==
        "'localhost' is not an IPv4 address (IPv6: tcp:[ADDR]:PORT)");
  CHECK(parse_error("10.0.2.100:80=tcp:[::1:80") == "tcp:[IPV6]:PORT expected");
  CHECK(parse_error("10.0.2.100:80=udp:1.2.3.4:5") ==
        "unknown target 'udp:1.2.3.4:5'; allowed: tcp:HOSTADDR:PORT, unix:PATH, cmd:COMMAND");
  CHECK(parse_error("10.0.2.100:80=cmd:") == "cmd:COMMAND needs a command");
  CHECK(parse_error("10.0.2.100:80=cmd:  ") == "cmd:COMMAND needs a command");
  auto c = engine::parse_guest_forward("10.0.2.100:80=cmd:cat /etc/hostname | tr a b", &err);
  REQUIRE(c);
  CHECK(c->kind == GuestForward::Kind::kCmd);
  CHECK(c->path == "cat /etc/hostname | tr a b");
  CHECK(c->to_string() == "10.0.2.100:80=cmd:cat /etc/hostname | tr a b");
}

TEST_CASE("guest forward: options and the config file check the address and the engine", "[guestfwd]") {
  cli::NetworkOptions o;
  o.guest_forwards = {"10.0.2.100:8080=unix:/run/x.sock", "10.0.2.101:80=tcp:127.0.0.1:8000"};
  auto nat = o.gateway_config().nat;
  REQUIRE(nat.guest_forwards.size() == 2);
  REQUIRE(nat.guest_forward(engine::IpAddr(Ipv4Addr{10, 0, 2, 100}), 8080) != nullptr);
  CHECK(nat.guest_forward(engine::IpAddr(Ipv4Addr{10, 0, 2, 100}), 8080)->path == "/run/x.sock");
  CHECK(nat.guest_forward(engine::IpAddr(Ipv4Addr{10, 0, 2, 100}), 8081) == nullptr);
  CHECK(nat.is_guest_forward_address(Ipv4Addr{10, 0, 2, 101}));
  CHECK_FALSE(nat.is_guest_forward_address(Ipv4Addr{10, 0, 2, 102}));

  auto refused = [&](std::vector<std::string> specs, const char* words) {
    cli::NetworkOptions bad = o;
    bad.guest_forwards = std::move(specs);
    try {
      bad.stack_config();
    } catch (const CLI::ValidationError& e) {
      std::string what = e.what();
      INFO(what);
      CHECK(what.find("--guest-forward") != std::string::npos);
      CHECK(what.find(words) != std::string::npos);
      return true;
    }
    return false;
  };
  CHECK(refused({"10.0.2.100:80"}, "expected ADDR:PORT=TARGET"));
  CHECK(refused({"10.0.2.2:80=unix:/x"}, "cannot be a guest forward's address"));    // the gateway
  CHECK(refused({"10.0.2.3:80=unix:/x"}, "cannot be a guest forward's address"));    // the DNS address
  CHECK(refused({"10.0.2.15:80=unix:/x"}, "cannot be a guest forward's address"));   // the guest
  CHECK(refused({"10.0.2.255:80=unix:/x"}, "cannot be a guest forward's address"));  // broadcast
  CHECK(refused({"192.0.2.1:80=unix:/x"}, "cannot be a guest forward's address"));   // outside the subnet
  CHECK(refused({"10.0.2.100:80=unix:/x", "10.0.2.100:80=unix:/y"}, "forwarded twice"));
  o.engine = "slirp";
  CHECK_NOTHROW(o.stack_config());
  o.mode = "mirrored";
  o.engine = "lwip";
  o.host = ns::HostNetwork{};
  o.host->interface = "uplink0";
  o.host->ipv4 = {{Ipv4Addr{192, 0, 2, 10}, 24}};
  o.host->gateway4 = Ipv4Addr{192, 0, 2, 1};
  CHECK(refused({"10.0.2.100:8080=unix:/run/x.sock"}, "mirrored mode"));

  // The file: [forwarding] guest_forwards, checked where it is read.
  auto l = config::parse("[forwarding]\nguest_forwards = [\"10.0.2.100:8080=unix:/run/x.sock\"]\n", "t.toml");
  CHECK(l.settings.guest_forwards == std::vector<std::string>{"10.0.2.100:8080=unix:/run/x.sock"});
  try {
    config::parse("[forwarding]\nguest_forwards = [\"10.0.2.100:8080=unix:x\"]\n", "t.toml");
    FAIL("accepted a relative path");
  } catch (const config::ConfigError& e) {
    CHECK(std::string(e.what()) ==
          "t.toml:2:19: forwarding.guest_forwards[0]: \"10.0.2.100:8080=unix:x\" is not a guest forward: unix:PATH "
          "needs an absolute path; allowed: ADDR:PORT=tcp:HOSTADDR:PORT, ADDR:PORT=unix:PATH or "
          "ADDR:PORT=cmd:COMMAND");
  }
  try {
    config::parse("mode = \"mirrored\"\n[forwarding]\nguest_forwards = [\"10.0.2.100:80=tcp:127.0.0.1:9\"]\n",
                  "t.toml");
    FAIL("mirrored mode accepted a guest forward");
  } catch (const config::ConfigError& e) {
    CHECK(e.key() == "forwarding.guest_forwards");
    CHECK(e.message().find("mirrored mode") != std::string::npos);
  }
}

TEST_CASE("guest forward: the NAT policy lets it through with --restrict; nothing else", "[guestfwd]") {
  engine::NatPolicy nat;
  std::string err;
  nat.guest_forwards.push_back(*engine::parse_guest_forward("10.0.2.100:8080=unix:/x", &err));
  nat.restrict_outbound = true;
  CHECK(nat.guest_forward(engine::IpAddr(Ipv4Addr{10, 0, 2, 100}), 8080) != nullptr);
  CHECK_FALSE(nat.host_destination(Ipv4Addr{10, 0, 2, 100}).has_value());
}

TEST_CASE("guest forward: lwIP connects a guest connection to a host unix socket, --restrict on", "[guestfwd][engine]") {
  UnixListener listener;
  auto config = engine_config();
  std::string err;
  config.nat.guest_forwards.push_back(*engine::parse_guest_forward("10.0.2.100:8080=unix:" + listener.path, &err));
  config.nat.guest_forwards.push_back(*engine::parse_guest_forward("10.0.2.100:8081=unix:/nonexistent/s", &err));
  config.nat.restrict_outbound = true;
  EngineRig rig(config);
  const Ipv4Addr fwd{10, 0, 2, 100};

  GuestTcp g(rig, kGuest4, 42000, fwd, 8080);
  g.syn(7000);
  HostConn host;
  REQUIRE(rig.run_until([&] {
    g.poll();
    if (!host.fd) host.fd = listener.accept();
    return g.established && static_cast<bool>(host.fd);
  }));
  const auto upload = pattern(300 * 1024, 11);
  g.send(upload);
  g.fin();
  REQUIRE(converse(rig, g, &host, [&] { return host.eof; }));
  CHECK(first_difference(host.received, upload) == kSame);
  const auto reply = pattern(200 * 1024, 12);
  size_t off = 0;
  REQUIRE(rig.run_until([&] {
    g.poll();
    host.write_some(reply, &off);
    return g.received.size() >= reply.size();
  }));
  CHECK(first_difference(g.received, reply) == kSame);
  host.fd = Fd();
  REQUIRE(converse(rig, g, nullptr, [&] { return g.got_fin; }));

  // No server behind the other: refused at once with RST.
  GuestTcp m(rig, kGuest4, 42001, fwd, 8081);
  m.syn(9000);
  REQUIRE(converse(rig, m, nullptr, [&] { return m.got_rst; }));
  // Any other port of the address is a host destination, refused by --restrict.
  GuestTcp other(rig, kGuest4, 42002, fwd, 8082);
  other.syn(9500);
  REQUIRE(converse(rig, other, nullptr, [&] { return other.got_rst; }));
  CHECK(rig.stats().tcp_connects == 2);
}

TEST_CASE("guest forward: lwIP runs a cmd: target per connection, its stdin and stdout the connection",
          "[guestfwd][engine]") {
  auto config = engine_config();
  std::string err;
  // tr: every byte through the command, changed, so that an echo by
  // anything else would show.
  config.nat.guest_forwards.push_back(*engine::parse_guest_forward("10.0.2.100:7=cmd:tr a-z A-Z", &err));
  EngineRig rig(config);
  GuestTcp g(rig, kGuest4, 42100, Ipv4Addr{10, 0, 2, 100}, 7);
  g.syn(3000);
  REQUIRE(converse(rig, g, nullptr, [&] { return g.established; }));
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "hello, guest forward " + std::to_string(i) + "\n";
  g.send(bytes_of(text));
  g.fin();
  REQUIRE(converse(rig, g, nullptr, [&] { return g.got_fin; }, 10000));
  std::string upper = text;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  CHECK(first_difference(g.received, bytes_of(upper)) == kSame);
}
