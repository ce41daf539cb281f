#!/usr/bin/env bash
# 1 GiB guest->host and 1 GiB host->guest over TCP through the gateway
# 10.0.2.2 (= test host's 127.0.0.1): the sha256 computed by the sender and by
# the receiver must be equal (and equal to the expected digest of the
# deterministic stream); each direction must finish within BULK_LIMIT seconds.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd python3

BYTES=${BULK_BYTES:-$((1024 * 1024 * 1024))}
LIMIT=${BULK_LIMIT:-120}
BLOB=$E2E_TOOLS/blob.py

field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" "$2" | head -n1; }

expected=$(python3 "$BLOB" gen --bytes "$BYTES" --seed 7 | sed -n 's/^sha256=\([0-9a-f]*\).*/\1/p')
log "stream of $BYTES bytes, expected sha256 $expected"

# run_dir NAME HOST_MODE GUEST_MODE
run_dir() {
  local name=$1 hmode=$2 gmode=$3 pf="$E2E_TMP/$1.port"
  local -a hargs=() gargs=()
  [ "$hmode" = send ] && hargs=(--bytes "$BYTES" --seed 7)
  [ "$gmode" = send ] && gargs=(--bytes "$BYTES" --seed 7)
  bg "$name-host" python3 "$BLOB" "$hmode" --listen 127.0.0.1:0 --port-file "$pf" --io-timeout 30 "${hargs[@]}"
  local hpid=$BG_PID
  wait_file "$pf" 10 "$hpid" || { show_log "$E2E_TMP/$name-host.log"; fail "$name: host side did not start"; }
  local port; port=$(cat "$pf")
  wait_listen "$port" || fail "$name: host side not listening"
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  SW_TIMEOUT=$((LIMIT + 10)) slipway_run -- python3 "$BLOB" "$gmode" --connect "$GATEWAY_IP:$port" \
    --io-timeout 30 "${gargs[@]}" >"$E2E_TMP/$name-guest.log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  if [ $rc != 0 ]; then
    show_log "$E2E_TMP/$name-guest.log"; show_log "$E2E_TMP/$name-host.log"
    fail "$name: guest side failed (exit $rc$([ $rc = 124 ] && echo ', timed out'))"
  fi
  local i
  for ((i = 0; i < 500; i++)); do kill -0 "$hpid" 2>/dev/null || break; sleep 0.02; done
  kill -0 "$hpid" 2>/dev/null && { show_log "$E2E_TMP/$name-host.log"; fail "$name: host side did not finish"; }
  wait "$hpid" 2>/dev/null || { show_log "$E2E_TMP/$name-host.log"; fail "$name: host side failed"; }
  local hs gs hb gb secs
  hs=$(field sha256 "$E2E_TMP/$name-host.log"); gs=$(field sha256 "$E2E_TMP/$name-guest.log")
  hb=$(field bytes "$E2E_TMP/$name-host.log"); gb=$(field bytes "$E2E_TMP/$name-guest.log")
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  log "  host:  $(cat "$E2E_TMP/$name-host.log")"
  log "  guest: $(cat "$E2E_TMP/$name-guest.log")"
  [ "$hb" = "$BYTES" ] && [ "$gb" = "$BYTES" ] || fail "$name: byte counts differ: host $hb, guest $gb, want $BYTES"
  [ "$hs" = "$gs" ] || fail "$name: sha256 differs: host $hs, guest $gs"
  [ "$hs" = "$expected" ] || fail "$name: sha256 $hs is not the expected $expected"
  awk -v s="$secs" -v l="$LIMIT" 'BEGIN { exit !(s < l) }' || fail "$name: took ${secs}s, limit ${LIMIT}s"
  ok "$name: $BYTES bytes intact in ${secs}s (incl. slipway start) = $(awk -v b="$BYTES" -v s="$secs" 'BEGIN { printf "%.1f", b / s / 1e6 }') MB/s"
}

log "check: guest -> host (guest sends to $GATEWAY_IP, host 127.0.0.1 receives)"
run_dir upload recv send
log "check: host -> guest (host 127.0.0.1 sends, guest receives from $GATEWAY_IP)"
run_dir download send recv
pass
