// The user namespace's ID maps: see id_maps.h.
#include "netstack/ns/id_maps.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <stdexcept>
#include <string>

#include "netstack/sys/error.h"
#include "netstack/sys/fd.h"

namespace slipway::ns {
namespace {

void write_proc_file(pid_t pid, const char* file, const std::string& content) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  sys::Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) throw sys::SystemError("cannot open " + path, errno);
  if (write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    const int error = errno;
    throw sys::SystemError("cannot write '" + content.substr(0, content.find('\n')) + "' to " + path, error);
  }
}

// Our own ID ranges, mapped one to one ("0 0 4294967295" in the initial
// user namespace).
std::string identity_map(const char* own_map) {
  std::ifstream in(own_map);
  std::string out;
  unsigned long inside = 0, outside = 0, count = 0;
  while (in >> inside >> outside >> count) {
    out += std::to_string(inside) + " " + std::to_string(inside) + " " + std::to_string(count) + "\n";
  }
  if (out.empty()) throw std::runtime_error(std::string("cannot read ") + own_map);
  return out;
}

}  // namespace

void write_id_maps(pid_t pid) {
  if (geteuid() == 0) {
    write_proc_file(pid, "uid_map", identity_map("/proc/self/uid_map"));
    write_proc_file(pid, "gid_map", identity_map("/proc/self/gid_map"));
    return;
  }
  std::string setgroups = "/proc/" + std::to_string(pid) + "/setgroups";
  if (access(setgroups.c_str(), F_OK) == 0) write_proc_file(pid, "setgroups", "deny");
  write_proc_file(pid, "uid_map", "0 " + std::to_string(geteuid()) + " 1");
  write_proc_file(pid, "gid_map", "0 " + std::to_string(getegid()) + " 1");
}

}  // namespace slipway::ns
