# shellcheck shell=bash
# Systems, servers and records for bench/run.sh (sourced after
# tests/e2e/lib.sh, inside the private test host that e2e_init made).
#
# Theory of operation
#
# A "system" is one way for a guest network namespace to reach the test
# host: loopback (no guest at all: commands run on the test host), veth (a
# namespace joined by a veth pair, kernel routing only), slirp4netns, pasta
# and slipway. Each guest is started once per variant and kept while the
# figures run, so every figure measures every system side by side with the
# same processes:
#   main     MTU 65520, the guest's servers published on the host
#            (inbound figures);
#   mtu1500  MTU 1500, for the bulk figures at that MTU;
#   scale    MTU 65520, a fresh tool for the idle-connection figure (slipway
#            with --max-tcp-flows 200000, as its default 16384 would refuse
#            the 100,000 connections).
# A guest is a namespace holding one `sleep`; commands run in it with
# `nsenter --net` (gx), so a measurement needs no new guest. The tool's own
# process (slipway, slirp4netns, passt.avx2) is found as the child of the
# `timeout` that bounds it, for its CPU time and RSS.
#
# Addresses, per system (what the guest dials to reach the test host's
# servers, which listen on 0.0.0.0 / [::]):
#   loopback     127.0.0.1, ::1
#   veth         198.51.100.1 (TEST-NET-2; guest .2), 2001:db8:1::1 (main);
#                203.0.113.1 (TEST-NET-3), 2001:db8:2::1 (mtu1500);
#                203.0.113.129, 2001:db8:3::1 (scale, unused)
#   slirp4netns  10.0.2.2, fd00::2 (--enable-ipv6)
#   pasta        192.0.2.2: pasta copies the test host's addressing, so the
#                test host gets a veth to a peer namespace with a default
#                route via 192.0.2.2 (make_peer_ns); pasta maps that gateway
#                to the host's loopback, so no packet crosses the veth. IPv4
#                only (-4), as bench/throughput.sh.
#   slipway      10.0.2.2, fd00::2
# Inbound (a server in the guest, the client on the test host): the guest
# listens on SRV_PORT[iperf|http|sockperf]; the client dials
# IN_ADDR:IN_PORT[...] — 127.0.0.1 and a port published by the tool
# (slipway -p, slirp4netns add_hostfwd over its API socket, pasta -t), the
# guest's own address for veth; for loopback the "guest" servers run on the
# test host itself, on ports 25001-25003 (away from anything a tool
# publishes, slipway's automatic forwarding included).
#
# Limits: every process runs under `timeout` (BENCH_LIMIT seconds, the whole
# run's budget) in its own process group (bg), killed when the script exits.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ALL_SYSTEMS=(loopback veth slirp4netns pasta slipway slipway_slirp)

# Guest-side ports of the inbound servers, and the host ports each tool
# publishes them on (distinct per tool: all guests run at once).
declare -A GUEST_PORT=([iperf]=5201 [http]=8080 [sockperf]=11111)
declare -A PUBLISH_BASE=([slirp4netns]=22000 [pasta]=23000 [slipway]=24000 [slipway_slirp]=25000)
declare -A PUBLISH_OFFSET=([iperf]=1 [http]=2 [sockperf]=3)
LOOPBACK_BASE=26000  # apart from every PUBLISH_BASE

# -------------------------------------------------------------- records
# Every figure becomes one JSON line in $RAW (bench/report.py reads it).
rep() { "$BENCH_PY" "$BENCH_DIR/report.py" "$@"; }
# record FIGURE SYSTEM VALUE UNIT COMMAND [EXTRA_JSON]
record() { rep add-value "$RAW" "$@"; }
# record_status FIGURE SYSTEM skip|fail|n/a REASON [COMMAND]
record_status() {
  log "$2: $1: $3: $4"
  rep add-status "$RAW" "$@"
}

# free_port [tcp|udp]: as tests/e2e/lib.sh's, with Debian's python3 (a
# version manager's shim in PATH can cost a tenth of a second a call).
free_port() {
  "$BENCH_PY" -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "${1:-tcp}"
}

# -------------------------------------------------------------- /proc
# child_of PID: the first child of PID (empty if none yet).
child_of() {
  local c
  c=$(cat "/proc/$1/task/$1/children" 2>/dev/null || true)
  c=${c%% *}
  echo "${c%$'\n'}"
}

# descendant_named PID COMM: the first process below PID whose comm is COMM.
descendant_named() {
  local queue=("$1") p c
  while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}; queue=("${queue[@]:1}")
    for c in $(cat "/proc/$p/task/$p/children" 2>/dev/null || true); do
      [ "$(cat "/proc/$c/comm" 2>/dev/null)" = "$2" ] && { echo "$c"; return 0; }
      queue+=("$c")
    done
  done
  return 1
}

CLK_TCK=$(getconf CLK_TCK)
# machine_busy: seconds the whole machine was busy since boot (/proc/stat:
# user nice system irq softirq steal; guest time is inside user).
machine_busy() {
  awk -v hz="$CLK_TCK" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat
}
# proc_cpu PID: user + system seconds of PID so far (empty if it is gone).
proc_cpu() {
  local s
  [ -n "$1" ] || return 0
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  s=${s##*) }
  awk -v hz="$CLK_TCK" '{ printf "%.2f", ($12 + $13) / hz }' <<<"$s"
}
# children_cpu PID: user + system seconds of every process the shell PID has
# waited for (its children and, through them, their descendants).
children_cpu() {
  local s
  s=$(cat "/proc/$1/stat")
  s=${s##*) }
  awk -v hz="$CLK_TCK" '{ printf "%.2f", ($14 + $15) / hz }' <<<"$s"
}
# rss_kib PID: resident set size in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# -------------------------------------------------------------- systems
# prepare_SYSTEM: is the system usable at all? Sets NOTE when not. Runs once.
prepare_loopback() { return 0; }
prepare_veth() { return 0; }
prepare_slirp4netns() {
  command -v slirp4netns >/dev/null || { NOTE="not installed (Debian package slirp4netns)"; return 1; }
}
prepare_pasta() {
  command -v pasta >/dev/null || { NOTE="not installed (Debian package passt)"; return 1; }
  make_peer_ns
  ip route add default via "$PEER_IP" dev vpeer0
}
prepare_slipway() {
  [ -x "$SLIPWAY" ] || { NOTE="not built ($SLIPWAY)"; return 1; }
  "$SLIPWAY" run --help 2>/dev/null | grep -- --max-tcp-flows >/dev/null || { NOTE="'slipway run' lacks --max-tcp-flows"; return 1; }
}

# slipway_slirp: slipway with --engine slirp (libslirp behind the same
# gateway), to set the two engines side by side.
prepare_slipway_slirp() {
  prepare_slipway || return 1
  # grep reads it all (no -q): stopping at the match could kill slipway with
  # SIGPIPE while it writes the rest, and pipefail then failed the check.
  "$SLIPWAY" run --help 2>/dev/null | grep -- --engine >/dev/null || { NOTE="'slipway run' lacks --engine"; return 1; }
}

variant_mtu() { case $1 in mtu1500) echo 1500 ;; *) echo 65520 ;; esac; }

# Guest state, per SYSTEM@VARIANT.
declare -A G_NS G_TOOL G_BG G_STATE G_NOTE

# start_SYSTEM VARIANT: starts the guest; sets NS (a PID in the guest's
# network namespace), TOOL (the tool's PID, or empty), BGPIDS (process
# groups to stop), or NOTE and returns 1.
start_loopback() { NS=; TOOL=; BGPIDS=(); }

VETH_INDEX=0
start_veth() {
  local v=$1 mtu; mtu=$(variant_mtu "$1")
  local host4 guest4 host6 guest6
  case $v in
    main) host4=198.51.100.1/24 guest4=198.51.100.2/24 host6=2001:db8:1::1/64 guest6=2001:db8:1::2/64 ;;
    mtu1500) host4=203.0.113.1/25 guest4=203.0.113.2/25 host6=2001:db8:2::1/64 guest6=2001:db8:2::2/64 ;;
    *) host4=203.0.113.129/25 guest4=203.0.113.130/25 host6=2001:db8:3::1/64 guest6=2001:db8:3::2/64 ;;
  esac
  VETH_INDEX=$((VETH_INDEX + 1))
  local ifname=vb$VETH_INDEX
  bg "veth-$v" timeout -k 5 "$BENCH_LIMIT" unshare --net sleep "$BENCH_LIMIT"
  BGPIDS=("$BG_PID"); TOOL=
  local i
  for ((i = 0; i < 250; i++)); do
    NS=$(child_of "$BG_PID")
    [ -n "$NS" ] && [ "$(readlink "/proc/$NS/ns/net" 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ] && break
    NS=; sleep 0.02
  done
  [ -n "$NS" ] || { NOTE="namespace did not start"; return 1; }
  ip link add "$ifname" mtu "$mtu" type veth peer name eth0 mtu "$mtu" netns "$NS" || { NOTE="ip link add veth failed"; return 1; }
  ip addr add "$host4" dev "$ifname"
  ip addr add "$host6" dev "$ifname" nodad
  ip link set "$ifname" up
  nsenter -t "$NS" -n sh -c "ip link set lo up && ip addr add $guest4 dev eth0 &&
    ip addr add $guest6 dev eth0 nodad && ip link set eth0 up &&
    ip route add default via ${host4%/*} && ip -6 route add default via ${host6%/*}" ||
    { NOTE="configuring the guest end failed"; return 1; }
  for ((i = 0; i < 250; i++)); do
    [ "$(ip -br link show "$ifname" | awk '{print $2}')" = UP ] && return 0
    sleep 0.02
  done
  NOTE="veth did not come up"; return 1
}

# unshare a user+net+mount namespace; slirp4netns attaches to it. The
# namespace's shell waits for slirp4netns's ready byte and for its SLAAC
# address to leave DAD (--enable-ipv6), then says so and becomes `sleep`.
start_slirp4netns() {
  local v=$1 mtu d; mtu=$(variant_mtu "$1")
  d="$E2E_TMP/slirp-$v"; mkdir -p "$d"
  D=$d bg "slirp-ns-$v" timeout -k 5 "$BENCH_LIMIT" unshare --user --map-root-user --net --mount sh -c '
    echo $$ >"$D/inns"
    i=0; while [ ! -s "$D/ready" ]; do i=$((i + 1)); [ $i -gt 1000 ] && exit 125; sleep 0.01; done
    i=0; while ! ip -6 addr show scope global | grep inet6 | grep -qv tentative; do
      i=$((i + 1)); [ $i -gt 1000 ] && exit 125; sleep 0.01; done
    echo up >"$D/guest"
    exec sleep '"$BENCH_LIMIT"
  BGPIDS=("$BG_PID")
  wait_file "$d/inns" 10 "$BG_PID" || { NOTE="namespace did not start"; return 1; }
  NS=$(cat "$d/inns")
  bg "slirp-$v" timeout -k 5 "$BENCH_LIMIT" slirp4netns --configure --mtu="$mtu" --enable-ipv6 \
    --api-socket "$d/api" --ready-fd=4 "$NS" tap0 4>"$d/ready"
  BGPIDS+=("$BG_PID")
  wait_file "$d/guest" 20 "$BG_PID" || { NOTE="slirp4netns did not come up: $(tail -n1 "$E2E_TMP/slirp-$v.log")"; return 1; }
  TOOL=$(child_of "$BG_PID")
  [ "$v" = main ] || return 0
  local what port
  for what in "${!GUEST_PORT[@]}"; do
    port=$(publish_port slirp4netns "$what")
    slirp_api "$d/api" "{\"execute\":\"add_hostfwd\",\"arguments\":{\"proto\":\"tcp\",\"host_addr\":\"127.0.0.1\",\"host_port\":$port,\"guest_port\":${GUEST_PORT[$what]}}}" ||
      { NOTE="add_hostfwd $port failed"; return 1; }
  done
}
# slirp_api SOCKET JSON: one request on slirp4netns's API socket; fails
# unless the answer has "return".
slirp_api() {
  "$BENCH_PY" - "$1" "$2" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode())
s.shutdown(socket.SHUT_WR)
answer = s.recv(4096).decode()
sys.exit(0 if '"return"' in answer else f"slirp4netns API: {answer}")
EOF
}

start_pasta() {
  local v=$1 mtu d; mtu=$(variant_mtu "$1")
  d="$E2E_TMP/pasta-$v"; mkdir -p "$d"
  local opts=(--config-net -f -4 -q -m "$mtu" -T none -U none -u none)
  [ "$(id -u)" = 0 ] && opts+=(--runas 0)
  if [ "$v" = main ]; then
    local what
    for what in "${!GUEST_PORT[@]}"; do opts+=(-t "$(publish_port pasta "$what"):${GUEST_PORT[$what]}"); done
  else
    opts+=(-t none)
  fi
  D=$d bg "pasta-$v" timeout -k 5 "$BENCH_LIMIT" pasta "${opts[@]}" -- sh -c 'echo up >"$D/guest"; exec sleep '"$BENCH_LIMIT"
  BGPIDS=("$BG_PID")
  wait_file "$d/guest" 20 "$BG_PID" || { NOTE="pasta did not start: $(grep -v -e 'Failed to send' "$E2E_TMP/pasta-$v.log" | tail -n1)"; return 1; }
  TOOL=$(child_of "$BG_PID")
  local i
  for ((i = 0; i < 250; i++)); do NS=$(descendant_named "$TOOL" sleep) && break; sleep 0.02; done
  [ -n "$NS" ] || { NOTE="pasta's guest process not found"; return 1; }
}

# start_slipway VARIANT [ENGINE]
start_slipway() {
  local v=$1 engine=${2:-lwip} mtu d; mtu=$(variant_mtu "$1")
  local sys=slipway; [ "$engine" = slirp ] && sys=slipway_slirp
  d="$E2E_TMP/$sys-$v"; mkdir -p "$d"
  local opts=(--mtu "$mtu" --engine "$engine")
  if [ "$v" = main ]; then
    local what
    for what in "${!GUEST_PORT[@]}"; do opts+=(-p "127.0.0.1:$(publish_port "$sys" "$what"):${GUEST_PORT[$what]}"); done
  fi
  # libslirp has no flow limit (the option is refused with it).
  [ "$v" = scale ] && [ "$engine" = lwip ] && opts+=(--max-tcp-flows 200000)
  D=$d bg "$sys-$v" timeout -k 5 "$BENCH_LIMIT" "$SLIPWAY" run "${opts[@]}" -- sh -c 'echo up >"$D/guest"; exec sleep '"$BENCH_LIMIT"
  BGPIDS=("$BG_PID")
  wait_file "$d/guest" 20 "$BG_PID" || { NOTE="slipway did not start: $(tail -n1 "$E2E_TMP/$sys-$v.log")"; return 1; }
  TOOL=$(child_of "$BG_PID")
  local i
  for ((i = 0; i < 250; i++)); do NS=$(descendant_named "$TOOL" sleep) && break; sleep 0.02; done
  [ -n "$NS" ] || { NOTE="slipway's guest process not found"; return 1; }
}

start_slipway_slirp() { start_slipway "$1" slirp; }

# publish_port SYSTEM WHAT: the host port SYSTEM publishes guest server WHAT on.
publish_port() { echo $((PUBLISH_BASE[$1] + PUBLISH_OFFSET[$2])); }

# guest_up SYSTEM VARIANT: starts the guest unless it runs (or could not
# start) already; returns 1 with G_STATE[SYSTEM@VARIANT] skip (the system is
# not available) or fail (it did not start) and the reason in G_NOTE.
declare -A PREPARED
guest_up() {
  local key=$1@$2
  case ${G_STATE[$key]:-} in
    up)
      # A guest (or its tool) that died since is a failure from here on.
      if [ -z "${G_NS[$key]}" ] || { kill -0 "${G_NS[$key]}" 2>/dev/null &&
          { [ -z "${G_TOOL[$key]}" ] || kill -0 "${G_TOOL[$key]}" 2>/dev/null; }; }; then
        return 0
      fi
      G_STATE[$key]=fail; G_NOTE[$key]="$2 guest exited during the run"
      guest_down "$1" "$2" keep
      return 1 ;;
    skip | fail) return 1 ;;
  esac
  if [ -z "${PREPARED[$1]:-}" ]; then
    NOTE=
    if "prepare_$1"; then PREPARED[$1]=ok; else PREPARED[$1]=$NOTE; fi
  fi
  if [ "${PREPARED[$1]}" != ok ]; then
    G_STATE[$key]=skip; G_NOTE[$key]=${PREPARED[$1]}
    return 1
  fi
  NOTE=''; NS=''; TOOL=''; BGPIDS=()
  if "start_$1" "$2"; then
    G_STATE[$key]=up; G_NS[$key]=$NS; G_TOOL[$key]=$TOOL; G_BG[$key]="${BGPIDS[*]}"
    log "$1: $2 guest up${TOOL:+, tool pid $TOOL}"
    return 0
  fi
  G_STATE[$key]=fail; G_NOTE[$key]="$2 guest: $NOTE"; G_BG[$key]="${BGPIDS[*]}"
  log "$1: ${G_NOTE[$key]}"
  guest_down "$1" "$2" keep
  return 1
}

# guest_down SYSTEM VARIANT [keep]: stops the guest (keep: remember it failed).
guest_down() {
  local key=$1@$2 p
  for p in ${G_BG[$key]:-}; do stop_bg "$p"; done
  G_BG[$key]=
  [ "${3:-}" = keep ] || G_STATE[$key]=
  return 0  # a veth pair goes away with its namespace
}

# use SYSTEM VARIANT: makes that guest the current one for gx and sets
# GW4, GW6 (empty: no IPv6), TOOL_PID, and for the inbound figures
# SRV_PORT[WHAT] (where the server in the guest listens) and IN_ADDR,
# IN_PORT[WHAT] (what the client on the test host dials).
declare -A SRV_PORT IN_PORT
use() {
  local key=$1@$2 what
  CUR_NS=${G_NS[$key]}; TOOL_PID=${G_TOOL[$key]}
  GX=()
  [ -n "$CUR_NS" ] && GX=(nsenter -t "$CUR_NS" -n --)
  case $1 in
    loopback) GW4=127.0.0.1 GW6=::1 ;;
    veth)
      GW4=$(gx ip -4 route show default | awk '{print $3; exit}')
      GW6=$(gx ip -6 route show default | awk '{print $3; exit}') ;;
    slirp4netns | slipway | slipway_slirp) GW4=10.0.2.2 GW6=fd00::2 ;;
    pasta) GW4=$PEER_IP GW6= ;;
  esac
  for what in "${!GUEST_PORT[@]}"; do
    case $1 in
      loopback) # the "guest" is the test host: ports apart from any guest's
        SRV_PORT[$what]=$((LOOPBACK_BASE + PUBLISH_OFFSET[$what])); IN_PORT[$what]=${SRV_PORT[$what]} ;;
      veth) SRV_PORT[$what]=${GUEST_PORT[$what]}; IN_PORT[$what]=${GUEST_PORT[$what]} ;;
      *) SRV_PORT[$what]=${GUEST_PORT[$what]}; IN_PORT[$what]=$(publish_port "$1" "$what") ;;
    esac
  done
  case $1 in
    veth) IN_ADDR=$(gx ip -4 -o addr show dev eth0 | awk '{sub(/\/.*/, "", $4); print $4; exit}') ;;
    *) IN_ADDR=127.0.0.1 ;;
  esac
}

# gx CMD...: runs CMD in the current guest (on the test host for loopback);
# "${GX[@]}" is the same prefix for bg.
gx() { "${GX[@]}" "$@"; }

# wait_listen_guest PORT [SECONDS]: wait_listen inside the current guest.
wait_listen_guest() {
  local i
  for ((i = 0; i < ${2:-10} * 50; i++)); do
    [ -n "$(gx ss -Hltn "sport = :$1" 2>/dev/null)" ] && return 0
    sleep 0.02
  done
  return 1
}

# -------------------------------------------------------------- servers
# nginx_conf FILE DIR PORT...: a one-worker nginx serving DIR on each PORT
# (IPv4 and IPv6), pid and temporary files next to FILE.
nginx_conf() {
  local base=${1%.conf} dir=$2 port listen=''
  shift 2
  for port in "$@"; do
    listen+="    listen 0.0.0.0:$port backlog=4096; listen [::]:$port ipv6only=on backlog=4096;"$'\n'
  done
  cat >"$base.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 65536;
pid $base.pid;
error_log $base-error.log;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $base-body;
  proxy_temp_path $base-proxy;
  fastcgi_temp_path $base-fastcgi;
  uwsgi_temp_path $base-uwsgi;
  scgi_temp_path $base-scgi;
  server {
$listen    root $dir;
  }
}
EOF
}

# the small file every HTTP figure fetches (1 KiB of text)
make_www() {
  mkdir -p "$E2E_TMP/www"
  head -c 768 /dev/urandom | base64 -w 64 >"$E2E_TMP/www/index.html"
}
