"""What the ktes containers of a task Pod do: ``stage-in`` before the executors, ``stage-out`` after them.

Both run inside the Pod (``ktes pod stage-in|stage-out``, see the contract in this package's docstring) and
never talk to the Kubernetes API: stage-in tells the engine about a failure through its termination message,
stage-out through the :class:`~.report.PodReport` it prints as its last log line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path

from ktes.backends.kubernetes.report import REPORT_MARKER, ExecutorReport, ExecutorResult, PodReport
from ktes.config import Settings
from ktes.errors import TransferError
from ktes.filer.container_paths import resolve
from ktes.filer.redact import redact
from ktes.filer.registry import Filer
from ktes.filer.staging import prepare_workspace, stage_inputs, stage_outputs
from ktes.tes.models import Executor, OutputFileLog, State, Task
from ktes.tes.outcome import executors_outcome

#: Where the image keeps the static executor helper; ``KTES_ENTRYPOINT`` names another file (tests).
INSTALLED_ENTRYPOINT = Path("/usr/local/bin/ktes-entrypoint")
TERMINATION_LOG = Path("/dev/termination-log")
#: Kubernetes keeps at most 4096 bytes of a termination message.
TERMINATION_MESSAGE_LIMIT = 4000


def entrypoint_source() -> Path:
    return Path(os.environ.get("KTES_ENTRYPOINT") or INSTALLED_ENTRYPOINT)


def state_dir(tools: Path) -> Path:
    return tools / "state"


def load_task(path: Path) -> Task:
    return Task.model_validate_json(path.read_bytes())


def install_tools(tools: Path, helper: Path) -> None:
    """The helper as ``tools/entrypoint`` (0755) and an empty ``tools/state`` any user may write (1777)."""
    tools.mkdir(parents=True, exist_ok=True)
    target = tools / "entrypoint"
    partial = tools / ".entrypoint.partial"
    shutil.copyfile(helper, partial)
    partial.chmod(0o755)
    partial.replace(target)
    state = state_dir(tools)
    state.mkdir(exist_ok=True)
    state.chmod(0o1777)


def open_to_all_users(workspace: Path) -> None:
    """Every directory of the workspace writable by any user: the executors may run as any uid."""
    workspace.chmod(0o777)
    for root, dirs, _files in os.walk(workspace):
        for name in dirs:
            path = Path(root, name)
            if not path.is_symlink():
                path.chmod(stat.S_IMODE(path.lstat().st_mode) | 0o777)


def stage_in(task: Task, workspace: Path, tools: Path, settings: Settings, helper: Path) -> None:
    """Install the helper, lay out the workspace and download the inputs. Raises on any failure."""
    install_tools(tools, helper)
    workspace.mkdir(parents=True, exist_ok=True)
    prepare_workspace(task, workspace)
    stage_inputs(task, workspace, Filer(settings))
    open_to_all_users(workspace)


def failure_message(exc: BaseException) -> str:
    """A sentence for the user: the filer's own message, or the exception, with any URL's secrets removed."""
    text = str(exc) if isinstance(exc, TransferError) else f"{type(exc).__name__}: {exc}"
    return " ".join(redact(word) if "://" in word else word for word in text.split(" "))


def write_termination_message(path: Path, message: str) -> None:
    data = message.encode("utf-8")[:TERMINATION_MESSAGE_LIMIT].decode("utf-8", errors="ignore")
    with contextlib.suppress(OSError):  # outside a Pod there may be no such file; the message is on stderr too
        path.write_text(data, encoding="utf-8")


def read_tail(path: Path, limit: int) -> str:
    """The last ``limit`` bytes of a file as text (constant memory); "" when it is missing or unreadable."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - limit)
            f.seek(start)
            data = f.read(limit)
    except OSError:
        return ""
    if start > 0:  # the cut may fall inside a UTF-8 sequence: drop its continuation bytes
        skip = 0
        while skip < min(3, len(data)) and 0x80 <= data[skip] <= 0xBF:
            skip += 1
        data = data[skip:]
    return data.decode("utf-8", errors="replace")


def executor_results(task: Task, tools: Path) -> list[ExecutorResult]:
    """The results the helper wrote, in order, for the executors that ran (those before the first gap)."""
    results: list[ExecutorResult] = []
    for index in range(len(task.executors)):
        path = state_dir(tools) / f"{index}.json"
        if not path.exists():
            break
        results.append(ExecutorResult.model_validate_json(path.read_bytes()))
    return results


def stream_file(workspace: Path, tools: Path, index: int, container_path: str | None, stream: str) -> Path:
    """Where executor ``index`` wrote ``stream``: its own file in the workspace, else the helper's default."""
    if container_path:
        return resolve(workspace, container_path)
    return state_dir(tools) / f"{index}.{stream}"


def executor_report(
    executor: Executor, result: ExecutorResult, workspace: Path, tools: Path, tail_bytes: int
) -> ExecutorReport:
    i = result.index
    return ExecutorReport(
        result=result,
        stdout=read_tail(stream_file(workspace, tools, i, executor.stdout, "stdout"), tail_bytes),
        stderr=read_tail(stream_file(workspace, tools, i, executor.stderr, "stderr"), tail_bytes),
    )


def stage_out(task: Task, workspace: Path, tools: Path, settings: Settings) -> PodReport:
    """What the executors did, and the outputs uploaded when they succeeded. Upload failures go in ``error``."""
    results = executor_results(task, tools)
    reports = [
        executor_report(executor, result, workspace, tools, settings.k8s_log_tail_bytes)
        for executor, result in zip(task.executors, results, strict=False)
    ]
    outputs: list[OutputFileLog] = []
    error: str | None = None
    if executors_outcome(task.executors, [r.exit_code for r in results]) == State.COMPLETE:
        try:
            outputs = stage_outputs(task, workspace, Filer(settings))
        except Exception as exc:  # any failure is the task's SYSTEM_ERROR, told in the report
            error = failure_message(exc)
    return PodReport(executors=reports, outputs=outputs, error=error)


def report_line(report: PodReport) -> str:
    return REPORT_MARKER + report.model_dump_json()
