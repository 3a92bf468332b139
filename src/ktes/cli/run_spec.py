"""From ``ktes run`` options to a TES task document (pure: no I/O but looking at local paths)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

_WILDCARDS = ("*", "?", "[")


class BadOption(ValueError):
    """An option's value is malformed; the message names the option and the expected form."""


def key_values(option: str, items: Sequence[str], *, bare_keys: bool = False) -> dict[str, str | None]:
    """``K=V`` items as a dict; with ``bare_keys`` a lone ``K`` maps to ``None``."""
    result: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise BadOption(f"{option} wants KEY=VALUE, got {item!r}")
        if not sep and not bare_keys:
            raise BadOption(f"{option} wants KEY=VALUE, got {item!r}")
        result[key] = value if sep else None
    return result


def _local(url: str) -> str:
    """A plain relative path names a file on this machine: make it absolute; URLs stay as they are."""
    if "://" in url or url.startswith("/"):
        return url
    return os.path.abspath(url)


def _container_path(option: str, path: str, item: str) -> str:
    if not path.startswith("/"):
        raise BadOption(f"{option}: the container path must be absolute, got {item!r}")
    return path


def input_spec(item: str) -> dict[str, Any]:
    """``URL:PATH`` (split at the last colon, as URLs have their own). A URL or PATH ending in ``/``, or a
    local directory, is a DIRECTORY input."""
    url, sep, path = item.rpartition(":")
    if not sep or not url:
        raise BadOption(f"--input wants URL:PATH, got {item!r}")
    _container_path("--input", path, item)
    url = _local(url)
    is_dir = url.endswith("/") or path.endswith("/") or ("://" not in url and os.path.isdir(url))
    return {
        "url": url,
        "path": path.rstrip("/") or "/",
        "type": "DIRECTORY" if is_dir else "FILE",
    }


def output_spec(item: str) -> dict[str, Any]:
    """``PATH:URL`` (split at the first colon). A PATH ending in ``/`` is a DIRECTORY output; a PATH with
    wildcards gets ``path_prefix`` up to its first wildcard's directory, as TES requires."""
    path, sep, url = item.partition(":")
    if not sep or not url:
        raise BadOption(f"--output wants PATH:URL, got {item!r}")
    _container_path("--output", path, item)
    spec: dict[str, Any] = {"path": path.rstrip("/") or "/", "url": _local(url)}
    if any(c in path for c in _WILDCARDS):
        first = min(path.index(c) for c in _WILDCARDS if c in path)
        spec["path_prefix"] = path[: path.rindex("/", 0, first) + 1]
    spec["type"] = "DIRECTORY" if path.endswith("/") else "FILE"
    return spec


def run_task(
    image: str,
    command: Sequence[str],
    *,
    name: str | None = None,
    env: Sequence[str] = (),
    workdir: str | None = None,
    cpu: int | None = None,
    ram_gb: float | None = None,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    tags: Sequence[str] = (),
) -> dict[str, Any]:
    """A one-executor TES task document."""
    if not command:
        raise BadOption("give the command after the image: ktes run IMAGE -- CMD [ARG...]")
    executor: dict[str, Any] = {"image": image, "command": list(command)}
    if workdir:
        executor["workdir"] = workdir
    if env:
        executor["env"] = key_values("--env", env)
    task: dict[str, Any] = {"executors": [executor]}
    if name:
        task["name"] = name
    resources: dict[str, Any] = {}
    if cpu is not None:
        resources["cpu_cores"] = cpu
    if ram_gb is not None:
        resources["ram_gb"] = ram_gb
    if resources:
        task["resources"] = resources
    if inputs:
        task["inputs"] = [input_spec(item) for item in inputs]
    if outputs:
        task["outputs"] = [output_spec(item) for item in outputs]
    if tags:
        task["tags"] = {k: v or "" for k, v in key_values("--tag", tags, bare_keys=True).items()}
    return task
