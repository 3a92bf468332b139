"""A secured ktes on the lab cluster: the owner is a label on each task's Job and Pod, the operator's queue
mapping labels the Job, users do not see or cancel each other's tasks on this backend either (an admin sees
both), and a task reaches only its owner's files on the shared volume, also through a link made after the
task was accepted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import tes

from ktes.auth.users_file import add_user
from tests.fixtures.k8s import fresh_namespace, host_tmp_dir, kubectl, lab_ktes_env
from tests.fixtures.ktes_server import StartServer
from tests.integration.k8s.test_k8s_backend import busybox, system_logs, wait_end, wait_state

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
    add_user(users, "root", "r-pw", rounds=4)
    server = ktes_server(
        env=lab_ktes_env(
            k8s_lab,
            namespace,
            # tasks without inputs or outputs have no stage containers: the ktes image is not needed
            "localhost/ktes:not-needed",
            KTES_K8S_ENTRYPOINT_PATH=str(entrypoint_binary),
            KTES_K8S_KEEP_FINISHED_JOBS="true",
            KTES_K8S_USER_QUEUES='{"bob": "team-b"}',
            KTES_AUTH="basic",
            KTES_AUTH_USERS_FILE=str(users),
            KTES_ADMINS='["root"]',
        )
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
    with pytest.raises(Exception, match="404"):
        bob.cancel_task(alices)
    root = tes.HTTPClient(server.url, timeout=30, user="root", password="r-pw")
    assert {t.id for t in root.list_tasks().tasks} == {alices, bobs}
    owners = httpx.get(f"{server.tes_url}/tasks", params={"owner": "bob"}, auth=("root", "r-pw"), timeout=30)
    assert [t["id"] for t in owners.json()["tasks"]] == [bobs]

    def labelled(selector: str) -> dict[str, dict[str, str]]:
        items = json.loads(kubectl("-n", namespace, "get", "jobs,pods", "-l", selector, "-o", "json"))["items"]
        return {f"{o['kind']}/{o['metadata']['labels']['ktes.task-id']}": o["metadata"]["labels"] for o in items}

    alice_label = next(iter(labelled(f"ktes.task-id={alices}").values()))["ktes.owner"]
    assert alice_label.startswith("alice_example.org-")  # sanitised, with a hash of the name
    assert set(labelled(f"ktes.owner={alice_label}")) == {f"Job/{alices}", f"Pod/{alices}"}
    bobs_objects = labelled("ktes.owner=bob")
    assert set(bobs_objects) == {f"Job/{bobs}", f"Pod/{bobs}"}
    assert bobs_objects[f"Job/{bobs}"]["kueue.x-k8s.io/queue-name"] == "team-b"


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    with host_tmp_dir("ktes-users") as path:
        yield path


def test_a_task_reaches_only_its_owners_files_even_through_a_link_made_after_post(
    ktes_server: StartServer,
    k8s_lab: Path,
    namespace: str,
    ktes_image: str,
    k8s_busybox_image: str,
    shared_dir: Path,
    tmp_path: Path,
) -> None:
    users = tmp_path / "users"
    add_user(users, "alice", "a-pw", rounds=4)
    add_user(users, "bob", "b-pw", rounds=4)
    for name in ("alice", "bob"):
        (shared_dir / name).mkdir()
    (shared_dir / "alice" / "mine.txt").write_text("alice's own\n")
    (shared_dir / "bob" / "secret.txt").write_text("bob's secret\n")
    server = ktes_server(
        env=lab_ktes_env(
            k8s_lab,
            namespace,
            ktes_image,
            KTES_K8S_FILE_VOLUME="hostpath:/tmp",
            KTES_FILE_USER_ROOTS=json.dumps([f"{shared_dir}/{{user}}"]),
            KTES_K8S_MAX_RUNNING_TASKS="1",  # one task at a time: the later ones wait while links are made
            KTES_AUTH="basic",
            KTES_AUTH_USERS_FILE=str(users),
        )
    )
    alice = tes.HTTPClient(server.url, timeout=30, user="alice", password="a-pw")

    # Alice's own file, in and out: it works.
    own = tes.Task(
        inputs=[tes.Input(path="/data/in.txt", url=f"file://{shared_dir}/alice/mine.txt")],
        executors=[busybox(k8s_busybox_image, "cat /data/in.txt > /out/copy.txt")],
        outputs=[tes.Output(path="/out/copy.txt", url=f"file://{shared_dir}/alice/copy.txt")],
    )
    done = wait_end(alice, alice.create_task(own))
    assert done.state == "COMPLETE", system_logs(done)
    assert (shared_dir / "alice" / "copy.txt").read_text() == "alice's own\n"

    # Bob's file named directly: refused at POST.
    direct = {
        "inputs": [{"path": "/data/in.txt", "url": f"file://{shared_dir}/bob/secret.txt"}],
        "executors": [{"image": k8s_busybox_image, "command": ["true"]}],
    }
    refused = httpx.post(f"{server.tes_url}/tasks", json=direct, auth=("alice", "a-pw"), timeout=30)
    assert refused.status_code == 400 and refused.json()["field"] == "inputs[0].url"

    # Through links Alice makes after POST, while her tasks wait behind one that holds the only slot.
    blocker = alice.create_task(tes.Task(executors=[busybox(k8s_busybox_image, "sleep 600")]))
    wait_state(alice, blocker, lambda s: s == "RUNNING")
    reads = alice.create_task(
        tes.Task(
            inputs=[tes.Input(path="/data/in.txt", url=f"file://{shared_dir}/alice/link.txt")],
            executors=[busybox(k8s_busybox_image, "cat /data/in.txt")],
        )
    )
    writes = alice.create_task(
        tes.Task(
            executors=[busybox(k8s_busybox_image, "echo planted > /out/x.txt")],
            outputs=[tes.Output(path="/out/x.txt", url=f"file://{shared_dir}/alice/drop/planted.txt")],
        )
    )
    (shared_dir / "alice" / "link.txt").symlink_to(shared_dir / "bob" / "secret.txt")
    (shared_dir / "alice" / "drop").symlink_to(shared_dir / "bob")
    alice.cancel_task(blocker)

    read = wait_end(alice, reads)
    assert read.state == "SYSTEM_ERROR", system_logs(read)
    assert f"{shared_dir}/alice/link.txt is outside the allowed roots" in system_logs(read), system_logs(read)
    assert read.logs[0].logs in (None, [])  # the executor never ran: nothing of Bob's file reached a log
    written = wait_end(alice, writes)
    assert written.state == "SYSTEM_ERROR", system_logs(written)
    assert f"{shared_dir}/alice/drop/planted.txt is outside the allowed roots" in system_logs(written)
    assert sorted(p.name for p in (shared_dir / "bob").iterdir()) == ["secret.txt"]
