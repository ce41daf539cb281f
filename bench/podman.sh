#!/usr/bin/env bash
# Rootless Podman's network, slirp4netns and slipway side by side in one
# run: TCP bulk both ways (iperf3) and HTTP connections per second (wrk),
# from a container to the host.
#
# What is measured: a rootless `podman run --network slirp4netns` container
# (Podman's defaults: MTU 65520, --disable-host-loopback, --enable-sandbox,
# --enable-seccomp) runs the client; the servers run on the test host and
# the container dials the test host's own address, 198.51.100.1 (on a veth
# of the private test host; no packet leaves it), through the
# network command Podman started:
#   - iperf3 -c 198.51.100.1 -t DURATION (container -> host) and -R
#     (host -> container); Gbit/s received (iperf3's sum_received);
#   - wrk -t1 -c16 -dWRK_SECONDS -H 'Connection: close' against nginx serving
#     a 1 KiB file: one TCP connection per request, responses per second.
# The only difference between the two columns is containers.conf's
# network_cmd_path: /usr/bin/slirp4netns or slipway-slirp4netns. The client
# binaries are the test host's iperf3 and wrk, copied into the busybox image
# with the libraries they link (ldd), so both columns run the same clients.
#
# Usage: bench/podman.sh            (as root; makes the user slipway-e2e for
#                                    the rootless Podman, removes it after)
# Env:   DURATION=5 (iperf3 seconds), WRK_SECONDS=5, CLIENTS=16,
#        SLIPWAY=build/netstack/slipway (slipway-slirp4netns is beside it),
#        RESULTS=FILE (also write the table there; default
#        bench/results/podman-TIMESTAMP.txt)
. "$(dirname "$0")/../tests/e2e/lib.sh"
. "$(dirname "$0")/../tests/e2e/lib_rootless.sh"
DURATION=${DURATION:-5}
WRK_SECONDS=${WRK_SECONDS:-5}
CLIENTS=${CLIENTS:-16}
export E2E_TIMEOUT=${E2E_TIMEOUT:-$((4 * (2 * DURATION + WRK_SECONDS) + 240))}
E2E_NAME=bench-podman
e2e_init "$@"
need_cmd podman runc iperf3 wrk nginx busybox python3
require_slipway
compat_binaries
rootless_setup
RESULTS=${RESULTS:-$SLIPWAY_SOURCE_DIR/bench/results/podman-$(date +%Y%m%d-%H%M%S).txt}

HOST_IP=198.51.100.1
# The host's own address, on one end of a veth pair inside the private test
# host (the dummy driver may not be loadable here).
ip link add bench0 type veth peer name bench1
ip addr add "$HOST_IP/32" dev bench0
ip link set bench1 up
ip link set bench0 up

# ------------------------------------------------------------ servers
bg iperf3 iperf3 -s -B "$HOST_IP" -p 5201
mkdir -p "$E2E_TMP/www"
head -c 768 /dev/urandom | base64 -w 64 >"$E2E_TMP/www/index.html"
cat >"$E2E_TMP/nginx.conf" <<EOF
worker_processes 1;
pid $E2E_TMP/nginx.pid;
error_log $E2E_TMP/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $E2E_TMP/nginx-body;
  proxy_temp_path $E2E_TMP/nginx-proxy;
  fastcgi_temp_path $E2E_TMP/nginx-fastcgi;
  uwsgi_temp_path $E2E_TMP/nginx-uwsgi;
  scgi_temp_path $E2E_TMP/nginx-scgi;
  server { listen $HOST_IP:8080 backlog=4096; root $E2E_TMP/www; }
}
EOF
bg nginx nginx -c "$E2E_TMP/nginx.conf" -g 'daemon off;'
wait_listen 5201 tcp && wait_listen 8080 tcp || fail "iperf3 or nginx did not start"

# ------------------------------------------------------------ image
rootfs=$E2E_TMP/rootfs
mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev}
copy_with_libs() {
  cp "$1" "$rootfs/bin/"
  local lib
  for lib in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*' || true); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
}
copy_with_libs "$(command -v busybox)"
copy_with_libs "$(command -v iperf3)"
copy_with_libs "$(command -v wrk)"
for applet in $(busybox --list); do [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"; done
tar -C "$rootfs" -cf "$E2E_TMP/image.tar" . && chmod 644 "$E2E_TMP/image.tar"
IMAGE=localhost/slipway-bench:latest

for entry in "${COMPAT_BINS[@]}"; do
  name=${entry%%=*}
  printf '[engine]\nnetwork_cmd_path = "%s"\ncgroup_manager = "cgroupfs"\nruntime = "runc"\nevents_logger = "file"\n' \
    "${entry#*=}" >"$E2E_TMP/containers-$name.conf"
  chmod 644 "$E2E_TMP/containers-$name.conf"
done
mkdir -p "$E2E_TMP/pm" && chown "$RL_USER:$RL_USER" "$E2E_TMP/pm"
pm() {
  local name=$1; shift
  as_user env CONTAINERS_CONF="$E2E_TMP/containers-$name.conf" timeout -k 5 $((DURATION + WRK_SECONDS + 90)) \
    podman --root "$E2E_TMP/pm/storage" --runroot "$E2E_TMP/pm/run" --tmpdir "$E2E_TMP/pm/tmp" \
    --storage-driver vfs --cgroup-manager cgroupfs --runtime runc --events-backend file "$@"
}
pm slipway import "$E2E_TMP/image.tar" "$IMAGE" >"$E2E_TMP/import.log" 2>&1 ||
  { show_log "$E2E_TMP/import.log"; fail "podman import failed (rootless)"; }
in_container() {
  local name=$1; shift
  pm "$name" run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network slirp4netns "$IMAGE" "$@"
}

# ------------------------------------------------------------ figures
declare -A V
gbits() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"] / 1e9))' "$1" 2>/dev/null; }
for entry in "${COMPAT_BINS[@]}"; do
  name=${entry%%=*}
  log "$name: iperf3 container -> host, $DURATION s"
  in_container "$name" iperf3 -c "$HOST_IP" -t "$DURATION" -J >"$E2E_TMP/up-$name.json" 2>"$E2E_TMP/up-$name.err"
  V[$name,up]=$(gbits "$E2E_TMP/up-$name.json"); V[$name,up]=${V[$name,up]:-fail}
  log "$name: iperf3 host -> container (-R), $DURATION s"
  in_container "$name" iperf3 -c "$HOST_IP" -t "$DURATION" -R -J >"$E2E_TMP/down-$name.json" 2>"$E2E_TMP/down-$name.err"
  V[$name,down]=$(gbits "$E2E_TMP/down-$name.json"); V[$name,down]=${V[$name,down]:-fail}
  log "$name: wrk -t1 -c$CLIENTS -d${WRK_SECONDS}s, Connection: close"
  in_container "$name" wrk -t1 -c"$CLIENTS" -d"${WRK_SECONDS}s" -H 'Connection: close' "http://$HOST_IP:8080/index.html" \
    >"$E2E_TMP/wrk-$name.txt" 2>&1
  V[$name,conn]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$E2E_TMP/wrk-$name.txt"); V[$name,conn]=${V[$name,conn]:-fail}
  V[$name,errors]=$(awk '/Socket errors|Non-2xx/ {print}' "$E2E_TMP/wrk-$name.txt" | tr -s ' ' | tr '\n' ';')
  for f in up down; do
    [ "${V[$name,$f]}" = fail ] && show_log "$E2E_TMP/$f-$name.err"
  done
  [ "${V[$name,conn]}" = fail ] && show_log "$E2E_TMP/wrk-$name.txt"
done

ratio() { python3 -c 'import sys
try: print("%.2fx" % (float(sys.argv[1]) / float(sys.argv[2])))
except Exception: print("-")' "$1" "$2"; }
{
  echo "Rootless Podman ($(podman --version | awk '{print $3}')), container -> host at $HOST_IP, MTU 65520, $(nproc) CPUs, $(uname -r)"
  echo "iperf3 -t $DURATION (Gbit/s received); wrk -t1 -c$CLIENTS -d${WRK_SECONDS}s -H 'Connection: close' against nginx, 1 KiB"
  printf '%-32s %12s %12s %10s\n' figure slirp4netns slipway slipway/s4n
  for f in up down conn; do
    case $f in
      up) label="iperf3 container->host Gbit/s" ;;
      down) label="iperf3 host->container Gbit/s" ;;
      conn) label="HTTP conn/s (wrk, close)" ;;
    esac
    printf '%-32s %12s %12s %10s\n' "$label" "${V[slirp4netns,$f]:-skip}" "${V[slipway,$f]:-skip}" \
      "$(ratio "${V[slipway,$f]:-x}" "${V[slirp4netns,$f]:-x}")"
  done
  for entry in "${COMPAT_BINS[@]}"; do
    name=${entry%%=*}
    [ -n "${V[$name,errors]}" ] && echo "$name wrk: ${V[$name,errors]}"
  done
  echo "slirp4netns: $(slirp4netns --version | head -n1); slipway: $("$SLIPWAY" --version)"
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$E2E_TMP/table.txt"
cat "$E2E_TMP/table.txt"
mkdir -p "$(dirname "$RESULTS")" && cp "$E2E_TMP/table.txt" "$RESULTS" && log "table written to $RESULTS"
