"""``ktes task logs -f``: executors' stdout and stderr as they are written, through ktes's live-logs API.

Executors run one after another, so they are followed in turn; within one, stdout and stderr are read at
the same time (one thread each) and written, unlabelled and unchanged, to our stdout and stderr.
"""

from __future__ import annotations

import threading
from typing import BinaryIO

from ktes.cli.client import Document, TesClient
from ktes.errors import KtesError
from ktes.tes.models import View


def _pump(client: TesClient, task_id: str, index: int, stream: str, sink: BinaryIO, errors: list[KtesError]) -> None:
    try:
        for chunk in client.executor_output(task_id, index, stream, follow=True):
            sink.write(chunk)
            sink.flush()
    except KtesError as exc:
        errors.append(exc)


def follow_task(
    client: TesClient, task_id: str, stdout: BinaryIO, stderr: BinaryIO, announce: BinaryIO | None = None
) -> Document:
    """Follow every executor of the task to its end; return the task (BASIC view) once it has ended.
    With several executors, ``announce`` (stderr) gets a ``==> executor N <==`` line before each."""
    task = client.get(task_id, View.BASIC)
    count = len(task.get("executors") or [])
    for index in range(count):
        if announce is not None and count > 1:
            announce.write(f"==> executor {index} <==\n".encode())
            announce.flush()
        errors: list[KtesError] = []
        threads = [
            threading.Thread(target=_pump, args=(client, task_id, index, name, sink, errors), daemon=True)
            for name, sink in (("stdout", stdout), ("stderr", stderr))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():  # a timed join, so Ctrl-C reaches us
                thread.join(0.2)
        if errors:
            raise errors[0]
    return client.wait(task_id)
