"""What the task Pod tells the engine: the helper's per-executor result and stage-out's final report."""

from __future__ import annotations

from pydantic import BaseModel

from ktes.tes.models import OutputFileLog

#: stage-out's report is the last log line that starts with this marker.
REPORT_MARKER = "KTES-REPORT "


class ExecutorResult(BaseModel):
    """Written by the entrypoint helper to ``state/<i>.json``."""

    index: int
    exit_code: int
    start_time: str
    end_time: str
    #: the kernel's OOM killer ended the command (memory cgroup's oom_kill count went up).
    oom_killed: bool = False
    #: the command could not be started at all (e.g. "exec foo: No such file or directory").
    error: str | None = None


class ExecutorReport(BaseModel):
    result: ExecutorResult
    stdout: str = ""
    stderr: str = ""


class PodReport(BaseModel):
    """Printed by ``stage-out`` as ``KTES-REPORT {json}``."""

    executors: list[ExecutorReport]
    outputs: list[OutputFileLog] = []
    #: why outputs could not be uploaded (names the path or URL, no secrets); None when all went well.
    error: str | None = None
