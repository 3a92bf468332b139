"""A burst of 100 mixed tasks for the fault tests, on either backend: what to send, how to wait, what must hold.

Five kinds (:data:`MIX` says how many of each): ``sleep`` (sleeps 0-2 s, then prints), ``two`` (two executors,
no files), ``fails`` (exits 3), ``content`` (a content input, two executors) and ``output`` (writes a file that
goes to ``output_url(i)``). Most are of the first three kinds, which on Kubernetes need no Secret and no stage
container (a Pod of the executors only): the burst is 100 tasks, yet a CI run pays for stage containers only
for the 20 with files (docs/scale.md). The kinds are interleaved, so every fifth of the burst mixes them and
each kill lands among all of them. After the fault, :func:`check_outcomes` asserts each task's state, logs and
output as a user would read them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.fixtures.ktes_server import KtesServer, StartServer

TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}
#: how many tasks of each kind: 100 in all, 80 of them without inputs or outputs.
MIX = {"sleep": 50, "two": 15, "fails": 15, "content": 10, "output": 10}


def body(kind: str, i: int, image: str, output_url: Callable[[int], str]) -> dict[str, Any]:
    name = f"{kind}-{i}"
    if kind == "sleep":
        command = ["sh", "-c", f"sleep {i % 3}; echo slept-{i}"]
        return {"name": name, "executors": [{"image": image, "command": command}]}
    if kind == "two":
        return {
            "name": name,
            "executors": [
                {"image": image, "command": ["sh", "-c", f"sleep 1; echo first-{i}"]},
                {"image": image, "command": ["echo", f"second-{i}"]},
            ],
        }
    if kind == "content":
        return {
            "name": name,
            "inputs": [{"path": "/data/in.txt", "content": f"content-{i}\n"}],
            "executors": [
                {"image": image, "command": ["sh", "-c", "sleep 1; cat /data/in.txt"]},
                {"image": image, "command": ["sh", "-c", "wc -c < /data/in.txt"]},
            ],
        }
    if kind == "output":
        return {
            "name": name,
            "outputs": [{"path": "/data/out/result.txt", "url": output_url(i)}],
            "executors": [
                {"image": image, "command": ["sh", "-c", f"sleep {i % 3}; echo result-{i} > /data/out/result.txt"]}
            ],
        }
    return {"name": name, "executors": [{"image": image, "command": ["sh", "-c", "sleep 1; exit 3"]}]}


def bodies(image: str, output_url: Callable[[int], str]) -> list[dict[str, Any]]:
    """The :data:`MIX`, interleaved: each kind spread evenly over the burst (ordered by the share of its kind
    that comes before it)."""
    placed = [((i + 0.5) / count, kind, i) for kind, count in MIX.items() for i in range(count)]
    return [body(kind, i, image, output_url) for _, kind, i in sorted(placed)]


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


def _stdouts(task: dict[str, Any]) -> list[str]:
    return [executor.get("stdout", "") for executor in task["logs"][0]["logs"]]


def check_outcomes(server: KtesServer, read_output: Callable[[int], str]) -> None:
    """Every task in its right final state with its logs; every output where it was sent (``read_output``)."""
    by_name = {task["name"]: task for task in all_tasks(server)}
    assert len(by_name) == sum(MIX.values())
    for name, task in by_name.items():
        kind, i = name.split("-")[0], int(name.split("-")[1])
        why = task["logs"][0].get("system_logs")
        if kind == "fails":
            assert task["state"] == "EXECUTOR_ERROR", (name, why)
            assert task["logs"][0]["logs"][-1]["exit_code"] == 3, name
            continue
        assert task["state"] == "COMPLETE", (name, why)
        if kind == "sleep":
            assert _stdouts(task) == [f"slept-{i}\n"], name
        elif kind == "two":
            assert _stdouts(task) == [f"first-{i}\n", f"second-{i}\n"], name
        elif kind == "content":
            assert [out.strip() for out in _stdouts(task)] == [f"content-{i}", str(len(f"content-{i}\n"))], name
        else:
            assert read_output(i) == f"result-{i}\n", name
