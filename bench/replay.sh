#!/bin/bash
# The replay figures of bench/README.md, regenerated: each shared trace through `swell replay`
# by the protocol of ../shared/traces/README.md (fit before the test part, replay the test part).
#   bash bench/replay.sh [path/to/swell]   (default: target/release/swell)
set -euo pipefail
cd "$(dirname "$0")/.."
SWELL=${1:-target/release/swell}
TRACES=${TRACES:-../shared/traces}
run() { echo "== $1"; shift; "$SWELL" replay --tune "$@"; echo; }
# NASA: fit on July, test on August (the last row, 09-01 00:00, is clock drift).
run "NASA HTTP, August 1995" --trace "$TRACES/nasa_http_1995_requests_per_minute.csv" --object bench/replay/nasa.yaml \
  --capacity-per-replica 60 --startup 120 --train-until 1995-08-01T00:00:00-04:00 --to 1995-08-31T23:59:00-04:00
# Wikipedia: fit on days 1–21, test on 22–31.
run "Wikipedia en, 2016-01-22..31" --trace "$TRACES/wikipedia_en_2016_01_requests_per_hour.csv" --value-column requests \
  --object bench/replay/wikipedia.yaml --capacity-per-replica 500000 --startup 120 --train-until 2016-01-22T00:00:00Z
# Microsoft ecommerce-api-incoming-rps: fit on the first 70 %, test on the rest (the default split).
run "Microsoft ecommerce-api-incoming-rps, last 30 %" --trace "$TRACES/microsoft/ecommerce-api-incoming-rps/api-01.csv" \
  --time-column TimeStamp --value-column Value --object bench/replay/microsoft-api.yaml --capacity-per-replica 5 --startup 120
