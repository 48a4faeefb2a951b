#!/usr/bin/env bash
# The aws-auth operator at scale, on the real apiserver:
#   a. SIGKILL in the middle of a churn (150 AWSAuth created, changed,
#      switched between mapRoles and mapUsers, a third deleted) and a
#      restart: the ConfigMap then equals exactly what the surviving
#      objects say, deleted objects are gone (finalizer released), every
#      survivor is Ready for its current generation;
#   b. two replicas with --leader-elect: only the Lease holder writes; after
#      a SIGKILL of the holder the other takes over once the Lease has
#      expired (never before), applies a change made after the kill, and
#      exits 0 on SIGTERM, releasing the Lease;
#   c. 500 AWSAuth created at once from 8 connections: the ConfigMap holds
#      all 500 with at most 25 writes (5%), counted both by the operator's
#      awsauth_configmap_writes_total and by a `kubectl get -w` of the
#      ConfigMap;
#   d. then, 20 times, two objects changed back to back: both changes
#      reach aws-auth (the second arrives while the merge of the first
#      runs).
# Each part has its own namespace scale-*-<random> and ConfigMap
# <ns>/aws-auth (--configmap). The objects are created, changed and deleted
# by bench/awsauth/awsauth_load.py (one REST client, no kubectl per call).
# Needs python3 with PyYAML (to read the ConfigMap's YAML) and curl.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="${CRDKIT_BIN:-$top/build/asan/cmd/crdkit/crdkit}"
load=(python3 "$top/bench/awsauth/awsauth_load.py")
work=$(mktemp -d)
tag=$RANDOM$RANDOM
namespaces=()
declare -A pids=()
bg=()

python3 -c 'import yaml' 2>/dev/null || { echo "python3 with PyYAML is needed"; exit 1; }

cleanup() {
  local name p
  for name in "${!pids[@]}"; do kill -9 "${pids[$name]}" 2>/dev/null || true; done
  for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done
  # No namespace controller runs here: empty each namespace (finalizers
  # first), then finalize it ourselves.
  for ns in "${namespaces[@]}"; do
    "${load[@]}" cleanup -n "$ns" >/dev/null 2>&1 || true
    kubectl -n "$ns" delete configmaps,leases,events --all >/dev/null 2>&1 || true
    kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
    kubectl get namespace "$ns" -o json 2>/dev/null |
      python3 -c 'import json,sys; o=json.load(sys.stdin); o["spec"]["finalizers"]=[]; print(json.dumps(o))' |
      kubectl replace --raw "/api/v1/namespaces/$ns/finalize" -f - >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

fail() { echo "FAIL: $*"; for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done; exit 1; }
wait_for() { # seconds, command...
  local n=$(($1 * 10)); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "timed out waiting for: $*"
}
now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }

new_namespace() { # purpose -> sets $ns
  ns="scale-$1-$tag"
  namespaces+=("$ns")
  kubectl create namespace "$ns" >/dev/null
}
# A ConfigMap as EKS leaves it: a node role and a user nobody's AWSAuth owns.
foreign_configmap() {
  kubectl -n "$1" apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: aws-auth}
data:
  mapRoles: |
    - rolearn: arn:aws:iam::111122223333:role/eks-node
      username: system:node:{{EC2PrivateDNSName}}
      groups: [system:bootstrappers, system:nodes]
  mapUsers: |
    - userarn: arn:aws:iam::111122223333:user/break-glass
      username: break-glass
      groups: [system:masters]
YAML
}

# start NAME NS [flags]: an operator for NS's AWSAuth and NS/aws-auth.
start() {
  local name=$1 ns=$2; shift 2
  "$bin" aws-auth run --namespace "$ns" --configmap "$ns/aws-auth" --log-format json \
    --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 "$@" \
    2>>"$work/$name.log" &
  pids[$name]=$!
  wait_for 30 port "$name"
  wait_for 60 curl -sf "http://127.0.0.1:$(port "$name")/readyz"
}
port() { # name: where its /metrics, /healthz and /readyz are (one listener)
  grep -o '"msg":"serving metrics and probes on 127.0.0.1:0 (port [0-9]*)' "$work/$1.log" |
    tail -n 1 | grep -o '[0-9]*)$' | tr -d ')' | grep .
}
metrics() { curl -sf "http://127.0.0.1:$(port "$1")/metrics"; }
metric() { # name series-regex -> the sum of matching series
  metrics "$1" | awk -v re="^$2" '$0 ~ re {s += $NF} END {print s + 0}'
}
writes() { metric "$1" 'awsauth_configmap_writes_total '; }
stop() { # name: SIGTERM, must exit 0
  local name=$1 rc=0
  kill -TERM "${pids[$name]}"
  wait "${pids[$name]}" || rc=$?
  unset "pids[$name]"
  [ "$rc" = 0 ] || fail "operator $name exited $rc on SIGTERM"
}
killed() { # name: SIGKILL
  local name=$1 rc=0
  kill -KILL "${pids[$name]}"
  { wait "${pids[$name]}"; } 2>/dev/null || rc=$?
  unset "pids[$name]"
  [ "$rc" = 137 ] || fail "operator $name: exit $rc after SIGKILL"
}
awsauth() { # ns name arn group
  kubectl -n "$1" apply -f - >/dev/null <<YAML
apiVersion: crdkit.io/v1alpha1
kind: AWSAuth
metadata: {name: $2}
spec:
  mapRoles:
  - {rolearn: "$3", username: "$2", groups: ["$4"]}
YAML
}
roles() { kubectl -n "$1" get configmap aws-auth -o jsonpath='{.data.mapRoles}'; }
lease() { # ns jsonpath
  kubectl -n "$1" get lease aws-auth-leader -o jsonpath="{$2}"
}
is_ready() { # ns name
  [ "$(kubectl -n "$1" get awsauth "$2" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

# The ConfigMap against the AWSAuth objects that exist: foreign entries
# first as they were, then one entry per ARN of every object, sorted by
# ARN; deleted objects gone; survivors Ready for their generation, with
# the finalizer. Exit 1 with the first difference.
check_converged() { # ns churn-result.json [-v]
  kubectl -n "$1" get awsauths -o json >"$work/objs.json" &&
  kubectl -n "$1" get configmap aws-auth -o json >"$work/cm.json" &&
  python3 - "$work/objs.json" "$work/cm.json" "$2" "${3:-}" <<'PY'
import json, sys, yaml
objs = json.load(open(sys.argv[1]))["items"]
cm = json.load(open(sys.argv[2]))
deleted = set(json.load(open(sys.argv[3]))["deleted"])
verbose = sys.argv[4] == "-v"
def bad(msg):
    if verbose:
        print("not converged:", msg)
    sys.exit(1)
foreign = {
    "mapRoles": [{"rolearn": "arn:aws:iam::111122223333:role/eks-node",
                  "username": "system:node:{{EC2PrivateDNSName}}",
                  "groups": ["system:bootstrappers", "system:nodes"]}],
    "mapUsers": [{"userarn": "arn:aws:iam::111122223333:user/break-glass",
                  "username": "break-glass", "groups": ["system:masters"]}],
}
owned = {"mapRoles": [], "mapUsers": []}
for o in objs:
    md, name = o["metadata"], o["metadata"]["name"]
    if md.get("deletionTimestamp"):
        bad(f"{name} is being deleted and still has finalizers {md.get('finalizers')}")
    if name in deleted:
        bad(f"{name} was deleted but still exists")
    if "crdkit.io/aws-auth" not in (md.get("finalizers") or []):
        bad(f"{name} has no finalizer")
    spec, st = o["spec"], o.get("status") or {}
    kind = "mapRoles" if spec.get("mapRoles") else "mapUsers"
    key = "rolearn" if kind == "mapRoles" else "userarn"
    for e in spec[kind]:
        owned[kind].append({key: e[key], "username": e["username"], "groups": e["groups"]})
    ready = [c for c in st.get("conditions", []) if c["type"] == "Ready"]
    if not ready or ready[0]["status"] != "True" or ready[0].get("observedGeneration") != md["generation"]:
        bad(f"{name} not Ready for generation {md['generation']}: {ready}")
    if st.get("entries") != len(spec[kind]) or st.get("type") != kind:
        bad(f"{name}: status says {st.get('entries')} {st.get('type')}, spec has {len(spec[kind])} {kind}")
data = cm.get("data") or {}
for kind, key in (("mapRoles", "rolearn"), ("mapUsers", "userarn")):
    want = foreign[kind] + sorted(owned[kind], key=lambda e: e[key])
    got = yaml.safe_load(data.get(kind) or "[]") or []
    if got != want:
        extra = [e for e in got if e not in want]
        missing = [e for e in want if e not in got]
        bad(f"{kind}: {len(got)} entries, want {len(want)}; extra {extra[:3]}; missing {missing[:3]}"
            + ("; same entries, other order" if not extra and not missing else ""))
if verbose:
    print(f"converged: {len(objs)} objects, {len(owned['mapRoles'])} owned roles, "
          f"{len(owned['mapUsers'])} owned users, {len(deleted)} deleted objects gone")
PY
}

no_errors_logged() {
  local f
  for f in "$work"/*.log; do
    if grep -E '"level":"error"|ERROR: (Address|Leak)Sanitizer|runtime error:' "$f"; then
      fail "errors in $(basename "$f")"
    fi
  done
}

echo "== a. SIGKILL in the middle of a churn of 150 objects, then a restart"
new_namespace churn
ns_a=$ns
foreign_configmap "$ns_a"
# Deletes while the operator is down pile up (a third of 150); the default
# --max-removals of 10 would rightly refuse to drop them in one write. This
# part is about convergence, so the interlock is off here.
start churn1 "$ns_a" --create-crd --max-removals -1
seed=$RANDOM
echo "churn seed $seed"
"${load[@]}" churn -n "$ns_a" -c 150 --seed "$seed" --progress "$work/progress" >"$work/churn.json" &
churn=$!
bg+=("$churn")
progress() { local d t; read -r d t <"$work/progress" && echo "$d $t"; }
mid_churn() { # a third of the operations done and the operator has written (or the churn ended)
  local d t
  kill -0 "$churn" 2>/dev/null || return 0
  read -r d t < <(progress) && [ "$((d * 3))" -ge "$t" ] && [ "$(writes churn1)" -ge 1 ]
}
wait_for 60 mid_churn
read -r done_at_kill total < <(progress)
w=$(writes churn1)
kill -0 "$churn" 2>/dev/null && [ "$done_at_kill" -lt "$total" ] || fail "the churn ended before the kill"
killed churn1
echo "killed the operator after $done_at_kill of $total operations ($w ConfigMap writes)"
wait "$churn" || fail "the churn failed"
bg=()
# Deletes during the downtime need the operator in one of two ways: an
# object that already had the finalizer waits for it; one deleted before its
# finalizer was added (it follows the write) is gone, but its entries stay
# in aws-auth, owned in the annotation by an object that no longer exists.
# At least one of the two must be there, or the kill was not mid-churn.
kubectl -n "$ns_a" get awsauths -o json >"$work/objs-down.json"
kubectl -n "$ns_a" get configmap aws-auth -o json >"$work/cm-down.json"
read -r pending orphans < <(python3 - "$work/objs-down.json" "$work/cm-down.json" <<'PY'
import json, re, sys, yaml
items = json.load(open(sys.argv[1]))["items"]
cm = json.load(open(sys.argv[2]))
pending = sum(1 for o in items if o["metadata"].get("deletionTimestamp"))
alive = {o["metadata"]["name"] for o in items}
orphans = 0
for kind, f in (("mapRoles", "rolearn"), ("mapUsers", "userarn")):
    for e in yaml.safe_load(cm["data"].get(kind) or "[]") or []:
        m = re.search(r"/(churn-\d+)", str(e.get(f, "")))
        if m and m.group(1) not in alive:
            orphans += 1
print(pending, orphans)
PY
)
[ "$((pending + orphans))" -ge 1 ] || fail "no delete needed the operator: the kill was not mid-churn"
echo "churn done: $pending deleted objects held by the finalizer, $orphans entries of objects deleted before their finalizer came"
check_converged "$ns_a" "$work/churn.json" && fail "converged without the operator: the check proves nothing"
t0=$(now)
start churn2 "$ns_a" --max-removals -1
wait_for 90 check_converged "$ns_a" "$work/churn.json"
check_converged "$ns_a" "$work/churn.json" -v || fail "not converged"
echo "restart converged in $(secs "$t0" "$(now)")s, $(writes churn2) ConfigMap writes"
stop churn2

echo "== b. two replicas with --leader-elect (at ${SECONDS}s)"
new_namespace leader
ns_b=$ns
start ldr1 "$ns_b" --leader-elect
start ldr2 "$ns_b" --leader-elect
leading() { metric "$1" 'leader_election_master_status[{]'; }
one_leader() { [ "$(( $(leading ldr1) + $(leading ldr2) ))" = 1 ]; }
wait_for 30 one_leader
if [ "$(leading ldr1)" = 1 ]; then leader=ldr1 standby=ldr2; else leader=ldr2 standby=ldr1; fi
id=$(grep -o '"msg":"became leader ([^)]*' "$work/$leader.log" | sed 's/.*(//')
holder=$(lease "$ns_b" .spec.holderIdentity)
[ -n "$id" ] && [ "$holder" = "$id" ] || fail "the Lease is held by '$holder', not by $leader ('$id')"
grep -q '"msg":"became leader' "$work/$standby.log" && fail "$standby became leader too"
awsauth "$ns_b" one arn:aws:iam::111122223333:role/one g1
awsauth "$ns_b" two arn:aws:iam::111122223333:role/two g2
wait_for 30 is_ready "$ns_b" one
wait_for 30 is_ready "$ns_b" two
{ roles "$ns_b" | grep role/one >/dev/null && roles "$ns_b" | grep role/two >/dev/null; } ||
  fail "role/one and role/two are not both in the ConfigMap"
[ "$(writes "$leader")" -ge 1 ] || fail "the leader $leader wrote nothing"
# The standby has warm caches but must not reconcile, write or patch.
[ "$(writes "$standby")" = 0 ] || fail "the standby $standby wrote the ConfigMap"
[ "$(metric "$standby" 'controller_runtime_reconcile_total[{]')" = 0 ] || fail "the standby $standby reconciled"
[ "$(metric "$standby" 'rest_client_requests_total[{].*method="PATCH"')" = 0 ] || fail "the standby $standby patched objects"
echo "$leader leads ($id): $(writes "$leader") writes; $standby: 0 writes, 0 reconciles"
killed "$leader"
t_kill=$(now)
# The Lease as the dead leader left it: its last renewal.
[ "$(lease "$ns_b" .spec.holderIdentity)" = "$id" ] || fail "the Lease changed hands at once"
last_renew=$(lease "$ns_b" .spec.renewTime)
duration=$(lease "$ns_b" .spec.leaseDurationSeconds)
awsauth "$ns_b" three arn:aws:iam::111122223333:role/three g3
awsauth "$ns_b" one arn:aws:iam::111122223333:role/one g1-changed
taken() { local h; h=$(lease "$ns_b" .spec.holderIdentity) && [ -n "$h" ] && [ "$h" != "$id" ]; }
wait_for 60 taken
t_take=$(now)
# The gauge and the log follow the Lease write's answer by moments.
new_leads() { [ "$(leading "$standby")" = 1 ]; }
wait_for 5 new_leads
wait_for 5 grep -q "\"msg\":\"became leader ($(lease "$ns_b" .spec.holderIdentity))" "$work/$standby.log"
acquired=$(lease "$ns_b" .spec.acquireTime)
# Never before the Lease expired; at most two (jittered, <= 2.2 x 2 s)
# candidate retries after it, plus scheduling slack.
python3 - "$last_renew" "$acquired" "$duration" "$t_kill" "$t_take" <<'PY' || fail "takeover timing"
import sys
from datetime import datetime
ts = lambda s: datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
renew, acq, dur, kill, take = ts(sys.argv[1]), ts(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
print(f"takeover {take - kill:.1f}s after the kill; acquired {acq - renew:.1f}s after the last renewal (lease {dur:.0f}s)")
if acq - renew < dur:
    sys.exit(f"taken {acq - renew:.3f}s after the last renewal: before the lease expired")
if take - kill > dur + 2 * 4.4 + 2:
    sys.exit(f"taken {take - kill:.1f}s after the kill: later than lease + two retries")
PY
wait_for 30 is_ready "$ns_b" three
changed() { roles "$ns_b" | grep g1-changed >/dev/null; }
wait_for 30 changed
roles "$ns_b" | grep role/two >/dev/null || fail "role/two is gone"
[ "$(writes "$standby")" -ge 1 ] || fail "the new leader $standby wrote nothing"
stop "$standby"
[ -z "$(lease "$ns_b" .spec.holderIdentity)" ] || fail "the Lease was not released on SIGTERM"

echo "== c. 500 objects at once (at ${SECONDS}s)"
new_namespace burst
ns_c=$ns
foreign_configmap "$ns_c"
start burst "$ns_c"
# Watch the ConfigMap; the first line (the object as it is) shows the
# watch is established, so every write after it is seen.
kubectl -n "$ns_c" get configmap aws-auth -w -o jsonpath='{.metadata.resourceVersion}{"\n"}' \
  >"$work/rvs" 2>"$work/watch.log" &
bg+=($!)
wait_for 30 test -s "$work/rvs"
w0=$(writes burst)
t0=$(now)
created=$("${load[@]}" create -n "$ns_c" -c 500 -t 8 --prefix burst)
entries() { roles "$ns_c" | grep -c ':role/burst-'; }
all_in() { [ "$(entries)" = 500 ]; }
wait_for 120 all_in
t_all=$(now)
echo "created: $created; all 500 in the ConfigMap $(secs "$t0" "$t_all")s after the first create"
roles "$ns_c" | grep role/eks-node >/dev/null || fail "the foreign entry is gone"
# Every object Ready: the operator is done; then the watch has caught up
# with the ConfigMap's current resourceVersion.
all_ready() {
  kubectl -n "$ns_c" get awsauths -o json |
    python3 -c 'import json,sys; i=json.load(sys.stdin)["items"]; sys.exit(not (len(i) == 500 and all(any(c["type"] == "Ready" and c["status"] == "True" for c in o.get("status", {}).get("conditions", [])) for o in i)))'
}
wait_for 120 all_ready
rv=$(kubectl -n "$ns_c" get configmap aws-auth -o jsonpath='{.metadata.resourceVersion}')
wait_for 30 grep -qx "$rv" "$work/rvs"
by_metric=$(( $(writes burst) - w0 ))
by_watch=$(( $(sort -u "$work/rvs" | wc -l) - 1 ))
echo "ConfigMap writes for 500 objects: $by_metric (awsauth_configmap_writes_total), $by_watch (resourceVersions seen by kubectl get -w)"
grep -o '"msg":"wrote [^"]*' "$work/burst.log" | sed 's/"msg":"/  /'
[ "$by_metric" = "$by_watch" ] || fail "the metric ($by_metric) and the watch ($by_watch) disagree"
[ "$by_metric" -ge 1 ] && [ "$by_metric" -le 25 ] || fail "$by_metric writes for 500 objects: more than 25 (5%)"

echo "== d. a change that arrives while a merge of 500 objects runs (at ${SECONDS}s)"
# Each round changes two objects back to back: the second change comes in
# after the merge of the first has read the objects, and must not be
# taken for one that merge already had.
pairs=$("${load[@]}" pairs -n "$ns_c" -c 20) || fail "a change made during a merge never reached aws-auth: $pairs"
echo "$pairs"
stop burst

no_errors_logged
echo "ok (${SECONDS}s)"
