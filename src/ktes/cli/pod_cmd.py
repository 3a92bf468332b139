"""``ktes pod stage-in|stage-out``: what the ktes containers of a task Pod run (the Kubernetes backend)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from ktes.backends.kubernetes import podside
from ktes.config import load

TaskOption = Annotated[Path, typer.Option("--task", help="The task document (JSON)")]
WorkspaceOption = Annotated[Path, typer.Option("--workspace", help="The task's workspace volume")]
ToolsOption = Annotated[Path, typer.Option("--tools", help="The volume shared with the executors")]
TerminationLogOption = Annotated[
    Path, typer.Option("--termination-log", help="Where a failure's message goes (the container's)")
]


def _fail(message: str, termination_log: Path) -> NoReturn:
    sys.stderr.write(f"ktes pod: {message}\n")
    podside.write_termination_message(termination_log, message)
    raise typer.Exit(1)


def stage_in(
    task: TaskOption,
    workspace: WorkspaceOption,
    tools: ToolsOption,
    termination_log: TerminationLogOption = podside.TERMINATION_LOG,
) -> None:
    """Install the executor helper, prepare the workspace and download the task's inputs."""
    try:
        settings = load()
        logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr)
        podside.stage_in(podside.load_task(task), workspace, tools, settings, podside.entrypoint_source())
    except Exception as exc:
        _fail(podside.failure_message(exc), termination_log)


def stage_out(
    task: TaskOption,
    workspace: WorkspaceOption,
    tools: ToolsOption,
    termination_log: TerminationLogOption = podside.TERMINATION_LOG,
) -> None:
    """Read what the executors did, upload the outputs if they succeeded, print the report as the last line.

    Exits 0 when an upload failed: the report says so, and the engine decides the task's state.
    """
    try:
        settings = load()
        logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr)
        report = podside.stage_out(podside.load_task(task), workspace, tools, settings)
    except Exception as exc:
        _fail(podside.failure_message(exc), termination_log)
    sys.stderr.flush()
    sys.stdout.write(podside.report_line(report) + "\n")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add ``ktes pod stage-in`` and ``ktes pod stage-out`` to ``app``."""
    pod_app = typer.Typer(help="Run inside a task Pod (Kubernetes backend); not for direct use.", no_args_is_help=True)
    pod_app.command("stage-in")(stage_in)
    pod_app.command("stage-out")(stage_out)
    app.add_typer(pod_app, name="pod")
