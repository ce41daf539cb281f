// The client side of slipway's control socket: one blocking request, for
// command-line tools and tests (see netstack/control/control_server.h for
// the protocol and the operations).
//
// request() connects to the unix socket at PATH, writes the request as one
// JSON line, reads one reply line and closes. The whole exchange (connect,
// send, reply) has one deadline, 5 s unless told otherwise. A reply is
// returned as it came, ok true or false: the caller decides what ok=false
// means. It throws std::runtime_error with a message for a human when there
// is no usable reply:
//   "cannot connect to PATH: REASON"
//   "no reply from PATH within 5 s" / "no reply from PATH: REASON"
//   "bad reply from PATH: REASON" (not JSON, not an object, no "ok" bool,
//                                  longer than 64 MiB)
// It lives in the OS layer (netstack/sys, library slipway_sys) because it is
// small on purpose (nlohmann-json and libc, no libuv): the `portfwd` program
// and other command-line tools link it without the network stack. It keeps
// the namespace slipway::control: it speaks the control protocol, and its
// callers name it by that.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace slipway::control {

inline constexpr std::chrono::milliseconds kDefaultRequestTimeout{5000};

nlohmann::json request(const std::string& path, const nlohmann::json& req,
                       std::chrono::milliseconds timeout = kDefaultRequestTimeout);

// A control tool's exchange: sends `req`; with `raw`, prints the reply as
// it came (one JSON line); a failed exchange or a reply with ok=false goes
// to stderr as "PROGRAM: MESSAGE". Returns the reply when the tool should
// go on to print it (ok and not raw), else nothing, with *status set to the
// tool's exit status (0 for a raw ok reply, else 1).
std::optional<nlohmann::json> request_for_tool(const char* program, const std::string& path,
                                               const nlohmann::json& req, bool raw, int* status);

// For the tools' tables: a field of a reply as text (strings as they are,
// absent or null as "-", anything else as compact JSON), and rows printed
// to stdout as left-aligned columns two spaces apart.
std::string cell(const nlohmann::json& object, const char* key);
void print_table(const std::vector<std::vector<std::string>>& rows);

}  // namespace slipway::control
