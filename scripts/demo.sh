#!/usr/bin/env bash
# The main job with the built-in defaults: a new network namespace with NAT
# networking (guest 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3, MTU 65520)
# that shows its address, fetches a page from a web server on the host's
# loopback through the gateway address, and pings the gateway.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
slipway=${SLIPWAY:-$root/build/netstack/slipway}
[ -x "$slipway" ] || { echo "demo: $slipway not built; run scripts/build.sh" >&2; exit 1; }

dir=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$dir"' EXIT
echo "Hello from the host's loopback, served to the guest by slipway." > "$dir/hello.txt"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$dir" >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

echo "+ slipway run -- sh -c '...'   (web server on host 127.0.0.1:$port)"
"$slipway" run -- sh -c "
  echo '== the guest interface and routes'
  ip -4 addr show eth0; ip route
  echo '== fetch http://10.0.2.2:$port/hello.txt (the host loopback, through the gateway address)'
  curl -sS --max-time 10 http://10.0.2.2:$port/hello.txt
  echo '== ping the gateway'
  ping -c 3 -W 2 10.0.2.2
"
echo "demo: OK"
