#include "netstack/engine/tcp_flow.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <utility>

extern "C" {
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
}

#include "netstack/engine/flow_host.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/icmpv6.h"

namespace slipway::engine {
namespace {

// A uv_write request for what the host socket did not take at once: it
// keeps lwIP's pbuf chains (no copy) until the write completes.
struct WriteReq {
  uv_write_t req;
  TcpFlow* flow;
  size_t len;
  struct pbuf* p;
};

// lwIP's tcp_recved takes at most 0xffff bytes at a time.
void recved(struct tcp_pcb* pcb, size_t len) {
  while (len > 0) {
    auto n = static_cast<u16_t>(std::min<size_t>(len, 0xffff));
    tcp_recved(pcb, n);
    len -= n;
  }
}

}  // namespace

struct TcpFlowCallbacks {
  static TcpFlow* of(uv_handle_t* h) { return static_cast<TcpFlow*>(h->data); }

  static void on_connect(uv_connect_t* req, int status) {
    auto* f = static_cast<TcpFlow*>(req->data);
    if (f->closing_) return;
    if (status != 0) {
      f->connect_failed(status);
      return;
    }
    if (!f->unix_) uv_tcp_nodelay(&f->sock_.tcp, 1);
    f->state_ = TcpFlow::State::kAccepting;
    // Now that the host accepted, let lwIP answer the guest's SYN.
    std::vector<std::byte> syn;
    syn.swap(f->syn_);
    f->host_->feed(syn);
  }

  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    TcpFlow* f = of(h);
    auto& rb = f->host_->read_buffer();
    size_t room = rb.size();
    if (f->pcb_ != nullptr) room = std::clamp<size_t>(tcp_sndbuf(f->pcb_), 16 * 1024, rb.size());
    *buf = uv_buf_init(reinterpret_cast<char*>(rb.data()), static_cast<unsigned>(room));
  }

  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    TcpFlow* f = of(reinterpret_cast<uv_handle_t*>(s));
    if (nread > 0) {
      // Sent at the end of this loop iteration (flush()), with the FIN if
      // the host closes right behind these bytes.
      f->host_reads_++;
      f->host_data(reinterpret_cast<const std::byte*>(buf->base), static_cast<size_t>(nread), false);
      if (!f->closing_) f->account();
    } else if (nread == UV_EOF) {
      f->host_eof();
    } else if (nread < 0) {
      spdlog::debug("tcp: {}: host read: {}", f->key_.to_string(), uv_strerror(static_cast<int>(nread)));
      f->abort_guest();
    }
  }

  static void on_write(uv_write_t* req, int status) {
    auto* w = reinterpret_cast<WriteReq*>(req);
    TcpFlow* f = w->flow;
    size_t len = w->len;
    pbuf_free(w->p);
    delete w;
    f->host_written(len, status);
    if (!f->closing_) f->account();
  }

  static void on_shutdown(uv_shutdown_t* req, int) {
    auto* f = static_cast<TcpFlow*>(req->data);
    f->maybe_finish();
  }

  static void on_close(uv_handle_t* h) {
    TcpFlow* f = of(h);
    if (f->host_ != nullptr) f->host_->closed(f);
    delete f;
  }

  static err_t on_lwip_recv(void* arg, struct tcp_pcb*, struct pbuf* p, err_t) {
    auto* f = static_cast<TcpFlow*>(arg);
    if (p == nullptr) {
      f->guest_fin();
    } else {
      f->guest_data(p);
      if (!f->closing_) f->account();
    }
    return f->pcb_aborted_ ? ERR_ABRT : ERR_OK;
  }

  static err_t on_guest_connected(void* arg, struct tcp_pcb* pcb, err_t) {
    auto* f = static_cast<TcpFlow*>(arg);
    f->attach(pcb);
    return ERR_OK;
  }

  static err_t on_lwip_sent(void* arg, struct tcp_pcb*, u16_t) {
    auto* f = static_cast<TcpFlow*>(arg);
    f->guest_acked();
    if (!f->closing_) f->account();
    return f->pcb_aborted_ ? ERR_ABRT : ERR_OK;
  }

  static void on_lwip_err(void* arg, err_t err) {
    // The pcb is already freed by lwIP.
    auto* f = static_cast<TcpFlow*>(arg);
    f->pcb_ = nullptr;
    spdlog::debug("tcp: {}: guest side ended ({})", f->key_.to_string(), lwip_strerr(err));
    f->close_socket(err == ERR_RST);
  }
};

TcpFlow::TcpFlow(FlowHost& host, const FlowKey& key, wire::Bytes syn_packet, uint32_t syn_seq, uint64_t now)
    : host_(&host), key_(key), started_(now), syn_(syn_packet.begin(), syn_packet.end()), syn_seq_(syn_seq) {
  std::memset(&sock_, 0, sizeof sock_);
  sock_.handle.data = this;
  connect_req_.data = this;
  shutdown_req_.data = this;
}

TcpFlow::TcpFlow(FlowHost& host, uint64_t now)
    : host_(&host), state_(State::kConnectingGuest), started_(now), inbound_(true) {
  std::memset(&sock_, 0, sizeof sock_);
  sock_.handle.data = this;
  connect_req_.data = this;
  shutdown_req_.data = this;
}

TcpFlow* TcpFlow::accept_inbound(FlowHost& host, uv_stream_t* listener, uint64_t now) {
  auto* f = new TcpFlow(host, now);
  if (uv_tcp_init(host.loop(), &f->sock_.tcp) != 0) {
    delete f;
    return nullptr;
  }
  f->socket_open_ = true;
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&f->sock_)) != 0) {
    f->closing_ = true;
    f->state_ = State::kClosed;
    uv_close(reinterpret_cast<uv_handle_t*>(&f->sock_), TcpFlowCallbacks::on_close);
    return nullptr;
  }
  if (!f->unix_) uv_tcp_nodelay(&f->sock_.tcp, 1);
  return f;
}

bool TcpFlow::peer_address(IpAddr* addr, uint16_t* port) const {
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(&sock_.tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  return from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), addr, port);
}

void TcpFlow::connect_guest(struct tcp_pcb* pcb, const FlowKey& key) {
  key_ = key;
  pcb_ = pcb;
  tcp_arg(pcb, this);
  tcp_err(pcb, TcpFlowCallbacks::on_lwip_err);
  // The pcb's remote address was set by the engine (to_lwip(key.guest)).
  ip_addr_t guest = pcb->remote_ip;
  if (tcp_connect(pcb, &guest, key.guest_port, TcpFlowCallbacks::on_guest_connected) != ERR_OK) abort_guest();
}

void TcpFlow::refuse_unopened() {
  // No host socket to close: the guest's SYN gets a RST, and the flow goes.
  host_->counters().tcp_refused++;
  host_->refuse_syn(key_, syn_seq_);
  host_->closed(this);
  delete this;
}

void TcpFlow::connect(const IpAddr& host, uint16_t port) {
  int rc = uv_tcp_init(host_->loop(), &sock_.tcp);
  if (rc != 0) return refuse_unopened();
  socket_open_ = true;
  sockaddr_storage sa = to_sockaddr(host, port);
  rc = uv_tcp_connect(&connect_req_, &sock_.tcp, reinterpret_cast<const sockaddr*>(&sa), TcpFlowCallbacks::on_connect);
  if (rc != 0) connect_failed(rc);
}

void TcpFlow::connect_unix(const std::string& path) {
  unix_ = true;
  if (uv_pipe_init(host_->loop(), &sock_.pipe, 0) != 0) return refuse_unopened();
  socket_open_ = true;
  // Failures (no such socket, refused) come to on_connect.
  uv_pipe_connect(&connect_req_, &sock_.pipe, path.c_str(), TcpFlowCallbacks::on_connect);
}

void TcpFlow::connect_command(const std::string& command) {
  unix_ = true;
  int sv[2] = {-1, -1};
  int rc = ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0 ? 0 : uv_translate_sys_error(errno);
  if (rc == 0) rc = uv_pipe_init(host_->loop(), &sock_.pipe, 0);
  if (rc != 0) {
    if (sv[0] >= 0) ::close(sv[0]);
    if (sv[1] >= 0) ::close(sv[1]);
    return refuse_unopened();
  }
  socket_open_ = true;
  rc = uv_pipe_open(&sock_.pipe, sv[0]);
  if (rc != 0) ::close(sv[0]);
  if (rc == 0) {
    auto* process = new uv_process_t;
    uv_stdio_container_t stdio[3];
    for (auto& s : stdio) {
      s.flags = UV_INHERIT_FD;
      s.data.fd = sv[1];
    }
    std::string cmd = command;
    char sh[] = "/bin/sh", dash_c[] = "-c";
    char* args[] = {sh, dash_c, cmd.data(), nullptr};
    uv_process_options_t o{};
    o.file = "/bin/sh";
    o.args = args;
    o.stdio = stdio;
    o.stdio_count = 3;
    o.exit_cb = [](uv_process_t* p, int64_t, int) {
      uv_close(reinterpret_cast<uv_handle_t*>(p), [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
    };
    rc = uv_spawn(host_->loop(), process, &o);
    if (rc != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(process),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
    } else {
      uv_unref(reinterpret_cast<uv_handle_t*>(process));
    }
  }
  ::close(sv[1]);
  if (rc != 0) {
    spdlog::warn("tcp: {}: cannot run the guest forward's command: {}", key_.to_string(), uv_strerror(rc));
    connect_failed(rc);
    return;
  }
  TcpFlowCallbacks::on_connect(&connect_req_, 0);  // connected already: lwIP may answer the SYN
}

void TcpFlow::connect_failed(int status) {
  auto& stats = host_->counters();
  switch (status) {
    case UV_ENETUNREACH:
      stats.tcp_unreachable++;
      host_->report_unreachable(syn_, wire::icmpcode::kNetUnreachable, wire::icmpv6code::kNoRoute);
      break;
    case UV_EHOSTUNREACH:
    case UV_ETIMEDOUT:
      stats.tcp_unreachable++;
      host_->report_unreachable(syn_, wire::icmpcode::kHostUnreachable, wire::icmpv6code::kAddressUnreachable);
      break;
    case UV_EACCES:
    case UV_EPERM:
      stats.tcp_unreachable++;
      host_->report_unreachable(syn_, wire::icmpcode::kAdminProhibited, wire::icmpv6code::kAdminProhibited);
      break;
    case UV_EMFILE:
    case UV_ENFILE:
    case UV_ENOBUFS:
    case UV_ENOMEM:
      // The host is out of descriptors (or memory): refused at once, and
      // said once in a while (a connection storm would log a line each).
      stats.tcp_no_fd++;
      host_->out_of_descriptors("tcp", status);
      host_->refuse_syn(key_, syn_seq_);
      break;
    default:  // ECONNREFUSED and anything else
      stats.tcp_refused++;
      host_->refuse_syn(key_, syn_seq_);
      break;
  }
  spdlog::debug("tcp: {}: connect failed: {}", key_.to_string(), uv_strerror(status));
  close_socket(false);
}

void TcpFlow::cancel() {
  spdlog::debug("tcp: {}: guest reset before the connection was established", key_.to_string());
  // lwIP has dropped (or never had) its half-open pcb; the host connection
  // is reset rather than closed, as after any guest RST (and leaves no
  // TIME-WAIT on the host).
  close_socket(true);
}

void TcpFlow::resume() {
  waiting_buffers_ = false;
  if (closing_) return;
  if (owed_window_ > 0) open_window(std::exchange(owed_window_, 0));
  if (!to_guest_.empty()) {
    push_to_guest();
  } else {
    start_reading();
  }
  account();
}

void TcpFlow::open_window(size_t n) {
  if (pcb_ == nullptr || n == 0) return;
  if (host_ != nullptr && host_->buffers_full()) {
    owed_window_ += n;
    wait_for_buffers();
    return;
  }
  recved(pcb_, n + std::exchange(owed_window_, 0));
}

void TcpFlow::wait_for_buffers() {
  if (waiting_buffers_ || host_ == nullptr || closing_) return;
  waiting_buffers_ = true;
  host_->wait_for_buffers(this);
}

void TcpFlow::account() {
  size_t held = to_host_inflight_ + to_guest_.size();
  // snd_buf itself: tcp_sndbuf() caps it at 0xffff.
  if (pcb_ != nullptr) held += TCP_SND_BUF - pcb_->snd_buf;
  if (held == accounted_) return;
  if (host_ != nullptr) host_->buffered(static_cast<int64_t>(held) - static_cast<int64_t>(accounted_));
  accounted_ = held;
}

void TcpFlow::attach(struct tcp_pcb* pcb) {
  pcb_ = pcb;
  state_ = State::kEstablished;
  // With TSO on the guest's link, send larger segments than the guest's MSS.
  if (host_ != nullptr) pcb->mss = host_->segment_size(pcb->mss);
  tcp_arg(pcb, this);
  tcp_recv(pcb, TcpFlowCallbacks::on_lwip_recv);
  tcp_sent(pcb, TcpFlowCallbacks::on_lwip_sent);
  tcp_err(pcb, TcpFlowCallbacks::on_lwip_err);
  tcp_nagle_disable(pcb);
  start_reading();
}

void TcpFlow::start_reading() {
  if (host_eof_ || closing_) return;
  // Also when already reading: the read that found the budget spent or the
  // guest's link backed up (what lwIP holds still goes out) is the last.
  if (host_ != nullptr && (host_->buffers_full() || !host_->link_ready())) {
    stop_reading();
    wait_for_buffers();
    return;
  }
  if (reading_) return;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&sock_), TcpFlowCallbacks::on_alloc, TcpFlowCallbacks::on_read) ==
      0)
    reading_ = true;
}

void TcpFlow::stop_reading() {
  if (!reading_) return;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&sock_));
  reading_ = false;
}

// Guest -> host, at once: a write per segment lets the host's reader work
// on one CPU while lwIP takes the next segment on the other (measured: a
// writev per loop iteration moved 10-20 % less). Writes what the socket
// takes now, straight from lwIP's buffers; the rest goes into a write
// request that holds those buffers (libuv copies only the descriptors), so
// no byte is copied here. Only bytes the socket took are acknowledged to
// lwIP.
void TcpFlow::guest_data(struct pbuf* p) {
  const size_t total = p->tot_len;
  if (closing_ || host_shutdown_) {
    if (pcb_ != nullptr) recved(pcb_, total);  // dropped, not held
    pbuf_free(p);
    return;
  }
  bytes_to_host_ += total;
  std::vector<uv_buf_t> iov;
  for (struct pbuf* q = p; q != nullptr; q = q->next)
    if (q->len > 0) iov.push_back(uv_buf_init(static_cast<char*>(q->payload), q->len));
  size_t written = 0;
  if (to_host_inflight_ == 0) {
    int rc = uv_try_write(reinterpret_cast<uv_stream_t*>(&sock_), iov.data(), static_cast<unsigned>(iov.size()));
    if (rc > 0) {
      written = static_cast<size_t>(rc);
    } else if (rc != UV_EAGAIN && rc != UV_ENOSYS) {
      pbuf_free(p);
      spdlog::debug("tcp: {}: host write: {}", key_.to_string(), uv_strerror(rc));
      abort_guest();
      return;
    }
  }
  if (written < total) {
    std::vector<uv_buf_t> rest;
    size_t skip = written;
    for (const auto& b : iov) {
      if (skip >= b.len) {
        skip -= b.len;
        continue;
      }
      rest.push_back(uv_buf_init(b.base + skip, static_cast<unsigned>(b.len - skip)));
      skip = 0;
    }
    auto* w = new WriteReq{{}, this, total - written, p};
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&sock_), rest.data(),
                      static_cast<unsigned>(rest.size()), TcpFlowCallbacks::on_write);
    if (rc != 0) {
      delete w;
      pbuf_free(p);
      abort_guest();
      return;
    }
    to_host_inflight_ += total - written;
  } else {
    pbuf_free(p);
  }
  if (written > 0) open_window(written);
}

void TcpFlow::host_written(size_t len, int status) {
  to_host_inflight_ -= len;
  if (closing_) return;
  if (status != 0) {
    spdlog::debug("tcp: {}: host write: {}", key_.to_string(), uv_strerror(status));
    abort_guest();
    return;
  }
  open_window(len);
  maybe_shutdown_host();
}

void TcpFlow::guest_fin() {
  guest_fin_ = true;
  maybe_shutdown_host();
  maybe_finish();
}

void TcpFlow::maybe_shutdown_host() {
  if (!guest_fin_ || host_shutdown_ || to_host_inflight_ != 0 || closing_) return;
  host_shutdown_ = true;
  int rc = uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&sock_), TcpFlowCallbacks::on_shutdown);
  if (rc != 0) {
    host_shutdown_ = false;
    abort_guest();
  }
}

// Host -> guest. lwIP copies what fits in its send buffer; the rest waits in
// to_guest_ and reading pauses until the guest acknowledges data.
void TcpFlow::host_data(const std::byte* data, size_t len, bool flush) {
  bytes_to_guest_ += len;
  if (pcb_ == nullptr) return;
  size_t taken = to_guest_.empty() ? write_to_lwip(data, len, flush) : 0;
  if (!flush && !flush_pending_ && host_ != nullptr) {
    flush_pending_ = true;
    host_->flush_later(this);
  }
  to_guest_.insert(to_guest_.end(), data + taken, data + len);
  after_push();
}

void TcpFlow::push_to_guest() {
  if (pcb_ == nullptr) return;
  size_t taken = write_to_lwip(to_guest_.data(), to_guest_.size());
  to_guest_.erase(to_guest_.begin(), to_guest_.begin() + static_cast<std::ptrdiff_t>(taken));
  after_push();
}

void TcpFlow::flush() {
  flush_pending_ = false;
  if (pcb_ == nullptr || closing_) return;
  // The host's EOF may already wait behind the bytes read this iteration
  // (an HTTP server answering "Connection: close" writes and closes at
  // once): then the guest gets them and the FIN in one segment, as it would
  // from the server's own kernel, and closes passively. Otherwise it could
  // close first and keep its port in TIME-WAIT for 60 s, and a busy client
  // runs out of ports. The peek is a system call: only during a flow's
  // first kEofPeekReads reads (a short exchange, as such servers have), not
  // for every answer of a long-lived connection.
  if (reading_ && !host_eof_ && host_reads_ <= kEofPeekReads && eof_queued()) {
    host_eof();  // queues the FIN behind the data and sends both
    return;
  }
  if (pcb_->unsent != nullptr) tcp_output(pcb_);
}

bool TcpFlow::eof_queued() const {
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&sock_), &fd) != 0) return false;
  char c;
  return ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

size_t TcpFlow::write_to_lwip(const std::byte* data, size_t len, bool flush) {
  size_t off = 0;
  while (off < len) {
    size_t room = tcp_sndbuf(pcb_);
    if (room == 0 || tcp_sndqueuelen(pcb_) >= TCP_SND_QUEUELEN - 4) break;
    size_t n = std::min({room, len - off, size_t{0xffff}});
    u8_t flags = TCP_WRITE_FLAG_COPY;
    if (off + n < len) flags |= TCP_WRITE_FLAG_MORE;
    if (tcp_write(pcb_, data + off, static_cast<u16_t>(n), flags) != ERR_OK) break;
    off += n;
  }
  // Also what an earlier call left unsent (flush = false: a FIN follows).
  if (flush && (off > 0 || pcb_->unsent != nullptr)) tcp_output(pcb_);
  return off;
}

void TcpFlow::after_push() {
  if (!to_guest_.empty()) {
    stop_reading();
    return;
  }
  if (host_eof_ && !fin_to_guest_) {
    fin_to_guest_ = true;
    tcp_shutdown(pcb_, 0, 1);
    maybe_finish();
  } else {
    start_reading();
  }
}

void TcpFlow::guest_acked() {
  if (!to_guest_.empty() || !reading_) push_to_guest();
}

void TcpFlow::host_eof() {
  host_eof_ = true;
  stop_reading();
  if (pcb_ == nullptr) return;
  // Queue everything first, so that the FIN (queued by after_push() once
  // every byte is in lwIP) rides on the last data segment; tcp_shutdown
  // sends both. If lwIP could not take all, send what it has now.
  size_t taken = write_to_lwip(to_guest_.data(), to_guest_.size(), false);
  to_guest_.erase(to_guest_.begin(), to_guest_.begin() + static_cast<std::ptrdiff_t>(taken));
  after_push();
  if (pcb_ != nullptr && !fin_to_guest_ && pcb_->unsent != nullptr) tcp_output(pcb_);
}

void TcpFlow::maybe_finish() {
  if (closing_) return;
  if (!(guest_fin_ && fin_to_guest_ && host_shutdown_ && to_host_inflight_ == 0)) return;
  // Both directions are done: let lwIP finish the close handshake on its own.
  if (pcb_ != nullptr) {
    struct tcp_pcb* pcb = pcb_;
    detach_pcb();
    if (tcp_close(pcb) != ERR_OK) {
      pcb_aborted_ = true;
      tcp_abort(pcb);
    }
  }
  close_socket(false);
}

void TcpFlow::detach_pcb() {
  if (pcb_ == nullptr) return;
  tcp_arg(pcb_, nullptr);
  tcp_recv(pcb_, nullptr);
  tcp_sent(pcb_, nullptr);
  tcp_err(pcb_, nullptr);
  pcb_ = nullptr;
}

void TcpFlow::abort_guest() {
  if (pcb_ != nullptr) {
    struct tcp_pcb* pcb = pcb_;
    detach_pcb();
    pcb_aborted_ = true;
    tcp_abort(pcb);  // sends RST
  }
  close_socket(true);
}

void TcpFlow::close() {
  if (pcb_ != nullptr) {
    struct tcp_pcb* pcb = pcb_;
    detach_pcb();
    pcb_aborted_ = true;
    tcp_abort(pcb);
  }
  close_socket(false);
}

void TcpFlow::close_socket(bool reset) {
  if (closing_) return;
  closing_ = true;
  state_ = State::kClosed;
  detach_pcb();
  // What the flow held is freed with it (or left to lwIP's closing pcb,
  // which its send buffer bounds).
  if (accounted_ != 0 && host_ != nullptr) host_->buffered(-static_cast<int64_t>(accounted_));
  accounted_ = 0;
  if (!socket_open_) {
    if (host_ != nullptr) host_->closed(this);
    delete this;
    return;
  }
  auto* h = reinterpret_cast<uv_handle_t*>(&sock_);
  if (reset && !unix_ && uv_tcp_close_reset(&sock_.tcp, TcpFlowCallbacks::on_close) == 0) return;
  uv_close(h, TcpFlowCallbacks::on_close);
}

}  // namespace slipway::engine
