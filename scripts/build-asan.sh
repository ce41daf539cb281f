#!/usr/bin/env bash
# Configures and builds the sanitizer build into ./build-asan: clang, every
# library (lwIP included) with AddressSanitizer and UndefinedBehaviorSanitizer
# at -O1, and the libFuzzer targets (tests/fuzz). The Release build
# (scripts/build.sh, ./build) is separate and untouched. Only what
# scripts/test-asan.sh runs is built (the unit tests, slipway, dns-proxy,
# bench/transport_relay and the fuzz targets), to keep scripts/test.sh short.
#   ALL=1 scripts/build-asan.sh           every target
#   BUILD_DIR=out scripts/build-asan.sh   another build directory
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build-asan}
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build_dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Debug -DSLIPWAY_FUZZ=ON
fi
targets=()
if [ "${ALL:-0}" != 1 ]; then
  targets=(--target slipway_unit slipway dns-proxy transport_relay)
  for f in "$root"/tests/fuzz/fuzz_*.cc; do targets+=("$(basename "$f" .cc)"); done
fi
cmake --build "$build_dir" --parallel "$(nproc)" "${targets[@]}"
