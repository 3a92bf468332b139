"""ListTasks pages hold a bounded number of bytes, and paging stays exact when a page is cut short."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ktes.api.app import create_app
from ktes.config import Settings
from ktes.store.memory import MemoryStore
from tests.unit.api_harness import BASE, CAPABILITIES, running_api, task_doc

BUDGET = 40_000


async def pages(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token = None
    while True:
        query = {**params, **({"page_token": token} if token else {})}
        response = await client.get(f"{BASE}/tasks", params=query)
        assert response.status_code == 200
        found.append({"size": len(response.content), **response.json()})
        token = response.json().get("next_page_token")
        if not token:
            return found


@pytest.fixture(params=["sql", "memory"])
async def client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings: dict[str, Any] = {"list_page_max_bytes": BUDGET, "max_content_bytes": 30_000}
    if request.param == "sql":
        async with running_api(tmp_path, **settings) as api:
            yield api.client
        return
    app = create_app(Settings(data_dir=tmp_path, **settings), MemoryStore(), CAPABILITIES)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as c:
        yield c


async def test_a_budget_cuts_pages_and_every_task_comes_once_in_order(client: httpx.AsyncClient) -> None:
    ids = []
    for i in range(12):
        content = "x" * (25_000 if i % 3 == 0 else 100)
        doc = task_doc(name=f"t{i}", inputs=[{"path": "/in", "content": content}])
        ids.append((await client.post(f"{BASE}/tasks", json=doc)).json()["id"])
    for view in ("FULL", "BASIC"):
        found = await pages(client, view=view, page_size=2047)
        listed = [t["id"] for page in found for t in page["tasks"]]
        assert listed == list(reversed(ids))
        if view == "FULL":
            assert len(found) > 1
        for page in found:
            assert page["size"] <= BUDGET + 1_000 or len(page["tasks"]) == 1
    minimal = await pages(client, page_size=2047)
    assert len(minimal) == 1 and len(minimal[0]["tasks"]) == 12


async def test_a_task_larger_than_the_budget_comes_alone(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        doc = task_doc(inputs=[{"path": "/in", "content": "y" * 29_000}], description="z" * 20_000)
        assert (await client.post(f"{BASE}/tasks", json=doc)).status_code == 200
    found = await pages(client, view="FULL", page_size=10)
    assert [len(page["tasks"]) for page in found] == [1, 1, 1]


async def test_page_size_still_applies_under_the_budget(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        await client.post(f"{BASE}/tasks", json=task_doc())
    found = await pages(client, view="FULL", page_size=2)
    assert [len(page["tasks"]) for page in found] == [2, 2, 1]
