#!/usr/bin/env bash
# The dashboard under load, on a release build (`bash dev.sh demo` or `cargo leptos build
# --release` makes it): server-side rendering of the overview and of an object page with
# 100 objects at 200 concurrent clients (wrk), 1,000 websocket clients on one tenant (update
# latency from a change to each client, server RSS per client), and the wasm's size.
#   bash bench/dashboard.sh            BENCH_CLIENTS=1000 BENCH_SECS=20 BENCH_OBJECTS=100
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BENCH_BIN:-target/release/swell}
SITE=${BENCH_SITE:-target/site}
OBJECTS=${BENCH_OBJECTS:-100}
SECS=${BENCH_SECS:-20}
[ -x "$BIN" ] || { echo "no release binary at $BIN: run cargo leptos build --release first" >&2; exit 1; }
# The websocket client is built first, so compiling it does not compete with the server.
# With the engine's package beside it, as the other benches are built, so one set of
# features serves them all and nothing is rebuilt between them.
cargo bench -q -p engine -p server --bench live_clients --no-run 2>/dev/null
command -v wrk >/dev/null || { sudo -n true 2>/dev/null && S=sudo || S=; $S apt-get install -y -qq wrk >/dev/null; }
dir=$(mktemp -d)
db="sqlite://$dir/swell.db"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SWELL_SECRET_KEY=${SWELL_SECRET_KEY:-$(openssl rand -hex 32)}
"$BIN" tenant add demo --database-url "$db" >/dev/null
token=$("$BIN" token create bench --tenant demo --role operator --database-url "$db")
"$BIN" demo --playgrounds "$OBJECTS" --bind "127.0.0.1:$port" --database-url "$db" --site-root "$SITE" --log warn >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
fn() { "$BIN" routes | python3 -c "import json,sys; print(next(json.loads(l)['path'] for l in sys.stdin if '$1' in l))"; }
apply=$(fn apply_yaml)
override=$(fn override_replicas)
auth="Authorization: Bearer $token"
for i in $(seq 4 "$OBJECTS"); do
  yaml="kind: ScaledObject
metadata: {name: bench-$i, namespace: demo}
spec:
  scaleTargetRef: {name: playground-$i}
  actuation: direct
  pollingInterval: 1
  maxReplicaCount: 5
  triggers:
    - type: simulated
      metadata: {workload: web-requests, target: \"50\"}"
  curl -sf -o /dev/null -H "$auth" --data-urlencode "tenant=demo" --data-urlencode "yaml=$yaml" "http://127.0.0.1:$port$apply"
done
sleep 3
object=$(curl -sf -H "$auth" -d "tenant=demo" "http://127.0.0.1:$port$(fn load_overview)" | python3 -c "import json,sys; print(json.load(sys.stdin)['objects'][0]['id'])")
echo "== SSR, $OBJECTS objects, 200 connections, ${SECS}s each (wrk --latency)"
for path in "/t/demo" "/t/demo/o/$object"; do
  echo "-- GET $path"
  before=$(ps -o rss= -p "$pid")
  # The server's RSS every 30 s while wrk runs, so a long run (BENCH_SECS=600) shows a leak.
  ( while sleep 30; do echo "   … server RSS $(( $(ps -o rss= -p "$pid") / 1024 )) MiB"; done ) &
  sampler=$!
  wrk -t2 -c200 -d"${SECS}s" --latency -H "$auth" "http://127.0.0.1:$port$path" | grep -E "Latency|50%|99%|Requests/sec|Non-2xx"
  kill "$sampler"
  echo "   server RSS $((before / 1024)) MiB before, $(( $(ps -o rss= -p "$pid") / 1024 )) MiB after (BENCH_SECS=600 makes this a soak)"
done
echo "== live stream, ${BENCH_CLIENTS:-1000} websocket clients"
BENCH_PORT=$port BENCH_TOKEN=$token BENCH_PID=$pid BENCH_OBJECT=$object BENCH_OVERRIDE_PATH=$override \
  cargo bench -q -p engine -p server --bench live_clients
echo "== wasm (split by route: the main module every page loads, then what each lazy page adds)"
python3 "$(dirname "$0")/wasm-size.py" "$SITE/pkg"
