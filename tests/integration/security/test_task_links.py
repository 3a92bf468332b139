"""A task attacks the host through links and special files in its workspace (local backend, real podman).

ktes runs as root here, as ``scripts/setup`` installs it. Every test plants a link (or a FIFO) inside the
container, then gets ktes to open that name on the host side: as an executor's stdout, stderr or stdin, as
the tail of a log, as an output. The host file must stay untouched (or not be created), and the secret must
never appear in any response or in the server's log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.ktes_server import KtesServer, start_server
from tests.integration.security.calls import TERMINAL, submit, submit_and_wait, wait

pytestmark = pytest.mark.containers

SECRET = "s3cr3t-host-value-7f1e"
VICTIM_TEXT = "original host content\n"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory standing for the rest of the host (outside ktes's data dir and any allowed root)."""
    root = tmp_path_factory.mktemp("host")
    (root / "secret").write_text(SECRET + "\n")
    return root


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("allowed-outputs")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, busybox_image: str, outputs: Path) -> Iterator[KtesServer]:
    running = start_server(tmp_path_factory.mktemp("ktes-security"), env={"KTES_FILE_ALLOWED_ROOTS": f'["{outputs}"]'})
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def victim(host: Path, request: pytest.FixtureRequest) -> Path:
    path = host / f"victim-{request.node.name}"
    path.write_text(VICTIM_TEXT)
    return path


def sh(image: str, script: str, **fields: Any) -> dict[str, Any]:
    return {"image": image, "command": ["sh", "-c", script], **fields}


def refused_or_contained(task: dict[str, Any], sentence: str) -> None:
    """When ktes opens stdio files on the host, it refuses the link and says so. (When the redirection runs
    inside the container instead, the link leads into the container's own files: nothing to refuse.)"""
    if task["state"] == "SYSTEM_ERROR":
        assert sentence in " ".join(task["logs"][0]["system_logs"])


def state(server: KtesServer, task_id: str) -> str:
    return str(httpx.get(f"{server.tes_url}/tasks/{task_id}").json()["state"])


def wait_until(check: Callable[[], bool], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def assert_no_secret(server: KtesServer, task: dict[str, Any]) -> None:
    assert SECRET not in httpx.get(f"{server.tes_url}/tasks/{task['id']}?view=FULL").text
    assert SECRET not in httpx.get(f"{server.tes_url}/tasks?view=FULL").text
    assert SECRET not in server.output()


def test_stdout_link_to_a_host_file_does_not_overwrite_it(server: KtesServer, busybox_image: str, victim: Path) -> None:
    task = submit_and_wait(
        server,
        {
            "volumes": ["/data/log"],
            "executors": [
                sh(busybox_image, f"busybox ln -s {victim} /data/log/o.txt"),
                sh(busybox_image, "echo PWNED", stdout="/data/log/o.txt"),
            ],
        },
    )
    assert victim.read_text() == VICTIM_TEXT
    refused_or_contained(task, "stdout file /data/log/o.txt is a link")


def test_stderr_link_dangling_into_a_host_dir_creates_nothing(
    server: KtesServer, busybox_image: str, host: Path
) -> None:
    target = host / "created-by-task"
    task = submit_and_wait(
        server,
        {
            "volumes": ["/data/log"],
            "executors": [
                sh(busybox_image, f"busybox ln -s {target} /data/log/e.txt"),
                sh(busybox_image, "echo PWNED >&2", stderr="/data/log/e.txt"),
            ],
        },
    )
    assert not target.exists() and not target.is_symlink()
    refused_or_contained(task, "stderr file /data/log/e.txt is a link")


def test_a_directory_link_on_the_way_to_stdout_is_not_followed(
    server: KtesServer, busybox_image: str, host: Path
) -> None:
    task = submit_and_wait(
        server,
        {
            "volumes": ["/data"],
            "executors": [
                sh(busybox_image, f"rm -r /data/sub && busybox ln -s {host} /data/sub"),
                sh(busybox_image, "echo PWNED", stdout="/data/sub/o.txt"),
            ],
        },
    )
    assert not (host / "o.txt").exists()
    refused_or_contained(task, "stdout file /data/sub/o.txt is a link")


def test_stdin_link_to_a_host_secret_is_not_fed_to_the_container(
    server: KtesServer, busybox_image: str, host: Path
) -> None:
    task = submit_and_wait(
        server,
        {
            "volumes": ["/data/in"],
            "executors": [
                sh(busybox_image, f"busybox ln -s {host / 'secret'} /data/in/x"),
                sh(busybox_image, "cat", stdin="/data/in/x"),
            ],
        },
    )
    refused_or_contained(task, "stdin file /data/in/x is a link")
    assert_no_secret(server, task)


def test_own_stdout_replaced_by_a_link_does_not_leak_into_the_log(
    server: KtesServer, busybox_image: str, host: Path
) -> None:
    task = submit_and_wait(
        server,
        {
            "executors": [
                sh(
                    busybox_image,
                    f"echo mine; rm /data/log/o.txt; busybox ln -s {host / 'secret'} /data/log/o.txt;"
                    f"rm /data/log/e.txt; busybox ln -s {host / 'secret'} /data/log/e.txt",
                    stdout="/data/log/o.txt",
                    stderr="/data/log/e.txt",
                )
            ],
        },
    )
    assert_no_secret(server, task)


def test_a_fifo_as_stdin_does_not_hang_ktes(server: KtesServer, busybox_image: str) -> None:
    fifo_task = submit(
        server,
        {
            "volumes": ["/data/in"],
            "executors": [
                sh(busybox_image, "busybox mkfifo /data/in/x"),
                sh(busybox_image, "cat", stdin="/data/in/x"),
            ],
        },
    )
    wait_until(lambda: state(server, fifo_task) not in ("QUEUED", "INITIALIZING"))
    # ktes goes on serving and running other tasks, whatever the FIFO task does.
    assert submit_and_wait(server, {"executors": [sh(busybox_image, "echo alive")]})["state"] == "COMPLETE"
    if state(server, fifo_task) not in TERMINAL:  # waiting on its own FIFO inside its container: cancel it
        assert httpx.post(f"{server.tes_url}/tasks/{fifo_task}:cancel").status_code == 200
    task = wait(server, fifo_task)
    refused_or_contained(task, "stdin file /data/in/x is a link or not a regular file")


@pytest.mark.parametrize("target", ["absolute", "relative"])
def test_an_output_link_to_a_host_secret_uploads_nothing_of_it(
    server: KtesServer, busybox_image: str, host: Path, outputs: Path, target: str
) -> None:
    secret = host / "secret"
    link = str(secret) if target == "absolute" else "../../../../../../../../../.." + str(secret)
    dest = outputs / f"out-{target}.txt"
    task = submit_and_wait(
        server,
        {
            "outputs": [{"path": "/data/out.txt", "url": f"file://{dest}"}],
            "executors": [sh(busybox_image, f"busybox ln -s {link} /data/out.txt")],
        },
    )
    assert task["state"] == "SYSTEM_ERROR"
    assert "output /data/out.txt does not exist" in " ".join(task["logs"][0]["system_logs"])
    assert not dest.exists()
    assert_no_secret(server, task)


def test_an_output_directory_link_to_the_host_is_not_walked(
    server: KtesServer, busybox_image: str, host: Path, outputs: Path
) -> None:
    dest = outputs / "outdir"
    task = submit_and_wait(
        server,
        {
            "outputs": [
                {"path": "/data/outs", "url": f"file://{dest}", "type": "DIRECTORY"},
                {"path": "/data/glob/*", "url": f"file://{dest}-glob", "path_prefix": "/data/glob/"},
            ],
            "executors": [
                sh(
                    busybox_image,
                    f"busybox ln -s {host} /data/outs/h; busybox ln -s {host / 'secret'} /data/outs/s;"
                    f"busybox ln -s {host} /data/glob/h; echo fine > /data/outs/ok",
                )
            ],
        },
    )
    assert task["state"] == "COMPLETE"
    uploaded = sorted(str(p.relative_to(outputs)) for p in outputs.rglob("*") if p.is_file())
    assert uploaded == ["outdir/ok"]
    assert_no_secret(server, task)
