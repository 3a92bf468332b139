"""``file://`` URLs and plain absolute paths, only under the allowed roots."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
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
        real = Path(os.path.realpath(path))  # what is checked is what is used (see _open_dir)
        refusal = self.allowed.refusal(real, directory=directory)
        if refusal is not None:
            raise PermanentTransferError(f"{redact(url)} {refusal}")
        return real

    def download_file(self, url: str, dest: Path) -> None:
        src = self._allowed(url)
        try:
            parent = _open_dir(src.parent)
            try:
                # O_NONBLOCK: a FIFO put there opens at once (and is refused below) instead of waiting for a writer
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
                source = os.open(src.name, flags, dir_fd=parent)
            finally:
                os.close(parent)
        except OSError as err:
            raise _translate(url, err, "the task's work directory", checked=True) from err
        if not stat.S_ISREG(os.fstat(source).st_mode):
            os.close(source)
            raise PermanentTransferError(f"{redact(url)}: not a regular file")
        try:
            with open(source, "rb") as reader, open(dest, "wb") as writer:
                _copy(reader.fileno(), writer.fileno())
        except OSError as err:
            raise _translate(url, err, "the task's work directory") from err

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
            parent = _open_dir(dest.parent, create=True)
        except OSError as err:
            raise _translate(url, err, "the destination", checked=True) from err
        partial: str | None = None
        try:
            # Written beside the destination and renamed into place: a copy cut short (a full disk) never
            # appears under the destination's name.
            name = f".{dest.name}.{secrets.token_hex(6)}.partial"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            target = os.open(name, flags, 0o666, dir_fd=parent)  # the umask's usual mode
            partial = name
            with open(src, "rb") as reader, open(target, "wb") as writer:
                _copy(reader.fileno(), writer.fileno())
            os.replace(name, dest.name, src_dir_fd=parent, dst_dir_fd=parent)
            partial = None
        except OSError as err:
            raise _translate(url, err, "the destination") from err
        finally:
            if partial is not None:
                with contextlib.suppress(OSError):
                    os.unlink(partial, dir_fd=parent)
            os.close(parent)


#: O_PATH (Linux): a directory one may only pass through (search permission, as a path walk needs) still opens.
_DIRECTORY = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_dir(real: Path, *, create: bool = False) -> int:
    """A descriptor of the directory ``real`` (whose links the roots check resolved), opened one component at
    a time from ``/`` without following links. The check and the use are two steps; a task's owner may swap a
    directory on the way for a link in between (a loop of renames while the task stages): then a component
    is a link, its open fails (ELOOP or ENOTDIR), and nothing is read or written beyond it. With ``create``,
    missing directories are made on the way (as ``mkdir -p``). Python has no ``openat2(RESOLVE_NO_SYMLINKS)``
    (one call for this), so it is done here by hand."""
    fd = os.open("/", _DIRECTORY)
    try:
        for part in real.parts[1:]:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=fd)
            inner = os.open(part, _DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _copy(source: int, target: int) -> None:
    """Copy from one descriptor to the other in the kernel (sendfile(2), as ``shutil.copyfile`` does for paths)."""
    while os.sendfile(target, source, None, 1 << 30) > 0:
        pass


def _translate(url: str, err: OSError, written: str, *, checked: bool = False) -> TransferError:
    if checked and err.errno in (errno.ELOOP, errno.ENOTDIR):
        return PermanentTransferError(f"{redact(url)}: a link appeared on the way after it was checked (not followed)")
    if err.errno == errno.ENOSPC:
        return PermanentTransferError(f"{redact(url)}: no space left on the file system of {written}")
    reason = {
        FileNotFoundError: "no such file",
        PermissionError: "permission denied",
        IsADirectoryError: "is a directory",
        NotADirectoryError: "not a directory",
    }.get(type(err), err.strerror or type(err).__name__)
    return PermanentTransferError(f"{redact(url)}: {reason}")
