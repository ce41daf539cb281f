// SystemError: see error.h.
#include "netstack/sys/error.h"

#include <cstring>

namespace slipway::sys {

std::string errno_text(int error) { return std::strerror(error); }

SystemError::SystemError(const std::string& what, int error)
    : std::runtime_error(what + ": " + errno_text(error)), error_(error) {}

}  // namespace slipway::sys
