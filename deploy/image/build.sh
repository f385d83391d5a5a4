#!/usr/bin/env bash
# Builds Swell's OCI image without a Docker daemon (Debian's umoci): the swell binary, the
# site (wasm, js, css), the shared libraries the binary links (from this Debian system, with
# their copyright files), CA certificates, and a non-root user, on an empty base.
#
#   bash deploy/image/build.sh [--binary target/release/swell] [--site target/site]
#                              [--out target/image] [--tag VERSION]
#
# Writes an OCI layout to --out (tag VERSION, default the workspace version) and prints its
# reference, e.g. oci:target/image:0.1.0. Push it with skopeo, or hand it to Docker:
#   skopeo copy oci:target/image:0.1.0 docker://registry.example.com/swell:0.1.0
#   skopeo copy oci:target/image:0.1.0 docker-archive:swell.tar:swell:0.1.0 && docker load -i swell.tar
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BINARY="$ROOT/target/release/swell"
SITE="$ROOT/target/site"
OUT="$ROOT/target/image"
TAG=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n 1)
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BINARY=$2; shift 2 ;;
    --site) SITE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --tag) TAG=$2; shift 2 ;;
    *) echo "unknown option $1 (see the top of $0)" >&2; exit 2 ;;
  esac
done
[ -x "$BINARY" ] || { echo "--binary $BINARY: not an executable; build it first (cargo leptos build --release)" >&2; exit 2; }
[ -d "$SITE/pkg" ] || { echo "--site $SITE: no pkg/ folder; build the site first (cargo leptos build --release)" >&2; exit 2; }
for tool in umoci skopeo strip; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install umoci skopeo binutils" >&2; exit 2; }
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ROOTFS="$WORK/rootfs"
mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/app" "$ROOTFS/etc/ssl/certs" "$ROOTFS/tmp" "$ROOTFS/usr/share/doc"
chmod 1777 "$ROOTFS/tmp"
strip -o "$ROOTFS/usr/local/bin/swell" "$BINARY"
cp -r "$SITE" "$ROOTFS/app/site"
# The dynamic loader and every library ldd resolves, at the same paths, with the copyright
# file of the Debian package each comes from.
for lib in $(ldd "$BINARY" | grep -oE '/[^ ]+' | sort -u); do
  mkdir -p "$ROOTFS$(dirname "$lib")"
  cp -L "$lib" "$ROOTFS$lib"
  # dpkg knows a file by the path its package ships (/lib or /usr/lib, with usrmerge).
  real=$(readlink -f "$lib")
  pkg=""
  for path in "$lib" "$real" "${real#/usr}" "/usr$lib"; do
    pkg=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1 || true)
    [ -n "$pkg" ] && break
  done
  if [ -n "$pkg" ] && [ -f "/usr/share/doc/$pkg/copyright" ]; then
    mkdir -p "$ROOTFS/usr/share/doc/$pkg"
    cp "/usr/share/doc/$pkg/copyright" "$ROOTFS/usr/share/doc/$pkg/"
  fi
done
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nswell:x:65532:65532:swell:/tmp:/sbin/nologin\n' >"$ROOTFS/etc/passwd"
printf 'root:x:0:\nswell:x:65532:\n' >"$ROOTFS/etc/group"
printf 'hosts: files dns\n' >"$ROOTFS/etc/nsswitch.conf"

rm -rf "$OUT"
umoci init --layout "$OUT"
umoci new --image "$OUT:$TAG"
umoci unpack --rootless --image "$OUT:$TAG" "$WORK/bundle" >/dev/null
cp -a "$ROOTFS/." "$WORK/bundle/rootfs/"
umoci repack --image "$OUT:$TAG" --history.created_by "deploy/image/build.sh" "$WORK/bundle"
umoci config --image "$OUT:$TAG" \
  --author "Swell" \
  --config.user 65532:65532 \
  --config.entrypoint /usr/local/bin/swell --config.cmd serve \
  --config.workingdir /app \
  --config.env SWELL_SITE_ROOT=/app/site --config.env SWELL_BIND=0.0.0.0:3000 \
  --config.env SWELL_METRICS_API_BIND=0.0.0.0:6443 --config.env HOME=/tmp \
  --config.exposedports 3000/tcp --config.exposedports 6443/tcp \
  --config.label "org.opencontainers.image.title=swell" \
  --config.label "org.opencontainers.image.version=$TAG" \
  --config.label "org.opencontainers.image.licenses=Apache-2.0" \
  --history.created_by "deploy/image/build.sh (config)"
umoci gc --layout "$OUT"
size=$(skopeo inspect --raw "oci:$OUT:$TAG" | python3 -c 'import json,sys; m=json.load(sys.stdin); print(sum(l["size"] for l in m["layers"]))')
echo "image oci:$OUT:$TAG: $((size / 1024 / 1024)) MiB compressed ($size bytes)" >&2
echo "oci:$OUT:$TAG"
