"""The one interface every backend implements.

A backend runs a task and reports :mod:`ktes.run.observations` to the engine; it never imports the
store. Everything a backend creates (containers, work directories, Jobs, Pods) carries the task id, so after a
restart the engine can rebuild the picture from the database plus a label search.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from typing import Literal, Protocol, runtime_checkable

from ktes.run.observations import Reporter
from ktes.tes.models import Task

#: An executor's output stream.
Stream = Literal["stdout", "stderr"]


class EndOfOutput:
    """What a follow (``Backend.executor_output`` with ``follow``) may yield last: it read the stream to the
    executor's end, so every byte has been yielded, whether or not the task's logs say it has ended yet."""

    def __repr__(self) -> str:
        return "END_OF_OUTPUT"


END_OF_OUTPUT = EndOfOutput()


class Leadership(Protocol):
    """Whether this replica may run the engine, when several serve the same tasks (the Kubernetes Lease).

    A backend whose tasks only one process can run (the local one) offers none: its engine always runs.
    ``ktes serve`` composes it with the engine (:mod:`ktes.engine.runner`); the backend never drives the
    engine itself.
    """

    async def acquire(self) -> None:
        """Return once this replica leads (waits, retrying, for as long as it takes)."""
        ...

    async def hold(self) -> None:
        """Keep leading (renewing); return when leadership is lost."""
        ...

    async def release(self) -> None:
        """Stop leading now, so another replica takes over at once. Never raises."""
        ...

    async def close(self) -> None:
        """Release and free the connection."""
        ...


class Backend(Protocol):
    #: "local", "kubernetes", ...
    name: str

    def backend_parameters(self) -> list[str]:
        """The ``tesResources.backend_parameters`` keys this backend honours (lowercase)."""
        ...

    async def start(self) -> None:
        """Connect, detect the runtime, start watches. Called once before anything else."""
        ...

    async def close(self) -> None:
        """Stop watches and background work. Running tasks keep running (a restart re-adopts them)."""
        ...

    def capacity(self) -> dict[str, str]:
        """What this backend can run at once and where, in a few labelled values (for the service page)."""
        ...

    def admit(self, task: Task) -> bool:
        """Reserve room for ``task`` if there is some now. The reservation ends when run/adopt returns."""
        ...

    async def run(self, task: Task, report: Reporter) -> None:
        """Run ``task`` to its end, reporting observations, the last one :class:`Ended`.

        Raising instead is a bug or an unexpected failure: the engine records SYSTEM_ERROR with the message.
        A cancel (``cancel`` from another coroutine) makes ``run`` return soon without reporting Ended.
        """
        ...

    async def adopt(self, task: Task, report: Reporter) -> None:
        """After a restart: ``task`` was INITIALIZING or RUNNING. Re-attach and finish it like ``run``,
        or report ``Ended(SYSTEM_ERROR, reason)`` when it cannot be (its containers or Pod are gone)."""
        ...

    async def cancel(self, task_id: str) -> None:
        """Stop the task and delete everything it made; return once all of it is gone. Idempotent."""
        ...

    async def sweep(self, active_task_ids: Iterable[str]) -> list[str]:
        """Delete what belongs to tasks not in ``active_task_ids``; return the task ids cleaned."""
        ...

    def executor_output(
        self, task: Task, index: int, stream: Stream, offset: int, follow: bool
    ) -> AsyncGenerator[bytes | EndOfOutput, None]:
        """Executor ``index``'s ``stream`` bytes from byte ``offset`` while the backend still holds them.

        The one place that knows where those bytes are. With ``follow``, new bytes are yielded as they are
        written until the executor has ended (then :data:`END_OF_OUTPUT`, when the backend knows the end
        before the task's logs do); without, up to the current end. Yields nothing when the backend holds
        none (the executor has not started, or the task's files are gone: the tail stored in the task's
        logs is then what is left). Files a task could have made are opened beneath their directory without
        following links, or read inside the task's own container.
        """
        ...


@runtime_checkable
class ReportsReadiness(Protocol):
    """A backend that can say it cannot take tasks now (for ``/readyz`` and the QUEUED tasks' logs)."""

    def not_ready_reason(self) -> str | None:
        """Why no task can start now, as a sentence (None: tasks can start)."""
        ...
