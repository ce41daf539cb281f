// See api_server.h.
#include "netstack/compat/api_server.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace slipway::compat {

struct ApiServer::Connection {
  uv_pipe_t pipe{};  // first: the handle's address is the connection's
  uv_timer_t timer{};
  ApiServer* server = nullptr;  // null once the server is gone
  enum class State { kReading, kAnswering, kClosing };
  State state = State::kReading;
  int open_handles = 0;  // freed when both handles have closed
  std::string request;
  std::string answer;
  std::array<char, 4096> read_buffer{};
  uv_write_t write_req{};
  uv_shutdown_t shutdown_req{};
};

ApiServer::ApiServer(uv_loop_t* loop, std::string path, Handler handler, std::string too_large,
                     size_t max_request_bytes)
    : loop_(loop),
      path_(std::move(path)),
      handler_(std::move(handler)),
      too_large_(std::move(too_large)),
      max_request_bytes_(max_request_bytes) {
  // Whatever socket is at the path is an earlier run's (slirp4netns removes
  // it too); any other kind of file is left alone.
  struct stat st {};
  if (lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(path_ + ": exists and is not a socket");
    if (unlink(path_.c_str()) != 0) throw std::runtime_error(path_ + ": cannot remove the old socket: " + std::strerror(errno));
  }
  listener_ = new uv_pipe_t;
  if (int rc = uv_pipe_init(loop_, listener_, 0); rc != 0) {
    delete listener_;
    listener_ = nullptr;
    throw std::runtime_error(path_ + ": " + uv_strerror(rc));
  }
  listener_->data = this;
  const mode_t old_umask = umask(077);
  int rc = uv_pipe_bind(listener_, path_.c_str());
  umask(old_umask);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_), 16, on_connection);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(listener_), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    listener_ = nullptr;
    throw std::runtime_error(path_ + ": " + uv_strerror(rc));
  }
  if (stat(path_.c_str(), &st) == 0) {
    socket_dev_ = st.st_dev;
    socket_ino_ = st.st_ino;
  }
}

ApiServer::~ApiServer() {
  for (Connection* c : std::vector<Connection*>(connections_)) {
    close(*c);
    c->server = nullptr;
  }
  if (listener_ != nullptr) {
    listener_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(listener_), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
  }
  struct stat st {};
  if (stat(path_.c_str(), &st) == 0 && st.st_dev == socket_dev_ && st.st_ino == socket_ino_) unlink(path_.c_str());
}

void ApiServer::on_connection(uv_stream_t* listener, int status) {
  auto* self = static_cast<ApiServer*>(listener->data);
  if (self == nullptr) return;
  if (status < 0) {
    spdlog::warn("API socket {}: {}", self->path_, uv_strerror(status));
    return;
  }
  auto* c = new Connection;
  c->server = self;
  uv_pipe_init(self->loop_, &c->pipe, 0);
  uv_timer_init(self->loop_, &c->timer);
  c->open_handles = 2;
  c->pipe.data = c;
  c->timer.data = c;
  self->connections_.push_back(c);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->pipe)) != 0) {
    self->close(*c);
    return;
  }
  if (self->connections_.size() > kMaxConnections) {
    spdlog::warn("API socket {}: more than {} connections; closing the newest", self->path_, kMaxConnections);
    self->close(*c);
    return;
  }
  uv_timer_start(&c->timer, on_timeout, kRequestTimeoutMs, 0);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->pipe), on_alloc, on_read);
}

void ApiServer::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(handle->data);
  *buf = uv_buf_init(c->read_buffer.data(), static_cast<unsigned>(c->read_buffer.size()));
}

void ApiServer::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(stream->data);
  ApiServer* self = c->server;
  if (self == nullptr || c->state != Connection::State::kReading) return;
  if (nread > 0) {
    c->request.append(buf->base, static_cast<size_t>(nread));
    if (c->request.size() >= self->max_request_bytes_) {
      spdlog::warn("API socket {}: a request of {} bytes or more", self->path_, self->max_request_bytes_);
      self->respond(*c, self->too_large_);
    } else if (nlohmann::json::accept(c->request)) {
      self->respond(*c, self->handler_(c->request));
    }
    return;
  }
  if (nread == UV_EOF) {
    self->respond(*c, self->handler_(c->request));
  } else if (nread < 0) {
    self->close(*c);
  }
}

void ApiServer::on_timeout(uv_timer_t* timer) {
  auto* c = static_cast<Connection*>(timer->data);
  ApiServer* self = c->server;
  if (self == nullptr || c->state != Connection::State::kReading) return;
  self->respond(*c, self->handler_(c->request));
}

void ApiServer::respond(Connection& c, std::string answer) {
  c.state = Connection::State::kAnswering;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c.pipe));
  uv_timer_stop(&c.timer);
  c.answer = std::move(answer);
  c.write_req.data = &c;
  uv_buf_t b = uv_buf_init(c.answer.data(), static_cast<unsigned>(c.answer.size()));
  if (uv_write(&c.write_req, reinterpret_cast<uv_stream_t*>(&c.pipe), &b, 1, on_write) != 0) close(c);
}

void ApiServer::on_write(uv_write_t* req, int status) {
  auto* c = static_cast<Connection*>(req->data);
  if (c->state == Connection::State::kClosing) return;
  ApiServer* self = c->server;
  c->shutdown_req.data = c;
  if (status < 0 ||
      uv_shutdown(&c->shutdown_req, reinterpret_cast<uv_stream_t*>(&c->pipe), on_shutdown) != 0) {
    if (self != nullptr) self->close(*c);
  }
}

void ApiServer::on_shutdown(uv_shutdown_t* req, int) {
  auto* c = static_cast<Connection*>(req->data);
  if (c->state == Connection::State::kClosing || c->server == nullptr) return;
  c->server->close(*c);
}

void ApiServer::close(Connection& c) {
  if (c.state == Connection::State::kClosing) return;
  c.state = Connection::State::kClosing;
  auto it = std::find(connections_.begin(), connections_.end(), &c);
  if (it != connections_.end()) connections_.erase(it);
  auto closed = [](uv_handle_t* h) {
    auto* conn = static_cast<Connection*>(h->data);
    if (--conn->open_handles == 0) delete conn;
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&c.pipe), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&c.timer), closed);
}

}  // namespace slipway::compat
