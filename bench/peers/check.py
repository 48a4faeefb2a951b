#!/usr/bin/env python3
"""The scenario of check.sh, against one operator already running in NS.

  check.py run --kubectl K --namespace NS --finalizer F --out FILE [--pid P]
      create 20 AWSAuth, wait for the ConfigMap, add other data keys to it,
      update 3, delete 3 (each must be gone only after its entries are),
      check the other keys are still there, write the final entry set of
      NS/aws-auth to FILE (JSON). Exit 1 on any failure.
  check.py compare REFERENCE.json OTHER.json
      exit 1 and print a diff when the two entry sets differ.

Entries are compared as parsed data: (kind, arn, username, groups), a
missing username as "" and missing groups as [].
"""
import argparse
import json
import subprocess
import sys
import time

import yaml

CM = "aws-auth"
TIMEOUT = 90.0


class Failure(Exception):
    pass


def log(msg):
    print(f"check.py: {msg}", file=sys.stderr, flush=True)


class Cluster:
    def __init__(self, kubectl, namespace, pid=None):
        self.kubectl = kubectl
        self.ns = namespace
        self.pid = pid

    def operator_alive(self):
        """False once the operator's process has exited (or is a zombie)."""
        if self.pid is None:
            return True
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def check_operator(self):
        if not self.operator_alive():
            raise Failure(f"the operator (pid {self.pid}) has exited")

    def run(self, *args, stdin=None, check=True):
        p = subprocess.run([self.kubectl, "-n", self.ns, *args], input=stdin, text=True,
                           capture_output=True)
        if check and p.returncode != 0:
            raise Failure(f"kubectl {' '.join(args)}: {p.stderr.strip()}")
        return p

    def apply(self, objs):
        self.run("create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))

    def awsauths(self):
        out = self.run("get", "awsauths.crdkit.io", "-o", "json").stdout
        return {o["metadata"]["name"]: o for o in json.loads(out)["items"]}

    def configmap_entries(self):
        """The entry set of aws-auth, or None when it does not exist."""
        p = self.run("get", "configmap", CM, "-o", "json", check=False)
        if p.returncode != 0:
            if "NotFound" in p.stderr:
                return None
            raise Failure(f"kubectl get configmap: {p.stderr.strip()}")
        data = json.loads(p.stdout).get("data") or {}
        return parse_entries(data)


def parse_entries(data):
    """(sorted entry tuples, list of problems) from ConfigMap data."""
    entries, problems = [], []
    for key, arnkey in (("mapRoles", "rolearn"), ("mapUsers", "userarn")):
        text = data.get(key)
        if text is None:
            continue
        try:
            items = yaml.safe_load(text) or []
        except yaml.YAMLError as e:
            problems.append(f"{key} does not parse: {e}")
            continue
        arns = []
        for it in items:
            arn = it.get(arnkey)
            arns.append(arn)
            entries.append((key, str(arn), str(it.get("username") or ""),
                            tuple(str(g) for g in (it.get("groups") or []))))
        if arns != sorted(arns):
            problems.append(f"{key} is not sorted by ARN: {arns}")
    return sorted(entries), problems


def spec_entries(objs):
    out = []
    for o in objs:
        for key, arnkey in (("mapRoles", "rolearn"), ("mapUsers", "userarn")):
            for it in o["spec"].get(key, []):
                out.append((key, it[arnkey], it.get("username", ""), tuple(it.get("groups", []))))
    return sorted(out)


def make_objects():
    """20 AWSAuth: even ones map roles, odd ones users; 1 or 2 entries each."""
    objs = []
    for i in range(20):
        name = f"team-{i:02d}"
        acct = f"1111222233{i:02d}"
        n = 1 + i % 3 // 2  # 1, 1, 2, 1, 1, 2, ...
        if i % 2 == 0:
            entries = [{"rolearn": f"arn:aws:iam::{acct}:role/team-{i:02d}-{j}",
                        "username": f"team-{i:02d}:{{{{SessionName}}}}",
                        "groups": [f"team-{i:02d}", "viewers"]} for j in range(n)]
            spec = {"mapRoles": entries}
        else:
            entries = [{"userarn": f"arn:aws:iam::{acct}:user/user-{i:02d}-{j}",
                        "username": f"user-{i:02d}-{j}",
                        "groups": [f"team-{i:02d}"]} for j in range(n)]
            spec = {"mapUsers": entries}
        objs.append({"apiVersion": "crdkit.io/v1alpha1", "kind": "AWSAuth",
                     "metadata": {"name": name}, "spec": spec})
    objs[4]["spec"]["mapRoles"][0]["groups"] = ["system:masters"]
    del objs[7]["spec"]["mapUsers"][0]["groups"]  # no groups at all
    return objs


def wait_for(cluster, want, what):
    deadline = time.monotonic() + TIMEOUT
    last = None
    while time.monotonic() < deadline:
        cluster.check_operator()
        got = cluster.configmap_entries()
        if got is not None:
            entries, problems = got
            if entries == want:
                if problems:
                    raise Failure(f"{what}: " + "; ".join(problems))
                return entries
            last = entries
        time.sleep(0.2)
    raise Failure(f"{what}: the ConfigMap did not converge in {TIMEOUT:.0f}s\n" +
                  diff(want, last or [], "expected", "configmap"))


def diff(a, b, an, bn):
    sa, sb = set(a), set(b)
    lines = [f"  - only in {an}: {e}" for e in sorted(sa - sb)]
    lines += [f"  + only in {bn}: {e}" for e in sorted(sb - sa)]
    return "\n".join(lines) if lines else "  (same set)"


def scenario(cluster, finalizer):
    objs = make_objects()
    t0 = time.monotonic()
    cluster.apply(objs)
    want = spec_entries(objs)
    wait_for(cluster, want, "after creating 20")
    log(f"20 created: {len(want)} entries in {time.monotonic() - t0:.1f}s")

    # A key the operators do not own: it must survive every later write.
    foreign = {"mapAccounts": "- \"111122223333\"\n", "note": "kept by all"}
    cluster.run("patch", "configmap", CM, "--type", "merge", "-p", json.dumps({"data": foreign}))

    # Every object carries the finalizer soon (crdkit adds it right after
    # the entries are written; the peers before), so the deletes below go
    # through the finalizer path.
    deadline = time.monotonic() + TIMEOUT
    while True:
        live = cluster.awsauths()
        missing = [n for n, o in live.items() if finalizer not in (o["metadata"].get("finalizers") or [])]
        if not missing:
            break
        if time.monotonic() > deadline:
            raise Failure(f"objects without the finalizer {finalizer} after {TIMEOUT:.0f}s: {missing}")
        cluster.check_operator()
        time.sleep(0.2)

    # Update 3: groups of a role entry, the username of a user, and one
    # object's ARN replaced plus an entry added.
    t0 = time.monotonic()
    by_name = {o["metadata"]["name"]: o for o in objs}
    by_name["team-02"]["spec"]["mapRoles"][0]["groups"] = ["team-02", "editors"]
    by_name["team-03"]["spec"]["mapUsers"][0]["username"] = "renamed-03"
    by_name["team-06"]["spec"]["mapRoles"] = [
        {"rolearn": "arn:aws:iam::111122223306:role/team-06-new", "username": "team-06", "groups": ["team-06"]},
        {"rolearn": "arn:aws:iam::111122223306:role/team-06-extra", "username": "team-06-extra", "groups": []},
    ]
    for n in ("team-02", "team-03", "team-06"):
        cluster.run("patch", "awsauths.crdkit.io", n, "--type", "merge",
                    "-p", json.dumps({"spec": by_name[n]["spec"]}))
    want = spec_entries(objs)
    wait_for(cluster, want, "after updating 3")
    log(f"3 updated in {time.monotonic() - t0:.1f}s")

    # Delete 3: each object may disappear only once its entries are gone.
    t0 = time.monotonic()
    gone_names = ["team-05", "team-10", "team-17"]
    gone = {n: {e[1] for e in spec_entries([by_name[n]])} for n in gone_names}
    cluster.run("delete", "awsauths.crdkit.io", *gone_names, "--wait=false")
    objs = [o for o in objs if o["metadata"]["name"] not in gone]
    want = spec_entries(objs)
    deadline = time.monotonic() + TIMEOUT
    pending = set(gone_names)
    while pending and time.monotonic() < deadline:
        cluster.check_operator()
        present = cluster.awsauths()
        cm = cluster.configmap_entries()  # read after the objects
        arns = {e[1] for e in (cm[0] if cm else [])}
        for n in sorted(pending):
            if n not in present:
                left = gone[n] & arns
                if left:
                    raise Failure(f"{n} was deleted but its entries are still there: {sorted(left)}")
                pending.discard(n)
        time.sleep(0.2)
    if pending:
        raise Failure(f"not deleted after {TIMEOUT:.0f}s (finalizer never removed): {sorted(pending)}")
    final = wait_for(cluster, want, "after deleting 3")
    data = json.loads(cluster.run("get", "configmap", CM, "-o", "json").stdout).get("data") or {}
    changed = {k: data.get(k) for k, v in foreign.items() if data.get(k) != v}
    if changed:
        raise Failure(f"other data keys were not kept: {changed}")
    log(f"3 deleted (entries removed before the finalizer) in {time.monotonic() - t0:.1f}s")
    return final


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--kubectl", required=True)
    r.add_argument("--namespace", required=True)
    r.add_argument("--finalizer", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--pid", type=int, help="the operator's process: stop waiting when it exits")
    c = sub.add_parser("compare")
    c.add_argument("reference")
    c.add_argument("other")
    a = ap.parse_args()

    if a.cmd == "compare":
        ref = [tuple(e[:3]) + (tuple(e[3]),) for e in json.load(open(a.reference))]
        oth = [tuple(e[:3]) + (tuple(e[3]),) for e in json.load(open(a.other))]
        if ref == oth:
            print(f"same {len(ref)} entries")
            return 0
        print(f"MISMATCH ({len(ref)} vs {len(oth)} entries):")
        print(diff(ref, oth, a.reference, a.other))
        return 1

    try:
        final = scenario(Cluster(a.kubectl, a.namespace, a.pid), a.finalizer)
    except Failure as e:
        print(f"FAILED: {e}")
        return 1
    with open(a.out, "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(e) for e in final) + "\n]\n")
    print(f"ok: {len(final)} entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
