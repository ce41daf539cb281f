# shellcheck shell=bash
# Shared helpers for the end-to-end tests (tests/e2e/test_*.sh) and the
# benchmarks (bench/*.sh).
#
# Usage, at the top of a test:
#   . "$(dirname "$0")/lib.sh"
#   e2e_init "$@"
#
# e2e_init re-executes the calling script inside a fresh, private network
# namespace (`unshare --net` as root, or `unshare --user --map-root-user --net`
# otherwise). That namespace is the "test host": only `lo` exists there, so
# every byte the test sends stays on loopback or in namespaces the test itself
# creates. Nothing is ever sent to an address outside.
#
# Environment:
#   SLIPWAY             slipway binary (default: $SLIPWAY_SOURCE_DIR/build/netstack/slipway)
#   SLIPWAY_SOURCE_DIR  source tree (default: two levels above this file)
#   E2E_TIMEOUT         hard limit for the whole script in seconds (default 300)
#   E2E_KEEP_TMP=1      keep the temporary directory for post-mortem
#   ENGINE              lwip (default) or slirp: the engine every slipway of
#                       the test runs (tests/CMakeLists.txt registers the
#                       scenarios that run on both as NAME and NAME_slirp)
#
# Exit codes: 0 pass, 1 fail, 77 skip.

set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_TOOLS=$E2E_DIR/tools
: "${SLIPWAY_SOURCE_DIR:=$(cd "$E2E_DIR/../.." && pwd)}"
: "${SLIPWAY:=$SLIPWAY_SOURCE_DIR/build/netstack/slipway}"
: "${E2E_TIMEOUT:=300}"
: "${ENGINE:=lwip}"
export SLIPWAY SLIPWAY_SOURCE_DIR ENGINE

E2E_NAME=$(basename "${0%.sh}")
E2E_PGIDS=()
E2E_TMP=

# Guest addressing, as configured by `slipway run` (slirp4netns-compatible).
# shellcheck disable=SC2034
GUEST_IP=10.0.2.15
GATEWAY_IP=10.0.2.2
DNS_IP=10.0.2.3
DEFAULT_MTU=65520

# ---------------------------------------------------------------- reporting
log()  { printf '[%s] %s\n' "$E2E_NAME" "$*"; }
fail() { printf '[%s] FAIL: %s\n' "$E2E_NAME" "$*" >&2; exit 1; }
skip() { printf '[%s] SKIP: %s\n' "$E2E_NAME" "$*" >&2; exit 77; }
pass() { printf '[%s] PASS%s\n' "$E2E_NAME" "${1:+: $1}"; exit 0; }
ok()   { printf '[%s]   ok: %s\n' "$E2E_NAME" "$*"; }

# Print the last lines of a log file (for failure messages).
show_log() {
  local f=$1 n=${2:-30}
  if [ -s "$f" ]; then
    printf '[%s] --- last %s lines of %s ---\n' "$E2E_NAME" "$n" "$(basename "$f")" >&2
    tail -n "$n" "$f" >&2
    printf '[%s] ---\n' "$E2E_NAME" >&2
  fi
}

need_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 ||
      fail "required command '$c' not found (install it: scripts/setup.sh)"
  done
}

# --------------------------------------------------------------- isolation
# Re-exec the calling script in a private network namespace (see top).
e2e_init() {
  if [ "${E2E_INNER:-}" != 1 ]; then
    need_cmd unshare timeout ip python3
    local self
    self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
    export E2E_INNER=1
    E2E_OUTER_NETNS=$(readlink /proc/self/ns/net)
    export E2E_OUTER_NETNS
    local -a ns
    if [ "$(id -u)" = 0 ]; then
      ns=(unshare --net --mount)
    elif ! [ -r /dev/net/tun ] || ! [ -w /dev/net/tun ]; then
      skip "not root and /dev/net/tun is not accessible: no TAP device can be created"
    elif unshare --user --map-root-user --net true 2>/dev/null; then
      ns=(unshare --user --map-root-user --net --mount)
    else
      skip "needs root or unprivileged user namespaces to create a private network namespace"
    fi
    # timeout runs the test in its own process group and kills the group
    # (and so every process the test left) when time runs out.
    exec timeout -k 10 "$E2E_TIMEOUT" "${ns[@]}" bash "$self" "$@"
  fi
  # Now inside the private test-host namespace.
  [ "$(readlink /proc/self/ns/net)" != "${E2E_OUTER_NETNS:-}" ] ||
    fail "refusing to run: not inside a private network namespace"
  ip link set lo up
  if [ "$(ip -o link show | grep -vc ': lo:')" != 0 ]; then
    fail "private test-host namespace has unexpected interfaces: $(ip -o link show | cut -d: -f2 | tr '\n' ' ')"
  fi
  E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/slipway-e2e.XXXXXX")
  chmod 755 "$E2E_TMP"
  trap e2e_cleanup EXIT
  trap 'log "interrupted"; exit 1' INT TERM HUP
}

e2e_cleanup() {
  local rc=$? g
  trap - EXIT INT TERM HUP
  for g in "${E2E_PGIDS[@]}"; do
    kill -TERM -- "-$g" 2>/dev/null || true
  done
  if [ "${#E2E_PGIDS[@]}" -gt 0 ]; then
    local i
    for i in $(seq 20); do
      local alive=0
      for g in "${E2E_PGIDS[@]}"; do kill -0 -- "-$g" 2>/dev/null && alive=1; done
      [ $alive = 0 ] && break
      sleep 0.05
    done
    for g in "${E2E_PGIDS[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  fi
  if [ -n "$E2E_TMP" ] && [ "${E2E_KEEP_TMP:-}" != 1 ]; then rm -rf "$E2E_TMP"; fi
  exit $rc
}

# bg NAME CMD...: run CMD in the background in its own process group, output
# to $E2E_TMP/NAME.log; sets BG_PID. Killed (whole group) at exit.
bg() {
  local name=$1; shift
  setsid "$@" >"$E2E_TMP/$name.log" 2>&1 </dev/null &
  BG_PID=$!
  E2E_PGIDS+=("$BG_PID")
}

# stop_bg PID [SIGNAL]: signal a process group started with bg and reap it.
stop_bg() {
  kill "-${2:-TERM}" -- "-$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# wait_file FILE [SECONDS] [PID]: poll until FILE is non-empty; fail early if
# PID (a background process that should produce it) dies.
wait_file() {
  local f=$1 t=${2:-10} pid=${3:-} i
  for ((i = 0; i < t * 50; i++)); do
    [ -s "$f" ] && return 0
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      sleep 0.05; [ -s "$f" ] && return 0
      return 1
    fi
    sleep 0.02
  done
  return 1
}

# wait_listen PORT [tcp|udp] [SECONDS]: poll until something listens on PORT
# in the test-host namespace.
wait_listen() {
  local port=$1 proto=${2:-tcp} t=${3:-10} i flag=-Hltn
  [ "$proto" = udp ] && flag=-Hlun
  for ((i = 0; i < t * 50; i++)); do
    [ -n "$(ss $flag "sport = :$port" 2>/dev/null)" ] && return 0
    sleep 0.02
  done
  return 1
}

# free_port [tcp|udp]: a port nothing listens on in the test-host namespace.
free_port() {
  python3 - "${1:-tcp}" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
EOF
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# ------------------------------------------------------------------ slipway
require_slipway() {
  [ -x "$SLIPWAY" ] || fail "slipway binary not found or not executable: $SLIPWAY (build it, or set SLIPWAY)"
}

# slipway_run ARGS...: `slipway run ARGS...` bounded by
# SW_TIMEOUT (default 60 s).
# SLIPWAY_RUN_ARGS: extra options for every `slipway run` of a test (e.g.
# "--no-offload --mtu 1500"; test_offload_variants.sh runs tests so).
slipway_run() {
  # shellcheck disable=SC2086
  timeout -k 5 "${SW_TIMEOUT:-60}" "$SLIPWAY" run --engine "$ENGINE" ${SLIPWAY_RUN_ARGS:-} "$@"
}

# ---------------------------------------------------------------- servers
# start_http_server DIR: a threaded python http.server on 127.0.0.1:<free
# port> serving DIR; sets HTTP_PORT and HTTP_PID.
start_http_server() {
  local dir=$1 pf="$E2E_TMP/http.port.$RANDOM"
  bg http python3 "$E2E_TOOLS/http_server.py" --dir "$dir" --bind 127.0.0.1 --port-file "$pf"
  HTTP_PID=$BG_PID
  wait_file "$pf" 10 "$HTTP_PID" || { show_log "$E2E_TMP/http.log"; fail "http server did not start"; }
  HTTP_PORT=$(cat "$pf")
  wait_listen "$HTTP_PORT" tcp || fail "http server not listening on $HTTP_PORT"
}

# make_random_file PATH BYTES
make_random_file() {
  head -c "$2" /dev/urandom >"$1"
}

# ------------------------------------------------------- peer namespace
# make_peer_ns: a second private namespace ("remote host") reached from the
# test host over a veth pair: test host 192.0.2.1/24 <-> peer 192.0.2.2/24.
# 192.0.2.0/24 (TEST-NET-1) exists only between these private namespaces.
# Sets PEER_PID and PEER_NS; run commands there with `in_peer CMD...`.
PEER_IP=192.0.2.2
PEER_HOST_IP=192.0.2.1
make_peer_ns() {
  bg peer unshare --net sleep infinity
  PEER_PID=$BG_PID
  local i
  for ((i = 0; i < 250; i++)); do
    [ "$(readlink "/proc/$PEER_PID/ns/net" 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ] &&
      [ -n "$(readlink "/proc/$PEER_PID/ns/net" 2>/dev/null)" ] && break
    sleep 0.02
  done
  PEER_NS=/proc/$PEER_PID/ns/net
  [ "$(readlink "$PEER_NS")" != "$(readlink /proc/self/ns/net)" ] || fail "peer namespace not created"
  ip link add vpeer0 type veth peer name vpeer1 netns "$PEER_PID"
  ip addr add "$PEER_HOST_IP/24" dev vpeer0
  ip link set vpeer0 up
  in_peer ip link set lo up
  in_peer ip addr add "$PEER_IP/24" dev vpeer1
  in_peer ip link set vpeer1 up
  # Wait for the carrier (both ends up).
  for ((i = 0; i < 250; i++)); do
    [ "$(ip -br link show vpeer0 | awk '{print $2}')" = UP ] && return 0
    sleep 0.02
  done
  fail "veth pair to the peer namespace did not come up"
}
in_peer() { nsenter --net="$PEER_NS" "$@"; }

# ping_cmd: iputils ping if present, else busybox's.
ping_cmd() {
  if command -v ping >/dev/null 2>&1; then echo ping
  elif command -v busybox >/dev/null 2>&1; then echo "busybox ping"
  else fail "no ping (install iputils-ping or busybox)"; fi
}

# ---------------------------------------------------------------- vswitch
# VSWITCH: the vswitch binary (default: build/vswitch/vswitch).
: "${VSWITCH:=$SLIPWAY_SOURCE_DIR/build/vswitch/vswitch}"
require_vswitch() {
  [ -x "$VSWITCH" ] || fail "vswitch binary not found or not executable: $VSWITCH (build it, or set VSWITCH)"
}

# guest_ns NAME: a private network namespace for a guest (a sleeping
# process's), its path in NS_<NAME>. Run commands there with `in_ns NAME CMD`.
guest_ns() {
  local name=$1 pid i
  bg "ns-$name" unshare --net sleep infinity
  pid=$BG_PID
  for ((i = 0; i < 250; i++)); do
    [ -n "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" ] &&
      [ "$(readlink "/proc/$pid/ns/net")" != "$(readlink /proc/self/ns/net)" ] && break
    sleep 0.02
  done
  [ "$(readlink "/proc/$pid/ns/net")" != "$(readlink /proc/self/ns/net)" ] || fail "namespace $name not created"
  printf -v "NS_$name" '%s' "/proc/$pid/ns/net"
}
in_ns() {
  local v="NS_$1"; shift
  nsenter --net="${!v}" "$@"
}

# wait_socket PATH [SECONDS] [PID]: poll until the unix socket PATH exists;
# fail early if PID dies.
wait_socket() {
  local f=$1 t=${2:-10} pid=${3:-} i
  for ((i = 0; i < t * 50; i++)); do
    [ -S "$f" ] && return 0
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.02
  done
  return 1
}

# vswitch_counter CONTROL PORT EXPR: a field of one port in `vswitch
# --control CONTROL --json ports` (EXPR in python over the port's dict `p`,
# e.g. "p['rx_dropped_vlan']" or "p['link']['rx_bad_vni']").
vswitch_counter() {
  "$VSWITCH" --control "$1" --json ports |
    python3 -c 'import json,sys; r=json.load(sys.stdin); p=[x for x in r["ports"] if x["name"]==sys.argv[1]][0]; print(eval(sys.argv[2]))' "$2" "$3"
}
