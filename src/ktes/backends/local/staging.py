"""The staging the local backend needs, as one small interface (the filer's, or a fake in unit tests)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol

from ktes.auth.file_access import user_roots
from ktes.filer import staging
from ktes.filer.registry import Filer
from ktes.filer.roots import default_roots
from ktes.tes.models import OutputFileLog, Task


class Staging(Protocol):
    """Synchronous; the backend calls it in a worker thread. Raises TransferError (or OSError)."""

    def prepare_workspace(self, task: Task, workspace: Path) -> None: ...

    def stage_inputs(self, task: Task, workspace: Path) -> None: ...

    def stage_outputs(self, task: Task, workspace: Path) -> list[OutputFileLog]: ...


class FilerStaging:
    """Staging by :mod:`ktes.filer.staging` with one filer; with ``file_user_roots`` set, a task with an owner
    stages ``file://`` URLs only under its owner's roots (checked again here, when the files are touched: a
    link made after the task was accepted does not lead into another user's files)."""

    def __init__(self, filer: Filer) -> None:
        self._filer = filer
        self._owners: dict[str, Filer] = {}
        self._lock = threading.Lock()

    def _filer_for(self, task: Task) -> Filer:
        settings = self._filer.settings
        if task.owner is None or not settings.file_user_roots:
            return self._filer
        with self._lock:
            if task.owner not in self._owners:
                allowed = [Path(os.path.realpath(root)) for root in default_roots(settings)]
                roots = [r for r in user_roots(settings, task.owner) if any(r.is_relative_to(a) for a in allowed)]
                self._owners[task.owner] = Filer(settings.model_copy(update={"file_allowed_roots": roots}))
            return self._owners[task.owner]

    def prepare_workspace(self, task: Task, workspace: Path) -> None:
        staging.prepare_workspace(task, workspace)

    def stage_inputs(self, task: Task, workspace: Path) -> None:
        staging.stage_inputs(task, workspace, self._filer_for(task))

    def stage_outputs(self, task: Task, workspace: Path) -> list[OutputFileLog]:
        return staging.stage_outputs(task, workspace, self._filer_for(task))
