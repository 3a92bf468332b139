"""Operations with the Kubernetes backend on the lab: /metrics counts a task run as a Job, and
``ktes admin purge`` removes a finished task together with the Job, Pod and Secret it kept."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
import tes

from tests.fixtures.ktes_server import StartServer
from tests.integration.k8s.test_k8s_backend import (  # noqa: F401 (module fixtures, shared)
    busybox,
    k8s_env,
    namespace,
    objects,
    wait_end,
)
from tests.integration.operations.test_probes_and_metrics import scrape, value

pytestmark = pytest.mark.k8s


def test_purge_takes_a_finished_tasks_kept_job_and_metrics_count_it(
    ktes_server: StartServer,
    k8s_env: dict[str, str],  # noqa: F811
    namespace: str,  # noqa: F811
    k8s_busybox_image: str,
) -> None:
    env = {**k8s_env, "KTES_K8S_KEEP_FINISHED_JOBS": "true"}
    server = ktes_server(env=env)
    before = scrape(server.url)
    client = tes.HTTPClient(server.url, timeout=30)
    task_id = client.create_task(tes.Task(executors=[busybox(k8s_busybox_image, "echo kept")]))
    assert wait_end(client, task_id).state == "COMPLETE"
    after = scrape(server.url)
    assert value(after, "ktes_task_run_seconds_count", backend="kubernetes") == (
        value(before, "ktes_task_run_seconds_count", backend="kubernetes") + 1
    )
    assert httpx.get(f"{server.url}/readyz", timeout=10).json()["checks"]["engine"].startswith("leading")
    assert objects(namespace, task_id, "jobs"), "the Job should be kept (k8s_keep_finished_jobs)"
    server.stop()

    purge_env = {k: v for k, v in os.environ.items() if not k.startswith("KTES_")}
    purge_env.update(env, KTES_DATA_DIR=str(server.data_dir))
    argv = [sys.executable, "-c", "from ktes.cli.main import app; app()", "admin", "purge", "--older-than", "0s"]
    done = subprocess.run(argv, env=purge_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "removed 1 finished tasks" in done.stdout
    deadline = time.monotonic() + 90
    while objects(namespace, task_id, "jobs,pods,secrets"):
        assert time.monotonic() < deadline, f"left: {objects(namespace, task_id, 'jobs,pods,secrets')}"
        time.sleep(0.5)
