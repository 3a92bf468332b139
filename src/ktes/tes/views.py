"""Shape a task's JSON document by :class:`~ktes.tes.models.View` (TES 1.1, GetTask/ListTasks ``view``).

- MINIMAL: only ``id`` and ``state``.
- BASIC: everything except ``inputs[*].content``, ``logs[*].logs[*].stdout``/``stderr`` and
  ``logs[*].system_logs`` (the keys are left out, which the schema allows).
- FULL: everything.

These work on plain dicts (the stored JSON), so the read path needs no pydantic.
"""

from __future__ import annotations

from typing import Any

import orjson

from ktes.errors import InvalidTask
from ktes.tes.models import View

_VIEWS = {v.value: v for v in View}


def parse_view(value: str | None) -> View:
    """The ``view`` query parameter: absent means MINIMAL; anything else but the three names is a 400."""
    if value is None:
        return View.MINIMAL
    view = _VIEWS.get(value)
    if view is None:
        raise InvalidTask("view", f"must be one of MINIMAL, BASIC, FULL (got {value!r})")
    return view


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
