// The standalone `dns-proxy` program: a DNS forwarder on ADDR:PORT (UDP and
// TCP) in front of the host's resolvers (resolv.conf, re-read when it
// changes) or explicit upstreams, with split-DNS routes, static names, a
// hosts file and a cache. It relays answers in wire format, exactly.
//
// Signals: SIGINT/SIGTERM stop it (statistics are logged on the way out),
// SIGHUP re-reads resolv.conf and the hosts file, SIGUSR1 logs statistics.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "dns-proxy/proxy.h"
#include "dns-proxy/server.h"

namespace {

using slipway::dns::Proxy;
using slipway::dns::Server;

struct App {
  uv_loop_t* loop = nullptr;
  Proxy* proxy = nullptr;
  Server* server = nullptr;
};

void log_stats(const App& app) {
  const auto& p = app.proxy->stats();
  const auto& s = app.server->stats();
  spdlog::info(
      "stats: queries {} cache_hits {} static {} upstream_queries {} upstream_timeouts {} tcp_fallbacks {} "
      "servfail {} formerr {} dropped {} truncated {}; udp {} tcp_connections {} tcp_queries {}",
      p.queries, p.cache_hits, p.static_answers, p.upstream_queries, p.upstream_timeouts, p.tcp_fallbacks,
      p.servfail, p.formerr, p.dropped, p.truncated, s.udp_queries, s.tcp_connections, s.tcp_queries);
}

void on_signal(uv_signal_t* h, int signum) {
  auto* app = static_cast<App*>(h->data);
  switch (signum) {
    case SIGHUP:
      spdlog::info("SIGHUP: re-reading configuration files");
      app->proxy->reload();
      break;
    case SIGUSR1: log_stats(*app); break;
    default: uv_stop(app->loop); break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"dns-proxy: a DNS forwarder that relays answers exactly (UDP and TCP), with cache, split-DNS "
               "routes and static names"};
  std::string listen;
  std::vector<std::string> upstreams, routes, statics;
  slipway::dns::ProxyConfig config;
  size_t cache_size = config.cache_entries;
  bool no_cache = false;
  std::string log_level = "info";
  cli.add_option("--listen", listen, "ADDR:PORT to serve on (UDP and TCP); [V6]:PORT for IPv6")->required();
  cli.add_option("--upstream", upstreams,
                 "upstream server ADDR[:PORT] (repeatable, tried in order); default: the nameservers of "
                 "--resolv-conf");
  cli.add_option("--resolv-conf", config.resolv_conf_path,
                 "resolv.conf to take upstreams from when no --upstream is given (re-read when it changes)")
      ->capture_default_str();
  cli.add_option("--route", routes,
                 "SUFFIX=ADDR[:PORT]: names at or below SUFFIX go to this server (repeatable; longest suffix "
                 "wins); default: none");
  cli.add_option("--hosts", config.hosts_file, "hosts-style file of static names (re-read when it changes); "
                                               "default: none");
  cli.add_option("--static", statics,
                 "NAME=ADDR: answer NAME with ADDR (A or AAAA by the literal; repeatable); default: none");
  cli.add_flag("--no-cache", no_cache, "do not cache answers (default: cache on)");
  cli.add_option("--cache-size", cache_size, "cache entries (least recently used go first)")
      ->capture_default_str();
  cli.add_option("--timeout", config.upstream_timeout_ms,
                 "milliseconds to wait for one upstream before trying the next")
      ->capture_default_str();
  cli.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  CLI11_PARSE(cli, argc, argv);

  spdlog::set_default_logger(spdlog::stderr_color_mt("dns-proxy"));
  spdlog::set_level(spdlog::level::from_str(log_level));

  auto listen_ep = slipway::dns::parse_upstream(listen);
  if (!listen_ep) {
    spdlog::critical("--listen: '{}' is not ADDR:PORT", listen);
    return 2;
  }
  for (const auto& u : upstreams) {
    auto up = slipway::dns::parse_upstream(u);
    if (!up) {
      spdlog::critical("--upstream: '{}' is not ADDR[:PORT]", u);
      return 2;
    }
    config.upstreams.push_back(*up);
  }
  for (const auto& r : routes) {
    auto route = slipway::dns::parse_route(r);
    if (!route) {
      spdlog::critical("--route: '{}' is not SUFFIX=ADDR[:PORT]", r);
      return 2;
    }
    config.routes.push_back(*route);
  }
  for (const auto& s : statics) {
    size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      spdlog::critical("--static: '{}' is not NAME=ADDR", s);
      return 2;
    }
    config.static_names[s.substr(0, eq)].push_back(s.substr(eq + 1));
  }
  config.cache = !no_cache;
  config.cache_entries = cache_size;

  uv_loop_t* loop = uv_default_loop();
  App app;
  app.loop = loop;
  std::vector<uv_signal_t> signals(4);
  {
    std::unique_ptr<Proxy> proxy;
    std::unique_ptr<Server> server;
    try {
      proxy = std::make_unique<Proxy>(loop, config);
      server = std::make_unique<Server>(loop, *proxy, listen_ep->address, listen_ep->port);
    } catch (const std::exception& e) {
      spdlog::critical("{}", e.what());
      return 2;
    }
    app.proxy = proxy.get();
    app.server = server.get();
    const int signums[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
    for (size_t i = 0; i < signals.size(); ++i) {
      uv_signal_init(loop, &signals[i]);
      signals[i].data = &app;
      uv_signal_start(&signals[i], on_signal, signums[i]);
    }
    spdlog::info("listening on {} (udp port {}, tcp port {}); {} default upstream(s), {} route(s), cache {}",
                 listen, server->udp_port(), server->tcp_port(), proxy->default_upstreams().size(),
                 config.routes.size(), config.cache ? std::to_string(config.cache_entries) + " entries" : "off");
    uv_run(loop, UV_RUN_DEFAULT);
    log_stats(app);
    server.reset();
    proxy.reset();
  }
  for (auto& s : signals) uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
  uv_run(loop, UV_RUN_DEFAULT);  // close callbacks free the handles
  uv_loop_close(loop);
  return 0;
}
