"""How the task commands show tasks to people (rich) and to scripts (JSON).

People get tables and short sentences; progress and notes go to stderr so stdout stays pipeable. Text that
came from a task (names, logs, commands) is never read as rich markup. Executors are numbered from 0, as in
the server's sentences and the TES ``executors[0]`` field names.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ktes.cli.client import state_of
from ktes.tes.models import State

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_STATE_STYLE = {
    State.COMPLETE: "green",
    State.EXECUTOR_ERROR: "red",
    State.SYSTEM_ERROR: "red",
    State.PREEMPTED: "yellow",
    State.CANCELED: "yellow",
    State.CANCELING: "yellow",
    State.RUNNING: "cyan",
    State.INITIALIZING: "cyan",
    State.QUEUED: "dim",
}


def print_json(document: Any) -> None:
    """Machine-readable output: indented JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def write_raw(text: str, stream: Any = None, *, end_line: bool = True) -> None:
    """Text from a task as it is; with ``end_line``, a final newline added when it has none."""
    target = stream if stream is not None else sys.stdout
    if text:
        target.write(text + "\n" if end_line and not text.endswith("\n") else text)
        target.flush()


def state_text(state: State | str) -> Text:
    state = State(state) if not isinstance(state, State) else state
    return Text(state.value, style=_STATE_STYLE.get(state, ""))


def local_time(rfc3339: str | None) -> str:
    """An RFC 3339 time as local ``YYYY-MM-DD HH:MM:SS`` (the text as it is when it does not parse)."""
    if not rfc3339:
        return ""
    try:
        return datetime.fromisoformat(rfc3339).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return rfc3339


def duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return ""
    try:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return ""
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


#: The tag a ktes server with auth on adds for admins: the task's owner.
OWNER_TAG = "ktes.owner"


def task_table(tasks: Sequence[Mapping[str, Any]], *, owners: bool = False) -> Table:
    """The tasks as a table; with ``owners``, an OWNER column (from the tag ktes adds for admins)."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("ID", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    if owners:
        table.add_column("OWNER", no_wrap=True)
    table.add_column("NAME", overflow="fold")
    table.add_column("CREATED", no_wrap=True)
    for task in tasks:
        owner = [Text(str((task.get("tags") or {}).get(OWNER_TAG) or "-"))] if owners else []
        table.add_row(
            Text(str(task.get("id", ""))),
            state_text(state_of(task)),
            *owner,
            Text(str(task.get("name") or "")),
            Text(local_time(task.get("creation_time"))),
        )
    return table


def last_log(task: Mapping[str, Any]) -> Mapping[str, Any]:
    """The task's latest attempt log (``{}`` when it has none yet)."""
    logs = task.get("logs") or []
    return logs[-1] if logs else {}


def end_reason(task: Mapping[str, Any]) -> str:
    """One sentence on how a finished task ended: the server's own (the last system log, which
    :mod:`ktes.run.outcome` wrote), else the failing executor (numbered from 0, as the server does)."""
    state = state_of(task)
    if state not in (State.EXECUTOR_ERROR, State.SYSTEM_ERROR, State.PREEMPTED):
        return ""
    attempt = last_log(task)
    system_logs = attempt.get("system_logs") or []
    if system_logs:
        return str(system_logs[-1])
    if state == State.EXECUTOR_ERROR:  # a server that gives no reason
        for index, log in reversed(list(enumerate(attempt.get("logs") or []))):
            if log.get("exit_code"):
                return f"executor {index} exited with code {log['exit_code']}"
        return "an executor failed"
    return ""


def end_line(task: Mapping[str, Any], task_id: str) -> Text:
    """``task ID COMPLETE`` (with the reason when it failed)."""
    line = Text(f"task {task_id} ")
    line.append_text(state_text(state_of(task)))
    reason = end_reason(task)
    if reason:
        line.append(f": {reason}")
    return line


@contextmanager
def progress(task_id: str, *, lines: bool = True) -> Iterator[Any]:
    """A spinner on stderr while waiting (only on a terminal) and, with ``lines``, one line per state change.

    Yields the ``on_state`` callback for :meth:`TesClient.wait`."""
    started = time.monotonic()

    def label(state: State) -> Text:
        text = Text(f"task {task_id} ")
        text.append_text(state_text(state))
        return text

    with err.status(f"task {task_id}: submitted", spinner="dots") as status:

        def on_state(state: State) -> None:
            status.update(label(state))
            if lines:
                err.print(Text(f"{time.monotonic() - started:6.1f} s  ").append_text(state_text(state)))

        yield on_state


def task_details(task: Mapping[str, Any]) -> Table:
    """A person's summary of one task (any view); logs' text is left to ``ktes task logs``."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")

    def row(label: str, value: str | Text) -> None:
        grid.add_row(label, value if isinstance(value, Text) else Text(value))

    row("id", str(task.get("id", "")))
    row("state", state_text(state_of(task)))
    for key in ("name", "description"):
        if task.get(key):
            row(key, str(task[key]))
    if task.get("creation_time"):
        row("created", local_time(task["creation_time"]))
    if task.get("tags"):
        row("tags", ", ".join(f"{k}={v}" if v else k for k, v in task["tags"].items()))
    resources = task.get("resources") or {}
    if resources:
        row("resources", ", ".join(f"{k}={v}" for k, v in resources.items()))
    for item in task.get("inputs") or []:
        source = item.get("url") or (f"content ({len(item['content'])} characters)" if "content" in item else "")
        row("input", f"{item.get('path', '')} <- {source}")
    for item in task.get("outputs") or []:
        row("output", f"{item.get('path', '')} -> {item.get('url', '')}")
    for volume in task.get("volumes") or []:
        row("volume", str(volume))
    attempt = last_log(task)
    executor_logs = attempt.get("logs") or []
    for index, executor in enumerate(task.get("executors") or []):
        text = f"{executor.get('image', '')}  {shlex.join(str(a) for a in executor.get('command') or [])}"
        if index < len(executor_logs):
            log = executor_logs[index]
            took = duration(log.get("start_time"), log.get("end_time"))
            text += f"  (exit {log.get('exit_code')}" + (f", {took})" if took else ")")
        row(f"executor {index}", text)
    if attempt.get("start_time"):
        took = duration(attempt.get("start_time"), attempt.get("end_time"))
        row("ran", local_time(attempt["start_time"]) + (f" for {took}" if took else ""))
    for key, value in (attempt.get("metadata") or {}).items():
        row(key, str(value))
    for item in attempt.get("outputs") or []:
        row("uploaded", f"{item.get('url', '')} ({item.get('size_bytes', '?')} bytes)")
    for line in attempt.get("system_logs") or []:
        row("system log", str(line))
    return grid


def print_logs(task: Mapping[str, Any]) -> None:
    """Each executor's stdout then stderr, labelled like ``tail`` does with several files, then system logs."""
    attempts = task.get("logs") or []
    task_id = task.get("id", "")
    if not attempts:
        err.print(Text(f"task {task_id} has no logs yet (").append_text(state_text(state_of(task))).append(")"))
        return
    for number, attempt in enumerate(attempts, start=1):
        prefix = f"attempt {number}, " if len(attempts) > 1 else ""
        for index, log in enumerate(attempt.get("logs") or []):
            for stream in ("stdout", "stderr"):
                out.print(Text(f"==> {prefix}executor {index} {stream} (exit {log.get('exit_code')}) <==", "bold"))
                write_raw(str(log.get(stream) or ""))
        system_logs = attempt.get("system_logs") or []
        if system_logs:
            out.print(Text(f"==> {prefix}system logs <==", "bold"))
            for line in system_logs:
                write_raw(str(line))
