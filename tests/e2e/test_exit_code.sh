#!/usr/bin/env bash
# `slipway run` exits with COMMAND's exit code (and 127 with a message when
# COMMAND cannot be executed); the help texts list the options.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway

log "check: slipway run -- sh -c 'exit 42' exits 42"
rc=0; slipway_run -- sh -c 'exit 42' >"$E2E_TMP/42.log" 2>&1 || rc=$?
[ $rc = 42 ] || { show_log "$E2E_TMP/42.log"; fail "exit code $rc, want 42"; }
ok "exit code 42"

log "check: slipway run -- true exits 0, -- false exits 1"
rc=0; slipway_run -- true >"$E2E_TMP/true.log" 2>&1 || rc=$?
[ $rc = 0 ] || { show_log "$E2E_TMP/true.log"; fail "'true' gave exit code $rc"; }
rc=0; slipway_run -- false >"$E2E_TMP/false.log" 2>&1 || rc=$?
[ $rc = 1 ] || { show_log "$E2E_TMP/false.log"; fail "'false' gave exit code $rc"; }
ok "exit codes 0 and 1"

log "check: a command killed by a signal gives 128+N"
rc=0; slipway_run -- sh -c 'kill -TERM $$' >"$E2E_TMP/sig.log" 2>&1 || rc=$?
[ $rc = 143 ] || { show_log "$E2E_TMP/sig.log"; fail "SIGTERM-killed command gave exit code $rc, want 143"; }
ok "exit code 143 for SIGTERM"

log "check: slipway run -- /nonexistent exits 127 with a message"
rc=0; slipway_run -- /nonexistent/command >"$E2E_TMP/ne.out" 2>"$E2E_TMP/ne.err" || rc=$?
[ $rc = 127 ] || { show_log "$E2E_TMP/ne.err"; fail "exit code $rc, want 127"; }
grep -q 'nonexistent' "$E2E_TMP/ne.err" ||
  { show_log "$E2E_TMP/ne.err"; fail "no error message naming the command on stderr"; }
ok "exit code 127: $(grep nonexistent "$E2E_TMP/ne.err" | head -n1)"

log "check: stdout of COMMAND passes through"
out=$(slipway_run -- echo hello-from-guest 2>/dev/null) || fail "echo failed"
[ "$out" = hello-from-guest ] || fail "stdout was '$out', want 'hello-from-guest'"
ok "stdout passes through"

log "check: COMMAND gets exactly its own arguments (including ones that look like options)"
want="['a', 'b c', '-x', '--mtu', '9000', '--']"
out=$(slipway_run -- python3 -c 'import sys; print(sys.argv[1:])' a 'b c' -x --mtu 9000 -- 2>/dev/null) ||
  fail "slipway run -- python3 -c ... failed"
[ "$out" = "$want" ] || fail "COMMAND's arguments were $out, want $want"
out=$(slipway_run -- python3 -c 'import sys; print(sys.argv[1:])' 2>/dev/null) || fail "slipway run -- python3 -c ... failed"
[ "$out" = "[]" ] || fail "COMMAND without arguments got $out, want []"
ok "arguments passed unchanged: $want"

check_help() {
  local what=$1; shift
  local rc=0
  timeout 10 "$SLIPWAY" "$@" --help >"$E2E_TMP/help.out" 2>&1 || rc=$?
  [ $rc = 0 ] || { show_log "$E2E_TMP/help.out"; fail "'slipway $* --help' exited $rc"; }
  for opt in $what; do
    grep -q -- "$opt" "$E2E_TMP/help.out" ||
      { show_log "$E2E_TMP/help.out" 60; fail "'slipway $* --help' does not mention $opt"; }
  done
  ok "slipway $* --help lists: $what"
}
log "check: help texts"
rc=0; timeout 10 "$SLIPWAY" --help >"$E2E_TMP/help.out" 2>&1 || rc=$?
[ $rc = 0 ] || { show_log "$E2E_TMP/help.out"; fail "'slipway --help' exited $rc"; }
grep -q run "$E2E_TMP/help.out" && grep -q attach "$E2E_TMP/help.out" ||
  { show_log "$E2E_TMP/help.out" 60; fail "'slipway --help' does not list the run and attach subcommands"; }
ok "slipway --help lists run and attach"
check_help "--mtu --no-host-loopback --no-configure --pcap --log-level" run
check_help "--netns --no-configure" attach

log "check: an unknown option is rejected with a non-zero exit"
rc=0; timeout 10 "$SLIPWAY" run --no-such-option -- true >"$E2E_TMP/bad.log" 2>&1 || rc=$?
[ $rc != 0 ] || fail "'slipway run --no-such-option' exited 0"
ok "unknown option rejected (exit $rc)"
pass
