"""``file://`` on Kubernetes: a file system shared between the cluster and the workflow manager.

As TESK offers it: an operator names one volume that holds the files tasks read and write
(``k8s_file_volume``), NFS or CephFS through a PersistentVolumeClaim, or a hostPath on a one-node cluster:

- ``hostpath:/PATH``: the node's directory /PATH, mounted at /PATH;
- ``pvc:NAME:/PATH``: the claim NAME, mounted at /PATH (where the workflow manager sees the same files).

The stage containers mount it at /PATH (stage-in read-only, stage-out read-write), and ``file://`` URLs
(and plain absolute paths) are allowed below ``file_allowed_roots`` (default: /PATH itself), each of which
must lie below /PATH. Without such a volume a Pod cannot reach the files a URL names, so ``file`` is not
offered: a task that uses it is refused at POST (400, naming the input or output) and service-info's
``storage`` leaves it out. Only the Pods of tasks that use ``file://`` get the volume. With per-user roots
(``file_user_roots``, auth on) a task's stage containers may use only its owner's (:func:`task_roots`).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any, Literal

from ktes.auth.file_access import user_root_paths
from ktes.config import Settings
from ktes.errors import StartupError
from ktes.filer.urls import scheme_of
from ktes.tes.models import Task

FILE_VOLUME = "ktes-files"
#: why ``file`` is not offered when no volume is configured (validation's 400 says it).
NO_VOLUME = (
    "file:// needs a file system shared with the cluster, and this server has none "
    "(k8s_file_volume: hostpath:/PATH or pvc:NAME:/PATH)"
)
_CLAIM_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class FileVolume:
    kind: Literal["hostpath", "pvc"]
    #: the node's path (hostpath) or the claim's name (pvc)
    source: str
    #: where the stage containers see it
    mount_path: str

    def volume(self) -> dict[str, Any]:
        if self.kind == "hostpath":
            return {"name": FILE_VOLUME, "hostPath": {"path": self.source, "type": "Directory"}}
        return {"name": FILE_VOLUME, "persistentVolumeClaim": {"claimName": self.source}}

    def mount(self, *, read_only: bool) -> dict[str, Any]:
        return {"name": FILE_VOLUME, "mountPath": self.mount_path, "readOnly": read_only}


def _absolute(value: str, what: str) -> str:
    if not value.startswith("/") or ".." in value.split("/"):
        raise StartupError(f"k8s_file_volume: {what} must be an absolute path without '..' (got {value!r})")
    path = posixpath.normpath(value)
    if path in ("/", "//") or path == "/ktes" or path.startswith("/ktes/"):
        raise StartupError(f"k8s_file_volume: {what} {path!r} would hide the container's own files")
    return path


def parse(value: str) -> FileVolume:
    """``hostpath:/PATH`` or ``pvc:NAME:/PATH``. Raises :class:`StartupError` naming what is wrong."""
    kind, _, rest = value.partition(":")
    kind = kind.strip().lower()
    if kind == "hostpath":
        path = _absolute(rest, "the host path")
        return FileVolume("hostpath", path, path)
    if kind == "pvc":
        name, sep, path = rest.partition(":")
        if not sep or not _CLAIM_NAME.match(name):
            raise StartupError(
                f"k8s_file_volume: expected pvc:NAME:/PATH (a claim's name, and where its files are seen), "
                f"got {value!r}"
            )
        return FileVolume("pvc", name, _absolute(path, "the mount path"))
    raise StartupError(f"k8s_file_volume: expected hostpath:/PATH or pvc:NAME:/PATH, got {value!r}")


def file_volume(settings: Settings) -> FileVolume | None:
    return parse(settings.k8s_file_volume) if settings.k8s_file_volume else None


def allowed_roots(settings: Settings) -> list[str]:
    """The roots ``file://`` URLs may use in the Pods: ``file_allowed_roots``, else the volume's mount path;
    none without a volume. Each must lie in the volume (else :class:`StartupError`)."""
    volume = file_volume(settings)
    if volume is None:
        return []
    if settings.file_allowed_roots is None:
        return [volume.mount_path]
    roots = [posixpath.normpath(str(root)) for root in settings.file_allowed_roots]
    for root in roots:
        if root != volume.mount_path and not root.startswith(volume.mount_path.rstrip("/") + "/"):
            raise StartupError(
                f"file_allowed_roots: {root} is not in the shared volume mounted at {volume.mount_path} "
                "(k8s_file_volume), so the task Pods could not reach it"
            )
    return roots


def task_roots(task: Task, settings: Settings) -> list[str]:
    """The roots ``task``'s stage containers may use (their ``file_allowed_roots``): :func:`allowed_roots`, or,
    with per-user roots (``file_user_roots``) and an owner, the owner's own roots among them, ``{user}`` filled in.
    The containers resolve links when they stage, so a link made after the task was accepted is caught there."""
    allowed = allowed_roots(settings)
    if task.owner is None or not settings.file_user_roots:
        return allowed
    return [root for root in user_root_paths(settings, task.owner) if any(_within(root, a) for a in allowed)]


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def refused_schemes(settings: Settings) -> dict[str, str]:
    """URL schemes the filer serves that tasks on Kubernetes cannot use here, with the reason."""
    return {} if file_volume(settings) is not None else {"file": NO_VOLUME}


def uses_files(task: Task) -> bool:
    """Whether an input or output of ``task`` is a ``file://`` URL (or a plain path)."""
    urls = [inp.url for inp in task.inputs or [] if inp.url and not inp.content]
    urls += [out.url for out in task.outputs or []]
    return any(scheme_of(url) == "file" for url in urls)
