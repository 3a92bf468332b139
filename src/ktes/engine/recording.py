"""How each observation changes a task document: pure edits, applied by the engine inside a store call."""

from __future__ import annotations

from collections.abc import Callable

from ktes.run.observations import (
    Ended,
    ExecutorFinished,
    ExecutorStarted,
    Initializing,
    Observation,
    OutputsUploaded,
    SystemLog,
)
from ktes.tes.models import ExecutorLog, OutputFileLog, Task, TaskLog


def task_log(task: Task) -> TaskLog:
    """The task's (first and only) attempt log, made if missing."""
    if not task.logs:
        task.logs = [TaskLog()]
    return task.logs[0]


def add_system_log(line: str) -> Callable[[Task], None]:
    def edit(task: Task) -> None:
        log = task_log(task)
        log.system_logs = [*(log.system_logs or []), line]

    return edit


def last_system_log(task: Task) -> str | None:
    lines = (task.logs[0].system_logs if task.logs else None) or []
    return lines[-1] if lines else None


def initialized(obs: Initializing) -> Callable[[Task], None]:
    def edit(task: Task) -> None:
        log = task_log(task)
        if log.start_time is None:  # a re-adopted task keeps its first start
            log.start_time = obs.start_time
        log.metadata = {**(log.metadata or {}), **obs.metadata}

    return edit


def executor_finished(obs: ExecutorFinished) -> Callable[[Task], None]:
    def edit(task: Task) -> None:
        logs: list[ExecutorLog] = task_log(task).logs
        if obs.index < len(logs):
            logs[obs.index] = obs.log
        else:
            logs.append(obs.log)

    return edit


def outputs_uploaded(outputs: list[OutputFileLog]) -> Callable[[Task], None]:
    def edit(task: Task) -> None:
        task_log(task).outputs = list(outputs)

    return edit


def ended(obs: Ended) -> Callable[[Task], None]:
    def edit(task: Task) -> None:
        log = task_log(task)
        log.end_time = obs.end_time
        if obs.reason:
            log.system_logs = [*(log.system_logs or []), obs.reason]

    return edit


def ended_at(end_time: str) -> Callable[[Task], None]:
    """For a canceled task: the end time, on the attempt log if the task had started."""

    def edit(task: Task) -> None:
        if task.logs:
            task.logs[0].end_time = end_time

    return edit


def edit_for(obs: Observation) -> Callable[[Task], None] | None:
    """The document edit an observation makes without changing state (None: it changes state instead)."""
    match obs:
        case Initializing():
            return initialized(obs)
        case ExecutorFinished():
            return executor_finished(obs)
        case OutputsUploaded():
            return outputs_uploaded(obs.outputs)
        case SystemLog():
            return add_system_log(obs.line)
        case ExecutorStarted() | Ended():
            return None
