"""A burst of mixed tasks for the fault tests, on either backend: what to send, how to wait, what must hold.

Four kinds, ``per_kind`` of each: ``sleep`` (sleeps 1-3 s, then prints), ``content`` (a content input, two
executors), ``output`` (writes a file that goes to ``output_url(i)``) and ``fails`` (exits 3). After the
fault, :func:`check_outcomes` asserts each task's state, logs and output as a user would read them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.fixtures.ktes_server import KtesServer, StartServer

TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}
KINDS = ("sleep", "content", "output", "fails")


def body(kind: str, i: int, image: str, output_url: Callable[[int], str]) -> dict[str, Any]:
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
            "outputs": [{"path": "/data/out/result.txt", "url": output_url(i)}],
            "executors": [
                {"image": image, "command": ["sh", "-c", f"sleep {i % 3}; echo result-{i} > /data/out/result.txt"]}
            ],
        }
    return {"name": f"{kind}-{i}", "executors": [{"image": image, "command": ["sh", "-c", "sleep 1; exit 3"]}]}


def bodies(per_kind: int, image: str, output_url: Callable[[int], str]) -> list[dict[str, Any]]:
    """``per_kind`` tasks of each kind, the kinds interleaved (so every share of the burst mixes them)."""
    return [body(kind, i, image, output_url) for i in range(per_kind) for kind in KINDS]


def submit(server: KtesServer, documents: list[dict[str, Any]]) -> list[str]:
    with httpx.Client(base_url=server.tes_url, timeout=30) as client:
        return [client.post("/tasks", json=document).json()["id"] for document in documents]


def all_tasks(server: KtesServer) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    params: dict[str, Any] = {"view": "FULL", "page_size": 256}
    with httpx.Client(base_url=server.tes_url, timeout=30) as client:
        while True:
            response = client.get("/tasks", params=params)
            response.raise_for_status()
            page = response.json()
            tasks.extend(page["tasks"])
            if not page.get("next_page_token"):
                return tasks
            params["page_token"] = page["next_page_token"]


def finished(server: KtesServer) -> int:
    return sum(task["state"] in TERMINAL for task in all_tasks(server))


def wait_finished(server: KtesServer, count: int, timeout: float, what: str = "") -> None:
    """Wait until at least ``count`` tasks have ended (polled; fails after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while (done := finished(server)) < count:
        assert time.monotonic() < deadline, f"{what}only {done} of {count} tasks finished in {timeout:g} s"
        time.sleep(0.5)


def kill_three_times(
    server: KtesServer, start: StartServer, env: dict[str, str], total: int, timeout: float
) -> KtesServer:
    """SIGKILL ``server`` once a fifth, two fifths and three fifths of the burst have ended, restarting it on
    the same data directory each time (so each kill lands mid-run); the server running at the end."""
    for kill in range(3):
        wait_finished(server, total * (kill + 1) // 5, timeout, f"before kill {kill}: ")
        server.kill()
        server = start(env=env, data_dir=server.data_dir)
    return server


def check_outcomes(server: KtesServer, per_kind: int, read_output: Callable[[int], str]) -> None:
    """Every task in its right final state with its logs; every output where it was sent (``read_output``)."""
    by_name = {task["name"]: task for task in all_tasks(server)}
    for i in range(per_kind):
        slept = by_name[f"sleep-{i}"]
        assert slept["state"] == "COMPLETE", slept["logs"][0].get("system_logs")
        assert slept["logs"][0]["logs"][-1]["stdout"] == f"slept-{i}\n"
        content = by_name[f"content-{i}"]
        assert content["state"] == "COMPLETE", content["logs"][0].get("system_logs")
        assert [e["stdout"].strip() for e in content["logs"][0]["logs"]] == [f"content-{i}", str(len(f"content-{i}\n"))]
        output = by_name[f"output-{i}"]
        assert output["state"] == "COMPLETE", output["logs"][0].get("system_logs")
        assert read_output(i) == f"result-{i}\n"
        fails = by_name[f"fails-{i}"]
        assert fails["state"] == "EXECUTOR_ERROR", fails["logs"][0].get("system_logs")
        assert fails["logs"][0]["logs"][-1]["exit_code"] == 3
