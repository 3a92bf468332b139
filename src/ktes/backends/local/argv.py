"""Command lines for the container CLI, built from a task without running anything (unit-tested)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ktes.backends.local.runtime import Runtime
from ktes.run import entrypoint
from ktes.tes import layout
from ktes.tes.models import Task

TASK_LABEL = "ktes.task-id"
INDEX_LABEL = "ktes.executor-index"
#: Which ktes server (data directory) made the container; a sweep never touches another server's.
INSTANCE_LABEL = "ktes.instance"

GIB = 1024**3
#: the helper's state directory inside each executor's container.
STATE_DIR = "/ktes/state"


def container_name(task_id: str, index: int) -> str:
    return f"ktes-{task_id}-{index}"


def network_args(network: str) -> list[str]:
    """``none`` and ``host`` as such, ``default`` leaves the runtime's default, anything else names a network."""
    if network in ("", "default"):
        return []
    return ["--network", network]


def mounts(task: Task, workspace: Path) -> list[tuple[Path, str]]:
    """(host path, container path) of every mount point of the task."""
    return [(layout.host_path(workspace, point), point) for point in layout.mount_points(task)]


@dataclass(frozen=True)
class RunOptions:
    """What the backend decides beyond the task itself."""

    instance: str
    #: the executors' helper on this machine (bind-mounted read-only at :data:`entrypoint.CONTAINER_PATH`).
    helper: Path
    network: str = "none"
    #: Whether --cpus/--memory can be used on this machine.
    limits: bool = True
    #: how much of each stream's end the helper puts in its result line.
    tail_bytes: int = 64 * 1024


def helper_argv(task: Task, index: int, tail_bytes: int) -> list[str]:
    """The helper's arguments for executor ``index`` (its files are opened inside the container)."""
    executor = task.executors[index]
    argv = ["--index", str(index), "--state-dir", STATE_DIR, "--tail-bytes", str(tail_bytes)]
    for option, path in (("--stdin", executor.stdin), ("--stdout", executor.stdout), ("--stderr", executor.stderr)):
        if path:
            argv += [option, path]
    if executor.ignore_error:
        argv.append("--ignore-error")
    return [*argv, "--", *executor.command]


def run_argv(
    runtime: Runtime, task: Task, index: int, workspace: Path, state_dir: Path, options: RunOptions
) -> list[str]:
    """One ``run`` of executor ``index`` through the helper: labelled with the task, every mount point bound
    at its container path, the helper read-only, ``state_dir`` as the helper's state directory.

    ``--rm``: the runtime removes the container as it ends, in the processes that run it anyway (the CLI,
    conmon's cleanup), also when the CLI was killed. A removal of ktes's own (``podman rm``, batched) cost a
    burst of small tasks a fifth of its time. Nothing is lost: the CLI's output holds the result line, and
    the helper's result file in ``state_dir`` outlives the container (for a CLI that did not live to write
    it, see :meth:`LocalBackend._result_of_container`)."""
    assert task.id is not None
    executor = task.executors[index]
    argv = runtime.command("run", "--rm")
    if runtime.kind == "podman":
        argv.append("--pull=never")  # images are checked (and pulled) before, with a timeout
    argv += ["--name", container_name(task.id, index)]
    argv += ["--label", f"{TASK_LABEL}={task.id}", "--label", f"{INDEX_LABEL}={index}"]
    argv += ["--label", f"{INSTANCE_LABEL}={options.instance}"]
    argv += network_args(options.network)
    for host, container in mounts(task, workspace):
        argv += ["-v", f"{host}:{container}"]
    argv += ["-v", f"{options.helper}:{entrypoint.CONTAINER_PATH}:ro", "-v", f"{state_dir}:{STATE_DIR}"]
    if executor.workdir:
        argv += ["-w", executor.workdir]
    for key, value in (executor.env or {}).items():
        argv += ["-e", f"{key}={value}"]
    resources = task.resources
    if options.limits and resources is not None:
        if resources.cpu_cores:
            argv += ["--cpus", str(resources.cpu_cores)]
        if resources.ram_gb:
            argv += ["--memory", f"{int(resources.ram_gb * GIB)}b"]
    argv += runtime.run_args
    # TES's command is the whole argv (as on Kubernetes): the helper replaces the image's ENTRYPOINT.
    helper = json.dumps([entrypoint.CONTAINER_PATH]) if runtime.kind == "podman" else entrypoint.CONTAINER_PATH
    return [*argv, f"--entrypoint={helper}", executor.image, *helper_argv(task, index, options.tail_bytes)]


def wait_argv(runtime: Runtime, name: str) -> list[str]:
    """Until container ``name`` has exited (an error when there is no such container)."""
    return runtime.command("wait", name)


def logs_argv(runtime: Runtime, name: str) -> list[str]:
    return runtime.command("logs", name)


def image_present_argv(runtime: Runtime, image: str) -> list[str]:
    if runtime.kind == "podman":
        return runtime.command("image", "exists", image)
    return runtime.command("image", "inspect", "--format", "{{.Id}}", image)


def pull_argv(runtime: Runtime, image: str) -> list[str]:
    return runtime.command("pull", image)


def list_argv(runtime: Runtime, instance: str, task_id: str | None = None) -> list[str]:
    """Every container of this server (or of one task): lines of "<name> <task id>"."""
    label = f"{TASK_LABEL}={task_id}" if task_id else TASK_LABEL
    template = (
        f'{{{{.Names}}}} {{{{index .Labels "{TASK_LABEL}"}}}}'
        if runtime.kind == "podman"
        else f'{{{{.Names}}}} {{{{.Label "{TASK_LABEL}"}}}}'
    )
    return runtime.command(
        "ps", "-a", "--filter", f"label={INSTANCE_LABEL}={instance}", "--filter", f"label={label}", "--format", template
    )


def remove_task_argv(runtime: Runtime, instance: str, task_id: str) -> list[str] | None:
    """Kill and remove every container of one task of this server in one call (podman), or None where the
    runtime cannot select containers to remove by label (docker: list, then remove by name)."""
    if runtime.kind != "podman":
        return None
    labels = [f"label={INSTANCE_LABEL}={instance}", f"label={TASK_LABEL}={task_id}"]
    return runtime.command("rm", "--force", "--ignore", "--time", "0", *(a for lb in labels for a in ("--filter", lb)))


def remove_argv(runtime: Runtime, names: Sequence[str]) -> list[str]:
    """Kill and remove ``names`` now (no grace period); missing ones are not an error."""
    if runtime.kind == "podman":
        return runtime.command("rm", "--force", "--ignore", "--time", "0", *names)
    return runtime.command("rm", "--force", *names)
