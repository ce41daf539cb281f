#!/usr/bin/env bash
# vswitch VXLAN ports against the Linux kernel's vxlan device and against
# another vswitch.
#
#   netns ga --[netns]-- vswitch A --[vxlan VNI 42 over a veth]-- peer "host":
#                           |                                    Linux vxl42,
#                           |                                    10.20.0.3
#                   [vxlan VNI 42 over loopback]
#                           |
#   netns gb --[netns]-- vswitch B
#
# ga 10.20.0.1 and gb 10.20.0.2 are namespaces on the vswitches' netns ports
# (MTU 1450, as the Linux device's); the peer namespace (192.0.2.2, reached
# over a veth from the test host's 192.0.2.1) holds a Linux vxlan device with
# VNI 42, remote 192.0.2.1, dstport 4789. Checked:
#   - ping both ways between ga and the Linux device, ga and gb, and gb and
#     the Linux device (through vswitch A: two tunnels);
#   - 4 MB over TCP each way, ga <-> Linux and ga <-> gb, SHA-256 equal;
#   - tshark on the veth decodes the UDP as VXLAN with VNI 42 carrying the
#     ICMP both ways, and on loopback the tunnel between the vswitches;
#   - another VNI is dropped and counted (rx_bad_vni): datagrams with VNI 43
#     from the peer's address (tools/vxlan_inject.py), and a second Linux
#     device with VNI 43 whose ping gets no answer; a datagram from an
#     address that is not the remote's is dropped and counted
#     (rx_bad_source);
#   - slipway serve --vxlan as the gateway of a second Linux vxlan device
#     (VNI 7, port 4790): its DHCP client gets the lease with MTU 1450, it
#     pings the gateway and sends 4 MB to the host's loopback, hashed.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_vswitch
need_cmd nsenter python3 tshark ethtool
PING=$(ping_cmd)
ip link add slwvx0 type vxlan id 1 dstport 4789 2>/dev/null || skip "this kernel has no vxlan devices"
ip link del slwvx0

make_peer_ns
guest_ns ga
guest_ns gb
guest_ns wrong
# The Linux side: VNI 42 in the peer "host"; VNI 43, moved into namespace
# `wrong` (its socket stays in the peer), for the wrong-VNI check.
in_peer ip link add vxl42 type vxlan id 42 remote "$PEER_HOST_IP" local "$PEER_IP" dstport 4789 dev vpeer1
in_peer ip addr add 10.20.0.3/24 dev vxl42
in_peer ip link set vxl42 up
# Linux leaves the inner TCP/UDP checksum to the NIC (checksum offload on
# the vxlan device); over a veth to a socket on the same machine nobody
# computes it and the vswitch would get frames with half-made checksums,
# which the guest's kernel drops. Off, as flannel does for the same reason.
in_peer ethtool -K vxl42 tx off >/dev/null
in_peer ip link add vxl43 type vxlan id 43 remote "$PEER_HOST_IP" local "$PEER_IP" dstport 4789 dev vpeer1
in_peer ip link set vxl43 netns "$(basename "$(dirname "$(dirname "$NS_wrong")")")"
in_ns wrong ip addr add 10.20.0.9/24 dev vxl43
in_ns wrong ip link set vxl43 up
in_ns wrong ip link set lo up
in_peer ip -d link show vxl42 | grep -q 'vxlan id 42' || fail "the Linux vxlan device was not created"
ok "Linux vxlan devices: vxl42 (VNI 42) in the peer, vxl43 (VNI 43) in a namespace of its own"

PA=$(free_port udp)
PB=$(free_port udp)
while [ "$PB" = "$PA" ]; do PB=$(free_port udp); done
ctlA=$E2E_TMP/vsA.ctl
ctlB=$E2E_TMP/vsB.ctl
# Capture the underlay from the start: the veth to the peer and loopback.
bg tshark-veth tshark -n -i vpeer0 -f "udp port 4789" -w "$E2E_TMP/veth.pcapng"
TS1=$BG_PID
bg tshark-lo tshark -n -i lo -f "udp port $PA or udp port $PB" -w "$E2E_TMP/lo.pcapng"
TS2=$BG_PID
for f in tshark-veth tshark-lo; do
  for ((i = 0; i < 250; i++)); do grep -q 'Capturing on' "$E2E_TMP/$f.log" 2>/dev/null && break; sleep 0.04; done
  grep -q 'Capturing on' "$E2E_TMP/$f.log" || { show_log "$E2E_TMP/$f.log"; fail "$f did not start"; }
done

bg vsA "$VSWITCH" --log-level info --control "$ctlA" \
  --port "netns:$NS_ga,name=ga,mtu=1450" \
  --port "vxlan:$PEER_IP,vni=42,local=$PEER_HOST_IP,name=linux" \
  --port "vxlan:127.0.0.1:$PB,vni=42,local=127.0.0.1:$PA,name=vsb"
VSA=$BG_PID
bg vsB "$VSWITCH" --log-level info --control "$ctlB" \
  --port "netns:$NS_gb,name=gb,mtu=1450" \
  --port "vxlan:127.0.0.1:$PA,vni=42,local=127.0.0.1:$PB,name=vsa"
VSB=$BG_PID
wait_socket "$ctlA" 10 "$VSA" || { show_log "$E2E_TMP/vsA.log"; fail "vswitch A did not start"; }
wait_socket "$ctlB" 10 "$VSB" || { show_log "$E2E_TMP/vsB.log"; fail "vswitch B did not start"; }
in_ns ga ip addr add 10.20.0.1/24 dev eth0
in_ns gb ip addr add 10.20.0.2/24 dev eth0
in_ns ga ip -o link show eth0 | grep -q " mtu 1450 " || fail "ga's eth0 MTU is not 1450 (mtu=1450)"

# --- ping -----------------------------------------------------------------------
pings() {  # NAME CMD... : ping, or fail with the output
  local what=$1; shift
  "$@" >"$E2E_TMP/ping.txt" 2>&1 || { cat "$E2E_TMP/ping.txt" >&2; show_log "$E2E_TMP/vsA.log"; fail "ping $what"; }
  ok "ping $what"
}
pings "ga -> Linux vxlan (10.20.0.3)" in_ns ga $PING -c 3 -i 0.2 -W 3 10.20.0.3
pings "Linux vxlan -> ga (10.20.0.1)" in_peer $PING -c 3 -i 0.2 -W 3 10.20.0.1
pings "ga -> gb over the vswitch tunnel (10.20.0.2)" in_ns ga $PING -c 3 -i 0.2 -W 3 10.20.0.2
pings "gb -> ga (10.20.0.1)" in_ns gb $PING -c 3 -i 0.2 -W 3 10.20.0.1
pings "gb -> Linux vxlan, through vswitch A (10.20.0.3)" in_ns gb $PING -c 3 -i 0.2 -W 3 10.20.0.3
pings "Linux vxlan -> gb (10.20.0.2)" in_peer $PING -c 3 -i 0.2 -W 3 10.20.0.2
# Full-size packets: the inner MTU (1450) end to end.
pings "ga -> Linux vxlan with 1422-byte payloads (1450-byte packets, DF)" \
  in_ns ga $PING -c 2 -i 0.2 -W 3 -M do -s 1422 10.20.0.3

# --- hashed transfers -------------------------------------------------------------
BYTES=$((4 << 20))
# transfer SRC_NS DST_NS DST_IP SEED: SRC sends BYTES to a receiver in DST.
ns_path() { if [ "$1" = peer ]; then echo "$PEER_NS"; else eval echo "\$NS_$1"; fi; }
transfer() {
  local src=$1 dst=$2 ip=$3 seed=$4 want got pf=$E2E_TMP/recv-$2-$4.port
  want=$(python3 "$E2E_TOOLS/blob.py" gen --bytes "$BYTES" --seed "$seed" | sed -n 's/^sha256=\([0-9a-f]*\).*/\1/p')
  bg "recv-$dst-$seed" nsenter --net="$(ns_path "$dst")" python3 "$E2E_TOOLS/blob.py" recv \
    --listen "$ip:0" --port-file "$pf" --io-timeout 30
  local recv=$BG_PID
  wait_file "$pf" 10 "$recv" || { show_log "$E2E_TMP/recv-$dst-$seed.log"; fail "receiver in $dst did not start"; }
  nsenter --net="$(ns_path "$src")" python3 "$E2E_TOOLS/blob.py" send --connect "$ip:$(cat "$pf")" \
    --bytes "$BYTES" --seed "$seed" --io-timeout 30 >"$E2E_TMP/send-$seed.txt" ||
    { show_log "$E2E_TMP/vsA.log"; fail "sending $src -> $dst failed"; }
  wait "$recv" || true
  got=$(sed -n 's/^sha256=\([0-9a-f]*\).*/\1/p' "$E2E_TMP/recv-$dst-$seed.log")
  [ "$got" = "$want" ] || { show_log "$E2E_TMP/recv-$dst-$seed.log"; fail "$src -> $dst: sha256 '$got', expected $want"; }
  ok "$BYTES bytes $src -> $dst over VXLAN, sha256 matches ($(sed -n 's/.*MBps=\([0-9.]*\).*/\1/p' "$E2E_TMP/recv-$dst-$seed.log") MB/s)"
}
transfer ga peer 10.20.0.3 1
transfer peer ga 10.20.0.1 2
transfer ga gb 10.20.0.2 3
transfer gb ga 10.20.0.1 4

# --- wrong VNI, wrong source ------------------------------------------------------------
before=$(vswitch_counter "$ctlA" linux "p['link']['rx_bad_vni']")
in_peer python3 "$E2E_TOOLS/vxlan_inject.py" --to "$PEER_HOST_IP:4789" --bind "$PEER_IP" --vni 43 --count 5
if in_ns wrong $PING -c 2 -i 0.3 -W 1 10.20.0.1 >/dev/null 2>&1; then fail "VNI 43 reached ga (VNI 42)"; fi
sleep 0.2
after=$(vswitch_counter "$ctlA" linux "p['link']['rx_bad_vni']")
injected=$((after - before))
# 5 injected, and the Linux VNI 43 device's ARP requests (at least one).
[ "$injected" -ge 6 ] || fail "rx_bad_vni went from $before to $after (expected +5 injected, +1 or more from vxl43)"
ok "VNI 43: dropped and counted (rx_bad_vni $before -> $after); the Linux VNI 43 device reached nobody"
in_ns ga ip neigh show 10.20.0.99 | grep -q lladdr && fail "ga learnt the injected ARP's sender"
before=$(vswitch_counter "$ctlA" linux "p['link']['rx_bad_source']")
python3 "$E2E_TOOLS/vxlan_inject.py" --to "$PEER_HOST_IP:4789" --bind 127.0.0.1 --vni 42 --count 3
sleep 0.2
after=$(vswitch_counter "$ctlA" linux "p['link']['rx_bad_source']")
[ $((after - before)) = 3 ] || fail "rx_bad_source went from $before to $after (expected +3)"
ok "VNI 42 from an address that is not the remote's: dropped and counted (rx_bad_source +3)"
"$VSWITCH" --control "$ctlA" ports

# --- the frames on the wire (tshark) -------------------------------------------------------
sleep 0.5
stop_bg "$TS1" INT
stop_bg "$TS2" INT
count() { tshark -n -r "$1" "${@:3}" -Y "$2" 2>/dev/null | wc -l; }
out=$(count "$E2E_TMP/veth.pcapng" 'vxlan.vni == 42 && icmp.type == 8 && ip.src == 10.20.0.1 && ip.dst == 10.20.0.3 && udp.dstport == 4789 && ip.src == 192.0.2.1')
back=$(count "$E2E_TMP/veth.pcapng" 'vxlan.vni == 42 && icmp.type == 0 && ip.src == 10.20.0.3 && ip.dst == 10.20.0.1')
wrong=$(count "$E2E_TMP/veth.pcapng" 'vxlan.vni == 43')
tunnel=$(count "$E2E_TMP/lo.pcapng" "vxlan.vni == 42 && icmp && ip.addr == 10.20.0.2" -d "udp.port==$PA,vxlan" -d "udp.port==$PB,vxlan")
log "tshark: veth, VNI 42 echo requests ga->Linux $out, replies Linux->ga $back, VNI 43 frames $wrong; loopback, VNI 42 ICMP of gb $tunnel"
[ "$out" -ge 3 ] || fail "tshark saw $out VXLAN (VNI 42) echo requests from ga to the Linux device on the veth"
[ "$back" -ge 3 ] || fail "tshark saw $back VXLAN (VNI 42) echo replies from the Linux device to ga"
[ "$wrong" -ge 5 ] || fail "tshark saw $wrong VNI 43 datagrams on the veth (5 were injected)"
[ "$tunnel" -ge 12 ] || fail "tshark saw $tunnel VXLAN (VNI 42) ICMP frames of gb on loopback"
ok "tshark decodes the UDP as VXLAN VNI 42 carrying the ICMP, on the veth and between the vswitches"
for v in "$VSA" "$VSB"; do
  kill -TERM "$v"
  rc=0; wait "$v" || rc=$?
  [ "$rc" = 0 ] || fail "a vswitch exited with $rc on SIGTERM (expected 0)"
done
grep -q 'port linux: .*rx_bad_vni' "$E2E_TMP/vsA.log" || { show_log "$E2E_TMP/vsA.log"; fail "vswitch A's exit summary has no rx_bad_vni"; }
ok "both vswitches exit 0 on SIGTERM; A's summary counts rx_bad_vni"

# --- slipway serve --vxlan: the gateway for a Linux vxlan device's segment ----------
require_slipway
guest_ns gr
in_peer ip link add vxl7 type vxlan id 7 remote "$PEER_HOST_IP" local "$PEER_IP" dstport 4790 dev vpeer1
in_peer ethtool -K vxl7 tx off >/dev/null
in_peer ip link set vxl7 netns "$(basename "$(dirname "$(dirname "$NS_gr")")")"
in_ns gr ip link set vxl7 mtu 1450 up
in_ns gr ip link set lo up
bg serve "$SLIPWAY" serve --log-level info --mtu 1450 --no-ipv6 --vxlan "$PEER_IP:4790,vni=7,local=$PEER_HOST_IP:4790,mtu=1450"
SERVE=$BG_PID
wait_listen 4790 udp 10 || { show_log "$E2E_TMP/serve.log"; fail "slipway serve --vxlan did not bind 4790"; }
script=$E2E_TMP/udhcpc.sh
printf '#!/bin/sh\n[ "$1" = bound ] && env | grep -E "^(ip|router|mtu)=" | sort >"%s/lease.txt"\nexit 0\n' "$E2E_TMP" >"$script"
chmod 755 "$script"
in_ns gr busybox udhcpc -i vxl7 -f -q -n -t 5 -T 1 -O mtu -s "$script" >"$E2E_TMP/udhcpc.log" 2>&1 ||
  { show_log "$E2E_TMP/udhcpc.log"; show_log "$E2E_TMP/serve.log"; fail "udhcpc over VXLAN got no lease from slipway serve --vxlan"; }
grep -qx "ip=$GUEST_IP" "$E2E_TMP/lease.txt" && grep -qx "router=$GATEWAY_IP" "$E2E_TMP/lease.txt" &&
  grep -qx "mtu=1450" "$E2E_TMP/lease.txt" || { cat "$E2E_TMP/lease.txt" >&2; fail "unexpected lease over VXLAN"; }
ok "slipway serve --vxlan: a Linux vxlan device's DHCP client got $GUEST_IP, router $GATEWAY_IP, MTU 1450"
in_ns gr ip addr add "$GUEST_IP/24" dev vxl7
in_ns gr ip route add default via "$GATEWAY_IP"
pings "Linux vxlan -> slipway's gateway ($GATEWAY_IP)" in_ns gr $PING -c 3 -i 0.2 -W 3 "$GATEWAY_IP"
want=$(python3 "$E2E_TOOLS/blob.py" gen --bytes "$BYTES" --seed 7 | sed -n 's/^sha256=\([0-9a-f]*\).*/\1/p')
bg host-recv python3 "$E2E_TOOLS/blob.py" recv --listen 127.0.0.1:0 --port-file "$E2E_TMP/host.port" --io-timeout 30
HR=$BG_PID
wait_file "$E2E_TMP/host.port" 10 "$HR" || fail "receiver on the host's loopback did not start"
in_ns gr python3 "$E2E_TOOLS/blob.py" send --connect "$GATEWAY_IP:$(cat "$E2E_TMP/host.port")" --bytes "$BYTES" \
  --seed 7 --io-timeout 30 >/dev/null || { show_log "$E2E_TMP/serve.log"; fail "sending over VXLAN to the host's loopback failed"; }
wait "$HR" || true
got=$(sed -n 's/^sha256=\([0-9a-f]*\).*/\1/p' "$E2E_TMP/host-recv.log")
[ "$got" = "$want" ] || fail "VXLAN guest -> host loopback: sha256 '$got', expected $want"
ok "$BYTES bytes from the VXLAN guest to the host's loopback through slipway's NAT, sha256 matches"
kill -TERM "$SERVE"
rc=0; wait "$SERVE" || rc=$?
[ "$rc" = 0 ] || { show_log "$E2E_TMP/serve.log"; fail "slipway serve exited with $rc on SIGTERM"; }
pass
