// Fuzz target: the TFTP server (gateway/tftp_server.h) and its request
// parser (wire/tftp.h), on a real directory made once (a small file, a file
// of several blocks, a subdirectory, a symlink out of it and a FIFO). Each
// input is a sequence of records (fuzz_common.h); a record's first byte
// chooses what happens: bits 0-1 = 0: the rest goes to port 69, 1: to the
// port of the transfer the server answered last, 2: the clock moves by
// (the next byte) x 100 ms and the server polls, 3: the rest is parsed as a
// request only; bits 2-3 choose the guest port (one of 4). Fresh server per
// input, with a bound of 4 transfers so the bound is reached.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "fuzz_common.h"
#include "netstack/gateway/tftp_server.h"
#include "netstack/wire/tftp.h"

using namespace slipway;

namespace {
std::string g_root;

void remove_root() {
  for (const char* f : {"/small", "/lines", "/sub/file", "/out", "/fifo"}) (void)unlink((g_root + f).c_str());
  (void)rmdir((g_root + "/sub").c_str());
  (void)rmdir(g_root.c_str());
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet();
  char tmpl[] = "/tmp/slipway-fuzz-tftp.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) std::abort();
  g_root = tmpl;
  std::ofstream(g_root + "/small") << "hello\n";
  std::ofstream(g_root + "/lines") << std::string(1500, '\n') << std::string(700, 'x');
  mkdir((g_root + "/sub").c_str(), 0755);
  std::ofstream(g_root + "/sub/file") << std::string(5000, 'y');
  (void)symlink("/etc/hostname", (g_root + "/out").c_str());
  (void)mkfifo((g_root + "/fifo").c_str(), 0644);
  std::atexit(remove_root);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gateway::TftpServerConfig c;
  c.root = g_root;
  c.mtu = 1500;
  c.max_sessions = 4;
  uint16_t last_tid = 0;
  size_t sent = 0;
  gateway::TftpServer server(
      c,
      [&](const engine::IpAddr&, uint16_t, uint16_t server_port, wire::Bytes payload) {
        last_tid = server_port;
        sent += payload.size();
      },
      1);
  const engine::IpAddr guest = wire::Ipv4Addr{10, 0, 2, 15};
  uint64_t now = 1'000'000;
  fuzz::Records records(data, size);
  std::span<const std::byte> rec;
  int n = 0;
  while (records.next(rec) && n++ < 256) {
    if (rec.empty()) continue;
    auto sel = std::to_integer<uint8_t>(rec[0]);
    auto payload = rec.subspan(1);
    const uint16_t port = static_cast<uint16_t>(1000 + ((sel >> 2) & 3));
    switch (sel & 3) {
      case 0:
        server.handle(guest, port, wire::kTftpPort, payload, now);
        break;
      case 1:
        if (server.owns(guest, port, last_tid)) server.handle(guest, port, last_tid, payload, now);
        break;
      case 2:
        now += payload.empty() ? 100 : std::to_integer<uint64_t>(payload[0]) * 100;
        server.poll(now);
        break;
      default:
        (void)wire::parse_tftp_request(payload);
        (void)wire::parse_tftp_oack(payload);
        (void)wire::parse_tftp_error(payload);
        break;
    }
    if (server.sessions() > c.max_sessions) std::abort();
  }
  return 0;
}
