"""Where a task's files live: container paths mapped into one workspace directory.

Every container path P of a task (inputs, outputs, volumes, stdin/stdout/stderr files) lives at
``workspace / P.lstrip('/')``. The backends mount the few *mount points* that cover all of them, each at
its own container path: a bind mount on the local backend, a ``subPath`` of one volume on Kubernetes. So
the executors see exactly the paths the task names, and the filer stages files in the workspace only.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from ktes.tes.models import FileType, Task

_WILDCARD = re.compile(r"(?<!\\)[*?\[]")


def has_wildcard(path: str) -> bool:
    return bool(_WILDCARD.search(path))


def glob_base(path: str) -> str:
    """The longest leading directory of ``path`` with no wildcard in it."""
    parts = path.split("/")
    base: list[str] = []
    for part in parts[:-1]:
        if has_wildcard(part):
            break
        base.append(part)
    return "/".join(base) or "/"


def host_path(workspace: Path, container_path: str) -> Path:
    """The workspace file that stands for ``container_path`` (which validation made absolute, no ``..``)."""
    return workspace / posixpath.normpath(container_path).lstrip("/")


def _output_volume_stdio_dirs(task: Task) -> set[str]:
    """The directories outputs (parent, itself, or a glob's base), volumes and stdio files (parent) live in."""
    dirs: set[str] = set()
    for out in task.outputs or []:
        path = posixpath.normpath(out.path)
        if has_wildcard(path):
            dirs.add(glob_base(path))
        elif out.type == FileType.DIRECTORY:
            dirs.add(path)
        else:
            dirs.add(posixpath.dirname(path))
    dirs.update(posixpath.normpath(vol) for vol in task.volumes or [])
    for ex in task.executors:
        dirs.update(posixpath.dirname(posixpath.normpath(s)) for s in (ex.stdin, ex.stdout, ex.stderr) if s)
    return dirs


def needed_directories(task: Task) -> set[str]:
    """Every container directory that must exist in the workspace before the executors run."""
    dirs = _output_volume_stdio_dirs(task)
    for inp in task.inputs or []:
        path = posixpath.normpath(inp.path)
        dirs.add(path if inp.type == FileType.DIRECTORY else posixpath.dirname(path))
    return dirs


def mount_points(task: Task) -> list[str]:
    """The container directories/files to mount so every path the task names is backed by the workspace.

    Inputs are mounted as themselves (file or directory); outputs by their parent directory (FILE), the
    directory itself (DIRECTORY) or the wildcard-free base of a glob; volumes as themselves; stdio files by
    their parent. Points below another point are dropped: the outer mount already carries them.
    """
    points = {posixpath.normpath(inp.path) for inp in task.inputs or []} | _output_volume_stdio_dirs(task)
    points.discard("/")  # never mount over the container's root; validation refuses such paths
    kept: list[str] = []
    for point in sorted(points):
        if not any(point == k or point.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(point)
    return kept
