#!/usr/bin/env bash
# The HTTP listener against gRPC, on one onestory-server and one redis-server of its own:
# GetContext as Connect JSON vs gRPC (closed loop, 64 in flight, 10 s, twice each, alternating),
# and the latency from an Append to its arrival at 1,000 open watches as Server-Sent Events vs
# gRPC streams (1,000 appends/s, twice each). Prints loadgen's lines, then the ratios.
#
#   bash tools/bench_http.sh        (after building services/onestory-server and tools/loadgen)
set -euo pipefail
cd "$(dirname "$0")/.."
B="${ONESTORY_BUILD_DIR:-build}"
D="$(mktemp -d)"
trap 'kill "${spid:-0}" 2>/dev/null || true; redis-cli -p "${rport:-0}" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$D"' EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
key="os_bench_http_$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)"
python3 tools/apikey.py --id bench --tenant bench --scopes all --key "$key" >"$D/keys" 2>/dev/null
rport=$(free_port)
redis-server --port "$rport" --save "" --appendonly no --daemonize yes --logfile "$D/redis.log" \
  --dir "$D"
for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
"$B/services/onestory-server" --listen=127.0.0.1:0 --port_file="$D/port" \
  --redis="127.0.0.1:$rport" --api_keys_file="$D/keys" --api_key_rate=0 \
  --http_listen=127.0.0.1:0 --http_port_file="$D/hport" --http_max_streams=1100 \
  --log_level=warning >"$D/server.log" 2>&1 &
spid=$!
for _ in $(seq 100); do [[ -s "$D/port" && -s "$D/hport" ]] && break; sleep 0.1; done
export ONESTORY_API_KEY="$key"
lg=("$B/tools/loadgen" "--target=127.0.0.1:$(cat "$D/port")"
    "--http_target=127.0.0.1:$(cat "$D/hport")" --tenant=bench --customers=10000)
"${lg[@]}" --scenario=populate --events_per_customer=20 2>&1 | tail -1
out="$D/results.json"
for _ in 1 2; do
  for s in get_context get_context_http; do
    "${lg[@]}" --scenario=$s --concurrency=64 --duration_s=10 --warmup_s=2 --json="$out" 2>/dev/null
  done
done
for _ in 1 2; do
  for s in watch watch_sse; do
    "${lg[@]}" --scenario=$s --watchers=1000 --rate=1000 --duration_s=10 --warmup_s=2 \
      --json="$out" 2>&1 | grep -v "populated\|at the end"
  done
done
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def best(s, key, pick):
    return pick(r[key] for r in rows if r["scenario"] == s)
g, h = best("get_context", "ok_per_s", max), best("get_context_http", "ok_per_s", max)
print("GetContext: HTTP/JSON %.0f calls/s = %.2fx gRPC's %.0f (best of 2); p99 %.1f vs %.1f ms"
      % (h, h / g, g, best("get_context_http", "p99_ms", min), best("get_context", "p99_ms", min)))
w, s = best("watch", "p99_ms", min), best("watch_sse", "p99_ms", min)
print("Append -> 1,000 watches, p99 (best of 2): Server-Sent Events %.2f ms, gRPC %.2f ms (%.1fx)"
      % (s, w, s / w))
PY
