// The sandbox (sys/sandbox.h), each check in a forked child so that the
// test process stays free: the child's /proc status shows the filter and
// no-new-privileges, the data path's calls still work, and a call outside
// the allow-list ends the child with exit 159 and a line naming the call.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "netstack/sys/sandbox.h"

namespace {

struct ChildResult {
  int status = 0;
  std::string output;  // stdout and stderr
};

// Runs body() in a forked child after enter_sandbox(); the child exits with
// body()'s value.
template <class Body>
ChildResult in_sandboxed_child(Body body, slipway::sys::SandboxOptions options = {}) {
  int p[2];
  REQUIRE(::pipe(p) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(p[1], STDOUT_FILENO);
    ::dup2(p[1], STDERR_FILENO);
    ::close(p[0]);
    try {
      slipway::sys::enter_sandbox(options);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "enter_sandbox: %s\n", e.what());
      ::_exit(100);
    }
    ::_exit(body());
  }
  ::close(p[1]);
  ChildResult r;
  char buf[512];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0) r.output.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  REQUIRE(::waitpid(pid, &r.status, 0) == pid);
  return r;
}

std::string status_line(const std::string& status, const std::string& key) {
  std::istringstream in(status);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return line;
  return "";
}

}  // namespace

TEST_CASE("sandbox: seccomp mode 2 and no new privileges, and the data path's calls work", "[sandbox]") {
  auto r = in_sandboxed_child([] {
    std::ifstream f("/proc/self/status");
    std::stringstream ss;
    ss << f.rdbuf();
    std::string s = ss.str();
    std::printf("%s\n%s\n%s\n", status_line(s, "Seccomp").c_str(), status_line(s, "NoNewPrivs").c_str(),
                status_line(s, "CapEff").c_str());
    // Sockets, as the data path uses them.
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return 2;
    ::close(fd);
    std::fflush(stdout);
    return 0;
  });
  INFO(r.output);
  REQUIRE(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 0);
  CHECK(r.output.find("Seccomp:\t2") != std::string::npos);
  CHECK(r.output.find("NoNewPrivs:\t1") != std::string::npos);
  // Whatever the test runs as, no capability beyond the kept two remains
  // (CAP_NET_BIND_SERVICE 10, CAP_NET_RAW 13: 0x2400 at most).
  auto cap = r.output.substr(r.output.find("CapEff:") + 7);
  CHECK((std::stoull(cap, nullptr, 16) & ~0x2400ull) == 0);
}

TEST_CASE("sandbox: a call outside the list ends the process with a line naming it", "[sandbox]") {
  auto r = in_sandboxed_child([] {
    // execve is not on the list.
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    ::execve("/bin/true", argv, environ);
    return 3;
  });
  INFO(r.output);
  REQUIRE(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 128 + SIGSYS);
  CHECK(r.output.find("sandbox: system call execve (") != std::string::npos);

  r = in_sandboxed_child([] { return ::syscall(SYS_setns, -1, 0) < 0 ? 4 : 5; });
  CHECK(WEXITSTATUS(r.status) == 128 + SIGSYS);
  CHECK(r.output.find("system call setns") != std::string::npos);
  // ... but allowed with the namespace helpers (EBADF from the kernel).
  slipway::sys::SandboxOptions helpers;
  helpers.namespace_helpers = true;
  r = in_sandboxed_child([] { return ::syscall(SYS_setns, -1, 0) < 0 && errno == EBADF ? 0 : 6; }, helpers);
  INFO(r.output);
  CHECK(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 0);
}
