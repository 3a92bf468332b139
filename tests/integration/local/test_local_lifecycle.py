"""Cancel, concurrency, and a crash (kill -9) of ``ktes serve`` with tasks running, with real containers."""

from __future__ import annotations

import itertools
import subprocess
import time
from pathlib import Path

import pytest
import tes

from tests.fixtures.ktes_server import StartServer
from tests.integration.local.tes_calls import containers_of, eventually, executor, wait_for

pytestmark = pytest.mark.containers


def leftovers(data_dir: Path) -> list[str]:
    return sorted(p.name for root in ("work", "run") if (data_dir / root).is_dir() for p in (data_dir / root).iterdir())


def test_cancel_stops_the_container_and_ends_canceled(ktes_server: StartServer, busybox_image: str) -> None:
    server = ktes_server()
    client = tes.HTTPClient(server.url, timeout=30)
    task_id = client.create_task(tes.Task(executors=[executor(busybox_image, "sleep", "300")]))
    wait_for(client, task_id, {"RUNNING"})
    deadline = time.monotonic() + 30
    while not containers_of(task_id):  # RUNNING comes as podman starts the container
        assert time.monotonic() < deadline, "the task's container never appeared"
        time.sleep(0.05)
    client.cancel_task(task_id)
    task = wait_for(client, task_id, {"CANCELED"}, within=30)
    assert task.state == "CANCELED"
    assert containers_of(task_id) == []
    assert leftovers(server.data_dir) == []


def test_concurrency_is_bounded_by_cpus(ktes_server: StartServer, busybox_image: str) -> None:
    server = ktes_server(env={"KTES_LOCAL_MAX_CPUS": "1"})
    client = tes.HTTPClient(server.url, timeout=30)
    ids = [client.create_task(tes.Task(executors=[executor(busybox_image, "sleep", "0.3")])) for _ in range(3)]
    tasks = [wait_for(client, task_id) for task_id in ids]
    assert [t.state for t in tasks] == ["COMPLETE"] * 3
    # the containers' spans (staging reserves no CPU, so the tasks' own spans may overlap)
    spans = sorted((t.logs[0].logs[0].start_time, t.logs[0].logs[0].end_time) for t in tasks)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, "two tasks ran containers at once on a one-CPU budget"


def test_kill_9_and_restart_finishes_every_task(ktes_server: StartServer, busybox_image: str) -> None:
    env = {"KTES_LOCAL_MAX_CPUS": "3"}
    first = ktes_server(env=env)
    client = tes.HTTPClient(first.url, timeout=30)
    two_steps = client.create_task(
        tes.Task(
            executors=[
                executor(busybox_image, "sh", "-c", "sleep 3; echo first"),
                executor(busybox_image, "echo", "second"),
            ]
        )
    )
    fails_meanwhile = client.create_task(tes.Task(executors=[executor(busybox_image, "sh", "-c", "sleep 1; exit 4")]))
    lost = client.create_task(tes.Task(executors=[executor(busybox_image, "sleep", "300")]))
    queued = client.create_task(tes.Task(executors=[executor(busybox_image, "echo", "third")]))
    for task_id in (two_steps, fails_meanwhile, lost):
        wait_for(client, task_id, {"RUNNING"})

    first.kill()
    # Take one task's container away meanwhile: its result cannot be known any more.
    subprocess.run(["podman", "rm", "--force", "--time", "0", f"ktes-{lost}-0"], check=True, capture_output=True)

    second = ktes_server(env=env, data_dir=first.data_dir)
    client = tes.HTTPClient(second.url, timeout=30)
    done = {task_id: wait_for(client, task_id, within=90) for task_id in (two_steps, fails_meanwhile, lost, queued)}

    assert done[two_steps].state == "COMPLETE"
    assert [log.stdout for log in done[two_steps].logs[0].logs] == ["first\n", "second\n"]
    assert done[fails_meanwhile].state == "EXECUTOR_ERROR"
    assert done[fails_meanwhile].logs[0].logs[0].exit_code == 4
    assert done[lost].state == "SYSTEM_ERROR"
    assert any("ktes restarted" in line for line in done[lost].logs[0].system_logs)
    assert done[queued].state == "COMPLETE"
    eventually(lambda: containers_of(two_steps, fails_meanwhile, lost, queued) == [])
    eventually(lambda: leftovers(second.data_dir) == [])
