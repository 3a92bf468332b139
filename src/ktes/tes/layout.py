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


def mount_points(task: Task) -> list[str]:
    """The container directories/files to mount so every path the task names is backed by the workspace.

    Inputs are mounted as themselves (file or directory); outputs by their parent directory (FILE), the
    directory itself (DIRECTORY) or the wildcard-free base of a glob; volumes as themselves; stdio files by
    their parent. Points below another point are dropped: the outer mount already carries them.
    """
    points: set[str] = set()
    for inp in task.inputs or []:
        points.add(posixpath.normpath(inp.path))
    for out in task.outputs or []:
        path = posixpath.normpath(out.path)
        if has_wildcard(path):
            points.add(glob_base(path))
        elif out.type == FileType.DIRECTORY:
            points.add(path)
        else:
            points.add(posixpath.dirname(path))
    for vol in task.volumes or []:
        points.add(posixpath.normpath(vol))
    for ex in task.executors:
        for stdio in (ex.stdin, ex.stdout, ex.stderr):
            if stdio:
                points.add(posixpath.dirname(posixpath.normpath(stdio)))
    points.discard("/")  # never mount over the container's root; validation refuses such paths
    kept: list[str] = []
    for point in sorted(points):
        if not any(point == k or point.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(point)
    return kept
