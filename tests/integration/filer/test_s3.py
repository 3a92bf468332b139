"""S3 against moto in server mode: files, prefixes, globs, multipart, and plain failure reasons."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from ktes.config import Settings
from ktes.errors import PermanentTransferError, TemporaryTransferError
from ktes.filer.registry import Filer
from ktes.filer.staging import stage_inputs, stage_outputs
from ktes.tes.models import Executor, FileType, Input, Output, Task
from tests.fixtures.servers import S3Server


def _task(inputs: list[Input] | None = None, outputs: list[Output] | None = None) -> Task:
    return Task(executors=[Executor(image="busybox", command=["true"])], inputs=inputs, outputs=outputs)


@pytest.fixture
def filer(storage_settings: Settings) -> Filer:
    return Filer(storage_settings)


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def _write(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)


def test_files_and_prefixes_in(s3_server: S3Server, filer: Filer, prefix: str, tmp_path: Path) -> None:
    client = s3_server.client()
    for key, body in {"one.txt": b"1", "ref/a.txt": b"a", "ref/deep/b.txt": b"b", "ref/folder/": b""}.items():
        client.put_object(Bucket=s3_server.bucket, Key=f"{prefix}/{key}", Body=body)
    base = f"s3://{s3_server.bucket}/{prefix}"
    task = _task(
        inputs=[
            Input(path="/in/one.txt", url=f"{base}/one.txt"),
            Input(path="/in/ref", url=f"{base}/ref", type=FileType.DIRECTORY),
            Input(path="/in/ref2", url=f"{base}/ref/", type=FileType.DIRECTORY),
        ]
    )
    stage_inputs(task, tmp_path, filer)
    assert (tmp_path / "in/one.txt").read_bytes() == b"1"
    for ref in ("ref", "ref2"):
        assert sorted(p.relative_to(tmp_path / "in" / ref).as_posix() for p in (tmp_path / "in" / ref).rglob("*")) == [
            "a.txt",
            "deep",
            "deep/b.txt",
        ]


def test_outputs_files_directories_globs(s3_server: S3Server, filer: Filer, prefix: str, tmp_path: Path) -> None:
    _write(
        tmp_path,
        {"data/result.txt": b"r", "data/dir/a.txt": b"aa", "data/dir/s/b.txt": b"bbb", "data/out/x.txt": b"x"},
    )
    base = f"s3://{s3_server.bucket}/{prefix}"
    task = _task(
        outputs=[
            Output(path="/data/result.txt", url=f"{base}/result.txt"),
            Output(path="/data/dir", url=f"{base}/dir", type=FileType.DIRECTORY),
            Output(path="/data/out/*.txt", path_prefix="/data/", url=f"{base}/run1"),  # DIGEST §6
        ]
    )
    logs = stage_outputs(task, tmp_path, filer)
    assert [(o.url, o.path, o.size_bytes) for o in logs] == [
        (f"{base}/result.txt", "/data/result.txt", "1"),
        (f"{base}/dir/a.txt", "/data/dir/a.txt", "2"),
        (f"{base}/dir/s/b.txt", "/data/dir/s/b.txt", "3"),
        (f"{base}/run1/out/x.txt", "/data/out/x.txt", "1"),
    ]
    listed = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix)
    assert sorted(o["Key"].removeprefix(prefix) for o in listed["Contents"]) == [
        "/dir/a.txt",
        "/dir/s/b.txt",
        "/result.txt",
        "/run1/out/x.txt",
    ]


def test_large_files_go_in_parts(s3_server: S3Server, storage_settings: Settings, prefix: str, tmp_path: Path) -> None:
    settings = storage_settings.model_copy(update={"s3_multipart_threshold_mb": 5, "s3_multipart_chunk_mb": 5})
    filer = Filer(settings)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * 1024 * 1024))
    url = f"s3://{s3_server.bucket}/{prefix}/big.bin"
    filer.for_url(url).upload_file(big, url)
    head = s3_server.client().head_object(Bucket=s3_server.bucket, Key=f"{prefix}/big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # three parts: 5 + 5 + 2 MiB
    back = tmp_path / "back.bin"
    filer.for_url(url).download_file(url, back)
    assert back.read_bytes() == big.read_bytes()


def test_failures_are_named_without_secrets(s3_server: S3Server, filer: Filer, prefix: str, tmp_path: Path) -> None:
    cases = {
        f"s3://{s3_server.bucket}/{prefix}/nope.txt": "no such key",
        f"s3://no-such-bucket-{prefix}/x.txt": "no such bucket",
    }
    for url, reason in cases.items():
        with pytest.raises(PermanentTransferError) as caught:
            stage_inputs(_task(inputs=[Input(path="/in/x", url=url)]), tmp_path, filer)
        assert str(caught.value) == f"input {url}: {reason}"
        assert s3_server.secret_access_key not in str(caught.value)
    url = f"s3://{s3_server.bucket}/{prefix}/empty"
    with pytest.raises(PermanentTransferError, match="no objects under this prefix"):
        stage_inputs(_task(inputs=[Input(path="/in/d", url=url, type=FileType.DIRECTORY)]), tmp_path, filer)
    (tmp_path / "f.txt").write_text("f")
    out = _task(outputs=[Output(path="/f.txt", url=f"s3://no-such-bucket-{prefix}/f.txt")])
    with pytest.raises(PermanentTransferError, match=r"^output s3://no-such-bucket-.*/f.txt: no such bucket$"):
        stage_outputs(out, tmp_path, filer)


def test_access_denied(s3_auth_server: S3Server, storage_settings: Settings, tmp_path: Path) -> None:
    url = f"s3://{s3_auth_server.bucket}/private.txt"
    right = storage_settings.model_copy(
        update={
            "s3_endpoint_url": s3_auth_server.endpoint_url,
            "s3_access_key_id": SecretStr(s3_auth_server.access_key_id),
            "s3_secret_access_key": SecretStr(s3_auth_server.secret_access_key),
        }
    )
    stage_inputs(_task(inputs=[Input(path="/in/x", url=url)]), tmp_path, Filer(right))
    assert (tmp_path / "in" / "x").read_bytes() == b"secret data\n"

    wrong = right.model_copy(update={"s3_secret_access_key": SecretStr("not-the-secret")})
    with pytest.raises(PermanentTransferError) as caught:
        stage_inputs(_task(inputs=[Input(path="/in/y", url=url)]), tmp_path, Filer(wrong))
    assert str(caught.value) == f"input {url}: access denied (SignatureDoesNotMatch)"
    assert "not-the-secret" not in str(caught.value)


@pytest.fixture
def silent_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def test_timeout(storage_settings: Settings, silent_port: int, tmp_path: Path) -> None:
    settings = storage_settings.model_copy(
        update={
            "s3_endpoint_url": f"http://127.0.0.1:{silent_port}",
            "http_timeout_seconds": 0.3,
            "transfer_retries": 0,
        }
    )
    with pytest.raises(TemporaryTransferError, match=r"^input s3://b/k: timed out \(no progress for 0.3 s\)$"):
        stage_inputs(_task(inputs=[Input(path="/in/x", url="s3://b/k")]), tmp_path, Filer(settings))
