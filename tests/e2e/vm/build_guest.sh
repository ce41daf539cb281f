#!/usr/bin/env bash
# Builds the small Linux guest the VM end-to-end tests boot: a Debian kernel
# (linux-image-amd64's current dependency) and an initramfs holding a static
# busybox, the virtio-net modules (virtio_pci, virtio_net and what modinfo
# says they depend on), udp_probe (built here, static), portfwd-agent (the
# static binary named by $PORTFWD_AGENT, copied in when it exists) and
# tests/e2e/vm/init.
#
# Packages are fetched with `apt-get download` (no install, no root needed
# beyond what apt's cache wants) into $CACHE/debs and kept there, so a
# repeated run does not download again. Modules are decompressed (.ko.xz /
# .ko.zst) because busybox insmod takes plain ELF objects only.
#
# Usage: build_guest.sh OUTDIR     -> OUTDIR/vmlinuz, OUTDIR/initramfs.cpio.gz
# Env:   SLIPWAY_CACHE (default /var/cache/slipway), PORTFWD_AGENT (optional:
#        the portfwd-agent binary to put in the guest as /bin/portfwd-agent)
# Runs outside the tests' private network namespace (it needs the mirror).
set -euo pipefail
out=${1:?usage: build_guest.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
cache=${SLIPWAY_CACHE:-/var/cache/slipway}
debs=$cache/debs
mkdir -p "$debs" "$out"

# Resolve the metapackage to the real kernel image package.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "build_guest: cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 1; }

fetch() {  # fetch PKG: the .deb in $debs (downloaded once)
  local p=$1 f
  f=$(ls "$debs/${p}_"*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$f" ]; then
    (cd "$debs" && apt-get download -qq "$p" >/dev/null 2>&1) ||
      { echo "build_guest: apt-get download $p failed" >&2; exit 1; }
    f=$(ls "$debs/${p}_"*.deb | head -n1)
  fi
  echo "$f"
}
kdeb=$(fetch "$kpkg")
bdeb=$(fetch busybox-static)

agent=${PORTFWD_AGENT:-}
[ -n "$agent" ] && [ -x "$agent" ] || agent=
agent_sum=none
[ -z "$agent" ] || agent_sum=$(sha256sum <"$agent" | cut -c1-16)
stamp="$(basename "$kdeb") $(basename "$bdeb") $(cat "$here/init" "$here/udp_probe.c" | sha256sum | cut -c1-16) agent=$agent_sum"
if [ -s "$out/initramfs.cpio.gz" ] && [ -s "$out/vmlinuz" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/slipway-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT
kroot=$work/kernel
mkdir -p "$kroot"
# Only the kernel image and the network modules are needed: extract all
# (dpkg-deb cannot filter) but into a scratch directory removed at exit.
dpkg-deb -x "$kdeb" "$kroot"
kver=$(ls "$kroot/lib/modules" | head -n1)
cp "$kroot/boot/vmlinuz-$kver" "$out/vmlinuz"

root=$work/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc,www,lib/modules,usr/share/udhcpc}
dpkg-deb -x "$bdeb" "$work/bb"
cp "$work/bb/bin/busybox" "$root/bin/busybox"
# The modules the guest loads, dependencies first (modinfo reads their
# `depends`; modules.dep is made by depmod at install and is not in the .deb).
declare -A seen=()
order=()
add_module() {
  local m=$1 src d
  [ -z "${seen[$m]:-}" ] || return 0
  seen[$m]=1
  src=$(find "$kroot/lib/modules/$kver" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -n1)
  [ -n "$src" ] || { echo "build_guest: module $m not found in $kpkg" >&2; exit 1; }
  for d in $(modinfo -F depends "$src" | tr ',' ' '); do add_module "$d"; done
  case "$src" in
    *.ko.xz) xz -dc "$src" >"$root/lib/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$src" >"$root/lib/modules/$m.ko" ;;
    *) cp "$src" "$root/lib/modules/$m.ko" ;;
  esac
  order+=("$m")
}
# Built into Debian's kernel when the config says =y; modules otherwise.
for m in virtio_pci virtio_net; do
  sym=CONFIG_$(echo "$m" | tr a-z A-Z)
  grep -q "^$sym=y" "$kroot/boot/config-$kver" || add_module "$m"
done
printf '%s\n' "${order[@]}" >"$root/lib/modules/order"
${CC:-cc} -static -Os -o "$root/bin/udp_probe" "$here/udp_probe.c"
[ -z "$agent" ] || cp "$agent" "$root/bin/portfwd-agent"
cp "$here/init" "$root/init"
chmod 755 "$root/init"
# Replaced in one rename, so a guest booting from the cache meanwhile never
# reads a half-written initramfs.
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out/initramfs.cpio.gz.tmp"
mv -f "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
echo "$stamp" >"$out/stamp"
