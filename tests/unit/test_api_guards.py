"""A web page in the user's browser tries to drive a local ktes (in-process API, as a browser would send).

The requests are the ones a page on https://evil.example can make a browser send without asking (a
``text/plain`` POST carrying JSON, a bodiless POST, a form post), the preflights it would need for more, and
requests arriving through DNS rebinding (``Host: evil.example``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.api_harness import BASE, Api, running_api, task_doc

EVIL = {"origin": "https://evil.example"}
CLIENT = "https://tes-client.elixir.example"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path, cors_write_origins=[CLIENT]) as running:
        yield running


async def count(api: Api) -> int:
    return len((await api.client.get(f"{BASE}/tasks")).json()["tasks"])


async def test_a_text_plain_post_from_a_page_creates_nothing(api: Api) -> None:
    body = json.dumps(task_doc())
    for headers in ({**EVIL, "content-type": "text/plain"}, {"content-type": "text/plain"}):
        response = await api.client.post(f"{BASE}/tasks", content=body, headers=headers)
        assert response.status_code in (403, 415)
    response = await api.client.post(
        f"{BASE}/tasks", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415
    assert response.json()["field"] == "content-type"
    assert await count(api) == 0


async def test_a_json_post_with_a_foreign_origin_is_forbidden(api: Api) -> None:
    response = await api.client.post(f"{BASE}/tasks", json=task_doc(), headers=EVIL)
    assert response.status_code == 403
    assert response.json()["field"] == "origin"
    assert "access-control-allow-origin" not in response.headers
    assert await count(api) == 0


async def test_a_bodiless_cancel_from_a_page_cancels_nothing(api: Api) -> None:
    task_id = await api.create()
    for method in ("POST", "DELETE"):
        response = await api.client.request(
            method, f"{BASE}/tasks/{task_id}:cancel", headers={**EVIL, "origin": "null"}
        )
        assert response.status_code == 403
    assert (await api.get(task_id))["state"] == "QUEUED"
    # Workflow engines send no Origin, and often no content type on a cancel: that still works.
    assert (await api.client.post(f"{BASE}/tasks/{task_id}:cancel")).status_code == 200


async def test_write_preflights_are_answered_only_for_configured_origins(api: Api) -> None:
    ask = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    evil = await api.client.options(f"{BASE}/tasks", headers={**EVIL, **ask})
    assert evil.status_code == 403
    assert "access-control-allow-origin" not in evil.headers
    good = await api.client.options(f"{BASE}/tasks", headers={"origin": CLIENT, **ask})
    assert good.status_code == 200
    assert good.headers["access-control-allow-origin"] in (CLIENT, "*")
    created = await api.client.post(f"{BASE}/tasks", json=task_doc(), headers={"origin": CLIENT})
    assert created.status_code == 200
    assert created.headers["access-control-allow-origin"] in (CLIENT, "*")


async def test_reads_from_any_origin_are_allowed(api: Api) -> None:
    response = await api.client.get(f"{BASE}/tasks", headers=EVIL)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


async def test_own_origin_may_write(api: Api) -> None:
    response = await api.client.post(f"{BASE}/tasks", json=task_doc(), headers={"origin": "http://localhost"})
    assert response.status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.example", "10.0.0.5"])
async def test_dns_rebinding_hosts_are_refused_on_loopback(api: Api, host: str) -> None:
    for method, path in (("GET", "/tasks"), ("POST", "/tasks"), ("GET", "/service-info")):
        response = await api.client.request(
            method, f"{BASE}{path}", headers={"host": host}, json=task_doc() if method == "POST" else None
        )
        assert response.status_code == 400
        assert response.json()["field"] == "host"
    assert await count(api) == 0


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"])
async def test_loopback_hosts_are_served(api: Api, host: str) -> None:
    assert (await api.client.get(f"{BASE}/tasks", headers={"host": host})).status_code == 200


async def test_allowed_hosts_and_non_loopback_binding(tmp_path: Path) -> None:
    async with running_api(tmp_path, allowed_hosts=["tes.lab.example"]) as api:
        assert (await api.client.get(f"{BASE}/tasks", headers={"host": "tes.lab.example"})).status_code == 200
        assert (await api.client.get(f"{BASE}/tasks", headers={"host": "evil.example"})).status_code == 400
    async with running_api(tmp_path, host="0.0.0.0") as api:
        assert (await api.client.get(f"{BASE}/tasks", headers={"host": "tes.lab.example"})).status_code == 200
