#!/usr/bin/env bash
# Two namespaces and a QEMU guest on one gateway: `slipway serve --netns
# /run/netns/alpha --netns /run/netns/beta --stream SOCK`. The QEMU guest
# (tests/e2e/vm: Debian kernel, busybox) sends the host name vm1 in DHCP.
# Checked:
#   - three distinct leases, the VM's named vm1 in the control API;
#   - the VM resolves alpha.internal and beta.internal at the gateway's DNS,
#     pings beta and fetches a file from alpha (hashed), and fetches a file
#     from the host's loopback through the gateway (hashed);
#   - alpha resolves vm1.internal, pings the VM and fetches the VM's random
#     file (hashed against the sha256 the VM printed);
#   - the VM goes away (QEMU killed) and a new one with the same MAC gets the
#     same lease, while a transfer between alpha and beta goes on intact.
# /run/netns and /etc/netns are private tmpfs mounts (own mount namespace).
VM_TRANSPORT=stream
. "$(dirname "$0")/vm/vm_test.sh"
: "${E2E_TIMEOUT:=300}"

if [ "${E2E_INNER:-}" != 1 ]; then
  vm_prepare_guest
  VM_ACCEL=$(vm_accel)
  export VM_ACCEL
fi
e2e_init "$@"
require_slipway
need_cmd qemu-system-x86_64 ip nsenter python3 dig curl
[ "$(id -u)" = 0 ] || skip "needs root (ip netns add, mounts over /run/netns)"
VSWITCH=${VSWITCH:-$(dirname "$(dirname "$SLIPWAY")")/vswitch/vswitch}
[ -x "$VSWITCH" ] || fail "vswitch not built: $VSWITCH"
BLOB=$E2E_TOOLS/blob.py
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" "$2" | head -n1; }

mkdir -p /run/netns /etc/netns
mount -t tmpfs swtest /run/netns
mount -t tmpfs swtest /etc/netns
ip netns add alpha
ip netns add beta

mkdir "$E2E_TMP/www" "$E2E_TMP/alpha-www"
make_random_file "$E2E_TMP/www/host.bin" $((2 * 1024 * 1024 + 11))
make_random_file "$E2E_TMP/alpha-www/alpha.bin" $((1024 * 1024 + 5))
WANT_HOST=$(sha256_of "$E2E_TMP/www/host.bin")
WANT_ALPHA=$(sha256_of "$E2E_TMP/alpha-www/alpha.bin")
start_http_server "$E2E_TMP/www"
bg alpha-http ip netns exec alpha python3 "$E2E_TOOLS/http_server.py" --dir "$E2E_TMP/alpha-www" \
  --bind 0.0.0.0 --port-file "$E2E_TMP/alpha-http.port"
wait_file "$E2E_TMP/alpha-http.port" 10 "$BG_PID" || { show_log "$E2E_TMP/alpha-http.log"; fail "alpha's server did not start"; }
ALPHA_PORT=$(cat "$E2E_TMP/alpha-http.port")

SOCK=$E2E_TMP/vm.sock CTL=$E2E_TMP/sw.ctl
bg slipway timeout -k 5 "$E2E_TIMEOUT" "$SLIPWAY" serve --engine "$ENGINE" --netns /run/netns/alpha --netns /run/netns/beta \
  --stream "$SOCK,name=vm" --control "$CTL" --mtu 1500 --log-level info
SW_PID=$BG_PID
for ((i = 0; i < 500; i++)); do [ -S "$SOCK" ] && [ -S "$CTL" ] && break; sleep 0.02; done
[ -S "$CTL" ] || { show_log "$E2E_TMP/slipway.log"; fail "slipway serve did not start"; }
A=$(ip netns exec alpha ip -4 -o addr show dev eth0 | awk '{ sub("/.*", "", $4); print $4; exit }')
B=$(ip netns exec beta ip -4 -o addr show dev eth0 | awk '{ sub("/.*", "", $4); print $4; exit }')
[ -n "$A" ] && [ -n "$B" ] && [ "$A" != "$B" ] || fail "namespace leases: alpha '$A', beta '$B'"

boot() {  # boot N: a QEMU guest on the stream socket; serial log serial.log
  local accel=${VM_ACCEL:-tcg} cpu=max
  [ "$accel" = kvm ] && cpu=host
  bg "qemu$1" qemu-system-x86_64 -machine q35 -accel "$accel" -cpu "$cpu" -smp 2 -m "$VM_MEM" \
    -nographic -no-reboot -monitor none -display none -serial "file:$E2E_TMP/serial.log" \
    -kernel "$VM_GUEST/vmlinuz" -initrd "$VM_GUEST/initramfs.cpio.gz" \
    -append "console=ttyS0 quiet panic=-1 slipway.hostname=vm1 slipway.www=1 slipway.peerping=beta.internal slipway.peer=alpha.internal:$ALPHA_PORT/alpha.bin slipway.name=alpha.internal slipway.http=$HTTP_PORT slipway.big=host.bin slipway.linger=120" \
    -netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$SOCK" -device "virtio-net-pci,netdev=n0,mac=$VM_MAC"
  QEMU_PID=$BG_PID
}

log "check: two namespaces ($A, $B) and a QEMU guest on one gateway (${VM_ACCEL:-tcg})"
t_boot=$SECONDS
boot 1
vm_wait_serial "SLIPWAY-DONE" 150 ||
  { show_log "$E2E_TMP/serial.log" 40; show_log "$E2E_TMP/slipway.log"; fail "the guest did not finish its checks"; }
lease=$(vm_result dhcp)
V=${lease%% *}
[ -n "$V" ] && [ "$V" != "$A" ] && [ "$V" != "$B" ] || fail "the VM's lease $V is not distinct from $A and $B"
ok "VM lease $V ($((SECONDS - t_boot)) s after boot)"
"$VSWITCH" --control "$CTL" --json leases >"$E2E_TMP/leases.json" || fail "vswitch --control leases failed"
python3 - "$E2E_TMP/leases.json" "$V" <<'PY' || { cat "$E2E_TMP/leases.json" >&2; fail "the VM's lease is not named vm1"; }
import json, sys
doc = json.load(open(sys.argv[1]))
leases = doc.get("leases", doc) if isinstance(doc, dict) else doc
assert any(l["address"] == sys.argv[2] and l.get("name") == "vm1" for l in leases)
PY
ok "the control API names the VM's lease vm1 (its DHCP host name)"
dns=$(vm_result dns)
[ "${dns#* }" = "$A" ] || fail "the VM resolved alpha.internal to '${dns#* }', want $A"
r=$(vm_result peerping)
[ "${r#* }" = "$B" ] || fail "the VM pinged beta.internal at '${r#* }', want $B"
ok "the VM resolves alpha.internal and pings beta.internal ($B)"
r=$(vm_result peer)
[ "${r%% *}" = "$WANT_ALPHA" ] || fail "the VM's fetch from alpha: sha256 ${r%% *}, want $WANT_ALPHA"
ok "the VM fetched alpha's file intact"
r=$(vm_result sha256)
[ "${r%% *}" = "$WANT_HOST" ] || fail "the VM's fetch from the host: sha256 ${r%% *}, want $WANT_HOST"
ok "the VM fetched the host's file through the gateway intact"

got=$(ip netns exec alpha dig +short +time=2 +tries=2 vm1.internal A) || true
[ "$got" = "$V" ] || fail "dig vm1.internal in alpha: '$got', want $V"
# shellcheck disable=SC2046 # "busybox ping" is two words
ip netns exec alpha $(ping_cmd) -c 1 -W 2 "$V" >/dev/null 2>&1 || fail "alpha cannot ping the VM"
www=$(vm_result www)
got=$(ip netns exec alpha curl -sS --max-time 30 "http://vm1.internal/rand.bin" | sha256sum | cut -d' ' -f1)
[ "$got" = "$www" ] || fail "alpha's fetch of http://vm1.internal/rand.bin: sha256 $got, want $www (the VM's)"
ok "alpha resolves vm1.internal, pings it and fetches its file intact"

log "check: the VM goes away and comes back with its lease; alpha -> beta goes on"
pf=$E2E_TMP/long.port
bg long-recv timeout -k 5 120 ip netns exec beta python3 "$BLOB" recv --listen 0.0.0.0:0 --port-file "$pf" --io-timeout 30
LRPID=$BG_PID
wait_file "$pf" 10 "$LRPID" || fail "long transfer: receiver did not start"
bg long-send timeout -k 5 120 ip netns exec alpha python3 "$BLOB" send --connect "$B:$(cat "$pf")" \
  --bytes $((96 * 1024 * 1024)) --seed 4 --rate-mbps 2 --io-timeout 30
LSPID=$BG_PID
stop_bg "$QEMU_PID" KILL
mv "$E2E_TMP/serial.log" "$E2E_TMP/serial-1.log"
t_boot=$SECONDS
boot 2
vm_wait_serial "SLIPWAY-RESULT dhcp" 150 ||
  { show_log "$E2E_TMP/serial.log" 40; show_log "$E2E_TMP/slipway.log"; fail "the second guest got no lease"; }
lease=$(vm_result dhcp)
[ "${lease%% *}" = "$V" ] || fail "the VM came back with ${lease%% *}, want its lease $V"
ok "a new VM with the same MAC got the lease $V back ($((SECONDS - t_boot)) s after boot)"
kill -0 "$LSPID" 2>/dev/null || fail "the alpha -> beta transfer ended before the VM came back (make it longer)"
stop_bg "$QEMU_PID" KILL
# The rest of the transfer (paced: at most ~50 s from its start).
for ((i = 0; i < 6000; i++)); do kill -0 "$LSPID" 2>/dev/null || break; sleep 0.02; done
wait "$LSPID" 2>/dev/null || { show_log "$E2E_TMP/long-send.log"; fail "long transfer: sender failed"; }
for ((i = 0; i < 500; i++)); do kill -0 "$LRPID" 2>/dev/null || break; sleep 0.02; done
wait "$LRPID" 2>/dev/null || { show_log "$E2E_TMP/long-recv.log"; fail "long transfer: receiver failed"; }
[ "$(field sha256 "$E2E_TMP/long-send.log")" = "$(field sha256 "$E2E_TMP/long-recv.log")" ] ||
  fail "alpha -> beta: sha256 differs across the VM's departure and return"
ok "alpha -> beta: $(field bytes "$E2E_TMP/long-recv.log") bytes intact across the VM's departure and return"
kill -0 "$SW_PID" 2>/dev/null || { show_log "$E2E_TMP/slipway.log"; fail "slipway died"; }
pass
