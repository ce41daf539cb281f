#!/usr/bin/env bash
# Runs the libFuzzer targets: each replays its committed corpus
# (tests/fuzz/corpus/TARGET: seeds and regression inputs), then fuzzes for
# SECONDS. New inputs go to BUILD/fuzz/corpus/TARGET, crashes to
# BUILD/fuzz/artifacts/TARGET/. Prints each target's executions per second,
# corpus size and peak RSS; exits 1 if any target crashed, 77 if none could
# run (no user namespaces for the targets that need them).
#
#   tests/fuzz/run.sh 10                  every target, 10 s each (ctest does this, label fuzz)
#   tests/fuzz/run.sh 3600 frame dns      the long campaign, for the targets named
#   tests/fuzz/run.sh --merge 600         ... and minimise what was found into the committed corpus
#   tests/fuzz/run.sh --fresh 10          from the committed corpus only, in BUILD/fuzz/fresh (what ctest does)
#
# FUZZ_BUILD_DIR: the build with -DSLIPWAY_FUZZ=ON (default: build-asan,
# which scripts/test.sh builds). FUZZ_ARGS: more libFuzzer flags.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-asan}
merge=0 fresh=0
while [ $# -gt 0 ]; do
  case "$1" in
    --fresh) fresh=1; shift ;;
    --merge) merge=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
seconds=${1:?usage: run.sh [--fresh] [--merge] SECONDS [TARGET...]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$here"/fuzz_*.cc; do t=$(basename "$f" .cc); targets+=("${t#fuzz_}"); done
fi

failed=0 ran=0
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/fuzz_$t"
  if [ ! -x "$bin" ]; then
    echo "run.sh: $bin is missing: build with scripts/build-asan.sh (-DSLIPWAY_FUZZ=ON)" >&2
    exit 2
  fi
  seeds="$here/corpus/$t"
  out="$build/fuzz"
  [ $fresh = 1 ] && out="$build/fuzz/fresh"
  work="$out/corpus/$t"
  art="$out/artifacts/$t"
  log="$out/$t.log"
  if [ $fresh = 1 ]; then rm -rf "$work"; fi
  mkdir -p "$work" "$art"
  # halt_on_error and no leak check at exit: the targets keep one Stack for
  # the whole run on purpose (lwIP's state is global). libFuzzer still checks
  # each input for memory it left unreachable; use_unaligned because lwIP's
  # IPv6 reassembly keeps the next fragment's pointer in a packed struct at
  # a 4-byte offset, which LeakSanitizer does not scan by default (a queued
  # fragment then looked leaked: corpus/frame/reass-queued-*).
  ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=0:abort_on_error=1} \
  LSAN_OPTIONS=${LSAN_OPTIONS:-use_unaligned=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -error_exitcode=99 -timeout_exitcode=98 -artifact_prefix="$art/" ${FUZZ_ARGS:-} \
      "$work" "$seeds" > "$log" 2>&1
  rc=$?
  # 77 is only a target's own "cannot run here" (fuzz_common.h): libFuzzer's
  # crash and timeout codes are moved off it above (its default for a crash
  # is 77 too, which made a crash look like a skip).
  if [ $rc -eq 77 ]; then
    echo "fuzz $t: skipped ($(head -n1 "$log"))"
    continue
  fi
  ran=$((ran + 1))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n1)
  corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -n1 | cut -d' ' -f2)
  if [ $rc -ne 0 ]; then
    failed=1
    echo "fuzz $t: FAILED (exit $rc) after ${execs:-?} runs; log $log; inputs in $art/"
    grep -E 'ERROR: |SUMMARY: |runtime error|Test unit written' "$log" | head -n 8
  else
    printf 'fuzz %-11s %9s runs %7s exec/s  corpus %-12s peak RSS %s MB\n' \
      "$t" "${execs:-?}" "${rate:-?}" "${corp:-?}" "${rss:-?}"
  fi
  if [ $merge = 1 ] && [ $rc -eq 0 ]; then
    "$bin" -merge=1 "$seeds" "$work" >> "$log" 2>&1 && echo "fuzz $t: merged into $seeds"
  fi
done
if [ $failed = 1 ]; then exit 1; fi
if [ $ran = 0 ]; then exit 77; fi
exit 0
