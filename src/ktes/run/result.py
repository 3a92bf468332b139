"""What the task Pod tells the engine: each executor's result line and stage-out's report."""

from __future__ import annotations

import json

from pydantic import BaseModel, ValidationError

from ktes.tes.models import OutputFileLog

#: the entrypoint helper's result is the last line of an executor container's log that starts with this.
RESULT_MARKER = "KTES-RESULT "
#: stage-out's report is the last line of its log that starts with this marker.
REPORT_MARKER = "KTES-REPORT "

#: the kubelet keeps at most this many bytes of one container's termination message ...
TERMINATION_MESSAGE_MAX = 4096
#: ... and at most this many of all the Pod's containers together, split evenly among them.
POD_TERMINATION_MESSAGES_MAX = 12 * 1024


class ExecutorResult(BaseModel):
    """Written by the entrypoint helper to ``state/<i>.json`` (what stage-out and the next executor wait on)."""

    index: int
    exit_code: int
    start_time: str
    end_time: str
    #: the kernel's OOM killer ended the command (memory cgroup's oom_kill count went up).
    oom_killed: bool = False
    #: the command could not be started at all (e.g. "exec foo: No such file or directory").
    error: str | None = None


class ExecutorReport(ExecutorResult):
    """Printed by the entrypoint helper as ``KTES-RESULT {json}``: the result and the tails of both streams."""

    stdout: str = ""
    stderr: str = ""


class StageOutReport(BaseModel):
    """Printed by ``stage-out`` as ``KTES-REPORT {json}``."""

    #: the executors all succeeded (or their failures were ignored), so the outputs were uploaded.
    uploaded: bool = False
    outputs: list[OutputFileLog] = []
    #: why outputs could not be uploaded (names the path or URL, no secrets); None when all went well.
    error: str | None = None


# The files in the shared state directory that order the Pod's containers (they all start together).

#: stage-in finished: the executors may start.
STAGE_IN_DONE = "stage-in.done"
#: stage-in failed (its reason inside): nothing else runs.
STAGE_IN_FAILED = "stage-in.failed"
#: an executor failed without ignore_error: later executors do not run, nothing is uploaded.
STOP = "stop"


def result_file(index: int) -> str:
    """Executor ``index``'s result (:class:`ExecutorResult`), written once its command has ended."""
    return f"{index}.json"


def last_marked(log: str, marker: str) -> str | None:
    """What follows ``marker`` on the last line of ``log`` that starts with it."""
    for line in reversed(log.splitlines()):
        line = line.strip()
        if line.startswith(marker):
            return line[len(marker) :]
    return None


def parse_result(log: str) -> ExecutorReport | None:
    """An executor's result: the last line of its container's output that starts with the marker (None if
    there is none: the helper did not get to the end)."""
    found = last_marked(log, RESULT_MARKER)
    if found is None:
        return None
    try:
        return ExecutorReport.model_validate(json.loads(found))
    except (ValueError, ValidationError):
        return None


def termination_limit(containers: int) -> int:
    """The bytes of a termination message the kubelet keeps whole in a Pod of ``containers`` containers (init
    containers count): 4 KiB each, 12 KiB for the Pod split evenly. It cuts anything longer."""
    return min(TERMINATION_MESSAGE_MAX, POD_TERMINATION_MESSAGES_MAX // max(1, containers))


def _marked_message(message: str, marker: str) -> str | None:
    """The JSON of a termination message that is exactly ``marker`` + one line (+ a newline), else None.

    The message of an executor's container is written by its helper after the command has ended, but the
    command ran in that container and could have written the file: so nothing is guessed. Anything else
    (an old helper's empty message, a cut one, one with text around it) means: read the log instead.
    """
    text = message[:-1] if message.endswith("\n") else message
    if not text.startswith(marker) or "\n" in text or "\r" in text:
        return None
    return text[len(marker) :]


def parse_result_message(message: str, index: int) -> ExecutorReport | None:
    """Executor ``index``'s result from its container's termination message (None: read the log instead)."""
    found = _marked_message(message, RESULT_MARKER)
    if found is None:
        return None
    try:
        report = ExecutorReport.model_validate_json(found, strict=True)
    except ValidationError:
        return None
    return report if report.index == index else None


def parse_report_message(message: str) -> StageOutReport | None:
    """stage-out's report from its termination message (None: read the log instead)."""
    found = _marked_message(message, REPORT_MARKER)
    if found is None:
        return None
    try:
        return StageOutReport.model_validate_json(found, strict=True)
    except ValidationError:
        return None


def parse_report(log: str) -> StageOutReport | None:
    """stage-out's report: the last line of ``log`` that starts with the marker (None if there is none)."""
    found = last_marked(log, REPORT_MARKER)
    if found is None:
        return None
    try:
        return StageOutReport.model_validate(json.loads(found))
    except (ValueError, ValidationError):
        return None
