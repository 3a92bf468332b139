"""Small helpers for driving a ktes server with py-tes in the local integration tests."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Collection

import tes

TERMINAL = frozenset({"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"})


def wait_for(
    client: tes.HTTPClient, task_id: str, states: Collection[str] = TERMINAL, within: float = 60.0
) -> tes.Task:
    """Poll the task (FULL view) until its state is one of ``states``."""
    deadline = time.monotonic() + within
    while True:
        task = client.get_task(task_id, view="FULL")
        if task.state in states:
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} is {task.state}, not {sorted(states)}, after {within} s")
        time.sleep(0.05)


def run_task(client: tes.HTTPClient, task: tes.Task, within: float = 60.0) -> tes.Task:
    return wait_for(client, client.create_task(task), within=within)


def containers_of(*task_ids: str) -> list[str]:
    """Names of the containers (any state) labelled with these task ids."""
    names: list[str] = []
    for task_id in task_ids:
        done = subprocess.run(
            ["podman", "ps", "-a", "--filter", f"label=ktes.task-id={task_id}", "--format", "{{.Names}}"],
            capture_output=True,
            text=True,
            check=True,
        )
        names += done.stdout.split()
    return names


def executor(image: str, *command: str, **fields: object) -> tes.Executor:
    return tes.Executor(image=image, command=list(command), **fields)


def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    """Wait for ``check`` (e.g. directories removed just after the task was reported final)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)
