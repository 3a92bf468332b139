"""The executors' helper ships inside the ktes package, built from the committed source."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from ktes.run import entrypoint

SOURCE = Path(__file__).resolve().parents[2] / "tools" / "entrypoint" / "entrypoint.c"


def source_sha256() -> str:
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()


def test_the_binary_for_this_machine_was_built_from_the_committed_source() -> None:
    done = subprocess.run([str(entrypoint.packaged()), "--version"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    assert done.stdout.split() == ["ktes-entrypoint", source_sha256()], "run tools/entrypoint/build and commit"


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_every_shipped_architecture_embeds_the_committed_source_hash(machine: str) -> None:
    binary = entrypoint.packaged(machine).read_bytes()
    assert binary[:4] == b"\x7fELF"
    assert f"ktes-entrypoint {source_sha256()}".encode() in binary, "run tools/entrypoint/build and commit"
    assert len(binary) < 1024 * 1024  # it reaches task Pods in a ConfigMap


def test_the_resolver_names_machine_kinds_and_takes_an_override(tmp_path: Path) -> None:
    assert entrypoint.packaged("amd64") == entrypoint.packaged("x86_64")
    assert entrypoint.packaged("arm64") == entrypoint.packaged("aarch64")
    with pytest.raises(entrypoint.EntrypointMissing, match="not for riscv64"):
        entrypoint.packaged("riscv64")
    own = tmp_path / "helper"
    own.write_bytes(b"x")
    assert entrypoint.entrypoint_path(own) == own
    with pytest.raises(entrypoint.EntrypointMissing, match="does not exist"):
        entrypoint.entrypoint_path(tmp_path / "missing")
