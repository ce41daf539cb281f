#!/usr/bin/env bash
# Every start-up error exits 1 with its message, at once: no hang, no crash,
# nothing left behind. The files slipway reads are checked before they are
# read: a missing hosts file, /dev/zero (once read until the address space
# ran out: SIGSEGV under a 1 GiB limit, 2 GB without), a directory and a FIFO
# (once blocked forever) are refused, for --dns-hosts, for a hosts_file in
# --config and for the --config file itself (`slipway config check` too). An
# error after the stack is built (the control socket path is taken) tears
# down the half-built stack and exits 1 as well.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway

mkfifo "$E2E_TMP/fifo"
mkdir "$E2E_TMP/dir"

# expect_exit1 NAME WANT_MESSAGE CMD...: CMD exits 1 within 10 s and its
# stderr holds WANT_MESSAGE.
expect_exit1() {
  local name=$1 want=$2 rc=0 t0=$SECONDS
  shift 2
  timeout -k 2 10 "$@" >"$E2E_TMP/$name.out" 2>"$E2E_TMP/$name.err" || rc=$?
  [ $rc = 1 ] || { show_log "$E2E_TMP/$name.err"; fail "$name: exit code $rc, want 1 (124: it hung)"; }
  grep -qF -- "$want" "$E2E_TMP/$name.err" || { show_log "$E2E_TMP/$name.err"; fail "$name: no message '$want'"; }
  ok "$name: exit 1 after $((SECONDS - t0)) s: $(grep -F -- "$want" "$E2E_TMP/$name.err" | head -n1)"
}

expect_exit1 hosts-missing 'cannot read the hosts file "/nonexistent/hosts": No such file or directory' \
  "$SLIPWAY" run --dns-hosts /nonexistent/hosts -- true
expect_exit1 hosts-dev-zero 'cannot read the hosts file "/dev/zero": not a regular file (a character device)' \
  bash -c 'ulimit -v 1048576; exec "$0" run --dns-hosts /dev/zero -- true' "$SLIPWAY"
expect_exit1 hosts-dir "cannot read the hosts file \"$E2E_TMP/dir\": not a regular file (a directory)" \
  "$SLIPWAY" run --dns-hosts "$E2E_TMP/dir" -- true
expect_exit1 hosts-fifo "cannot read the hosts file \"$E2E_TMP/fifo\": not a regular file (a FIFO)" \
  "$SLIPWAY" run --dns-hosts "$E2E_TMP/fifo" -- true

printf '[dns]\nhosts_file = "/dev/urandom"\n' >"$E2E_TMP/urandom.toml"
expect_exit1 config-hosts-urandom "$E2E_TMP/urandom.toml:2:14: dns.hosts_file: cannot read the hosts file \"/dev/urandom\"" \
  "$SLIPWAY" run --config "$E2E_TMP/urandom.toml" -- true
expect_exit1 config-check-hosts "$E2E_TMP/urandom.toml:2:14: dns.hosts_file" "$SLIPWAY" config check "$E2E_TMP/urandom.toml"
expect_exit1 config-check-dir "$E2E_TMP/dir: cannot read the configuration file: not a regular file (a directory)" \
  "$SLIPWAY" config check "$E2E_TMP/dir"
expect_exit1 config-check-fifo "$E2E_TMP/fifo: cannot read the configuration file: not a regular file (a FIFO)" \
  "$SLIPWAY" config check "$E2E_TMP/fifo"
expect_exit1 config-dev-zero "/dev/zero: cannot read the configuration file: not a regular file (a character device)" \
  "$SLIPWAY" run --config /dev/zero -- true

# After the stack is built: the control socket's path is a regular file.
: >"$E2E_TMP/not-a-socket"
expect_exit1 control-path "$E2E_TMP/not-a-socket: exists and is not a socket" \
  "$SLIPWAY" run --control "$E2E_TMP/not-a-socket" -- sleep 30.4242
expect_exit1 dgram-path "/nonexistent/dir/sock: cannot bind: No such file or directory" "$SLIPWAY" serve --dgram /nonexistent/dir/sock
# The command of a failed `run` is not left behind.
pgrep -f "sleep 30.4242" >/dev/null && fail "the command of a failed run is still running"
ok "no process left behind"
pass
