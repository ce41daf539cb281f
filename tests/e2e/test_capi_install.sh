#!/usr/bin/env bash
# Installation and the C API from outside the tree: `cmake --install` of the
# build directory into a private prefix, then examples/embed built against
# that prefix twice, with CMake (find_package(slipway) -> slipway::slipway)
# and with make (pkg-config --cflags --libs slipway), and both binaries run:
# each embeds slipway on its own loop, gets the gateway's ARP and ping
# replies, and exits 0. Also checks that the installed tree has the programs,
# the header, both package files, and that libslipway.so exports only the
# C API (slipway_*).
#
# The build directory is the parent of $SLIPWAY's directory (SLIPWAY is
# <build>/netstack/slipway).
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd cmake make cc pkg-config

build_dir=$(cd "$(dirname "$SLIPWAY")/.." && pwd)
[ -f "$build_dir/CMakeCache.txt" ] || fail "no CMake build directory at $build_dir (from SLIPWAY=$SLIPWAY)"
prefix=$E2E_TMP/prefix

log "check: cmake --install $build_dir --prefix $prefix"
cmake --install "$build_dir" --prefix "$prefix" >"$E2E_TMP/install.log" 2>&1 ||
  { show_log "$E2E_TMP/install.log"; fail "cmake --install failed"; }
for f in bin/slipway bin/dns-proxy bin/portfwd bin/portfwd-agent include/slipway.h; do
  [ -e "$prefix/$f" ] || fail "$f was not installed"
done
pc=$(find "$prefix" -name slipway.pc -path '*/pkgconfig/*' | head -n 1)
config=$(find "$prefix" -name slipwayConfig.cmake | head -n 1)
[ -n "$pc" ] || fail "slipway.pc was not installed"
[ -n "$config" ] || fail "slipwayConfig.cmake was not installed"
[ -e "$(dirname "$config")/slipwayConfigVersion.cmake" ] || fail "slipwayConfigVersion.cmake was not installed"
libdir=$(dirname "$(dirname "$pc")")
[ -L "$libdir/libslipway.so" ] && [ -e "$libdir/libslipway.so.0" ] ||
  fail "libslipway.so and its SONAME link libslipway.so.0 are not in $libdir"
ok "programs, header, library, slipway.pc and the CMake package installed (libdir $libdir)"

if command -v nm >/dev/null 2>&1; then
  others=$(nm -D --defined-only "$libdir/libslipway.so.0" | awk '$2 != "A" {print $3}' | grep -v '^slipway_' || true)
  [ -z "$others" ] || fail "libslipway.so exports more than the C API: $(echo "$others" | head -n 5 | tr '\n' ' ')"
  ok "libslipway.so exports only slipway_* ($(nm -D --defined-only "$libdir/libslipway.so.0" | grep -c ' T slipway_') functions)"
fi

src=$SLIPWAY_SOURCE_DIR/examples/embed

log "check: examples/embed with CMake and find_package(slipway)"
cmake -S "$src" -B "$E2E_TMP/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS=-Werror >"$E2E_TMP/cmake-example.log" 2>&1 &&
  cmake --build "$E2E_TMP/cmake-build" >>"$E2E_TMP/cmake-example.log" 2>&1 ||
  { show_log "$E2E_TMP/cmake-example.log"; fail "building the example with CMake failed"; }
LD_LIBRARY_PATH=$libdir timeout 20 "$E2E_TMP/cmake-build/vmm_embed" >"$E2E_TMP/run-cmake.log" 2>&1 ||
  { show_log "$E2E_TMP/run-cmake.log"; fail "vmm_embed (CMake build) did not exit 0"; }
grep -q 'ARP reply' "$E2E_TMP/run-cmake.log" && grep -q 'echo reply' "$E2E_TMP/run-cmake.log" ||
  { show_log "$E2E_TMP/run-cmake.log"; fail "vmm_embed (CMake build) did not report both replies"; }
ok "CMake build ran: ARP and echo replies"

log "check: examples/embed with make and pkg-config"
mkdir "$E2E_TMP/make-build"
cp "$src/vmm_embed.c" "$src/Makefile" "$E2E_TMP/make-build/"
PKG_CONFIG_PATH=$libdir/pkgconfig make -C "$E2E_TMP/make-build" CFLAGS="-O2 -Werror" \
  >"$E2E_TMP/make-example.log" 2>&1 ||
  { show_log "$E2E_TMP/make-example.log"; fail "building the example with make failed"; }
LD_LIBRARY_PATH=$libdir timeout 20 "$E2E_TMP/make-build/vmm_embed" >"$E2E_TMP/run-make.log" 2>&1 ||
  { show_log "$E2E_TMP/run-make.log"; fail "vmm_embed (make build) did not exit 0"; }
grep -q 'echo reply' "$E2E_TMP/run-make.log" || { show_log "$E2E_TMP/run-make.log"; fail "no echo reply"; }
ok "make build ran: ARP and echo replies"

pass
