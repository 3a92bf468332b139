"""What backends report about a task while running it. The engine turns these into state and logs.

Backends never touch the store; they call a :class:`Reporter` with these values, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ktes.tes.models import ExecutorLog, OutputFileLog, State


@dataclass(frozen=True)
class Initializing:
    """The backend took the task and is preparing it (staging inputs, creating the pod)."""

    start_time: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecutorStarted:
    """Executor ``index`` started. The first one moves the task to RUNNING."""

    index: int
    start_time: str


@dataclass(frozen=True)
class ExecutorFinished:
    """Executor ``index`` ended; ``log`` carries the real exit code, times and stdout/stderr tails."""

    index: int
    log: ExecutorLog


@dataclass(frozen=True)
class OutputsUploaded:
    outputs: list[OutputFileLog]


@dataclass(frozen=True)
class SystemLog:
    """A line for ``logs[].system_logs`` (a warning, a host name, a retry)."""

    line: str


@dataclass(frozen=True)
class Ended:
    """The task is over. ``state`` is COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR or PREEMPTED.

    ``reason`` is a plain sentence for the user (which image, which URL, which limit); it goes to
    ``system_logs``. ``None`` when there is nothing to explain.
    """

    state: State
    end_time: str
    reason: str | None = None


Observation = Initializing | ExecutorStarted | ExecutorFinished | OutputsUploaded | SystemLog | Ended


class Reporter(Protocol):
    async def __call__(self, task_id: str, observation: Observation, /) -> None: ...
