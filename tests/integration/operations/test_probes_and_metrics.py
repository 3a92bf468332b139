"""What an operator watches, on a real ``ktes serve``: /readyz through a PostgreSQL outage, /metrics moving as
tasks run in real containers."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
import tes
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.ktes_server import StartServer
from tests.fixtures.postgres import postgres_server
from tests.integration.local.tes_calls import executor, run_task


def wait_ready(url: str, ready: bool, within: float = 30.0) -> dict[str, object]:
    """Poll /readyz until it says ``ready`` (200) or not (503); return its body."""
    deadline = time.monotonic() + within
    while True:
        response = httpx.get(f"{url}/readyz", timeout=10)
        assert response.status_code in (200, 503), response.text
        if (response.status_code == 200) == ready:
            body: dict[str, object] = response.json()
            return body
        assert time.monotonic() < deadline, f"/readyz still {response.status_code} after {within} s: {response.text}"
        time.sleep(0.2)


@pytest.mark.postgres
def test_readyz_goes_false_while_postgresql_is_down_and_true_when_it_is_back(ktes_server: StartServer) -> None:
    with postgres_server() as database:
        server = ktes_server(env={"KTES_DATABASE_URL": database.url})
        assert wait_ready(server.url, True)["checks"] == {"store": "ok", "engine": "running"}

        database.stop()
        down = wait_ready(server.url, False)
        checks = down["checks"]
        assert isinstance(checks, dict)
        assert checks["store"].startswith("the database is unreachable")
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200  # alive: no restart wanted

        database.start()
        assert wait_ready(server.url, True)["status"] == "ready"
        assert server.running()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.containers
def test_metrics_count_tasks_transitions_times_bytes_and_requests(
    ktes_server: StartServer, busybox_image: str, tmp_path: Path
) -> None:
    server = ktes_server()
    source = tmp_path / "in.txt"
    source.write_bytes(b"x" * 1000)
    before = scrape(server.url)
    client = tes.HTTPClient(server.url, timeout=30)
    copy = tes.Task(
        inputs=[tes.Input(url=f"file://{source}", path="/data/in.txt")],
        outputs=[tes.Output(url=f"file://{tmp_path / 'out.txt'}", path="/out/out.txt")],
        executors=[executor(busybox_image, "sh", "-c", "cat /data/in.txt > /out/out.txt")],
    )
    done = [run_task(client, copy), run_task(client, tes.Task(executors=[executor(busybox_image, "true")]))]
    failed = run_task(client, tes.Task(executors=[executor(busybox_image, "false")]))
    assert [t.state for t in done] == ["COMPLETE", "COMPLETE"] and failed.state == "EXECUTOR_ERROR", done[0].logs
    deadline = time.monotonic() + 30
    while True:  # ktes_tasks is counted at most every 5 s: scrape until the count is fresh
        after = scrape(server.url)
        if value(after, "ktes_tasks", state="EXECUTOR_ERROR") > value(before, "ktes_tasks", state="EXECUTOR_ERROR"):
            break
        assert time.monotonic() < deadline, "ktes_tasks never counted the finished tasks"
        time.sleep(0.5)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("ktes_tasks", state="COMPLETE") == 2
    assert moved("ktes_tasks", state="EXECUTOR_ERROR") == 1
    assert moved("ktes_task_transitions_total", **{"from": "QUEUED", "to": "INITIALIZING"}) == 3
    assert moved("ktes_task_transitions_total", **{"from": "RUNNING", "to": "COMPLETE"}) == 2
    assert moved("ktes_task_transitions_total", **{"from": "RUNNING", "to": "EXECUTOR_ERROR"}) == 1
    assert moved("ktes_task_queue_seconds_count", backend="local") == 3
    assert moved("ktes_task_run_seconds_count", backend="local") == 3
    assert moved("ktes_task_run_seconds_sum", backend="local") > 0
    assert moved("ktes_filer_bytes_total", scheme="file", direction="download") == 1000
    assert moved("ktes_filer_bytes_total", scheme="file", direction="upload") == 1000
    created = moved("ktes_http_requests_total", route="/ga4gh/tes/v1/tasks", method="POST", status="200")
    assert created == 3
    assert moved("ktes_http_request_duration_seconds_count", route="/ga4gh/tes/v1/tasks/{task_id}") >= 3
    assert value(after, "ktes_engine_dispatch_lag_seconds") == 0
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert not re.search(r"\bt[0-9a-z]{26}\b", text), "a task id in a label"
