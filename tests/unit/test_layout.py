"""Container paths -> one workspace, and the few mount points that cover them (both backends use it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktes.tes import layout
from ktes.tes.models import Executor, FileType, Input, Output, Task


def task(**fields: object) -> Task:
    return Task(executors=[Executor(image="i", command=["c"])], **fields)


@pytest.mark.parametrize(
    ("path", "wildcard"),
    [("/out/*.txt", True), ("/out/a?.txt", True), ("/out/[ab].txt", True), ("/out/a.txt", False)],
)
def test_wildcards(path: str, wildcard: bool) -> None:
    assert layout.has_wildcard(path) is wildcard


def test_an_escaped_wildcard_is_a_plain_character() -> None:
    assert not layout.has_wildcard(r"/out/a\*.txt")


@pytest.mark.parametrize(
    ("path", "base"),
    [("/out/*.txt", "/out"), ("/out/run*/x/*.txt", "/out"), ("/*.txt", "/"), ("/a/b/c?", "/a/b")],
)
def test_glob_base_is_the_longest_wildcard_free_directory(path: str, base: str) -> None:
    assert layout.glob_base(path) == base


def test_host_path_puts_every_container_path_under_the_workspace() -> None:
    ws = Path("/w")
    assert layout.host_path(ws, "/data/in.txt") == Path("/w/data/in.txt")
    assert layout.host_path(ws, "/data//x/./y") == Path("/w/data/x/y")
    assert layout.host_path(ws, "/") == Path("/w")


def test_needed_directories_cover_inputs_outputs_volumes_and_stdio() -> None:
    t = task(
        inputs=[Input(path="/in/a.txt", content="x"), Input(path="/ref", url="s3://b/r/", type=FileType.DIRECTORY)],
        outputs=[
            Output(path="/out/r.txt", url="s3://b/r.txt"),
            Output(path="/res", url="s3://b/res/", type=FileType.DIRECTORY),
            Output(path="/logs/*.log", path_prefix="/logs/", url="s3://b/logs/"),
        ],
        volumes=["/scratch"],
    )
    t.executors[0].stdout = "/std/out.txt"
    assert layout.needed_directories(t) == {"/in", "/ref", "/out", "/res", "/logs", "/scratch", "/std"}


def test_mount_points_are_the_outermost_paths_and_never_the_root() -> None:
    t = task(
        inputs=[Input(path="/data/in/a.txt", content="x"), Input(path="/ref.fa", content="y")],
        outputs=[Output(path="/data/out.txt", url="s3://b/o"), Output(path="/top.txt", url="s3://b/t")],
        volumes=["/data"],
    )
    # /data covers /data/in/a.txt and /data/out.txt's parent; /top.txt's parent is / (never mounted)
    assert layout.mount_points(t) == ["/data", "/ref.fa"]


def test_sibling_paths_with_a_common_prefix_are_both_mounted() -> None:
    t = task(volumes=["/data", "/data2"])
    assert layout.mount_points(t) == ["/data", "/data2"]
