#!/usr/bin/env bash
# The sandbox after set-up (on by default): /proc/PID/status of a running
# slipway shows "Seccomp: 2" (a filter), "NoNewPrivs: 1" and no capability
# beyond CAP_NET_BIND_SERVICE and CAP_NET_RAW (CapEff, CapBnd), for
# `slipway run` and `slipway serve`; with --no-sandbox none of that; and a
# sandboxed `run` still serves its guest (curl through the gateway). That
# the whole e2e suite passes sandboxed is the rest of the proof (the
# allow-list covers everything slipway does once set up).
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd curl

# check_status PID WANT_SECCOMP: waits (5 s) for the status to show it.
check_status() {
  local pid=$1 want=$2 i s
  for ((i = 0; i < 250; i++)); do
    s=$(grep '^Seccomp:' "/proc/$pid/status" 2>/dev/null | awk '{print $2}')
    [ "$s" = "$want" ] && break
    sleep 0.02
  done
  local st; st=$(cat "/proc/$pid/status")
  log "  $(grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd):' <<<"$st" | tr '\n' ' ')"
  [ "$(awk '/^Seccomp:/ {print $2}' <<<"$st")" = "$want" ] || fail "pid $pid: Seccomp is not $want"
  if [ "$want" = 2 ]; then
    [ "$(awk '/^NoNewPrivs:/ {print $2}' <<<"$st")" = 1 ] || fail "pid $pid: NoNewPrivs is not 1"
    local k v
    for k in CapEff CapBnd CapPrm CapInh; do
      v=$(awk -v k="$k:" '$1 == k {print $2}' <<<"$st")
      (( (16#$v & ~16#2400) == 0 )) || fail "pid $pid: $k $v holds more than CAP_NET_BIND_SERVICE and CAP_NET_RAW"
    done
  fi
}

log "check: slipway serve --stream is sandboxed once listening"
bg serve "$SLIPWAY" serve --stream "$E2E_TMP/s.sock"
SERVE=$BG_PID
for ((i = 0; i < 250; i++)); do [ -S "$E2E_TMP/s.sock" ] && break; sleep 0.02; done
check_status "$SERVE" 2
stop_bg "$SERVE"
ok "serve: Seccomp 2, NoNewPrivs 1, capabilities dropped"

log "check: --no-sandbox leaves the process as it was"
bg serve2 "$SLIPWAY" serve --no-sandbox --stream "$E2E_TMP/s2.sock"
for ((i = 0; i < 250; i++)); do [ -S "$E2E_TMP/s2.sock" ] && break; sleep 0.02; done
sleep 0.3
check_status "$BG_PID" 0
stop_bg "$BG_PID"
ok "serve --no-sandbox: Seccomp 0"

log "check: slipway run is sandboxed and serves its guest"
mkdir "$E2E_TMP/www"; echo sandboxed-ok >"$E2E_TMP/www/x"
start_http_server "$E2E_TMP/www"
bg run "$SLIPWAY" run -- sh -c "curl -sS --max-time 10 http://$GATEWAY_IP:$HTTP_PORT/x >'$E2E_TMP/got'; sleep 30"
RUN=$BG_PID
check_status "$RUN" 2
wait_file "$E2E_TMP/got" 10 "$RUN" || { show_log "$E2E_TMP/run.log"; fail "the sandboxed run's guest got nothing"; }
[ "$(cat "$E2E_TMP/got")" = sandboxed-ok ] || fail "the guest got: $(cat "$E2E_TMP/got")"
stop_bg "$RUN"
ok "run: sandboxed, and the guest fetched a page through it"
pass
