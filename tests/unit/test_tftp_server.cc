// The TFTP server (gateway/tftp_server.h) driven directly, with time passed
// in by the test, on a real directory: transfers, option negotiation, the
// refusals (traversal, absolute paths, escaping symlinks, FIFOs,
// directories, writes), retransmission, duplicate ACKs, block-number
// rollover and the transfer bound. Also the wire format (wire/tftp.h), the
// gateway's interception of TFTP in front of the engine (both engines) and
// DHCP's boot options.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <random>
#include <string>
#include <vector>

#include "gateway_rig.h"
#include "netstack/cli/options.h"
#include "netstack/config/config_file.h"
#include "netstack/gateway/dhcp_server.h"
#include "netstack/gateway/tftp_server.h"
#include "netstack/wire/dhcp.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/tftp.h"
#include "netstack/wire/udp.h"

using namespace slipway;
using gateway::TftpServer;
using gateway::TftpServerConfig;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/slipway-tftp-unit.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
  std::string write(const std::string& name, const std::string& data) const {
    std::ofstream(path + "/" + name, std::ios::binary) << data;
    return path + "/" + name;
  }
};

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

struct Sent {
  uint16_t guest_port;
  uint16_t server_port;
  std::vector<std::byte> payload;
};

const engine::IpAddr kGuest = wire::Ipv4Addr{10, 0, 2, 15};
constexpr uint16_t kClientPort = 40000;

struct Rig {
  TempDir dir;
  std::unique_ptr<TftpServer> server;
  std::vector<Sent> sent;
  uint64_t now = 1'000'000;

  explicit Rig(size_t max_sessions = 64, uint16_t mtu = 1500) {
    TftpServerConfig c;
    c.root = dir.path;
    c.mtu = mtu;
    c.max_sessions = max_sessions;
    server = std::make_unique<TftpServer>(
        c,
        [this](const engine::IpAddr& guest, uint16_t gp, uint16_t sp, wire::Bytes p) {
          CHECK(guest == kGuest);
          sent.push_back({gp, sp, {p.begin(), p.end()}});
        },
        7);
  }
  void rrq(const std::string& name, std::vector<std::pair<std::string, std::string>> options = {},
           std::string mode = "octet", uint16_t port = kClientPort, uint16_t opcode = wire::tftpop::kRrq) {
    wire::TftpRequest r;
    r.opcode = opcode;
    r.filename = name;
    r.mode = std::move(mode);
    r.options = std::move(options);
    server->handle(kGuest, port, wire::kTftpPort, wire::emit_tftp_request(r), now);
  }
  void ack(uint16_t server_port, uint16_t block, uint16_t port = kClientPort) {
    server->handle(kGuest, port, server_port, wire::emit_tftp_ack(block), now);
  }
  const Sent& last() const {
    REQUIRE(!sent.empty());
    return sent.back();
  }
  std::optional<wire::TftpErrorPacket> last_error() const { return wire::parse_tftp_error(last().payload); }
  // Acknowledges every DATA until the short one; returns the file's bytes.
  std::string fetch_rest(uint16_t tid, size_t max_blocks = 1u << 20) {
    std::string out;
    for (size_t i = 0; i < max_blocks; ++i) {
      auto block = wire::tftp_data_block(last().payload);
      REQUIRE(block);
      REQUIRE(last().server_port == tid);
      auto data = wire::tftp_data_payload(last().payload);
      out.append(reinterpret_cast<const char*>(data.data()), data.size());
      const size_t before = sent.size();
      ack(tid, *block);
      if (sent.size() == before) return out;  // the last block's ACK: nothing more
    }
    FAIL("too many blocks");
    return out;
  }
};

}  // namespace

TEST_CASE("tftp wire: requests parse and refuse malformed input", "[tftp][wire]") {
  wire::TftpRequest r;
  r.filename = "pxelinux.0";
  r.mode = "OCTET";
  r.options = {{"BlkSize", "1428"}, {"tsize", "0"}};
  auto bytes = wire::emit_tftp_request(r);
  auto p = wire::parse_tftp_request(bytes);
  REQUIRE(p);
  CHECK(p->opcode == wire::tftpop::kRrq);
  CHECK(p->filename == "pxelinux.0");
  CHECK(p->mode == "octet");
  CHECK(p->option("blksize") == std::string_view("1428"));
  CHECK(p->option("tsize") == std::string_view("0"));

  auto refused = [](std::vector<uint8_t> raw) {
    std::vector<std::byte> b;
    for (auto c : raw) b.push_back(std::byte{c});
    wire::TftpError e = wire::TftpError::kNone;
    CHECK_FALSE(wire::parse_tftp_request(b, &e));
    return e;
  };
  CHECK(refused({0, 1}) == wire::TftpError::kTruncated);
  CHECK(refused({0, 4, 0, 1}) == wire::TftpError::kNotRequest);
  CHECK(refused({0, 1, 'a', 'b', 0, 'o'}) == wire::TftpError::kUnterminated);
  CHECK(refused({0, 1, 0, 'o', 0}) == wire::TftpError::kEmptyName);
  CHECK(refused({0, 1, 'a', 0, 'o', 0, 'x', 0}) == wire::TftpError::kBadOption);
  CHECK(refused({0, 1, 'a', 0, 'o', 0, 0, '1', 0}) == wire::TftpError::kBadOption);
  std::vector<uint8_t> long_name = {0, 1};
  long_name.insert(long_name.end(), 600, 'a');
  long_name.push_back(0);
  CHECK(refused(long_name) == wire::TftpError::kTooLong);

  auto err = wire::parse_tftp_error(wire::emit_tftp_error(1, "file not found"));
  REQUIRE(err);
  CHECK(err->code == 1);
  CHECK(err->message == "file not found");
  auto oack = wire::parse_tftp_oack(wire::emit_tftp_oack({{"blksize", "1400"}}));
  REQUIRE(oack);
  CHECK(oack->size() == 1);
}

TEST_CASE("tftp: a read request without options gets 512-byte DATA blocks and the file intact", "[tftp]") {
  Rig rig;
  const std::string body = random_bytes(512 * 3 + 100, 1);
  rig.dir.write("kernel", body);
  rig.rrq("kernel");
  REQUIRE(rig.sent.size() == 1);
  CHECK(wire::tftp_data_block(rig.last().payload) == 1);
  CHECK(rig.last().payload.size() == 4 + 512);
  const uint16_t tid = rig.last().server_port;
  CHECK(tid >= TftpServer::kFirstTid);
  CHECK(rig.last().guest_port == kClientPort);
  CHECK(rig.server->owns(kGuest, kClientPort, tid));
  CHECK_FALSE(rig.server->owns(kGuest, kClientPort + 1, tid));  // another guest port: the engine's
  CHECK(rig.fetch_rest(tid) == body);
  CHECK(rig.server->stats().completed == 1);
  CHECK(rig.server->stats().bytes_sent == body.size());
  // A stray ACK after the end is absorbed, then the transfer is forgotten.
  CHECK(rig.server->owns(kGuest, kClientPort, tid));
  rig.now += TftpServer::kLingerMs;
  rig.server->poll(rig.now);
  CHECK(rig.server->sessions() == 0);
  CHECK_FALSE(rig.server->owns(kGuest, kClientPort, tid));
}

TEST_CASE("tftp: a file of a whole number of blocks ends with an empty block", "[tftp]") {
  Rig rig;
  const std::string body = random_bytes(1024, 2);
  rig.dir.write("f", body);
  rig.rrq("f");
  const uint16_t tid = rig.last().server_port;
  CHECK(rig.fetch_rest(tid) == body);
  CHECK(wire::tftp_data_block(rig.last().payload) == 3);
  CHECK(rig.last().payload.size() == 4);
}

TEST_CASE("tftp: blksize and tsize are negotiated with an OACK and blksize fits the link's MTU", "[tftp]") {
  Rig rig(64, 1500);
  const std::string body = random_bytes(100'000, 3);
  rig.dir.write("initrd", body);
  rig.rrq("initrd", {{"blksize", "8192"}, {"tsize", "0"}, {"timeout", "3"}, {"windowsize", "8"}});
  REQUIRE(rig.sent.size() == 1);
  auto oack = wire::parse_tftp_oack(rig.last().payload);
  REQUIRE(oack);
  std::map<std::string, std::string> got(oack->begin(), oack->end());
  CHECK(got["blksize"] == "1468");  // 1500 - 20 - 8 - 4
  CHECK(got["tsize"] == "100000");
  CHECK(got["timeout"] == "3");
  CHECK(got.count("windowsize") == 0);
  const uint16_t tid = rig.last().server_port;
  rig.ack(tid, 0);
  CHECK(rig.last().payload.size() == 4 + 1468);
  CHECK(rig.fetch_rest(tid) == body);
  // The timeout option is the retransmission interval.
  rig.rrq("initrd", {{"timeout", "3"}}, "octet", kClientPort + 1);
  const size_t before = rig.sent.size();
  rig.now += 2999;
  rig.server->poll(rig.now);
  CHECK(rig.sent.size() == before);
  rig.now += 1;
  rig.server->poll(rig.now);
  CHECK(rig.sent.size() == before + 1);
}

TEST_CASE("tftp: a blksize below 8 or not a number is ignored and a large one is lowered to 65464", "[tftp]") {
  Rig rig(64, 65520);
  rig.dir.write("f", random_bytes(10, 4));
  rig.rrq("f", {{"blksize", "4"}});
  CHECK(wire::tftp_data_block(rig.last().payload) == 1);  // no OACK: no option taken
  rig.rrq("f", {{"blksize", "1x"}}, "octet", kClientPort + 1);
  CHECK(wire::tftp_data_block(rig.last().payload) == 1);
  rig.rrq("f", {{"blksize", "65535"}}, "octet", kClientPort + 2);
  auto oack = wire::parse_tftp_oack(rig.last().payload);
  REQUIRE(oack);
  CHECK(oack->front().second == "65464");
}

TEST_CASE("tftp: names that leave the directory are refused and absolute names are inside it", "[tftp]") {
  Rig rig;
  rig.dir.write("boot.txt", "inside");
  TempDir outside;
  outside.write("secret", "outside");
  REQUIRE(mkdir((rig.dir.path + "/sub").c_str(), 0755) == 0);
  rig.dir.write("sub/file", "sub");
  auto error_for = [&](const std::string& name) -> uint16_t {
    rig.sent.clear();
    rig.rrq(name);
    REQUIRE(rig.sent.size() == 1);
    auto e = rig.last_error();
    return e ? e->code : 0xffff;
  };
  // ../ in every position.
  const std::string rel_out = "../" + outside.path.substr(outside.path.rfind('/') + 1) + "/secret";
  CHECK(error_for(rel_out) == wire::tftperr::kAccessViolation);
  CHECK(error_for("sub/../../etc/passwd") == wire::tftperr::kAccessViolation);
  CHECK(error_for("sub/..") == wire::tftperr::kAccessViolation);
  CHECK(error_for("..") == wire::tftperr::kAccessViolation);
  // An absolute path is taken below DIR: the host's file is not served.
  CHECK(error_for(outside.path + "/secret") == wire::tftperr::kFileNotFound);
  CHECK(error_for("/etc/passwd") == wire::tftperr::kFileNotFound);
  // Symlinks out of DIR are refused, absolute or relative, also through a directory.
  REQUIRE(symlink((outside.path + "/secret").c_str(), (rig.dir.path + "/abs-link").c_str()) == 0);
  REQUIRE(symlink(("../" + outside.path.substr(outside.path.rfind('/') + 1) + "/secret").c_str(),
                  (rig.dir.path + "/rel-link").c_str()) == 0);
  REQUIRE(symlink(outside.path.c_str(), (rig.dir.path + "/dir-link").c_str()) == 0);
  CHECK(error_for("abs-link") == wire::tftperr::kAccessViolation);
  CHECK(error_for("rel-link") == wire::tftperr::kAccessViolation);
  CHECK(error_for("dir-link/secret") == wire::tftperr::kAccessViolation);
  // Not regular files: a directory, a FIFO (refused without blocking), a device by symlink.
  REQUIRE(mkfifo((rig.dir.path + "/fifo").c_str(), 0644) == 0);
  CHECK(error_for("sub") == wire::tftperr::kAccessViolation);
  CHECK(error_for("fifo") == wire::tftperr::kAccessViolation);
  CHECK(error_for("/") == wire::tftperr::kAccessViolation);
  CHECK(error_for("missing") == wire::tftperr::kFileNotFound);
  CHECK(rig.server->sessions() == 0);
  CHECK(rig.server->stats().access_denied >= 10);
  // What is inside is served, by relative or absolute name, through a symlink inside.
  REQUIRE(symlink("sub/file", (rig.dir.path + "/in-link").c_str()) == 0);
  for (const std::string name : {"boot.txt", "/boot.txt", "./sub//file", "/sub/file", "in-link"}) {
    rig.sent.clear();
    rig.rrq(name, {}, "octet", static_cast<uint16_t>(kClientPort + 100 + rig.server->sessions()));
    REQUIRE(rig.sent.size() == 1);
    INFO(name);
    CHECK(wire::tftp_data_block(rig.last().payload) == 1);
  }
}

TEST_CASE("tftp: a write request is refused with an access violation", "[tftp]") {
  Rig rig;
  rig.rrq("upload", {}, "octet", kClientPort, wire::tftpop::kWrq);
  auto e = rig.last_error();
  REQUIRE(e);
  CHECK(e->code == wire::tftperr::kAccessViolation);
  CHECK(rig.server->sessions() == 0);
  CHECK(rig.server->stats().write_refused == 1);
  // Nothing was created.
  CHECK(access((rig.dir.path + "/upload").c_str(), F_OK) != 0);
}

TEST_CASE("tftp: garbage to port 69 is dropped or refused and never kept", "[tftp]") {
  Rig rig;
  const std::vector<std::vector<std::byte>> inputs = {
      {}, {std::byte{0}}, {std::byte{0}, std::byte{4}, std::byte{0}, std::byte{1}},  // an ACK: dropped
      {std::byte{0}, std::byte{1}, std::byte{'a'}, std::byte{'b'}, std::byte{'c'}},   // unterminated: ERROR 4
      {std::byte{0xff}, std::byte{0xff}, std::byte{0}, std::byte{0}}};
  for (const auto& in : inputs) rig.server->handle(kGuest, kClientPort, 69, in, rig.now);
  CHECK(rig.server->sessions() == 0);
  CHECK(rig.server->stats().dropped == 4);
  CHECK(rig.server->stats().bad_requests == 1);
  REQUIRE(rig.sent.size() == 1);
  CHECK(rig.last_error()->code == wire::tftperr::kIllegalOperation);
  // An unsupported mode.
  rig.dir.write("f", "x");
  rig.rrq("f", {}, "mail");
  CHECK(rig.last_error()->code == wire::tftperr::kIllegalOperation);
}

TEST_CASE("tftp: a lost ACK is answered by retransmission on time a bounded number of times", "[tftp]") {
  Rig rig;
  rig.dir.write("f", random_bytes(2000, 5));
  rig.rrq("f");
  const uint16_t tid = rig.last().server_port;
  const auto first = rig.last().payload;
  REQUIRE(rig.server->next_deadline() == rig.now + 1000);
  rig.now += 999;
  rig.server->poll(rig.now);
  CHECK(rig.sent.size() == 1);
  for (unsigned i = 1; i <= TftpServer::kMaxRetries; ++i) {
    rig.now += 1000;
    rig.server->poll(rig.now);
    REQUIRE(rig.sent.size() == 1 + i);
    CHECK(rig.last().payload == first);
    CHECK(rig.last().server_port == tid);
  }
  rig.now += 1000;
  rig.server->poll(rig.now);
  CHECK(rig.sent.size() == 1 + TftpServer::kMaxRetries);
  CHECK(rig.server->sessions() == 0);
  CHECK(rig.server->stats().timed_out == 1);
  CHECK_FALSE(rig.server->owns(kGuest, kClientPort, tid));
}

TEST_CASE("tftp: a retransmitted block is followed normally once acknowledged", "[tftp]") {
  Rig rig;
  const std::string body = random_bytes(3000, 6);
  rig.dir.write("f", body);
  rig.rrq("f");
  const uint16_t tid = rig.last().server_port;
  rig.now += 1000;
  rig.server->poll(rig.now);  // block 1 again
  CHECK(rig.server->stats().retransmits == 1);
  std::string got;
  auto d = wire::tftp_data_payload(rig.last().payload);
  got.append(reinterpret_cast<const char*>(d.data()), d.size());
  rig.ack(tid, 1);
  got += rig.fetch_rest(tid);
  CHECK(got == body);
}

TEST_CASE("tftp: duplicate ACKs never cause duplicate DATA (Sorcerer's Apprentice)", "[tftp]") {
  Rig rig;
  rig.dir.write("f", random_bytes(5000, 7));
  rig.rrq("f");
  const uint16_t tid = rig.last().server_port;
  rig.ack(tid, 1);
  REQUIRE(rig.sent.size() == 2);
  CHECK(wire::tftp_data_block(rig.last().payload) == 2);
  // The client's ACK 1 arrives again (delayed duplicate), twice: no DATA.
  rig.ack(tid, 1);
  rig.ack(tid, 1);
  CHECK(rig.sent.size() == 2);
  CHECK(rig.server->stats().duplicate_acks == 2);
  rig.ack(tid, 2);
  CHECK(rig.sent.size() == 3);
  CHECK(wire::tftp_data_block(rig.last().payload) == 3);
  // A repeated RRQ from the same port does not start a second transfer.
  rig.rrq("f");
  CHECK(rig.sent.size() == 3);
  CHECK(rig.server->sessions() == 1);
}

TEST_CASE("tftp: block numbers roll over from 65535 to 0 and the file arrives whole", "[tftp]") {
  Rig rig;
  // 70,000 blocks of 8 bytes: past block 65535 without a 32 MiB file.
  const std::string body = random_bytes(70'000 * 8 + 3, 8);
  rig.dir.write("big", body);
  rig.rrq("big", {{"blksize", "8"}, {"tsize", "0"}});
  const uint16_t tid = rig.last().server_port;
  rig.ack(tid, 0);
  std::vector<uint16_t> around;
  std::string got;
  for (size_t i = 0; i < 80'000; ++i) {
    auto block = wire::tftp_data_block(rig.last().payload);
    REQUIRE(block);
    if (i >= 65533 && i <= 65537) around.push_back(*block);
    auto data = wire::tftp_data_payload(rig.last().payload);
    got.append(reinterpret_cast<const char*>(data.data()), data.size());
    if (data.size() < 8) break;
    // An old ACK with the same low bits as... the previous block is ignored.
    rig.ack(tid, *block);
  }
  CHECK(around == std::vector<uint16_t>{65534, 65535, 0, 1, 2});
  CHECK(got.size() == body.size());
  CHECK(got == body);
}

TEST_CASE("tftp: netascii sends LF as CR LF and CR as CR NUL across block boundaries", "[tftp]") {
  Rig rig;
  std::string text;
  for (int i = 0; i < 200; ++i) text += "line " + std::to_string(i) + "\n" + (i % 7 == 0 ? "\r" : "");
  rig.dir.write("t", text);
  rig.rrq("t", {}, "netascii");
  std::string got = rig.fetch_rest(rig.last().server_port);
  std::string want;
  for (char c : text) {
    if (c == '\n') want += "\r\n";
    else if (c == '\r') want += std::string("\r\0", 2);
    else want += c;
  }
  CHECK(got == want);
}

TEST_CASE("tftp: transfers are bounded and the one too many gets ERROR with nothing kept", "[tftp]") {
  Rig rig(3);
  rig.dir.write("f", random_bytes(4000, 9));
  for (uint16_t i = 0; i < 3; ++i) rig.rrq("f", {}, "octet", static_cast<uint16_t>(kClientPort + i));
  CHECK(rig.server->sessions() == 3);
  std::set<uint16_t> tids;
  for (const auto& s : rig.sent) tids.insert(s.server_port);
  CHECK(tids.size() == 3);
  rig.rrq("f", {}, "octet", kClientPort + 10);
  auto e = rig.last_error();
  REQUIRE(e);
  CHECK(e->message == "too many transfers");
  CHECK(rig.server->sessions() == 3);
  CHECK(rig.server->stats().busy == 1);
  // A client's ERROR ends its transfer and frees its place.
  rig.server->handle(kGuest, kClientPort, rig.sent[0].server_port, wire::emit_tftp_error(0, "cancel"), rig.now);
  CHECK(rig.server->sessions() == 2);
  rig.rrq("f", {}, "octet", kClientPort + 11);
  CHECK(wire::tftp_data_block(rig.last().payload) == 1);
  // An unexpected packet on a transfer's port ends it with ERROR 4.
  const uint16_t tid = rig.last().server_port;
  rig.server->handle(kGuest, kClientPort + 11, tid, wire::emit_tftp_data(1, {}), rig.now);
  CHECK(rig.last_error()->code == wire::tftperr::kIllegalOperation);
  CHECK(rig.server->sessions() == 2);
}

TEST_CASE("tftp: a missing directory is refused at start with its name", "[tftp]") {
  TftpServerConfig c;
  c.root = "/nonexistent/slipway-tftp";
  CHECK_THROWS_WITH(TftpServer(c, [](auto&&...) {}), Catch::Contains("/nonexistent/slipway-tftp"));
}

TEST_CASE("dhcp: with a boot file offers carry next-server and the file field and options 66 and 67", "[tftp][dhcp]") {
  gateway::DhcpServerConfig c;
  c.boot_file = "boot.ipxe";
  c.next_server = wire::Ipv4Addr{10, 0, 2, 2};
  gateway::DhcpServer server(c);
  wire::DhcpMessage m;
  m.xid = 1;
  m.chaddr = wire::MacAddr{{0x52, 0x54, 0, 0, 0, 1}};
  m.message_type = wire::dhcpmsg::kDiscover;
  auto reply = server.handle(m.emit(), m.chaddr, gateway::Clock::time_point{} + std::chrono::hours(1));
  REQUIRE(reply);
  auto offer = wire::DhcpMessage::parse(reply->payload);
  REQUIRE(offer);
  CHECK(offer->siaddr == wire::Ipv4Addr{10, 0, 2, 2});
  CHECK(offer->file == "boot.ipxe");
  CHECK(offer->tftp_server_name == "10.0.2.2");
  CHECK(offer->bootfile_name == "boot.ipxe");
  // Without one, nothing about booting.
  gateway::DhcpServer plain(gateway::DhcpServerConfig{});
  reply = plain.handle(m.emit(), m.chaddr, gateway::Clock::time_point{} + std::chrono::hours(1));
  REQUIRE(reply);
  offer = wire::DhcpMessage::parse(reply->payload);
  REQUIRE(offer);
  CHECK(offer->siaddr.is_unspecified());
  CHECK(offer->file.empty());
  CHECK(offer->bootfile_name.empty());
  CHECK(offer->tftp_server_name.empty());
}

TEST_CASE("gateway: TFTP to the gateway is served in front of either engine and other UDP goes on", "[tftp][gateway]") {
  auto engine = GENERATE(stack::EngineKind::kLwip, stack::EngineKind::kSlirp);
  TempDir dir;
  const std::string body = random_bytes(3000, 10);
  dir.write("pxe.bin", body);
  stack::StackConfig config;
  config.engine = engine;
  config.gateway.tftp_root = dir.path;
  config.gateway.mtu = 1500;
  config.gateway.nat.restrict_outbound = true;  // a gateway service: reachable anyway
  config.dns = false;
  test::GatewayRig rig(config);
  const wire::MacAddr guest_mac{{0x52, 0x54, 0, 0x12, 0x34, 0x56}};
  const auto gw = config.gateway.nat.gateway;
  const auto guest = config.gateway.nat.guest;
  auto udp_frame = [&](uint16_t sport, uint16_t dport, const std::vector<std::byte>& payload) {
    return wire::build_ipv4_udp_frame(rig.gw_mac(), guest_mac, guest, sport, gw, dport, payload);
  };
  wire::TftpRequest r;
  r.filename = "pxe.bin";
  r.mode = "octet";
  r.options = {{"blksize", "1024"}};
  rig.send(udp_frame(2000, 69, wire::emit_tftp_request(r)));
  // The OACK comes from the gateway's address and a port of its own.
  auto reply_of = [&]() -> std::optional<std::pair<uint16_t, std::vector<std::byte>>> {
    for (auto it = rig.received.rbegin(); it != rig.received.rend(); ++it) {
      auto eth = wire::EthernetFrame::parse(*it);
      if (!eth || eth->ethertype() != wire::ethertype::kIpv4) continue;
      auto ip = wire::Ipv4Packet::parse(eth->payload());
      if (!ip || ip->src() != gw || ip->protocol() != wire::ipproto::kUdp) continue;
      auto udp = wire::UdpDatagram::parse(ip->payload());
      if (!udp || udp->dst_port() != 2000) continue;
      CHECK(wire::udp_checksum_ok(ip->src(), ip->dst(), ip->payload()));
      return std::make_pair(udp->src_port(), std::vector<std::byte>(udp->payload().begin(), udp->payload().end()));
    }
    return std::nullopt;
  };
  REQUIRE(rig.run_until([&] { return reply_of().has_value(); }));
  auto [tid, oack] = *reply_of();
  REQUIRE(wire::parse_tftp_oack(oack));
  std::string got;
  uint16_t next = 0;
  for (int i = 0; i < 10; ++i) {
    rig.received.clear();
    rig.send(udp_frame(2000, tid, wire::emit_tftp_ack(next)));
    REQUIRE(rig.run_until([&] { return reply_of().has_value(); }));
    auto data = reply_of()->second;
    REQUIRE(wire::tftp_data_block(data) == next + 1);
    auto d = wire::tftp_data_payload(data);
    got.append(reinterpret_cast<const char*>(d.data()), d.size());
    ++next;
    if (d.size() < 1024) break;
  }
  rig.send(udp_frame(2000, tid, wire::emit_tftp_ack(next)));
  CHECK(got == body);
  REQUIRE(rig.gw->tftp());
  CHECK(rig.gw->tftp()->stats().completed == 1);
  // UDP to another gateway port, or to the transfer's port from another
  // guest port, is not the server's (the engine's, as without TFTP).
  rig.send(udp_frame(2001, 5353, {std::byte{1}}));
  rig.send(udp_frame(2001, tid, wire::emit_tftp_ack(1)));
  rig.pump();
  CHECK(rig.gw->tftp()->stats().dropped == 0);
  CHECK(rig.gw->tftp()->stats().requests == 1);
  CHECK(rig.gw->tftp()->stats().duplicate_acks == 0);
}

TEST_CASE("tftp options: --tftp and --boot-file reach the gateway and bad values are refused naming them", "[tftp][config]") {
  TempDir dir;
  cli::NetworkOptions o;
  o.tftp_dir = dir.path;
  o.boot_file = "boot.ipxe";
  auto gw = o.gateway_config();
  CHECK(gw.tftp_root == dir.path);
  CHECK(gw.boot_file == "boot.ipxe");
  auto dhcp = gateway::dhcp_config_for(gw);
  CHECK(dhcp.boot_file == "boot.ipxe");
  CHECK(dhcp.next_server == gw.nat.gateway);
  // --boot-file alone (a URL for iPXE) is allowed; --tftp alone says nothing in DHCP.
  cli::NetworkOptions url;
  url.boot_file = "http://10.0.2.2:8000/boot.ipxe";
  CHECK(gateway::dhcp_config_for(url.gateway_config()).boot_file == url.boot_file);
  cli::NetworkOptions only_tftp;
  only_tftp.tftp_dir = dir.path;
  CHECK(gateway::dhcp_config_for(only_tftp.gateway_config()).boot_file.empty());

  auto refused = [&](cli::NetworkOptions bad, const char* flag, const char* words) {
    try {
      bad.stack_config();
    } catch (const CLI::ValidationError& e) {
      std::string what = e.what();
      INFO(what);
      CHECK(what.find(flag) != std::string::npos);
      CHECK(what.find(words) != std::string::npos);
      return true;
    }
    return false;
  };
  cli::NetworkOptions bad = o;
  bad.tftp_dir = dir.path + "/missing";
  CHECK(refused(bad, "--tftp", "No such file or directory"));
  bad.tftp_dir = dir.write("file", "x");
  CHECK(refused(bad, "--tftp", "is not a directory"));
  bad = o;
  bad.boot_file = std::string("a\x01b");
  CHECK(refused(bad, "--boot-file", "not a boot file name"));
  bad.boot_file = std::string(300, 'a');
  CHECK(refused(bad, "--boot-file", "not a boot file name"));
  bad = o;
  bad.engine = "slirp";
  CHECK_NOTHROW(bad.stack_config());
  bad.mode = "mirrored";
  bad.engine = "lwip";
  bad.host = ns::HostNetwork{};
  bad.host->interface = "uplink0";
  bad.host->ipv4 = {{wire::Ipv4Addr{192, 0, 2, 10}, 24}};
  bad.host->gateway4 = wire::Ipv4Addr{192, 0, 2, 1};
  CHECK(refused(bad, "--tftp", "mirrored mode"));

  // The file: [tftp] directory and boot_file, checked where they are read.
  auto l = config::parse("[tftp]\ndirectory = \"" + dir.path + "\"\nboot_file = \"pxelinux.0\"\n", "t.toml");
  CHECK(l.settings.tftp_dir == dir.path);
  CHECK(l.settings.boot_file == "pxelinux.0");
  try {
    config::parse("[tftp]\ndirectory = \"" + dir.path + "/nope\"\n", "t.toml");
    FAIL("accepted a missing directory");
  } catch (const config::ConfigError& e) {
    CHECK(e.key() == "tftp.directory");
    CHECK(e.line() == 2);
    CHECK(std::string(e.what()).find("nope") != std::string::npos);
  }
}
