#!/usr/bin/env bash
# The aws-auth operator with 1,000 AWSAuth created at once (release build).
# Each run: a fresh namespace scale-bench-*, the operator started for it
# (--configmap <ns>/aws-auth) and ready, then bench/awsauth/awsauth_load.py
# watches the ConfigMap, creates the objects from THREADS connections and
# waits until the ConfigMap holds all of them, then until every object is
# Ready. Per run: the client's create rate, the time from the first create
# to all N in the ConfigMap (seen by the watch), the ConfigMap writes (the
# watch's resourceVersions and awsauth_configmap_writes_total), the
# operator's CPU seconds (utime+stime, /proc/PID/stat) and peak RSS (VmHWM).
# One JSON line per run, then a summary line (median, min, max) with the
# machine, into build/bench/awsauth.json (and on stdout).
#
# Environment: AWSAUTH_RUNS (default 3), AWSAUTH_N (default 1000),
# AWSAUTH_THREADS (default 8),
# CRDKIT_BIN (default build/release/cmd/crdkit/crdkit, built first),
# AWSAUTH_COMMIT (the commit CRDKIT_BIN was built from, when not this
# tree's HEAD, e.g. a `git archive` of it), AWSAUTH_ARGS (more operator
# flags, e.g. --log-level debug), KUBECONFIG and
# CRDKIT_TEST_KUBECTL (default: those of the running scripts/testenv).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$top"
RUNS=${AWSAUTH_RUNS:-3}
N=${AWSAUTH_N:-1000}
THREADS=${AWSAUTH_THREADS:-8}
bin=${CRDKIT_BIN:-$top/build/release/cmd/crdkit/crdkit}
out=build/bench
mkdir -p "$out"
[ -n "${CRDKIT_BIN:-}" ] || ninja -C build/release >/dev/null
if [ -z "${KUBECONFIG:-}" ]; then
  eval "$(scripts/testenv env | sed 's/^/export /')"
fi
kubectl=${CRDKIT_TEST_KUBECTL:-kubectl}
export CRDKIT_TEST_KUBECTL=$kubectl
load=(python3 "$top/bench/awsauth/awsauth_load.py")
work=$(mktemp -d)
tag=$RANDOM
pid=
ns=

drop_namespace() {
  [ -n "$ns" ] || return 0
  "${load[@]}" cleanup -n "$ns" >/dev/null 2>&1 || true
  "$kubectl" -n "$ns" delete configmaps,leases,events --all >/dev/null 2>&1 || true
  "$kubectl" delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  # No namespace controller may run: finalize it here.
  "$kubectl" get namespace "$ns" -o json 2>/dev/null |
    python3 -c 'import json,sys; o=json.load(sys.stdin); o["spec"]["finalizers"]=[]; print(json.dumps(o))' |
    "$kubectl" replace --raw "/api/v1/namespaces/$ns/finalize" -f - >/dev/null 2>&1 || true
  ns=
}
cleanup() {
  local rc=$?
  if [ "$rc" != 0 ] && [ -s "$work/op.log" ]; then
    cp "$work/op.log" "$out/awsauth-failed-run.log"
    echo "bench awsauth: failed; the operator's log is in $out/awsauth-failed-run.log" >&2
  fi
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  drop_namespace
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

port() {
  grep -o '"msg":"serving metrics and probes on 127.0.0.1:0 (port [0-9]*)' "$work/op.log" |
    tail -n 1 | grep -o '[0-9]*)$' | tr -d ')' | grep .
}
metric() { # series-regex -> the sum of the matching series
  curl -sf "http://127.0.0.1:$(port)/metrics" | awk -v re="^$1" '$0 ~ re {s += $NF} END {print s + 0}'
}
cpu_s() { python3 -c "import sys,os; f=open(f'/proc/{sys.argv[1]}/stat').read().rsplit(')',1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf('SC_CLK_TCK'))" "$pid"; }
status_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$pid/status"; }
wait_until() { # seconds, command...
  local n=$(($1 * 10)); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "bench awsauth: timed out waiting for: $*" >&2; tail -n 20 "$work/op.log" >&2; return 1
}

machine=$(AWSAUTH_BIN=$bin python3 - "$("$kubectl" version -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("serverVersion",{}).get("gitVersion",""))' || true)" <<'PY'
import json, os, platform, subprocess, sys, datetime
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
commit = os.environ.get("AWSAUTH_COMMIT") or subprocess.run(
    ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
# Uncommitted changes count only when the binary comes from this tree.
dirty = not os.environ.get("AWSAUTH_COMMIT") and bool(subprocess.run(
    ["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip())
print(json.dumps({"host": platform.node(), "cores": os.cpu_count(), "mem_kb": mem, "cpu": cpu,
                  "kernel": platform.release(), "apiserver": sys.argv[1],
                  "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "commit": commit, "tree_modified": dirty, "binary": os.environ["AWSAUTH_BIN"]}))
PY
)

: >"$work/runs.json"
for run in $(seq "$RUNS"); do
  ns="scale-bench-$tag-$run"
  "$kubectl" create namespace "$ns" >/dev/null
  : >"$work/op.log"
  "$bin" aws-auth run --create-crd --namespace "$ns" --configmap "$ns/aws-auth" --log-format json \
    --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 ${AWSAUTH_ARGS:-} \
    2>"$work/op.log" &
  pid=$!
  wait_until 30 port
  wait_until 60 curl -sf "http://127.0.0.1:$(port)/readyz"
  cpu_start=$(cpu_s)
  rss_start=$(status_kb VmRSS)
  load_start=$(cut -d' ' -f1 /proc/loadavg)
  res=$("${load[@]}" bench -n "$ns" -c "$N" -t "$THREADS" --prefix bench --cpu-pid "$pid" --timeout 600)
  cpu_end=$(cpu_s)
  hwm=$(status_kb VmHWM)
  rss=$(status_kb VmRSS)
  writes=$(metric 'awsauth_configmap_writes_total ')
  reconciles=$(metric 'controller_runtime_reconcile_total[{]')
  conflicts=$(metric 'awsauth_write_conflicts_total ')
  patches=$(metric 'rest_client_requests_total[{].*method="PATCH"')
  requests=$(metric 'rest_client_requests_total[{]')
  patch_s=$(metric 'rest_client_request_duration_seconds_sum[{].*verb="PATCH"')
  load_end=$(cut -d' ' -f1 /proc/loadavg)
  t_term=$(date +%s.%N)
  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  stop_s=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 3))" "$t_term" "$(date +%s.%N)")
  pid=
  [ "$rc" = 0 ] || { echo "bench awsauth: the operator exited $rc" >&2; tail -n 20 "$work/op.log" >&2; exit 1; }
  python3 - "$res" "$run" "$cpu_start" "$cpu_end" "$hwm" "$rss" "$writes" "$reconciles" \
    "$conflicts" "$patches" "$requests" "$load_start" "$load_end" "$work/op.log" "$patch_s" "$rss_start" "$stop_s" <<'PY' | tee -a "$work/runs.json"
import json, re, sys
r = json.loads(sys.argv[1])
a = sys.argv[2:]
# The owned entries after each write, from the operator's log.
sizes = []
for l in open(a[12]):
    m = re.search(r'"msg":"wrote [^:]*: (\d+) owned', l)
    if m:
        sizes.append(int(m.group(1)))
line = {"bench": "awsauth", "run": int(a[0]), **r,
        "metric_writes": int(float(a[5])), "reconciles": int(float(a[6])),
        "write_conflicts": int(float(a[7])), "patches": int(float(a[8])),
        "api_requests": int(float(a[9])),
        "patch_seconds_total": round(float(a[13]), 2),
        "patch_mean_ms": round(1000 * float(a[13]) / max(1, int(float(a[8]))), 2),
        "cpu_s_startup": round(float(a[1]), 2), "cpu_s_end": round(float(a[2]), 2),
        "rss_kb_start": int(a[14]), "peak_rss_kb": int(a[3]), "rss_kb_end": int(a[4]),
        "loadavg_start": float(a[10]), "loadavg_end": float(a[11]),
        "owned_after_each_write": sizes, "sigterm_to_exit_s": float(a[15])}
if line["metric_writes"] != r["watch_writes_at_ready"] or len(sizes) != line["metric_writes"]:
    print(f"bench awsauth: writes disagree: metric {line['metric_writes']}, watch "
          f"{r['watch_writes_at_ready']}, log {len(sizes)}", file=sys.stderr)
print(json.dumps(line))
PY
  drop_namespace
done

python3 - "$work/runs.json" "$machine" <<'PY' | tee -a "$work/runs.json"
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = ["create_s", "create_objects_per_s", "all_in_configmap_s", "all_in_configmap_after_last_create_s",
        "watch_writes", "metric_writes", "all_ready_s", "cpu_s_at_all_in_configmap", "cpu_s_end",
        "rss_kb_start", "peak_rss_kb", "api_requests", "patch_mean_ms", "patch_seconds_total"]
s = {"bench": "awsauth", "summary": True, "runs": len(runs), "objects": runs[0]["objects"],
     "threads": runs[0]["threads"], "machine": json.loads(sys.argv[2])}
for k in keys:
    v = [r[k] for r in runs]
    s[k] = {"median": statistics.median(v), "min": min(v), "max": max(v)}
# Runs during which the apiserver went away (another suite restarted it).
s["disturbed_runs"] = [r["run"] for r in runs if r["rewatches"] or r["client_retries"]]
print(json.dumps(s))
PY
cp "$work/runs.json" "$out/awsauth.json"
