// See fault_port.h.
#include "netstack/link/fault_port.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdio>

#include "netstack/sys/rx_blocks.h"
#include "netstack/wire/ethernet.h"

namespace slipway::link {
namespace {

std::optional<double> parse_probability(std::string_view v) {
  bool percent = !v.empty() && v.back() == '%';
  if (percent) v.remove_suffix(1);
  double d = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
  if (percent) d /= 100;
  if (!(d >= 0 && d <= 1)) return std::nullopt;
  return d;
}

std::string percent(double p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g%%", p * 100);
  return buf;
}

}  // namespace

std::optional<LinkFaults> LinkFaults::parse(std::string_view text, std::string* error) {
  LinkFaults f;
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    auto eq = item.find('=');
    std::string_view key = item.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
    double* prob = key == "loss" ? &f.loss : key == "dup" ? &f.dup : key == "reorder" ? &f.reorder
                 : key == "corrupt" ? &f.corrupt : nullptr;
    if (prob != nullptr) {
      auto p = parse_probability(value);
      if (!p) {
        *error = std::string(key) + ": '" + std::string(value) + "' is not a percentage 0% to 100% (or 0 to 1)";
        return std::nullopt;
      }
      *prob = *p;
    } else if (key == "delay") {
      if (value.size() > 2 && value.substr(value.size() - 2) == "ms") value.remove_suffix(2);
      uint32_t ms = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
      if (value.empty() || ec != std::errc() || p != value.data() + value.size() || ms > 10000) {
        *error = "delay: '" + std::string(value) + "' is not 0ms to 10000ms";
        return std::nullopt;
      }
      f.delay_ms = ms;
    } else if (key == "seed") {
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), f.seed);
      if (value.empty() || ec != std::errc() || p != value.data() + value.size()) {
        *error = "seed: '" + std::string(value) + "' is not a number";
        return std::nullopt;
      }
    } else {
      *error = "'" + std::string(item) + "': expected loss=, dup=, reorder=, corrupt=, delay= or seed=";
      return std::nullopt;
    }
  }
  return f;
}

std::string LinkFaults::to_string() const {
  return "loss=" + percent(loss) + ",dup=" + percent(dup) + ",reorder=" + percent(reorder) +
         ",corrupt=" + percent(corrupt) + ",delay=" + std::to_string(delay_ms) + "ms,seed=" + std::to_string(seed);
}

FaultPort::FaultPort(uv_loop_t* loop, Port& inner, LinkFaults faults)
    : inner_(inner), faults_(faults), rng_(faults.seed), loop_(loop), timer_(new uv_timer_t) {
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  inner_.set_sink([this](Frame f, const Offload& o) { enter(kFromInner, f, o); });
  inner_.set_capabilities_listener([this] { capabilities_changed(); });
}

FaultPort::~FaultPort() {
  inner_.set_sink(nullptr);
  inner_.set_capabilities_listener(nullptr);
  uv_timer_stop(timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

Capabilities FaultPort::capabilities() const {
  // Corruption must hit complete checksums (see the file comment).
  if (faults_.corrupt > 0) return {};
  return inner_.capabilities();
}

bool FaultPort::transmit(Frame frame, const Offload& offload) {
  stats_.tx_frames++;
  stats_.tx_bytes += frame.size();
  enter(kToInner, frame, offload);
  return true;  // as a lossy wire: the sender never knows
}

bool FaultPort::chance(double p) {
  if (p <= 0) return false;
  return std::uniform_real_distribution<double>(0, 1)(rng_) < p;
}

void FaultPort::enter(Dir dir, Frame frame, const Offload& offload) {
  auto& st = stats_dir_[dir];
  st.frames++;
  if (chance(faults_.loss)) {
    st.lost++;
    return;
  }
  if (!chance(faults_.corrupt) || frame.size() <= wire::kEthernetHeaderLen) {
    faults_on(dir, frame, offload);
    return;
  }
  st.corrupted++;
  auto corrupt = [this](std::vector<std::byte>& f) {
    size_t at = wire::kEthernetHeaderLen +
                std::uniform_int_distribution<size_t>(0, f.size() - wire::kEthernetHeaderLen - 1)(rng_);
    f[at] ^= static_cast<std::byte>(std::uniform_int_distribution<int>(1, 255)(rng_));
  };
  // Finished in software first: the checksum the sender would have put on
  // the wire, then the damage (the port's own frames always arrive plain).
  if (offload.is_gso()) {
    std::vector<std::vector<std::byte>> segments;
    std::vector<std::byte> scratch;
    if (wire::segment_tcp(frame, offload, scratch, [&](wire::Bytes s) { segments.emplace_back(s.begin(), s.end()); }) !=
            wire::OffloadError::kNone ||
        segments.empty()) {
      st.lost++;
      return;
    }
    corrupt(segments.front());
    for (const auto& s : segments) faults_on(dir, s, {});
    return;
  }
  std::vector<std::byte> copy(frame.begin(), frame.end());
  if (offload.needs_csum() && wire::complete_checksum(copy, offload) != wire::OffloadError::kNone) {
    st.lost++;
    return;
  }
  corrupt(copy);
  faults_on(dir, copy, {});
}

void FaultPort::faults_on(Dir dir, Frame frame, const Offload& offload) {
  if (chance(faults_.dup)) {
    stats_dir_[dir].duplicated++;
    // The same memory goes out twice: the first reader may not keep it.
    sys::RxBlocks::Withhold one_frame_two_readers;
    reorder_step(dir, frame, offload);
    reorder_step(dir, frame, offload);
    return;
  }
  reorder_step(dir, frame, offload);
}

void FaultPort::reorder_step(Dir dir, Frame frame, const Offload& offload) {
  if (held_[dir]) {
    // The held frame goes right after this one.
    Pending p = std::move(*held_[dir]);
    held_[dir].reset();
    delay_step(dir, frame, offload);
    delay_step(dir, p.frame, p.offload);
    return;
  }
  if (chance(faults_.reorder) && queued() < kMaxQueued) {
    stats_dir_[dir].reordered++;
    held_[dir] = Pending{uv_now(loop_) + kReorderHoldMs, dir, {frame.begin(), frame.end()}, offload};
    arm();
    return;
  }
  delay_step(dir, frame, offload);
}

void FaultPort::delay_step(Dir dir, Frame frame, const Offload& offload) {
  if (faults_.delay_ms == 0) {
    out(dir, frame, offload);
    return;
  }
  if (queued() >= kMaxQueued) {
    stats_dir_[dir].lost++;
    return;
  }
  stats_dir_[dir].delayed++;
  delayed_.push_back(Pending{uv_now(loop_) + faults_.delay_ms, dir, {frame.begin(), frame.end()}, offload});
  arm();
}

void FaultPort::out(Dir dir, Frame frame, const Offload& offload) {
  if (dir == kToInner) {
    if (!inner_.send(frame, offload)) stats_.tx_dropped++;
  } else {
    deliver(frame, offload);
  }
}

size_t FaultPort::queued() const { return delayed_.size() + (held_[0] ? 1 : 0) + (held_[1] ? 1 : 0); }

void FaultPort::arm() {
  uint64_t next = UINT64_MAX;
  if (!delayed_.empty()) next = delayed_.front().due;
  for (const auto& h : held_)
    if (h) next = std::min(next, h->due);
  if (next == UINT64_MAX) {
    uv_timer_stop(timer_);
    return;
  }
  uint64_t now = uv_now(loop_);
  uv_timer_start(
      timer_, [](uv_timer_t* t) { static_cast<FaultPort*>(t->data)->on_timer(); }, next > now ? next - now : 0, 0);
}

void FaultPort::on_timer() {
  uint64_t now = uv_now(loop_);
  for (int d = 0; d < 2; ++d) {
    if (held_[d] && held_[d]->due <= now) {
      Pending p = std::move(*held_[d]);
      held_[d].reset();
      delay_step(p.dir, p.frame, p.offload);
    }
  }
  // Bounded: only what is due now (frames delayed from here are due later).
  while (!delayed_.empty() && delayed_.front().due <= now) {
    Pending p = std::move(delayed_.front());
    delayed_.pop_front();
    out(p.dir, p.frame, p.offload);
  }
  arm();
}

}  // namespace slipway::link
