"""/healthz and /readyz: what an orchestrator reads, and the sentence an operator reads when it is not ready."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ktes.api.app import create_app
from ktes.config import Settings
from ktes.store.memory import MemoryStore
from tests.unit.api_harness import CAPABILITIES, running_api


class BrokenStore(MemoryStore):
    def ping(self) -> None:
        raise ConnectionError("connection to postgresql://ktes:hunter2@db.example/ktes refused")


async def readyz(store: MemoryStore, status: str | None, **settings: object) -> httpx.Response:
    app = create_app(Settings(**settings), store, CAPABILITIES, engine_status=lambda: status)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        return await client.get("/readyz")


async def test_healthz_and_readyz_answer_json_when_all_is_well(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        health = await api.client.get("/healthz")
        ready = await api.client.get("/readyz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["checks"]["store"] == "ok"


async def test_readyz_names_an_unreachable_database_without_its_password() -> None:
    response = await readyz(BrokenStore(), "running")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert "unreachable" in body["checks"]["store"] and "db.example" in body["checks"]["store"]
    assert "hunter2" not in response.text


@pytest.mark.parametrize("status", ["starting", "stopping", "stopped"])
async def test_a_local_engine_that_is_not_running_is_not_ready(status: str) -> None:
    response = await readyz(MemoryStore(), status, backend="local")
    assert response.status_code == 503
    assert status in response.json()["checks"]["engine"]


async def test_a_replica_waiting_for_the_lease_stays_ready_and_says_so() -> None:
    leader = await readyz(MemoryStore(), "running", backend="kubernetes")
    standby = await readyz(MemoryStore(), "stopped", backend="kubernetes")
    assert leader.status_code == standby.status_code == 200
    assert leader.json()["checks"]["engine"].startswith("leading")
    assert standby.json()["checks"]["engine"].startswith("standby")


async def test_an_api_only_replica_is_ready() -> None:
    response = await readyz(MemoryStore(), None, backend="kubernetes", engine_enabled=False)
    assert response.status_code == 200
    assert "API only" in response.json()["checks"]["engine"]


class _Unready:
    """A backend whose API server stopped answering (only what /readyz asks of it)."""

    def not_ready_reason(self) -> str | None:
        return "the Kubernetes API at https://10.0.0.1:6443 does not answer"


async def test_a_leader_whose_backend_cannot_take_tasks_is_not_ready() -> None:
    app = create_app(
        Settings(backend="kubernetes"),
        MemoryStore(),
        CAPABILITIES,
        backend=_Unready(),  # type: ignore[arg-type]
        engine_status=lambda: "running",
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert "does not answer" in response.json()["checks"]["backend"]


async def test_a_replica_that_cannot_reach_the_lease_is_not_ready() -> None:
    """Once a leader's Lease could not be renewed its engine stops; it must not turn "standby" and ready."""
    app = create_app(
        Settings(backend="kubernetes"),
        MemoryStore(),
        CAPABILITIES,
        engine_status=lambda: "stopped",
        leadership=_Unready(),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert "does not answer" in response.json()["checks"]["engine"]
