"""What ``file://`` may reach: the allowed roots minus ktes's own files, dot-directories and credentials."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from ktes.config import Settings
from ktes.errors import PermanentTransferError
from ktes.filer.file import FilePlugin
from ktes.filer.roots import AllowedRoots, default_roots, own_paths


def test_default_roots_are_the_start_directory_and_temp_not_home(tmp_path: Path) -> None:
    roots = default_roots(Settings(backend="local"), cwd=tmp_path / "..")
    assert roots == (tmp_path.parent.resolve(), Path(tempfile.gettempdir()).resolve())


def test_a_start_in_slash_adds_no_root() -> None:
    assert default_roots(Settings(backend="local"), cwd=Path("/")) == (Path(tempfile.gettempdir()).resolve(),)


def test_kubernetes_and_configured_roots() -> None:
    assert default_roots(Settings(backend="kubernetes")) == ()
    assert default_roots(Settings(file_allowed_roots=[Path("/srv")])) == (Path("/srv"),)


def test_own_paths_hold_the_data_dir_database_and_config(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "d", database_url=f"sqlite:///{tmp_path}/elsewhere.db", config=tmp_path / "c.yaml"
    )
    own = own_paths(settings)
    assert (tmp_path / "d").resolve() in own
    for name in ("elsewhere.db", "elsewhere.db-wal", "elsewhere.db-shm", "c.yaml"):
        assert (tmp_path / name).resolve() in own


@pytest.fixture
def allowed(tmp_path: Path) -> AllowedRoots:
    return AllowedRoots.of([Path("/")], own=[tmp_path / "data"])


@pytest.mark.parametrize(
    "relative",
    ["data/ktes.db", "data/ktes.db-wal", "data", "x/../data/ktes.db", "link/ktes.db", "data/work/t1/in"],
)
def test_ktes_own_files_are_refused_whatever_the_roots(allowed: AllowedRoots, tmp_path: Path, relative: str) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "x").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data")
    assert allowed.refusal(tmp_path / relative) == "is ktes's own file or directory"


@pytest.mark.parametrize(
    "relative",
    [".ssh/id_ed25519", ".aws/credentials", ".kube/config", ".ssh/authorized_keys", ".bashrc", ".profile"],
)
def test_home_credentials_are_refused_even_when_home_is_a_root(relative: str) -> None:
    home = Path.home()
    allowed = AllowedRoots.of([home])
    assert allowed.refusal(home / relative) is not None


@pytest.mark.parametrize("name", ["id_rsa", "authorized_keys", "credentials", ".netrc", ".env", "prod.kubeconfig"])
def test_credential_names_are_refused_anywhere(tmp_path: Path, name: str) -> None:
    assert AllowedRoots.of([tmp_path]).refusal(tmp_path / "project" / name) == "is a credential or start-up file"


def test_ordinary_files_and_dot_files_outside_home_are_allowed(tmp_path: Path) -> None:
    allowed = AllowedRoots.of([tmp_path])
    assert allowed.refusal(tmp_path / "work" / "a1" / ".command.sh") is None
    assert allowed.refusal(tmp_path / "reads.fastq") is None
    assert allowed.refusal(tmp_path / ".git" / "config") == "is in a dot-directory (where tools keep keys and settings)"
    assert allowed.refusal(tmp_path / ".cache", directory=True) is not None
    assert "outside the allowed roots" in str(allowed.refusal(Path("/etc/passwd")))


@pytest.mark.parametrize("url", ["file:///tmp/a%00b", "file:///tmp/../etc/passwd", "file:///tmp/%2e%2e/etc/passwd"])
def test_nul_and_traversal_in_file_urls_are_refused(tmp_path: Path, url: str) -> None:
    plugin = FilePlugin(AllowedRoots.of([Path(tempfile.gettempdir())]))
    with pytest.raises(PermanentTransferError):
        plugin.download_file(url, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


@pytest.fixture
def alice_and_bob(tmp_path: Path) -> tuple[Path, Path]:
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    (alice / "sub").mkdir(parents=True)
    bob.mkdir()
    (alice / "sub" / "f.txt").write_text("alice's\n")
    (bob / "f.txt").write_text("bob's secret\n")
    return alice, bob


def swap_after_the_check(monkeypatch: pytest.MonkeyPatch, component: Path, target: Path) -> None:
    """Replace ``component`` by a link to ``target`` right after the roots were checked (the race a task's
    owner could run with a loop of renames while the task stages)."""
    checked = AllowedRoots.refusal

    def check_then_swap(self: AllowedRoots, path: Path, *, directory: bool = False) -> str | None:
        answer = checked(self, path, directory=directory)
        component.rename(component.with_name(component.name + ".before"))
        component.symlink_to(target)
        return answer

    monkeypatch.setattr(AllowedRoots, "refusal", check_then_swap)


def test_a_link_swapped_in_after_the_check_is_not_read_through(
    alice_and_bob: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = alice_and_bob
    plugin = FilePlugin([alice])
    swap_after_the_check(monkeypatch, alice / "sub", bob)
    dest = tmp_path / "dest.txt"
    with pytest.raises(PermanentTransferError, match="a link appeared"):
        plugin.download_file(f"file://{alice}/sub/f.txt", dest)
    assert not dest.exists() or "bob" not in dest.read_text()


def test_a_link_swapped_in_after_the_check_is_not_written_through(
    alice_and_bob: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = alice_and_bob
    plugin = FilePlugin([alice])
    src = tmp_path / "result.txt"
    src.write_text("planted\n")
    swap_after_the_check(monkeypatch, alice / "sub", bob)
    with pytest.raises(PermanentTransferError, match="a link appeared"):
        plugin.upload_file(src, f"file://{alice}/sub/new/planted.txt")
    assert sorted(p.name for p in bob.iterdir()) == ["f.txt"]


def test_files_are_read_and_written_below_the_roots(alice_and_bob: tuple[Path, Path], tmp_path: Path) -> None:
    alice, _ = alice_and_bob
    plugin = FilePlugin([alice])
    plugin.download_file(f"file://{alice}/sub/f.txt", tmp_path / "copy.txt")
    assert (tmp_path / "copy.txt").read_text() == "alice's\n"
    plugin.upload_file(tmp_path / "copy.txt", f"file://{alice}/out/deep/copy.txt")
    assert (alice / "out" / "deep" / "copy.txt").read_text() == "alice's\n"
    assert sorted(p.name for p in (alice / "out" / "deep").iterdir()) == ["copy.txt"]  # no partial file left


def test_a_fifo_is_refused_at_once_not_waited_on(alice_and_bob: tuple[Path, Path], tmp_path: Path) -> None:
    alice, _ = alice_and_bob
    os.mkfifo(alice / "pipe")
    with pytest.raises(PermanentTransferError, match="not a regular file"):
        FilePlugin([alice]).download_file(f"file://{alice}/pipe", tmp_path / "copy")
