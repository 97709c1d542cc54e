#!/usr/bin/env bash
# Throughput of the deployment options, one wrk run each against one nginx upstream:
#   - the gateway with --workers 1 and --workers 2 (same port, SO_REUSEPORT);
#   - behind HAProxy mode tcp, without and with the PROXY protocol (send-proxy-v2),
#     which costs the gateway a relay hop (see README, "PROXY protocol").
#   - a rate-limited route (memory store), whose decisions with --workers 2 are made
#     by the main thread.
#
#   bench/deploy.sh [seconds] [connections] [rounds]
#
# Compare ratios within one run: absolute numbers drift between runs and machines.
set -u
D=${1:-5}; C=${2:-64}; R=${3:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# The V8 heap settings the gateway ships with (lib/cli/v8_flags.ts).
V8_FLAGS=$(deno eval "import { V8_FLAGS_ARG } from '$ROOT/lib/cli/v8_flags.ts'; console.log(V8_FLAGS_ARG)")
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; [ -n "${KEEP_LOGS:-}" ] && cp "$T"/*.log "$KEEP_LOGS"/; rm -rf "$T"; }
trap cleanup EXIT
for t in nginx haproxy wrk curl; do command -v $t >/dev/null || { echo "needs $t"; exit 2; }; done

cat > "$T/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $T/nginx.pid;
error_log $T/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen 127.0.0.1:19001 reuseport;
    keepalive_requests 1000000;
    location / { default_type application/json; return 200 '{"service":"users","id":42}'; }
  }
}
NGINX
cat > "$T/haproxy.cfg" <<HAPROXY
global
  nbthread 1
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend plain
  bind 127.0.0.1:19200
  default_backend plain
frontend proxied
  bind 127.0.0.1:19201
  default_backend proxied
backend plain
  server g 127.0.0.1:19080
backend proxied
  server g 127.0.0.1:19081 send-proxy-v2
HAPROXY
gateway_yaml() { # plain-port proxied-port admin-port
cat <<YAML
listeners:
  - { name: plain, host: 127.0.0.1, port: $1 }
  - { name: proxied, host: 127.0.0.1, port: $2, proxy_protocol: true }
admin: { host: 127.0.0.1, port: $3 }
security: { trusted_proxies: [127.0.0.1] }
observe: { access_log: { enabled: false } }
upstreams: { users: { targets: [ { url: "http://127.0.0.1:19001" } ] } }
routes:
  - { name: users, match: { path: /api/users }, upstream: users }
  - name: limited
    match: { path: /api/limited }
    upstream: users
    rate_limit: { algorithm: token_bucket, rate: 100000000, per: 1s, burst: 100000000, key: ip }
YAML
}
gateway_yaml 19080 19081 19901 > "$T/w1.yaml"
gateway_yaml 19180 19181 19902 > "$T/w2.yaml"

nginx -c "$T/nginx.conf" & pids+=($!)
haproxy -f "$T/haproxy.cfg" >"$T/haproxy.log" 2>&1 & pids+=($!)
for w in 1 2; do
  deno run -A "$V8_FLAGS" "$ROOT/main.ts" --config "$T/w$w.yaml" --workers $w --log-level warn \
    >"$T/w$w.log" 2>&1 & pids+=($!)
done
for a in 19901 19902; do
  for _ in $(seq 1 150); do curl -sf -o /dev/null http://127.0.0.1:$a/readyz && break; sleep 0.2; done
  curl -sf -o /dev/null http://127.0.0.1:$a/readyz || { echo "gateway on admin $a did not start"; cat "$T"/w*.log; exit 1; }
done

TARGETS=(
  "nginx upstream (direct)|http://127.0.0.1:19001/42"
  "gateway --workers 1|http://127.0.0.1:19080/api/users/42"
  "gateway --workers 2|http://127.0.0.1:19180/api/users/42"
  "gateway --workers 1, rate-limited|http://127.0.0.1:19080/api/limited/42"
  "gateway --workers 2, rate-limited|http://127.0.0.1:19180/api/limited/42"
  "haproxy tcp -> gateway|http://127.0.0.1:19200/api/users/42"
  "haproxy tcp + PROXY v2 -> gateway|http://127.0.0.1:19201/api/users/42"
)
# Interleaved rounds (this machine's throughput drifts); the median round per target is reported.
declare -A RPS P50 P99
for r in $(seq 1 "$R"); do
  for t in "${TARGETS[@]}"; do
    name=${t%%|*}; url=${t#*|}
    out=$(wrk -t1 -c"$C" -d"${D}s" --latency "$url" 2>&1)
    RPS[$name]+="$(echo "$out" | awk '/Requests\/sec/{print $2}') "
    P50[$name]+="$(echo "$out" | awk '$1=="50%"{print $2}') "
    P99[$name]+="$(echo "$out" | awk '$1=="99%"{print $2}') "
    errs=$(echo "$out" | grep -E 'Non-2xx|Socket errors' | tr -s ' ' | tr '\n' ' ')
    [ -n "$errs" ] && echo "round $r $name: $errs" >&2
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
echo "wrk -t1 -c$C -d${D}s, $R interleaved rounds, median round; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for t in "${TARGETS[@]}"; do
  name=${t%%|*}
  printf "%-34s %10s req/s   (rounds: %s)\n" "$name" "$(echo "${RPS[$name]}" | median)" "${RPS[$name]% }"
done
