"""While the database cannot answer, every endpoint says so with 503 and Retry-After (clients retry)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ktes.errors import StoreUnavailable
from tests.unit.api_harness import BASE, running_api, task_doc


def unavailable(*_args: Any, **_kwargs: Any) -> Any:
    raise StoreUnavailable("the database is unavailable: connection refused")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/tasks/{id}", None),
        ("GET", "/tasks/{id}?view=FULL", None),
        ("GET", "/tasks", None),
        ("GET", "/tasks?view=BASIC", None),
        ("POST", "/tasks", task_doc()),
        ("POST", "/tasks/{id}:cancel", None),
    ],
)
async def test_every_endpoint_answers_503_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, path: str, body: Any
) -> None:
    async with running_api(tmp_path) as api:
        task_id = await api.create()
        for name in ("get", "get_view_json", "list_tasks_json", "import_tasks", "transition"):
            monkeypatch.setattr(api.store, name, unavailable)
        response = await api.client.request(method, BASE + path.format(id=task_id), json=body)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert "unavailable" in response.json()["msg"]
