// Errors from system calls, as the project words them.
//
// Theory of operation. A failed system call becomes a SystemError whose
// what() is "WHAT: REASON", REASON being strerror(error) ("cannot fork:
// Resource temporarily unavailable"). It is a std::runtime_error, so callers
// that catch those keep working, and it keeps the errno value (error()) for
// callers that decide by it. errno_text() is the REASON part alone, for
// messages that put it elsewhere.
//
// Pass errno explicitly, at the throw: `throw SystemError("cannot open " +
// path, errno)`. Nothing here runs in a forked child (it allocates).
#pragma once

#include <stdexcept>
#include <string>

namespace slipway::sys {

// strerror(error): "No such file or directory".
std::string errno_text(int error);

class SystemError : public std::runtime_error {
 public:
  // what(): what + ": " + errno_text(error).
  SystemError(const std::string& what, int error);
  int error() const noexcept { return error_; }

 private:
  int error_;
};

}  // namespace slipway::sys
