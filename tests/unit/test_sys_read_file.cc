// sys::read_regular_file on real files: a regular file is read whole; a
// directory, a FIFO (without blocking) and a character device (/dev/zero,
// which never ends) are refused by type; a file over the bound is refused,
// as is a /proc-style file (size 0 in stat) that turns out longer.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "netstack/sys/read_file.h"

using slipway::sys::FileText;
using slipway::sys::read_regular_file;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/slipway-read-file.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace

TEST_CASE("read_regular_file reads a regular file whole", "[sys]") {
  TempDir d;
  write_file(d.path + "/f", "hello\nworld\n");
  auto r = read_regular_file(d.path + "/f", 100);
  REQUIRE(r);
  CHECK(r.text == "hello\nworld\n");
  write_file(d.path + "/empty", "");
  auto e = read_regular_file(d.path + "/empty", 100);
  REQUIRE(e);
  CHECK(e.text.empty());
  // Exactly at the bound is fine, one byte more is not.
  write_file(d.path + "/ten", std::string(10, 'x'));
  CHECK(read_regular_file(d.path + "/ten", 10));
  auto big = read_regular_file(d.path + "/ten", 9);
  CHECK(big.error == FileText::Error::kTooLarge);
  CHECK(big.why() == "larger than 9 bytes");
}

TEST_CASE("read_regular_file refuses what is not a regular file, without blocking", "[sys]") {
  TempDir d;
  auto dir = read_regular_file(d.path, 1 << 20);
  CHECK(dir.error == FileText::Error::kNotRegularFile);
  CHECK(dir.why() == "not a regular file (a directory)");

  REQUIRE(mkfifo((d.path + "/fifo").c_str(), 0600) == 0);
  auto start = std::chrono::steady_clock::now();
  auto fifo = read_regular_file(d.path + "/fifo", 1 << 20);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
  CHECK(fifo.error == FileText::Error::kNotRegularFile);
  CHECK(fifo.why() == "not a regular file (a FIFO)");

  auto zero = read_regular_file("/dev/zero", 1 << 20);
  CHECK(zero.error == FileText::Error::kNotRegularFile);
  CHECK(zero.why() == "not a regular file (a character device)");

  auto missing = read_regular_file(d.path + "/missing", 1 << 20);
  CHECK(missing.error == FileText::Error::kCannotOpen);
  CHECK(missing.why() == "No such file or directory");
}

TEST_CASE("read_regular_file reads a file that stat() says is empty to its end, within the bound", "[sys]") {
  // /proc files report a size of 0.
  auto r = read_regular_file("/proc/self/status", 1 << 20);
  REQUIRE(r);
  CHECK(r.text.find("VmRSS") != std::string::npos);
  auto small = read_regular_file("/proc/self/status", 16);
  CHECK(small.error == FileText::Error::kTooLarge);
}
