// sys::Fd and sys::SystemError on real descriptors: an Fd closes what it
// holds on destruction, reset and move assignment, and nothing else; release
// gives the descriptor away; closing keeps errno. SystemError words a
// failure as "WHAT: strerror" and keeps the errno.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "netstack/sys/error.h"
#include "netstack/sys/fd.h"

using slipway::sys::Fd;
using slipway::sys::SystemError;

namespace {

bool is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

int open_null() {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  return fd;
}

}  // namespace

TEST_CASE("sys::Fd closes what it owns, once", "[sys]") {
  int raw = open_null();
  {
    Fd fd(raw);
    CHECK(fd.get() == raw);
    CHECK(static_cast<bool>(fd));
    CHECK(is_open(raw));
  }
  CHECK_FALSE(is_open(raw));

  Fd empty;
  CHECK(empty.get() == -1);
  CHECK_FALSE(static_cast<bool>(empty));
  empty.reset();  // nothing to close
  CHECK(empty.get() == -1);
}

TEST_CASE("sys::Fd release, reset and move", "[sys]") {
  int a = open_null();
  int b = open_null();
  Fd fd(a);
  fd.reset(b);
  CHECK_FALSE(is_open(a));
  CHECK(fd.get() == b);
  fd.reset(b);  // the same descriptor again: kept, not closed
  CHECK(is_open(b));

  Fd moved(std::move(fd));
  CHECK(fd.get() == -1);
  CHECK(moved.get() == b);

  int c = open_null();
  Fd other(c);
  other = std::move(moved);  // closes c, takes b
  CHECK_FALSE(is_open(c));
  CHECK(other.get() == b);
  CHECK(moved.get() == -1);

  const int released = other.release();
  CHECK(released == b);
  CHECK(other.get() == -1);
  CHECK(is_open(b));  // the caller owns it now
  close(b);
}

TEST_CASE("sys::Fd keeps errno when it closes", "[sys]") {
  Fd fd(open_null());
  errno = ENOENT;
  fd.reset();
  CHECK(errno == ENOENT);
}

TEST_CASE("sys::SystemError words the failure and keeps errno", "[sys]") {
  const SystemError e("cannot open network namespace /nonexistent", ENOENT);
  CHECK(std::string(e.what()) == std::string("cannot open network namespace /nonexistent: ") + std::strerror(ENOENT));
  CHECK(e.error() == ENOENT);
  CHECK(slipway::sys::errno_text(EPERM) == std::strerror(EPERM));
  // Callers that catch std::runtime_error keep working.
  CHECK_THROWS_AS(throw SystemError("x", EINVAL), std::runtime_error);
}
