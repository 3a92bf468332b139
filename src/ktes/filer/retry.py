"""The one retry helper: a transient failure (:class:`TemporaryTransferError`) is tried again after each
delay of a finite sequence; anything else, or the last failure, goes to the caller."""

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
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``action``; on :class:`TemporaryTransferError` wait the next delay and run it again."""
    for delay in delays:
        try:
            return action()
        except TemporaryTransferError as err:
            log.warning("%s failed (%s); retrying in %.1f s", what, err, delay)
            sleep(delay)
    return action()


class RetryingPlugin:
    """A plugin whose every operation goes through :func:`call_with_retries`."""

    def __init__(self, plugin: FilerPlugin, delays: Sequence[float]) -> None:
        self.plugin = plugin
        self.schemes = plugin.schemes
        self.delays = tuple(delays)

    def download_file(self, url: str, dest: Path) -> None:
        call_with_retries(lambda: self.plugin.download_file(url, dest), self.delays, what="download")
        metrics.filer_bytes(scheme_of(url), "download", _size(dest))

    def list_dir(self, url: str) -> Iterator[tuple[str, str]]:
        # A listing is retried as a whole, so it is collected first (names only: small).
        yield from call_with_retries(lambda: list(self.plugin.list_dir(url)), self.delays, what="listing")

    def upload_file(self, src: Path, url: str) -> None:
        call_with_retries(lambda: self.plugin.upload_file(src, url), self.delays, what="upload")
        metrics.filer_bytes(scheme_of(url), "upload", _size(src))


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0
