// Fuzz target: vhost-user messages from a frontend, together with the
// descriptor chains they point the device at. An input is records
// (fuzz_common.h): the first is the guest memory image, written at offset 0
// of a 1 MiB memfd; each further record is one whole vhost-user message
// (header and payload, as a frontend writes it) sent to a VhostUserPort on
// a socketpair, with the file descriptors the request carries: the memfd
// for each region of SET_MEM_TABLE (and SET_LOG_FD), an eventfd for
// SET_VRING_KICK/CALL/ERR unless the payload says "no fd". Afterwards every
// kick fd is signalled (the device reads the transmit ring: descriptor
// chains in the synthetic memory) and one frame is sent to the guest (the
// receive ring). A fresh port per input.
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <memory>

#include "fuzz_common.h"
#include "netstack/link/vhost_user.h"
#include "netstack/link/vhost_user_msg.h"

using namespace slipway;
namespace vu = link::vhost_user;

namespace {

constexpr size_t kMemorySize = 1 << 20;
uv_loop_t loop;
// FUZZ_VERBOSE=1: what each input did (to check that the seeds reach the rings).
bool verbose = false;

uint64_t load_le(std::span<const std::byte> b, size_t off, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n && off + i < b.size(); ++i) v |= std::to_integer<uint64_t>(b[off + i]) << (8 * i);
  return v;
}

void send_with_fds(int sock, std::span<const std::byte> msg, const std::vector<int>& fds) {
  iovec iov{const_cast<std::byte*>(msg.data()), msg.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * vu::kMaxFds)];
  if (!fds.empty()) {
    mh.msg_control = control;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
  }
  (void)sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void drain(int sock) {
  char buf[4096];
  while (recv(sock, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet();
  verbose = std::getenv("FUZZ_VERBOSE") != nullptr;
  uv_loop_init(&loop);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Records records(data, size);
  std::span<const std::byte> image;
  if (!records.next(image)) return 0;

  int mem = memfd_create("fuzz-guest", MFD_CLOEXEC);
  if (mem < 0 || ftruncate(mem, kMemorySize) != 0) std::abort();
  if (!image.empty()) (void)!pwrite(mem, image.data(), image.size(), 0);

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  std::vector<int> kicks;
  {
    auto port = std::make_unique<link::VhostUserPort>(&loop, 1500);
    port->set_sink([](link::Frame) {});
    port->adopt(sv[1]);
    std::span<const std::byte> msg;
    int n = 0;
    while (records.next(msg) && n++ < 64) {
      std::vector<int> fds;
      const auto request = static_cast<uint32_t>(load_le(msg, 0, 4));
      const auto payload = msg.size() > vu::kHeaderSize ? msg.subspan(vu::kHeaderSize) : std::span<const std::byte>{};
      if (request == vu::kSetMemTable) {
        size_t regions = std::min<size_t>(load_le(payload, 0, 4), vu::kMaxFds);
        for (size_t i = 0; i < regions; ++i) fds.push_back(mem);
      } else if (request == vu::kSetLogFd) {
        fds.push_back(mem);
      } else if (request == vu::kSetVringKick || request == vu::kSetVringCall || request == vu::kSetVringErr) {
        if ((load_le(payload, 0, 8) & vu::kVringNoFd) == 0) {
          int e = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
          fds.push_back(e);
          if (request == vu::kSetVringKick) kicks.push_back(dup(e));
        }
      }
      send_with_fds(sv[0], msg, fds);
      for (int fd : fds)
        if (fd != mem) close(fd);
      fuzz::spin(&loop, 2);
      drain(sv[0]);
    }
    for (int k : kicks) {
      uint64_t one = 1;
      (void)!write(k, &one, sizeof one);
    }
    fuzz::spin(&loop, 4);
    std::byte frame[64] = {};
    for (int i = 0; i < 6; ++i) frame[i] = std::byte{0xff};
    frame[12] = std::byte{0x08};
    port->send(frame);
    fuzz::spin(&loop, 2);
    drain(sv[0]);
    if (verbose) {
      const auto& d = port->device_stats();
      std::fprintf(stderr, "vhost_user: connected %d, frames from the guest %llu, to the guest %llu, ring errors %llu\n",
                   port->connected() ? 1 : 0, static_cast<unsigned long long>(d.tx_frames),
                   static_cast<unsigned long long>(d.rx_frames), static_cast<unsigned long long>(d.ring_errors));
    }
  }
  fuzz::spin(&loop, 4);
  for (int k : kicks) close(k);
  close(sv[0]);
  close(mem);
  return 0;
}
