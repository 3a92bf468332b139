"""Check and normalise a submitted task before it is stored.

Lenient where the spec allows (unknown fields and explicit ``null`` are fine, read-only fields a client sends
are ignored), strict where running the task would otherwise fail later or unsafely: every error raises
:class:`ktes.errors.InvalidTask` naming the field as a dotted path such as ``executors[0].image``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ktes.capabilities import Capabilities
from ktes.errors import InvalidTask
from ktes.tes.layout import has_wildcard
from ktes.tes.models import Input, Output, Resources, Task, TaskLog
from ktes.tes.urls import scheme_of

#: Fields the server sets; a client's values are ignored.
READ_ONLY_FIELDS = ("id", "state", "logs", "creation_time")
_INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class Limits:
    """Configurable bounds on one task. These defaults are the only ones: :class:`ktes.config.Settings`
    takes its ``max_*`` defaults from here."""

    max_content_bytes: int = 1024 * 1024
    max_executors: int = 256
    max_inputs: int = 10_000
    max_outputs: int = 10_000
    max_tags: int = 1_000
    #: name and tags are indexed: PostgreSQL cannot index entries over about 2.7 kB
    max_name_bytes: int = 1024
    max_tag_bytes: int = 1024
    #: reject unsupported backend_parameters keys even when the task does not ask for strictness
    backend_parameters_strict: bool = False


def field_path(loc: Sequence[int | str]) -> str:
    """``("executors", 0, "image")`` -> ``"executors[0].image"``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "body"


def parse_task(raw: Any) -> Task:
    """The :class:`Task` in a decoded JSON body, without the read-only fields a client may have sent."""
    if not isinstance(raw, dict):
        raise InvalidTask("body", "must be a JSON object (a tesTask)")
    _refuse_deep(raw)
    doc = {k: v for k, v in raw.items() if k not in READ_ONLY_FIELDS}
    _refuse_nul(doc, "")
    try:
        return Task.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        message = "is required" if first["type"] == "missing" else str(first["msg"])
        raise InvalidTask(field_path(first["loc"]), message) from None


#: A tesTask is at most about eight levels deep; extensions get room, a 1,000-level document gets a 400.
MAX_JSON_DEPTH = 64


def _refuse_deep(raw: Any) -> None:
    """Arrays and objects nested deeper than MAX_JSON_DEPTH anywhere (a known field or not) are refused,
    before anything walks the document recursively. Iterative, so the check itself cannot overflow."""
    pending: list[tuple[Any, int]] = [(raw, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidTask("body", f"is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, dict):
            pending.extend((item, depth + 1) for item in value.values() if isinstance(item, dict | list))
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value if isinstance(item, dict | list))


def _refuse_nul(value: Any, where: str) -> None:
    """No string may hold a NUL character (databases cannot store it in text, and no path or URL has one)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidTask(where or "body", "must not contain a NUL character")
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise InvalidTask(where or "body", "must not contain a NUL character in a key")
            _refuse_nul(item, f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_nul(item, f"{where}[{i}]")


def validate_submission(raw: Any, capabilities: Capabilities, limits: Limits) -> Task:
    """Parse, check and normalise a submitted task; the result is ready for ``Store.create``."""
    return validate_task(parse_task(raw), capabilities, limits)


def validate_task(task: Task, capabilities: Capabilities, limits: Limits) -> Task:
    """Check ``task`` and normalise it in place (returned for convenience).

    Unsupported ``backend_parameters`` keys are dropped with a warning in ``logs[0].system_logs`` (or
    rejected when strict); keys are lower-cased.
    """
    task.id = task.state = task.creation_time = None
    task.logs = None
    _check_counts(task, limits)
    _check_indexed_sizes(task, limits)
    if not task.executors:
        raise InvalidTask("executors", "must list at least one executor")
    for i, executor in enumerate(task.executors):
        where = f"executors[{i}]"
        if not executor.image.strip():
            raise InvalidTask(f"{where}.image", "must not be empty")
        if not executor.command:
            raise InvalidTask(f"{where}.command", "must not be empty")
        for name in ("workdir", "stdin", "stdout", "stderr"):
            value = getattr(executor, name)
            if value is not None:
                _check_container_path(f"{where}.{name}", value, allow_root=name == "workdir")
    for i, inp in enumerate(task.inputs or []):
        _check_input(f"inputs[{i}]", inp, capabilities, limits)
    for i, out in enumerate(task.outputs or []):
        _check_output(f"outputs[{i}]", out, capabilities)
    for i, volume in enumerate(task.volumes or []):
        _check_container_path(f"volumes[{i}]", volume)
    warnings = []
    if task.resources is not None:
        _check_resources(task.resources)
        warning = _normalise_backend_parameters(task.resources, capabilities, limits)
        if warning:
            warnings.append(warning)
    if warnings:
        task.logs = [TaskLog(logs=[], outputs=[], system_logs=warnings)]
    return task


def _check_counts(task: Task, limits: Limits) -> None:
    counts = (
        ("executors", len(task.executors), limits.max_executors),
        ("inputs", len(task.inputs or []), limits.max_inputs),
        ("outputs", len(task.outputs or []), limits.max_outputs),
        ("tags", len(task.tags or {}), limits.max_tags),
    )
    for name, count, limit in counts:
        if count > limit:
            raise InvalidTask(name, f"has {count} entries; this server accepts at most {limit}")


def _check_indexed_sizes(task: Task, limits: Limits) -> None:
    if task.name is not None and len(task.name.encode()) > limits.max_name_bytes:
        raise InvalidTask("name", f"is longer than {limits.max_name_bytes} bytes")
    for key, value in (task.tags or {}).items():
        if len(key.encode()) > limits.max_tag_bytes:
            raise InvalidTask("tags", f"has a key longer than {limits.max_tag_bytes} bytes")
        if len(value.encode()) > limits.max_tag_bytes:
            raise InvalidTask(f"tags.{key}", f"is longer than {limits.max_tag_bytes} bytes")


def _check_container_path(where: str, path: str, *, allow_root: bool = False) -> None:
    if not path.startswith("/"):
        raise InvalidTask(where, f"must be an absolute container path (got {path!r})")
    if ".." in path.split("/"):
        raise InvalidTask(where, f"must not contain a '..' segment (got {path!r})")
    if not allow_root and posixpath.normpath(path) in ("/", "//"):
        raise InvalidTask(where, "must not be the container's root directory '/'")


def _check_url(where: str, url: str, capabilities: Capabilities) -> None:
    """The scheme as the filer will read it (:func:`ktes.tes.urls.scheme_of`), and one this server serves."""
    if not url:
        raise InvalidTask(where, "must not be empty")
    scheme = scheme_of(url)
    if not scheme:
        raise InvalidTask(where, f"must be a URL such as s3://bucket/key, or an absolute path (got {url!r})")
    if scheme in capabilities.refused_schemes:
        raise InvalidTask(where, f"URL scheme {scheme!r} cannot be used here: {capabilities.refused_schemes[scheme]}")
    if scheme not in capabilities.storage_schemes:
        supported = ", ".join(capabilities.storage_schemes) or "none"
        raise InvalidTask(where, f"URL scheme {scheme!r} is not supported by this server (supported: {supported})")


def _check_input(where: str, inp: Input, capabilities: Capabilities, limits: Limits) -> None:
    _check_container_path(f"{where}.path", inp.path)
    if inp.content:
        size = len(inp.content.encode())
        if size > limits.max_content_bytes:
            raise InvalidTask(
                f"{where}.content", f"is {size} bytes; this server accepts at most {limits.max_content_bytes}"
            )
        return  # non-empty content wins: the url is ignored
    if inp.url is None:
        if inp.content is None:
            raise InvalidTask(f"{where}.url", "is required unless content is set")
        return
    _check_url(f"{where}.url", inp.url, capabilities)


def _check_output(where: str, out: Output, capabilities: Capabilities) -> None:
    _check_container_path(f"{where}.path", out.path)
    _check_url(f"{where}.url", out.url, capabilities)
    if has_wildcard(out.path):
        if not out.path_prefix:
            raise InvalidTask(f"{where}.path_prefix", "is required when path contains wildcards")
        if not out.path.startswith(out.path_prefix):
            raise InvalidTask(f"{where}.path_prefix", f"must be a prefix of path {out.path!r}")


def _check_resources(resources: Resources) -> None:
    if resources.cpu_cores is not None and not 0 <= resources.cpu_cores <= _INT32_MAX:
        raise InvalidTask("resources.cpu_cores", "must be between 0 and 2147483647")
    for name in ("ram_gb", "disk_gb"):
        value = getattr(resources, name)
        if value is not None and value < 0:
            raise InvalidTask(f"resources.{name}", "must not be negative")


def _normalise_backend_parameters(resources: Resources, capabilities: Capabilities, limits: Limits) -> str | None:
    """Lower-case the keys and drop the unsupported ones; return the warning to record, if any."""
    if not resources.backend_parameters:
        return None
    params = {key.lower(): value for key, value in resources.backend_parameters.items()}
    supported = set(capabilities.backend_parameters)
    unsupported = sorted(key for key in params if key not in supported)
    resources.backend_parameters = {key: value for key, value in params.items() if key in supported}
    if not unsupported:
        return None
    names = ", ".join(repr(k) for k in unsupported)
    known = ", ".join(repr(k) for k in capabilities.backend_parameters) or "none"
    if resources.backend_parameters_strict or limits.backend_parameters_strict:
        raise InvalidTask("resources.backend_parameters", f"unsupported keys {names} (this server supports: {known})")
    return f"backend_parameters {names} not supported by this server and ignored (supported: {known})"
