// Fuzz target: the QEMU stream framing (`-netdev stream`: each frame after
// a 4-byte big-endian length). An input is the byte stream a frontend
// writes, cut into the writes the records (fuzz_common.h) say, to a
// StreamPort on a socketpair; the frames it delivers go to a sink that
// checks their length against the port's limit. A fresh port per input.
#include <memory>

#include "fuzz_common.h"
#include "netstack/link/stream_port.h"

using namespace slipway;

namespace {
uv_loop_t loop;
constexpr size_t kMtu = 1500;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet();
  uv_loop_init(&loop);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) std::abort();
  {
    auto port = std::make_unique<link::StreamPort>(&loop, kMtu);
    size_t delivered = 0;
    port->set_sink([&](link::Frame f) {
      // A frame is never longer than an Ethernet header and the MTU,
      // nor empty.
      if (f.empty() || f.size() > kMtu + 14) std::abort();
      delivered++;
    });
    port->adopt(sv[1]);
    fuzz::Records records(data, size);
    std::span<const std::byte> chunk;
    int n = 0;
    while (records.next(chunk) && n++ < 64) {
      (void)!write(sv[0], chunk.data(), chunk.size());
      fuzz::spin(&loop, 2);
      // Frames back to the frontend: read and dropped.
      char buf[4096];
      while (read(sv[0], buf, sizeof buf) > 0) {
      }
    }
    std::byte frame[60] = {};
    port->send(frame);
    shutdown(sv[0], SHUT_WR);
    fuzz::spin(&loop, 4);
  }
  fuzz::spin(&loop, 4);
  close(sv[0]);
  return 0;
}
