#!/usr/bin/env bash
# examples/mongo_user on the real apiserver and a real MongoDB-wire server
# (FerretDB from its Go module, scripts/mongo-server): the seed's object
# as written, a password from a Secret and its rotation, the plain
# password warning, a rename, the CEL rule, a user dropped by hand and put
# back, a delete while the operator is down, SIGTERM.
#
# FerretDB 1.x implements no roles (createUser with roles answers
# NotImplemented): the seed's object with roles [read, readWrite] is shown
# to fail with the server's message, and the rest uses the default [].
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
ex="${CRDKIT_EXAMPLES:-$top/build/asan/examples}"
bin="$ex/example-mongo-user"
probe="$ex/mongo-probe"
mongo_env=$("$top/scripts/mongo-server" up)
while IFS='=' read -r k v; do [ -n "$k" ] && export "$k=$v"; done <<<"$mongo_env"
uri=$CRDKIT_TEST_MONGO_URI
ns="mongo-$RANDOM$RANDOM"
log=$(mktemp)
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  kubectl -n "$ns" get mongouserresources -o name 2>/dev/null |
    xargs -r kubectl -n "$ns" patch --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
  kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  for u in "$ns-seed" "$ns-app" "$ns-app2" "$ns-plain" "$ns-gone"; do
    "$probe" exists "$uri" admin "$u" >/dev/null 2>&1 && echo "left behind: $u" || true
  done
  rm -f "$log"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -n 30 "$log"; exit 1; }
wait_for() {
  local n=$(($1 * 10)); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "timed out waiting for: $*"
}
start() {
  MONGO_USER_MONGO_URI="$uri" "$bin" --create-crd --namespace "$ns" --recheck-seconds 2 \
    --metrics-bind-address 0 --health-probe-bind-address 0 2>>"$log" &
  pid=$!
}
stop() {
  kill -TERM "$pid"; local rc=0; wait "$pid" || rc=$?; pid=
  [ "$rc" = 0 ] || fail "SIGTERM: exit $rc"
}
exists() { "$probe" exists "$uri" admin "$1"; }
absent() { ! "$probe" exists "$uri" admin "$1"; }
logs_in() { "$probe" auth "$uri" admin "$1" "$2"; }
ready() { [ "$(kubectl -n "$ns" get mongouserresource "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
mur() { # name username extra-spec-yaml
  kubectl -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: examples.crdkit.io/v1
kind: MongoUserResource
metadata: {name: $1}
spec:
  username: $2
$3
YAML
}

echo "== the flag is required and named"
rc=0; "$bin" 2>"$log.err" || rc=$?
[ "$rc" = 2 ] && grep -q -- '--mongo-uri (or MONGO_USER_MONGO_URI) is required' "$log.err" || fail "rc=$rc"
rm -f "$log.err"

kubectl create namespace "$ns" >/dev/null
start
wait_for 60 kubectl get crd mongouserresources.examples.crdkit.io

echo "== the seed's object, as written (roles the server does not implement)"
for _ in $(seq 50); do
  mur seed "$ns-seed" "  password: secret-password
  roles:
  - read
  - readWrite" 2>/dev/null && break
  sleep 0.2
done
retrying() { kubectl -n "$ns" get mongouserresource seed -o jsonpath='{.status.conditions[0].reason} {.status.conditions[0].message}' | grep -q '^Retrying .*not implemented'; }
wait_for 30 retrying
kubectl -n "$ns" get mongouserresource seed -o jsonpath='{.status.conditions[0].message}' | grep -q secret-password \
  && fail "the password is in the status message"
echo "== the same with the default roles: the user exists and logs in; a Warning about the plain password"
kubectl -n "$ns" patch mongouserresource seed --type json -p '[{"op":"remove","path":"/spec/roles"}]' >/dev/null
wait_for 30 ready seed
exists "$ns-seed" || fail "user not created"
logs_in "$ns-seed" secret-password || fail "cannot log in"
[ "$(kubectl -n "$ns" get mongouserresource seed -o jsonpath='{.spec.roles}')" = "[]" ] || fail "roles default"
plain_warned() { kubectl -n "$ns" get events.events.k8s.io -o jsonpath='{.items[*].reason}' | grep -q PlainPassword; }
wait_for 30 plain_warned

echo "== the CEL rule: exactly one of password and passwordSecretRef"
out=$(mur both "$ns-both" "  password: x
  passwordSecretRef: {name: s}" 2>&1 || true)
grep -q 'set exactly one of password and passwordSecretRef' <<<"$out" || fail "CEL: $out"

echo "== a password from a Secret, then rotated"
mur app "$ns-app" "  passwordSecretRef: {name: app-db}"
wait_for 30 bash -c "kubectl -n $ns get mongouserresource app -o jsonpath='{.status.conditions[0].message}' | grep -q 'not found'"
kubectl -n "$ns" create secret generic app-db --from-literal=password=first-pass >/dev/null
wait_for 30 ready app
logs_in "$ns-app" first-pass || fail "secret password"
kubectl -n "$ns" create secret generic app-db --from-literal=password=second-pass --dry-run=client -o yaml |
  kubectl replace -f - >/dev/null
wait_for 30 logs_in "$ns-app" second-pass   # the 2 s recheck timer applies it

echo "== a user dropped by hand comes back (the recheck timer)"
"$probe" drop "$uri" admin "$ns-app"
absent "$ns-app" || fail "the probe did not drop it"
wait_for 30 exists "$ns-app"
logs_in "$ns-app" second-pass || fail "recreated with the wrong password"

echo "== rename: the old user is dropped"
kubectl -n "$ns" patch mongouserresource app --type merge -p "{\"spec\":{\"username\":\"$ns-app2\"}}" >/dev/null
wait_for 30 exists "$ns-app2"
wait_for 30 absent "$ns-app"

echo "== delete while the operator is down: dropped at the next start"
stop
kubectl -n "$ns" delete mongouserresource seed --wait=false >/dev/null
exists "$ns-seed" || fail "dropped without the operator?"
start
wait_for 30 absent "$ns-seed"
wait_for 30 bash -c "! kubectl -n $ns get mongouserresource seed"

echo "== delete with the operator running"
kubectl -n "$ns" delete mongouserresource app --timeout=30s >/dev/null
absent "$ns-app2" || fail "user left after delete"
stop
if grep -q 'secret-password\|first-pass\|second-pass' "$log"; then fail "a password reached the log"; fi
if grep -q 'ERROR: AddressSanitizer\|runtime error' "$log"; then fail "sanitizer report"; fi
echo ok
