#!/usr/bin/env bash
# Published guest ports through `slipway run`: a static TCP forward (curl from
# the host, bytes hashed), bound to loopback only; a port range; a UDP
# forward; the guest sees the real client address (and the gateway with
# --publish-source gateway); a busy host port is reported, not fatal;
# automatic forwarding of a server started in the guest (within 1 s, loopback
# only, gone after it exits); 1 GiB each way through a forward, SHA-256 equal.
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
  bg "$name" timeout -k 5 120 "$SLIPWAY" run "$@"
  GUEST_PID=$BG_PID
}

# wait_http URL: poll until the URL answers (at most 10 s).
wait_http() {
  local i
  for ((i = 0; i < 100; i++)); do
    curl -sf -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  return 1
}

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
guest remote2 -p "$PEER_HOST_IP:$rp:8001" --publish-source gateway --no-forward-auto -- sh -c "python3 '$T/peer_echo.py' --port 8001 & sleep 100"
for ((i = 0; i < 100; i++)); do ss -Hltn "sport = :$rp" | grep -q . && break; sleep 0.1; done
sleep 0.5
r=$(in_peer timeout 5 bash -c "exec 3<>/dev/tcp/$PEER_HOST_IP/$rp; cat <&3")
case "$r" in peer=10.0.2.2:*) ok "--publish-source gateway: guest sees $r";; *) fail "with --publish-source gateway the guest saw '$r'";; esac
stop_bg "$GUEST_PID"

log "check: a UDP forward round trip"
up=$(free_port udp)
guest udp -p "$up:9000/udp" --no-forward-auto -- sh -c "python3 '$T/udp_echo.py' server --bind 0.0.0.0 --port 9000 & sleep 100"
sleep 1.5
python3 "$T/udp_echo.py" client --connect "127.0.0.1:$up" --sizes 1,1400,8000,60000 --tries 5 \
  >"$E2E_TMP/udpc.log" 2>&1 || { show_log "$E2E_TMP/udpc.log"; show_log "$E2E_TMP/udp.log"; fail "UDP forward round trip failed"; }
ok "UDP datagrams of 1..60000 bytes echoed through the forward"
stop_bg "$GUEST_PID"

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
guest auto -- sh -c "sleep 1; cd '$E2E_TMP/www'; python3 -m http.server $ap >/dev/null 2>&1 & p=\$!; sleep 4; kill \$p; sleep 100"
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
