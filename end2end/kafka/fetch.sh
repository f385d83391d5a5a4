#!/usr/bin/env bash
# Resolves Apache Kafka's broker jars (pom.xml) from Maven Central into
# ~/.cache/swell/kafka-<hash of pom.xml>/libs once, and prints that folder.
set -euo pipefail
cd "$(dirname "$0")"
CACHE="${DEV_CACHE_DIR:-$HOME/.cache/swell}"
key=$(sha256sum pom.xml | cut -c1-16)
out="$CACHE/kafka-$key/libs"
if [ ! -f "$out/.complete" ]; then
  mkdir -p "$out"
  echo "fetching Kafka jars into $out (first time: a minute)" >&2
  mvn -q -B -f pom.xml dependency:copy-dependencies -DoutputDirectory="$out" -DincludeScope=runtime >&2
  touch "$out/.complete"
fi
echo "$out"
