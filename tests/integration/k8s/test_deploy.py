"""deploy/ on the lab cluster: the in-cluster ktes comes up and runs a task, reached through its Service.

The manifests are applied as a user would (``kubectl apply -k``), through a generated kustomization on top
of deploy/overlays/lab that only sets the namespace and the freshly built image. The host routes the
service range locally, so the test talks to the Service's ClusterIP like any client in the cluster.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.fixtures.k8s import REPO, fresh_namespace, kubectl
from tests.integration.k8s.test_k8s_logs_follow import (
    Collected,
    api_output,
    task_story,
    touch_in,
    wait_for_go_then,
)

pytestmark = pytest.mark.k8s

LAB_OVERLAY = REPO / "deploy" / "overlays" / "lab"
TES = "/ga4gh/tes/v1"


def write_kustomization(directory: Path, namespace: str, image: str) -> None:
    """A kustomization over the lab overlay: this namespace, this image (for the server and the task Pods)."""
    name, tag = image.rsplit(":", 1)
    base = os.path.relpath(LAB_OVERLAY, directory)  # kustomize refuses absolute paths to bases
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        "bases": [base],
        "images": [{"name": "localhost/ktes", "newName": name, "newTag": tag}],
        "patchesStrategicMerge": ["image.yaml"],
    }
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ktes"},
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "ktes", "env": [{"name": "KTES_K8S_IMAGE", "value": image}]}]}
            }
        },
    }
    (directory / "kustomization.yaml").write_text(json.dumps(kustomization, indent=2))  # JSON is YAML
    (directory / "image.yaml").write_text(json.dumps(patch, indent=2))


def wait_healthy(base_url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base_url}/healthz", timeout=5)
            if response.status_code == 200:
                return
            last = response.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{base_url}/healthz never answered 200 (last: {last!r})")


def deployment_diagnostics(namespace: str) -> str:
    return kubectl("-n", namespace, "get", "all,events", "-o", "wide", check=False) + kubectl(
        "-n", namespace, "logs", "deployment/ktes", "--tail=50", check=False
    )


def wait_ready(namespace: str, timeout: float = 300) -> None:
    """Until the ktes Pod is Ready; fails at once when its container restarts or its image is missing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = json.loads(kubectl("-n", namespace, "get", "pods", "-l", "app.kubernetes.io/name=ktes", "-o", "json"))
        for pod in pods["items"]:
            conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
            if conditions.get("Ready") == "True":
                return
            for status in pod["status"].get("containerStatuses", []):
                waiting = status.get("state", {}).get("waiting", {}).get("reason", "")
                if status.get("restartCount", 0) > 0 or waiting in ("ErrImagePull", "ErrImageNeverPull"):
                    raise AssertionError(f"ktes does not start ({waiting}):\n{deployment_diagnostics(namespace)}")
        time.sleep(1)
    raise AssertionError(f"ktes not ready after {timeout} s:\n{deployment_diagnostics(namespace)}")


@pytest.fixture(scope="module")
def deployed(k8s_lab: Path, ktes_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(namespace, base URL of the Service) of ktes deployed from deploy/overlays/lab."""
    with fresh_namespace("ktes-deploy") as namespace:
        directory = tmp_path_factory.mktemp("kustomization")
        write_kustomization(directory, namespace, ktes_image)
        kubectl("apply", "-k", str(directory))
        wait_ready(namespace)
        cluster_ip = kubectl("-n", namespace, "get", "service", "ktes", "-o", "jsonpath={.spec.clusterIP}")
        base_url = f"http://{cluster_ip}:8000"
        wait_healthy(base_url)
        yield namespace, base_url


def wait_for_final_state(client: httpx.Client, task_id: str, timeout: float = 240) -> dict[str, Any]:
    final = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task: dict[str, Any] = client.get(f"{TES}/tasks/{task_id}", params={"view": "FULL"}).json()
        if task["state"] in final:
            return task
        time.sleep(0.5)
    raise AssertionError(f"task {task_id} still {task['state']} after {timeout} s")


def test_the_deployment_serves_tes_and_names_itself(deployed: tuple[str, str]) -> None:
    _, base_url = deployed
    info = httpx.get(f"{base_url}{TES}/service-info", timeout=10)
    assert info.status_code == 200
    assert info.json()["type"]["artifact"] == "tes"


def test_the_in_cluster_ktes_runs_a_task_as_one_job(deployed: tuple[str, str], k8s_busybox_image: str) -> None:
    namespace, base_url = deployed
    task = {
        "name": "deploy test",
        "inputs": [{"path": "/data/greeting.txt", "content": "hello from an input\n"}],
        "volumes": ["/shared"],
        "executors": [
            {
                "image": k8s_busybox_image,
                "command": ["sh", "-c", "cat /data/greeting.txt; echo to stderr >&2; echo made > /shared/made.txt"],
            },
            {"image": k8s_busybox_image, "command": ["cat", "/shared/made.txt"]},
        ],
    }
    with httpx.Client(base_url=base_url, timeout=30) as client:
        created = client.post(f"{TES}/tasks", json=task)
        assert created.status_code == 200, created.text
        task_id = created.json()["id"]
        done = wait_for_final_state(client, task_id)

    assert done["state"] == "COMPLETE", json.dumps(done, indent=2) + deployment_diagnostics(namespace)
    logs = done["logs"][-1]["logs"]
    assert [(log["exit_code"], log["stdout"], log.get("stderr", "")) for log in logs] == [
        (0, "hello from an input\n", "to stderr\n"),
        (0, "made\n", ""),
    ]
    jobs = json.loads(kubectl("-n", namespace, "get", "jobs", "-o", "json"))["items"]
    assert len(jobs) <= 1  # one Job for the task (already gone when ttlSecondsAfterFinished passed)


def test_the_in_cluster_ktes_shows_a_running_executors_output_live(
    deployed: tuple[str, str], k8s_busybox_image: str
) -> None:
    """With its ServiceAccount's token and the Role of deploy/base (pods/exec), as users deploy it."""
    namespace, base_url = deployed
    command = wait_for_go_then("echo one; echo warn >&2", "echo two")
    created = httpx.post(
        f"{base_url}{TES}/tasks", json={"executors": [{"image": k8s_busybox_image, "command": command}]}
    )
    assert created.status_code == 200, created.text
    task_id = created.json()["id"]
    story = task_story(base_url, task_id)
    stdout = Collected(api_output(base_url, task_id, "stdout"), story)
    stderr = Collected(api_output(base_url, task_id, "stderr"), story)
    assert stdout.wait_for(b"one\n") == b"one\n"  # the executor waits for us: this came live
    assert stderr.wait_for(b"warn\n") == b"warn\n"
    touch_in(namespace, task_id, "executor-0")
    assert stdout.wait_end() == b"one\ntwo\n"
    assert stderr.wait_end() == b"warn\n"


@pytest.mark.parametrize("overlay", sorted(p.name for p in (REPO / "deploy" / "overlays").iterdir()))
def test_every_overlay_is_accepted_by_the_api_server(overlay: str, deployed: tuple[str, str]) -> None:
    """Rendered by kubectl 1.20's kustomize (the oldest we support) and validated by the server (dry run)."""
    namespace, _ = deployed
    rendered = kubectl("kustomize", str(REPO / "deploy" / "overlays" / overlay))
    documents = [d for d in yaml.safe_load_all(rendered)]
    assert all(documents), "an empty document (kustomize 2 leaves one for `$patch: delete`)"
    kinds = sorted(d["kind"] for d in documents)
    assert {"Deployment", "Service", "ServiceAccount", "Role", "RoleBinding", "ConfigMap"} <= set(kinds)
    out = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=rendered)
    assert "deployment.apps/ktes" in out
