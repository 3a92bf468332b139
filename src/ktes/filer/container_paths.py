"""Container paths seen inside a task's workspace, as the executors saw them.

After the executors ran, the workspace may hold symbolic links the task made. Following them on the host
could leave the workspace (``out.txt -> /etc/shadow``), so links are resolved the way the container saw
them: an absolute target is a container path, which lives in the workspace too. Nothing resolved here is
ever outside the workspace.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from ktes.errors import PermanentTransferError

MAX_LINKS = 40


def resolve(workspace: Path, container_path: str) -> Path:
    """The host path in ``workspace`` that ``container_path`` leads to, links followed inside the workspace."""
    pending = deque(p for p in container_path.split("/") if p not in ("", "."))
    resolved: list[str] = []
    links = 0
    while pending:
        name = pending.popleft()
        if name == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = workspace.joinpath(*resolved, name)
        if candidate.is_symlink():
            links += 1
            if links > MAX_LINKS:
                raise PermanentTransferError(f"{container_path}: too many levels of symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending.extendleft(reversed([p for p in target.split("/") if p not in ("", ".")]))
            continue
        resolved.append(name)
    return workspace.joinpath(*resolved)


def join(container_dir: str, name: str) -> str:
    return container_dir.rstrip("/") + "/" + name


def walk_files(workspace: Path, container_dir: str) -> Iterator[tuple[str, Path]]:
    """Every regular file below ``container_dir``, recursively, sorted: (container path, host path).

    Links to files are followed (inside the workspace); links to directories are not descended into,
    so a loop of links cannot make the walk endless.
    """
    host_dir = resolve(workspace, container_dir)
    try:
        entries = sorted(os.scandir(host_dir), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        child = join(container_dir, entry.name)
        if entry.is_symlink():
            target = resolve(workspace, child)
            if target.is_file():
                yield child, target
        elif entry.is_dir(follow_symlinks=False):
            yield from walk_files(workspace, child)
        elif entry.is_file(follow_symlinks=False):
            yield child, Path(entry.path)
