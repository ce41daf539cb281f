// read_regular_file: a small file (configuration, hosts, resolv.conf) read
// whole, with bounds.
//
// Theory of operation. The files slipway reads are named by its user or by
// the host (a --config file, a hosts file, /etc/resolv.conf), so anything
// may be at the path: a directory, a FIFO (opening it for reading would
// block until a writer comes), a device (/dev/zero and /dev/urandom never
// end), or a huge file. The file is opened with O_NONBLOCK (a FIFO then
// opens at once) and checked with fstat() on the open descriptor (no race
// with a rename): only a regular file is read, and only up to max_bytes; a
// larger file, or one that grows past max_bytes while it is read, is
// refused. A regular file whose size stat() reports as 0 (files in /proc)
// is read to its end, within the same bound.
//
// Errors are a small enum with the errno where there is one; why() words
// them for a message ("not a regular file (a directory)", "larger than
// 1048576 bytes", "No such file or directory").
#pragma once

#include <cstddef>
#include <string>

namespace slipway::sys {

struct FileText {
  enum class Error { kNone, kCannotOpen, kNotRegularFile, kTooLarge, kReadFailed };

  std::string text;          // the whole file (when error == kNone)
  Error error = Error::kNone;
  int errno_value = 0;       // kCannotOpen, kReadFailed
  unsigned file_type = 0;    // kNotRegularFile: the st_mode type bits
  size_t max_bytes = 0;      // kTooLarge: the bound

  explicit operator bool() const { return error == Error::kNone; }
  // What is wrong, for a message: "No such file or directory", "not a
  // regular file (a FIFO)", "larger than 1048576 bytes".
  std::string why() const;
};

// Reads `path` whole if it is a regular file of at most `max_bytes`.
FileText read_regular_file(const std::string& path, size_t max_bytes);

}  // namespace slipway::sys
