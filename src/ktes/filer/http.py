"""``http://`` and ``https://``: GET (redirects followed) and PUT, streamed.

Transient failures (connection errors, timeouts, 408/429/5xx) raise :class:`TemporaryTransferError`, which
the registry's retry wrapper tries again; HTTP has no listing, so DIRECTORY inputs are refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from ktes import __version__
from ktes.config import Settings
from ktes.errors import PermanentTransferError, TemporaryTransferError, TransferError
from ktes.filer.redact import redact

log = logging.getLogger(__name__)

_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
CHUNK_BYTES = 1024 * 1024


class HttpPlugin:
    schemes: tuple[str, ...] = ("http", "https")

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=True,
            headers={"User-Agent": f"ktes/{__version__}", "Accept-Encoding": "identity"},
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpPlugin:
        return cls(settings.http_timeout_seconds)

    def download_file(self, url: str, dest: Path, headers: Mapping[str, str] | None = None) -> None:
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                check_status(url, response)
                with dest.open("wb") as writer:
                    for chunk in response.iter_bytes():  # as received (64 KiB reads): no re-chunking copies
                        writer.write(chunk)
        except httpx.HTTPError as err:
            raise translate(url, err, self.timeout_seconds) from err

    def list_dir(self, url: str) -> Iterator[tuple[str, str]]:
        raise PermanentTransferError(
            f"{redact(url)}: HTTP has no directory listing, so a DIRECTORY input cannot be read over HTTP"
        )

    def upload_file(self, src: Path, url: str) -> None:
        try:
            size = src.stat().st_size
            with src.open("rb") as reader:
                # Streamed in 1 MiB chunks, with a Content-Length (not chunked: presigned PUTs need it).
                chunks = iter(lambda: reader.read(CHUNK_BYTES), b"")
                response = self.client.put(url, content=chunks, headers={"Content-Length": str(size)})
            check_status(url, response)
        except httpx.HTTPError as err:
            raise translate(url, err, self.timeout_seconds) from err


def check_status(url: str, response: httpx.Response) -> None:
    """Raise the transfer error a non-2xx response means."""
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = f"HTTP {status} {response.reason_phrase}".rstrip()
    if status in (401, 403):
        reason += " (access denied)"
    if status in _TRANSIENT_STATUS:
        raise TemporaryTransferError(f"{redact(url)}: {reason}")
    raise PermanentTransferError(f"{redact(url)}: {reason}")


def translate(url: str, err: httpx.HTTPError, timeout_seconds: float) -> TransferError:
    """An httpx exception as a transfer error naming the URL without its secrets."""
    if isinstance(err, httpx.TimeoutException):
        return TemporaryTransferError(f"{redact(url)}: timed out (no progress for {timeout_seconds:g} s)")
    if isinstance(err, httpx.TooManyRedirects):
        return PermanentTransferError(f"{redact(url)}: too many redirects")
    if isinstance(err, httpx.ConnectError):
        return TemporaryTransferError(f"{redact(url)}: cannot connect ({_cause(err)})")
    if isinstance(err, httpx.TransportError):
        return TemporaryTransferError(f"{redact(url)}: connection failed ({_cause(err)})")
    return PermanentTransferError(f"{redact(url)}: {type(err).__name__}")


def _cause(err: Exception) -> str:
    # httpx messages hold the OS reason ("[Errno 111] Connection refused"), never the URL.
    return str(err) or type(err).__name__
