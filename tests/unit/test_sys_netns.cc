// sys::open_netns(), sys::run_in_netns() and sys::Helper against the real
// kernel: an fd made in a namespace the test created comes back and belongs
// to that namespace; the child's report comes with it; each failure (no such
// file, not a namespace, not a network namespace, nothing sent, no answer,
// a child that dies, a namespace we may not enter) is the error the callers
// (`slipway attach`, portfwd's sock_diag) show. As a normal user, entering
// goes through the namespace's owning user namespace: a forked child drops
// to nobody and enters a namespace its own child made.
//
// The namespace tests need root (a private namespace per test, see
// private_netns.h); elsewhere they WARN and return.
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <span>
#include <functional>
#include <string>

#include "netstack/sys/error.h"
#include "netstack/sys/netns.h"
#include "private_netns.h"

namespace sys = slipway::sys;
using slipway::test::PrivateNetns;
using sys::Fd;
using sys::Helper;

namespace {

constexpr sys::HelperNames kNames{"test helper", "descriptor"};

struct TestReport {
  int32_t value = 0;
  int32_t error = 0;
};

// In the child: the network namespace it is in, as an fd.
int open_own_netns(TestReport& report) {
  report.value = 42;
  int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (fd < 0) report.error = errno;
  return fd;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace

TEST_CASE("sys::run_in_netns hands back an fd made in the namespace, with the report", "[sys][netns]") {
  PrivateNetns netns;
  SKIP_WITHOUT_NETNS(netns);
  const sys::Netns ns = sys::open_netns(netns.path());
  CHECK(ns.path == netns.path());
  CHECK_FALSE(ns.user);  // root: no user namespace to enter

  auto handoff = sys::run_in_netns<TestReport>(ns, kNames, open_own_netns);
  CHECK(handoff.report.value == 42);
  CHECK(handoff.report.error == 0);
  REQUIRE(handoff.fd);
  CHECK((fcntl(handoff.fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK(PrivateNetns::inode_of(handoff.fd.get()) == netns.inode());

  // The test process itself stayed where it was.
  Fd own(open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  CHECK(PrivateNetns::inode_of(own.get()) != netns.inode());
}

TEST_CASE("sys::open_netns takes a PID", "[sys][netns]") {
  const std::string pid = std::to_string(getpid());
  const sys::Netns ns = sys::open_netns(pid);
  CHECK(ns.path == "/proc/" + pid + "/ns/net");
  CHECK(ns.net);
}

TEST_CASE("sys::open_netns refuses what is not a network namespace", "[sys][netns]") {
  CHECK(message_of([] { sys::open_netns(""); }) == "no network namespace given");
  CHECK(message_of([] { sys::open_netns("/nonexistent/netns"); }) ==
        std::string("cannot open network namespace /nonexistent/netns: ") + std::strerror(ENOENT));
  try {
    sys::open_netns("/nonexistent/netns");
  } catch (const sys::SystemError& e) {
    CHECK(e.error() == ENOENT);
  }
  CHECK(message_of([] { sys::open_netns("/dev/null"); }) == "/dev/null is not a namespace");
  CHECK(message_of([] { sys::open_netns("/proc/self/ns/uts"); }) == "/proc/self/ns/uts is not a network namespace");
}

TEST_CASE("sys::run_in_netns: work that makes no fd, and require_fd", "[sys][netns]") {
  PrivateNetns netns;
  SKIP_WITHOUT_NETNS(netns);
  const sys::Netns ns = sys::open_netns(netns.path());
  auto handoff = sys::run_in_netns<TestReport>(ns, kNames, [](TestReport& report) {
    report.error = EMFILE;
    return -1;
  });
  CHECK(handoff.report.error == EMFILE);
  CHECK_FALSE(handoff.fd);
  CHECK(message_of([&] { sys::require_fd(kNames, handoff.fd); }) == "the test helper sent no descriptor");
}

TEST_CASE("sys::Helper: a message and an fd each way, then release", "[sys][netns]") {
  pid_t pid = -1;
  {
    Helper helper(kNames, [](int sock) {
      std::byte byte{};
      if (recv(sock, &byte, 1, 0) != 1) _exit(1);
      const std::byte answer = byte ^ std::byte{0xff};
      int fds[2];
      if (pipe(fds) != 0 || write(fds[1], "x", 1) != 1) _exit(1);
      sys::send_to_parent(sock, std::span(&answer, 1), fds[0]);
      // Stay until the parent's end closes.
      recv(sock, &byte, 1, 0);
      _exit(7);
    });
    const std::byte question{0x0f};
    helper.send(std::span(&question, 1));
    std::byte answer{};
    Fd fd;
    helper.receive(std::span(&answer, 1), fd);
    CHECK(answer == std::byte{0xf0});
    REQUIRE(fd);
    char c = 0;
    CHECK(read(fd.get(), &c, 1) == 1);
    CHECK(c == 'x');
    pid = helper.release();
    CHECK(helper.pid() == -1);
  }
  // Released: the Helper did not kill it; it exits by itself once the
  // Helper's end of the socketpair is closed, and we reap it.
  REQUIRE(pid > 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 7);
}

TEST_CASE("sys::Helper: a child that exits without answering", "[sys][netns]") {
  Helper helper(kNames, [](int) { _exit(3); });
  TestReport report;
  Fd fd;
  CHECK(message_of([&] { helper.receive(std::as_writable_bytes(std::span(&report, 1)), fd); }) ==
        "the test helper exited unexpectedly");
  // A message of the wrong size is no better.
  Helper short_message(kNames, [](int sock) {
    const std::byte one{1};
    sys::send_to_parent(sock, std::span(&one, 1));
    _exit(0);
  });
  CHECK(message_of([&] { short_message.receive(std::as_writable_bytes(std::span(&report, 1)), fd); }) ==
        "the test helper exited unexpectedly");
  // A child function that returns: the child exits, it does not run on.
  Helper returns(kNames, [](int) {});
  CHECK(message_of([&] { returns.receive(std::as_writable_bytes(std::span(&report, 1)), fd); }) ==
        "the test helper exited unexpectedly");
}

TEST_CASE("sys::Helper: no answer within the timeout; the child is killed and reaped", "[sys][netns]") {
  pid_t pid = -1;
  const auto start = std::chrono::steady_clock::now();
  {
    Helper helper(
        kNames,
        [](int) {
          for (;;) pause();
        },
        std::chrono::seconds(1));
    pid = helper.pid();
    std::byte byte{};
    Fd fd;
    CHECK(message_of([&] { helper.receive(std::span(&byte, 1), fd); }) ==
          "the test helper did not answer within 1 s");
  }
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(took >= std::chrono::milliseconds(900));
  CHECK(took < std::chrono::seconds(5));
  // Killed and reaped by the destructor: no such child any more.
  errno = 0;
  CHECK(waitpid(pid, nullptr, WNOHANG) == -1);
  CHECK(errno == ECHILD);
}

namespace {

// Runs `body` in a forked child that has dropped root for nobody (65534);
// returns the line it wrote, "skip: ..." when that was not possible here.
std::string as_nobody(const std::function<std::string()>& body) {
  int out[2];
  REQUIRE(pipe2(out, O_CLOEXEC) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(out[0]);
    std::string line;
    if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) {
      line = std::string("skip: cannot become nobody: ") + std::strerror(errno);
    } else {
      prctl(PR_SET_DUMPABLE, 1);  // so that our own children's /proc entries are ours
      try {
        line = body();
      } catch (const std::exception& e) {
        line = std::string("error: ") + e.what();
      }
    }
    ssize_t ignored = write(out[1], line.data(), line.size());
    (void)ignored;
    _exit(0);
  }
  close(out[1]);
  std::string line;
  char buf[512];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) line.append(buf, static_cast<size_t>(n));
  close(out[0]);
  waitpid(pid, nullptr, 0);
  return line;
}

}  // namespace

TEST_CASE("sys::run_in_netns as a normal user enters the owning user namespace", "[sys][netns]") {
  if (geteuid() != 0) {
    WARN("skipping: needs root to play a normal user and nobody at once");
    return;
  }
  const std::string result = as_nobody([] {
    // A namespace of our own, as a normal user makes one: a child in a new
    // user + network namespace, waiting until we are done.
    int ready[2], done[2];
    if (pipe(ready) != 0 || pipe(done) != 0) return std::string("error: pipe");
    const pid_t owner = fork();
    if (owner == 0) {
      close(ready[0]);
      close(done[1]);
      char c = unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0 ? 'y' : 'n';
      if (write(ready[1], &c, 1) != 1) _exit(1);
      ssize_t ignored = read(done[0], &c, 1);  // until the test is done
      (void)ignored;
      _exit(0);
    }
    close(ready[1]);
    close(done[0]);
    char c = 0;
    std::string line;
    if (owner < 0 || read(ready[0], &c, 1) != 1 || c != 'y') {
      line = "skip: unprivileged user namespaces are not available";
    } else {
      const sys::Netns ns = sys::open_netns(std::to_string(owner));
      auto handoff = sys::run_in_netns<TestReport>(ns, kNames, open_own_netns);
      Fd theirs(open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!ns.user) {
        line = "error: the owning user namespace was not opened";
      } else if (!handoff.fd) {
        line = "error: no fd, errno " + std::to_string(handoff.report.error);
      } else if (PrivateNetns::inode_of(handoff.fd.get()) != PrivateNetns::inode_of(theirs.get())) {
        line = "error: the fd is from another namespace";
      } else {
        line = "ok";
      }
    }
    close(done[1]);
    waitpid(owner, nullptr, 0);
    return line;
  });
  if (result.rfind("skip: ", 0) == 0) {
    WARN("skipping: " << result.substr(6));
    return;
  }
  CHECK(result == "ok");
}

TEST_CASE("sys::run_in_netns: a namespace we may not enter", "[sys][netns]") {
  PrivateNetns netns;  // made by root: owned by the initial user namespace
  SKIP_WITHOUT_NETNS(netns);
  // As nobody, through our own fd: opening works, entering does not.
  const std::string path = netns.path();
  const std::string result = as_nobody([&] {
    const sys::Netns ns = sys::open_netns(path);
    if (ns.user) return std::string("error: our own user namespace was opened to be entered");
    sys::run_in_netns<TestReport>(ns, kNames, open_own_netns);
    return std::string("error: entered");
  });
  if (result.rfind("skip: ", 0) == 0) {
    WARN("skipping: " << result.substr(6));
    return;
  }
  CHECK(result == "error: cannot enter network namespace " + path + ": " + std::strerror(EPERM));
}
