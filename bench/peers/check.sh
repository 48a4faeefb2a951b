#!/usr/bin/env bash
# bench/peers/check.sh [crdkit|controller-runtime|kube-rs|kopf ...]
#
# The functional check of the peers against the test apiserver (scripts/testenv
# must be up). crdkit runs first as the reference, then each peer, one at a
# time, each in a fresh namespace peer-OP-PID with NS/aws-auth as its target:
# check.py creates 20 AWSAuth, waits for the ConfigMap, updates 3, deletes 3
# (an object may vanish only after its entries did: the finalizer path) and
# records the final entry set, which must equal both the expected set and
# crdkit's (parsed YAML). The operator is then stopped and the namespace
# removed entirely. Exits non-zero on any failure or mismatch, with a diff.
# Logs: build/peers/check/OP.log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
out="$top/build/peers/check"
ops=("$@")
[ ${#ops[@]} -gt 0 ] || ops=(crdkit controller-runtime kube-rs kopf)
for op in "${ops[@]}"; do
  case "$op" in crdkit|controller-runtime|kube-rs|kopf) ;;
    *) echo "check.sh: unknown operator: $op" >&2; exit 2 ;; esac
done

say() { echo "check.sh: $*" >&2; }

eval "$("$top/scripts/testenv" env | sed 's/^/export /')"
: "${KUBECONFIG:?scripts/testenv env gave no KUBECONFIG: is the test cluster up?}"
k=$CRDKIT_TEST_KUBECTL
crdkit=$top/build/release/cmd/crdkit/crdkit

# Builds (each skips what is up to date).
if [ ! -x "$crdkit" ] || ! ninja -C "$top/build/release" -n cmd/crdkit/crdkit 2>/dev/null | grep -q 'no work to do'; then
  say "building crdkit (ninja -C build/release)"
  ninja -C "$top/build/release" cmd/crdkit/crdkit >&2
fi
peers=()
for op in "${ops[@]}"; do [ "$op" = crdkit ] || peers+=("$op"); done
if [ ${#peers[@]} -gt 0 ]; then
  "$here/build.sh" "${peers[@]}" >&2
fi

# The peers do not install the CRD: do it when it is missing.
if ! "$k" get crd awsauths.crdkit.io >/dev/null 2>&1; then
  say "installing the AWSAuth CRD"
  "$crdkit" aws-auth print-crd | "$k" apply -f - >&2
  "$k" wait --for condition=Established crd/awsauths.crdkit.io --timeout=60s >&2
fi

mkdir -p "$out"
rm -f "$out"/*.json
pid=""
ns=""

# alive PID: running (not exited, not a zombie waiting to be reaped).
alive() {
  kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

stop_operator() {
  if [ -n "$pid" ] && alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  pid=""
}

# Removes everything in the namespace (finalizers first: the operator is
# stopped), then the namespace; no namespace controller runs in the test
# cluster, so the namespace is finalized by hand once it is empty.
remove_namespace() {
  [ -n "$ns" ] || return 0
  local names
  names=$("$k" get awsauths.crdkit.io -n "$ns" -o name 2>/dev/null || true)
  for o in $names; do
    "$k" patch -n "$ns" "$o" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
  done
  local types
  types=$("$k" api-resources --namespaced --verbs=list,delete -o name 2>/dev/null | grep -v '^events\.events\.k8s\.io$' | paste -sd, -)
  "$k" delete "$types" --all -n "$ns" --wait=false >/dev/null 2>&1 || true
  "$k" delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  "$k" get namespace "$ns" -o json 2>/dev/null |
    python3 -c 'import json,sys; o=json.load(sys.stdin); o["spec"]["finalizers"]=[]; print(json.dumps(o))' |
    "$k" replace --raw "/api/v1/namespaces/$ns/finalize" -f - >/dev/null 2>&1 || true
  for _ in $(seq 50); do "$k" get namespace "$ns" >/dev/null 2>&1 || break; sleep 0.2; done
  if "$k" get namespace "$ns" >/dev/null 2>&1; then say "namespace $ns is still there"; fi
  ns=""
}

cleanup() { stop_operator; remove_namespace; }
trap cleanup EXIT
trap 'exit 130' INT TERM

start_operator() { # OP NS LOG
  local op=$1 n=$2 log=$3
  case "$op" in
    crdkit)
      "$crdkit" aws-auth run --namespace "$n" --configmap "$n/aws-auth" --create-crd \
        --metrics-bind-address 0 --health-probe-bind-address 0 >"$log" 2>&1 & ;;
    controller-runtime|kube-rs)
      WATCH_NAMESPACE=$n CONFIGMAP_NAMESPACE=$n CONFIGMAP_NAME=aws-auth \
        "$top/build/peers/bin/$op" >"$log" 2>&1 & ;;
    kopf)
      WATCH_NAMESPACE=$n CONFIGMAP_NAMESPACE=$n CONFIGMAP_NAME=aws-auth \
        "$here/kopf/run.sh" >"$log" 2>&1 & ;;
  esac
  pid=$!
}

status=0
results=()
for op in "${ops[@]}"; do
  ns="peer-$op-$$"
  fin=crdkit.io/aws-auth-peer
  [ "$op" = crdkit ] && fin=crdkit.io/aws-auth
  say "$op: namespace $ns"
  "$k" create namespace "$ns" >/dev/null
  start_operator "$op" "$ns" "$out/$op.log"
  t0=$(date +%s)
  if res=$(python3 "$here/check.py" run --kubectl "$k" --namespace "$ns" --finalizer "$fin" --out "$out/$op.json" --pid "$pid"); then
    :
  else
    status=1
  fi
  if ! alive "$pid"; then
    case "$res" in
      FAILED*) res="$res (log: $out/$op.log)" ;;
      *) res="FAILED: the operator exited before the end (log: $out/$op.log); $res" ;;
    esac
    status=1
  fi
  say "$op: $res ($(( $(date +%s) - t0 ))s)"
  results+=("$op: $res")
  stop_operator
  remove_namespace
done

echo "== check.sh results"
for r in "${results[@]}"; do echo "$r"; done
if [ -f "$out/crdkit.json" ]; then
  for op in "${peers[@]}"; do
    [ -f "$out/$op.json" ] || continue
    echo "== $op vs crdkit"
    python3 "$here/check.py" compare "$out/crdkit.json" "$out/$op.json" || status=1
  done
else
  case " ${ops[*]} " in *" crdkit "*) echo "no crdkit result: nothing to compare the peers with"; status=1 ;; esac
fi
exit $status
