"""``ftp://`` (and ``ftps://``, explicit TLS) with the standard library's ftplib.

Credentials come from the URL (``ftp://user:pass@host/path``), else from ``ftp_user``/``ftp_password``,
else anonymous. URL paths are relative to the login directory, as curl reads them (``%2F`` makes one
absolute). Directories are listed with MLSD (or NLST where the server lacks it); uploads create the
directories they need.
"""

from __future__ import annotations

import contextlib
import ftplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from ktes.config import Settings
from ktes.errors import PermanentTransferError, TemporaryTransferError, TransferError
from ktes.filer.redact import redact

BLOCK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FtpTarget:
    tls: bool
    host: str
    port: int
    user: str
    password: str
    path: str


class FtpPlugin:
    schemes: tuple[str, ...] = ("ftp", "ftps")

    def __init__(self, user: str | None, password: str | None, timeout_seconds: float) -> None:
        self.user = user
        self.password = password
        self.timeout_seconds = timeout_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> FtpPlugin:
        password = settings.ftp_password.get_secret_value() if settings.ftp_password else None
        return cls(settings.ftp_user, password, settings.http_timeout_seconds)

    def target(self, url: str) -> FtpTarget:
        parts = urlsplit(url)
        tls = parts.scheme.lower() == "ftps"
        if not parts.hostname:
            raise PermanentTransferError(f"{redact(url)}: no host in the URL")
        user = unquote(parts.username) if parts.username else (self.user or "anonymous")
        password = unquote(parts.password) if parts.password is not None else (self.password or "")
        if not parts.username and not self.user:
            password = "anonymous@"
        return FtpTarget(tls, parts.hostname, parts.port or 21, user, password, unquote(parts.path.lstrip("/")))

    @contextmanager
    def session(self, url: str) -> Iterator[tuple[ftplib.FTP, FtpTarget]]:
        target = self.target(url)
        ftp: ftplib.FTP = ftplib.FTP_TLS(context=ssl.create_default_context()) if target.tls else ftplib.FTP()
        try:
            ftp.connect(target.host, target.port, timeout=self.timeout_seconds)
            ftp.login(target.user, target.password)
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
            yield ftp, target
        except (ftplib.Error, OSError, EOFError) as err:
            raise translate(url, err, self.timeout_seconds) from err
        finally:
            try:
                ftp.quit()
            except (ftplib.Error, OSError, EOFError, AttributeError):
                ftp.close()

    def download_file(self, url: str, dest: Path) -> None:
        with self.session(url) as (ftp, target), dest.open("wb") as writer:
            ftp.retrbinary(f"RETR {target.path}", writer.write, blocksize=BLOCK_BYTES)

    def list_dir(self, url: str) -> Iterator[tuple[str, str]]:
        with self.session(url) as (ftp, target):
            root = target.path.rstrip("/")
            files = list(_walk(ftp, root, ""))
        base = url.rstrip("/")
        for rel in files:
            yield base + "/" + quote(rel, safe="/"), rel

    def upload_file(self, src: Path, url: str) -> None:
        with self.session(url) as (ftp, target), src.open("rb") as reader:
            parent, _, name = target.path.rpartition("/")
            if not name:
                raise PermanentTransferError(f"{redact(url)}: no file name to upload to")
            _make_dirs(ftp, parent)
            ftp.storbinary(f"STOR {target.path}", reader, blocksize=BLOCK_BYTES)


def _walk(ftp: ftplib.FTP, root: str, rel: str) -> Iterator[str]:
    """Relative paths of every file below ``root``, recursively."""
    here = f"{root}/{rel}".strip("/") if rel else root
    for name, is_dir in _entries(ftp, here or "."):
        child = f"{rel}/{name}" if rel else name
        if is_dir:
            yield from _walk(ftp, root, child)
        else:
            yield child


def _entries(ftp: ftplib.FTP, directory: str) -> list[tuple[str, bool]]:
    try:
        facts = list(ftp.mlsd(directory, facts=["type"]))
        return sorted((name, meta.get("type") == "dir") for name, meta in facts if meta.get("type") in ("file", "dir"))
    except ftplib.error_perm as err:
        if not str(err).startswith("500") and not str(err).startswith("502"):
            raise
    names = sorted(n.rsplit("/", 1)[-1] for n in ftp.nlst(directory))
    found: list[tuple[str, bool]] = []
    for name in names:
        if name in (".", ".."):
            continue
        try:
            ftp.size(f"{directory}/{name}")
            found.append((name, False))
        except ftplib.error_perm:
            found.append((name, True))
    return found


def _make_dirs(ftp: ftplib.FTP, directory: str) -> None:
    path = ""
    for part in directory.split("/"):
        if not part:
            continue
        path = f"{path}/{part}" if path else part
        with contextlib.suppress(ftplib.error_perm):  # exists already (or cannot be made: the STOR says why)
            ftp.mkd(path)


def translate(url: str, err: BaseException, timeout_seconds: float) -> TransferError:
    """An ftplib/socket exception as a transfer error naming the URL without its secrets."""
    where = redact(url)
    if isinstance(err, TransferError):
        return err
    if isinstance(err, ftplib.error_perm):
        text = str(err)
        code = text[:3]
        if code == "530":
            return PermanentTransferError(f"{where}: login refused (access denied)")
        lowered = text.lower()
        if "denied" in lowered or "permission" in lowered:
            return PermanentTransferError(f"{where}: access denied")
        if code == "550" or any(s in lowered for s in ("no such", "not found", "does not exist")):
            return PermanentTransferError(f"{where}: no such file or directory")
        return PermanentTransferError(f"{where}: FTP error {text[:80]}")
    if isinstance(err, ftplib.error_temp):
        return TemporaryTransferError(f"{where}: FTP server busy ({str(err)[:3]})")
    if isinstance(err, socket.timeout | TimeoutError):
        return TemporaryTransferError(f"{where}: timed out (no progress for {timeout_seconds:g} s)")
    if isinstance(err, ConnectionRefusedError):
        return TemporaryTransferError(f"{where}: cannot connect (connection refused)")
    if isinstance(err, ssl.SSLError):
        return PermanentTransferError(f"{where}: TLS failed ({err.reason})")
    if isinstance(err, OSError | EOFError):
        return TemporaryTransferError(f"{where}: connection failed ({type(err).__name__})")
    return PermanentTransferError(f"{where}: {type(err).__name__}")
