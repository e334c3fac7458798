#!/usr/bin/env bash
# Installs what is missing, builds, starts onestory-server on its embedded default (its own
# redis-server under ./onestory-data, append-only persistence on) in the background, and plays a
# demo journey: a customer chats with the bot on the web, then calls; the phone agent's
# GetContext shows the chat.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh
data_dir="$PWD/onestory-data"
listen="${ONESTORY_LISTEN:-127.0.0.1:50051}"
mkdir -p "$data_dir"
if [[ -f "$data_dir/server.pid" ]] && kill -0 "$(cat "$data_dir/server.pid")" 2>/dev/null; then
  echo "stopping the onestory-server started earlier (pid $(cat "$data_dir/server.pid"))"
  kill "$(cat "$data_dir/server.pid")"
  for _ in $(seq 100); do kill -0 "$(cat "$data_dir/server.pid")" 2>/dev/null || break; sleep 0.1; done
fi
rm -f "$data_dir/port"
nohup build/services/onestory-server --listen="$listen" --data_dir="$data_dir" \
  --port_file="$data_dir/port" >>"$data_dir/server.log" 2>&1 &
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
  --key-file "$data_dir/api_key"
cat <<MSG

onestory-server is running (pid $(cat "$data_dir/server.pid")), listening on $target
  data and redis-server socket: $data_dir   logs: $data_dir/server.log
  health:      grpc.health.v1.Health/Check on $target
  API key:     $(cat "$data_dir/api_key")  (tenant demo, every scope; made on first start,
               stored hashed in $data_dir/api_keys; send "authorization: Bearer <key>")
  reflection:  on, so any gRPC tool can list the services (onestory.v1.IdentityService,
               onestory.v1.TimelineService, onestory.v1.ContextService, ...)
  call it:     /usr/bin/python3 tools/demo.py --target $target   (Python stubs in build/python)
  stop it:     kill \$(cat $data_dir/server.pid)
MSG
