#!/usr/bin/env bash
# Throughput of the deployment options, one wrk run each against one nginx upstream:
#   - the gateway with --workers 1 and --workers 2 (same port, SO_REUSEPORT);
#   - behind HAProxy mode tcp, without and with the PROXY protocol (send-proxy-v2),
#     which costs the gateway a relay hop (see README, "PROXY protocol").
#   - a rate-limited route (memory store), whose decisions with --workers 2 are made
#     by the main thread.
#
#   bench/deploy.sh [seconds] [connections]
#
# Compare ratios within one run: absolute numbers drift between runs and machines.
set -u
D=${1:-8}; C=${2:-64}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
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
cat > "$T/gateway.yaml" <<YAML
listeners:
  - { name: plain, host: 127.0.0.1, port: 19080 }
  - { name: proxied, host: 127.0.0.1, port: 19081, proxy_protocol: true }
admin: { host: 127.0.0.1, port: 19901 }
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

nginx -c "$T/nginx.conf" & pids+=($!)
haproxy -f "$T/haproxy.cfg" >"$T/haproxy.log" 2>&1 & pids+=($!)

run() { # name url
  local out; out=$(wrk -t1 -c"$C" -d"${D}s" --latency "$2" 2>&1)
  printf "%-34s %10s req/s  p50 %8s  p99 %8s  %s\n" "$1" \
    "$(echo "$out" | awk '/Requests\/sec/{print $2}')" \
    "$(echo "$out" | awk '$1=="50%"{print $2}')" \
    "$(echo "$out" | awk '$1=="99%"{print $2}')" \
    "$(echo "$out" | grep -E 'Non-2xx|Socket errors' | tr -s ' ' | tr '\n' ' ')"
}
gateway() { # workers
  deno run -A "$ROOT/main.ts" --config "$T/gateway.yaml" --workers "$1" --log-level warn \
    >"$T/gateway.log" 2>&1 &
  GW=$!
  for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:19901/readyz && return; sleep 0.2; done
  echo "gateway did not start:"; cat "$T/gateway.log"; exit 1
}
stop_gateway() { kill -TERM "$GW"; wait "$GW" 2>/dev/null; }

echo "wrk -t1 -c$C -d${D}s, $(nproc) cores"
run "nginx upstream (direct)" http://127.0.0.1:19001/42
for w in 1 2; do
  gateway $w
  run "gateway --workers $w" http://127.0.0.1:19080/api/users/42
  run "gateway --workers $w, rate-limited" http://127.0.0.1:19080/api/limited/42
  if [ "$w" = 1 ]; then
    run "haproxy tcp -> gateway" http://127.0.0.1:19200/api/users/42
    run "haproxy tcp + PROXY v2 -> gateway" http://127.0.0.1:19201/api/users/42
  fi
  stop_gateway
done
