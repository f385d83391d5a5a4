#!/usr/bin/env bash
# Runs Keycloak in dev mode on 127.0.0.1 with an in-memory database, in the foreground:
#   bash end2end/keycloak/start.sh HTTP_PORT MANAGEMENT_PORT ADMIN_PASSWORD
# On the newest Temurin JDK 21+ in /usr/lib/jvm (Keycloak needs 21; the default java is
# 17), or SWELL_KEYCLOAK_JAVA_HOME. Used by dev.sh test and end2end/testenv alike.
set -euo pipefail
port=$1 management=$2 password=$3
home=$(bash "$(dirname "$0")/fetch.sh")
if [ -n "${SWELL_KEYCLOAK_JAVA_HOME:-}" ]; then
  JAVA_HOME=$SWELL_KEYCLOAK_JAVA_HOME
else
  JAVA_HOME=$(ls -d /usr/lib/jvm/temurin-* 2>/dev/null | awk -F- '$2 >= 21' | sort -t- -k2 -n | tail -n1)
fi
if [ -z "$JAVA_HOME" ] || [ ! -x "$JAVA_HOME/bin/java" ]; then
  echo "no JDK 21+ for Keycloak in /usr/lib/jvm (a Temurin 25 JDK is expected there); set SWELL_KEYCLOAK_JAVA_HOME" >&2
  exit 1
fi
export JAVA_HOME KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD=$password
export JAVA_OPTS_KC_HEAP="-Xms128m -Xmx768m"
# kc.sh runs the JVM as its child, so this script stays in front: stopping it (TERM, or the
# parent's death signal testenv sets) stops the JVM too, never leaving one behind.
"$home/bin/kc.sh" start-dev --db=dev-mem --http-host=127.0.0.1 --http-port="$port" \
  --http-management-port="$management" --hostname-strict=false &
kc=$!
stop() {
  pkill -TERM -P "$kc" 2>/dev/null || true
  kill -TERM "$kc" 2>/dev/null || true
  wait "$kc" 2>/dev/null || true
  exit 0
}
trap stop TERM INT HUP
wait "$kc"
