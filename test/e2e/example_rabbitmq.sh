#!/usr/bin/env bash
# examples/rabbitmq_cluster.c on a control plane of its own that also runs
# kube-controller-manager (the StatefulSet controller makes the pods, the
# garbage collector removes children): the CRD from the table, create,
# scale down and up with status following, a size out of bounds refused
# by the apiserver with the schema's message, delete -> children
# collected; the standard command line (--help, env vars, bad values).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="${CRDKIT_EXAMPLES:-$top/build/asan/examples}/example-rabbitmq-cluster"
tmp=$(mktemp -d)
log="$tmp/operator.log"
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  CRDKIT_TESTENV_STATE="$tmp/state" "$top/scripts/testenv" down >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -n 30 "$log" 2>/dev/null; exit 1; }
wait_for() { # seconds, command...
  local n=$(($1 * 10)); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "timed out waiting for: $*"
}

echo "== the standard command line"
"$bin" --help >"$tmp/help"
grep -q -- '--max-concurrent-reconciles N' "$tmp/help"
grep -q 'env RABBITMQ_CLUSTER_NAMESPACE' "$tmp/help"
"$bin" --version | grep -q '^rabbitmq-cluster 0.1.0 (crdkit '
rc=0; "$bin" --log-format yaml 2>"$tmp/err" || rc=$?
[ "$rc" = 2 ] || fail "bad --log-format exited $rc"
grep -q -- '--log-format: "yaml" is not one of text, json or auto' "$tmp/err" || fail "$(cat "$tmp/err")"
rc=0; RABBITMQ_CLUSTER_MAX_CONCURRENT_RECONCILES=many "$bin" 2>"$tmp/err" || rc=$?
[ "$rc" = 2 ] && grep -q 'RABBITMQ_CLUSTER_MAX_CONCURRENT_RECONCILES: "many" is not a whole number' "$tmp/err" \
  || fail "bad env value: rc=$rc $(cat "$tmp/err")"
rc=0; "$bin" --namespace a --all-namespaces 2>"$tmp/err" || rc=$?
[ "$rc" = 2 ] || fail "--namespace with --all-namespaces exited $rc"
rc=0; "$bin" stray 2>"$tmp/err" || rc=$?
[ "$rc" = 2 ] && grep -q 'unexpected argument "stray"' "$tmp/err" || fail "stray argument: $rc"

echo "== a control plane with kube-controller-manager"
eval "$(CRDKIT_TESTENV_STATE="$tmp/state" "$top/scripts/testenv" up --controller-manager \
  --controllers=garbagecollector,namespace,statefulset,serviceaccount | sed 's/^/export /')"
k() { "$CRDKIT_TEST_KUBECTL" "$@"; }
ns="rmq-$RANDOM"
k create namespace "$ns" >/dev/null
# Env vars configure the operator as they would in a Deployment.
RABBITMQ_CLUSTER_NAMESPACE="$ns" RABBITMQ_CLUSTER_METRICS_BIND_ADDRESS=0 \
  RABBITMQ_CLUSTER_HEALTH_PROBE_BIND_ADDRESS=0 "$bin" --create-crd 2>"$log" &
pid=$!

echo "== the generated CRD is served and validated"
wait_for 60 k get crd rabbitmqclusters.examples.crdkit.io
# The OpenAPI document follows the CRD a moment later.
explained() { k explain rabbitmqcluster.spec.size 2>/dev/null | grep 'Number of RabbitMQ nodes'; } >/dev/null
wait_for 30 explained
out=$(k -n "$ns" apply -f - 2>&1 <<'YAML' || true
apiVersion: examples.crdkit.io/v1
kind: RabbitmqCluster
metadata: {name: huge}
spec: {size: 20}
YAML
)
grep -q 'spec.size: Invalid value: 20: spec.size in body should be less than or equal to 9' <<<"$out" \
  || fail "size 20 was not refused with the schema's message: $out"

echo "== create: a StatefulSet and a headless Service, owned"
k -n "$ns" apply -f - >/dev/null <<'YAML'
apiVersion: examples.crdkit.io/v1
kind: RabbitmqCluster
metadata: {name: rabbit}
spec: {size: 3}
YAML
uid=$(k -n "$ns" get rabbitmqcluster rabbit -o jsonpath='{.metadata.uid}')
sts_replicas() { [ "$(k -n "$ns" get statefulset rabbit -o jsonpath='{.spec.replicas}')" = "$1" ]; }
wait_for 30 sts_replicas 3
[ "$(k -n "$ns" get service rabbit -o jsonpath='{.spec.clusterIP}')" = None ] || fail "service not headless"
for kind in statefulset service; do
  ref=$(k -n "$ns" get "$kind" rabbit -o jsonpath='{.metadata.ownerReferences[0].uid} {.metadata.ownerReferences[0].controller}')
  [ "$ref" = "$uid true" ] || fail "$kind owner reference: $ref"
done
[ "$(k -n "$ns" get statefulset rabbit -o jsonpath='{.spec.volumeClaimTemplates[0].spec.resources.requests.storage}')" = 1Gi ] \
  || fail "volume claim template (defaulted storage 1Gi) missing"
# The default came from the schema: the apiserver stored it.
[ "$(k -n "$ns" get rabbitmqcluster rabbit -o jsonpath='{.spec.image}')" = "rabbitmq:3-management" ] || fail "image default"
status_is() { # desired current
  [ "$(k -n "$ns" get rabbitmqcluster rabbit -o jsonpath='{.status.desiredSize} {.status.currentSize} {.status.conditions[?(@.type=="Ready")].status}')" = "$1 $2 True" ]
}
# The StatefulSet controller makes 3 pods (they stay Pending: no nodes).
wait_for 60 status_is 3 3
k -n "$ns" get rabbitmqclusters | tee "$tmp/get"
grep -Eq '^rabbit +3 +3 +True' "$tmp/get" || fail "printer columns"

echo "== scale down and up"
k -n "$ns" patch rabbitmqcluster rabbit --type merge -p '{"spec":{"size":1}}' >/dev/null
wait_for 30 sts_replicas 1
wait_for 60 status_is 1 1
k -n "$ns" patch rabbitmqcluster rabbit --type merge -p '{"spec":{"size":2}}' >/dev/null
wait_for 30 sts_replicas 2
wait_for 60 status_is 2 2
[ "$(k -n "$ns" get rabbitmqcluster rabbit -o jsonpath='{.status.observedGeneration}')" = 3 ] || fail "observedGeneration"

echo "== restart: the cluster is resumed, nothing changes"
kill -TERM "$pid"; rc=0; wait "$pid" || rc=$?; pid=
[ "$rc" = 0 ] || fail "SIGTERM exit $rc"
rv=$(k -n "$ns" get statefulset rabbit -o jsonpath='{.metadata.generation}')
"$bin" --namespace "$ns" --metrics-bind-address 0 --health-probe-bind-address 0 2>>"$log" &
pid=$!
resumed() { grep -q 'resume: cluster rabbit at size 2' "$log"; }
wait_for 30 resumed
[ "$(k -n "$ns" get statefulset rabbit -o jsonpath='{.metadata.generation}')" = "$rv" ] \
  || fail "a restart changed the StatefulSet"

echo "== delete: the garbage collector removes the children"
k -n "$ns" delete rabbitmqcluster rabbit --wait=false >/dev/null
gone() { ! k -n "$ns" get "$1" rabbit >/dev/null 2>&1; }
wait_for 60 gone statefulset
wait_for 60 gone service
kill -TERM "$pid"; rc=0; wait "$pid" || rc=$?; pid=
[ "$rc" = 0 ] || fail "SIGTERM exit $rc"
if grep -q 'ERROR: AddressSanitizer\|runtime error' "$log"; then fail "sanitizer report"; fi
echo "ok"
