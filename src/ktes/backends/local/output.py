"""Reading an executor's stdout or stderr file while it grows, without following links a task planted.

A task controls its workspace: it can replace its stdout file, or a directory on the way to it, with a link
to a host file, or with a FIFO that would block a reader. So a file is opened one component at a time
beneath its root (``O_NOFOLLOW`` on every step, ``O_NONBLOCK`` so a FIFO cannot hang us) and read only if
it is a regular file. Python has no ``openat2(RESOLVE_BENEATH)``, hence the walk by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncGenerator, Callable
from pathlib import Path, PurePosixPath

#: Bytes read per step.
CHUNK_BYTES = 64 * 1024
#: How often a follower looks for new bytes (the file is not watched: one look costs one pread).
POLL_SECONDS = 0.2

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


def open_beneath(root: Path, relative: PurePosixPath) -> int | None:
    """A read-only descriptor of the regular file ``root/relative``, never following a link on the way
    (``root`` itself is ktes's own directory). None when it is missing, not a regular file, or a link."""
    parts = [part for part in relative.parts if part not in ("", "/", ".")]
    if not parts or ".." in parts:
        return None
    try:
        current = os.open(root, _DIR_FLAGS)
    except OSError:
        return None
    try:
        for part in parts[:-1]:
            following = os.open(part, _DIR_FLAGS, dir_fd=current)
            os.close(current)
            current = following
        fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=current)
    except OSError:  # missing, a link (ELOOP / ENOTDIR), or not permitted
        return None
    finally:
        os.close(current)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def read_tail(root: Path, relative: PurePosixPath, limit: int) -> bytes | None:
    """The last ``limit`` bytes of the regular file ``root/relative`` (opened as :func:`open_beneath` does),
    None when it cannot be opened safely."""
    fd = open_beneath(root, relative)
    if fd is None:
        return None
    try:
        size = os.fstat(fd).st_size
        start = max(0, size - limit)
        chunks: list[bytes] = []
        while start < size and (data := os.pread(fd, min(CHUNK_BYTES, size - start), start)):
            chunks.append(data)
            start += len(data)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


async def read_file(
    root: Path,
    relative: PurePosixPath,
    offset: int,
    follow: bool,
    ended: Callable[[], bool],
    poll_seconds: float = POLL_SECONDS,
) -> AsyncGenerator[bytes, None]:
    """The bytes of ``root/relative`` from ``offset``; with ``follow``, also those written later, until
    ``ended()`` says the writer is done (the bytes written before that are all read). Nothing if the file
    cannot be opened safely. The descriptor stays open to the end, so a file removed meanwhile still reads."""
    fd = open_beneath(root, relative)
    if fd is None:
        return
    try:
        position = max(0, offset)
        while True:
            data = os.pread(fd, CHUNK_BYTES, position)
            if data:
                position += len(data)
                yield data
                continue
            if not follow:
                return
            done = ended()
            data = os.pread(fd, CHUNK_BYTES, position)  # what was written before the writer ended
            if data:
                position += len(data)
                yield data
                continue
            if done:
                return
            await asyncio.sleep(poll_seconds)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
