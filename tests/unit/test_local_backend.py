"""The local backend's run, adopt and cancel logic, with a fake container CLI that runs commands on the host."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from ktes.backends.local import executions
from ktes.backends.local.backend import LocalBackend
from ktes.config import Settings
from ktes.run.observations import Ended, ExecutorFinished, ExecutorStarted, Initializing, Observation, SystemLog
from ktes.run.result import RESULT_MARKER, ExecutorReport, ExecutorResult
from ktes.tes.models import Executor, OutputFileLog, Resources, State, Task

FAKE_CLI = textwrap.dedent(
    """\
    import json, os, subprocess, sys
    args = sys.argv[1:]
    with open(os.path.join(os.path.dirname(sys.argv[0]), "calls"), "a") as calls:
        calls.write(args[0] + "\\n")
    if args[:2] == ["image", "exists"]:
        sys.exit(0 if args[2].startswith("present") else 1)
    if args[0] == "pull":
        print("Error: initializing source docker://" + args[1] + ": no registry here", file=sys.stderr)
        sys.exit(125)
    if args[0] in ("ps", "rm"):
        sys.exit(0)
    if args[0] == "info":
        print("{}")
        sys.exit(0)
    if args[0] in ("wait", "logs"):
        print("Error: no container with name or ID " + args[1] + " found", file=sys.stderr)
        sys.exit(125)
    if args[0] == "run":
        # the container's paths are the host paths its -v options bind (the helper runs on the host)
        mounts = [args[i + 1].split(":")[:2] for i, a in enumerate(args) if a == "-v"]
        def host(word):
            for source, target in sorted(mounts, key=lambda m: -len(m[1])):
                if word == target or word.startswith(target + "/"):
                    return source + word[len(target):]
            return word
        entry = next(a for a in args if a.startswith("--entrypoint="))
        rest = args[args.index(entry) + 2:]
        image = args[args.index(entry) + 1]
        if "broken" in image:
            print("Error: runc: create failed", file=sys.stderr)
            sys.exit(125)
        # "mute": the runtime loses the container's output (the helper's result line with it)
        quiet = {"stdout": subprocess.DEVNULL} if "mute" in image else {}
        sys.exit(subprocess.call([host(w) for w in json.loads(entry.split("=", 1)[1]) + rest], **quiet))
    sys.exit(2)
    """
)


class FakeStaging:
    def __init__(self) -> None:
        self.outputs_staged = 0

    def prepare_workspace(self, task: Task, workspace: Path) -> None:
        workspace.mkdir(parents=True, exist_ok=True)

    def stage_inputs(self, task: Task, workspace: Path) -> None:
        pass

    def stage_outputs(self, task: Task, workspace: Path) -> list[OutputFileLog]:
        self.outputs_staged += 1
        return []


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Observation] = []
        self.started = asyncio.Event()

    async def __call__(self, task_id: str, observation: Observation, /) -> None:
        self.seen.append(observation)
        if isinstance(observation, ExecutorStarted):
            self.started.set()

    def kinds(self) -> list[str]:
        return [type(o).__name__ for o in self.seen]

    @property
    def ended(self) -> Ended:
        last = self.seen[-1]
        assert isinstance(last, Ended)
        return last

    def exit_codes(self) -> list[int]:
        return [o.log.exit_code for o in self.seen if isinstance(o, ExecutorFinished)]


@pytest.fixture
async def backend(tmp_path: Path) -> LocalBackend:
    cli = tmp_path / "fakepodman"
    cli.write_text(f"#!{sys.executable}\n{FAKE_CLI}")
    cli.chmod(0o755)
    settings = Settings(
        data_dir=tmp_path / "data",
        local_runtime=str(cli),
        local_global_args=[],
        local_run_args=[],
        local_max_cpus=2,
        local_max_ram_gb=4,
    )
    made = LocalBackend(settings, staging=FakeStaging())
    await made.start()
    return made


def task(*commands: list[str], image: str = "present:1", ignore: bool = False, cpus: int | None = None) -> Task:
    return Task(
        id=f"t{abs(hash((tuple(map(tuple, commands)), image))) % 10**8}",
        executors=[Executor(image=image, command=c, ignore_error=ignore) for c in commands],
        resources=Resources(cpu_cores=cpus) if cpus else None,
    )


async def test_a_run_reports_in_order_and_cleans_up(backend: LocalBackend, tmp_path: Path) -> None:
    report = Recorder()
    job = task(["sh", "-c", "echo out; echo err >&2"])
    await backend.run(job, report)
    assert report.kinds() == ["Initializing", "ExecutorStarted", "ExecutorFinished", "Ended"]
    assert isinstance(report.seen[0], Initializing) and report.seen[0].metadata["runtime"] == "podman"
    finished = report.seen[2]
    assert isinstance(finished, ExecutorFinished)
    assert (finished.log.stdout, finished.log.stderr, finished.log.exit_code) == ("out\n", "err\n", 0)
    assert report.ended.state == State.COMPLETE
    assert list((tmp_path / "data" / "work").iterdir()) == []
    assert list((tmp_path / "data" / "run").iterdir()) == []


async def test_first_failure_stops_unless_ignored(backend: LocalBackend) -> None:
    stopped = Recorder()
    await backend.run(task(["sh", "-c", "exit 3"], ["true"]), stopped)
    assert stopped.exit_codes() == [3] and stopped.ended.state == State.EXECUTOR_ERROR
    ignored = Recorder()
    await backend.run(task(["sh", "-c", "exit 3"], ["true"], ignore=True), ignored)
    assert ignored.exit_codes() == [3, 0] and ignored.ended.state == State.COMPLETE


async def test_a_result_line_the_runtime_lost_is_read_from_the_state_directory(backend: LocalBackend) -> None:
    """podman's output can lose a short-lived container's last line, the helper's result among it (its CLI
    still exits 0): the result the helper also left in the state directory counts, not a SYSTEM_ERROR."""
    report = Recorder()
    await backend.run(task(["sh", "-c", "echo done; exit 3"], image="present-mute:1", ignore=True), report)
    assert report.exit_codes() == [3]
    assert [o.log.stdout for o in report.seen if isinstance(o, ExecutorFinished)] == ["done\n"]
    assert report.ended.state == State.COMPLETE


async def test_missing_image_names_it_without_running(backend: LocalBackend) -> None:
    report = Recorder()
    await backend.run(task(["true"], image="absent/x:1"), report)
    assert report.kinds() == ["Initializing", "Ended"]
    assert report.ended.state == State.SYSTEM_ERROR
    assert (report.ended.reason or "").startswith("image absent/x:1 (executor 0) could not be pulled: not found")
    assert "no registry here" in (report.ended.reason or "")


async def test_runtime_failure_is_a_system_error(backend: LocalBackend) -> None:
    report = Recorder()
    await backend.run(task(["true"], image="present-but-broken:1"), report)
    assert report.exit_codes() == []  # the command never ran
    assert report.ended.state == State.SYSTEM_ERROR
    assert "could not run executor 0" in (report.ended.reason or "")
    assert "runc: create failed" in (report.ended.reason or "")


async def test_a_command_that_cannot_start_is_an_executor_error_with_a_sentence(backend: LocalBackend) -> None:
    report = Recorder()
    await backend.run(task(["no-such-command-here", "x"]), report)
    assert report.exit_codes() == [127]
    assert report.ended.state == State.EXECUTOR_ERROR
    assert report.ended.reason == (
        "executor 0 could not start its command: exec no-such-command-here: No such file or directory"
    )


async def test_an_ignored_failure_gets_a_system_log(backend: LocalBackend) -> None:
    report = Recorder()
    await backend.run(task(["sh", "-c", "exit 5"], ["true"], ignore=True), report)
    assert report.ended.state == State.COMPLETE
    assert [o.line for o in report.seen if isinstance(o, SystemLog)] == [
        "executor 0 exited with code 5 (ignored: ignore_error is set)"
    ]


async def test_too_big_fails_at_once_naming_the_limit(backend: LocalBackend) -> None:
    big = task(["true"], cpus=64)
    assert backend.admit(big)
    report = Recorder()
    await backend.run(big, report)
    assert report.ended.state == State.SYSTEM_ERROR and "local_max_cpus" in (report.ended.reason or "")


class BlockingStaging(FakeStaging):
    """Staging whose inputs of one task take until ``release`` is set (a download that does not come)."""

    def __init__(self, slow_task_id: str) -> None:
        super().__init__()
        self.slow_task_id = slow_task_id
        self.release = threading.Event()
        self.slow_started = threading.Event()

    def stage_inputs(self, task: Task, workspace: Path) -> None:
        if task.id == self.slow_task_id:
            self.slow_started.set()
            assert self.release.wait(60)


def backend_with(tmp_path: Path, staging: FakeStaging, **settings: Any) -> LocalBackend:
    cli = tmp_path / "fakepodman"
    cli.write_text(f"#!{sys.executable}\n{FAKE_CLI}")
    cli.chmod(0o755)
    values: dict[str, Any] = {"local_global_args": [], "local_run_args": [], "local_max_ram_gb": 4, **settings}
    return LocalBackend(Settings(data_dir=tmp_path / "data", local_runtime=str(cli), **values), staging=staging)


async def test_a_task_waiting_on_its_download_holds_no_cpu(tmp_path: Path) -> None:
    """One CPU: a task stuck staging its inputs must not keep the task behind it from running."""
    slow, quick = task(["true"], image="present:slow"), task(["true"], image="present:quick")
    assert slow.id is not None
    staging = BlockingStaging(slow.id)
    backend = backend_with(tmp_path, staging, local_max_cpus=1)
    await backend.start()
    assert backend.admit(slow) and backend.admit(quick)
    slow_run = asyncio.create_task(backend.run(slow, Recorder()))
    await asyncio.to_thread(staging.slow_started.wait, 30)
    assert backend._admission.used.cpus == 0  # staging reserves nothing
    quick_report = Recorder()
    await asyncio.wait_for(backend.run(quick, quick_report), 60)
    assert quick_report.ended.state == State.COMPLETE
    staging.release.set()
    await asyncio.wait_for(slow_run, 60)


async def test_staging_is_bounded_and_cpu_is_reserved_for_running_containers(tmp_path: Path) -> None:
    first, second, third = task(["true"], image="present:a"), task(["true"], image="present:b"), task(["x"])
    backend = backend_with(tmp_path, FakeStaging(), local_max_cpus=1, local_max_staging=2)
    await backend.start()
    assert backend.admit(first) and backend.admit(second)
    assert not backend.admit(third)  # two tasks staging (or waiting for the CPU) at once, no more
    await backend.run(first, Recorder())
    assert backend.admit(third)
    # the CPU is reserved while containers run; a task staged meanwhile waits for it, then runs
    blocker = task(["sleep", "30"], image="present:blocker")
    blocker_report, second_report = Recorder(), Recorder()
    running = asyncio.create_task(backend.run(blocker, blocker_report))
    await asyncio.wait_for(blocker_report.started.wait(), 30)
    assert backend._admission.used.cpus == 1
    waiting = asyncio.create_task(backend.run(second, second_report))
    assert blocker.id is not None
    await backend.cancel(blocker.id)
    await asyncio.wait_for(running, 30)
    await asyncio.wait_for(waiting, 30)
    assert second_report.ended.state == State.COMPLETE


async def test_adopt_picks_up_recorded_exits_and_runs_the_rest(backend: LocalBackend, tmp_path: Path) -> None:
    job = task(["sh", "-c", "exit 9"], ["echo", "second"], ignore=True)
    assert job.id is not None
    run_dir = tmp_path / "data" / "run" / job.id
    run_dir.mkdir(parents=True)
    (tmp_path / "data" / "work" / job.id).mkdir(parents=True)
    (run_dir / "0.start").write_text("2024-01-01T00:00:00Z")
    result = ExecutorReport(
        index=0, exit_code=9, start_time="2024-01-01T00:00:00Z", end_time="2024-01-01T00:00:01Z", stdout="first\n"
    )
    (run_dir / "0.log").write_text(RESULT_MARKER + result.model_dump_json() + "\n")
    report = Recorder()
    await backend.adopt(job, report)
    assert report.exit_codes() == [9, 0]
    assert [o.log.stdout for o in report.seen if isinstance(o, ExecutorFinished)] == ["first\n", "second\n"]
    assert report.ended.state == State.COMPLETE
    assert any(isinstance(o, ExecutorStarted) and o.index == 0 for o in report.seen)


async def test_adopt_settles_a_lost_exit_code(backend: LocalBackend, tmp_path: Path) -> None:
    job = task(["sleep", "100"])
    assert job.id is not None
    run_dir = tmp_path / "data" / "run" / job.id
    run_dir.mkdir(parents=True)
    (run_dir / "0.start").write_text("2024-01-01T00:00:00Z")  # no result, and no container (the fake has none)
    report = Recorder()
    await backend.adopt(job, report)
    assert report.ended.state == State.SYSTEM_ERROR
    assert "its result was lost" in (report.ended.reason or "")


async def test_adopt_waits_for_a_cli_that_outlived_ktes(backend: LocalBackend, tmp_path: Path) -> None:
    """kill -9 of ktes leaves the executor's CLI running, maybe before it has made its container: the next
    ktes waits for that CLI and reads its result instead of settling the task as lost."""
    job = task(["echo", "late"])
    assert job.id is not None
    run_dir = tmp_path / "data" / "run" / job.id
    run_dir.mkdir(parents=True)
    (tmp_path / "data" / "work" / job.id).mkdir(parents=True)
    files = executions.ExecutorFiles(run_dir, 0)
    files.start_file.write_text("2024-01-01T00:00:00Z")
    result = ExecutorReport(
        index=0, exit_code=0, start_time="2024-01-01T00:00:00Z", end_time="2024-01-01T00:00:01Z", stdout="late\n"
    )
    line = RESULT_MARKER + result.model_dump_json() + "\n"
    cli = await asyncio.create_subprocess_exec(
        "sh", "-c", 'read -r _; printf "%s" "$1" > "$2"', "sh", line, str(files.log_file), stdin=subprocess.PIPE
    )
    files.cli_file.write_text(f"{cli.pid} {executions.process_start(cli.pid)}")
    report = Recorder()
    adopting = asyncio.create_task(backend.adopt(job, report))
    await asyncio.wait_for(report.started.wait(), 30)  # re-attached: now it looks for the result
    assert cli.stdin is not None
    cli.stdin.write(b"go\n")  # only now does the CLI write its result line and end
    await cli.stdin.drain()
    cli.stdin.close()
    await asyncio.wait_for(adopting, 30)
    await cli.wait()
    assert report.ended.state == State.COMPLETE, report.ended.reason
    assert [o.log.stdout for o in report.seen if isinstance(o, ExecutorFinished)] == ["late\n"]


async def test_adopt_before_any_executor_starts_over(backend: LocalBackend) -> None:
    report = Recorder()
    await backend.adopt(task(["echo", "again"]), report)
    assert report.ended.state == State.COMPLETE and report.exit_codes() == [0]


async def test_cancel_stops_a_running_task_without_an_end(backend: LocalBackend, tmp_path: Path) -> None:
    job = task(["sleep", "30"])
    assert job.id is not None
    report = Recorder()
    running = asyncio.create_task(backend.run(job, report))
    await asyncio.wait_for(report.started.wait(), 10)
    await backend.cancel(job.id)
    await asyncio.wait_for(running, 10)
    assert "Ended" not in report.kinds()
    assert not (tmp_path / "data" / "run" / job.id).exists()
    assert not (tmp_path / "data" / "work" / job.id).exists()


def test_a_helper_that_lost_its_mode_bits_is_used_from_an_executable_copy(tmp_path: Path) -> None:
    from ktes.backends.local.backend import installed_helper
    from ktes.run import entrypoint

    plain = tmp_path / "helper"
    plain.write_bytes(entrypoint.packaged().read_bytes())
    plain.chmod(0o644)  # as an installer that drops mode bits leaves it
    settings = Settings(data_dir=tmp_path / "data", entrypoint_path=plain)
    copy = installed_helper(settings)
    assert copy.parent == tmp_path / "data" / "bin" and os.access(copy, os.X_OK)
    assert copy.read_bytes() == plain.read_bytes()
    assert installed_helper(settings) == copy  # made once
    assert installed_helper(Settings(data_dir=tmp_path / "data")) == entrypoint.packaged()


def cli_calls(tmp_path: Path) -> list[str]:
    """The subcommands the fake CLI was called with, in order."""
    return (tmp_path / "calls").read_text().split()


async def test_a_finished_run_costs_no_removal_of_its_own(backend: LocalBackend, tmp_path: Path) -> None:
    """The container runs with --rm, so the runtime removes it as it ends: ktes adds no ``rm`` of its own
    (one per task cost a burst of small tasks a fifth of its time)."""
    await backend.run(task(["echo", "a"], ["echo", "b"]), Recorder())
    await backend.close()
    assert cli_calls(tmp_path).count("run") == 2  # one per executor
    assert "rm" not in cli_calls(tmp_path)


async def test_a_run_the_runtime_failed_is_removed_by_ktes(backend: LocalBackend, tmp_path: Path) -> None:
    """No result: the container may be left behind (created, never started), so ktes removes it."""
    await backend.run(task(["true"], image="present-but-broken:1"), Recorder())
    await backend.close()
    assert "rm" in cli_calls(tmp_path)


class HoldsTheEnd(Recorder):
    """A reporter whose record of the end waits until ``go`` is set (a busy store)."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    async def __call__(self, task_id: str, observation: Observation, /) -> None:
        if isinstance(observation, Ended):
            await self.go.wait()
        await super().__call__(task_id, observation)


async def test_the_next_task_starts_before_the_end_of_the_last_is_recorded(backend: LocalBackend) -> None:
    """Two tasks that each take all CPUs: the second one's container starts as soon as the first one's
    has ended, not once the first task's end is recorded and its directories removed."""
    first_report, second_report = HoldsTheEnd(), Recorder()
    first = asyncio.create_task(backend.run(task(["true"], cpus=2), first_report))
    await asyncio.wait_for(first_report.started.wait(), 30)
    second = asyncio.create_task(backend.run(task(["echo", "next"], cpus=2), second_report))
    await asyncio.wait_for(second_report.started.wait(), 30)
    assert "Ended" not in first_report.kinds()  # the first one's end is still being recorded
    first_report.go.set()
    await asyncio.wait_for(asyncio.gather(first, second), 30)
    assert first_report.ended.state == second_report.ended.state == State.COMPLETE


def left_behind(tmp_path: Path, job: Task, result: str, stdout: str) -> Path:
    """A run directory as a killed ktes leaves it when the executor's CLI died too (no result line) and the
    container, run with --rm, is gone: only the helper's files in the state directory hold the result."""
    assert job.id is not None
    run_dir = tmp_path / "data" / "run" / job.id
    state = run_dir / "state-0"
    state.mkdir(parents=True)
    (tmp_path / "data" / "work" / job.id).mkdir(parents=True)
    (run_dir / "0.start").write_text("2024-01-01T00:00:00Z")
    (state / "0.json").write_text(result)
    (state / "0.stdout").write_text(stdout)
    return state


def result_json(index: int = 0, exit_code: int = 0) -> str:
    return ExecutorResult(
        index=index, exit_code=exit_code, start_time="2024-01-01T00:00:00Z", end_time="2024-01-01T00:00:01Z"
    ).model_dump_json()


async def test_adopt_reads_the_result_the_helper_left_when_cli_and_container_are_gone(
    backend: LocalBackend, tmp_path: Path
) -> None:
    job = task(["sh", "-c", "echo left; exit 6"])
    left_behind(tmp_path, job, result_json(exit_code=6), "left\n")
    report = Recorder()
    await backend.adopt(job, report)
    assert report.exit_codes() == [6]
    assert [o.log.stdout for o in report.seen if isinstance(o, ExecutorFinished)] == ["left\n"]
    assert report.ended.state == State.EXECUTOR_ERROR


async def test_adopt_follows_no_link_the_task_planted_in_its_state_directory(
    backend: LocalBackend, tmp_path: Path
) -> None:
    """The task can write to its state directory: a result file that is a link (to a result that says all
    went well) is not read, nor is an output file that links to a host file."""
    secret = tmp_path / "host-secret.txt"
    secret.write_text("do not show\n")
    linked_result = task(["sh", "-c", "exit 1"])
    state = left_behind(tmp_path, linked_result, "", "")
    (tmp_path / "forged.json").write_text(result_json())
    (state / "0.json").unlink()
    (state / "0.json").symlink_to(tmp_path / "forged.json")
    report = Recorder()
    await backend.adopt(linked_result, report)
    assert report.ended.state == State.SYSTEM_ERROR and "its result was lost" in (report.ended.reason or "")

    linked_output = task(["cat", "/etc/passwd"])
    state = left_behind(tmp_path, linked_output, result_json(), "")
    (state / "0.stdout").unlink()
    (state / "0.stdout").symlink_to(secret)
    report = Recorder()
    await backend.adopt(linked_output, report)
    assert report.ended.state == State.COMPLETE
    assert [o.log.stdout for o in report.seen if isinstance(o, ExecutorFinished)] == [""]


async def test_adopt_refuses_a_left_result_that_names_another_executor(backend: LocalBackend, tmp_path: Path) -> None:
    job = task(["true"], ["true"])
    left_behind(tmp_path, job, result_json(index=1), "")
    report = Recorder()
    await backend.adopt(job, report)
    assert report.ended.state == State.SYSTEM_ERROR and "its result was lost" in (report.ended.reason or "")
