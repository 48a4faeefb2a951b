#!/usr/bin/env bash
# The crdkit binary as a user runs it: help, version, cluster-info against
# the real apiserver, and clear errors for bad input.
set -euo pipefail
bin=${CRDKIT_BIN:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$bin" version | grep -Eq '^crdkit [0-9]+\.[0-9]+\.[0-9]+$'
"$bin" --help | grep -q 'cluster-info'

out=$("$bin" cluster-info)
echo "$out"
grep -q "^server: *$CRDKIT_TEST_APISERVER" <<<"$out"
grep -q '^version: *v1\.' <<<"$out"

# explicit --kubeconfig wins over KUBECONFIG
KUBECONFIG=/nonexistent "$bin" cluster-info --kubeconfig "$KUBECONFIG" | grep -q '^server:'

# a missing explicit kubeconfig: exit 1, the path named
if "$bin" cluster-info --kubeconfig "$tmp/nope" 2>"$tmp/err"; then exit 1; fi
grep -q "$tmp/nope" "$tmp/err"

# a broken kubeconfig: the file and the line are named
printf 'apiVersion: v1\nclusters:\n- name: a\n  cluster: {server: "https://x\n' > "$tmp/bad"
if "$bin" cluster-info --kubeconfig "$tmp/bad" 2>"$tmp/err"; then exit 1; fi
grep -q "$tmp/bad" "$tmp/err"

# an unknown context is named
if "$bin" cluster-info --context no-such-context 2>"$tmp/err"; then exit 1; fi
grep -q 'no-such-context' "$tmp/err"

# bad flag values: exit 2 and the accepted values
set +e
"$bin" cluster-info --log-level loud 2>"$tmp/err"; rc=$?
set -e
[ "$rc" -eq 2 ]
grep -q 'error, warn, info, debug, trace' "$tmp/err"

# the user without rights can still read /version (public), so cluster-info works
"$bin" cluster-info --kubeconfig "$CRDKIT_TEST_USER_KUBECONFIG" | grep -q '^version:'

# an unknown command
set +e
"$bin" frobnicate 2>"$tmp/err"; rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q 'unknown command' "$tmp/err"
echo "cli ok"
