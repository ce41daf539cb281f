// read_regular_file: see read_file.h.
#include "netstack/sys/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "netstack/sys/error.h"
#include "netstack/sys/fd.h"

namespace slipway::sys {
namespace {

const char* type_name(unsigned type) {
  switch (type) {
    case S_IFDIR:
      return "a directory";
    case S_IFIFO:
      return "a FIFO";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    case S_IFSOCK:
      return "a socket";
    default:
      return "not a plain file";
  }
}

}  // namespace

std::string FileText::why() const {
  switch (error) {
    case Error::kNone:
      return {};
    case Error::kCannotOpen:
    case Error::kReadFailed:
      return errno_text(errno_value);
    case Error::kNotRegularFile:
      return std::string("not a regular file (") + type_name(file_type) + ")";
    case Error::kTooLarge:
      return "larger than " + std::to_string(max_bytes) + " bytes";
  }
  return "unknown error";
}

FileText read_regular_file(const std::string& path, size_t max_bytes) {
  FileText r;
  r.max_bytes = max_bytes;
  Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd) {
    r.error = FileText::Error::kCannotOpen;
    r.errno_value = errno;
    return r;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    r.error = FileText::Error::kReadFailed;
    r.errno_value = errno;
    return r;
  }
  if (!S_ISREG(st.st_mode)) {
    r.error = FileText::Error::kNotRegularFile;
    r.file_type = st.st_mode & S_IFMT;
    return r;
  }
  if (static_cast<unsigned long long>(st.st_size) > max_bytes) {
    r.error = FileText::Error::kTooLarge;
    return r;
  }
  // Read to the end, at most one byte past the bound (to see a file that grew).
  std::string text;
  text.resize(st.st_size > 0 ? static_cast<size_t>(st.st_size) + 1 : std::min<size_t>(max_bytes + 1, 4096));
  size_t used = 0;
  for (;;) {
    if (used == text.size()) {
      if (text.size() > max_bytes) break;
      text.resize(std::min(text.size() * 2, max_bytes + 1));
    }
    ssize_t n = ::read(fd.get(), text.data() + used, text.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      r.error = FileText::Error::kReadFailed;
      r.errno_value = errno;
      return r;
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > max_bytes) {
    r.error = FileText::Error::kTooLarge;
    return r;
  }
  text.resize(used);
  r.text = std::move(text);
  return r;
}

}  // namespace slipway::sys
