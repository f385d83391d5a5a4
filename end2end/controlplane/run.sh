#!/usr/bin/env bash
# Starts a fresh control plane on free 127.0.0.1 ports: etcd, kube-apiserver (RBAC, a static
# admin token), kube-controller-manager (deployment, replicaset, job, HPA, garbage collector,
# namespace controllers). Writes $DIR/kubeconfig and prints `export KUBECONFIG=…`.
#   run.sh DIR     start (DIR must not exist)      run.sh stop DIR     stop it
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

if [ "${1:-}" = stop ]; then
  for p in controller-manager apiserver etcd; do
    [ -f "$2/$p.pid" ] && kill "$(cat "$2/$p.pid")" 2>/dev/null || true
  done
  exit 0
fi

dir=$1
bin=$("$here/build.sh")
mkdir -p "$dir/etcd" "$dir/certs"
etcd_client=$(free_port) etcd_peer=$(free_port) api=$(free_port)
token=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)
echo "$token,admin,admin,\"system:masters\"" >"$dir/tokens.csv"
openssl genrsa -out "$dir/certs/sa.key" 2048 2>/dev/null
openssl rsa -in "$dir/certs/sa.key" -pubout -out "$dir/certs/sa.pub" 2>/dev/null

"$bin/etcd" --data-dir "$dir/etcd" --listen-client-urls "http://127.0.0.1:$etcd_client" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" >"$dir/etcd.log" 2>&1 &
echo $! >"$dir/etcd.pid"

"$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_client" --cert-dir "$dir/certs" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api" \
  --service-cluster-ip-range 10.0.0.0/24 --authorization-mode RBAC --allow-privileged=true \
  --token-auth-file "$dir/tokens.csv" --disable-admission-plugins ServiceAccount \
  --service-account-issuer https://swell-test.invalid --service-account-key-file "$dir/certs/sa.pub" \
  --service-account-signing-key-file "$dir/certs/sa.key" >"$dir/apiserver.log" 2>&1 &
echo $! >"$dir/apiserver.pid"

cat >"$dir/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "https://127.0.0.1:$api", insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: "$token"}
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
YAML

tries=600
until curl -ksf -H "Authorization: Bearer $token" "https://127.0.0.1:$api/readyz" >/dev/null 2>&1; do
  tries=$((tries - 1))
  [ $tries -gt 0 ] || { tail -20 "$dir/apiserver.log" >&2; exit 1; }
  sleep 0.1
done

"$bin/kube-controller-manager" --kubeconfig "$dir/kubeconfig" --leader-elect=false \
  --bind-address 127.0.0.1 --secure-port 0 \
  --controllers deployment-controller,replicaset-controller,job-controller,horizontal-pod-autoscaler-controller,garbage-collector-controller,namespace-controller \
  --horizontal-pod-autoscaler-sync-period 2s >"$dir/controller-manager.log" 2>&1 &
echo $! >"$dir/controller-manager.pid"
echo "export KUBECONFIG=$dir/kubeconfig"
