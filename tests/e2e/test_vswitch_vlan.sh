#!/usr/bin/env bash
# vswitch 802.1Q VLANs: access ports (vlan=N) and trunk ports (trunk=N+M).
#
# This kernel may have no 802.1Q devices (no 8021q module), so tagged frames
# are made and read by the test itself:
#
# 1. Exact frames. A vswitch with three `dgram:` ports: access VLAN 10,
#    access VLAN 20, trunk 10+20. tools/vlan_frames.py sends frames on each
#    and checks byte for byte what arrives where: access 10 and 20 do not see
#    each other; untagged frames on an access port reach the trunk tagged
#    with its VLAN and tagged frames on the trunk reach the access port
#    untagged; unicast stays in its VLAN; a tag the trunk does not carry, a
#    tag on an access port and an untagged frame on the trunk reach no access
#    port. The switch's counters (rx_dropped_vlan) account for the drops.
# 2. Real kernels. A second vswitch with four namespaces on `netns:` ports,
#    all in one IPv4 subnet: g10a and g10b on VLAN 10, g20 on VLAN 20, and a
#    trunk (10+20) whose kernel only captures. g10a and g10b ping each other
#    and move 4 MB each way over TCP with matching SHA-256; g20 reaches
#    neither (same subnet, other VLAN: its ARP goes unanswered). tshark on
#    the trunk's interface sees the flooded ARP requests, g10b's tagged 10
#    and g20's tagged 20, and no untagged IPv4 or ARP at all. Each vswitch
#    exits 0 on SIGTERM.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_vswitch
need_cmd nsenter python3 tshark
PING=$(ping_cmd)

# --- 1. exact frames on dgram ports ------------------------------------------
ctl1=$E2E_TMP/vs1.ctl
bg vs1 "$VSWITCH" --log-level info --control "$ctl1" \
  --port "dgram:$E2E_TMP/a10.sock,name=a10,vlan=10" \
  --port "dgram:$E2E_TMP/a20.sock,name=a20,vlan=20" \
  --port "dgram:$E2E_TMP/trunk.sock,name=trunk,trunk=10+20"
VS1=$BG_PID
wait_socket "$ctl1" 10 "$VS1" || { show_log "$E2E_TMP/vs1.log"; fail "vswitch (dgram ports) did not start"; }
"$VSWITCH" --control "$ctl1" ports
python3 "$E2E_TOOLS/vlan_frames.py" --dir "$E2E_TMP" --access10 "$E2E_TMP/a10.sock" \
  --access20 "$E2E_TMP/a20.sock" --trunk "$E2E_TMP/trunk.sock" ||
  { show_log "$E2E_TMP/vs1.log"; fail "VLAN frame checks"; }
"$VSWITCH" --control "$ctl1" ports
# Dropped at the switch's door: the frame tagged 30 on the trunk, the tagged
# frame on access 10.
trunk_drops=$(vswitch_counter "$ctl1" trunk "p['rx_dropped_vlan']")
a10_drops=$(vswitch_counter "$ctl1" a10 "p['rx_dropped_vlan']")
[ "$trunk_drops" = 1 ] || fail "trunk rx_dropped_vlan is $trunk_drops, expected 1 (the frame tagged 30)"
[ "$a10_drops" = 1 ] || fail "a10 rx_dropped_vlan is $a10_drops, expected 1 (the tagged frame)"
ok "counters: trunk rx_dropped_vlan=1 (tag 30), a10 rx_dropped_vlan=1 (tagged on an access port)"
kill -TERM "$VS1"
rc=0; wait "$VS1" || rc=$?
[ "$rc" = 0 ] || { show_log "$E2E_TMP/vs1.log"; fail "vswitch exited with $rc on SIGTERM (expected 0)"; }
ok "vswitch exits 0 on SIGTERM"

# --- 2. real kernels on netns ports -------------------------------------------
for g in g10a g10b g20 gtr; do guest_ns "$g"; done
ctl2=$E2E_TMP/vs2.ctl
bg vs2 "$VSWITCH" --log-level info --control "$ctl2" \
  --port "netns:$NS_g10a,name=g10a,vlan=10" \
  --port "netns:$NS_g10b,name=g10b,vlan=10" \
  --port "netns:$NS_g20,name=g20,vlan=20" \
  --port "netns:$NS_gtr,name=gtr,trunk=10+20"
VS2=$BG_PID
wait_socket "$ctl2" 10 "$VS2" || { show_log "$E2E_TMP/vs2.log"; fail "vswitch (netns ports) did not start"; }
declare -A IP=([g10a]=10.10.0.1 [g10b]=10.10.0.2 [g20]=10.10.0.3)
for g in g10a g10b g20; do
  in_ns "$g" ip addr add "${IP[$g]}/24" dev eth0
  in_ns "$g" ip link show eth0 | grep -q 'state UP\|,UP' || fail "$g: eth0 is not up"
done
# The trunk's kernel captures only (it has no VLAN devices to answer with).
in_ns gtr ip link set eth0 promisc on
cap=$E2E_TMP/trunk.pcapng
bg tshark-trunk nsenter --net="$NS_gtr" tshark -n -i eth0 -w "$cap"
TSHARK=$BG_PID
for ((i = 0; i < 250; i++)); do
  grep -q 'Capturing on' "$E2E_TMP/tshark-trunk.log" 2>/dev/null && break
  sleep 0.04
done
grep -q 'Capturing on' "$E2E_TMP/tshark-trunk.log" || { show_log "$E2E_TMP/tshark-trunk.log"; fail "tshark did not start"; }
sleep 1  # "Capturing on" comes a little before the capture does

in_ns g10a $PING -c 3 -i 0.2 -W 2 10.10.0.2 >"$E2E_TMP/ping-10.txt" ||
  { cat "$E2E_TMP/ping-10.txt"; fail "g10a cannot ping g10b on VLAN 10"; }
in_ns g10b $PING -c 3 -i 0.2 -W 2 10.10.0.1 >/dev/null || fail "g10b cannot ping g10a on VLAN 10"
ok "VLAN 10: g10a and g10b ping each other"
if in_ns g20 $PING -c 3 -i 0.2 -W 1 10.10.0.1 >/dev/null 2>&1; then fail "g20 (VLAN 20) reached g10a (VLAN 10)"; fi
if in_ns g10b $PING -c 2 -i 0.2 -W 1 10.10.0.3 >/dev/null 2>&1; then fail "g10b (VLAN 10) reached g20 (VLAN 20)"; fi
in_ns g20 ip neigh show 10.10.0.1 | grep -q lladdr && fail "g20 learnt g10a's MAC across VLANs"
ok "VLAN 20: g20 and the VLAN 10 guests cannot reach each other (same subnet)"

# A hashed TCP transfer each way on VLAN 10.
BYTES=$((4 << 20))
for dir in "g10a g10b 1" "g10b g10a 2"; do
  set -- $dir
  src=$1 dst=$2 seed=$3
  want=$(python3 "$E2E_TOOLS/blob.py" gen --bytes "$BYTES" --seed "$seed" | sed -n 's/^sha256=\([0-9a-f]*\).*/\1/p')
  pf=$E2E_TMP/recv-$dst.port
  bg "recv-$dst" nsenter --net="$(eval echo "\$NS_$dst")" python3 "$E2E_TOOLS/blob.py" recv \
    --listen "${IP[$dst]}:0" --port-file "$pf" --io-timeout 30
  RECV=$BG_PID
  wait_file "$pf" 10 "$RECV" || { show_log "$E2E_TMP/recv-$dst.log"; fail "receiver in $dst did not start"; }
  in_ns "$src" python3 "$E2E_TOOLS/blob.py" send --connect "${IP[$dst]}:$(cat "$pf")" --bytes "$BYTES" \
    --seed "$seed" --io-timeout 30 >/dev/null || fail "sending $src -> $dst failed"
  wait "$RECV" || true
  got=$(sed -n 's/^sha256=\([0-9a-f]*\).*/\1/p' "$E2E_TMP/recv-$dst.log")
  [ "$got" = "$want" ] || { show_log "$E2E_TMP/recv-$dst.log"; fail "$src -> $dst: sha256 $got, expected $want"; }
  ok "VLAN 10: $BYTES bytes $src -> $dst, sha256 matches"
done

sleep 0.5
stop_bg "$TSHARK" INT
count() { tshark -n -r "$cap" -Y "$1" 2>/dev/null | wc -l; }
# Unicast between learnt MACs does not reach the trunk; the flooded ARP
# requests do.
arp10=$(count 'vlan.id == 10 && arp.src.proto_ipv4 == 10.10.0.2 && arp.dst.proto_ipv4 == 10.10.0.3')
arp20=$(count 'vlan.id == 20 && arp.src.proto_ipv4 == 10.10.0.3')
leak=$(count '!vlan && (ip || arp)')
cross=$(count 'vlan.id == 20 && (ip.addr == 10.10.0.1 || ip.addr == 10.10.0.2)')
log "trunk capture: ARP of g10b (for g20) tagged 10: $arp10, ARP of g20 tagged 20: $arp20, untagged IPv4/ARP: $leak"
[ "$arp10" -ge 1 ] || fail "tshark on the trunk saw no ARP request of g10b tagged 10"
[ "$arp20" -ge 1 ] || fail "tshark on the trunk saw no ARP from g20 tagged 20"
[ "$leak" = 0 ] || fail "tshark on the trunk saw $leak untagged IPv4/ARP frames"
[ "$cross" = 0 ] || fail "VLAN 10 addresses appeared tagged 20 on the trunk"
ok "trunk (tshark): VLAN 10 and 20 traffic with the right tags, nothing untagged"

"$VSWITCH" --control "$ctl2" ports
kill -TERM "$VS2"
rc=0; wait "$VS2" || rc=$?
[ "$rc" = 0 ] || { show_log "$E2E_TMP/vs2.log"; fail "vswitch (netns ports) exited with $rc on SIGTERM (expected 0)"; }
pass
