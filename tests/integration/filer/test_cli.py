"""``ktes filer download`` / ``upload`` end to end (task staging itself runs in the backends: the local one
in-process, the Kubernetes one in the Pod's ``podside`` containers)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.fixtures.servers import FtpServer, HttpServer


def ktes(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("ktes")
    argv = [binary] if binary else [sys.executable, "-c", "from ktes.cli.main import app; app()"]
    return subprocess.run(
        [*argv, *args], env={**os.environ, **env}, input=stdin, capture_output=True, text=True, timeout=120
    )


def test_a_failing_download_prints_one_json_error_without_secrets(
    ftp_server: FtpServer, storage_env: dict[str, str], tmp_path: Path
) -> None:
    url = ftp_server.url_with_credentials("missing.txt")
    failed = ktes("filer", "download", url, str(tmp_path / "x"), env=storage_env)
    assert failed.returncode == 1
    message = json.loads(failed.stdout.splitlines()[-1])["error"]
    assert message.startswith(f"{ftp_server.url}/missing.txt")
    assert ftp_server.password not in failed.stdout + failed.stderr


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
