"""A task on the lab writing more into its work directory than its ``disk_gb``: the workspace ``emptyDir`` has
that ``sizeLimit``, so the kubelet evicts the Pod (its eviction manager looks every 10 s, at volume usage it
measures about once a minute). The task must end saying, in a plain sentence, that its work directory went
over its disk limit, and nothing of it may be left in the namespace.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.k8s import fresh_namespace
from tests.fixtures.ktes_server import StartServer
from tests.integration.faults import burst, lab

pytestmark = pytest.mark.k8s

#: the task's disk limit (GB): 31 MiB, written over threefold.
DISK_GB = 0.03


@pytest.fixture
def namespace(k8s_lab: Path) -> Iterator[str]:
    with fresh_namespace("ktes-disk") as name:
        yield name


def test_a_task_over_its_disk_limit_on_kubernetes_ends_with_a_sentence(
    ktes_server: StartServer,
    k8s_lab: Path,
    ktes_image: str,
    k8s_busybox_image: str,
    namespace: str,
    storage_env: dict[str, str],
) -> None:
    server = ktes_server(env=lab.ktes_env(k8s_lab, ktes_image, namespace, storage_env))
    script = "head -c 100000000 /dev/zero > /scratch/big; echo written; sleep 300"
    task = {
        "name": "over-disk",
        "resources": {"disk_gb": DISK_GB},
        "volumes": ["/scratch"],
        "executors": [{"image": k8s_busybox_image, "command": ["sh", "-c", script]}],
    }
    with httpx.Client(base_url=server.tes_url, timeout=30) as client:
        task_id = client.post("/tasks", json=task).json()["id"]
        deadline = time.monotonic() + 150  # the pod's start, a volume measurement (~60 s), an eviction check
        while (found := client.get(f"/tasks/{task_id}", params={"view": "FULL"}).json())["state"] not in burst.TERMINAL:
            assert time.monotonic() < deadline, f"not evicted in 150 s: {found['state']}, {found.get('logs')}"
            time.sleep(1)
    says = found["logs"][0].get("system_logs") or []
    assert found["state"] in {"EXECUTOR_ERROR", "SYSTEM_ERROR"}, (found["state"], says)
    assert says and says[-1].startswith(
        f"the task's work directory went over its disk limit of {DISK_GB:g} GB (disk_gb), so Kubernetes stopped"
    ), says
    lab.wait_nothing_left(namespace, timeout=60)
