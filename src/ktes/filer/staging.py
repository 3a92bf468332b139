"""Staging a task's files: the workspace's directories, inputs in, outputs out.

Every container path P lives at ``workspace / P`` (:mod:`ktes.tes.layout`). Errors are
:class:`TransferError` subclasses whose message starts with ``input`` or ``output`` and names the URL
without its secrets and the reason.
"""

from __future__ import annotations

import logging
import posixpath
import stat
from pathlib import Path

from ktes.errors import PermanentTransferError, TransferError
from ktes.filer import container_paths, globbing
from ktes.filer.base import FilerPlugin
from ktes.filer.redact import redact
from ktes.filer.registry import Filer
from ktes.filer.urls import join_url, relative_parts_ok
from ktes.tes.layout import has_wildcard, host_path, needed_directories
from ktes.tes.models import FileType, Input, Output, OutputFileLog, Task

log = logging.getLogger(__name__)


def prepare_workspace(task: Task, workspace: Path) -> None:
    """Create ``workspace`` and every directory the task needs before its executors run."""
    workspace.mkdir(parents=True, exist_ok=True)
    directories = needed_directories(task)
    for directory in sorted(directories):
        host_path(workspace, directory).mkdir(parents=True, exist_ok=True)


def stage_inputs(task: Task, workspace: Path, filer: Filer) -> None:
    """Put every input at its path in ``workspace``: content written, files and directories downloaded."""
    for inp in task.inputs or []:
        dest = host_path(workspace, inp.path)
        try:
            _stage_input(inp, dest, filer)
        except TransferError as err:
            raise type(err)(f"input {err}") from err


def _stage_input(inp: Input, dest: Path, filer: Filer) -> None:
    if inp.content or not inp.url:
        if inp.content is None:
            raise PermanentTransferError(f"{inp.path}: has neither url nor content")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(inp.content, encoding="utf-8")
        return
    plugin = filer.for_url(inp.url)
    if inp.type == FileType.DIRECTORY:
        dest.mkdir(parents=True, exist_ok=True)
        count = 0
        for url, relative in plugin.list_dir(inp.url):
            if not relative_parts_ok(relative):
                raise PermanentTransferError(f"{redact(inp.url)}: refusing the listed name {relative!r}")
            target = dest.joinpath(*relative.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            plugin.download_file(url, target)
            count += 1
        log.info("input %s: %d files to %s", redact(inp.url), count, inp.path)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    plugin.download_file(inp.url, dest)
    log.info("input %s: to %s", redact(inp.url), inp.path)


def stage_outputs(task: Task, workspace: Path, filer: Filer) -> list[OutputFileLog]:
    """Upload every output; the uploaded files, one entry per file (directories and globs flattened)."""
    uploaded: list[OutputFileLog] = []
    for out in task.outputs or []:
        try:
            uploaded.extend(_stage_output(out, workspace, filer))
        except TransferError as err:
            message = str(err)
            raise type(err)(message if message.startswith("output ") else f"output {message}") from err
    return uploaded


def _stage_output(out: Output, workspace: Path, filer: Filer) -> list[OutputFileLog]:
    path = posixpath.normpath(out.path)
    plugin = filer.for_url(out.url)
    if has_wildcard(path):
        prefix = out.path_prefix or ""
        files: list[tuple[str, Path, str]] = []
        for match in globbing.expand(path, workspace):
            for container_path, host in _files_at(workspace, match):
                relative = container_path[len(prefix) :] if container_path.startswith(prefix) else container_path
                files.append((container_path, host, join_url(out.url, relative.lstrip("/"))))
        return [_upload(plugin, c, h, u) for c, h, u in files]
    host = container_paths.resolve(workspace, path)
    if not host.exists():
        raise PermanentTransferError(f"output {path} does not exist")
    if host.is_dir():
        # A DIRECTORY (or a FILE output that turned out a directory): its files, recursively, below url.
        return [
            _upload(plugin, c, h, join_url(out.url, c[len(path) :].lstrip("/")))
            for c, h in container_paths.walk_files(workspace, path)
        ]
    return [_upload(plugin, path, host, out.url)]


def _files_at(workspace: Path, container_path: str) -> list[tuple[str, Path]]:
    host = container_paths.resolve(workspace, container_path)
    if host.is_dir():
        return list(container_paths.walk_files(workspace, container_path))
    return [(container_path, host)] if host.is_file() else []


def _upload(plugin: FilerPlugin, container_path: str, host: Path, url: str) -> OutputFileLog:
    info = host.lstat()  # ``host`` was resolved inside the workspace: no link is left in it
    if not stat.S_ISREG(info.st_mode):  # a device node or FIFO the task made: never read on the host
        raise PermanentTransferError(f"output {container_path} is not a regular file")
    size = info.st_size
    plugin.upload_file(host, url)
    log.info("output %s: %d bytes to %s", container_path, size, redact(url))
    return OutputFileLog(url=redact(url), path=container_path, size_bytes=str(size))
