from __future__ import annotations

import pytest

from ktes.errors import PermanentTransferError, TemporaryTransferError
from ktes.filer.retry import backoff_delays, call_with_retries


def test_backoff_is_finite_doubling_and_capped() -> None:
    assert backoff_delays(5, 1.0) == (1.0, 2.0, 4.0, 8.0, 16.0)
    assert backoff_delays(3, 20.0) == (20.0, 30.0, 30.0)
    assert backoff_delays(0, 1.0) == ()


def test_transient_failures_are_retried_after_each_delay() -> None:
    slept: list[float] = []
    attempts: list[Exception | str] = [TemporaryTransferError("503"), TemporaryTransferError("503"), "done"]

    def action() -> str:
        outcome = attempts.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert call_with_retries(action, (0.5, 1.0, 2.0), sleep=slept.append) == "done"
    assert slept == [0.5, 1.0]


def test_the_last_transient_failure_is_raised() -> None:
    slept: list[float] = []
    calls = 0

    def action() -> None:
        nonlocal calls
        calls += 1
        raise TemporaryTransferError(f"attempt {calls}")

    with pytest.raises(TemporaryTransferError, match="attempt 3"):
        call_with_retries(action, (0.1, 0.2), sleep=slept.append)
    assert slept == [0.1, 0.2]


def test_permanent_failures_are_not_retried() -> None:
    slept: list[float] = []

    def action() -> None:
        raise PermanentTransferError("no such key")

    with pytest.raises(PermanentTransferError):
        call_with_retries(action, (0.1, 0.2), sleep=slept.append)
    assert slept == []


def test_retrying_stops_within_the_time_budget_and_says_how_often() -> None:
    """A store that refuses every attempt is reported within the budget, not after every delay."""
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    def action() -> None:
        now[0] += 0.1  # each attempt takes a little time
        raise TemporaryTransferError("s3://b/k: cannot connect to the S3 endpoint")

    with pytest.raises(TemporaryTransferError, match=r"cannot connect .*\(tried 4 times in 7\.4 s\)"):
        call_with_retries(action, backoff_delays(5, 1.0), budget_seconds=10.0, sleep=sleep, clock=lambda: now[0])
    assert slept == [1.0, 2.0, 4.0]


def test_a_single_attempt_keeps_its_own_message() -> None:
    def action() -> None:
        raise TemporaryTransferError("503")

    with pytest.raises(TemporaryTransferError, match=r"^503$"):
        call_with_retries(action, (5.0,), budget_seconds=1.0, sleep=lambda _: None)
