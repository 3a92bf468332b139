"""file:// on Kubernetes through a shared volume, installations in one namespace, and notes on long waits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ktes.backends.kubernetes import filevolume, podspec, waiting
from ktes.backends.kubernetes.installation import installation_id, lease_name, with_installation
from ktes.backends.kubernetes.status import Observed
from ktes.capabilities import Capabilities
from ktes.config import Settings
from ktes.errors import InvalidTask, StartupError
from ktes.tes.models import Executor, Input, Output, Task
from ktes.tes.validation import Limits, validate_task


def k8s(**values: Any) -> Settings:
    return Settings(**{"backend": "kubernetes", "k8s_installation_id": "inst1", **values})


def a_task(**fields: Any) -> Task:
    return Task(id="t1", executors=[Executor(image="busybox", command=["true"])], **fields)


# --- file:// ------------------------------------------------------------------------------------------


def test_without_a_shared_volume_file_urls_are_refused_at_post_naming_the_field_and_why() -> None:
    refused = filevolume.refused_schemes(k8s())
    capabilities = Capabilities(("http", "https", "s3"), (), refused)
    task = Task(
        executors=[Executor(image="busybox", command=["true"])],
        inputs=[Input(path="/in/a", url="http://h/a"), Input(path="/in/b", url="file:///tmp/b")],
    )
    with pytest.raises(InvalidTask) as caught:
        validate_task(task, capabilities, Limits())
    assert caught.value.field == "inputs[1].url"
    assert "shared with the cluster" in caught.value.message and "k8s_file_volume" in caught.value.message
    plain_path = Task(executors=task.executors, outputs=[Output(path="/out/x", url="/data/x")])
    with pytest.raises(InvalidTask) as caught:
        validate_task(plain_path, capabilities, Limits())
    assert caught.value.field == "outputs[0].url"


def test_with_a_shared_volume_nothing_is_refused() -> None:
    assert filevolume.refused_schemes(k8s(k8s_file_volume="hostpath:/srv/data")) == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hostpath:/srv/data", filevolume.FileVolume("hostpath", "/srv/data", "/srv/data")),
        ("hostpath:/srv/data/", filevolume.FileVolume("hostpath", "/srv/data", "/srv/data")),
        ("pvc:shared-fs:/mnt/shared", filevolume.FileVolume("pvc", "shared-fs", "/mnt/shared")),
    ],
)
def test_file_volume_settings(value: str, expected: filevolume.FileVolume) -> None:
    assert filevolume.parse(value) == expected


@pytest.mark.parametrize(
    "value", ["hostpath:relative", "hostpath:/", "hostpath:/ktes/x", "pvc:shared", "pvc:Bad_Name:/x", "nfs:/x"]
)
def test_bad_file_volume_settings_are_a_startup_error(value: str) -> None:
    with pytest.raises(StartupError, match="k8s_file_volume"):
        filevolume.parse(value)


def test_allowed_roots_default_to_the_volume_and_must_lie_in_it() -> None:
    assert filevolume.allowed_roots(k8s()) == []
    assert filevolume.allowed_roots(k8s(k8s_file_volume="hostpath:/srv")) == ["/srv"]
    assert filevolume.allowed_roots(k8s(k8s_file_volume="hostpath:/srv", file_allowed_roots=["/srv/a"])) == ["/srv/a"]
    with pytest.raises(StartupError, match="/srv2 is not in the shared volume"):
        filevolume.allowed_roots(k8s(k8s_file_volume="hostpath:/srv", file_allowed_roots=["/srv2"]))


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container["env"]}


def test_a_task_with_file_urls_mounts_the_volume_in_the_stage_containers_only() -> None:
    settings = k8s(k8s_file_volume="hostpath:/srv/data")
    task = a_task(
        inputs=[Input(path="/in/a", url="file:///srv/data/a")], outputs=[Output(path="/out/b", url="/srv/data/b")]
    )
    job = podspec.job(task, settings, "cm")
    pod = job["spec"]["template"]["spec"]
    assert {"name": "ktes-files", "hostPath": {"path": "/srv/data", "type": "Directory"}} in pod["volumes"]
    containers = [*pod.get("initContainers", []), *pod["containers"]]
    mounts = {c["name"]: [m for m in c["volumeMounts"] if m["name"] == "ktes-files"] for c in containers}
    assert mounts["stage-in"] == [{"name": "ktes-files", "mountPath": "/srv/data", "readOnly": True}]
    assert mounts["stage-out"] == [{"name": "ktes-files", "mountPath": "/srv/data", "readOnly": False}]
    assert mounts["executor-0"] == []
    stage_in = next(c for c in containers if c["name"] == "stage-in")
    assert _env(stage_in)["KTES_FILE_ALLOWED_ROOTS"] == '["/srv/data"]'


def test_a_task_without_file_urls_gets_no_volume_and_pods_read_no_file_of_their_own() -> None:
    task = a_task(inputs=[Input(path="/in/a", url="http://h/a")])
    for settings in (k8s(), k8s(k8s_file_volume="pvc:fs:/mnt/fs")):
        pod = podspec.job(task, settings, "cm")["spec"]["template"]["spec"]
        assert [v["name"] for v in pod["volumes"] if v["name"] == "ktes-files"] == []
    pod = podspec.job(task, k8s(), "cm")["spec"]["template"]["spec"]
    assert _env(pod["initContainers"][0])["KTES_FILE_ALLOWED_ROOTS"] == "[]"


def test_a_users_stage_containers_may_reach_only_that_users_roots() -> None:
    # The stage containers apply KTES_FILE_ALLOWED_ROOTS themselves, with links resolved when they stage (a
    # link made after POST is caught there): with per-user roots it holds the owner's only, '{user}' filled in.
    settings = k8s(
        k8s_file_volume="hostpath:/srv/data",
        auth="basic",
        file_user_roots=["/srv/data/home/{user}", "/srv/data/projects/{user}/in", "/not-shared/{user}"],
    )
    inputs = [Input(path="/in/a", url="file:///srv/data/home/alice/a")]

    def stage_env(owner: str | None) -> dict[str, str]:
        pod = podspec.job(a_task(inputs=inputs, owner=owner), settings, "cm")["spec"]["template"]["spec"]
        return _env(next(c for c in [*pod.get("initContainers", []), *pod["containers"]] if c["name"] == "stage-in"))

    alices = stage_env("alice")
    assert alices["KTES_FILE_ALLOWED_ROOTS"] == '["/srv/data/home/alice", "/srv/data/projects/alice/in"]'
    assert "KTES_FILE_USER_ROOTS" not in alices  # the other users' roots are no business of this Pod
    assert stage_env("../bob")["KTES_FILE_ALLOWED_ROOTS"] == "[]"  # a name that would step out gets no root
    assert stage_env(None)["KTES_FILE_ALLOWED_ROOTS"] == '["/srv/data"]'  # stored before auth: the admins' only


def test_a_pvc_volume() -> None:
    settings = k8s(k8s_file_volume="pvc:fs:/mnt/fs")
    task = a_task(outputs=[Output(path="/out/b", url="file:///mnt/fs/b")])
    pod = podspec.job(task, settings, "cm")["spec"]["template"]["spec"]
    assert {"name": "ktes-files", "persistentVolumeClaim": {"claimName": "fs"}} in pod["volumes"]


# --- installations ---------------------------------------------------------------------------------------


def test_sqlite_installations_keep_a_random_id_beside_their_database(tmp_path: Path) -> None:
    one = Settings(data_dir=tmp_path / "one")
    two = Settings(data_dir=tmp_path / "two")
    first = installation_id(one)
    assert installation_id(one) == first  # kept
    assert (tmp_path / "one" / "ktes.db.installation-id").read_text().strip() == first
    assert installation_id(two) != first
    assert lease_name(one) == f"ktes-engine-{first}"
    assert lease_name(Settings(data_dir=tmp_path / "one", k8s_lease_name="mine")) == "mine"


def test_postgresql_replicas_share_an_id_and_other_databases_differ() -> None:
    url = "postgresql+psycopg://ktes:secret@db:5432/ktes"
    same = installation_id(Settings(database_url="postgresql+psycopg://other:pw@db:5432/ktes"))
    assert installation_id(Settings(database_url=url)) == same  # the credentials do not count
    assert installation_id(Settings(database_url="postgresql+psycopg://ktes:secret@db:5432/ktes2")) != same


def test_an_explicit_id_is_checked() -> None:
    assert with_installation(Settings(k8s_installation_id="blue")).k8s_installation_id == "blue"
    with pytest.raises(StartupError, match="not a Kubernetes label value"):
        installation_id(Settings(k8s_installation_id="no/slash"))


def test_every_object_carries_the_installation_and_the_selector_picks_only_its_own() -> None:
    settings = k8s()
    task = a_task()
    labels = podspec.job(task, settings, "cm")["metadata"]["labels"]
    assert labels["ktes.installation"] == "inst1"
    assert podspec.secret(task, settings)["metadata"]["labels"]["ktes.installation"] == "inst1"
    assert podspec.installation_selector(settings) == "app.kubernetes.io/managed-by=ktes,ktes.installation=inst1"


# --- what a waiting task is told ---------------------------------------------------------------------------


def pod(status: dict[str, Any], containers: tuple[str, ...] = ("stage-in", "executor-0")) -> dict[str, Any]:
    spec = {"containers": [{"name": name, "image": f"img-{name}"} for name in containers]}
    return {"metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": spec, "status": status}


def test_waits_are_named() -> None:
    assert waiting.waiting_for(Observed(job={"metadata": {}}), 1) == waiting.Wait(
        "no-pod", "waiting for Kubernetes to make the task's pod (a quota or an admission policy?)"
    )
    unscheduled = {"conditions": [{"type": "PodScheduled", "status": "False", "message": "0/1 nodes are available"}]}
    found = waiting.waiting_for(Observed(pods=[pod(unscheduled)]), 1)
    assert found is not None and found.sentence == "waiting for a node to run the task's pod: 0/1 nodes are available"
    pulling = {
        "containerStatuses": [
            {"name": "stage-in", "state": {"running": {}}},
            {"name": "executor-0", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off"}}},
        ]
    }
    found = waiting.waiting_for(Observed(pods=[pod(pulling)]), 1)
    assert found is not None and found.sentence.startswith("waiting for image img-executor-0 (executor-0) to be pulled")
    staging = {
        "containerStatuses": [
            {"name": "stage-in", "state": {"running": {}}},
            {"name": "executor-0", "state": {"running": {}}},
        ]
    }
    assert waiting.waiting_for(Observed(pods=[pod(staging)]), 1) == waiting.Wait(
        "stage-in", "still staging the inputs", "stage-in"
    )
    running = {"containerStatuses": [{"name": "executor-0", "state": {"running": {}}}]}
    assert waiting.waiting_for(Observed(pods=[pod(running, ("executor-0",))]), 1) is None


def test_the_last_retry_of_a_stage_container_says_why_it_is_slow() -> None:
    log = (
        "INFO:ktes.filer.staging:input a\n"
        "WARNING:ktes.filer.retry:download failed (http://h/x: cannot connect ([Errno 113] No route to host)); "
        "retrying in 2.0 s\n"
    )
    assert waiting.last_retry(log) == (
        "download failed (http://h/x: cannot connect ([Errno 113] No route to host)); retrying in 2.0 s"
    )
    assert waiting.last_retry("nothing\n") is None


# --- ktes serve's start-up failures -------------------------------------------------------------------------


def test_serve_says_in_one_sentence_why_it_cannot_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ktes.cli.main import app

    for key in [k for k in os.environ if k.startswith("KTES_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("KTES_K8S_FILE_VOLUME", "nfs:/x")
    monkeypatch.setenv("KTES_LOG_LEVEL", "warning")
    result = CliRunner().invoke(app, ["serve", "--backend", "kubernetes", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1] == (
        "ktes serve: k8s_file_volume: expected hostpath:/PATH or pvc:NAME:/PATH, got 'nfs:/x'"
    )
