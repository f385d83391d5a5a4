#!/usr/bin/env bash
# Builds etcd 3.6, kube-apiserver and kube-controller-manager from the Go module proxy into
# ~/.cache/swell/controlplane-<hash of go.sum and go version>/bin (once; later runs reuse it)
# and prints that folder.
set -euo pipefail
cd "$(dirname "$0")"
CACHE="${DEV_CACHE_DIR:-$HOME/.cache/swell}"
key=$( (cat go.sum go.mod; go version) | sha256sum | cut -c1-16)
out="$CACHE/controlplane-$key/bin"
if [ ! -x "$out/kube-apiserver" ] || [ ! -x "$out/kube-controller-manager" ] || [ ! -x "$out/etcd" ]; then
  mkdir -p "$out"
  echo "building the control plane into $out (first time: several minutes)" >&2
  go build -trimpath -o "$out/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager ./cmd/etcd
fi
echo "$out"
