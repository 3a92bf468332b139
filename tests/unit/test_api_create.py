"""POST /tasks: what a client gets back for good and bad task documents."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.api_harness import BASE, Api, executor, running_api, task_doc

K8S_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path, max_executors=3, max_inputs=3, max_outputs=3, max_tags=3) as api:
        yield api


async def post(api: Api, body: Any) -> tuple[int, dict[str, Any]]:
    response = await api.client.post(f"{BASE}/tasks", json=body)
    return response.status_code, response.json()


async def test_create_returns_a_kubernetes_friendly_id_and_the_task_is_queued(api: Api) -> None:
    status, body = await post(api, task_doc(name="first"))
    assert status == 200
    assert list(body) == ["id"]
    task_id = body["id"]
    assert K8S_NAME.match(task_id) and len(task_id) <= 40
    full = await api.get(task_id, "FULL")
    assert full["state"] == "QUEUED"
    assert full["name"] == "first"
    assert full["executors"] == [{"image": "alpine:3", "command": ["echo", "hello"], "env": {}}]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", full["creation_time"])
    assert full["logs"] == []


async def test_ids_sort_by_creation(api: Api) -> None:
    ids = [await api.create() for _ in range(20)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 20


async def test_create_wakes_the_engine(api: Api) -> None:
    await api.create()
    assert api.wakes == [1]


async def test_read_only_and_unknown_fields_are_ignored(api: Api) -> None:
    body = task_doc(
        id="mine",
        state="COMPLETE",
        creation_time="2000-01-01T00:00:00Z",
        logs=[{"logs": [], "outputs": []}],
        something_new={"x": 1},
    )
    body["executors"][0]["future_field"] = True
    status, created = await post(api, body)
    assert status == 200
    full = await api.get(created["id"], "FULL")
    assert full["id"] == created["id"] != "mine"
    assert full["state"] == "QUEUED"
    assert not full["creation_time"].startswith("2000")
    assert full["logs"] == [] and "something_new" not in full
    assert "future_field" not in full["executors"][0]


async def test_explicit_nulls_are_accepted(api: Api) -> None:
    body = {
        "name": None,
        "description": None,
        "inputs": None,
        "outputs": None,
        "resources": None,
        "volumes": None,
        "tags": None,
        "executors": [executor(workdir=None, env=None, stdin=None, stdout=None, stderr=None, ignore_error=None)],
    }
    status, created = await post(api, body)
    assert status == 200
    full = await api.get(created["id"], "FULL")
    assert full["executors"] == [{"image": "alpine:3", "command": ["echo", "hello"], "env": {}}]


async def test_a_full_task_round_trips(api: Api) -> None:
    body = task_doc(
        name="all",
        description="every field",
        inputs=[
            {"name": "in", "url": "s3://bucket/key", "path": "/data/in.txt", "type": "FILE", "streamable": True},
            {"path": "/data/literal.txt", "content": "hello", "type": "FILE"},
            {"url": "/home/me/plain.txt", "path": "/data/plain.txt", "type": "FILE"},
        ],
        outputs=[
            {"url": "s3://bucket/out/", "path": "/data/out/*.txt", "path_prefix": "/data/", "type": "FILE"},
            {"url": "file:///tmp/result", "path": "/data/result", "type": "DIRECTORY"},
        ],
        resources={"cpu_cores": 2, "ram_gb": 1.5, "disk_gb": 10, "preemptible": True, "zones": ["a", "b"]},
        volumes=["/scratch"],
        tags={"project": "p1", "empty": ""},
    )
    body["executors"] = [
        executor(workdir="/data", stdin="/data/in.txt", stdout="/data/out.txt", stderr="/data/err.txt", env={"A": "1"}),
        executor(ignore_error=True, env={}),
    ]
    status, created = await post(api, body)
    assert status == 200
    full = await api.get(created["id"], "FULL")
    for key, value in body.items():
        assert full[key] == value, key


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "executors"),
        ({"executors": []}, "executors"),
        ({"executors": None}, "executors"),
        ({"executors": [{"command": ["true"]}]}, "executors[0].image"),
        ({"executors": [executor(image="")]}, "executors[0].image"),
        ({"executors": [executor(image="  ")]}, "executors[0].image"),
        ({"executors": [executor(command=[])]}, "executors[0].command"),
        ({"executors": [executor(command="echo hi")]}, "executors[0].command"),
        ({"executors": [executor(), executor(workdir="relative")]}, "executors[1].workdir"),
        ({"executors": [executor(stdout="out.txt")]}, "executors[0].stdout"),
        ({"executors": [executor(stderr="/a/../../etc/passwd")]}, "executors[0].stderr"),
        ({"executors": [executor(stdin="/")]}, "executors[0].stdin"),
        ({"executors": [executor(env={"A": 1})]}, "executors[0].env.A"),
        (task_doc(inputs=[{"url": "s3://b/k"}]), "inputs[0].path"),
        (task_doc(inputs=[{"path": "/data/x"}]), "inputs[0].url"),
        (task_doc(inputs=[{"url": "s3://b/k", "path": "data/x"}]), "inputs[0].path"),
        (task_doc(inputs=[{"url": "s3://b/k", "path": "/"}]), "inputs[0].path"),
        (task_doc(inputs=[{"url": "s3://b/k", "path": "/data/../x"}]), "inputs[0].path"),
        (task_doc(inputs=[{"url": "gs://b/k", "path": "/data/x"}]), "inputs[0].url"),
        (task_doc(inputs=[{"url": "relative/file", "path": "/data/x"}]), "inputs[0].url"),
        (task_doc(outputs=[{"path": "/data/x"}]), "outputs[0].url"),
        (task_doc(outputs=[{"url": "ftp://h/x", "path": "/data/x"}]), "outputs[0].url"),
        (task_doc(outputs=[{"url": "s3://b/", "path": "/data/*.txt"}]), "outputs[0].path_prefix"),
        (
            task_doc(outputs=[{"url": "s3://b/", "path": "/data/*.txt", "path_prefix": "/other/"}]),
            "outputs[0].path_prefix",
        ),
        (task_doc(volumes=["relative"]), "volumes[0]"),
        (task_doc(volumes=["/"]), "volumes[0]"),
        (task_doc(resources={"cpu_cores": -1}), "resources.cpu_cores"),
        (task_doc(resources={"ram_gb": -1}), "resources.ram_gb"),
        (task_doc(resources={"cpu_cores": "many"}), "resources.cpu_cores"),
        (task_doc(tags={"a": ["list"]}), "tags.a"),
        ({"executors": [executor()] * 4}, "executors"),
        (task_doc(inputs=[{"path": f"/d/{i}", "content": "x"} for i in range(4)]), "inputs"),
        (task_doc(outputs=[{"path": f"/d/{i}", "url": "s3://b/k"} for i in range(4)]), "outputs"),
        (task_doc(tags={str(i): "" for i in range(4)}), "tags"),
        ([task_doc()], "body"),
        ("a string", "body"),
    ],
)
async def test_bad_tasks_get_400_naming_the_field(api: Api, body: Any, field: str) -> None:
    status, error = await post(api, body)
    assert status == 400, error
    assert error["field"] == field
    assert error["msg"].startswith(f"{field}: ")


async def test_bad_json_is_a_400(api: Api) -> None:
    response = await api.client.post(
        f"{BASE}/tasks", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["field"] == "body"


async def test_a_rejected_task_is_not_stored_and_does_not_wake(api: Api) -> None:
    await post(api, {"executors": []})
    assert (await api.client.get(f"{BASE}/tasks")).json()["tasks"] == []
    assert api.wakes == []


async def test_input_content_up_to_the_limit_is_stored_and_beyond_is_a_400(tmp_path: Path) -> None:
    async with running_api(tmp_path, max_content_bytes=256 * 1024) as api:
        big = "x" * (128 * 1024)
        task_id = await api.create(inputs=[{"path": "/data/big", "content": big}])
        assert (await api.get(task_id, "FULL"))["inputs"][0]["content"] == big
        status, error = await post(api, task_doc(inputs=[{"path": "/data/big", "content": "é" * (128 * 1024 + 1)}]))
        assert status == 400
        assert error["field"] == "inputs[0].content"


async def test_content_wins_over_url(api: Api) -> None:
    # a url with an unsupported scheme is ignored when content is given
    task_id = await api.create(inputs=[{"path": "/data/x", "content": "hi", "url": "gs://ignored/x"}])
    assert (await api.get(task_id, "FULL"))["inputs"][0]["content"] == "hi"


async def test_empty_content_is_an_empty_file(api: Api) -> None:
    task_id = await api.create(inputs=[{"path": "/data/empty", "type": "FILE", "content": ""}])
    assert (await api.get(task_id, "FULL"))["inputs"][0] == {"path": "/data/empty", "type": "FILE", "content": ""}


async def test_a_body_over_the_limit_gets_413(tmp_path: Path) -> None:
    async with running_api(tmp_path, max_body_bytes=1000) as api:
        response = await api.client.post(f"{BASE}/tasks", json=task_doc(description="x" * 2000))
        assert response.status_code == 413
        assert response.json()["field"] == "body"

        async def chunks() -> AsyncIterator[bytes]:  # no content-length: counted while reading
            yield b'{"executors": [], "description": "'
            for _ in range(20):
                yield b"x" * 100
            yield b'"}'

        response = await api.client.post(
            f"{BASE}/tasks", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413


async def test_backend_parameter_keys_are_case_insensitive_and_unsupported_ones_dropped_with_a_warning(
    api: Api,
) -> None:
    task_id = await api.create(resources={"backend_parameters": {"Queue": "fast", "VmSize": "big", "GPU": "1"}})
    full = await api.get(task_id, "FULL")
    assert full["resources"]["backend_parameters"] == {"queue": "fast"}
    (log,) = full["logs"]
    assert log["logs"] == [] and log["outputs"] == []
    (warning,) = log["system_logs"]
    assert "'gpu'" in warning and "'vmsize'" in warning and "ignored" in warning
    assert full["state"] == "QUEUED"


async def test_supported_backend_parameters_leave_no_warning(api: Api) -> None:
    task_id = await api.create(resources={"backend_parameters": {"ZONE": "a"}, "backend_parameters_strict": True})
    full = await api.get(task_id, "FULL")
    assert full["resources"]["backend_parameters"] == {"zone": "a"}
    assert full["logs"] == []


async def test_strict_backend_parameters_reject_unsupported_keys(api: Api) -> None:
    body = task_doc(resources={"backend_parameters": {"queue": "q", "VmSize": "x"}, "backend_parameters_strict": True})
    status, error = await post(api, body)
    assert status == 400
    assert error["field"] == "resources.backend_parameters"
    assert "'vmsize'" in error["msg"]


async def test_server_wide_strictness(tmp_path: Path) -> None:
    async with running_api(tmp_path, backend_parameters_strict=True) as api:
        status, error = await post(api, task_doc(resources={"backend_parameters": {"VmSize": "x"}}))
        assert status == 400
        assert "'vmsize'" in error["msg"]
