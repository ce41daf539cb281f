#!/usr/bin/env bash
# Several guests on one gateway: `slipway serve --netns A --netns B --stream
# SOCK --control CTL`. Two named network namespaces (ip netns) and a kernel
# behind a stream socket (bench/transport_relay plays the VMM, the guest gets
# its address with busybox udhcpc) share slipway's internal switch:
#   - three distinct DHCP leases, listed (with the names) by the control API;
#   - ping between every pair of guests;
#   - NAME.internal answered by the DNS proxy (dig in a namespace, through
#     the /etc/netns/NAME/resolv.conf that slipway wrote);
#   - 16 MiB hashed each way between the guests, and a hashed fetch from the
#     host's loopback through the gateway in each guest;
#   - -p HOSTPORT:beta:8080 publishes the second guest's server on the host;
#   - a port removed (vswitch --control CTL remove) and added again gets its
#     lease back, while a transfer between the other two guests goes on intact;
#   - with --isolate, the guests reach the gateway and the host but not each
#     other.
# /run/netns and /etc/netns are private tmpfs mounts of this test (it runs in
# its own mount namespace), so nothing is left on the machine.
. "$(dirname "$0")/lib.sh"
E2E_TIMEOUT=${E2E_TIMEOUT:-240}
e2e_init "$@"
require_slipway
need_cmd ip nsenter python3 busybox dig curl
[ "$(id -u)" = 0 ] || skip "needs root (ip netns add, mounts over /run/netns)"
VSWITCH=${VSWITCH:-$(dirname "$(dirname "$SLIPWAY")")/vswitch/vswitch}
RELAY=${RELAY:-$(dirname "$(dirname "$SLIPWAY")")/bench/transport_relay}
[ -x "$VSWITCH" ] || fail "vswitch not built: $VSWITCH"
[ -x "$RELAY" ] || fail "relay not built: $RELAY"
BLOB=$E2E_TOOLS/blob.py
BYTES=$((16 * 1024 * 1024))
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" "$2" | head -n1; }

mkdir -p /run/netns /etc/netns
mount -t tmpfs swtest /run/netns
mount -t tmpfs swtest /etc/netns
ip netns add alpha
ip netns add beta
in_alpha() { ip netns exec alpha "$@"; }
in_beta() { ip netns exec beta "$@"; }

# The third guest: a kernel in a namespace of its own behind the relay.
bg gamma-ns timeout -k 5 230 unshare --net sleep 600
GAMMA_NS=
for ((i = 0; i < 250; i++)); do
  GAMMA_NS=$(cat "/proc/$BG_PID/task/$BG_PID/children" 2>/dev/null || true)
  GAMMA_NS=${GAMMA_NS%% *}
  [ -n "$GAMMA_NS" ] && [ "$(cat "/proc/$GAMMA_NS/comm" 2>/dev/null)" = sleep ] && break
  GAMMA_NS=; sleep 0.02
done
[ -n "$GAMMA_NS" ] || fail "namespace for the stream guest not created"
in_gamma() { nsenter --net="/proc/$GAMMA_NS/ns/net" "$@"; }

mkdir "$E2E_TMP/www"
make_random_file "$E2E_TMP/www/blob.bin" $((4 * 1024 * 1024 + 77))
WANT_HTTP=$(sha256_of "$E2E_TMP/www/blob.bin")
start_http_server "$E2E_TMP/www"

CTL=$E2E_TMP/sw.ctl
SERVE_PID=
# serve NAME [OPTIONS]: slipway serve with the three guests; the stream guest
# relayed and given a DHCP lease.
serve() {
  local name=$1; shift
  rm -f "$E2E_TMP/gamma.sock" "$CTL"
  bg "$name" timeout -k 5 200 "$SLIPWAY" serve --engine "$ENGINE" --netns /run/netns/alpha --netns /run/netns/beta \
    --stream "$E2E_TMP/gamma.sock,name=gamma" --control "$CTL" --mtu 1500 --log-level info "$@"
  SERVE_PID=$BG_PID
  for ((i = 0; i < 500; i++)); do
    [ -S "$CTL" ] && [ -S "$E2E_TMP/gamma.sock" ] && break
    kill -0 "$SERVE_PID" 2>/dev/null || break
    sleep 0.02
  done
  [ -S "$CTL" ] || { show_log "$E2E_TMP/$name.log"; fail "$name: slipway serve did not start"; }
  bg "$name-relay" nsenter --net="/proc/$GAMMA_NS/ns/net" "$RELAY" --stream "$E2E_TMP/gamma.sock" --tap eth0
  RELAY_PID=$BG_PID
  for ((i = 0; i < 250; i++)); do grep -q '^relay: ready' "$E2E_TMP/$name-relay.log" 2>/dev/null && break; sleep 0.02; done
  grep -q '^relay: ready' "$E2E_TMP/$name-relay.log" || { show_log "$E2E_TMP/$name-relay.log"; fail "$name: relay did not start"; }
  in_gamma ip link set lo up
  in_gamma ip link set eth0 address 52:54:00:12:34:56 mtu 1500 up
  in_gamma ip -4 addr flush dev eth0
  in_gamma busybox udhcpc -i eth0 -f -q -n -t 5 -T 1 -s "$E2E_TMP/udhcpc.sh" >"$E2E_TMP/$name-udhcpc.log" 2>&1 ||
    { show_log "$E2E_TMP/$name-udhcpc.log"; show_log "$E2E_TMP/$name.log"; fail "$name: the stream guest got no lease"; }
}
stop_serve() { stop_bg "$RELAY_PID"; stop_bg "$SERVE_PID"; }
cat >"$E2E_TMP/udhcpc.sh" <<'SCRIPT'
#!/bin/sh
# udhcpc event script: configure eth0 with the lease.
case "$1" in
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    ;;
esac
exit 0
SCRIPT
chmod 755 "$E2E_TMP/udhcpc.sh"

addr_of() {  # addr_of alpha|beta|gamma: the guest's IPv4 address
  case $1 in
    gamma) in_gamma ip -4 -o addr show dev eth0 | awk '{ sub("/.*", "", $4); print $4; exit }' ;;
    *) ip netns exec "$1" ip -4 -o addr show dev eth0 | awk '{ sub("/.*", "", $4); print $4; exit }' ;;
  esac
}
enter() {  # enter GUEST: the command prefix that runs a command in GUEST
  case $1 in gamma) echo nsenter --net="/proc/$GAMMA_NS/ns/net" ;; *) echo ip netns exec "$1" ;; esac
}
# shellcheck disable=SC2046
run_in() { local g=$1; shift; $(enter "$g") "$@"; }
PING=$(ping_cmd)
can_ping() {  # can_ping FROM ADDR
  # shellcheck disable=SC2086 # "busybox ping" is two words
  run_in "$1" $PING -c 1 -W 1 "$2" >/dev/null 2>&1
}

# transfer FROM TO: FROM sends BYTES to a receiver in TO; hashes compared.
transfer() {
  local from=$1 to=$2 pf="$E2E_TMP/xfer-$1-$2.port" rc=0
  rm -f "$pf"
  # shellcheck disable=SC2046 # the prefix is words without spaces
  bg "xfer-$from-$to-recv" timeout -k 5 60 $(enter "$to") python3 "$BLOB" recv --listen 0.0.0.0:0 \
    --port-file "$pf" --io-timeout 20
  local rpid=$BG_PID
  wait_file "$pf" 10 "$rpid" || { show_log "$E2E_TMP/xfer-$from-$to-recv.log"; fail "$from -> $to: receiver did not start"; }
  run_in "$from" timeout -k 5 60 python3 "$BLOB" send --connect "$(addr_of "$to"):$(cat "$pf")" --bytes "$BYTES" \
    --seed 5 --io-timeout 20 >"$E2E_TMP/xfer-$from-$to-send.log" 2>&1 || rc=$?
  [ $rc = 0 ] || { show_log "$E2E_TMP/xfer-$from-$to-send.log"; fail "$from -> $to: sender failed (exit $rc)"; }
  for ((i = 0; i < 500; i++)); do kill -0 "$rpid" 2>/dev/null || break; sleep 0.02; done
  wait "$rpid" 2>/dev/null || { show_log "$E2E_TMP/xfer-$from-$to-recv.log"; fail "$from -> $to: receiver failed"; }
  local ss rs
  ss=$(field sha256 "$E2E_TMP/xfer-$from-$to-send.log"); rs=$(field sha256 "$E2E_TMP/xfer-$from-$to-recv.log")
  [ "$(field bytes "$E2E_TMP/xfer-$from-$to-recv.log")" = "$BYTES" ] ||
    fail "$from -> $to: received $(field bytes "$E2E_TMP/xfer-$from-$to-recv.log") bytes, want $BYTES"
  [ -n "$ss" ] && [ "$ss" = "$rs" ] || fail "$from -> $to: sha256 differs: sent $ss, received $rs"
  ok "$from -> $to: $BYTES bytes intact (sha256 ${ss:0:16}...)"
}

fetch_host() {  # fetch_host GUEST: the host's file through the gateway, hashed
  local got
  got=$(run_in "$1" curl -sS --max-time 20 "http://$GATEWAY_IP:$HTTP_PORT/blob.bin" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$WANT_HTTP" ] || fail "$1: fetch from the host's loopback: sha256 $got, want $WANT_HTTP"
}

leases() { "$VSWITCH" --control "$CTL" --json leases; }

# ------------------------------------------------------------------ shared
log "check: three guests on one gateway (two namespaces, one stream VM)"
FWD_PORT=$(free_port tcp)
serve shared -p "127.0.0.1:$FWD_PORT:beta:8080"
A=$(addr_of alpha) B=$(addr_of beta) G=$(addr_of gamma)
[ -n "$A" ] && [ -n "$B" ] && [ -n "$G" ] || fail "addresses: alpha '$A', beta '$B', gamma '$G'"
[ "$A" != "$B" ] && [ "$A" != "$G" ] && [ "$B" != "$G" ] || fail "leases are not distinct: $A $B $G"
for x in "$A" "$B" "$G"; do [[ $x == 10.0.2.* ]] || fail "address $x is not in 10.0.2.0/24"; done
ok "leases: alpha $A, beta $B, gamma $G"
leases >"$E2E_TMP/leases.json" || fail "vswitch --control leases failed"
python3 - "$E2E_TMP/leases.json" "$A" "$B" "$G" <<'PY' || { cat "$E2E_TMP/leases.json" >&2; fail "the control API's leases do not match"; }
import json, sys
doc = json.load(open(sys.argv[1]))
leases = doc.get("leases", doc) if isinstance(doc, dict) else doc
by_addr = {l["address"]: l for l in leases}
for name, addr in (("alpha", sys.argv[2]), ("beta", sys.argv[3])):
    assert addr in by_addr, f"{addr} not listed"
    assert by_addr[addr].get("name") == name, f"{addr} named {by_addr[addr].get('name')}, want {name}"
assert sys.argv[4] in by_addr, f"{sys.argv[4]} (the stream guest) not listed"
PY
ok "the control API lists the three leases with the namespaces' names"

for pair in "alpha $B" "alpha $G" "beta $A" "beta $G" "gamma $A" "gamma $B" "alpha $GATEWAY_IP" "gamma $GATEWAY_IP"; do
  # shellcheck disable=SC2086
  can_ping $pair || fail "ping ${pair% *} -> ${pair#* } failed"
done
ok "ping between every pair of guests and to the gateway"

grep -q "nameserver $DNS_IP" /etc/netns/alpha/resolv.conf ||
  fail "/etc/netns/alpha/resolv.conf does not name $DNS_IP: $(cat /etc/netns/alpha/resolv.conf 2>&1)"
got=$(in_alpha dig +short +time=2 +tries=2 beta.internal A) || true
[ "$got" = "$B" ] || fail "dig beta.internal in alpha: '$got', want $B"
got=$(in_beta dig +short +time=2 +tries=2 alpha.internal A) || true
[ "$got" = "$A" ] || fail "dig alpha.internal in beta: '$got', want $A"
ok "alpha.internal and beta.internal answered by the gateway's DNS (resolv.conf from /etc/netns)"

transfer alpha beta
transfer beta alpha
transfer gamma alpha
transfer alpha gamma
for g in alpha beta gamma; do fetch_host "$g"; done
ok "each guest fetched the host's file through the gateway intact"

# A published port names its guest: the host's 127.0.0.1:FWD_PORT reaches
# beta's port 8080 (beta is not the first guest).
mkdir "$E2E_TMP/beta-www"
cp "$E2E_TMP/www/blob.bin" "$E2E_TMP/beta-www/"
bg beta-http ip netns exec beta python3 -m http.server --bind 0.0.0.0 --directory "$E2E_TMP/beta-www" 8080
for ((i = 0; i < 250; i++)); do in_beta ss -Hltn 'sport = :8080' | grep -q . && break; sleep 0.02; done
got=$(curl -sS --max-time 20 "http://127.0.0.1:$FWD_PORT/blob.bin" | sha256sum | cut -d' ' -f1)
[ "$got" = "$WANT_HTTP" ] || { show_log "$E2E_TMP/beta-http.log"; fail "-p 127.0.0.1:$FWD_PORT:beta:8080: sha256 $got, want $WANT_HTTP"; }
ok "-p 127.0.0.1:$FWD_PORT:beta:8080 reaches beta's server (file intact)"

log "check: remove beta's port and add it again while alpha -> gamma goes on"
pf=$E2E_TMP/long.port
bg long-recv timeout -k 5 90 nsenter --net="/proc/$GAMMA_NS/ns/net" python3 "$BLOB" recv --listen 0.0.0.0:0 \
  --port-file "$pf" --io-timeout 20
LRPID=$BG_PID
wait_file "$pf" 10 "$LRPID" || fail "long transfer: receiver did not start"
bg long-send timeout -k 5 90 ip netns exec alpha python3 "$BLOB" send --connect "$G:$(cat "$pf")" \
  --bytes $((64 * 1024 * 1024)) --seed 9 --rate-mbps 16 --io-timeout 20
LSPID=$BG_PID
sleep 1
"$VSWITCH" --control "$CTL" remove beta >"$E2E_TMP/remove.log" 2>&1 || { show_log "$E2E_TMP/remove.log"; fail "remove beta failed"; }
"$VSWITCH" --control "$CTL" ports >"$E2E_TMP/ports.log" 2>&1 || fail "ports failed"
if grep -qw beta "$E2E_TMP/ports.log"; then cat "$E2E_TMP/ports.log" >&2; fail "beta still listed after remove"; fi
can_ping beta "$GATEWAY_IP" && fail "beta still reaches the gateway after its port was removed"
"$VSWITCH" --control "$CTL" add "netns:/run/netns/beta" >"$E2E_TMP/add.log" 2>&1 || { show_log "$E2E_TMP/add.log"; fail "add beta failed"; }
B2=$(addr_of beta)
[ "$B2" = "$B" ] || fail "beta came back with $B2, want its lease $B"
can_ping beta "$A" || fail "beta (added again) cannot ping alpha"
ok "beta removed (no longer listed, cut off) and added again with its lease $B"
for ((i = 0; i < 4500; i++)); do kill -0 "$LSPID" 2>/dev/null || break; sleep 0.02; done
wait "$LSPID" 2>/dev/null || { show_log "$E2E_TMP/long-send.log"; fail "long transfer: sender failed"; }
for ((i = 0; i < 500; i++)); do kill -0 "$LRPID" 2>/dev/null || break; sleep 0.02; done
wait "$LRPID" 2>/dev/null || { show_log "$E2E_TMP/long-recv.log"; fail "long transfer: receiver failed"; }
[ "$(field sha256 "$E2E_TMP/long-send.log")" = "$(field sha256 "$E2E_TMP/long-recv.log")" ] ||
  fail "long transfer alpha -> gamma: sha256 differs across the remove/add"
ok "alpha -> gamma: 64 MiB intact across beta's remove and add"
stop_serve

# ------------------------------------------------------------------ isolate
log "check: --isolate: the gateway and the host yes, the other guests no"
# lwIP: --max-tcp-flows 16, of which one guest may hold half (the libslirp
# engine has no flow limits and refuses the option: README "Engines").
limit_args=()
[ "$ENGINE" = lwip ] && limit_args=(--max-tcp-flows 16)
serve isolated --isolate "${limit_args[@]}"
A=$(addr_of alpha) B=$(addr_of beta) G=$(addr_of gamma)
can_ping alpha "$GATEWAY_IP" || fail "isolated alpha cannot ping the gateway"
can_ping gamma "$GATEWAY_IP" || fail "isolated gamma cannot ping the gateway"
for pair in "alpha $B" "alpha $G" "beta $A" "gamma $A"; do
  # shellcheck disable=SC2086
  can_ping $pair && fail "isolated: ping ${pair% *} -> ${pair#* } went through"
done
fetch_host alpha
fetch_host gamma
got=$(in_alpha dig +short +time=2 +tries=2 beta.internal A) || true
[ -n "$got" ] || fail "isolated: DNS at the gateway does not answer alpha"
ok "isolated: guests reach the gateway, its DNS and the host, not each other"

if [ "$ENGINE" = lwip ]; then
  # alpha tries 12 connections to the host and holds them: it gets its half
  # of 16 (8), the rest are refused at once; beta still connects meanwhile.
  hold='
import socket, sys, time
ok = bad = 0
held = []
for i in range(int(sys.argv[3])):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((sys.argv[1], int(sys.argv[2])))
        held.append(s)
        ok += 1
    except OSError:
        bad += 1
print("established=%d refused=%d" % (ok, bad), flush=True)
time.sleep(float(sys.argv[4]))
'
  in_alpha python3 -c "$hold" "$GATEWAY_IP" "$HTTP_PORT" 12 4 >"$E2E_TMP/alpha-hold.txt" 2>&1 &
  hp=$!
  for ((i = 0; i < 250; i++)); do grep -q established "$E2E_TMP/alpha-hold.txt" && break; sleep 0.02; done
  got_b=$(in_beta python3 -c "$hold" "$GATEWAY_IP" "$HTTP_PORT" 2 0 2>&1)
  wait "$hp" || true
  got_a=$(cat "$E2E_TMP/alpha-hold.txt")
  [ "$got_a" = "established=8 refused=4" ] || fail "alpha with --max-tcp-flows 16: '$got_a', want established=8 refused=4"
  [ "$got_b" = "established=2 refused=0" ] || fail "beta while alpha holds its share: '$got_b', want established=2 refused=0"
  refused=$(python3 "$E2E_TOOLS/ctl_stats.py" "$CTL" guest_share_refused 2>&1)
  [ "$refused" = 4 ] || fail "stats: guest_share_refused '$refused', want 4"
  ok "--max-tcp-flows 16: alpha holds its half (8 connections, 4 refused at once, counted), beta still connects"
fi
stop_serve
pass
