"""An in-process ktes API on a real SQLite store, for the API tests (httpx + ASGITransport, no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ktes.api.app import create_app
from ktes.capabilities import Capabilities
from ktes.config import Settings
from ktes.store.sql import SqlStore, open_store

BASE = "/ga4gh/tes/v1"
CAPABILITIES = Capabilities(storage_schemes=("file", "http", "https", "s3"), backend_parameters=("queue", "zone"))


def executor(**extra: Any) -> dict[str, Any]:
    return {"image": "alpine:3", "command": ["echo", "hello"], **extra}


def task_doc(**extra: Any) -> dict[str, Any]:
    return {"executors": [executor()], **extra}


@dataclass
class Api:
    client: httpx.AsyncClient
    store: SqlStore
    wakes: list[int]

    async def create(self, **fields: Any) -> str:
        response = await self.client.post(f"{BASE}/tasks", json=task_doc(**fields))
        assert response.status_code == 200, response.text
        task_id: str = response.json()["id"]
        return task_id

    async def get(self, task_id: str, view: str | None = None) -> dict[str, Any]:
        params = {"view": view} if view else {}
        response = await self.client.get(f"{BASE}/tasks/{task_id}", params=params)
        assert response.status_code == 200, response.text
        doc: dict[str, Any] = response.json()
        return doc


@asynccontextmanager
async def running_api(tmp_path: Path, store_url: str | None = None, **settings: Any) -> AsyncIterator[Api]:
    config = Settings(data_dir=tmp_path, **settings)
    store = open_store(store_url or f"sqlite:///{tmp_path / 'ktes.db'}", reads_at_once=config.database_reads_at_once)
    wakes: list[int] = []
    app = create_app(config, store, CAPABILITIES, lambda: wakes.append(1))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        yield Api(client, store, wakes)
    await store.close_async_reads()
    store.close()
