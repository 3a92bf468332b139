"""Reading an executor's output files: never through a link or a FIFO a task planted (the attacker first)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path, PurePosixPath

from ktes.backends.local.output import open_beneath, read_file


async def collect(root: Path, relative: str, offset: int = 0, follow: bool = False, ended: bool = True) -> bytes:
    chunks = read_file(root, PurePosixPath(relative), offset, follow, lambda: ended, poll_seconds=0.01)
    return b"".join([chunk async for chunk in chunks])


async def test_a_stdout_file_replaced_by_a_link_to_a_host_file_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("host secret")
    workspace = tmp_path / "work"
    (workspace / "out").mkdir(parents=True)
    (workspace / "out" / "stdout").symlink_to(secret)
    assert open_beneath(workspace, PurePosixPath("out/stdout")) is None
    assert await collect(workspace, "out/stdout") == b""


async def test_a_directory_on_the_way_replaced_by_a_link_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "stdout").write_text("host file")
    workspace = tmp_path / "work"
    workspace.mkdir()
    (workspace / "out").symlink_to(outside)
    assert await collect(workspace, "out/stdout") == b""


async def test_a_fifo_does_not_hang_the_reader(tmp_path: Path) -> None:
    workspace = tmp_path / "work"
    workspace.mkdir()
    os.mkfifo(workspace / "stdout")
    assert await asyncio.wait_for(collect(workspace, "stdout"), 5) == b""


async def test_dot_dot_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "work").mkdir()
    assert open_beneath(tmp_path / "work", PurePosixPath("../file")) is None


async def test_a_regular_file_is_read_from_the_offset_and_followed_until_the_writer_ends(tmp_path: Path) -> None:
    out = tmp_path / "0.out"
    out.write_bytes(b"hello ")
    done = False

    async def writer() -> None:
        nonlocal done
        await asyncio.sleep(0.05)
        with out.open("ab") as stream:
            stream.write(b"world\n")
        done = True

    writing = asyncio.create_task(writer())
    chunks = read_file(tmp_path, PurePosixPath("0.out"), 2, True, lambda: done, poll_seconds=0.01)
    assert b"".join([chunk async for chunk in chunks]) == b"llo world\n"
    await writing


async def test_a_removed_file_still_reads_to_its_end_once_open(tmp_path: Path) -> None:
    out = tmp_path / "0.out"
    out.write_bytes(b"a" * 100_000)
    chunks = read_file(tmp_path, PurePosixPath("0.out"), 0, False, lambda: True)
    first = await chunks.__anext__()
    out.unlink()
    rest = b"".join([chunk async for chunk in chunks])
    assert len(first) + len(rest) == 100_000
