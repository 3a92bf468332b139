"""``file://`` URLs and plain absolute paths, only under the allowed roots."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from ktes.config import Settings
from ktes.errors import PermanentTransferError, TransferError
from ktes.filer.redact import redact
from ktes.filer.roots import AllowedRoots


def local_path(url: str) -> Path:
    """The path a ``file://`` URL or a plain absolute path names (``file://localhost/x`` too)."""
    if url.startswith("/"):
        return Path(url)
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise PermanentTransferError(f"{redact(url)}: file URLs on another host ({parts.netloc}) are not supported")
    return Path(unquote(parts.path))


def file_url(path: Path) -> str:
    return "file://" + quote(str(path))


class FilePlugin:
    """Reads and writes below the allowed roots only; :mod:`ktes.filer.roots` decides what is allowed."""

    schemes: tuple[str, ...] = ("file",)

    def __init__(self, allowed_roots: Sequence[Path] | AllowedRoots) -> None:
        self.allowed = allowed_roots if isinstance(allowed_roots, AllowedRoots) else AllowedRoots.of(allowed_roots)
        self.roots = self.allowed.roots

    @classmethod
    def from_settings(cls, settings: Settings) -> FilePlugin:
        return cls(AllowedRoots.from_settings(settings))

    def _allowed(self, url: str, *, directory: bool = False) -> Path:
        path = local_path(url)
        if "\x00" in str(path):
            raise PermanentTransferError(f"{redact(url)}: a path must not contain a NUL character")
        refusal = self.allowed.refusal(path, directory=directory)
        if refusal is not None:
            raise PermanentTransferError(f"{redact(url)} {refusal}")
        return Path(os.path.realpath(path))

    def download_file(self, url: str, dest: Path) -> None:
        src = self._allowed(url)
        try:
            shutil.copyfile(src, dest)  # sendfile(2) where it can: chunked by the kernel
        except OSError as err:
            raise _translate(url, err) from err

    def list_dir(self, url: str) -> Iterator[tuple[str, str]]:
        root = self._allowed(url, directory=True)
        if not root.is_dir():
            raise PermanentTransferError(f"{redact(url)}: no such directory")
        for dirpath, dirnames, filenames in os.walk(root, onerror=None):
            # ktes's own files, dot-directories and credentials are left out of a listing, not fetched.
            dirnames[:] = sorted(d for d in dirnames if self.allowed.refusal(Path(dirpath) / d, directory=True) is None)
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if path.is_file() and self.allowed.refusal(path) is None:
                    yield file_url(path), path.relative_to(root).as_posix()

    def upload_file(self, src: Path, url: str) -> None:
        dest = self._allowed(url)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)  # sendfile(2) where it can: chunked by the kernel
        except OSError as err:
            raise _translate(url, err) from err


def _translate(url: str, err: OSError) -> TransferError:
    reason = {
        FileNotFoundError: "no such file",
        PermissionError: "permission denied",
        IsADirectoryError: "is a directory",
        NotADirectoryError: "not a directory",
    }.get(type(err), err.strerror or type(err).__name__)
    return PermanentTransferError(f"{redact(url)}: {reason}")
