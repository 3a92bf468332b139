"""PostgreSQL stopped for 10 s (``pg_ctl stop -m immediate``) while ``ktes serve`` runs real podman tasks.

What a user must see: requests during the outage answer 503 with ``Retry-After`` (never 500); no dead pooled
connection answers an error after the database is back; every task completes, each executor run once, with
nothing said about restarts; no work directory or container is left behind.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.fixtures.ktes_server import StartServer
from tests.fixtures.postgres import PostgresServer
from tests.integration.local.tes_calls import containers_of

pytestmark = [pytest.mark.containers, pytest.mark.postgres]

TASKS = 20
OUTAGE_SECONDS = 10.0
TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}


def task_body(image: str, i: int) -> dict[str, object]:
    return {
        "name": f"outage-{i}",
        "resources": {"cpu_cores": 1},
        "inputs": [{"path": "/data/in.txt", "content": f"input-{i}\n"}],
        "executors": [
            {"image": image, "command": ["sh", "-c", f"sleep {1 + i % 4}; cat /data/in.txt"]},
            {"image": image, "command": ["echo", "second"]},
        ],
    }


def leftovers(data_dir: Path) -> list[str]:
    return sorted(p.name for root in ("work", "run") if (data_dir / root).is_dir() for p in (data_dir / root).iterdir())


def test_a_database_outage_loses_nothing(
    ktes_server: StartServer, own_postgres: PostgresServer, busybox_image: str
) -> None:
    server = ktes_server(env={"KTES_DATABASE_URL": own_postgres.url, "KTES_LOCAL_MAX_CPUS": "8"})
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=server.tes_url, timeout=30) as client:
        ids = [client.post("/tasks", json=task_body(busybox_image, i)).json()["id"] for i in range(TASKS)]

        def states() -> dict[str, str]:
            response = client.get("/tasks", params={"view": "MINIMAL", "page_size": 100})
            statuses[response.status_code] += 1
            if response.status_code != 200:
                return {}
            return {t["id"]: t["state"] for t in response.json()["tasks"]}

        deadline = time.monotonic() + 120
        while "RUNNING" not in states().values():
            assert time.monotonic() < deadline, "no task started"
            time.sleep(0.1)

        own_postgres.stop("immediate")
        during: Counter[int] = Counter()
        retry_after: set[str | None] = set()
        outage_ends = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < outage_ends:  # the outage lasts this long; ask as clients do meanwhile
            for response in (client.get(f"/tasks/{ids[0]}"), client.get("/tasks", params={"view": "BASIC"})):
                during[response.status_code] += 1
                retry_after.add(response.headers.get("Retry-After"))
            created = client.post("/tasks", json=task_body(busybox_image, 99))
            during[created.status_code] += 1
            time.sleep(0.2)
        own_postgres.start()
        after = Counter(client.get(f"/tasks/{task_id}").status_code for task_id in ids)  # dead pooled connections
        assert set(after) == {200}, f"answers just after the restart: {dict(after)}"

        assert set(during) == {503}, f"answers during the outage: {dict(during)}"
        assert retry_after == {"5"}

        deadline = time.monotonic() + 240
        while True:
            now = states()
            if len(now) == TASKS and set(now.values()) <= TERMINAL:
                break
            assert time.monotonic() < deadline, f"tasks not finished: {Counter(now.values())}"
            time.sleep(0.2)
        assert statuses[500] == 0 and set(statuses) <= {200}, f"answers after the outage: {dict(statuses)}"

        for i, task_id in enumerate(ids):
            response = client.get(f"/tasks/{task_id}", params={"view": "FULL"})
            assert response.status_code == 200
            task = response.json()
            log = task["logs"][0]
            assert task["state"] == "COMPLETE", (task_id, task["state"], log.get("system_logs"))
            assert [e["stdout"] for e in log["logs"]] == [f"input-{i}\n", "second\n"]
            assert not [line for line in log.get("system_logs") or [] if "restart" in line], log["system_logs"]

    def clean() -> bool:  # finished containers are removed in batches after the end is recorded
        return leftovers(server.data_dir) == [] and containers_of(*ids) == []

    deadline = time.monotonic() + 60
    while not clean():
        assert time.monotonic() < deadline, f"left behind: {leftovers(server.data_dir)}"
        time.sleep(0.1)
    assert "internal server error" not in server.output()
