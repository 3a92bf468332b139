"""The one retry helper: a transient failure (:class:`TemporaryTransferError`) is tried again after each
delay of a finite sequence, within a time budget; anything else, or the last failure, goes to the caller.

Retries are for transient failures. A store that refuses every attempt is not transient, and its task must
hear so soon: the whole of one transfer's retrying (attempts and waits) stays within ``budget_seconds``
(``transfer_retry_max_seconds``), and the error that ends it says how often and how long it was tried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from ktes import metrics
from ktes.errors import TemporaryTransferError
from ktes.filer.base import FilerPlugin
from ktes.filer.urls import scheme_of

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_DELAY_SECONDS = 30.0


def backoff_delays(retries: int, first_seconds: float, cap_seconds: float = MAX_DELAY_SECONDS) -> tuple[float, ...]:
    """``retries`` delays, doubling from ``first_seconds``, each at most ``cap_seconds``."""
    return tuple(min(first_seconds * 2**i, cap_seconds) for i in range(max(retries, 0)))


def call_with_retries(
    action: Callable[[], T],
    delays: Sequence[float],
    *,
    what: str = "transfer",
    budget_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``action``; on :class:`TemporaryTransferError` wait the next delay and run it again, unless that
    wait would end past ``budget_seconds`` from the first attempt (then the failure goes to the caller)."""
    start = clock()
    for attempts, delay in enumerate((*delays, None), start=1):
        try:
            return action()
        except TemporaryTransferError as err:
            if delay is None or (budget_seconds is not None and clock() - start + delay > budget_seconds):
                if attempts == 1:
                    raise
                spent = clock() - start
                raise type(err)(f"{err} (tried {attempts} times in {spent:.1f} s)") from err
            log.warning("%s failed (%s); retrying in %.1f s", what, err, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # the last round returns or raises


class RetryingPlugin:
    """A plugin whose every operation goes through :func:`call_with_retries`."""

    def __init__(self, plugin: FilerPlugin, delays: Sequence[float], budget_seconds: float | None = None) -> None:
        self.plugin = plugin
        self.schemes = plugin.schemes
        self.delays = tuple(delays)
        self.budget_seconds = budget_seconds

    def _call(self, action: Callable[[], T], what: str) -> T:
        return call_with_retries(action, self.delays, what=what, budget_seconds=self.budget_seconds)

    def download_file(self, url: str, dest: Path) -> None:
        self._call(lambda: self.plugin.download_file(url, dest), "download")
        metrics.filer_bytes(scheme_of(url), "download", _size(dest))

    def list_dir(self, url: str) -> Iterator[tuple[str, str]]:
        # A listing is retried as a whole, so it is collected first (names only: small).
        yield from self._call(lambda: list(self.plugin.list_dir(url)), "listing")

    def upload_file(self, src: Path, url: str) -> None:
        self._call(lambda: self.plugin.upload_file(src, url), "upload")
        metrics.filer_bytes(scheme_of(url), "upload", _size(src))


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0
