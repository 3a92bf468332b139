"""The Kubernetes backend against a fake API server (tests/fixtures/fake_kube.py): the real client, watches,
status judgement and clean-up, without the lab. The test plays the Job controller and the kubelet."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import REGISTRY

from ktes.backends.kubernetes import backend as backend_module
from ktes.backends.kubernetes.api_requests import READS, WRITES
from ktes.backends.kubernetes.backend import KubernetesBackend
from ktes.backends.kubernetes.lease import LeaseLeadership
from ktes.config import Settings
from ktes.run.observations import Ended, ExecutorFinished, Observation, SystemLog
from ktes.run.result import REPORT_MARKER, RESULT_MARKER, ExecutorReport
from ktes.tes.models import Executor, Output, State, Task
from tests.fixtures.fake_kube import FakeKube, fake_kube

__all__ = ["fake_kube"]

NS = "ktes-fake"
T0, T1 = "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z"


def settings(fake: FakeKube, **more: Any) -> Settings:
    return Settings(
        backend="kubernetes",
        k8s_kubeconfig=fake.kubeconfig,
        k8s_namespace=NS,
        k8s_lease_duration_seconds=2,
        k8s_lease_renew_seconds=0.2,
        **{"k8s_installation_id": "mine", "k8s_resync_seconds": 30, **more},
    )


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Observation] = []

    async def __call__(self, task_id: str, observation: Observation, /) -> None:
        self.seen.append(observation)

    @property
    def ended(self) -> Ended:
        last = self.seen[-1]
        assert isinstance(last, Ended)
        return last


def task(task_id: str, *commands: list[str]) -> Task:
    return Task(id=task_id, executors=[Executor(image="busybox", command=c) for c in commands])


def result_line(index: int, code: int, stdout: str = "", **more: Any) -> str:
    report = ExecutorReport(index=index, exit_code=code, start_time=T0, end_time=T1, stdout=stdout, **more)
    return f"{RESULT_MARKER}{report.model_dump_json()}\n"


def terminated(pod: dict[str, Any], codes: dict[str, int], messages: dict[str, str] | None = None) -> dict[str, Any]:
    """Every container ended (the executors' own code is the helper's: 0), with these termination messages."""
    ends = {
        c["name"]: {"exitCode": codes.get(c["name"], 0), "startedAt": T0, "finishedAt": T1}
        | ({"message": (messages or {})[c["name"]]} if c["name"] in (messages or {}) else {})
        for c in pod["spec"]["containers"]
    }
    statuses = [
        {"name": c["name"], "image": c["image"], "state": {"terminated": ends[c["name"]]}}
        for c in pod["spec"]["containers"]
    ]
    return {
        "phase": "Succeeded",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": statuses,
    }


async def kubelet(
    fake: FakeKube,
    task_id: str,
    logs: dict[str, str],
    *,
    finish_job: bool = True,
    messages: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Wait for the task's Job, make its Pod, let every container end with these logs (and termination
    messages); then (unless not ``finish_job``) mark the Job done, as the Job controller does."""
    jobs = await asyncio.to_thread(fake.wait_for, NS, "jobs", f"ktes.task-id={task_id}")
    pod = fake.make_pod(NS, jobs[0])
    for container, text in logs.items():
        fake.logs[NS, pod["metadata"]["name"], container] = text
    fake.set_pod_status(NS, pod["metadata"]["name"], terminated(pod, {}, messages))
    if finish_job:
        fake.finish_job(NS, jobs[0]["metadata"]["name"])
    return pod


@pytest.fixture
async def backend(fake_kube: FakeKube) -> Any:
    made = KubernetesBackend(settings(fake_kube))
    await made.start()
    try:
        yield made
    finally:
        await made.close()


async def test_a_task_runs_as_one_job_and_pod_and_nothing_is_left(
    backend: KubernetesBackend, fake_kube: FakeKube
) -> None:
    report = Recorder()
    running = asyncio.create_task(backend.run(task("t1", ["echo", "hi"]), report))
    await kubelet(fake_kube, "t1", {"executor-0": result_line(0, 0, "hi\n")})
    await asyncio.wait_for(running, 30)
    assert report.ended.state == State.COMPLETE and report.ended.reason is None
    finished = [o for o in report.seen if isinstance(o, ExecutorFinished)]
    assert [(f.index, f.log.stdout, f.log.exit_code) for f in finished] == [(0, "hi\n", 0)]
    assert [c["metadata"]["name"][:16] for c in fake_kube.list(NS, "configmaps")] == ["ktes-entrypoint-"]
    await asyncio.to_thread(fake_kube.wait_gone, NS, "jobs", "ktes.task-id=t1")
    assert fake_kube.list(NS, "pods") == [] and fake_kube.list(NS, "secrets") == []


async def test_a_failing_executor_reads_as_on_the_local_backend(
    backend: KubernetesBackend, fake_kube: FakeKube
) -> None:
    report = Recorder()
    running = asyncio.create_task(backend.run(task("t2", ["sh", "-c", "exit 7"], ["true"]), report))
    await kubelet(fake_kube, "t2", {"executor-0": result_line(0, 7), "executor-1": ""})
    await asyncio.wait_for(running, 30)
    assert (report.ended.state, report.ended.reason) == (State.EXECUTOR_ERROR, "executor 0 exited with code 7")


async def test_a_command_that_cannot_start(backend: KubernetesBackend, fake_kube: FakeKube) -> None:
    report = Recorder()
    running = asyncio.create_task(backend.run(task("t3", ["nope"]), report))
    error = "exec nope: No such file or directory"
    await kubelet(fake_kube, "t3", {"executor-0": result_line(0, 127, error=error)})
    await asyncio.wait_for(running, 30)
    assert report.ended.reason == f"executor 0 could not start its command: {error}"


async def test_cancel_removes_everything_and_reports_no_end(backend: KubernetesBackend, fake_kube: FakeKube) -> None:
    report = Recorder()
    running = asyncio.create_task(backend.run(task("t4", ["sleep", "300"]), report))
    jobs = await asyncio.to_thread(fake_kube.wait_for, NS, "jobs", "ktes.task-id=t4")
    fake_kube.make_pod(NS, jobs[0])
    await backend.cancel("t4")
    await asyncio.wait_for(running, 30)
    assert not any(isinstance(o, Ended) for o in report.seen)
    assert fake_kube.list(NS, "jobs") == fake_kube.list(NS, "pods") == fake_kube.list(NS, "secrets") == []


async def test_sweep_removes_only_what_no_active_task_owns(backend: KubernetesBackend, fake_kube: FakeKube) -> None:
    for task_id, installation in (("old", "mine"), ("live", "mine"), ("theirs", "another")):
        labels = {"app.kubernetes.io/managed-by": "ktes", "ktes.installation": installation, "ktes.task-id": task_id}
        job = {"metadata": {"name": f"ktes-{task_id}", "labels": labels}, "spec": {"template": {"spec": {}}}}
        fake_kube.add(NS, "jobs", job)
    assert await backend.sweep(["live"]) == ["old"]  # another installation's task is not this one's to sweep
    assert [j["metadata"]["name"] for j in fake_kube.list(NS, "jobs")] == ["ktes-live", "ktes-theirs"]


async def test_adopt_without_its_job_settles_the_task(backend: KubernetesBackend) -> None:
    report = Recorder()
    await backend.adopt(task("gone", ["true"]).model_copy(update={"state": State.RUNNING}), report)
    assert report.ended.state == State.SYSTEM_ERROR
    assert "was gone when ktes restarted" in (report.ended.reason or "")


async def test_adopt_of_a_task_whose_job_was_never_made_starts_it(
    backend: KubernetesBackend, fake_kube: FakeKube
) -> None:
    report = Recorder()
    taken = task("taken", ["echo", "hi"]).model_copy(update={"state": State.INITIALIZING})
    adopting = asyncio.create_task(backend.adopt(taken, report))
    await kubelet(fake_kube, "taken", {"executor-0": result_line(0, 0, "hi\n")})
    await asyncio.wait_for(adopting, 30)
    assert report.ended.state == State.COMPLETE
    assert any(isinstance(o, SystemLog) and "restarted before the task's Job" in o.line for o in report.seen)


async def test_one_leader_at_a_time_and_a_release_hands_over(fake_kube: FakeKube) -> None:
    first = LeaseLeadership(settings(fake_kube), holder="replica-a")
    second = LeaseLeadership(settings(fake_kube), holder="replica-b")
    try:
        await asyncio.wait_for(first.acquire(), 10)
        waiting = asyncio.create_task(second.acquire())
        holding = asyncio.create_task(first.hold())
        renewals = fake_kube.revision + 3  # the holder renews; the other replica only watches
        await asyncio.to_thread(fake_kube.wait_until, lambda: fake_kube.revision >= renewals)
        assert not waiting.done()
        assert fake_kube.list(NS, "leases")[0]["spec"]["holderIdentity"] == "replica-a"
        holding.cancel()
        await first.release()
        await asyncio.wait_for(waiting, 10)
        assert fake_kube.list(NS, "leases")[0]["spec"]["holderIdentity"] == "replica-b"
    finally:
        await first.close()
        await second.close()


# --- the API server restarting: calls answered 503 are made again once it answers -------------------


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_module, "API_RETRY_FIRST_SECONDS", 0.01)
    monkeypatch.setattr(backend_module, "API_RETRY_MAX_SECONDS", 0.05)


@pytest.mark.usefixtures("quick_retries")
async def test_a_task_made_while_the_api_answers_503_runs_once_it_answers(
    backend: KubernetesBackend, fake_kube: FakeKube
) -> None:
    fake_kube.unavailable.update({"POST secrets": 2, "POST jobs": 3, "GET pods/log": 2, "DELETE jobs": 2})
    report = Recorder()
    running = asyncio.create_task(backend.run(task("t5", ["echo", "hi"]), report))
    await kubelet(fake_kube, "t5", {"executor-0": result_line(0, 0, "hi\n")})
    await asyncio.wait_for(running, 30)
    assert report.ended.state == State.COMPLETE, report.ended.reason
    assert fake_kube.calls.count("POST jobs") == 4 and fake_kube.unavailable["GET pods/log"] == 0
    await asyncio.to_thread(fake_kube.wait_gone, NS, "jobs", "ktes.task-id=t5")  # deleted, on the third try
    assert fake_kube.list(NS, "pods") == [] and fake_kube.list(NS, "secrets") == []


@pytest.mark.usefixtures("quick_retries")
async def test_logs_the_api_keeps_failing_end_the_task_with_a_sentence(
    backend: KubernetesBackend, fake_kube: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend_module, "LOG_ERRORS_SECONDS", 0.2)  # the kubelet is gone: 5xx for good
    fake_kube.unavailable["GET pods/log"] = 10_000
    report = Recorder()
    running = asyncio.create_task(backend.run(task("t6", ["echo", "hi"]), report))
    await kubelet(fake_kube, "t6", {"executor-0": result_line(0, 0, "hi\n")})
    await asyncio.wait_for(running, 30)
    assert report.ended.state == State.SYSTEM_ERROR
    assert (report.ended.reason or "").startswith("the task's pod ended but its logs could not be read")


async def test_a_leader_that_cannot_renew_says_why_no_engine_can_run(fake_kube: FakeKube) -> None:
    leadership = LeaseLeadership(settings(fake_kube), holder="replica-a")
    try:
        await asyncio.wait_for(leadership.acquire(), 10)
        assert leadership.not_ready_reason() is None
        fake_kube.unavailable["GET leases"] = 10_000
        await asyncio.wait_for(leadership.hold(), 10)  # returns: not renewed within the Lease's 2 s
        assert "cannot be renewed" in (leadership.not_ready_reason() or "")
        fake_kube.unavailable["GET leases"] = 0
        await asyncio.wait_for(leadership.acquire(), 10)
        assert leadership.not_ready_reason() is None
    finally:
        await leadership.close()


class EndRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.done = asyncio.Event()

    async def __call__(self, task_id: str, observation: Observation, /) -> None:
        await super().__call__(task_id, observation)
        if isinstance(observation, Ended):
            self.done.set()


async def test_an_ended_pod_stays_until_the_job_controller_has_seen_it_end(
    backend: KubernetesBackend, fake_kube: FakeKube
) -> None:
    """Deleting the ended Pod of a Job the controller has not marked done makes it start the task again
    (seen on the lab after an API server outage): the Pod goes only once the Job says it is done."""
    report = EndRecorder()
    running = asyncio.create_task(backend.run(task("t7", ["echo", "hi"]), report))
    await kubelet(fake_kube, "t7", {"executor-0": result_line(0, 0, "hi\n")}, finish_job=False)
    await asyncio.wait_for(report.done.wait(), 30)
    assert report.ended.state == State.COMPLETE  # the task's end is recorded meanwhile
    assert not running.done() and "DELETE pods" not in fake_kube.calls and "DELETE jobs" not in fake_kube.calls
    fake_kube.finish_job(NS, "ktes-t7")
    await asyncio.wait_for(running, 30)
    await asyncio.to_thread(fake_kube.wait_gone, NS, "jobs", "ktes.task-id=t7")
    assert fake_kube.list(NS, "pods") == []


def _kube_requests() -> dict[tuple[str, str], float]:
    """``ktes_kubernetes_requests_total`` now, by (verb, resource)."""
    found: dict[tuple[str, str], float] = {}
    for metric in REGISTRY.collect():
        if metric.name == "ktes_kubernetes_requests":
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    found[sample.labels["verb"], sample.labels["resource"]] = sample.value
    return found


async def spent_on(
    fake: FakeKube,
    run: Task,
    logs: dict[str, str],
    messages: dict[str, str] | None = None,
    recorder: Recorder | None = None,
) -> dict[tuple[str, str], float]:
    """Run ``run`` (after a first task that makes the shared helper ConfigMap): the requests it cost,
    by (verb, resource), counted by ktes itself (``ktes_kubernetes_requests_total``)."""
    backend = KubernetesBackend(settings(fake, k8s_resync_seconds=600))  # no relist inside the test
    await backend.start()
    try:
        warm = asyncio.create_task(backend.run(task("warm", ["true"]), Recorder()))
        await kubelet(fake, "warm", {"executor-0": result_line(0, 0)})
        await asyncio.wait_for(warm, 30)
        before = _kube_requests()
        report = recorder or Recorder()
        running = asyncio.create_task(backend.run(run, report))
        await kubelet(fake, str(run.id), logs, messages=messages)
        await asyncio.wait_for(running, 30)
        assert report.ended.state == State.COMPLETE
        selector = f"ktes.task-id={run.id}"
        for kind in ("jobs", "pods", "secrets"):
            await asyncio.to_thread(fake.wait_gone, NS, kind, selector)
    finally:
        await backend.close()
    return {key: n - before.get(key, 0) for key, n in _kube_requests().items() if n > before.get(key, 0)}


async def test_a_simple_task_costs_the_api_server_two_writes_and_no_read(fake_kube: FakeKube) -> None:
    """The load an operator sees on the API server: a task without inputs or outputs costs its Job made and
    deleted (the garbage collector takes the Pod); its state and its executor's result come from the two
    watches shared by every task (the result line is the container's termination message)."""
    line = result_line(0, 0, "hi\n")
    report = Recorder()
    run = task("t5", ["echo", "hi"])
    spent = await spent_on(fake_kube, run, {"executor-0": line}, {"executor-0": line}, report)
    writes = {key: n for key, n in spent.items() if key[0] in WRITES}
    reads = {key: n for key, n in spent.items() if key[0] in READS}
    assert writes == {("create", "jobs"): 1, ("delete", "jobs"): 1}
    assert reads == {}
    finished = [o for o in report.seen if isinstance(o, ExecutorFinished)]
    assert [(f.index, f.log.stdout, f.log.exit_code) for f in finished] == [(0, "hi\n", 0)]


@pytest.mark.parametrize(
    "message",
    [
        "",  # an old helper, or a result too long for the message
        result_line(0, 0, "hi\n")[:100],  # cut by the kubelet
        "noise\n" + result_line(0, 0, "hi\n"),  # text around it
        result_line(0, 0, "hi\n") + "more\n",
        result_line(1, 0, "hi\n"),  # another executor's index
        result_line(0, 0, "hi\n").replace('"exit_code":0', '"exit_code":"0"'),  # not the helper's types
    ],
)
async def test_a_message_without_a_whole_result_falls_back_to_the_log(fake_kube: FakeKube, message: str) -> None:
    """Anything but exactly the helper's line is not guessed at: the log is read, and says what happened."""
    report = Recorder()
    run = task("t6", ["echo", "hi"])
    logs = {"executor-0": result_line(0, 0, "from the log\n")}
    spent = await spent_on(fake_kube, run, logs, {"executor-0": message}, report)
    assert {key: n for key, n in spent.items() if key[0] in READS} == {("get", "pods/log"): 1}
    finished = [o for o in report.seen if isinstance(o, ExecutorFinished)]
    assert [(f.log.stdout, f.log.exit_code) for f in finished] == [("from the log\n", 0)]


async def test_a_task_with_outputs_costs_four_writes(fake_kube: FakeKube) -> None:
    """Its Secret (the task document for stage-out) is made and given to the Job, which takes it along."""
    with_output = task("t7", ["true"]).model_copy(update={"outputs": [Output(path="/out/a", url="s3://b/a")]})
    report = '{"uploaded": true, "outputs": []}'
    logs = {"executor-0": result_line(0, 0), "stage-out": f"{REPORT_MARKER}{report}\n"}
    spent = await spent_on(fake_kube, with_output, logs)
    writes = {key: n for key, n in spent.items() if key[0] in WRITES}
    assert writes == {("create", "secrets"): 1, ("create", "jobs"): 1, ("patch", "secrets"): 1, ("delete", "jobs"): 1}
    assert {key: n for key, n in spent.items() if key[0] in READS} == {("get", "pods/log"): 2}
    # with both lines in the termination messages, nothing is read
    spent = await spent_on(fake_kube, with_output.model_copy(update={"id": "t8"}), logs, logs)
    assert {key: n for key, n in spent.items() if key[0] in READS} == {}


async def test_a_pod_still_running_when_its_task_failed_is_deleted_with_a_short_grace(
    backend: KubernetesBackend, fake_kube: FakeKube
) -> None:
    """Executor 0 could not be run while executor 1 still waits: the task ends at once, and its Pod does not
    keep its node for the default 30 s grace period."""
    report = Recorder()
    running = asyncio.create_task(backend.run(task("t6", ["nope"], ["true"]), report))
    jobs = await asyncio.to_thread(fake_kube.wait_for, NS, "jobs", "ktes.task-id=t6")
    pod = fake_kube.make_pod(NS, jobs[0])
    failed = {"terminated": {"exitCode": 128, "reason": "StartError", "startedAt": T0, "finishedAt": T1}}
    statuses = [
        {"name": "executor-0", "image": "busybox", "state": failed},
        {"name": "executor-1", "image": "busybox", "state": {"running": {"startedAt": T0}}},
    ]
    status = {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"}]}
    fake_kube.calls.clear()
    fake_kube.set_pod_status(NS, pod["metadata"]["name"], {**status, "containerStatuses": statuses})
    await asyncio.wait_for(running, 30)
    assert report.ended.state == State.SYSTEM_ERROR
    deletes = [call for call in fake_kube.calls if call.startswith("DELETE")]
    assert deletes == ["DELETE jobs", "DELETE pods"]


async def test_a_resync_is_answered_from_the_api_servers_watch_cache(fake_kube: FakeKube) -> None:
    """The first list asks for the latest state (etcd); each resync asks for a state not older than the last
    one watched, which the API server serves from its watch cache."""
    backend = KubernetesBackend(settings(fake_kube, k8s_resync_seconds=5))
    await backend.start()
    try:
        await asyncio.to_thread(fake_kube.wait_until, lambda: len([k for k, _ in fake_kube.lists if k == "pods"]) >= 2)
    finally:
        await backend.close()
    versions = [version for kind, version in fake_kube.lists if kind == "pods"]
    assert versions[0] == "" and all(version.isdigit() for version in versions[1:])
