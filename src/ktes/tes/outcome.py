"""The final state of a task, decided in one place for every backend.

- Executors run in order; a non-zero exit stops the run unless that executor has ``ignore_error``.
- A failure under ``ignore_error`` is recorded (its real exit code stays in the log) but does not fail the
  task: the user said to ignore it. So a task whose every executor either exited 0 or failed under
  ``ignore_error`` is COMPLETE once its outputs are uploaded. (Funnel reports EXECUTOR_ERROR here; we think
  "ignore" should mean ignore, and ``grep`` finding nothing is the usual case.)
- A failure that stops the run is EXECUTOR_ERROR, and outputs are not uploaded.
- Outputs that fail to upload, or a declared output that does not exist, make it SYSTEM_ERROR.
"""

from __future__ import annotations

from collections.abc import Sequence

from ktes.tes.models import Executor, State


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
