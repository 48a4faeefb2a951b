#!/usr/bin/env python3
"""Load generator for the aws-auth operator: AWSAuth objects created,
changed and deleted over the REST API directly (kubectl costs a process per
call), with one keep-alive TLS connection per thread.

Used by bench/awsauth/run.sh (the 1,000-object benchmark) and by
test/e2e/aws_auth_scale.sh (the 500-object run and the churn).

  create  -n NS -c N [-t THREADS] [--prefix P]
          N AWSAuth (mapRoles) from THREADS threads; one JSON line: how long
          the creates took and objects/s.
  bench   -n NS -c N [-t THREADS] [--configmap NAME] [--timeout S]
          watch the ConfigMap (list, then watch from the list's
          resourceVersion: no write is missed), create N objects, and wait
          until the ConfigMap holds N entries of this prefix; then until
          every object is Ready=True. One JSON line: create time and rate,
          time to all N in the ConfigMap, the writes the watch saw, time to
          all Ready.
  churn   -n NS -c N [--seed S] [--progress FILE]
          create N objects (roles and users), change them (groups, user
          names, a new ARN, roles <-> users), delete about a third; the
          number of finished operations goes to FILE as it goes. One JSON
          line at the end: the operations, and the names deleted.
  pairs   -n NS -c ROUNDS [--configmap NAME] [--timeout S]
          two objects pair-a and pair-b; each round changes pair-a and at
          once pair-b (back to back on one connection, so pair-b's change
          arrives while the merge of pair-a's runs), then waits until the
          ConfigMap shows both. One JSON line: the rounds and the longest
          wait; exit 1 (with the round) when one never shows.
  cleanup -n NS
          drop the finalizer of every AWSAuth in NS and delete it (for when
          no operator runs).

The connection comes from `kubectl config view --raw --minify` (kubectl:
$CRDKIT_TEST_KUBECTL, else the one on PATH), so KUBECONFIG is honoured.
"""
import argparse
import base64
import http.client
import json
import os
import random
import shutil
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse

GROUP = "crdkit.io"
VERSION = "v1alpha1"
ACCOUNT = "111122223333"
RETRY_S = 90


class Kube:
    """Enough of a Kubernetes client: one connection per thread."""

    def __init__(self):
        kubectl = os.environ.get("CRDKIT_TEST_KUBECTL") or shutil.which("kubectl")
        if not kubectl:
            sys.exit("awsauth_load: no kubectl (set CRDKIT_TEST_KUBECTL)")
        import subprocess

        cfg = json.loads(subprocess.check_output(
            [kubectl, "config", "view", "--raw", "--minify", "-o", "json"]))
        cluster = cfg["clusters"][0]["cluster"]
        user = cfg["users"][0]["user"] if cfg.get("users") else {}
        url = urllib.parse.urlparse(cluster["server"])
        if url.scheme != "https":
            sys.exit("awsauth_load: only https servers are supported")
        self.host, self.port = url.hostname, url.port or 443
        self.tmp = tempfile.mkdtemp(prefix="awsauth-load-")
        ctx = ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            ctx.load_verify_locations(
                cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        elif cluster.get("certificate-authority"):
            ctx.load_verify_locations(cafile=cluster["certificate-authority"])
        self.headers = {"Accept": "application/json"}
        if user.get("client-certificate-data"):
            cert = os.path.join(self.tmp, "cert.pem")
            key = os.path.join(self.tmp, "key.pem")
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
        self.retries = 0  # connections retried (not exact across threads)

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def conn(self, fresh=False):
        c = getattr(self.local, "c", None)
        if c is None or fresh:
            if c is not None:
                c.close()
            c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
            self.local.c = c
        return c

    def request(self, method, path, body=None, ctype="application/json"):
        """(status, decoded body). A dropped or refused connection (the
        shared test apiserver may be restarted by other suites) is retried
        for up to RETRY_S seconds; a retried create answered 409 and a
        retried delete answered 404 mean the first attempt went through."""
        data = json.dumps(body).encode() if body is not None else None
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = ctype
        deadline = time.monotonic() + RETRY_S
        attempt = 0
        while True:
            c = self.conn(fresh=attempt > 0)
            try:
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                raw = r.read()
                break
            except (http.client.HTTPException, OSError):
                if time.monotonic() > deadline:
                    raise
                attempt += 1
                self.retries += 1
                time.sleep(min(0.1 * attempt, 1.0))
        status = r.status
        if attempt and ((method == "POST" and status == 409) or (method == "DELETE" and status == 404)):
            status = 201 if method == "POST" else 200
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, {"raw": raw.decode(errors="replace")}

    def watch(self, path):
        """A separate streaming connection; yields decoded events until the
        server ends the stream."""
        c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=600)
        try:
            c.request("GET", path, headers=self.headers)
            r = c.getresponse()
            if r.status != 200:
                raise RuntimeError(f"watch {path}: HTTP {r.status} {r.read()[:300]!r}")
            while True:
                line = r.readline()
                if not line:
                    return
                yield json.loads(line)
        finally:
            c.close()


def objs_path(ns, name=None):
    p = f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/awsauths"
    return p + "/" + name if name else p


def role_arn(name, version=0):
    return f"arn:aws:iam::{ACCOUNT}:role/{name}" + (f"-v{version}" if version else "")


def user_arn(name, version=0):
    return f"arn:aws:iam::{ACCOUNT}:user/{name}" + (f"-v{version}" if version else "")


def awsauth(name, kind, arns, username, groups):
    key = "rolearn" if kind == "mapRoles" else "userarn"
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AWSAuth",
            "metadata": {"name": name},
            "spec": {kind: [{key: a, "username": username, "groups": list(groups)} for a in arns]}}


def expect(status, body, ok, what):
    if status not in ok:
        msg = body.get("message") if isinstance(body, dict) else body
        raise RuntimeError(f"{what}: HTTP {status}: {msg}")


# ---- create ----------------------------------------------------------------

def create_many(kube, ns, names, threads):
    """Create one mapRoles object per name from `threads` threads. Returns
    (first send, last answer) as time.monotonic() values."""
    it = iter(names)
    lock = threading.Lock()
    t_first = [None]
    t_last = [0.0]
    errors = []

    def worker():
        kube.conn()  # connect (TLS handshake) before the clock starts
        barrier.wait()
        while True:
            with lock:
                name = next(it, None)
                if name is None:
                    return
                if t_first[0] is None:
                    t_first[0] = time.monotonic()
            try:
                st, body = kube.request("POST", objs_path(ns),
                                        awsauth(name, "mapRoles", [role_arn(name)],
                                                "u-" + name, ["g-" + name[-1]]))
                expect(st, body, (201,), "create " + name)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(str(e))
            done = time.monotonic()
            with lock:
                t_last[0] = max(t_last[0], done)

    barrier = threading.Barrier(threads)
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} creates failed, first: {errors[0]}")
    return t_first[0], t_last[0]


def names_for(prefix, n):
    return [f"{prefix}-{i:05d}" for i in range(n)]


def cmd_create(kube, a):
    names = names_for(a.prefix, a.count)
    t0, t1 = create_many(kube, a.namespace, names, a.threads)
    print(json.dumps({"created": len(names), "threads": a.threads,
                      "create_s": round(t1 - t0, 3),
                      "create_objects_per_s": round(len(names) / (t1 - t0), 1)}), flush=True)


# ---- bench -----------------------------------------------------------------

def count_entries(cm, prefix):
    data = (cm or {}).get("data") or {}
    needle = f":role/{prefix}-"
    return sum(1 for line in (data.get("mapRoles") or "").splitlines()
               if line.lstrip().startswith("- rolearn:") and needle in line)


def cmd_bench(kube, a):
    ns, cm_name, n = a.namespace, a.configmap, a.count
    sel = urllib.parse.quote(f"metadata.name={cm_name}")
    st, lst = kube.request("GET", f"/api/v1/namespaces/{ns}/configmaps?fieldSelector={sel}")
    expect(st, lst, (200,), "list the ConfigMap")
    rv0 = lst["metadata"]["resourceVersion"]
    seen = {"writes": 0, "rvs": set(), "t_all": None, "first_write": None, "rewatches": 0,
            "times": []}
    items = lst.get("items") or []
    if items:
        seen["rvs"].add(items[0]["metadata"]["resourceVersion"])
    done = threading.Event()
    failure = []

    def seen_object(cm, now):
        rv = cm["metadata"]["resourceVersion"]
        if rv in seen["rvs"]:
            return
        seen["rvs"].add(rv)
        seen["writes"] += 1
        seen["times"].append(now)
        if seen["first_write"] is None:
            seen["first_write"] = now
        if count_entries(cm, a.prefix) == n and seen["t_all"] is None:
            seen["t_all"] = now
            done.set()

    def watcher():
        # Watch from the list's resourceVersion; when the stream ends or
        # breaks (an apiserver restart), watch again from the last one seen.
        rv = rv0
        try:
            while not done.is_set():
                path = (f"/api/v1/namespaces/{ns}/configmaps?watch=1&fieldSelector={sel}"
                        f"&resourceVersion={rv}&timeoutSeconds={int(a.timeout) + 60}")
                try:
                    for ev in kube.watch(path):
                        if ev["type"] == "ERROR":
                            raise RuntimeError(f"watch error: {ev['object'].get('message')}")
                        if ev["type"] not in ("ADDED", "MODIFIED"):
                            continue
                        rv = ev["object"]["metadata"]["resourceVersion"]
                        seen_object(ev["object"], time.monotonic())
                except (http.client.HTTPException, OSError):
                    pass
                if not done.is_set():
                    seen["rewatches"] += 1
                    if seen["rewatches"] > 100:
                        raise RuntimeError("the watch keeps breaking")
                    time.sleep(0.5)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            failure.append(repr(e))
            done.set()

    wt = threading.Thread(target=watcher, daemon=True)
    wt.start()
    names = names_for(a.prefix, n)
    t0, t1 = create_many(kube, ns, names, a.threads)
    if not done.wait(max(0.0, a.timeout - (time.monotonic() - t0))):
        raise SystemExit(f"awsauth_load bench: the ConfigMap did not reach {n} entries in "
                         f"{a.timeout}s (writes seen: {seen['writes']})")
    if failure:
        raise SystemExit("awsauth_load bench: watch failed: " + failure[0])
    t_all = seen["t_all"]
    writes_at_all = seen["writes"]
    if a.cpu_pid:
        cpu_at_all = proc_cpu_s(a.cpu_pid)
    # Then every object Ready=True (the operator's status work), by listing.
    t_ready = None
    while time.monotonic() - t0 < a.timeout:
        st, lst = kube.request("GET", objs_path(ns))
        expect(st, lst, (200,), "list AWSAuth")
        ready = sum(1 for o in lst["items"] if is_ready(o))
        if ready == n:
            t_ready = time.monotonic()
            break
        time.sleep(0.5)
    if t_ready is None:
        raise SystemExit(f"awsauth_load bench: not every object Ready in {a.timeout}s")
    out = {"objects": n, "threads": a.threads,
           "create_s": round(t1 - t0, 3),
           "create_objects_per_s": round(n / (t1 - t0), 1),
           "all_in_configmap_s": round(t_all - t0, 3),
           "all_in_configmap_after_last_create_s": round(t_all - t1, 3),
           "first_write_s": round(seen["first_write"] - t0, 3),
           "watch_writes": writes_at_all,
           "all_ready_s": round(t_ready - t0, 3),
           "watch_writes_at_ready": seen["writes"],
           "write_seen_s": [round(t - t0, 3) for t in seen["times"]],
           # Non-zero: the apiserver went away during the run (not representative).
           "rewatches": seen["rewatches"], "client_retries": kube.retries}
    if a.cpu_pid:
        out["cpu_s_at_all_in_configmap"] = round(cpu_at_all, 2)
        out["cpu_s_at_ready"] = round(proc_cpu_s(a.cpu_pid), 2)
    print(json.dumps(out), flush=True)


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def is_ready(o):
    gen = o["metadata"].get("generation")
    for c in (o.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True" and c.get("observedGeneration") == gen
    return False


# ---- churn -----------------------------------------------------------------

def cmd_churn(kube, a):
    """Sequential, one connection: the order of operations on one object is
    the order they are sent. Progress is the number of operations done."""
    rnd = random.Random(a.seed)
    ns = a.namespace
    names = [f"churn-{i:03d}" for i in range(a.count)]
    kinds = {}
    ops = []
    for i, name in enumerate(names):
        kinds[name] = "mapUsers" if i % 3 == 2 else "mapRoles"
        ops.append(("create", name))
    # Interleave changes and deletes; a deleted object is never touched again.
    live = list(names)
    rnd.shuffle(live)
    deleted = set(live[: a.count // 3])
    for name in names:
        ops.append(("groups", name))
    for name in rnd.sample(names, a.count // 2):
        ops.append(("arn", name))
    for name in rnd.sample(names, a.count // 5):
        ops.append(("switch", name))
    for name in rnd.sample(names, a.count // 4):
        ops.append(("two", name))
    tail = ops[a.count:]
    rnd.shuffle(tail)
    ops = ops[: a.count] + tail
    # Each delete goes after the object's last change, at a random later point.
    last = {}
    for i, (_, name) in enumerate(ops):
        last[name] = i
    at = {}
    for name in sorted(deleted):
        at.setdefault(rnd.randint(last[name] + 1, len(ops)), []).append(("delete", name))
    ops = [o for i in range(len(ops) + 1) for o in at.get(i, []) + ops[i:i + 1]]
    version = {n: 0 for n in names}
    progress = a.progress
    done = 0

    def report():
        if progress:
            with open(progress + ".tmp", "w") as f:
                f.write(f"{done} {len(ops)}\n")
            os.replace(progress + ".tmp", progress)

    report()
    t0 = time.monotonic()
    for op, name in ops:
        kind = kinds[name]
        arnf = role_arn if kind == "mapRoles" else user_arn
        if op == "create":
            st, body = kube.request("POST", objs_path(ns),
                                    awsauth(name, kind, [arnf(name)], "u-" + name, ["g-initial"]))
            expect(st, body, (201,), f"create {name}")
        elif op == "delete":
            st, body = kube.request("DELETE", objs_path(ns, name))
            expect(st, body, (200, 202), f"delete {name}")
        else:
            if op == "arn":
                version[name] += 1
            if op == "switch":
                kind = kinds[name] = "mapUsers" if kind == "mapRoles" else "mapRoles"
                arnf = role_arn if kind == "mapRoles" else user_arn
            arns = [arnf(name, version[name])]
            if op == "two":
                arns.append(arnf(name + "-second", version[name]))
            spec = awsauth(name, kind, arns, f"u-{name}-{op}", [f"g-{op}", "g-common"])["spec"]
            # A merge patch leaves the other list; say it is gone.
            spec["mapUsers" if kind == "mapRoles" else "mapRoles"] = None
            st, body = kube.request("PATCH", objs_path(ns, name), {"spec": spec},
                                    ctype="application/merge-patch+json")
            expect(st, body, (200,), f"{op} {name}")
        done += 1
        if done % 5 == 0:
            report()
    report()
    print(json.dumps({"ops": len(ops), "seconds": round(time.monotonic() - t0, 3),
                      "objects": a.count, "deleted": sorted(deleted)}), flush=True)


# ---- cleanup ---------------------------------------------------------------

# ---- pairs -----------------------------------------------------------------

def cmd_pairs(kube, a):
    ns, cm_path = a.namespace, f"/api/v1/namespaces/{a.namespace}/configmaps/{a.configmap}"

    def users_in_cm():
        st, cm = kube.request("GET", cm_path)
        return ((cm.get("data") or {}).get("mapRoles") or "") if st == 200 else ""

    for name in ("pair-a", "pair-b"):
        st, body = kube.request("POST", objs_path(ns),
                                awsauth(name, "mapRoles", [role_arn(name)], name + "-start", ["g"]))
        expect(st, body, (201, 409), "create " + name)
    longest = 0.0
    for i in range(a.count):
        want = [f"pair-a-{i:04d}", f"pair-b-{i:04d}"]
        t0 = time.monotonic()
        for name, user in zip(("pair-a", "pair-b"), want):
            st, body = kube.request("PATCH", objs_path(ns, name),
                                    {"spec": {"mapRoles": [{"rolearn": role_arn(name), "username": user,
                                                            "groups": ["g"]}]}},
                                    ctype="application/merge-patch+json")
            expect(st, body, (200,), "change " + name)
        while True:
            text = users_in_cm()
            if all(f'"{u}"' in text or f" {u}\n" in text for u in want):
                break
            if time.monotonic() - t0 > a.timeout:
                print(json.dumps({"round": i, "missing": [u for u in want if u not in text],
                                  "timeout_s": a.timeout}), flush=True)
                sys.exit(1)
            time.sleep(0.02)
        longest = max(longest, time.monotonic() - t0)
    print(json.dumps({"rounds": a.count, "longest_s": round(longest, 3)}), flush=True)


def cmd_cleanup(kube, a):
    st, lst = kube.request("GET", objs_path(a.namespace))
    if st == 404:
        return
    expect(st, lst, (200,), "list AWSAuth")
    names = [o["metadata"]["name"] for o in lst["items"]]
    it = iter(names)
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                name = next(it, None)
            if name is None:
                return
            kube.request("PATCH", objs_path(a.namespace, name),
                         {"metadata": {"finalizers": None}}, ctype="application/merge-patch+json")
            kube.request("DELETE", objs_path(a.namespace, name))

    ts = [threading.Thread(target=worker) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("create", "bench", "churn", "pairs", "cleanup"):
        s = sub.add_parser(name)
        s.add_argument("-n", "--namespace", required=True)
        if name != "cleanup":
            s.add_argument("-c", "--count", type=int, required=True)
        if name in ("create", "bench"):
            s.add_argument("-t", "--threads", type=int, default=8)
            s.add_argument("--prefix", default="load")
        if name in ("bench", "pairs"):
            s.add_argument("--configmap", default="aws-auth")
            s.add_argument("--timeout", type=float, default=300 if name == "bench" else 10)
        if name == "bench":
            s.add_argument("--cpu-pid", type=int, default=0,
                           help="also report this process's CPU seconds at both points")
        if name == "churn":
            s.add_argument("--seed", type=int, default=None)
            s.add_argument("--progress")
    a = p.parse_args()
    kube = Kube()
    try:
        {"create": cmd_create, "bench": cmd_bench, "churn": cmd_churn, "pairs": cmd_pairs,
         "cleanup": cmd_cleanup}[a.cmd](kube, a)
    finally:
        kube.close()


if __name__ == "__main__":
    main()
