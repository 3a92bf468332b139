"""TES 1.1's own states shown in TES 1.0 terms, for clients that know only 1.0's (setting ``tes_states=1.0``).

TES 1.1 added CANCELING and PREEMPTED. Clients written against 1.0 (pydantic-tes, so Galaxy and Pulsar) reject
a task in either with a validation error. With ``tes_states=1.0`` the API shows them as 1.0 states:

- CANCELING as CANCELED: the cancel was accepted and nothing more of the task will run;
- PREEMPTED as SYSTEM_ERROR, with the reason as the last line of the task's ``system_logs``.

Only what the API answers changes: the store, the engine and the state machine keep the 1.1 states. The
``state`` filter of ListTasks follows what is shown (CANCELED also finds CANCELING tasks, SYSTEM_ERROR also
PREEMPTED ones), and asking for a 1.1-only state is a 400. Most answers hold neither state: those are returned
as they are, without parsing.
"""

from __future__ import annotations

from typing import Any

import orjson

from ktes.errors import InvalidTask
from ktes.tes.models import State, View

#: A 1.1-only state -> the 1.0 state shown instead.
AS_1_0: dict[State, State] = {State.CANCELING: State.CANCELED, State.PREEMPTED: State.SYSTEM_ERROR}
#: A shown 1.0 state -> the stored states it stands for besides itself.
ALSO_MATCHES: dict[State, tuple[State, ...]] = {shown: (state,) for state, shown in AS_1_0.items()}
PREEMPTED_LINE = "the task was preempted (TES 1.1 state PREEMPTED, shown as SYSTEM_ERROR to TES 1.0 clients)"

_MARKERS = tuple(b'"state":"' + state.value.encode() + b'"' for state in AS_1_0)


def present_task(doc: dict[str, Any], view: View) -> bool:
    """Show ``doc`` (shaped by ``view``) in 1.0 terms, in place; True when anything changed."""
    state = doc.get("state")
    if state == State.CANCELING:
        doc["state"] = State.CANCELED.value
        return True
    if state != State.PREEMPTED:
        return False
    doc["state"] = State.SYSTEM_ERROR.value
    if view is View.FULL:  # the other views show no system_logs
        logs = doc.setdefault("logs", [])
        if not logs:
            logs.append({"logs": [], "metadata": {}, "outputs": []})
        logs[-1]["system_logs"] = [*(logs[-1].get("system_logs") or []), PREEMPTED_LINE]
    return True


def present_task_json(body: bytes, view: View) -> bytes:
    """A GetTask body in 1.0 terms."""
    if not any(marker in body for marker in _MARKERS):
        return body
    doc = orjson.loads(body)
    return orjson.dumps(doc) if present_task(doc, view) else body


def present_list_json(body: bytes, view: View) -> bytes:
    """A ListTasks body in 1.0 terms."""
    if not any(marker in body for marker in _MARKERS):
        return body
    page = orjson.loads(body)
    changed = False
    for doc in page.get("tasks") or ():
        changed = present_task(doc, view) or changed
    return orjson.dumps(page) if changed else body


def filter_states(state: State) -> tuple[State, ...]:
    """The stored states a ``state`` filter of a 1.0 client finds (400 for a 1.1-only state)."""
    if state in AS_1_0:
        raise InvalidTask("state", f"{state.value} is a TES 1.1 state; this server shows TES 1.0 states (tes_states)")
    return ALSO_MATCHES.get(state, ())
