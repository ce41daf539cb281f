#!/usr/bin/env bash
# RootlessKit (Debian's rootlesskit, the engine of rootless Docker and
# nerdctl) with slipway as its slirp4netns:
#   rootlesskit --net=slirp4netns --slirp4netns-binary=BIN --port-driver=slirp4netns
# runs a shell as an unprivileged user. In that shell: curl reaches a server
# on the test host through 10.0.2.2 (a 1 MB file, hashed), DNS works
# (getent through 10.0.2.3, answered by a dnsmasq on the test host), and a
# port published with `rootlessctl add-ports` (RootlessKit's slirp4netns
# port driver: add_hostfwd on the API socket) reaches a server in the shell
# from the test host; `rootlessctl list-ports` and `remove-ports` work.
# Then with --disable-host-loopback: 10.0.2.2 is refused (the server sees
# nothing) and DNS still works.
#
# The same checks run with BIN = slipway-slirp4netns and BIN = the real
# slirp4netns, so that the test is shown to check the same things.
#
# Runs as root inside the private test host (lib.sh); RootlessKit refuses
# root, so it runs as the user `slipway-e2e`, created here and removed at
# exit, with /dev/net/tun opened to 0666 meanwhile (lib_rootless.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_rootless.sh"
export E2E_TIMEOUT=${E2E_TIMEOUT:-170}
e2e_init "$@"
require_slipway
need_cmd rootlesskit rootlessctl curl getent python3 sha256sum
compat_binaries
rootless_setup
use_test_dns rk.slipway.test 192.0.2.55

mkdir "$E2E_TMP/www"
make_random_file "$E2E_TMP/www/blob" 1000003
want=$(sha256_of "$E2E_TMP/www/blob")
start_http_server "$E2E_TMP/www"
chmod -R a+rX "$E2E_TMP/www"
echo "served-from-the-rootlesskit-shell" >"$E2E_TMP/www/inside.txt"

# The shell RootlessKit runs: the checks from inside, then a server on
# GUEST_PORT for the published port, until the test says it is done.
cat >"$E2E_TMP/inside.sh" <<'EOS'
set -u
d=$1 http_port=$2 guest_port=$3 loopback=$4
ip -o -4 addr show tap0 | grep -q 'inet 10.0.2.100/24' && echo "ok: tap0 has 10.0.2.100/24" || echo "FAIL: tap0: $(ip -o -4 addr show tap0)"
if [ "$loopback" = allowed ]; then
  if curl -sS --max-time 20 -o "$d/got" "http://10.0.2.2:$http_port/blob"; then
    echo "ok: curl through 10.0.2.2: sha256 $(sha256sum "$d/got" | cut -d' ' -f1)"
  else
    echo "FAIL: curl through 10.0.2.2"
  fi
else
  if curl -sS --max-time 5 -o /dev/null "http://10.0.2.2:$http_port/blob" 2>"$d/refused.err"; then
    echo "FAIL: 10.0.2.2 reached the host's loopback under --disable-host-loopback"
  else
    echo "ok: 10.0.2.2 refused: $(head -n1 "$d/refused.err")"
  fi
fi
a=$(getent hosts rk.slipway.test | awk '{print $1}')
[ "$a" = 192.0.2.55 ] && echo "ok: DNS through $(awk '/^nameserver/ {print $2; exit}' /etc/resolv.conf): rk.slipway.test is $a" || echo "FAIL: DNS: '$a'"
python3 -m http.server "$guest_port" --bind 0.0.0.0 --directory "$d/www" >"$d/inside-http.log" 2>&1 &
server=$!
i=0; while ! ss -Hltn "sport = :$guest_port" | grep -q LISTEN; do i=$((i+1)); [ $i -gt 250 ] && break; sleep 0.02; done
echo "inside: ready" >"$d/ready"
i=0; while [ ! -e "$d/done" ]; do i=$((i+1)); [ $i -gt 3000 ] && break; sleep 0.02; done
kill $server 2>/dev/null
echo "inside: end"
EOS

# run_rootlesskit NAME BIN LOOPBACK(allowed|disabled)
run_rootlesskit() {
  local name=$1 bin=$2 loopback=$3 d=$E2E_TMP/$1-$3
  mkdir -p "$d/www"
  cp "$E2E_TMP/www/inside.txt" "$d/www/"
  chown -R "$RL_USER:$RL_USER" "$d"
  chmod 755 "$E2E_TMP/inside.sh"
  local opts=(--state-dir="$d/state" --net=slirp4netns --slirp4netns-binary="$bin" --port-driver=slirp4netns)
  [ "$loopback" = disabled ] && opts+=(--disable-host-loopback)
  local guest_port=8081 host_port
  host_port=$(free_port)
  log "[$name/$loopback] rootlesskit ${opts[*]} sh inside.sh"
  local t0; t0=$(date +%s%N)
  bg "rk-$name-$loopback" "${AS_USER[@]}" timeout -k 5 60 rootlesskit "${opts[@]}" \
    sh "$E2E_TMP/inside.sh" "$d" "$HTTP_PORT" "$guest_port" "$loopback"
  local rk=$BG_PID rklog=$E2E_TMP/rk-$name-$loopback.log
  wait_file "$d/ready" 40 "$rk" || { show_log "$rklog" 40; fail "[$name/$loopback] the RootlessKit shell did not get ready"; }
  ok "[$name/$loopback] RootlessKit shell up in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

  if [ "$loopback" = allowed ]; then
    log "[$name/$loopback] check: rootlessctl add-ports 127.0.0.1:$host_port:$guest_port/tcp"
    as_user rootlessctl --socket "$d/state/api.sock" add-ports "127.0.0.1:$host_port:$guest_port/tcp" \
      >"$d/add.out" 2>&1 || { cat "$d/add.out" >&2; show_log "$rklog"; fail "[$name] rootlessctl add-ports failed"; }
    as_user rootlessctl --socket "$d/state/api.sock" list-ports >"$d/list.out" 2>&1 || true
    awk -v p="$host_port" '$2 == "tcp" && $3 == "127.0.0.1" && $4 == p {f = 1} END {exit !f}' "$d/list.out" ||
      { cat "$d/list.out" >&2; fail "[$name] list-ports does not show the port"; }
    got=$(curl -sS --max-time 10 "http://127.0.0.1:$host_port/inside.txt" 2>&1) || true
    [ "$got" = served-from-the-rootlesskit-shell ] || { show_log "$rklog"; fail "[$name] published port: got '$got'"; }
    ok "[$name/$loopback] the host reaches the shell's server through the published port (id $(awk 'NR==1 {print $1}' "$d/add.out"))"
    id=$(awk 'NR==2 {print $1}' "$d/list.out")
    as_user rootlessctl --socket "$d/state/api.sock" remove-ports "$id" >/dev/null 2>&1 ||
      fail "[$name] rootlessctl remove-ports $id failed"
    if curl -sS --max-time 3 "http://127.0.0.1:$host_port/inside.txt" >/dev/null 2>&1; then
      fail "[$name] the port still answers after remove-ports"
    fi
    ok "[$name/$loopback] remove-ports closed it"
  fi
  touch "$d/done"
  local rc=0
  wait "$rk" || rc=$?
  grep -E '^(ok|FAIL):' "$rklog" | sed "s/^/[$name\/$loopback] inside: /"
  grep -q '^FAIL' "$rklog" && { show_log "$rklog" 40; fail "[$name/$loopback] a check inside the RootlessKit shell failed"; }
  [ "$(grep -c '^ok:' "$rklog")" = 3 ] || { show_log "$rklog" 40; fail "[$name/$loopback] the shell's checks did not all run"; }
  if [ "$loopback" = allowed ]; then
    grep -q "ok: curl through 10.0.2.2: sha256 $want" "$rklog" || fail "[$name] the file arrived damaged"
  fi
  [ $rc = 0 ] || { show_log "$rklog"; fail "[$name/$loopback] rootlesskit exited $rc"; }
  ok "[$name/$loopback] every check passed; rootlesskit exited 0"
}

for entry in "${COMPAT_BINS[@]}"; do
  name=${entry%%=*} bin=${entry#*=}
  before=$(grep -c 'GET /blob' "$E2E_TMP/http.log" || true)
  run_rootlesskit "$name" "$bin" allowed
  run_rootlesskit "$name" "$bin" disabled
  after=$(grep -c 'GET /blob' "$E2E_TMP/http.log" || true)
  [ "$after" = $((before + 1)) ] || fail "[$name] the host's server saw $((after - before)) requests, want 1 (none under --disable-host-loopback)"
  ok "[$name] the host's server saw the allowed request only"
done
names=(); for entry in "${COMPAT_BINS[@]}"; do names+=("${entry%%=*}"); done
pass "RootlessKit passes the same checks with: ${names[*]}"
