"""A secured ktes on the lab cluster: the owner is a label on each task's Job and Pod, the operator's queue
mapping labels the Job, and users do not see each other's tasks on this backend either."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import tes

from ktes.auth.users_file import add_user
from tests.fixtures.k8s import fresh_namespace, kubectl
from tests.fixtures.ktes_server import StartServer

pytestmark = pytest.mark.k8s


@pytest.fixture
def namespace(k8s_lab: Path) -> Iterator[str]:
    with fresh_namespace("ktes-owner") as name:
        yield name


def test_owner_labels_and_queues_on_the_lab(
    ktes_server: StartServer,
    k8s_lab: Path,
    namespace: str,
    k8s_busybox_image: str,
    entrypoint_binary: Path,
    tmp_path: Path,
) -> None:
    users = tmp_path / "users"
    add_user(users, "alice@example.org", "a-pw", rounds=4)
    add_user(users, "bob", "b-pw", rounds=4)
    server = ktes_server(
        env={
            "KUBECONFIG": str(k8s_lab),
            "KTES_BACKEND": "kubernetes",
            "KTES_K8S_NAMESPACE": namespace,
            # tasks without inputs or outputs have no stage containers: the ktes image is not needed
            "KTES_K8S_IMAGE": "localhost/ktes:not-needed",
            "KTES_K8S_DNS_POLICY": "Default",
            "KTES_K8S_LEASE_NAME": f"ktes-{uuid.uuid4().hex[:8]}",
            "KTES_K8S_LEASE_DURATION_SECONDS": "4",
            "KTES_K8S_LEASE_RENEW_SECONDS": "1",
            "KTES_ENGINE_POLL_SECONDS": "0.5",
            "KTES_K8S_ENTRYPOINT_PATH": str(entrypoint_binary),
            "KTES_K8S_KEEP_FINISHED_JOBS": "true",
            "KTES_K8S_USER_QUEUES": '{"bob": "team-b"}',
            "KTES_AUTH": "basic",
            "KTES_AUTH_USERS_FILE": str(users),
        }
    )
    alice = tes.HTTPClient(server.url, timeout=30, user="alice@example.org", password="a-pw")
    bob = tes.HTTPClient(server.url, timeout=30, user="bob", password="b-pw")
    task = tes.Task(executors=[tes.Executor(image=k8s_busybox_image, command=["echo", "hi"])])
    alices, bobs = alice.create_task(task), bob.create_task(task)
    for client, task_id in ((alice, alices), (bob, bobs)):
        deadline = time.monotonic() + 180
        while (state := client.get_task(task_id).state) not in ("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"):
            assert time.monotonic() < deadline, f"{task_id} still {state}"
            time.sleep(0.25)
        assert state == "COMPLETE"
    assert [t.id for t in alice.list_tasks().tasks] == [alices]
    with pytest.raises(Exception, match="404"):
        bob.get_task(alices)

    def labelled(selector: str) -> dict[str, dict[str, str]]:
        items = json.loads(kubectl("-n", namespace, "get", "jobs,pods", "-l", selector, "-o", "json"))["items"]
        return {f"{o['kind']}/{o['metadata']['labels']['ktes.task-id']}": o["metadata"]["labels"] for o in items}

    alice_label = next(iter(labelled(f"ktes.task-id={alices}").values()))["ktes.owner"]
    assert alice_label.startswith("alice_example.org-")  # sanitised, with a hash of the name
    assert set(labelled(f"ktes.owner={alice_label}")) == {f"Job/{alices}", f"Pod/{alices}"}
    bobs_objects = labelled("ktes.owner=bob")
    assert set(bobs_objects) == {f"Job/{bobs}", f"Pod/{bobs}"}
    assert bobs_objects[f"Job/{bobs}"]["kueue.x-k8s.io/queue-name"] == "team-b"
