#!/usr/bin/env bash
# The Debian package: `cpack -G DEB` in the build directory makes
# slipway_VERSION_ARCH.deb; it is installed with `apt-get install
# ./slipway_*.deb` into a clean root, where the test checks the installed
# files (the five programs, libslipway with its header, pkg-config file and
# CMake package, man pages, bash completion), that `man slipway` and
# `man slipway-slirp4netns` show the pages, that bash-completion finds and
# runs the completion for both commands, and then runs the RootlessKit check
# (test_rootlesskit.sh, slipway only) against the installed
# /usr/bin/slipway-slirp4netns; last, `apt-get remove slipway` removes it.
#
# The clean root: an overlay of this machine's root filesystem with an
# empty tmpfs as its upper layer, in the test's private mount namespace,
# made the root of each command's own mount namespace (pivot_root). It has every dependency the package declares (the
# machine's own packages), so apt-get needs no download, and nothing of
# slipway installed; whatever apt-get, dpkg and the RootlessKit check change
# (the package's files, dpkg's database, the test user in /etc/passwd,
# /dev/net/tun's mode) lands in the tmpfs and is gone when the test ends:
# the machine itself is never modified. /dev holds only the nodes the checks
# need (made in the overlay); /proc and /sys are fresh mounts. A debootstrap
# root would need a download of the whole base system on every run.
. "$(dirname "$0")/lib.sh"
export E2E_TIMEOUT=${E2E_TIMEOUT:-170}
e2e_init "$@"
require_slipway
need_cmd cpack dpkg-deb unshare mount umount

build_dir=$(cd "$(dirname "$SLIPWAY")/.." && pwd)
[ -f "$build_dir/CPackConfig.cmake" ] || fail "no CPackConfig.cmake in $build_dir (configure the build first)"

log "check: cpack -G DEB in $build_dir"
t0=$(date +%s%N)
(cd "$E2E_TMP" && cpack -G DEB --config "$build_dir/CPackConfig.cmake" -B "$E2E_TMP/pkg") >"$E2E_TMP/cpack.log" 2>&1 ||
  { show_log "$E2E_TMP/cpack.log"; fail "cpack -G DEB failed"; }
deb=$(ls "$E2E_TMP"/pkg/slipway_*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || { show_log "$E2E_TMP/cpack.log"; fail "cpack made no slipway_*.deb"; }
ok "$(basename "$deb") built in $(( ($(date +%s%N) - t0) / 1000000 )) ms; $(dpkg-deb -f "$deb" Depends)"

# ------------------------------------------------------------ clean root
OVL=$(mktemp -d /tmp/slipway-deb-root.XXXXXX)
ROOT=$OVL/root
deb_cleanup() {
  local m
  for m in "$ROOT/dev/pts" "$ROOT/sys" "$ROOT/proc" "$ROOT" "$OVL/layers"; do
    mountpoint -q "$m" 2>/dev/null && umount -l "$m"
  done
  # Only empty directories are left: nothing under a mount is ever removed.
  rmdir "$OVL/layers" "$ROOT" "$OVL" 2>/dev/null || true
}
trap 'deb_rc=$?; deb_cleanup; (exit $deb_rc); e2e_cleanup' EXIT
mkdir -p "$OVL/layers" "$ROOT"
mount -t tmpfs -o size=1g tmpfs "$OVL/layers"
mkdir "$OVL/layers/upper" "$OVL/layers/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$OVL/layers/upper,workdir=$OVL/layers/work" "$ROOT" ||
  fail "cannot mount an overlay of / (overlayfs)"
mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
mkdir -p "$ROOT/dev/net" "$ROOT/dev/pts" "$ROOT/dev/shm"
for node in "null c 1 3" "zero c 1 5" "full c 1 7" "random c 1 8" "urandom c 1 9" "tty c 5 0" "net/tun c 10 200"; do
  set -- $node
  rm -f "$ROOT/dev/$1"
  mknod -m 666 "$ROOT/dev/$1" "$2" "$3" "$4"
done
chmod 600 "$ROOT/dev/net/tun"  # as on this machine: the RootlessKit check opens it for its user
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOT/dev/pts"
ln -sf pts/ptmx "$ROOT/dev/ptmx"
# in_root CMD...: CMD with the clean root as its root: a new mount
# namespace pivots into it (not chroot: the kernel refuses a chrooted
# process a new user namespace, which RootlessKit needs) and drops the old
# root.
in_root() {
  unshare --mount --propagation private sh -c 'cd "$1" && mkdir -p .oldroot && pivot_root . .oldroot &&
    umount -l /.oldroot && rmdir /.oldroot && shift && exec "$@"' sh "$ROOT" \
    env -u E2E_INNER -u E2E_OUTER_NETNS PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
[ ! -e "$ROOT/usr/bin/slipway" ] || fail "the root already has /usr/bin/slipway: not a clean root"

log "check: apt-get install ./$(basename "$deb") in the clean root"
cp "$deb" "$ROOT/tmp/"
t0=$(date +%s%N)
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "/tmp/$(basename "$deb")" \
  >"$E2E_TMP/apt.log" 2>&1 || { show_log "$E2E_TMP/apt.log"; fail "apt-get install failed"; }
grep -E '^Get:' "$E2E_TMP/apt.log" | grep -qv " /tmp/slipway_" && { show_log "$E2E_TMP/apt.log"; fail "apt-get downloaded something"; }
ok "installed in $(( ($(date +%s%N) - t0) / 1000000 )) ms: $(in_root dpkg-query -W -f='${Package} ${Version} ${Status}' slipway)"

for f in /usr/bin/slipway /usr/bin/slipway-slirp4netns /usr/bin/portfwd /usr/bin/dns-proxy /usr/bin/portfwd-agent \
  /usr/include/slipway.h /usr/lib/pkgconfig/slipway.pc /usr/lib/cmake/slipway/slipwayConfig.cmake \
  /usr/share/man/man1/slipway.1.gz /usr/share/man/man1/slipway-slirp4netns.1.gz \
  /usr/share/bash-completion/completions/slipway /usr/share/bash-completion/completions/slipway-slirp4netns; do
  [ -e "$ROOT$f" ] || fail "$f was not installed"
done
in_root ldconfig -p >"$E2E_TMP/ldconfig.txt"  # (grep -q on a pipe would cut ldconfig off: pipefail)
grep -q 'libslipway.so.0 ' "$E2E_TMP/ldconfig.txt" || fail "libslipway.so.0 is not in the loader's cache"
[ "$(in_root pkg-config --modversion slipway 2>&1)" = "$(dpkg-deb -f "$deb" Version)" ] ||
  fail "pkg-config --modversion slipway: $(in_root pkg-config --modversion slipway 2>&1)"
in_root slipway --version >/dev/null && in_root slipway-slirp4netns --version >"$E2E_TMP/version.txt" &&
  grep -q '^slirp4netns version' "$E2E_TMP/version.txt" || fail "the installed programs do not run"
ok "programs, library (ldconfig, pkg-config $(in_root pkg-config --modversion slipway)), header, CMake package, man pages, completions"

log "check: man slipway, man slipway-slirp4netns"
in_root env MANPAGER=cat MANWIDTH=100 man slipway >"$E2E_TMP/man-slipway.txt" 2>&1 ||
  { show_log "$E2E_TMP/man-slipway.txt"; fail "man slipway failed"; }
grep -q 'user-mode networking' "$E2E_TMP/man-slipway.txt" || { show_log "$E2E_TMP/man-slipway.txt"; fail "man slipway shows no page"; }
in_root env MANPAGER=cat MANWIDTH=100 man slipway-slirp4netns >"$E2E_TMP/man-s4n.txt" 2>&1 ||
  { show_log "$E2E_TMP/man-s4n.txt"; fail "man slipway-slirp4netns failed"; }
grep -q -- '--disable-host-loopback' "$E2E_TMP/man-s4n.txt" || fail "man slipway-slirp4netns lacks the options"
ok "man pages: $(head -n1 "$E2E_TMP/man-slipway.txt" | tr -s ' ')"

log "check: bash completion"
cat >"$ROOT/tmp/complete.sh" <<'EOS'
. /usr/share/bash-completion/bash_completion
complete_words() {
  local cmd=$1; shift
  __load_completion "$cmd" || { echo "no completion for $cmd"; return 1; }
  COMP_WORDS=("$cmd" "$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  local f; f=$(complete -p "$cmd" | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
  "$f" "$cmd" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
  echo "${COMPREPLY[*]}"
}
echo "subcommands: $(complete_words slipway '')"
echo "run options: $(complete_words slipway run --no-)"
echo "slirp4netns options: $(complete_words slipway-slirp4netns --enable-)"
echo "netns types: $(complete_words slipway-slirp4netns --netns-type '')"
EOS
in_root bash "/tmp/complete.sh" >"$E2E_TMP/complete.txt" 2>&1 || true
sed "s/^/[completion] /" "$E2E_TMP/complete.txt"
grep -q '^subcommands: .*run.*attach.*serve.*slirp4netns' "$E2E_TMP/complete.txt" &&
  grep -q '^run options: .*--no-host-loopback' "$E2E_TMP/complete.txt" &&
  grep -q '^slirp4netns options: .*--enable-ipv6.*--enable-sandbox' "$E2E_TMP/complete.txt" &&
  grep -q '^netns types: pid path' "$E2E_TMP/complete.txt" || fail "bash completion did not complete as expected"
ok "bash-completion loads and runs both completions"

log "check: the RootlessKit check against the installed /usr/bin/slipway-slirp4netns"
mkdir -p "$ROOT/opt/slipway-e2e"
cp -r "$SLIPWAY_SOURCE_DIR/tests/e2e" "$ROOT/opt/slipway-e2e/"
in_root env SLIPWAY=/usr/bin/slipway SLIPWAY_SLIRP4NETNS=/usr/bin/slipway-slirp4netns COMPAT_ONLY=slipway \
  SLIPWAY_SOURCE_DIR=/opt/slipway-e2e E2E_TIMEOUT=100 bash /opt/slipway-e2e/e2e/test_rootlesskit.sh \
  >"$E2E_TMP/rootlesskit.log" 2>&1 || { show_log "$E2E_TMP/rootlesskit.log" 40; fail "the RootlessKit check failed in the clean root"; }
grep -E 'ok:|PASS' "$E2E_TMP/rootlesskit.log" | sed 's/^/[installed] /'
grep -q 'slirp4netns-binary=/tmp/slipway-e2e.*/bin/slipway-slirp4netns' "$E2E_TMP/rootlesskit.log" ||
  fail "the RootlessKit check did not run slipway-slirp4netns"
ok "RootlessKit with the installed slipway-slirp4netns passes"

log "check: apt-get remove slipway"
in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y slipway >"$E2E_TMP/remove.log" 2>&1 ||
  { show_log "$E2E_TMP/remove.log"; fail "apt-get remove failed"; }
[ ! -e "$ROOT/usr/bin/slipway-slirp4netns" ] && [ ! -e "$ROOT/usr/lib/libslipway.so.0" ] ||
  fail "files are left after apt-get remove"
ok "removed"
pass
