#!/usr/bin/env bash
# The whole test suite: installs what is needed, builds, and runs every test
# (unit tests and the end-to-end tests in private network namespaces) with
# ctest. Extra arguments go to ctest (e.g. -L unit, -R dhcp).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
cd "${BUILD_DIR:-$root/build}"
ctest --output-on-failure --timeout 600 "$@"
