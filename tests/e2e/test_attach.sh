#!/usr/bin/env bash
# `slipway attach --netns PID|PATH` serves an existing network namespace:
# it creates and configures eth0 there (10.0.2.15/24, default via 10.0.2.2);
# curl from inside that namespace to 10.0.2.2:PORT reaches the test host's
# 127.0.0.1:PORT; SIGTERM (and SIGINT) make slipway exit 0.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd curl nsenter

mkdir "$E2E_TMP/www"
make_random_file "$E2E_TMP/www/blob" 1000003
want=$(sha256_of "$E2E_TMP/www/blob")
start_http_server "$E2E_TMP/www"

# new_target: a namespace with a sleeping process; sets TARGET_PID.
new_target() {
  bg "target$1" unshare --net sleep infinity
  TARGET_PID=$BG_PID
  local i
  for ((i = 0; i < 250; i++)); do
    [ "$(readlink "/proc/$TARGET_PID/ns/net")" != "$(readlink /proc/self/ns/net)" ] && return 0
    sleep 0.02
  done
  fail "target namespace not created"
}
in_target() { nsenter --net="/proc/$TARGET_PID/ns/net" "$@"; }

# wait_eth0 PATTERN: poll `ip addr show eth0` in the target until it matches.
wait_eth0() {
  local i
  for ((i = 0; i < 500; i++)); do
    in_target ip -o addr show dev eth0 2>/dev/null | grep "$1" >/dev/null && return 0
    kill -0 "$ATTACH_PID" 2>/dev/null || return 1
    sleep 0.02
  done
  return 1
}

# attach_and_check NAME SIGNAL NETNS-ARG
attach_and_check() {
  local name=$1 sig=$2 nsarg=$3
  log "[$name] check: slipway attach --netns $nsarg configures eth0"
  # sigdfl.py: SIGINT must not start out ignored (as from a terminal)
  bg "attach-$name" python3 "$E2E_TOOLS/sigdfl.py" "$SLIPWAY" attach --netns "$nsarg"
  ATTACH_PID=$BG_PID
  wait_eth0 "inet $GUEST_IP/24" ||
    { show_log "$E2E_TMP/attach-$name.log"; in_target ip addr >&2 || true; fail "[$name] eth0 with $GUEST_IP/24 did not appear in the target namespace"; }
  in_target ip route show default | grep "default via $GATEWAY_IP" >/dev/null ||
    fail "[$name] no default route via $GATEWAY_IP in the target namespace"
  ok "[$name] eth0 $GUEST_IP/24, default via $GATEWAY_IP"

  log "[$name] check: curl from the target namespace to http://$GATEWAY_IP:$HTTP_PORT/blob"
  timeout 30 nsenter --net="/proc/$TARGET_PID/ns/net" curl -sS --fail --max-time 20 -o "$E2E_TMP/got-$name" \
    "http://$GATEWAY_IP:$HTTP_PORT/blob" 2>"$E2E_TMP/curl-$name.err" ||
    { show_log "$E2E_TMP/curl-$name.err"; show_log "$E2E_TMP/attach-$name.log"; fail "[$name] curl failed"; }
  [ "$(sha256_of "$E2E_TMP/got-$name")" = "$want" ] || fail "[$name] downloaded file differs"
  ok "[$name] file received intact"

  log "[$name] check: SIG$sig makes slipway attach exit 0"
  kill "-$sig" "$ATTACH_PID"
  local i rc
  for ((i = 0; i < 250; i++)); do kill -0 "$ATTACH_PID" 2>/dev/null || break; sleep 0.02; done
  kill -0 "$ATTACH_PID" 2>/dev/null && { show_log "$E2E_TMP/attach-$name.log"; fail "[$name] slipway still running 5 s after SIG$sig"; }
  rc=0; wait "$ATTACH_PID" || rc=$?
  [ $rc = 0 ] || { show_log "$E2E_TMP/attach-$name.log"; fail "[$name] slipway attach exited $rc after SIG$sig, want 0"; }
  ok "[$name] exited 0 after SIG$sig"
}

new_target 1
attach_and_check pid TERM "$TARGET_PID"
new_target 2
attach_and_check path INT "/proc/$TARGET_PID/ns/net"

log "check: attach --no-configure creates eth0 without an IPv4 address"
new_target 3
bg attach-noconf python3 "$E2E_TOOLS/sigdfl.py" "$SLIPWAY" attach --no-configure --netns "$TARGET_PID"
ATTACH_PID=$BG_PID
wait_eth0 "eth0" || { show_log "$E2E_TMP/attach-noconf.log"; fail "eth0 did not appear with --no-configure"; }
sleep 0.2
if in_target ip -o -4 addr show dev eth0 | grep inet >/dev/null; then
  fail "eth0 got an IPv4 address under --no-configure"
fi
ok "eth0 present, no IPv4 address"
kill -TERM "$ATTACH_PID"; rc=0; wait "$ATTACH_PID" || rc=$?
[ $rc = 0 ] || { show_log "$E2E_TMP/attach-noconf.log"; fail "attach --no-configure exited $rc after SIGTERM"; }
pass
