"""Command lines for the container CLI, built from a task without running anything (unit-tested)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ktes.backends.local.runtime import Runtime
from ktes.tes import layout
from ktes.tes.models import Task

TASK_LABEL = "ktes.task-id"
INDEX_LABEL = "ktes.executor-index"
#: Which ktes server (data directory) made the container; a sweep never touches another server's.
INSTANCE_LABEL = "ktes.instance"

GIB = 1024**3


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
    network: str = "none"
    #: Whether --cpus/--memory can be used on this machine.
    limits: bool = True


def run_argv(runtime: Runtime, task: Task, index: int, workspace: Path, options: RunOptions) -> list[str]:
    """One ``run`` of executor ``index``: removed when it exits, labelled with the task, every mount point
    bound at its container path, stdin attached only when the executor has a stdin file."""
    assert task.id is not None
    executor = task.executors[index]
    argv = runtime.command("run", "--rm")
    if runtime.kind == "podman":
        argv.append("--pull=never")  # images are checked (and pulled) before, with a timeout
    argv += ["--name", container_name(task.id, index)]
    argv += ["--label", f"{TASK_LABEL}={task.id}", "--label", f"{INDEX_LABEL}={index}"]
    argv += ["--label", f"{INSTANCE_LABEL}={options.instance}"]
    argv += network_args(options.network)
    if executor.stdin:
        argv.append("-i")
    for host, container in mounts(task, workspace):
        argv += ["-v", f"{host}:{container}"]
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
    command = executor.command
    if command:
        # TES's command is the whole argv (as on Kubernetes): it replaces the image's ENTRYPOINT.
        entrypoint = json.dumps([command[0]]) if runtime.kind == "podman" else command[0]
        argv += [f"--entrypoint={entrypoint}", executor.image, *command[1:]]
    else:
        argv.append(executor.image)
    return argv


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
