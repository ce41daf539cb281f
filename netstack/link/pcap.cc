// Pcap recording; see pcap.h for the theory of operation.
#include "netstack/link/pcap.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "netstack/wire/bytes.h"

namespace slipway::link {
namespace {

constexpr size_t kFileBufferSize = size_t{1} << 20;
constexpr auto kFlushInterval = std::chrono::seconds(1);

}  // namespace

std::unique_ptr<PcapWriter> PcapWriter::open(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "wbe");  // 'e': O_CLOEXEC (glibc)
  if (file == nullptr) {
    throw std::runtime_error("cannot open pcap file " + path + ": " + std::strerror(errno));
  }
  auto buffer = std::make_unique<char[]>(kFileBufferSize);
  if (std::setvbuf(file, buffer.get(), _IOFBF, kFileBufferSize) != 0) {
    std::fclose(file);
    throw std::runtime_error("cannot set up buffering for pcap file " + path);
  }
  std::unique_ptr<PcapWriter> writer(new PcapWriter(path, file, std::move(buffer)));

  // pcap headers are little-endian here; the magic tells readers so.
  std::array<std::byte, kGlobalHeaderSize> header{};
  wire::store_le32(header, 0, kMagic);
  wire::store_le16(header, 4, 2);   // version major
  wire::store_le16(header, 6, 4);   // version minor
  wire::store_le32(header, 8, 0);   // thiszone: timestamps are UTC
  wire::store_le32(header, 12, 0);  // sigfigs
  wire::store_le32(header, 16, kSnapLen);
  wire::store_le32(header, 20, kLinkTypeEthernet);
  if (!writer->put(header.data(), header.size()) || std::fflush(file) != 0) {
    throw std::runtime_error("cannot write pcap file " + path + ": " + std::strerror(errno));
  }
  return writer;
}

PcapWriter::PcapWriter(std::string path, std::FILE* file, std::unique_ptr<char[]> buffer)
    : path_(std::move(path)), file_(file), buffer_(std::move(buffer)) {}

PcapWriter::~PcapWriter() {
  if (std::fclose(file_) != 0 && !failed_) {
    spdlog::warn("pcap {}: closing failed, the capture may be incomplete: {}", path_,
                 std::strerror(errno));
  }
}

bool PcapWriter::put(const void* data, size_t size) {
  return std::fwrite(data, 1, size, file_) == size;
}

void PcapWriter::report_error(const char* what) {
  if (!failed_) {
    spdlog::warn("pcap {}: {} failed, dropping further frames: {}", path_, what,
                 std::strerror(errno));
  }
  failed_ = true;
}

void PcapWriter::write(Frame frame, std::chrono::system_clock::time_point when) {
  if (failed_) {
    stats_.failed++;
    return;
  }
  using namespace std::chrono;
  auto us = duration_cast<microseconds>(when.time_since_epoch()).count();
  if (us < 0) us = 0;  // a clock before 1970 is not worth a special case
  const auto caplen = static_cast<uint32_t>(std::min<size_t>(frame.size(), kSnapLen));
  const auto origlen = static_cast<uint32_t>(std::min<size_t>(frame.size(), UINT32_MAX));

  std::array<std::byte, kRecordHeaderSize> record{};
  wire::store_le32(record, 0, static_cast<uint32_t>(us / 1000000));
  wire::store_le32(record, 4, static_cast<uint32_t>(us % 1000000));
  wire::store_le32(record, 8, caplen);
  wire::store_le32(record, 12, origlen);
  if (!put(record.data(), record.size()) || !put(frame.data(), caplen)) {
    report_error("write");
    stats_.failed++;
    return;
  }
  stats_.frames++;
  stats_.bytes += caplen;
  if (caplen < frame.size()) stats_.truncated++;
  if (when - last_flush_ >= kFlushInterval) {
    flush();
    last_flush_ = when;
  }
}

void PcapWriter::flush() {
  if (!failed_ && std::fflush(file_) != 0) report_error("flush");
}

PcapPort::PcapPort(Port& inner, std::shared_ptr<PcapWriter> writer, Clock clock)
    : inner_(inner), writer_(std::move(writer)), clock_(std::move(clock)) {
  // The sink and the listener capture `this`: the destructor unhooks them
  // before we go away.
  inner_.set_sink([this](Frame frame, const Offload& offload) {
    writer_->write(frame, now());
    deliver(frame, offload);
  });
  inner_.set_capabilities_listener([this] { capabilities_changed(); });
  inner_.set_tx_ready_listener([this](bool ready) { set_tx_ready(ready); });
  set_tx_ready(inner_.tx_ready());
}

PcapPort::~PcapPort() {
  inner_.set_sink(nullptr);
  inner_.set_capabilities_listener(nullptr);
  inner_.set_tx_ready_listener(nullptr);
}

std::chrono::system_clock::time_point PcapPort::now() const {
  return clock_ ? clock_() : std::chrono::system_clock::now();
}

bool PcapPort::transmit(Frame frame, const Offload& offload) {
  writer_->write(frame, now());
  if (!inner_.send(frame, offload)) {
    stats_.tx_dropped++;
    return false;
  }
  stats_.tx_frames++;
  stats_.tx_bytes += frame.size();
  return true;
}

}  // namespace slipway::link
