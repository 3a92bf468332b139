"""The in-memory store keeps the Store contract the engine relies on."""

from __future__ import annotations

import pytest

from ktes.errors import InvalidTask, TaskNotFound
from ktes.store.base import TaskFilter
from ktes.store.memory import MemoryStore
from ktes.tes.models import Executor, State, Task, TaskLog, View


def task(name: str, **tags: str) -> Task:
    return Task(name=name, tags=tags or None, executors=[Executor(image="i", command=["true"])])


def test_create_assigns_sortable_ids_and_queues() -> None:
    store = MemoryStore()
    ids = [store.create(task(f"t{i}")) for i in range(20)]
    assert ids == sorted(ids)
    first = store.get(ids[0])
    assert first.state == State.QUEUED and first.creation_time
    with pytest.raises(TaskNotFound):
        store.get("tnothere")


def test_transition_is_compare_and_set() -> None:
    store = MemoryStore()
    task_id = store.create(task("a"))
    assert store.transition(task_id, State.RUNNING) is None  # not from QUEUED
    moved = store.transition(task_id, State.INITIALIZING, lambda t: setattr(t, "logs", [TaskLog(start_time="s")]))
    assert moved is not None and moved.state == State.INITIALIZING
    assert store.get(task_id).logs[0].start_time == "s"  # type: ignore[index]


def test_edit_never_changes_state() -> None:
    store = MemoryStore()
    task_id = store.create(task("a"))
    store.edit(task_id, lambda t: setattr(t, "state", State.COMPLETE))
    assert store.get(task_id).state == State.QUEUED


def test_tasks_in_oldest_first_with_limit() -> None:
    store = MemoryStore()
    ids = [store.create(task(f"t{i}")) for i in range(5)]
    store.transition(ids[1], State.CANCELING)
    assert [t.id for t in store.tasks_in({State.QUEUED}, limit=3)] == [ids[0], ids[2], ids[3]]


def test_listing_newest_first_filtered_and_paged() -> None:
    store = MemoryStore()
    ids = [store.create(task(f"run-{i}", project="x" if i % 2 else "y")) for i in range(7)]
    store.create(task("other"))
    flt = TaskFilter(name_prefix="run-", tags={"project": "x"})
    first = store.list_tasks(flt, 2, None, View.MINIMAL)
    assert [d["id"] for d in first.tasks] == [ids[5], ids[3]]
    assert first.next_page_token is not None
    second = store.list_tasks(flt, 2, first.next_page_token, View.MINIMAL)
    assert [d["id"] for d in second.tasks] == [ids[1]] and second.next_page_token is None
    with pytest.raises(InvalidTask):
        store.list_tasks(flt, 2, "not-a-token", View.MINIMAL)


def test_views_shape_documents() -> None:
    store = MemoryStore()
    task_id = store.create(task("a"))
    assert store.get_view(task_id, View.MINIMAL) == {"id": task_id, "state": "QUEUED"}
    assert store.get_view(task_id, View.FULL)["name"] == "a"
