"""Opening beneath a root without following links (:mod:`ktes.fsafe`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ktes import fsafe

WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def write(root: Path, path: Path, data: bytes, make_parents: bool = False) -> None:
    fd = fsafe.open_beneath(root, path, WRITE, make_parents=make_parents)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)


def test_creates_and_reads_a_regular_file(tmp_path: Path) -> None:
    write(tmp_path, tmp_path / "a" / "b.txt", b"hello", make_parents=True)
    assert (tmp_path / "a" / "b.txt").read_bytes() == b"hello"
    assert fsafe.read_tail(tmp_path, tmp_path / "a" / "b.txt", 3) == b"llo"


def test_refuses_a_link_in_the_last_component(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("keep")
    root = tmp_path / "root"
    root.mkdir()
    (root / "x").symlink_to(outside)
    with pytest.raises(fsafe.UnsafePath):
        write(root, root / "x", b"no")
    assert outside.read_text() == "keep"
    assert fsafe.read_tail(root, root / "x", 100) == b""


def test_refuses_a_dangling_link(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "x").symlink_to(tmp_path / "new")
    with pytest.raises(fsafe.UnsafePath):
        write(root, root / "x", b"no")
    assert not (tmp_path / "new").exists()


def test_refuses_a_link_on_the_way(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "d").symlink_to(elsewhere)
    with pytest.raises(fsafe.UnsafePath):
        write(root, root / "d" / "x", b"no", make_parents=True)
    assert list(elsewhere.iterdir()) == []


def test_refuses_fifos_and_dotdot(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(fsafe.UnsafePath):
        fsafe.open_beneath(tmp_path, tmp_path / "fifo", os.O_RDONLY)
    with pytest.raises(fsafe.UnsafePath):
        fsafe.open_beneath(tmp_path, Path("a/../../x"), os.O_RDONLY)


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fsafe.open_beneath(tmp_path, tmp_path / "nope", os.O_RDONLY)
