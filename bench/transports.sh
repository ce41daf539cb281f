#!/usr/bin/env bash
# The VM transports side by side: a synthetic frontend (bench/transport_frontend)
# plays the guest on each transport -- vhost-user (memfd shared memory,
# eventfd kicks), stream, dgram, and TAP for reference (AF_PACKET on the TAP
# interface of `slipway run`) -- and blasts ICMP echo requests at the same
# gateway (10.0.2.2, answered by slipway itself), DURATION seconds each, up
# to WINDOW requests in flight. Printed: echo replies received per second
# and the Gbit/s they carry (one direction, frame bytes).
#
# Usage: bench/transports.sh [TRANSPORT...]   vhost-user stream dgram tap (default: all)
# Env:   DURATION=5, SIZE=1514 (frame bytes, 64..1514), WINDOW=64,
#        SLIPWAY, FRONTEND (default: next to SLIPWAY, ../bench/transport_frontend),
#        RESULTS=FILE (also write the table there)
# Runs in a private network namespace (tests/e2e/lib.sh); nothing leaves it.
. "$(dirname "$0")/../tests/e2e/lib.sh"
DURATION=${DURATION:-5}
SIZE=${SIZE:-1514}
WINDOW=${WINDOW:-64}
export E2E_TIMEOUT=${E2E_TIMEOUT:-$((DURATION * 4 * 3 + 120))}
E2E_NAME=bench
e2e_init "$@"
require_slipway
: "${FRONTEND:=$(dirname "$(dirname "$SLIPWAY")")/bench/transport_frontend}"
[ -x "$FRONTEND" ] || fail "frontend not built: $FRONTEND"

transports=("$@")
[ ${#transports[@]} -gt 0 ] || transports=(vhost-user stream dgram tap)
limit=$((DURATION + 20))
declare -A line note

for t in "${transports[@]}"; do
  out=$E2E_TMP/$t.out
  case "$t" in
    vhost-user | stream | dgram)
      sock=$E2E_TMP/$t.sock
      bg "sw-$t" timeout -k 5 "$limit" "$SLIPWAY" serve "--$t" "$sock" --mtu 1500 --log-level warn
      pid=$BG_PID
      for ((i = 0; i < 250; i++)); do [ -S "$sock" ] && break; sleep 0.02; done
      if timeout -k 5 "$limit" "$FRONTEND" "--$t" "$sock" --seconds "$DURATION" --size "$SIZE" \
          --window "$WINDOW" >"$out" 2>&1; then line[$t]=$(cat "$out"); else note[$t]="fail: $(tail -n1 "$out")"; fi
      stop_bg "$pid" ;;
    tap)
      if timeout -k 5 "$limit" "$SLIPWAY" run --mtu 1500 -- "$FRONTEND" --packet eth0 --seconds "$DURATION" \
          --size "$SIZE" --window "$WINDOW" >"$out" 2>&1; then line[$t]=$(grep '^packet ' "$out"); else note[$t]="fail: $(tail -n1 "$out")"; fi ;;
    *) note[$t]="unknown transport" ;;
  esac
done

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
{
  printf 'Transports, ICMP echo to the gateway, %s-byte frames, window %s, %ss each, %s CPUs, %s\n' \
    "$SIZE" "$WINDOW" "$DURATION" "$(nproc)" "$(uname -r)"
  printf '%-12s %14s %10s %12s  %s\n' transport "replies/s" "Gbit/s" "sent/recv" notes
  for t in "${transports[@]}"; do
    if [ -n "${line[$t]:-}" ]; then
      printf '%-12s %14s %10s %12s  %s\n' "$t" "$(field fps "${line[$t]}")" "$(field gbps "${line[$t]}")" \
        "$(field sent "${line[$t]}")/$(field received "${line[$t]}")" ""
    else
      printf '%-12s %14s %10s %12s  %s\n' "$t" - - - "${note[$t]:-}"
    fi
  done
} | tee "${RESULTS:-/dev/null}"
