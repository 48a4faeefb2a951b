#!/usr/bin/env bash
# docs/writing-an-operator.md works as written: its C program is taken
# from the document, built against an installed crdkit with the guide's
# pkg-config line, and run against the real apiserver: the CRD, a Memo,
# its ConfigMap and status, an update, the operator's own flag, the
# schema refusing a bad Memo, SIGTERM.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build="${CRDKIT_BUILD:-$top/build/asan}"
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  [ -n "${ns:-}" ] && kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  kubectl delete crd memos.guide.crdkit.io --wait=false >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -n 20 "$tmp/log" 2>/dev/null; exit 1; }
wait_for() {
  local n=$(($1 * 10)); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "timed out waiting for: $*"
}

echo "== install crdkit (meson install into a staging root)"
meson install -C "$build" --destdir "$tmp/root" --quiet >/dev/null
pc=$(find "$tmp/root" -name crdkit.pc | head -n 1)
[ -n "$pc" ] || fail "crdkit.pc was not installed"
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR="$tmp/root"
export LD_LIBRARY_PATH=$(dirname "$(dirname "$pc")")

echo "== memo.c from the guide, built with its pkg-config line"
awk '/^```c$/ {on=1; next} /^```$/ {if (on) exit} on' "$top/docs/writing-an-operator.md" > "$tmp/memo.c"
[ "$(wc -l < "$tmp/memo.c")" -gt 40 ] || fail "no C program found in the guide"
line=$(grep -m1 '^cc -std=c17 -o memo memo.c' "$top/docs/writing-an-operator.md")
[ -n "$line" ] || fail "no build line in the guide"
# The library under test carries sanitizers; the program links them too.
(cd "$tmp" && eval "${line/cc /cc -Wall -Wextra -Werror -fsanitize=address,undefined }")
memo="$tmp/memo"

echo "== run it"
"$memo" --help | grep -- '--prefix VALUE' >/dev/null || fail "--help lacks the operator's flag"
"$memo" --print-crd | grep 'name: memos.guide.crdkit.io' >/dev/null || fail "--print-crd"
ns="guide-$RANDOM"
kubectl create namespace "$ns" >/dev/null
MEMO_PREFIX="note: " "$memo" --create-crd --namespace "$ns" --metrics-bind-address 0 \
  --health-probe-bind-address 0 2>"$tmp/log" &
pid=$!
wait_for 60 kubectl get crd memos.guide.crdkit.io
apply_memo() {
  kubectl -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: guide.crdkit.io/v1
kind: Memo
metadata: {name: shopping}
spec: {text: "$1"}
YAML
}
for _ in $(seq 50); do apply_memo "milk, eggs" 2>/dev/null && break; sleep 0.2; done
text_is() { [ "$(kubectl -n "$ns" get configmap shopping-memo -o jsonpath='{.data.text}')" = "$1" ]; }
wait_for 30 text_is "note: milk, eggs"
status_is() { [ "$(kubectl -n "$ns" get memo shopping -o jsonpath='{.status.length} {.status.observedGeneration} {.status.conditions[0].status}')" = "$1" ]; }
wait_for 30 status_is "10 1 True"
apply_memo "milk"
wait_for 30 text_is "note: milk"
wait_for 30 status_is "4 2 True"
[ "$(kubectl -n "$ns" get configmap shopping-memo -o jsonpath='{.metadata.ownerReferences[0].kind}')" = Memo ] \
  || fail "the ConfigMap is not owned by the Memo"
out=$(kubectl -n "$ns" apply -f - 2>&1 <<'YAML' || true
apiVersion: guide.crdkit.io/v1
kind: Memo
metadata: {name: empty}
spec: {}
YAML
)
grep -q 'spec.text: Required value' <<<"$out" || fail "a Memo without text was not refused: $out"
kill -TERM "$pid"; rc=0; wait "$pid" || rc=$?; pid=
[ "$rc" = 0 ] || fail "SIGTERM: exit $rc"
if grep -q 'ERROR: AddressSanitizer\|runtime error' "$tmp/log"; then fail "sanitizer report"; fi
echo ok
