"""How ktes writes its log: plain lines (the default) or one JSON object per line (``KTES_LOG_FORMAT=json``).

Every line about a task carries its id: the engine sets :data:`TASK_ID` while it runs, adopts or cancels a
task, and that context follows into everything awaited from there (backend, filer, worker threads). Every
line passes through :func:`ktes.filer.redact.redact_text` first, so no URL in any message (or traceback)
shows user information or signature-like query parameters, whichever module wrote it.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Literal

import orjson

from ktes.filer.redact import redact_text

#: The task the current coroutine (or the thread it handed work to) is about.
TASK_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("ktes_task_id", default=None)

#: A ktes task id in free text (``t`` + 26 lowercase Crockford base32 characters, see ktes.tes.ids).
_TASK_ID_IN_TEXT = re.compile(r"\bt[0-9a-hjkmnp-tv-z]{26}\b")

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TaskAndSecrets(logging.Filter):
    """Adds ``task_id`` to each record and redacts URLs in the message and traceback. Installed on the handler,
    so it sees the records of every logger. The task id is the one the call gave, else :data:`TASK_ID`, else
    the one task id the message names (uvicorn's access log: ``GET /ga4gh/tes/v1/tasks/<id>``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if getattr(record, "task_id", None) is None:
            task_id = TASK_ID.get()
            if task_id is None and "t" in message:
                named = set(_TASK_ID_IN_TEXT.findall(message))
                task_id = named.pop() if len(named) == 1 else None
            record.task_id = task_id
        clean = redact_text(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, task_id (when about a task), exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        task_id = getattr(record, "task_id", None)
        if task_id:
            entry["task_id"] = task_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return orjson.dumps(entry).decode()


class PlainFormatter(logging.Formatter):
    """The classic line, with ``[task <id>]`` before the message of a line about a task."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        task_id = getattr(record, "task_id", None)
        if task_id:
            head = f"{record.name}: "
            line = line.replace(head, f"{head}[task {task_id}] ", 1)
        return line


def configure(level: str, fmt: Literal["plain", "json"]) -> None:
    """Send every logger (uvicorn's too: it is started without its own logging config) to stderr in ``fmt``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TaskAndSecrets())
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter(PLAIN_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # a deprecation warning is a log line too, in the same format
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    if level.lower() != "debug":
        # Start-up is quiet: the migration tool's lines at every start are noise, and the Kubernetes client's
        # connection retries are told once, in the sentence of whatever failed.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
