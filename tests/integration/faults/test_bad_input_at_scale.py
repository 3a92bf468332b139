"""Hostile or careless input at scale against a real ``ktes serve``: clear 4xx answers naming the field, and
the server's memory stays bounded (deeply nested JSON and list byte budgets are tested with the security
work; these are the rest)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.ktes_server import KtesServer, start_server

#: RSS growth allowed over a whole round of large bad requests (each is up to 16 MiB; none may be kept).
RSS_GROWTH_LIMIT_MIB = 200


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KtesServer]:
    started = start_server(tmp_path_factory.mktemp("ktes-bad-input"), {"KTES_ENGINE_ENABLED": "false"})
    yield started
    started.stop()


def task(**fields: Any) -> dict[str, Any]:
    return {"executors": [{"image": "alpine", "command": ["true"]}], **fields}


def post(server: KtesServer, body: bytes | dict[str, Any]) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    return httpx.post(server.tes_url + "/tasks", content=content, headers=headers, timeout=120)


def test_ten_mb_of_content_is_a_400_naming_the_field(server: KtesServer) -> None:
    response = post(server, task(inputs=[{"path": "/data/in", "content": "x" * 10_000_000}]))
    assert response.status_code == 400
    assert response.json()["field"] == "inputs[0].content"


def test_a_hundred_thousand_executors_is_a_400(server: KtesServer) -> None:
    executors = [{"image": "alpine", "command": ["true"]}] * 100_000
    response = post(server, {"executors": executors})
    assert response.status_code == 400
    assert response.json()["field"] == "executors"


def test_a_body_over_the_limit_is_a_413(server: KtesServer) -> None:
    response = post(server, b'{"executors": [], "description": "' + b"x" * (17 << 20) + b'"}')
    assert response.status_code == 413


@pytest.mark.parametrize("odd", ["\x00", "\ud800", "a\x00b"])
@pytest.mark.parametrize(
    "where",
    [
        "name",
        "description",
        "executors[0].image",
        "executors[0].command[0]",
        "executors[0].workdir",
        "executors[0].env.K",
        "inputs[0].path",
        "inputs[0].url",
        "outputs[0].path",
        "outputs[0].url",
        "tags.k",
        "volumes[0]",
    ],
)
def test_nul_and_lone_surrogates_in_any_string_are_a_400(server: KtesServer, where: str, odd: str) -> None:
    body = task(
        name="n",
        description="d",
        inputs=[{"path": "/data/in", "url": "s3://b/k"}],
        outputs=[{"path": "/data/out", "url": "s3://b/o"}],
        tags={"k": "v"},
        volumes=["/vol"],
    )
    body["executors"][0].update(workdir="/data", env={"K": "v"})
    # put the odd character into the chosen string
    parts = where.replace("]", "").replace("[", ".").split(".")
    holder: Any = body
    for part in parts[:-1]:
        holder = holder[int(part)] if part.isdigit() else holder[part]
    last: int | str = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    holder[last] = (holder[last] if isinstance(holder[last], str) else "") + odd
    raw = json.dumps(body).encode()  # json escapes both as \\u0000 / \\ud800, as a client would send them
    response = post(server, raw)
    assert response.status_code == 400, response.text
    assert response.json()["msg"]


def test_odd_but_valid_unicode_round_trips(server: KtesServer) -> None:
    name = "\u202etask \U0001f9ec \ufeff \u0301e \uffff"
    response = post(server, task(name=name, tags={"\U0001f9ea": "\u00e9\u0301"}))
    assert response.status_code == 200
    task_id = response.json()["id"]
    got = httpx.get(f"{server.tes_url}/tasks/{task_id}", params={"view": "BASIC"}, timeout=30).json()
    assert got["name"] == name and got["tags"] == {"\U0001f9ea": "\u00e9\u0301"}


def test_a_thousand_concurrent_connections_are_served(server: KtesServer) -> None:
    """1,000 connections held open idle, and 1,000 requests at once: all served, memory bounded (measured
    at about 4 MiB for the idle ones and 20 MiB for the requests; bench/scale.py --parts connections)."""
    pid = server.proc.pid
    port = int(server.url.rsplit(":", 1)[1])

    async def one(client: httpx.AsyncClient, i: int) -> int:
        if i % 2:
            return (await client.get("/tasks", params={"page_size": 5})).status_code
        return (await client.post("/tasks", json=task(name=f"c{i}"))).status_code

    async def all_at_once() -> tuple[list[int], float]:
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(1000)]
        try:
            limits = httpx.Limits(max_connections=1000, max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=server.tes_url, timeout=300, limits=limits) as client:
                codes = await asyncio.gather(*(one(client, i) for i in range(1000)))
            return codes, rss_mib(pid)
        finally:
            for _, writer in idle:
                writer.close()

    before = rss_mib(pid)
    codes, during = asyncio.run(all_at_once())
    assert set(codes) == {200}, {code: codes.count(code) for code in set(codes)}
    assert httpx.get(server.url + "/healthz", timeout=30).status_code == 200
    assert during - before < RSS_GROWTH_LIMIT_MIB, (before, during)


def test_memory_stays_flat_under_large_bad_requests(server: KtesServer) -> None:
    big_content = task(inputs=[{"path": "/data/in", "content": "x" * 10_000_000}])
    many = {"executors": [{"image": "alpine", "command": ["true"]}] * 100_000}
    post(server, big_content)
    post(server, many)
    before = rss_mib(server.proc.pid)
    for _ in range(5):
        assert post(server, big_content).status_code == 400
        assert post(server, many).status_code == 400
    after = rss_mib(server.proc.pid)
    assert after - before < RSS_GROWTH_LIMIT_MIB, (before, after)
