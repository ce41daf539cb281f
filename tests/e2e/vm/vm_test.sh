# shellcheck shell=bash
# The VM end-to-end test, shared by tests/e2e/test_vm_{vhost_user,stream,dgram}.sh.
#
# Boots a small Debian guest (tests/e2e/vm/build_guest.sh: Debian kernel,
# busybox, virtio_net; PID 1 is tests/e2e/vm/init) in QEMU with its
# virtio-net NIC on one slipway transport, and checks from inside the guest
# (results read from the serial console): a DHCP lease (udhcpc), ping to the
# gateway, a DNS name looked up at 10.0.2.3 (dnsmasq on the test host's
# loopback is slipway's --dns-upstream, with a test record), an HTTP fetch
# and a 64 MiB download hashed in the guest (a server on the host's
# loopback, reached through 10.0.2.2), a UDP round trip (an echo server on
# the host's loopback); and from the test host: an inbound forward
# (`-p 127.0.0.1:PORT:80`) to busybox httpd in the guest, fetched with curl.
# IPv6 (slipway serve's default), configured by the guest kernel itself: eth0
# forms the SLAAC address fd00::5054:ff:fe12:3456/64 (EUI-64 of the guest
# MAC) from the gateway's router advertisement, which also gives the default
# route via the gateway's link-local address; then a ping to fd00::2, an
# AAAA lookup at fd00::3, a UDP round trip and a 1 MiB HTTP fetch (hashed)
# through fd00::2 to servers on the test host's [::1].
# Then a second guest boots against the same slipway (the next frontend is
# served after the first one went away) and gets a lease, a ping reply and
# its SLAAC address.
#
# Usage (from a test): VM_TRANSPORT=stream; . "$(dirname "$0")/vm/vm_test.sh"; vm_test_main
# Env: SLIPWAY_CACHE (kernel and busybox .debs, built guest; default
# /var/cache/slipway), VM_ACCEL (kvm|tcg; default kvm if it boots the guest kernel, else tcg),
# VM_MEM (MiB, default 384), VM_BIG_MIB (default 64), E2E_TIMEOUT (default 180),
# VM_IPV6 (1: the IPv6 checks, the default; 0: skip them),
# PORTFWD_AGENT (put in the guest; default: the one in $SLIPWAY's build dir).
#
# The guest build runs before entering the private namespace (it may need
# `apt-get download`); everything else runs inside it, bounded by E2E_TIMEOUT.

: "${E2E_TIMEOUT:=180}"
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
VM_DIR=$E2E_DIR/vm
: "${SLIPWAY_CACHE:=/var/cache/slipway}"
: "${VM_MEM:=384}"
: "${VM_BIG_MIB:=64}"
: "${VM_IPV6:=1}"
# The guest's MAC (QEMU's -device below) and the address SLAAC forms from it
# in fd00::/64: the kernel's default addr_gen_mode is EUI-64 (no
# stable_secret is set in the guest), so it is predictable.
VM_MAC=52:54:00:12:34:56
VM_SLAAC6=fd00::5054:ff:fe12:3456
: "${PORTFWD_AGENT:=$(dirname "$SLIPWAY")/../portfwd/portfwd-agent}"
export SLIPWAY_CACHE PORTFWD_AGENT

vm_prepare_guest() {
  need_cmd qemu-system-x86_64 apt-get dpkg-deb cpio gzip modinfo
  VM_GUEST=$SLIPWAY_CACHE/guest
  if ! mkdir -p "$SLIPWAY_CACHE" 2>/dev/null || ! [ -w "$SLIPWAY_CACHE" ]; then
    skip "cache directory $SLIPWAY_CACHE is not writable (set SLIPWAY_CACHE)"
  fi
  local t0=$SECONDS
  "$VM_DIR/build_guest.sh" "$VM_GUEST" >"$SLIPWAY_CACHE/build_guest.log" 2>&1 ||
    { tail -n 20 "$SLIPWAY_CACHE/build_guest.log" >&2; skip "could not build the guest (kernel/busybox download?)"; }
  log "guest ready in $VM_GUEST ($((SECONDS - t0)) s)"
  export VM_GUEST
}

vm_accel() {
  if [ -n "${VM_ACCEL:-}" ]; then echo "$VM_ACCEL"; return; fi
  # /dev/kvm may exist and even start QEMU without being able to run a guest
  # (seen with nested virtualisation: the kernel never prints). So boot the
  # guest kernel itself without a root file system: under a working KVM it
  # prints its banner within a second and panics. Decided once per host boot.
  local cache boot_id
  boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
  cache="$SLIPWAY_CACHE/accel.$boot_id"
  if [ -s "$cache" ]; then cat "$cache"; return; fi
  local accel=tcg probe
  probe=$(mktemp)
  if [ -w /dev/kvm ] && [ -f "${VM_GUEST:-}/vmlinuz" ]; then
    timeout 15 qemu-system-x86_64 -accel kvm -machine q35 -cpu host -m 256 -nodefaults -display none \
      -no-reboot -serial "file:$probe" -kernel "$VM_GUEST/vmlinuz" -append "console=ttyS0 panic=-1" \
      >/dev/null 2>&1 || true
    grep -aq 'Linux version' "$probe" && accel=kvm
  fi
  rm -f "$probe"
  echo "$accel" > "$cache" 2>/dev/null || true
  echo "$accel"
}

# result NAME: the detail of the guest's "SLIPWAY-RESULT NAME ok DETAIL" line,
# or fail with what the guest printed.
vm_result() {
  local line
  line=$(grep -ao "SLIPWAY-RESULT $1 .*" "$E2E_TMP/serial.log" | head -n1 | tr -d '\r')
  case "$line" in
    "SLIPWAY-RESULT $1 ok"*) echo "${line#"SLIPWAY-RESULT $1 ok "}" ;;
    "") show_log "$E2E_TMP/serial.log" 40; show_log "$E2E_TMP/slipway.log"; fail "guest printed no result for $1" ;;
    *) show_log "$E2E_TMP/serial.log" 40; show_log "$E2E_TMP/slipway.log"; fail "guest check $1: $line" ;;
  esac
}

# vm_check_ipv6 WANT_SHA256 HTTP6_PORT: the guest's IPv6 results (see the top).
vm_check_ipv6() {
  local want6=$1 port6=$2 r slaac route6 dns6 sum6 size6 secs6
  slaac=$(vm_result slaac)
  # "ADDR/LEN global dynamic ... (usable Ns after link-up)": dynamic =
  # lifetimes from the RA.
  [ "${slaac%% *}" = "$VM_SLAAC6/64" ] || fail "SLAAC: eth0 has ${slaac%% *}, want $VM_SLAAC6/64"
  case " $slaac " in *" dynamic "*) ;; *) fail "SLAAC: $slaac is not a dynamic (RA-made) address" ;; esac
  ok "SLAAC address on eth0 by the guest kernel: $slaac"
  route6=$(vm_result route6)
  [[ "$route6" =~ ^default\ via\ fe80::[0-9a-f:]+\ dev\ eth0\ .*rtflags=(0x[0-9a-f]+)$ ]] ||
    fail "IPv6 default route: '$route6', want one via the gateway's link-local address on eth0"
  # The kernel's flags for a default router learned from an RA:
  # RTF_DEFAULT (0x10000) and RTF_ADDRCONF (0x40000).
  (( (BASH_REMATCH[1] & 0x50000) == 0x50000 )) || fail "IPv6 default route: '$route6' was not installed from an RA"
  ok "IPv6 default route from the RA: $route6"
  r=$(vm_result ping6)
  ok "ping fd00::2: $r"
  dns6=$(vm_result dns6)
  [ "${dns6#* }" = "2001:db8::77" ] || fail "AAAA answer over IPv6: $dns6, want 2001:db8::77"
  ok "DNS AAAA through fd00::3: $dns6"
  r=$(vm_result udp6)
  ok "UDP round trip through fd00::2 to [::1]: $r"
  r=$(vm_result http6)
  read -r sum6 size6 secs6 <<<"$r"
  [ "$sum6" = "$want6" ] ||
    { show_log "$E2E_TMP/http6.log"; fail "HTTP over IPv6: guest sha256 $sum6 ($size6 bytes), want $want6"; }
  grep -q '^::1 .*"GET /six.bin' "$E2E_TMP/http6.log" ||
    { show_log "$E2E_TMP/http6.log"; fail "the server on [::1] logged no GET /six.bin"; }
  ok "HTTP over IPv6: http://[fd00::2]:$port6/six.bin from the host's [::1], $size6 bytes intact ($secs6 in the guest)"
}

vm_wait_serial() {  # vm_wait_serial PATTERN SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    grep -aq "$1" "$E2E_TMP/serial.log" 2>/dev/null && return 0
    kill -0 "$QEMU_PID" 2>/dev/null || { sleep 0.2; grep -aq "$1" "$E2E_TMP/serial.log" 2>/dev/null && return 0; return 1; }
    sleep 0.1
  done
  return 1
}

vm_test_main() {
  local transport=${VM_TRANSPORT:?}
  if [ "${E2E_INNER:-}" != 1 ]; then
    vm_prepare_guest
    VM_ACCEL=$(vm_accel)
    export VM_ACCEL
  fi
  e2e_init "$@"
  require_slipway
  need_cmd qemu-system-x86_64 dnsmasq curl python3 sha256sum
  local t_start=$SECONDS

  # Host side: DNS upstream, HTTP server, UDP echo.
  local dns_port udp_port fwd_port pf
  dns_port=$(free_port udp)
  bg dnsmasq dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --user=root \
    --listen-address=127.0.0.1 --bind-interfaces --port="$dns_port" \
    --host-record=vmtest.slipway.test,192.0.2.77 --host-record=vmtest6.slipway.test,2001:db8::77
  wait_listen "$dns_port" udp || { show_log "$E2E_TMP/dnsmasq.log"; fail "dnsmasq did not start"; }
  mkdir "$E2E_TMP/www"
  echo "small file from the host" >"$E2E_TMP/www/small.txt"
  make_random_file "$E2E_TMP/www/big.bin" $((VM_BIG_MIB * 1024 * 1024))
  local want; want=$(sha256_of "$E2E_TMP/www/big.bin")
  start_http_server "$E2E_TMP/www"
  pf=$E2E_TMP/udp.port
  bg udpecho python3 "$E2E_TOOLS/udp_echo.py" server --bind 127.0.0.1 --port-file "$pf"
  wait_file "$pf" 10 "$BG_PID" || fail "udp echo server did not start"
  udp_port=$(cat "$pf")
  fwd_port=$(free_port tcp)

  # IPv6 host side: an HTTP server and a UDP echo on the test host's [::1]
  # (the guest reaches them through fd00::2).
  local ipv6_args="" want6="" http6_port="" udp6_port=""
  if [ "$VM_IPV6" = 1 ]; then
    sysctl -qw net.ipv6.conf.lo.disable_ipv6=0 2>/dev/null || true
    if ! ip -6 addr show dev lo 2>/dev/null | grep -q '::1/128'; then
      log "no ::1 on the test host's loopback (kernel without IPv6?): IPv6 checks skipped"
      VM_IPV6=0
    fi
  fi
  if [ "$VM_IPV6" = 1 ]; then
    mkdir "$E2E_TMP/www6"
    make_random_file "$E2E_TMP/www6/six.bin" $((1024 * 1024 + 333))
    want6=$(sha256_of "$E2E_TMP/www6/six.bin")
    pf=$E2E_TMP/http6.port
    bg http6 python3 "$E2E_TOOLS/http_server.py" --dir "$E2E_TMP/www6" --bind ::1 --port-file "$pf"
    wait_file "$pf" 10 "$BG_PID" || { show_log "$E2E_TMP/http6.log"; fail "http server on [::1] did not start"; }
    http6_port=$(cat "$pf")
    pf=$E2E_TMP/udp6.port
    bg udpecho6 python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::1", 0))
open(sys.argv[1] + ".tmp", "w").write("%d\n" % s.getsockname()[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    data, peer = s.recvfrom(65535)
    print("echo %d bytes to [%s]:%d" % (len(data), peer[0], peer[1]), file=sys.stderr, flush=True)
    s.sendto(data, peer)
' "$pf"
    wait_file "$pf" 10 "$BG_PID" || { show_log "$E2E_TMP/udpecho6.log"; fail "udp echo server on [::1] did not start"; }
    udp6_port=$(cat "$pf")
    ipv6_args="slipway.ipv6=1 slipway.name6=vmtest6.slipway.test slipway.udp6=$udp6_port slipway.http6=$http6_port"
  fi

  # slipway on the transport.
  local sock=$E2E_TMP/slipway.sock qemu_sock=$E2E_TMP/qemu.sock
  local -a netdev mem=()
  case "$transport" in
    vhost-user)
      netdev=(-chardev "socket,id=c0,path=$sock" -netdev vhost-user,id=n0,chardev=c0)
      mem=(-object "memory-backend-memfd,id=mem,size=${VM_MEM}M,share=on" -numa node,memdev=mem) ;;
    stream) netdev=(-netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$sock") ;;
    dgram)
      netdev=(-netdev "dgram,id=n0,local.type=unix,local.path=$qemu_sock,remote.type=unix,remote.path=$sock") ;;
    *) fail "unknown transport $transport" ;;
  esac
  bg slipway timeout -k 5 "$E2E_TIMEOUT" "$SLIPWAY" serve --engine "$ENGINE" "--$transport" "$sock" --mtu 1500 \
    --dns-upstream "127.0.0.1:$dns_port" -p "127.0.0.1:$fwd_port:80" --log-level info
  local sw_pid=$BG_PID
  local i
  for ((i = 0; i < 250; i++)); do [ -S "$sock" ] && break; sleep 0.02; done
  [ -S "$sock" ] || { show_log "$E2E_TMP/slipway.log"; fail "slipway did not create $sock"; }

  local accel=${VM_ACCEL:-tcg} cpu=max nic=virtio-net-pci,netdev=n0,mac=$VM_MAC
  [ "$accel" = kvm ] && cpu=host
  # QEMU 7.2 on TCG (no irqfd) crashes in msix_set_vector_notifiers when a
  # vhost-user-net device starts with MSI-X: use INTx there (vectors=0).
  [ "$transport" = vhost-user ] && [ "$accel" = tcg ] && nic=$nic,vectors=0
  log "booting the guest on --$transport ($accel, ${VM_MEM} MiB)"
  local t_boot=$SECONDS
  bg qemu qemu-system-x86_64 -machine q35 -accel "$accel" -cpu "$cpu" -smp 2 -m "$VM_MEM" "${mem[@]}" \
    -nographic -no-reboot -monitor none -display none -serial "file:$E2E_TMP/serial.log" \
    -kernel "$VM_GUEST/vmlinuz" -initrd "$VM_GUEST/initramfs.cpio.gz" \
    -append "console=ttyS0 quiet panic=-1 slipway.http=$HTTP_PORT slipway.udp=$udp_port slipway.name=vmtest.slipway.test slipway.big=big.bin slipway.linger=60 $ipv6_args" \
    "${netdev[@]}" -device "$nic"
  QEMU_PID=$BG_PID

  vm_wait_serial "SLIPWAY-RESULT httpd" 90 ||
    { show_log "$E2E_TMP/serial.log" 40; show_log "$E2E_TMP/qemu.log"; show_log "$E2E_TMP/slipway.log"; fail "guest did not come up"; }
  local lease; lease=$(vm_result dhcp)
  ok "DHCP lease: $lease ($((SECONDS - t_boot)) s after boot)"
  [ "${lease%% *}" = "$GUEST_IP" ] || fail "guest leased ${lease%% *}, want $GUEST_IP"
  vm_result httpd >/dev/null

  # Inbound forward: host 127.0.0.1:fwd_port -> guest :80.
  local got=""
  for ((i = 0; i < 20; i++)); do
    got=$(curl -sS --max-time 5 "http://127.0.0.1:$fwd_port/index.html" 2>/dev/null) && [ -n "$got" ] && break
    sleep 0.5
  done
  [ "$got" = "hello from the guest" ] || { show_log "$E2E_TMP/slipway.log"; fail "inbound forward: got '$got'"; }
  ok "inbound forward 127.0.0.1:$fwd_port -> guest :80: '$got'"

  vm_wait_serial "SLIPWAY-DONE" 120 ||
    { show_log "$E2E_TMP/serial.log" 40; show_log "$E2E_TMP/slipway.log"; fail "guest did not finish its checks"; }
  # (A failing $(...) inside a command's arguments would not stop the test:
  # each result is taken by an assignment first, which set -e checks.)
  local ping_r; ping_r=$(vm_result ping)
  ok "ping gateway: $ping_r"
  local dns; dns=$(vm_result dns)
  [ "${dns#* }" = "192.0.2.77" ] || fail "DNS answer: $dns, want 192.0.2.77"
  ok "DNS through 10.0.2.3: $dns"
  [ "$(vm_result http)" = "small file from the host" ] || fail "HTTP fetch returned the wrong content"
  ok "HTTP fetch from 10.0.2.2:$HTTP_PORT"
  local udp_r; udp_r=$(vm_result udp)
  ok "UDP round trip: $udp_r"
  local sum; sum=$(vm_result sha256)
  [ "${sum%% *}" = "$want" ] || fail "64 MiB download: guest sha256 ${sum%% *}, want $want"
  ok "${VM_BIG_MIB} MiB download intact (${sum#* } in the guest)"
  if [ "$VM_IPV6" = 1 ]; then vm_check_ipv6 "$want6" "$http6_port"; fi

  stop_bg "$QEMU_PID" KILL
  kill -0 "$sw_pid" 2>/dev/null || { show_log "$E2E_TMP/slipway.log"; fail "slipway died"; }

  # The same slipway serves the next frontend: a second guest gets a lease
  # and pings the gateway.
  mv "$E2E_TMP/serial.log" "$E2E_TMP/serial-1.log"
  rm -f "$qemu_sock"
  t_boot=$SECONDS
  bg qemu2 qemu-system-x86_64 -machine q35 -accel "$accel" -cpu "$cpu" -smp 2 -m "$VM_MEM" "${mem[@]}" \
    -nographic -no-reboot -monitor none -display none -serial "file:$E2E_TMP/serial.log" \
    -kernel "$VM_GUEST/vmlinuz" -initrd "$VM_GUEST/initramfs.cpio.gz" \
    -append "console=ttyS0 quiet panic=-1 slipway.linger=1 ${ipv6_args:+slipway.ipv6=1}" "${netdev[@]}" -device "$nic"
  QEMU_PID=$BG_PID
  vm_wait_serial "SLIPWAY-DONE" 90 ||
    { show_log "$E2E_TMP/serial.log" 40; show_log "$E2E_TMP/slipway.log"; fail "second guest did not finish"; }
  local lease2 ping2; lease2=$(vm_result dhcp); ping2=$(vm_result ping)
  local slaac2=""
  if [ "$VM_IPV6" = 1 ]; then
    slaac2=$(vm_result slaac)
    [ "${slaac2%% *}" = "$VM_SLAAC6/64" ] || fail "second guest: SLAAC address $slaac2, want $VM_SLAAC6/64"
    slaac2=", SLAAC ${slaac2%% *}"
  fi
  ok "second frontend served: lease ${lease2%% *}, ping $ping2$slaac2 ($((SECONDS - t_boot)) s)"
  stop_bg "$QEMU_PID" KILL
  kill -0 "$sw_pid" 2>/dev/null || { show_log "$E2E_TMP/slipway.log"; fail "slipway died"; }
  pass "--$transport: all checks in $((SECONDS - t_start)) s ($accel)"
}
