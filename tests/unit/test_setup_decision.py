"""scripts/setup installs podman exactly when ``ktes serve`` would find no container runtime that answers.

Each case runs the real script (``--dry-run``: it says what it would install and installs nothing) with a PATH
that holds only stub runtimes and this Python: a fresh machine's ``docker`` CLI whose daemon does not answer
must not count as a runtime.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NO_DAEMON = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"


def stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def setup_dry_run(tmp_path: Path, stubs: dict[str, str]) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub(bin_dir, "python3", f'exec {sys.executable} "$@"')
    for name, body in stubs.items():
        stub(bin_dir, name, body)
    return subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "setup"), "--dry-run"],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "stubs",
    [
        pytest.param({"docker": f'echo "{NO_DAEMON}" >&2; exit 1'}, id="docker-cli-without-daemon"),
        pytest.param({}, id="nothing"),
        pytest.param({"podman": 'echo "Error: cannot set up namespace" >&2; exit 125'}, id="podman-that-fails"),
    ],
)
def test_podman_is_installed_when_no_runtime_answers(tmp_path: Path, stubs: dict[str, str]) -> None:
    result = setup_dry_run(tmp_path, stubs)
    assert result.returncode == 0, result.stderr
    assert "setup: installing podman runc (apt)" in result.stderr
    assert "no container runtime that answers" in result.stderr
    if "docker" in stubs:
        assert "docker does not answer (Cannot connect to the Docker daemon" in result.stderr


@pytest.mark.parametrize(
    ("stubs", "chosen"),
    [
        pytest.param({"docker": 'echo "27.0.1"'}, "docker", id="docker-whose-daemon-answers"),
        pytest.param({"podman": "echo '{\"host\": {}}'"}, "podman", id="podman-that-answers"),
    ],
)
def test_nothing_is_installed_when_a_runtime_answers(tmp_path: Path, stubs: dict[str, str], chosen: str) -> None:
    result = setup_dry_run(tmp_path, stubs)
    assert result.returncode == 0, result.stderr
    assert f"setup: container runtime: {chosen} {tmp_path / 'bin' / chosen}" in result.stderr
    assert "installing" not in result.stderr
