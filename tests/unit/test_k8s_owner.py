"""On Kubernetes, a task's owner is a label on its Job and Pod, and may choose the Kueue LocalQueue."""

from __future__ import annotations

import re

from ktes.backends.kubernetes import podspec
from ktes.backends.kubernetes.owner_labels import owner_label_value
from ktes.config import Settings
from ktes.tes.models import Executor, Resources, Task

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def owned(owner: str | None, **params: str) -> Task:
    resources = Resources(backend_parameters=params) if params else None
    task = Task(id="01hx0abc", executors=[Executor(image="busybox", command=["true"])], resources=resources)
    task.owner = owner
    return task


def labels(task: Task, settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    job = podspec.job(task, settings, "ktes-entrypoint-0123456789ab")
    return job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]


def test_the_owner_labels_job_and_pod() -> None:
    job_labels, pod_labels = labels(owned("alice"), Settings(k8s_installation_id="inst1"))
    assert job_labels["ktes.owner"] == pod_labels["ktes.owner"] == "alice"
    job_labels, pod_labels = labels(owned(None), Settings(k8s_installation_id="inst1"))
    assert "ktes.owner" not in job_labels and "ktes.owner" not in pod_labels


def test_owner_label_values_are_valid_and_distinct() -> None:
    names = ["alice@example.org", "alice_example.org", "x" * 200, "-weird-", "https://idp/sub/123", "ünïcode", "a"]
    values = [owner_label_value(name) for name in names]
    assert all(LABEL_VALUE.match(v) and len(v) <= 63 for v in values), values
    assert len(set(values)) == len(values)
    assert owner_label_value("alice") == "alice"


def test_the_operators_queue_mapping_wins_over_the_tasks_queue() -> None:
    queue = "kueue.x-k8s.io/queue-name"
    mapping = Settings(k8s_installation_id="inst1", k8s_user_queues={"alice": "team-a", "*": "shared"})
    assert labels(owned("alice", queue="team-b"), mapping)[0][queue] == "team-a"
    assert labels(owned("bob"), mapping)[0][queue] == "shared"
    assert labels(owned("bob", queue="team-b"), Settings(k8s_installation_id="inst1"))[0][queue] == "team-b"
    assert queue not in labels(owned("bob"), Settings(k8s_installation_id="inst1"))[0]
