// Fuzz target: the control API's JSON lines. The control server (with the
// Stack's handler: forwards, flows, stats, leases, ports) listens on a unix
// socket; each input is written to one client connection in the chunks its
// records (fuzz_common.h) say, then the client shuts its side down and
// reads every reply. Every reply line must be a JSON object with a boolean
// "ok". One Stack for the run, in a private network namespace (forwards
// bind ports); forwards an input adds are removed before the next one.
#include <stdlib.h>
#include <sys/un.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz_common.h"
#include "netstack/control/control_server.h"
#include "netstack/control/stack_api.h"
#include "netstack/link/memory_port.h"
#include "netstack/stack/stack.h"

using namespace slipway;

namespace {

struct Rig {
  uv_loop_t loop;
  std::unique_ptr<link::MemoryPort> guest;
  std::unique_ptr<stack::Stack> stack;
  std::unique_ptr<control::ControlServer> server;
  std::string path;

  Rig() {
    uv_loop_init(&loop);
    auto [a, b] = link::MemoryPort::make_pair();
    guest = std::move(a);
    stack::StackConfig c;
    c.dns_config.upstreams = {{"127.0.0.1", 53}};
    stack = std::make_unique<stack::Stack>(&loop, std::move(b), c);
    char dir[] = "/tmp/slipway-fuzz-control.XXXXXX";
    if (mkdtemp(dir) == nullptr) std::abort();
    path = std::string(dir) + "/control.sock";
    control::ControlLimits limits;
    limits.max_line_bytes = 4096;
    server = std::make_unique<control::ControlServer>(&loop, path, control::stack_handler(*stack), limits);
  }
};

Rig* rig = nullptr;

// `complete`: the server closed the connection, so a reply cut short is a bug.
void check_replies(const std::string& replies, bool complete) {
  size_t start = 0;
  while (start < replies.size()) {
    size_t end = replies.find('\n', start);
    if (end == std::string::npos) {
      if (complete) std::abort();  // every reply ends its line
      return;
    }
    auto j = nlohmann::json::parse(replies.substr(start, end - start));
    if (!j.is_object() || !j.contains("ok") || !j["ok"].is_boolean()) std::abort();
    start = end + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet();
  fuzz::isolate_network();
  rig = new Rig;  // lives until exit
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, rig->path.c_str(), sizeof sa.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) std::abort();
  std::string replies;
  auto read_some = [&] {
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) replies.append(buf, static_cast<size_t>(n));
    return n;  // 0 at EOF
  };
  fuzz::Records records(data, size);
  std::span<const std::byte> chunk;
  int n = 0;
  while (records.next(chunk) && n++ < 64) {
    (void)!write(fd, chunk.data(), chunk.size());
    fuzz::spin(&rig->loop, 2);
    read_some();
  }
  shutdown(fd, SHUT_WR);
  bool eof = false;
  for (int i = 0; i < 200 && !eof; ++i) {
    uv_run(&rig->loop, UV_RUN_NOWAIT);
    eof = read_some() == 0;
  }
  close(fd);
  fuzz::spin(&rig->loop, 2);
  check_replies(replies, eof);
  // Forwards added by this input go, so that inputs stay independent.
  for (const auto& f : rig->stack->published().list()) rig->stack->published().remove(f.rule);
  fuzz::spin(&rig->loop, 2);
  return 0;
}
