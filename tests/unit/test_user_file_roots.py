"""With per-user file roots, staging checks them again when it touches the files: a link a user makes after
their task was accepted does not lead into another user's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktes.backends.local.staging import FilerStaging
from ktes.config import Settings
from ktes.errors import PermanentTransferError
from ktes.filer.registry import Filer
from ktes.tes.models import Executor, Input, Output, Task


def settings(tmp_path: Path) -> Settings:
    roots = [f"{tmp_path}/home/{{user}}"]
    return Settings(data_dir=tmp_path / "data", file_allowed_roots=[tmp_path / "home"], file_user_roots=roots)


def a_task(owner: str | None, **fields: object) -> Task:
    task = Task(executors=[Executor(image="a", command=["b"])], **fields)  # type: ignore[arg-type]
    task.owner = owner
    return task


def test_a_link_made_after_submission_does_not_reach_another_users_files(tmp_path: Path) -> None:
    alice, bob = tmp_path / "home" / "alice", tmp_path / "home" / "bob"
    alice.mkdir(parents=True)
    bob.mkdir(parents=True)
    (bob / "secret.txt").write_text("bob's\n")
    (alice / "mine.txt").write_text("alice's\n")
    staging = FilerStaging(Filer(settings(tmp_path)))
    workspace = tmp_path / "ws"
    workspace.mkdir()

    own = a_task("alice", inputs=[Input(url=f"file://{alice}/mine.txt", path="/in/mine.txt")])
    staging.stage_inputs(own, workspace)
    assert (workspace / "in" / "mine.txt").read_text() == "alice's\n"

    (alice / "later").symlink_to(bob)  # made after the task was accepted
    sneaky = a_task("alice", inputs=[Input(url=f"file://{alice}/later/secret.txt", path="/in/x.txt")])
    with pytest.raises(PermanentTransferError, match="outside the allowed roots"):
        staging.stage_inputs(sneaky, workspace)
    (workspace / "out.txt").write_text("result\n")
    into_bob = a_task("alice", outputs=[Output(url=f"file://{alice}/later/planted.txt", path="/out.txt")])
    with pytest.raises(PermanentTransferError, match="outside the allowed roots"):
        staging.stage_outputs(into_bob, workspace)
    assert not (bob / "planted.txt").exists()


def test_tasks_without_an_owner_keep_the_servers_roots(tmp_path: Path) -> None:
    bob = tmp_path / "home" / "bob"
    bob.mkdir(parents=True)
    (bob / "f.txt").write_text("x")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    unowned = a_task(None, inputs=[Input(url=f"file://{bob}/f.txt", path="/in/f.txt")])
    FilerStaging(Filer(settings(tmp_path))).stage_inputs(unowned, workspace)
    assert (workspace / "in" / "f.txt").read_text() == "x"
