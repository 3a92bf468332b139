"""How ``ktes run`` options become a TES task (``ktes.cli.run_spec``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ktes.cli.run_spec import BadOption, input_spec, output_spec, run_task


def test_a_plain_relative_input_path_is_a_file_on_this_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reads").mkdir()
    (tmp_path / "ref.fa").write_text(">x\n")
    assert input_spec("ref.fa:/data/ref.fa") == {"url": f"{tmp_path}/ref.fa", "path": "/data/ref.fa", "type": "FILE"}
    assert input_spec("reads:/data/reads") == {"url": f"{tmp_path}/reads", "path": "/data/reads", "type": "DIRECTORY"}


def test_an_input_url_keeps_its_own_colons() -> None:
    assert input_spec("http://h:8080/a/b.txt:/in/b.txt") == {
        "url": "http://h:8080/a/b.txt",
        "path": "/in/b.txt",
        "type": "FILE",
    }


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("/out/r.txt:s3://bucket/r.txt", {"path": "/out/r.txt", "url": "s3://bucket/r.txt", "type": "FILE"}),
        ("/out/:file:///tmp/out", {"path": "/out", "url": "file:///tmp/out", "type": "DIRECTORY"}),
        ("/out/r*/x?:file:///o/", {"path": "/out/r*/x?", "url": "file:///o/", "path_prefix": "/out/", "type": "FILE"}),
    ],
)  # fmt: skip
def test_output_specs(item: str, expected: dict[str, str]) -> None:
    assert output_spec(item) == expected


def test_a_relative_output_url_is_a_path_on_this_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert output_spec("/out/x:results/x")["url"] == os.path.join(tmp_path, "results/x")


def test_the_smallest_run_task() -> None:
    assert run_task("busybox", ["true"]) == {"executors": [{"image": "busybox", "command": ["true"]}]}


@pytest.mark.parametrize("item", ["no-colon", ":/in/x"])
def test_input_without_a_url(item: str) -> None:
    with pytest.raises(BadOption, match="--input wants URL:PATH"):
        input_spec(item)


def test_output_without_a_url() -> None:
    with pytest.raises(BadOption, match="--output wants PATH:URL"):
        output_spec("/out/x")
