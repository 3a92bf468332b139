"""On the lab cluster, as users meet the Kubernetes backend: file:// through a shared volume, the kinds of task
the py-tes scenario runs, start-up checks that refuse to serve what cannot run, long waits that say what they
wait for, and two installations side by side in one namespace."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tes
import yaml

from tests.fixtures.k8s import kubectl
from tests.fixtures.ktes_server import KtesServer, StartServer, free_local_port
from tests.fixtures.servers import HttpServer
from tests.integration.k8s.test_k8s_backend import busybox, client, objects, system_logs, wait_end, wait_state

pytestmark = pytest.mark.k8s


@pytest.fixture(scope="module")
def namespace(k8s_lab: Path) -> Iterator[str]:
    name = f"ktes-files-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def base_env(k8s_lab: Path, ktes_image: str, namespace: str, storage_env: dict[str, str]) -> dict[str, str]:
    """As tests/integration/k8s/test_k8s_backend.py (the helper from the package, no path set), without a
    Lease name: each installation has its own."""
    return {
        **storage_env,
        "KUBECONFIG": str(k8s_lab),
        "KTES_BACKEND": "kubernetes",
        "KTES_K8S_NAMESPACE": namespace,
        "KTES_K8S_IMAGE": ktes_image,
        "KTES_K8S_DNS_POLICY": "Default",
        "KTES_K8S_LEASE_DURATION_SECONDS": "4",
        "KTES_K8S_LEASE_RENEW_SECONDS": "1",
        "KTES_ENGINE_POLL_SECONDS": "0.5",
    }


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory below /tmp, which the Pods see through ``hostpath:/tmp`` (the lab has one node: this one)."""
    path = Path("/tmp") / f"ktes-shared-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def file_url(path: Path) -> str:
    return f"file://{path}"


# --- file:// through a shared volume: the py-tes scenario's kinds of task ----------------------------------


def test_the_scenario_task_runs_with_file_urls_through_a_host_path(
    ktes_server: StartServer,
    base_env: dict[str, str],
    namespace: str,
    http_server: HttpServer,
    k8s_busybox_image: str,
    shared_dir: Path,
) -> None:
    server = ktes_server(env={**base_env, "KTES_K8S_FILE_VOLUME": "hostpath:/tmp"})
    info = httpx.get(f"{server.tes_url}/service-info").json()
    assert "file://" in info["storage"]
    inputs = shared_dir / "inputs"
    (inputs / "dir" / "sub").mkdir(parents=True)
    (inputs / "host.txt").write_text("from the host\n")
    (inputs / "dir" / "one.txt").write_text("1\n")
    (inputs / "dir" / "sub" / "two.txt").write_text("2\n")
    (http_server.root / "web.txt").write_text("from the web\n")
    results = shared_dir / "results"
    task = tes.Task(
        name="scenario",
        inputs=[
            tes.Input(path="/data/content.txt", content="from content\n"),
            tes.Input(path="/data/host.txt", url=file_url(inputs / "host.txt")),
            tes.Input(path="/data/web.txt", url=f"{http_server.base_url}/files/web.txt"),
            tes.Input(path="/data/dir", url=file_url(inputs / "dir"), type="DIRECTORY"),
        ],
        volumes=["/shared"],
        executors=[
            busybox(
                k8s_busybox_image,
                "sleep 3; cat content.txt host.txt web.txt > /shared/joined.txt; ls -R dir > /shared/listing.txt; "
                "cat; echo to-err >&2; pwd; echo $GREETING",
                stdin="/data/content.txt",
                stdout="/out/stdout.txt",
                stderr="/out/stderr.txt",
                workdir="/data",
                env={"GREETING": "hello env"},
            ),
            busybox(
                k8s_busybox_image,
                "mkdir -p /out/dir/sub && cp /shared/joined.txt /shared/listing.txt /out/ && "
                "echo a > /out/dir/a.txt && echo b > /out/dir/sub/b.txt && "
                "echo g1 > /out/g1.log && echo g2 > /out/g2.log",
            ),
        ],
        outputs=[
            tes.Output(path="/out/joined.txt", url=file_url(results / "joined.txt")),
            tes.Output(path="/out/listing.txt", url=file_url(results / "listing.txt")),
            tes.Output(path="/out/stdout.txt", url=file_url(results / "stdout.txt")),
            tes.Output(path="/out/stderr.txt", url=file_url(results / "stderr.txt")),
            tes.Output(path="/out/dir", url=file_url(results / "dir"), type="DIRECTORY"),
            tes.Output(path="/out/*.log", path_prefix="/out/", url=file_url(results / "logs")),
        ],
    )
    cli = client(server)
    task_id = cli.create_task(task)
    wait_state(cli, task_id, lambda s: s in ("RUNNING", "COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"))
    assert sorted(o["kind"] for o in objects(namespace, task_id, "jobs,pods")) == ["Job", "Pod"]
    done = wait_end(cli, task_id)
    assert done.state == "COMPLETE", system_logs(done)
    assert (results / "joined.txt").read_text() == "from content\nfrom the host\nfrom the web\n"
    assert (results / "listing.txt").read_text().split() == ["dir:", "one.txt", "sub", "dir/sub:", "two.txt"]
    assert (results / "stdout.txt").read_text() == "from content\n/data\nhello env\n"
    assert (results / "stderr.txt").read_text() == "to-err\n"
    assert (results / "dir" / "a.txt").read_text() == "a\n"
    assert (results / "dir" / "sub" / "b.txt").read_text() == "b\n"
    assert sorted(p.name for p in (results / "logs").iterdir()) == ["g1.log", "g2.log"]
    files = ["joined.txt", "listing.txt", "stdout.txt", "stderr.txt", "dir/a.txt", "dir/sub/b.txt", "g1.log", "g2.log"]
    assert sorted(o.path for o in done.logs[0].outputs) == sorted(f"/out/{name}" for name in files)
    deadline = time.monotonic() + 60
    while objects(namespace, task_id):
        assert time.monotonic() < deadline, "the task's objects were not deleted"
        time.sleep(0.5)


def test_file_urls_outside_the_allowed_roots_fail_naming_the_input(
    ktes_server: StartServer, base_env: dict[str, str], k8s_busybox_image: str, shared_dir: Path
) -> None:
    allowed = shared_dir / "allowed"
    allowed.mkdir()
    env = {**base_env, "KTES_K8S_FILE_VOLUME": "hostpath:/tmp", "KTES_FILE_ALLOWED_ROOTS": json.dumps([str(allowed)])}
    cli = client(ktes_server(env=env))
    (shared_dir / "secret.txt").write_text("not for tasks\n")
    url = file_url(shared_dir / "secret.txt")
    task = tes.Task(inputs=[tes.Input(path="/data/x", url=url)], executors=[busybox(k8s_busybox_image, "true")])
    done = wait_end(cli, cli.create_task(task))
    assert done.state == "SYSTEM_ERROR"
    assert f"input {url} is outside the allowed roots ({allowed})" in system_logs(done)


# --- without a shared volume --------------------------------------------------------------------------------


def test_without_a_shared_volume_file_urls_are_refused_at_once(
    ktes_server: StartServer, base_env: dict[str, str], k8s_busybox_image: str
) -> None:
    server = ktes_server(env=base_env)
    info = httpx.get(f"{server.tes_url}/service-info").json()
    assert "file://" not in info["storage"] and "http://" in info["storage"]
    body = {
        "inputs": [{"path": "/data/x", "url": "file:///tmp/x"}],
        "executors": [{"image": k8s_busybox_image, "command": ["true"]}],
    }
    response = httpx.post(f"{server.tes_url}/tasks", json=body)
    assert response.status_code == 400
    message = response.json()["msg"] if "msg" in response.json() else json.dumps(response.json())
    assert "inputs[0].url" in message and "shared with the cluster" in message


def test_an_unreachable_input_fails_in_seconds_and_a_slow_one_says_what_it_waits_for(
    ktes_server: StartServer, base_env: dict[str, str], server_address: str, k8s_busybox_image: str
) -> None:
    closed = f"http://{server_address}:{free_local_port()}/nothing-listens/x.txt"
    cli = client(ktes_server(env=base_env))  # retries as storage_env sets them: 3, from 0.05 s
    task = tes.Task(inputs=[tes.Input(path="/data/x", url=closed)], executors=[busybox(k8s_busybox_image, "true")])
    started = time.monotonic()
    done = wait_end(cli, cli.create_task(task))
    assert done.state == "SYSTEM_ERROR"
    assert system_logs(done).startswith(f"input {closed}: cannot connect"), system_logs(done)
    print(f"an unreachable input failed after {time.monotonic() - started:.1f} s")
    slow = {**base_env, "KTES_TRANSFER_RETRIES": "3", "KTES_TRANSFER_RETRY_BACKOFF_SECONDS": "2"}
    cli = client(ktes_server(env={**slow, "KTES_K8S_WAIT_NOTE_SECONDS": "3"}))
    done = wait_end(cli, cli.create_task(task))
    assert done.state == "SYSTEM_ERROR"
    logs = done.logs[0].system_logs
    assert logs[0].startswith("still staging the inputs; the last attempt: download failed"), logs
    assert closed in logs[0] and "retrying in" in logs[0]
    assert logs[-1].startswith(f"input {closed}: cannot connect")


# --- start-up checks ------------------------------------------------------------------------------------------


def serve_and_fail(env: dict[str, str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    """``ktes serve`` that is expected to refuse to start."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("KTES_")}
    full.update(KTES_DATA_DIR=str(data_dir), KTES_PORT=str(free_local_port()), KTES_LOG_LEVEL="warning", **env)
    argv = [sys.executable, "-c", "from ktes.cli.main import app; app()", "serve"]
    return subprocess.run(argv, env=full, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def kubeconfig_for(lab: Path, directory: Path, *, token: str | None = None, server: str | None = None) -> Path:
    config: dict[str, Any] = yaml.safe_load(lab.read_text())
    if server is not None:
        config["clusters"][0]["cluster"]["server"] = server
    if token is not None:
        config["users"][0]["user"] = {"token": token}
    path = directory / f"kubeconfig-{uuid.uuid4().hex[:6]}"
    path.write_text(yaml.safe_dump(config))
    return path


def service_account_token(namespace: str, name: str) -> str:
    kubectl("-n", namespace, "create", "serviceaccount", name)
    deadline = time.monotonic() + 60
    while True:
        account = json.loads(kubectl("-n", namespace, "get", "serviceaccount", name, "-o", "json"))
        secrets = account.get("secrets") or []
        if secrets:
            secret = json.loads(kubectl("-n", namespace, "get", "secret", secrets[0]["name"], "-o", "json"))
            return base64.b64decode(secret["data"]["token"]).decode()
        assert time.monotonic() < deadline, "no token for the ServiceAccount"
        time.sleep(0.5)


def assert_one_sentence(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ktes serve: "), proc.stderr
    for word in words:
        assert word in last, last


def test_serve_refuses_to_start_when_the_backend_cannot_run_tasks(
    base_env: dict[str, str], k8s_lab: Path, namespace: str, tmp_path: Path
) -> None:
    absent = f"ktes-absent-{uuid.uuid4().hex[:6]}"
    proc = serve_and_fail({**base_env, "KTES_K8S_NAMESPACE": absent}, tmp_path / "a")
    assert_one_sentence(proc, f"the namespace {absent} does not exist")

    dead = kubeconfig_for(k8s_lab, tmp_path, server=f"https://127.0.0.1:{free_local_port()}")
    proc = serve_and_fail({**base_env, "KUBECONFIG": str(dead)}, tmp_path / "b")
    assert_one_sentence(proc, "does not answer")

    token = service_account_token(namespace, f"no-rights-{uuid.uuid4().hex[:6]}")
    powerless = kubeconfig_for(k8s_lab, tmp_path, token=token)
    proc = serve_and_fail({**base_env, "KUBECONFIG": str(powerless)}, tmp_path / "c")
    assert_one_sentence(proc, "ktes may not create jobs", f"in the namespace {namespace}", "deploy/base/rbac.yaml")

    proc = serve_and_fail({**base_env, "KTES_K8S_ENTRYPOINT_PATH": str(tmp_path / "nothing")}, tmp_path / "d")
    assert_one_sentence(proc, "the executors' helper", "does not exist")

    proc = serve_and_fail({**base_env, "KTES_K8S_FILE_VOLUME": "nfs:/x"}, tmp_path / "e")
    assert_one_sentence(proc, "k8s_file_volume")


# --- two installations in one namespace -----------------------------------------------------------------------


def installation_of(namespace: str, task_id: str) -> str:
    [job] = objects(namespace, task_id, "jobs")
    return str(job["metadata"]["labels"]["ktes.installation"])


def test_two_installations_in_one_namespace_leave_each_other_alone(
    ktes_server: StartServer, base_env: dict[str, str], namespace: str, k8s_busybox_image: str, tmp_path: Path
) -> None:
    blue: KtesServer = ktes_server(env=base_env, data_dir=tmp_path / "blue")
    green: KtesServer = ktes_server(env=base_env, data_dir=tmp_path / "green")
    long = tes.Task(executors=[busybox(k8s_busybox_image, "sleep 20; echo survived")])
    blue_task = client(blue).create_task(long)
    green_task = client(green).create_task(long)
    wait_state(client(blue), blue_task, lambda s: s == "RUNNING")
    wait_state(client(green), green_task, lambda s: s == "RUNNING")
    ids = {installation_of(namespace, blue_task), installation_of(namespace, green_task)}
    assert len(ids) == 2
    blue.stop()  # a restart sweeps what its database does not know: only its own objects
    blue = ktes_server(env=base_env, data_dir=blue.data_dir)
    green.kill()
    green = ktes_server(env=base_env, data_dir=green.data_dir)
    quick = client(blue).create_task(tes.Task(executors=[busybox(k8s_busybox_image, "echo hi")]))
    assert wait_end(client(blue), quick).state == "COMPLETE"
    for server, task_id in ((blue, blue_task), (green, green_task)):
        done = wait_end(client(server), task_id)
        assert done.state == "COMPLETE", system_logs(done)
        assert done.logs[0].logs[0].stdout == "survived\n"
    leases = set(kubectl("-n", namespace, "get", "leases", "-o", "name").split())
    assert {f"lease.coordination.k8s.io/ktes-engine-{i}" for i in ids} <= leases  # an engine each
