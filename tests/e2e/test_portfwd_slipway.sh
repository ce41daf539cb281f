#!/usr/bin/env bash
# Published guest ports through `slipway run`: a static TCP forward (curl from
# the host, bytes hashed), bound to loopback only; a port range; a UDP
# forward; the guest sees the real client address (and the gateway with
# --publish-source gateway); a busy host port is reported, not fatal;
# automatic forwarding of a server started in the guest (within 1 s, loopback
# only, gone after it exits); 1 GiB each way through a forward, SHA-256 equal.
# IPv6 on the host side: static TCP and UDP forwards on [::1] to the guest's
# IPv4 sockets (the guest sees the gateway as the client), and a guest server
# on [::] forwarded automatically on both 127.0.0.1 and [::1].
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd python3 curl ss

T=$E2E_TOOLS
mkdir -p "$E2E_TMP/www"
make_random_file "$E2E_TMP/www/blob.bin" 3000000
want=$(sha256_of "$E2E_TMP/www/blob.bin")

# A guest running servers in the background, kept alive by sleep.
# guest NAME SLIPWAY-ARGS... -- SCRIPT
guest() {
  local name=$1; shift
  bg "$name" timeout -k 5 120 "$SLIPWAY" run --engine "$ENGINE" "$@"
  GUEST_PID=$BG_PID
}

# wait_http URL: poll until the URL answers (at most 10 s). -g: [::1] in a
# URL is an address, not a glob.
wait_http() {
  local i
  for ((i = 0; i < 100; i++)); do
    curl -gsf -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  return 1
}

# The test host's loopback needs ::1 for the IPv6 cases. A private namespace
# normally has it; if IPv6 is disabled there, enable it (this namespace
# only). A kernel without IPv6 at all skips just those cases, loudly.
HAVE_V6=1
if ! ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/128'; then
  if [ -d /proc/sys/net/ipv6 ]; then
    sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.lo.disable_ipv6=0 ||
      fail "cannot enable IPv6 in the test namespace"
    ip link set lo down && ip link set lo up
    for ((i = 0; i < 100; i++)); do
      ip -6 addr show dev lo | grep -q 'inet6 ::1/128' && break
      sleep 0.05
    done
    ip -6 addr show dev lo | grep -q 'inet6 ::1/128' || fail "no ::1 on lo after enabling IPv6"
  else
    HAVE_V6=0
    log "SKIPPING the IPv6 cases: this kernel has no IPv6 (/proc/sys/net/ipv6 is missing)"
  fi
fi

log "check: a static TCP forward, bound to 127.0.0.1 only"
hp=$(free_port); hp2=$(free_port)
guest static -p "$hp:8000" -p "127.0.0.1:$hp2-$((hp2 + 1)):8001-8002" --no-forward-auto -- sh -c "
  cd '$E2E_TMP/www' && python3 -m http.server 8000 >/dev/null 2>&1 &
  python3 '$T/peer_echo.py' --port 8001 & python3 '$T/peer_echo.py' --port 8002 &
  sleep 100"
wait_http "http://127.0.0.1:$hp/blob.bin" || { show_log "$E2E_TMP/static.log"; fail "forward $hp -> 8000 never answered"; }
got=$(curl -sS --max-time 10 "http://127.0.0.1:$hp/blob.bin" | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "file through the forward: sha256 $got, want $want"
ok "curl 127.0.0.1:$hp -> guest:8000, file intact"
binds=$(ss -Hltn "sport = :$hp" | awk '{print $4}')
[ "$binds" = "127.0.0.1:$hp" ] || fail "host listener bound to '$binds', want 127.0.0.1:$hp only"
ok "host listener bound to 127.0.0.1 only"

log "check: a port range, and the client address the guest sees"
for i in 0 1; do
  r=$(timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$((hp2 + i)); cat <&3")
  case "$r" in peer=10.0.2.2:*) ok "range port $((hp2 + i)) -> guest $((8001 + i)): guest sees $r (loopback client as the gateway)";;
    *) fail "range port $((hp2 + i)): got '$r'";; esac
done
stop_bg "$GUEST_PID"

log "check: a remote client's real address reaches the guest"
make_peer_ns
rp=$(free_port)
guest remote -p "$PEER_HOST_IP:$rp:8001" --no-forward-auto -- sh -c "python3 '$T/peer_echo.py' --port 8001 & sleep 100"
for ((i = 0; i < 100; i++)); do ss -Hltn "sport = :$rp" | grep -q . && break; sleep 0.1; done
sleep 0.5
r=$(in_peer timeout 5 bash -c "exec 3<>/dev/tcp/$PEER_HOST_IP/$rp; cat <&3")
case "$r" in peer=$PEER_IP:*) ok "guest sees the client $r";; *) fail "guest saw '$r', want $PEER_IP";; esac
stop_bg "$GUEST_PID"
if [ "$ENGINE" = slirp ]; then
  # README "Engines": libslirp always shows the client; the option is refused.
  out=$(timeout 20 "$SLIPWAY" run --engine slirp -p "$PEER_HOST_IP:$rp:8001" --publish-source gateway -- true 2>&1) &&
    fail "--publish-source gateway was accepted with --engine slirp"
  case "$out" in *--publish-source*slirp*) ok "--publish-source gateway refused with --engine slirp: $out";;
    *) fail "the refusal does not name the option and the engine: $out";; esac
else
guest remote2 -p "$PEER_HOST_IP:$rp:8001" --publish-source gateway --no-forward-auto -- sh -c "python3 '$T/peer_echo.py' --port 8001 & sleep 100"
for ((i = 0; i < 100; i++)); do ss -Hltn "sport = :$rp" | grep -q . && break; sleep 0.1; done
sleep 0.5
r=$(in_peer timeout 5 bash -c "exec 3<>/dev/tcp/$PEER_HOST_IP/$rp; cat <&3")
case "$r" in peer=10.0.2.2:*) ok "--publish-source gateway: guest sees $r";; *) fail "with --publish-source gateway the guest saw '$r'";; esac
stop_bg "$GUEST_PID"
fi

log "check: a UDP forward round trip"
up=$(free_port udp)
guest udp -p "$up:9000/udp" --no-forward-auto -- sh -c "python3 '$T/udp_echo.py' server --bind 0.0.0.0 --port 9000 & sleep 100"
sleep 1.5
python3 "$T/udp_echo.py" client --connect "127.0.0.1:$up" --sizes 1,1400,8000,60000 --tries 5 \
  >"$E2E_TMP/udpc.log" 2>&1 || { show_log "$E2E_TMP/udpc.log"; show_log "$E2E_TMP/udp.log"; fail "UDP forward round trip failed"; }
ok "UDP datagrams of 1..60000 bytes echoed through the forward"
stop_bg "$GUEST_PID"

if [ "$HAVE_V6" = 1 ] && [ "$ENGINE" = slirp ]; then
  # README "Engines": libslirp cannot forward an IPv6 client to the IPv4 guest.
  log "check: a forward on [::1] is refused with --engine slirp"
  out=$(timeout 20 "$SLIPWAY" run --engine slirp -p "[::1]:$(free_port):8000" -- true 2>&1) &&
    fail "a [::1] forward was accepted with --engine slirp"
  case "$out" in *--publish*IPv6*slirp*) ok "refused: $out";; *) fail "the refusal does not say why: $out";; esac
elif [ "$HAVE_V6" = 1 ]; then
  log "check: static TCP forwards on [::1] to the guest's IPv4 sockets"
  hp6=$(free_port); pp6=$(free_port)
  guest static6 -p "[::1]:$hp6:8000" -p "[::1]:$pp6:8001" --no-forward-auto -- sh -c "
    cd '$E2E_TMP/www' && python3 -m http.server --bind 0.0.0.0 8000 >/dev/null 2>&1 &
    python3 '$T/peer_echo.py' --port 8001 & sleep 100"
  wait_http "http://[::1]:$hp6/blob.bin" || { show_log "$E2E_TMP/static6.log"; fail "forward [::1]:$hp6 -> 8000 never answered"; }
  got=$(curl -gsS --max-time 10 "http://[::1]:$hp6/blob.bin" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "file through the [::1] forward: sha256 $got, want $want"
  ok "curl -g http://[::1]:$hp6/blob.bin -> guest 0.0.0.0:8000, file intact"
  binds=$(ss -Hltn "sport = :$hp6" | awk '{print $4}')
  [ "$binds" = "[::1]:$hp6" ] || fail "host listener bound to '$binds', want [::1]:$hp6 only"
  ok "host listener bound to [::1] only"
  r=$(timeout 5 bash -c "exec 3<>/dev/tcp/::1/$pp6; cat <&3")
  case "$r" in peer=10.0.2.2:*) ok "a client on ::1 appears to the IPv4 guest as the gateway: $r";;
    *) fail "[::1]:$pp6 -> guest 8001: got '$r', want peer=10.0.2.2:*";; esac
  stop_bg "$GUEST_PID"

  log "check: a UDP forward on [::1]"
  up6=$(free_port udp)
  guest udp6 -p "[::1]:$up6:9000/udp" --no-forward-auto -- sh -c "python3 '$T/udp_echo.py' server --bind 0.0.0.0 --port 9000 & sleep 100"
  wait_listen "$up6" udp || { show_log "$E2E_TMP/udp6.log"; fail "no host listener on [::1]:$up6/udp"; }
  binds=$(ss -Hlun "sport = :$up6" | awk '{print $4}')
  [ "$binds" = "[::1]:$up6" ] || fail "UDP host listener bound to '$binds', want [::1]:$up6 only"
  sleep 1
  # Datagrams from [::1] through the forward and back, byte-identical.
  python3 - "$up6" >"$E2E_TMP/udpc6.log" 2>&1 <<'EOF' || { show_log "$E2E_TMP/udpc6.log"; show_log "$E2E_TMP/udp6.log"; fail "UDP round trip through [::1] failed"; }
import os, socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.connect(("::1", int(sys.argv[1])))
for size in (1, 1400, 8000, 60000):
    data = os.urandom(size)
    for attempt in range(5):
        s.send(data)
        s.settimeout(2)
        try:
            got = s.recv(65535)
        except (socket.timeout, ConnectionRefusedError):
            continue
        if got == data:
            print(f"size {size}: echoed intact (attempt {attempt + 1})")
            break
    else:
        sys.exit(f"size {size}: no intact echo")
EOF
  grep -q "to 10.0.2.2:" "$E2E_TMP/udp6.log" || { show_log "$E2E_TMP/udp6.log"; fail "the guest did not see the gateway as the UDP client"; }
  ok "UDP datagrams of 1..60000 bytes from [::1] echoed through the forward (guest saw 10.0.2.2)"
  stop_bg "$GUEST_PID"
fi

log "check: a busy host port is reported, not fatal"
bp=$(free_port)
bg busy python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',$bp)); s.listen(); time.sleep(60)"
BUSY=$BG_PID
wait_listen "$bp" || fail "busy-port holder did not start"
rc=0
slipway_run -p "$bp:80" --no-forward-auto -- sh -c 'exit 3' >"$E2E_TMP/busy.out" 2>&1 || rc=$?
[ $rc = 3 ] || { cat "$E2E_TMP/busy.out"; fail "slipway with a busy published port exited $rc, want the command's 3"; }
grep -q "cannot publish 127.0.0.1:$bp:80/tcp: .*in use" "$E2E_TMP/busy.out" || { cat "$E2E_TMP/busy.out"; fail "no 'address in use' report"; }
ok "busy port reported: $(grep -o 'cannot publish.*' "$E2E_TMP/busy.out")"
stop_bg "$BUSY"

log "check: automatic forwarding follows the guest's listeners"
ap=$(free_port)
guest auto -- sh -c "sleep 1; cd '$E2E_TMP/www'; python3 -m http.server --bind 0.0.0.0 $ap >/dev/null 2>&1 & p=\$!; sleep 4; kill \$p; sleep 100"
# The server starts about 1 s after slipway; it must be reachable within 1 s of listening.
t0=$(date +%s.%N)
for ((i = 0; i < 60; i++)); do curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$ap/blob.bin" && break; sleep 0.05; done
t1=$(date +%s.%N)
got=$(curl -sS --max-time 5 "http://127.0.0.1:$ap/blob.bin" | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || { show_log "$E2E_TMP/auto.log"; fail "automatic forward of $ap did not serve the file"; }
ok "server in the guest reachable on host 127.0.0.1:$ap (after $(printf %.2f "$(echo "$t1 - $t0" | bc)") s of polling)"
binds=$(ss -Hltn "sport = :$ap" | awk '{print $4}')
[ "$binds" = "127.0.0.1:$ap" ] || fail "automatic listener bound to '$binds', want 127.0.0.1 only"
ok "automatic listener bound to 127.0.0.1 only"
for ((i = 0; i < 100; i++)); do [ -z "$(ss -Hltn "sport = :$ap")" ] && break; sleep 0.05; done
sleep 4
[ -z "$(ss -Hltn "sport = :$ap")" ] || fail "automatic forward still listening after the guest server exited"
curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$ap/" && fail "port $ap still answers"
ok "forward withdrawn after the guest server exited"
stop_bg "$GUEST_PID"

if [ "$HAVE_V6" = 1 ]; then
  log "check: automatic forwarding of a guest server on [::] (host 127.0.0.1 and [::1])"
  ap6=$(free_port)
  guest auto6 -- sh -c "sleep 1; cd '$E2E_TMP/www'; python3 -m http.server --bind :: $ap6 >/dev/null 2>&1 & sleep 100"
  urls=("http://127.0.0.1:$ap6/blob.bin" "http://[::1]:$ap6/blob.bin") want_binds="127.0.0.1:$ap6 [::1]:$ap6 "
  # README "Engines": on slirp, IPv4 host addresses only.
  [ "$ENGINE" = slirp ] && urls=("http://127.0.0.1:$ap6/blob.bin") want_binds="127.0.0.1:$ap6 "
  for url in "${urls[@]}"; do
    wait_http "$url" || { show_log "$E2E_TMP/auto6.log"; fail "automatic forward: $url never answered"; }
    got=$(curl -gsS --max-time 5 "$url" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$want" ] || fail "automatic forward: $url: sha256 $got, want $want"
    ok "guest [::]:$ap6 reachable at $url, file intact"
  done
  binds=$(ss -Hltn "sport = :$ap6" | awk '{print $4}' | sort | tr '\n' ' ')
  [ "$binds" = "$want_binds" ] || fail "automatic listeners bound to '$binds', want $want_binds only"
  ok "automatic listeners bound to $want_binds only"
  stop_bg "$GUEST_PID"
fi

log "check: 1 GiB each way through a forward, SHA-256 equal"
BYTES=${BULK_BYTES:-$((1024 * 1024 * 1024))}
expected=$(python3 "$T/blob.py" gen --bytes "$BYTES" --seed 11 | sed -n 's/^sha256=\([0-9a-f]*\).*/\1/p')
fp=$(free_port)
guest bulk -p "$fp:7000" --no-forward-auto -- sh -c "
  python3 '$T/blob.py' send --listen 0.0.0.0:7000 --bytes $BYTES --seed 11 --io-timeout 60 > '$E2E_TMP/g-send.txt' &&
  python3 '$T/blob.py' recv --listen 0.0.0.0:7000 --io-timeout 60 > '$E2E_TMP/g-recv.txt'"
sleep 1.5
python3 "$T/blob.py" recv --connect "127.0.0.1:$fp" --io-timeout 60 >"$E2E_TMP/h-recv.txt" || fail "download through the forward failed"
grep -q "sha256=$expected bytes=$BYTES" "$E2E_TMP/h-recv.txt" || fail "download: $(cat "$E2E_TMP/h-recv.txt"), want sha256=$expected"
ok "host <- guest: $(cat "$E2E_TMP/h-recv.txt")"
sleep 0.5
python3 "$T/blob.py" send --connect "127.0.0.1:$fp" --bytes "$BYTES" --seed 11 --io-timeout 60 >"$E2E_TMP/h-send.txt" || fail "upload through the forward failed"
wait "$GUEST_PID" || true
grep -q "sha256=$expected bytes=$BYTES" "$E2E_TMP/g-recv.txt" || fail "upload: guest got $(cat "$E2E_TMP/g-recv.txt"), want sha256=$expected"
ok "host -> guest: $(cat "$E2E_TMP/g-recv.txt")"
pass
