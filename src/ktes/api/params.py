"""Query parameters of ListTasks and GetTask, parsed by hand (cheap, and every error names its parameter)."""

from __future__ import annotations

from starlette.datastructures import QueryParams

from ktes.errors import InvalidTask
from ktes.store.base import TaskFilter
from ktes.tes.models import State

_STATES = {s.value: s for s in State}


def task_filter(query: QueryParams) -> TaskFilter:
    """``name_prefix``, ``state`` and the zipped ``tag_key``/``tag_value`` (``tag_key[]`` also accepted)."""
    for name, value in query.multi_items():
        if "\x00" in value:
            raise InvalidTask(name, "must not contain a NUL character")
    state_text = query.get("state")
    state = None
    if state_text is not None and state_text != "":
        state = _STATES.get(state_text)
        if state is None:
            raise InvalidTask("state", f"must be one of {', '.join(_STATES)} (got {state_text!r})")
    keys = query.getlist("tag_key") + query.getlist("tag_key[]")
    values = query.getlist("tag_value") + query.getlist("tag_value[]")
    if len(values) > len(keys):
        raise InvalidTask("tag_value", f"has {len(values)} values for {len(keys)} tag_key parameters")
    # Zipped into a map as the spec says: a key without a value means "has the key"; a repeated key keeps the
    # last value.
    tags = {key: values[i] if i < len(values) else "" for i, key in enumerate(keys)}
    return TaskFilter(name_prefix=query.get("name_prefix") or None, state=state, tags=tags)


def page_size(query: QueryParams, default: int, maximum: int) -> int:
    """``page_size``: absent means ``default``; it must be 1..``maximum`` (the spec: below 2048)."""
    text = query.get("page_size")
    if text is None or text == "":
        return default
    try:
        size = int(text)
    except ValueError:
        raise InvalidTask("page_size", f"must be an integer (got {text!r})") from None
    if not 1 <= size <= maximum:
        raise InvalidTask("page_size", f"must be between 1 and {maximum} (got {size})")
    return size
