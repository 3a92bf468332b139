"""Fair shares: owners take turns at the engine, so one user's backlog never starves another user's task."""

from __future__ import annotations

from pathlib import Path

from ktes.config import Settings
from ktes.engine.engine import Engine
from ktes.store.memory import MemoryStore
from ktes.store.sql import open_store
from ktes.tes.models import State, Task
from tests.unit.test_engine import FakeBackend, a_task, state_of, until


def owned(owner: str | None, name: str) -> Task:
    task = a_task(name)
    task.owner = owner
    return task


def test_queued_in_turns_interleaves_owners_oldest_first() -> None:
    store = MemoryStore()
    a = [store.create(owned("alice", f"a{i}")) for i in range(3)]
    b = [store.create(owned("bob", f"b{i}")) for i in range(2)]
    none = store.create(owned(None, "old"))
    order = [t.id for t in store.queued_in_turns(10)]
    assert order == [a[0], b[0], none, a[1], b[1], a[2]]
    assert [t.id for t in store.queued_in_turns(2)] == [a[0], b[0]]
    assert store.queued_in_turns(1)[0].owner == "alice"


async def test_one_users_500_queued_tasks_do_not_starve_anothers_one(tmp_path: Path) -> None:
    store = MemoryStore()
    backend = FakeBackend(slots=2)
    a_ids = [store.create(owned("alice", f"a{i}")) for i in range(500)]
    engine = Engine(Settings(data_dir=tmp_path, engine_poll_seconds=60), store, backend)
    await engine.start()
    try:
        await until(lambda: len(backend.runs) == 2)
        b_id = store.create(owned("bob", "b"))
        engine.wake()
        # Alice's first two hold both slots; as each ends, the next dispatch is Bob's turn.
        backend.release(a_ids[0]).set()
        await until(lambda: b_id in backend.runs)
        assert backend.runs == [a_ids[0], a_ids[1], b_id]
        assert state_of(store, b_id) == State.RUNNING
        assert sum(state_of(store, i) == State.QUEUED for i in a_ids) == 498
    finally:
        await engine.stop()


async def test_whose_turn_it_is_survives_a_restart(tmp_path: Path) -> None:
    # One slot. Alice queued three tasks before Bob queued two, so Alice's are older. Owners alternate:
    # a0, b0, a1; then ktes restarts (engine and database connection). Alice was served last, so Bob's b1 is
    # next, not Alice's older a2: a restart must not hand the heavy user the next slot.
    url = f"sqlite:///{tmp_path / 'ktes.db'}"
    settings = Settings(data_dir=tmp_path, engine_poll_seconds=60)
    store = open_store(url)
    a = [store.create(owned("alice", f"a{i}")) for i in range(3)]
    b = [store.create(owned("bob", f"b{i}")) for i in range(2)]
    backend = FakeBackend(slots=1)
    engine = Engine(settings, store, backend)
    await engine.start()
    try:
        for dispatches in (1, 2, 3):
            await until(lambda n=dispatches: len(backend.runs) == n)
            if dispatches < 3:
                backend.release(backend.runs[-1]).set()
        assert backend.runs == [a[0], b[0], a[1]]
    finally:
        await engine.stop()  # a1 keeps running; the next engine adopts it
        store.close()

    store = open_store(url)
    backend = FakeBackend(slots=1)
    engine = Engine(settings, store, backend)
    await engine.start()
    try:
        await until(lambda: backend.adopted == [a[1]])
        backend.release(a[1]).set()
        await until(lambda: len(backend.runs) == 1)
        assert backend.runs == [b[1]]
        assert store.get(a[2]).state == State.QUEUED
    finally:
        await engine.stop()
        store.close()
