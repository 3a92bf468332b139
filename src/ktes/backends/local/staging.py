"""The staging the local backend needs, as one small interface (the filer's, or a fake in unit tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ktes.filer import staging
from ktes.filer.registry import Filer
from ktes.tes.models import OutputFileLog, Task


class Staging(Protocol):
    """Synchronous; the backend calls it in a worker thread. Raises TransferError (or OSError)."""

    def prepare_workspace(self, task: Task, workspace: Path) -> None: ...

    def stage_inputs(self, task: Task, workspace: Path) -> None: ...

    def stage_outputs(self, task: Task, workspace: Path) -> list[OutputFileLog]: ...


class FilerStaging:
    """Staging by :mod:`ktes.filer.staging` with one filer."""

    def __init__(self, filer: Filer) -> None:
        self._filer = filer

    def prepare_workspace(self, task: Task, workspace: Path) -> None:
        staging.prepare_workspace(task, workspace)

    def stage_inputs(self, task: Task, workspace: Path) -> None:
        staging.stage_inputs(task, workspace, self._filer)

    def stage_outputs(self, task: Task, workspace: Path) -> list[OutputFileLog]:
        return staging.stage_outputs(task, workspace, self._filer)
