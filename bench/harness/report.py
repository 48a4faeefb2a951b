"""peerbench.py report RESULTS.json [EXTRA.json ...] [--no-docs]

EXTRA files add W4 + W2 tables (a run with another object count).

Plots (PNG next to the JSON, matplotlib when importable, else gnuplot when
installed, else none) and the section "Side by side with the peers" of
docs/performance.md, rebuilt from the JSON (everything from that heading to
the end of the file is replaced). A file RESULTS.notes.md, when present, is
included verbatim at the end of the section (the analysis written by hand).
"""
import json
import os
import shutil
import statistics
import subprocess
import sys

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HEADING = "## Side by side with the peers"
ORDER = ["crdkit", "controller-runtime", "kube-rs", "kopf"]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(xs, scale=1.0, nd=2, unit=""):
    """median (min-max) of a list; a single value alone."""
    xs = [x * scale for x in xs if x is not None]
    if not xs:
        return "n/a"
    m = statistics.median(xs)
    if len(xs) == 1:
        return f"{m:.{nd}f}{unit}"
    return f"{m:.{nd}f}{unit} ({min(xs):.{nd}f}-{max(xs):.{nd}f})"


def ratio(a, b, nd=2):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.{nd}f}x"


def ops_of(res):
    return [o for o in ORDER if o in res["config"]["ops"]]


def plots(res, base):
    made = []
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
    if plt is None:
        if shutil.which("gnuplot"):
            return gnuplot_plots(res, base)
        return made
    n = res["config"]["N"]
    if res.get("W1"):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for op in ops_of(res) + ["floor"]:
            runs = res["floor"]["W1"] if op == "floor" else res["W1"].get(op) or []
            if not runs:
                continue
            r = sorted(runs, key=lambda r: r.get("all_s") or 1e9)[len(runs) // 2]  # the median run
            c = r.get("curve") or []
            if not c:
                continue
            xs = [0.0] + [p[0] for p in c]
            ys = [0] + [p[1] for p in c]
            label = "floor (AWSAuth ADDED seen)" if op == "floor" else op
            ax.step(xs, ys, where="post", label=label, linestyle="--" if op == "floor" else "-")
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("seconds since the first create (symlog)")
        ax.set_ylabel(f"W1 objects in aws-auth (of {n})")
        ax.set_title("W1 burst: convergence of aws-auth (median run; each step is one ConfigMap write)")
        ax.grid(alpha=0.3)
        ax.legend()
        p = base + "-w1.png"
        fig.tight_layout()
        fig.savefig(p, dpi=100)
        plt.close(fig)
        made.append(p)
    if res.get("W3"):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        data, labels = [], []
        for op in ops_of(res):
            lat = [x * 1000 for r in res["W3"].get(op) or [] for x in r["lat"]]
            if lat:
                data.append(lat)
                labels.append(op)
        fl = [x * 1000 for r in res["floor"]["W3"] for x in r["chain"]]
        if fl:
            data.append(fl)
            labels.append("floor")
        ax.boxplot(data, whis=(1, 99), showfliers=True, flierprops={"markersize": 2})
        ax.set_xticks(range(1, len(labels) + 1), labels)
        ax.set_yscale("log")
        ax.set_ylabel("ms from the update to the ConfigMap event (log)")
        ax.set_title("W3 latency, all runs (box: quartiles, whiskers: p1-p99)")
        ax.grid(alpha=0.3, axis="y")
        p = base + "-w3.png"
        fig.tight_layout()
        fig.savefig(p, dpi=100)
        plt.close(fig)
        made.append(p)
    return made


def gnuplot_plots(res, base):  # only when matplotlib is missing
    made = []
    tmp = base + "-w1.dat"
    with open(tmp, "w") as f:
        for op in ops_of(res):
            runs = res["W1"].get(op) or []
            if runs:
                for t, c in runs[0].get("curve") or []:
                    f.write(f"{t} {c}\n")
            f.write("\n\n")
    script = (f"set terminal png size 800,450; set output '{base}-w1.png'; set logscale x; "
              "plot " + ", ".join(f"'{tmp}' index {i} with steps title '{op}'"
                                  for i, op in enumerate(ops_of(res))))
    if subprocess.run(["gnuplot", "-e", script]).returncode == 0:
        made.append(base + "-w1.png")
    return made


def gone(res, wl, op):
    """Why an operator has no figures: it failed (with the error) or was not run."""
    for f in res.get("failures") or []:
        if f["workload"] == wl and f["op"] == op:
            return "failed (see below)"
    return "not run"


def goal(ok):
    return "**met**" if ok else "**not met**"


def section(res, pngs, notes, extras=()):
    m = res["machine"]
    v = res["versions"]
    c = res["config"]
    ops = ops_of(res)
    L = [HEADING, ""]
    reduced = res.get("label") or ""
    L.append(f"Run of {m['date'][:10]}, commit {m['commit']}{' (with uncommitted changes)' if m.get('dirty') else ''}, "
             f"release build, on `{m['host']}`: {m['cores']} cores, {m['mem_kib'] // 1024} MiB, "
             f"{m.get('cpu', '?')}, {m.get('os', '?')}, kernel {m['kernel']}; kube-apiserver "
             f"{m.get('apiserver')} with embedded etcd (scripts/testenv) on the same machine, shared with "
             f"other engineers (load average at the start: {' '.join(m.get('loadavg_start', []))}). "
             f"Results: `bench/results/{os.path.basename(res['_file'])}`.")
    L.append("")
    L.append(f"Peers (bench/peers, pinned): controller-runtime {v.get('controller-runtime')} "
             f"(client-go {v.get('client-go')}, {v.get('go')}), kube-rs {v.get('kube-rs')} "
             f"({v.get('rustc')}), kopf {v.get('kopf')} ({v.get('kopf_python')}). The driver: "
             f"Python {v.get('python')}.")
    L.append("")
    if reduced:
        L.append(f"**Reduced run** ({reduced}). Configuration: RUNS={c['runs']} (W1, W3), "
                 f"RUNS_LONG={c['runs_long']} (W4+W2, W5), N={c['N']}, M={c['M']}, THREADS={c['threads']}, "
                 f"W2_SECONDS={c['w2s']}, W3_UPDATES={c['w3n']}, W5_SECONDS={c['w5s']}, W5_RATE={c['w5rate']}, "
                 f"W4_TIMEOUT={c['w4_timeout']}, W5_SETTLE={c['w5_settle']}. Figures with one run have no "
                 "min-max. The full run of the issue is `make bench-peers` with its defaults "
                 "(RUNS=3 for every workload, N=1000, M=10000, W2_SECONDS=60, W5_SECONDS=300; W5 alone is "
                 "about 9 minutes per operator and run, W4 up to W4_TIMEOUT=600 s each: roughly 3 to 5 hours "
                 "on this machine). This run was: `RUNS=%d RUNS_LONG=%d N=%d M=%d W2_SECONDS=%d W3_UPDATES=%d "
                 "W5_SECONDS=%d W5_SETTLE=%d W4_TIMEOUT=%d W1_TIMEOUT=%d make bench-peers` (the driver was "
                 "started as `bench/harness/run.sh` with `REPORT=0`, which is what the target runs; the report "
                 "was then made with `python3 bench/harness/peerbench.py report` on the results)." % (
                     c['runs'], c['runs_long'], c['N'], c['M'], c['w2s'], c['w3n'], c['w5s'], c['w5_settle'],
                     c['w4_timeout'], c['w1_timeout']))
        L.append("")
    L += [
        "How it is measured (bench/harness/peerbench.py): one operator at a time, every workload in a fresh "
        "namespace `perf-*` whose `aws-auth` ConfigMap is the target, removed afterwards. W1 and W3 go in "
        "rounds (the floor first, then each operator once, each round starting one operator later: "
        "crdkit, controller-runtime, kube-rs, kopf; then controller-runtime, kube-rs, kopf, crdkit; ...), "
        "so drift on the shared machine, and whatever one operator leaves behind for the next, spreads "
        "over all. CPU is utime+stime from `/proc/PID/stat`, memory VmRSS/VmHWM from "
        "`/proc/PID/status` (kopf: the Python process, `run.sh` execs it); times come from a watch of the "
        "ConfigMap (raw HTTPS with the admin certificate) taken by the driver, not from the operators. Before "
        "W1 and W5 each operator is started and one warm-up object must reach aws-auth, so W1 times the "
        "burst, not the start-up. crdkit runs with `--max-removals -1` (the peers have no such interlock) and "
        "its defaults otherwise (history, status conditions, drift repair: work the peers do not do). "
        "The floor is the same requests with no operator: W1 from the first create to the last ADDED on a "
        "watch of AWSAuth; W3 update the AWSAuth, see it on its watch, update a ConfigMap, see that on its "
        "watch (the least any operator must wait), plus the ConfigMap round trip alone; W4 a LIST of the M "
        "objects in pages of 500.",
        ""]

    # ---- W1
    fl = res["floor"]["W1"]
    f_all = med([r["all_s"] for r in fl])
    L += [f"### W1 burst: {c['N']} AWSAuth created at once", "",
          f"Creates from {c['threads']} connections at "
          f"{fmt([r['create_rate'] for op in ops for r in res['W1'].get(op) or []] + [r['create_rate'] for r in fl], nd=0)} "
          "objects/s (median (min-max) over all runs).", "",
          "| | all in aws-auth (s) | ratio to floor | after the last create (s) | ConfigMap writes | writes / objects "
          "| CPU (s) | peak RSS (MiB) |",
          "|---|---|---|---|---|---|---|---|"]
    for op in ops:
        rs = res["W1"].get(op) or []
        if not rs:
            L.append(f"| {op} | {gone(res, 'W1', op)} | | | | | | |")
            continue
        a = med([r["all_s"] for r in rs])
        miss = [r for r in rs if r["all_s"] is None]
        L.append(f"| {op} | {fmt([r['all_s'] for r in rs], nd=3)}{f' ({len(miss)} run(s) did not converge)' if miss else ''} "
                 f"| {ratio(a, f_all)} "
                 f"| {fmt([r['all_s'] - r['create_s'] for r in rs if r['all_s'] is not None], nd=3)} "
                 f"| {fmt([r['writes_to_converge'] for r in rs], nd=0)} "
                 f"| {fmt([100.0 * r['writes_to_converge'] / c['N'] for r in rs], nd=1, unit=' %')} "
                 f"| {fmt([r['cpu_s'] for r in rs])} | {fmt([r['hwm_kib'] for r in rs], 1 / 1024, 1)} |")
    L.append(f"| floor | {fmt([r['all_s'] for r in fl], nd=3)} | 1x "
             f"| {fmt([r['all_s'] - r['create_s'] for r in fl if r['all_s'] is not None], nd=3)} | | | | |")
    L += ["", "The time to all follows the pace of the creates, which differs between rounds; \"after the last "
          "create\" is the time from the last create's answer to the event that holds all objects. "
          "Writes are counted up to the event that holds all objects; CPU from the first create until the "
          "process is idle again (below 2% over 1 s); peak RSS is the process's VmHWM (start-up included).", ""]
    L += w2_table(res, ops, c)
    # ---- W3
    f3 = res["floor"]["W3"]
    f3p50 = med([r["p50"] for r in f3])
    f3cm = med([r["cm_rt_p50"] for r in f3])
    L += [f"### W3 latency: one AWSAuth updated {c['w3n']} times, one at a time", "",
          "| | p50 (ms) | p99 (ms) | p50 / floor chain | p50 / ConfigMap round trip | CPU (s) |", "|---|---|---|---|---|---|"]
    for op in ops:
        rs = res["W3"].get(op) or []
        if not rs:
            L.append(f"| {op} | {gone(res, 'W3', op)} | | | | |")
            continue
        p = med([r["p50"] for r in rs])
        to = sum(r["timeouts"] for r in rs)
        L.append(f"| {op} | {fmt([r['p50'] for r in rs], 1000, 1)} | {fmt([r['p99'] for r in rs], 1000, 1)}"
                 f"{f' ({to} updates not seen in 30 s)' if to else ''} | {ratio(p, f3p50)} | {ratio(p, f3cm)} "
                 f"| {fmt([r['cpu_s'] for r in rs])} |")
    L.append(f"| floor chain | {fmt([r['p50'] for r in f3], 1000, 1)} | {fmt([r['p99'] for r in f3], 1000, 1)} | 1x | | |")
    L.append(f"| floor: ConfigMap round trip | {fmt([r['cm_rt_p50'] for r in f3], 1000, 1)} | | | 1x | |")
    L += ["", "Medians (min-max) over the runs of each run's p50 and p99.", ""]
    L += w4_table(res, ops, c)
    # ---- W5
    L += [f"### W5 churn: {c['w5s']} s of create/update/delete at {c['w5rate']}/s, apiserver restarted half-way", "",
          "The same seeded sequence for every operator (40% creates, 40% updates, some switching roles and "
          "users or adding a second ARN, 20% deletes). Requests that fail while the apiserver is down are "
          "retried, so the operations pause during the restart and then catch up. Exact: aws-auth holds "
          "exactly the entries of the objects left, and every deleted object is gone (finalizer removed); "
          "lag: from the last operation until a watch of aws-auth (opened after the restart) delivers the write "
          "after which it holds exactly the entries of the objects left; the driver also polls aws-auth every 0.1 s "
          f"(at most {c['w5_settle']} s) to know it is done, and that poll's figure is given where no watch "
          "figure exists (older runs) and beside it.", "",
          *from_note(res, "w5_from", "These W5 figures"),
          "| | exact | lag (s) | lag by the poll (s) | CPU (s) | peak RSS (MiB) | restart took (s) | achieved rate (ops/s) |",
          "|---|---|---|---|---|---|---|---|"]
    for op in ops:
        rs = res["W5"].get(op) or []
        if not rs:
            L.append(f"| {op} | {gone(res, 'W5', op)} | | | | | | |")
            continue
        def exact(r):
            if r["exact"]:
                return "yes"
            if r.get("cm_exact"):  # aws-auth right; deleted objects still held by their finalizer
                return f"no (aws-auth exact; at {c['w5_settle']} s {r['deleted_objects_left']} deleted objects still there)"
            me = r['missing_extra_at_timeout'] or ['?', '?']
            return (f"no (at {c['w5_settle']} s: {me[0]} entries missing, {me[1]} extra, "
                    f"{r['deleted_objects_left']} deleted objects still there)")
        ex = ", ".join(exact(r) for r in rs)
        L.append(f"| {op_cell(res, 'W5', op)} | {ex} | {fmt([r['lag_s'] for r in rs], nd=3)} "
                 f"| {fmt([r.get('lag_poll_s', r['lag_s']) for r in rs], nd=2)} | {fmt([r['cpu_s'] for r in rs])} "
                 f"| {fmt([r['hwm_kib'] for r in rs], 1 / 1024, 1)} | {fmt([r['restart'].get('seconds') for r in rs], nd=1)} "
                 f"| {fmt([r['achieved_rate'] for r in rs], nd=1)} |")
    L += ["", *op_from_note(res, "W5"), "Floor for W5: not measured separately (the lag floor is one watch delivery plus one ConfigMap "
          "round trip, the W3 floor).", ""]
    for ex in extras:
        ec = ex["config"]
        L += [f"### Extra run: W4 + W2 with {ec['M']} objects", "",
              f"`bench/results/{os.path.basename(ex['_file'])}` ({ex.get('label') or ''}; commit "
              f"{ex['machine']['commit']}, {ex['machine']['date']}), RUNS_LONG={ec['runs_long']}, "
              f"W2_SECONDS={ec['w2s']}, W4_TIMEOUT={ec['w4_timeout']}.", ""]
        L += w4_table(ex, ops_of(ex), ec, f" (extra run, M={ec['M']})")
        L += w2_table(ex, ops_of(ex), ec, f" (extra run, M={ec['M']})")
    if res.get("failures"):
        L += ["Failures during the run" + (" (W5's are of this run's own W5, replaced above)" if res.get("w5_from") else "")
              + ": " + "; ".join(f"{f['workload']} {f['op']} run {f['run']}: {f['error']}"
                                                   for f in res["failures"]), ""]
    # ---- goals
    L += ["### Goals", "", "| goal | result |", "|---|---|"]
    L += goals(res, ops)
    L.append("")
    for p in pngs:
        L.append(f"![{os.path.basename(p)}](../{os.path.relpath(p, TOP)})")
        L.append("")
    if notes:
        L += [notes.rstrip(), ""]
    return "\n".join(L)


def w2_state(rs):
    out = []
    for r in rs:
        busy = (r["cpu_s"] or 0) / r["seconds"]
        if not r["converged"]:
            out.append("aws-auth not written (see W4)" + (", idle" if busy < 0.05 else f", busy ({100 * busy:.0f}% of a core)"))
        elif busy < 0.05:
            out.append("converged, idle")
        else:
            out.append(f"converged but NOT idle: still reconciling ({100 * busy:.0f}% of a core)")
    return "; ".join(out)


def measured(rows):
    """The rounds that ran to the end (not stopped for the apiserver's memory)."""
    return [r for r in rows or [] if not r.get("stopped")]


def stopped(rows):
    return "; ".join(r["stopped"] for r in rows or [] if r.get("stopped"))


def peaks(r):
    """{"apiserver", "etcd", "total"} peak RSS of one record (KiB; runs
    before etcd was measured hold the apiserver's alone)."""
    p = r.get("control_plane_peak_kib")
    if p is None and r.get("apiserver_peak_kib") is not None:
        p = {"apiserver": r["apiserver_peak_kib"]}
    return p or {}


def base_total(r4):
    """The control plane's peak RSS while a W4 round created its objects
    (KiB; the apiserver's alone in runs before etcd was measured)."""
    b = r4.get("control_plane_base_kib")
    return b.get("total") if isinstance(b, dict) else r4.get("apiserver_base_kib")


def control_plane_peak(res, op, r4):
    """The control plane's peak RSS over a W4 round and the W2 after it:
    "total (apiserver + etcd)" in MiB, or the apiserver's alone."""
    recs = [r4] + [r2 for r2 in res["W2"].get(op) or [] if r2["run"] == r4["run"]]
    top = {}
    for r in recs:
        for k, v in peaks(r).items():
            if v is not None:
                top[k] = max(top.get(k, 0), v)
    if "total" in top:
        return f"{top['total'] / 1024:.0f} ({top.get('apiserver', 0) / 1024:.0f} + {top.get('etcd', 0) / 1024:.0f})"
    if "apiserver" in top:
        return f"{top['apiserver'] / 1024:.0f} (apiserver only)"
    return "n/a"


def from_note(res, key, what):
    """The lines saying where figures merged in from another run come from."""
    f = res.get(key)
    if not f:
        return []
    return [f"{what} come from `bench/results/{os.path.basename(f['file'])}` (commit {f['commit']}, "
            f"{f['date']}), another run: {f['why']}", ""]


def carried(res, wl, op):
    """Where an operator's row of workload wl comes from when another run than the table's, else None."""
    return (res.get("op_from") or {}).get(wl, {}).get(op)


def op_cell(res, wl, op):
    """An operator's name in a table, marked when its row is carried from another run."""
    f = carried(res, wl, op)
    return f"{op} (run of commit {f['commit']})" if f else op


def own_floor(res, op, fl4):
    """W4's floor for an operator's ratio: that of the run its row comes from, when carried."""
    f = carried(res, "W4", op)
    return med([r["list_s"] for r in f["floor_W4"]]) if f and f.get("floor_W4") else fl4


def op_from_note(res, wl):
    """The lines saying which rows of a table come from another run, and why."""
    by = {}
    for op, f in ((res.get("op_from") or {}).get(wl) or {}).items():
        by.setdefault((f["file"], f["commit"], f["date"], f["why"]), []).append(op)
    floor = " (their ratios to the floor: to that run's floor)" if wl == "W4" else ""
    return [f"The rows of {' and '.join(ops)} come from `bench/results/{os.path.basename(fl)}` (commit {cm}, "
            f"{dt}), an earlier run{floor}: {why}" for (fl, cm, dt, why), ops in by.items()] + ([""] if by else [])


def w2_table(res, ops, c, title=''):
    L = []
    f4 = res['floor']['W4']
    L += [f"### W2 idle: {c['M']} AWSAuth cached{title}", "",
          *([] if title else from_note(res, "w4_from", "These W2 figures (as W4's)")),
          f"Measured right after W4 (converged or timed out) and the operator idle (below 2% CPU over 1 s, at most 60 s), over {c['w2s']} s. For scale: the {c['M']} objects are "
          f"{fmt([r['compact_json_bytes'] for r in f4], 1 / 1048576, 1, ' MiB')} of compact JSON as the apiserver returns them.", "",
          "| | RSS (MiB) | ratio to crdkit | CPU over the window (s) | ConfigMap writes | state during the window |",
          "|---|---|---|---|---|---|"]
    crss = med([r["rss_kib"] for r in measured(res["W2"].get("crdkit"))])
    for op in ops:
        rs = measured(res["W2"].get(op))
        why = stopped(res["W2"].get(op))
        if not rs:
            L.append(f"| {op} | {why or gone(res, 'W4', op)} | | | | |")
            continue
        L.append(f"| {op_cell(res, 'W4', op)} | {fmt([r['rss_kib'] for r in rs], 1 / 1024, 1)} | {ratio(med([r['rss_kib'] for r in rs]), crss)} "
                 f"| {fmt([r['cpu_s'] for r in rs])} | {fmt([r['writes'] for r in rs], nd=0)} "
                 f"| {w2_state(rs)}{'; ' + why if why else ''} |")
    L.append("")
    L += [] if title else op_from_note(res, "W4")
    return L


def w4_table(res, ops, c, title=''):
    L = []
    f4 = res['floor']['W4']
    # ---- W4
    fl4 = med([r["list_s"] for r in f4])
    L += [f"### W4 start-up: {c['M']} existing AWSAuth{title}", "",
          "From process start. \"Synced\" is what the operator says: crdkit's `/readyz` (200 once its caches "
          "are synced), controller-runtime's `Starting workers` log line (after its cache sync); kube-rs "
          "and kopf expose nothing comparable (n/a)."
          + ("" if not any(r.get("apiserver_restart") for rs in res["W4"].values() for r in rs) else
             " Each round starts on a freshly restarted apiserver. The control plane's peak RSS from the "
             "operator's start to the end of W2, per round, is the load the operator puts on it: apiserver "
             "+ etcd (runs before etcd was measured: the apiserver alone). Before the operator, creating "
             "the objects: "
             f"{fmt([base_total(r) for rs in res['W4'].values() for r in rs], 1 / 1024, 0, ' MiB')}."),
          "", *([] if title else from_note(res, "w4_from", "These W4 figures")),
          "| | synced (s) | first write (s) | all in aws-auth (s) | ratio to floor (all) | writes | CPU until then (s) "
          "| control plane peak RSS, W4+W2 (MiB) |",
          "|---|---|---|---|---|---|---|---|"]
    for op in ops:
        rs = res["W4"].get(op) or []
        if not rs:
            L.append(f"| {op} | {gone(res, 'W4', op)} | | | | | | |")
            continue
        a = med([r["all_s"] for r in rs])
        nc = [r for r in rs if r["all_s"] is None and not r.get("stopped")]
        why = stopped(rs)
        L.append(f"| {op_cell(res, 'W4', op)} | {fmt([r['synced_s'] for r in rs], nd=3)} | {fmt([r['first_write_s'] for r in rs], nd=3)} "
                 f"| {fmt([r['all_s'] for r in rs], nd=3)}"
                 f"{'' if not nc else ' (not converged in %d s: %s of %d)' % (c['w4_timeout'], ', '.join(str(r['reached']) for r in nc), c['M'])}"
                 f"{' (' + why + ')' if why else ''} "
                 f"| {ratio(a, own_floor(res, op, fl4))} | {fmt([r['writes'] for r in rs], nd=0)} | {fmt([r['cpu_to_converge_s'] for r in rs])} "
                 f"| {'; '.join(control_plane_peak(res, op, r) for r in rs)} |")
    L.append(f"| floor (LIST, pages of 500) | | | {fmt([r['list_s'] for r in f4], nd=3)} | 1x | | | |")
    L.append("")
    L += [] if title else op_from_note(res, "W4")
    return L


def goals(res, ops):
    res = dict(res, W2={op: measured(rs) for op, rs in res["W2"].items()})
    c = res["config"]
    out = []
    peers = [o for o in ops if o != "crdkit"]

    def best(metric, rows, lower=True):
        vals = {op: metric(rows.get(op) or []) for op in ops}
        vals = {k: v for k, v in vals.items() if v is not None}
        if "crdkit" not in vals:
            return False, vals
        b = min(vals.values()) if lower else max(vals.values())
        return vals["crdkit"] == b, vals

    def show(vals, scale=1.0, unit="", nd=3):
        return ", ".join(f"{k} {v * scale:.{nd}f}{unit}" for k, v in sorted(vals.items(), key=lambda kv: kv[1]))

    checks = [
        ("W1 time to all", lambda rs: med([r["all_s"] for r in rs]) if rs and all(r["all_s"] for r in rs) else None, res["W1"], 1, " s", 3),
        ("W1 after the last create", lambda rs: med([r["all_s"] - r["create_s"] for r in rs])
         if rs and all(r["all_s"] is not None for r in rs) else None, res["W1"], 1, " s", 3),
        ("W1 CPU", lambda rs: med([r["cpu_s"] for r in rs]) if rs else None, res["W1"], 1, " s", 2),
        ("W1 ConfigMap writes", lambda rs: med([r["writes_to_converge"] for r in rs]) if rs else None, res["W1"], 1, "", 0),
        ("W1 peak RSS", lambda rs: med([r["hwm_kib"] for r in rs]) if rs else None, res["W1"], 1 / 1024, " MiB", 1),
        ("W2 RSS", lambda rs: med([r["rss_kib"] for r in rs]) if rs else None, res["W2"], 1 / 1024, " MiB", 1),
        ("W2 idle CPU", lambda rs: med([r["cpu_s"] for r in rs]) if rs else None, res["W2"], 1, " s", 2),
        ("W3 p50", lambda rs: med([r["p50"] for r in rs]) if rs else None, res["W3"], 1000, " ms", 1),
        ("W3 p99", lambda rs: med([r["p99"] for r in rs]) if rs else None, res["W3"], 1000, " ms", 1),
        ("W4 time to all", lambda rs: med([r["all_s"] for r in rs]) if rs and all(r["all_s"] for r in rs) else None, res["W4"], 1, " s", 3),
        ("W4 first write", lambda rs: med([r["first_write_s"] for r in rs]) if rs else None, res["W4"], 1, " s", 3),
        ("W5 lag", lambda rs: med([r["lag_s"] for r in rs]) if rs and all(r["exact"] for r in rs) else None, res["W5"], 1, " s", 3),
        ("W5 CPU", lambda rs: med([r["cpu_s"] for r in rs]) if rs and all(r["exact"] for r in rs) else None, res["W5"], 1, " s", 1),
    ]
    allbest = True
    lines = []
    for name, fn, rows, sc, unit, nd in checks:
        ok, vals = best(fn, rows)
        allbest &= ok
        lines.append(f"{name}: {'crdkit best' if ok else 'crdkit NOT best'} ({show(vals, sc, unit, nd)})")
    out.append(f"| best of all on every workload (lower is better; an operator that did not converge is left out) | "
               f"{goal(allbest)}: " + "; ".join(lines) + " |")
    for label, rows, key in (("W2 RSS", res["W2"], "rss_kib"), ("W1 peak RSS", res["W1"], "hwm_kib"),
                             ("W5 peak RSS", res.get("W5") or {}, "hwm_kib")):
        cr = med([r[key] for r in rows.get("crdkit") or []])
        pv = {op: med([r[key] for r in rows.get(op) or []]) for op in peers}
        pv = {k: v for k, v in pv.items() if v is not None}
        if cr is not None and pv:
            bp = min(pv, key=pv.get)
            note = ""
            if label.startswith("W2"):
                st = {op: w2_state(rows.get(op) or []) for op in ["crdkit", bp]}
                note = f" (states: crdkit {st['crdkit']}; {bp} {st[bp]})"
            out.append(f"| {label} at most a quarter of the best peer's | {goal(cr <= pv[bp] / 4)}: crdkit "
                       f"{cr / 1024:.1f} MiB, best peer {bp} {pv[bp] / 1024:.1f} MiB (ratio {cr / pv[bp]:.2f}){note} |")
    w1 = res["W1"].get("crdkit") or []
    f1 = med([r["all_s"] for r in res["floor"]["W1"]])
    a1 = med([r["all_s"] for r in w1])
    if a1 and f1:
        out.append(f"| W1 within 1.2x of the floor | {goal(a1 <= 1.2 * f1)}: {a1:.3f} s vs floor {f1:.3f} s "
                   f"({a1 / f1:.2f}x) |")
    if w1:
        wr = med([r["writes_to_converge"] for r in w1])
        out.append(f"| W1 ConfigMap writes at most 5% of the objects | {goal(wr <= 0.05 * c['N'])}: {wr:.0f} writes "
                   f"for {c['N']} objects ({100 * wr / c['N']:.1f} %) |")
    p = med([r["p50"] for r in res["W3"].get("crdkit") or []])
    fch = med([r["p50"] for r in res["floor"]["W3"]])
    fcm = med([r["cm_rt_p50"] for r in res["floor"]["W3"]])
    if p and fch:
        out.append(f"| W3 p50 within 2x of the floor round trip | {goal(p <= 2 * fch)} against the floor chain "
                   f"(AWSAuth update seen + ConfigMap update seen): {p * 1000:.1f} ms vs {fch * 1000:.1f} ms "
                   f"({p / fch:.2f}x); against the ConfigMap round trip alone ({fcm * 1000:.1f} ms): "
                   f"{p / fcm:.2f}x, {'within' if p <= 2 * fcm else 'not within'} 2x |")
    return out


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    path = argv[0]
    res = json.load(open(path))
    res["_file"] = path
    base = os.path.splitext(path)[0]
    pngs = plots(res, base)
    notes_path = base + ".notes.md"
    notes = open(notes_path).read() if os.path.exists(notes_path) else ""
    extras = []
    for x in argv[1:]:
        if x.endswith(".json"):
            e = json.load(open(x))
            e["_file"] = x
            extras.append(e)
    text = section(res, pngs, notes, extras)
    if "--no-docs" in argv:
        print(text)
        return 0
    doc = os.path.join(TOP, "docs/performance.md")
    cur = open(doc).read()
    i = cur.find("\n" + HEADING)
    head = cur if i < 0 else cur[:i + 1]
    with open(doc, "w") as f:
        f.write(head.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n")
    print(f"wrote {doc}" + (f" and {', '.join(pngs)}" if pngs else " (no plots: neither matplotlib nor gnuplot)"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
