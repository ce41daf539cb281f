# shellcheck shell=bash
# Helpers for the tests that run slirp4netns's real callers (RootlessKit,
# Podman) against slipway-slirp4netns and against the real slirp4netns:
# tests/e2e/test_rootlesskit.sh, test_podman.sh, test_deb_package.sh.
# Sourced after lib.sh and e2e_init (so inside the private test host).
#
# What they change on the machine, and undo at exit (rootless_cleanup):
#   - a user `slipway-e2e` (useradd; Debian's useradd gives it subordinate
#     uid/gid ranges, added with usermod when it does not), removed with
#     userdel together with its ranges; every process left running under
#     that user (Podman's rootless pause process) is killed by PID first;
#   - /dev/net/tun's mode: an unprivileged user needs to open it (stock
#     Debian has 0666; this machine has 0600), so it is set to 0666 while
#     the test runs and put back afterwards.
# The files the user works in are under $E2E_TMP, removed by lib.sh.

RL_USER=slipway-e2e
RL_CREATED=0
RL_TUN_MODE=

# compat_binaries: "NAME=PATH" for each slirp4netns the tests run: slipway's
# (SLIPWAY_SLIRP4NETNS, default next to $SLIPWAY; copied into $E2E_TMP so
# that the unprivileged user may run it) and the real one (not with
# COMPAT_ONLY=slipway, as test_deb_package.sh runs it).
compat_binaries() {
  local ours=${SLIPWAY_SLIRP4NETNS:-$(dirname "$SLIPWAY")/slipway-slirp4netns}
  [ -x "$ours" ] || fail "slipway-slirp4netns not found at $ours (build it, or set SLIPWAY_SLIRP4NETNS)"
  mkdir -p "$E2E_TMP/bin"
  cp "$ours" "$E2E_TMP/bin/slipway-slirp4netns"
  chmod 755 "$E2E_TMP/bin" "$E2E_TMP/bin/slipway-slirp4netns"
  COMPAT_BINS=("slipway=$E2E_TMP/bin/slipway-slirp4netns")
  if [ "${COMPAT_ONLY:-}" = slipway ]; then
    log "COMPAT_ONLY=slipway: the real slirp4netns is not run this time"
  elif command -v slirp4netns >/dev/null 2>&1; then
    COMPAT_BINS+=("slirp4netns=$(command -v slirp4netns)")
  else
    fail "slirp4netns is not installed (scripts/setup.sh installs it): the test compares against it"
  fi
}

# rootless_setup: the unprivileged user and /dev/net/tun (see the top).
rootless_setup() {
  [ "$(id -u)" = 0 ] || skip "needs root to create the unprivileged test user"
  need_cmd useradd userdel usermod setpriv newuidmap newgidmap
  if ! id "$RL_USER" >/dev/null 2>&1; then
    useradd --no-create-home --home-dir "$E2E_TMP/home" --shell /bin/sh "$RL_USER" ||
      fail "useradd $RL_USER failed"
    RL_CREATED=1
  fi
  grep -q "^$RL_USER:" /etc/subuid || usermod --add-subuids 300000-365535 "$RL_USER"
  grep -q "^$RL_USER:" /etc/subgid || usermod --add-subgids 300000-365535 "$RL_USER"
  RL_UID=$(id -u "$RL_USER")
  AS_USER=(setpriv --reuid="$RL_USER" --regid="$RL_USER" --init-groups
    env HOME="$E2E_TMP/home" XDG_RUNTIME_DIR="$E2E_TMP/xdg" PATH="$PATH")
  mkdir -p "$E2E_TMP/home" "$E2E_TMP/xdg"
  chown "$RL_USER:$RL_USER" "$E2E_TMP/home" "$E2E_TMP/xdg"
  chmod 700 "$E2E_TMP/xdg"
  local mode
  mode=$(stat -c %a /dev/net/tun)
  if [ "$mode" != 666 ]; then
    RL_TUN_MODE=$mode
    log "setting /dev/net/tun to 0666 for the unprivileged user (it is $mode here; restored at exit)"
    chmod 0666 /dev/net/tun
  fi
  trap 'rl_rc=$?; rootless_cleanup; (exit $rl_rc); e2e_cleanup' EXIT
}

rootless_cleanup() {
  local p
  if id "$RL_USER" >/dev/null 2>&1; then
    for p in $(ps -o pid= -u "$RL_USER" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    sleep 0.2
  fi
  if [ -n "$RL_TUN_MODE" ]; then chmod "$RL_TUN_MODE" /dev/net/tun || true; fi
  if [ "$RL_CREATED" = 1 ]; then
    local i
    for i in 1 2 3 4 5; do userdel "$RL_USER" 2>/dev/null && break; sleep 0.3; done
  fi
}

# as_user CMD...: runs CMD as the unprivileged user, with HOME and
# XDG_RUNTIME_DIR in $E2E_TMP. "${AS_USER[@]}" is the same prefix, for bg.
as_user() { "${AS_USER[@]}" "$@"; }

# use_test_dns NAME ADDR: a dnsmasq on the test host's 127.0.0.1:53 that
# answers NAME with ADDR (and nothing else), and a private /etc/resolv.conf
# naming it, so that slipway's DNS proxy and libslirp both forward the
# guest's queries there. Only this test's mount namespace sees the file.
use_test_dns() {
  need_cmd dnsmasq
  bg dnsmasq dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --user=root \
    --listen-address=127.0.0.1 --bind-interfaces --port=53 --address="/$1/$2" --log-queries \
    --log-facility="$E2E_TMP/dnsmasq.queries"
  wait_listen 53 udp || { show_log "$E2E_TMP/dnsmasq.log"; fail "dnsmasq did not start"; }
  echo "nameserver 127.0.0.1" >"$E2E_TMP/resolv.conf"
  chmod 644 "$E2E_TMP/resolv.conf"
  mount --bind "$E2E_TMP/resolv.conf" /etc/resolv.conf || fail "cannot bind-mount a test resolv.conf"
}
