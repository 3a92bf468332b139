"""``ktes pod stage-in|stage-out``: what the ktes containers of a task Pod run (the Kubernetes backend).

Task Pods call ``python3 -m ktes.backends.kubernetes.podside`` directly (it starts faster than the whole
CLI); these commands are the same, for use by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ktes.backends.kubernetes import podside

TaskOption = Annotated[Path, typer.Option("--task", help="The task document (JSON)")]
WorkspaceOption = Annotated[Path, typer.Option("--workspace", help="The task's workspace volume")]
StateOption = Annotated[Path, typer.Option("--state", help="The state directory shared with the executors")]
TerminationLogOption = Annotated[
    Path, typer.Option("--termination-log", help="Where a failure's message goes (the container's)")
]


def stage_in(
    task: TaskOption,
    workspace: WorkspaceOption,
    state: StateOption,
    termination_log: TerminationLogOption = podside.TERMINATION_LOG,
) -> None:
    """Prepare the workspace and download the task's inputs, then tell the executors to start."""
    raise typer.Exit(podside.run_stage_in(task, workspace, state, termination_log))


def stage_out(
    task: TaskOption,
    workspace: WorkspaceOption,
    state: StateOption,
    termination_log: TerminationLogOption = podside.TERMINATION_LOG,
) -> None:
    """Wait for the executors, upload the outputs if they succeeded, print the report as the last line.

    Exits 0 when an upload failed: the report says so, and the engine decides the task's state.
    """
    raise typer.Exit(podside.run_stage_out(task, workspace, state, termination_log))


def register(app: typer.Typer) -> None:
    """Add ``ktes pod stage-in`` and ``ktes pod stage-out`` to ``app``."""
    pod_app = typer.Typer(help="Run inside a task Pod (Kubernetes backend); not for direct use.", no_args_is_help=True)
    pod_app.command("stage-in")(stage_in)
    pod_app.command("stage-out")(stage_out)
    app.add_typer(pod_app, name="pod")
