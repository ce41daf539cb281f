// The slipway configuration file: one TOML file for everything a command-line
// flag can set.
//
// Theory of operation
// - Settings is every setting with its default, in the form the command line
//   holds it (strings as given, checked later by cli::NetworkOptions when the
//   gateway is built). The file schema (examples/nat.toml and
//   examples/mirrored.toml document every key):
//     mode                                               nat | mirrored
//     engine                                             lwip | slirp
//     [network]    address gateway dns mac mtu interface host_loopback
//                  restrict configure search
//     [ipv6]       enabled prefix gateway dns
//     [dns]        upstreams routes hosts_file cache, and [dns.names]
//                  (NAME = "ADDR" or ["ADDR", ...])
//     [forwarding] forwards (rule strings or {host_addr, host_port,
//                  guest_port, protocol} tables) guest_forwards auto
//                  exclude agent_port source
//     [tftp]       directory boot_file
//     [limits]     max_tcp_flows max_udp_flows max_icmp_flows
//                  max_new_flows_per_second max_buffered_mib
//     [egress]     allow deny  (CIDR[:PORTS] strings; engine/egress_policy.h)
//     [sandbox]    enabled
//     [faults]     link        (link/fault_port.h)
//     [log]        level pcap
//     [control]    socket
//     [dhcp]       and [[dhcp.static]] tables {mac, address, name}
//     [serve]      vhost_user stream dgram netns vxlan  (each a string or an array
//                  of them: the guests) isolate
//     [mirrored]   addresses                      loopback | all
// - parse()/load_file() read a file over a base Settings (the defaults) and
//   check every key as it is read: unknown keys, wrong types and bad values
//   throw ConfigError "FILE:LINE:COLUMN: KEY: what is wrong[; allowed: ...]",
//   the position being that of the value (or of the key, for unknown keys),
//   so a user can jump to it. Checks that involve two keys (the gateway in the
//   guest subnet, one serve transport) run after every key was read and point
//   at the later key.
// - Every key has the command-line flag that sets the same thing (Key::flag).
//   merge() copies the keys a file sets into a Settings except those whose
//   flag was given: flags override the file. Reloading (SIGHUP) repeats the
//   merge over the command line's values with the re-read file.
// - to_toml() prints a Settings as a complete file in schema order (every
//   key, defaults included), which parse() reads back to the same Settings.
//
// Limits: the file is read whole (toml++) if it is a regular file of at most
// kMaxFileBytes (1 MiB): a directory, a FIFO or a device is an error, never
// read. No includes, no environment expansion. The one key that names a
// file to read, dns.hosts_file, is checked the same way (a readable regular
// file within the DNS proxy's bound). Nothing here touches the network; the
// caller applies settings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace slipway::config {

struct Settings {
  std::string mode = "nat";  // nat | mirrored
  std::string engine = "lwip";  // lwip | slirp: what terminates the guest's TCP and UDP
  // [network]
  std::string address = "10.0.2.15/24";
  std::string gateway = "10.0.2.2";
  std::string dns = "10.0.2.3";
  std::string mac = "52:54:00:12:34:56";
  uint32_t mtu = 65520;
  std::string interface = "eth0";
  bool no_host_loopback = false;
  bool restrict_guest = false;  // --restrict: gateway services and published ports only
  bool no_configure = false;
  bool no_offload = false;
  std::vector<std::string> search;
  // [ipv6]
  bool ipv6 = true;
  std::string ipv6_prefix = "fd00::/64";
  std::string ipv6_gateway = "fd00::2";
  std::string ipv6_dns = "fd00::3";
  // [dns]
  std::vector<std::string> dns_upstreams;
  std::vector<std::string> dns_routes;
  std::string dns_hosts;
  std::map<std::string, std::vector<std::string>> dns_names;  // static names: name -> addresses
  bool no_dns_cache = false;
  // [forwarding]
  std::vector<std::string> publish;  // rules, -p syntax
  std::vector<std::string> guest_forwards;  // ADDR:PORT=TARGET (engine/guest_forward.h)
  std::string publish_source = "client";
  bool forward_auto = false;  // `run` and `serve` turn it on by default
  std::vector<uint16_t> forward_exclude;
  uint16_t agent_port = 7777;
  // [tftp]
  std::string tftp_dir;   // --tftp: the TFTP server's directory ("": no server)
  std::string boot_file;  // --boot-file: DHCP's boot file ("": none)
  // [limits]
  size_t max_tcp_flows = 16384;
  size_t max_udp_flows = 4096;
  size_t max_icmp_flows = 1024;
  uint32_t max_new_flows_per_second = 50'000;  // 0: no limit
  uint32_t max_buffered_mib = 256;             // 0: no limit
  // [egress]: CIDR[:PORTS] rules; an allow rule wins over a deny rule
  std::vector<std::string> egress_allow;
  std::vector<std::string> egress_deny;
  // [sandbox]
  bool no_sandbox = false;
  // [faults]: "loss=1%,reorder=1%,..." ("" for a reliable link)
  std::string link_faults;
  // [log]
  std::string log_level = "warn";
  std::string pcap;
  // [control]
  std::string control;
  // [dhcp]: static leases
  struct DhcpStatic {
    std::string mac;      // "52:54:00:00:00:10"
    std::string address;  // in network.address's subnet
    std::string name;     // "" for none; else answered as NAME.internal
    friend bool operator==(const DhcpStatic&, const DhcpStatic&) = default;
  };
  std::vector<DhcpStatic> dhcp_static;
  // [serve]: the guests, each a port spec's value (cli/port_spec.h); one in
  // all is served directly, several on an internal switch.
  std::vector<std::string> vhost_user;
  std::vector<std::string> stream;
  std::vector<std::string> dgram;
  std::vector<std::string> netns;
  std::vector<std::string> vxlan;  // REMOTE[:PORT],vni=N[,...]: another host's segment
  bool isolate = false;  // several guests: each reaches the gateway only
  // [mirrored]
  std::string mirrored_addresses = "loopback";  // loopback | all
};

// A problem in a configuration file, with where it is. what() is
// "FILE:LINE:COLUMN: KEY: MESSAGE" ("FILE: MESSAGE" when there is no position).
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string file, uint32_t line, uint32_t column, std::string key, std::string message);
  const std::string& file() const { return file_; }
  uint32_t line() const { return line_; }
  uint32_t column() const { return column_; }
  const std::string& key() const { return key_; }
  const std::string& message() const { return message_; }

 private:
  std::string file_;
  uint32_t line_, column_;
  std::string key_, message_;
};

// The largest configuration file read.
constexpr size_t kMaxFileBytes = 1 << 20;

// A file read over a base.
struct Loaded {
  Settings settings;           // the base with the file's keys applied
  std::set<std::string> keys;  // the keys the file sets ("network.mtu")
};

// One key of the schema.
struct Key {
  std::string name;       // "network.mtu"
  std::string_view flag;  // the flag that sets the same thing: "--mtu"; "" for file-only keys
};
const std::vector<Key>& keys();

// Throws ConfigError. `path` names the file in messages.
Loaded parse(std::string_view text, const std::string& path, const Settings& base = {});
// Reads and parses a file; an unreadable file is a ConfigError too.
Loaded load_file(const std::string& path, const Settings& base = {});

// Copies into `into` every key `file` sets whose key is not in `given` (the
// keys whose flags were on the command line).
void merge(Settings& into, const Loaded& file, const std::set<std::string>& given);
// True when the two differ in key `name` (one of keys()).
bool differs(const Settings& a, const Settings& b, std::string_view name);

// Checks a Settings that did not come from a file (the command line): the
// values only this module checks (mode, [ipv6], [mirrored]) and the keys
// that go together. Throws ConfigError with no position, `origin` as file.
void check(const Settings& s, const std::string& origin);

// The whole configuration as TOML, every key with its value.
std::string to_toml(const Settings& s);

}  // namespace slipway::config
