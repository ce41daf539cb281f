// The slirp4netns-compatible entry point: `slipway-slirp4netns ...` and
// `slipway slirp4netns ...`.
//
// Theory of operation
//   Reads slirp4netns 1.2's command line (slirp4netns_options.h), builds the
//   same network `slipway attach` builds (a stack::Stack around a TAP in the
//   target namespace), and behaves as slirp4netns's callers rely on:
//
//     1. the TAP TAPNAME is opened in the target network namespace (PID or,
//        with --netns-type=path, PATH; entering --userns-path or, when not
//        root, the namespace's owning user namespace first). With
//        --configure it is set up: the guest at .100 of --cidr, a default
//        route via .2, the MTU, lo up. Without it nothing on the interface
//        is touched (RootlessKit creates and configures tap0 itself).
//     2. The Stack, the API socket (--api-socket, api_server.h with
//        hostfwd_api.h over the Stack's published ports), the control
//        socket and automatic forwarding (only when SLIPWAY_CONFIG turns
//        them on) are started.
//     3. Only then "1" is written to --ready-fd, which is closed.
//     4. The loop runs until --exit-fd reports EOF or an error (the other end
//        closed: the container is gone), or SIGINT/SIGTERM; the exit code
//        is then 0. Data written to the exit fd is read and ignored.
//   A start-up failure prints "PROGRAM: reason" on stderr and exits 1
//   before the ready fd is written, so a caller waiting on it sees EOF.
//
//   Like slirp4netns, the program prints a summary of the network on
//   stdout ("Starting slirp" ... "* Recommended IP: 10.0.2.100"), which
//   Podman keeps in the container's slirp4netns log. --enable-sandbox or
//   --enable-seccomp enters slipway's sandbox (sys/sandbox.h) after set-up,
//   before the ready fd is written; failing to is a start-up failure.
//
// Limits: SIGHUP re-reads nothing (it is logged); one network per process.
#pragma once

namespace slipway::compat {

// `program` names the command in messages ("slipway-slirp4netns",
// "slipway slirp4netns"); argv[0] is skipped. Returns the exit code.
int slirp4netns_main(int argc, char** argv, const char* program);

}  // namespace slipway::compat
