"""The local backend's directories of given tasks, removed after the tasks left the store (retention)."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from ktes.tes.ids import is_id

#: Under the data directory: each task's workspace, and its run directory (exit codes, logs).
TASK_ROOTS = ("work", "run")


def remove_task_dirs(data_dir: Path, task_ids: Iterable[str]) -> None:
    for task_id in task_ids:
        if not is_id(task_id):  # only names ktes made: never a path
            continue
        for root in TASK_ROOTS:
            shutil.rmtree(data_dir / root / task_id, ignore_errors=True)
