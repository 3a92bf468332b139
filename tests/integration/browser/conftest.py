"""One ``ktes serve`` (local backend, podman) shared by the dashboard's browser tests, and helpers to drive it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.ktes_server import KtesServer, start_server

#: Room for several tasks at once, whatever this machine's size; images are never pulled.
SERVER_ENV = {"KTES_LOCAL_MAX_CPUS": "16", "KTES_LOCAL_PULL": "never"}


@pytest.fixture(scope="session")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KtesServer]:
    server = start_server(tmp_path_factory.mktemp("ktes-dashboard"), SERVER_ENV)
    yield server
    server.stop()


async def create_task(server: KtesServer, task: dict[str, Any]) -> str:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(server.tes_url + "/tasks", json=task)
    response.raise_for_status()
    return str(response.json()["id"])


async def get_task(server: KtesServer, task_id: str, view: str = "MINIMAL") -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{server.tes_url}/tasks/{task_id}", params={"view": view})
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def wait_for_state(server: KtesServer, task_id: str, states: set[str], within: float = 120.0) -> str:
    deadline = time.monotonic() + within
    while True:
        state = str((await get_task(server, task_id))["state"])
        if state in states:
            return state
        assert time.monotonic() < deadline, f"task {task_id} still {state}, expected one of {sorted(states)}"
        await asyncio.sleep(0.1)
