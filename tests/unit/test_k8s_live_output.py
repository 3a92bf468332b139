"""What the Kubernetes backend asks for a running executor's live output: the executor's own helper, in its
own running container, reading one stream from an offset; an end only when the reader read to the end."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from ktes.backends.base import END_OF_OUTPUT, EndOfOutput
from ktes.backends.kubernetes.backend import KubernetesBackend
from ktes.backends.kubernetes.client import ExecFailed, KubeError
from ktes.backends.kubernetes.podspec import ENTRYPOINT, STATE_DIR, TASK_ID_LABEL
from ktes.config import Settings
from ktes.tes.models import Executor, Task

TASK = Task(id="t01", executors=[Executor(image="busybox", command=["true"])] * 2)


class ExecStub:
    """Stands for :class:`ktes.backends.kubernetes.client.Kube`: records execs, answers with ``chunks`` and
    then ``failure`` (if any)."""

    def __init__(self, chunks: list[bytes], failure: KubeError | None = None) -> None:
        self.chunks, self.failure = chunks, failure
        self.calls: list[tuple[str, str, list[str]]] = []
        self.pods: list[dict[str, Any]] = []
        self.lists: list[str] = []

    async def list_objects(self, kind: str, selector: str) -> list[dict[str, Any]]:
        self.lists.append(selector)
        return self.pods

    async def exec_output(self, pod: str, container: str, command: list[str]) -> AsyncGenerator[bytes, None]:
        self.calls.append((pod, container, command))
        for chunk in self.chunks:
            yield chunk
        if self.failure is not None:
            raise self.failure


def backend_with(
    kube: ExecStub, container_states: dict[str, dict[str, Any]], engine_here: bool = True
) -> KubernetesBackend:
    """A backend whose Pod for task t01 has containers in these states: in its watches' cache when this
    replica runs the engine, else only in the API (listed on demand)."""
    backend = KubernetesBackend(Settings(backend="kubernetes", k8s_namespace="ns", k8s_installation_id="mine"))
    backend._kube = kube  # type: ignore[assignment]
    pod = {
        "metadata": {"name": "ktes-t01-abcde", "labels": {TASK_ID_LABEL: "t01"}},
        "status": {"containerStatuses": [{"name": n, "state": s} for n, s in container_states.items()]},
    }
    if engine_here:
        backend._watchers = [object()]  # type: ignore[list-item]
        backend._cache.apply("pods", "ADDED", pod)
    else:
        kube.pods = [pod]
    return backend


async def read(backend: KubernetesBackend, index: int, stream: str, offset: int, follow: bool) -> list[Any]:
    return [chunk async for chunk in backend.executor_output(TASK, index, stream, offset, follow)]  # type: ignore[arg-type]


async def test_a_follow_reads_the_executors_own_stream_in_its_own_container_and_says_when_it_ended() -> None:
    kube = ExecStub([b"one\n", b"two\n"])
    backend = backend_with(kube, {"executor-0": {"terminated": {"exitCode": 0}}, "executor-1": {"running": {}}})
    chunks = await read(backend, 1, "stderr", 5, True)
    assert chunks == [b"one\n", b"two\n", END_OF_OUTPUT]
    reader = [ENTRYPOINT, "--read", "stderr", "--index", "1", "--state-dir", STATE_DIR, "--offset", "5", "--follow"]
    assert kube.calls == [("ktes-t01-abcde", "executor-1", reader)]
    assert await read(backend, 1, "stdout", 0, False) == [b"one\n", b"two\n"]  # no end claimed without follow


async def test_no_exec_into_a_container_that_does_not_run() -> None:
    kube = ExecStub([b"x"])
    backend = backend_with(kube, {"executor-0": {"terminated": {"exitCode": 0}}, "executor-1": {"waiting": {}}})
    assert await read(backend, 0, "stdout", 0, True) == []
    assert await read(backend, 1, "stdout", 0, True) == []
    assert kube.calls == []


async def test_a_reader_with_nothing_to_read_or_a_broken_stream_claims_no_end() -> None:
    for failure in (ExecFailed("not started", 3), ExecFailed("stream broke", -1), KubeError("not running", 400)):
        kube = ExecStub([b"part"], failure)
        backend = backend_with(kube, {"executor-0": {"running": {}}})
        chunks = await read(backend, 0, "stdout", 0, True)
        assert chunks == [b"part"] and not any(isinstance(c, EndOfOutput) for c in chunks)


async def test_without_the_exec_permission_live_output_stops_being_asked_for() -> None:
    kube = ExecStub([], KubeError("pods/exec is forbidden", 403))
    backend = backend_with(kube, {"executor-0": {"running": {}}})
    assert await read(backend, 0, "stdout", 0, True) == []
    assert await read(backend, 0, "stdout", 0, True) == []
    assert len(kube.calls) == 1


async def test_a_replica_that_does_not_run_the_engine_finds_the_pod_through_the_api() -> None:
    kube = ExecStub([b"live\n"])
    backend = backend_with(kube, {"executor-0": {"running": {}}}, engine_here=False)
    assert await read(backend, 0, "stdout", 0, True) == [b"live\n", END_OF_OUTPUT]
    assert kube.lists == [f"{backend._selector},{TASK_ID_LABEL}=t01"]
    assert [call[:2] for call in kube.calls] == [("ktes-t01-abcde", "executor-0")]
