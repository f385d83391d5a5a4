#!/usr/bin/env bash
# Fetches Keycloak's server distribution (org.keycloak:keycloak-quarkus-dist, a zip) from
# Maven Central and unpacks it into ~/.cache/swell/keycloak-<version> once; prints that folder.
# It runs on the Temurin 25 JDK (Keycloak needs 21+); see end2end/testenv/src/keycloak.rs.
set -euo pipefail
VERSION=26.7.3
CACHE="${DEV_CACHE_DIR:-$HOME/.cache/swell}"
out="$CACHE/keycloak-$VERSION"
if [ ! -f "$out/.complete" ]; then
  echo "fetching Keycloak $VERSION into $out (first time: a few minutes)" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mvn -q -B dependency:copy -Dartifact="org.keycloak:keycloak-quarkus-dist:$VERSION:zip" -DoutputDirectory="$tmp" >&2
  rm -rf "$out"
  mkdir -p "$out"
  unzip -q "$tmp/keycloak-quarkus-dist-$VERSION.zip" -d "$tmp/unz"
  mv "$tmp/unz/keycloak-$VERSION"/* "$out/"
  touch "$out/.complete"
fi
echo "$out"
