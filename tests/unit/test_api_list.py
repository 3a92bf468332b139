"""GET /tasks: filters (name_prefix, state, tags), newest first, cursor pages, views."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ktes.tes.models import Executor, State, Task
from tests.unit.api_harness import BASE, Api, running_api


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path) as api:
        yield api


async def list_ids(api: Api, params: Any = None) -> list[str]:
    body = await list_body(api, params)
    return [t["id"] for t in body["tasks"]]


async def list_body(api: Api, params: Any = None) -> dict[str, Any]:
    response = await api.client.get(f"{BASE}/tasks", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bulk(api: Api, count: int, **fields: Any) -> list[str]:
    return api.store.create_many(Task(executors=[Executor(image="a", command=["b"])], **fields) for _ in range(count))


async def test_empty_list(api: Api) -> None:
    assert await list_body(api) == {"tasks": []}


async def test_newest_first_minimal_by_default(api: Api) -> None:
    ids = [await api.create(name=f"t{i}") for i in range(3)]
    body = await list_body(api)
    assert body == {"tasks": [{"id": i, "state": "QUEUED"} for i in reversed(ids)]}


async def test_views_apply_to_every_listed_task(api: Api) -> None:
    task_id = await api.create(name="n", inputs=[{"path": "/d/x", "content": "c"}])
    (basic,) = (await list_body(api, {"view": "BASIC"}))["tasks"]
    assert basic["name"] == "n" and basic["inputs"] == [{"path": "/d/x", "type": "FILE"}]
    (full,) = (await list_body(api, {"view": "FULL"}))["tasks"]
    assert full["inputs"] == [{"path": "/d/x", "content": "c", "type": "FILE"}] and full["id"] == task_id
    response = await api.client.get(f"{BASE}/tasks", params={"view": "EVERYTHING"})
    assert response.status_code == 400 and response.json()["field"] == "view"


async def test_name_prefix_is_a_case_sensitive_prefix(api: Api) -> None:
    names = ["align-1", "align-2", "Align-3", "aligned", "sort", "al%ign", "al_ign", "ål", None]
    ids = {name: await api.create(name=name) for name in names}

    async def named(prefix: str) -> set[str | None]:
        found = set(await list_ids(api, {"name_prefix": prefix}))
        return {name for name, task_id in ids.items() if task_id in found}

    assert await named("align") == {"align-1", "align-2", "aligned"}
    assert await named("align-") == {"align-1", "align-2"}
    assert await named("Align") == {"Align-3"}
    assert await named("al%") == {"al%ign"}
    assert await named("al_") == {"al_ign"}
    assert await named("å") == {"ål"}
    assert await named("zzz") == set()
    assert await named("") == set(names)  # an empty prefix is no filter


async def test_state_filter(api: Api) -> None:
    queued = await api.create()
    running = await api.create()
    api.store.transition(running, State.INITIALIZING)
    api.store.transition(running, State.RUNNING)
    assert await list_ids(api, {"state": "RUNNING"}) == [running]
    assert await list_ids(api, {"state": "QUEUED"}) == [queued]
    assert await list_ids(api, {"state": "COMPLETE"}) == []
    response = await api.client.get(f"{BASE}/tasks", params={"state": "DONE"})
    assert response.status_code == 400 and response.json()["field"] == "state"


# The spec's own table (ListTasks, tag_key): filter, task tags, match?
SPEC_TAG_TABLE = [
    ({"foo": "bar"}, {"foo": "bar"}, True),
    ({"foo": "bar"}, {"foo": "bat"}, False),
    ({"foo": ""}, {"foo": ""}, True),
    ({"foo": "bar", "baz": "bat"}, {"foo": "bar", "baz": "bat"}, True),
    ({"foo": "bar"}, {"foo": "bar", "baz": "bat"}, True),
    ({"foo": "bar", "baz": "bat"}, {"foo": "bar"}, False),
    ({"foo": ""}, {"foo": "bar"}, True),
    ({"foo": ""}, {}, False),
]


@pytest.mark.parametrize(("flt", "tags", "match"), SPEC_TAG_TABLE)
async def test_tag_filter_follows_the_spec_table(
    api: Api, flt: dict[str, str], tags: dict[str, str], match: bool
) -> None:
    task_id = await api.create(tags=tags)
    await api.create(tags={"other": "x"})
    params = [("tag_key", key) for key in flt] + [("tag_value", value) for value in flt.values()]
    assert await list_ids(api, params) == ([task_id] if match else [])


async def test_a_key_without_value_matches_any_value(api: Api) -> None:
    a = await api.create(tags={"run": "1", "sample": "x"})
    b = await api.create(tags={"run": "2"})
    await api.create(tags={"sample": "y"})
    assert await list_ids(api, [("tag_key", "run")]) == [b, a]
    assert await list_ids(api, [("tag_key", "run"), ("tag_key", "sample")]) == [a]
    assert await list_ids(api, [("tag_key", "sample"), ("tag_key", "run"), ("tag_value", "x")]) == [a]
    assert await list_ids(api, [("tag_key", "run"), ("tag_value", "2")]) == [b]


async def test_more_tag_values_than_keys_is_400(api: Api) -> None:
    response = await api.client.get(f"{BASE}/tasks", params=[("tag_key", "a"), ("tag_value", "1"), ("tag_value", "2")])
    assert response.status_code == 400
    assert response.json()["field"] == "tag_value"


async def test_filters_combine_with_and(api: Api) -> None:
    hit = await api.create(name="run-a", tags={"p": "1"})
    await api.create(name="run-b", tags={"p": "2"})
    await api.create(name="other", tags={"p": "1"})
    started = await api.create(name="run-c", tags={"p": "1"})
    api.store.transition(started, State.INITIALIZING)
    params = [("name_prefix", "run-"), ("state", "QUEUED"), ("tag_key", "p"), ("tag_value", "1")]
    assert await list_ids(api, params) == [hit]


async def test_pages_walk_every_match_once_newest_first(api: Api) -> None:
    ids = bulk(api, 25, tags={"batch": "1"})
    bulk(api, 5, tags={"batch": "2"})
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params: dict[str, Any] = {"page_size": 10, "tag_key": "batch", "tag_value": "1"}
        if token:
            params["page_token"] = token
        body = await list_body(api, params)
        seen += [t["id"] for t in body["tasks"]]
        pages += 1
        token = body.get("next_page_token")
        if not token:
            break
    assert seen == list(reversed(ids))
    assert pages == 3


async def test_no_token_on_an_exactly_full_last_page(api: Api) -> None:
    bulk(api, 10)
    first = await list_body(api, {"page_size": 5})
    assert len(first["tasks"]) == 5 and first["next_page_token"]
    second = await list_body(api, {"page_size": 5, "page_token": first["next_page_token"]})
    assert len(second["tasks"]) == 5
    assert "next_page_token" not in second


async def test_a_token_stays_valid_while_tasks_arrive(api: Api) -> None:
    old = bulk(api, 6)
    first = await list_body(api, {"page_size": 3})
    bulk(api, 4)  # newer tasks arrive between the calls
    second = await list_body(api, {"page_size": 3, "page_token": first["next_page_token"]})
    assert [t["id"] for t in first["tasks"] + second["tasks"]] == list(reversed(old))


async def test_default_page_size_is_256(api: Api) -> None:
    bulk(api, 300)
    body = await list_body(api)
    assert len(body["tasks"]) == 256 and body["next_page_token"]


@pytest.mark.parametrize("size", ["1", "2047"])
async def test_page_size_bounds_that_work(api: Api, size: str) -> None:
    bulk(api, 3)
    assert len(await list_ids(api, {"page_size": size})) == min(3, int(size))


@pytest.mark.parametrize("size", ["0", "-1", "2048", "100000", "ten", "1.5"])
async def test_page_size_outside_1_to_2047_is_400(api: Api, size: str) -> None:
    response = await api.client.get(f"{BASE}/tasks", params={"page_size": size})
    assert response.status_code == 400
    assert response.json()["field"] == "page_size"


@pytest.mark.parametrize("token", ["garbage", "MTIz", "!!!", "bm90IGEgdG9rZW4"])
async def test_a_foreign_page_token_is_400(api: Api, token: str) -> None:
    response = await api.client.get(f"{BASE}/tasks", params={"page_token": token})
    assert response.status_code == 400
    assert response.json()["field"] == "page_token"


async def test_a_nul_in_a_filter_is_400(api: Api) -> None:
    response = await api.client.get(f"{BASE}/tasks", params={"name_prefix": "a\x00"})
    assert response.status_code == 400
    assert response.json()["field"] == "name_prefix"
