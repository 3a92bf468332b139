"""Every response of every TES operation and view validates against the official TES 1.1.0 OpenAPI file.

The spec (vendored in tests/spec with the service-info $ref made local) is validated with openapi-core. One
known contradiction in the spec is allowed: the MINIMAL view is defined as "only id and state", while the
tesTask schema lists ``executors`` as required; every server returns ``{"id", "state"}`` for MINIMAL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from ktes.tes.models import ExecutorLog, OutputFileLog, State, Task, TaskLog
from tests.unit.api_harness import BASE, Api, running_api

SPEC = Path(__file__).parents[1] / "spec" / "tes-1.1.0.openapi.yaml"
VIEWS = [None, "MINIMAL", "BASIC", "FULL"]


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC))


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path) as api:
        yield api


FULL_TASK: dict[str, Any] = {
    "name": "conformance",
    "description": "every field",
    "inputs": [
        {"name": "i", "description": "d", "url": "s3://b/in", "path": "/data/in", "type": "FILE", "streamable": False},
        {"path": "/data/lit", "content": "hello"},
    ],
    "outputs": [
        {"name": "o", "url": "s3://b/out/", "path": "/data/*.txt", "path_prefix": "/data/", "type": "FILE"},
        {"url": "s3://b/dir", "path": "/data/dir", "type": "DIRECTORY"},
    ],
    "resources": {
        "cpu_cores": 1,
        "preemptible": False,
        "ram_gb": 1.0,
        "disk_gb": 2.5,
        "zones": ["z"],
        "backend_parameters": {"queue": "q", "unsupported": "x"},
        "backend_parameters_strict": False,
    },
    "executors": [
        {
            "image": "alpine",
            "command": ["sh", "-c", "echo hi"],
            "workdir": "/data",
            "stdin": "/data/in",
            "stdout": "/data/out.txt",
            "stderr": "/data/err.txt",
            "env": {"A": "1"},
            "ignore_error": True,
        }
    ],
    "volumes": ["/vol/A/"],
    "tags": {"k": "v", "empty": ""},
}


def _finished(task: Task) -> None:
    task.logs = [
        TaskLog(
            logs=[
                ExecutorLog(
                    start_time="2024-01-01T00:00:01Z",
                    end_time="2024-01-01T00:00:02Z",
                    stdout="hi\n",
                    stderr="",
                    exit_code=1,
                )
            ],
            metadata={"host": "n1"},
            start_time="2024-01-01T00:00:00Z",
            end_time="2024-01-01T00:00:03Z",
            outputs=[OutputFileLog(url="s3://b/out/a.txt", path="/data/a.txt", size_bytes="3")],
            system_logs=["a warning"],
        )
    ]


def _schema_errors(exc: BaseException | None) -> list[str]:
    while exc is not None:
        errors = getattr(exc, "schema_errors", None)
        if errors:
            return [str(e.message) for e in errors]
        exc = exc.__cause__
    return []


def check(openapi: OpenAPI, response: httpx.Response, path_pattern: str, *, minimal: bool = False) -> None:
    """Validate ``response``; ``minimal``: it holds tasks in the MINIMAL view (exactly id and state)."""
    assert response.status_code == 200, response.text
    request = response.request
    mock_request = MockRequest(
        "http://localhost",
        request.method,
        request.url.path,
        path_pattern=BASE + path_pattern,
        args=list(request.url.params.multi_items()),  # type: ignore[arg-type]
        data=request.content,
    )
    mock_response = MockResponse(response.content, status_code=response.status_code)
    try:
        openapi.validate_response(mock_request, mock_response)
    except Exception as exc:
        errors = _schema_errors(exc) or [str(exc)]
        if minimal:  # the spec's own contradiction, see the module docstring
            errors = [e for e in errors if e != "'executors' is a required property"]
        assert not errors, f"{request.method} {request.url}: {errors}"
    if minimal:
        body = response.json()
        for doc in body.get("tasks", [body]):
            assert set(doc) == {"id", "state"}


async def test_service_info(api: Api, openapi: OpenAPI) -> None:
    check(openapi, await api.client.get(f"{BASE}/service-info"), "/service-info")


async def test_create_request_and_response(api: Api, openapi: OpenAPI) -> None:
    response = await api.client.post(f"{BASE}/tasks", json=FULL_TASK)
    mock_request = MockRequest("http://localhost", "post", f"{BASE}/tasks", data=response.request.content)
    openapi.validate_request(mock_request)  # our example really is a tesTask
    check(openapi, response, "/tasks")


@pytest.mark.parametrize("view", VIEWS)
async def test_get_every_view_in_every_phase(api: Api, openapi: OpenAPI, view: str | None) -> None:
    queued = await api.create(**FULL_TASK)
    finished = await api.create(**FULL_TASK)
    api.store.transition(finished, State.INITIALIZING)
    api.store.transition(finished, State.EXECUTOR_ERROR, _finished)
    params = {"view": view} if view else {}
    for task_id in (queued, finished):
        response = await api.client.get(f"{BASE}/tasks/{task_id}", params=params)
        check(openapi, response, "/tasks/{id}", minimal=view in (None, "MINIMAL"))


@pytest.mark.parametrize("view", VIEWS)
async def test_list_every_view_with_filters_and_pages(api: Api, openapi: OpenAPI, view: str | None) -> None:
    for _ in range(3):
        finished = await api.create(**FULL_TASK)
        api.store.transition(finished, State.INITIALIZING)
        api.store.transition(finished, State.EXECUTOR_ERROR, _finished)
    await api.create(**FULL_TASK)
    params: list[tuple[str, str]] = [("page_size", "2"), ("tag_key", "k"), ("tag_value", "v"), ("tag_key", "empty")]
    if view:
        params.append(("view", view))
    first = await api.client.get(f"{BASE}/tasks", params=params)
    check(openapi, first, "/tasks", minimal=view in (None, "MINIMAL"))
    token = first.json()["next_page_token"]
    second = await api.client.get(f"{BASE}/tasks", params=[*params, ("page_token", token)])
    check(openapi, second, "/tasks", minimal=view in (None, "MINIMAL"))
    filtered = await api.client.get(
        f"{BASE}/tasks",
        params=[("state", "EXECUTOR_ERROR"), ("name_prefix", "conf"), *([("view", view)] if view else [])],
    )
    check(openapi, filtered, "/tasks", minimal=view in (None, "MINIMAL"))
    assert len(filtered.json()["tasks"]) == 3
    empty = await api.client.get(f"{BASE}/tasks", params={"name_prefix": "nothing"})
    check(openapi, empty, "/tasks", minimal=True)


async def test_cancel(api: Api, openapi: OpenAPI) -> None:
    task_id = await api.create(**FULL_TASK)
    check(openapi, await api.client.post(f"{BASE}/tasks/{task_id}:cancel"), "/tasks/{id}:cancel")
    check(openapi, await api.client.post(f"{BASE}/tasks/{task_id}:cancel"), "/tasks/{id}:cancel")
    check(openapi, await api.client.get(f"{BASE}/tasks/{task_id}", params={"view": "FULL"}), "/tasks/{id}")


def test_the_checker_catches_a_wrong_shape(openapi: OpenAPI) -> None:
    request = httpx.Request("GET", f"http://localhost{BASE}/tasks/t1?view=FULL")
    bad = {"id": "t1", "state": "DONE", "executors": [{"image": "a", "command": ["b"]}]}
    with pytest.raises(AssertionError, match="DONE"):
        check(openapi, httpx.Response(200, json=bad, request=request), "/tasks/{id}")
    no_exit_code = {"id": "t1", "state": "COMPLETE", "executors": [], "logs": [{"logs": [{}], "outputs": []}]}
    with pytest.raises(AssertionError, match="exit_code"):
        check(openapi, httpx.Response(200, json=no_exit_code, request=request), "/tasks/{id}")
