"""End to end on the lab cluster: a real ``ktes serve --backend kubernetes``, py-tes as the client, real
storage servers on this host's own address (the pods reach them), and kubectl to count what is left."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tes

from tests.fixtures.k8s import kubectl
from tests.fixtures.ktes_server import KtesServer, StartServer
from tests.fixtures.servers import HttpServer

pytestmark = pytest.mark.k8s

TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}
PULL_TIMEOUT = 8
UNSCHEDULABLE_TIMEOUT = 8


@pytest.fixture(scope="module")
def namespace(k8s_lab: Path) -> Iterator[str]:
    """A namespace of this module's own: each ktes sweeps what it does not know in its namespace."""
    name = f"ktes-backend-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def k8s_env(
    k8s_lab: Path, ktes_image: str, namespace: str, storage_env: dict[str, str], entrypoint_binary: Path
) -> dict[str, str]:
    return {
        **storage_env,
        "KUBECONFIG": str(k8s_lab),
        "KTES_BACKEND": "kubernetes",
        "KTES_K8S_NAMESPACE": namespace,
        "KTES_K8S_IMAGE": ktes_image,
        "KTES_K8S_IMAGE_PULL_POLICY": "IfNotPresent",
        "KTES_K8S_DNS_POLICY": "Default",
        "KTES_K8S_IMAGE_PULL_TIMEOUT_SECONDS": str(PULL_TIMEOUT),
        "KTES_K8S_UNSCHEDULABLE_TIMEOUT_SECONDS": str(UNSCHEDULABLE_TIMEOUT),
        "KTES_K8S_LEASE_NAME": f"ktes-{uuid.uuid4().hex[:8]}",
        "KTES_K8S_LEASE_DURATION_SECONDS": "4",
        "KTES_K8S_LEASE_RENEW_SECONDS": "1",
        "KTES_ENGINE_POLL_SECONDS": "0.5",
    }


@pytest.fixture
def server(ktes_server: StartServer, k8s_env: dict[str, str]) -> KtesServer:
    return ktes_server(env=k8s_env)


def client(server: KtesServer) -> tes.HTTPClient:
    return tes.HTTPClient(server.url, timeout=30)


def wait_state(cli: tes.HTTPClient, task_id: str, done: Callable[[str], bool], timeout: float = 180) -> tes.Task:
    deadline = time.monotonic() + timeout
    while True:
        task = cli.get_task(task_id, view="FULL")
        if done(task.state):
            return task
        assert time.monotonic() < deadline, f"task {task_id} still {task.state} after {timeout} s"
        time.sleep(0.25)


def wait_end(cli: tes.HTTPClient, task_id: str, timeout: float = 180) -> tes.Task:
    return wait_state(cli, task_id, lambda s: s in TERMINAL, timeout)


def objects(namespace: str, task_id: str, kinds: str = "jobs,pods,secrets,pvc") -> list[dict[str, Any]]:
    out = kubectl("-n", namespace, "get", kinds, "-l", f"ktes.task-id={task_id}", "-o", "json")
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def wait_nothing_left(namespace: str, task_ids: list[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        left = {t: [o["kind"] + "/" + o["metadata"]["name"] for o in objects(namespace, t)] for t in task_ids}
        left = {t: names for t, names in left.items() if names}
        if not left:
            return
        assert time.monotonic() < deadline, f"still in the namespace: {left}"
        time.sleep(0.5)


def busybox(image: str, script: str, **fields: Any) -> tes.Executor:
    return tes.Executor(image=image, command=["sh", "-c", script], **fields)


def system_logs(task: tes.Task) -> str:
    return " | ".join(task.logs[0].system_logs or [])


# --- the "done when" case ------------------------------------------------------------------------------


def test_inputs_two_executors_and_a_glob_output_in_one_job_and_one_pod(
    ktes_server: StartServer, k8s_env: dict[str, str], namespace: str, http_server: HttpServer, k8s_busybox_image: str
) -> None:
    server = ktes_server(env={**k8s_env, "KTES_K8S_KEEP_FINISHED_JOBS": "true"})
    cli = client(server)
    (http_server.root / "remote.txt").write_text("from the web\n")
    results = f"results-{uuid.uuid4().hex[:6]}"
    task = tes.Task(
        name="done-when",
        inputs=[
            tes.Input(path="/data/in.txt", content="hello from content\n"),
            tes.Input(path="/data/remote.txt", url=f"{http_server.base_url}/files/remote.txt"),
        ],
        executors=[
            busybox(
                k8s_busybox_image,
                "cat /data/in.txt /data/remote.txt > /out/a.txt; echo two > /out/b.txt; echo oops >&2; exit 3",
                ignore_error=True,
            ),
            busybox(k8s_busybox_image, "ls /out; echo second-ran"),
        ],
        outputs=[tes.Output(path="/out/*.txt", path_prefix="/out/", url=f"{http_server.base_url}/files/{results}/")],
    )
    task_id = cli.create_task(task)
    done = wait_end(cli, task_id)
    assert done.state == "COMPLETE", system_logs(done)
    log = done.logs[0]
    assert [e.exit_code for e in log.logs] == [3, 0]
    assert log.logs[0].stderr == "oops\n" and log.logs[0].stdout == ""
    assert log.logs[1].stdout == "a.txt\nb.txt\nsecond-ran\n"
    assert log.logs[0].start_time and log.logs[1].end_time
    assert sorted((o.path, int(o.size_bytes)) for o in log.outputs) == [("/out/a.txt", 32), ("/out/b.txt", 4)]
    assert (http_server.root / results / "a.txt").read_text() == "hello from content\nfrom the web\n"
    assert log.metadata and log.metadata["namespace"] == namespace and log.metadata["job"] == f"ktes-{task_id}"
    kinds = sorted(o["kind"] for o in objects(namespace, task_id))
    assert kinds == ["Job", "Pod", "Secret"]  # one Job, one Pod, no PVC (the Secret holds the task document)


def test_stdio_files_workdir_env_and_volumes(
    server: KtesServer, http_server: HttpServer, k8s_busybox_image: str
) -> None:
    cli = client(server)
    name = f"stdout-{uuid.uuid4().hex[:6]}.txt"
    task = tes.Task(
        inputs=[tes.Input(path="/data/in.txt", content="line one\nline two\n")],
        volumes=["/vol"],
        executors=[
            busybox(
                k8s_busybox_image,
                "cat; echo to-err >&2; pwd; echo $GREETING",
                stdin="/data/in.txt",
                stdout="/vol/out.txt",
                stderr="/vol/err.txt",
                workdir="/data",
                env={"GREETING": "hello env"},
            ),
            busybox(k8s_busybox_image, "cat /vol/out.txt; cat /vol/err.txt >&2"),
        ],
        outputs=[tes.Output(path="/vol/out.txt", url=f"{http_server.base_url}/files/{name}")],
    )
    done = wait_end(cli, cli.create_task(task))
    assert done.state == "COMPLETE", system_logs(done)
    second = done.logs[0].logs[1]
    assert second.stdout == "line one\nline two\n/data\nhello env\n"
    assert second.stderr == "to-err\n"
    assert (http_server.root / name).read_text() == "line one\nline two\n/data\nhello env\n"


def test_failing_executor_stops_the_task_with_its_exit_code(server: KtesServer, k8s_busybox_image: str) -> None:
    cli = client(server)
    task = tes.Task(
        executors=[
            busybox(k8s_busybox_image, "echo before; exit 7"),
            busybox(k8s_busybox_image, "echo never"),
        ]
    )
    done = wait_end(cli, cli.create_task(task))
    assert done.state == "EXECUTOR_ERROR"
    assert [(e.exit_code, e.stdout) for e in done.logs[0].logs] == [(7, "before\n")]
    assert "executor 0 exited with code 7" in system_logs(done)


def test_missing_image_is_a_system_error_naming_it(server: KtesServer, k8s_busybox_image: str) -> None:
    cli = client(server)
    image = f"localhost/ktes-test/not-there:{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    done = wait_end(cli, cli.create_task(tes.Task(executors=[tes.Executor(image=image, command=["true"])])))
    assert done.state == "SYSTEM_ERROR"
    assert f"image {image} (executor 0) could not be pulled" in system_logs(done)
    assert time.monotonic() - started < PULL_TIMEOUT + 30


def test_unschedulable_is_a_system_error_with_the_schedulers_message(
    server: KtesServer, namespace: str, k8s_busybox_image: str
) -> None:
    cli = client(server)
    resources = tes.Resources(backend_parameters={"node_selector": "ktes-test/pool=nowhere"})
    started = time.monotonic()
    task_id = cli.create_task(tes.Task(executors=[busybox(k8s_busybox_image, "true")], resources=resources))
    done = wait_end(cli, task_id)
    assert done.state == "SYSTEM_ERROR"
    assert f"no node could run the task's pod for {UNSCHEDULABLE_TIMEOUT} s" in system_logs(done)
    assert "0/1 nodes are available: 1 node(s) didn't match" in system_logs(done)
    assert time.monotonic() - started < UNSCHEDULABLE_TIMEOUT + 30
    wait_nothing_left(namespace, [task_id])


def test_memory_hog_is_an_executor_error_saying_so(server: KtesServer, k8s_busybox_image: str) -> None:
    cli = client(server)
    hog = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}"
    task = tes.Task(executors=[busybox(k8s_busybox_image, hog)], resources=tes.Resources(ram_gb=0.05))
    done = wait_end(cli, cli.create_task(task))
    assert done.state == "EXECUTOR_ERROR", system_logs(done)
    assert "executor 0 was killed for exceeding its memory limit (ram_gb=0.05)" in system_logs(done)


def test_cancel_removes_the_pod(server: KtesServer, namespace: str, k8s_busybox_image: str) -> None:
    cli = client(server)
    task_id = cli.create_task(tes.Task(executors=[busybox(k8s_busybox_image, "sleep 300")]))
    wait_state(cli, task_id, lambda s: s == "RUNNING")
    assert [o["kind"] for o in objects(namespace, task_id, "pods")] == ["Pod"]
    cli.cancel_task(task_id)
    assert cli.get_task(task_id).state in ("CANCELING", "CANCELED")
    assert wait_end(cli, task_id, timeout=60).state == "CANCELED"
    assert objects(namespace, task_id, "pods") == []


def test_nothing_is_left_after_a_batch(server: KtesServer, namespace: str, k8s_busybox_image: str) -> None:
    cli = client(server)
    ok = [cli.create_task(tes.Task(executors=[busybox(k8s_busybox_image, f"echo {i}")])) for i in range(3)]
    failed = cli.create_task(tes.Task(executors=[busybox(k8s_busybox_image, "exit 1")]))
    canceled = cli.create_task(tes.Task(executors=[busybox(k8s_busybox_image, "sleep 300")]))
    wait_state(cli, canceled, lambda s: s == "RUNNING")
    cli.cancel_task(canceled)
    states = {task_id: wait_end(cli, task_id).state for task_id in [*ok, failed, canceled]}
    assert states == {**dict.fromkeys(ok, "COMPLETE"), failed: "EXECUTOR_ERROR", canceled: "CANCELED"}
    wait_nothing_left(namespace, [*ok, failed, canceled])


def test_killed_server_re_adopts_its_running_task(
    ktes_server: StartServer, k8s_env: dict[str, str], k8s_busybox_image: str
) -> None:
    first = ktes_server(env=k8s_env)
    task_id = client(first).create_task(tes.Task(executors=[busybox(k8s_busybox_image, "sleep 8; echo survived")]))
    wait_state(client(first), task_id, lambda s: s == "RUNNING")
    first.kill()
    second = ktes_server(env=k8s_env, data_dir=first.data_dir)
    done = wait_end(client(second), task_id)
    assert done.state == "COMPLETE", system_logs(done)
    assert done.logs[0].logs[0].stdout == "survived\n"


def lease_holder(namespace: str, name: str) -> str:
    out = kubectl("-n", namespace, "get", "lease", name, "-o", "json", check=False)
    return str(json.loads(out)["spec"].get("holderIdentity") or "") if out else ""


def test_two_replicas_one_engine(
    ktes_server: StartServer, k8s_env: dict[str, str], namespace: str, k8s_busybox_image: str, tmp_path: Path
) -> None:
    lease = k8s_env["KTES_K8S_LEASE_NAME"]
    a = ktes_server(env=k8s_env, data_dir=tmp_path)
    b = ktes_server(env=k8s_env, data_dir=tmp_path)
    deadline = time.monotonic() + 30
    while not lease_holder(namespace, lease):
        assert time.monotonic() < deadline, "nobody took the Lease"
        time.sleep(0.2)
    holder = lease_holder(namespace, lease)
    pids = {a.proc.pid: a, b.proc.pid: b}
    leader_pid = int(holder.rsplit("_", 1)[1])
    assert leader_pid in pids
    leader, follower = pids[leader_pid], (b if pids[leader_pid] is a else a)
    # both serve the API; tasks sent to either run (on the leader's engine)
    ids = [client(r).create_task(tes.Task(executors=[busybox(k8s_busybox_image, "echo hi")])) for r in (a, b)]
    assert [wait_end(client(follower), t).state for t in ids] == ["COMPLETE", "COMPLETE"]
    assert lease_holder(namespace, lease) == holder
    leader.stop()  # a clean stop gives the Lease up: the other replica takes over
    deadline = time.monotonic() + 30
    while lease_holder(namespace, lease) in ("", holder):
        assert time.monotonic() < deadline, "the Lease was not taken over"
        time.sleep(0.2)
    assert lease_holder(namespace, lease).endswith(f"_{follower.proc.pid}")
    task_id = client(follower).create_task(tes.Task(executors=[busybox(k8s_busybox_image, "echo again")]))
    assert wait_end(client(follower), task_id).state == "COMPLETE"


# --- the fast Pod: containers that start together, in order through the helper ---------------------------


def test_a_task_without_files_is_a_pod_of_its_executors_alone(
    ktes_server: StartServer, k8s_env: dict[str, str], namespace: str, k8s_busybox_image: str
) -> None:
    server = ktes_server(env={**k8s_env, "KTES_K8S_KEEP_FINISHED_JOBS": "true"})
    cli = client(server)
    task = tes.Task(
        executors=[
            busybox(k8s_busybox_image, "sleep 1; echo first > /ktes/state/order"),
            busybox(k8s_busybox_image, "cat /ktes/state/order; echo second; echo err >&2"),
        ]
    )
    task_id = cli.create_task(task)
    done = wait_end(cli, task_id)
    assert done.state == "COMPLETE", system_logs(done)
    assert [(e.exit_code, e.stdout, e.stderr) for e in done.logs[0].logs] == [
        (0, "", ""),
        (0, "first\nsecond\n", "err\n"),  # the second waited for the first, though both containers started at once
    ]
    assert done.logs[0].logs[1].start_time >= done.logs[0].logs[0].end_time
    [pod] = objects(namespace, task_id, "pods")
    assert "initContainers" not in pod["spec"]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["executor-0", "executor-1"]  # no Python container
    assert objects(namespace, task_id, "secrets") == []  # nothing in the Pod would read the task document
    shared = json.loads(kubectl("-n", namespace, "get", "configmaps", "-l", "ktes.entrypoint", "-o", "json"))
    assert [c["metadata"]["name"][:16] for c in shared["items"]] == ["ktes-entrypoint-"]  # one per namespace


def test_a_missing_input_is_named_as_the_local_backend_names_it(
    server: KtesServer, http_server: HttpServer, k8s_busybox_image: str
) -> None:
    cli = client(server)
    url = f"{http_server.base_url}/files/not-there-{uuid.uuid4().hex[:6]}.txt"
    task = tes.Task(
        inputs=[tes.Input(path="/data/in.txt", url=url)], executors=[busybox(k8s_busybox_image, "cat /data/in.txt")]
    )
    done = wait_end(cli, cli.create_task(task))
    assert done.state == "SYSTEM_ERROR"
    assert system_logs(done).startswith(f"input {url}"), system_logs(done)
    assert done.logs[0].logs == [] or done.logs[0].logs is None


def test_a_missing_image_in_a_later_executor_fails_the_task_early(server: KtesServer, k8s_busybox_image: str) -> None:
    cli = client(server)
    image = f"localhost/ktes-test/not-there:{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    task = tes.Task(executors=[busybox(k8s_busybox_image, "sleep 300"), tes.Executor(image=image, command=["true"])])
    done = wait_end(cli, cli.create_task(task))
    assert done.state == "SYSTEM_ERROR"
    assert f"image {image} (executor 1) could not be pulled" in system_logs(done)
    assert time.monotonic() - started < PULL_TIMEOUT + 30  # every image is pulled when the Pod starts
