"""service-info, health, CORS, and the error body for requests no endpoint takes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import ktes
from tests.unit.api_harness import BASE, CAPABILITIES, Api, running_api


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path) as api:
        yield api


async def test_service_info_tells_what_this_server_supports(api: Api) -> None:
    response = await api.client.get(f"{BASE}/service-info")
    assert response.status_code == 200
    info = response.json()
    assert info["type"] == {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"}
    assert info["name"] == "ktes"
    assert info["version"] == ktes.__version__
    assert info["storage"] == ["file://", "http://", "https://", "s3://"]
    assert info["tesResources_backend_parameters"] == list(CAPABILITIES.backend_parameters)
    assert info["organization"]["name"] and info["organization"]["url"] and info["id"]


async def test_service_info_identity_is_configurable(tmp_path: Path) -> None:
    async with running_api(
        tmp_path,
        service_id="org.example.tes",
        service_organization_name="Example",
        service_organization_url="https://example.org",
        service_environment="test",
    ) as api:
        info = (await api.client.get(f"{BASE}/service-info")).json()
    assert info["id"] == "org.example.tes"
    assert info["organization"] == {"name": "Example", "url": "https://example.org"}
    assert info["environment"] == "test"


async def test_healthz(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_cors_lets_any_page_read_but_not_submit_by_default(api: Api) -> None:
    origin = {"origin": "https://dashboard.example.org"}
    response = await api.client.get(f"{BASE}/service-info", headers=origin)
    assert response.headers["access-control-allow-origin"] == "*"
    preflight = await api.client.options(
        f"{BASE}/tasks",
        headers={**origin, "access-control-request-method": "GET", "access-control-request-headers": "authorization"},
    )
    assert preflight.status_code == 200
    preflight = await api.client.options(
        f"{BASE}/tasks",
        headers={**origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type"},
    )
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers


async def test_cors_origins_are_configurable(tmp_path: Path) -> None:
    async with running_api(tmp_path, cors_origins=["https://good.example"]) as api:
        good = await api.client.get(f"{BASE}/service-info", headers={"origin": "https://good.example"})
        bad = await api.client.get(f"{BASE}/service-info", headers={"origin": "https://evil.example"})
    assert good.headers["access-control-allow-origin"] == "https://good.example"
    assert "access-control-allow-origin" not in bad.headers


async def test_unknown_paths_and_methods_get_json_errors(api: Api) -> None:
    response = await api.client.get(f"{BASE}/nothing-here")
    assert response.status_code == 404
    assert "msg" in response.json()
    response = await api.client.put(f"{BASE}/tasks")
    assert response.status_code == 405
    assert "msg" in response.json()
