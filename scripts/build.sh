#!/usr/bin/env bash
# Configures and builds slipway (Release by default) into ./build.
#   BUILD_TYPE=Debug scripts/build.sh     a debug build
#   BUILD_DIR=out scripts/build.sh        another build directory
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build_dir" "${gen[@]}" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}"
fi
cmake --build "$build_dir" --parallel "$(nproc)"
