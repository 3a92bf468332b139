"""The task → Secret + Job translation: what a user's task becomes on Kubernetes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from pydantic import SecretStr

from ktes.backends.kubernetes import podspec
from ktes.config import Settings
from ktes.tes.models import Executor, Input, Output, Resources, Task


def make_task(**fields: Any) -> Task:
    base: dict[str, Any] = {
        "id": "01hx0abc",
        "executors": [Executor(image="localhost/busybox:test", command=["echo", "hi"])],
    }
    base.update(fields)
    return Task(**base)


def settings(**values: Any) -> Settings:
    return Settings(**{"k8s_installation_id": "inst1", **values})


CONFIG_MAP = "ktes-entrypoint-0123456789ab"
WITH_IO: dict[str, Any] = {
    "inputs": [Input(path="/data/in.txt", content="x")],
    "outputs": [Output(path="/data/out.txt", url="http://h/o")],
}


def job_of(task: Task, settings: Settings) -> dict[str, Any]:
    return podspec.job(task, settings, CONFIG_MAP)


def pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def container(job: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod_spec(job)
    for item in [*spec.get("initContainers", []), *spec["containers"]]:
        if item["name"] == name:
            found: dict[str, Any] = item
            return found
    raise AssertionError(f"no container {name}")


def test_one_job_named_and_labelled_after_the_task() -> None:
    job = job_of(make_task(), settings(k8s_ttl_seconds_after_finished=120))
    assert job["kind"] == "Job"
    assert job["metadata"]["name"] == "ktes-01hx0abc"
    labels = {"app.kubernetes.io/managed-by": "ktes", "ktes.installation": "inst1", "ktes.task-id": "01hx0abc"}
    assert job["metadata"]["labels"] == labels
    assert job["spec"]["template"]["metadata"]["labels"] == labels
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 1
    assert job["spec"]["ttlSecondsAfterFinished"] == 120
    assert "activeDeadlineSeconds" not in job["spec"]
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    assert spec["dnsPolicy"] == "ClusterFirst"


def test_dns_policy_and_images_come_from_settings() -> None:
    job = job_of(make_task(**WITH_IO), settings(k8s_dns_policy="Default", k8s_image="localhost/ktes:7"))
    assert pod_spec(job)["dnsPolicy"] == "Default"
    assert container(job, "stage-in")["image"] == "localhost/ktes:7"
    assert container(job, "stage-out")["image"] == "localhost/ktes:7"


def test_stage_in_then_each_executor_in_order_then_stage_out() -> None:
    executors = [
        Executor(image="alpine:3", command=["true"]),
        Executor(image="localhost/tool:2", command=["false"]),
        Executor(image="alpine:3", command=["ls"]),
    ]
    task = make_task(executors=executors, inputs=[Input(path="/data", url="s3://b/d/", type="DIRECTORY")])
    task.outputs = WITH_IO["outputs"]
    job = job_of(task, settings())
    spec = pod_spec(job)
    assert "initContainers" not in spec  # all start together: the helper keeps the order
    assert [c["name"] for c in spec["containers"]] == [
        "stage-in",
        "executor-0",
        "executor-1",
        "executor-2",
        "stage-out",
    ]
    assert [c["image"] for c in spec["containers"][1:4]] == ["alpine:3", "localhost/tool:2", "alpine:3"]
    podside = ["python3", "-m", "ktes.backends.kubernetes.podside"]
    assert container(job, "stage-in")["command"][:4] == [*podside, "stage-in"]
    assert container(job, "stage-out")["command"][:4] == [*podside, "stage-out"]
    # each executor waits for stage-in and for the one before it
    waits = [
        [c["command"][i + 1] for i, a in enumerate(c["command"]) if a == "--wait"] for c in spec["containers"][1:4]
    ]
    assert waits == [["stage-in.done"], ["stage-in.done", "0.json"], ["stage-in.done", "1.json"]]


def test_no_stage_containers_without_inputs_and_outputs() -> None:
    executors = [Executor(image="alpine:3", command=["true"]), Executor(image="alpine:3", command=["ls"])]
    spec = pod_spec(job_of(make_task(executors=executors), settings()))
    assert [c["name"] for c in spec["containers"]] == ["executor-0", "executor-1"]
    only_in = pod_spec(job_of(make_task(inputs=[Input(path="/in", url="s3://b/d/", type="DIRECTORY")]), settings()))
    assert [c["name"] for c in only_in["containers"]] == ["stage-in", "executor-0"]
    only_out = pod_spec(job_of(make_task(outputs=WITH_IO["outputs"]), settings()))
    assert [c["name"] for c in only_out["containers"]] == ["executor-0", "stage-out"]
    with_pvc = pod_spec(job_of(make_task(), settings(k8s_storage_class="fast")))
    assert [c["name"] for c in with_pvc["containers"]] == ["stage-in", "executor-0"]  # opens the volume to all


def test_an_input_file_mounted_as_itself_is_staged_before_the_executors_are_created() -> None:
    """The kubelet would make a missing subPath a directory: the file must be there when it creates them."""
    executors = [Executor(image="alpine:3", command=["true"]), Executor(image="alpine:3", command=["ls"])]
    inputs = [Input(path="/in/a.txt", url="s3://b/a.txt")]
    task = make_task(executors=executors, inputs=inputs, outputs=[Output(path="/out/b.txt", url="http://h/o")])
    spec = pod_spec(job_of(task, settings()))
    assert [c["name"] for c in spec["initContainers"]] == ["stage-in"]
    assert [c["name"] for c in spec["containers"]] == ["executor-0", "executor-1", "stage-out"]
    assert "stage-in.done" not in spec["containers"][0]["command"]
    below_a_directory = make_task(
        inputs=[Input(path="/data/in.txt", content="x")], outputs=[Output(path="/data/out.txt", url="http://h/o")]
    )
    assert "initContainers" not in pod_spec(job_of(below_a_directory, settings()))  # /data is the mount point


def test_the_helper_comes_from_a_config_map_named_after_its_content() -> None:
    binary = b"\x7fELF not really" * 100
    cm = podspec.entrypoint_config_map(binary)
    name = cm["metadata"]["name"]
    assert name.startswith("ktes-entrypoint-") and len(name) == len("ktes-entrypoint-") + 12
    assert podspec.entrypoint_config_map(binary + b"!")["metadata"]["name"] != name
    assert base64.b64decode(cm["binaryData"]["ktes-entrypoint"]) == binary
    assert cm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ktes"
    assert "ktes.task-id" not in cm["metadata"]["labels"]  # shared by the namespace's tasks: never swept
    job = job_of(make_task(), settings())
    volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    assert volumes["ktes-bin"] == {"name": "ktes-bin", "configMap": {"name": CONFIG_MAP, "defaultMode": 0o555}}
    mount = {"name": "ktes-bin", "mountPath": "/ktes/bin", "readOnly": True}
    assert mount in container(job, "executor-0")["volumeMounts"]


def test_executor_runs_its_argv_through_the_helper_without_a_shell() -> None:
    ex = Executor(
        image="alpine:3",
        command=["grep", "-c", "a b", "/data/in.txt"],
        stdin="/data/in.txt",
        stdout="/out/stdout.txt",
        stderr="/out/stderr.txt",
        ignore_error=True,
        workdir="/data",
        env={"A": "1", "B": "two words"},
    )
    job = job_of(make_task(executors=[ex]), settings())
    got = container(job, "executor-0")
    assert got["command"] == [
        "/ktes/bin/ktes-entrypoint",
        "--index",
        "0",
        "--state-dir",
        "/ktes/state",
        "--tail-bytes",
        "65536",
        "--termination-log",
        "/dev/termination-log",
        "--termination-limit",
        "4096",
        "--stdin",
        "/data/in.txt",
        "--stdout",
        "/out/stdout.txt",
        "--stderr",
        "/out/stderr.txt",
        "--ignore-error",
        "--",
        "grep",
        "-c",
        "a b",
        "/data/in.txt",
    ]
    assert "args" not in got
    assert got["workingDir"] == "/data"
    assert got["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "two words"}]


def test_plain_executor_has_no_optional_flags() -> None:
    got = container(job_of(make_task(), settings()), "executor-0")
    helper = ["/ktes/bin/ktes-entrypoint", "--index", "0", "--state-dir", "/ktes/state", "--tail-bytes", "65536"]
    message = ["--termination-log", "/dev/termination-log", "--termination-limit", "4096"]
    assert got["command"] == [*helper, *message, "--", "echo", "hi"]
    assert "workingDir" not in got and "env" not in got and "imagePullPolicy" not in got


def test_the_result_line_goes_to_the_termination_message_within_the_kubelets_share() -> None:
    """The kubelet keeps 12 KiB of termination messages per Pod, split evenly among its containers (at most
    4 KiB each): the helper writes its result line there only when it fits whole in its share."""
    ex = Executor(image="busybox", command=["true"])
    task = make_task(
        executors=[ex, ex, ex],
        inputs=[Input(path="/in/x", url="http://h/x")],
        outputs=[Output(path="/o", url="s3://b/o")],
    )
    job = job_of(task, settings())
    for name in ("executor-0", "executor-2"):
        got = container(job, name)
        at = got["command"].index("--termination-log")
        assert got["command"][at : at + 4] == [
            "--termination-log",
            "/dev/termination-log",
            "--termination-limit",
            "2457",
        ]
        assert got["terminationMessagePath"] == "/dev/termination-log"
        assert got["terminationMessagePolicy"] == "FallbackToLogsOnError"  # a helper that failed: its log tail


def test_executors_see_every_task_path_as_a_subpath_of_the_workspace() -> None:
    task = make_task(
        inputs=[Input(path="/data/in.txt", content="x"), Input(path="/ref/genome", url="http://h/g")],
        outputs=[Output(path="/out/*.txt", url="http://h/o/"), Output(path="/data/result", url="http://h/r")],
        volumes=["/vol/A"],
    )
    mounts = container(job_of(task, settings()), "executor-0")["volumeMounts"]
    assert mounts == [
        {"name": "workspace", "mountPath": "/data", "subPath": "data"},
        {"name": "workspace", "mountPath": "/out", "subPath": "out"},
        {"name": "workspace", "mountPath": "/ref/genome", "subPath": "ref/genome"},
        {"name": "workspace", "mountPath": "/vol/A", "subPath": "vol/A"},
        {"name": "ktes-state", "mountPath": "/ktes/state"},
        {"name": "ktes-bin", "mountPath": "/ktes/bin", "readOnly": True},
    ]
    stage_mounts = {m["mountPath"]: m["name"] for m in container(job_of(task, settings()), "stage-in")["volumeMounts"]}
    assert stage_mounts == {"/ktes/workspace": "workspace", "/ktes/state": "ktes-state", "/ktes/spec": "ktes-spec"}


def test_resources_policy() -> None:
    two = [Executor(image="a", command=["true"]), Executor(image="b", command=["true"])]
    task = make_task(executors=two, resources=Resources(cpu_cores=2, ram_gb=1.5, disk_gb=4), **WITH_IO)
    job = job_of(task, settings(k8s_stage_requests={"cpu": "50m"}, k8s_stage_limits={"memory": "256Mi"}))
    assert container(job, "executor-0")["resources"] == {
        "requests": {"cpu": "2", "memory": "1536Mi", "ephemeral-storage": "4096Mi"},
        "limits": {"memory": "1536Mi"},
    }
    # the scheduler adds up the containers' requests: the next executor only waits while executor 0 runs
    assert container(job, "executor-1")["resources"] == {"requests": {"memory": "8Mi"}, "limits": {"memory": "1536Mi"}}
    tiny = job_of(make_task(executors=two, resources=Resources(ram_gb=0.001)), settings())
    assert container(tiny, "executor-1")["resources"] == {"requests": {"memory": "2Mi"}, "limits": {"memory": "2Mi"}}
    assert container(job, "stage-in")["resources"] == {"requests": {"cpu": "50m"}, "limits": {"memory": "256Mi"}}
    volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    assert volumes["workspace"] == {"name": "workspace", "emptyDir": {"sizeLimit": "4096Mi"}}
    assert volumes["ktes-spec"]["secret"]["secretName"] == "ktes-01hx0abc"


def test_no_resources_asked_means_no_requests() -> None:
    job = job_of(make_task(), settings())
    assert container(job, "executor-0")["resources"] == {}
    assert {"name": "workspace", "emptyDir": {}} in pod_spec(job)["volumes"]


def test_storage_class_gives_a_generic_ephemeral_volume() -> None:
    task = make_task(resources=Resources(disk_gb=2))
    job = job_of(task, settings(k8s_storage_class="standard"))
    volume = next(v for v in pod_spec(job)["volumes"] if v["name"] == "workspace")
    claim = volume["ephemeral"]["volumeClaimTemplate"]
    assert claim["spec"]["storageClassName"] == "standard"
    assert claim["spec"]["resources"]["requests"]["storage"] == "2048Mi"
    assert "ephemeral-storage" not in container(job, "executor-0")["resources"].get("requests", {})
    unsized = job_of(make_task(), settings(k8s_storage_class="standard", k8s_default_disk_gb=1))
    volume = next(v for v in pod_spec(unsized)["volumes"] if v["name"] == "workspace")
    assert volume["ephemeral"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "1024Mi"


def test_backend_parameters_map_to_the_pod() -> None:
    given = {
        "Node_Selector": "disk=ssd, pool=batch",
        "tolerations": '[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]',
        "priority_class": "low",
        "service_account": "runner",
        "queue": "team-a",
        "deadline_seconds": "3600",
        "image_pull_policy": "never",
    }
    job = job_of(make_task(resources=Resources(backend_parameters=given)), settings())
    spec = pod_spec(job)
    assert spec["nodeSelector"] == {"disk": "ssd", "pool": "batch"}
    assert spec["tolerations"] == [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["priorityClassName"] == "low"
    assert spec["serviceAccountName"] == "runner"
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert job["spec"]["activeDeadlineSeconds"] == 3600
    assert container(job, "executor-0")["imagePullPolicy"] == "Never"
    assert set(podspec.BACKEND_PARAMETERS) == {
        "node_selector",
        "tolerations",
        "priority_class",
        "service_account",
        "queue",
        "deadline_seconds",
        "image_pull_policy",
    }


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("node_selector", "just-a-key"),
        ("tolerations", "{not json"),
        ("tolerations", "[1, 2]"),
        ("deadline_seconds", "soon"),
        ("deadline_seconds", "-5"),
        ("image_pull_policy", "sometimes"),
    ],
)
def test_malformed_backend_parameter_is_named_in_the_error(key: str, value: str) -> None:
    task = make_task(resources=Resources(backend_parameters={key: value}))
    with pytest.raises(podspec.PodSpecError, match=key):
        job_of(task, settings())


def test_settings_defaults_for_account_deadline_and_pull_policy() -> None:
    job = job_of(
        make_task(),
        settings(
            k8s_service_account="ktes-tasks", k8s_active_deadline_seconds=60, k8s_executor_image_pull_policy="Always"
        ),
    )
    assert pod_spec(job)["serviceAccountName"] == "ktes-tasks"
    assert job["spec"]["activeDeadlineSeconds"] == 60
    assert container(job, "executor-0")["imagePullPolicy"] == "Always"


def test_preemptible_and_zones_use_the_configured_node_selection() -> None:
    conf = settings(
        k8s_preemptible_node_selector={"cloud.google.com/gke-spot": "true"},
        k8s_preemptible_tolerations=[{"key": "spot", "operator": "Exists"}],
        k8s_zone_label="topology.kubernetes.io/zone",
    )
    task = make_task(resources=Resources(preemptible=True, zones=["eu-1a", "eu-1b"]))
    spec = pod_spec(job_of(task, conf))
    assert spec["nodeSelector"] == {"cloud.google.com/gke-spot": "true"}
    assert spec["tolerations"] == [{"key": "spot", "operator": "Exists"}]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [
        {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["eu-1a", "eu-1b"]}]}
    ]
    plain = pod_spec(job_of(make_task(resources=Resources(preemptible=False)), conf))
    assert "nodeSelector" not in plain and "tolerations" not in plain and "affinity" not in plain


def test_secret_holds_the_task_and_the_filer_credentials_the_job_does_not() -> None:
    conf = settings(
        s3_endpoint_url="http://192.0.2.2:9000",
        s3_access_key_id=SecretStr("AKIDEXAMPLE"),
        s3_secret_access_key=SecretStr("very-secret-key"),
        s3_path_style=True,
    )
    task = make_task(name="my task", inputs=[Input(path="/data/a.txt", content="hello")], outputs=WITH_IO["outputs"])
    secret = podspec.secret(task, conf)
    assert secret["metadata"]["name"] == "ktes-01hx0abc"
    assert secret["metadata"]["labels"]["ktes.task-id"] == "01hx0abc"
    document = json.loads(secret["stringData"]["task.json"])
    assert document["id"] == "01hx0abc" and document["inputs"][0]["content"] == "hello"
    assert secret["stringData"]["s3-secret-access-key"] == "very-secret-key"

    job = job_of(task, conf)
    assert "very-secret-key" not in json.dumps(job) and "AKIDEXAMPLE" not in json.dumps(job)
    env = {e["name"]: e for e in container(job, "stage-in")["env"]}
    assert env["KTES_S3_ENDPOINT_URL"]["value"] == "http://192.0.2.2:9000"
    assert env["KTES_S3_PATH_STYLE"]["value"] == "true"
    assert env["KTES_TRANSFER_RETRIES"]["value"] == str(conf.transfer_retries)  # the stage containers retry alike
    assert env["KTES_S3_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "ktes-01hx0abc",
        "key": "s3-secret-access-key",
    }
    assert container(job, "stage-out")["env"] == container(job, "stage-in")["env"]
    assert "env" not in container(job, "executor-0")  # the user's executors never see ktes' settings


def test_owner_reference_points_at_the_created_job() -> None:
    created = {"metadata": {"name": "ktes-01hx0abc", "uid": "1234-abcd"}}
    assert podspec.owner_reference(created) == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": "ktes-01hx0abc",
        "uid": "1234-abcd",
        "blockOwnerDeletion": False,
    }


def test_a_task_without_inputs_or_outputs_has_no_secret_volume() -> None:
    """Only stage-in and stage-out read the task document: without them the Pod mounts no Secret (and the
    backend makes none: two writes fewer per task)."""
    plain = make_task()
    assert not podspec.needs_secret(plain, settings())
    assert "ktes-spec" not in {v["name"] for v in pod_spec(job_of(plain, settings()))["volumes"]}
    staged = make_task(outputs=[Output(path="/out/a", url="s3://b/a")])
    assert podspec.needs_secret(staged, settings())
    assert "ktes-spec" in {v["name"] for v in pod_spec(job_of(staged, settings()))["volumes"]}
