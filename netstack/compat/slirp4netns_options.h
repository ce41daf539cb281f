// slirp4netns 1.2's command line, read the way slirp4netns reads it, and
// what it means in slipway's terms.
//
// Theory of operation
//   parse_command_line() reads `[OPTION]... PID|PATH [TAPNAME]` with GNU
//   getopt_long, as slirp4netns does: options and the two positionals may
//   come in any order, long options may be abbreviated while unambiguous,
//   `--mtu=N` and `--mtu N`, `-m N` and `-mN` are one thing, and short
//   options combine (`-c6`). The checks slirp4netns makes while parsing are
//   made here with its words (`MTU must be a positive integer (< 65522)`,
//   `PID must be a positive integer`, `userns path doesn't exist: PATH`,
//   ...); the warnings it prints on stdout (deprecated spellings, too many
//   arguments) are returned for the caller to print.
//
//   settings_of() turns the options into config::Settings, the same settings
//   `slipway attach` runs with: the guest at .100 of --cidr, the gateway at
//   .2 (the host's loopback unless --disable-host-loopback), DNS at .3, the
//   MTU (slirp4netns's default: 1500), the TAP's name, IPv6 (fd00::/64,
//   fd00::2, fd00::3) only with --enable-ipv6, no automatic forwarding.
//   Those are the command line's keys (command_line_keys()): a
//   configuration file named by SLIPWAY_CONFIG (apply_config_file()) sets
//   slipway's other settings (DNS proxy, forwards, pcap, limits, logging,
//   control socket) but not these; a file value that differs from the
//   command line's is reported, never used silently.
//
// Limits (where slipway and slirp4netns 1.2 differ; README "Use with Podman
// / RootlessKit" lists them all):
//   - TAPNAME may be left out (tap0); slirp4netns requires it.
//   - --netns-type takes pid or path only (slirp4netns reads anything but
//     "pid" as path).
//   - MTU 576..65520 (slirp4netns: 1..65521); --cidr prefix 8..25
//     (slirp4netns: 1..25).
//   - --outbound-addr, --outbound-addr6 and --target-type=bess are refused
//     with UnsupportedOption. --enable-sandbox and --enable-seccomp
//     (Podman passes them by default) both select slipway's one sandbox.
#pragma once

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "netstack/config/config_file.h"
#include "netstack/wire/bytes.h"

namespace slipway::compat {

// slirp4netns's defaults and the offsets of its addresses in --cidr.
inline constexpr unsigned kDefaultMtu = 1500;
inline constexpr const char* kDefaultCidr = "10.0.2.0/24";
inline constexpr uint32_t kGatewayOffset = 2;    // 10.0.2.2
inline constexpr uint32_t kDnsOffset = 3;        // 10.0.2.3
inline constexpr uint32_t kDhcpStartOffset = 15;  // 10.0.2.15
inline constexpr uint32_t kGuestOffset = 100;    // 10.0.2.100, "recommended IP"
// The slirp4netns release whose command line and API this follows.
inline constexpr const char* kSlirp4netnsVersion = "1.2.0";

struct Slirp4netnsOptions {
  std::string target;             // PID or PATH (first positional)
  std::string netns_type = "pid";  // --netns-type: pid | path
  std::string tapname = "tap0";    // second positional
  bool configure = false;          // -c, --configure
  int exit_fd = -1;                // -e, --exit-fd
  int ready_fd = -1;               // -r, --ready-fd
  unsigned mtu = kDefaultMtu;      // -m, --mtu
  bool enable_ipv6 = false;        // -6, --enable-ipv6
  std::string api_socket;          // -a, --api-socket
  std::string cidr = kDefaultCidr;  // --cidr
  bool disable_host_loopback = false;
  std::string userns_path;  // --userns-path
  bool enable_sandbox = false;
  bool enable_seccomp = false;
  std::string outbound_addr;   // --outbound-addr
  std::string outbound_addr6;  // --outbound-addr6
  bool disable_dns = false;
  std::string macaddress;  // --macaddress (only with -c)
  std::string target_type = "netns";  // --target-type: netns (bess is refused)
};

struct ParsedCommandLine {
  enum class Action { kRun, kHelp, kVersion, kError };
  Action action = Action::kRun;
  Slirp4netnsOptions options;
  std::string error;                  // kError: what is wrong, one line
  std::vector<std::string> warnings;  // "WARNING: ..." lines for stdout
};

// argv[0] is the program name; nothing is printed.
ParsedCommandLine parse_command_line(int argc, char* const argv[]);

// The --help text (slirp4netns's options, each with what slipway does) and
// the --version text ("slirp4netns version 1.2.0+slipway.X" first, so that
// tools reading slirp4netns's version go on working).
std::string usage(const std::string& program);
std::string version_text();

// An option slipway does not implement (the message says which and why).
class UnsupportedOption : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// A value slirp4netns would accept but slipway cannot, or one neither
// accepts (the message uses slirp4netns's words where it has them).
class InvalidOption : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The addresses derived from --cidr, as slirp4netns derives them.
struct CidrAddresses {
  wire::Ipv4Addr network, netmask, gateway, dns, dhcp_start, guest;
  unsigned prefix = 24;
};
// Throws InvalidOption ("invalid CIDR: X", "prefix length needs to be 1-25",
// "CIDR needs to be a network address like 10.0.2.0/24, not like
// 10.0.2.100/24", or slipway's narrower prefix range).
CidrAddresses cidr_addresses(const std::string& cidr);

// The options as slipway settings (see the top of this file). Throws
// UnsupportedOption or InvalidOption.
config::Settings settings_of(const Slirp4netnsOptions& options);

// The configuration keys the slirp4netns command line decides.
const std::set<std::string>& command_line_keys();

// Reads a configuration file (SLIPWAY_CONFIG) over `settings` and applies
// every key it sets except the command line's; returns one message per
// command-line key the file sets to another value (not applied). Throws
// config::ConfigError for a bad file, and InvalidOption for what slirp4netns
// compatibility cannot take (mode = "mirrored", a [serve] transport).
std::vector<std::string> apply_config_file(config::Settings& settings, const std::string& path);

}  // namespace slipway::compat
