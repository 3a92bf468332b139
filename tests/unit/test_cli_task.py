"""``ktes task ...`` and ``ktes run`` as a user runs them, against a fake TES server over real HTTP."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from ktes.cli import task_cmd
from ktes.cli.task_output import local_time
from tests.unit.fake_tes_server import FakeTes, fake_tes

# The task commands alone, as ``ktes`` registers them (the other groups have their own tests).
app = typer.Typer(pretty_exceptions_enable=False)
task_cmd.register(app)

ECHO = {"name": "hello", "executors": [{"image": "busybox", "command": ["echo", "hi", "there"]}]}


@pytest.fixture(scope="module")
def tes_server() -> Iterator[FakeTes]:
    with fake_tes() as fake:
        yield fake


@pytest.fixture
def tes(tes_server: FakeTes) -> FakeTes:
    """The fake server, emptied."""
    tes_server.tasks.clear()
    tes_server.requests.clear()
    return tes_server


def ktes(fake: FakeTes | str, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    url = fake if isinstance(fake, str) else fake.url
    at = args.index("--") if "--" in args else len(args)
    return CliRunner().invoke(app, [*args[:at], "--server", url, *args[at:]], input=stdin, env=env)


def submit(fake: FakeTes, task: dict[str, Any]) -> str:
    result = ktes(fake, "task", "create", "-", stdin=json.dumps(task))
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- create ---------------------------------------------------------------------------------------


def test_create_from_a_file_prints_the_id(tes: FakeTes, tmp_path: Path) -> None:
    file = tmp_path / "task.json"
    file.write_text(json.dumps(ECHO))
    result = ktes(tes, "task", "create", str(file))
    assert result.exit_code == 0
    assert result.stdout == "task-0001\n"
    assert tes.tasks["task-0001"]["executors"] == ECHO["executors"]


def test_create_from_stdin_with_json_output(tes: FakeTes) -> None:
    result = ktes(tes, "task", "create", "-", "--json", stdin=json.dumps(ECHO))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"id": "task-0001"}


def test_create_with_bad_json_names_line_and_column(tes: FakeTes, tmp_path: Path) -> None:
    file = tmp_path / "task.json"
    file.write_text('{\n  "executors": [\n    {"image": "busybox",}\n  ]\n}\n')
    result = ktes(tes, "task", "create", str(file))
    assert result.exit_code == 1
    assert f"{file}: invalid JSON at line 3 column 25" in result.stderr
    assert "Traceback" not in result.output
    assert tes.tasks == {}


def test_create_with_a_json_list_says_a_task_is_an_object(tes: FakeTes) -> None:
    result = ktes(tes, "task", "create", "-", stdin="[1, 2]")
    assert result.exit_code == 1
    assert "stdin: a TES task is a JSON object, not a JSON list" in result.stderr


def test_create_with_a_missing_file(tes: FakeTes, tmp_path: Path) -> None:
    result = ktes(tes, "task", "create", str(tmp_path / "nope.json"))
    assert result.exit_code == 1
    assert "cannot read" in result.stderr and "No such file or directory" in result.stderr


def test_create_rejected_by_the_server_shows_its_reason(tes: FakeTes) -> None:
    result = ktes(tes, "task", "create", "-", stdin='{"executors": []}')
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: executors: a task needs at least one executor"


def test_create_and_wait_ends_with_the_final_state(tes: FakeTes) -> None:
    result = ktes(tes, "task", "create", "-", "--wait", stdin=json.dumps(ECHO))
    assert result.exit_code == 0
    assert result.stdout == "task-0001\n"
    for state in ("INITIALIZING", "RUNNING"):
        assert state in result.stderr
    assert result.stderr.strip().endswith("task task-0001 COMPLETE")


def test_create_and_wait_exits_1_when_an_executor_fails(tes: FakeTes) -> None:
    task = {"executors": [{"image": "busybox", "command": ["fail", "3"]}]}
    result = ktes(tes, "task", "create", "-", "--wait", stdin=json.dumps(task))
    assert result.exit_code == 1
    assert "task task-0001 EXECUTOR_ERROR: executor 0 exited with code 3" in result.stderr


def test_create_and_wait_json_prints_the_full_task(tes: FakeTes) -> None:
    result = ktes(tes, "task", "create", "-", "--wait", "--json", stdin=json.dumps(ECHO))
    assert result.exit_code == 0
    task = json.loads(result.stdout)
    assert task["state"] == "COMPLETE"
    assert task["logs"][0]["logs"][0]["stdout"] == "hi there\n"
    assert result.stderr == ""


# --- errors a user meets anywhere -------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["task", "get", "x"], ["task", "list"], ["task", "cancel", "x"], ["task", "logs", "x"], ["run", "i", "a"]]
)
def test_no_server_gives_the_hint_to_start_one(args: list[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = ktes(url, *args)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: no ktes server at {url} (start one with `ktes serve`)"


def test_the_server_comes_from_ktes_server_in_the_environment(tes: FakeTes) -> None:
    submit(tes, ECHO)
    result = CliRunner().invoke(app, ["task", "get", "task-0001", "--json"], env={"KTES_SERVER": tes.url})
    assert result.exit_code == 0
    assert json.loads(result.stdout)["id"] == "task-0001"


@pytest.mark.parametrize("command", ["get", "wait", "cancel", "logs"])
def test_unknown_task_is_not_found(tes: FakeTes, command: str) -> None:
    result = ktes(tes, "task", command, "nope")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: task 'nope' not found"


# --- get ---------------------------------------------------------------------------------------------


def test_get_json_defaults_to_the_full_view(tes: FakeTes) -> None:
    submit(tes, ECHO)
    ktes(tes, "task", "wait", "task-0001")
    task = json.loads(ktes(tes, "task", "get", "task-0001", "--json").stdout)
    assert task["logs"][0]["system_logs"] == ["ran on the fake"]
    assert any(r.endswith("view=FULL") for r in tes.requests)


def test_get_with_a_view(tes: FakeTes) -> None:
    submit(tes, ECHO)
    result = ktes(tes, "task", "get", "task-0001", "--view", "minimal", "--json")
    assert json.loads(result.stdout) == {"id": "task-0001", "state": "INITIALIZING"}


def test_get_for_people_summarises_the_task(tes: FakeTes) -> None:
    submit(tes, {**ECHO, "tags": {"project": "x"}})
    ktes(tes, "task", "wait", "task-0001")
    result = ktes(tes, "task", "get", "task-0001")
    assert result.exit_code == 0
    rows = [tuple(re.split(r"\s{2,}", line.strip(), maxsplit=1)) for line in result.stdout.splitlines()]
    assert rows == [
        ("id", "task-0001"),
        ("state", "COMPLETE"),
        ("name", "hello"),
        ("created", local_time("2024-05-01T12:00:00+00:00")),
        ("tags", "project=x"),
        ("executor 0", "busybox  echo hi there  (exit 0, 1.5 s)"),
        ("ran", local_time("2024-05-01T12:00:00+00:00") + " for 1.5 s"),
        ("host", "fake"),
        ("system log", "ran on the fake"),
    ]


# --- list --------------------------------------------------------------------------------------------


def test_list_shows_a_table_newest_first_across_pages(tes: FakeTes) -> None:
    for n in range(5):
        submit(tes, {**ECHO, "name": f"job-{n}"})
    result = ktes(tes, "task", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "STATE", "NAME", "CREATED"]
    assert [line.split()[0] for line in lines[1:]] == [f"task-{n:04d}" for n in (5, 4, 3, 2, 1)]
    assert lines[1].split()[1:3] == ["QUEUED", "job-4"]
    # the fake hands out pages of 2: the client followed the page tokens
    assert sum("GET /ga4gh/tes/v1/tasks?" in r for r in tes.requests) == 3


def test_list_limit_says_when_there_are_more(tes: FakeTes) -> None:
    for _ in range(4):
        submit(tes, ECHO)
    result = ktes(tes, "task", "list", "--limit", "3", "--json")
    assert [t["id"] for t in json.loads(result.stdout)] == ["task-0004", "task-0003", "task-0002"]
    assert "more tasks match: --limit 0 shows all" in result.stderr


def test_list_filters_by_state_name_and_tags(tes: FakeTes) -> None:
    submit(tes, {**ECHO, "name": "align-1", "tags": {"project": "a", "owner": "me"}})
    submit(tes, {**ECHO, "name": "align-2", "tags": {"project": "b"}})
    submit(tes, {**ECHO, "name": "call-1", "tags": {"owner": "you"}})

    def ids(*args: str) -> list[str]:
        result = ktes(tes, "task", "list", "--json", *args)
        assert result.exit_code == 0, result.stderr
        return [t["id"] for t in json.loads(result.stdout)]

    assert ids("--name-prefix", "align") == ["task-0002", "task-0001"]
    assert ids("--tag", "project=a") == ["task-0001"]
    assert ids("--tag", "owner") == ["task-0003", "task-0001"]
    assert ids("--tag", "owner", "--tag", "project=a") == ["task-0001"]
    assert ids("--state", "queued") == ["task-0003", "task-0002", "task-0001"]
    ktes(tes, "task", "wait", "task-0002")
    assert ids("--state", "COMPLETE") == ["task-0002"]


def test_list_with_nothing_to_show(tes: FakeTes) -> None:
    result = ktes(tes, "task", "list")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no tasks" in result.stderr


def test_list_refuses_a_state_that_does_not_exist(tes: FakeTes) -> None:
    result = ktes(tes, "task", "list", "--state", "DONE")
    assert result.exit_code == 2
    assert "DONE" in result.stderr


# --- wait and cancel ---------------------------------------------------------------------------------


def test_wait_exit_code_follows_the_final_state(tes: FakeTes) -> None:
    ok = submit(tes, ECHO)
    bad = submit(tes, {"executors": [{"image": "missing:1", "command": ["true"]}]})
    result = ktes(tes, "task", "wait", ok)
    assert (result.exit_code, result.stdout) == (0, f"task {ok} COMPLETE\n")
    result = ktes(tes, "task", "wait", bad)
    assert result.exit_code == 1
    assert result.stdout == f"task {bad} SYSTEM_ERROR: image missing:1 not found\n"


def test_wait_gives_up_after_the_timeout(tes: FakeTes) -> None:
    task_id = submit(tes, {"executors": [{"image": "busybox", "command": ["sleep", "1000"]}]})
    result = ktes(tes, "task", "wait", task_id, "--timeout", "0.3")
    assert result.exit_code == 1
    assert f"error: task {task_id} is still RUNNING after 0.3 s" in result.stderr


def test_cancel_a_running_task(tes: FakeTes) -> None:
    task_id = submit(tes, {"executors": [{"image": "busybox", "command": ["sleep", "1000"]}]})
    result = ktes(tes, "task", "cancel", task_id)
    assert (result.exit_code, result.stdout) == (0, f"task {task_id} CANCELED\n")
    assert tes.tasks[task_id]["state"] == "CANCELED"


def test_cancel_a_finished_task_leaves_it(tes: FakeTes) -> None:
    task_id = submit(tes, ECHO)
    ktes(tes, "task", "wait", task_id)
    result = ktes(tes, "task", "cancel", task_id)
    assert (result.exit_code, result.stdout) == (0, f"task {task_id} had already ended: COMPLETE\n")
    result = ktes(tes, "task", "cancel", task_id, "--json")
    assert json.loads(result.stdout) == {"id": task_id, "state": "COMPLETE"}


# --- logs --------------------------------------------------------------------------------------------


def test_logs_label_each_stream_and_show_system_logs(tes: FakeTes) -> None:
    task_id = submit(tes, ECHO)
    ktes(tes, "task", "wait", task_id)
    result = ktes(tes, "task", "logs", task_id)
    assert result.exit_code == 0
    assert result.stdout == (
        "==> executor 0 stdout (exit 0) <==\nhi there\n"
        "==> executor 0 stderr (exit 0) <==\n"
        "==> system logs <==\nran on the fake\n"
    )


def test_logs_of_a_task_that_has_not_run(tes: FakeTes) -> None:
    task_id = submit(tes, ECHO)
    result = ktes(tes, "task", "logs", task_id)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert f"task {task_id} has no logs yet (INITIALIZING)" in result.stderr


def test_logs_json(tes: FakeTes) -> None:
    task_id = submit(tes, {"executors": [{"image": "busybox", "command": ["fail", "2"]}]})
    ktes(tes, "task", "wait", task_id)
    document = json.loads(ktes(tes, "task", "logs", task_id, "--json").stdout)
    assert document["state"] == "EXECUTOR_ERROR"
    assert document["logs"][0]["logs"][0]["stderr"] == "failing\n"


# --- run ---------------------------------------------------------------------------------------------


def test_run_prints_the_output_and_exits_0(tes: FakeTes) -> None:
    result = ktes(tes, "run", "busybox", "--", "echo", "-n", "hi")
    assert result.exit_code == 0
    assert result.stdout == "-n hi\n"
    assert result.stderr == ""


def test_run_prints_the_output_exactly(tes: FakeTes) -> None:
    result = ktes(tes, "run", "busybox", "--", "printf", "no newline")
    assert result.exit_code == 0
    assert result.stdout == "no newline"


def test_run_exits_with_the_executors_exit_code_and_its_stderr(tes: FakeTes) -> None:
    result = ktes(tes, "run", "busybox", "--", "fail", "7")
    assert result.exit_code == 7
    assert result.stdout == ""
    assert result.stderr == "failing\n"


def test_run_system_error_exits_1_with_the_reason(tes: FakeTes) -> None:
    result = ktes(tes, "run", "missing:1", "--", "true")
    assert result.exit_code == 1
    assert result.stderr.strip() == "task task-0001 SYSTEM_ERROR: image missing:1 not found"


def test_run_builds_the_task_from_its_options(tes: FakeTes, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x")
    result = ktes(
        tes,
        "run",
        "--name", "one-off",
        "busybox",
        "--env", "A=1", "-e", "B=x=y",
        "--workdir", "/work",
        "--cpu", "2", "--ram-gb", "1.5",
        "--input", f"file://{tmp_path}/in.txt:/in/in.txt",
        "--input", "https://example.org/data/:/in/data/",
        "--output", f"/out/*.txt:file://{tmp_path}/out/",
        "--tag", "project=x", "--tag", "flag",
        "--", "echo", "done",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    task = tes.tasks["task-0001"]
    assert task["name"] == "one-off"
    assert task["executors"] == [
        {"image": "busybox", "command": ["echo", "done"], "workdir": "/work", "env": {"A": "1", "B": "x=y"}}
    ]
    assert task["resources"] == {"cpu_cores": 2, "ram_gb": 1.5}
    assert task["inputs"] == [
        {"url": f"file://{tmp_path}/in.txt", "path": "/in/in.txt", "type": "FILE"},
        {"url": "https://example.org/data/", "path": "/in/data", "type": "DIRECTORY"},
    ]
    assert task["outputs"] == [
        {"path": "/out/*.txt", "url": f"file://{tmp_path}/out/", "path_prefix": "/out/", "type": "FILE"}
    ]
    assert task["tags"] == {"project": "x", "flag": ""}


def test_run_without_a_command_says_how(tes: FakeTes) -> None:
    result = ktes(tes, "run", "busybox")
    assert result.exit_code == 1
    assert "give the command after the image: ktes run IMAGE -- CMD [ARG...]" in result.stderr
    assert tes.tasks == {}


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--env", "NOVALUE"], "--env wants KEY=VALUE, got 'NOVALUE'"),
        (["--input", "/data/x"], "--input wants URL:PATH, got '/data/x'"),
        (["--input", "data.txt:in"], "--input: the container path must be absolute, got 'data.txt:in'"),
        (["--output", "out:file:///x"], "--output: the container path must be absolute, got 'out:file:///x'"),
    ],
)
def test_run_with_a_malformed_option(tes: FakeTes, option: list[str], message: str) -> None:
    result = ktes(tes, "run", "busybox", *option, "--", "true")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {message}"


def test_run_json(tes: FakeTes) -> None:
    result = ktes(tes, "run", "busybox", "--json", "--", "fail", "4")
    assert result.exit_code == 4
    assert json.loads(result.stdout)["state"] == "EXECUTOR_ERROR"
