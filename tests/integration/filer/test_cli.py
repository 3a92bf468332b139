"""``ktes filer stage-in`` / ``stage-out`` end to end, as a task's pod runs them, against every server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from ktes.tes.models import Executor, FileType, Input, Output, Task, dump
from tests.fixtures.servers import DrsServer, FtpServer, HttpServer, S3Server


def ktes(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("ktes")
    argv = [binary] if binary else [sys.executable, "-c", "from ktes.cli.main import app; app()"]
    return subprocess.run(
        [*argv, *args], env={**os.environ, **env}, input=stdin, capture_output=True, text=True, timeout=120
    )


def test_stage_in_and_out_on_a_task_json(
    s3_server: S3Server,
    ftp_server: FtpServer,
    http_server: HttpServer,
    drs_server: DrsServer,
    storage_env: dict[str, str],
    tmp_path: Path,
) -> None:
    run = uuid.uuid4().hex[:8]
    client = s3_server.client()
    client.put_object(Bucket=s3_server.bucket, Key=f"{run}/in/a.txt", Body=b"s3 file")
    client.put_object(Bucket=s3_server.bucket, Key=f"{run}/ref/x/y.txt", Body=b"s3 dir")
    (ftp_server.home / run).mkdir()
    (ftp_server.home / run / "f.txt").write_text("ftp file")
    (http_server.root / f"{run}.txt").write_text("http file")
    drs = drs_server.add_object(run, http_server.url("files", f"{run}.txt"))
    s3 = f"s3://{s3_server.bucket}/{run}"
    task = Task(
        executors=[Executor(image="busybox", command=["true"], stdout="/logs/out.txt")],
        inputs=[
            Input(path="/data/in/s3.txt", url=f"{s3}/in/a.txt"),
            Input(path="/data/ref", url=f"{s3}/ref", type=FileType.DIRECTORY),
            Input(path="/data/in/ftp.txt", url=f"{ftp_server.url}/{run}/f.txt"),
            Input(path="/data/in/http.txt", url=http_server.url("redirect", f"{run}.txt")),
            Input(path="/data/in/drs.txt", url=drs),
            Input(path="/data/in/content.txt", content="inline"),
        ],
        outputs=[
            Output(path="/data/out/*.txt", path_prefix="/data/", url=f"{s3}/results"),
            Output(path="/data/out", url=f"{ftp_server.url}/{run}/out", type=FileType.DIRECTORY),
            Output(path="/data/out/one.txt", url=http_server.url("files", f"{run}/one.txt")),
        ],
    )
    task_file = tmp_path / "task.json"
    task_file.write_text(json.dumps(dump(task)))
    workspace = tmp_path / "ws"
    env = {**storage_env, "KTES_BACKEND": "kubernetes"}

    staged = ktes("filer", "stage-in", str(task_file), str(workspace), env=env)
    assert staged.returncode == 0, staged.stdout + staged.stderr
    assert json.loads(staged.stdout.splitlines()[-1]) == {"inputs": 6}
    assert (workspace / "data/in/s3.txt").read_text() == "s3 file"
    assert (workspace / "data/ref/x/y.txt").read_text() == "s3 dir"
    assert (workspace / "data/in/ftp.txt").read_text() == "ftp file"
    assert (workspace / "data/in/http.txt").read_text() == "http file"
    assert (workspace / "data/in/drs.txt").read_text() == "http file"
    assert (workspace / "data/in/content.txt").read_text() == "inline"
    assert (workspace / "data/out").is_dir() and (workspace / "logs").is_dir()

    (workspace / "data/out/one.txt").write_text("1")
    (workspace / "data/out/two.txt").write_text("22")
    report = tmp_path / "termination-log"
    done = ktes(
        "filer", "stage-out", "-", str(workspace), "--report", str(report), env=env, stdin=task_file.read_text()
    )
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = json.loads(done.stdout.splitlines()[-1])["outputs"]
    assert json.loads(report.read_text())["outputs"] == outputs
    assert [(o["url"], o["size_bytes"]) for o in outputs] == [
        (f"{s3}/results/out/one.txt", "1"),
        (f"{s3}/results/out/two.txt", "2"),
        (f"{ftp_server.url}/{run}/out/one.txt", "1"),
        (f"{ftp_server.url}/{run}/out/two.txt", "2"),
        (http_server.url("files", f"{run}/one.txt"), "1"),
    ]
    assert client.get_object(Bucket=s3_server.bucket, Key=f"{run}/results/out/two.txt")["Body"].read() == b"22"
    assert (ftp_server.home / run / "out/two.txt").read_text() == "22"
    assert (http_server.root / run / "one.txt").read_text() == "1"


def test_failures_print_one_json_error_without_secrets(
    ftp_server: FtpServer, s3_server: S3Server, storage_env: dict[str, str], tmp_path: Path
) -> None:
    task = Task(
        executors=[Executor(image="busybox", command=["true"])],
        inputs=[Input(path="/in/x", url=ftp_server.url_with_credentials("missing.txt"))],
        outputs=[Output(path="/out/missing.txt", url=f"s3://{s3_server.bucket}/x")],
    )
    text = json.dumps(dump(task))
    failed = ktes("filer", "stage-in", text, str(tmp_path / "ws"), env=storage_env)
    assert failed.returncode == 1
    message = json.loads(failed.stdout.splitlines()[-1])["error"]
    assert message == f"input {ftp_server.url}/missing.txt: no such file or directory"
    assert ftp_server.password not in failed.stdout + failed.stderr

    failed = ktes("filer", "stage-out", text, str(tmp_path / "ws"), env=storage_env)
    assert failed.returncode == 1
    assert json.loads(failed.stdout.splitlines()[-1]) == {"error": "output /out/missing.txt does not exist"}
    assert s3_server.secret_access_key not in failed.stdout + failed.stderr


def test_download_and_upload_commands(http_server: HttpServer, storage_env: dict[str, str], tmp_path: Path) -> None:
    (http_server.root / "cli.txt").write_text("cli")
    dest = tmp_path / "sub" / "cli.txt"
    assert ktes("filer", "download", http_server.url("files", "cli.txt"), str(dest), env=storage_env).returncode == 0
    assert dest.read_text() == "cli"
    assert ktes("filer", "upload", str(dest), http_server.url("files", "up/cli.txt"), env=storage_env).returncode == 0
    assert (http_server.root / "up" / "cli.txt").read_text() == "cli"
    missing = ktes("filer", "download", http_server.url("files", "none.txt"), str(dest), env=storage_env)
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["error"].endswith("none.txt: HTTP 404 Not Found")
