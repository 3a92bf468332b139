"""GET /tasks/{id}: the three views, exactly as TES 1.1 defines them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ktes.tes.models import ExecutorLog, OutputFileLog, State, Task, TaskLog
from tests.unit.api_harness import BASE, Api, running_api


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path) as api:
        yield api


def _ran(task: Task) -> None:
    task.logs = [
        TaskLog(
            logs=[ExecutorLog(exit_code=0, start_time="2024-01-01T00:00:01Z", stdout="out", stderr="err")],
            outputs=[OutputFileLog(url="s3://b/o", path="/data/o", size_bytes="12")],
            metadata={"host": "node1"},
            start_time="2024-01-01T00:00:00Z",
            system_logs=["pulled alpine:3"],
        )
    ]


@pytest.fixture
async def ran(api: Api) -> str:
    """A task with every field a view may hide: input content, executor stdout/stderr, system logs."""
    task_id = await api.create(
        name="ran",
        inputs=[{"path": "/data/a", "content": "secret"}, {"path": "/data/b", "url": "s3://b/k"}],
        tags={"k": "v"},
    )
    assert api.store.transition(task_id, State.INITIALIZING, _ran) is not None
    return task_id


async def test_minimal_is_the_default_and_has_only_id_and_state(api: Api, ran: str) -> None:
    assert await api.get(ran) == {"id": ran, "state": "INITIALIZING"}
    assert await api.get(ran, "MINIMAL") == {"id": ran, "state": "INITIALIZING"}


async def test_full_has_everything(api: Api, ran: str) -> None:
    full = await api.get(ran, "FULL")
    assert full["inputs"][0]["content"] == "secret"
    (log,) = full["logs"]
    assert log["system_logs"] == ["pulled alpine:3"]
    assert log["logs"][0]["stdout"] == "out" and log["logs"][0]["stderr"] == "err"
    assert full["tags"] == {"k": "v"} and full["name"] == "ran"


async def test_basic_leaves_out_only_the_large_strings(api: Api, ran: str) -> None:
    full = await api.get(ran, "FULL")
    basic = await api.get(ran, "BASIC")
    assert basic["inputs"] == [
        {"path": "/data/a", "type": "FILE"},
        {"path": "/data/b", "url": "s3://b/k", "type": "FILE"},
    ]
    (log,) = basic["logs"]
    assert "system_logs" not in log
    assert log["logs"] == [{"exit_code": 0, "start_time": "2024-01-01T00:00:01Z"}]
    assert log["outputs"] == full["logs"][0]["outputs"]
    assert log["metadata"] == {"host": "node1"} and log["start_time"] == "2024-01-01T00:00:00Z"
    for key in ("id", "state", "name", "executors", "tags", "creation_time"):
        assert basic[key] == full[key]


async def test_unknown_id_is_404(api: Api) -> None:
    for view in ("MINIMAL", "BASIC", "FULL"):
        response = await api.client.get(f"{BASE}/tasks/tnosuchtask", params={"view": view})
        assert response.status_code == 404
        assert "tnosuchtask" in response.json()["msg"]


@pytest.mark.parametrize("view", ["full", "ALL", ""])
async def test_a_bad_view_is_400(api: Api, ran: str, view: str) -> None:
    response = await api.client.get(f"{BASE}/tasks/{ran}", params={"view": view})
    assert response.status_code == 400
    assert response.json()["field"] == "view"
