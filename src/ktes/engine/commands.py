"""State changes requested from outside the engine loop (the API), through the one state machine."""

from __future__ import annotations

from ktes.store.base import Store
from ktes.tes.models import State, Task
from ktes.tes.states import is_terminal


def request_cancel(store: Store, task_id: str) -> Task:
    """Cancel a task: CANCELING now; a QUEUED task has nothing downstream, so it is CANCELED at once.

    A terminal task is left as it is. The engine tears down active tasks and then sets CANCELED.
    Raises :class:`ktes.errors.TaskNotFound`.
    """
    task = store.get(task_id)
    if task.state is None or is_terminal(task.state) or task.state == State.CANCELING:
        return task
    was_queued = task.state == State.QUEUED
    moved = store.transition(task_id, State.CANCELING)
    if moved is None:  # it moved on meanwhile (started, or ended): try again from its new state
        return request_cancel(store, task_id)
    if was_queued:
        return store.transition(task_id, State.CANCELED) or store.get(task_id)
    return moved
