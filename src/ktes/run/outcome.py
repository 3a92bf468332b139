"""What happened when a task ran, decided in one place for every backend (and the CLI).

- Executors run in order; a non-zero exit stops the run unless that executor has ``ignore_error``.
- A failure under ``ignore_error`` is recorded (its real exit code stays in the log, and a system log says
  it was ignored) but does not fail the task: the user said to ignore it. So a task whose every executor
  either exited 0 or failed under ``ignore_error`` is COMPLETE once its outputs are uploaded. (Funnel
  reports EXECUTOR_ERROR here; we think "ignore" should mean ignore, and ``grep`` finding nothing is the
  usual case.)
- A failure that stops the run is EXECUTOR_ERROR with a sentence naming the executor, and outputs are not
  uploaded.
- Outputs that fail to upload, or a declared output that does not exist, make it SYSTEM_ERROR.

Both backends get :class:`~ktes.run.result.ExecutorReport` values from the executors' helper (the local
backend from the container's output, the Kubernetes one from the container's log) and call
:func:`executor_finished` for each and :func:`run_ended` at the end. Executors are numbered from 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ktes.run.observations import Ended, ExecutorFinished, Observation, OutputsUploaded, SystemLog
from ktes.run.result import ExecutorReport, ExecutorResult
from ktes.tes.models import Executor, ExecutorLog, OutputFileLog, State, Task


def stops_run(executor: Executor, exit_code: int) -> bool:
    """Whether this executor's exit ends the run (later executors do not start)."""
    return exit_code != 0 and not executor.ignore_error


def executors_outcome(executors: Sequence[Executor], exit_codes: Sequence[int]) -> State:
    """COMPLETE if the executors that ran let the run go on to the end, else EXECUTOR_ERROR.

    ``exit_codes`` holds one code per executor that ran, in order (it is shorter than ``executors``
    when the run stopped early).
    """
    for executor, code in zip(executors, exit_codes, strict=False):
        if stops_run(executor, code):
            return State.EXECUTOR_ERROR
    if len(exit_codes) < len(executors):
        return State.EXECUTOR_ERROR
    return State.COMPLETE


def should_upload(task: Task, results: Sequence[ExecutorResult]) -> bool:
    """Whether the run got to its outputs (every executor ran and none stopped the run)."""
    return executors_outcome(task.executors, [r.exit_code for r in results]) == State.COMPLETE


def memory_limit(task: Task) -> str:
    ram = task.resources.ram_gb if task.resources else None
    return f"ram_gb={ram:g}" if ram else "no ram_gb set"


def oom_sentence(task: Task, index: int) -> str:
    return f"executor {index} was killed for exceeding its memory limit ({memory_limit(task)})"


def disk_limit_sentence(task: Task, detail: str) -> str:
    """The task's work directory went over the size the task asked for (``disk_gb``); ``detail`` says what
    was done about it."""
    disk = task.resources.disk_gb if task.resources else None
    limit = f"its disk limit of {disk:g} GB (disk_gb)" if disk else "its disk limit"
    return f"the task's work directory went over {limit}, so {detail}"


def image_sentence(image: str, index: int, detail: str) -> str:
    """The image of executor ``index`` is not there and will not come (SYSTEM_ERROR)."""
    return f"image {image} (executor {index}) could not be pulled: {detail}"


def executor_sentence(task: Task, result: ExecutorResult) -> str | None:
    """What went wrong with executor ``result.index``, in one sentence; None when it exited 0."""
    index = result.index
    if result.oom_killed:
        return oom_sentence(task, index)
    if result.error:
        return f"executor {index} could not start its command: {result.error}"
    if result.exit_code != 0:
        return f"executor {index} exited with code {result.exit_code}"
    return None


def executor_log(result: ExecutorReport) -> ExecutorLog:
    return ExecutorLog(
        start_time=result.start_time,
        end_time=result.end_time,
        stdout=result.stdout,
        stderr=result.stderr,
        exit_code=result.exit_code,
    )


def executor_finished(task: Task, result: ExecutorReport) -> list[Observation]:
    """Executor ``result.index`` ended: its log, and a system log when its failure is ignored."""
    found: list[Observation] = [ExecutorFinished(result.index, executor_log(result))]
    why = executor_sentence(task, result)
    if why is not None and not stops_run(task.executors[result.index], result.exit_code):
        found.append(SystemLog(f"{why} (ignored: ignore_error is set)"))
    return found


@dataclass(frozen=True)
class Uploads:
    """What staging the outputs did (stage-out's report on Kubernetes, the filer's return locally)."""

    #: the outputs were uploaded (False: the run never got to them).
    uploaded: bool = False
    outputs: list[OutputFileLog] = field(default_factory=list)
    #: why they could not all be uploaded (names the path or URL, no secrets).
    error: str | None = None


def in_order(task: Task, results: Sequence[ExecutorResult]) -> list[ExecutorResult]:
    """The results of the executors that ran, in order, up to the first gap (others are ignored)."""
    by_index = {r.index: r for r in results if 0 <= r.index < len(task.executors)}
    ran: list[ExecutorResult] = []
    while len(ran) in by_index:
        ran.append(by_index[len(ran)])
    return ran


def run_ended(
    task: Task, results: Sequence[ExecutorResult], uploads: Uploads | None, end_time: str
) -> list[Observation]:
    """The end of a run whose executors left ``results``: the uploaded outputs (if any), then Ended with
    the state and the sentence. ``uploads`` is None when the task has no outputs."""
    ran = in_order(task, results)
    state = executors_outcome(task.executors, [r.exit_code for r in ran])
    reason: str | None = None
    found: list[Observation] = []
    if state == State.EXECUTOR_ERROR:
        failed = next((r for r in ran if stops_run(task.executors[r.index], r.exit_code)), None)
        reason = f"executor {len(ran)} did not run" if failed is None else executor_sentence(task, failed)
    elif uploads is not None:
        if not uploads.uploaded:
            state, reason = State.SYSTEM_ERROR, "the outputs were not uploaded though the executors succeeded"
        else:
            found.append(OutputsUploaded(list(uploads.outputs)))
            if uploads.error:
                state, reason = State.SYSTEM_ERROR, uploads.error
    found.append(Ended(state=state, end_time=end_time, reason=reason))
    return found


def run_observations(
    task: Task, results: Sequence[ExecutorReport], uploads: Uploads | None, end_time: str
) -> list[Observation]:
    """A whole run told at its end (Kubernetes reads every result once the Pod has ended): each executor's
    :func:`executor_finished`, then :func:`run_ended`."""
    ran = [r for r in in_order(task, results) if isinstance(r, ExecutorReport)]
    found: list[Observation] = []
    for result in ran:
        found += executor_finished(task, result)
    return found + run_ended(task, ran, uploads, end_time)
