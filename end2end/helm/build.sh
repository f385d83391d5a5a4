#!/usr/bin/env bash
# Builds helm from the Go module proxy into ~/.cache/swell/helm-<version>-<go version>/ (once;
# later runs reuse it) and prints the binary's path. The chart tests run `helm lint` and
# `helm template` with it.
set -euo pipefail
HELM_VERSION=v3.22.0
CACHE="${DEV_CACHE_DIR:-$HOME/.cache/swell}"
key=$(go version | sha256sum | cut -c1-8)
out="$CACHE/helm-$HELM_VERSION-$key"
if [ ! -x "$out/helm" ]; then
  mkdir -p "$out"
  echo "building helm $HELM_VERSION into $out (first time: about two minutes)" >&2
  GOBIN="$out" GOFLAGS=-trimpath go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
fi
echo "$out/helm"
