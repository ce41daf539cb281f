#!/usr/bin/env bash
# Network boot from slipway: a QEMU guest with no disk and no -kernel boots
# iPXE from Debian's ipxe-qemu ROM on its virtio-net NIC (on slipway's
# --stream transport). slipway serve --tftp DIR --boot-file boot.ipxe:
#   - iPXE's DHCP gets the boot file and next server from the gateway and
#     fetches boot.ipxe over TFTP;
#   - the script fetches the VM tests' kernel and an initramfs over TFTP
#     (tftp://10.0.2.2/...) and boots them;
#   - the initramfs served is the VM tests' one with a second cpio archive
#     appended, made for this run: a random token and an /init that prints
#     it and the kernel command line's slipway.netboot= (written only in
#     boot.ipxe, also random) to the console, then runs the usual init
#     (DHCP lease, ping to the gateway).
# Seeing both tokens on the serial console proves the guest runs the
# kernel command line and the initramfs it fetched from slipway. The
# TFTP counters (control API `stats`) must show the three transfers
# completed. Runs on both engines (ctest: test_vm_netboot and
# test_vm_netboot_slirp).
: "${E2E_TIMEOUT:=240}"
. "$(dirname "$0")/vm/vm_test.sh"
if [ "${E2E_INNER:-}" != 1 ]; then
  vm_prepare_guest
  VM_ACCEL=$(vm_accel)
  export VM_ACCEL
fi
e2e_init "$@"
require_slipway
need_cmd qemu-system-x86_64 cpio gzip python3
: "${IPXE_ROM:=/usr/lib/ipxe/qemu/efi-virtio.rom}"
[ -r "$IPXE_ROM" ] || IPXE_ROM=/usr/lib/ipxe/qemu/pxe-virtio.rom
[ -r "$IPXE_ROM" ] || skip "no iPXE ROM for virtio-net (the ipxe-qemu package: scripts/setup.sh)"

dir=$E2E_TMP/tftp
mkdir -p "$dir" "$E2E_TMP/overlay/bin"
token=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
cmdtoken=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
cp "$VM_GUEST/vmlinuz" "$dir/vmlinuz"
# The appended archive: its /init replaces the first archive's (the kernel
# unpacks them in order); the usual init is kept as /init.tests.
cp "$E2E_DIR/vm/init" "$E2E_TMP/overlay/init.tests"
echo "$token" >"$E2E_TMP/overlay/netboot-token"
cat >"$E2E_TMP/overlay/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox echo "SLIPWAY-NETBOOT initrd=$(/bin/busybox cat /netboot-token) $(/bin/busybox tr ' ' '\n' </proc/cmdline | /bin/busybox grep '^slipway.netboot=')" >/dev/console
/bin/busybox umount /proc
exec /init.tests
EOF
chmod 755 "$E2E_TMP/overlay/init" "$E2E_TMP/overlay/init.tests"
{
  cat "$VM_GUEST/initramfs.cpio.gz"
  (cd "$E2E_TMP/overlay" && find . -mindepth 1 | cpio -o -H newc --quiet | gzip -1)
} >"$dir/initrd.gz"
cat >"$dir/boot.ipxe" <<EOF
#!ipxe
kernel tftp://\${next-server}/vmlinuz console=ttyS0 quiet panic=-1 slipway.linger=1 slipway.netboot=$cmdtoken
initrd tftp://\${next-server}/initrd.gz
boot
EOF
size=$(( $(stat -c %s "$dir/vmlinuz") + $(stat -c %s "$dir/initrd.gz") ))

sock=$E2E_TMP/slipway.sock
ctl=$E2E_TMP/control.sock
bg slipway timeout -k 5 "$E2E_TIMEOUT" "$SLIPWAY" serve --engine "$ENGINE" --stream "$sock" --mtu 1500 \
  --tftp "$dir" --boot-file boot.ipxe --restrict --control "$ctl" --log-level info
sw_pid=$BG_PID
for ((i = 0; i < 250; i++)); do [ -S "$sock" ] && break; sleep 0.02; done
[ -S "$sock" ] || { show_log "$E2E_TMP/slipway.log"; fail "slipway did not create $sock"; }

accel=${VM_ACCEL:-tcg}
cpu=max
[ "$accel" = kvm ] && cpu=host
log "network-booting a diskless guest with $(basename "$IPXE_ROM") ($accel, engine $ENGINE)"
t_boot=$(date +%s%N)
bg qemu qemu-system-x86_64 -machine pc -accel "$accel" -cpu "$cpu" -m 384 \
  -nographic -no-reboot -monitor none -display none -serial "file:$E2E_TMP/serial.log" \
  -netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$sock" \
  -device "virtio-net-pci,netdev=n0,mac=$VM_MAC,romfile=$IPXE_ROM,bootindex=1,disable-legacy=on"
QEMU_PID=$BG_PID

# Debian's ROM (ipxe-qemu 1.0.0+git-20190125) names the modern virtio-net
# device (1af4:1041) only, which SeaBIOS matches against the NIC: hence
# disable-legacy=on (a transitional NIC is 1af4:1000 and its ROM is not run).
# A boot that goes wrong ends early: iPXE or SeaBIOS says so.
for ((i = 0; i < 1200; i++)); do
  grep -aq -e "SLIPWAY-NETBOOT" -e "No bootable device" -e "Nothing to boot" -e "Could not boot" "$E2E_TMP/serial.log" 2>/dev/null && break
  kill -0 "$QEMU_PID" 2>/dev/null || break
  sleep 0.1
done
grep -aq "SLIPWAY-NETBOOT" "$E2E_TMP/serial.log" ||
  { show_log "$E2E_TMP/serial.log" 40; show_log "$E2E_TMP/qemu.log"; show_log "$E2E_TMP/slipway.log"; fail "the guest did not boot from the network"; }
t_kernel=$(date +%s%N)
line=$(grep -ao 'SLIPWAY-NETBOOT .*' "$E2E_TMP/serial.log" | head -n1 | tr -d '\r')
[ "$line" = "SLIPWAY-NETBOOT initrd=$token slipway.netboot=$cmdtoken" ] ||
  fail "the booted guest printed '$line', want the tokens initrd=$token slipway.netboot=$cmdtoken"
ok "the guest runs what it fetched: initramfs token $token, command line token $cmdtoken ($(python3 -c "print(f'{($t_kernel - $t_boot) / 1e9:.1f}')") s from power-on)"

vm_wait_serial "SLIPWAY-DONE" 60 ||
  { show_log "$E2E_TMP/serial.log" 40; show_log "$E2E_TMP/slipway.log"; fail "the netbooted guest did not finish its checks"; }
lease=$(vm_result dhcp)
[ "${lease%% *}" = "$GUEST_IP" ] || fail "the netbooted guest leased ${lease%% *}, want $GUEST_IP"
ping_r=$(vm_result ping)
ok "the netbooted guest's own DHCP lease ${lease%% *} and ping to the gateway: $ping_r"

stats=$(python3 "$E2E_TOOLS/ctl_stats.py" "$ctl" tftp.completed tftp.bytes_sent tftp.timed_out tftp.access_denied) || fail "no TFTP stats from the control socket"
read -r completed bytes timed_out denied <<<"$stats"
[ "$completed" -ge 3 ] || fail "TFTP completed $completed transfers, want 3 (boot.ipxe, vmlinuz, initrd.gz)"
[ "$bytes" -ge "$size" ] || fail "TFTP sent $bytes bytes, want at least $size"
ok "TFTP: $completed transfers completed, $bytes bytes, $timed_out timed out"
stop_bg "$QEMU_PID" KILL
kill -0 "$sw_pid" 2>/dev/null || { show_log "$E2E_TMP/slipway.log"; fail "slipway died"; }
pass "netboot over TFTP on engine $ENGINE: kernel running $(python3 -c "print(f'{($t_kernel - $t_boot) / 1e9:.1f}')") s after power-on"
