"""cwl-tes (CWL on TES) runs a two-step workflow through a real ``ktes serve``, as its users run it.

cwl-tes makes one TES task per CommandLineTool. Without ``--remote-storage-url`` it names its files with
``file://`` URLs on this machine (inputs where they are; outputs into its own output directories), which the
local backend reads and writes directly: ktes allows ``file://`` under the temp directory. With
``--remote-storage-url ftp://...`` it uploads the inputs to FTP first and has every task read and write there:
the set-up for a TES server that shares no filesystem with the client.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.ktes_server import KtesServer, StartServer
from tests.integration.clients.conftest import CwlTesFtpServer

pytestmark = pytest.mark.containers

WORKFLOW = Path(__file__).parent / "cwl" / "workflow.cwl"


def run_cwl_tes(
    venv: Path, server: KtesServer, work: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    (work / "extra.txt").write_text("from a file\n")
    (work / "job.yml").write_text("message: hello from cwl\nextra: {class: File, path: extra.txt}\n")
    command = [
        str(venv / "bin" / "cwl-tes"),
        "--tes",
        server.url,
        "--outdir",
        str(work / "results"),
        "--tmpdir-prefix",
        f"{work}/tmp/",
        "--tmp-outdir-prefix",
        f"{work}/out/",
        *extra,
        str(WORKFLOW),
        str(work / "job.yml"),
    ]
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(command, cwd=work, env=full_env, capture_output=True, text=True, timeout=300, check=False)


def assert_workflow_output(result: subprocess.CompletedProcess[str], work: Path) -> None:
    assert result.returncode == 0, f"cwl-tes failed:\n{result.stderr[-6000:]}"
    outputs = json.loads(result.stdout)
    combined = Path(outputs["combined"]["path"])
    assert combined == work / "results" / "combined.txt"
    assert combined.read_text() == "hello from cwl\nfrom a file\n"
    lines = Path(outputs["lines"]["path"])
    assert lines.read_text().strip() == "2"


def test_workflow_with_files_on_this_machine(
    client_venvs: dict[str, Path], ktes_for_clients: KtesServer, busybox_image: str, tmp_path: Path
) -> None:
    result = run_cwl_tes(client_venvs["cwltes"], ktes_for_clients, tmp_path)
    assert_workflow_output(result, tmp_path)


def test_workflow_with_files_on_ftp(
    client_venvs: dict[str, Path],
    ktes_server: StartServer,
    storage_env: dict[str, str],
    busybox_image: str,
    cwl_tes_ftp_server: CwlTesFtpServer,
    tmp_path: Path,
) -> None:
    ftp = cwl_tes_ftp_server
    ftp.write_netrc(tmp_path)
    server = ktes_server(env={**storage_env, "KTES_FTP_USER": ftp.user, "KTES_FTP_PASSWORD": ftp.password})
    result = run_cwl_tes(
        client_venvs["cwltes"], server, tmp_path, "--remote-storage-url", f"{ftp.url}/cwl", env={"HOME": str(tmp_path)}
    )
    assert_workflow_output(result, tmp_path)
    # The input and every task's outputs went through the FTP server.
    stored = {p.name for p in (ftp.home / "cwl").rglob("*") if p.is_file()}
    assert {"extra.txt", "said.txt", "combined.txt", "lines.txt"} <= stored
