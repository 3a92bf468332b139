"""Opening a file a task could have made, beneath a root, without following any link.

A task's workspace is written by its containers: any name in it may be a symbolic link to a host file
(``/data/log/o.txt -> /root/.ssh/authorized_keys``), a FIFO that blocks whoever opens it, or a device node.
ktes runs as root on many machines, so the host side must never open such a name the way ``open(path)``
does. :func:`open_beneath` walks the path one component at a time from a directory descriptor of the root,
each step with ``O_NOFOLLOW`` (a link anywhere fails), and hands out only regular files.

Hand-written because neither the standard library nor a well-kept package offers it: ``openat2`` with
``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`` would do the walk in one call, but Python does not expose it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_PATH = getattr(os, "O_PATH", 0o10000000)


class UnsafePath(OSError):
    """The path leaves its root, goes through a link, or is not a regular file (or not a directory)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(errno.ELOOP, f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def _parts(root: Path, path: Path) -> list[str]:
    """The components of ``path`` below ``root`` (``path`` absolute under root, or relative to it)."""
    relative = path.relative_to(root) if path.is_absolute() else path
    parts = [p for p in relative.as_posix().split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise UnsafePath(path, f"is not a file beneath {root}")
    return parts


def _open_dir(root_fd: int, parts: list[str], path: Path, make: bool) -> int:
    """A descriptor of the directory ``parts`` names below ``root_fd``, no link followed (made if ``make``)."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not make:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)  # mkdir never follows a link in its last component
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as err:
                if err.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePath(path, f"{part} is a link or not a directory") from None
                raise
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_beneath(root: Path, path: Path, flags: int, mode: int = 0o644, *, make_parents: bool = False) -> int:
    """A descriptor (close-on-exec) of the regular file ``path`` below ``root``, opened with ``flags``.

    No component may be a link; the file must be a regular file (with ``O_CREAT``, a missing file is
    created). Raises :class:`UnsafePath` when that does not hold, FileNotFoundError when it is missing.
    ``root`` itself is trusted (ktes made it). ``make_parents`` creates missing directories, again without
    following links.
    """
    parts = _parts(root, path)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        dir_fd = _open_dir(root_fd, parts[:-1], path, make_parents)
    finally:
        os.close(root_fd)
    try:
        return _open_file(dir_fd, parts[-1], path, flags, mode)
    finally:
        os.close(dir_fd)


def _open_file(dir_fd: int, name: str, path: Path, flags: int, mode: int) -> int:
    for _ in range(3):  # the name may appear or vanish between the two steps: look again
        try:
            handle = os.open(name, _O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            if not flags & os.O_CREAT:
                raise
            try:  # O_EXCL: a fresh regular file, never through a (dangling) link
                return os.open(name, flags | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
            except FileExistsError:
                continue
        try:
            if not stat.S_ISREG(os.fstat(handle).st_mode):
                raise UnsafePath(path, "is a link or not a regular file")
            # Reopening through the O_PATH descriptor opens exactly the inode just checked.
            return os.open(f"/proc/self/fd/{handle}", (flags & ~os.O_CREAT & ~os.O_EXCL) | os.O_CLOEXEC)
        finally:
            os.close(handle)
    raise UnsafePath(path, "kept changing while it was opened")


def read_tail(root: Path, path: Path, limit: int) -> bytes:
    """The last ``limit`` bytes of the regular file ``path`` below ``root`` (b"" if missing or unsafe)."""
    try:
        fd = open_beneath(root, path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError, UnsafePath):
        return b""
    with os.fdopen(fd, "rb") as stream:
        size = stream.seek(0, os.SEEK_END)
        stream.seek(max(0, size - limit))
        return stream.read()
