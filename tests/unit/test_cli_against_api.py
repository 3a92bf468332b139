"""The CLI against ktes's own API (``create_app`` over a MemoryStore, no engine), over real HTTP.

Tasks stay QUEUED here (there is no engine), so this checks the client and the API agree on paths,
parameters, views, paging and error bodies; running tasks is tests/integration/test_cli_e2e.py's job.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from ktes.api.app import create_app
from ktes.capabilities import Capabilities
from ktes.cli import task_cmd
from ktes.config import Settings
from ktes.store.memory import MemoryStore
from tests.unit.fake_tes_server import serve

app = typer.Typer(pretty_exceptions_enable=False)
task_cmd.register(app)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    settings = Settings(page_size_default=10, page_size_max=10)
    capabilities = Capabilities(storage_schemes=("file", "http", "https"), backend_parameters=())
    with serve(create_app(settings, MemoryStore(), capabilities)) as url:
        yield url


def ktes(server: str, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, [*args, "--server", server], input=stdin)


def submit(server: str, task: dict[str, Any]) -> str:
    result = ktes(server, "task", "create", "-", stdin=json.dumps(task))
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def test_create_get_and_cancel(server: str) -> None:
    task_id = submit(server, {"name": "api-1", "executors": [{"image": "busybox", "command": ["echo", "hi"]}]})
    task = json.loads(ktes(server, "task", "get", task_id, "--json").stdout)
    assert task["id"] == task_id
    assert task["state"] == "QUEUED"
    assert task["executors"] == [{"image": "busybox", "command": ["echo", "hi"], "env": {}}]
    result = ktes(server, "task", "cancel", task_id)
    assert (result.exit_code, result.stdout) == (0, f"task {task_id} CANCELED\n")
    result = ktes(server, "task", "wait", task_id)
    assert (result.exit_code, result.stdout) == (1, f"task {task_id} CANCELED\n")


def test_an_invalid_task_gets_the_servers_reason(server: str) -> None:
    task = {"executors": [{"image": "busybox", "command": ["cat"]}], "inputs": [{"path": "in", "content": "x"}]}
    result = ktes(server, "task", "create", "-", stdin=json.dumps(task))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: inputs[0].path: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_task(server: str) -> None:
    result = ktes(server, "task", "get", "0000000000000000000")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: task '0000000000000000000' not found"


def test_list_filters_and_pages_through_the_real_api(server: str) -> None:
    ids = [
        submit(server, {"name": f"page-{n}", "tags": {"batch": "b1", **({"odd": ""} if n % 2 else {})},
                        "executors": [{"image": "busybox", "command": ["true"]}]})
        for n in range(25)
    ]  # fmt: skip

    def listed(*args: str) -> list[str]:
        result = ktes(server, "task", "list", "--json", *args)
        assert result.exit_code == 0, result.stderr
        return [t["id"] for t in json.loads(result.stdout)]

    # 25 tasks and pages of at most 10: the client asks page after page, and takes the server's page size
    # when it asks for more than the server allows
    assert listed("--name-prefix", "page-", "--limit", "0") == ids[::-1]
    assert listed("--tag", "batch=b1", "--tag", "odd", "--limit", "0") == ids[1::2][::-1]
    assert listed("--tag", "batch=b2") == []
    assert listed("--name-prefix", "page-1", "--state", "QUEUED") == [
        i for n, i in reversed(list(enumerate(ids))) if str(n).startswith("1")
    ]
    table = ktes(server, "task", "list", "--name-prefix", "page-", "--limit", "2")
    assert [line.split()[:3] for line in table.stdout.splitlines()[1:]] == [
        [ids[-1], "QUEUED", "page-24"],
        [ids[-2], "QUEUED", "page-23"],
    ]
    assert "more tasks match" in table.stderr
