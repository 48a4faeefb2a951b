#!/usr/bin/env bash
# bench/harness/run.sh: `make bench-peers`. Builds crdkit (ninja -C
# build/release) and the peers (bench/peers/build.sh), brings the test
# control plane up if needed (stopped at the end only when started here),
# installs the AWSAuth CRD when missing, runs bench/harness/peerbench.py
# (W1-W5 + floor; environment: see its header) and writes the report:
# bench/results/DATE-HOST.json, plots next to it (PNG; matplotlib or
# gnuplot, checked first; PLOTS=0: none), the section "Side by side with
# the peers" of docs/performance.md (REPORT=0: skip it).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$top"
# The report's plots need matplotlib or gnuplot: say so before hours of
# runs, not after them (PLOTS=0: run without plots).
if [ "${REPORT:-1}" = 1 ] && [ "${PLOTS:-1}" = 1 ] &&
  ! python3 -c 'import matplotlib' 2>/dev/null && ! command -v gnuplot >/dev/null; then
  echo "bench-peers: the report's plots need matplotlib or gnuplot, and neither is here." >&2
  echo "  install one (pip install matplotlib, or apt-get install gnuplot-nox)," >&2
  echo "  or run with PLOTS=0 to write the report without plots." >&2
  exit 2
fi
ninja -C build/release >/dev/null
bench/peers/build.sh >&2
before=$(scripts/testenv env 2>/dev/null || true)
eval "$(scripts/testenv up | sed 's/^/export /')"
if [ -z "$before" ]; then trap 'scripts/testenv down' EXIT; fi
k=$CRDKIT_TEST_KUBECTL
if ! "$k" get crd awsauths.crdkit.io >/dev/null 2>&1; then
  build/release/cmd/crdkit/crdkit aws-auth print-crd | "$k" apply -f - >&2
  "$k" wait --for condition=Established crd/awsauths.crdkit.io --timeout=60s >&2
fi
out=$(python3 bench/harness/peerbench.py run)
echo "results: $out"
if [ "${REPORT:-1}" = 1 ]; then
  python3 bench/harness/peerbench.py report "$out"
fi
