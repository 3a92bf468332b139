"""The ``ktes`` client commands as a user runs them (a subprocess each) against a real ``ktes serve`` running
real podman containers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.ktes_server import StartServer

pytestmark = pytest.mark.containers


@pytest.fixture
def server(ktes_server: StartServer) -> str:
    return ktes_server().url


def ktes(server: str, *args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the ``ktes`` command with ``KTES_SERVER`` pointing at ``server``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("KTES_")}
    env["KTES_SERVER"] = server
    return subprocess.run(
        [sys.executable, "-c", "from ktes.cli.main import app; app()", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_run_passes_stdout_stderr_and_the_exit_code_through(server: str, busybox_image: str) -> None:
    result = ktes(server, "run", busybox_image, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    result = ktes(server, "run", busybox_image, "--", "echo", "hello")
    assert (result.returncode, result.stdout, result.stderr) == (0, "hello\n", "")


def test_run_with_inputs_outputs_env_and_workdir(server: str, busybox_image: str, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("abc\n")
    result = ktes(
        server,
        "run",
        busybox_image,
        "--input", f"{tmp_path}/in.txt:/data/in.txt",
        "--output", f"/out/greeting.txt:file://{tmp_path}/result/greeting.txt",
        "--env", "GREETING=hi there",
        "--workdir", "/data",
        "--name", "e2e-run",
        "--", "sh", "-c", 'cat in.txt; pwd; mkdir -p /out; echo "$GREETING" > /out/greeting.txt',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "abc\n/data\n"
    assert (tmp_path / "result" / "greeting.txt").read_text() == "hi there\n"


def test_run_a_missing_image_exits_1_with_the_reason(server: str) -> None:
    result = ktes(server, "run", "localhost/ktes-test/no-such-image:1", "--", "true")
    assert result.returncode == 1
    assert "SYSTEM_ERROR" in result.stderr
    assert "image localhost/ktes-test/no-such-image:1 (executor 0) could not be pulled: not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_create_wait_get_logs_and_list(server: str, busybox_image: str, tmp_path: Path) -> None:
    task = {
        "name": "e2e-two",
        "tags": {"suite": "cli-e2e"},
        "executors": [
            {"image": busybox_image, "command": ["echo", "first"]},
            {"image": busybox_image, "command": ["sh", "-c", "echo second >&2; exit 2"]},
        ],
    }
    file = tmp_path / "task.json"
    file.write_text(json.dumps(task))
    created = ktes(server, "task", "create", "--wait", str(file))
    task_id = created.stdout.strip()
    assert created.returncode == 1
    assert f"task {task_id} EXECUTOR_ERROR: executor 1 exited with code 2" in created.stderr

    document = json.loads(ktes(server, "task", "get", task_id, "--json").stdout)
    assert document["state"] == "EXECUTOR_ERROR"
    assert [log["exit_code"] for log in document["logs"][0]["logs"]] == [0, 2]

    logs = ktes(server, "task", "logs", task_id)
    assert logs.returncode == 0
    assert logs.stdout.startswith(
        "==> executor 0 stdout (exit 0) <==\nfirst\n"
        "==> executor 0 stderr (exit 0) <==\n"
        "==> executor 1 stdout (exit 2) <==\n"
        "==> executor 1 stderr (exit 2) <==\nsecond\n"
    )

    listed = ktes(server, "task", "list", "--tag", "suite=cli-e2e", "--state", "executor_error", "--json")
    assert [t["id"] for t in json.loads(listed.stdout)] == [task_id]
    table = ktes(server, "task", "list", "--name-prefix", "e2e-")
    assert table.stdout.splitlines()[1].split()[:3] == [task_id, "EXECUTOR_ERROR", "e2e-two"]

    waited = ktes(server, "task", "wait", task_id)
    assert (waited.returncode, waited.stdout) == (1, f"task {task_id} EXECUTOR_ERROR: executor 1 exited with code 2\n")


def test_cancel_a_running_task(server: str, busybox_image: str) -> None:
    task = {"executors": [{"image": busybox_image, "command": ["sleep", "300"]}]}
    task_id = ktes(server, "task", "create", "-", stdin=json.dumps(task)).stdout.strip()
    waited = ktes(server, "task", "wait", task_id, "--timeout", "0.5")
    assert waited.returncode == 1 and "is still" in waited.stderr
    canceled = ktes(server, "task", "cancel", task_id, "--wait")
    assert (canceled.returncode, canceled.stdout) == (0, f"task {task_id} CANCELED\n")
    again = ktes(server, "task", "cancel", task_id)
    assert again.stdout == f"task {task_id} had already ended: CANCELED\n"


def test_errors_a_user_meets(server: str, tmp_path: Path) -> None:
    missing = ktes(server, "task", "get", "t0000000000000000000000000")
    assert (missing.returncode, missing.stderr) == (1, "error: task 't0000000000000000000000000' not found\n")
    bad = tmp_path / "bad.json"
    bad.write_text('{"executors": [\n')
    broken = ktes(server, "task", "create", str(bad))
    assert broken.returncode == 1
    assert broken.stderr.startswith(f"error: {bad}: invalid JSON at line 2 column 1")
    refused = ktes(server, "task", "create", "-", stdin='{"executors": []}')
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: executors")
    assert "Traceback" not in missing.stderr + broken.stderr + refused.stderr
