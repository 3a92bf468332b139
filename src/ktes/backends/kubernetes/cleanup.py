"""Removing what ktes made in its task namespace, for operators: the objects of given (purged) tasks, or
everything (``ktes admin uninstall``, the Helm chart's pre-delete hook): task Jobs, Pods and Secrets, the
executors' helper ConfigMaps, and the engine's Lease. Helm does not know these objects; ktes labels them all.
"""

from __future__ import annotations

from collections.abc import Iterable

from ktes.backends.kubernetes.client import Kube
from ktes.backends.kubernetes.objects import task_id_of
from ktes.backends.kubernetes.podspec import ENTRYPOINT_LABEL, SELECTOR, TASK_ID_LABEL, job_name
from ktes.config import Settings

GRACE_SECONDS = 5


async def remove_tasks(kube: Kube, task_ids: Iterable[str]) -> None:
    """Delete each task's Job, Pods and Secret ("not found" is fine)."""
    for task_id in task_ids:
        await kube.delete_job(job_name(task_id))
        await kube.delete_pods(f"{SELECTOR},{TASK_ID_LABEL}={task_id}", GRACE_SECONDS)
        await kube.delete_secret(job_name(task_id))


async def remove_everything(kube: Kube, settings: Settings) -> dict[str, int]:
    """Every task's objects, the helper ConfigMaps and the Lease; how many of each kind went."""
    task_ids: set[str] = set()
    for kind in ("jobs", "pods", "secrets"):
        for obj in await kube.list_objects(kind, SELECTOR):
            task_id = task_id_of(obj)
            if task_id is not None:
                task_ids.add(task_id)
    await remove_tasks(kube, sorted(task_ids))
    helpers = await kube.list_objects("configmaps", f"{SELECTOR},{ENTRYPOINT_LABEL}")
    for config_map in helpers:
        await kube.delete_config_map(config_map["metadata"]["name"])
    lease = await kube.read_lease(settings.k8s_lease_name)
    if lease is not None:
        await kube.delete_lease(settings.k8s_lease_name)
    return {"tasks": len(task_ids), "configmaps": len(helpers), "leases": int(lease is not None)}
