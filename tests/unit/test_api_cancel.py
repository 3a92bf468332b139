"""POST /tasks/{id}:cancel (and DELETE on the same path)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ktes.tes.models import State
from tests.unit.api_harness import BASE, Api, running_api


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path) as api:
        yield api


async def test_cancel_a_queued_task(api: Api) -> None:
    task_id = await api.create()
    api.wakes.clear()
    response = await api.client.post(f"{BASE}/tasks/{task_id}:cancel")
    assert response.status_code == 200
    assert response.json() == {}
    assert (await api.get(task_id))["state"] == "CANCELED"
    assert api.wakes == [1]


async def test_delete_on_the_cancel_path_cancels_too(api: Api) -> None:
    task_id = await api.create()
    response = await api.client.delete(f"{BASE}/tasks/{task_id}:cancel")
    assert response.status_code == 200
    assert response.json() == {}
    assert (await api.get(task_id))["state"] == "CANCELED"


async def test_cancel_a_running_task_asks_the_engine_to_tear_it_down(api: Api) -> None:
    task_id = await api.create()
    api.store.transition(task_id, State.INITIALIZING)
    api.store.transition(task_id, State.RUNNING)
    assert (await api.client.post(f"{BASE}/tasks/{task_id}:cancel")).status_code == 200
    assert (await api.get(task_id))["state"] == "CANCELING"


@pytest.mark.parametrize("end", [State.COMPLETE, State.EXECUTOR_ERROR, State.SYSTEM_ERROR])
async def test_cancel_a_finished_task_changes_nothing(api: Api, end: State) -> None:
    task_id = await api.create()
    api.store.transition(task_id, State.INITIALIZING)
    api.store.transition(task_id, end)
    before = await api.get(task_id, "FULL")
    response = await api.client.post(f"{BASE}/tasks/{task_id}:cancel")
    assert response.status_code == 200
    assert response.json() == {}
    assert await api.get(task_id, "FULL") == before


async def test_cancel_twice_is_fine(api: Api) -> None:
    task_id = await api.create()
    for _ in range(2):
        assert (await api.client.post(f"{BASE}/tasks/{task_id}:cancel")).status_code == 200
    assert (await api.get(task_id))["state"] == "CANCELED"


async def test_cancel_an_unknown_task_is_404(api: Api) -> None:
    for method in ("POST", "DELETE"):
        response = await api.client.request(method, f"{BASE}/tasks/tnosuchtask:cancel")
        assert response.status_code == 404
        assert "tnosuchtask" in response.json()["msg"]
    assert api.wakes == []
