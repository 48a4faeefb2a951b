#!/usr/bin/env bash
# The minimal controller of examples/copy_configmaps.c on the real
# apiserver: copies appear, follow their source, come back when deleted,
# carry a controller ownerReference; metrics and probes answer; SIGTERM
# stops it with exit 0.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="${EXAMPLE_BIN:-$top/build/asan/examples/example-copy-configmaps}"
ns="e2e-copy-$RANDOM$RANDOM"
log=$(mktemp)
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  rm -f "$log"
}
trap cleanup EXIT
kubectl create namespace "$ns" >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mport=$(free_port)
pport=$(free_port)
METRICS_ADDR="127.0.0.1:$mport" PROBE_ADDR="127.0.0.1:$pport" "$bin" "$ns" 2>"$log" &
pid=$!

wait_for() { # seconds, command...
  local n=$(($1 * 10)); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out waiting for: $*"; cat "$log"; return 1
}
data_of() { kubectl -n "$ns" get configmap "$1" -o jsonpath="{.data.$2}"; }
has() { [ "$(data_of "$1" "$2")" = "$3" ]; }

wait_for 30 curl -sf "http://127.0.0.1:$pport/readyz"
kubectl -n "$ns" create configmap src --from-literal=k=v1 >/dev/null
kubectl -n "$ns" label configmap src crdkit.io/copy=true >/dev/null
kubectl -n "$ns" create configmap other --from-literal=k=x >/dev/null
wait_for 30 has src-copy k v1
# The copy is owned by its source (controller reference).
[ "$(kubectl -n "$ns" get configmap src-copy -o jsonpath='{.metadata.ownerReferences[0].name}')" = src ]
[ "$(kubectl -n "$ns" get configmap src-copy -o jsonpath='{.metadata.ownerReferences[0].controller}')" = true ]
# Unlabelled ConfigMaps are not copied.
sleep 1
if kubectl -n "$ns" get configmap other-copy >/dev/null 2>&1; then
  echo "an unlabelled ConfigMap was copied"; exit 1
fi
# The copy follows its source.
kubectl -n "$ns" patch configmap src --type merge -p '{"data":{"k":"v2"}}' >/dev/null
wait_for 30 has src-copy k v2
# A deleted or edited copy comes back (owns: child events reach the owner).
kubectl -n "$ns" delete configmap src-copy >/dev/null
wait_for 30 has src-copy k v2
kubectl -n "$ns" patch configmap src-copy --type merge -p '{"data":{"k":"tampered"}}' >/dev/null
wait_for 30 has src-copy k v2
# Metrics use controller-runtime's names.
metrics=$(curl -sf "http://127.0.0.1:$mport/metrics")
grep -q '^controller_runtime_reconcile_total{controller="copy-configmaps",result="success"} [1-9]' <<<"$metrics"
grep -q '^workqueue_adds_total{name="copy-configmaps"} [1-9]' <<<"$metrics"
grep -q '^rest_client_requests_total{' <<<"$metrics"
curl -sf "http://127.0.0.1:$pport/healthz" | grep -q ok
# SIGTERM: a clean stop with exit 0.
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || { echo "exit $rc"; cat "$log"; exit 1; }
grep -q 'copied to src-copy' "$log"
grep -q '"object":"'"$ns"'/src"' "$log"
echo "ok"
