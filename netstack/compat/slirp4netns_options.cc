// See slirp4netns_options.h.
#include "netstack/compat/slirp4netns_options.h"

#include <getopt.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>

namespace slipway::compat {
namespace {

// Long options without a short form (getopt_long's return values).
enum LongOption : int {
  kCidr = 1000,
  kDisableHostLoopback,
  kNoHostLoopback,  // deprecated spelling
  kNetnsType,
  kUsernsPath,
  kEnableSandbox,
  kCreateSandbox,  // deprecated spelling
  kEnableSeccomp,
  kOutboundAddr,
  kOutboundAddr6,
  kDisableDns,
  kMacaddress,
  kTargetType,
};

const option kLongOptions[] = {
    {"configure", no_argument, nullptr, 'c'},
    {"exit-fd", required_argument, nullptr, 'e'},
    {"ready-fd", required_argument, nullptr, 'r'},
    {"mtu", required_argument, nullptr, 'm'},
    {"cidr", required_argument, nullptr, kCidr},
    {"disable-host-loopback", no_argument, nullptr, kDisableHostLoopback},
    {"no-host-loopback", no_argument, nullptr, kNoHostLoopback},
    {"netns-type", required_argument, nullptr, kNetnsType},
    {"userns-path", required_argument, nullptr, kUsernsPath},
    {"api-socket", required_argument, nullptr, 'a'},
    {"enable-ipv6", no_argument, nullptr, '6'},
    {"enable-sandbox", no_argument, nullptr, kEnableSandbox},
    {"create-sandbox", no_argument, nullptr, kCreateSandbox},
    {"enable-seccomp", no_argument, nullptr, kEnableSeccomp},
    {"help", no_argument, nullptr, 'h'},
    {"version", no_argument, nullptr, 'v'},
    {"outbound-addr", required_argument, nullptr, kOutboundAddr},
    {"outbound-addr6", required_argument, nullptr, kOutboundAddr6},
    {"disable-dns", no_argument, nullptr, kDisableDns},
    {"macaddress", required_argument, nullptr, kMacaddress},
    {"target-type", required_argument, nullptr, kTargetType},
    {nullptr, 0, nullptr, 0},
};

// A whole decimal number (strtol's rules, no trailing text); false otherwise.
bool parse_long(const char* text, long& out) {
  if (text == nullptr || *text == '\0') return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtol(text, &end, 10);
  return errno == 0 && *end == '\0';
}

// The name of the option getopt_long just refused, for the message.
std::string refused_option(int argc, char* const argv[], int index_after) {
  std::string text = index_after > 0 && index_after <= argc ? argv[index_after - 1] : "";
  if (text.rfind("--", 0) == 0) return text.substr(0, text.find('='));  // a long option, without its value
  if (optopt > 0 && optopt < 256) return std::string("-") + static_cast<char>(optopt);
  return text.empty() ? "?" : text;
}

// "52:54:00:12:34:56" from slirp4netns's MAC syntax: six hex bytes (one or
// two digits each) separated by ':'.
std::optional<std::string> canonical_mac(std::string_view text) {
  std::string out;
  size_t bytes = 0;
  while (true) {
    auto colon = text.find(':');
    auto part = text.substr(0, colon);
    unsigned value = 0;
    auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), value, 16);
    if (part.empty() || part.size() > 2 || ec != std::errc() || p != part.data() + part.size()) return std::nullopt;
    char buf[4];
    std::snprintf(buf, sizeof buf, "%02x", value);
    if (!out.empty()) out += ':';
    out += buf;
    if (++bytes > 6) return std::nullopt;
    if (colon == std::string_view::npos) break;
    text.remove_prefix(colon + 1);
  }
  if (bytes != 6) return std::nullopt;
  return out;
}

}  // namespace

ParsedCommandLine parse_command_line(int argc, char* const argv[]) {
  ParsedCommandLine out;
  Slirp4netnsOptions& o = out.options;
  auto error = [&out](std::string message) {
    out.action = ParsedCommandLine::Action::kError;
    out.error = std::move(message);
    return out;
  };
  // GNU getopt keeps its state in globals: optind = 0 starts a fresh scan
  // (and re-reads the optstring's leading characters). ':' first: a missing
  // argument is reported as ':' and nothing is printed (opterr = 0).
  optind = 0;
  opterr = 0;
  bool macaddress_given = false;
  int opt;
  while ((opt = getopt_long(argc, argv, ":ce:r:m:a:6hv", kLongOptions, nullptr)) != -1) {
    long n = 0;
    switch (opt) {
      case 'c':
        o.configure = true;
        break;
      case 'e':
        if (!parse_long(optarg, n) || n < 0 || n > 1'000'000) return error("exit-fd must be a non-negative integer");
        o.exit_fd = static_cast<int>(n);
        break;
      case 'r':
        if (!parse_long(optarg, n) || n < 0 || n > 1'000'000) return error("ready-fd must be a non-negative integer");
        o.ready_fd = static_cast<int>(n);
        break;
      case 'm':
        if (!parse_long(optarg, n) || n <= 0 || n > 65521) return error("MTU must be a positive integer (< 65522)");
        o.mtu = static_cast<unsigned>(n);
        break;
      case kCidr:
        o.cidr = optarg;
        break;
      case kNoHostLoopback:
        out.warnings.push_back(
            "WARNING: --no-host-loopback is deprecated and will be removed in future releases, please use "
            "--disable-host-loopback instead.");
        [[fallthrough]];
      case kDisableHostLoopback:
        o.disable_host_loopback = true;
        break;
      case kCreateSandbox:
        out.warnings.push_back(
            "WARNING: --create-sandbox is deprecated and will be removed in future releases, please use "
            "--enable-sandbox instead.");
        [[fallthrough]];
      case kEnableSandbox:
        o.enable_sandbox = true;
        break;
      case kEnableSeccomp:
        o.enable_seccomp = true;
        break;
      case kNetnsType:
        o.netns_type = optarg;
        if (o.netns_type != "pid" && o.netns_type != "path") return error("--netns-type must be pid or path");
        break;
      case kUsernsPath:
        o.userns_path = optarg;
        if (access(optarg, F_OK) == -1) return error(std::string("userns path doesn't exist: ") + optarg);
        break;
      case 'a':
        o.api_socket = optarg;
        break;
      case '6':
        o.enable_ipv6 = true;
        break;
      case 'h':
        out.action = ParsedCommandLine::Action::kHelp;
        return out;
      case 'v':
        out.action = ParsedCommandLine::Action::kVersion;
        return out;
      case kOutboundAddr:
        o.outbound_addr = optarg;
        break;
      case kOutboundAddr6:
        o.outbound_addr6 = optarg;
        break;
      case kDisableDns:
        o.disable_dns = true;
        break;
      case kMacaddress:
        o.macaddress = optarg;
        macaddress_given = true;
        break;
      case kTargetType:
        o.target_type = optarg;
        break;
      case ':':
        return error("option '" + refused_option(argc, argv, optind) + "' requires an argument");
      default:
        return error("unrecognized option '" + refused_option(argc, argv, optind) + "'");
    }
  }
  if (macaddress_given && !o.configure)
    return error("--macaddr cannot be specified when --configure or -c is not specified");
  if (o.target_type == "bess") {
    // Accepted by the parser so that the refusal names the option.
  } else if (o.target_type != "netns") {
    return error("--target-type must be either \"netns\" or \"bess\"");
  }
  const int positionals = argc - optind;
  if (positionals < 1) return error("PID|PATH is required");
  if (positionals > 2) out.warnings.push_back("WARNING: too many arguments");
  o.target = argv[optind];
  if (positionals >= 2) o.tapname = argv[optind + 1];
  if (o.target_type == "bess") return out;  // settings_of() refuses it
  if (o.netns_type == "pid") {
    long pid = 0;
    if (!parse_long(o.target.c_str(), pid) || pid <= 0 || pid > 0x3fffffff) return error("PID must be a positive integer");
  } else if (access(o.target.c_str(), F_OK) == -1) {
    return error("existing path expected when --netns-type=path: " + o.target);
  }
  return out;
}

std::string usage(const std::string& program) {
  std::string u;
  u += "Usage: " + program + " [OPTION]... PID|PATH [TAPNAME]\n";
  u += "User-mode networking for unprivileged network namespaces: slipway behind slirp4netns " +
       std::string(kSlirp4netnsVersion) + "'s command line and API.\n\n";
  u += "-c, --configure          bring up the interface (address .100 of the CIDR, default route via .2)\n";
  u += "-e, --exit-fd=FD         specify the FD for terminating slirp4netns (exit when it closes)\n";
  u += "-r, --ready-fd=FD        specify the FD to write to when the network is configured (\"1\")\n";
  u += "-m, --mtu=MTU            specify MTU (default=1500, slipway: 576 to 65520)\n";
  u += "-6, --enable-ipv6        enable IPv6 (fd00::/64, gateway fd00::2, DNS fd00::3)\n";
  u += "-a, --api-socket=PATH    specify API socket path (add_hostfwd, list_hostfwd, remove_hostfwd)\n";
  u += "--cidr=CIDR              specify network address CIDR (default=10.0.2.0/24, prefix 8 to 25)\n";
  u += "--disable-host-loopback  prohibit connecting to 127.0.0.1:* on the host namespace\n";
  u += "--netns-type=TYPE        specify network namespace type ([path|pid], default=pid)\n";
  u += "--userns-path=PATH       specify user namespace path\n";
  u += "--enable-sandbox         enter slipway's sandbox once set up (capabilities, no new privileges, seccomp)\n";
  u += "--enable-seccomp         the same sandbox (slipway has one: both options select it)\n";
  u += "--outbound-addr=IPv4     refused: slipway cannot bind outbound sockets to an address yet\n";
  u += "--outbound-addr6=IPv6    refused: slipway cannot bind outbound sockets to an address yet\n";
  u += "--disable-dns            disables 10.0.2.3 (or configured internal ip) to host dns redirect\n";
  u += "--macaddress=MAC         specify the MAC address of the TAP (only valid with -c)\n";
  u += "--target-type=TYPE       specify the target type ([netns|bess], default=netns; bess is refused)\n";
  u += "-h, --help               show this help and exit\n";
  u += "-v, --version            show version and exit\n";
  u += "\n";
  u += "slipway's own settings: SLIPWAY_CONFIG=FILE names a slipway configuration file (TOML, as\n";
  u += "`slipway run --config`): its [dns], [forwarding], [limits], [log] and [control] tables and\n";
  u += "network.search and network.offload apply; the settings the command line above decides\n";
  u += "(addresses, MTU, interface, host loopback, IPv6) are taken from the command line.\n";
  return u;
}

std::string version_text() {
  std::string v;
  v += "slirp4netns version " + std::string(kSlirp4netnsVersion) + "+slipway.0.1.0\n";
  v += "slipway: 0.1.0 (the command line and API of slirp4netns " + std::string(kSlirp4netnsVersion) + ")\n";
  v += "libslirp: none (slipway's own stack, lwIP 2.1.3)\n";
  return v;
}

CidrAddresses cidr_addresses(const std::string& cidr) {
  auto slash = cidr.find('/');
  auto invalid = [&cidr] { return InvalidOption("invalid CIDR: " + cidr); };
  if (slash == std::string::npos || slash + 1 == cidr.size() || cidr.size() - slash - 1 > 2) throw invalid();
  auto network = wire::Ipv4Addr::parse(std::string_view(cidr).substr(0, slash));
  if (!network) throw invalid();
  unsigned prefix = 0;
  auto tail = std::string_view(cidr).substr(slash + 1);
  auto [p, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), prefix);
  if (ec != std::errc() || p != tail.data() + tail.size()) throw invalid();
  // slirp4netns: 1..25 (the guest is network + 100).
  if (prefix < 1 || prefix > 25) throw InvalidOption("prefix length needs to be 1-25");
  CidrAddresses a;
  a.prefix = prefix;
  a.netmask = wire::Ipv4Addr{wire::prefix_to_mask(prefix)};
  if ((network->value & a.netmask.value) != network->value)
    throw InvalidOption("CIDR needs to be a network address like 10.0.2.0/24, not like 10.0.2.100/24");
  if (prefix < 8) throw InvalidOption("--cidr " + cidr + ": slipway needs a prefix length of 8 to 25");
  a.network = *network;
  a.gateway = wire::Ipv4Addr{network->value + kGatewayOffset};
  a.dns = wire::Ipv4Addr{network->value + kDnsOffset};
  a.dhcp_start = wire::Ipv4Addr{network->value + kDhcpStartOffset};
  a.guest = wire::Ipv4Addr{network->value + kGuestOffset};
  return a;
}

config::Settings settings_of(const Slirp4netnsOptions& o) {
  if (o.target_type == "bess")
    throw UnsupportedOption("--target-type=bess is not supported by slipway (it serves network namespaces only)");
  if (!o.outbound_addr.empty())
    throw UnsupportedOption("--outbound-addr is not supported by slipway yet (it cannot bind its outbound sockets "
                            "to an address or interface); leave it out, or use slirp4netns");
  if (!o.outbound_addr6.empty())
    throw UnsupportedOption("--outbound-addr6 is not supported by slipway yet (it cannot bind its outbound sockets "
                            "to an address or interface); leave it out, or use slirp4netns");
  if (o.mtu < 576 || o.mtu > 65520)
    throw InvalidOption("--mtu " + std::to_string(o.mtu) + ": slipway supports an MTU of 576 to 65520");
  if (o.enable_ipv6 && o.mtu < 1280)
    throw InvalidOption("--mtu " + std::to_string(o.mtu) + ": IPv6 (--enable-ipv6) needs an MTU of at least 1280");
  if (o.tapname.empty() || o.tapname.size() > 15 || o.tapname.find_first_of("/ \t\n:") != std::string::npos)
    throw InvalidOption("invalid TAPNAME '" + o.tapname + "' (1 to 15 characters, no '/', ':' or blanks)");
  const CidrAddresses a = cidr_addresses(o.cidr);
  config::Settings s;
  s.mode = "nat";
  s.address = a.guest.to_string() + "/" + std::to_string(a.prefix);
  s.gateway = a.gateway.to_string();
  s.dns = a.dns.to_string();
  s.mtu = o.mtu;
  s.interface = o.tapname;
  s.no_host_loopback = o.disable_host_loopback;
  s.no_configure = !o.configure;
  s.ipv6 = o.enable_ipv6;
  s.ipv6_prefix = "fd00::/64";
  s.ipv6_gateway = "fd00::2";
  s.ipv6_dns = "fd00::3";
  s.forward_auto = false;  // slirp4netns publishes only what its API is asked to
  if (!o.macaddress.empty()) {
    auto mac = canonical_mac(o.macaddress);
    if (!mac)
      throw InvalidOption("\"" + o.macaddress +
                          "\" is an invalid MAC address (hex string, 6 bytes, each byte separated by a ':')");
    s.mac = *mac;
  }
  return s;
}

const std::set<std::string>& command_line_keys() {
  static const std::set<std::string> kKeys = {
      "mode",         "network.address", "network.gateway", "network.dns",  "network.mtu",
      "network.interface", "network.host_loopback", "network.configure", "ipv6.enabled", "ipv6.prefix",
      "ipv6.gateway", "ipv6.dns",        "network.mac"};
  return kKeys;
}

std::vector<std::string> apply_config_file(config::Settings& settings, const std::string& path) {
  auto loaded = config::load_file(path, settings);
  if (loaded.settings.mode != "nat")
    throw InvalidOption(path + ": mode = \"" + loaded.settings.mode +
                        "\" is not possible behind slirp4netns's command line (it decides the addresses)");
  if (!loaded.settings.vhost_user.empty() || !loaded.settings.stream.empty() || !loaded.settings.dgram.empty())
    throw InvalidOption(path + ": [serve] is not used behind slirp4netns's command line (the guest is a TAP)");
  std::vector<std::string> ignored;
  std::set<std::string> keep;
  for (const auto& k : command_line_keys()) {
    keep.insert(k);
    if (loaded.keys.count(k) != 0 && config::differs(settings, loaded.settings, k))
      ignored.push_back(path + ": " + k + " is decided by the slirp4netns command line; the file's value is not used");
  }
  config::merge(settings, loaded, keep);
  return ignored;
}

}  // namespace slipway::compat
