"""pydantic-tes (Galaxy/Pulsar's TES client) against a real ``ktes serve``: submit, poll, read logs, cancel.

pydantic-tes sends every field of its models, unset ones as explicit ``null`` (``"id": null``, ``"url": null``
...), and validates our responses with its own models: both directions are exercised here.
"""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError
from pydantictes.api import TesClient
from pydantictes.models import TesExecutor, TesFileType, TesInput, TesResources, TesState, TesTask

from tests.fixtures.ktes_server import KtesServer, StartServer

pytestmark = pytest.mark.containers

TERMINAL = {TesState.COMPLETE, TesState.EXECUTOR_ERROR, TesState.SYSTEM_ERROR, TesState.CANCELED}


def client_for(server: KtesServer) -> TesClient:
    # pydantic-tes joins "v1/tasks" onto the URL it is given, so it wants the base with a trailing slash.
    return TesClient(url=f"{server.url}/ga4gh/tes/")


def poll(client: TesClient, task_id: str, states: set[TesState], timeout: float = 120) -> TesTask:
    """Poll as pydantic-tes allows: with the BASIC view, since its ``TesTask`` requires ``executors`` (which
    MINIMAL leaves out), and through CANCELING, the TES 1.1 state its ``TesState`` does not know yet."""
    deadline = time.monotonic() + timeout
    seen = "nothing yet"
    while True:
        try:
            task = client.get_task(task_id, "BASIC")
        except ValidationError as error:
            if "'CANCELING'" not in str(error):
                raise
            seen = "CANCELING"
        else:
            if task.state in states:
                return task
            seen = str(task.state)
        assert time.monotonic() < deadline, f"task {task_id} still {seen}, expected one of {states}"
        time.sleep(0.2)


def test_submit_poll_and_read_logs(ktes_for_clients: KtesServer, busybox_image: str) -> None:
    client = client_for(ktes_for_clients)
    task = TesTask(
        description="pydantic-tes multi executor",
        executors=[
            TesExecutor(image=busybox_image, command=["sh", "-c", "echo foobar > /pulsar_work/moo"]),
            TesExecutor(image=busybox_image, command=["cat", "/pulsar_work/moo", "/inputs/greeting"]),
            TesExecutor(image=busybox_image, command=["sh", "-c", 'echo "$GREETING" >&2'], env={"GREETING": "hi"}),
        ],
        inputs=[TesInput(path="/inputs/greeting", type=TesFileType.FILE, content="hello\n")],
        volumes=["/pulsar_work/"],
        resources=TesResources(cpu_cores=1, ram_gb=0.5),
        tags={"client": "pydantic-tes"},
    )
    created = client.create_task(task)

    final = poll(client, created.id, TERMINAL)
    assert final.state == TesState.COMPLETE

    full = client.get_task(created, "FULL")
    assert full.id == created.id
    assert full.tags == {"client": "pydantic-tes"}
    assert full.logs
    executor_logs = full.logs[-1].logs
    assert [log.exit_code for log in executor_logs] == [0, 0, 0]
    assert executor_logs[1].stdout == "foobar\nhello\n"
    assert executor_logs[2].stderr == "hi\n"

    assert full.inputs and full.inputs[0].content == "hello\n"

    assert created.id in {t.id for t in client.list_tasks().tasks}


def test_cancel(ktes_for_clients: KtesServer, busybox_image: str) -> None:
    client = client_for(ktes_for_clients)
    created = client.create_task(
        TesTask(description="Cancel test.", executors=[TesExecutor(image=busybox_image, command=["sleep", "300"])])
    )
    poll(client, created.id, {TesState.RUNNING})
    client.cancel_task(created)
    assert poll(client, created.id, {TesState.CANCELED}, timeout=60).state == TesState.CANCELED


def test_cancel_and_list_during_cancel_with_tes_1_0_states(ktes_server: StartServer, busybox_image: str) -> None:
    """With ``KTES_TES_STATES=1.0`` pydantic-tes reads every answer: the cancel is accepted with the task
    CANCELING on the server, and a get and a list made at once show it CANCELED, as TES 1.0 has it."""
    server = ktes_server(env={"KTES_TES_STATES": "1.0"})
    client = client_for(server)
    created = client.create_task(
        TesTask(description="cancel, 1.0", executors=[TesExecutor(image=busybox_image, command=["sleep", "300"])])
    )
    other = client.create_task(TesTask(executors=[TesExecutor(image=busybox_image, command=["true"])]))
    poll(client, created.id, {TesState.RUNNING})
    client.cancel_task(created)
    assert client.get_task(created, "BASIC").state == TesState.CANCELED
    assert client.get_task(created, "FULL").state == TesState.CANCELED
    listed = {task.id: task.state for task in client.list_tasks().tasks}
    assert listed[created.id] == TesState.CANCELED and other.id in listed
    assert poll(client, created.id, {TesState.CANCELED}).state == TesState.CANCELED
    assert poll(client, other.id, TERMINAL).state == TesState.COMPLETE


def test_service_info(ktes_for_clients: KtesServer) -> None:
    info = client_for(ktes_for_clients).service_info()
    assert info.type.artifact.value == "tes"
