"""The server's retention loop: it purges old finished tasks on its interval and outlives a store outage."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from ktes.engine.retention import purge_forever
from ktes.store.memory import MemoryStore
from ktes.tes.models import Executor, State, Task


class FlakyStore(MemoryStore):
    """Fails its first look for old tasks, as a database that is away."""

    def __init__(self) -> None:
        super().__init__()
        self.looks = 0

    def finished_before(self, creation_time: str, limit: int) -> list[str]:
        self.looks += 1
        if self.looks == 1:
            raise ConnectionError("the database is away")
        return super().finished_before(creation_time, limit)


async def test_the_loop_purges_finished_tasks_after_an_outage_and_leaves_active_ones() -> None:
    store = FlakyStore()
    done = store.create(Task(executors=[Executor(image="alpine", command=["true"])]))
    store.transition(done, State.CANCELING)
    store.transition(done, State.CANCELED)
    waiting = store.create(Task(executors=[Executor(image="alpine", command=["true"])]))
    removed: list[str] = []
    purged = asyncio.Event()

    async def leftovers(task_ids: list[str]) -> None:
        removed.extend(task_ids)
        purged.set()

    loop = asyncio.create_task(purge_forever(store, timedelta(0), leftovers, interval=0.01))
    try:
        async with asyncio.timeout(10):
            await purged.wait()
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
    assert removed == [done] and store.looks >= 2
    assert [t.id for t in store.tasks_in(set(State))] == [waiting]
