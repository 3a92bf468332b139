"""Submitting tasks as raw JSON and waiting for them, for the attacker tests."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.fixtures.ktes_server import KtesServer

TERMINAL = frozenset({"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"})


def submit(server: KtesServer, task: dict[str, Any]) -> str:
    response = httpx.post(f"{server.tes_url}/tasks", json=task, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def wait(server: KtesServer, task_id: str, within: float = 90.0) -> dict[str, Any]:
    """The task in the FULL view once it is final."""
    deadline = time.monotonic() + within
    while True:
        task: dict[str, Any] = httpx.get(f"{server.tes_url}/tasks/{task_id}?view=FULL", timeout=30).json()
        if task["state"] in TERMINAL:
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} is {task['state']} after {within} s")
        time.sleep(0.05)


def submit_and_wait(server: KtesServer, task: dict[str, Any], within: float = 90.0) -> dict[str, Any]:
    return wait(server, submit(server, task), within)
