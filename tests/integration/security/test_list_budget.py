"""A client lists huge tasks in one go: 20 tasks of 15 MiB content each, FULL view, page_size 2047.

Before the byte budget the server built a 315 MB answer (peak 1.5 GB). Now each page stops at the budget,
hands out a token that leads through every task exactly once, and the server's memory stays flat.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.ktes_server import KtesServer, start_server

MIB = 1024 * 1024
TASKS = 20
CONTENT = 15 * MIB
BUDGET = 8 * MIB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KtesServer]:
    env = {
        "KTES_ENGINE_ENABLED": "false",  # the tasks stay QUEUED: only the API is under test
        "KTES_MAX_CONTENT_BYTES": str(16 * MIB),
        "KTES_MAX_BODY_BYTES": str(17 * MIB),
    }
    running = start_server(tmp_path_factory.mktemp("ktes-budget"), env=env)
    try:
        yield running
    finally:
        running.stop()


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def list_all(url: str) -> tuple[list[str], list[int]]:
    ids: list[str] = []
    sizes: list[int] = []
    token = None
    with httpx.Client(timeout=120) as client:
        while True:
            params = {"view": "FULL", "page_size": "2047", **({"page_token": token} if token else {})}
            response = client.get(f"{url}/tasks", params=params)
            assert response.status_code == 200
            sizes.append(len(response.content))
            body = response.json()
            ids += [task["id"] for task in body["tasks"]]
            token = body.get("next_page_token")
            if not token:
                return ids, sizes


def test_huge_full_listings_are_paged_by_bytes_with_flat_memory(server: KtesServer) -> None:
    created = []
    with httpx.Client(timeout=120) as client:
        for i in range(TASKS):
            content = chr(ord("a") + i) * CONTENT
            task = {
                "name": f"big{i}",
                "inputs": [{"path": "/in", "content": content}],
                "executors": [{"image": "x", "command": ["true"]}],
            }
            response = client.post(f"{server.tes_url}/tasks", json=task)
            assert response.status_code == 200, response.text
            created.append(response.json()["id"])
    pid = server.proc.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak: measure the listings only
    before = memory_kib(pid, "VmRSS")
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(list_all, [server.tes_url] * 3))
    grown_mib = (memory_kib(pid, "VmHWM") - before) / 1024
    print(f"peak growth while 3 clients list {TASKS} x 15 MiB FULL: {grown_mib:.0f} MiB; pages {results[0][1]}")
    for ids, sizes in results:
        assert ids == list(reversed(created))
        assert max(sizes) <= BUDGET + CONTENT + MIB  # one task past the budget at most (here: one per page)
    assert grown_mib < 400  # 3 x (page + its copies); without the budget: several GB
