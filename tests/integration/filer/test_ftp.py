"""FTP against pyftpdlib: files and directories both ways, credentials from the URL or the settings."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ktes.config import Settings
from ktes.errors import PermanentTransferError
from ktes.filer.registry import Filer
from ktes.filer.staging import stage_inputs, stage_outputs
from ktes.tes.models import Executor, FileType, Input, Output, Task
from tests.fixtures.servers import FtpServer


def _task(inputs: list[Input] | None = None, outputs: list[Output] | None = None) -> Task:
    return Task(executors=[Executor(image="busybox", command=["true"])], inputs=inputs, outputs=outputs)


@pytest.fixture
def filer(storage_settings: Settings) -> Filer:
    return Filer(storage_settings)


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def test_files_and_directories_in(ftp_server: FtpServer, filer: Filer, prefix: str, tmp_path: Path) -> None:
    for path, text in {"one.txt": "1", "ref/a.txt": "a", "ref/deep/b b.txt": "b"}.items():
        (ftp_server.home / prefix / path).parent.mkdir(parents=True, exist_ok=True)
        (ftp_server.home / prefix / path).write_text(text)
    task = _task(
        inputs=[
            Input(path="/in/one.txt", url=f"{ftp_server.url}/{prefix}/one.txt"),  # credentials from settings
            Input(path="/in/two.txt", url=ftp_server.url_with_credentials(f"{prefix}/one.txt")),
            Input(path="/in/ref", url=f"{ftp_server.url}/{prefix}/ref", type=FileType.DIRECTORY),
        ]
    )
    stage_inputs(task, tmp_path, filer)
    assert (tmp_path / "in/one.txt").read_text() == "1"
    assert (tmp_path / "in/two.txt").read_text() == "1"
    assert (tmp_path / "in/ref/a.txt").read_text() == "a"
    assert (tmp_path / "in/ref/deep/b b.txt").read_text() == "b"


def test_outputs_make_their_directories(ftp_server: FtpServer, filer: Filer, prefix: str, tmp_path: Path) -> None:
    for path, text in {"data/r.txt": "r", "data/dir/a.txt": "a", "data/dir/s/b.txt": "b", "data/g/x.csv": "x"}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    base = f"{ftp_server.url}/{prefix}"
    task = _task(
        outputs=[
            Output(path="/data/r.txt", url=f"{base}/new/deeper/r.txt"),
            Output(path="/data/dir", url=f"{base}/dir", type=FileType.DIRECTORY),
            Output(path="/data/g/*.csv", path_prefix="/data/", url=f"{base}/glob"),
        ]
    )
    logs = stage_outputs(task, tmp_path, filer)
    assert [o.url.removeprefix(base) for o in logs] == [
        "/new/deeper/r.txt",
        "/dir/a.txt",
        "/dir/s/b.txt",
        "/glob/g/x.csv",
    ]
    home = ftp_server.home / prefix
    assert (home / "new/deeper/r.txt").read_text() == "r"
    assert (home / "dir/s/b.txt").read_text() == "b"
    assert (home / "glob/g/x.csv").read_text() == "x"


def test_failures_without_secrets(ftp_server: FtpServer, storage_settings: Settings, tmp_path: Path) -> None:
    filer = Filer(storage_settings.model_copy(update={"ftp_user": None, "ftp_password": None}))
    missing = ftp_server.url_with_credentials("no/such/file.txt")
    with pytest.raises(PermanentTransferError) as caught:
        stage_inputs(_task(inputs=[Input(path="/in/x", url=missing)]), tmp_path, filer)
    assert str(caught.value) == f"input {ftp_server.url}/no/such/file.txt: no such file or directory"
    assert ftp_server.password not in str(caught.value)

    bad = missing.replace(ftp_server.password, "wrong-password")
    with pytest.raises(PermanentTransferError) as caught:
        stage_inputs(_task(inputs=[Input(path="/in/x", url=bad)]), tmp_path, filer)
    assert str(caught.value) == f"input {ftp_server.url}/no/such/file.txt: login refused (access denied)"

    with pytest.raises(PermanentTransferError, match="no such file or directory"):
        task = _task(inputs=[Input(path="/in/d", url=f"{ftp_server.url}/nodir", type=FileType.DIRECTORY)])
        stage_inputs(task, tmp_path, Filer(storage_settings))


def test_ftps_both_ways_with_a_verified_certificate(
    ftps_server: FtpServer, storage_settings: Settings, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ftps_server.ca_file is not None
    (ftps_server.home / prefix).mkdir()
    (ftps_server.home / prefix / "in.txt").write_text("over tls")
    filer = Filer(storage_settings.model_copy(update={"ftp_user": None, "ftp_password": None}))
    task = _task(
        inputs=[Input(path="/in/x.txt", url=ftps_server.url_with_credentials(f"{prefix}/in.txt"))],
        outputs=[Output(path="/in/x.txt", url=ftps_server.url_with_credentials(f"{prefix}/out/x.txt"))],
    )
    with pytest.raises(
        PermanentTransferError, match=r"^input ftps://.*/in.txt: TLS failed \(CERTIFICATE_VERIFY_FAILED\)"
    ):
        stage_inputs(task, tmp_path, filer)
    monkeypatch.setenv("SSL_CERT_FILE", str(ftps_server.ca_file))
    stage_inputs(task, tmp_path, filer)
    assert (tmp_path / "in/x.txt").read_text() == "over tls"
    logs = stage_outputs(task, tmp_path, filer)
    assert logs[0].url == f"{ftps_server.url}/{prefix}/out/x.txt"
    assert (ftps_server.home / prefix / "out/x.txt").read_text() == "over tls"
