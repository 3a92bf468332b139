"""Fixtures of the client tests: the clients' isolated venvs, the image Snakemake runs its jobs in, and a
``ktes serve`` configured for them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.ktes_server import KtesServer, StartServer
from tests.fixtures.servers import wait_for_port
from tests.integration.clients.snakemake_image import ensure_image

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def client_venvs() -> dict[str, Path]:
    """``{"cwltes": venv, "snakemake": venv, "snakemake-wheelhouse": dir}`` from scripts/client-venvs.sh
    (made on first use, cached afterwards)."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "client-venvs.sh"), "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert result.returncode == 0, f"scripts/client-venvs.sh failed:\n{result.stderr}"
    venvs: dict[str, Path] = {}
    for line in result.stdout.splitlines():
        name, _, path = line.partition("=")
        venvs[name] = Path(path)
    return venvs


@pytest.fixture(scope="session")
def snakemake_image(client_venvs: dict[str, Path]) -> str:
    """``localhost/ktes-test/snakemake:<hash>``: the Snakemake venv and its Python, as an image."""
    return ensure_image(client_venvs["snakemake"])


@pytest.fixture
def ktes_for_clients(ktes_server: StartServer, storage_env: dict[str, str]) -> KtesServer:
    """``ktes serve`` (local backend) with the S3/FTP settings of the test servers and otherwise the shipped
    defaults (so task containers are on the runtime's default network: Snakemake's jobs talk to S3 themselves)."""
    return ktes_server(env=storage_env)


@dataclass
class CwlTesFtpServer:
    """An FTP server as cwl-tes 0.3.0 can use it: port 21 (it connects to the URL's bare host), explicit TLS
    (it logs in with ``ftplib.FTP_TLS``), credentials from ``~/.netrc`` (it cannot parse them from the URL)."""

    host: str
    home: Path
    user: str = "cwl"
    password: str = "cwl-ftp-pass-do-not-show"

    @property
    def url(self) -> str:
        return f"ftp://{self.host}"

    def write_netrc(self, home: Path) -> None:
        netrc = home / ".netrc"
        netrc.write_text(f"machine {self.host} login {self.user} password {self.password}\n")
        netrc.chmod(0o600)


@pytest.fixture(scope="session")
def cwl_tes_ftp_server(server_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CwlTesFtpServer]:
    """pyftpdlib's own command, with TLS, on port 21 of the host's address (a process of its own)."""
    base = tmp_path_factory.mktemp("cwl-tes-ftp")
    cert = base / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ktes-test"),
            *("-keyout", str(cert), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    ftp = CwlTesFtpServer(host=server_address, home=base / "home")
    ftp.home.mkdir()
    log = (base / "pyftpdlib.log").open("wb")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "pyftpdlib", "-i", server_address, "-p", "21", "-w", "-d", str(ftp.home)),
            *("-u", ftp.user, "-P", ftp.password, "--tls", "--certfile", str(cert), "--keyfile", str(cert)),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(server_address, 21)
        yield ftp
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
