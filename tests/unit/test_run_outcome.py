"""The one outcome function: executor results and staging results -> the task's final observations."""

from __future__ import annotations

from ktes.run import outcome
from ktes.run.observations import Ended, ExecutorFinished, OutputsUploaded, SystemLog
from ktes.run.result import ExecutorReport
from ktes.tes.models import Executor, OutputFileLog, Resources, State, Task

T0, T1 = "2024-01-01T00:00:00.000000Z", "2024-01-01T00:00:01.000000Z"


def task(n: int = 1, *, ignore: bool = False, ram_gb: float | None = None) -> Task:
    return Task(
        id="t1",
        executors=[Executor(image="img", command=["c"], ignore_error=ignore) for _ in range(n)],
        resources=Resources(ram_gb=ram_gb) if ram_gb else None,
    )


def result(index: int, code: int = 0, *, oom: bool = False, error: str | None = None) -> ExecutorReport:
    return ExecutorReport(
        index=index, exit_code=code, start_time=T0, end_time=T1, oom_killed=oom, error=error, stdout="o", stderr="e"
    )


def ended(observations: list[object]) -> Ended:
    last = observations[-1]
    assert isinstance(last, Ended)
    return last


def test_all_zero_is_complete_without_a_sentence() -> None:
    found = outcome.run_observations(task(2), [result(0), result(1)], None, T1)
    assert [type(o).__name__ for o in found] == ["ExecutorFinished", "ExecutorFinished", "Ended"]
    assert (ended(found).state, ended(found).reason) == (State.COMPLETE, None)
    first = found[0]
    assert isinstance(first, ExecutorFinished)
    assert (first.log.stdout, first.log.stderr, first.log.start_time, first.log.exit_code) == ("o", "e", T0, 0)


def test_a_failure_names_the_executor_from_zero_and_stops_the_run() -> None:
    found = outcome.run_observations(task(2), [result(0, 7)], None, T1)
    assert ended(found).state == State.EXECUTOR_ERROR
    assert ended(found).reason == "executor 0 exited with code 7"


def test_oom_and_could_not_start_read_the_same_everywhere() -> None:
    oom = outcome.run_observations(task(ram_gb=0.5), [result(0, 137, oom=True)], None, T1)
    assert ended(oom).reason == "executor 0 was killed for exceeding its memory limit (ram_gb=0.5)"
    missing = outcome.run_observations(task(), [result(0, 127, error="exec nope: No such file or directory")], None, T1)
    assert ended(missing).reason == "executor 0 could not start its command: exec nope: No such file or directory"


def test_an_ignored_failure_is_complete_with_a_system_log() -> None:
    found = outcome.run_observations(task(2, ignore=True), [result(0, 3), result(1)], None, T1)
    assert [o.line for o in found if isinstance(o, SystemLog)] == [
        "executor 0 exited with code 3 (ignored: ignore_error is set)"
    ]
    assert ended(found).state == State.COMPLETE


def test_an_executor_that_did_not_run_is_named() -> None:
    found = outcome.run_ended(task(3), [result(0)], None, T1)
    assert (ended(found).state, ended(found).reason) == (State.EXECUTOR_ERROR, "executor 1 did not run")


def test_results_after_a_gap_do_not_count() -> None:
    found = outcome.run_observations(task(3), [result(0), result(2)], None, T1)
    assert [o.index for o in found if isinstance(o, ExecutorFinished)] == [0]


def test_outputs_uploaded_or_not() -> None:
    out = [OutputFileLog(url="file:///tmp/x", path="/x", size_bytes="1")]
    done = outcome.run_ended(task(), [result(0)], outcome.Uploads(uploaded=True, outputs=out), T1)
    assert isinstance(done[0], OutputsUploaded) and done[0].outputs == out
    assert ended(done).state == State.COMPLETE
    failed = outcome.run_ended(task(), [result(0)], outcome.Uploads(uploaded=True, error="output /x: gone"), T1)
    assert (ended(failed).state, ended(failed).reason) == (State.SYSTEM_ERROR, "output /x: gone")
    skipped = outcome.run_ended(task(), [result(0)], outcome.Uploads(uploaded=False), T1)
    assert ended(skipped).state == State.SYSTEM_ERROR
    # a failed run never uploads, whatever staging says
    stopped = outcome.run_ended(task(), [result(0, 1)], outcome.Uploads(uploaded=False), T1)
    assert ended(stopped).state == State.EXECUTOR_ERROR


def test_should_upload_only_when_every_executor_let_the_run_go_on() -> None:
    assert outcome.should_upload(task(2), [result(0), result(1)])
    assert not outcome.should_upload(task(2), [result(0)])
    assert not outcome.should_upload(task(1), [result(0, 2)])
    assert outcome.should_upload(task(1, ignore=True), [result(0, 2)])
