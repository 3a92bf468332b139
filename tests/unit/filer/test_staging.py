"""Staging with the file plugin: what a task sees in its workspace, and what it leaves behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktes.config import Settings
from ktes.errors import PermanentTransferError
from ktes.filer.file import file_url
from ktes.filer.registry import Filer
from ktes.filer.staging import prepare_workspace, stage_inputs, stage_outputs
from ktes.tes.models import Executor, FileType, Input, Output, OutputFileLog, Task


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    root = tmp_path / "storage"
    root.mkdir()
    return root


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def filer(storage: Path) -> Filer:
    return Filer(Settings(file_allowed_roots=[storage], transfer_retries=0))


def _task(inputs: list[Input] | None = None, outputs: list[Output] | None = None, **extra: object) -> Task:
    return Task.model_validate(
        {
            "executors": [Executor(image="busybox", command=["true"], **extra).model_dump(exclude_none=True)],
            "inputs": [i.model_dump(exclude_none=True) for i in inputs or []],
            "outputs": [o.model_dump(exclude_none=True) for o in outputs or []],
        }
    )


def test_prepare_workspace_makes_every_needed_directory(workspace: Path) -> None:
    task = _task(
        inputs=[Input(path="/in/a.txt", content="x"), Input(path="/ref", url="/r", type=FileType.DIRECTORY)],
        outputs=[
            Output(path="/out/result.txt", url="/o"),
            Output(path="/results", url="/o", type=FileType.DIRECTORY),
            Output(path="/globs/run*/x.txt", path_prefix="/globs", url="/o"),
        ],
        stdout="/logs/stdout.txt",
        stdin="/in/a.txt",
    )
    task.volumes = ["/scratch"]
    prepare_workspace(task, workspace)
    for directory in ("in", "ref", "out", "results", "globs", "scratch", "logs"):
        assert (workspace / directory).is_dir(), directory
    assert not (workspace / "in" / "a.txt").exists()  # input files are made by stage_inputs, not as directories


def test_inputs_content_files_and_directories(storage: Path, workspace: Path, filer: Filer) -> None:
    (storage / "ref" / "sub").mkdir(parents=True)
    (storage / "ref" / "one.txt").write_text("one")
    (storage / "ref" / "sub" / "two.txt").write_text("two")
    (storage / "data.bin").write_bytes(b"\x00\x01" * 1000)
    task = _task(
        inputs=[
            Input(path="/in/content.txt", content="hello\n", url="file:///ignored"),
            Input(path="/in/data.bin", url=file_url(storage / "data.bin")),
            Input(path="/in/plain.bin", url=str(storage / "data.bin")),
            Input(path="/in/ref", url=file_url(storage / "ref"), type=FileType.DIRECTORY),
        ]
    )
    prepare_workspace(task, workspace)
    stage_inputs(task, workspace, filer)
    assert (workspace / "in/content.txt").read_text() == "hello\n"
    assert (workspace / "in/data.bin").read_bytes() == b"\x00\x01" * 1000
    assert (workspace / "in/plain.bin").read_bytes() == b"\x00\x01" * 1000
    assert (workspace / "in/ref/one.txt").read_text() == "one"
    assert (workspace / "in/ref/sub/two.txt").read_text() == "two"


def test_input_outside_the_allowed_roots_is_refused(workspace: Path, filer: Filer, storage: Path) -> None:
    task = _task(inputs=[Input(path="/in/x", url="file:///etc/hostname")])
    with pytest.raises(PermanentTransferError) as caught:
        stage_inputs(task, workspace, filer)
    assert str(caught.value) == f"input file:///etc/hostname is outside the allowed roots ({storage.resolve()})"


def test_a_link_out_of_the_allowed_roots_is_refused(workspace: Path, filer: Filer, storage: Path) -> None:
    (storage / "sneaky").symlink_to("/etc/hostname")
    task = _task(inputs=[Input(path="/in/x", url=str(storage / "sneaky"))])
    with pytest.raises(PermanentTransferError, match="is outside the allowed roots"):
        stage_inputs(task, workspace, filer)


def test_kubernetes_allows_no_files_by_default(workspace: Path, storage: Path) -> None:
    (storage / "a").write_text("a")
    filer = Filer(Settings(backend="kubernetes", transfer_retries=0))
    with pytest.raises(PermanentTransferError, match=r"outside the allowed roots \(none configured\)"):
        stage_inputs(_task(inputs=[Input(path="/in/a", url=str(storage / "a"))]), workspace, filer)


def test_missing_input_and_unknown_scheme(workspace: Path, filer: Filer, storage: Path) -> None:
    with pytest.raises(PermanentTransferError, match=r"^input file://.*/nope: no such file$"):
        stage_inputs(_task(inputs=[Input(path="/in/x", url=file_url(storage / "nope"))]), workspace, filer)
    with pytest.raises(PermanentTransferError, match=r"^input gopher://h/x: unsupported URL scheme 'gopher'"):
        stage_inputs(_task(inputs=[Input(path="/in/x", url="gopher://h/x")]), workspace, filer)


def _written(workspace: Path, *files: tuple[str, str]) -> None:
    for path, text in files:
        target = workspace / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def test_outputs_file_directory_and_glob(workspace: Path, filer: Filer, storage: Path) -> None:
    _written(
        workspace,
        ("/data/result.txt", "result"),
        ("/data/dir/a.txt", "aa"),
        ("/data/dir/deep/b.txt", "bbb"),
        ("/data/out/a.txt", "1"),
        ("/data/out/b.txt", "22"),
        ("/data/out/.hidden.txt", "no"),
        ("/data/out/c.csv", "no"),
    )
    base = file_url(storage)
    task = _task(
        outputs=[
            Output(path="/data/result.txt", url=f"{base}/r/result.txt"),
            Output(path="/data/dir", url=f"{base}/d", type=FileType.DIRECTORY),
            Output(path="/data/out/*.txt", path_prefix="/data/", url=f"{base}/run1"),
            Output(path="/data/none/*.txt", path_prefix="/data/", url=f"{base}/none"),
        ]
    )
    logs = stage_outputs(task, workspace, filer)
    assert logs == [
        OutputFileLog(url=f"{base}/r/result.txt", path="/data/result.txt", size_bytes="6"),
        OutputFileLog(url=f"{base}/d/a.txt", path="/data/dir/a.txt", size_bytes="2"),
        OutputFileLog(url=f"{base}/d/deep/b.txt", path="/data/dir/deep/b.txt", size_bytes="3"),
        OutputFileLog(url=f"{base}/run1/out/a.txt", path="/data/out/a.txt", size_bytes="1"),
        OutputFileLog(url=f"{base}/run1/out/b.txt", path="/data/out/b.txt", size_bytes="2"),
    ]
    assert (storage / "d/deep/b.txt").read_text() == "bbb"
    assert (storage / "run1/out/b.txt").read_text() == "22"
    assert not (storage / "none").exists()


def test_glob_matching_directories_uploads_them_recursively(workspace: Path, filer: Filer, storage: Path) -> None:
    _written(workspace, ("/w/run1/x.txt", "x"), ("/w/run1/sub/y.txt", "y"), ("/w/other/z.txt", "z"))
    task = _task(outputs=[Output(path="/w/run*", path_prefix="/w", url=str(storage / "o"))])
    logs = stage_outputs(task, workspace, filer)
    assert [(o.path, o.url) for o in logs] == [
        ("/w/run1/sub/y.txt", f"{storage}/o/run1/sub/y.txt"),
        ("/w/run1/x.txt", f"{storage}/o/run1/x.txt"),
    ]


def test_missing_output_names_its_path(workspace: Path, filer: Filer, storage: Path) -> None:
    workspace.mkdir()
    task = _task(outputs=[Output(path="/data/out.txt", url=str(storage / "out.txt"))])
    with pytest.raises(PermanentTransferError, match=r"^output /data/out.txt does not exist$"):
        stage_outputs(task, workspace, filer)


def test_output_links_cannot_reach_the_host(workspace: Path, filer: Filer, storage: Path) -> None:
    (workspace / "data").mkdir(parents=True)
    (workspace / "data" / "out.txt").symlink_to("/etc/hostname")  # /etc/hostname of the container
    (workspace / "data" / "real.txt").write_text("real")
    (workspace / "data" / "alias.txt").symlink_to("/data/real.txt")
    with pytest.raises(PermanentTransferError, match="does not exist"):
        stage_outputs(_task(outputs=[Output(path="/data/out.txt", url=str(storage / "x"))]), workspace, filer)
    logs = stage_outputs(_task(outputs=[Output(path="/data/alias.txt", url=str(storage / "y"))]), workspace, filer)
    assert logs[0].size_bytes == "4"
    assert (storage / "y").read_text() == "real"


def test_output_outside_the_allowed_roots_is_refused(workspace: Path, filer: Filer) -> None:
    _written(workspace, ("/data/out.txt", "x"))
    task = _task(outputs=[Output(path="/data/out.txt", url="file:///etc/ktes-should-not-exist")])
    with pytest.raises(PermanentTransferError, match=r"^output file:///etc/ktes-should-not-exist is outside"):
        stage_outputs(task, workspace, filer)


def test_filer_schemes() -> None:
    assert Filer(Settings()).schemes() == ("drs", "file", "ftp", "ftps", "http", "https", "s3")
