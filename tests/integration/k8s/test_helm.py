"""The Helm chart on the lab cluster, as an operator uses it: the API server accepts what it renders; an install
runs a task through its Service; an upgrade with a changed value and a rolling restart, each in the middle
of a task, end with the task COMPLETE; an uninstall leaves nothing of ktes in either namespace.

ktes runs as two replicas on PostgreSQL (this host's, reached by the pods with a password from a Secret), as an
arbitrary UID (not the image's 10001), with its tasks in a namespace of their own. (SQLite on a claim is not
tried here: the lab's hostPath provisioner makes root-only directories and ignores fsGroup.)
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.fixtures.k8s import LAB_KUBECONFIG, REPO, fresh_namespace, kubectl
from tests.fixtures.postgres import PostgresServer, postgres_server
from tests.integration.k8s.test_deploy import TES, wait_for_final_state, wait_healthy

pytestmark = pytest.mark.k8s

CHART = REPO / "deploy" / "helm" / "ktes"
RELEASE = "ktes"
#: What ktes could leave in a namespace (kinds a chart or ktes makes), for the "nothing left" check.
KINDS = "deployments,replicasets,pods,services,jobs,secrets,configmaps,serviceaccounts,roles,rolebindings,leases,pvc"


def helm(binary: Path, *args: str, timeout: float = 600) -> str:
    env = {**os.environ, "KUBECONFIG": str(LAB_KUBECONFIG)}
    done = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def sets(values: list[str]) -> list[str]:
    return [arg for value in values for arg in ("--set", value)]


@pytest.fixture(scope="module")
def lab_postgres(server_address: str) -> Iterator[PostgresServer]:
    """A PostgreSQL of this module's own, listening on this host's address too (for the lab's pods)."""
    with postgres_server(also_on=server_address) as server:
        yield server


@pytest.fixture(scope="module")
def namespaces(k8s_lab: Path) -> Iterator[tuple[str, str]]:
    """(the release's namespace, the tasks' namespace)."""
    with fresh_namespace("ktes-helm") as release, fresh_namespace("ktes-helm-tasks") as tasks:
        yield release, tasks


def lab_values(image: str, task_namespace: str) -> list[str]:
    repository, tag = image.rsplit(":", 1)
    return [
        f"image.repository={repository}",
        f"image.tag={tag}",
        "image.pullPolicy=Never",  # loaded into the node; nothing can be pulled
        "dnsPolicy=Default",  # the lab has no cluster DNS
        f"taskNamespace={task_namespace}",
        "podSecurityContext.runAsUser=23456",  # any UID: not the image's own user
        "podSecurityContext.runAsGroup=23456",
        "podSecurityContext.fsGroup=23456",
    ]


def test_what_the_chart_renders_is_accepted_by_the_api_server(helm_binary: Path, namespaces: tuple[str, str]) -> None:
    release, tasks = namespaces
    for values in (
        [],
        [
            f"taskNamespace={tasks}",
            "database.existingSecret=ktes-db",
            "replicas=2",
            "ingress.enabled=true",
            "networkPolicy.enabled=true",
            "networkPolicy.egress[0].ports[0].port=5432",
        ],
    ):
        rendered = helm(helm_binary, "template", RELEASE, str(CHART), "--namespace", release, *sets(values))
        objects = [d for d in yaml.safe_load_all(rendered) if d]
        for obj in objects:  # as helm install does: the release's namespace unless the object names another
            obj["metadata"].setdefault("namespace", release)
        out = kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(objects))
        assert "deployment.apps/ktes created (server dry run)" in out, out


def leftovers(namespace: str) -> list[str]:
    """Objects in ``namespace`` other than what Kubernetes itself puts in every namespace."""
    listed = json.loads(kubectl("-n", namespace, "get", KINDS, "-o", "json"))["items"]
    left = []
    for item in listed:
        name = item["metadata"]["name"]
        if item["kind"] == "ServiceAccount" and name == "default":
            continue
        account = item["metadata"].get("annotations", {}).get("kubernetes.io/service-account.name")
        token = item.get("type") == "kubernetes.io/service-account-token"
        if item["kind"] == "Secret" and token and account == "default":
            continue
        if item["kind"] == "ConfigMap" and name == "kube-root-ca.crt":
            continue
        left.append(f"{item['kind']}/{name}")
    return sorted(left)


def wait_running(client: httpx.Client, task_id: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"{TES}/tasks/{task_id}").json()["state"]
        if state == "RUNNING":
            return
        assert state in ("QUEUED", "INITIALIZING"), state
        time.sleep(0.5)
    raise AssertionError(f"task {task_id} not RUNNING after {timeout} s")


def sleeper(image: str, seconds: int, word: str) -> dict[str, object]:
    return {"executors": [{"image": image, "command": ["sh", "-c", f"sleep {seconds}; echo {word}"]}]}


def test_install_upgrade_and_restart_mid_task_then_uninstall_leaves_nothing(
    helm_binary: Path,
    ktes_image: str,
    k8s_busybox_image: str,
    namespaces: tuple[str, str],
    lab_postgres: PostgresServer,
) -> None:
    release, tasks = namespaces
    kubectl("-n", release, "create", "secret", "generic", "ktes-db", f"--from-literal=url={lab_postgres.remote_url}")
    values = [*lab_values(ktes_image, tasks), "database.existingSecret=ktes-db", "replicas=2"]
    helm(helm_binary, "lint", "--strict", str(CHART), *sets(values))
    helm(helm_binary, "install", RELEASE, str(CHART), "-n", release, "--wait", "--timeout", "5m", *sets(values))
    cluster_ip = kubectl("-n", release, "get", "service", RELEASE, "-o", "jsonpath={.spec.clusterIP}")
    base_url = f"http://{cluster_ip}:8000"
    wait_healthy(base_url)
    engines = set()
    servers = kubectl("-n", release, "get", "pods", "-l", "app.kubernetes.io/component=server", "-o", "json")
    for pod in json.loads(servers)["items"]:
        ip = pod["status"]["podIP"]
        ready = httpx.get(f"http://{ip}:8000/readyz", timeout=10).json()
        assert ready["status"] == "ready" and ready["checks"]["store"] == "ok", ready
        engines.add(ready["checks"]["engine"].split(":")[0])
    assert engines == {"leading", "standby"}  # one leads the engine, the other serves the API and stays ready
    uid = kubectl("-n", release, "exec", "deploy/ktes", "--", "python3", "-c", "import os; print(os.getuid())")
    assert uid.strip() == "23456"

    with httpx.Client(base_url=base_url, timeout=30) as client:
        first = client.post(f"{TES}/tasks", json=sleeper(k8s_busybox_image, 20, "upgraded")).json()["id"]
        wait_running(client, first)
        helm(
            helm_binary,
            "upgrade",
            RELEASE,
            str(CHART),
            "-n",
            release,
            "--wait",
            "--timeout",
            "5m",
            *sets([*values, "settings.k8s_ttl_seconds_after_finished=600"]),
        )
        done = wait_for_final_state(client, first)
        assert done["state"] == "COMPLETE", json.dumps(done, indent=2)
        assert done["logs"][-1]["logs"][0]["stdout"] == "upgraded\n"
        config = kubectl("-n", release, "get", "configmap", RELEASE, "-o", "jsonpath={.data.config\\.yaml}")
        assert "k8s_ttl_seconds_after_finished: 600" in config

        second = client.post(f"{TES}/tasks", json=sleeper(k8s_busybox_image, 20, "restarted")).json()["id"]
        wait_running(client, second)
        kubectl("-n", release, "rollout", "restart", "deployment/ktes")
        kubectl("-n", release, "rollout", "status", "deployment/ktes", "--timeout=300s")
        wait_healthy(base_url)
        done = wait_for_final_state(client, second)
        assert done["state"] == "COMPLETE", json.dumps(done, indent=2)
        assert done["logs"][-1]["logs"][0]["stdout"] == "restarted\n"

    pods = kubectl("-n", release, "get", "pods", "-l", "app.kubernetes.io/component=server", "-o", "name")
    logs = "".join(kubectl("-n", release, "logs", pod, "--tail=-1", check=False) for pod in pods.split())
    password = lab_postgres.remote_url.split(":")[2].split("@")[0]
    assert logs and password not in logs

    helm(helm_binary, "uninstall", RELEASE, "-n", release, "--wait", "--timeout", "5m")
    deadline = time.monotonic() + 180
    while True:
        # the operator's own database Secret stays, as it should
        left = {ns: [o for o in leftovers(ns) if o != "Secret/ktes-db"] for ns in (release, tasks)}
        if not any(left.values()):
            break
        assert time.monotonic() < deadline, f"left after helm uninstall: {left}"
        time.sleep(1)
