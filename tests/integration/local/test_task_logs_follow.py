"""``ktes task logs -f`` against a real ``ktes serve`` with podman: lines of a running task as they appear."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.fixtures.ktes_server import StartServer

pytestmark = pytest.mark.containers


def lines_of(stream: object, into: queue.Queue[str | None]) -> None:
    for line in iter(stream.readline, b""):  # type: ignore[attr-defined]
        into.put(line.decode())
    into.put(None)


def next_line(lines: queue.Queue[str | None], within: float = 60.0) -> str | None:
    return lines.get(timeout=within)


def test_logs_follow_prints_lines_while_the_task_runs(ktes_server: StartServer, busybox_image: str) -> None:
    server = ktes_server(env={"KTES_LOCAL_PULL": "never"})
    # The second line is printed only once the first has reached the client (a file the test creates).
    script = "echo one; echo warn >&2; while [ ! -e /work/go ]; do sleep 0.1; done; echo two"
    task = {
        "executors": [
            {"image": busybox_image, "command": ["sh", "-c", script]},
            {"image": busybox_image, "command": ["echo", "three"]},
        ],
        "volumes": ["/work"],
    }
    task_id = httpx.post(server.tes_url + "/tasks", json=task, timeout=10).json()["id"]
    cli = subprocess.Popen(
        [sys.executable, "-c", "from ktes.cli.main import app; app()", "task", "logs", "-f", task_id],
        env={"KTES_SERVER": server.url, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out: queue.Queue[str | None] = queue.Queue()
    err: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=lines_of, args=(cli.stdout, out), daemon=True).start()
    threading.Thread(target=lines_of, args=(cli.stderr, err), daemon=True).start()
    try:
        assert next_line(out) == "one\n"
        assert httpx.get(f"{server.tes_url}/tasks/{task_id}", timeout=10).json()["state"] == "RUNNING"
        assert out.empty()
        stderr_lines = [next_line(err), next_line(err)]
        assert "warn\n" in stderr_lines  # stderr apart, on stderr

        go = server.data_dir / "work" / task_id / "work" / "go"
        go.touch()
        assert next_line(out) == "two\n"
        assert next_line(out) == "three\n"
        assert next_line(out) is None
        assert cli.wait(60) == 0
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()


def test_logs_follow_of_an_ended_task_prints_what_was_kept(ktes_server: StartServer, busybox_image: str) -> None:
    server = ktes_server(env={"KTES_LOCAL_PULL": "never"})
    task = {"executors": [{"image": busybox_image, "command": ["sh", "-c", "echo kept; exit 4"]}]}
    task_id = httpx.post(server.tes_url + "/tasks", json=task, timeout=10).json()["id"]
    deadline = time.monotonic() + 60
    while httpx.get(f"{server.tes_url}/tasks/{task_id}", timeout=10).json()["state"] != "EXECUTOR_ERROR":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    result = subprocess.run(
        [sys.executable, "-c", "from ktes.cli.main import app; app()", "task", "logs", "-f", task_id],
        env={"KTES_SERVER": server.url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=60,
    )
    assert result.stdout == b"kept\n"
    assert result.returncode == 1  # it did not end COMPLETE


def test_a_link_planted_in_place_of_the_output_is_never_read_on_the_host(
    ktes_server: StartServer, busybox_image: str
) -> None:
    server = ktes_server(env={"KTES_LOCAL_PULL": "never"})
    # The task swaps its stdout file (the helper's default, in its state directory) for a link to a host file.
    script = (
        "echo before; busybox rm -f /ktes/state/0.stdout; busybox ln -s /etc/passwd /ktes/state/0.stdout; "
        "echo planted >&2; sleep 600"
    )
    task = {"executors": [{"image": busybox_image, "command": ["sh", "-c", script]}]}
    task_id = httpx.post(server.tes_url + "/tasks", json=task, timeout=10).json()["id"]
    logs = f"{server.url}/ktes/v1/tasks/{task_id}/logs"
    try:
        deadline = time.monotonic() + 60
        while "planted" not in httpx.get(logs, params={"stream": "stderr"}, timeout=10).text:
            assert time.monotonic() < deadline, "the task did not plant its link"
            time.sleep(0.1)
        answer = httpx.get(logs, timeout=10)
        assert answer.status_code == 200
        assert "root:" not in answer.text
        assert answer.text == ""
    finally:
        httpx.post(f"{server.tes_url}/tasks/{task_id}:cancel", timeout=30)
