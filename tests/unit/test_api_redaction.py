"""Credentials in input and output URLs never come back in task responses; the store keeps them for staging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.api_harness import BASE, Api, running_api

SECRET_INPUT = "https://alice:hunter2@data.example/in.txt?X-Amz-Signature=abc123&part=1"
SECRET_OUTPUT = "s3://bucket/out.txt?token=tok456"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path) as api:
        yield api


@pytest.fixture
async def task_id(api: Api) -> str:
    return await api.create(
        inputs=[{"path": "/data/in.txt", "url": SECRET_INPUT}],
        outputs=[{"path": "/data/out.txt", "url": SECRET_OUTPUT}],
    )


@pytest.mark.parametrize("view", ["BASIC", "FULL"])
async def test_get_hides_userinfo_and_signatures(api: Api, task_id: str, view: str) -> None:
    doc = await api.get(task_id, view)
    assert doc["inputs"][0]["url"] == "https://data.example/in.txt?part=1"
    assert doc["outputs"][0]["url"] == "s3://bucket/out.txt"


@pytest.mark.parametrize("view", ["BASIC", "FULL"])
async def test_list_hides_them_too(api: Api, task_id: str, view: str) -> None:
    body = (await api.client.get(f"{BASE}/tasks", params={"view": view})).text
    assert task_id in body
    for secret in ("hunter2", "abc123", "tok456", "alice"):
        assert secret not in body


async def test_the_store_keeps_the_real_urls_for_staging(api: Api, task_id: str) -> None:
    task = api.store.get(task_id)
    assert task.inputs is not None and task.inputs[0].url == SECRET_INPUT
