#!/usr/bin/env python3
"""Side-by-side benchmark of crdkit's aws-auth operator and its peers
(bench/peers: controller-runtime, kube-rs, kopf) on one real apiserver.

  peerbench.py run      run the workloads, write bench/results/DATE-HOST.json
  peerbench.py report   FILE.json: plots + the section of docs/performance.md

Workloads (every one in a fresh namespace perf-*, cleaned up after):
  W1 burst    N AWSAuth created from THREADS connections: time from the first
              create until aws-auth holds all N (seen on a watch of it), the
              ConfigMap writes (watch events), CPU seconds, peak RSS
  W3 latency  one AWSAuth updated W3_UPDATES times, one at a time: time from
              sending the update to the ConfigMap event that carries it
  W4 start-up M existing AWSAuth: process start -> synced (where the operator
              says so), -> first write, -> all M in the ConfigMap
  W2 idle     right after W4 converged (the M objects cached): RSS, CPU over
              W2_SECONDS
  W5 churn    W5_SECONDS of random create/update/delete at W5_RATE per second,
              the apiserver restarted half-way (CRDKIT_TEST_CONTROL): final
              state exact or not, lag from the last operation to exact
  floor       the same requests with no operator: W1 first create -> last
              ADDED on a watch of AWSAuth; W3 update AWSAuth -> seen on its
              watch -> update the ConfigMap -> seen on its watch; W4 a paginated
              LIST of the M objects.
Measured from outside: /proc/PID/stat utime+stime, /proc/PID/status
VmHWM/VmRSS, a raw HTTPS watch of the ConfigMap with the admin certificate.

Environment: OPS (default "crdkit controller-runtime kube-rs kopf"), RUNS (3;
W1 and W3), RUNS_LONG (RUNS; W4+W2 and W5), N (1000), M (10000), THREADS (8),
W2_SECONDS (60), W3_UPDATES (200), W5_SECONDS (300), W5_RATE (50),
W1_TIMEOUT (300), W4_TIMEOUT (600), W5_SETTLE (180), WORKLOADS (default
"W1 W3 W4 W5"), LABEL (free text stored with the results),
CONTROL_PLANE_MAX_MIB (half the machine's memory).
The control plane: the apiserver is restarted before every W4+W2 (etcd
keeps its data); the RSS of the apiserver and of etcd is sampled during
W4+W2 (their peaks are the load the operator puts on them); once the two
pass CONTROL_PLANE_MAX_MIB the operator is stopped and W4/W2 recorded as
stopped, so one peer cannot take the machine, and the rest of the run,
down with it. Before every job etcd is compacted and defragmented (POST
/defrag): a job starts from the same small database whatever the jobs
before it wrote, and minutes of 200-KB ConfigMap writes cannot fill
etcd's quota ("mvcc: database space exceeded") for the jobs after.
Namespaces left by an earlier run that was killed (perf-*, its driver
gone) are removed first, finalizers and all; operators get SIGTERM when
the driver dies (setpriv --pdeathsig), so none outlives it.
Diagnostics: CRDKIT_BENCH_BIN (another crdkit binary, e.g. a baseline build),
CRDKIT_ARGS (extra flags), PERF_RECORD=PREFIX (perf record crdkit;
PERF_CALLGRAPH: fp, the default, or dwarf), MALLINFO=PREFIX (preload
bench/harness/mallinfo_probe.c into crdkit: PREFIX.<pid> gets RSS and
glibc's heap figures at each new RSS high; needs cc).
"""
import base64
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GROUP, VERSION = "crdkit.io", "v1alpha1"
ACCOUNT = "111122223333"
CM = "aws-auth"
OPS_ALL = ["crdkit", "controller-runtime", "kube-rs", "kopf"]
CLK = os.sysconf("SC_CLK_TCK")


def env_int(name, default):
    return int(os.environ.get(name, default))


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- a minimal Kubernetes REST client -----------------------------------------

class Kube:
    def __init__(self, kubectl):
        cfg = json.loads(subprocess.check_output(
            [kubectl, "config", "view", "--raw", "--minify", "-o", "json"]))
        cluster = cfg["clusters"][0]["cluster"]
        user = cfg["users"][0]["user"]
        url = urllib.parse.urlparse(cluster["server"])
        self.host, self.port = url.hostname, url.port or 443
        self.tmp = tempfile.mkdtemp(prefix="peerbench-")
        ctx = ssl.create_default_context()
        if cluster.get("certificate-authority-data"):
            ctx.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        elif cluster.get("certificate-authority"):
            ctx.load_verify_locations(cafile=cluster["certificate-authority"])
        self.headers = {"Accept": "application/json"}
        if user.get("client-certificate-data"):
            cert, key = os.path.join(self.tmp, "c.pem"), os.path.join(self.tmp, "k.pem")
            for path, field in ((cert, "client-certificate-data"), (key, "client-key-data")):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(base64.b64decode(user[field]))
            ctx.load_cert_chain(cert, key)
        elif user.get("client-certificate"):
            ctx.load_cert_chain(user["client-certificate"], user.get("client-key"))
        if user.get("token"):
            self.headers["Authorization"] = "Bearer " + user["token"]
        self.ctx = ctx
        self.local = threading.local()

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _conn(self, fresh=False):
        c = getattr(self.local, "c", None)
        if c is None or fresh:
            if c is not None:
                c.close()
            c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
            self.local.c = c
        return c

    def request(self, method, path, body=None, ctype="application/json", raw=False):
        data = json.dumps(body).encode() if body is not None else None
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = ctype
        # A 429 (a CRD just installed is not served yet, or the apiserver's
        # flow control) is retried as its Retry-After says, for up to ~5 s.
        for busy in range(10):
            for attempt in (0, 1):
                c = self._conn(fresh=attempt > 0)
                try:
                    c.request(method, path, body=data, headers=headers)
                    r = c.getresponse()
                    payload = r.read()
                    break
                except (http.client.HTTPException, OSError):
                    if attempt:
                        raise
            if r.status != 429 or busy == 9:
                break
            try:
                wait = float(r.getheader("Retry-After") or 0.5)
            except ValueError:
                wait = 0.5
            time.sleep(min(max(wait, 0.1), 1.0))
        if raw:
            return r.status, payload
        try:
            return r.status, (json.loads(payload) if payload else None)
        except ValueError:
            return r.status, {"raw": payload[:300].decode(errors="replace")}

    def must(self, method, path, body=None, ok=(200, 201), ctype="application/json"):
        st, b = self.request(method, path, body, ctype)
        if st not in ok:
            raise RuntimeError(f"{method} {path}: HTTP {st}: {(b or {}).get('message', b)}")
        return b

    def stream(self, path, timeout=900):
        """(connection, response) of a watch; read lines from the response."""
        c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)
        c.request("GET", path, headers=self.headers)
        r = c.getresponse()
        if r.status != 200:
            raise RuntimeError(f"watch {path}: HTTP {r.status}")
        return c, r


def aa_path(ns, name=None):
    p = f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/awsauths"
    return p + "/" + name if name else p


def cm_path(ns, name=None):
    p = f"/api/v1/namespaces/{ns}/configmaps"
    return p + "/" + name if name else p


def role_obj(name, username=None, groups=None, kind="mapRoles", arns=None):
    key = "rolearn" if kind == "mapRoles" else "userarn"
    seg = "role" if kind == "mapRoles" else "user"
    arns = arns or [f"arn:aws:iam::{ACCOUNT}:{seg}/{name}"]
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AWSAuth", "metadata": {"name": name},
            "spec": {kind: [{key: a, "username": username or ("u-" + name),
                             "groups": list(groups if groups is not None else ["g-bench"])} for a in arns]}}


# ---- watches ----------------------------------------------------------------

class Watch(threading.Thread):
    """Watches a collection (optionally one name) from the list's
    resourceVersion; each event is summarised by `summary(obj)` and kept as
    (monotonic time, type, resourceVersion, summary)."""

    def __init__(self, kube, path, summary, name=None):
        super().__init__(daemon=True)
        self.kube, self.path, self.summary = kube, path, summary
        self.sel = ("fieldSelector=" + urllib.parse.quote(f"metadata.name={name}")) if name else ""
        st, lst = kube.request("GET", path + ("?" + self.sel if self.sel else ""))
        if st != 200:
            raise RuntimeError(f"list {path}: {st}")
        self.rv = lst["metadata"]["resourceVersion"]
        self.t_list = time.monotonic()
        self.initial = [summary(o) for o in lst.get("items") or []]
        self.events = []
        self.cond = threading.Condition()
        self.stop = False
        self.conn = None
        self.error = None

    def run(self):
        q = f"{self.path}?watch=1&allowWatchBookmarks=false&resourceVersion={self.rv}&timeoutSeconds=1800"
        if self.sel:
            q += "&" + self.sel
        try:
            self.conn, r = self.kube.stream(q)
            while not self.stop:
                line = r.readline()
                if not line:
                    if not self.stop:
                        self.error = "the stream ended"
                    break
                t = time.monotonic()
                ev = json.loads(line)
                if ev["type"] == "ERROR":
                    self.error = str(ev.get("object"))
                    break
                o = ev["object"]
                s = self.summary(o)
                with self.cond:
                    self.events.append((t, ev["type"], o["metadata"].get("resourceVersion"), s))
                    self.cond.notify_all()
        except Exception as e:  # noqa: BLE001
            if not self.stop:
                self.error = repr(e)
        with self.cond:
            self.stop = True
            self.cond.notify_all()

    def wait_for(self, pred, start=0, timeout=60.0):
        """First event index >= start whose (type, summary) satisfies pred; None on timeout."""
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.events):
                    if pred(self.events[i]):
                        return i
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.stop:
                    return None
                self.cond.wait(left)

    def close(self):
        self.stop = True
        try:
            if self.conn:
                self.conn.sock.shutdown(socket.SHUT_RDWR)
        except Exception:  # noqa: BLE001
            pass


def cm_text(o):
    d = o.get("data") or {}
    return (d.get("mapRoles") or "") + "\n" + (d.get("mapUsers") or "")


# ---- ConfigMap parsing (the block lists all three YAML emitters produce) ------

def _scalar(s):
    s = s.strip()
    if s.startswith('"'):
        try:
            return json.loads(s)
        except ValueError:
            return s.strip('"')
    if s.startswith("'"):
        return s[1:-1].replace("''", "'")
    return s


def parse_entries(text):
    """[{key: value or list}] from a YAML block list of flat mappings."""
    if text is None or text.strip() in ("", "[]"):
        return []
    items, cur, key, item_ind = [], None, None, None
    for line in text.splitlines():
        if not line.strip():
            continue
        ind = len(line) - len(line.lstrip(" "))
        s = line.strip()
        if s.startswith("-") and (item_ind is None or ind == item_ind):
            item_ind = ind
            cur = {}
            items.append(cur)
            s = s[1:].strip()
            if not s:
                continue
            ind = ind + 2
        elif s.startswith("- ") and cur is not None and key is not None:
            if not isinstance(cur.get(key), list):
                cur[key] = []
            cur[key].append(_scalar(s[2:]))
            continue
        if ":" in s and cur is not None:
            k, v = s.split(":", 1)
            key = k.strip()
            v = v.strip()
            cur[key] = [] if v in ("", "[]") else _scalar(v)
    return items


def watch_lag(cw, want, t_end, t_exact):
    """Seconds from t_end until the ConfigMap watch `cw` (summaries are the
    data) delivered the write after which aws-auth held exactly `want`: the
    first state of the last run of exact states seen up to the poll that
    found it exact (plus 1 s, as the poll may win the race). 0 when it was
    exact before t_end; None without a usable watch or exact state."""
    if cw is None or t_exact is None or cw.error:
        return None
    with cw.cond:
        evs = [(e[0], e[3]) for e in cw.events if e[1] in ("ADDED", "MODIFIED")]
    states = [(cw.t_list, d) for d in cw.initial[-1:]] + evs
    first = None
    for t, d in reversed(states):
        if t > t_exact + 1.0:
            continue
        if cm_entry_set(d) != want:
            break
        first = t
    return None if first is None else max(0.0, first - t_end)


def cm_entry_set(data):
    out = set()
    for key, arnkey in (("mapRoles", "rolearn"), ("mapUsers", "userarn")):
        for it in parse_entries((data or {}).get(key)):
            g = it.get("groups") or []
            out.add((key, str(it.get(arnkey)), str(it.get("username") or ""),
                     tuple(str(x) for x in (g if isinstance(g, list) else [g]))))
    return out


# ---- processes -----------------------------------------------------------------

def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fs = f.read().rsplit(")", 1)[1].split()
        return (int(fs[11]) + int(fs[12])) / CLK
    except OSError:
        return None


def proc_mem(pid):
    """(VmRSS, VmHWM) in KiB."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return out.get("VmRSS"), out.get("VmHWM")


def mem_detail(pid):
    """RssAnon/RssFile/VmData... from /proc/PID/status (KiB)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k = line.split(":")[0]
                if k in ("RssAnon", "RssFile", "RssShmem", "VmData", "Threads"):
                    out[k] = int(line.split()[1])
    except OSError:
        pass
    return out


def control_plane_pids(cluster_dir):
    """{"apiserver": pid, "etcd": pid} of the test control plane: etcd runs
    inside `testcluster up --dir DIR`, the apiserver is its child
    `testcluster apiserver ... DIR ...`."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[0].endswith(b"testcluster") and any(cluster_dir.encode() in a for a in argv):
            if argv[1] == b"apiserver":
                out["apiserver"] = int(d)
            elif argv[1] == b"up":
                out["etcd"] = int(d)
    return out


class ControlPlaneMeter:
    """Samples the RSS of the test apiserver and of etcd every 0.25 s while
    a workload runs: their peaks are the load an operator puts on the
    control plane, and once the two together pass `limit_kib` `over` is
    set, so the workload stops before the machine runs out of memory (an
    operator that reads a 1 MB ConfigMap from 10,000 reconciles at once
    takes both to gigabytes; with no swap the machine then thrashes until
    the OOM killer ends etcd). Does nothing without a local testenv
    (cluster_dir None)."""

    def __init__(self, cluster_dir, limit_kib):
        self.dir, self.limit = cluster_dir, limit_kib
        self.peak = {}
        self.over = threading.Event()
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        if cluster_dir:
            self.t.start()

    def _run(self):
        pids = {}
        while not self.stop_ev.is_set():
            if len(pids) < 2 or not all(os.path.exists(f"/proc/{p}") for p in pids.values()):
                pids = control_plane_pids(self.dir)
            rss = {k: proc_mem(p)[0] for k, p in pids.items()}
            rss = {k: v for k, v in rss.items() if v}
            if rss:
                rss["total"] = sum(rss.values())
                for k, v in rss.items():
                    self.peak[k] = max(self.peak.get(k, 0), v)
                if rss["total"] > self.limit:
                    self.over.set()
            self.stop_ev.wait(0.25)

    def take(self):
        """The peaks since the last take (KiB): {"apiserver", "etcd", "total"}
        (each None when not measured)."""
        p, self.peak = self.peak, {}
        return {k: p.get(k) for k in ("apiserver", "etcd", "total")}

    def close(self):
        self.stop_ev.set()
        if self.t.is_alive():
            self.t.join()


def mallinfo_probe():
    """bench/harness/mallinfo_probe.c built once into a preloadable library."""
    src = os.path.join(TOP, "bench/harness/mallinfo_probe.c")
    so = os.path.join(tempfile.gettempdir(), f"crdkit-mallinfo-probe-{os.getuid()}.so")
    if not os.path.exists(so) or os.path.getmtime(so) < os.path.getmtime(src):
        subprocess.run([os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", "-o", so, src, "-lpthread"],
                       check=True)
    return so


class Operator:
    def __init__(self, op, ns, logdir, kubeconfig):
        self.op, self.ns = op, ns
        self.logpath = os.path.join(logdir, f"{op}-{ns}.log")
        env = dict(os.environ, KUBECONFIG=kubeconfig, WATCH_NAMESPACE=ns,
                   CONFIGMAP_NAMESPACE=ns, CONFIGMAP_NAME=CM, HEALTH_PORT="0", METRICS_PORT="0")
        if op == "crdkit":
            binary = os.environ.get("CRDKIT_BENCH_BIN") or os.path.join(TOP, "build/release/cmd/crdkit/crdkit")
            cmd = [binary, "aws-auth", "run",
                   "--namespace", ns, "--configmap", f"{ns}/{CM}", "--max-removals", "-1",
                   "--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0"]
            cmd += os.environ.get("CRDKIT_ARGS", "").split()  # diagnostics only, e.g. --history 0
            if os.environ.get("PERF_RECORD"):  # diagnostics: a CPU profile of crdkit
                cmd = ["perf", "record", "--call-graph", os.environ.get("PERF_CALLGRAPH", "fp"), "-F", "999",
                       "-o", os.environ["PERF_RECORD"] + f".{ns}", "--"] + cmd
            if os.environ.get("MALLINFO"):  # diagnostics: live and free heap at the RSS peak
                env["LD_PRELOAD"] = mallinfo_probe()
                env["MALLINFO_PROBE_OUT"] = os.environ["MALLINFO"]
        elif op == "kopf":
            cmd = [os.path.join(TOP, "bench/peers/kopf/run.sh")]  # exec's kopf: same pid
        else:
            cmd = [os.path.join(TOP, "build/peers/bin", op)]
        # If the driver dies (even by SIGKILL), the operator gets SIGTERM:
        # one left running would load every later run. setpriv execs the
        # command (same pid); the driver starts operators from its main
        # thread, whose end is what the kernel watches.
        if shutil.which("setpriv"):
            cmd = ["setpriv", "--pdeathsig", "TERM", "--"] + cmd
        self.logf = open(self.logpath, "w")
        self.t_start = time.monotonic()
        self.p = subprocess.Popen(cmd, env=env, stdout=self.logf, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def cpu(self):
        return proc_cpu(self.pid)

    def mem(self):
        return proc_mem(self.pid)

    def logtext(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def crdkit_port(self):
        m = re.search(r"port (\d+)\)", self.logtext())
        return int(m.group(1)) if m else None

    def synced(self):
        """True once the operator says its cache is synced; None: it cannot say."""
        if self.op == "crdkit":
            port = self.crdkit_port()
            if not port:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    return r.status == 200
            except Exception:  # noqa: BLE001
                return False
        if self.op == "controller-runtime":
            return "Starting workers" in self.logtext()
        return None

    def metrics(self):
        if self.op != "crdkit":
            return None
        port = self.crdkit_port()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                return r.read().decode()
        except Exception:  # noqa: BLE001
            return None

    def wait_idle(self, window=1.0, timeout=30.0, stop=None):
        """Waits until the process used < 2% CPU over `window` (or `stop`, an
        Event, is set); returns its CPU seconds."""
        end = time.monotonic() + timeout
        last = self.cpu()
        while time.monotonic() < end and self.alive() and not (stop and stop.is_set()):
            time.sleep(window)
            now = self.cpu()
            if now is None or last is None or now - last < 0.02 * window:
                return now
            last = now
        return self.cpu()

    def stop(self):
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.p.wait()
        self.logf.close()


# ---- helpers --------------------------------------------------------------------

def parallel(fn, items, threads):
    it = iter(items)
    lock = threading.Lock()
    errors = []

    def worker():
        while True:
            with lock:
                x = next(it, None)
            if x is None:
                return
            try:
                fn(x)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors


def create_many(kube, ns, names, threads):
    """Creates one mapRoles object per name; (first send, last answer, errors)."""
    barrier = threading.Barrier(threads)
    it = iter(names)
    lock = threading.Lock()
    t = {"first": None, "last": 0.0}
    errors = []

    def worker():
        kube._conn()
        barrier.wait()
        while True:
            with lock:
                name = next(it, None)
                if name is None:
                    return
                if t["first"] is None:
                    t["first"] = time.monotonic()
            st, b = kube.request("POST", aa_path(ns), role_obj(name))
            if st != 201:
                errors.append(f"{name}: {st}")
            now = time.monotonic()
            with lock:
                t["last"] = max(t["last"], now)

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for x in ts:
        x.start()
    for x in ts:
        x.join()
    return t["first"], t["last"], errors


def new_namespace(kube, tag):
    ns = f"perf-{tag}-{os.getpid()}-{random.randrange(1 << 20):05x}"
    kube.must("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    return ns


def drop_namespace(kube, ns, threads=8):
    """The operator is stopped: remove finalizers, delete everything, finalize the namespace."""
    try:
        st, lst = kube.request("GET", aa_path(ns))
        names = [o["metadata"]["name"] for o in (lst or {}).get("items") or [] if o["metadata"].get("finalizers")]
        parallel(lambda n: kube.request("PATCH", aa_path(ns, n), {"metadata": {"finalizers": None}},
                                        ctype="application/merge-patch+json"), names, threads)
        for p in (aa_path(ns), cm_path(ns), f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
                  f"/api/v1/namespaces/{ns}/events", f"/apis/events.k8s.io/v1/namespaces/{ns}/events"):
            kube.request("DELETE", p)
        kube.request("DELETE", f"/api/v1/namespaces/{ns}")
        st, o = kube.request("GET", f"/api/v1/namespaces/{ns}")
        if st == 200:
            o["spec"]["finalizers"] = []
            kube.request("PUT", f"/api/v1/namespaces/{ns}/finalize", o)
    except Exception as e:  # noqa: BLE001
        log(f"cleanup of {ns}: {e!r}")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_leftovers(kube):
    """Removes the namespaces of earlier runs whose driver is gone: a run
    killed in the middle (a W4 of 10,000 objects, say) leaves its namespace
    terminating forever, its AWSAuth objects held by finalizers no operator
    will remove, and their data in etcd for every run after it."""
    st, lst = kube.request("GET", "/api/v1/namespaces")
    for o in (lst or {}).get("items") or []:
        name = o["metadata"]["name"]
        m = re.fullmatch(r"perf-[a-z0-9]+-(\d+)-[0-9a-f]+", name)
        if not m or int(m.group(1)) == os.getpid() or pid_alive(int(m.group(1))):
            continue
        log(f"removing {name}, left by an earlier run that did not finish")
        drop_namespace(kube, name)


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


class Bench:
    def __init__(self):
        eo = subprocess.check_output([os.path.join(TOP, "scripts/testenv"), "env"], text=True)
        self.env = dict(line.split("=", 1) for line in eo.split() if "=" in line)
        self.kubectl = self.env["CRDKIT_TEST_KUBECTL"]
        self.kubeconfig = self.env["KUBECONFIG"]
        os.environ["KUBECONFIG"] = self.kubeconfig
        self.kube = Kube(self.kubectl)
        self.ops = os.environ.get("OPS", " ".join(OPS_ALL)).split()
        self.runs = env_int("RUNS", 3)
        self.runs_long = env_int("RUNS_LONG", self.runs)
        self.N = env_int("N", 1000)
        self.M = env_int("M", 10000)
        self.threads = env_int("THREADS", 8)
        self.w2s = env_int("W2_SECONDS", 60)
        self.w3n = env_int("W3_UPDATES", 200)
        self.w5s = env_int("W5_SECONDS", 300)
        self.w5rate = env_int("W5_RATE", 50)
        self.w1_timeout = env_int("W1_TIMEOUT", 300)
        self.w4_timeout = env_int("W4_TIMEOUT", 600)
        self.w5_settle = env_int("W5_SETTLE", 180)
        mem_kib = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1))
        self.control_plane_max_mib = env_int("CONTROL_PLANE_MAX_MIB", mem_kib // 2048)
        self.workloads = os.environ.get("WORKLOADS", "W1 W3 W4 W5").split()
        self.logdir = os.path.join(TOP, "build/bench/peers-logs")
        os.makedirs(self.logdir, exist_ok=True)
        self.res = {"config": {k: getattr(self, k) for k in
                               ("ops", "runs", "runs_long", "N", "M", "threads", "w2s", "w3n", "w5s",
                                "w5rate", "w1_timeout", "w4_timeout", "w5_settle", "workloads",
                                "control_plane_max_mib")},
                    "label": os.environ.get("LABEL", ""),
                    "machine": machine(self.kube), "versions": versions(),
                    "W1": {}, "W3": {}, "W4": {}, "W2": {}, "W5": {}, "floor": {"W1": [], "W3": [], "W4": []},
                    "restarts": [], "crdkit_args": os.environ.get("CRDKIT_ARGS", "")}
        self.out = None

    def save(self):
        if self.out:
            with open(self.out + ".tmp", "w") as f:
                json.dump(self.res, f, indent=1)
            os.replace(self.out + ".tmp", self.out)

    def restart_apiserver(self):
        """Restarts the test apiserver (etcd keeps its data) and waits until it
        is ready again: {"answer" or "error", "seconds"}."""
        out = {}
        t = time.monotonic()
        try:
            req = urllib.request.Request(self.env["CRDKIT_TEST_CONTROL"] + "/apiserver/restart",
                                         method="POST", data=b"")
            with urllib.request.urlopen(req, timeout=120) as resp:
                out["answer"] = resp.read().decode()
        except Exception as e:  # noqa: BLE001
            out["error"] = repr(e)
        out["seconds"] = time.monotonic() - t
        return out

    def defrag(self, job):
        """Compacts and defragments etcd between jobs; records the sizes."""
        if "CRDKIT_TEST_CONTROL" not in self.env:
            return
        t = time.monotonic()
        try:
            req = urllib.request.Request(self.env["CRDKIT_TEST_CONTROL"] + "/defrag", method="POST", data=b"")
            with urllib.request.urlopen(req, timeout=300) as resp:
                ans = json.loads(resp.read().decode())
        except Exception as e:  # noqa: BLE001
            ans = {"error": repr(e)}
        ans["seconds"] = round(time.monotonic() - t, 3)
        ans["before"] = job
        self.res.setdefault("defrags", []).append(ans)
        if "error" in ans:
            log(f"etcd defrag before {job} failed: {ans['error']}")

    def ready_with(self, op_proc, watch, name, timeout=120):
        """Creates the warm-up object and waits until the ConfigMap holds it."""
        self.kube.must("POST", aa_path(op_proc.ns), role_obj(name))
        needle = f":role/{name}"
        i = watch.wait_for(lambda e: needle in (e[3] or ""), 0, timeout)
        if i is None:
            raise RuntimeError(f"{op_proc.op}: warm-up object {name} never reached the ConfigMap "
                               f"(alive={op_proc.alive()}, log {op_proc.logpath})")
        return i

    # ---- W1 ----
    def w1(self, op, run):
        kube = self.kube
        ns = new_namespace(kube, "w1")
        proc = w = None
        try:
            needle = ":role/w1-"
            w = Watch(kube, cm_path(ns), cm_text, name=CM)
            w.start()
            if op is None:
                aw = Watch(kube, aa_path(ns), lambda o: o["metadata"]["name"])
                aw.start()
                names = [f"w1-{i:05d}" for i in range(self.N)]
                t0, t1, errs = create_many(kube, ns, names, self.threads)
                added = set()

                def pred(e):
                    if e[1] == "ADDED":
                        added.add(e[3])
                    return len(added) >= self.N
                i = aw.wait_for(pred, 0, self.w1_timeout)
                curve = []
                c = 0
                for ev in aw.events:
                    if ev[1] == "ADDED":
                        c += 1
                        curve.append((round(ev[0] - t0, 4), c))
                aw.close()
                r = {"run": run, "create_s": t1 - t0, "create_rate": self.N / (t1 - t0),
                     "all_s": (aw.events[i][0] - t0) if i is not None else None,
                     "errors": len(errs), "curve": thin(curve)}
                log(f"W1 floor run {run}: all ADDED after {r['all_s']:.3f}s, creates {r['create_rate']:.0f}/s")
                self.res["floor"]["W1"].append(r)
                return
            proc = Operator(op, ns, self.logdir, self.kubeconfig)
            self.ready_with(proc, w, "warm-0")
            with w.cond:
                w.summary = lambda o: cm_text(o).count(needle)
                start_idx = len(w.events)
            cpu0 = proc.cpu()
            names = [f"w1-{i:05d}" for i in range(self.N)]
            t0, t1, errs = create_many(kube, ns, names, self.threads)
            i = w.wait_for(lambda e: isinstance(e[3], int) and e[3] >= self.N, start_idx, self.w1_timeout)
            t_all = w.events[i][0] if i is not None else None
            cpu_conv = proc.cpu()
            cpu_idle = proc.wait_idle()
            time.sleep(1.0)
            rss, hwm = proc.mem()
            evs = [e for e in w.events[start_idx:] if e[1] in ("ADDED", "MODIFIED")]
            writes_conv = sum(1 for e in evs if t_all is None or e[0] <= t_all)
            reached = max([e[3] for e in evs if isinstance(e[3], int)] or [0])
            r = {"run": run, "create_s": t1 - t0, "create_rate": self.N / (t1 - t0), "errors": len(errs),
                 "all_s": (t_all - t0) if t_all else None, "reached": reached,
                 "writes_to_converge": writes_conv, "writes_total": len(evs),
                 "cpu_to_converge_s": (cpu_conv - cpu0) if cpu_conv is not None else None,
                 "cpu_s": (cpu_idle - cpu0) if cpu_idle is not None else None,
                 "rss_kib": rss, "hwm_kib": hwm, "alive": proc.alive(),
                 "curve": thin([(round(e[0] - t0, 4), e[3]) for e in evs if isinstance(e[3], int)])}
            if op == "crdkit":
                r["metrics"] = pick_metrics(proc.metrics())
            log(f"W1 {op} run {run}: all in {r['all_s']}, writes {writes_conv}/{len(evs)}, cpu {r['cpu_s']}, "
                f"hwm {hwm} KiB, creates {r['create_rate']:.0f}/s")
            self.res["W1"].setdefault(op, []).append(r)
        finally:
            if w:
                w.close()
            if proc:
                proc.stop()
            drop_namespace(kube, ns)
            self.save()

    # ---- W3 ----
    def w3(self, op, run):
        kube = self.kube
        ns = new_namespace(kube, "w3")
        proc = w = aw = None
        name = "w3-obj"
        lat, cm_rt, aa_rt = [], [], []

        def patch_obj(i):
            spec = role_obj(name, username=f"w3user-{i:04d}")["spec"]
            kube.must("PATCH", aa_path(ns, name), {"spec": spec}, ok=(200,), ctype="application/merge-patch+json")
        try:
            if op is None:
                kube.must("POST", cm_path(ns), {"apiVersion": "v1", "kind": "ConfigMap",
                                                "metadata": {"name": CM}, "data": {"mapRoles": "[]"}})
                kube.must("POST", aa_path(ns), role_obj(name, username="w3user-start"))
                w = Watch(kube, cm_path(ns), cm_text, name=CM)
                w.start()
                aw = Watch(kube, aa_path(ns), lambda o: json.dumps(o.get("spec")))
                aw.start()
                for i in range(self.w3n):
                    a0, c0 = len(aw.events), len(w.events)
                    needle = f"w3user-{i:04d}"
                    t0 = time.monotonic()
                    patch_obj(i)
                    j = aw.wait_for(lambda e: needle in e[3], a0, 30)
                    t1 = aw.events[j][0]
                    kube.must("PUT", cm_path(ns, CM), {"apiVersion": "v1", "kind": "ConfigMap",
                                                       "metadata": {"name": CM},
                                                       "data": {"mapRoles": f"- rolearn: x\n  username: {needle}\n"}},
                              ok=(200,))
                    k = w.wait_for(lambda e: needle in e[3], c0, 30)
                    t2 = w.events[k][0]
                    lat.append(t2 - t0)
                    aa_rt.append(t1 - t0)
                    cm_rt.append(t2 - t1)
                r = {"run": run, "chain": lat, "aa_rt": aa_rt, "cm_rt": cm_rt,
                     "p50": pct(lat, 50), "p99": pct(lat, 99),
                     "cm_rt_p50": pct(cm_rt, 50), "aa_rt_p50": pct(aa_rt, 50)}
                log(f"W3 floor run {run}: chain p50 {r['p50']*1000:.1f} ms p99 {r['p99']*1000:.1f} ms, "
                    f"CM round trip p50 {r['cm_rt_p50']*1000:.1f} ms")
                self.res["floor"]["W3"].append(r)
                return
            w = Watch(kube, cm_path(ns), cm_text, name=CM)
            w.start()
            proc = Operator(op, ns, self.logdir, self.kubeconfig)
            kube.must("POST", aa_path(ns), role_obj(name, username="w3user-start"))
            if w.wait_for(lambda e: "w3user-start" in e[3], 0, 120) is None:
                raise RuntimeError(f"{op}: W3 object never reached the ConfigMap ({proc.logpath})")
            proc.wait_idle(0.5, 20)
            cpu0 = proc.cpu()
            timeouts = 0
            for i in range(self.w3n):
                c0 = len(w.events)
                needle = f"w3user-{i:04d}"
                t0 = time.monotonic()
                patch_obj(i)
                k = w.wait_for(lambda e: needle in e[3], c0, 30)
                if k is None:
                    timeouts += 1
                    continue
                lat.append(w.events[k][0] - t0)
            cpu = proc.cpu() - cpu0
            r = {"run": run, "lat": lat, "timeouts": timeouts, "p50": pct(lat, 50), "p99": pct(lat, 99),
                 "mean": statistics.mean(lat) if lat else None, "cpu_s": cpu, "hwm_kib": proc.mem()[1]}
            log(f"W3 {op} run {run}: p50 {r['p50']*1000:.1f} ms p99 {r['p99']*1000:.1f} ms, timeouts {timeouts}")
            self.res["W3"].setdefault(op, []).append(r)
        finally:
            for x in (w, aw):
                if x:
                    x.close()
            if proc:
                proc.stop()
            drop_namespace(kube, ns)
            self.save()

    # ---- W4 + W2 ----
    def w4(self, op, run):
        kube = self.kube
        # Every W4+W2 starts on a freshly started apiserver: what one operator
        # made it hold (the apiserver grows by gigabytes under some peers) is
        # not charged to the next one.
        fresh = self.restart_apiserver() if "CRDKIT_TEST_CONTROL" in self.env else None
        ns = new_namespace(kube, "w4")
        proc = w = None
        meter = ControlPlaneMeter(self.env.get("CRDKIT_TEST_CLUSTER_DIR"), self.control_plane_max_mib * 1024)
        stopped = None
        try:
            names = [f"w4-{i:05d}" for i in range(self.M)]
            t0, t1, errs = create_many(kube, ns, names, self.threads)
            log(f"W4 {op}: {self.M} objects created at {self.M / (t1 - t0):.0f}/s")
            # floor: a paginated LIST of them (what any informer does first)
            f0 = time.monotonic()
            cont, nbytes, count = "", 0, 0
            while True:
                st, raw = kube.request("GET", aa_path(ns) + "?limit=500" + (f"&continue={cont}" if cont else ""),
                                       raw=True)
                b = json.loads(raw)
                nbytes += len(raw)
                count += len(b["items"])
                cont = b["metadata"].get("continue")
                if not cont:
                    break
            f1 = time.monotonic()
            compact = sum(len(json.dumps(o, separators=(",", ":"))) for o in
                          json.loads(kube.request("GET", aa_path(ns), raw=True)[1])["items"])
            self.res["floor"]["W4"].append({"run": run, "for": op, "list_s": f1 - f0, "objects": count,
                                            "list_bytes": nbytes, "compact_json_bytes": compact})
            needle = ":role/w4-"
            w = Watch(kube, cm_path(ns), lambda o: cm_text(o).count(needle), name=CM)
            w.start()
            base_kib = meter.take()
            proc = Operator(op, ns, self.logdir, self.kubeconfig)
            ts = proc.t_start
            t_synced = None
            t_first = None
            t_all = None
            deadline = ts + self.w4_timeout
            while time.monotonic() < deadline and proc.alive():
                if meter.over.is_set():
                    stopped = f"stopped: apiserver + etcd RSS passed {self.control_plane_max_mib} MiB"
                    break
                if t_synced is None:
                    s = proc.synced()
                    if s:
                        t_synced = time.monotonic()
                with w.cond:
                    evs = list(w.events)
                if evs and t_first is None:
                    t_first = evs[0][0]
                if evs and evs[-1][3] >= self.M:
                    t_all = next(e[0] for e in evs if e[3] >= self.M)
                    if t_synced is not None or proc.synced() is None:
                        break
                time.sleep(0.02)
            cpu_conv = proc.cpu()
            reached = max([e[3] for e in w.events] or [0])
            writes = len(w.events)
            r4 = {"run": run, "objects": self.M, "create_rate": self.M / (t1 - t0),
                  "synced_s": (t_synced - ts) if t_synced else None,
                  "first_write_s": (t_first - ts) if t_first else None,
                  "all_s": (t_all - ts) if t_all else None, "reached": reached,
                  "writes": writes, "cpu_to_converge_s": cpu_conv, "alive": proc.alive(),
                  "apiserver_restart": fresh, "control_plane_base_kib": base_kib}
            if not stopped:
                cpu_idle0 = proc.wait_idle(1.0, 60, meter.over)
                r4["cpu_until_idle_s"] = cpu_idle0
            rss, hwm = proc.mem()
            r4["hwm_kib"] = hwm
            r4["control_plane_peak_kib"] = meter.take()
            if stopped:
                r4["stopped"] = stopped
                log(f"W4 {op}: {stopped}")
            log(f"W4 {op}: synced {r4['synced_s']}, first write {r4['first_write_s']}, all {r4['all_s']} "
                f"(reached {reached}/{self.M}), writes {writes}, cpu {cpu_conv}, "
                f"control plane peak {r4['control_plane_peak_kib']} KiB")
            self.res["W4"].setdefault(op, []).append(r4)
            # W2: idle with the M objects cached
            if stopped:
                self.res["W2"].setdefault(op, []).append({"run": run, "objects": self.M, "stopped": stopped})
                return
            w0 = len(w.events)
            c0 = proc.cpu()
            w2_end = time.monotonic() + self.w2s
            while time.monotonic() < w2_end and not meter.over.is_set():
                time.sleep(min(0.5, max(0.0, w2_end - time.monotonic())))
            c1 = proc.cpu()
            rss, hwm = proc.mem()
            window = self.w2s - max(0.0, w2_end - time.monotonic())
            if meter.over.is_set():
                stopped = f"stopped after {window:.0f} s: apiserver + etcd RSS passed {self.control_plane_max_mib} MiB"
            r2 = {"run": run, "objects": self.M, "converged": t_all is not None, "seconds": window,
                  "cpu_s": (c1 - c0) if c1 is not None and c0 is not None else None,
                  "rss_kib": rss, "hwm_kib": hwm, "writes": len(w.events) - w0,
                  "control_plane_peak_kib": meter.take()}
            if stopped:
                r2["stopped"] = stopped
                log(f"W2 {op}: {stopped}")
            r2["mem_detail"] = mem_detail(proc.pid)
            if op == "crdkit":
                r2["metrics"] = pick_metrics(proc.metrics())
            log(f"W2 {op}: rss {rss} KiB, cpu {r2['cpu_s']} s over {window:.0f} s, writes {r2['writes']}, "
                f"control plane peak {r2['control_plane_peak_kib']} KiB")
            self.res["W2"].setdefault(op, []).append(r2)
        finally:
            if w:
                w.close()
            if proc:
                proc.stop()
            meter.close()
            if stopped:  # give the memory back before the cleanup and the next workload
                self.res["restarts"].append({"workload": "W4", "op": op, "run": run, "why": stopped,
                                             **self.restart_apiserver()})
            drop_namespace(kube, ns)
            self.save()

    # ---- W5 ----
    def w5(self, op, run):
        kube = self.kube
        ns = new_namespace(kube, "w5")
        proc = None
        rnd = random.Random(5000 + run)  # the same operations for every operator
        model = {}  # name -> (kind, arns, username, groups)
        seq = [0]

        def spec_of(name, kind, v):
            seg = "role" if kind == "mapRoles" else "user"
            arns = [f"arn:aws:iam::{ACCOUNT}:{seg}/{name}-v{v}"]
            if v % 3 == 2:
                arns.append(f"arn:aws:iam::{ACCOUNT}:{seg}/{name}-second-v{v}")
            return (kind, tuple(arns), f"u-{name}-{v}", (f"g-{v % 4}", "g-common"))

        def body(name, m):
            kind, arns, user, groups = m
            key = "rolearn" if kind == "mapRoles" else "userarn"
            other = "mapUsers" if kind == "mapRoles" else "mapRoles"
            return {kind: [{key: a, "username": user, "groups": list(groups)} for a in arns], other: None}

        def send(method, path, b, ok, ctype="application/json"):
            """Retries through the restart; returns the seconds spent retrying."""
            t = time.monotonic()
            while True:
                try:
                    st, r = kube.request(method, path, b, ctype)
                    if st in ok:
                        return time.monotonic() - t
                    if st not in (429, 500, 502, 503, 504):
                        raise RuntimeError(f"{method} {path}: {st} {(r or {}).get('message')}")
                except (OSError, http.client.HTTPException):
                    kube._conn(fresh=True)
                if time.monotonic() - t > 120:
                    raise RuntimeError(f"{method} {path}: apiserver unavailable for 120 s")
                time.sleep(0.1)

        try:
            proc = Operator(op, ns, self.logdir, self.kubeconfig)
            kube.must("POST", aa_path(ns), role_obj("warm-0"))
            model["warm-0"] = ("mapRoles", (f"arn:aws:iam::{ACCOUNT}:role/warm-0",), "u-warm-0", ("g-bench",))
            t_dead = time.monotonic() + 120
            while time.monotonic() < t_dead:
                st, o = kube.request("GET", cm_path(ns, CM))
                if st == 200 and "warm-0" in cm_text(o):
                    break
                time.sleep(0.2)
            cpu0 = proc.cpu()
            total = self.w5s * self.w5rate
            restart = {}

            def do_restart():
                restart.update(self.restart_apiserver())
            rt = None
            cw = None  # a watch of aws-auth, opened once the restart is over: the lag's clock
            t0 = time.monotonic()
            counts = {"create": 0, "update": 0, "delete": 0}
            retry_s = 0.0
            for k in range(total):
                due = t0 + k / self.w5rate
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                if rt is None and k >= total // 2:
                    restart["at_s"] = time.monotonic() - t0
                    rt = threading.Thread(target=do_restart)
                    rt.start()
                    self.res["restarts"].append({"workload": "W5", "op": op, "run": run,
                                                 "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
                if cw is None and rt is not None and not rt.is_alive():
                    try:
                        cw = Watch(kube, cm_path(ns), lambda o: o.get("data"), name=CM)
                        cw.start()
                    except (OSError, http.client.HTTPException, RuntimeError):
                        kube._conn(fresh=True)
                        cw = None  # the apiserver is not serving yet: next operation
                live = [n for n in model if n != "warm-0"]
                x = rnd.random()
                if len(live) < 20 or x < 0.4:
                    seq[0] += 1
                    name = f"c-{seq[0]:05d}"
                    m = spec_of(name, "mapUsers" if rnd.random() < 0.3 else "mapRoles", 0)
                    o = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AWSAuth", "metadata": {"name": name},
                         "spec": {kk: v for kk, v in body(name, m).items() if v is not None}}
                    retry_s += send("POST", aa_path(ns), o, (201, 409))
                    model[name] = m
                    counts["create"] += 1
                elif x < 0.8:
                    name = rnd.choice(sorted(live))
                    kind = model[name][0]
                    if rnd.random() < 0.2:
                        kind = "mapUsers" if kind == "mapRoles" else "mapRoles"
                    v = int(model[name][2].rsplit("-", 1)[1]) + 1
                    m = spec_of(name, kind, v)
                    retry_s += send("PATCH", aa_path(ns, name), {"spec": body(name, m)}, (200,),
                                    "application/merge-patch+json")
                    model[name] = m
                    counts["update"] += 1
                else:
                    name = rnd.choice(sorted(live))
                    retry_s += send("DELETE", aa_path(ns, name), None, (200, 202, 404))
                    del model[name]
                    counts["delete"] += 1
            t_end = time.monotonic()
            t_end_wall = time.time()  # to line up with the operators' logs
            if rt:
                rt.join()
            want = set()
            for name, (kind, arns, user, groups) in model.items():
                for a in arns:
                    want.add((kind, a, user, tuple(groups)))
            t_exact = None
            last_diff = None
            diff_entries = None
            while time.monotonic() < t_end + self.w5_settle:
                try:
                    st, o = kube.request("GET", cm_path(ns, CM))
                except (OSError, http.client.HTTPException):
                    kube._conn(fresh=True)
                    time.sleep(0.2)
                    continue
                if st == 200:
                    got = cm_entry_set(o.get("data"))
                    if got == want:
                        t_exact = time.monotonic()
                        break
                    last_diff = (len(want - got), len(got - want))
                    diff_entries = {"missing": sorted(map(list, want - got))[:5],
                                    "extra": sorted(map(list, got - want))[:5]}
                time.sleep(0.1)
            lag_watch = watch_lag(cw, want, t_end, t_exact)
            if cw:
                cw.close()
            # objects the driver deleted must be gone (finalizer removed)
            st, lst = kube.request("GET", aa_path(ns))
            names = {o["metadata"]["name"] for o in (lst or {}).get("items") or []}
            leftover = sorted(names - set(model))
            if t_exact and leftover:  # give finalizer removal the same settle time
                while time.monotonic() < t_end + self.w5_settle and leftover:
                    time.sleep(0.5)
                    st, lst = kube.request("GET", aa_path(ns))
                    names = {o["metadata"]["name"] for o in (lst or {}).get("items") or []}
                    leftover = sorted(names - set(model))
            cpu = proc.cpu()
            r = {"run": run, "ops": total, "counts": counts, "seconds": t_end - t0,
                 "achieved_rate": total / (t_end - t0), "retry_s": retry_s, "restart": restart,
                 "exact": t_exact is not None and not leftover, "cm_exact": t_exact is not None,
                 "lag_s": lag_watch if lag_watch is not None else ((t_exact - t_end) if t_exact else None),
                 "lag_poll_s": (t_exact - t_end) if t_exact else None, "lag_from_watch": lag_watch is not None,
                 "lag_watch_error": (cw.error if cw else "no watch was opened"), "end_wall": t_end_wall,
                 "missing_extra_at_timeout": last_diff,
                 "differing_entries_at_timeout": None if t_exact else diff_entries,
                 "deleted_objects_left": len(leftover), "entries": len(want),
                 "cpu_s": (cpu - cpu0) if cpu is not None and cpu0 is not None else None,
                 "hwm_kib": proc.mem()[1], "alive": proc.alive()}
            log(f"W5 {op} run {run}: exact={r['exact']} lag {r['lag_s']} s (poll {r['lag_poll_s']} s), rate {r['achieved_rate']:.1f}/s, "
                f"restart {restart.get('seconds')}, left {len(leftover)}, diff {last_diff}")
            self.res["W5"].setdefault(op, []).append(r)
        finally:
            if proc:
                proc.stop()
            drop_namespace(kube, ns)
            self.save()

    def ensure_crd(self):
        """Install the AWSAuth CRD when the cluster lacks it (run.sh does
        the same; this covers peerbench.py run on its own, e.g. on a fresh
        testenv), so no workload fails on a 404."""
        st, _ = self.kube.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/awsauths.crdkit.io")
        if st == 200:
            return
        binary = os.environ.get("CRDKIT_BENCH_BIN") or os.path.join(TOP, "build/release/cmd/crdkit/crdkit")
        crd = subprocess.run([binary, "aws-auth", "print-crd"], capture_output=True, text=True, check=True).stdout
        subprocess.run([self.kubectl, "apply", "-f", "-"], input=crd, text=True, check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([self.kubectl, "wait", "--for", "condition=Established",
                        "crd/awsauths.crdkit.io", "--timeout=60s"], check=True, stdout=subprocess.DEVNULL)
        log("installed the AWSAuth CRD")

    def run(self):
        host = socket.gethostname()
        d = time.strftime("%Y-%m-%d")
        os.makedirs(os.path.join(TOP, "bench/results"), exist_ok=True)
        self.out = os.environ.get("OUT") or os.path.join(TOP, "bench/results", f"{d}-{host}.json")
        if os.path.exists(self.out) and not os.environ.get("OUT"):
            self.out = os.path.join(TOP, "bench/results", f"{d}-{host}-{time.strftime('%H%M%S')}.json")
        self.res["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        log(f"results: {self.out}")
        if "CRDKIT_TEST_CONTROL" in self.env:  # a testenv up for hours holds what earlier runs made it grow to
            self.res["restarts"].append({"workload": "start", **self.restart_apiserver()})
        self.ensure_crd()
        sweep_leftovers(self.kube)
        jobs = []

        def order(r):
            # every round runs each operator once, each round starting one
            # operator later: no operator always runs first after the floor
            # (or after the same neighbour)
            k = r % len(self.ops) if self.ops else 0
            return self.ops[k:] + self.ops[:k]
        if "W1" in self.workloads:
            for r in range(self.runs):
                jobs += [("W1", None, r)] + [("W1", op, r) for op in order(r)]
        if "W3" in self.workloads:
            for r in range(self.runs):
                jobs += [("W3", None, r)] + [("W3", op, r) for op in order(r)]
        if "W4" in self.workloads:
            for r in range(self.runs_long):
                jobs += [("W4", op, r) for op in order(r)]
        if "W5" in self.workloads:
            for r in range(self.runs_long):
                jobs += [("W5", op, r) for op in order(r)]
        for wl, op, r in jobs:
            log(f"== {wl} {op or 'floor'} run {r}")
            self.defrag(f"{wl} {op or 'floor'} {r}")
            try:
                getattr(self, wl.lower())(op, r)
            except Exception as e:  # noqa: BLE001
                log(f"{wl} {op} run {r} FAILED: {e!r}")
                self.res.setdefault("failures", []).append({"workload": wl, "op": op, "run": r, "error": repr(e)})
                self.save()
        self.res["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.save()
        self.kube.close()
        print(self.out)


def thin(curve, maxn=400):
    if len(curve) <= maxn:
        return curve
    step = len(curve) / maxn
    out = [curve[int(i * step)] for i in range(maxn)]
    return out + [curve[-1]]


def pick_metrics(text):
    if not text:
        return None
    keep = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if any(s in line for s in ("awsauth_", "process_", "workqueue_", "informer", "reconcile")):
            parts = line.rsplit(" ", 1)
            if len(parts) == 2:
                keep[parts[0]] = parts[1]
    return keep


def machine(kube):
    m = {"host": socket.gethostname(), "cores": os.cpu_count(),
         "mem_kib": int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1)),
         "kernel": os.uname().release}
    try:
        m["cpu"] = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    except Exception:  # noqa: BLE001
        pass
    try:
        m["os"] = re.search(r'PRETTY_NAME="(.*)"', open("/etc/os-release").read()).group(1)
    except Exception:  # noqa: BLE001
        pass
    st, v = kube.request("GET", "/version")
    m["apiserver"] = (v or {}).get("gitVersion")
    m["commit"] = subprocess.run(["git", "-C", TOP, "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip()
    m["dirty"] = bool(subprocess.run(["git", "-C", TOP, "status", "--porcelain", "--untracked-files=no"],
                                     capture_output=True, text=True).stdout.strip())
    m["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    m["loadavg_start"] = open("/proc/loadavg").read().split()[:3]
    return m


def versions():
    v = {"python": sys.version.split()[0]}
    def grab(path, pat):
        try:
            return re.search(pat, open(os.path.join(TOP, path)).read(), re.M).group(1)
        except Exception:  # noqa: BLE001
            return None
    v["controller-runtime"] = grab("bench/peers/controller-runtime/go.mod", r"sigs.k8s.io/controller-runtime (v\S+)")
    v["client-go"] = grab("bench/peers/controller-runtime/go.mod", r"k8s.io/client-go (v\S+)")
    v["kube-rs"] = grab("bench/peers/kube-rs/Cargo.toml", r'^kube = \{ version = "=?([^"]+)"')
    v["kopf"] = grab("bench/peers/kopf/requirements.txt", r"^kopf==(\S+)")
    for name, cmd in (("go", ["go", "version"]), ("rustc", ["rustc", "--version"]),
                      ("kopf_python", [os.path.join(TOP, "build/peers/kopf-venv/bin/python"), "--version"])):
        try:
            v[name] = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:  # noqa: BLE001
            v[name] = None
    return v


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "report":
        sys.path.insert(0, os.path.dirname(__file__))
        import report
        sys.exit(report.main(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        Bench().run()
        sys.exit(0)
    print(__doc__)
    sys.exit(2)
