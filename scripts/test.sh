#!/usr/bin/env bash
# The whole test suite: installs what is needed, builds, and runs every test
# (unit tests and the end-to-end tests in private network namespaces) with
# ctest; then builds the sanitizer build (build-asan/: ASan, UBSan and the
# fuzz targets) and runs the unit tests, the e2e tests labelled `asan` and a
# short run of every fuzzer there (scripts/test-asan.sh).
# Extra arguments go to ctest in the Release build (e.g. -L unit, -R dhcp)
# and skip the sanitizer pass; SLIPWAY_SANITIZERS=0 skips it too.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
status=0
(cd "${BUILD_DIR:-$root/build}" && ctest --output-on-failure --timeout 600 "$@") || status=1
if [ $# -eq 0 ] && [ "${SLIPWAY_SANITIZERS:-1}" != 0 ]; then
  echo "== the sanitizer build (build-asan/)"
  "$root/scripts/build-asan.sh"
  "$root/scripts/test-asan.sh" || status=1
fi
exit $status
