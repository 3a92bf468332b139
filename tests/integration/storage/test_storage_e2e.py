"""Every storage scheme through a real ``ktes serve``, on the local backend and on Kubernetes, as a client sees it.

Per backend, one module-wide batch: a server against the test storage servers, a second one whose S3 secret is
wrong (against the S3 server that checks credentials); every task is submitted at once, and each test reads
the finished task it is about (FULL view) plus what reached the storage servers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fixtures.ktes_server import KtesServer, start_server
from tests.fixtures.servers import DrsServer, FtpServer, HttpServer, S3Server
from tests.integration.storage.conftest import StorageBackend
from tests.integration.storage.scenario import (
    CSV_OUTPUTS,
    DIR_OUTPUTS,
    FLAKY_FAILURES,
    MIB,
    Scenario,
    Storage,
    submit_all,
    wait_all,
)

LARGE_BYTES = 50 * MIB
#: parts of 8 MiB above 8 MiB: the 50 MiB output goes up in 7 parts.
MULTIPART = {"KTES_S3_MULTIPART_THRESHOLD_MB": "8", "KTES_S3_MULTIPART_CHUNK_MB": "8"}
WRONG_SECRET = "wrong-secret-never-to-be-shown-4f1c2b"


@dataclass
class Batch:
    """The finished tasks of one backend (name -> FULL view) and where they ran."""

    backend: StorageBackend
    scenario: Scenario
    server: KtesServer
    wrong_secret_server: KtesServer
    tasks: dict[str, dict[str, Any]]
    large_sha256: str

    def task(self, name: str) -> dict[str, Any]:
        return self.tasks[name]


@pytest.fixture(scope="module")
def batch(
    storage_backend: StorageBackend,
    s3_server: S3Server,
    s3_auth_server: S3Server,
    ftp_server: FtpServer,
    http_server: HttpServer,
    drs_server: DrsServer,
    storage_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Batch]:
    scenario = Scenario(Storage(s3_server, ftp_server, http_server, drs_server), storage_backend.image)
    drs_url = scenario.seed()
    large_sha256 = scenario.seed_large(LARGE_BYTES, tmp_path_factory.mktemp("large"))
    servers: list[KtesServer] = []
    try:
        env = {**storage_env, **storage_backend.server_env(), **MULTIPART}
        server = start_server(tmp_path_factory.mktemp(f"ktes-{storage_backend.name}"), env)
        servers.append(server)
        wrong_env = {
            **storage_env,
            **storage_backend.server_env(),
            "KTES_S3_ENDPOINT_URL": s3_auth_server.endpoint_url,
            "KTES_S3_ACCESS_KEY_ID": s3_auth_server.access_key_id,
            "KTES_S3_SECRET_ACCESS_KEY": WRONG_SECRET,
        }
        wrong_secret_server = start_server(tmp_path_factory.mktemp(f"ktes-{storage_backend.name}-wrong"), wrong_env)
        servers.append(wrong_secret_server)
        ids = submit_all(
            server.tes_url,
            {
                "everything": scenario.everything_task(drs_url),
                "large": scenario.large_task(),
                "missing key": scenario.reading("missing key", scenario.s3_url("no/such/key.txt")),
                "http 404": scenario.reading("http 404", scenario.http_url("files", "no/such/file.txt")),
                "ftp password": scenario.reading(
                    "ftp password", ftp_server.url_with_credentials(f"{scenario.run}/no/such/file.txt")
                ),
            },
        )
        wrong_ids = submit_all(
            wrong_secret_server.tes_url,
            {"wrong secret": scenario.reading("wrong secret", f"s3://{s3_auth_server.bucket}/private.txt")},
        )
        tasks = wait_all(server.tes_url, ids, storage_backend.within_seconds)
        tasks |= wait_all(wrong_secret_server.tes_url, wrong_ids, storage_backend.within_seconds)
        yield Batch(storage_backend, scenario, server, wrong_secret_server, tasks, large_sha256)
    finally:
        for running in servers:
            running.stop()


def system_logs(task: dict[str, Any]) -> str:
    return "\n".join(line for log in task.get("logs") or [] for line in log.get("system_logs") or [])


def test_every_scheme_in_and_out(
    batch: Batch, s3_server: S3Server, ftp_server: FtpServer, http_server: HttpServer
) -> None:
    task, scenario = batch.task("everything"), batch.scenario
    assert task["state"] == "COMPLETE", system_logs(task)
    (executor_log,) = task["logs"][0]["logs"]
    assert executor_log["exit_code"] == 0
    assert executor_log["stdout"] == scenario.listing()

    uploaded = {entry["url"]: int(entry["size_bytes"]) for entry in task["logs"][0]["outputs"]}
    assert uploaded == scenario.expected_outputs()
    assert len(task["logs"][0]["outputs"]) == len(uploaded)

    everything = scenario.concatenation()
    s3 = s3_server.client()

    def s3_object(key: str) -> bytes:
        return s3.get_object(Bucket=s3_server.bucket, Key=f"{scenario.run}/{key}")["Body"].read()

    assert s3_object("out/all.txt") == everything
    for name, data in DIR_OUTPUTS.items():
        assert s3_object(f"out/dir/{name}") == data
        assert (ftp_server.home / scenario.run / "out" / "dir" / name).read_bytes() == data
    for name, data in CSV_OUTPUTS.items():
        assert s3_object(f"out/csv/{name}") == data
    listed = s3.list_objects_v2(Bucket=s3_server.bucket, Prefix=f"{scenario.run}/out/csv/")
    assert sorted(item["Key"] for item in listed["Contents"]) == [
        f"{scenario.run}/out/csv/{name}" for name in sorted(CSV_OUTPUTS)
    ]
    assert (ftp_server.home / scenario.run / "out" / "all.txt").read_bytes() == everything
    assert (http_server.root / scenario.run / "out" / "all.txt").read_bytes() == everything
    assert ("PUT", f"/files/{scenario.run}/out/all.txt") in http_server.requests

    flaky = ("GET", f"/flaky/{FLAKY_FAILURES}/{scenario.run}/flaky.txt")
    assert http_server.requests.count(flaky) == FLAKY_FAILURES + 1  # two 503s, then the file
    assert ("GET", f"/redirect/{scenario.run}/redirected.txt") in http_server.requests
    assert ("GET", f"/files/{scenario.run}/redirected.txt") in http_server.requests
    assert ("GET", f"/files/{scenario.run}/drs.txt") in http_server.requests  # the DRS object's access URL


def test_a_large_file_in_and_out_through_s3_in_parts(batch: Batch, s3_server: S3Server) -> None:
    task, scenario = batch.task("large"), batch.scenario
    assert task["state"] == "COMPLETE", system_logs(task)
    (uploaded,) = task["logs"][0]["outputs"]
    assert (uploaded["url"], int(uploaded["size_bytes"])) == (scenario.s3_url("large/out.bin"), LARGE_BYTES)
    assert scenario.object_sha256("large/out.bin") == batch.large_sha256
    head = s3_server.client().head_object(Bucket=s3_server.bucket, Key=f"{scenario.run}/large/out.bin")
    assert head["ContentLength"] == LARGE_BYTES
    assert head["ETag"].strip('"').endswith("-7")  # a multipart upload's ETag counts its parts


def test_a_missing_s3_key_names_the_url_and_the_reason(batch: Batch) -> None:
    task = batch.task("missing key")
    assert task["state"] == "SYSTEM_ERROR"
    assert task["logs"][0].get("logs") in (None, [])  # the executor never ran
    logs = system_logs(task)
    assert batch.scenario.s3_url("no/such/key.txt") in logs
    assert "no such key" in logs.lower()


def test_a_wrong_s3_secret_is_access_denied_and_never_shown(batch: Batch, s3_auth_server: S3Server) -> None:
    task = batch.task("wrong secret")
    assert task["state"] == "SYSTEM_ERROR"
    logs = system_logs(task)
    assert f"s3://{s3_auth_server.bucket}/private.txt" in logs
    assert "access denied" in logs.lower()
    assert WRONG_SECRET not in json.dumps(task)
    assert WRONG_SECRET not in batch.wrong_secret_server.output()


def test_an_http_404_input_names_the_url_and_the_status(batch: Batch) -> None:
    task = batch.task("http 404")
    assert task["state"] == "SYSTEM_ERROR"
    logs = system_logs(task)
    assert batch.scenario.http_url("files", "no/such/file.txt") in logs
    assert "404" in logs


def test_an_ftp_password_in_the_url_never_shows(batch: Batch, ftp_server: FtpServer) -> None:
    task = batch.task("ftp password")
    assert task["state"] == "SYSTEM_ERROR"
    logs = system_logs(task)
    assert batch.scenario.ftp_url("no/such/file.txt") in logs  # the URL, without user:password@
    assert ftp_server.password not in logs
    assert ftp_server.password not in batch.server.output()


def test_an_ftp_password_in_the_url_is_not_in_the_task_response(batch: Batch, ftp_server: FtpServer) -> None:
    assert ftp_server.password not in json.dumps(batch.task("ftp password"))


def test_configured_secrets_appear_in_no_task_and_no_log(
    batch: Batch, s3_server: S3Server, ftp_server: FtpServer
) -> None:
    secrets = (s3_server.secret_access_key, WRONG_SECRET, ftp_server.password)
    for name, task in batch.tasks.items():
        if name == "ftp password":  # its own input URL holds the FTP password (the test above)
            task = {key: value for key, value in task.items() if key != "inputs"}
        document = json.dumps(task)
        assert not [secret for secret in secrets if secret in document], name
    for server in (batch.server, batch.wrong_secret_server):
        output = server.output()
        assert output, "the server logged nothing at level info"
        assert not [secret for secret in secrets if secret in output]
