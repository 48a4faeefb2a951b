#!/usr/bin/env bash
# deploy/aws-auth on the real apiserver, with the operator's own rights:
# the namespace, the CRD and rbac.yaml are applied, and kubectl auth can-i
# checks what the ServiceAccount crdkit-system/crdkit-aws-auth may and may
# not do (rbac-crd.yaml too). A token of that ServiceAccount becomes a
# kubeconfig, and the operator runs here with it (--leader-elect) against
# the real kube-system/aws-auth, which starts as samples/aws-auth-foreign.yaml.
# The samples are applied (the invalid one is refused by the CRD), then
# checked: the entries are written, the foreign node role and mapAccounts
# are kept, the objects are Ready, aws-auth-history is written, Events are
# recorded, the Lease is taken and released, and no request was forbidden.
# deployment.yaml and the kustomization are validated with a server-side
# dry run: there is no kubelet here, so no pod ever runs.
#
# kube-system/aws-auth belongs to this test (no other test touches it); if
# it exists when the test starts it is saved and put back at the end.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="${CRDKIT_BIN:-$top/build/asan/cmd/crdkit/crdkit}"
[ -n "${CRDKIT_TEST_KUBECTL:-}" ] && PATH="$(dirname "$CRDKIT_TEST_KUBECTL"):$PATH"
dep="$top/deploy/aws-auth"
sa=system:serviceaccount:crdkit-system:crdkit-aws-auth
work=$(mktemp -d)
log="$work/operator.log"
pid=
created_ns=
owned=  # set once the preconditions hold: kube-system's aws-auth objects are then ours
saved_cms=()

fail() { echo "FAIL: $*"; [ -s "$log" ] && tail -n 30 "$log"; exit 1; }
wait_for() { # seconds, command...
  local n=$(($1 * 10)); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "timed out waiting for: $*"
}

cleanup() {
  local rc=$?
  set +e
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  if [ -n "$owned" ]; then
    # The operator is gone: finalizers of what is left are lifted by hand.
    for o in platform-admins developers alice dup-admin; do
      kubectl -n kube-system patch awsauth "$o" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
      kubectl -n kube-system delete awsauth "$o" --ignore-not-found --wait=false >/dev/null 2>&1
      kubectl -n kube-system delete events --field-selector "involvedObject.name=$o" >/dev/null 2>&1
    done
    kubectl -n kube-system delete configmap aws-auth aws-auth-history --ignore-not-found >/dev/null 2>&1
    kubectl -n kube-system delete lease aws-auth-leader --ignore-not-found >/dev/null 2>&1
    for f in "${saved_cms[@]}"; do kubectl create -f "$f" >/dev/null || echo "could not restore $f"; done
  fi
  kubectl delete -f "$dep/rbac-crd.yaml" --ignore-not-found >/dev/null 2>&1
  kubectl delete -f "$dep/rbac.yaml" --ignore-not-found >/dev/null 2>&1
  if [ -n "$created_ns" ]; then
    kubectl delete namespace crdkit-system --wait=false >/dev/null 2>&1
    finalize_namespace crdkit-system
  fi
  # The CRD stays: other tests share it (aws_auth.sh installs it too).
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# Without kube-controller-manager nothing finalizes a deleted namespace: once
# it is empty, do what the namespace controller would do.
finalize_namespace() {
  local ns=$1 types left
  kubectl get namespace "$ns" >/dev/null 2>&1 || return 0
  types=$(kubectl api-resources --verbs=list --namespaced -o name | paste -sd, -)
  if ! left=$(kubectl -n "$ns" get "$types" -o name --ignore-not-found 2>/dev/null); then
    echo "could not list what namespace $ns holds; leaving it to the namespace controller"
    return 0
  fi
  if [ -n "$left" ]; then
    echo "namespace $ns still holds objects; leaving it to the namespace controller:"
    echo "$left"
    return 0
  fi
  kubectl get namespace "$ns" -o json 2>/dev/null |
    python3 -c 'import json,sys; o=json.load(sys.stdin); o["spec"]["finalizers"]=[]; print(json.dumps(o))' |
    kubectl replace --raw "/api/v1/namespaces/$ns/finalize" -f - >/dev/null 2>&1 || true
}

# Save a ConfigMap of kube-system this test is going to replace.
save_cm() {
  local f="$work/saved-$1.json"
  kubectl -n kube-system get configmap "$1" >/dev/null 2>&1 || return 0
  if kubectl -n kube-system get configmap "$1" -o json |
      python3 -c 'import json,sys
o=json.load(sys.stdin); m=o["metadata"]
for k in ("resourceVersion","uid","creationTimestamp","managedFields","generation"): m.pop(k,None)
print(json.dumps(o))' >"$f"; then
    saved_cms+=("$f")
    kubectl -n kube-system delete configmap "$1" >/dev/null
    echo "kube-system/$1 existed: saved, put back at the end"
  else
    fail "could not save kube-system/$1"
  fi
}

# kubectl auth can-i prints yes or no on stdout (and exits 1 on no); an
# error prints neither, so it fails both checks.
can() { # verb resource [flags]: the ServiceAccount may
  local out
  out=$(kubectl auth can-i "$@" --as="$sa" 2>"$work/can-i.err") || true
  [ "$out" = yes ] || fail "the ServiceAccount should be allowed: $* (got: $out $(cat "$work/can-i.err"))"
}
cannot() { # verb resource [flags]: the ServiceAccount may not
  local out
  out=$(kubectl auth can-i "$@" --as="$sa" 2>"$work/can-i.err") || true
  [ "$out" = no ] || fail "the ServiceAccount should NOT be allowed: $* (got: $out $(cat "$work/can-i.err"))"
}
roles() { kubectl -n kube-system get configmap aws-auth -o jsonpath='{.data.mapRoles}'; }
users() { kubectl -n kube-system get configmap aws-auth -o jsonpath='{.data.mapUsers}'; }
has_role() { roles | grep -qF "$1"; }
no_role() { local t; t=$(roles) || return 1; ! grep -qF "$1" <<<"$t"; }
has_user() { users | grep -qF "$1"; }
no_user() { local t; t=$(users) || return 1; ! grep -qF "$1" <<<"$t"; }
cond() { kubectl -n kube-system get awsauth "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].status}"; }
is_cond() { [ "$(cond "$1" "$2")" = "$3" ]; }
lease_holder() { kubectl -n kube-system get lease aws-auth-leader -o jsonpath='{.spec.holderIdentity}'; }
has_holder() { [ -n "$(lease_holder)" ]; }
history_revs() {
  kubectl -n kube-system get configmap aws-auth-history -o json |
    python3 -c 'import json,sys; print(len([k for k in json.load(sys.stdin).get("data",{}) if k.startswith("rev-")]))'
}
history_at_least() { [ "$(history_revs)" -ge "$1" ]; }
warning_event() { # object reason
  kubectl -n kube-system get events --field-selector "involvedObject.name=$1,reason=$2,type=Warning" -o name | grep -q .
}

echo "== preconditions"
[ -x "$bin" ] || fail "no crdkit binary at $bin (set CRDKIT_BIN)"
left=$(kubectl -n kube-system get awsauths -o name 2>/dev/null || true)
[ -z "$left" ] || fail "kube-system already holds AWSAuth objects (an operator left running by 'KEEP=1 make demo'?): $left"
# A Lease renewed in the last minute: an aws-auth operator runs here. An
# older one is left over (released, or its holder killed): it goes.
if renewed=$(kubectl -n kube-system get lease aws-auth-leader -o jsonpath='{.spec.renewTime}' 2>/dev/null); then
  age=$(python3 -c 'import sys,datetime as d
t=sys.argv[1]
print(int((d.datetime.now(d.timezone.utc)-d.datetime.fromisoformat(t.replace("Z","+00:00"))).total_seconds()) if t else 10**9)' "$renewed")
  [ "$age" -gt 60 ] || fail "kube-system/aws-auth-leader was renewed ${age}s ago: an aws-auth operator runs on this cluster"
  kubectl -n kube-system delete lease aws-auth-leader >/dev/null
fi
owned=1

echo "== namespace, CRD, RBAC"
kubectl get namespace crdkit-system >/dev/null 2>&1 || created_ns=1
kubectl apply -f "$dep/namespace.yaml" >/dev/null
out=$(kubectl apply -f "$dep/crd.yaml" 2>&1) || fail "crd.yaml: $out"
kubectl wait --for=condition=Established crd/awsauths.crdkit.io --timeout=30s >/dev/null
kubectl apply -f "$dep/rbac.yaml" >/dev/null

echo "== what the ServiceAccount may do"
can get configmap/aws-auth -n kube-system
can list configmap/aws-auth -n kube-system
can watch configmap/aws-auth -n kube-system
can update configmap/aws-auth -n kube-system
can get configmap/aws-auth-history -n kube-system
can update configmap/aws-auth-history -n kube-system
can create configmaps -n kube-system
can create leases.coordination.k8s.io -n kube-system
can update leases.coordination.k8s.io/aws-auth-leader -n kube-system
can list awsauths.crdkit.io -n kube-system
can patch awsauths.crdkit.io -n kube-system
can update awsauths.crdkit.io --subresource=status -n kube-system
can patch awsauths.crdkit.io --subresource=status -n kube-system
can update awsauths.crdkit.io --subresource=finalizers -n kube-system
can create events.events.k8s.io -n kube-system
echo "== what it may not"
cannot get secrets -n kube-system
cannot list secrets -n crdkit-system
cannot list secrets --all-namespaces
cannot get configmap/kube-root-ca.crt -n kube-system
cannot list configmaps -n kube-system
cannot watch configmaps -n kube-system
cannot update configmap/other -n kube-system
cannot patch configmap/other -n kube-system
cannot delete configmap/other -n kube-system
cannot delete configmap/aws-auth -n kube-system
cannot delete configmap/aws-auth-history -n kube-system
cannot patch configmap/aws-auth -n kube-system
cannot get configmaps -n default
cannot update leases.coordination.k8s.io/kube-scheduler -n kube-system
cannot delete leases.coordination.k8s.io/aws-auth-leader -n kube-system
cannot delete awsauths.crdkit.io -n kube-system
cannot create awsauths.crdkit.io -n kube-system
cannot create customresourcedefinitions.apiextensions.k8s.io
cannot update customresourcedefinitions.apiextensions.k8s.io/awsauths.crdkit.io
cannot create pods -n kube-system
cannot create clusterrolebindings.rbac.authorization.k8s.io
cannot impersonate users

echo "== rbac-crd.yaml: the CRD rights of --create-crd, for this CRD only"
kubectl apply -f "$dep/rbac-crd.yaml" >/dev/null
can update customresourcedefinitions.apiextensions.k8s.io/awsauths.crdkit.io
can create customresourcedefinitions.apiextensions.k8s.io
cannot update customresourcedefinitions.apiextensions.k8s.io/other.example.com
cannot delete customresourcedefinitions.apiextensions.k8s.io/awsauths.crdkit.io
kubectl delete -f "$dep/rbac-crd.yaml" >/dev/null
cannot create customresourcedefinitions.apiextensions.k8s.io

echo "== a kubeconfig with the ServiceAccount's token"
token=$(kubectl -n crdkit-system create token crdkit-aws-auth --duration=1h)
[ -n "$token" ] || fail "no token"
server=$(kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
ca=$(kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
[ -n "$server" ] && [ -n "$ca" ] || fail "no server or CA data in $KUBECONFIG"
sakc="$work/sa.kubeconfig"
cat >"$sakc" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "$server", certificate-authority-data: "$ca"}
users:
- name: crdkit-aws-auth
  user: {token: "$token"}
contexts:
- name: crdkit-aws-auth
  context: {cluster: test, user: crdkit-aws-auth, namespace: crdkit-system}
current-context: crdkit-aws-auth
EOF
chmod 600 "$sakc"
[ "$(kubectl --kubeconfig "$sakc" auth whoami -o jsonpath='{.status.userInfo.username}')" = "$sa" ] ||
  fail "the token does not authenticate as $sa"
out=$(kubectl --kubeconfig "$sakc" -n kube-system get configmaps 2>&1) && fail "listing ConfigMaps was allowed"
grep -q Forbidden <<<"$out" || fail "listing ConfigMaps: $out"

echo "== the foreign aws-auth, as EKS leaves it"
save_cm aws-auth
save_cm aws-auth-history
kubectl apply -f "$dep/samples/aws-auth-foreign.yaml" >/dev/null

echo "== the operator, with the ServiceAccount's rights and leader election"
ports=$(python3 -c 'import socket
ss=[socket.socket() for _ in range(2)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))')
read -r mport pport <<<"$ports"
"$bin" aws-auth run --kubeconfig "$sakc" --leader-elect --log-format json \
  --metrics-bind-address "127.0.0.1:$mport" --health-probe-bind-address "127.0.0.1:$pport" \
  2>>"$log" &
pid=$!
wait_for 30 has_holder
wait_for 30 curl -fsS "http://127.0.0.1:$pport/readyz"
curl -fsS "http://127.0.0.1:$pport/healthz" >/dev/null || fail "/healthz"

echo "== the samples"
for s in platform-admins developers alice; do kubectl apply -f "$dep/samples/$s.yaml" >/dev/null; done
out=$(kubectl apply -f "$dep/samples/invalid-both.yaml" 2>&1) && fail "invalid-both.yaml was accepted"
grep -q 'exactly one of mapRoles and mapUsers must be set' <<<"$out" || fail "invalid-both.yaml: $out"
! kubectl -n kube-system get awsauth invalid-both >/dev/null 2>&1 || fail "invalid-both exists"

for s in platform-admins developers alice; do wait_for 30 is_cond "$s" Ready True; done
has_role 'arn:aws:iam::111122223333:role/platform-admin' || fail "platform-admin missing"
has_role 'arn:aws:iam::111122223333:role/developer' || fail "developer missing"
# The path team/ is gone from the ARN, and the status says why.
has_role '"arn:aws:iam::111122223333:role/payments-ci"' || fail "payments-ci missing"
kubectl -n kube-system get awsauth developers -o jsonpath='{.status.warnings}' | grep -q 'team/' ||
  fail "no warning about the stripped path"
has_user 'arn:aws:iam::111122223333:user/alice' || fail "alice missing"
echo "== the foreign node role and mapAccounts are kept"
python3 - "$(roles)" <<'PY' || fail "the node role entry changed"
import sys
t = sys.argv[1]
i = t.index("eks-nodegroup-workers")
block = t[i:t.find("- rolearn", i)]
assert "system:node:{{EC2PrivateDNSName}}" in block, block
assert "system:bootstrappers" in block and "system:nodes" in block, block
assert t.index("eks-nodegroup-workers") < t.index("role/developer"), "foreign entries come first"
PY
[ "$(kubectl -n kube-system get configmap aws-auth -o jsonpath='{.data.mapAccounts}')" = '- "444455556666"' ] ||
  fail "mapAccounts changed"
[ -z "$(kubectl -n kube-system get configmap aws-auth -o jsonpath='{.metadata.ownerReferences}')" ] ||
  fail "aws-auth got an ownerReference"
kubectl -n kube-system get configmap aws-auth -o jsonpath='{.metadata.annotations.crdkit\.io/aws-auth-owners}' |
  grep -q 'kube-system/alice' || fail "no ownership annotation"
echo "== aws-auth-history holds the previous data"
wait_for 10 history_at_least 1
kubectl -n kube-system get configmap aws-auth-history -o jsonpath='{.data.rev-000001}' |
  grep -q 'eks-nodegroup-workers' || fail "the first revision is not the foreign aws-auth"
kubectl -n kube-system get awsauth alice -o jsonpath='{.metadata.finalizers}' | grep -q crdkit.io/aws-auth ||
  fail "no finalizer on alice"

echo "== a conflicting object: Conflicted, and a Warning Event"
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: crdkit.io/v1alpha1
kind: AWSAuth
metadata: {name: dup-admin, namespace: kube-system}
spec:
  mapRoles:
  - {rolearn: "arn:aws:iam::111122223333:role/platform-admin", username: mallory, groups: ["system:masters"]}
YAML
wait_for 30 is_cond dup-admin Conflicted True
wait_for 30 warning_event dup-admin Conflicted
no_role mallory || fail "the conflicting entry was written"
kubectl -n kube-system delete awsauth dup-admin --timeout=30s >/dev/null
has_role 'admin:{{SessionName}}' || fail "the winner's entry went with the loser"

echo "== update: developers' groups change"
revs=$(history_revs)
kubectl -n kube-system patch awsauth developers --type json \
  -p '[{"op":"replace","path":"/spec/mapRoles/0/groups","value":["team-payments:admin"]}]' >/dev/null
wait_for 30 has_role 'team-payments:admin'
no_role 'team-payments:edit' || fail "the old group stayed"
wait_for 10 history_at_least $((revs + 1))

echo "== delete: Delete removes the entries, Retain keeps them"
kubectl -n kube-system delete awsauth alice --timeout=30s >/dev/null
no_user 'user/alice' || fail "alice's entry stayed"
kubectl -n kube-system delete awsauth platform-admins --timeout=30s >/dev/null
has_role 'role/platform-admin' || fail "a Retain object's entry was removed"
kubectl -n kube-system delete awsauth developers --timeout=30s >/dev/null
no_role 'role/developer' || fail "developers' entries stayed"
has_role 'eks-nodegroup-workers' || fail "the node role went"

echo "== SIGTERM: exit 0, the Lease released"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "the operator exited $rc"
[ -z "$(lease_holder)" ] || fail "the Lease is still held by $(lease_holder)"
if grep -q -i -E '\b403\b|forbidden' "$log"; then
  grep -i -E '\b403\b|forbidden' "$log" | head -n 20
  fail "requests were forbidden: the RBAC misses a rule"
fi
grep -q '"level":"error"' "$log" && { grep '"level":"error"' "$log"; fail "errors logged"; }

echo "== deployment.yaml and the kustomization, server-side dry run (no kubelet: no pod runs)"
out=$(kubectl apply --dry-run=server -f "$dep/deployment.yaml" 2>&1) || fail "deployment.yaml: $out"
grep -q 'deployment.apps/crdkit-aws-auth created (server dry run)\|deployment.apps/crdkit-aws-auth configured (server dry run)' <<<"$out" ||
  fail "deployment.yaml: $out"
# The namespace warns on pods that break the "restricted" Pod Security Standard.
grep -qi warning <<<"$out" && fail "deployment.yaml: $out"
out=$(kubectl apply --dry-run=server -k "$dep" 2>&1) || fail "kubectl apply -k: $out"
for o in namespace/crdkit-system customresourcedefinition.apiextensions.k8s.io/awsauths.crdkit.io \
  serviceaccount/crdkit-aws-auth clusterrole.rbac.authorization.k8s.io/crdkit-aws-auth \
  role.rbac.authorization.k8s.io/crdkit-aws-auth deployment.apps/crdkit-aws-auth; do
  grep -q "^$o " <<<"$out" || fail "kubectl apply -k: no $o in: $out"
done
echo ok
