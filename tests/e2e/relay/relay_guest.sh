# shellcheck shell=bash
# shellcheck disable=SC2034 # RG_* are the caller's to read
# A kernel as the guest of a slipway VM transport, shared by
# tests/e2e/test_transport_relay.sh and bench/transports.sh (MODE=tcp).
# Sourced after tests/e2e/lib.sh, inside the private test host (e2e_init).
#
# Theory of operation
#   relay_guest_up NAME TRANSPORT [--offload] starts, each in its own process
#   group (bg) bounded by RELAY_LIMIT seconds:
#     - `slipway serve --TRANSPORT $E2E_TMP/NAME.sock --mtu 1500 --control
#       $E2E_TMP/NAME.ctl` (its defaults: guest 10.0.2.15/24, gateway
#       10.0.2.2 reaching the test host's loopback, MAC 52:54:00:12:34:56);
#     - a network namespace of its own (`unshare --net sleep`), the guest;
#     - bench/transport_relay in it (nsenter --net), which creates the TAP
#       eth0 there (with IFF_VNET_HDR and TUNSETOFFLOAD when --offload) and
#       plays the VMM: it relays eth0's frames onto slipway's socket.
#   It then configures eth0 as `slipway run` configures its TAP (MAC, MTU
#   1500, 10.0.2.15/24, up, default route via 10.0.2.2, lo up) and waits
#   (at most 10 s) until the gateway answers a ping, so the path is known to
#   work before anything is measured. RG_NS is then a PID inside the guest
#   (run commands there with `in_ns "$RG_NS" CMD...`), RG_CTL slipway's
#   control socket. On failure it returns 1 with the reason in RG_ERR.
#
#   relay_guest_ipv6 waits for (and prints) the guest's SLAAC address: IPv6
#   is set up as `slipway run` sets it (accept_ra, autoconf, no DAD), and
#   slipway's gateway fd00::2 reaches the test host's ::1.
#
#   relay_guest_down stops the relay (SIGTERM: it prints its counters, see
#   bench/transport_relay.cc) and slipway, and sets RG_RELAY to the
#   counters line ("" if it printed none); relay_field KEY reads one counter.
#   link_dropped CTL prints how many frames slipway has dropped on their
#   way to the guest (its control API's link.tx_dropped).
#
# Env: RG_SLIPWAY_ARGS (extra options for slipway serve, e.g. --link-faults),
#   RELAY (default: bench/transport_relay in SLIPWAY's build tree),
#   RELAY_RING (vhost-user ring entries, default 256: QEMU's default
#   rx_queue_size; QEMU allows up to 1024), GUEST_RMEM (the guest's
#   net.ipv4.tcp_rmem maximum in bytes, which bounds the TCP window it
#   advertises; default: the kernel's own), RELAY_LIMIT (seconds, default
#   300).

: "${RELAY:=$(dirname "$(dirname "$SLIPWAY")")/bench/transport_relay}"
: "${RELAY_RING:=256}"
: "${RELAY_LIMIT:=300}"
RG_MAC=52:54:00:12:34:56

in_ns() { local pid=$1; shift; nsenter --net="/proc/$pid/ns/net" "$@"; }

# link_dropped CTL: frames slipway dropped on their way to the guest.
link_dropped() { python3 "$E2E_TOOLS/ctl_stats.py" "$1" link.tx_dropped; }

relay_guest_up() {
  local name=$1 transport=$2 offload=${3:-} sock="$E2E_TMP/$1.sock" i
  RG_NAME=$name RG_CTL="$E2E_TMP/$name.ctl" RG_ERR='' RG_NS='' RG_RELAY='' RG_PIDS=()
  [ -x "$RELAY" ] || { RG_ERR="relay not built: $RELAY"; return 1; }
  # shellcheck disable=SC2086 # RG_SLIPWAY_ARGS: extra options, word-split
  bg "$name-slipway" timeout -k 5 "$RELAY_LIMIT" "$SLIPWAY" serve "--$transport" "$sock" --mtu 1500 \
    --control "$RG_CTL" --log-level info ${RG_SLIPWAY_ARGS:-}
  RG_PIDS+=("$BG_PID")
  for ((i = 0; i < 250; i++)); do [ -S "$sock" ] && [ -S "$RG_CTL" ] && break; sleep 0.02; done
  [ -S "$sock" ] || { RG_ERR="slipway serve did not start: $(tail -n1 "$E2E_TMP/$name-slipway.log")"; return 1; }
  bg "$name-ns" timeout -k 5 "$RELAY_LIMIT" unshare --net sleep "$RELAY_LIMIT"
  RG_PIDS+=("$BG_PID")
  # The namespace is ready once the sleep (timeout's child) is in it.
  for ((i = 0; i < 250; i++)); do
    RG_NS=$(cat "/proc/$BG_PID/task/$BG_PID/children" 2>/dev/null || true)
    RG_NS=${RG_NS%% *}
    [ -n "$RG_NS" ] && [ "$(readlink "/proc/$RG_NS/ns/net" 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ] &&
      [ "$(cat "/proc/$RG_NS/comm" 2>/dev/null)" = sleep ] && break
    RG_NS=
    sleep 0.02
  done
  [ -n "$RG_NS" ] || { RG_ERR="guest namespace not created"; return 1; }
  RG_TRANSPORT=$transport RG_OFFLOAD=$offload
  rg_start_relay
}

# rg_start_relay: the relay (the VMM) on RG_NS's eth0 and slipway's socket,
# eth0 configured, the gateway answering (the second half of relay_guest_up;
# relay_guest_reconnect calls it again).
rg_start_relay() {
  local name=$RG_NAME sock="$E2E_TMP/$RG_NAME.sock" i
  local -a opts=()
  [ "$RG_TRANSPORT" = vhost-user ] && opts=(--queue-size "$RELAY_RING")
  [ -n "$RG_OFFLOAD" ] && opts+=("$RG_OFFLOAD")
  : >"$E2E_TMP/$name-relay.log"
  bg "$name-relay" timeout -k 5 "$RELAY_LIMIT" nsenter --net="/proc/$RG_NS/ns/net" \
    "$RELAY" "--$RG_TRANSPORT" "$sock" --tap eth0 "${opts[@]}"
  RG_PIDS[2]=$BG_PID
  for ((i = 0; i < 250; i++)); do grep -q '^relay: ready' "$E2E_TMP/$name-relay.log" 2>/dev/null && break; sleep 0.02; done
  grep -q '^relay: ready' "$E2E_TMP/$name-relay.log" ||
    { RG_ERR="relay did not start: $(tail -n1 "$E2E_TMP/$name-relay.log")"; return 1; }
  # IPv6 as `slipway run` sets it: SLAAC from slipway's router
  # advertisement, no duplicate address detection.
  in_ns "$RG_NS" sh -c "ip link set lo up && ip link set eth0 address $RG_MAC mtu 1500 &&
    sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.eth0.accept_dad=0 \
      net.ipv6.conf.eth0.accept_ra=1 net.ipv6.conf.eth0.autoconf=1 &&
    ip addr add $GUEST_IP/24 dev eth0 && ip link set eth0 up && ip route add default via $GATEWAY_IP" ||
    { RG_ERR="cannot configure the guest's eth0"; return 1; }
  if [ -n "${GUEST_RMEM:-}" ]; then
    in_ns "$RG_NS" sysctl -q -w net.ipv4.tcp_rmem="4096 131072 $GUEST_RMEM" ||
      { RG_ERR="cannot set the guest's tcp_rmem"; return 1; }
  fi
  local ping; ping=$(ping_cmd)
  for ((i = 0; i < 10; i++)); do
    # shellcheck disable=SC2086 # "busybox ping" is two words
    in_ns "$RG_NS" $ping -c 1 -W 1 "$GATEWAY_IP" >/dev/null 2>&1 && return 0
  done
  RG_ERR="the guest cannot ping the gateway $GATEWAY_IP through the relay"
  return 1
}

# relay_guest_ipv6: waits (at most 10 s) for the guest's SLAAC address in
# fd00::/64 (slipway serve's prefix); prints it.
relay_guest_ipv6() {
  local i a
  for ((i = 0; i < 500; i++)); do
    a=$(in_ns "$RG_NS" ip -6 -o addr show dev eth0 scope global 2>/dev/null | awk '/fd00::/ { sub("/.*", "", $4); print $4; exit }')
    [ -n "$a" ] && { echo "$a"; return 0; }
    sleep 0.02
  done
  return 1
}

# relay_guest_reconnect: the VMM goes away (the relay is killed with
# SIGKILL: its socket closes, its TAP disappears) and comes back on the same
# slipway socket, as a restarted or live-migrated VMM would; returns 0 once
# the gateway answers again.
relay_guest_reconnect() {
  local i log="$E2E_TMP/$RG_NAME-slipway.log" before
  before=$(grep -c 'frontend disconnected' "$log" || true)
  stop_bg "${RG_PIDS[2]}" KILL
  for ((i = 0; i < 250; i++)); do in_ns "$RG_NS" ip link show eth0 >/dev/null 2>&1 || break; sleep 0.02; done
  # As a restarted VMM: back once slipway has seen the old one go (a
  # frontend arriving while the old one is still connected is refused).
  for ((i = 0; i < 250; i++)); do
    [ "$(grep -c 'frontend disconnected' "$log" || true)" -gt "$before" ] && break
    sleep 0.02
  done
  rg_start_relay
}

relay_guest_down() {
  local p
  # The relay first, so that it prints its counters while slipway is up.
  [ ${#RG_PIDS[@]} -ge 3 ] && stop_bg "${RG_PIDS[2]}"
  RG_RELAY=$(grep '^relay transport=' "$E2E_TMP/$RG_NAME-relay.log" 2>/dev/null || true)
  for p in "${RG_PIDS[@]}"; do stop_bg "$p"; done
  RG_PIDS=()
}

# relay_field KEY: one counter of the relay's last line (RG_RELAY).
relay_field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$RG_RELAY"; }
