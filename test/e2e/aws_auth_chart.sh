#!/usr/bin/env bash
# The Helm chart deploy/charts/crdkit-aws-auth: helm lint, helm template
# with the default values and with variants, NOTES.txt, and kubectl apply
# --dry-run=server of what it renders. With its defaults it must render the
# RBAC of deploy/aws-auth/rbac.yaml and the Deployment of
# deploy/aws-auth/deployment.yaml (compared as JSON), and crds/ must hold
# deploy/aws-auth/crd.yaml. helm is built once by scripts/helm (a few
# minutes the first time) and cached.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="${CRDKIT_BIN:-$top/build/asan/cmd/crdkit/crdkit}"
[ -n "${CRDKIT_TEST_KUBECTL:-}" ] && PATH="$(dirname "$CRDKIT_TEST_KUBECTL"):$PATH"
chart="$top/deploy/charts/crdkit-aws-auth"
dep="$top/deploy/aws-auth"
ns="e2e-chart-$RANDOM$RANDOM"
work=$(mktemp -d)
created_ns=

fail() { echo "FAIL: $*"; exit 1; }
cleanup() {
  local rc=$?
  set +e
  if [ -n "$created_ns" ]; then
    kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1
    # Only dry runs went to it, so it should be empty. Without
    # kube-controller-manager nothing finalizes a deleted namespace: when it
    # is empty, do what the namespace controller would.
    local types left
    types=$(kubectl api-resources --verbs=list --namespaced -o name | paste -sd, -)
    if ! left=$(kubectl -n "$ns" get "$types" -o name --ignore-not-found 2>/dev/null); then
      echo "could not list what namespace $ns holds; left to the namespace controller"
    elif [ -n "$left" ]; then
      echo "namespace $ns is not empty; left to the namespace controller: $left"
    else
      kubectl get namespace "$ns" -o json 2>/dev/null |
        python3 -c 'import json,sys; o=json.load(sys.stdin); o["spec"]["finalizers"]=[]; print(json.dumps(o))' |
        kubectl replace --raw "/api/v1/namespaces/$ns/finalize" -f - >/dev/null 2>&1
    fi
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

helm=$("$top/scripts/helm")
[ -x "$helm" ] || fail "scripts/helm gave no binary"
"$helm" version --short | grep -q '^v3\.' || fail "not helm v3: $("$helm" version --short)"
# helm keeps its own state under these; none of it belongs in $HOME.
export HELM_CACHE_HOME="$work/helm/cache" HELM_CONFIG_HOME="$work/helm/config" HELM_DATA_HOME="$work/helm/data"

render() { # file [helm template flags...]
  local out=$1; shift
  "$helm" template crdkit-aws-auth "$chart" --namespace crdkit-system "$@" >"$out"
}
# The objects of YAML files as JSON lines (kubectl parses the YAML; the
# client-side dry run needs the kinds to be known to the server).
objects() {
  kubectl create --dry-run=client -o json -f "$1" |
    python3 -c 'import json,sys
t=sys.stdin.read(); d=json.JSONDecoder(); i=0
while True:
    while i < len(t) and t[i].isspace(): i += 1
    if i >= len(t): break
    o, i = d.raw_decode(t, i)
    for x in (o["items"] if o.get("kind") == "List" else [o]): print(json.dumps(x, sort_keys=True))'
}
# What must be equal between the chart and deploy/aws-auth: per object
# (kind, namespace, name), the RBAC rules, role references and subjects,
# and the Deployment's spec without the pod labels (the chart adds Helm's).
essence() {
  python3 -c 'import json,sys
out = {}
for line in sys.stdin:
    o = json.loads(line); m = o["metadata"]
    key = "%s %s/%s" % (o["kind"], m.get("namespace", ""), m["name"])
    if o["kind"] in ("ClusterRole", "Role"):
        out[key] = sorted(json.dumps(r, sort_keys=True) for r in o.get("rules", []))
    elif o["kind"] in ("ClusterRoleBinding", "RoleBinding"):
        out[key] = {"roleRef": o["roleRef"], "subjects": o["subjects"]}
    elif o["kind"] == "ServiceAccount":
        out[key] = {}
    elif o["kind"] == "Deployment":
        s = o["spec"]; s["template"]["metadata"].pop("labels", None)
        out[key] = s
print(json.dumps(out, indent=1, sort_keys=True))'
}
args_of() { # rendered file -> the container args, one a line
  objects "$1" | python3 -c 'import json,sys
for line in sys.stdin:
    o = json.loads(line)
    if o["kind"] == "Deployment": print("\n".join(o["spec"]["template"]["spec"]["containers"][0]["args"]))'
}
kinds_of() { objects "$1" | python3 -c 'import json,sys
for line in sys.stdin: o=json.loads(line); m=o["metadata"]; print(o["kind"], m.get("namespace",""), m["name"])'; }

echo "== crds/ is deploy/aws-auth/crd.yaml (and what the binary generates)"
cmp "$chart/crds/awsauth-crd.yaml" "$dep/crd.yaml" || fail "crds/awsauth-crd.yaml differs from deploy/aws-auth/crd.yaml"
if [ -x "$bin" ]; then
  "$bin" aws-auth print-crd | cmp - "$chart/crds/awsauth-crd.yaml" || fail "the chart's CRD is not print-crd's"
fi

echo "== helm lint"
"$helm" lint --strict "$chart" >"$work/lint" 2>&1 || { cat "$work/lint"; fail "helm lint"; }
grep -q '0 chart(s) failed' "$work/lint" || { cat "$work/lint"; fail "helm lint"; }
for v in "rbac.namespaced=true" "allNamespaces=true" "serviceMonitor.enabled=true" "createCRD=true" \
  "replicas=1,leaderElect=false"; do
  "$helm" lint --strict "$chart" --set "$v" >"$work/lint" 2>&1 || { cat "$work/lint"; fail "helm lint --set $v"; }
done

echo "== default values: the RBAC and Deployment of deploy/aws-auth"
render "$work/chart.yaml"
objects "$work/chart.yaml" | essence >"$work/chart.json"
{ cat "$dep/rbac.yaml"; echo ---; cat "$dep/deployment.yaml"; } >"$work/plain.yaml"
objects "$work/plain.yaml" | essence >"$work/plain.json"
diff -u "$work/plain.json" "$work/chart.json" || fail "the chart differs from deploy/aws-auth (above: - plain, + chart)"
grep -q '"ClusterRole /crdkit-aws-auth"' "$work/chart.json" || fail "no ClusterRole compared"
grep -q '"Role kube-system/crdkit-aws-auth"' "$work/chart.json" || fail "no Role compared"
grep -q '"Deployment crdkit-system/crdkit-aws-auth"' "$work/chart.json" || fail "no Deployment compared"
kinds_of "$work/chart.yaml" | grep -E '^(Service|ServiceMonitor) ' >/dev/null && fail "a Service or ServiceMonitor by default"
# Every object the chart renders in the release namespace is in it.
kinds_of "$work/chart.yaml" | awk '$1 != "ClusterRole" && $1 != "ClusterRoleBinding" && $2 != "crdkit-system" && $2 != "kube-system"' |
  grep . && fail "objects outside the release namespace and kube-system"

echo "== createCRD: the rights of rbac-crd.yaml and --create-crd"
render "$work/crd.yaml" --set createCRD=true
objects "$work/crd.yaml" | grep -F '"name": "crdkit-aws-auth-crd"' | essence >"$work/chart-crd.json"
objects "$dep/rbac-crd.yaml" | essence >"$work/plain-crd.json"
diff -u "$work/plain-crd.json" "$work/chart-crd.json" || fail "createCRD differs from rbac-crd.yaml"
args_of "$work/crd.yaml" | grep -x -- --create-crd >/dev/null || fail "no --create-crd"

echo "== rbac.namespaced: a RoleBinding per watched namespace, no ClusterRoleBinding"
render "$work/nsd.yaml" --set rbac.namespaced=true --set 'watchNamespaces={kube-system,team-a}'
kinds_of "$work/nsd.yaml" >"$work/nsd.kinds"
grep -qx 'RoleBinding kube-system crdkit-aws-auth-objects' "$work/nsd.kinds" || fail "no RoleBinding in kube-system"
grep -qx 'RoleBinding team-a crdkit-aws-auth-objects' "$work/nsd.kinds" || fail "no RoleBinding in team-a"
grep -q '^ClusterRoleBinding ' "$work/nsd.kinds" && fail "a ClusterRoleBinding with rbac.namespaced"
[ "$(args_of "$work/nsd.yaml" | grep -c -- '^--namespace=')" = 2 ] || fail "not two --namespace"
args_of "$work/nsd.yaml" | grep -x -- --namespace=team-a >/dev/null || fail "no --namespace=team-a"

echo "== values that cannot work are refused"
refused() { # message, --set values...
  local msg=$1; shift
  if "$helm" template crdkit-aws-auth "$chart" "$@" >/dev/null 2>"$work/err"; then fail "accepted: $*"; fi
  grep -qF "$msg" "$work/err" || { cat "$work/err"; fail "no \"$msg\" for: $*"; }
}
refused "cannot be used with allNamespaces" --set allNamespaces=true --set rbac.namespaced=true
refused "replicas > 1 needs leaderElect" --set leaderElect=false
refused "is not repair or report" --set drift=sideways
refused "watchNamespaces is empty" --set 'watchNamespaces=null'

echo "== other values"
render "$work/one.yaml" --set replicas=1 --set leaderElect=false --set allNamespaces=true \
  --set drift=report --set maxRemovals=-1 --set createConfigMap=false --set history=3 --set logLevel=debug
args_of "$work/one.yaml" >"$work/one.args"
for a in --all-namespaces --drift=report --max-removals=-1 --no-create-configmap --history=3 --log-level=debug; do
  grep -qx -- "$a" "$work/one.args" || fail "no $a in: $(tr '\n' ' ' <"$work/one.args")"
done
grep -q -- '--leader-elect\|--namespace=' "$work/one.args" && fail "--leader-elect or --namespace left in"
grep -q 'leases' "$work/one.yaml" && fail "Lease rights without leader election"
render "$work/cm.yaml" --set configMap.namespace=iam --set configMap.name=auth
args_of "$work/cm.yaml" | grep -x -- --configmap=iam/auth >/dev/null || fail "no --configmap=iam/auth"
objects "$work/cm.yaml" | essence | python3 -c 'import json,sys
r = json.load(sys.stdin)["Role iam/crdkit-aws-auth"]
assert any("\"auth\"" in x and "watch" in x for x in r), r
assert any("\"auth-history\"" in x for x in r), r' || fail "the Role does not follow configMap"
render "$work/sm.yaml" --set serviceMonitor.enabled=true --set serviceMonitor.labels.release=prom
grep -q '^kind: ServiceMonitor' "$work/sm.yaml" || fail "no ServiceMonitor"
grep -q '^kind: Service$' "$work/sm.yaml" || fail "no Service for the ServiceMonitor"
grep -q 'release: prom' "$work/sm.yaml" || fail "serviceMonitor.labels not applied"
render "$work/img.yaml" --set image.repository=registry.example/crdkit --set image.tag=9.9 \
  --set 'tolerations[0].operator=Exists' --set nodeSelector.pool=system --set podAntiAffinityPreset=none
grep -q 'image: "registry.example/crdkit:9.9"' "$work/img.yaml" || fail "image values not applied"
grep -q 'pool: system' "$work/img.yaml" || fail "nodeSelector not applied"
grep -q 'operator: Exists' "$work/img.yaml" || fail "tolerations not applied"
grep -q 'podAntiAffinity' "$work/img.yaml" && fail "podAntiAffinityPreset=none left an affinity"

echo "== NOTES.txt renders (helm install --dry-run=client)"
"$helm" install crdkit-aws-auth "$chart" --namespace crdkit-system --dry-run=client >"$work/install" 2>&1 ||
  { cat "$work/install"; fail "helm install --dry-run=client"; }
sed -n '/^NOTES:/,$p' "$work/install" >"$work/notes"
grep -q 'into kube-system/aws-auth' "$work/notes" || { cat "$work/install"; fail "NOTES.txt"; }
grep -qF 'username: "admin:{{SessionName}}"' "$work/notes" || { cat "$work/notes"; fail "NOTES.txt's example"; }

echo "== kubectl apply --dry-run=server of the chart with its CRD (namespace $ns)"
kubectl create namespace "$ns" >/dev/null
created_ns=1
"$helm" template crdkit-aws-auth "$chart" --namespace "$ns" --include-crds >"$work/apply.yaml"
out=$(kubectl apply --dry-run=server -f "$work/apply.yaml" 2>&1) || { echo "$out"; fail "server dry run"; }
for o in customresourcedefinition.apiextensions.k8s.io/awsauths.crdkit.io serviceaccount/crdkit-aws-auth \
  clusterrole.rbac.authorization.k8s.io/crdkit-aws-auth clusterrolebinding.rbac.authorization.k8s.io/crdkit-aws-auth \
  role.rbac.authorization.k8s.io/crdkit-aws-auth rolebinding.rbac.authorization.k8s.io/crdkit-aws-auth \
  deployment.apps/crdkit-aws-auth; do
  grep -q "^$o .*(server dry run)" <<<"$out" || { echo "$out"; fail "$o not in the server dry run"; }
done
"$helm" template crdkit-aws-auth "$chart" --namespace "$ns" --set rbac.namespaced=true \
  --set "watchNamespaces={$ns}" --set createCRD=true --set metrics.service.enabled=true >"$work/apply2.yaml"
out=$(kubectl apply --dry-run=server -f "$work/apply2.yaml" 2>&1) || { echo "$out"; fail "server dry run (variant)"; }
grep -q "^service/crdkit-aws-auth-metrics .*(server dry run)" <<<"$out" || { echo "$out"; fail "no Service"; }
grep -q "^clusterrole.rbac.authorization.k8s.io/crdkit-aws-auth-crd .*(server dry run)" <<<"$out" ||
  { echo "$out"; fail "no CRD ClusterRole"; }
echo ok
