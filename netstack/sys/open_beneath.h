// open_beneath: opens a file named by an untrusted relative path, only if it
// resolves inside a directory and is a regular file.
//
// Theory of operation. A guest names files in a directory the user shared
// (the TFTP server's DIR), so the name is hostile: "../" components, an
// absolute path, a symlink inside DIR that points outside it, a FIFO (whose
// open blocks until a writer comes), a device. open_beneath():
//   1. splits the name on '/', drops empty and "." components (so a leading
//      '/' means DIR itself, as tftpd-hpa's -s does) and refuses any ".."
//      component outright (kEscapes), before touching the file system;
//   2. opens the rest relative to the directory's descriptor with openat2()
//      and RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS: the kernel refuses any
//      resolution that would leave DIR (an absolute symlink, a symlink with
//      "..", a /proc magic link) with EXDEV or ELOOP (kEscapes). Where
//      openat2() is missing (Linux before 5.6: ENOSYS), each component is
//      opened with O_NOFOLLOW instead, so no symlink is followed at all;
//   3. opens with O_NONBLOCK (a FIFO opens at once) and checks fstat() on
//      the open descriptor (no race with a rename): only a regular file is
//      returned (kNotRegularFile otherwise).
// Nothing is created; the file is opened read-only, O_CLOEXEC, O_NOCTTY.
#pragma once

#include <cstdint>
#include <string_view>

#include "netstack/sys/fd.h"

namespace slipway::sys {

struct OpenBeneath {
  enum class Error { kNone, kEscapes, kNotFound, kNotRegularFile, kDenied, kFailed };
  Fd fd;                  // when error == kNone
  uint64_t size = 0;      // the file's size (fstat)
  Error error = Error::kNone;
  int errno_value = 0;    // kNotFound, kDenied, kFailed
  explicit operator bool() const { return error == Error::kNone; }
};
const char* to_string(OpenBeneath::Error e);

// Opens `name` (see above) below the directory open as `dirfd` (O_PATH or
// O_RDONLY, O_DIRECTORY).
OpenBeneath open_beneath(int dirfd, std::string_view name);

}  // namespace slipway::sys
