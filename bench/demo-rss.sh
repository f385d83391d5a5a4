#!/usr/bin/env bash
# RSS of `swell demo` (release build) after it has run for N seconds (default 60).
# Usage: bash bench/demo-rss.sh [seconds]   (after `bash dev.sh demo` built target/release/swell)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/release/swell demo --bind "127.0.0.1:$port" --database-url "sqlite://$dir/swell.db" --site-root target/site --log warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
sleep "$secs"
rss_kb=$(ps -o rss= -p "$pid")
echo "swell demo RSS after ${secs} s: $((rss_kb / 1024)) MiB ($rss_kb KiB)"
