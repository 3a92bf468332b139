"""A task waiting on a download does not block the others, and a store that refuses every attempt is reported
within the retry budget (``ktes serve`` with podman, one CPU for tasks, an S3 endpoint nobody listens on)."""

from __future__ import annotations

import pytest
import tes

from tests.fixtures.ktes_server import StartServer, free_local_port
from tests.integration.local.tes_calls import executor, run_task, wait_for

pytestmark = pytest.mark.containers


def refused_s3_env(**extra: str) -> dict[str, str]:
    return {
        "KTES_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_local_port()}",
        "KTES_S3_ACCESS_KEY_ID": "k",
        "KTES_S3_SECRET_ACCESS_KEY": "s",
        "KTES_S3_REGION": "us-east-1",
        "KTES_LOCAL_MAX_CPUS": "1",
        **extra,
    }


def download_task(image: str) -> tes.Task:
    return tes.Task(
        inputs=[tes.Input(url="s3://bucket/never.txt", path="/data/in.txt")],
        executors=[executor(image, "cat", "/data/in.txt")],
    )


def test_a_task_stuck_downloading_does_not_hold_the_only_cpu(ktes_server: StartServer, busybox_image: str) -> None:
    # a long retry budget keeps the first task downloading for the whole test
    server = ktes_server(env=refused_s3_env(KTES_TRANSFER_RETRY_MAX_SECONDS="120"))
    client = tes.HTTPClient(server.url, timeout=30)
    stuck = client.create_task(download_task(busybox_image))
    wait_for(client, stuck, {"INITIALIZING"})
    behind = run_task(client, tes.Task(executors=[executor(busybox_image, "echo", "not blocked")]), within=120)
    assert behind.state == "COMPLETE" and behind.logs[0].logs[0].stdout == "not blocked\n"
    assert client.get_task(stuck).state == "INITIALIZING"
    client.cancel_task(stuck)
    assert wait_for(client, stuck).state == "CANCELED"


def test_a_refused_download_fails_within_the_retry_budget(ktes_server: StartServer, busybox_image: str) -> None:
    server = ktes_server(env=refused_s3_env())
    client = tes.HTTPClient(server.url, timeout=30)
    failed = wait_for(client, client.create_task(download_task(busybox_image)), within=120)
    assert failed.state == "SYSTEM_ERROR"
    reason = failed.logs[0].system_logs[-1]
    assert "s3://bucket/never.txt" in reason and "cannot connect to the S3 endpoint" in reason
    assert "(tried 4 times in" in reason  # 1 + 2 + 4 s of waiting fit the default 10 s budget; 8 more do not
