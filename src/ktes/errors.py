"""The exceptions ktes raises, in one tree. Third-party exceptions are translated at each boundary."""

from __future__ import annotations


class KtesError(Exception):
    """Base of every error ktes raises on purpose."""


class InvalidTask(KtesError):
    """A request is malformed. ``field`` names the offending field (a dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class TaskNotFound(KtesError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id!r} not found")
        self.task_id = task_id


class OverUserLimit(KtesError):
    """A user already has ``limit`` tasks not yet ended, the most the server allows (429 with ``Retry-After``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"you have {limit} tasks not yet ended, the most this server allows")
        self.limit = limit


class StoreUnavailable(KtesError):
    """The database cannot be opened or cannot answer now (unreachable, refused, bad URL at start; restarting,
    failed over, overloaded later). The message names it, without secrets.

    At start ``ktes serve`` says so and stops; later the API answers 503 with ``Retry-After`` and the engine
    retries its state changes until the store is back.
    """


class IllegalTransition(KtesError):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"illegal state change {current} -> {target}")
        self.current = current
        self.target = target


class TransferError(KtesError):
    """Staging a file failed. The message names the URL (without secrets) and the reason."""


class PermanentTransferError(TransferError):
    """Retrying will not help (no such key, access denied, refused path)."""


class TemporaryTransferError(TransferError):
    """A transient failure (timeout, 5xx, connection reset): worth retrying."""


class BackendError(KtesError):
    """The backend could not do what was asked."""


class StartupError(KtesError):
    """``ktes serve`` cannot start: the message is one sentence saying what failed and what to do.

    ``ktes serve`` prints it and exits non-zero (with a traceback only under ``--debug``)."""
