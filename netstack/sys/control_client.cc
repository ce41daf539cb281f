// request(): see control_client.h.
//
// Theory of operation. A blocking connect bounded by SO_SNDTIMEO (Linux
// applies it to connect on unix sockets, which waits while the server's
// backlog is full), then the socket goes non-blocking and every send and recv
// waits in poll() for at most the time left until the deadline. The reply is
// read until its first '\n'; bytes after it are ignored. Replies are capped
// at 64 MiB so a confused peer cannot make a CLI eat all memory.
#include "netstack/sys/control_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "netstack/sys/error.h"
#include "netstack/sys/fd.h"

namespace slipway::control {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using sys::errno_text;

constexpr size_t kMaxReplyBytes = size_t{64} << 20;

std::string duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

// Waits until FD is ready for EVENTS or the deadline passes; false on timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1 << 30)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return true;  // let the following call report the error
  }
}

}  // namespace

json request(const std::string& path, const json& req, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::string no_reply = "no reply from " + path;

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    throw std::runtime_error("cannot connect to " + path + ": not a usable unix socket path");
  }
  path.copy(addr.sun_path, path.size());

  sys::Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw std::runtime_error("cannot connect to " + path + ": socket: " + errno_text(errno));
  const auto ms = std::max<int64_t>(timeout.count(), 1);
  timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    if (err == EAGAIN || err == EINPROGRESS) {
      throw std::runtime_error("cannot connect to " + path + ": the server is busy (no room in " +
                               duration_text(timeout) + ")");
    }
    throw std::runtime_error("cannot connect to " + path + ": " + errno_text(err));
  }
  fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) | O_NONBLOCK);

  const std::string line = req.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t n = ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<size_t>(n);
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait_for(fd.get(), POLLOUT, deadline)) throw std::runtime_error(no_reply + " within " + duration_text(timeout));
    } else {
      throw std::runtime_error(no_reply + ": " + errno_text(errno));
    }
  }

  std::string reply;
  size_t newline = std::string::npos;
  char buf[16384];
  while (newline == std::string::npos) {
    if (!wait_for(fd.get(), POLLIN, deadline)) throw std::runtime_error(no_reply + " within " + duration_text(timeout));
    const ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
    if (n == 0) {
      throw std::runtime_error(reply.empty() ? no_reply + ": the server closed the connection"
                                             : "bad reply from " + path + ": the connection closed mid-line");
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      throw std::runtime_error(no_reply + ": " + errno_text(errno));
    }
    const size_t old_size = reply.size();
    reply.append(buf, static_cast<size_t>(n));
    newline = reply.find('\n', old_size);
    if (newline == std::string::npos && reply.size() > kMaxReplyBytes) {
      throw std::runtime_error("bad reply from " + path + ": longer than " + std::to_string(kMaxReplyBytes) + " bytes");
    }
  }
  reply.resize(newline);

  json parsed = json::parse(reply, nullptr, false);
  if (parsed.is_discarded()) throw std::runtime_error("bad reply from " + path + ": not JSON");
  if (!parsed.is_object()) throw std::runtime_error("bad reply from " + path + ": not a JSON object");
  const auto ok = parsed.find("ok");
  if (ok == parsed.end() || !ok->is_boolean()) throw std::runtime_error("bad reply from " + path + ": no \"ok\"");
  return parsed;
}

std::optional<nlohmann::json> request_for_tool(const char* program, const std::string& path,
                                               const nlohmann::json& req, bool raw, int* status) {
  using nlohmann::json;
  *status = 1;
  json reply;
  try {
    reply = request(path, req);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return std::nullopt;
  }
  if (raw) std::printf("%s\n", reply.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  if (reply.value("ok", false) != true) {
    std::fprintf(stderr, "%s: %s\n", program, cell(reply, "error").c_str());
    return std::nullopt;
  }
  *status = 0;
  if (raw) return std::nullopt;
  return reply;
}

std::string cell(const nlohmann::json& object, const char* key) {
  using nlohmann::json;
  if (!object.is_object()) return "-";
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>();
  return it->dump(-1, ' ', false, json::error_handler_t::replace);
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

}  // namespace slipway::control
