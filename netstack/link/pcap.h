// Pcap recording: a file writer and a filter Port that records what crosses it.
//
// PcapWriter writes the classic libpcap format (not pcapng) so that every
// tool reads it: a 24-byte global header (magic 0xa1b2c3d4, i.e. microsecond
// timestamps, version 2.4, snaplen 262144, LINKTYPE_ETHERNET) and then one
// 16-byte record header plus the frame bytes per frame. All header fields are
// written little-endian explicitly, so a file's bytes do not depend on the
// host; readers detect the order from the magic. Frames longer than the
// snaplen are cut to it (orig_len keeps the real length).
//
// Writes go through a std::FILE* with a 1 MiB buffer. The buffer is flushed
// when the writer is destroyed, on flush(), and from write() when the frame's
// timestamp is at least one second past the last flush, so a capture being
// read while slipway runs lags by about a second of traffic at most (an idle
// link leaves the last frames in the buffer until the next frame or the end).
// A write error is logged once and later frames are dropped and counted; the
// data path never stops because the capture disk is full.
//
// PcapPort is a filter: it wraps an inner Port, takes over the inner port's
// sink, records every frame in both directions and passes each one through
// unchanged. Received frames (inner -> sink) and sent frames (send() ->
// inner) are recorded in the order they cross. A writer may be shared by
// several PcapPorts; it is single-threaded like the rest of the data path.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "netstack/link/port.h"

namespace slipway::link {

class PcapWriter {
 public:
  static constexpr uint32_t kMagic = 0xa1b2c3d4;  // microsecond timestamps
  static constexpr uint32_t kSnapLen = 262144;
  static constexpr uint32_t kLinkTypeEthernet = 1;
  static constexpr size_t kGlobalHeaderSize = 24;
  static constexpr size_t kRecordHeaderSize = 16;

  struct Stats {
    uint64_t frames = 0, bytes = 0;  // records written (bytes as captured)
    uint64_t truncated = 0;          // frames cut to the snaplen
    uint64_t failed = 0;             // frames lost to a write error
  };

  // Creates (truncates) the file and writes the global header. Throws
  // std::runtime_error naming the path and the reason.
  static std::unique_ptr<PcapWriter> open(const std::string& path);

  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;
  ~PcapWriter();

  // Appends one frame stamped with `when`.
  void write(Frame frame, std::chrono::system_clock::time_point when);
  // Pushes the buffered records to the file.
  void flush();

  const std::string& path() const { return path_; }
  const Stats& stats() const { return stats_; }

 private:
  PcapWriter(std::string path, std::FILE* file, std::unique_ptr<char[]> buffer);
  bool put(const void* data, size_t size);
  void report_error(const char* what);

  std::string path_;
  std::FILE* file_;
  std::unique_ptr<char[]> buffer_;  // setvbuf buffer; lives as long as file_
  std::chrono::system_clock::time_point last_flush_{};
  bool failed_ = false;  // an error was logged; later frames are dropped
  Stats stats_;
};

class PcapPort : public Port {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  // Takes over inner's sink, capabilities and tx-ready listeners. `clock` stamps the
  // records (wall time by default; tests pass a fixed clock). inner must
  // outlive this port; the destructor detaches from it. Frames are recorded
  // as they cross, offloaded ones included (a partial checksum, a GSO
  // segment longer than the MTU), as tcpdump shows them on an offloading
  // NIC; the port carries what inner carries.
  PcapPort(Port& inner, std::shared_ptr<PcapWriter> writer, Clock clock = {});
  ~PcapPort() override;

  Capabilities capabilities() const override { return inner_.capabilities(); }
  bool transmit(Frame frame, const Offload& offload) override;

 private:
  std::chrono::system_clock::time_point now() const;

  Port& inner_;
  std::shared_ptr<PcapWriter> writer_;
  Clock clock_;
};

}  // namespace slipway::link
