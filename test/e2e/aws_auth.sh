#!/usr/bin/env bash
# The aws-auth operator with kubectl on the real apiserver: create, update
# and delete; a foreign entry kept through every write; two objects mapping
# one ARN; a manual edit repaired; aws-auth deleted and recreated;
# unparsable live data -> no write + Degraded; a delete while the operator
# is stopped; SIGTERM. The ConfigMap is <ns>/aws-auth (--configmap) so the
# test owns everything it touches.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="${CRDKIT_BIN:-$top/build/asan/cmd/crdkit/crdkit}"
ns="e2e-awsauth-$RANDOM$RANDOM"
log=$(mktemp)
pid=
stop() {
  [ -n "$pid" ] || return 0
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  pid=
  [ "$rc" = 0 ] || { echo "operator exited $rc"; tail -n 30 "$log"; return 1; }
}
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  kubectl -n "$ns" get awsauths -o name 2>/dev/null |
    xargs -r kubectl -n "$ns" patch --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
  kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  rm -f "$log"
}
trap cleanup EXIT
start() {
  "$bin" aws-auth run --create-crd --namespace "$ns" --configmap "$ns/aws-auth" \
    --metrics-bind-address 0 --health-probe-bind-address 0 "$@" 2>>"$log" &
  pid=$!
}
wait_for() { # seconds, command...
  local n=$(($1 * 10)); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out waiting for: $*"; tail -n 30 "$log"; return 1
}
roles() { kubectl -n "$ns" get configmap aws-auth -o jsonpath='{.data.mapRoles}'; }
users() { kubectl -n "$ns" get configmap aws-auth -o jsonpath='{.data.mapUsers}'; }
has_role() { roles | grep -q "$1"; }
no_role() { ! roles | grep -q "$1"; }
has_user() { users | grep -q "$1"; }
no_user() { ! users | grep -q "$1"; }
cond() { # object type -> status
  kubectl -n "$ns" get awsauth "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].status}"
}
is_cond() { [ "$(cond "$1" "$2")" = "$3" ]; }
awsauth() { # name kind arn username group
  local list=mapRoles key=rolearn
  [ "$2" = users ] && list=mapUsers key=userarn
  kubectl -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: crdkit.io/v1alpha1
kind: AWSAuth
metadata: {name: $1}
spec:
  $list:
  - {$key: "$3", username: "$4", groups: ["$5"]}
YAML
}

echo "== the CRD in deploy/ is what the code generates"
"$bin" aws-auth print-crd | diff -u "$top/deploy/aws-auth/crd.yaml" -
"$bin" aws-auth --print-crd | diff -q "$top/deploy/aws-auth/crd.yaml" - >/dev/null

echo "== render, offline"
tmp=$(mktemp -d)
cat >"$tmp/objs.yaml" <<'YAML'
apiVersion: crdkit.io/v1alpha1
kind: AWSAuth
metadata: {name: admins}
spec:
  mapRoles:
  - {rolearn: "arn:aws:iam::111122223333:role/team/admin", username: admin, groups: [ops]}
YAML
"$bin" aws-auth render -f "$tmp/objs.yaml" >"$tmp/out.yaml" 2>"$tmp/diag"
grep -q 'role/admin' "$tmp/out.yaml"
# Readable: the data is a literal block, and kubectl reads the same text.
grep -q '^  mapRoles: |$' "$tmp/out.yaml"
kubectl create --dry-run=client --validate=false -f "$tmp/out.yaml" -o jsonpath='{.data.mapRoles}' |
  grep -q '^- rolearn: "arn:aws:iam::111122223333:role/admin"$'
grep -q 'path "team/" stripped' "$tmp/diag"
cat >>"$tmp/objs.yaml" <<'YAML'
---
apiVersion: crdkit.io/v1alpha1
kind: AWSAuth
metadata: {name: broken}
spec:
  mapRoles:
  - {rolearn: "arn:aws:iam::1234:role/x", username: x, groups: [g]}
YAML
rc=0
"$bin" aws-auth render -f "$tmp" >/dev/null 2>"$tmp/diag" || rc=$?
[ "$rc" = 1 ] || { echo "render of an invalid object exited $rc"; exit 1; }
grep -q 'kube-system/broken: invalid' "$tmp/diag"
rc=0
"$bin" aws-auth run --drift sideways 2>"$tmp/diag" || rc=$?
[ "$rc" = 2 ] && grep -q -- '--drift: "sideways" is not repair or report' "$tmp/diag"
rm -rf "$tmp"

kubectl create namespace "$ns" >/dev/null
# A foreign node-role entry and mapAccounts, as EKS leaves them.
kubectl -n "$ns" apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: aws-auth, labels: {keep: me}}
data:
  mapRoles: |
    - rolearn: arn:aws:iam::111122223333:role/eks-node
      username: system:node:{{EC2PrivateDNSName}}
      groups:
        - system:bootstrappers
        - system:nodes
  mapAccounts: |
    - "111122223333"
YAML
start --log-level debug
echo "== create"
awsauth admins roles arn:aws:iam::111122223333:role/admin admin system:masters
awsauth alice users arn:aws:iam::111122223333:user/alice alice dev
wait_for 30 has_role role/admin
wait_for 30 has_user user/alice
wait_for 30 is_cond admins Ready True
has_role role/eks-node
[ "$(kubectl -n "$ns" get configmap aws-auth -o jsonpath='{.data.mapAccounts}')" = '- "111122223333"' ]
[ "$(kubectl -n "$ns" get configmap aws-auth -o jsonpath='{.metadata.labels.keep}')" = me ]
[ -z "$(kubectl -n "$ns" get configmap aws-auth -o jsonpath='{.metadata.ownerReferences}')" ]
kubectl -n "$ns" get awsauth admins -o jsonpath='{.metadata.finalizers}' | grep -q crdkit.io/aws-auth
kubectl -n "$ns" get awsauths | grep -E '^admins +mapRoles +1 +True'

echo "== update"
ltt() { kubectl -n "$ns" get awsauth "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].lastTransitionTime}"; }
ready_since=$(ltt admins Ready)
[ -n "$ready_since" ]
sleep 1.1 # a new transition time would differ
awsauth admins roles arn:aws:iam::111122223333:role/admin admin ops
wait_for 30 bash -c "kubectl -n $ns get configmap aws-auth -o jsonpath='{.data.mapRoles}' | grep -q '\"ops\"'"
roles | grep -q system:masters && { echo "old group left behind"; exit 1; }
# The status follows the new generation; Ready did not flip, so its
# transition time stays (the cache keeps it, not the whole status).
wait_for 30 bash -c "[ \"\$(kubectl -n $ns get awsauth admins -o jsonpath='{.status.observedGeneration}')\" = 2 ]"
[ "$(ltt admins Ready)" = "$ready_since" ] || { echo "Ready moved: $ready_since -> $(ltt admins Ready)"; exit 1; }

echo "== two objects, one ARN: the older wins, the newer is Conflicted"
awsauth late roles arn:aws:iam::111122223333:role/admin attacker system:masters
wait_for 30 is_cond late Conflicted True
roles | grep -q attacker && { echo "the conflicting object was written"; exit 1; }

echo "== a manual edit of an owned entry is repaired"
kubectl -n "$ns" get configmap aws-auth -o json |
  python3 -c 'import json,sys; o=json.load(sys.stdin); o["data"]["mapRoles"]=o["data"]["mapRoles"].replace("\"ops\"","\"system:masters\""); print(json.dumps(o))' |
  kubectl replace -f - >/dev/null
wait_for 30 bash -c "kubectl -n $ns get configmap aws-auth -o jsonpath='{.data.mapRoles}' | grep -q '\"ops\"'"
has_role role/eks-node

echo "== aws-auth deleted: recreated with the foreign entries"
kubectl -n "$ns" delete configmap aws-auth >/dev/null
wait_for 30 has_role role/admin
has_role role/eks-node
has_user user/alice

echo "== unparsable live data: no write, Degraded"
kubectl -n "$ns" patch configmap aws-auth --type merge -p '{"data":{"mapUsers":"- userarn: [unclosed"}}' >/dev/null
awsauth bob users arn:aws:iam::111122223333:user/bob bob dev
wait_for 30 is_cond bob Degraded True
[ "$(users)" = "- userarn: [unclosed" ]
kubectl -n "$ns" patch configmap aws-auth --type merge -p '{"data":{"mapUsers":"[]"}}' >/dev/null
wait_for 30 has_user user/bob

echo "== delete: only the object's own entries go, in one merge"
merges() { grep -c '"merge of ' "$log" || true; }
n0=$(merges)
kubectl -n "$ns" delete awsauth alice --timeout=30s >/dev/null
sleep 0.5 # a merge the final delete event started would have run by now
# The deletion starts one merge; the delete event that follows the finalizer
# release needs none.
[ "$(($(merges) - n0))" = 1 ] || { echo "merges for one delete: $(($(merges) - n0))"; exit 1; }
no_user user/alice
has_user user/bob
has_role role/eks-node

echo "== delete while the operator is stopped"
stop
kubectl -n "$ns" delete awsauth bob --wait=false >/dev/null
sleep 1
has_user user/bob   # nothing removed it yet: the finalizer holds the object
start
wait_for 30 no_user user/bob
wait_for 30 bash -c "! kubectl -n $ns get awsauth bob"

echo "== the conflicted object takes over when the winner goes"
kubectl -n "$ns" delete awsauth admins --timeout=30s >/dev/null
wait_for 30 has_role attacker
wait_for 30 is_cond late Ready True
has_role role/eks-node
stop

echo "== restore (operator stopped): the revision before the last write comes back"
"$bin" aws-auth restore --list --configmap "$ns/aws-auth" >"$log.list"
[ "$(grep -c '^[0-9]' "$log.list")" -ge 3 ] || { echo "history:"; cat "$log.list"; exit 1; }
newest=$(sort -n "$log.list" | tail -n 1 | cut -f1)
"$bin" aws-auth restore --configmap "$ns/aws-auth" >"$log.out"
grep -q "from $ns/aws-auth-history rev-0*$newest" "$log.out" || { cat "$log.out"; exit 1; }
grep -q 'running aws-auth operator puts back' "$log.out"
has_role '"admin"'       # the winner before it was deleted
no_role attacker
has_role role/eks-node
[ "$(kubectl -n "$ns" get configmap aws-auth -o jsonpath='{.data.mapAccounts}')" = '- "111122223333"' ]
[ "$(kubectl -n "$ns" get configmap aws-auth -o jsonpath='{.metadata.labels.keep}')" = me ]
rc=0
"$bin" aws-auth restore --revision 999999 --configmap "$ns/aws-auth" 2>"$log.out" || rc=$?
[ "$rc" = 1 ] && grep -q 'no revision 999999' "$log.out" || { echo "rc=$rc"; cat "$log.out"; exit 1; }
rm -f "$log.list" "$log.out"

echo "== history: keys that are not revisions are kept, never counted or pruned"
# Anyone can edit aws-auth-history. More foreign "rev-" keys than --history
# keeps once made the pruning loop run out of revisions and crash.
kubectl -n "$ns" patch configmap aws-auth-history --type merge \
  -p '{"data":{"rev--1":"{}","rev--2":"{}","rev--3":"{}","rev-1x":"{}","notes":"mine"}}' >/dev/null
start --history 2
awsauth carol users arn:aws:iam::111122223333:user/carol carol devs
wait_for 30 has_user user/carol
# The write after the restore (someone else's change) saves a revision.
wait_for 30 bash -c "[ \"\$(kubectl -n $ns get configmap aws-auth-history -o jsonpath='{.data.notes}')\" = mine ] && \
  kubectl -n $ns get configmap aws-auth-history -o jsonpath='{.data}' | grep -q 'rev--3'"
wait_for 30 bash -c "[ \"\$(kubectl -n $ns get configmap aws-auth-history -o json |
  python3 -c 'import json,re,sys; d=json.load(sys.stdin)[\"data\"]; print(sum(1 for k in d if re.fullmatch(r\"rev-[0-9]+\", k)))')\" = 2 ]"
kill -0 "$pid" || { echo "the operator died"; tail -n 30 "$log"; exit 1; }
"$bin" aws-auth restore --list --configmap "$ns/aws-auth" >"$log.list"
[ "$(wc -l <"$log.list")" = 2 ] || { echo "restore --list offers other keys:"; cat "$log.list"; exit 1; }
rm -f "$log.list"
stop

grep -q '"level":"error"' "$log" && { echo "errors logged:"; grep '"level":"error"' "$log"; exit 1; }
echo ok
