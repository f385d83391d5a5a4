#!/usr/bin/env bash
# Swell's two entry points for a fresh machine:
#   bash dev.sh demo   install what is missing, build, and run `swell demo` on http://127.0.0.1:3000
#   bash dev.sh test   install what is missing, start the test services, run every test suite
#   bash dev.sh image  a release build, packed as an OCI image (deploy/image/build.sh)
# demo and test share one (debug) build: a demo after a test run, or the other way round,
# compiles nothing again.
# Heavy build output is cached outside the clone, in $DEV_CACHE_DIR (default ~/.cache/swell),
# keyed by Cargo.lock and the Rust toolchain, so a second run is warm.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
CACHE="${DEV_CACHE_DIR:-$HOME/.cache/swell}"
CARGO_LEPTOS_VERSION=0.3.10
# Must equal the wasm-bindgen pinned in Cargo.toml.
WASM_BINDGEN_VERSION=0.2.130
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CARGO_TERM_COLOR=never

PHASES=()
SUITES=()
TOTAL_PASSED=0
TOTAL_FAILED=0

say() { echo "==> $*" >&2; }

# phase NAME CMD...: runs CMD and records its wall time.
phase() {
  local name=$1 start end rc=0
  shift
  say "$name"
  start=$(date +%s)
  "$@" || rc=$?
  end=$(date +%s)
  PHASES+=("$(printf '%-22s %5ss' "$name" "$((end - start))")")
  return $rc
}

apt_install() {
  say "apt-get install $*"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# install_system build|test: what building Swell needs, and for `test` the services too.
install_system() {
  local missing=()
  command -v cc >/dev/null || missing+=(build-essential)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v curl >/dev/null || missing+=(curl)
  # librdkafka (the Kafka client) builds from source against these.
  dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
  dpkg -s zlib1g-dev >/dev/null 2>&1 || missing+=(zlib1g-dev)
  command -v make >/dev/null || missing+=(make)
  if [ "$1" = test ]; then
    command -v python3 >/dev/null || missing+=(python3)
    python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v npm >/dev/null || missing+=(nodejs npm)
    command -v chromium >/dev/null || missing+=(chromium)
    command -v prometheus >/dev/null || missing+=(prometheus)
    ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
    command -v java >/dev/null || missing+=(default-jre-headless)
    command -v mvn >/dev/null || missing+=(maven)
    command -v unzip >/dev/null || missing+=(unzip)
    command -v sqlite3 >/dev/null || missing+=(sqlite3)
    # The image (deploy/image/build.sh) and its checks.
    command -v umoci >/dev/null || missing+=(umoci)
    command -v skopeo >/dev/null || missing+=(skopeo)
    # A second host for the fault tests: a network namespace, blackholed with iptables.
    command -v ip >/dev/null || missing+=(iproute2)
    command -v iptables >/dev/null || missing+=(iptables)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
  fi
  if ! command -v go >/dev/null; then
    echo "Go (1.26 or later) is missing: the test Kubernetes control plane is built with it (https://go.dev/dl)" >&2
    exit 1
  fi
  if ! command -v cargo >/dev/null; then
    echo "Rust is missing: install it with rustup (https://rustup.rs), then run this again" >&2
    exit 1
  fi
}

# cargo-leptos and wasm-bindgen-cli, built side by side. cargo-leptos' own release profile
# asks for fat LTO in one codegen unit (15 minutes here). Its work per build is small (it
# runs cargo, wasm-bindgen and a CSS minifier), so it is built without optimisation;
# wasm-bindgen, which rewrites every wasm file, keeps some (opt-level 1, no LTO).
install_rust_tools() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
  local pids=() rc=0
  if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
      cargo install --locked "cargo-leptos@$CARGO_LEPTOS_VERSION" &
    pids+=($!)
  fi
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
    # Not --locked: its lock file names a crate version the index no longer has.
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=64 CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
      cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" &
    pids+=($!)
  fi
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  return $rc
}

# moto (an SQS- and STS-speaking server) from PyPI, in a venv in the cache.
MOTO_VERSION=5.2.5
install_moto() {
  local venv="$CACHE/venv-moto"
  if [ "$("$venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)" != "$MOTO_VERSION" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "moto[server]==$MOTO_VERSION"
  fi
  export MOTO_SERVER="$venv/bin/moto_server"
}

install_npm() {
  local stamp="end2end/node_modules/.swell-lock-hash" want
  want=$(sha256sum end2end/package-lock.json | cut -c1-16)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
    echo "$want" >"$stamp"
  fi
}

# target/ lives in the cache, one folder per (Cargo.lock, rustc) pair; the newest two are kept.
# A new pair starts from the newest folder, moved (cargo rebuilds only what changed), so a
# new dependency costs its own build, not a cold one.
link_target() {
  [ -e target ] && [ ! -L target ] && return 0
  local key dir newest
  key=$( (cat Cargo.lock; rustc -V) | sha256sum | cut -c1-16)
  dir="$CACHE/target-$key"
  newest=$(ls -dt "$CACHE"/target-* 2>/dev/null | head -n 1 || true)
  if [ ! -d "$dir" ] && [ -n "$newest" ]; then
    say "target: moving $(basename "$newest") to target-$key (Cargo.lock or rustc changed)"
    mv "$newest" "$dir"
  fi
  mkdir -p "$dir"
  touch "$dir"
  ln -sfn "$dir" target
  ls -dt "$CACHE"/target-* 2>/dev/null | tail -n +3 | xargs -r rm -rf
}

install_all() {
  install_system test
  install_rust_tools
  install_npm
  link_target
}

# The variables cargo-leptos sets when it builds the server; `cargo test` gets the same ones
# so both reuse one build of the Leptos crates.
leptos_env() {
  export LEPTOS_OUTPUT_NAME=swell LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg \
    LEPTOS_SITE_ADDR=127.0.0.1:3000 LEPTOS_RELOAD_PORT=3001 LEPTOS_LIB_DIR=frontend \
    LEPTOS_BIN_DIR=server LEPTOS_JS_MINIFY=false LEPTOS_HASH_FILES=false
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() {
  local url=$1 tries=600
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    tries=$((tries - 1))
    [ $tries -gt 0 ] || { echo "no answer from $url" >&2; return 1; }
    sleep 0.1
  done
}

# record SUITE PASSED FAILED
record() {
  SUITES+=("$(printf '%-22s %4s passed %4s failed' "$1" "$2" "$3")")
  TOTAL_PASSED=$((TOTAL_PASSED + $2))
  TOTAL_FAILED=$((TOTAL_FAILED + $3))
}

check_wasm_deps() {
  local bad
  bad=$(cargo tree -p frontend --target wasm32-unknown-unknown --features hydrate -e normal --prefix none 2>/dev/null \
    | awk '{print $1}' | sort -u | grep -xE 'tokio|sea-orm|sqlx|kube|linfa|engine|axum|mio' || true)
  if [ -n "$bad" ]; then
    echo "the wasm build pulls in server crates: $bad (keep them behind the ssr feature)" >&2
    record wasm-deps 0 1
    return 1
  fi
  record wasm-deps 1 0
}

# Test binaries that take longest start first, so the two lanes end together.
SLOW_FIRST="demo_faults faults kafka rabbitmq replay durability restart kube hpa canary jobs keda_compat login rotation"

# Builds every test binary once, then runs them two at a time (most wait on servers, not
# the CPU), each in its package's folder as `cargo test` would; the logs are printed whole,
# one binary after another, and counted.
cargo_tests() {
  local log="$WORK/cargo-test.log" list="$WORK/test-binaries" logs="$WORK/test-logs" rc=0
  leptos_env
  mkdir -p "$logs"
  cargo test --no-run --message-format=json-render-diagnostics -p migrations -p engine -p server -p app --features app/ssr \
    | python3 -c '
import json, os, sys
slow = sys.argv[1].split()
found = []
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        name = m["target"]["name"]
        found.append((slow.index(name) if name in slow else len(slow), os.path.dirname(m["manifest_path"]), m["executable"]))
for _, folder, exe in sorted(found, key=lambda f: f[0]):
    print(folder, exe)
' "$SLOW_FIRST" >"$list" || { record "cargo test" 0 1; return 1; }
  # shellcheck disable=SC2016
  xargs -P 2 -L 1 bash -c 'cd "$0" && "$1" >"'"$logs"'/$(basename "$1").log" 2>&1; echo "$? $(basename "$1")" >>"'"$logs"'/status"' <"$list"
  : >"$log"
  while read -r _ exe; do
    echo "     Running $(basename "$exe")" >>"$log"
    cat "$logs/$(basename "$exe").log" >>"$log"
  done <"$list"
  cat "$log"
  if [ ! -f "$logs/status" ] || [ "$(wc -l <"$logs/status")" -ne "$(wc -l <"$list")" ] || grep -qv '^0 ' "$logs/status"; then
    rc=1
  fi
  local passed failed
  passed=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^passed/) s += $i } END { print s + 0 }' "$log")
  failed=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^failed/) s += $i } END { print s + 0 }' "$log")
  [ -n "$passed" ] || passed=0
  [ -n "$failed" ] || failed=0
  if [ $rc -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
  record "cargo test" "$passed" "$failed"
  return $rc
}

e2e_tests() {
  local port rc=0 log="$WORK/playwright.log"
  port=$(free_port)
  mkdir -p "$WORK/e2e"
  # Seals the tenants' client secrets that end2end/global-setup.ts stores.
  export SWELL_SECRET_KEY
  SWELL_SECRET_KEY=$(openssl rand -hex 32)
  "$WORK/swell" demo --bind "127.0.0.1:$port" --database-url "sqlite://$WORK/e2e/swell.db" \
    --site-root target/site --log warn >"$WORK/e2e/server.log" 2>&1 &
  local pid=$!
  if ! wait_http "http://127.0.0.1:$port/readyz"; then
    cat "$WORK/e2e/server.log" >&2
    kill "$pid" 2>/dev/null || true
    record playwright 0 1
    return 1
  fi
  (cd end2end && SWELL_E2E_URL="http://127.0.0.1:$port" SWELL_BIN="$WORK/swell" SWELL_E2E_DB="sqlite://$WORK/e2e/swell.db" \
    npx playwright test) 2>&1 | tee "$log" || rc=$?
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local passed failed
  passed=$(grep -oE '^ *[0-9]+ passed' "$log" | grep -oE '[0-9]+' | tail -n1 || true)
  failed=$(grep -oE '^ *[0-9]+ failed' "$log" | grep -oE '[0-9]+' | tail -n1 || true)
  [ -n "$passed" ] || passed=0
  [ -n "$failed" ] || failed=0
  if [ $rc -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
  record playwright "$passed" "$failed"
  return $rc
}

# Every cargo fuzz target for a few seconds (fuzz/run.sh; the long runs are in bench/).
fuzz_tests() {
  local log="$WORK/fuzz.log" rc=0 passed failed
  bash fuzz/run.sh "${FUZZ_SECONDS:-5}" 2>&1 | tee "$log" || rc=$?
  passed=$(grep -cE '^fuzz .* ok ' "$log" || true)
  failed=$(grep -cE '^fuzz .* FAILED' "$log" || true)
  if [ $rc -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
  record fuzz "$passed" "$failed"
  return $rc
}

summary() {
  echo
  echo "================ Swell test summary ================"
  echo "phases:"
  printf '  %s\n' "${PHASES[@]}"
  echo "suites:"
  printf '  %s\n' "${SUITES[@]}"
  echo "===================================================="
  echo "total: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
}

services_up() {
  local exports
  exports=$(bash end2end/services.sh up postgres prometheus) || { record services 0 1; return 1; }
  eval "$exports"
}

# Keycloak for the whole run (cargo tests and Playwright), booting while Swell builds.
KEYCLOAK_PID=
keycloak_up() {
  bash end2end/keycloak/fetch.sh >/dev/null || return 1
  local port management
  port=$(free_port)
  management=$(free_port)
  export TEST_KEYCLOAK_URL="http://127.0.0.1:$port"
  export TEST_KEYCLOAK_ADMIN_PASSWORD="admin-$$"
  bash end2end/keycloak/start.sh "$port" "$management" "$TEST_KEYCLOAK_ADMIN_PASSWORD" >"$WORK/keycloak.log" 2>&1 &
  KEYCLOAK_PID=$!
}

keycloak_ready() {
  local tries=1800
  until curl -fsS -o /dev/null "$TEST_KEYCLOAK_URL/realms/master/.well-known/openid-configuration" 2>/dev/null; do
    tries=$((tries - 1))
    if [ $tries -le 0 ] || ! kill -0 "$KEYCLOAK_PID" 2>/dev/null; then
      echo "Keycloak did not come up; its log:" >&2
      tail -n 40 "$WORK/keycloak.log" >&2
      record keycloak 0 1
      return 1
    fi
    sleep 0.1
  done
}

# Drops build output of this repository's own crates that no build used for 12 hours (each
# fresh clone builds them under its own hash), so the cached target folder does not grow
# without bound; dependencies' output stays.
prune_target() {
  local deps=target/debug/deps
  [ -d "$deps" ] || return 0
  find "$deps" -maxdepth 1 -mmin +720 \( -name 'app-*' -o -name 'libapp-*' -o -name 'engine-*' -o -name 'libengine-*' \
    -o -name 'server-*' -o -name 'swell-*' -o -name 'frontend-*' -o -name 'libfrontend-*' -o -name 'migrations-*' \
    -o -name 'libmigrations-*' -o -name 'testenv-*' -o -name 'libtestenv-*' \) -exec rm -rf {} + 2>/dev/null || true
}

# The site and the server binary the browser tests run. `cargo test` later builds the same
# binary with test features (and so other Leptos markup), so the browser tests keep a copy.
build_site() {
  cargo leptos build --split && cp target/debug/swell "$WORK/swell"
}

cmd_test() {
  local started rc=0
  started=$(date +%s)
  WORK=$(mktemp -d /tmp/swell-test.XXXXXX)
  phase install install_all
  phase install-moto install_moto
  # Incremental artifacts only grow the cache here: every fresh clone builds anew.
  export CARGO_INCREMENTAL=0
  prune_target
  export TEST_SERVICES_DIR="$WORK/services"
  # Brokers the tests start die with them; epmd (Erlang's port mapper) detaches, so it is
  # stopped here.
  trap 'bash end2end/services.sh down >/dev/null 2>&1 || true; pkill -x epmd 2>/dev/null || true; [ -n "$KEYCLOAK_PID" ] && kill "$KEYCLOAK_PID" 2>/dev/null; summary_once' EXIT
  phase services services_up
  phase wasm-deps check_wasm_deps || rc=1
  # etcd, kube-apiserver, kube-controller-manager from the Go module proxy (cached by go.sum).
  phase controlplane bash end2end/controlplane/build.sh >/dev/null || { record controlplane 0 1; rc=1; }
  # helm from the Go module proxy (cached), for the chart's tests.
  phase helm build_helm || { record helm 0 1; rc=1; }
  # Apache Kafka's broker jars from Maven Central (cached by pom.xml).
  phase kafka-jars bash end2end/kafka/fetch.sh >/dev/null || { record kafka-jars 0 1; rc=1; }
  # Keycloak from Maven Central (cached); it boots in the background during the build.
  phase keycloak keycloak_up || { record keycloak 0 1; rc=1; }
  if phase build build_site; then
    phase keycloak-ready keycloak_ready || rc=1
    phase cargo-test cargo_tests || rc=1
    phase playwright e2e_tests || rc=1
    phase fuzz fuzz_tests || rc=1
  else
    record build 0 1
    rc=1
  fi
  PHASES+=("$(printf '%-22s %5ss' total "$(($(date +%s) - started))")")
  exit $rc
}

build_helm() {
  TEST_HELM=$(bash end2end/helm/build.sh) && export TEST_HELM
}

SUMMARY_DONE=0
summary_once() {
  [ $SUMMARY_DONE -eq 1 ] && return
  SUMMARY_DONE=1
  summary
}

# The demo runs the debug build the tests use (one build for both commands): no release
# build, no wasm-opt, no npm packages.
cmd_demo() {
  local started
  started=$(date +%s)
  install_system build
  install_rust_tools
  link_target
  cargo leptos build --split
  say "built in $(($(date +%s) - started)) s; Swell demo on http://127.0.0.1:3000 (Ctrl-C stops it)"
  exec target/debug/swell demo --site-root target/site "$@"
}

# A release build of the server and site, packed as an OCI image under target/image.
cmd_image() {
  install_system test
  install_rust_tools
  install_npm
  link_target
  # Release builds run wasm-opt; npm's binaryen is the one that works (see end2end/package.json).
  PATH="$ROOT/end2end/node_modules/.bin:$PATH" cargo leptos build --release --split
  bash deploy/image/build.sh --binary target/release/swell --site target/site "$@"
}

case "${1:-}" in
  demo) shift; cmd_demo "$@" ;;
  image) shift; cmd_image "$@" ;;
  test) shift; cmd_test ;;
  *) echo "usage: bash dev.sh demo | bash dev.sh test | bash dev.sh image" >&2; exit 2 ;;
esac
