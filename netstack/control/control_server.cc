// ControlServer: see control_server.h for the protocol, the operations and
// the limits.
//
// Theory of operation. The listener is a uv_pipe_t over a socket we bind
// ourselves (so that the file's mode is set before it exists, and a path too
// long for sun_path is an error rather than silently truncated). Each
// accepted connection is a heap Connection holding its uv_pipe_t, the bytes
// received and not yet handled, and its state:
//
//   kOpen      reading requests and writing replies;
//   kDraining  a last reply is queued and reading has stopped; uv_shutdown
//              completes once every queued reply is written, then we close;
//   kClosing   uv_close was called; on_close frees the Connection.
//
// Requests are handled in the read callback, at most lines_per_wake of them;
// when complete lines remain (a client that pipelines many requests), reading
// pauses and an idle handle finishes them on later turns of the loop, so one
// client cannot starve the loop. Reading also pauses while a connection has
// more than max_unsent_bytes of replies queued (a client that sends but does
// not read); on_write resumes it. Together these bound a connection's memory
// to about one line limit plus one read plus the unsent limit.
//
// A sweep timer closes connections idle for longer than idle_timeout_ms
// (time is uv_now, the loop's cached clock). At end of input (the client shut
// down its side) the remaining lines, including an unterminated last one, are
// answered and then the connection drains and closes.
//
// Memory: every handle (listener, idle, timer, connections) is a heap block
// freed in its close callback. The destructor detaches the connections
// (server = nullptr) before closing them, so callbacks that still run after
// it (cancelled writes, close callbacks) never touch a dead server.
#include "netstack/control/control_server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <utility>

namespace slipway::control {

namespace {

using nlohmann::json;

constexpr size_t kReadBufferBytes = 64 * 1024;

std::string errno_text(int err) { return std::generic_category().message(err); }

// nlohmann's messages start with "[json.exception.parse_error.101] "; the
// reader of an error reply wants only the sentence after it.
std::string without_json_prefix(std::string_view what) {
  if (what.starts_with("[json.exception.")) {
    const size_t end = what.find("] ");
    if (end != std::string_view::npos) what.remove_prefix(end + 2);
  }
  return std::string(what);
}

json error_reply(std::string message) { return json{{"ok", false}, {"error", std::move(message)}}; }

std::string to_line(const json& reply) {
  // Strings the handler copied from elsewhere may not be valid UTF-8: replace
  // bad bytes rather than fail the reply.
  return reply.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

bool fill_address(const std::string& path, sockaddr_un& addr) {
  addr = sockaddr_un{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) return false;
  path.copy(addr.sun_path, path.size());
  return true;
}

// Whether a process listens on the socket file at PATH. Only "refused" (no
// listener on that file) and "no such file" mean nobody does; anything else
// (accepted, backlog full, permission denied) is taken as in use, so that we
// never remove a socket someone else is serving.
bool something_answers(const sockaddr_un& addr) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return true;
  const int r = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int err = errno;
  ::close(fd);
  if (r == 0) return true;
  return err != ECONNREFUSED && err != ENOENT;
}

// Binds and listens on PATH with mode 0600; returns the fd or throws.
int bind_socket(const std::string& path, dev_t& dev, ino_t& ino) {
  sockaddr_un addr;
  if (!fill_address(path, addr)) {
    throw std::runtime_error(path + ": not a usable unix socket path (1 to " +
                             std::to_string(sizeof addr.sun_path - 1) + " bytes)");
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(path + ": exists and is not a socket");
    if (something_answers(addr)) throw std::runtime_error(path + " is in use");
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      throw std::runtime_error(path + ": cannot remove the stale socket: " + errno_text(errno));
    }
    spdlog::info("control: replaced the stale socket {}", path);
  } else if (errno != ENOENT) {
    throw std::runtime_error(path + ": " + errno_text(errno));
  }

  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw std::runtime_error(path + ": socket: " + errno_text(errno));
  // Linux creates the socket file with the socket inode's mode minus the
  // umask: fchmod first narrows it even if another thread changes the umask;
  // the umask around bind covers kernels that ignore the inode's mode.
  fchmod(fd, S_IRUSR | S_IWUSR);
  const mode_t old_umask = umask(S_IXUSR | S_IRWXG | S_IRWXO);
  const int bound = bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int bind_errno = errno;
  umask(old_umask);
  if (bound != 0) {
    ::close(fd);
    if (bind_errno == EADDRINUSE) throw std::runtime_error(path + " is in use");
    throw std::runtime_error(path + ": bind: " + errno_text(bind_errno));
  }
  if (listen(fd, SOMAXCONN) != 0 || lstat(path.c_str(), &st) != 0) {
    const int err = errno;
    ::close(fd);
    unlink(path.c_str());
    throw std::runtime_error(path + ": " + errno_text(err));
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {  // our own invariant, checked once
    ::close(fd);
    unlink(path.c_str());
    throw std::runtime_error(path + ": the socket file is not private (mode " +
                             std::to_string(st.st_mode & 0777) + ")");
  }
  dev = st.st_dev;
  ino = st.st_ino;
  return fd;
}

template <typename Handle>
void close_and_delete(Handle* handle) {
  uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
}

}  // namespace

struct ControlServer::Connection {
  enum class State { kOpen, kDraining, kClosing };

  uv_pipe_t pipe{};
  uv_shutdown_t shutdown{};
  ControlServer* server = nullptr;  // nullptr once the server is gone
  State state = State::kOpen;
  std::string input;     // bytes received and not yet handled
  size_t scanned = 0;    // input[0, scanned) holds no '\n'
  bool reading = false;
  bool eof = false;      // the client shut down its side
  uint64_t last_activity_ms = 0;

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&pipe); }
  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(&pipe); }

  bool has_line() {
    const size_t nl = input.find('\n', scanned);
    if (nl == std::string::npos) {
      scanned = input.size();
      return false;
    }
    return true;
  }
  size_t unsent_bytes() { return uv_stream_get_write_queue_size(stream()); }
};

struct ControlServer::WriteRequest {
  uv_write_t req{};
  std::string data;
};

ControlServer::ControlServer(uv_loop_t* loop, std::string path, Handler handler, Limits limits)
    : loop_(loop), path_(std::move(path)), handler_(std::move(handler)), limits_(limits),
      read_buffer_(kReadBufferBytes) {
  limits_.lines_per_wake = std::max<size_t>(limits_.lines_per_wake, 1);
  const int fd = bind_socket(path_, socket_dev_, socket_ino_);

  listener_ = new uv_pipe_t{};
  uv_pipe_init(loop_, listener_, 0);
  listener_->data = this;
  int r = uv_pipe_open(listener_, fd);
  if (r != 0) {
    ::close(fd);
  } else {
    r = uv_listen(reinterpret_cast<uv_stream_t*>(listener_), SOMAXCONN, &ControlServer::on_connection);
  }
  if (r != 0) {
    close_and_delete(listener_);
    unlink(path_.c_str());
    throw std::runtime_error(path_ + ": " + uv_strerror(r));
  }

  idle_ = new uv_idle_t{};
  uv_idle_init(loop_, idle_);
  idle_->data = this;

  sweep_ = new uv_timer_t{};
  uv_timer_init(loop_, sweep_);
  sweep_->data = this;
  const uint64_t period = std::clamp<uint64_t>(limits_.idle_timeout_ms / 4, 10, 1000);
  uv_timer_start(sweep_, &ControlServer::on_sweep, period, period);
}

ControlServer::~ControlServer() {
  for (Connection* c : connections_) {
    c->server = nullptr;
    close(*c);
  }
  connections_.clear();
  close_and_delete(listener_);
  close_and_delete(idle_);
  close_and_delete(sweep_);
  // Remove the file only if it is still the one we bound (not a successor's).
  struct stat st {};
  if (lstat(path_.c_str(), &st) == 0 && st.st_dev == socket_dev_ && st.st_ino == socket_ino_) {
    unlink(path_.c_str());
  }
}

void ControlServer::on_connection(uv_stream_t* listener, int status) {
  auto* self = static_cast<ControlServer*>(listener->data);
  if (status < 0) {
    spdlog::warn("control: accept on {}: {}", self->path_, uv_strerror(status));
    return;
  }
  auto* c = new Connection{};
  uv_pipe_init(self->loop_, &c->pipe, 0);
  c->pipe.data = c;
  c->server = self;
  c->last_activity_ms = uv_now(self->loop_);
  // Connections already closing do not count: their close callbacks may run
  // after this accept, in the same turn of the loop.
  bool full = self->connection_count() >= self->limits_.max_connections;
  if (full) {
    // Idle clients must not lock the others out: the one idle longest, with
    // nothing pending, makes room.
    Connection* oldest = nullptr;
    for (Connection* o : self->connections_) {
      if (o->state != Connection::State::kOpen || o->has_line() || o->unsent_bytes() != 0) continue;
      if (oldest == nullptr || o->last_activity_ms < oldest->last_activity_ms) oldest = o;
    }
    if (oldest != nullptr && c->last_activity_ms - oldest->last_activity_ms >= self->limits_.evict_idle_ms) {
      spdlog::debug("control: {} connections on {}: closing one idle for {} ms to make room",
                    self->limits_.max_connections, self->path_, c->last_activity_ms - oldest->last_activity_ms);
      self->close(*oldest);
      full = false;
    }
  }
  self->connections_.push_back(c);
  if (uv_accept(listener, c->stream()) != 0) {
    close(*c);
    return;
  }
  if (full) {
    spdlog::warn("control: {} connections on {}: refusing another", self->limits_.max_connections, self->path_);
    self->finish(*c, error_reply("too many control connections (at most " +
                                 std::to_string(self->limits_.max_connections) + ")"));
    return;
  }
  self->update_reading(*c);
}

size_t ControlServer::connection_count() const {
  return static_cast<size_t>(std::count_if(connections_.begin(), connections_.end(), [](const Connection* c) {
    return c->state != Connection::State::kClosing;
  }));
}

void ControlServer::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(handle->data);
  if (c->server == nullptr) {
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  std::vector<char>& b = c->server->read_buffer_;
  *buf = uv_buf_init(b.data(), static_cast<unsigned>(b.size()));
}

void ControlServer::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(stream->data);
  ControlServer* self = c->server;
  if (self == nullptr || c->state != Connection::State::kOpen) return;
  if (nread == UV_EOF) {
    c->eof = true;
    // An unterminated last request is still a request.
    const size_t last_nl = c->input.rfind('\n');
    const size_t tail = last_nl == std::string::npos ? 0 : last_nl + 1;
    if (c->input.find_first_not_of(" \t\r", tail) != std::string::npos) c->input.push_back('\n');
  } else if (nread < 0) {
    close(*c);
    return;
  } else if (nread > 0) {
    c->input.append(buf->base, static_cast<size_t>(nread));
    c->last_activity_ms = uv_now(self->loop_);
  }
  self->handle_lines(*c);
}

// Answers up to lines_per_wake complete lines, then decides what comes next:
// more reading, the idle handle for the lines left, or draining at the end.
void ControlServer::handle_lines(Connection& c) {
  size_t consumed = 0;
  for (size_t handled = 0; c.state == Connection::State::kOpen && handled < limits_.lines_per_wake; ++handled) {
    if (c.unsent_bytes() > limits_.max_unsent_bytes) break;  // on_write comes back here
    const size_t nl = c.input.find('\n', std::max(consumed, c.scanned));
    if (nl == std::string::npos) break;
    if (nl - consumed > limits_.max_line_bytes) break;  // reported below
    std::string_view line(c.input.data() + consumed, nl - consumed);
    consumed = nl + 1;
    c.scanned = consumed;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    send(c, answer(std::string(line)));
  }
  if (consumed > 0) {
    c.input.erase(0, consumed);
    c.scanned -= consumed;
  }
  if (c.state != Connection::State::kOpen) return;

  // A line over the limit, complete or not, ends the connection.
  const size_t nl = c.input.find('\n');
  const size_t first_line = nl == std::string::npos ? c.input.size() : nl;
  if (first_line > limits_.max_line_bytes) {
    spdlog::debug("control: request line over {} bytes on {}: closing", limits_.max_line_bytes, path_);
    finish(c, error_reply("request line longer than " + std::to_string(limits_.max_line_bytes) +
                          " bytes; closing the connection"));
    return;
  }
  if (c.eof && !c.has_line()) {
    finish(c, json());  // every request answered: flush and close
    return;
  }
  update_reading(c);
  if (c.has_line() && c.unsent_bytes() <= limits_.max_unsent_bytes) uv_idle_start(idle_, &ControlServer::on_idle);
}

// Reads only while there is nothing left to answer and the client is taking
// its replies.
void ControlServer::update_reading(Connection& c) {
  const bool want = c.state == Connection::State::kOpen && !c.eof && !c.has_line() &&
                    c.unsent_bytes() <= limits_.max_unsent_bytes;
  if (want && !c.reading) {
    if (uv_read_start(c.stream(), &ControlServer::on_alloc, &ControlServer::on_read) != 0) {
      close(c);
      return;
    }
    c.reading = true;
  } else if (!want && c.reading) {
    uv_read_stop(c.stream());
    c.reading = false;
  }
}

json ControlServer::answer(const std::string& line) {
  json request;
  try {
    request = json::parse(line);
  } catch (const json::exception& e) {
    return error_reply("malformed JSON: " + without_json_prefix(e.what()));
  }
  if (!request.is_object()) return error_reply("a request must be a JSON object");
  const auto op = request.find("op");
  if (op == request.end() || !op->is_string()) return error_reply("the request has no \"op\" string");

  json reply;
  try {
    reply = handler_(request);
  } catch (const std::exception& e) {
    return error_reply(without_json_prefix(e.what()));
  } catch (...) {
    return error_reply("internal error");
  }
  if (reply.is_null()) reply = json::object();
  if (!reply.is_object()) return error_reply("internal error: the reply is not a JSON object");
  if (!reply.contains("ok")) reply["ok"] = true;
  if (reply["ok"] == false && !reply.contains("error")) reply["error"] = "failed";
  return reply;
}

void ControlServer::send(Connection& c, const json& reply) {
  if (c.state != Connection::State::kOpen) return;
  auto* w = new WriteRequest{};
  w->data = to_line(reply);
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, c.stream(), &buf, 1, &ControlServer::on_write) != 0) {
    delete w;
    close(c);
  }
}

void ControlServer::on_write(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<WriteRequest*>(req);
  auto* c = static_cast<Connection*>(req->handle->data);
  delete w;
  if (status < 0) {
    close(*c);  // includes UV_ECANCELED while closing: close() is idempotent
    return;
  }
  ControlServer* self = c->server;
  if (self == nullptr || c->state != Connection::State::kOpen) return;
  c->last_activity_ms = uv_now(self->loop_);
  // The client took replies: lines held back by max_unsent_bytes may go on.
  if (c->has_line()) {
    uv_idle_start(self->idle_, &ControlServer::on_idle);
  } else {
    self->update_reading(*c);
  }
}

// Queues LAST_REPLY (unless null), stops reading, and closes once the queue
// is written.
void ControlServer::finish(Connection& c, const json& last_reply) {
  if (c.state != Connection::State::kOpen) return;
  if (!last_reply.is_null()) send(c, last_reply);
  if (c.state != Connection::State::kOpen) return;
  c.state = Connection::State::kDraining;
  if (c.reading) {
    uv_read_stop(c.stream());
    c.reading = false;
  }
  c.input.clear();
  c.input.shrink_to_fit();
  c.scanned = 0;
  if (uv_shutdown(&c.shutdown, c.stream(), &ControlServer::on_shutdown) != 0) close(c);
}

void ControlServer::on_shutdown(uv_shutdown_t* req, int) {
  close(*static_cast<Connection*>(req->handle->data));
}

void ControlServer::close(Connection& c) {
  if (c.state == Connection::State::kClosing) return;
  c.state = Connection::State::kClosing;
  c.reading = false;
  uv_close(c.handle(), &ControlServer::on_close);
}

void ControlServer::on_close(uv_handle_t* handle) {
  auto* c = static_cast<Connection*>(handle->data);
  if (c->server != nullptr) c->server->forget(c);
  delete c;
}

void ControlServer::forget(Connection* c) {
  auto it = std::find(connections_.begin(), connections_.end(), c);
  if (it != connections_.end()) connections_.erase(it);
}

void ControlServer::on_idle(uv_idle_t* idle) {
  auto* self = static_cast<ControlServer*>(idle->data);
  bool more = false;
  // handle_lines never removes from connections_ (that is on_close's job, in
  // a later phase), so indexing is stable here.
  for (size_t i = 0; i < self->connections_.size(); ++i) {
    Connection& c = *self->connections_[i];
    if (c.state != Connection::State::kOpen || !c.has_line() || c.unsent_bytes() > self->limits_.max_unsent_bytes) {
      continue;
    }
    self->handle_lines(c);
    more = more || (c.state == Connection::State::kOpen && c.has_line() &&
                    c.unsent_bytes() <= self->limits_.max_unsent_bytes);
  }
  if (!more) uv_idle_stop(idle);
}

void ControlServer::on_sweep(uv_timer_t* timer) {
  auto* self = static_cast<ControlServer*>(timer->data);
  const uint64_t now = uv_now(self->loop_);
  for (Connection* c : self->connections_) {
    if (c->state != Connection::State::kClosing && now - c->last_activity_ms >= self->limits_.idle_timeout_ms) {
      spdlog::debug("control: closing a connection idle for {} ms on {}", now - c->last_activity_ms, self->path_);
      close(*c);
    }
  }
}

}  // namespace slipway::control
