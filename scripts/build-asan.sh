#!/usr/bin/env bash
# Configures and builds the sanitizer build into ./build-asan: clang, every
# library (lwIP included) with AddressSanitizer and UndefinedBehaviorSanitizer
# at -O1, and the libFuzzer targets (tests/fuzz). The Release build
# (scripts/build.sh, ./build) is separate and untouched.
#   BUILD_DIR=out scripts/build-asan.sh   another build directory
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build-asan}
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build_dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Debug -DSLIPWAY_FUZZ=ON
fi
cmake --build "$build_dir" --parallel "$(nproc)"
