"""Shape a task's JSON document by :class:`~ktes.tes.models.View` (TES 1.1, GetTask/ListTasks ``view``).

- MINIMAL: only ``id`` and ``state``.
- BASIC: everything except ``inputs[*].content``, ``logs[*].logs[*].stdout``/``stderr`` and
  ``logs[*].system_logs`` (the keys are left out, which the schema allows).
- FULL: everything.

Every task document is :func:`complete`: the arrays (``inputs``, ``outputs``, ``volumes``, ``executors``,
``logs``, and in each task log ``logs`` and ``outputs``) and maps (``tags``, executor ``env``, task log
``metadata``) are always there, empty when the task has none, ``type`` is on every input and output, and no
value is ``null``. The schema allows leaving them out, but clients index them without looking (the ELIXIR web
component maps over ``inputs``; pydantic-tes and the Rust ``tes`` crate require ``type``; pydantic-tes and the
Rust crate require ``outputs`` and ``exit_code`` in logs). The store keeps documents in this form, so reads
serve them as they are.

These work on plain dicts (the stored JSON), so the read path needs no pydantic.
"""

from __future__ import annotations

from typing import Any

import orjson

from ktes.errors import InvalidTask
from ktes.tes.models import Task, View, dump

_VIEWS = {v.value: v for v in View}


def parse_view(value: str | None) -> View:
    """The ``view`` query parameter: absent means MINIMAL; anything else but the three names is a 400."""
    if value is None:
        return View.MINIMAL
    view = _VIEWS.get(value)
    if view is None:
        raise InvalidTask("view", f"must be one of MINIMAL, BASIC, FULL (got {value!r})")
    return view


#: A task's keys in the schema's order, each with the empty value it gets when the task has none (None: the
#: key is left out when absent, as for a scalar).
_TASK_KEYS: tuple[tuple[str, type[list[Any]] | type[dict[str, Any]] | None], ...] = (
    ("id", None),
    ("state", None),
    ("name", None),
    ("description", None),
    ("inputs", list),
    ("outputs", list),
    ("resources", None),
    ("executors", list),
    ("volumes", list),
    ("tags", dict),
    ("logs", list),
    ("creation_time", None),
)
_TASK_LOG_KEYS: tuple[tuple[str, type[list[Any]] | type[dict[str, Any]] | None], ...] = (
    ("logs", list),
    ("metadata", dict),
    ("start_time", None),
    ("end_time", None),
    ("outputs", list),
    ("system_logs", None),  # left out when empty: BASIC hides it, and the store then needs no second copy
)


def _ordered(doc: dict[str, Any], keys: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """``doc`` with its known keys first, in order, ``null`` values dropped and empty containers filled in."""
    shaped: dict[str, Any] = {}
    for key, empty in keys:
        value = doc.get(key)
        if value is not None:
            shaped[key] = value
        elif empty is not None:
            shaped[key] = empty()
    for key, value in doc.items():
        if key not in shaped and value is not None and all(key != known for known, _ in keys):
            shaped[key] = value
    return shaped


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    """The task document ``doc`` (as :func:`ktes.tes.models.dump` writes it, or as an older ktes stored it)
    with every array and map present: see the module's docstring. ``doc`` itself is not changed."""
    shaped = _ordered(doc, _TASK_KEYS)
    shaped["inputs"] = [{**item, "type": item.get("type") or "FILE"} for item in shaped["inputs"]]
    shaped["outputs"] = [{**item, "type": item.get("type") or "FILE"} for item in shaped["outputs"]]
    shaped["executors"] = [{**ex, "env": ex.get("env") or {}} for ex in shaped["executors"]]
    shaped["logs"] = [_ordered(log, _TASK_LOG_KEYS) for log in shaped["logs"]]
    return shaped


def document(task: Task) -> dict[str, Any]:
    """The complete JSON document of ``task``: what the store keeps and FULL shows."""
    return complete(dump(task))


def minimal(doc: dict[str, Any]) -> dict[str, Any]:
    return {"id": doc["id"], "state": doc["state"]}


def basic(doc: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of ``doc`` without the large strings; ``doc`` itself is not changed."""
    shaped = dict(doc)
    inputs = doc.get("inputs")
    if inputs and any("content" in i for i in inputs):
        shaped["inputs"] = [{k: v for k, v in i.items() if k != "content"} for i in inputs]
    logs = doc.get("logs")
    if logs:
        shaped["logs"] = [_basic_task_log(log) for log in logs]
    return shaped


def _basic_task_log(log: dict[str, Any]) -> dict[str, Any]:
    shaped = {k: v for k, v in log.items() if k != "system_logs"}
    executor_logs = log.get("logs")
    if executor_logs:
        shaped["logs"] = [{k: v for k, v in e.items() if k not in ("stdout", "stderr")} for e in executor_logs]
    return shaped


def shape(doc: dict[str, Any], view: View) -> dict[str, Any]:
    """``doc`` (a whole task document) as ``view`` shows it."""
    if view is View.MINIMAL:
        return minimal(doc)
    if view is View.BASIC:
        return basic(doc)
    return doc


_BASIC_HIDES = (b'"content":', b'"stdout":', b'"stderr":', b'"system_logs":')


def basic_json(doc: bytes) -> bytes:
    """The BASIC view of a compact JSON document (as :func:`orjson.dumps` writes it), as JSON.

    Most stored documents have none of the hidden keys: those are returned as they are, without parsing.
    """
    if not any(marker in doc for marker in _BASIC_HIDES):
        return doc
    return orjson.dumps(basic(orjson.loads(doc)))
