"""Executor results on the lab: the helper's result line comes with the Pod's status (the container's
termination message), so a finished task costs no ``pods/log`` read, counted by ktes itself
(``ktes_kubernetes_requests_total``); a line too long for the message is read from the log; and a command
that writes its own termination message cannot change what its task reports."""

from __future__ import annotations

import pytest
import tes

from tests.fixtures.ktes_server import KtesServer, StartServer
from tests.integration.k8s.test_k8s_backend import (  # noqa: F401 (module fixtures, shared)
    busybox,
    k8s_env,
    namespace,
    system_logs,
    wait_end,
)
from tests.integration.operations.test_probes_and_metrics import scrape, value

pytestmark = pytest.mark.k8s

FORGED = 'KTES-RESULT {"index":0,"exit_code":0,"start_time":"x","end_time":"y","oom_killed":false,"error":null}'


def log_reads(server: KtesServer) -> float:
    return value(scrape(server.url), "ktes_kubernetes_requests_total", verb="get", resource="pods/log")


@pytest.fixture
def server(ktes_server: StartServer, k8s_env: dict[str, str]) -> KtesServer:  # noqa: F811
    # no timeout is tested here: a busy lab may take longer than the backend tests' 8 s to start a Pod
    return ktes_server(env={**k8s_env, "KTES_K8S_UNSCHEDULABLE_TIMEOUT_SECONDS": "300"})


def test_a_finished_tasks_result_comes_without_a_log_read(server: KtesServer, k8s_busybox_image: str) -> None:
    cli = tes.HTTPClient(server.url, timeout=30)
    before = log_reads(server)
    task = tes.Task(executors=[busybox(k8s_busybox_image, "echo out; echo err >&2; exit 3")])
    done = wait_end(cli, cli.create_task(task))
    assert done.state == "EXECUTOR_ERROR", system_logs(done)
    assert [(e.exit_code, e.stdout, e.stderr) for e in done.logs[0].logs] == [(3, "out\n", "err\n")]
    assert "executor 0 exited with code 3" in system_logs(done)
    assert log_reads(server) == before


def test_output_too_long_for_the_message_is_read_from_the_log(server: KtesServer, k8s_busybox_image: str) -> None:
    cli = tes.HTTPClient(server.url, timeout=30)
    before = log_reads(server)
    task = tes.Task(executors=[busybox(k8s_busybox_image, "head -c 10000 /dev/zero | tr '\\0' x")])
    done = wait_end(cli, cli.create_task(task))
    assert done.state == "COMPLETE", system_logs(done)
    assert [(e.exit_code, e.stdout) for e in done.logs[0].logs] == [(0, "x" * 10000)]
    assert log_reads(server) == before + 1


@pytest.mark.parametrize(
    "script",
    [
        f"echo '{FORGED}' > /dev/termination-log; echo done; exit 4",
        # a writer left running after the command: the helper, PID 1 of the container, ends it first
        f"(while :; do echo '{FORGED}' > /dev/termination-log; done) & sleep 1; echo done; exit 4",
    ],
    ids=["written-before-the-end", "written-by-a-leftover-process"],
)
def test_a_command_writing_its_own_termination_message_cannot_change_its_result(
    server: KtesServer, k8s_busybox_image: str, script: str
) -> None:
    cli = tes.HTTPClient(server.url, timeout=30)
    before = log_reads(server)
    done = wait_end(cli, cli.create_task(tes.Task(executors=[busybox(k8s_busybox_image, script)])))
    assert done.state == "EXECUTOR_ERROR", system_logs(done)
    assert [(e.exit_code, e.stdout) for e in done.logs[0].logs] == [(4, "done\n")]
    assert log_reads(server) == before  # the helper's own line was the message
