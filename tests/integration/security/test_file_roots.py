"""A task reaches for ktes's own database and the user's credentials through ``file://`` (local backend).

One server with the default roots and a home directory full of credentials (under the temp directory, so
the temp root covers it, as home would be covered when ktes starts in it); one whose operator allowed ``/``.
ktes's own files stay out of reach in both; no secret shows up in any response or in the server's log.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.ktes_server import KtesServer, start_server
from tests.integration.security.calls import submit, submit_and_wait, wait

pytestmark = pytest.mark.containers

SECRET = "tok-3b9d-never-shown"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    for relative in (".ssh/id_ed25519", ".ssh/authorized_keys", ".aws/credentials", ".kube/config", ".bashrc"):
        (home / relative).parent.mkdir(parents=True, exist_ok=True)
        (home / relative).write_text(SECRET + "\n")
    return home


def _server(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> KtesServer:
    server = start_server(tmp_path_factory.mktemp("ktes-roots"), env={**env, "KTES_LOG_LEVEL": "info"})
    # A task whose environment holds a credential: it is in the database from now on.
    wait(server, submit(server, {"executors": [{"image": "x", "command": ["true"], "env": {"TOKEN": SECRET}}]}))
    return server


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory, busybox_image: str, home: Path) -> Iterator[KtesServer]:
    server = _server(tmp_path_factory, {"HOME": str(home)})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def wide_server(tmp_path_factory: pytest.TempPathFactory, busybox_image: str) -> Iterator[KtesServer]:
    server = _server(tmp_path_factory, {"KTES_FILE_ALLOWED_ROOTS": json.dumps(["/"])})
    yield server
    server.stop()


def read_task(image: str, url: str) -> dict[str, Any]:
    return {
        "inputs": [{"path": "/data/in", "url": url}],
        "executors": [{"image": image, "command": ["cat", "/data/in"]}],
    }


def write_task(image: str, url: str) -> dict[str, Any]:
    return {
        "outputs": [{"path": "/data/out", "url": url}],
        "executors": [{"image": image, "command": ["sh", "-c", "echo OVERWRITTEN > /data/out"]}],
    }


def assert_refused(server: KtesServer, task: dict[str, Any], because: str) -> None:
    assert task["state"] == "SYSTEM_ERROR", task
    assert because in " ".join(task["logs"][0]["system_logs"])
    # (The first task's own FULL view shows its env, as TES says; the attacking task must show nothing of it.)
    assert SECRET not in httpx.get(f"{server.tes_url}/tasks/{task['id']}?view=FULL").text
    assert SECRET not in server.output()


def own_urls(server: KtesServer) -> list[str]:
    data = server.data_dir
    (data.parent / f"link-{data.name}").unlink(missing_ok=True)
    (data.parent / f"link-{data.name}").symlink_to(data)
    return [
        f"file://{data}/ktes.db",
        f"file://{data}/ktes.db-wal",
        f"{data}/ktes.db",
        f"file://{data.parent}/x/../{data.name}/ktes.db",
        f"file://{data.parent}/link-{data.name}/ktes.db",
    ]


@pytest.mark.parametrize("which", ["default", "wide"])
def test_ktes_database_is_never_an_input(request: pytest.FixtureRequest, busybox_image: str, which: str) -> None:
    server: KtesServer = request.getfixturevalue(f"{which}_server")
    submitted = [submit(server, read_task(busybox_image, url)) for url in own_urls(server)]
    for task_id in submitted:
        assert_refused(server, wait(server, task_id), "is ktes's own file or directory")


@pytest.mark.parametrize("which", ["default", "wide"])
def test_ktes_database_is_never_an_output(request: pytest.FixtureRequest, busybox_image: str, which: str) -> None:
    server: KtesServer = request.getfixturevalue(f"{which}_server")
    submitted = [submit(server, write_task(busybox_image, url)) for url in own_urls(server)]
    for task_id in submitted:
        assert_refused(server, wait(server, task_id), "is ktes's own file or directory")
    with sqlite3.connect(server.data_dir / "ktes.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert httpx.get(f"{server.tes_url}/tasks").status_code == 200


@pytest.mark.parametrize("relative", [".ssh/id_ed25519", ".aws/credentials", ".kube/config", ".bashrc"])
def test_default_roots_keep_credentials_out(
    default_server: KtesServer, busybox_image: str, home: Path, relative: str
) -> None:
    task = submit_and_wait(default_server, read_task(busybox_image, f"file://{home / relative}"))
    assert_refused(default_server, task, "credential" if relative == ".bashrc" else "dot-directory")


@pytest.mark.parametrize("relative", [".ssh/authorized_keys", ".bashrc"])
def test_default_roots_keep_start_up_files_unwritten(
    default_server: KtesServer, busybox_image: str, home: Path, relative: str
) -> None:
    task = submit_and_wait(default_server, write_task(busybox_image, f"file://{home / relative}"))
    assert task["state"] == "SYSTEM_ERROR"
    assert (home / relative).read_text() == SECRET + "\n"


def test_default_roots_serve_a_workflow_in_the_temp_dir(
    default_server: KtesServer, busybox_image: str, tmp_path: Path
) -> None:
    (tmp_path / "in.txt").write_text("reads\n")
    task = submit_and_wait(
        default_server,
        {
            "inputs": [{"path": "/data/in.txt", "url": f"file://{tmp_path / 'in.txt'}"}],
            "outputs": [{"path": "/data/out/.done", "url": f"file://{tmp_path / 'work' / '.done'}"}],
            "executors": [{"image": busybox_image, "command": ["sh", "-c", "cat /data/in.txt > /data/out/.done"]}],
        },
    )
    assert task["state"] == "COMPLETE", task["logs"][0]["system_logs"]
    assert (tmp_path / "work" / ".done").read_text() == "reads\n"


def test_the_roots_in_force_are_said_at_start(default_server: KtesServer) -> None:
    assert "file:// inputs and outputs allowed below: " in default_server.output()
