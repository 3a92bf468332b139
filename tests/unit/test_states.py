"""The task state machine: the legal transitions in ktes.tes.states."""

from __future__ import annotations

import pytest

from ktes.tes.models import State
from ktes.tes.states import ALLOWED_FROM, TERMINAL, is_terminal

S = State
LIFECYCLE = [S.QUEUED, S.INITIALIZING, S.RUNNING, S.COMPLETE]


def allowed(current: State, target: State) -> bool:
    """As the store's compare-and-set reads the table."""
    return current in ALLOWED_FROM[target]


def test_every_state_has_a_row() -> None:
    assert set(ALLOWED_FROM) == set(State)


def test_the_usual_lifecycle_is_legal() -> None:
    for current, target in zip([S.UNKNOWN, *LIFECYCLE], LIFECYCLE, strict=False):
        assert allowed(current, target)


@pytest.mark.parametrize("end", sorted(TERMINAL))
def test_nothing_leaves_a_terminal_state(end: State) -> None:
    assert is_terminal(end)
    for target in State:
        assert not allowed(end, target)


@pytest.mark.parametrize("state", [S.QUEUED, S.INITIALIZING, S.RUNNING, S.PAUSED])
def test_any_waiting_or_running_task_can_be_canceled(state: State) -> None:
    assert allowed(state, S.CANCELING)
    assert not is_terminal(state)


def test_canceled_only_after_canceling() -> None:
    assert {s for s in State if allowed(s, S.CANCELED)} == {S.CANCELING}
    assert not allowed(S.CANCELING, S.CANCELING)
    assert not allowed(S.CANCELING, S.COMPLETE)


def test_a_task_can_fail_before_it_starts_but_cannot_complete_without_running() -> None:
    assert allowed(S.QUEUED, S.SYSTEM_ERROR)
    assert not allowed(S.QUEUED, S.COMPLETE)
    assert not allowed(S.QUEUED, S.EXECUTOR_ERROR)
    assert not allowed(S.QUEUED, S.RUNNING)


def test_pause_and_resume() -> None:
    assert allowed(S.RUNNING, S.PAUSED) and allowed(S.PAUSED, S.RUNNING)
    assert not allowed(S.PAUSED, S.COMPLETE)


def test_preemption_only_of_started_tasks() -> None:
    assert {s for s in State if allowed(s, S.PREEMPTED)} == {S.INITIALIZING, S.RUNNING, S.PAUSED}


def test_queued_only_from_unknown_and_nothing_goes_back_to_unknown() -> None:
    assert {s for s in State if allowed(s, S.QUEUED)} == {S.UNKNOWN}
    assert not any(allowed(s, S.UNKNOWN) for s in State)


def test_terminal_set() -> None:
    assert {S.COMPLETE, S.EXECUTOR_ERROR, S.SYSTEM_ERROR, S.CANCELED, S.PREEMPTED} == TERMINAL
