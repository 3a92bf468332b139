"""An in-memory :class:`ktes.store.base.Store`, for tests and experiments. Nothing survives the process.

It keeps the SQL store's rules: the same ids (sortable by creation time), compare-and-set transitions from
:data:`ktes.tes.states.ALLOWED_FROM`, newest-first listing with the same opaque cursor, the same views.
Every method takes one lock, so threads (the API's thread pool) and the engine may share an instance.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Any

import orjson

from ktes import metrics
from ktes.errors import OverUserLimit, TaskNotFound
from ktes.store import pagination
from ktes.store.base import Edit, TaskFilter, TaskPage
from ktes.tes import views
from ktes.tes.ids import new_id, rfc3339
from ktes.tes.models import State, Task, View
from ktes.tes.states import ALLOWED_FROM, TERMINAL


def _matches(task: Task, flt: TaskFilter) -> bool:
    if flt.owner is not None and task.owner != flt.owner:
        return False
    if flt.state is not None and task.state != flt.state and task.state not in flt.also_states:
        return False
    if flt.name_prefix is not None and not (task.name or "").startswith(flt.name_prefix):
        return False
    tags = task.tags or {}
    return all(key in tags and (value == "" or tags[key] == value) for key, value in flt.tags.items())


class MemoryStore:
    """A dict of task documents behind a lock."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()
        #: owner -> serial number of their last dispatch (fair turns, as the SQL store's owner_dispatches)
        self._dispatched: dict[str | None, int] = {}

    def create(self, task: Task, max_active: int | None = None) -> str:
        stored = task.model_copy(deep=True)
        task_id, ms = new_id()
        stored.id = task_id
        stored.state = State.QUEUED
        stored.creation_time = rfc3339(ms)
        with self._lock:
            if max_active is not None and task.owner is not None and self._active(task.owner) >= max_active:
                raise OverUserLimit(max_active)
            self._tasks[task_id] = stored
        return task_id

    def _find(self, task_id: str) -> Task:
        try:
            return self._tasks[task_id]
        except KeyError:
            raise TaskNotFound(task_id) from None

    def get(self, task_id: str) -> Task:
        with self._lock:
            return self._find(task_id).model_copy(deep=True)

    def get_view(self, task_id: str, view: View, owner: str | None = None) -> dict[str, Any]:
        with self._lock:
            task = self._find(task_id)
            if owner is not None and task.owner != owner:
                raise TaskNotFound(task_id)
            return views.shape(views.document(task), view)

    def owners(self, task_ids: Collection[str]) -> dict[str, str | None]:
        with self._lock:
            return {i: self._tasks[i].owner for i in task_ids if i in self._tasks}

    def count_active(self, owner: str) -> int:
        with self._lock:
            return self._active(owner)

    def _active(self, owner: str) -> int:
        return sum(1 for t in self._tasks.values() if t.owner == owner and t.state not in TERMINAL)

    def queued_in_turns(self, limit: int) -> list[Task]:
        with self._lock:
            turns: dict[str | None, int] = {}
            ranked: list[tuple[int, int, str, Task]] = []
            for task_id, task in sorted(self._tasks.items()):
                if task.state == State.QUEUED:
                    turn = turns[task.owner] = turns.get(task.owner, 0) + 1
                    ranked.append((turn, self._dispatched.get(task.owner, 0), task_id, task))
            ranked.sort(key=lambda item: item[:3])
            return [task.model_copy(deep=True) for _, _, _, task in ranked[:limit]]

    def list_tasks(
        self, flt: TaskFilter, page_size: int, page_token: str | None, view: View, max_bytes: int | None = None
    ) -> TaskPage:
        after = pagination.decode(page_token) if page_token is not None else None
        with self._lock:
            chosen: list[Task] = []
            more = False
            for task_id in sorted(self._tasks, reverse=True):
                if after is not None and task_id >= after:
                    continue
                task = self._tasks[task_id]
                if not _matches(task, flt):
                    continue
                if len(chosen) == page_size:
                    more = True
                    break
                chosen.append(task)
            docs = [views.shape(views.document(task), view) for task in chosen]
        if view is not View.MINIMAL:
            pairs, cut = pagination.take_page(
                zip(chosen, docs, strict=True), page_size, max_bytes, lambda pair: len(orjson.dumps(pair[1]))
            )
            more = more or cut
            chosen, docs = [task for task, _ in pairs], [doc for _, doc in pairs]
        token = pagination.encode(chosen[-1].id) if more and chosen and chosen[-1].id else None
        return TaskPage(tasks=docs, next_page_token=token)

    def transition(self, task_id: str, target: State, edit: Edit | None = None) -> Task | None:
        with self._lock:
            current = self._find(task_id)
            if current.state not in ALLOWED_FROM[target]:
                return None
            metrics.transition(current.state or State.UNKNOWN, target)
            changed = current.model_copy(deep=True)
            changed.state = target
            if edit is not None:
                edit(changed)
            self._tasks[task_id] = changed
            if target is State.INITIALIZING:  # only ever from QUEUED: dispatched
                self._dispatched[changed.owner] = max(self._dispatched.values(), default=0) + 1
            return changed.model_copy(deep=True)

    def edit(self, task_id: str, edit: Edit) -> Task:
        with self._lock:
            changed = self._find(task_id).model_copy(deep=True)
            state = changed.state
            edit(changed)
            changed.state = state
            self._tasks[task_id] = changed
            return changed.model_copy(deep=True)

    def count_by_state(self, owner: str | None = None) -> dict[State, int]:
        with self._lock:
            counts: dict[State, int] = {}
            for task in self._tasks.values():
                if task.state is not None and (owner is None or task.owner == owner):
                    counts[task.state] = counts.get(task.state, 0) + 1
            return counts

    def tasks_in(self, states: Collection[State], limit: int | None = None) -> list[Task]:
        with self._lock:
            found = [task for _, task in sorted(self._tasks.items()) if task.state in states]
            if limit is not None:
                found = found[:limit]
            return [task.model_copy(deep=True) for task in found]

    def ping(self) -> None:
        """Always reachable."""

    def finished_before(self, creation_time: str, limit: int) -> list[str]:
        with self._lock:
            found = [
                task_id
                for task_id, task in sorted(self._tasks.items())
                if task.state in TERMINAL and (task.creation_time or "") < creation_time
            ]
        return found[:limit]

    def delete_finished(self, task_ids: Collection[str]) -> int:
        with self._lock:
            gone = [i for i in task_ids if i in self._tasks and self._tasks[i].state in TERMINAL]
            for task_id in gone:
                del self._tasks[task_id]
        return len(gone)

    def close(self) -> None:
        """Nothing to release."""
