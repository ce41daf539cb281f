#!/usr/bin/env bash
# What happens around a guest's flows must not lose them:
#   - host server down mid-transfer: the guest uploads to a server on the
#     test host's loopback that is killed (SIGKILL) with data unread; the
#     guest's send() or recv() fails with ECONNRESET (an RST) within 5 s,
#     instead of hanging;
#   - SIGHUP under load: slipway serve --config, a kernel guest behind the
#     relay (relay/relay_guest.sh) moving BYTES (32 MiB) each way while
#     slipway gets SIGHUP every 0.2 s with an edited file (a forward added
#     and removed, a DNS name changed): both transfers arrive with equal
#     SHA-256 and the reloads were applied;
#   - a VMM that disconnects and reconnects: for vhost-user and stream, the
#     relay (the VMM) is killed and started again on the same socket; the
#     guest is then served again (the gateway answers, BYTES2 (4 MiB)
#     arrive intact) - several times in a row.
# (An upstream DNS server that is down gives SERVFAIL in under 2 s:
# test_dns_slipway.sh and test_dns_proxy.sh.)
. "$(dirname "$0")/lib.sh"
E2E_TIMEOUT=${E2E_TIMEOUT:-300}
e2e_init "$@"
require_slipway
need_cmd python3 nsenter
. "$E2E_DIR/relay/relay_guest.sh"
BLOB=$E2E_TOOLS/blob.py
BYTES=${RESILIENCE_BYTES:-$((32 << 20))}
BYTES2=$((4 << 20))
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" "$2" | head -n1; }

# ------------------------------------------------ host server down mid-transfer
log "check: the host server dies mid-upload: the guest gets a reset"
cat >"$E2E_TMP/sink.py" <<'PY'
import socket, sys, time, os
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); os.rename(sys.argv[1] + ".tmp", sys.argv[1])
c, _ = s.accept()
n = 0
while n < (4 << 20):
    n += len(c.recv(65536))
open(sys.argv[2], "w").write("read %d\n" % n)
time.sleep(60)   # reads no more; killed here with data unread
PY
bg sink python3 "$E2E_TMP/sink.py" "$E2E_TMP/sink.port" "$E2E_TMP/sink.read"
SINK=$BG_PID
wait_file "$E2E_TMP/sink.port" 10 "$SINK" || fail "sink did not start"
( wait_file "$E2E_TMP/sink.read" 30 && sleep 0.5 && kill -KILL -- "-$SINK" ) &
KILLER=$!
out=$(slipway_run -- python3 -c '
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
buf = b"x" * 65536
sent = 0
try:
    while True:
        c.settimeout(30)
        sent += c.send(buf)
except OSError as e:
    print("error=%s sent=%d" % (type(e).__name__, sent))
' "$GATEWAY_IP" "$(cat "$E2E_TMP/sink.port")" 2>&1) || true
wait "$KILLER"
echo "$out" | grep -q 'error=ConnectionResetError' || fail "the guest did not see a reset: $out"
ok "guest: $out"

# ------------------------------------------------------------ SIGHUP under load
transfer() {  # NAME up|down BYTES
  local name=$1-$2 hmode=recv gmode=send pf="$E2E_TMP/$1-$2.port" n=$3
  [ "$2" = down ] && { hmode=send; gmode=recv; }
  local -a hargs=() gargs=()
  [ "$hmode" = send ] && hargs=(--bytes "$n" --seed 3)
  [ "$gmode" = send ] && gargs=(--bytes "$n" --seed 3)
  bg "$name-host" timeout -k 5 120 python3 "$BLOB" "$hmode" --listen 127.0.0.1:0 --port-file "$pf" --io-timeout 30 \
    "${hargs[@]}"
  local hpid=$BG_PID rc=0
  wait_file "$pf" 10 "$hpid" || fail "$name: host side did not start"
  timeout -k 5 120 nsenter --net="/proc/$RG_NS/ns/net" python3 "$BLOB" "$gmode" --connect "$GATEWAY_IP:$(cat "$pf")" \
    --io-timeout 30 "${gargs[@]}" >"$E2E_TMP/$name-guest.log" 2>&1 || rc=$?
  [ $rc = 0 ] || { show_log "$E2E_TMP/$name-guest.log"; fail "$name: guest side failed (exit $rc)"; }
  local i
  for ((i = 0; i < 500; i++)); do kill -0 "$hpid" 2>/dev/null || break; sleep 0.02; done
  wait "$hpid" 2>/dev/null || { show_log "$E2E_TMP/$name-host.log"; fail "$name: host side failed"; }
  local hs gs want
  hs=$(field sha256 "$E2E_TMP/$name-host.log"); gs=$(field sha256 "$E2E_TMP/$name-guest.log")
  want=$(python3 "$BLOB" gen --bytes "$n" --seed 3 | sed -n 's/^sha256=\([0-9a-f]*\).*/\1/p')
  [ "$hs" = "$gs" ] && [ "$hs" = "$want" ] || fail "$name: sha256 host $hs guest $gs want $want"
  ok "$name: $n bytes intact ($(field MBps "$E2E_TMP/$name-host.log") MB/s)"
}

log "check: SIGHUP every 0.2 s during $BYTES bytes each way drops no flow"
CFG=$E2E_TMP/hup.toml
P1=$(free_port)
write_cfg() {  # FORWARDS NAME-ADDRESS
  cat >"$CFG.tmp" <<TOML
[forwarding]
forwards = [$1]
[dns.names]
"reload.test" = "$2"
TOML
  mv "$CFG.tmp" "$CFG"
}
write_cfg "" 192.0.2.50
RG_SLIPWAY_ARGS="--config $CFG" relay_guest_up hup stream || { show_log "$E2E_TMP/hup-slipway.log"; fail "hup: $RG_ERR"; }
SW=$(cat "/proc/${RG_PIDS[0]}/task/${RG_PIDS[0]}/children" 2>/dev/null); SW=${SW%% *}
[ -n "$SW" ] && [ "$(cat "/proc/$SW/comm")" = slipway ] || fail "cannot find slipway's pid"
(
  for ((k = 0; k < 400; k++)); do
    [ -e "$E2E_TMP/hup.stop" ] && break
    if ((k % 2)); then write_cfg "\"$P1:8080\"" 192.0.2.51; else write_cfg "" 192.0.2.50; fi
    kill -HUP "$SW" 2>/dev/null || break
    sleep 0.2
  done
) &
HUPPER=$!
transfer hup up "$BYTES"
transfer hup down "$BYTES"
touch "$E2E_TMP/hup.stop"; wait "$HUPPER"
hups=$(grep -c 'SIGHUP: re-read' "$E2E_TMP/hup-slipway.log" || true)
[ "${hups:-0}" -ge 5 ] || { show_log "$E2E_TMP/hup-slipway.log"; fail "only ${hups:-0} reloads were applied"; }
kill -0 "$SW" || fail "slipway died under SIGHUP"
relay_guest_down
ok "$hups reloads applied during the transfers"

# ------------------------------------------------------------ VMM reconnects
for transport in vhost-user stream; do
  log "check: $transport: the VMM disconnects and reconnects, and is served again"
  relay_guest_up "re-$transport" "$transport" || { show_log "$E2E_TMP/re-$transport-slipway.log"; fail "$transport: $RG_ERR"; }
  transfer "re-$transport" down "$BYTES2"
  for round in 1 2 3; do
    relay_guest_reconnect || { show_log "$E2E_TMP/re-$transport-slipway.log"; fail "$transport: reconnect $round: $RG_ERR"; }
    transfer "re-$transport-$round" up "$BYTES2"
    transfer "re-$transport-$round" down "$BYTES2"
  done
  relay_guest_down
  ok "$transport: served again after 3 reconnects"
done
pass
