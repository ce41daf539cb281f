#!/usr/bin/env bash
# Podman (Debian's podman 4.3) with slipway as its slirp4netns:
# containers.conf's `network_cmd_path` names slipway-slirp4netns and
# `podman run --network slirp4netns` starts it, once as root and once as an
# unprivileged user (rootless Podman). In the container: wget from a server
# on the test host through 10.0.2.2 (allow_host_loopback=true; a 1 MB file,
# hashed), nslookup through 10.0.2.3 (answered by a dnsmasq on the test
# host), an IPv6 address in fd00::/64 with enable_ipv6=true; and with
# `-p 127.0.0.1:PORT:80` and port_handler=slirp4netns (the ports go through
# the API socket's add_hostfwd), a busybox httpd in the container answers
# on the test host.
#
# The same checks run with network_cmd_path = slipway-slirp4netns and = the
# real slirp4netns. network_cmd_path names a small wrapper that records the
# arguments Podman passes (printed, and checked to reach the binary meant).
#
# The image is imported offline: a root filesystem with Debian's busybox
# (and, when that busybox is not the static one, the C library it links)
# tarred into `podman import`. Each Podman gets private storage (vfs) and
# run directories in $E2E_TMP, runc and cgroupfs (crun refuses this
# kernel's hybrid cgroups), nofile/nproc ulimits of 1024 (the machine's hard
# fd limit is 20000). The rootless run uses the user `slipway-e2e`, created
# here and removed at exit, with /dev/net/tun opened to 0666 meanwhile
# (lib_rootless.sh); it is skipped, with the reason, only where rootless
# Podman cannot run at all.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_rootless.sh"
export E2E_TIMEOUT=${E2E_TIMEOUT:-175}
e2e_init "$@"
require_slipway
need_cmd podman runc busybox curl sha256sum
compat_binaries
rootless_setup
use_test_dns podman.slipway.test 192.0.2.66

mkdir "$E2E_TMP/www"
make_random_file "$E2E_TMP/www/blob" 1000003
want=$(sha256_of "$E2E_TMP/www/blob")
start_http_server "$E2E_TMP/www"

# ------------------------------------------------------------ the image
rootfs=$E2E_TMP/rootfs
mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev,var/www}
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for lib in $(ldd "$rootfs/bin/busybox" 2>/dev/null | grep -o '/[^ ]*' || true); do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
for applet in $(busybox --list); do [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"; done
echo "hello-from-the-container" >"$rootfs/var/www/index.html"
IMAGE=localhost/slipway-e2e-busybox:latest

# ------------------------------------------------------------ podman
# One containers.conf per slirp4netns; its network_cmd_path is a wrapper
# that records the arguments.
mkdir -p "$E2E_TMP/args" && chmod 1777 "$E2E_TMP/args"
declare -A bin_of
for entry in "${COMPAT_BINS[@]}"; do
  name=${entry%%=*} bin=${entry#*=}
  bin_of[$name]=$bin
  cat >"$E2E_TMP/bin/net-$name" <<EOF
#!/bin/sh
echo "\$*" >>"$E2E_TMP/args/$name"
exec "$bin" "\$@"
EOF
  chmod 755 "$E2E_TMP/bin/net-$name"
  : >"$E2E_TMP/args/$name" && chmod 666 "$E2E_TMP/args/$name"  # root and the user append
  cat >"$E2E_TMP/containers-$name.conf" <<EOF
[engine]
network_cmd_path = "$E2E_TMP/bin/net-$name"
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
EOF
  chmod 644 "$E2E_TMP/containers-$name.conf"
done

# pm MODE(root|user) NAME PODMAN-ARGS...: podman with MODE's private storage
# and NAME's containers.conf.
pm() {
  local mode=$1 name=$2; shift 2
  local d=$E2E_TMP/pm-$mode
  local args=(--root "$d/storage" --runroot "$d/run" --tmpdir "$d/tmp" --storage-driver vfs
    --cgroup-manager cgroupfs --runtime runc --events-backend file)
  if [ "$mode" = root ]; then
    CONTAINERS_CONF=$E2E_TMP/containers-$name.conf timeout -k 5 90 podman "${args[@]}" "$@"
  else
    as_user env CONTAINERS_CONF="$E2E_TMP/containers-$name.conf" timeout -k 5 90 podman "${args[@]}" "$@"
  fi
}
RUN_OPTS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

# Inside the container.
cat >"$E2E_TMP/inside.sh" <<'EOS'
http_port=$1
if wget -q -O /tmp/blob "http://10.0.2.2:$http_port/blob"; then
  echo "ok: wget through 10.0.2.2: sha256 $(sha256sum /tmp/blob | cut -d' ' -f1)"
else
  echo "FAIL: wget through 10.0.2.2"
fi
a=$(nslookup podman.slipway.test 10.0.2.3 2>&1 | awk '/^Address/ && !/10\.0\.2\.3/ {print $2}' | tail -n1)
[ "$a" = 192.0.2.66 ] && echo "ok: nslookup through 10.0.2.3: podman.slipway.test is $a" || echo "FAIL: nslookup: '$a'"
i=0; v6=
while [ $i -lt 50 ]; do
  v6=$(ip -6 addr show dev tap0 scope global 2>/dev/null | awk '/inet6 fd00:/ {print $2; exit}')
  [ -n "$v6" ] && break
  i=$((i + 1)); sleep 0.1
done
[ -n "$v6" ] && echo "ok: IPv6 address $v6 on tap0" || echo "FAIL: no fd00::/64 address on tap0: $(ip -6 addr show dev tap0 2>&1 | tr '\n' ' ')"
EOS
cp "$E2E_TMP/inside.sh" "$rootfs/inside.sh"
tar -C "$rootfs" -cf "$E2E_TMP/image.tar" .
chmod 644 "$E2E_TMP/image.tar"

# checks MODE NAME
checks() {
  local mode=$1 name=$2 tag="[$2/$1]" t0
  log "$tag check: podman run --network slirp4netns:allow_host_loopback=true,enable_ipv6=true"
  t0=$(date +%s%N)
  pm "$mode" "$name" run --rm "${RUN_OPTS[@]}" \
    --network slirp4netns:allow_host_loopback=true,enable_ipv6=true "$IMAGE" sh /inside.sh "$HTTP_PORT" \
    >"$E2E_TMP/run-$name-$mode.log" 2>&1 || { show_log "$E2E_TMP/run-$name-$mode.log"; fail "$tag podman run failed"; }
  sed "s|^|$tag inside: |" "$E2E_TMP/run-$name-$mode.log" | grep -E 'inside: (ok|FAIL):' || true
  grep -q '^FAIL' "$E2E_TMP/run-$name-$mode.log" && { show_log "$E2E_TMP/run-$name-$mode.log"; fail "$tag a check in the container failed"; }
  [ "$(grep -c '^ok:' "$E2E_TMP/run-$name-$mode.log")" = 3 ] || { show_log "$E2E_TMP/run-$name-$mode.log"; fail "$tag the container's checks did not all run"; }
  grep -q "ok: wget through 10.0.2.2: sha256 $want" "$E2E_TMP/run-$name-$mode.log" || fail "$tag the file arrived damaged"
  ok "$tag wget, nslookup and IPv6 in the container ($(( ($(date +%s%N) - t0) / 1000000 )) ms for the run)"

  local port; port=$(free_port)
  log "$tag check: podman run -d -p 127.0.0.1:$port:80 --network slirp4netns:port_handler=slirp4netns ... httpd"
  pm "$mode" "$name" run -d --name "web-$name" "${RUN_OPTS[@]}" -p "127.0.0.1:$port:80" \
    --network slirp4netns:port_handler=slirp4netns "$IMAGE" httpd -f -p 80 -h /var/www \
    >"$E2E_TMP/web-$name-$mode.log" 2>&1 || { show_log "$E2E_TMP/web-$name-$mode.log"; fail "$tag podman run -d httpd failed"; }
  local got='' i
  for ((i = 0; i < 50; i++)); do
    got=$(curl -sS --max-time 1 "http://127.0.0.1:$port/index.html" 2>/dev/null) && [ -n "$got" ] && break
    sleep 0.1
  done
  # Podman passes --enable-sandbox --enable-seccomp: slipway's sandbox is
  # on in the network process that serves this container (and the port
  # above was added through its API socket after it was entered).
  local pid='' status=''
  if [ "$name" = slipway ]; then
    pid=$(pgrep -n -f -- "^${bin_of[$name]} .*--api-socket" || true)
    [ -n "$pid" ] && status=$(grep -E '^(Seccomp|NoNewPrivs):' "/proc/$pid/status" 2>/dev/null | tr -s '\t\n' '  ')
  fi
  pm "$mode" "$name" rm -f -t 0 "web-$name" >/dev/null 2>&1 || true
  [ "$got" = hello-from-the-container ] || fail "$tag the container's httpd did not answer on 127.0.0.1:$port (got '$got')"
  ok "$tag the container's httpd answers on the host's 127.0.0.1:$port"
  if [ "$name" = slipway ]; then
    [ -n "$pid" ] || fail "$tag no ${bin_of[$name]} process with --api-socket found"
    [[ $status == *"NoNewPrivs: 1"* && $status == *"Seccomp: 2"* ]] || fail "$tag pid $pid is not sandboxed: '$status'"
    ok "$tag the network process (pid $pid) is sandboxed: $status"
  fi
}

# The arguments Podman passed to NAME's wrapper: one run per check (two per
# mode); printed once per kind (without and with the API socket).
show_args() {
  local f=$E2E_TMP/args/$1 runs
  runs=$(grep -vc -- '--help' "$f" 2>/dev/null || true)
  [ "${runs:-0}" -ge $((2 * ${#modes[@]})) ] ||
    fail "[$1] Podman ran the network command $E2E_TMP/bin/net-$1 ${runs:-0} times, want $((2 * ${#modes[@]}))"
  grep -v -- '--help' "$f" | sed "s|^|[$1] podman ran: net-$1 |" | head -n 2
}

modes=(root)
log "import the busybox image (root)"
pm root slipway import "$E2E_TMP/image.tar" "$IMAGE" >"$E2E_TMP/import-root.log" 2>&1 ||
  { show_log "$E2E_TMP/import-root.log"; fail "podman import failed (root)"; }
mkdir -p "$E2E_TMP/pm-user" && chown "$RL_USER:$RL_USER" "$E2E_TMP/pm-user"
if pm user slipway import "$E2E_TMP/image.tar" "$IMAGE" >"$E2E_TMP/import-user.log" 2>&1; then
  modes+=(user)
else
  show_log "$E2E_TMP/import-user.log"
  log "SKIP rootless Podman: it cannot run on this machine as $RL_USER (see above)"
fi

for mode in "${modes[@]}"; do
  for entry in "${COMPAT_BINS[@]}"; do
    checks "$mode" "${entry%%=*}"
  done
done
for entry in "${COMPAT_BINS[@]}"; do show_args "${entry%%=*}"; done
# Every container has exited: Podman closed each slipway's --exit-fd, so
# none may still run.
for ((i = 0; i < 50; i++)); do
  ps -eo args= | grep -qF "$E2E_TMP/bin/slipway-slirp4netns -" || break
  sleep 0.1
done
ps -eo args= >"$E2E_TMP/ps.txt"
grep -F "$E2E_TMP/bin/slipway-slirp4netns -" "$E2E_TMP/ps.txt" && fail "slipway-slirp4netns still runs after its containers exited (exit-fd)"
ok "every slipway-slirp4netns exited with its container (exit-fd)"
pass "Podman (${modes[*]}) runs the same with slipway-slirp4netns and slirp4netns"
