#!/usr/bin/env bash
# Runs every cargo fuzz target (fuzz/fuzz_targets) for SECONDS each (default 5) and prints a
# line per target; a crash fails with the input that caused it (kept in the run's folder).
#
#   bash fuzz/run.sh [SECONDS] [--release]
#
# The suite runs it for a few seconds on a debug build; bench/README.md has the long runs
# (--release, minutes each). cargo-fuzz is installed into ~/.cache/swell; the build goes to a
# cached target folder. Stable Rust with RUSTC_BOOTSTRAP=1 (cargo fuzz passes -Z flags), so
# no nightly toolchain is needed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DEV_CACHE_DIR:-$HOME/.cache/swell}"
CARGO_FUZZ_VERSION=0.13.2
SECONDS_EACH=${1:-5}
PROFILE=--dev
[ "${2:-}" = --release ] && PROFILE=--release
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

tools="$CACHE/cargo-fuzz-$CARGO_FUZZ_VERSION"
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
  cargo install --locked --root "$tools" "cargo-fuzz@$CARGO_FUZZ_VERSION" >&2
fi
export PATH="$tools/bin:$PATH" RUSTC_BOOTSTRAP=1 CARGO_INCREMENTAL=0
# Keyed by the compiler only: cargo rebuilds just what a changed lock file touches.
key=$(rustc -V | sha256sum | cut -c1-16)
target="$CACHE/fuzz-target-$key"
cd "$ROOT/fuzz"
cargo fuzz build $PROFILE --sanitizer none --target-dir "$target" >&2

work=$(mktemp -d /tmp/swell-fuzz.XXXXXX)
seeds() {
  case "$1" in
    manifest) echo "$ROOT/engine/tests/data/keda" ;;
    replay_csv) echo "$ROOT/engine/data/traces" ;;
    config) echo "$ROOT/fuzz/seeds/config" ;;
  esac
}
failed=0
for src in fuzz_targets/*.rs; do
  name=$(basename "$src" .rs)
  mkdir -p "$work/$name/corpus"
  # shellcheck disable=SC2046
  if cargo fuzz run $PROFILE --sanitizer none --target-dir "$target" "$name" "$work/$name/corpus" $(seeds "$name") -- \
      -max_total_time="$SECONDS_EACH" -artifact_prefix="$work/$name/" -print_final_stats=1 >"$work/$name/log" 2>&1; then
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$work/$name/log" | grep -oE '[0-9]+$' || echo "?")
    printf 'fuzz %-18s ok      %8s inputs in %ss\n' "$name" "$runs" "$SECONDS_EACH"
  else
    failed=$((failed + 1))
    printf 'fuzz %-18s FAILED  (log and input in %s)\n' "$name" "$work/$name"
    grep -E 'panicked|ERROR|SUMMARY' "$work/$name/log" | head -n 5
  fi
done
[ $failed -eq 0 ] && rm -rf "$work"
exit $((failed > 0))
