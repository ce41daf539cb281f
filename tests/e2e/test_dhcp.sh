#!/usr/bin/env bash
# DHCP server on the gateway: with --no-configure (eth0 up, no address),
# busybox udhcpc gets a lease of 10.0.2.15/24 with router 10.0.2.2, DNS
# 10.0.2.3, MTU 65520, the search domains given with --search and a one-day
# lease (checked in the env vars udhcpc gives its script).
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd busybox

busybox --list 2>/dev/null | grep -x udhcpc >/dev/null || fail "busybox has no udhcpc applet"
script=$E2E_TMP/udhcpc.sh
envdir=$E2E_TMP/env
mkdir -m 777 "$envdir"
cat >"$script" <<SCRIPT
#!/bin/sh
# udhcpc event script: record the lease, configure nothing.
env | grep -E '^(ip|router|dns|mtu|subnet|mask|serverid|lease|broadcast|interface|search|domain)=' | sort >"$envdir/\$1"
exit 0
SCRIPT
chmod 755 "$script"

log "check: --no-configure leaves eth0 up and unconfigured"
slipway_run --no-configure -- sh -c 'ip -o link show dev eth0; ip -o -4 addr show dev eth0; ip route' \
  >"$E2E_TMP/pre.log" 2>&1 || { show_log "$E2E_TMP/pre.log"; fail "slipway run --no-configure failed"; }
grep -q 'eth0:.*UP' "$E2E_TMP/pre.log" || { show_log "$E2E_TMP/pre.log"; fail "eth0 is not up"; }
if grep -q 'inet ' "$E2E_TMP/pre.log"; then
  show_log "$E2E_TMP/pre.log"; fail "eth0 has an IPv4 address under --no-configure"
fi
ok "eth0 up, no IPv4 address"

log "check: busybox udhcpc -i eth0 gets a lease"
rc=0
slipway_run --no-configure --search corp.test --search lab.test -- \
  busybox udhcpc -i eth0 -f -q -n -t 5 -T 1 -O mtu -O search -s "$script" \
  >"$E2E_TMP/udhcpc.log" 2>&1 || rc=$?
[ $rc = 0 ] || { show_log "$E2E_TMP/udhcpc.log"; fail "udhcpc exited $rc (no lease)"; }
[ -s "$envdir/bound" ] || { show_log "$E2E_TMP/udhcpc.log"; fail "udhcpc script never got a 'bound' event"; }
sed "s/^/[$E2E_NAME]     /" "$envdir/bound"

expect() {
  local var=$1 want=$2 got
  got=$(sed -n "s/^$var=//p" "$envdir/bound" | head -n1)
  # dns may list several servers; the first must be ours.
  [ "$var" = dns ] && got=${got%% *}
  [ "$got" = "$want" ] || fail "lease: $var=${got:-<unset>}, want $want"
  ok "$var=$got"
}
expect ip "$GUEST_IP"
expect router "$GATEWAY_IP"
expect dns "$DNS_IP"
expect subnet 255.255.255.0
expect mtu "$DEFAULT_MTU"
expect search "corp.test lab.test"
lease=$(sed -n 's/^lease=//p' "$envdir/bound")
[ "$lease" = 86400 ] || fail "lease time $lease, want 86400"
ok "lease=$lease"
pass
