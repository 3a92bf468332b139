"""On Kubernetes, a task reaches for the stage containers' secrets through links and ``file://``.

The stage-out container holds the staging credentials (S3 keys in its environment). An executor leaves links
to ``/proc/self/environ`` and to the service account token where outputs are collected; a ``file://`` input
names them directly. Nothing of them may be uploaded or shown.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
import tes

from tests.fixtures.ktes_server import StartServer
from tests.fixtures.servers import HttpServer
from tests.integration.k8s.test_k8s_backend import busybox, client, k8s_env, namespace, system_logs, wait_end

__all__ = ["k8s_env", "namespace"]  # module fixtures reused from the backend's tests

pytestmark = pytest.mark.k8s


def test_output_links_to_stage_secrets_upload_nothing(
    ktes_server: StartServer,
    k8s_env: dict[str, str],
    http_server: HttpServer,
    k8s_busybox_image: str,
    storage_env: dict[str, str],
) -> None:
    server = ktes_server(env=k8s_env)
    cli = client(server)
    secret = storage_env["KTES_S3_SECRET_ACCESS_KEY"]
    results = f"links-{uuid.uuid4().hex[:6]}"
    script = (
        "busybox ln -s /proc/self/environ /out/env.txt; "
        "busybox ln -s ../../../../../proc/1/environ /out/rel.txt; "
        "busybox ln -s /var/run/secrets/kubernetes.io/serviceaccount /out/sa; "
        "echo fine > /out/ok.txt"
    )
    task = tes.Task(
        executors=[busybox(k8s_busybox_image, script)],
        outputs=[tes.Output(path="/out", type="DIRECTORY", url=f"{http_server.base_url}/files/{results}/")],
    )
    done = wait_end(cli, cli.create_task(task))
    assert done.state == "COMPLETE", system_logs(done)
    uploaded = sorted(p.name for p in (http_server.root / results).rglob("*") if p.is_file())
    assert uploaded == ["ok.txt"]
    for named in ("/out/env.txt", "/out/rel.txt"):
        single = tes.Task(
            executors=[busybox(k8s_busybox_image, f"busybox ln -s /proc/self/environ {named}")],
            outputs=[tes.Output(path=named, url=f"{http_server.base_url}/files/{results}-{Path(named).name}")],
        )
        failed = wait_end(cli, cli.create_task(single))
        assert failed.state == "SYSTEM_ERROR"
        assert f"output {named} does not exist" in system_logs(failed)
        assert not (http_server.root / f"{results}-{Path(named).name}").exists()
    assert secret not in server.output()


def test_file_inputs_are_refused_without_a_shared_volume(ktes_server: StartServer, k8s_env: dict[str, str]) -> None:
    # Without k8s_file_volume no file:// URL reaches a Pod at all: the task is refused at POST, naming the input
    # (and the stage containers get no roots either: tests/unit/test_k8s_files_and_installations.py).
    server = ktes_server(env=k8s_env)
    task = {
        "inputs": [{"path": "/data/env", "url": "file:///proc/self/environ"}],
        "executors": [{"image": "busybox", "command": ["cat", "/data/env"]}],
    }
    response = httpx.post(server.tes_url + "/tasks", json=task, timeout=30)
    assert response.status_code == 400
    assert response.json()["field"] == "inputs[0].url"
