#!/usr/bin/env bash
# Runs tests in the sanitizer build (scripts/build-asan.sh, ./build-asan):
# by default the unit tests, the namespace end-to-end tests labelled `asan`
# and a short run of every fuzz target (label `fuzz`, 10 s each); extra
# arguments go to ctest instead (e.g. `-L e2e -E test_vm` for every
# namespace e2e test under the sanitizers). Any sanitizer report, from any
# process a test started, fails the run: reports are written to
# build-asan/sanitizer-reports/ and printed at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-asan}
reports="$build/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:log_path=$reports/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan"
# lwIP's IPv6 reassembly keeps pointers in a packed struct at 4-byte offsets:
# without use_unaligned LeakSanitizer misses them and reports queued
# fragments as leaked (tests/fuzz/run.sh).
export LSAN_OPTIONS="use_unaligned=1"
cd "$build"
status=0
if [ $# -gt 0 ]; then
  ctest --output-on-failure --timeout 600 "$@" || status=1
else
  # The tests one at a time, as in the Release build (some share namespace
  # names and addresses); the fuzzers side by side.
  ctest --output-on-failure --timeout 600 -L '^(unit|asan)$' || status=1
  ctest --output-on-failure --timeout 600 -L '^fuzz$' -j "$(nproc)" || status=1
fi
if compgen -G "$reports/*" >/dev/null; then
  echo "test-asan: sanitizer reports:" >&2
  for f in "$reports"/*; do echo "== $f" >&2; head -n 60 "$f" >&2; done
  status=1
fi
exit $status
