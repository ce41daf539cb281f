// ApiServer: slirp4netns's API socket (--api-socket PATH), a unix stream
// socket that takes one JSON request per connection.
//
// Theory of operation
//   slirp4netns's protocol: a client connects, writes one JSON object and
//   (Podman, RootlessKit) shuts its side down; the server writes one answer
//   and closes. The server here reads until the client's EOF, or until what
//   it has is one complete JSON value (so a client that does not shut down
//   is answered too), hands the bytes to the Handler (HostfwdApi::answer in
//   the program) and writes its answer, then shuts the connection down and
//   closes it.
//
//   Like slirp4netns, the server removes whatever is at PATH before binding
//   (a socket left by an earlier run) and removes its socket when it is
//   destroyed. The socket is created under umask 077 (mode 0600 or
//   narrower): only its owner can connect, as with slirp4netns under the
//   usual umask.
//
// Connection states: reading -> answering (the answer is queued, then
//   uv_shutdown) -> closing (uv_close; freed in the close callback).
//
// Limits (the numbers are the contract):
//   - a request of HostfwdApi::kMaxRequestBytes (4096) bytes or more gets
//     the Handler's `too_large` answer and the connection is closed;
//   - at most kMaxConnections (16) connections at once: the next is closed
//     unanswered;
//   - a connection that has not sent a complete request within
//     kRequestTimeoutMs (5000 ms) is answered with what it sent (usually
//     "cannot parse JSON") and closed;
//   - libuv bounds the accepts and reads per wake-up.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace slipway::compat {

class ApiServer {
 public:
  static constexpr size_t kMaxConnections = 16;
  static constexpr uint64_t kRequestTimeoutMs = 5000;

  // The answer to one request's bytes.
  using Handler = std::function<std::string(std::string_view request)>;

  // Listens on `path`. `too_large`: the answer to an oversized request.
  // Throws std::runtime_error ("PATH: reason") when it cannot.
  ApiServer(uv_loop_t* loop, std::string path, Handler handler, std::string too_large, size_t max_request_bytes);
  // Closes the listener and every connection and removes the socket file
  // if it is still ours.
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  const std::string& path() const { return path_; }
  size_t connection_count() const { return connections_.size(); }

 private:
  struct Connection;

  static void on_connection(uv_stream_t* listener, int status);
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_timeout(uv_timer_t* timer);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);

  void respond(Connection& c, std::string answer);
  void close(Connection& c);

  uv_loop_t* loop_;
  std::string path_;
  Handler handler_;
  std::string too_large_;
  size_t max_request_bytes_;
  dev_t socket_dev_ = 0;
  ino_t socket_ino_ = 0;
  uv_pipe_t* listener_ = nullptr;
  std::vector<Connection*> connections_;
};

}  // namespace slipway::compat
