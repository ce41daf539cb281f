#!/usr/bin/env bash
# L2 switching between two guests: slipway's vswitch beside a Linux bridge
# and vde_switch (Debian vde2), in one run, with the same guests and tools.
#
# Each system joins two network namespaces ("guests" A and B, one IPv4
# subnet each, MTU 1500) and nothing else:
#   bridge    a Linux bridge in the test host, a veth pair to each guest
#             (the kernel's switch: the ceiling);
#   vde       vde_switch with two TAP devices (-t), each moved into its guest;
#   vswitch   build/vswitch/vswitch with two `netns:` ports (TAPs with
#             virtio-net headers: checksum and TCP segmentation offload);
# and across a VXLAN tunnel (VNI 100, inner MTU 1500):
#   kvxlan    a Linux vxlan device in each guest, over a veth (MTU 1600)
#             between them: the kernel's tunnel;
#   vxlan     two vswitches, a guest on each, joined by `vxlan:` ports over
#             loopback (switch CPU: the two processes together).
# Figures, each guest A -> guest B:
#   TCP Gbit/s    iperf3, one stream, DURATION seconds;
#   pps 64 B      UDP datagrams in 64-byte frames (22-byte payload),
#                 bench/udp_pps (sendmmsg/recvmmsg batches), PPS_SECONDS;
#   pps 1514 B    the same with full 1514-byte frames (1472-byte payload),
#                 and the Gbit/s of Ethernet frames that makes;
#   switch CPU    the switch process's CPU seconds (user + system) per
#                 second of the TCP run and of the 64 B run (vde_switch and
#                 vswitch; the bridge runs in the kernel's softirqs and is
#                 not measured): 1.00 is one core kept busy.
# A figure is what the receiver counted. The machine is shared and small (2
# cores): compare the columns of one run, not runs.
#
# Usage: bench/vswitch.sh [SYSTEM...]    SYSTEM: bridge vde vswitch kvxlan vxlan (default all)
# Env:   DURATION=5, PPS_SECONDS=3, VSWITCH=build/vswitch/vswitch,
#        UDP_PPS=build/bench/udp_pps, RESULTS=FILE (also write the table there)
. "$(dirname "$0")/../tests/e2e/lib.sh"
DURATION=${DURATION:-5}
PPS_SECONDS=${PPS_SECONDS:-3}
export E2E_TIMEOUT=${E2E_TIMEOUT:-$(((DURATION + 3 * PPS_SECONDS + 40) * 5 + 60))}
E2E_NAME=bench-vswitch
e2e_init "$@"
need_cmd iperf3 python3 nsenter
: "${UDP_PPS:=$SLIPWAY_SOURCE_DIR/build/bench/udp_pps}"
[ -x "$UDP_PPS" ] || fail "udp_pps not built: $UDP_PPS (scripts/build.sh)"

systems=("$@")
[ ${#systems[@]} -gt 0 ] || systems=(bridge vde vswitch kvxlan vxlan)
LIMIT=$((DURATION + PPS_SECONDS + 30))

# ------------------------------------------------------------ systems
# setup_<system> N: guests NS_<system>a and NS_<system>b joined by the
# system, addresses 10.30.N.1 and 10.30.N.2; SWITCH_PID is the switch's
# process (empty for the bridge). false with NOTE set when it cannot run.
addr_guests() {  # SYSTEM N IFACE_A IFACE_B
  in_ns "$1a" ip addr add "10.30.$2.1/24" dev "$3"
  in_ns "$1b" ip addr add "10.30.$2.2/24" dev "$4"
  local g
  for g in a b; do
    in_ns "$1$g" ip link set lo up
    in_ns "$1$g" ip link set dev "$([ $g = a ] && echo "$3" || echo "$4")" mtu 1500 up
  done
}

setup_bridge() {
  guest_ns bridgea; guest_ns bridgeb
  ip link add slwbr0 type bridge
  ip link set slwbr0 up
  local g
  for g in a b; do
    ip link add "slwbr$g" type veth peer name eth0 netns "$(ns_pid "bridge$g")"
    ip link set "slwbr$g" master slwbr0 up
  done
  addr_guests bridge "$1" eth0 eth0
  SWITCH_PID=
}

setup_vde() {
  command -v vde_switch >/dev/null || { NOTE="vde_switch not installed (Debian vde2; scripts/setup.sh)"; return 1; }
  guest_ns vdea; guest_ns vdeb
  # vde_switch reads console commands from stdin and ends at its EOF: give
  # it a pipe that stays open.
  bg vde bash -c 'sleep infinity | vde_switch -s "$1/vde.ctl" -p "$1/vde.pid" -t slwvde0 -t slwvde1' sh "$E2E_TMP"
  local i
  for ((i = 0; i < 250; i++)); do
    ip link show slwvde1 >/dev/null 2>&1 && ip link show slwvde0 >/dev/null 2>&1 && break
    sleep 0.02
  done
  ip link show slwvde1 >/dev/null 2>&1 || { NOTE="vde_switch made no TAP devices: $(tail -2 "$E2E_TMP/vde.log")"; return 1; }
  ip link set slwvde0 netns "$(ns_pid vdea)"
  ip link set slwvde1 netns "$(ns_pid vdeb)"
  addr_guests vde "$1" slwvde0 slwvde1
  wait_file "$E2E_TMP/vde.pid" 5 || { NOTE="vde_switch wrote no pid file"; return 1; }
  SWITCH_PID=$(cat "$E2E_TMP/vde.pid")
}

# Across a VXLAN tunnel: two Linux vxlan devices, one in each guest, over a
# veth between the guests (MTU 1600, so that the devices take MTU 1500).
setup_kvxlan() {
  guest_ns kvxlana; guest_ns kvxlanb
  in_ns kvxlana ip link add ul0 mtu 1600 type veth peer name ul0 mtu 1600 netns "$(ns_pid kvxlanb)"
  local g me peer
  for g in a b; do
    me=1; peer=2; [ $g = b ] && { me=2; peer=1; }
    in_ns "kvxlan$g" ip addr add "172.31.$1.$me/24" dev ul0
    in_ns "kvxlan$g" ip link set ul0 up
    in_ns "kvxlan$g" ip link add vx0 mtu 1500 type vxlan id 100 remote "172.31.$1.$peer" local "172.31.$1.$me" \
      dstport 4789 dev ul0
  done
  addr_guests kvxlan "$1" vx0 vx0
  SWITCH_PID=
}

# Two vswitches, one guest each, joined by a VXLAN port over loopback.
setup_vxlan() {
  require_vswitch
  guest_ns vxlana; guest_ns vxlanb
  local p1 p2
  p1=$(free_port udp); p2=$(free_port udp)
  while [ "$p2" = "$p1" ]; do p2=$(free_port udp); done
  bg vxlan1 timeout -k 5 "$E2E_TIMEOUT" "$VSWITCH" --control "$E2E_TMP/vxlan1.ctl" \
    --port "netns:$NS_vxlana,name=a,mtu=1500" --port "vxlan:127.0.0.1:$p2,vni=100,local=127.0.0.1:$p1"
  local b1=$BG_PID
  bg vxlan2 timeout -k 5 "$E2E_TIMEOUT" "$VSWITCH" --control "$E2E_TMP/vxlan2.ctl" \
    --port "netns:$NS_vxlanb,name=b,mtu=1500" --port "vxlan:127.0.0.1:$p1,vni=100,local=127.0.0.1:$p2"
  local b2=$BG_PID
  wait_socket "$E2E_TMP/vxlan1.ctl" 10 "$b1" && wait_socket "$E2E_TMP/vxlan2.ctl" 10 "$b2" ||
    { NOTE="vswitch did not start: $(tail -2 "$E2E_TMP/vxlan1.log" "$E2E_TMP/vxlan2.log")"; return 1; }
  addr_guests vxlan "$1" eth0 eth0
  SWITCH_PID="$(child_pid "$b1" vswitch) $(child_pid "$b2" vswitch)"
}

setup_vswitch() {
  require_vswitch
  guest_ns vswitcha; guest_ns vswitchb
  bg vswitch timeout -k 5 "$E2E_TIMEOUT" "$VSWITCH" --control "$E2E_TMP/vswitch.ctl" \
    --port "netns:$NS_vswitcha,name=a,mtu=1500" --port "netns:$NS_vswitchb,name=b,mtu=1500"
  wait_socket "$E2E_TMP/vswitch.ctl" 10 "$BG_PID" || { NOTE="vswitch did not start: $(tail -2 "$E2E_TMP/vswitch.log")"; return 1; }
  addr_guests vswitch "$1" eth0 eth0
  SWITCH_PID=$(child_pid "$BG_PID" vswitch)
}

ns_pid() { local v="NS_$1"; basename "$(dirname "$(dirname "${!v}")")"; }
# child_pid PID NAME: PID itself or its first child named NAME (timeout's).
child_pid() {
  local c
  for ((i = 0; i < 100; i++)); do
    [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] && { echo "$1"; return; }
    c=$(cat "/proc/$1/task/$1/children" 2>/dev/null | awk '{print $1}')
    [ -n "$c" ] && [ "$(cat "/proc/$c/comm" 2>/dev/null)" = "$2" ] && { echo "$c"; return; }
    sleep 0.02
  done
}
# cpu_ticks "PID..." : the processes' CPU ticks (user + system), summed.
cpu_ticks() {
  local p t=0
  for p in $1; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$t"
}

# ------------------------------------------------------------ figures
declare -A R  # R[figure,system]
measure() {
  local s=$1 n=$2 ip=10.30.$2.2 port out t0 t1
  in_ns "${s}a" ping -c 2 -i 0.2 -W 2 "$ip" >/dev/null || { NOTE="guests cannot ping"; return 1; }
  # TCP.
  port=$((5201 + n))
  bg "iperf-$s" nsenter --net="$(eval echo "\$NS_${s}b")" timeout -k 5 "$LIMIT" iperf3 -s -1 -p "$port"
  wait_listen_in "${s}b" "$port" || { NOTE="iperf3 server did not start"; return 1; }
  t0=$(cpu_ticks "$SWITCH_PID")
  out=$(in_ns "${s}a" timeout -k 5 "$LIMIT" iperf3 -c "$ip" -p "$port" -t "$DURATION" -J) || { NOTE="iperf3 failed"; return 1; }
  t1=$(cpu_ticks "$SWITCH_PID")
  R[tcp,$s]=$(python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))' <<<"$out")
  if [ -n "$SWITCH_PID" ]; then
    R[cpu,$s]=$(python3 -c "import os; print('%.2f' % (($t1 - $t0) / os.sysconf('SC_CLK_TCK') / $DURATION))")
  else
    R[cpu,$s]="(kernel)"
  fi
  # UDP frame rates.
  local size frame
  for frame in 64 1514; do
    size=$((frame - 42))
    port=$((6000 + n * 10 + (frame > 64)))
    bg "pps-$s-$frame" nsenter --net="$(eval echo "\$NS_${s}b")" "$UDP_PPS" server --port "$port" --role recv \
      --seconds "$PPS_SECONDS" --size "$size"
    local srv=$BG_PID
    wait_listen_in "${s}b" "$port" udp || { NOTE="udp_pps server did not start"; return 1; }
    t0=$(cpu_ticks "$SWITCH_PID")
    in_ns "${s}a" "$UDP_PPS" client --to "$ip:$port" --role send --seconds "$PPS_SECONDS" --size "$size" 2>/dev/null || true
    t1=$(cpu_ticks "$SWITCH_PID")
    if [ "$frame" = 64 ]; then
      if [ -n "$SWITCH_PID" ]; then
        R[cpu64,$s]=$(python3 -c "import os; print('%.2f' % (($t1 - $t0) / os.sysconf('SC_CLK_TCK') / $PPS_SECONDS))")
      else
        R[cpu64,$s]="(kernel)"
      fi
    fi
    wait "$srv" 2>/dev/null || true
    local pps
    pps=$(sed -n 's/.*pps=\([0-9.]*\).*/\1/p' "$E2E_TMP/pps-$s-$frame.log")
    R[pps$frame,$s]=${pps:-0}
  done
  R[gbit1514,$s]=$(python3 -c "print('%.2f' % (${R[pps1514,$s]} * 1514 * 8 / 1e9))")
  log "$s: TCP ${R[tcp,$s]} Gbit/s, 64 B ${R[pps64,$s]} pps, 1514 B ${R[pps1514,$s]} pps, switch CPU ${R[cpu,$s]}"
}
wait_listen_in() {  # NS PORT [udp]
  local flag=-Hltn i
  [ "${3:-}" = udp ] && flag=-Hlun
  for ((i = 0; i < 250; i++)); do
    [ -n "$(in_ns "$1" ss $flag "sport = :$2" 2>/dev/null)" ] && return 0
    sleep 0.02
  done
  return 1
}

declare -A STATUS
n=0
for s in "${systems[@]}"; do
  n=$((n + 1))
  NOTE=
  SWITCH_PID=
  if ! "setup_$s" "$n"; then STATUS[$s]="skip: $NOTE"; log "$s: skip: $NOTE"; continue; fi
  if ! measure "$s" "$n"; then STATUS[$s]="fail: $NOTE"; log "$s: fail: $NOTE"; continue; fi
  STATUS[$s]=ok
done

# ------------------------------------------------------------ table
table() {
  local names=(bridge vde vswitch kvxlan vxlan)
  declare -A head=([bridge]=bridge [vde]=vde_switch [vswitch]=vswitch [kvxlan]="Linux vxlan" [vxlan]="vswitch vxlan")
  printf '%-34s' "figure (guest A -> guest B)"
  for s in "${names[@]}"; do printf '%14s' "${head[$s]}"; done
  printf '%16s%14s%14s\n' "vswitch/bridge" "vswitch/vde" "vxlan/Linux"
  local f label
  for f in tcp pps64 pps1514 gbit1514 cpu cpu64; do
    case $f in
      tcp) label="TCP Gbit/s (iperf3, 1 stream)" ;;
      pps64) label="UDP frames/s, 64 B" ;;
      pps1514) label="UDP frames/s, 1514 B" ;;
      gbit1514) label="  = Gbit/s of 1514 B frames" ;;
      cpu) label="switch CPU s per s (TCP run)" ;;
      cpu64) label="switch CPU s per s (64 B run)" ;;
    esac
    printf '%-34s' "$label"
    for s in "${names[@]}"; do
      if [ "${STATUS[$s]:-}" = ok ]; then printf '%14s' "${R[$f,$s]}"; else printf '%14s' "${STATUS[$s]:+${STATUS[$s]%%:*}}"; fi
    done
    for pair in "vswitch bridge 16" "vswitch vde 14" "vxlan kvxlan 14"; do
      set -- $pair
      python3 -c '
import sys
a, b, w = sys.argv[1], sys.argv[2], int(sys.argv[3])
try: print("%*s" % (w, "%.2f" % (float(a) / float(b))), end="")
except Exception: print("%*s" % (w, "-"), end="")' "${R[$f,$1]:-}" "${R[$f,$2]:-}" "$3"
    done
    printf '\n'
  done
  for s in "${names[@]}"; do
    [ -n "${STATUS[$s]:-}" ] && [ "${STATUS[$s]}" != ok ] && printf '%s: %s\n' "$s" "${STATUS[$s]}"
  done
  printf '(%s; DURATION=%s PPS_SECONDS=%s; %s, %s CPUs)\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$DURATION" "$PPS_SECONDS" \
    "$(uname -r)" "$(nproc)"
}
table | tee "${RESULTS:-/dev/null}"
