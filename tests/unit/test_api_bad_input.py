"""An attacker's bad input: always a 4xx naming the field, never a 500, and the store intact afterwards."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.api_harness import BASE, Api, running_api, task_doc

DEPTH = 1000
JSON = {"content-type": "application/json"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path) as running:
        yield running


def nested(kind: str, depth: int = DEPTH) -> str:
    return "[" * depth + "]" * depth if kind == "array" else '{"a":' * depth + "{}" + "}" * depth


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize(
    "template",
    [
        '{"x_unknown": %s, "executors": [{"image": "a", "command": ["b"]}]}',
        '{"tags": %s, "executors": [{"image": "a", "command": ["b"]}]}',
        '{"executors": [{"image": "a", "command": ["b"], "env": %s}]}',
        '{"inputs": [%s], "executors": [{"image": "a", "command": ["b"]}]}',
        '{"executors": %s}',
        "%s",
    ],
)
async def test_deeply_nested_json_is_refused(api: Api, kind: str, template: str) -> None:
    for depth in (DEPTH, 5 * DEPTH):
        body = template.replace("%s", nested(kind, depth))
        response = await api.client.post(f"{BASE}/tasks", content=body, headers=JSON)
        assert response.status_code in (400, 413), response.text
        assert response.json()["field"] == "body"
    assert (await api.client.get(f"{BASE}/tasks")).json() == {"tasks": []}


async def test_moderate_nesting_in_an_unknown_field_is_fine(api: Api) -> None:
    body = '{"x_ext": NEST, "executors": [{"image": "a", "command": ["b"]}]}'.replace("NEST", nested("object", 20))
    assert (await api.client.post(f"{BASE}/tasks", content=body, headers=JSON)).status_code == 200


SQL = ["' OR '1'='1", "'; DROP TABLE tasks; --", '" OR 1=1 --', "%", "_", "\\", "a' UNION SELECT * FROM tasks --"]


@pytest.mark.parametrize("text", SQL)
async def test_sql_text_in_filters_matches_nothing_and_harms_nothing(api: Api, text: str) -> None:
    task_id = await api.create(name="real", tags={"k": "v"})
    for params in ({"name_prefix": text}, {"tag_key": text}, {"tag_key": "k", "tag_value": text}, {"state": text}):
        response = await api.client.get(f"{BASE}/tasks", params=params)
        assert response.status_code in (200, 400), response.text
        if response.status_code == 200:
            assert response.json() == {"tasks": []}
    listed = (await api.client.get(f"{BASE}/tasks")).json()["tasks"]
    assert [t["id"] for t in listed] == [task_id]


@pytest.mark.parametrize("text", SQL)
async def test_sql_text_in_a_page_token_is_400(api: Api, text: str) -> None:
    await api.create()
    for token in (text, base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")):
        response = await api.client.get(f"{BASE}/tasks", params={"page_token": token})
        assert response.status_code == 400
        assert response.json()["field"] == "page_token"


@pytest.mark.parametrize(
    "task_id", ["..%2F..%2Fetc%2Fpasswd", "%00", "t1%00x", "x' OR '1'='1", "..", "%2e%2e", "a" * 5000]
)
async def test_odd_task_ids_are_404_or_400(api: Api, task_id: str) -> None:
    for method, suffix in (("GET", ""), ("POST", ":cancel")):
        response = await api.client.request(method, f"{BASE}/tasks/{task_id}{suffix}")
        assert response.status_code in (400, 404), (method, task_id, response.status_code, response.text)


@pytest.mark.parametrize("field", ["name", "description"])
async def test_nul_bytes_in_the_body_are_400(api: Api, field: str) -> None:
    response = await api.client.post(f"{BASE}/tasks", content=json.dumps(task_doc(**{field: "a\u0000b"})), headers=JSON)
    assert response.status_code == 400
    assert response.json()["field"] == field


async def test_traversal_in_container_paths_is_400(api: Api) -> None:
    doc = task_doc(outputs=[{"path": "/data/../../etc/cron.d/x", "url": "file:///tmp/x"}])
    response = await api.client.post(f"{BASE}/tasks", json=doc)
    assert response.status_code == 400
    assert response.json()["field"] == "outputs[0].path"
