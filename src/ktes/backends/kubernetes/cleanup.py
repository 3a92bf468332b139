"""Removing what ktes made in its task namespace, for operators: the objects of given (purged) tasks, or
everything of one installation (``ktes admin uninstall``, the Helm chart's post-delete hook): task Jobs, Pods
and Secrets, the engine's Lease, and the executors' helper ConfigMaps once no ktes task object is left in the
namespace (they are shared by the installations there). Helm does not know these objects; ktes labels them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from ktes.backends.kubernetes.client import Kube
from ktes.backends.kubernetes.installation import INSTALLATION_LABEL, lease_name
from ktes.backends.kubernetes.objects import task_id_of
from ktes.backends.kubernetes.podspec import ENTRYPOINT_LABEL, SELECTOR, TASK_ID_LABEL, job_name
from ktes.config import Settings

GRACE_SECONDS = 5
#: how long the uninstall waits for deleted Pods to be gone
GONE_SECONDS = 90
KINDS = ("jobs", "pods", "secrets")


async def remove_tasks(kube: Kube, task_ids: Iterable[str]) -> None:
    """Delete each task's Job, Pods and Secret ("not found" is fine)."""
    for task_id in task_ids:
        await kube.delete_job(job_name(task_id))
        await kube.delete_pods(f"{SELECTOR},{TASK_ID_LABEL}={task_id}", GRACE_SECONDS)
        await kube.delete_secret(job_name(task_id))


async def _task_ids(kube: Kube, selector: str) -> set[str]:
    found: set[str] = set()
    for kind in KINDS:
        for obj in await kube.list_objects(kind, selector):  # type: ignore[arg-type]
            task_id = task_id_of(obj)
            if task_id is not None:
                found.add(task_id)
    return found


async def remove_everything(kube: Kube, settings: Settings) -> dict[str, int]:
    """Every task object of this installation (``k8s_installation_id``; unset: of every installation), its
    Lease, and the helper ConfigMaps when no task object is left; how many of each went."""
    installation = settings.k8s_installation_id
    selector = f"{SELECTOR},{INSTALLATION_LABEL}={installation}" if installation else SELECTOR
    task_ids = await _task_ids(kube, selector)
    await remove_tasks(kube, sorted(task_ids))
    deadline = time.monotonic() + GONE_SECONDS
    while await _task_ids(kube, selector) and time.monotonic() < deadline:  # noqa: ASYNC110 (polling the API server)
        await asyncio.sleep(1)
    helpers: list[dict[str, object]] = []
    if not await _task_ids(kube, SELECTOR):  # another installation's tasks still mount them
        helpers = await kube.list_objects("configmaps", f"{SELECTOR},{ENTRYPOINT_LABEL}")
        for config_map in helpers:
            await kube.delete_config_map(str(config_map["metadata"]["name"]))  # type: ignore[index]
    leases = 0
    if installation or settings.k8s_lease_name:
        name = lease_name(settings)
        if await kube.read_lease(name) is not None:
            await kube.delete_lease(name)
            leases = 1
    return {"tasks": len(task_ids), "configmaps": len(helpers), "leases": leases}
