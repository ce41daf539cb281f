#!/usr/bin/env bash
# Installs everything slipway needs on Debian 12 (run as root) and fetches the
# lwIP 2.1.3 source from Debian's source package `lwip` into .deps/.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

build_deps=(build-essential cmake ninja-build pkg-config dpkg-dev
  libuv1-dev libslirp-dev libspdlog-dev libfmt-dev catch2
  libtomlplusplus-dev nlohmann-json3-dev libcli11-dev libseccomp-dev
  clang libclang-rt-14-dev llvm)  # clang: the sanitizer build and the fuzzers
test_deps=(iproute2 util-linux busybox curl iperf3 slirp4netns python3
  tshark socat procps dnsmasq dnsutils dnsperf rinetd wrk nginx passt iputils-ping
  qemu-system-x86 ipxe-qemu cpio xz-utils kmod  # ipxe-qemu: test_vm_netboot's ROM
  rootlesskit podman runc uidmap help2man bash-completion man-db
  vde2 ethtool)

need_install=0
for p in "${build_deps[@]}" "${test_deps[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need_install=1
done

src_listed() { apt-cache showsrc lwip 2>/dev/null | grep -q '^Package: lwip'; }

# Debian images often ship without deb-src entries; derive them from the
# binary entries so that `apt-get source lwip` can find the package.
add_deb_src() {
  local f out=/etc/apt/sources.list.d/slipway-deb-src.sources
  : > /tmp/slipway-deb-src.$$
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case "$f" in *slipway-deb-src*) continue;; esac
    grep -q 'debian' "$f" || continue
    sed -e 's/^Types:.*/Types: deb-src/' "$f" >> /tmp/slipway-deb-src.$$
    echo >> /tmp/slipway-deb-src.$$
  done
  if [ -f /etc/apt/sources.list ]; then
    grep -E '^deb [^ ]*(https?://[^ ]*debian)' /etc/apt/sources.list \
      | sed -e 's/^deb /deb-src /' > /tmp/slipway-deb-src-list.$$ || true
    if [ -s /tmp/slipway-deb-src-list.$$ ]; then
      as_root cp /tmp/slipway-deb-src-list.$$ /etc/apt/sources.list.d/slipway-deb-src.list
    fi
    rm -f /tmp/slipway-deb-src-list.$$
  fi
  if [ -s /tmp/slipway-deb-src.$$ ]; then as_root cp /tmp/slipway-deb-src.$$ "$out"; fi
  rm -f /tmp/slipway-deb-src.$$
}

lwip_dir="$root/.deps/lwip"
if [ "$need_install" = 1 ] || [ ! -f "$lwip_dir/src/core/tcp.c" ]; then
  as_root apt-get update -qq
  if ! src_listed; then
    echo "setup: adding deb-src entries for the lwip source package"
    add_deb_src
    as_root apt-get update -qq
  fi
fi
if [ "$need_install" = 1 ]; then
  as_root apt-get install -y -qq --no-install-recommends "${build_deps[@]}" "${test_deps[@]}"
fi

if [ ! -f "$lwip_dir/src/core/tcp.c" ]; then
  rm -rf "$root/.deps/lwip-src"
  mkdir -p "$root/.deps/lwip-src"
  (cd "$root/.deps/lwip-src" && apt-get source -qq lwip 2>&1 | grep -v 'unsandboxed' || true)
  d=$(find "$root/.deps/lwip-src" -maxdepth 1 -mindepth 1 -type d -name 'lwip-*' | head -n1)
  if [ -z "$d" ] || [ ! -f "$d/src/core/tcp.c" ]; then
    echo "setup: could not obtain the lwIP source with 'apt-get source lwip'" >&2
    exit 1
  fi
  rm -rf "$lwip_dir"
  mv "$d" "$lwip_dir"
  rm -rf "$root/.deps/lwip-src"
fi
grep -q 'LWIP_VERSION_MINOR *2\?1' "$lwip_dir/src/include/lwip/init.h" 2>/dev/null || true
echo "setup: dependencies installed; lwIP source in $lwip_dir"
