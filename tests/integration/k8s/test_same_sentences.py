"""The same failing tasks on both backends read the same to a user (one outcome function, one helper).

Each task runs on a local ktes (podman) and on a Kubernetes ktes (the lab); the state and the sentence in
``system_logs`` must agree. A missing image differs only in the runtime's own detail after the colon.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import tes

from tests.fixtures.ktes_server import StartServer
from tests.fixtures.servers import HttpServer
from tests.integration.k8s.test_k8s_backend import k8s_env, namespace, wait_end

pytestmark = [pytest.mark.k8s, pytest.mark.containers]

__all__ = ["k8s_env", "namespace"]  # fixtures shared with the backend's own tests

MISSING_IMAGE = f"localhost/ktes-test/not-there:{uuid.uuid4().hex[:6]}"


def cases(busybox: str, missing_input: str) -> dict[str, tes.Task]:
    def sh(script: str) -> tes.Executor:
        return tes.Executor(image=busybox, command=["sh", "-c", script])

    hog = sh("x=$(head -c 300000000 /dev/urandom); echo survived")
    return {
        "exit code": tes.Task(executors=[sh("echo before; exit 7"), sh("echo never")]),
        "ignored exit code": tes.Task(executors=[tes.Executor(image=busybox, command=["false"], ignore_error=True)]),
        "out of memory": tes.Task(executors=[hog], resources=tes.Resources(ram_gb=0.0625)),
        "no such command": tes.Task(executors=[tes.Executor(image=busybox, command=["/no/such/program"])]),
        "missing image": tes.Task(executors=[tes.Executor(image=MISSING_IMAGE, command=["true"])]),
        "bad input url": tes.Task(
            inputs=[tes.Input(path="/data/in.txt", url=missing_input)], executors=[sh("cat /data/in.txt")]
        ),
    }


def told(task: tes.Task) -> tuple[str, list[str]]:
    lines = list(task.logs[0].system_logs or []) if task.logs else []
    lines = [line for line in lines if not line.startswith("ktes restarted")]
    if lines and lines[-1].startswith(f"image {MISSING_IMAGE} (executor 0) could not be pulled: "):
        lines[-1] = lines[-1].split(": ", 1)[0]  # the runtime's own words differ
    return task.state, lines


def test_the_same_failures_read_the_same_on_both_backends(
    ktes_server: StartServer,
    k8s_env: dict[str, str],
    busybox_image: str,
    k8s_busybox_image: str,
    http_server: HttpServer,
    tmp_path: Path,
) -> None:
    missing_input = f"{http_server.base_url}/files/not-there-{uuid.uuid4().hex[:6]}.txt"
    local = tes.HTTPClient(ktes_server(env={"KTES_LOCAL_PULL": "never"}).url, timeout=30)
    kube = tes.HTTPClient(ktes_server(env=k8s_env).url, timeout=30)
    submitted = {
        (where, name): client.create_task(task)
        for where, client, image in (("local", local, busybox_image), ("kubernetes", kube, k8s_busybox_image))
        for name, task in cases(image, missing_input).items()
    }
    ended = {
        key: wait_end(local if key[0] == "local" else kube, task_id, timeout=240) for key, task_id in submitted.items()
    }
    for name in cases(busybox_image, missing_input):
        assert told(ended["local", name]) == told(ended["kubernetes", name]), name
    assert told(ended["local", "exit code"]) == ("EXECUTOR_ERROR", ["executor 0 exited with code 7"])
    assert told(ended["local", "ignored exit code"]) == (
        "COMPLETE",
        ["executor 0 exited with code 1 (ignored: ignore_error is set)"],
    )
    assert told(ended["local", "out of memory"]) == (
        "EXECUTOR_ERROR",
        ["executor 0 was killed for exceeding its memory limit (ram_gb=0.0625)"],
    )
    assert told(ended["local", "no such command"]) == (
        "EXECUTOR_ERROR",
        ["executor 0 could not start its command: exec /no/such/program: No such file or directory"],
    )
    assert told(ended["local", "missing image"]) == (
        "SYSTEM_ERROR",
        [f"image {MISSING_IMAGE} (executor 0) could not be pulled"],
    )
    assert told(ended["local", "bad input url"])[1][-1].startswith(f"input {missing_input}")
