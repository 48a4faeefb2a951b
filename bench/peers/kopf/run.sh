#!/usr/bin/env bash
# Runs the kopf peer with the shared configuration: WATCH_NAMESPACE,
# CONFIGMAP_NAMESPACE, CONFIGMAP_NAME, KUBECONFIG, and HEALTH_PORT (optional:
# kopf's liveness endpoint; kopf has no metrics endpoint, METRICS_PORT is ignored).
# KOPF_VENV: the venv that build.sh made (default build/peers/kopf-venv).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${KOPF_VENV:-$here/../../../build/peers/kopf-venv}
: "${WATCH_NAMESPACE:?must be set}" "${CONFIGMAP_NAMESPACE:?must be set}" "${CONFIGMAP_NAME:?must be set}"
args=(run --standalone --namespace "$WATCH_NAMESPACE")
if [ -n "${HEALTH_PORT:-}" ] && [ "${HEALTH_PORT}" != 0 ]; then
  args+=(--liveness "http://0.0.0.0:${HEALTH_PORT}/healthz")
fi
exec "$venv/bin/kopf" "${args[@]}" "$here/operator.py"
