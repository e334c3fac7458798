#!/usr/bin/env bash
# Installs what is missing, builds, starts onestory-server on its embedded default (its own
# redis-server under ./onestory-data, append-only persistence on) in the background, and plays a
# demo journey: a customer chats with the bot on the web, then calls; the phone agent's
# GetContext shows the chat. The HTTP listener (HTTP/JSON, Server-Sent Events, the agent console)
# is on 127.0.0.1:8080 (ONESTORY_HTTP_LISTEN); the console's URL is printed with a demo agent
# token (a supervisor of tenant demo, valid 12 h) signed by a secret made on first start.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh
data_dir="$PWD/onestory-data"
listen="${ONESTORY_LISTEN:-127.0.0.1:50051}"
http_listen="${ONESTORY_HTTP_LISTEN:-127.0.0.1:8080}"
mkdir -p "$data_dir"
# The demo's agent token key (HS256, tenant demo), made once; the secret stays in this file.
token_keys="$data_dir/agent_token_keys"
if [[ ! -s "$token_keys" ]]; then
  (umask 077 && /usr/bin/python3 tools/agent_token.py --new-secret --tenant demo --kid demo \
    2>/dev/null >"$token_keys")
fi
if [[ -f "$data_dir/server.pid" ]] && kill -0 "$(cat "$data_dir/server.pid")" 2>/dev/null; then
  echo "stopping the onestory-server started earlier (pid $(cat "$data_dir/server.pid"))"
  kill "$(cat "$data_dir/server.pid")"
  for _ in $(seq 100); do kill -0 "$(cat "$data_dir/server.pid")" 2>/dev/null || break; sleep 0.1; done
fi
rm -f "$data_dir/port"
nohup build/services/onestory-server --listen="$listen" --data_dir="$data_dir" \
  --port_file="$data_dir/port" --http_listen="$http_listen" \
  --agent_token_keys_file="$token_keys" >>"$data_dir/server.log" 2>&1 &
echo $! >"$data_dir/server.pid"
for _ in $(seq 100); do [[ -s "$data_dir/port" ]] && break; sleep 0.1; done
if [[ ! -s "$data_dir/port" ]]; then
  echo "onestory-server did not start; see $data_dir/server.log" >&2
  tail -n 20 "$data_dir/server.log" >&2
  exit 1
fi
host="${listen%:*}"
target="$host:$(cat "$data_dir/port")"
/usr/bin/python3 tools/demo.py --target "$target" --python-dir build/python \
  --key-file "$data_dir/api_key" --phone-file "$data_dir/demo_phone"
secret="$(awk '$1 == "demo" && $2 == "demo" {print $4}' "$token_keys")"
token="$(/usr/bin/python3 tools/agent_token.py --tenant demo --kid demo --secret="$secret" \
  --sub demo-supervisor --audience SUPERVISOR --ttl 43200 \
  --scope "timeline.read timeline.write context.read.agent context.read.supervisor identity.admin")"
phone="$(tr -dc '0-9' <"$data_dir/demo_phone")"
cat <<MSG

onestory-server is running (pid $(cat "$data_dir/server.pid")), listening on $target
  data and redis-server socket: $data_dir   logs: $data_dir/server.log
  health:      grpc.health.v1.Health/Check on $target
  API key:     $(cat "$data_dir/api_key")  (tenant demo, every scope; made on first start,
               stored hashed in $data_dir/api_keys; send "authorization: Bearer <key>")
  reflection:  on, so any gRPC tool can list the services (onestory.v1.IdentityService,
               onestory.v1.TimelineService, onestory.v1.ContextService, ...)
  call it:     /usr/bin/python3 tools/demo.py --target $target   (Python stubs in build/python)
  HTTP/JSON:   http://$http_listen/onestory.v1.<Service>/<Method>  (Connect; README "Over HTTP/JSON")
  console:     http://$http_listen/console/?phone=$phone#access_token=$token
               (the demo customer's screen pop, as supervisor demo-supervisor, for 12 h)
  stop it:     kill \$(cat $data_dir/server.pid)
MSG
