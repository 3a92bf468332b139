"""A task as Kubernetes objects: the Secret holding its document and the Job whose one Pod runs it. Pure.

The Pod follows the contract in :mod:`ktes.backends.kubernetes`. Objects are plain dicts in the API's own
JSON shape (camelCase), so they can be compared with what ``kubectl get -o json`` shows.

Resources policy. All containers of the Pod are regular containers, started together (the order is kept by
the entrypoint helper, see :mod:`ktes.backends.kubernetes`), so the scheduler adds up their requests. The
executors run one at a time, so the task's requests go on ``executor-0`` only:

- ``cpu_cores`` → ``requests.cpu`` of executor 0; no CPU limit (a limit throttles, it protects nothing).
- ``ram_gb`` → ``limits.memory`` of every executor (in MiB of 1024² bytes; ``ram_gb`` is read as GiB, so a
  task never gets less than it asked): exceeding it is a real OOM kill of that executor, reported as such;
  ``requests.memory`` is ``ram_gb`` on executor 0 and :data:`WAITING_MEMORY` on the others (an explicit
  request, or Kubernetes would make it equal to the limit).
- ``disk_gb`` → the workspace ``emptyDir.sizeLimit`` and ``requests.ephemeral-storage`` of executor 0 (so
  the scheduler picks a node with room); with ``k8s_storage_class``, the size of the generic ephemeral
  volume instead (``k8s_default_disk_gb`` when unset).
- stage-in/stage-out (only there when the task has inputs/outputs): ``k8s_stage_requests`` /
  ``k8s_stage_limits`` (small, fixed), added to the task's.

``backend_parameters`` (keys lowercase): see :data:`BACKEND_PARAMETERS`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import posixpath
from typing import Any

from pydantic import SecretStr

from ktes.backends.kubernetes import filevolume
from ktes.backends.kubernetes.installation import INSTALLATION_LABEL
from ktes.backends.kubernetes.owner_labels import owner_labels, user_queue
from ktes.config import Settings
from ktes.errors import BackendError
from ktes.run.result import STAGE_IN_DONE, result_file, termination_limit
from ktes.tes.layout import mount_points
from ktes.tes.models import FileType, Task, dump

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "ktes"
TASK_ID_LABEL = "ktes.task-id"
#: selects everything ktes made in its namespace.
SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"

SPEC_DIR = "/ktes/spec"
SPEC_KEY = "task.json"
WORKSPACE_DIR = "/ktes/workspace"
STATE_DIR = "/ktes/state"
BIN_DIR = "/ktes/bin"
#: every container's terminationMessagePath (the Kubernetes default, named so the helper can be told it).
TERMINATION_LOG = "/dev/termination-log"
#: the helper's key in its ConfigMap, and so its file name in BIN_DIR.
ENTRYPOINT_KEY = "ktes-entrypoint"
ENTRYPOINT = f"{BIN_DIR}/{ENTRYPOINT_KEY}"
ENTRYPOINT_CONFIG_MAP_PREFIX = "ktes-entrypoint-"
#: labels the helper's ConfigMaps (one per namespace and helper version; not per task).
ENTRYPOINT_LABEL = "ktes.entrypoint"

STAGE_IN = "stage-in"
STAGE_OUT = "stage-out"
WORKSPACE_VOLUME = "workspace"
STATE_VOLUME = "ktes-state"
BIN_VOLUME = "ktes-bin"
SPEC_VOLUME = "ktes-spec"
#: the memory request of an executor container while it waits for its turn (the helper needs < 1 MiB).
WAITING_MEMORY = "8Mi"

#: backend_parameters this backend honours, and what each one does.
BACKEND_PARAMETERS: dict[str, str] = {
    "node_selector": 'node labels the Pod must match: "key=value,key2=value2"',
    "tolerations": "a JSON list of Kubernetes tolerations",
    "priority_class": "the Pod's priorityClassName",
    "service_account": "the Pod's serviceAccountName (its token is still not mounted)",
    "queue": "sets the queue label (k8s_queue_label, Kueue's by default) on the Job",
    "deadline_seconds": "the Job's activeDeadlineSeconds: the task fails with SYSTEM_ERROR after that long",
    "image_pull_policy": "the executors' imagePullPolicy: Always, IfNotPresent or Never",
}

#: settings groups passed to the stage containers (secret ones through the Secret).
_FILER_SETTINGS_PREFIXES = ("s3_", "ftp_", "http_", "transfer_", "file_", "drs_")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")


class PodSpecError(BackendError):
    """The task cannot be turned into a Pod (a malformed backend parameter). The message says which."""


def job_name(task_id: str) -> str:
    """The fixed name of the task's Job and Secret (so creating them again is "already exists")."""
    return f"ktes-{task_id}"


def installation_selector(settings: Settings) -> str:
    """Selects everything this installation made in its namespace (``k8s_installation_id`` resolved)."""
    return f"{SELECTOR},{INSTALLATION_LABEL}={settings.k8s_installation_id}"


def labels(task_id: str, settings: Settings) -> dict[str, str]:
    """Every object of a task: made by ktes, by this installation, for this task."""
    assert settings.k8s_installation_id, "the backend resolves the installation id first"
    return {MANAGED_BY_LABEL: MANAGED_BY, INSTALLATION_LABEL: settings.k8s_installation_id, TASK_ID_LABEL: task_id}


def params(task: Task) -> dict[str, str]:
    """The task's backend_parameters with lowercase keys."""
    given = (task.resources.backend_parameters if task.resources else None) or {}
    return {key.lower(): value for key, value in given.items()}


# --- the Secret ------------------------------------------------------------------------------------


def _setting_key(name: str) -> str:
    return name.replace("_", "-")


def secret(task: Task, settings: Settings) -> dict[str, Any]:
    """The Secret ``ktes-<id>``: the task document (``task.json``) and the filer's secret settings."""
    assert task.id is not None
    data = {SPEC_KEY: json.dumps(dump(task), separators=(",", ":"))}
    for name, value in _filer_settings(task, settings).items():
        if isinstance(value, SecretStr):
            data[_setting_key(name)] = value.get_secret_value()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": job_name(task.id), "labels": labels(task.id, settings)},
        "type": "Opaque",
        "stringData": data,
    }


def owner_reference(job: dict[str, Any]) -> dict[str, Any]:
    """An ownerReference to a created Job (for the Secret: deleted with the Job)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": job["metadata"]["name"],
        "uid": job["metadata"]["uid"],
        "blockOwnerDeletion": False,
    }


def entrypoint_config_map(binary: bytes) -> dict[str, Any]:
    """The ConfigMap ``ktes-entrypoint-<sha12>`` holding the static helper (named after its content, so a
    new helper gets a new ConfigMap and Pods of the old one keep theirs). Under 1 MiB, as every ConfigMap."""
    digest = hashlib.sha256(binary).hexdigest()[:12]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": ENTRYPOINT_CONFIG_MAP_PREFIX + digest,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, ENTRYPOINT_LABEL: digest},
        },
        "binaryData": {ENTRYPOINT_KEY: base64.b64encode(binary).decode("ascii")},
        "immutable": True,
    }


def needs_stage_in(task: Task, settings: Settings) -> bool:
    """stage-in runs when there are inputs to fetch, or a storage class's volume to open to all users."""
    return bool(task.inputs) or settings.k8s_storage_class is not None


def stage_in_first(task: Task) -> bool:
    """Whether stage-in must end before the executor containers are even created (an init container).

    An input FILE that is its own mount point is a file ``subPath``: the kubelet makes a missing ``subPath``
    a directory when it creates the container, so the file must be there by then. Otherwise stage-in runs
    alongside the executors, which wait for ``stage-in.done``.
    """
    points = set(mount_points(task))
    return any(inp.type != FileType.DIRECTORY and posixpath.normpath(inp.path) in points for inp in task.inputs or [])


def needs_stage_out(task: Task) -> bool:
    return bool(task.outputs)


def needs_secret(task: Task, settings: Settings) -> bool:
    """Whether the task needs its Secret: only stage-in and stage-out read the task document and the filer's
    settings. A task without inputs or outputs has none: two writes fewer, and no Secret volume for the
    kubelet to fetch and watch for its Pod (see docs/scale.md)."""
    return needs_stage_in(task, settings) or needs_stage_out(task)


def _filer_settings(task: Task, settings: Settings) -> dict[str, Any]:
    """The settings the pod-side filer needs (every ``s3_*``, ``ftp_*``, ``http_*``, ``transfer_*``, ... set)."""
    values = settings.model_dump()
    chosen = {
        name: getattr(settings, name)
        for name, value in values.items()
        if name.startswith(_FILER_SETTINGS_PREFIXES) and value is not None and name != "file_user_roots"
    }
    chosen["k8s_log_tail_bytes"] = settings.k8s_log_tail_bytes
    # always explicit: without a shared volume a Pod may read no file of its own through file://; with
    # per-user roots, only the owner's (the stage containers check them, links resolved, when they stage)
    chosen["file_allowed_roots"] = filevolume.task_roots(task, settings)
    return chosen


def _stage_env(task: Task, settings: Settings) -> list[dict[str, Any]]:
    assert task.id is not None
    env: list[dict[str, Any]] = [{"name": "KTES_LOG_LEVEL", "value": settings.log_level}]
    for name, value in _filer_settings(task, settings).items():
        var = f"KTES_{name.upper()}"
        if isinstance(value, SecretStr):
            ref = {"name": job_name(task.id), "key": _setting_key(name)}
            env.append({"name": var, "valueFrom": {"secretKeyRef": ref}})
        elif isinstance(value, list | dict):
            env.append({"name": var, "value": json.dumps(value, default=str)})
        elif isinstance(value, bool):
            env.append({"name": var, "value": "true" if value else "false"})
        else:
            env.append({"name": var, "value": str(value)})
    return env


# --- resources -------------------------------------------------------------------------------------


def _mib(gb: float) -> str:
    return f"{max(1, math.ceil(gb * 1024))}Mi"


def executor_resources(task: Task, settings: Settings, index: int = 0) -> dict[str, dict[str, str]]:
    """Executor 0 requests the task's resources; the others only wait while it runs (see the policy)."""
    res = task.resources
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if res is not None and res.cpu_cores and index == 0:
        requests["cpu"] = str(res.cpu_cores)
    if res is not None and res.ram_gb:
        limits["memory"] = _mib(res.ram_gb)
        requests["memory"] = limits["memory"] if index == 0 else min(limits["memory"], WAITING_MEMORY, key=_bytes)
    if res is not None and res.disk_gb and not settings.k8s_storage_class and index == 0:
        requests["ephemeral-storage"] = _mib(res.disk_gb)
    out: dict[str, dict[str, str]] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _bytes(quantity: str) -> int:
    """A quantity in ``Mi`` (the only unit this module writes) as bytes."""
    return int(quantity.removesuffix("Mi")) * 1024 * 1024


def _stage_resources(settings: Settings) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    if settings.k8s_stage_requests:
        out["requests"] = dict(settings.k8s_stage_requests)
    if settings.k8s_stage_limits:
        out["limits"] = dict(settings.k8s_stage_limits)
    return out


# --- volumes and containers ------------------------------------------------------------------------


def _workspace_volume(task: Task, settings: Settings) -> dict[str, Any]:
    disk_gb = task.resources.disk_gb if task.resources else None
    if settings.k8s_storage_class:
        size = _mib(disk_gb or settings.k8s_default_disk_gb)
        claim = {
            "metadata": {"labels": labels(task.id or "", settings)},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": settings.k8s_storage_class,
                "resources": {"requests": {"storage": size}},
            },
        }
        return {"name": WORKSPACE_VOLUME, "ephemeral": {"volumeClaimTemplate": claim}}
    empty: dict[str, Any] = {}
    if disk_gb:
        empty["sizeLimit"] = _mib(disk_gb)
    return {"name": WORKSPACE_VOLUME, "emptyDir": empty}


def _stage_container(
    name: str, task: Task, settings: Settings, files: filevolume.FileVolume | None = None
) -> dict[str, Any]:
    command = [
        "python3",
        "-m",
        "ktes.backends.kubernetes.podside",
        name,
        "--task",
        f"{SPEC_DIR}/{SPEC_KEY}",
        "--workspace",
        WORKSPACE_DIR,
        "--state",
        STATE_DIR,
    ]
    return {
        "name": name,
        "image": settings.k8s_image,
        "imagePullPolicy": settings.k8s_image_pull_policy,
        "command": command,
        "env": _stage_env(task, settings),
        "resources": _stage_resources(settings),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": WORKSPACE_VOLUME, "mountPath": WORKSPACE_DIR},
            {"name": STATE_VOLUME, "mountPath": STATE_DIR},
            {"name": SPEC_VOLUME, "mountPath": SPEC_DIR, "readOnly": True},
            *([files.mount(read_only=name == STAGE_IN)] if files is not None else []),
        ],
    }


def executor_container_name(index: int) -> str:
    return f"executor-{index}"


def _executor_container(
    task: Task, index: int, settings: Settings, pull_policy: str | None, after_stage_in: bool, containers: int
) -> dict[str, Any]:
    ex = task.executors[index]
    argv = [ENTRYPOINT, "--index", str(index), "--state-dir", STATE_DIR]
    if after_stage_in:
        argv += ["--wait", STAGE_IN_DONE]
    if index > 0:
        argv += ["--wait", result_file(index - 1)]
    argv += ["--tail-bytes", str(settings.k8s_log_tail_bytes)]
    # the result line also as the termination message when it fits (the watch brings it: no log read)
    argv += ["--termination-log", TERMINATION_LOG, "--termination-limit", str(termination_limit(containers))]
    if ex.stdin:
        argv += ["--stdin", ex.stdin]
    if ex.stdout:
        argv += ["--stdout", ex.stdout]
    if ex.stderr:
        argv += ["--stderr", ex.stderr]
    if ex.ignore_error:
        argv.append("--ignore-error")
    argv += ["--", *ex.command]
    mounts: list[dict[str, Any]] = [
        {"name": WORKSPACE_VOLUME, "mountPath": point, "subPath": posixpath.normpath(point).lstrip("/")}
        for point in mount_points(task)
    ]
    mounts.append({"name": STATE_VOLUME, "mountPath": STATE_DIR})
    mounts.append({"name": BIN_VOLUME, "mountPath": BIN_DIR, "readOnly": True})
    container: dict[str, Any] = {
        "name": executor_container_name(index),
        "image": ex.image,
        "command": argv,
        "resources": executor_resources(task, settings, index),
        "volumeMounts": mounts,
        # the command's own output goes to files; the container's log is the helper's (its result line)
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if pull_policy:
        container["imagePullPolicy"] = pull_policy
    if ex.workdir:
        container["workingDir"] = ex.workdir
    if ex.env:
        container["env"] = [{"name": key, "value": value} for key, value in ex.env.items()]
    return container


# --- scheduling ------------------------------------------------------------------------------------


def _node_selector(value: str) -> dict[str, str]:
    selector: dict[str, str] = {}
    for pair in value.split(","):
        if not pair.strip():
            continue
        key, sep, val = pair.partition("=")
        if not sep or not key.strip():
            raise PodSpecError(f'backend parameter node_selector: expected "key=value,...", got {value!r}')
        selector[key.strip()] = val.strip()
    return selector


def _tolerations(value: str) -> list[dict[str, Any]]:
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise PodSpecError(f"backend parameter tolerations: not JSON ({exc})") from None
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list) or not all(isinstance(item, dict) for item in parsed):
        raise PodSpecError("backend parameter tolerations: expected a JSON list of tolerations")
    return parsed


def _positive_int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise PodSpecError(f"backend parameter {name}: expected a positive whole number of seconds, got {value!r}")
    return number


def _pull_policy(value: str) -> str:
    for policy in _PULL_POLICIES:
        if value.lower() == policy.lower():
            return policy
    raise PodSpecError(f"backend parameter image_pull_policy: expected one of {', '.join(_PULL_POLICIES)}")


def _scheduling(task: Task, settings: Settings, given: dict[str, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    selector: dict[str, str] = {}
    tolerations: list[dict[str, Any]] = []
    res = task.resources
    if res is not None and res.preemptible:
        selector.update(settings.k8s_preemptible_node_selector)
        tolerations += settings.k8s_preemptible_tolerations
    if "node_selector" in given:
        selector.update(_node_selector(given["node_selector"]))
    if "tolerations" in given:
        tolerations += _tolerations(given["tolerations"])
    if selector:
        spec["nodeSelector"] = selector
    if tolerations:
        spec["tolerations"] = tolerations
    if res is not None and res.zones:
        term = {"matchExpressions": [{"key": settings.k8s_zone_label, "operator": "In", "values": list(res.zones)}]}
        required = {"nodeSelectorTerms": [term]}
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}
    if "priority_class" in given:
        spec["priorityClassName"] = given["priority_class"]
    account = given.get("service_account") or settings.k8s_service_account
    if account:
        spec["serviceAccountName"] = account
    return spec


# --- the Job ---------------------------------------------------------------------------------------


def job(task: Task, settings: Settings, entrypoint_config_map: str) -> dict[str, Any]:
    """The Job ``ktes-<id>`` with one Pod that stages in, runs every executor in order, and stages out.

    ``entrypoint_config_map`` names the ConfigMap holding the helper (:func:`entrypoint_config_map`).

    Raises :class:`PodSpecError` for a malformed backend parameter.
    """
    assert task.id is not None
    name = job_name(task.id)
    given = params(task)
    pull_policy = settings.k8s_executor_image_pull_policy
    if "image_pull_policy" in given:
        pull_policy = _pull_policy(given["image_pull_policy"])
    deadline = settings.k8s_active_deadline_seconds
    if "deadline_seconds" in given:
        deadline = _positive_int("deadline_seconds", given["deadline_seconds"])

    files = filevolume.file_volume(settings) if filevolume.uses_files(task) else None
    secret_used = needs_secret(task, settings)
    staged_in = needs_stage_in(task, settings)
    first = staged_in and stage_in_first(task)
    waits = staged_in and not first
    count = len(task.executors) + int(staged_in) + int(needs_stage_out(task))
    containers = [_executor_container(task, i, settings, pull_policy, waits, count) for i in range(len(task.executors))]
    init_containers = []
    if first:
        init_containers.append(_stage_container(STAGE_IN, task, settings, files))
    elif staged_in:
        containers.insert(0, _stage_container(STAGE_IN, task, settings, files))
    if needs_stage_out(task):
        containers.append(_stage_container(STAGE_OUT, task, settings, files))
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "dnsPolicy": settings.k8s_dns_policy,
        **({"initContainers": init_containers} if init_containers else {}),
        "containers": containers,
        "volumes": [
            _workspace_volume(task, settings),
            {"name": STATE_VOLUME, "emptyDir": {}},
            {"name": BIN_VOLUME, "configMap": {"name": entrypoint_config_map, "defaultMode": 0o555}},
            *([{"name": SPEC_VOLUME, "secret": {"secretName": name, "defaultMode": 0o444}}] if secret_used else []),
            *([files.volume()] if files is not None else []),
        ],
        **_scheduling(task, settings, given),
    }
    job_labels = labels(task.id, settings) | owner_labels(task)
    queue = user_queue(task, settings) or given.get("queue")  # the operator's mapping wins over the task's
    if queue:
        job_labels[settings.k8s_queue_label] = queue
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "completions": 1,
        "parallelism": 1,
        "ttlSecondsAfterFinished": settings.k8s_ttl_seconds_after_finished,
        "template": {"metadata": {"labels": labels(task.id, settings) | owner_labels(task)}, "spec": pod_spec},
    }
    if deadline:
        spec["activeDeadlineSeconds"] = deadline
    metadata: dict[str, Any] = {"name": name, "labels": job_labels}
    if task.name:
        metadata["annotations"] = {"ktes.task-name": task.name[:1024]}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}
