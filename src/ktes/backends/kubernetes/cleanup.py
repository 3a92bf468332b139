"""Removing what ktes made in its task namespace, for operators: the objects of given (purged) tasks, or
everything of this installation (``ktes admin uninstall``, the Helm chart's post-delete hook): task Jobs,
Pods and Secrets, the engine's Lease, and the executors' helper ConfigMaps once no installation uses them.
Helm does not know these objects; ktes labels them all.
"""

from __future__ import annotations

from collections.abc import Iterable

from ktes.backends.kubernetes.client import Kube
from ktes.backends.kubernetes.installation import lease_name, with_installation
from ktes.backends.kubernetes.objects import task_id_of
from ktes.backends.kubernetes.podspec import (
    ENTRYPOINT_LABEL,
    SELECTOR,
    TASK_ID_LABEL,
    installation_selector,
    job_name,
)
from ktes.config import Settings

GRACE_SECONDS = 5


async def remove_tasks(kube: Kube, task_ids: Iterable[str]) -> None:
    """Delete each task's Job, Pods and Secret ("not found" is fine)."""
    for task_id in task_ids:
        await kube.delete_job(job_name(task_id))
        await kube.delete_pods(f"{SELECTOR},{TASK_ID_LABEL}={task_id}", GRACE_SECONDS)
        await kube.delete_secret(job_name(task_id))


async def remove_everything(kube: Kube, settings: Settings) -> dict[str, int]:
    """This installation's task objects and Lease, and the helper ConfigMaps once no other installation's
    task is left in the namespace (they share them); how many of each kind went."""
    settings = with_installation(settings)
    own = installation_selector(settings)
    task_ids: set[str] = set()
    for kind in ("jobs", "pods", "secrets"):
        for obj in await kube.list_objects(kind, own):
            task_id = task_id_of(obj)
            if task_id is not None:
                task_ids.add(task_id)
    await remove_tasks(kube, sorted(task_ids))
    helpers: list[dict[str, object]] = []
    if not await kube.list_objects("jobs", SELECTOR):
        helpers = await kube.list_objects("configmaps", f"{SELECTOR},{ENTRYPOINT_LABEL}")
        for config_map in helpers:
            await kube.delete_config_map(str(config_map["metadata"]["name"]))  # type: ignore[index]
    name = lease_name(settings)
    lease = await kube.read_lease(name)
    if lease is not None:
        await kube.delete_lease(name)
    return {"tasks": len(task_ids), "configmaps": len(helpers), "leases": int(lease is not None)}
