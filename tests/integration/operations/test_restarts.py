"""SIGTERM mid-task (a rolling restart, a ``systemctl restart``): ktes stops within its bound without touching
the running task, and the next ktes on the same data directory finishes it."""

from __future__ import annotations

import signal
import subprocess

import httpx
import pytest
import tes

from tests.fixtures.ktes_server import StartServer
from tests.integration.local.tes_calls import containers_of, executor, wait_for

pytestmark = pytest.mark.containers

#: What the test allows a stopping ktes (the chart's terminationGracePeriodSeconds is 30).
STOP_BOUND_SECONDS = 25


def test_sigterm_mid_task_stops_cleanly_and_the_next_ktes_finishes_the_task(
    ktes_server: StartServer, busybox_image: str
) -> None:
    first = ktes_server(env={"KTES_SHUTDOWN_SECONDS": "10", "KTES_LOG_LEVEL": "info"})
    client = tes.HTTPClient(first.url, timeout=30)
    steps = [
        executor(busybox_image, "sh", "-c", "sleep 3; echo first"),
        executor(busybox_image, "echo", "second"),
    ]
    task_id = client.create_task(tes.Task(executors=steps))
    wait_for(client, task_id, {"RUNNING"})

    first.proc.send_signal(signal.SIGTERM)
    try:
        code = first.proc.wait(STOP_BOUND_SECONDS)
    except subprocess.TimeoutExpired:
        first.kill()
        raise AssertionError(f"ktes did not stop within {STOP_BOUND_SECONDS} s:\n{first.output()[-3000:]}") from None
    # uvicorn re-raises the signal after its graceful shutdown, so the exit status says SIGTERM
    assert code in (0, -signal.SIGTERM), first.output()[-3000:]
    assert "Application shutdown complete" in first.output(), "the engine and store were not stopped in order"
    assert containers_of(task_id), "the stop touched the running task's container"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{first.url}/healthz", timeout=2)  # it takes no more requests

    second = ktes_server(data_dir=first.data_dir)
    done = wait_for(tes.HTTPClient(second.url, timeout=30), task_id, within=90)
    assert done.state == "COMPLETE", done
    assert [log.stdout for log in done.logs[0].logs] == ["first\n", "second\n"]
