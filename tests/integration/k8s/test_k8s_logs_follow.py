"""``ktes task logs -f`` on the Kubernetes backend: each executor's stdout and stderr, apart, as each executor
ends (the Pod's output is not streamed live yet: docs/dashboard.md), and the exit code of the task's end."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.fixtures.ktes_server import KtesServer
from tests.integration.k8s.test_k8s_backend import k8s_env, namespace, server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.k8s


def test_logs_follow_prints_each_executors_output_apart(server: KtesServer, k8s_busybox_image: str) -> None:  # noqa: F811
    task = {
        "executors": [
            {"image": k8s_busybox_image, "command": ["sh", "-c", "echo one; echo warn >&2; sleep 2; echo two"]},
            {"image": k8s_busybox_image, "command": ["echo", "three"]},
        ]
    }
    task_id = httpx.post(server.tes_url + "/tasks", json=task, timeout=10).json()["id"]
    result = subprocess.run(
        [sys.executable, "-c", "from ktes.cli.main import app; app()", "task", "logs", "-f", task_id],
        env={"KTES_SERVER": server.url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=300,
    )
    assert result.stdout == b"one\ntwo\nthree\n", result.stderr
    assert b"warn\n" in result.stderr
    assert result.returncode == 0
