#!/usr/bin/env bash
# Automatic forwarding for a VM through portfwd-agent, on the --stream
# transport: the guest (tests/e2e/vm/init with slipway.mode=agent) gets a
# lease, starts portfwd-agent (reporting to 10.0.2.2:7777), serves a file
# with busybox httpd on :8080 and prints SLIPWAY-AGENT-UP; ten seconds later
# it stops httpd and prints SLIPWAY-AGENT-DOWN. `slipway serve` runs with no
# -p rules (automatic forwarding is on by default). From the test host:
#   - http://127.0.0.1:8080/agent.txt answers with the guest's file within
#     3 s of SLIPWAY-AGENT-UP (2 s is the goal; TCG is slow);
#   - the only TCP listeners on the test host are 127.0.0.1:8080 and
#     [::1]:8080 (busybox httpd binds [::], a dual-stack socket);
#   - after SLIPWAY-AGENT-DOWN, nothing listens on 8080 within 3 s.
# Env: as tests/e2e/vm/vm_test.sh (SLIPWAY_CACHE, VM_ACCEL, VM_MEM,
# PORTFWD_AGENT); E2E_TIMEOUT defaults to 90.
: "${E2E_TIMEOUT:=90}"
. "$(dirname "$0")/vm/vm_test.sh"

AGENT_FWD_PORT=8080
AGENT_HOLD=10
AGENT_WANT="auto-forwarded from the guest"

if [ "${E2E_INNER:-}" != 1 ]; then
  require_slipway
  [ -x "$PORTFWD_AGENT" ] ||
    fail "portfwd-agent not found: $PORTFWD_AGENT (build the 'portfwd-agent' target, or set PORTFWD_AGENT)"
  vm_prepare_guest
  VM_ACCEL=$(vm_accel)
  export VM_ACCEL
fi
e2e_init "$@"
require_slipway
need_cmd qemu-system-x86_64 curl ss
t_start=$SECONDS

# Milliseconds since the epoch.
now_ms() { date +%s%3N; }

[ -z "$(ss -Hltn "sport = :$AGENT_FWD_PORT")" ] || fail "port $AGENT_FWD_PORT is already in use on the test host"

sock=$E2E_TMP/slipway.sock
bg slipway timeout -k 5 "$E2E_TIMEOUT" "$SLIPWAY" serve --stream "$sock" --mtu 1500 --log-level info
sw_pid=$BG_PID
for ((i = 0; i < 250; i++)); do [ -S "$sock" ] && break; sleep 0.02; done
[ -S "$sock" ] || { show_log "$E2E_TMP/slipway.log"; fail "slipway did not create $sock"; }

accel=${VM_ACCEL:-tcg} cpu=max
[ "$accel" = kvm ] && cpu=host
log "booting the guest on --stream ($accel, ${VM_MEM} MiB)"
t_boot=$SECONDS
bg qemu qemu-system-x86_64 -machine q35 -accel "$accel" -cpu "$cpu" -smp 2 -m "$VM_MEM" \
  -nographic -no-reboot -monitor none -display none -serial "file:$E2E_TMP/serial.log" \
  -kernel "$VM_GUEST/vmlinuz" -initrd "$VM_GUEST/initramfs.cpio.gz" \
  -append "console=ttyS0 quiet panic=-1 slipway.mode=agent slipway.port=$AGENT_FWD_PORT slipway.hold=$AGENT_HOLD slipway.linger=30" \
  -netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$sock" \
  -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56
QEMU_PID=$BG_PID

diag() { show_log "$E2E_TMP/serial.log" 40; show_log "$E2E_TMP/slipway.log"; }

vm_wait_serial "SLIPWAY-AGENT-UP" 70 ||
  { diag; show_log "$E2E_TMP/qemu.log"; fail "guest did not start its server"; }
t_up=$(now_ms)
lease=$(vm_result dhcp)
ok "DHCP lease: $lease ($((SECONDS - t_boot)) s after boot)"
vm_result agent >/dev/null

# The forward appears on the host's 127.0.0.1:8080.
got=""
while :; do
  got=$(curl -sS --max-time 1 "http://127.0.0.1:$AGENT_FWD_PORT/agent.txt" 2>/dev/null) && [ -n "$got" ] && break
  [ $(($(now_ms) - t_up)) -lt 3000 ] || break
  sleep 0.05
done
dt=$(($(now_ms) - t_up))
[ "$got" = "$AGENT_WANT" ] ||
  { diag; fail "no automatic forward on 127.0.0.1:$AGENT_FWD_PORT ${dt} ms after the guest listened (got '$got')"; }
ok "guest :$AGENT_FWD_PORT forwarded on 127.0.0.1:$AGENT_FWD_PORT ${dt} ms after it listened: '$got'"

listening=$(ss -Hltn | awk '{print $4}' | sort -u | paste -sd' ')
[ "$listening" = "127.0.0.1:$AGENT_FWD_PORT [::1]:$AGENT_FWD_PORT" ] ||
  { diag; fail "TCP listeners on the test host: '$listening', want only 127.0.0.1:$AGENT_FWD_PORT [::1]:$AGENT_FWD_PORT"; }
ok "only listeners on the test host: $listening"

# The guest stops its server: the forward is withdrawn.
vm_wait_serial "SLIPWAY-AGENT-DOWN" $((AGENT_HOLD + 20)) ||
  { diag; fail "guest did not stop its server"; }
t_down=$(now_ms)
while [ -n "$(ss -Hltn "sport = :$AGENT_FWD_PORT")" ]; do
  [ $(($(now_ms) - t_down)) -lt 3000 ] ||
    { diag; fail "127.0.0.1:$AGENT_FWD_PORT still listening 3 s after the guest's server stopped"; }
  sleep 0.05
done
ok "forward withdrawn $(($(now_ms) - t_down)) ms after the guest's server stopped"
if curl -sS --max-time 2 "http://127.0.0.1:$AGENT_FWD_PORT/agent.txt" >/dev/null 2>&1; then
  fail "127.0.0.1:$AGENT_FWD_PORT still answers after the forward was withdrawn"
fi

stop_bg "$QEMU_PID" KILL
kill -0 "$sw_pid" 2>/dev/null || { show_log "$E2E_TMP/slipway.log"; fail "slipway died"; }
pass "automatic forwarding through portfwd-agent in $((SECONDS - t_start)) s ($accel)"
