"""``ktes serve`` killed (SIGKILL) three times during a burst of mixed tasks on the local backend.

Each kill is followed by a restart on the same data directory. Afterwards every task is in its right final
state with its logs, every file:// output exists with its content, and no container, work directory or run
directory is left.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.ktes_server import KtesServer, StartServer
from tests.integration.local.tes_calls import containers_of

pytestmark = pytest.mark.containers

TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}
KINDS = ("sleep", "content", "output", "fails")
PER_KIND = 9  # 36 tasks


def body(kind: str, i: int, image: str, out_dir: Path) -> dict[str, Any]:
    if kind == "sleep":
        return {
            "name": f"{kind}-{i}",
            "executors": [{"image": image, "command": ["sh", "-c", f"sleep {1 + i % 3}; echo slept-{i}"]}],
        }
    if kind == "content":
        return {
            "name": f"{kind}-{i}",
            "inputs": [{"path": "/data/in.txt", "content": f"content-{i}\n"}],
            "executors": [
                {"image": image, "command": ["sh", "-c", "sleep 1; cat /data/in.txt"]},
                {"image": image, "command": ["sh", "-c", "wc -c < /data/in.txt"]},
            ],
        }
    if kind == "output":
        return {
            "name": f"{kind}-{i}",
            "outputs": [{"path": "/data/out/result.txt", "url": f"file://{out_dir}/result-{i}.txt"}],
            "executors": [
                {"image": image, "command": ["sh", "-c", f"sleep {i % 3}; echo result-{i} > /data/out/result.txt"]}
            ],
        }
    return {"name": f"{kind}-{i}", "executors": [{"image": image, "command": ["sh", "-c", "sleep 1; exit 3"]}]}


def all_tasks(server: KtesServer) -> list[dict[str, Any]]:
    response = httpx.get(server.tes_url + "/tasks", params={"view": "FULL", "page_size": 100}, timeout=30)
    response.raise_for_status()
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


def finished(server: KtesServer) -> int:
    return sum(task["state"] in TERMINAL for task in all_tasks(server))


def leftovers(data_dir: Path) -> list[str]:
    return sorted(p.name for root in ("work", "run") if (data_dir / root).is_dir() for p in (data_dir / root).iterdir())


def test_three_kills_during_a_burst(ktes_server: StartServer, busybox_image: str, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    env = {"KTES_LOCAL_MAX_CPUS": "6", "KTES_FILE_ALLOWED_ROOTS": f'["{tmp_path}"]'}
    server = ktes_server(env=env)
    bodies = [body(kind, i, busybox_image, out_dir) for i in range(PER_KIND) for kind in KINDS]
    with httpx.Client(base_url=server.tes_url, timeout=30) as client:
        ids = [client.post("/tasks", json=b).json()["id"] for b in bodies]
    total = len(ids)

    for kill in range(3):
        # Kill once a further share of the burst has finished, so each kill lands mid-run.
        target = total * (kill + 1) // 5
        deadline = time.monotonic() + 180
        while finished(server) < target:
            assert time.monotonic() < deadline, f"kill {kill}: only {finished(server)} of {total} finished"
            time.sleep(0.2)
        server.kill()
        server = ktes_server(env=env, data_dir=server.data_dir)

    deadline = time.monotonic() + 240
    while finished(server) < total:
        assert time.monotonic() < deadline, f"only {finished(server)} of {total} finished"
        time.sleep(0.2)

    by_name = {task["name"]: task for task in all_tasks(server)}
    for i in range(PER_KIND):
        slept = by_name[f"sleep-{i}"]
        assert slept["state"] == "COMPLETE", slept["logs"][0].get("system_logs")
        assert slept["logs"][0]["logs"][-1]["stdout"] == f"slept-{i}\n"
        content = by_name[f"content-{i}"]
        assert content["state"] == "COMPLETE", content["logs"][0].get("system_logs")
        assert [e["stdout"].strip() for e in content["logs"][0]["logs"]] == [f"content-{i}", str(len(f"content-{i}\n"))]
        output = by_name[f"output-{i}"]
        assert output["state"] == "COMPLETE", output["logs"][0].get("system_logs")
        assert (out_dir / f"result-{i}.txt").read_text() == f"result-{i}\n"
        fails = by_name[f"fails-{i}"]
        assert fails["state"] == "EXECUTOR_ERROR", fails["logs"][0].get("system_logs")
        assert fails["logs"][0]["logs"][-1]["exit_code"] == 3

    deadline = time.monotonic() + 60  # finished containers are removed in batches after the end is recorded
    while leftovers(server.data_dir) or containers_of(*ids):
        assert time.monotonic() < deadline, f"left behind: {leftovers(server.data_dir)} {containers_of(*ids)}"
        time.sleep(0.5)
