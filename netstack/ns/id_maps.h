// The user namespace's ID maps for `slipway run` (internal to netstack/ns).
//
// Theory of operation. After the child has unshare()d its user namespace
// (step 1 of the handshake in namespace.cc), the parent writes the child's
// /proc/PID/uid_map and gid_map:
//
//   - as root, its own ID ranges one to one (in the initial user namespace:
//     "0 0 4294967295"), so files keep their owners;
//   - as a normal user, "deny" to /proc/PID/setgroups (kernels before 3.19
//     have no such file and need none) and root in the namespace mapped to
//     its own UID and GID ("0 UID 1").
//
// Errors throw std::runtime_error naming the file: "cannot open PATH:
// REASON", "cannot write 'LINE' to PATH: REASON", "cannot read
// /proc/self/uid_map".
#pragma once

#include <sys/types.h>

namespace slipway::ns {

void write_id_maps(pid_t pid);

}  // namespace slipway::ns
