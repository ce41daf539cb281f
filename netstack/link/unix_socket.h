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

// True when the peer of connected socket `fd` has hung up (its EOF may not
// have been read yet): a restarted VMM's new connection may then replace it.
bool peer_hung_up(int fd);

}  // namespace slipway::link
