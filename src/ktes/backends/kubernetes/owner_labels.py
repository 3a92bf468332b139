"""A task's owner on Kubernetes (pure): the ``ktes.owner`` label of its Job and Pod, and the Kueue LocalQueue
the operator maps the owner to (``k8s_user_queues``, ``*`` for everyone else)."""

from __future__ import annotations

import hashlib
import re

from ktes.config import Settings
from ktes.tes.models import Task

OWNER_LABEL = "ktes.owner"


def owner_label_value(owner: str) -> str:
    """``owner`` as a label value (at most 63 of ``[A-Za-z0-9._-]``, alphanumeric at both ends); a name that had
    to change gets a hash of the original, so two users never share a value."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", owner)[:63].strip("._-")
    if clean == owner:
        return clean
    digest = hashlib.sha256(owner.encode()).hexdigest()[:10]
    return f"{clean[:52].strip('._-')}-{digest}".lstrip("-")


def owner_labels(task: Task) -> dict[str, str]:
    """``{"ktes.owner": ...}`` for a task with an owner, else nothing."""
    return {OWNER_LABEL: owner_label_value(task.owner)} if task.owner else {}


def user_queue(task: Task, settings: Settings) -> str | None:
    """The LocalQueue ``k8s_user_queues`` maps the owner to, if any."""
    queues = settings.k8s_user_queues
    if not queues:
        return None
    return queues.get(task.owner or "", queues.get("*"))
