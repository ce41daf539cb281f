#!/usr/bin/env bash
# UDP relay: a UDP echo server on the test host's 127.0.0.1:PORT; the guest
# sends datagrams of 1, 1400, 8000 and 60000 bytes to 10.0.2.2:PORT and gets
# identical ones back (also at --mtu 1500, where the big ones are fragmented).
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway

pf=$E2E_TMP/udp.port
bg udp python3 "$E2E_TOOLS/udp_echo.py" server --bind 127.0.0.1 --port-file "$pf"
wait_file "$pf" 10 "$BG_PID" || { show_log "$E2E_TMP/udp.log"; fail "UDP echo server did not start"; }
port=$(cat "$pf")
wait_listen "$port" udp || fail "UDP echo server not bound"
log "UDP echo server on 127.0.0.1:$port"

for mtu in "$DEFAULT_MTU" 1500; do
  log "check: guest (mtu $mtu) -> $GATEWAY_IP:$port datagrams of 1, 1400, 8000, 60000 bytes come back identical"
  if ! slipway_run --mtu "$mtu" -- python3 "$E2E_TOOLS/udp_echo.py" client --connect "$GATEWAY_IP:$port" \
      --sizes 1,1400,8000,60000 --timeout 2 --tries 3 >"$E2E_TMP/client.log" 2>&1; then
    show_log "$E2E_TMP/client.log"; show_log "$E2E_TMP/udp.log"
    fail "UDP echo through the gateway failed at mtu $mtu"
  fi
  sed "s/^/[$E2E_NAME]   /" "$E2E_TMP/client.log"
  ok "all datagrams echoed intact at mtu $mtu"
done
pass
