"""``ktes filer``: staging from the command line, as the Kubernetes backend runs it inside a task's pod.

``stage-in TASK_JSON WORKSPACE`` makes the workspace and downloads the inputs; ``stage-out TASK_JSON
WORKSPACE`` uploads the outputs and prints one JSON line, ``{"outputs": [...]}``. Either prints
``{"error": "..."}`` and exits 1 on failure. TASK_JSON is a file, ``-`` for standard input, or the JSON
itself. Settings come from ``KTES_*`` variables (``KTES_S3_ENDPOINT_URL``, ``KTES_FILE_ALLOWED_ROOTS``...).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

from ktes.config import Settings
from ktes.errors import KtesError
from ktes.filer.redact import redact
from ktes.filer.registry import Filer
from ktes.filer.staging import prepare_workspace, stage_inputs, stage_outputs
from ktes.tes.models import Task, dump

filer_app = typer.Typer(help="Stage task files in and out (what task pods run).", no_args_is_help=True)

TaskArg = Annotated[str, typer.Argument(help="Task JSON: a file, '-' for standard input, or the JSON text")]
WorkspaceArg = Annotated[Path, typer.Argument(help="The task's workspace directory")]
ReportOpt = Annotated[
    Path | None, typer.Option("--report", help="Also write the JSON line to this file (e.g. /dev/termination-log)")
]


def register(app: typer.Typer) -> None:
    """Add ``ktes filer`` to ``app``."""
    app.add_typer(filer_app, name="filer")


def _emit(document: dict[str, object], report: Path | None) -> None:
    line = json.dumps(document, separators=(",", ":"))
    print(line, flush=True)
    if report is not None:
        report.write_text(line + "\n", encoding="utf-8")


def _fail(message: str, report: Path | None) -> NoReturn:
    _emit({"error": message}, report)
    raise typer.Exit(1)


def _read_task(source: str, report: Path | None) -> Task:
    try:
        if source.lstrip().startswith("{"):
            text = source
        elif source == "-":
            text = sys.stdin.read()
        else:
            text = Path(source).read_text(encoding="utf-8")
        return Task.model_validate_json(text)
    except OSError as err:
        _fail(f"cannot read the task: {err.strerror}", report)
    except ValidationError as err:
        _fail(f"the task is not valid TES JSON: {err.error_count()} errors, first: {err.errors()[0]['msg']}", report)


def _log_bug(err: Exception) -> None:
    frames = "".join(traceback.format_tb(err.__traceback__))
    logging.getLogger(__name__).error("staging failed with %s at:\n%s", type(err).__name__, frames)


def _setup_logging() -> None:
    logging.basicConfig(level=Settings().log_level.upper(), format="%(levelname)s %(name)s: %(message)s")


@filer_app.command("stage-in")
def stage_in(task_json: TaskArg, workspace: WorkspaceArg, report: ReportOpt = None) -> None:
    """Make the workspace's directories and download every input into it."""
    _setup_logging()
    task = _read_task(task_json, report)
    try:
        prepare_workspace(task, workspace)
        stage_inputs(task, workspace, Filer(Settings()))
    except KtesError as err:
        _fail(str(err), report)
    except OSError as err:
        _fail(f"workspace {workspace}: {err.strerror or err}", report)
    except Exception as err:  # a bug: its text may hold a URL with secrets, so only its type and frames are shown
        _log_bug(err)
        _fail(f"internal error while staging ({type(err).__name__}); see the container's log", report)
    _emit({"inputs": len(task.inputs or [])}, report)


@filer_app.command("stage-out")
def stage_out(task_json: TaskArg, workspace: WorkspaceArg, report: ReportOpt = None) -> None:
    """Upload every output from the workspace; print {"outputs": [...]}."""
    _setup_logging()
    task = _read_task(task_json, report)
    try:
        outputs = stage_outputs(task, workspace, Filer(Settings()))
    except KtesError as err:
        _fail(str(err), report)
    except OSError as err:
        _fail(f"workspace {workspace}: {err.strerror or err}", report)
    except Exception as err:  # a bug: its text may hold a URL with secrets, so only its type and frames are shown
        _log_bug(err)
        _fail(f"internal error while staging ({type(err).__name__}); see the container's log", report)
    _emit({"outputs": [dump(o) for o in outputs]}, report)


@filer_app.command("download")
def download(url: str, dest: Path) -> None:
    """Download one file from URL to DEST."""
    _setup_logging()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        Filer(Settings()).for_url(url).download_file(url, dest)
    except KtesError as err:
        _fail(str(err), None)
    except OSError as err:
        _fail(f"{redact(url)} to {dest}: {err.strerror or err}", None)


@filer_app.command("upload")
def upload(src: Path, url: str) -> None:
    """Upload the file SRC to URL."""
    _setup_logging()
    if not src.is_file():
        _fail(f"{src} is not a file", None)
    try:
        Filer(Settings()).for_url(url).upload_file(src, url)
    except KtesError as err:
        _fail(str(err), None)
    except OSError as err:
        _fail(f"{src} to {redact(url)}: {err.strerror or err}", None)
