// ControlServer: the control socket of a running slipway, a unix stream
// socket that speaks line-delimited JSON.
//
// Protocol. A client sends one JSON object per line (a request) and gets one
// JSON object per line back (its reply), in the order the requests came, as
// many as it likes on one connection. Every request has "op" (a string).
// Every reply has "ok" (a bool) and, when ok is false, "error" (a message for
// a human). A line that is not JSON, not an object, or has no "op" string gets
// {"ok":false,"error":"..."} and the connection stays usable; blank lines are
// ignored and a trailing "\r" is dropped.
//
// The operations slipway serves (the handler, wired by the program, answers
// them; the `portfwd --control` client prints them):
//   {"op":"add-forward","rule":"[HOSTADDR:]HOSTPORT[-END]:GUESTPORT[-END][/tcp|/udp]"}
//       -> {"ok":true,"forward":{...}} or an error (e.g. host port busy)
//   {"op":"remove-forward","rule":"..."}
//       -> {"ok":true} or error "no such forward"
//   {"op":"list-forwards"}
//       -> {"ok":true,"forwards":[{"rule":"127.0.0.1:8080:80/tcp",
//                                  "origin":"static|api|auto",
//                                  "error":null|"..."}]}
//   {"op":"list-flows"}
//       -> {"ok":true,"flows":[{"proto":"tcp","guest":"10.0.2.15:40000",
//                               "remote":"10.0.2.2:8080",
//                               "direction":"outbound|inbound",
//                               "state":"established",
//                               "bytes_to_host":N,"bytes_to_guest":N}]}
//   {"op":"stats"}
//       -> {"ok":true,"stats":{...}}
// An unknown op is the handler's to refuse (it throws; see Handler).
//
// Security. The socket file is created with mode 0600 (under a umask, so it
// is never wider, not even for an instant): only the owner can connect. An
// existing socket file at the path is replaced only when nothing answers on
// it (a stale file from a process that died); when something answers, the
// constructor throws "PATH is in use". Any other kind of file is left alone
// and refused. The destructor removes the socket file if it is still ours.
//
// Limits (Limits below; the defaults are the contract): a request line longer
// than 64 KiB gets an error reply and the connection is closed once the reply
// is written; at most 64 connections (the next one gets an error reply and is
// closed, unless a connection has been idle for 1 s with nothing pending:
// then the one idle longest is closed to make room, so idle clients cannot
// lock others out); a connection idle for 60 s is closed; at most 16 lines are handled
// per connection per wake-up, the rest on the next turn of the loop (an idle
// handle), and reading from a connection pauses while it has unhandled lines
// or more than 1 MiB of replies not yet taken by the client, so no buffer
// grows without bound.
//
// Connection states: open (reading, answering) -> draining (a last reply is
// queued; uv_shutdown flushes it, then the handle is closed) -> closing
// (uv_close called; the memory is freed in the close callback). The server
// is single-threaded on its loop; handles are heap blocks freed in their close
// callbacks, and a connection whose server is gone no longer points at it.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/types.h>
#include <vector>

namespace slipway::control {

// The defaults are the contract; tests shrink them.
struct ControlLimits {
  size_t max_line_bytes = 64 * 1024;
  size_t max_connections = 64;
  uint64_t idle_timeout_ms = 60'000;
  // At max_connections, a new client takes the place of the connection idle
  // longest, if that one has been idle this long with nothing pending.
  uint64_t evict_idle_ms = 1'000;
  size_t lines_per_wake = 16;
  size_t max_unsent_bytes = 1024 * 1024;  // replies queued for one slow reader
};

class ControlServer {
 public:
  // Returns the reply to a request that has an "op" string; the server adds
  // "ok": true when the reply has no "ok". It may throw std::exception: the
  // reply is then {"ok":false,"error":what()}. Runs on the loop's thread.
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  using Limits = ControlLimits;

  // Listens on PATH. Throws std::runtime_error ("PATH: reason", or "PATH is
  // in use") when it cannot.
  ControlServer(uv_loop_t* loop, std::string path, Handler handler, Limits limits = {});
  // Closes the listener and every connection, and removes the socket file.
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  const std::string& path() const { return path_; }
  // Connections open or draining (not those already closing).
  size_t connection_count() const;

 private:
  struct Connection;
  struct WriteRequest;

  static void on_connection(uv_stream_t* listener, int status);
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_close(uv_handle_t* handle);
  static void on_idle(uv_idle_t* idle);
  static void on_sweep(uv_timer_t* timer);

  void handle_lines(Connection& c);
  void update_reading(Connection& c);
  nlohmann::json answer(const std::string& line);
  void send(Connection& c, const nlohmann::json& reply);
  void finish(Connection& c, const nlohmann::json& last_reply);
  static void close(Connection& c);
  void forget(Connection* c);

  uv_loop_t* loop_;
  std::string path_;
  Handler handler_;
  Limits limits_;
  dev_t socket_dev_ = 0;
  ino_t socket_ino_ = 0;
  uv_pipe_t* listener_ = nullptr;
  uv_idle_t* idle_ = nullptr;
  uv_timer_t* sweep_ = nullptr;
  std::vector<Connection*> connections_;
  std::vector<char> read_buffer_;
};

}  // namespace slipway::control
