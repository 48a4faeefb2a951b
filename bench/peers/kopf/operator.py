"""The kopf peer of `crdkit aws-auth run`.

AWSAuth objects of WATCH_NAMESPACE (kopf run --namespace) merged into the
ConfigMap CONFIGMAP_NAMESPACE/CONFIGMAP_NAME. Run with run.sh.
"""
import asyncio
import os

import kopf
import kubernetes
import yaml
from kubernetes.client.rest import ApiException

WATCH_NAMESPACE = os.environ["WATCH_NAMESPACE"]
CONFIGMAP_NAMESPACE = os.environ["CONFIGMAP_NAMESPACE"]
CONFIGMAP_NAME = os.environ["CONFIGMAP_NAME"]
FINALIZER = "crdkit.io/aws-auth-peer"
RESOURCE = ("crdkit.io", "v1alpha1", "awsauths")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    # kopf's own finalizer mechanism, under our name instead of kopf's default.
    settings.persistence.finalizer = FINALIZER
    kubernetes.config.load_kube_config()  # KUBECONFIG


@kopf.index(*RESOURCE)
def awsauths(namespace, name, spec, meta, **_):
    """namespace -> (name, roles, users) of every AWSAuth not being deleted."""
    if meta.get("deletionTimestamp"):
        return {}  # drops the object from the index (None would keep its last value)
    roles = [{"rolearn": e["rolearn"], "username": e.get("username"), "groups": list(e.get("groups") or [])}
             for e in spec.get("mapRoles") or []]
    users = [{"userarn": e["userarn"], "username": e.get("username"), "groups": list(e.get("groups") or [])}
             for e in spec.get("mapUsers") or []]
    return {namespace: (name, roles, users)}


def merge(index):
    """All entries, sorted by ARN (then by object name, for duplicates)."""
    objs = sorted(index.get(WATCH_NAMESPACE, []), key=lambda o: o[0])
    roles = sorted((e for o in objs for e in o[1]), key=lambda e: e["rolearn"])
    users = sorted((e for o in objs for e in o[2]), key=lambda e: e["userarn"])
    clean = lambda e: {k: v for k, v in e.items() if v not in (None, [])}
    return [clean(e) for e in roles], [clean(e) for e in users]


def dump(entries):
    return yaml.safe_dump(entries, default_flow_style=False, sort_keys=False)


async def sync_configmap(index, logger):
    """Write the merged entries with the resourceVersion precondition
    (replace = PUT), retrying on 409; create the ConfigMap when missing.
    Other data keys are kept. The blocking client runs in a thread; the
    index is read on the event loop."""
    api = kubernetes.client.CoreV1Api()
    for attempt in range(5):
        try:
            cm = await asyncio.to_thread(api.read_namespaced_config_map, CONFIGMAP_NAME, CONFIGMAP_NAMESPACE)
        except ApiException as e:
            if e.status != 404:
                raise
            cm = None
        roles, users = merge(index)
        want = {"mapRoles": dump(roles), "mapUsers": dump(users)}
        try:
            if cm is None:
                body = kubernetes.client.V1ConfigMap(
                    metadata=kubernetes.client.V1ObjectMeta(name=CONFIGMAP_NAME, namespace=CONFIGMAP_NAMESPACE),
                    data=want)
                await asyncio.to_thread(api.create_namespaced_config_map, CONFIGMAP_NAMESPACE, body)
                what = "created"
            else:
                data = cm.data or {}
                if all(data.get(k) == v for k, v in want.items()):
                    return
                data.update(want)
                cm.data = data
                # cm carries metadata.resourceVersion: a concurrent write gives 409.
                await asyncio.to_thread(api.replace_namespaced_config_map, CONFIGMAP_NAME, CONFIGMAP_NAMESPACE, cm)
                what = "updated"
            logger.info(f"configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME} {what}: "
                        f"{len(roles)} mapRoles, {len(users)} mapUsers")
            return
        except ApiException as e:
            if e.status != 409 or attempt == 4:
                raise
            await asyncio.sleep(0.01 * (attempt + 1))


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
async def apply(awsauths: kopf.Index, logger, **_):
    await sync_configmap(awsauths, logger)


@kopf.on.delete(*RESOURCE)
async def cleanup(awsauths: kopf.Index, logger, **_):
    # The index no longer holds this object (it has a deletionTimestamp);
    # kopf removes the finalizer once this handler has succeeded.
    await sync_configmap(awsauths, logger)
    logger.info("entries removed")
