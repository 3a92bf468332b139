"""What the ktes containers of a task Pod do: ``stage-in`` before the executors, ``stage-out`` after them.

They run as ``python3 -m ktes.backends.kubernetes.podside stage-in|stage-out ...`` (this module's
:func:`main`, argparse: no CLI framework to import; ``ktes pod ...`` does the same). All containers of the
Pod start together; the order is kept through files in the shared state directory
(:mod:`ktes.run.result`): stage-in writes ``stage-in.done`` (or ``stage-in.failed``), stage-out waits for the last
executor's result (or ``stop``). They never talk to the Kubernetes API: stage-in tells the engine about a
failure through its termination message, stage-out through the :class:`~ktes.run.result.StageOutReport` it prints
as its last log line and, when it fits, also writes as its termination message (then the engine needs no log
read).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import stat
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ktes.errors import TransferError
from ktes.run.outcome import should_upload
from ktes.run.result import (
    REPORT_MARKER,
    STAGE_IN_DONE,
    STAGE_IN_FAILED,
    STOP,
    ExecutorResult,
    StageOutReport,
    result_file,
    termination_limit,
)
from ktes.tes.models import OutputFileLog, Task

if TYPE_CHECKING:
    from ktes.config import Settings

TERMINATION_LOG = Path("/dev/termination-log")
#: Kubernetes keeps at most 4096 bytes of a termination message.
TERMINATION_MESSAGE_LIMIT = 4000
#: how often stage-out looks for the executors' results.
POLL_SECONDS = 0.02


def load_task(path: Path) -> Task:
    return Task.model_validate_json(path.read_bytes())


def open_to_all_users(workspace: Path) -> None:
    """Every directory of the workspace writable by any user: the executors may run as any uid."""
    workspace.chmod(0o777)
    for root, dirs, _files in os.walk(workspace):
        for name in dirs:
            path = Path(root, name)
            if not path.is_symlink():
                path.chmod(stat.S_IMODE(path.lstat().st_mode) | 0o777)


def mark(state: Path, name: str, text: str = "") -> None:
    """Create ``state/name`` atomically (whoever sees it sees its whole text)."""
    partial = state / f".{name}.partial"
    partial.write_text(text, encoding="utf-8")
    partial.chmod(0o644)
    partial.replace(state / name)


def stage_in(task: Task, workspace: Path, state: Path, settings: Settings) -> None:
    """Lay out the workspace and download the inputs, then say so in ``state``. Raises on any failure."""
    from ktes.filer.registry import Filer  # the filer's plugins load only in the containers that use them
    from ktes.filer.staging import prepare_workspace, stage_inputs

    workspace.mkdir(parents=True, exist_ok=True)
    prepare_workspace(task, workspace)
    stage_inputs(task, workspace, Filer(settings))
    open_to_all_users(workspace)
    mark(state, STAGE_IN_DONE)


def failure_message(exc: BaseException) -> str:
    """A sentence for the user: the filer's own message, or the exception, with any URL's secrets removed."""
    from ktes.filer.redact import redact

    text = str(exc) if isinstance(exc, TransferError) else f"{type(exc).__name__}: {exc}"
    return " ".join(redact(word) if "://" in word else word for word in text.split(" "))


def write_termination_message(path: Path, message: str) -> None:
    data = message.encode("utf-8")[:TERMINATION_MESSAGE_LIMIT].decode("utf-8", errors="ignore")
    with contextlib.suppress(OSError):  # outside a Pod there may be no such file; the message is on stderr too
        path.write_text(data, encoding="utf-8")


def executor_results(task: Task, state: Path) -> list[ExecutorResult]:
    """The results the helper wrote, in order, for the executors that ran (those before the first gap)."""
    results: list[ExecutorResult] = []
    for index in range(len(task.executors)):
        path = state / result_file(index)
        if not path.exists():
            break
        results.append(ExecutorResult.model_validate_json(path.read_bytes()))
    return results


def wait_for_executors(task: Task, state: Path, timeout: float | None = None) -> bool:
    """Wait until the last executor has a result, or the run is over (``stop``, ``stage-in.failed``).

    Returns False only when ``timeout`` seconds passed first.
    """
    last = state / result_file(len(task.executors) - 1)
    over = (state / STOP, state / STAGE_IN_FAILED)
    deadline = None if timeout is None else time.monotonic() + timeout
    while not last.exists() and not any(path.exists() for path in over):
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def stage_out(task: Task, workspace: Path, state: Path, settings: Settings) -> StageOutReport:
    """Upload the outputs when the executors succeeded. Upload failures go in ``error``."""
    results = executor_results(task, state)
    if (state / STAGE_IN_FAILED).exists() or (len(results) < len(task.executors) and not (state / STOP).exists()):
        return StageOutReport()  # the run never got to the outputs; the engine knows why
    if not should_upload(task, results):
        return StageOutReport()
    from ktes.filer.registry import Filer
    from ktes.filer.staging import stage_outputs

    outputs: list[OutputFileLog] = []
    error: str | None = None
    try:
        outputs = stage_outputs(task, workspace, Filer(settings))
    except Exception as exc:  # any failure is the task's SYSTEM_ERROR, told in the report
        error = failure_message(exc)
    return StageOutReport(uploaded=True, outputs=outputs, error=error)


def report_line(report: StageOutReport) -> str:
    return REPORT_MARKER + report.model_dump_json()


def report_limit(task: Task) -> int:
    """The bytes of stage-out's termination message the kubelet keeps whole: its Pod has the executors,
    stage-out and perhaps stage-in (counted: this side cannot tell, and a smaller limit is only safe)."""
    return termination_limit(len(task.executors) + 2)


def write_report_message(path: Path, line: str, limit: int) -> None:
    """The report line as the termination message when it fits whole; else nothing (the engine reads the log)."""
    data = (line + "\n").encode("utf-8")
    if len(data) <= limit:
        with contextlib.suppress(OSError):  # outside a Pod there may be no such file; the log has the line
            path.write_bytes(data)


# --- the commands -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podside", description="Run inside a task Pod (Kubernetes backend).")
    parser.add_argument("command", choices=["stage-in", "stage-out"])
    parser.add_argument("--task", type=Path, required=True, help="the task document (JSON)")
    parser.add_argument("--workspace", type=Path, required=True, help="the task's workspace volume")
    parser.add_argument("--state", type=Path, required=True, help="the state directory shared with the executors")
    parser.add_argument("--termination-log", type=Path, default=TERMINATION_LOG, help="where a failure's message goes")
    return parser


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # as PID 1 of a container, SIGTERM would be ignored otherwise


def _settings() -> Settings:
    import logging

    from ktes.config import load

    settings = load()
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr)
    return settings


def run_stage_in(task: Path, workspace: Path, state: Path, termination_log: Path) -> int:
    """Prepare the workspace and download the inputs. Exit code 1 with the reason on failure."""
    try:
        stage_in(load_task(task), workspace, state, _settings())
    except Exception as exc:
        message = failure_message(exc)
        sys.stderr.write(f"stage-in: {message}\n")
        with contextlib.suppress(OSError):
            mark(state, STAGE_IN_FAILED, message)
        write_termination_message(termination_log, message)
        return 1
    return 0


def run_stage_out(task: Path, workspace: Path, state: Path, termination_log: Path) -> int:
    """Wait for the executors, upload the outputs if they succeeded, print the report as the last line.

    Exits 0 when an upload failed: the report says so, and the engine decides the task's state.
    """
    try:
        document = load_task(task)
        wait_for_executors(document, state)
        report = stage_out(document, workspace, state, _settings())
    except Exception as exc:
        message = failure_message(exc)
        sys.stderr.write(f"stage-out: {message}\n")
        write_termination_message(termination_log, message)
        return 1
    sys.stderr.flush()
    line = report_line(report)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    write_report_message(termination_log, line, report_limit(document))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    run = run_stage_in if args.command == "stage-in" else run_stage_out
    return run(args.task, args.workspace, args.state, args.termination_log)


if __name__ == "__main__":
    sys.exit(main())
