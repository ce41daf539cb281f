// See open_beneath.h.
#include "netstack/sys/open_beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

namespace slipway::sys {

namespace {

constexpr int kFileFlags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;

OpenBeneath failed(OpenBeneath::Error e, int err = 0) {
  OpenBeneath r;
  r.error = e;
  r.errno_value = err;
  return r;
}

OpenBeneath from_errno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return failed(OpenBeneath::Error::kNotFound, err);
    case EXDEV:
    case ELOOP:
      return failed(OpenBeneath::Error::kEscapes, err);
    case EACCES:
    case EPERM:
      return failed(OpenBeneath::Error::kDenied, err);
    default:
      return failed(OpenBeneath::Error::kFailed, err);
  }
}

// Linux before 5.6: one component at a time, no symlink followed.
int open_by_components(int dirfd, const std::vector<std::string>& parts) {
  Fd dir;
  int at = dirfd;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    int next = ::openat(at, parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) return -1;
    dir.reset(next);
    at = next;
  }
  return ::openat(at, parts.back().c_str(), kFileFlags | O_NOFOLLOW);
}

}  // namespace

const char* to_string(OpenBeneath::Error e) {
  switch (e) {
    case OpenBeneath::Error::kNone: return "none";
    case OpenBeneath::Error::kEscapes: return "outside the directory";
    case OpenBeneath::Error::kNotFound: return "not found";
    case OpenBeneath::Error::kNotRegularFile: return "not a regular file";
    case OpenBeneath::Error::kDenied: return "permission denied";
    case OpenBeneath::Error::kFailed: return "cannot open";
  }
  return "?";
}

OpenBeneath open_beneath(int dirfd, std::string_view name) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(start, end - start);
    if (part == "..") return failed(OpenBeneath::Error::kEscapes);
    if (part.find('\0') != std::string_view::npos) return failed(OpenBeneath::Error::kNotFound, ENOENT);
    if (!part.empty() && part != ".") parts.emplace_back(part);
    start = end + 1;
  }
  if (parts.empty()) return failed(OpenBeneath::Error::kNotRegularFile);  // DIR itself
  std::string rel;
  for (const auto& p : parts) rel += (rel.empty() ? "" : "/") + p;

  open_how how{};
  how.flags = kFileFlags;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how);
  if (fd < 0 && errno == ENOSYS) fd = open_by_components(dirfd, parts);
  if (fd < 0) return from_errno(errno);
  OpenBeneath r;
  r.fd.reset(static_cast<int>(fd));
  struct stat st {};
  if (::fstat(r.fd.get(), &st) != 0) return from_errno(errno);
  if (!S_ISREG(st.st_mode)) return failed(OpenBeneath::Error::kNotRegularFile);
  r.size = static_cast<uint64_t>(st.st_size);
  return r;
}

}  // namespace slipway::sys
