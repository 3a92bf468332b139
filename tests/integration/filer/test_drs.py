"""DRS inputs: resolved through a DRS server, fetched by the plugin of the access URL."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from ktes.config import Settings
from ktes.errors import PermanentTransferError
from ktes.filer.registry import Filer
from ktes.filer.staging import stage_inputs, stage_outputs
from ktes.tes.models import Executor, Input, Output, Task
from tests.fixtures.servers import DrsServer, HttpServer, S3Server


def _task(inputs: list[Input] | None = None, outputs: list[Output] | None = None) -> Task:
    return Task(executors=[Executor(image="busybox", command=["true"])], inputs=inputs, outputs=outputs)


def test_drs_objects_by_access_url_and_access_id(
    drs_server: DrsServer, http_server: HttpServer, s3_server: S3Server, storage_settings: Settings, tmp_path: Path
) -> None:
    name = uuid.uuid4().hex[:8]
    (http_server.root / f"drs-{name}.txt").write_text("from http")
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=f"drs/{name}.txt", Body=b"from s3")
    (http_server.root / f"drs-private-{name}.txt").write_text("private")
    token = base64.b64encode(f"{http_server.user}:{http_server.password}".encode()).decode()
    by_url = drs_server.add_object(f"a-{name}", http_server.url("files", f"drs-{name}.txt"))
    by_id = drs_server.add_object(f"b-{name}", f"s3://{s3_server.bucket}/drs/{name}.txt", via_access_id=True)
    with_headers = drs_server.add_object(
        f"c-{name}", http_server.url("auth", f"drs-private-{name}.txt"), headers=[f"Authorization: Basic {token}"]
    )
    task = _task(
        inputs=[
            Input(path="/in/a.txt", url=by_url),
            Input(path="/in/b.txt", url=by_id),
            Input(path="/in/c.txt", url=with_headers),
        ]
    )
    stage_inputs(task, tmp_path, Filer(storage_settings))
    assert (tmp_path / "in/a.txt").read_text() == "from http"
    assert (tmp_path / "in/b.txt").read_text() == "from s3"
    assert (tmp_path / "in/c.txt").read_text() == "private"


def test_drs_failures(
    drs_server: DrsServer, http_server: HttpServer, storage_settings: Settings, tmp_path: Path
) -> None:
    filer = Filer(storage_settings)
    missing = f"drs://{drs_server.host}/no-such-object"
    with pytest.raises(PermanentTransferError) as caught:
        stage_inputs(_task(inputs=[Input(path="/in/x", url=missing)]), tmp_path, filer)
    assert str(caught.value) == f"input {missing}: HTTP 404 Not Found"

    signed = http_server.url("files", "gone.txt") + "?X-Amz-Signature=topsecret"
    gone = drs_server.add_object(f"gone-{uuid.uuid4().hex[:6]}", signed)
    with pytest.raises(PermanentTransferError) as caught:
        stage_inputs(_task(inputs=[Input(path="/in/x", url=gone)]), tmp_path, filer)
    assert str(caught.value) == f"input {gone}: HTTP 404 Not Found (fetching its access URL)"

    odd = drs_server.add_object(f"odd-{uuid.uuid4().hex[:6]}", "gs://bucket/x", access_type="gs")
    with pytest.raises(PermanentTransferError, match=r"no access method ktes can use \(offered: gs\)$"):
        stage_inputs(_task(inputs=[Input(path="/in/x", url=odd)]), tmp_path, filer)

    (tmp_path / "o.txt").write_text("o")
    with pytest.raises(PermanentTransferError, match="DRS is read-only"):
        stage_outputs(_task(outputs=[Output(path="/o.txt", url=odd)]), tmp_path, filer)
