"""With auth on, ``file://`` URLs (and plain paths) are refused unless the operator maps them per user.

``file_user_roots`` lists roots with a ``{user}`` placeholder (``/data/{user}``); a task's file URLs must lie
under its owner's roots, so one user's task never reads or writes another user's files. The check runs when
the task is submitted (a 400 naming the field), and again where the files are staged, with the links there
resolved then (a link made after submission does not lead out): the local backend stages with a filer limited
to the owner's roots (``backends/local/staging.py``), and on Kubernetes the stage containers get the owner's
roots as their ``file_allowed_roots`` (``backends/kubernetes/filevolume.py``).
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from ktes.config import Settings
from ktes.errors import InvalidTask, KtesError
from ktes.filer.file import local_path
from ktes.tes.models import Task


def _is_file_url(url: str) -> bool:
    return url.startswith(("/", "file:"))


def user_root_paths(settings: Settings, owner: str) -> list[str]:
    """The owner's roots as configured, ``{user}`` replaced (none for a name that could step out of a root:
    ``..``, ``/``), links not resolved: they are resolved where the files are (this host, or a task Pod)."""
    if not owner or owner in (".", "..") or "/" in owner or "\x00" in owner:
        return []
    return [posixpath.normpath(root.replace("{user}", owner)) for root in settings.file_user_roots]


def user_roots(settings: Settings, owner: str) -> list[Path]:
    """The owner's roots on this host, links resolved."""
    return [Path(os.path.realpath(root)) for root in user_root_paths(settings, owner)]


def check_file_urls(task: Task, owner: str, settings: Settings) -> None:
    """Raise :class:`InvalidTask` for the first file URL outside ``owner``'s roots."""
    urls = [(f"inputs[{i}].url", item.url) for i, item in enumerate(task.inputs or ()) if item.content is None]
    urls += [(f"outputs[{i}].url", item.url) for i, item in enumerate(task.outputs or ())]
    roots: list[Path] | None = None
    for field, url in urls:
        if not url or not _is_file_url(url):
            continue
        if roots is None:
            roots = user_roots(settings, owner)
        if not roots:
            raise InvalidTask(field, "file URLs are not allowed on this server (use s3, http or ftp URLs)")
        try:
            path = Path(os.path.realpath(local_path(url)))
        except KtesError as exc:
            raise InvalidTask(field, str(exc)) from None
        if not any(path == root or path.is_relative_to(root) for root in roots):
            raise InvalidTask(field, f"is outside your directories ({', '.join(str(r) for r in roots)})")
