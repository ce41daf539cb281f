#!/usr/bin/env bash
# 200 parallel HTTP requests from the guest to a threaded server on the test
# host (through 10.0.2.2) all succeed with the right content.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd curl

N=${PARALLEL_N:-200}
mkdir "$E2E_TMP/www"
for ((i = 0; i < N; i++)); do
  head -c $((1000 + i * 997)) /dev/urandom >"$E2E_TMP/www/f$i"
done
(cd "$E2E_TMP/www" && sha256sum f* | sort -k2) >"$E2E_TMP/want.sha"
start_http_server "$E2E_TMP/www"

cfg=$E2E_TMP/curl.cfg
mkdir "$E2E_TMP/out"
for ((i = 0; i < N; i++)); do
  printf 'url = "http://%s:%s/f%d"\noutput = "%s/out/f%d"\n' "$GATEWAY_IP" "$HTTP_PORT" "$i" "$E2E_TMP" "$i"
done >"$cfg"

log "check: $N parallel requests (curl --parallel --parallel-max $N) to $GATEWAY_IP:$HTTP_PORT"
t0=$(date +%s.%N)
rc=0
SW_TIMEOUT=120 slipway_run -- curl -sS --fail --parallel --parallel-immediate --parallel-max "$N" \
  --max-time 60 --retry 0 -K "$cfg" >"$E2E_TMP/curl.log" 2>&1 || rc=$?
t1=$(date +%s.%N)
[ $rc = 0 ] || { show_log "$E2E_TMP/curl.log"; fail "curl --parallel exited $rc"; }
(cd "$E2E_TMP/out" && sha256sum f* | sort -k2) >"$E2E_TMP/got.sha"
got=$(wc -l <"$E2E_TMP/got.sha")
[ "$got" = "$N" ] || fail "only $got of $N files were downloaded"
diff -q "$E2E_TMP/want.sha" "$E2E_TMP/got.sha" >/dev/null ||
  { diff "$E2E_TMP/want.sha" "$E2E_TMP/got.sha" | head >&2; fail "some downloads differ from the served files"; }
reqs=$(grep -c '"GET /f' "$E2E_TMP/http.log" || true)
[ "$reqs" -ge "$N" ] || fail "server logged $reqs requests, want $N"
ok "$N/$N downloads intact in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')s"
pass
