"""The interface of the task store. Only :mod:`ktes.store` imports SQLAlchemy.

Methods are synchronous and short (indexed lookups, one transaction each); async callers may call them
directly or through ``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from ktes.tes.models import State, Task, View

#: Edits a task document in place inside the store's transaction (logs, metadata, times).
Edit = Callable[[Task], None]


@dataclass(frozen=True)
class TaskFilter:
    name_prefix: str | None = None
    state: State | None = None
    #: Further states that ``state`` stands for (TES 1.0 presentation: CANCELED also finds CANCELING).
    also_states: tuple[State, ...] = ()
    #: zipped tag_key/tag_value; "" means "has the key".
    tags: dict[str, str] = field(default_factory=dict)
    #: only this user's tasks (None: everyone's, for admins and with auth off).
    owner: str | None = None


@dataclass(frozen=True)
class TaskPage:
    #: JSON documents shaped by the view.
    tasks: list[dict[str, Any]]
    next_page_token: str | None


class Store(Protocol):
    def create(self, task: Task, max_active: int | None = None) -> str:
        """Store a new task as QUEUED with a fresh sortable id and creation_time; return the id.

        With ``max_active`` (and an owner), raise :class:`ktes.errors.OverUserLimit` instead when the owner
        already has that many tasks not yet ended. The count and the insert are one atomic step: requests
        racing each other, through any number of API replicas, never take a user past the limit."""
        ...

    def get(self, task_id: str) -> Task:
        """The whole task. Raises :class:`ktes.errors.TaskNotFound`."""
        ...

    def get_view(self, task_id: str, view: View, owner: str | None = None) -> dict[str, Any]:
        """The task's JSON document shaped by ``view``. Raises TaskNotFound, also when ``owner`` is given and
        the task is not that user's (another user's task answers exactly like an unknown one)."""
        ...

    def owners(self, task_ids: Collection[str]) -> dict[str, str | None]:
        """The owner of each of ``task_ids`` that exists (None: stored while auth was off)."""
        ...

    def count_active(self, owner: str) -> int:
        """How many of ``owner``'s tasks have not ended yet (QUEUED up to CANCELING)."""
        ...

    def queued_in_turns(self, limit: int) -> list[Task]:
        """Up to ``limit`` QUEUED tasks, owners taking turns: each owner's oldest first, then each owner's
        second oldest, and so on; within a turn the owner whose last task left QUEUED longest ago (or never)
        first, then the oldest task. The engine dispatches in this order, so one user's thousands of queued
        tasks never starve another user's one. The store remembers each owner's last dispatch (a transition to
        INITIALIZING), so whose turn it is survives a restart."""
        ...

    def list_tasks(
        self, flt: TaskFilter, page_size: int, page_token: str | None, view: View, max_bytes: int | None = None
    ) -> TaskPage:
        """Newest first, filters applied in the database, keyset cursor in ``page_token``. BASIC and FULL
        pages hold no more than ``max_bytes`` of documents (but at least one task), with a token after them.
        Raises :class:`ktes.errors.InvalidTask` (field ``page_token``) for a token it did not issue."""
        ...

    def transition(self, task_id: str, target: State, edit: Edit | None = None) -> Task | None:
        """Compare-and-set: move to ``target`` if the current state is in
        ``ktes.tes.states.ALLOWED_FROM[target]``, applying ``edit`` in the same transaction.
        Returns the updated task, or ``None`` when the task was not in an allowed state (a lost race is
        normal, not an error). Raises TaskNotFound."""
        ...

    def edit(self, task_id: str, edit: Edit) -> Task:
        """Apply ``edit`` to the task document without changing its state (one transaction)."""
        ...

    def count_by_state(self, owner: str | None = None) -> dict[State, int]:
        """How many tasks (``owner``'s only, when given) are in each state (states without tasks left out):
        one grouped read of the indexed state column."""
        ...

    def tasks_in(self, states: Collection[State], limit: int | None = None) -> list[Task]:
        """Tasks in any of ``states``, oldest first."""
        ...

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query now (readiness)."""
        ...

    def finished_before(self, creation_time: str, limit: int) -> list[str]:
        """Ids of up to ``limit`` tasks in a final state created before ``creation_time`` (RFC 3339), oldest first."""
        ...

    def delete_finished(self, task_ids: Collection[str]) -> int:
        """Delete these tasks, documents and tags, if they are in a final state; return how many went."""
        ...

    def close(self) -> None: ...
