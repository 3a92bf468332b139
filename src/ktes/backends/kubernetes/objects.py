"""What the watches have seen of ktes' Jobs and Pods, by task id, with a wake-up per task.

Fed on the event loop by the watch threads (:class:`ktes.backends.kubernetes.client.Watcher`): single
events, and full lists after each (re)list, from which missing objects count as deleted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ktes.backends.kubernetes.podspec import TASK_ID_LABEL
from ktes.backends.kubernetes.status import Observed


def task_id_of(obj: dict[str, Any]) -> str | None:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    value = labels.get(TASK_ID_LABEL)
    return str(value) if value else None


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


@dataclass
class TaskObjects:
    """One task's Job and Pods as last seen."""

    job: dict[str, Any] | None = None
    job_deleted: bool = False
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    #: someone (run, adopt, cancel) is following this task: keep the entry.
    followers: int = 0

    def observed(self) -> Observed:
        return Observed(
            job=self.job,
            job_gone=self.job is None and self.job_deleted,
            pods=list(self.pods.values()),
            deleted_pods=list(self.deleted_pods.values()),
        )

    def empty(self) -> bool:
        return self.job is None and not self.pods


class ObjectCache:
    def __init__(self) -> None:
        self._tasks: dict[str, TaskObjects] = {}
        #: which kinds have been listed at least once.
        self.synced: dict[str, asyncio.Event] = {"pods": asyncio.Event(), "jobs": asyncio.Event()}

    def entry(self, task_id: str) -> TaskObjects:
        found = self._tasks.get(task_id)
        if found is None:
            found = self._tasks[task_id] = TaskObjects()
        return found

    def follow(self, task_id: str) -> TaskObjects:
        entry = self.entry(task_id)
        entry.followers += 1
        return entry

    def unfollow(self, task_id: str) -> None:
        entry = self._tasks.get(task_id)
        if entry is None:
            return
        entry.followers -= 1
        if entry.followers <= 0:
            del self._tasks[task_id]

    def pod_running(self, task_id: str, container: str) -> str | None:
        """The name of the task's Pod in which ``container`` runs now (None: in none)."""
        entry = self._tasks.get(task_id)
        for name, pod in (entry.pods if entry is not None else {}).items():
            for item in (pod.get("status") or {}).get("containerStatuses") or []:
                if item.get("name") == container and "running" in (item.get("state") or {}):
                    return name
        return None

    def task_ids(self) -> set[str]:
        return {task_id for task_id, entry in self._tasks.items() if not entry.empty()}

    # --- feeding -----------------------------------------------------------------------------------

    def apply(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        task_id = task_id_of(obj)
        if task_id is None:
            return
        if event == "DELETED" and task_id not in self._tasks:
            return
        entry = self.entry(task_id)
        name = _name(obj)
        if kind == "jobs":
            if event == "DELETED":
                entry.job, entry.job_deleted = None, True
            else:
                entry.job, entry.job_deleted = obj, False
        elif event == "DELETED":
            entry.pods.pop(name, None)
            entry.deleted_pods[name] = obj
        else:
            entry.pods[name] = obj
        entry.changed.set()
        if entry.followers <= 0 and entry.empty():
            del self._tasks[task_id]

    def sync(self, kind: str, items: list[dict[str, Any]]) -> None:
        """A full list: apply every object, and count the ones no longer listed as deleted."""
        listed: dict[str, set[str]] = {}
        for obj in items:
            task_id = task_id_of(obj)
            if task_id is not None:
                listed.setdefault(task_id, set()).add(_name(obj))
                self.apply(kind, "MODIFIED", obj)
        for task_id, entry in list(self._tasks.items()):
            names = listed.get(task_id, set())
            if kind == "jobs":
                if entry.job is not None and _name(entry.job) not in names:
                    self.apply(kind, "DELETED", entry.job)
            else:
                for name, pod in list(entry.pods.items()):
                    if name not in names:
                        self.apply(kind, "DELETED", pod)
        self.synced[kind].set()
