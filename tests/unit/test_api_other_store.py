"""The API over a store without the JSON fast path (the in-memory store): same answers."""

from __future__ import annotations

import httpx

from ktes.api.app import create_app
from ktes.config import Settings
from ktes.store.memory import MemoryStore
from tests.unit.api_harness import BASE, CAPABILITIES, task_doc


async def test_every_operation_on_the_memory_store(tmp_path: object) -> None:
    app = create_app(Settings(), MemoryStore(), CAPABILITIES)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        ids = [(await client.post(f"{BASE}/tasks", json=task_doc(name=f"n{i}"))).json()["id"] for i in range(3)]
        got = await client.get(f"{BASE}/tasks/{ids[0]}", params={"view": "BASIC"})
        assert got.json()["name"] == "n0"
        page = (await client.get(f"{BASE}/tasks", params={"page_size": 2})).json()
        assert [t["id"] for t in page["tasks"]] == [ids[2], ids[1]]
        rest = (
            await client.get(f"{BASE}/tasks", params={"page_size": 2, "page_token": page["next_page_token"]})
        ).json()
        assert rest == {"tasks": [{"id": ids[0], "state": "QUEUED"}]}
        assert (await client.post(f"{BASE}/tasks/{ids[0]}:cancel")).json() == {}
        assert (await client.get(f"{BASE}/tasks/{ids[0]}")).json()["state"] == "CANCELED"
        assert (await client.get(f"{BASE}/tasks/nope")).status_code == 404
