"""HTTP(S) against a real HTTP server: GET with redirects and retries, PUT uploads, plain failure reasons."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktes.config import Settings
from ktes.errors import PermanentTransferError, TemporaryTransferError
from ktes.filer.registry import Filer
from ktes.filer.staging import stage_inputs, stage_outputs
from ktes.tes.models import Executor, FileType, Input, Output, Task
from tests.fixtures.servers import HttpServer


def _task(inputs: list[Input] | None = None, outputs: list[Output] | None = None) -> Task:
    return Task(executors=[Executor(image="busybox", command=["true"])], inputs=inputs, outputs=outputs)


@pytest.fixture
def filer(storage_settings: Settings) -> Filer:
    return Filer(storage_settings)


def test_download_direct_redirected_and_after_transient_failures(
    http_server: HttpServer, filer: Filer, tmp_path: Path
) -> None:
    (http_server.root / "data").mkdir(exist_ok=True)
    (http_server.root / "data" / "in.txt").write_bytes(b"payload\n" * 1000)
    task = _task(
        inputs=[
            Input(path="/in/direct.txt", url=http_server.url("files", "data/in.txt")),
            Input(path="/in/redirected.txt", url=http_server.url("redirect", "data/in.txt")),
            Input(path="/in/flaky.txt", url=http_server.url("flaky", "2/data/in.txt")),
        ]
    )
    stage_inputs(task, tmp_path, filer)
    for name in ("direct", "redirected", "flaky"):
        assert (tmp_path / "in" / f"{name}.txt").read_bytes() == b"payload\n" * 1000
    assert http_server.requests.count(("GET", "/flaky/2/data/in.txt")) == 3  # two 503s, then the file


def test_not_found_is_named_plainly(http_server: HttpServer, filer: Filer, tmp_path: Path) -> None:
    url = http_server.url("files", "missing.txt")
    with pytest.raises(PermanentTransferError) as caught:
        stage_inputs(_task(inputs=[Input(path="/in/x", url=url)]), tmp_path, filer)
    assert str(caught.value) == f"input {url}: HTTP 404 Not Found"


def test_unavailable_gives_up_after_the_retries(http_server: HttpServer, filer: Filer, tmp_path: Path) -> None:
    url = http_server.url("status", "503")
    before = http_server.requests.count(("GET", "/status/503"))
    with pytest.raises(TemporaryTransferError, match=r"HTTP 503 Service Unavailable \(tried \d+ times in [\d.]+ s\)$"):
        stage_inputs(_task(inputs=[Input(path="/in/x", url=url)]), tmp_path, filer)
    assert http_server.requests.count(("GET", "/status/503")) - before == 1 + filer.settings.transfer_retries


def test_credentials_in_the_url_are_used_and_never_shown(http_server: HttpServer, filer: Filer, tmp_path: Path) -> None:
    (http_server.root / "private.txt").write_text("private")
    good = http_server.url("auth", "private.txt", credentials=True)
    stage_inputs(_task(inputs=[Input(path="/in/p.txt", url=good)]), tmp_path, filer)
    assert (tmp_path / "in/p.txt").read_text() == "private"

    with pytest.raises(PermanentTransferError) as caught:
        stage_inputs(
            _task(inputs=[Input(path="/in/q.txt", url=http_server.url("auth", "nope", credentials=True))]),
            tmp_path,
            filer,
        )
    assert http_server.password not in str(caught.value)
    assert str(caught.value).endswith(": HTTP 404 Not Found")
    with pytest.raises(PermanentTransferError, match=r"HTTP 401 Unauthorized \(access denied\)$"):
        stage_inputs(
            _task(inputs=[Input(path="/in/r.txt", url=http_server.url("auth", "private.txt"))]), tmp_path, filer
        )


def test_directory_input_is_refused_with_a_reason(http_server: HttpServer, filer: Filer, tmp_path: Path) -> None:
    task = _task(inputs=[Input(path="/in/d", url=http_server.url("files", "data"), type=FileType.DIRECTORY)])
    with pytest.raises(PermanentTransferError, match="HTTP has no directory listing"):
        stage_inputs(task, tmp_path, filer)


def test_outputs_are_put(http_server: HttpServer, filer: Filer, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    for path, text in {
        "data/one.txt": "1",
        "data/dir/a.txt": "a",
        "data/dir/s/b.txt": "b",
        "data/g/x.log": "x",
    }.items():
        (ws / path).parent.mkdir(parents=True, exist_ok=True)
        (ws / path).write_text(text)
    base = http_server.url("files", "up")
    task = _task(
        outputs=[
            Output(path="/data/one.txt", url=f"{base}/one.txt"),
            Output(path="/data/dir", url=f"{base}/dir", type=FileType.DIRECTORY),
            Output(path="/data/g/*.log", path_prefix="/data", url=f"{base}/globbed"),
        ]
    )
    logs = stage_outputs(task, ws, filer)
    assert [o.url.removeprefix(base) for o in logs] == ["/one.txt", "/dir/a.txt", "/dir/s/b.txt", "/globbed/g/x.log"]
    assert (http_server.root / "up/dir/s/b.txt").read_text() == "b"
    assert (http_server.root / "up/globbed/g/x.log").read_text() == "x"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def test_timeout_is_named(storage_settings: Settings, silent_port: int, tmp_path: Path) -> None:
    filer = Filer(storage_settings.model_copy(update={"http_timeout_seconds": 0.3, "transfer_retries": 1}))
    url = f"http://127.0.0.1:{silent_port}/x"
    with pytest.raises(TemporaryTransferError) as caught:
        stage_inputs(_task(inputs=[Input(path="/in/x", url=url)]), tmp_path, filer)
    assert str(caught.value).startswith(f"input {url}: timed out (no progress for 0.3 s) (tried 2 times in ")
