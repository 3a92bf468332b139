"""The engine runs always (no leadership) or only while this replica leads (the backend never drives it)."""

from __future__ import annotations

import asyncio

import pytest

from ktes.engine import runner
from ktes.engine.runner import lead, run_engine


class FakeEngine:
    def __init__(self, fail_first_start: bool = False) -> None:
        self.events: list[str] = []
        self.fail_next = fail_first_start
        self.started = asyncio.Event()
        self.notes: list[str] = []

    async def note_queued(self, reason: str) -> None:
        self.notes.append(reason)

    async def start(self) -> None:
        self.events.append("start")
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("no cluster")
        self.started.set()

    async def stop(self) -> None:
        self.events.append("stop")


class FakeLeadership:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.lose = asyncio.Event()

    async def acquire(self) -> None:
        self.events.append("acquire")

    async def hold(self) -> None:
        await self.lose.wait()
        self.lose.clear()

    async def release(self) -> None:
        self.events.append("release")

    async def close(self) -> None:
        self.events.append("close")


async def test_without_leadership_the_engine_runs_for_the_life_of_the_server() -> None:
    engine = FakeEngine()
    async with run_engine(engine, None):  # type: ignore[arg-type]
        assert engine.events == ["start"]
    assert engine.events == ["start", "stop"]


async def test_the_engine_stops_when_leadership_is_lost_and_starts_when_it_is_back() -> None:
    engine, leadership = FakeEngine(), FakeLeadership()
    async with run_engine(engine, leadership):  # type: ignore[arg-type]
        await asyncio.wait_for(engine.started.wait(), 5)
        engine.started.clear()
        leadership.lose.set()
        await asyncio.wait_for(engine.started.wait(), 5)
        assert engine.events == ["start", "stop", "start"]
    assert engine.events == ["start", "stop", "start", "stop"]
    assert leadership.events == ["acquire", "acquire", "close"]


async def test_an_engine_that_cannot_start_gives_leadership_up_and_tries_again() -> None:
    engine, leadership = FakeEngine(fail_first_start=True), FakeLeadership()
    leading = asyncio.create_task(lead(engine, leadership, retry_seconds=0.01))  # type: ignore[arg-type]
    await asyncio.wait_for(engine.started.wait(), 5)
    leading.cancel()
    await asyncio.gather(leading, return_exceptions=True)
    assert engine.events == ["start", "stop", "start", "stop"]
    assert leadership.events == ["acquire", "release", "acquire"]
    assert engine.notes == ["the engine could not start: no cluster"]  # the QUEUED tasks are told


class UnreachableLeadership(FakeLeadership):
    """The Lease cannot be taken: the API does not answer, until ``reachable`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.reachable = asyncio.Event()

    def not_ready_reason(self) -> str | None:
        return None if self.reachable.is_set() else "no engine can run: the API does not answer"

    async def acquire(self) -> None:
        await self.reachable.wait()
        self.events.append("acquire")


async def test_while_no_replica_can_lead_the_queued_tasks_are_told_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "NOTE_SECONDS", 0.01)
    engine, leadership = FakeEngine(), UnreachableLeadership()
    leading = asyncio.create_task(lead(engine, leadership))  # type: ignore[arg-type]
    deadline = asyncio.get_running_loop().time() + 5
    while not engine.notes:
        assert asyncio.get_running_loop().time() < deadline, "no note"
        await asyncio.sleep(0.01)
    assert set(engine.notes) == {"no engine can run: the API does not answer"}
    leadership.reachable.set()
    await asyncio.wait_for(engine.started.wait(), 5)
    leading.cancel()
    await asyncio.gather(leading, return_exceptions=True)


def test_the_registry_gives_the_kubernetes_backend_its_lease_and_the_local_one_none() -> None:
    from ktes.backends.kubernetes.lease import LeaseLeadership
    from ktes.backends.registry import create_leadership
    from ktes.config import Settings

    assert isinstance(create_leadership(Settings(backend="kubernetes")), LeaseLeadership)
    assert create_leadership(Settings(backend="local")) is None
