// Unix socket helpers for the VM transports: make a non-blocking,
// close-on-exec socket bound to (and for streams listening on) a path.
//
// A stale socket left at PATH by an earlier run is removed first; any other
// kind of file there is an error (we never delete a user's regular file).
// Errors throw std::runtime_error naming the path and the reason.
#pragma once

#include <string>

namespace slipway::link {

// type: SOCK_STREAM (listens, backlog 8) or SOCK_DGRAM (bound only).
int bind_unix(const std::string& path, int type);

}  // namespace slipway::link
