"""py-tes (the GA4GH reference Python client) against a real ``ktes serve``: create, get, list, wait, cancel."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import tes

from tests.fixtures.ktes_server import KtesServer

pytestmark = pytest.mark.containers

IMAGE = "localhost/ktes-test/busybox:1"


def wait_for_state(client: tes.HTTPClient, task_id: str, states: set[str], timeout: float = 120) -> tes.Task:
    deadline = time.monotonic() + timeout
    while True:
        task = client.get_task(task_id, view="MINIMAL")
        if task.state in states:
            return task
        assert time.monotonic() < deadline, f"task {task_id} still {task.state}, expected one of {states}"
        time.sleep(0.2)


def test_a_two_executor_task_with_inputs_and_outputs_completes(
    ktes_for_clients: KtesServer, busybox_image: str, tmp_path: Path
) -> None:
    client = tes.HTTPClient(ktes_for_clients.url, timeout=30)
    (tmp_path / "extra.txt").write_text("from a file\n")
    task = tes.Task(
        name="py-tes two executors",
        tags={"client": "py-tes"},
        inputs=[
            tes.Input(path="/data/in/greeting.txt", content="hello from content\n"),
            tes.Input(path="/data/in/extra.txt", url=f"file://{tmp_path / 'extra.txt'}"),
        ],
        outputs=[
            tes.Output(path="/data/out/result.txt", url=f"file://{tmp_path / 'out' / 'result.txt'}"),
            tes.Output(path="/data/report", url=f"file://{tmp_path / 'report'}", type="DIRECTORY"),
        ],
        executors=[
            tes.Executor(
                image=busybox_image,
                command=["sh", "-c", "cat /data/in/greeting.txt /data/in/extra.txt > /data/out/result.txt"],
            ),
            tes.Executor(
                image=busybox_image,
                command=["sh", "-c", 'while read -r l; do echo "got $l"; done < /data/out/result.txt > report'],
                workdir="/data/report",
            ),
            tes.Executor(image=busybox_image, command=["cat", "/data/report/report"]),
        ],
    )

    task_id = client.create_task(task)
    done = client.wait(task_id, timeout=180)
    assert done.state == "COMPLETE"

    full = client.get_task(task_id, view="FULL")
    assert full.name == "py-tes two executors"
    assert full.tags == {"client": "py-tes"}
    executor_logs = full.logs[-1].logs
    assert [log.exit_code for log in executor_logs] == [0, 0, 0]
    assert executor_logs[2].stdout == "got hello from content\ngot from a file\n"
    assert (tmp_path / "out" / "result.txt").read_text() == "hello from content\nfrom a file\n"
    assert (tmp_path / "report" / "report").read_text() == "got hello from content\ngot from a file\n"
    uploaded = {Path(o.url.removeprefix("file://")): int(o.size_bytes) for o in full.logs[-1].outputs}
    assert uploaded == {tmp_path / "out" / "result.txt": 31, tmp_path / "report" / "report": 39}

    assert full.inputs[0].content == "hello from content\n"
    basic = client.get_task(task_id, view="BASIC")  # BASIC leaves out input contents and executor stdout/stderr
    assert basic.inputs[0].content is None
    assert basic.logs[-1].logs[2].stdout is None
    assert basic.logs[-1].logs[2].exit_code == 0

    listed = client.list_tasks(view="BASIC")
    assert task_id in {t.id for t in listed.tasks}


def test_a_failing_executor_is_an_executor_error_with_its_exit_code(
    ktes_for_clients: KtesServer, busybox_image: str
) -> None:
    client = tes.HTTPClient(ktes_for_clients.url, timeout=30)
    task_id = client.create_task(
        tes.Task(executors=[tes.Executor(image=busybox_image, command=["sh", "-c", "echo oops >&2; exit 3"])])
    )
    assert client.wait(task_id, timeout=120).state == "EXECUTOR_ERROR"
    log = client.get_task(task_id, view="FULL").logs[-1].logs[0]
    assert log.exit_code == 3
    assert log.stderr == "oops\n"


def test_a_running_task_is_canceled(ktes_for_clients: KtesServer, busybox_image: str) -> None:
    client = tes.HTTPClient(ktes_for_clients.url, timeout=30)
    task_id = client.create_task(
        tes.Task(name="py-tes cancel", executors=[tes.Executor(image=busybox_image, command=["sleep", "300"])])
    )
    wait_for_state(client, task_id, {"RUNNING"})
    client.cancel_task(task_id)
    assert wait_for_state(client, task_id, {"CANCELED"}, timeout=60).state == "CANCELED"
    assert client.get_task(task_id, view="MINIMAL").state == "CANCELED"


def test_service_info_names_a_tes_service(ktes_for_clients: KtesServer) -> None:
    info = tes.HTTPClient(ktes_for_clients.url).get_service_info()
    assert info.type["artifact"] == "tes"  # py-tes leaves the nested service type a plain dict
    assert info.type["version"].startswith("1.1")
