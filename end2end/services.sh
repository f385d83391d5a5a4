#!/usr/bin/env bash
# The test environment's real services, on 127.0.0.1 only, on free ports.
#   end2end/services.sh up [postgres] [prometheus]   install if missing, start, wait until ready;
#                                       prints `export VAR=…` lines for the tests
#   end2end/services.sh down            stop everything this script started
# Idempotent: `up` on a running service reprints its variables. State lives in
# $TEST_SERVICES_DIR (default /tmp/swell-services).
set -euo pipefail

STATE="${TEST_SERVICES_DIR:-/tmp/swell-services}"
mkdir -p "$STATE"

log() { echo "services: $*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

apt_install() {
  if [ ! -f /tmp/swell-apt-updated ]; then
    log "apt-get update"
    apt-get update -qq >&2 && touch /tmp/swell-apt-updated
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  echo "$d"
}

postgres_up() {
  # Its own folder under /tmp: the server runs as the postgres user, which may not be able
  # to enter $STATE (e.g. a mktemp folder of root's).
  local dir="/tmp/swell-postgres-$(echo "$STATE" | sha256sum | cut -c1-12)" bin
  bin=$(pg_bin)
  if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
    apt_install postgresql
    bin=$(pg_bin)
  fi
  if [ -f "$dir/port" ] && su postgres -c "$bin/pg_ctl -D $dir/data status" >/dev/null 2>&1; then
    echo "export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$(cat "$dir/port")/postgres"
    return
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  chown postgres:postgres "$dir"
  local port
  port=$(free_port)
  su postgres -c "$bin/initdb -D $dir/data -U postgres --auth=trust -E UTF8 --no-sync" >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  su postgres -c "$bin/pg_ctl -D $dir/data -l $dir/server.log -w -t 60 \
    -o '-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200' start" >&2 \
    || { cat "$dir/server.log" >&2; exit 1; }
  echo "$port" >"$dir/port"
  log "postgres ready on 127.0.0.1:$port"
  echo "export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres"
}

postgres_down() {
  local dir="/tmp/swell-postgres-$(echo "$STATE" | sha256sum | cut -c1-12)" bin
  bin=$(pg_bin)
  if [ -d "$dir/data" ] && [ -n "$bin" ]; then
    su postgres -c "$bin/pg_ctl -D $dir/data -m fast -w stop" >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

# Prometheus scraping whatever targets the tests list in $PROMETHEUS_TARGETS_DIR/*.json
# (file service discovery), every second.
prometheus_up() {
  local dir="$STATE/prometheus" port
  command -v prometheus >/dev/null || apt_install prometheus
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    echo "export PROMETHEUS_URL=http://127.0.0.1:$(cat "$dir/port") PROMETHEUS_TARGETS_DIR=$dir/targets"
    return
  fi
  rm -rf "$dir"
  mkdir -p "$dir/targets" "$dir/data"
  port=$(free_port)
  cat >"$dir/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: swell
    file_sd_configs:
      - files: ["$dir/targets/*.json"]
        refresh_interval: 1s
YAML
  prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port" >"$dir/server.log" 2>&1 &
  echo $! >"$dir/pid"
  echo "$port" >"$dir/port"
  local tries=300
  until curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; do
    tries=$((tries - 1))
    [ $tries -gt 0 ] || { cat "$dir/server.log" >&2; exit 1; }
    sleep 0.1
  done
  log "prometheus ready on 127.0.0.1:$port"
  echo "export PROMETHEUS_URL=http://127.0.0.1:$port PROMETHEUS_TARGETS_DIR=$dir/targets"
}

prometheus_down() {
  local dir="$STATE/prometheus"
  if [ -f "$dir/pid" ]; then
    kill "$(cat "$dir/pid")" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  up)
    shift
    for svc in "${@:-postgres}"; do
      "${svc}_up"
    done
    ;;
  down)
    postgres_down
    prometheus_down
    ;;
  *)
    echo "usage: $0 up [postgres] [prometheus] | down" >&2
    exit 2
    ;;
esac
