#!/usr/bin/env bash
# The data-path tests again with the TAP's offloads in each state (the other
# tests run with the default: offload on, MTU 65520, where TCP segments fit
# the MTU and only checksums are offloaded):
#   --mtu 1500              offload on: the guest's kernel and slipway pass
#                           TCP segments of up to 64 KiB both ways (TSO/GSO)
#   --no-offload            plain frames, slipway computes every checksum
#   --no-offload --mtu 1500 plain 1500-byte frames, lwIP segments to the MSS
# Each variant: 1 GiB each way with equal SHA-256 (test_bulk_sha256), and for
# the first two half-close, RST, backpressure and UDP mapping
# (test_tcp_semantics); UDP datagrams of every size with --no-offload
# (test_udp_echo, which sets its own MTUs).
. "$(dirname "$0")/lib.sh"
E2E_TIMEOUT=${E2E_TIMEOUT:-540}
e2e_init "$@"
require_slipway

run_variant() {
  local args=$1; shift
  local t
  for t in "$@"; do
    log "check: $t with '$args'"
    if ! SLIPWAY_RUN_ARGS=$args E2E_NAME=$t bash "$E2E_DIR/$t.sh" >"$E2E_TMP/$t.$RANDOM.log" 2>&1; then
      show_log "$(ls -t "$E2E_TMP/$t".*.log | head -n1)" 40
      fail "$t with '$args'"
    fi
    ok "$t with '$args'"
  done
}

run_variant "--mtu 1500" test_bulk_sha256 test_tcp_semantics
run_variant "--no-offload" test_bulk_sha256 test_tcp_semantics test_udp_echo
run_variant "--no-offload --mtu 1500" test_bulk_sha256
pass "every variant"
