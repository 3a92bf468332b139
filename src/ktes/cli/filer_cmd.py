"""``ktes filer``: one file down or up through the filer, from the command line.

``download URL DEST`` and ``upload SRC URL``; a failure prints ``{"error": "..."}`` and exits 1. Settings
come from ``KTES_*`` variables (``KTES_S3_ENDPOINT_URL``, ``KTES_FILE_ALLOWED_ROOTS``...). A task's staging
runs in the backends (the Kubernetes one in the Pod's ``podside`` containers), not here.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import NoReturn

import typer

from ktes.config import Settings
from ktes.errors import KtesError
from ktes.filer.redact import redact
from ktes.filer.registry import Filer

filer_app = typer.Typer(help="Download or upload one file through the filer.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``ktes filer`` to ``app``."""
    app.add_typer(filer_app, name="filer")


def _fail(message: str) -> NoReturn:
    print(json.dumps({"error": message}, separators=(",", ":")), flush=True)
    raise typer.Exit(1)


def _setup_logging() -> None:
    logging.basicConfig(level=Settings().log_level.upper(), format="%(levelname)s %(name)s: %(message)s")


@filer_app.command("download")
def download(url: str, dest: Path) -> None:
    """Download one file from URL to DEST."""
    _setup_logging()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        Filer(Settings()).for_url(url).download_file(url, dest)
    except KtesError as err:
        _fail(str(err))
    except OSError as err:
        _fail(f"{redact(url)} to {dest}: {err.strerror or err}")


@filer_app.command("upload")
def upload(src: Path, url: str) -> None:
    """Upload the file SRC to URL."""
    _setup_logging()
    if not src.is_file():
        _fail(f"{src} is not a file")
    try:
        Filer(Settings()).for_url(url).upload_file(src, url)
    except KtesError as err:
        _fail(str(err))
    except OSError as err:
        _fail(f"{src} to {redact(url)}: {err.strerror or err}")
