"""With auth on, ``file://`` URLs (and plain paths) are refused unless the operator maps them per user.

``file_user_roots`` lists roots with a ``{user}`` placeholder (``/data/{user}``); a task's file URLs must lie
under its owner's roots, so one user's task never reads or writes another user's files. The check runs when
the task is submitted (a 400 naming the field); the filer still applies ``file_allowed_roots`` (which must
contain these roots) when it stages, without following links out of them.
"""

from __future__ import annotations

import os
from pathlib import Path

from ktes.config import Settings
from ktes.errors import InvalidTask, KtesError
from ktes.filer.file import local_path
from ktes.tes.models import Task


def _is_file_url(url: str) -> bool:
    return url.startswith(("/", "file:"))


def user_roots(settings: Settings, owner: str) -> list[Path]:
    """The owner's roots; none for a name that could step out of a root (``..``, ``/``)."""
    if not owner or owner in (".", "..") or "/" in owner or "\x00" in owner:
        return []
    return [Path(os.path.realpath(root.replace("{user}", owner))) for root in settings.file_user_roots]


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
