#!/usr/bin/env bash
# The README/docs example lists, patches and watches ConfigMaps on the real
# apiserver.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="$top/build/asan/examples/example-configmaps"
ns="e2e-example-$RANDOM$RANDOM"
kubectl create namespace "$ns" >/dev/null
trap 'kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true' EXIT
kubectl -n "$ns" create configmap alpha --from-literal=a=1 >/dev/null
kubectl -n "$ns" create configmap beta --from-literal=b=2 >/dev/null
out=$("$bin" "$ns" beta)
echo "$out"
grep -qx alpha <<<"$out"
grep -qx beta <<<"$out"
grep -qx "watched: beta modified" <<<"$out"
[ "$(kubectl -n "$ns" get configmap beta -o jsonpath='{.data.patched}')" = yes ]
# errors are reported, not crashed on
errf=$(mktemp)
if "$bin" "$ns" does-not-exist 2>"$errf"; then echo "expected a failure"; exit 1; fi
grep -q 'not found' "$errf"
rm -f "$errf"
