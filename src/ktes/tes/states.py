"""The task state machine: every legal transition in one table.

Only the engine changes a task's state, through the store's compare-and-set update on :data:`ALLOWED_FROM`
(``UPDATE ... WHERE state IN (allowed)``). Losing a race (the task moved on meanwhile) is normal.
"""

from __future__ import annotations

from collections.abc import Mapping

from ktes.tes.models import State

TERMINAL: frozenset[State] = frozenset(
    {State.COMPLETE, State.EXECUTOR_ERROR, State.SYSTEM_ERROR, State.CANCELED, State.PREEMPTED}
)

_ENDINGS = {State.COMPLETE, State.EXECUTOR_ERROR, State.SYSTEM_ERROR, State.PREEMPTED}

#: target state -> the states a task may be in to move there.
ALLOWED_FROM: Mapping[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.UNKNOWN}),
    State.INITIALIZING: frozenset({State.QUEUED}),
    State.RUNNING: frozenset({State.INITIALIZING, State.PAUSED}),
    State.PAUSED: frozenset({State.RUNNING}),
    State.COMPLETE: frozenset({State.INITIALIZING, State.RUNNING}),
    State.EXECUTOR_ERROR: frozenset({State.INITIALIZING, State.RUNNING}),
    # A task may fail before it starts (bad input URL, image not found, nothing to re-adopt).
    State.SYSTEM_ERROR: frozenset({State.QUEUED, State.INITIALIZING, State.RUNNING, State.PAUSED}),
    State.PREEMPTED: frozenset({State.INITIALIZING, State.RUNNING, State.PAUSED}),
    State.CANCELING: frozenset({State.QUEUED, State.INITIALIZING, State.RUNNING, State.PAUSED}),
    State.CANCELED: frozenset({State.CANCELING}),
    State.UNKNOWN: frozenset(),
}

assert set(ALLOWED_FROM) >= _ENDINGS


def is_terminal(state: State) -> bool:
    return state in TERMINAL
