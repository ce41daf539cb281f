#!/usr/bin/env bash
# --tftp DIR and --boot-file NAME (QEMU's tftp= and bootfile=): real TFTP
# clients in a `slipway run` guest fetch from the gateway.
#   - busybox tftp -g -b 1400 and curl tftp:// (blksize 65464, the default
#     512 through a symlink inside DIR, and 1400 over IPv6 from fd00::2)
#     fetch a multi-MiB random file; its SHA-256 matches; the rate is
#     printed;
#   - with --restrict too (the TFTP server is a gateway service);
#   - ../, an absolute path and a symlink out of DIR are refused, and
#     nothing outside DIR arrives; a write (tftp -p) is refused;
#   - udhcpc sees the boot file (file field, option 67), the next server
#     (siaddr) and the TFTP server (option 66) with --boot-file, and none of
#     them with --tftp alone;
#   - --tftp naming a missing directory or a file is refused at start,
#     naming the option.
# Runs on both engines (ctest: test_tftp and test_tftp_slirp).
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd busybox
need_cmd curl
busybox --list 2>/dev/null | grep -qx tftp || skip "busybox has no tftp applet"
curl --version | grep -q '^Protocols:.* tftp' || skip "curl has no tftp"

dir=$E2E_TMP/tftproot
mkdir -p "$dir/sub" "$E2E_TMP/outside"
N=$((6 * 1024 * 1024 + 123))
make_random_file "$dir/sub/image.bin" "$N"
want=$(sha256_of "$dir/sub/image.bin")
echo "outside secret" >"$E2E_TMP/outside/secret"
ln -s "$E2E_TMP/outside/secret" "$dir/escape"
ln -s sub/image.bin "$dir/inside-link"
chmod -R a+rX "$dir"
out=$E2E_TMP/out
mkdir -m 777 "$out"

# Start-up refusals.
for bad in "$E2E_TMP/missing" "$dir/sub/image.bin"; do
  msg=$(slipway_run --tftp "$bad" -- true 2>&1) && fail "--tftp $bad was accepted"
  grep -q -- "--tftp" <<<"$msg" || fail "the error for --tftp $bad does not name --tftp: $msg"
done
ok "a missing directory and a file are refused naming --tftp ($(head -1 <<<"$msg"))"

# Timed fetches inside the guest: each prints "NAME SECONDS".
cat >"$E2E_TMP/fetch.sh" <<EOF
#!/bin/sh
set -e
t() { s=\$(date +%s%N); "\$@"; e=\$(date +%s%N); echo "\$((e - s))"; }
echo "busybox1400 \$(t busybox tftp -g -b 1400 -l $out/bb.bin -r sub/image.bin $GATEWAY_IP)"
echo "curl65464 \$(t curl -sS --tftp-blksize 65464 -o $out/curl.bin tftp://$GATEWAY_IP/sub/image.bin)"
echo "curl512 \$(t curl -sS --tftp-no-options -o $out/curl512.bin tftp://$GATEWAY_IP/inside-link)"
echo "curl6 \$(t curl -sS -g --tftp-blksize 1400 -o $out/curl6.bin "tftp://[fd00::2]/sub/image.bin")"
EOF
chmod 755 "$E2E_TMP/fetch.sh"

for mode in plain restrict; do
  extra=()
  [ "$mode" = restrict ] && extra=(--restrict)
  rm -f "$out"/*.bin
  rc=0
  slipway_run --tftp "$dir" "${extra[@]}" -- "$E2E_TMP/fetch.sh" >"$E2E_TMP/fetch-$mode.log" 2>&1 || rc=$?
  [ $rc = 0 ] || { show_log "$E2E_TMP/fetch-$mode.log"; fail "fetch ($mode) exited $rc"; }
  for f in bb curl curl512 curl6; do
    [ -f "$out/$f.bin" ] || { show_log "$E2E_TMP/fetch-$mode.log"; fail "$f: nothing fetched ($mode)"; }
    got=$(sha256_of "$out/$f.bin")
    [ "$got" = "$want" ] || fail "$f ($mode): sha256 $got, want $want ($(stat -c %s "$out/$f.bin") of $N bytes)"
  done
  while read -r name ns; do
    case $name in busybox1400 | curl65464 | curl512 | curl6) ;; *) continue ;; esac
    rate=$(python3 -c "print(f'{$N / 1048576 / ($ns / 1e9):.1f}')")
    ok "$mode: $name: $N bytes intact in $(python3 -c "print(f'{$ns / 1e9:.2f}')") s ($rate MiB/s)"
  done <"$E2E_TMP/fetch-$mode.log"
done

log "check: names outside the directory are refused"
cat >"$E2E_TMP/escape.sh" <<EOF
#!/bin/sh
cd $out
for name in ../outside/secret sub/../../outside/secret $E2E_TMP/outside/secret escape /etc/passwd; do
  if busybox tftp -g -l $out/leak -r "\$name" $GATEWAY_IP 2>$out/err; then echo "FETCHED \$name"; else echo "refused \$name: \$(cat $out/err)"; fi
done
if curl -sS -o $out/leak2 "tftp://$GATEWAY_IP/escape" 2>$out/err; then echo "FETCHED curl escape"; else echo "refused curl escape: \$(cat $out/err)"; fi
echo hello >$out/upload.txt
if busybox tftp -p -l $out/upload.txt -r upload.txt $GATEWAY_IP 2>$out/err; then echo "WROTE upload"; else echo "refused upload: \$(cat $out/err)"; fi
EOF
chmod 755 "$E2E_TMP/escape.sh"
slipway_run --tftp "$dir" -- "$E2E_TMP/escape.sh" >"$E2E_TMP/escape.log" 2>&1 || true
sed "s/^/[$E2E_NAME]     /" "$E2E_TMP/escape.log"
grep -q -e FETCHED -e WROTE "$E2E_TMP/escape.log" && fail "a name outside DIR was served, or a write accepted"
[ "$(grep -c '^refused' "$E2E_TMP/escape.log")" = 7 ] || fail "expected 7 refusals"
grep -q 'refused upload:.*\(read-only\|ccess violation\)' "$E2E_TMP/escape.log" || fail "the write was not refused as an access violation"
[ ! -s "$out/leak" ] && [ ! -s "$out/leak2" ] || fail "bytes from outside DIR arrived"
[ ! -e "$dir/upload.txt" ] || fail "the write created a file in DIR"
ok "../, absolute paths, an escaping symlink and a write are refused"

log "check: DHCP announces the boot file with --boot-file only"
busybox --list 2>/dev/null | grep -qx udhcpc || skip "busybox has no udhcpc applet"
envdir=$E2E_TMP/env
mkdir -m 777 "$envdir"
cat >"$E2E_TMP/udhcpc.sh" <<SCRIPT
#!/bin/sh
env | grep -E '^(ip|siaddr|boot_file|bootfile|tftp|sname)=' | sort >"$envdir/\$1.\$TAG"
exit 0
SCRIPT
chmod 755 "$E2E_TMP/udhcpc.sh"
dhcp() {
  local tag=$1; shift
  TAG=$tag slipway_run --no-configure "$@" -- \
    busybox udhcpc -i eth0 -f -q -n -t 5 -T 1 -O tftp -O bootfile -s "$E2E_TMP/udhcpc.sh" \
    >"$E2E_TMP/udhcpc-$tag.log" 2>&1 || { show_log "$E2E_TMP/udhcpc-$tag.log"; fail "udhcpc ($tag) failed"; }
  [ -s "$envdir/bound.$tag" ] || fail "udhcpc ($tag) never got a 'bound' event"
  sed "s/^/[$E2E_NAME]     $tag: /" "$envdir/bound.$tag"
}
dhcp boot --tftp "$dir" --boot-file sub/boot.ipxe
for kv in "siaddr=$GATEWAY_IP" "boot_file=sub/boot.ipxe" "bootfile=sub/boot.ipxe" "tftp=$GATEWAY_IP"; do
  grep -qx "$kv" "$envdir/bound.boot" || fail "the lease lacks $kv"
done
ok "the lease names the boot file and the gateway as next server and TFTP server"
dhcp noboot --tftp "$dir"
grep -qE '^(boot_file|bootfile|tftp)=' "$envdir/bound.noboot" && fail "--tftp alone announced a boot file"
grep -q "^siaddr=$GATEWAY_IP" "$envdir/bound.noboot" && fail "--tftp alone set siaddr"
ok "--tftp alone says nothing about booting"
pass
